#!/usr/bin/env python3
"""Transportstyrelsen's adapter for shs-relay, in Python: the reference adapter.

It serves the provider contract (proto/shs_relay/provider/v1/provider.proto) to
the relay and asks Transportstyrelsen's base service (SOAP 1.1, HamtaUppgifter
v1) for the vehicles a person owns. It is the file an agency's developer copies
first: everything the contract asks of an adapter is here, in one place.

  * mutual TLS towards the relay (only clients whose certificate chains to
    [tls] client_ca; optionally pinned by CN or SHA-256 fingerprint), and
    towards the base service (its CA, the adapter's client certificate);
  * Describe with the contract version; grpc.health.v1 following the base
    service's health (NOT_SERVING until the first check says otherwise);
  * deadlines: the relay's grpc-timeout bounds the base-service call, which is
    abandoned (DEADLINE_EXCEEDED) a little before the deadline, never late;
  * cancellation: when the relay cancels, the base-service connection is
    closed at once (the base service sees the call go away);
  * the base service's own errors become a ProviderError with its code
    (SSBTEK kalla="BT"); an outage is UNAVAILABLE, a bad query INVALID_ARGUMENT;
  * a concurrency limit: beyond [limits] max_concurrent calls a query waits at
    most queue_wait_ms for a slot, then RESOURCE_EXHAUSTED;
  * no personal data (personnummer, payloads) in logs or error texts.

The gRPC stubs are generated from the project's .proto when the adapter starts
(grpcio-tools, into providers/python/generated/, never checked in), so they
cannot drift from the contract.

Run:  adapter.py --config tns.toml          (the Rust adapters' TOML shape)
      adapter.py --check-config tns.toml [--skip-files]
It prints {"listen": "HOST:PORT", "admin": null} on its first stdout line once
bound (launchers that bind port 0 read it) and logs JSON lines to stderr.
"""

import argparse
import hashlib
import http.client
import json
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import tomllib
import xml.etree.ElementTree as ET
from concurrent import futures
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
# The contract: the project's own .proto (an agency copies it beside this file
# and points SHS_PROVIDER_PROTO_ROOT at the folder that holds shs_relay/).
PROTO_ROOT = Path(os.environ.get("SHS_PROVIDER_PROTO_ROOT", HERE.parent.parent / "proto"))
PROTO_FILE = "shs_relay/provider/v1/provider.proto"
CONTRACT_VERSION = "shs_relay.provider.v1"
SERVICE_NAME = "shs_relay.provider.v1.Provider"
ADAPTER_VERSION = "0.1.0"

# ---------------------------------------------------------------------------
# Stubs: generated from the .proto, content-addressed so that processes that
# start side by side never see each other's half-written files.
# ---------------------------------------------------------------------------


def load_stubs():
    """Generates (once per .proto content) and imports provider_pb2(_grpc)."""
    proto = (PROTO_ROOT / PROTO_FILE).read_bytes()
    out = HERE / "generated" / hashlib.sha256(proto).hexdigest()[:16]
    if not out.is_dir():
        from grpc_tools import protoc  # noqa: PLC0415 (only needed here)

        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".tmp-"))
        code = protoc.main(
            ["protoc", f"-I{PROTO_ROOT}", f"--python_out={tmp}", f"--grpc_python_out={tmp}", PROTO_FILE]
        )
        if code != 0:
            sys.exit(f"cannot generate the gRPC stubs from {PROTO_ROOT / PROTO_FILE}")
        try:
            tmp.rename(out)
        except OSError:  # another process was first: its files are the same
            import shutil  # noqa: PLC0415

            shutil.rmtree(tmp, ignore_errors=True)
    sys.path.insert(0, str(out))
    from shs_relay.provider.v1 import provider_pb2, provider_pb2_grpc  # noqa: PLC0415

    return provider_pb2, provider_pb2_grpc


# ---------------------------------------------------------------------------
# Configuration: the Rust adapters' TOML file (providers/sdk/src/config.rs).
# ---------------------------------------------------------------------------

