#!/usr/bin/env bash
# A bounded soak of the whole stack on loopback (a bench, not a test):
#
#   bash benches/soak.sh [MINUTES]      (default 2)
#
# Starts the demo stack (release build), makes the simulator inject 30 % faults
# (errors and hangs) at every agency through its admin endpoint, and for
# MINUTES minutes drives normal SSBTEK traffic with shs-bench (open loop,
# 20 q/s) while other clients, from another organisation, keep stalling
# uploads, sending oversized messages and sending malformed messages. It
# prints the bench report (share answered, percentiles, errors by kind), the
# hostile clients' counts and the relay's peak RSS. Everything targets
# 127.0.0.1 only and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-2}
SECONDS_TOTAL=$((MINUTES * 60))
command -v curl >/dev/null || { echo "soak: needs curl" >&2; exit 1; }
command -v openssl >/dev/null || { echo "soak: needs openssl" >&2; exit 1; }

cargo build --release --bins -q
DIR=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; kill "$DEMO" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"' EXIT
./target/release/shs-relay demo --dir "$DIR/demo" >"$DIR/demo.out" 2>&1 &
DEMO=$!
for _ in $(seq 1 120); do [ -f "$DIR/demo/demo.json" ] && break; sleep 1; done
[ -f "$DIR/demo/demo.json" ] || { echo "soak: the demo did not start" >&2; cat "$DIR/demo.out" >&2; exit 1; }
sleep 2
J="$DIR/demo/demo.json"
py() { python3 -c "import json,sys; d=json.load(open('$J')); print($1)"; }
RELAY=$(py 'd["relay"]["url"]')
CA=$(py 'd["relay"]["ca"]')
SIM_ADMIN=$(py 'd["sim"]["admin"]')
STOCKHOLM_CERT=$(py '[c["cert"] for c in d["clients"] if c["org"]=="2120000142"][0]')
STOCKHOLM_KEY=$(py '[c["key"] for c in d["clients"] if c["org"]=="2120000142"][0]')
RELAY_PID=$(pgrep -f "shs-relay serve --config $DIR/demo" | head -n 1)

END=$(( $(date +%s) + SECONDS_TOTAL ))
curl_as() { curl -s --max-time 10 -o /dev/null -w '%{http_code}\n' --cacert "$CA" --cert "$STOCKHOLM_CERT" --key "$STOCKHOLM_KEY" "$@"; }

# Stalling uploads: headers and a few bytes, then nothing for 30 s.
( n=0; while [ "$(date +%s)" -lt "$END" ]; do
    for _ in 1 2 3 4 5; do
      ( { printf 'POST /shs/rs HTTP/1.1\r\nHost: x\r\nContent-Type: message/rfc822\r\nContent-Length: 1000000\r\n\r\nSubject: SHS'; sleep 30; } \
        | timeout 35 openssl s_client -quiet -connect "${RELAY#https://}" -CAfile "$CA" \
            -cert "$STOCKHOLM_CERT" -key "$STOCKHOLM_KEY" >/dev/null 2>&1 ) &
      n=$((n + 1))
    done
    sleep 5
  done; echo "stalled uploads started: $n" >"$DIR/stalls" ) &
# Oversized (20 MB) and malformed messages.
head -c 20000000 /dev/zero >"$DIR/big"
printf 'Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/xml\r\n\r\n<shs.label><<<\r\n--x--\r\n' >"$DIR/bad"
( while [ "$(date +%s)" -lt "$END" ]; do
    curl_as -X POST -H 'Content-Type: message/rfc822' --data-binary @"$DIR/big" "$RELAY/shs/rs"
    curl_as -X POST -H 'Content-Type: message/rfc822' --data-binary @"$DIR/bad" "$RELAY/shs/rs"
    sleep 0.5
  done | sort | uniq -c >"$DIR/hostile" ) &

# Normal traffic from Sundsvall (the bench's default caller); the faults come
# once its warm-up query has been answered.
./target/release/shs-bench --demo "$DIR/demo" --workload shs --rate 20 --warmup 0 --duration "$SECONDS_TOTAL" >"$DIR/bench" 2>&1 &
BENCH=$!
sleep 3
# 30 % faults at every agency: 20 % errors, 10 % hangs.
SCENARIO=""
for a in AF CSN FK SKV SO TNS MIV; do
  SCENARIO+="[agency.$a]"$'\n'"error_rate = 0.2"$'\n'"hang_rate = 0.1"$'\n\n'
done
curl -fsS -X PUT --data-binary "$SCENARIO" "$SIM_ADMIN/admin/scenario" >/dev/null

wait "$BENCH" || true
# Read the relay's peak RSS now, while it still runs (the stalled uploads
# below may take up to 35 s more to end).
PEAK="unknown"
if [ -n "${RELAY_PID:-}" ] && [ -r "/proc/$RELAY_PID/status" ]; then
  PEAK=$(grep VmHWM "/proc/$RELAY_PID/status" | tr -s ' \t' ' ')
fi
cat "$DIR/bench"
# Wait for the hostile clients only (a bare `wait` would wait for the demo too).
OTHERS=$(jobs -p | grep -v "^$DEMO\$" || true)
[ -z "$OTHERS" ] || wait $OTHERS 2>/dev/null || true

echo "--- hostile clients (HTTP status counts):"
cat "$DIR/hostile" 2>/dev/null || true
cat "$DIR/stalls" 2>/dev/null || true
echo "--- relay peak RSS: $PEAK"
