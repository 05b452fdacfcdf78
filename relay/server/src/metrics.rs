//! The relay's Prometheus metrics and the console's request history. Labels
//! are bounded: routes, outcomes, SHS error codes, provider ids and
//! handshake-failure reasons; never a transaction id, an organisation number or
//! a person.
//!
//! [`Metrics`] is a value the [`crate::Relay`] holds (`relay.metrics`), not a
//! process global: two relays in one process (tests) count apart. It imports
//! nothing of the relay; the console and the admin listener read it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteOutcome {
    pub route: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Rejection {
    pub route: &'static str,
    /// Who failed: `caller`, `provider` or `relay`.
    pub by: &'static str,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyDecision {
    pub check: &'static str,
    /// `allowed`, or the rule that refused.
    pub decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderOutcome {
    pub provider: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Provider {
    pub provider: &'static str,
}

/// A provider named by its configured id (bounded by the configuration).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderId {
    pub provider: String,
}

/// One certificate or CRL the relay uses: `which` (`front`, `client_ca`,
/// `provider_client`, `provider_ca`, `admin`, `admin_client_ca`, `crl`), the
/// provider whose channel uses it (empty when none), and a short SHA-256
/// fingerprint (never the subject: it may name a municipality or a person).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertificateLabel {
    pub which: &'static str,
    pub provider: String,
    pub fingerprint: String,
}

/// A connected party by organisation number (an organisation, never a person).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrgLabel {
    pub org: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

/// Every metric the relay exports.
pub struct Metrics {
    pub requests: Family<RouteOutcome, Counter>,
    pub request_duration: Family<Route, Histogram>,
    pub rejections: Family<Rejection, Counter>,
    pub policy_decisions: Family<PolicyDecision, Counter>,
    pub provider_calls: Family<ProviderOutcome, Counter>,
    pub provider_duration: Family<Provider, Histogram>,
    pub fanout_width: Histogram,
    pub in_flight: Gauge,
    pub tls_handshake_failures: Family<Reason, Counter>,
    pub mailbox_deletions: Family<Reason, Counter>,
    pub mailbox_messages: Gauge,
    pub mailbox_bytes: Gauge,
    pub mailbox_oldest_age_seconds: Gauge,
    /// ELT submissions by outcome (`receipt` or the refusing rule).
    pub elt_submissions: Family<Reason, Counter>,
    /// ELT refusals by the terms' rules (`rate_limit`, `retry_limit`, ...).
    pub elt_refusals: Family<Reason, Counter>,
    /// 1 while two or more providers cannot deliver (available with disturbance).
    pub disturbance: Gauge,
    /// Prober runs by result (`ok`, `failed`).
    pub probes: Family<Reason, Counter>,
    /// Stored decision records (suspensions, withdrawals, mandates,
    /// maintenance) the last read skipped because they cannot be read.
    pub decisions_unreadable: Gauge,
    /// Unix time of the last successful read of the stored decisions.
    pub decisions_read_timestamp: Gauge,
    /// Audit records lost to a disk error (each one also refused its answer
    /// under `[audit] on_failure = "refuse"`).
    pub audit_write_errors: Counter,
    /// Stored messages left out of a list or scan because this node's key
    /// file lacks their key (`shs_relay_mailbox_missing_key_skips_total`).
    pub mailbox_missing_key_skips: Counter,
    /// SSBTEK requests by what the caller got (`complete`, `partial`,
    /// `nothing_delivered`, `late`, `failed`), whatever the way in.
    pub ssbtek_requests: Family<OutcomeLabel, Counter>,
    /// SSBTEK answer time (buckets at the 7 s and 12 s service levels).
    pub ssbtek_duration: Histogram,
    /// `notAfter` of each certificate and `nextUpdate` of each CRL in use.
    pub certificate_expiry: Family<CertificateLabel, Gauge>,
    /// 1 when the relay's own readiness check (`/readyz`) passes.
    pub ready: Gauge,
    /// 1 when the provider's adapter answers its health check SERVING.
    pub provider_up: Family<ProviderId, Gauge>,
    /// 1 when the store (mailbox and shared state) answers, by engine
    /// (`kind` = `redb` or `postgres`); absent on a node without a store.
    pub store_up: Family<Kind, Gauge>,
    /// The mailbox's `ttl_hours` in seconds (for the near-TTL alert).
    pub mailbox_ttl_seconds: Gauge,
    /// When each connected party's newest client certificate expires, by
    /// organisation number; in its own registry, exported on the admin
    /// listener's `/metrics` only ([`Metrics::encode_with_parties`]).
    pub party_certificate_expiry: Family<OrgLabel, Gauge>,
    /// Requests per minute by outcome, the last hour (the console's chart).
    pub history: History,
    registry: Registry,
    parties_registry: Registry,
}

fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

/// Buckets with edges at the terms' 7 s (p90) and 12 s (deadline) targets, so
/// the share answered within 7 s is exact rather than interpolated.
fn service_level_buckets() -> Histogram {
    Histogram::new([
        0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 12.0, 20.0, 30.0, 60.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `shs_relay` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("shs_relay");
        let requests = Family::<RouteOutcome, Counter>::default();
        let request_duration = Family::<Route, Histogram>::new_with_constructor(latency_buckets);
        let rejections = Family::<Rejection, Counter>::default();
        let policy_decisions = Family::<PolicyDecision, Counter>::default();
        let provider_calls = Family::<ProviderOutcome, Counter>::default();
        let provider_duration =
            Family::<Provider, Histogram>::new_with_constructor(latency_buckets);
        let fanout_width = Histogram::new([1.0, 2.0, 4.0, 7.0, 14.0, 28.0, 49.0, 70.0]);
        let in_flight = Gauge::default();
        let tls_handshake_failures = Family::<Reason, Counter>::default();
        let mailbox_deletions = Family::<Reason, Counter>::default();
        let mailbox_messages = Gauge::default();
        let mailbox_bytes = Gauge::default();
        let mailbox_oldest_age_seconds = Gauge::default();
        let build = Family::<Vec<(String, String)>, Gauge>::default();
        build
            .get_or_create(&vec![("version".into(), env!("CARGO_PKG_VERSION").into())])
            .set(1);
        registry.register(
            "requests",
            "Requests by route and outcome",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Request latency by route",
            request_duration.clone(),
        );
        registry.register(
            "rejections",
            "Refused or failed requests by route, who failed (caller, provider, relay) and code",
            rejections.clone(),
        );
        registry.register(
            "policy_decisions",
            "Decisions of the policy gate by check and outcome (allowed or the refusing rule)",
            policy_decisions.clone(),
        );
        registry.register(
            "provider_calls",
            "Provider calls by provider and outcome",
            provider_calls.clone(),
        );
        registry.register(
            "provider_call_duration_seconds",
            "Provider call latency",
            provider_duration.clone(),
        );
        registry.register(
            "fanout_width",
            "Provider calls per request",
            fanout_width.clone(),
        );
        registry.register("in_flight", "Requests being processed", in_flight.clone());
        registry.register(
            "tls_handshake_failures",
            "Refused TLS handshakes by reason",
            tls_handshake_failures.clone(),
        );
        registry.register(
            "mailbox_deletions",
            "Mailbox deletions by reason (acknowledged, expired, rejected, operator)",
            mailbox_deletions.clone(),
        );
        registry.register(
            "mailbox_messages",
            "Messages in the mailbox",
            mailbox_messages.clone(),
        );
        registry.register(
            "mailbox_bytes",
            "Bytes in the mailbox",
            mailbox_bytes.clone(),
        );
        registry.register(
            "mailbox_oldest_age_seconds",
            "Age of the oldest message in the mailbox",
            mailbox_oldest_age_seconds.clone(),
        );
        let elt_submissions = Family::<Reason, Counter>::default();
        let elt_refusals = Family::<Reason, Counter>::default();
        registry.register(
            "elt_submissions",
            "ELT time reports by outcome (receipt, or the rule or check that refused them)",
            elt_submissions.clone(),
        );
        registry.register(
        "elt_refusals",
        "ELT time reports refused by a rule of the terms (rate_limit, retry_limit, one_report, environment, suspended_vendor, suspended_anordnare, no_agreement)",
        elt_refusals.clone(),
    );
        let disturbance = Gauge::default();
        let probes = Family::<Reason, Counter>::default();
        registry.register(
        "disturbance",
        "1 while the service is available with disturbance (two or more providers cannot deliver), else 0",
        disturbance.clone(),
    );
        registry.register(
            "probes",
            "Runs of the built-in availability prober by result",
            probes.clone(),
        );
        let decisions_unreadable = Gauge::default();
        let decisions_read_timestamp = Gauge::default();
        registry.register(
        "decisions_unreadable_records",
        "Stored decision records (suspensions, withdrawals, ELT mandates, maintenance) the last read skipped because they cannot be read",
        decisions_unreadable.clone(),
    );
        registry.register(
            "decisions_read_timestamp_seconds",
            "Unix time of the last successful read of the stored decisions",
            decisions_read_timestamp.clone(),
        );
        let audit_write_errors = Counter::default();
        registry.register(
        "audit_write_errors",
        "Audit records that could not be written and fsynced (disk full, read-only or failing); with on_failure = refuse their requests were refused",
        audit_write_errors.clone(),
    );
        let mailbox_missing_key_skips = Counter::default();
        registry.register(
            "mailbox_missing_key_skips",
            "Stored messages left out of a list or scan because this node's key file lacks their key-encryption key",
            mailbox_missing_key_skips.clone(),
        );
        let ssbtek_requests = Family::<OutcomeLabel, Counter>::default();
        let ssbtek_duration = service_level_buckets();
        let certificate_expiry = Family::<CertificateLabel, Gauge>::default();
        let ready = Gauge::default();
        let provider_up = Family::<ProviderId, Gauge>::default();
        let store_up = Family::<Kind, Gauge>::default();
        let mailbox_ttl_seconds = Gauge::default();
        registry.register(
        "ssbtek_requests",
        "SSBTEK requests by what the caller got: complete, partial, nothing_delivered, late, failed (the relay's fault; refusals that are the caller's are not counted)",
        ssbtek_requests.clone(),
    );
        registry.register(
        "ssbtek_answer_seconds",
        "SSBTEK answer time less the allowance of each person beyond the first (1.5 s by default), so the 7 s bucket counts answers within the 7 s target",
        ssbtek_duration.clone(),
    );
        registry.register(
        "certificate_expiry_timestamp_seconds",
        "When each certificate (notAfter) or CRL (nextUpdate) the relay uses runs out, in Unix seconds; read at start and on every reload",
        certificate_expiry.clone(),
    );
        registry.register(
            "ready",
            "1 when the node's readiness check (/readyz) passes, else 0",
            ready.clone(),
        );
        registry.register(
        "provider_up",
        "1 when the provider's adapter answers its health check SERVING (adapter and base service up), else 0",
        provider_up.clone(),
    );
        registry.register(
            "store_up",
            "1 when the store (mailbox and shared state) answers within 2 s, else 0; by engine",
            store_up.clone(),
        );
        registry.register(
            "mailbox_ttl_seconds",
            "The mailbox's message time to live (mailbox.ttl_hours) in seconds",
            mailbox_ttl_seconds.clone(),
        );
        registry.register("build_info", "Relay version", build);
        let mut parties_registry = Registry::with_prefix("shs_relay");
        let party_certificate_expiry = Family::<OrgLabel, Gauge>::default();
        parties_registry.register(
        "party_certificate_expiry_timestamp_seconds",
        "When each connected party's newest client certificate expires (Unix time), by organisation number",
        party_certificate_expiry.clone(),
    );
        Metrics {
            requests,
            request_duration,
            rejections,
            policy_decisions,
            provider_calls,
            provider_duration,
            fanout_width,
            in_flight,
            tls_handshake_failures,
            mailbox_deletions,
            mailbox_messages,
            mailbox_bytes,
            mailbox_oldest_age_seconds,
            elt_submissions,
            elt_refusals,
            disturbance,
            probes,
            decisions_unreadable,
            decisions_read_timestamp,
            audit_write_errors,
            mailbox_missing_key_skips,
            ssbtek_requests,
            ssbtek_duration,
            certificate_expiry,
            ready,
            provider_up,
            store_up,
            mailbox_ttl_seconds,
            history: History::default(),
            registry,
            parties_registry,
            party_certificate_expiry,
        }
    }

    /// One request answered or refused by its way in: counted, timed and put
    /// in the console's history.
    pub fn request(&self, route: &'static str, outcome: &'static str, took: Duration) {
        self.history.request_at(outcome, Utc::now());
        self.requests
            .get_or_create(&RouteOutcome { route, outcome })
            .inc();
        self.request_duration
            .get_or_create(&Route { route })
            .observe(took.as_secs_f64());
    }

    /// A refused or failed request: the way in, who failed, the bounded code.
    pub fn refusal(&self, route: &'static str, by: &'static str, code: &'static str) {
        self.rejections
            .get_or_create(&Rejection { route, by, code })
            .inc();
    }

    pub fn policy_decision(&self, check: &'static str, decision: &'static str) {
        self.policy_decisions
            .get_or_create(&PolicyDecision { check, decision })
            .inc();
    }

    pub fn provider_call(&self, provider: &'static str, outcome: &'static str, took: Duration) {
        self.provider_calls
            .get_or_create(&ProviderOutcome { provider, outcome })
            .inc();
        self.provider_duration
            .get_or_create(&Provider { provider })
            .observe(took.as_secs_f64());
    }

    /// A mailbox deletion: counted, and logged as an event (tx.id and reason only).
    pub fn deletion(&self, tx_id: &str, reason: &'static str) {
        self.mailbox_deletions
            .get_or_create(&Reason { reason })
            .inc();
        tracing::info!(event = "deletion", tx = %tx_id, reason, "message deleted");
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// As [`Metrics::encode`], with the party metrics added before its `# EOF`
    /// (the admin listener's `/metrics`).
    pub fn encode_with_parties(&self) -> String {
        // The mailbox engines count the messages they leave out for a missing
        // key (`relay_mailbox::ring`); the counter catches up at each scrape.
        let skipped = relay_mailbox::ring::missing_key_skips();
        let counted = self.mailbox_missing_key_skips.get();
        if skipped > counted {
            self.mailbox_missing_key_skips.inc_by(skipped - counted);
        }
        let mut text = self.encode();
        if text.ends_with("# EOF\n") {
            text.truncate(text.len() - "# EOF\n".len());
        }
        let _ =
            prometheus_client::encoding::text::encode_registry(&mut text, &self.parties_registry);
        text.push_str("# EOF\n");
        text
    }
}

/// Minutes of request history kept (the chart's width).
pub const HISTORY_MINUTES: i64 = 60;

/// Requests per minute by outcome, the last [`HISTORY_MINUTES`] minutes: what
/// the console's chart shows, fed by [`Metrics::request`].
#[derive(Default)]
pub struct History {
    minutes: Mutex<VecDeque<(i64, BTreeMap<&'static str, u64>)>>,
}

impl History {
    /// Counts one request with `outcome` (a bounded label) at `now`.
    pub fn request_at(&self, outcome: &'static str, now: DateTime<Utc>) {
        let minute = now.timestamp().div_euclid(60);
        let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        match minutes.back_mut() {
            Some((m, counts)) if *m == minute => *counts.entry(outcome).or_default() += 1,
            // A clock step backwards counts into the newest minute.
            Some((m, counts)) if *m > minute => *counts.entry(outcome).or_default() += 1,
            _ => minutes.push_back((minute, BTreeMap::from([(outcome, 1)]))),
        }
        while minutes
            .front()
            .is_some_and(|(m, _)| *m <= minute - HISTORY_MINUTES)
        {
            minutes.pop_front();
        }
    }

    /// The last [`HISTORY_MINUTES`] minutes up to `now`, oldest first, every
    /// minute present (empty ones with no counts).
    pub fn last_hour(
        &self,
        now: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, BTreeMap<&'static str, u64>)> {
        let newest = now.timestamp().div_euclid(60);
        let minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        (newest - HISTORY_MINUTES + 1..=newest)
            .map(|m| {
                let counts = minutes
                    .iter()
                    .find(|(k, _)| *k == m)
                    .map(|(_, c)| c.clone())
                    .unwrap_or_default();
                (DateTime::from_timestamp(m * 60, 0).unwrap_or(now), counts)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_history_keeps_one_hour_by_minute_and_fills_the_gaps() {
        let h = History::default();
        let t0 = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 10).unwrap();
        h.request_at("answered", t0);
        h.request_at("answered", t0 + chrono::Duration::seconds(20));
        h.request_at("refused", t0 + chrono::Duration::seconds(30));
        h.request_at("answered", t0 + chrono::Duration::minutes(2));
        let hour = h.last_hour(t0 + chrono::Duration::minutes(2));
        assert_eq!(hour.len(), 60);
        let last = &hour[59];
        assert_eq!(last.1.get("answered"), Some(&1));
        assert!(hour[58].1.is_empty(), "a quiet minute is empty");
        assert_eq!(hour[57].1.get("answered"), Some(&2));
        assert_eq!(hour[57].1.get("refused"), Some(&1));
        // An hour later the first minutes are gone.
        h.request_at("overloaded", t0 + chrono::Duration::minutes(61));
        let hour = h.last_hour(t0 + chrono::Duration::minutes(61));
        let total: u64 = hour.iter().flat_map(|(_, c)| c.values()).sum();
        assert_eq!(total, 2, "only the minute-2 and minute-61 requests remain");
    }
}