TOP_KEYS = {"listen", "maintenance_file", "health_interval_ms", "default_deadline_ms", "shutdown_grace_ms", "tls", "backend", "limits", "extra"}
SECTION_KEYS = {
    "tls": {"cert", "key", "client_ca", "allowed_clients"},
    "backend": {"url", "ca", "client_cert", "client_key", "timeout_ms"},
    "limits": {"max_concurrent", "queue_wait_ms"},
}
REQUIRED = {"listen": None, "tls": {"cert", "key", "client_ca"}, "backend": {"url"}}


def check_config(path, check_files=True):
    """Reads the file; returns (config, errors), each error `FILE: KEY: REASON`."""
    errors = []
    try:
        cfg = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        return None, [f"{path}: cannot read: {e}"]
    except tomllib.TOMLDecodeError as e:
        return None, [f"{path}: not valid TOML: {e}"]

    def err(key, reason):
        errors.append(f"{path}: {key}: {reason}")

    for key in cfg:
        if key in ("admin", "tracing"):
            err(key, "not supported by the Python reference adapter")
        elif key not in TOP_KEYS:
            err(key, "unknown key")
    for section, keys in REQUIRED.items():
        if section not in cfg:
            err(section, "missing")
        elif keys and isinstance(cfg[section], dict):
            for k in sorted(keys - cfg[section].keys()):
                err(f"{section}.{k}", "missing")
    for section, keys in SECTION_KEYS.items():
        value = cfg.get(section, {})
        if not isinstance(value, dict):
            err(section, "must be a table")
            continue
        for k in value:
            if k not in keys:
                err(f"{section}.{k}", "unknown key")
    listen = cfg.get("listen", "")
    if "listen" in cfg and (not isinstance(listen, str) or ":" not in listen):
        err("listen", "must be \"HOST:PORT\"")
    backend = cfg.get("backend", {}) if isinstance(cfg.get("backend"), dict) else {}
    url = backend.get("url", "")
    if "url" in backend and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        err("backend.url", "must be an http(s) URL")
    if ("client_cert" in backend) != ("client_key" in backend):
        err("backend.client_key", "client_cert and client_key go together")
    for key, value in [
        ("health_interval_ms", cfg.get("health_interval_ms", 2000)),
        ("default_deadline_ms", cfg.get("default_deadline_ms", 10000)),
        ("shutdown_grace_ms", cfg.get("shutdown_grace_ms", 15000)),
        ("backend.timeout_ms", backend.get("timeout_ms", 30000)),
        ("limits.max_concurrent", cfg.get("limits", {}).get("max_concurrent", 64) if isinstance(cfg.get("limits"), dict) else 64),
        ("limits.queue_wait_ms", cfg.get("limits", {}).get("queue_wait_ms", 200) if isinstance(cfg.get("limits"), dict) else 200),
    ]:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0 or (value == 0 and key != "limits.queue_wait_ms"):
            err(key, "must be a positive integer")
    if "maintenance_file" in cfg and not isinstance(cfg["maintenance_file"], str):
        err("maintenance_file", "must be a path")
    if check_files:
        tls = cfg.get("tls", {}) if isinstance(cfg.get("tls"), dict) else {}
        for key, value in [(f"tls.{k}", tls.get(k)) for k in ("cert", "key", "client_ca")] + [
            (f"backend.{k}", backend.get(k)) for k in ("ca", "client_cert", "client_key")
        ]:
            if value is None:
                continue
            text = Path(value).read_text(errors="replace") if Path(value).is_file() else None
            if text is None:
                err(key, f"cannot read {value}")
            elif "-----BEGIN" not in text:
                err(key, f"{value} is not PEM")
    return cfg, errors


