//! Service levels, live: the disturbance state and the availability prober.
//!
//! - **Disturbance** (seed 002, 3.8: "available with disturbance" when two or
//!   more providers cannot deliver): every provider call's outcome and every
//!   health check feed a [`relay_audit::DisturbanceTracker`] (a sliding window per
//!   provider, `[disturbance]`); a start or end is logged as an event, shown by
//!   the `shs_relay_disturbance` gauge and `GET /admin/status`, and written to the
//!   audit trail as an incident record. Single coincident errors never make one.
//! - **Prober** (`[probe]`, default every 60 s, in and outside opening hours):
//!   an end-to-end check of what a caller needs, step by step: the front
//!   answers (`front`: with `[probe] client_cert`, a real synchronous SHS ping
//!   over mutual TLS through admission, the gate and the ping product, as any
//!   caller sends it; without, only that it accepts a TCP connection), at
//!   least one provider answers its health check as a
//!   `testaBastjanstInformation` round would (`providers`), the mailbox answers
//!   (`store`). Each probe is a probe record; a run of failed probes is an
//!   unplanned outage record with its start and end ([`relay_audit::OutageDetector`]).
//!
//! Nothing here holds personal data: provider ids, times and outcomes.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::join_all;
use relay_audit::{DisturbanceTracker, OutageDetector, ProbeRecord, ProbeResult, Transition};

use crate::Relay;

/// The live service-level state of one relay node.
pub struct ServiceLevels {
    tracker: Mutex<DisturbanceTracker>,
    detector: Mutex<OutageDetector>,
    last_probe: Mutex<Option<ProbeRecord>>,
}