# ---------------------------------------------------------------------------
# The agency's own part: Transportstyrelsen's base service (SOAP 1.1).
# An agency replaces this class; the rest of the file stays as it is.
# ---------------------------------------------------------------------------

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_TNS = "http://schema.transportstyrelsen.se/ssbtek/hamtauppgifterresponder/1"
NS_FORDON = "http://schema.transportstyrelsen.se/ssbtek/fordon/1"
NS_PERSON = "http://schema.transportstyrelsen.se/ssbtek/person/1"
for prefix, uri in [("tns", NS_TNS), ("fordon", NS_FORDON), ("per", NS_PERSON)]:
    ET.register_namespace(prefix, uri)

# Answers larger than this are refused (the relay takes at most 16 MiB).
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class Unavailable(Exception):
    """The base service is down or unreachable: UNAVAILABLE."""


class TooLate(Exception):
    """The base service did not answer within the call's deadline."""


class AgencyError(Exception):
    """The base service said no: becomes a ProviderError with its code."""

    def __init__(self, code, message):
        super().__init__(code)
        self.code, self.message = code, message


class TransportstyrelsenService:
    """HamtaUppgifter v1 over HTTPS with the adapter's client certificate."""

    def __init__(self, backend):
        parts = urlsplit(backend["url"])
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port or (443 if self.https else 80)
        self.base_path = parts.path.rstrip("/")
        self.timeout = backend.get("timeout_ms", 30000) / 1000
        self.tls = None
        if self.https:
            self.tls = ssl.create_default_context(cafile=backend.get("ca"))
            if backend.get("client_cert"):
                self.tls.load_cert_chain(backend["client_cert"], backend["client_key"])

    def connect(self, timeout):
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def healthy(self):
        """GET /tns/health answers 200 within 2 s."""
        conn = self.connect(2)
        try:
            conn.request("GET", self.base_path + "/tns/health")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def vehicles(self, person_id, timeout, traceparent, on_cancel):
        """The ssbt:data content of the TNS slot for one person (bytes).

        `timeout`: seconds left for the whole call. `on_cancel(close)` registers
        `close` to be run when the relay cancels the call (gRPC's
        `context.add_callback`; False when the call has already ended).
        """
        request = (
            f'<tns:HamtaUppgifter xmlns:tns="{NS_TNS}" xmlns:per="{NS_PERSON}">'
            f"<tns:identifikation><per:sekel>{person_id[:2]}</per:sekel>"
            f"<per:personnummer>{person_id[2:]}</per:personnummer></tns:identifikation></tns:HamtaUppgifter>"
        )
        envelope = (
            f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{NS_SOAP}">'
            f"<soap:Body>{request}</soap:Body></soap:Envelope>"
        ).encode()
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"HamtaUppgifter"'}
        if traceparent:
            headers["traceparent"] = traceparent  # the relay's trace continues
        timeout = min(timeout, self.timeout)
        conn = self.connect(timeout)
        # The whole call, not just each read, ends with the deadline.
        expired = threading.Event()

        def expire():
            expired.set()  # before the shutdown wakes the reading thread
            shutdown(conn)

        late = threading.Timer(timeout, expire)
        if not on_cancel(lambda: shutdown(conn)):
            raise Unavailable("the call was cancelled before it reached the base service")
        late.start()
        try:
            conn.request("POST", self.base_path + "/tns/hamtauppgifter/v1", envelope, headers)
            response = conn.getresponse()
            body = response.read(MAX_ANSWER_BYTES + 1)
        except (OSError, http.client.HTTPException) as e:
            if isinstance(e, TimeoutError) or expired.is_set():
                raise TooLate() from e
            raise Unavailable(f"base service unreachable ({type(e).__name__})") from e
        finally:
            late.cancel()
            conn.close()
        if response.status in (502, 503, 504):
            raise Unavailable(f"base service answered HTTP {response.status}")
        if len(body) > MAX_ANSWER_BYTES:
            raise Unavailable("base service answer too large")
        return payload_of(body, response.status)


def shutdown(conn):
    """Closes a connection another thread may be blocked on (cancellation)."""
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def payload_of(body, status):
    """The TNS slot payload from a SOAP answer, or AgencyError / Unavailable."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise Unavailable(f"base service answered HTTP {status} without a SOAP envelope") from e
    soap_body = root.find(f"{{{NS_SOAP}}}Body")
    answer = soap_body[0] if soap_body is not None and len(soap_body) else None
    if answer is None:
        raise Unavailable(f"base service answered HTTP {status} without a SOAP envelope")
    if answer.tag == f"{{{NS_SOAP}}}Fault":
        # faultstring = "CODE text" (the agency's code first).
        code, _, text = (answer.findtext("faultstring") or "").strip().partition(" ")
        raise AgencyError(code, text or "Bastjänsten svarade med fel")
    if answer.tag != f"{{{NS_TNS}}}HamtaUppgifterResponse":
        raise Unavailable("base service answered something other than HamtaUppgifterResponse")
    if answer.findtext(f"{{{NS_TNS}}}resultat") == "FEL":
        code = answer.findtext(f"{{{NS_TNS}}}felresultat/{{{NS_TNS}}}felkod") or ""
        text = answer.findtext(f"{{{NS_TNS}}}felresultat/{{{NS_TNS}}}feltext") or "Fel hos Transportstyrelsen"
        raise AgencyError(code.strip(), text.strip())
    # The content of <ssbt:data>: the answer's children, each declaring the
    # namespaces it uses (ElementTree writes them on each element).
    return b"".join(ET.tostring(child, encoding="unicode").encode() for child in answer)


# ---------------------------------------------------------------------------
# The contract: Describe, Query, Submit, health, TLS, limits.
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# Planned maintenance of the base service (seed 002 §12.2.3), announced in
# Describe. The file is the SDK's format, re-read on every Describe:
#   [[window]]
#   id = "2026-12-08-db"            # [A-Za-z0-9._-], 1-64 characters
#   start = "2026-12-08T18:00:00Z"  # RFC 3339
#   end = "2026-12-08T20:00:00Z"    # after start, at most 7 days after it
#   sv = "Uppgradering."            # public texts, at most 200 characters
#   en = "Upgrade."
# A file that breaks a rule announces nothing (the rule is logged).
# ---------------------------------------------------------------------------
MAINTENANCE_MAX_BYTES = 64 * 1024
MAINTENANCE_MAX_WINDOWS = 20
MAINTENANCE_MAX_SECONDS = 7 * 24 * 3600
MAINTENANCE_MAX_TEXT = 200


def planned_maintenance(path, now=None):
    """The windows of `path` that have not ended, as (id, start, end, sv, en)."""
    import datetime
    import re

    if not path:
        return []
    file = Path(path)
    try:
        if not file.is_file():
            return []
        if file.stat().st_size > MAINTENANCE_MAX_BYTES:
            raise ValueError("the file is larger than 64 KiB")
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
        if set(doc) - {"window"}:
            raise ValueError("only [[window]] tables are allowed")
        windows = doc.get("window", [])
        if not isinstance(windows, list) or len(windows) > MAINTENANCE_MAX_WINDOWS:
            raise ValueError("at most 20 [[window]] tables")
        now = now or datetime.datetime.now(datetime.timezone.utc)
        out = []
        for w in windows:
            if not isinstance(w, dict) or set(w) - {"id", "start", "end", "sv", "en"}:
                raise ValueError("a window has keys other than id, start, end, sv, en")
            wid, sv, en = w.get("id"), w.get("sv", ""), w.get("en", "")
            if not isinstance(wid, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", wid):
                raise ValueError("a window's id must be 1-64 characters of A-Z a-z 0-9 . _ -")
            start, end = (
                datetime.datetime.fromisoformat(t) if isinstance(t, str) else t
                for t in (w.get("start"), w.get("end"))
            )
            if not all(isinstance(t, datetime.datetime) and t.tzinfo for t in (start, end)):
                raise ValueError(f"window {wid}: start and end must be RFC 3339 times with a zone")
            if not start < end or (end - start).total_seconds() > MAINTENANCE_MAX_SECONDS:
                raise ValueError(f"window {wid}: end must be after start, at most 7 days later")
            if not all(isinstance(t, str) and len(t) <= MAINTENANCE_MAX_TEXT for t in (sv, en)):
                raise ValueError(f"window {wid}: texts are at most 200 characters")
            if end > now:
                fmt = lambda t: t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                out.append((wid, fmt(start), fmt(end), sv, en))
        return out
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as e:
        log("maintenance file refused", reason=str(e))
        return []


def log(message, **fields):
    """One JSON line on stderr. Never pass personal data or payloads here."""
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "INFO", "message": message}
    record.update(fields)
    print(json.dumps(record), file=sys.stderr, flush=True)


def make_servicer(grpc, pb, pb_grpc, service, cfg):
    limits = cfg.get("limits", {})
    slots = threading.BoundedSemaphore(limits.get("max_concurrent", 64))
    queue_wait = limits.get("queue_wait_ms", 200) / 1000
    default_deadline = cfg.get("default_deadline_ms", 10000) / 1000
    allowed = {c.replace(":", "").lower() for c in cfg["tls"].get("allowed_clients", [])}

    def check_client(context):
        """The optional pin: the relay's CN or SHA-256 fingerprint."""
        if not allowed:
            return
        auth = context.auth_context()
        names = {n.decode().lower() for n in auth.get("x509_common_name", [])}
        for pem in auth.get("x509_pem_cert", []):
            names.add(hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.decode())).hexdigest())
        if not names & allowed:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "client certificate not allowed by this adapter")

    class Provider(pb_grpc.ProviderServicer):
        def Describe(self, request, context):
            check_client(context)
            return pb.DescribeReply(
                provider_id="TNS",
                display_name="Transportstyrelsen",
                contract_version=CONTRACT_VERSION,
                adapter_version=ADAPTER_VERSION,
                operations=[pb.OPERATION_QUERY],
                payload_format="ssbtek-v10/TNS",
                planned_maintenance=[
                    pb.PlannedMaintenance(
                        id=wid, starts_at=start, ends_at=end,
                        description_sv=sv, description_en=en,
                    )
                    for (wid, start, end, sv, en) in planned_maintenance(cfg.get("maintenance_file"))
                ],
            )

        def Query(self, request, context):
            check_client(context)
            started = time.monotonic()
            tx = request.transaction_id if len(request.transaction_id) == 36 else ""
            # The relay's deadline (grpc-timeout), or the configured default. The
            # base service gets 5% less (at least 20 ms): the adapter answers
            # DEADLINE_EXCEEDED itself, before the deadline, never late.
            remaining = context.time_remaining()
            budget = default_deadline if remaining is None or remaining > 1e6 else remaining
            budget -= max(budget / 20, 0.02)
            if not slots.acquire(timeout=max(0.0, min(queue_wait, budget))):
                log("query", tx=tx, outcome="rejected_concurrency")
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "adapter at its concurrency limit")
            try:
                outcome, reply = self.ask(request, context, budget - (time.monotonic() - started))
            finally:
                slots.release()
            log("query", tx=tx, outcome=outcome, latency_ms=int((time.monotonic() - started) * 1000))
            if isinstance(reply, tuple):
                context.abort(*reply)
            return reply

        def ask(self, request, context, budget):
            """(outcome label, QueryReply or (status code, message))."""
            if len(request.person_id) != 12 or not request.person_id.isdigit():
                return "invalid_argument", (grpc.StatusCode.INVALID_ARGUMENT, "person id must have 12 digits")
            if budget <= 0:
                return "deadline", (grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed")
            traceparent = dict(context.invocation_metadata()).get("traceparent")
            try:
                payload = service.vehicles(request.person_id, budget, traceparent, context.add_callback)
            except AgencyError as e:
                return "provider_error", pb.QueryReply(error=pb.ProviderError(code=e.code, messages=[e.message]))
            except TooLate:
                return "deadline", (grpc.StatusCode.DEADLINE_EXCEEDED, "base service did not answer in time")
            except Unavailable as e:
                if not context.is_active():  # the relay went away: nobody reads this
                    return "cancelled", (grpc.StatusCode.CANCELLED, "cancelled by the caller")
                return "unavailable", (grpc.StatusCode.UNAVAILABLE, str(e))
            return "data", pb.QueryReply(data=pb.QueryData(format="ssbtek-v10/TNS", payload=payload))

        def Submit(self, request, context):
            check_client(context)
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "not offered by this adapter")

    return Provider()