impl ServiceLevels {
    pub fn new(config: &crate::config::Config) -> Self {
        Self {
            tracker: Mutex::new(DisturbanceTracker::new(config.disturbance.clone())),
            detector: Mutex::new(OutageDetector::new(
                config.probe.failures_for_outage,
                config.probe.gap_intervals,
            )),
            last_probe: Mutex::new(None),
        }
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, DisturbanceTracker> {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The providers failing now (this node's view).
    pub fn failing(&self) -> Vec<String> {
        self.tracker().failing().to_vec()
    }

    /// Whether this node sees a disturbance going on.
    pub fn disturbance_ongoing(&self) -> bool {
        self.tracker().ongoing().is_some()
    }

    /// The state for `GET /admin/status`.
    pub fn status(&self) -> serde_json::Value {
        let tracker = self.tracker();
        let probe = self
            .last_probe
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let unavailable = self
            .detector
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_unavailable();
        serde_json::json!({
            "disturbance": tracker.ongoing(),
            "failing_providers": tracker.failing(),
            "last_probe": probe.map(|p| serde_json::json!({
                "time": p.time.to_rfc3339(),
                "result": p.result.to_string(),
                "latency_ms": p.latency_ms,
            })),
            "unavailable": unavailable,
        })
    }
}

/// One provider call's outcome (the label the pool gives it).
pub async fn provider_call(relay: &Relay, provider: &str, outcome: &'static str) {
    let Ok(outcome) = outcome.parse::<relay_audit::Outcome>() else {
        return;
    };
    match outcome.side() {
        relay_audit::SlotSide::NotAsked => {}
        side => relay
            .status
            .call(provider, side == relay_audit::SlotSide::Relay, Utc::now()),
    }
    let t = relay
        .service_levels
        .tracker()
        .call(provider, outcome, Utc::now());
    transition(relay, t).await;
}

async fn transition(relay: &Relay, t: Option<Transition>) {
    let Some(t) = t else {
        return;
    };
    let record = t.record().clone();
    match &t {
        Transition::Started(_) => {
            relay.metrics.disturbance.set(1);
            tracing::warn!(
                event = "disturbance_started",
                providers = ?record.providers,
                "service available with disturbance: two or more providers cannot deliver"
            );
        }
        Transition::Ended(_) => {
            relay.metrics.disturbance.set(0);
            tracing::info!(
                event = "disturbance_ended",
                providers = ?record.providers,
                "disturbance over"
            );
        }
    }
    match &t {
        Transition::Started(r) => crate::status::disturbance::started(relay, r).await,
        Transition::Ended(r) => crate::status::disturbance::ended(relay, r).await,
    }
    if let Some((log, _)) = &relay.audit
        && let Err(e) = log.record(record).await
    {
        tracing::error!(error = %e, "incident record could not be written");
    }
}

/// Health of every provider, fed to the tracker; how many are serving.
async fn health_round(relay: &Relay, timeout: Duration) -> usize {
    let live = relay.live();
    let ids: Vec<String> = live.providers.ids().map(str::to_owned).collect();
    let checks = ids.iter().map(|id| live.providers.is_serving(id, timeout));
    let results = join_all(checks).await;
    let mut serving = 0;
    for (id, ok) in ids.iter().zip(results) {
        serving += usize::from(ok);
        relay.status.health(id, ok, Utc::now());
        relay
            .metrics
            .provider_up
            .get_or_create(&crate::metrics::ProviderId {
                provider: id.clone(),
            })
            .set(i64::from(ok));
        let t = relay.service_levels.tracker().health(id, ok, Utc::now());
        transition(relay, t).await;
    }
    serving
}

/// The prober and the disturbance timer, until the process ends.
pub async fn run(relay: Arc<Relay>, front: Option<SocketAddr>) {
    // The disturbance tracker's clock; probes keep their own interval, even
    // when it is shorter (a probe late by more than `gap_intervals` intervals
    // would read as the relay down).
    const TICK: Duration = Duration::from_secs(5);
    let mut next_probe = tokio::time::Instant::now();
    loop {
        let interval = relay.live().config.probe.interval_s;
        if interval > 0 && tokio::time::Instant::now() >= next_probe {
            probe(&relay, front, interval).await;
            next_probe = tokio::time::Instant::now() + Duration::from_secs(interval);
        }
        let t = relay.service_levels.tracker().tick(Utc::now());
        transition(&relay, t).await;
        let next_tick = tokio::time::Instant::now() + TICK;
        let wake = if interval > 0 {
            next_tick.min(next_probe)
        } else {
            next_tick
        };
        tokio::time::sleep_until(wake).await;
    }
}

async fn probe(relay: &Relay, front: Option<SocketAddr>, interval_s: u64) {
    let started = Instant::now();
    let time = Utc::now();
    let timeout = Duration::from_millis(relay.live().config.soap.ping_timeout_ms);
    let result = probe_steps(relay, front, timeout).await;
    let record = ProbeRecord {
        time,
        interval_s: u32::try_from(interval_s).unwrap_or(u32::MAX),
        result,
        latency_ms: started.elapsed().as_millis() as u64,
    };
    relay
        .metrics
        .probes
        .get_or_create(&crate::metrics::Reason {
            reason: if record.result == ProbeResult::Ok {
                "ok"
            } else {
                "failed"
            },
        })
        .inc();
    let outage = relay
        .service_levels
        .detector
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .observe(&record);
    *relay
        .service_levels
        .last_probe
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(record.clone());
    if let Some((log, _)) = &relay.audit {
        if let Err(e) = log.record(record).await {
            tracing::error!(error = %e, "probe record could not be written");
        }
        if let Some(o) = outage {
            tracing::warn!(event = "outage_recorded", "an unavailable period ended");
            if let Err(e) = log.record(o.record(Utc::now())).await {
                tracing::error!(error = %e, "outage record could not be written");
            }
        }
    }
}

/// How long the SHS ping round may take: a caller waiting longer than this
/// for a ping has no service.
const PING_ROUND: Duration = Duration::from_secs(10);

async fn probe_steps(relay: &Relay, front: Option<SocketAddr>, timeout: Duration) -> ProbeResult {
    let failed = |step: &str| ProbeResult::Failed(step.to_owned());
    if let Some(addr) = front {
        let addr = if addr.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
        } else {
            addr
        };
        let identity = relay
            .live()
            .config
            .probe
            .client_identity()
            .map(|(c, k)| (c.to_owned(), k.to_owned()));
        let answered = match identity {
            Some((cert, key)) => {
                match tokio::time::timeout(PING_ROUND, shs_ping(relay, addr, &cert, &key)).await {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %format!("{e:#}"), "probe: the SHS ping through the front failed");
                        false
                    }
                    Err(_) => {
                        tracing::warn!(
                            "probe: the SHS ping through the front was not answered in time"
                        );
                        false
                    }
                }
            }
            None => matches!(
                tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
                Ok(Ok(_))
            ),
        };
        if !answered {
            return failed("front");
        }
    }
    if relay.live().providers.ids().next().is_some() && health_round(relay, timeout).await == 0 {
        return failed("providers");
    }
    // The store's own probe (one connection of its own, `SELECT 1`): bounded,
    // and independent of how much the mailbox holds or how busy its pool is.
    if let Some(store) = &relay.mailbox
        && !matches!(tokio::time::timeout(timeout, store.ready()).await, Ok(true))
    {
        return failed("store");
    }
    ProbeResult::Ok
}

/// The SHS ping round: one synchronous SHS ping to the relay's own front
/// (`addr`) over mutual TLS with the prober's certificate, answered through
/// admission, the gate and the ping product as any caller's. Ok when the
/// ping's answer came back; the error says what went wrong (never content).
async fn shs_ping(relay: &Relay, addr: SocketAddr, cert: &Path, key: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use http_body_util::BodyExt;
    use relay_shs::{
        DataPart, PartHeaders, ProductId, SequenceType, ShsMessage, TransferEncoding, TransferType,
    };

    let live = relay.live();
    let config = &live.config;
    let ca = config
        .probe
        .ca
        .as_deref()
        .unwrap_or(&config.front.client_ca);
    let tls = relay_pki::tls::client_config(ca, Some((cert, key)), &[b"http/1.1"])?;
    let der = relay_pki::tls::load_certs(cert)?
        .into_iter()
        .next()
        .context("probe.client_cert holds no certificate")?;
    let from = crate::identity::organisation_of(&config.identity, Some(&der))
        .context("probe.client_cert names no organisation")?;
    let host = config.probe.server_name(&config.front);
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .context("probe.server_name is not a host name")?;

    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .context("connect")?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);

    let label = relay_shs::Label::new(
        from.as_str(),
        Some(config.node.org.as_str()),
        ProductId::Uuid(config.products.ping),
        SequenceType::Request,
        TransferType::Synch,
    );
    let ping = ShsMessage {
        label,
        parts: vec![DataPart {
            headers: PartHeaders {
                mime_type: "text/xml".into(),
                charset: Some("UTF-8".into()),
                transfer_encoding: TransferEncoding::Binary,
                filename: None,
            },
            datapart_type: "txt".into(),
            body: bytes::Bytes::from_static(b"ping"),
        }],
    };
    let request = http::Request::post("/shs/rs")
        .header(http::header::HOST, host)
        .header(http::header::CONTENT_TYPE, "message/rfc822")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            ping.to_bytes().await,
        )))?;
    let response = sender.send_request(request).await;
    let result = async {
        let response = response.context("the request")?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("the reply: {e}"))?
            .to_bytes();
        anyhow::ensure!(
            status == http::StatusCode::OK,
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
        );
        let reply = ShsMessage::parse(&body, None, relay_shs::Limits::default()).await?;
        anyhow::ensure!(
            reply
                .parts
                .iter()
                .any(|p| p.body.as_ref() == crate::products::ping::PING_REPLY.as_bytes()),
            "the reply is not a ping answer"
        );
        Ok(())
    }
    .await;
    connection.abort();
    result
}

/// Readiness: "can this node answer?" Not ready in maintenance, when no
/// provider at all can be reached, when the store is unusable, or when the
/// audit trail cannot be written under `on_failure = "refuse"`; a
/// disturbance (some providers down) keeps the node ready, since callers still
/// get partial answers in time.
pub async fn readiness(relay: &Relay) -> Result<String, String> {
    if relay.operator.maintenance() {
        return Err("maintenance".into());
    }
    if crate::outcomes::audit_unwritable(relay).await {
        return Err("the audit trail cannot be written (on_failure = refuse: answers are refused until it can)".into());
    }
    let timeout = Duration::from_secs(1);
    let configured = relay.live().providers.ids().count();
    let serving = health_round(relay, timeout).await;
    if configured > 0 && serving == 0 {
        return Err(format!("no provider can be reached (0 of {configured})"));
    }
    // Bounded and independent of the mailbox's load: the store's own probe
    // connection, never a count over the messages.
    if let Some(store) = &relay.mailbox
        && !matches!(tokio::time::timeout(timeout, store.ready()).await, Ok(true))
    {
        return Err("the mailbox store does not answer".into());
    }
    let disturbance = relay.service_levels.tracker().ongoing().is_some();
    Ok(format!(
        "ready: {serving} of {configured} providers serving{}",
        if disturbance {
            " (available with disturbance)"
        } else {
            ""
        }
    ))
}