def watch_health(health_pb2, servicer, service, interval, stop):
    """Polls the base service; grpc.health.v1 says what it saw."""
    last = None
    while not stop.is_set():
        serving = service.healthy()
        if serving != last:
            status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in ("", SERVICE_NAME):
                servicer.set(name, status)
            log("base service health changed", serving=serving)
            last = serving
        stop.wait(interval)


def serve(cfg):
    import grpc  # noqa: PLC0415
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # noqa: PLC0415

    pb, pb_grpc = load_stubs()
    service = TransportstyrelsenService(cfg["backend"])
    max_concurrent = cfg.get("limits", {}).get("max_concurrent", 64)
    # Threads for the limit's calls plus room for health, Describe and the calls
    # that wait for a slot; beyond that gRPC itself answers RESOURCE_EXHAUSTED.
    workers = max_concurrent + 16
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        maximum_concurrent_rpcs=workers,
        options=[("grpc.max_send_message_length", MAX_ANSWER_BYTES + 1024 * 1024)],
    )
    pb_grpc.add_ProviderServicer_to_server(make_servicer(grpc, pb, pb_grpc, service, cfg), server)
    health_servicer = health.HealthServicer()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    tls = cfg["tls"]
    credentials = grpc.ssl_server_credentials(
        [(Path(tls["key"]).read_bytes(), Path(tls["cert"]).read_bytes())],
        root_certificates=Path(tls["client_ca"]).read_bytes(),
        require_client_auth=True,  # mutual TLS: no certificate, no handshake
    )
    host, _, port = cfg["listen"].rpartition(":")
    bound = server.add_secure_port(f"{host}:{port}", credentials)
    if bound == 0:
        sys.exit(f"cannot listen on {cfg['listen']}")
    server.start()
    stop = threading.Event()
    interval = cfg.get("health_interval_ms", 2000) / 1000
    threading.Thread(target=watch_health, args=(health_pb2, health_servicer, service, interval, stop), daemon=True).start()
    print(json.dumps({"listen": f"{host}:{bound}", "admin": None}), flush=True)
    log("adapter listening", addr=f"{host}:{bound}", provider="TNS")

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    log("shutting down: finishing in-flight calls")
    server.stop(cfg.get("shutdown_grace_ms", 15000) / 1000).wait()


def main():
    parser = argparse.ArgumentParser(description="shs-relay provider adapter for Transportstyrelsen (Python)")
    parser.add_argument("--config", "-c", default=os.environ.get("SHS_ADAPTER_CONFIG"), help="the adapter's TOML configuration")
    parser.add_argument("--listen", default=os.environ.get("SHS_ADAPTER_LISTEN"), help="overrides `listen`")
    parser.add_argument("--backend-url", default=os.environ.get("SHS_ADAPTER_BACKEND_URL"), help="overrides `backend.url`")
    parser.add_argument("--check-config", metavar="FILE", help="check a configuration file offline, print every error")
    parser.add_argument("--skip-files", action="store_true", help="with --check-config: do not read the files it names")
    args = parser.parse_args()
    if args.check_config:
        _, errors = check_config(args.check_config, check_files=not args.skip_files)
        if errors:
            print("\n".join(errors), file=sys.stderr)
            return 1
        print(f"{args.check_config}: valid")
        return 0
    if not args.config:
        print("--config FILE is required", file=sys.stderr)
        return 1
    cfg, errors = check_config(args.config)
    if errors:
        print(errors[0], file=sys.stderr)
        return 1
    if args.listen:
        cfg["listen"] = args.listen
    if args.backend_url:
        cfg["backend"]["url"] = args.backend_url
    serve(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
