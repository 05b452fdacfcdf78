//! The operators' console on the admin listener: `GET /` is a server-rendered
//! page ([`page`]), `GET /admin/console` the documented JSON behind it. Both
//! sit behind the admin listener's authentication (mutual TLS with operator
//! certificates when `[admin] client_ca` is set, loopback otherwise); the page's
//! forms post to the ordinary admin API with its `X-SHS-Admin` header, so they
//! are protected against cross-site requests the same way `curl` calls are.
//!
//! Nothing here holds personal data: provider ids, organisation numbers of
//! callers (organisations, not persons), counts, times and bounded outcome
//! labels.
//!
//! Layout: [`History`] (requests per minute by outcome, the last hour, fed by
//! [`crate::metrics::Metrics::request`]), [`data`] (one snapshot of everything the
//! page shows), [`page`] (the HTML).

pub mod page;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::Relay;
use crate::metrics::METRICS;

/// Minutes of request history kept (the chart's width).
pub const HISTORY_MINUTES: i64 = 60;

/// Requests per minute by outcome, the last [`HISTORY_MINUTES`] minutes.
#[derive(Default)]
pub struct History {
    minutes: Mutex<VecDeque<(i64, BTreeMap<&'static str, u64>)>>,
}

/// The node's request history (one per process, like [`METRICS`]).
pub static HISTORY: LazyLock<History> = LazyLock::new(History::default);

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

/// The month-to-date service levels, computed from the audit trail at most
/// once a minute (the files are read off the async workers).
#[derive(Default)]
pub struct SlaCache {
    last: tokio::sync::Mutex<Option<(Instant, Value)>>,
}

const SLA_REFRESH: Duration = Duration::from_secs(60);

impl SlaCache {
    async fn get(&self, relay: &Relay) -> Value {
        let mut last = self.last.lock().await;
        if let Some((at, v)) = last.as_ref()
            && at.elapsed() < SLA_REFRESH
        {
            return v.clone();
        }
        let v = month_to_date(relay).await;
        *last = Some((Instant::now(), v.clone()));
        v
    }
}

/// The service-level figures of the month so far, or why there are none.
async fn month_to_date(relay: &Relay) -> Value {
    let live = relay.live();
    let Some(audit) = live.config.audit.as_ref() else {
        return json!({"available": false, "reason": "no [audit] section: nothing is recorded"});
    };
    let dir = audit.dir.clone();
    let config = live.config.sla();
    let now = Utc::now();
    let month = now
        .with_timezone(&chrono_tz::Europe::Stockholm)
        .format("%Y-%m")
        .to_string();
    let report = tokio::task::spawn_blocking(move || {
        relay_audit::run_sla_report_at(
            &[dir],
            &month,
            relay_audit::OutputFormat::Json,
            &config,
            now,
        )
    })
    .await;
    let report = match report {
        Ok(Ok(text)) => serde_json::from_str::<Value>(&text).ok(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "console: the service-level report could not be made");
            None
        }
        Err(_) => None,
    };
    let Some(r) = report else {
        return json!({"available": false, "reason": "the audit trail could not be read (see the relay's log)"});
    };
    let pick = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "available": true,
        "month": pick("month"),
        "period_end": pick("period_end"),
        "requests": pick("requests"),
        "answered_share": pick("answered_share"),
        "answer_times": pick("answer_times"),
        "availability": pick("availability"),
        "reliability": pick("reliability"),
        "incidents": r.get("incidents").and_then(Value::as_array).map_or(0, Vec::len),
    })
}

/// Everything the console shows, as one JSON document (`GET /admin/console`).
pub async fn data(relay: &Arc<Relay>) -> Value {
    let now = Utc::now();
    let mut status = relay.service_levels.status();
    if let Some(o) = status.as_object_mut() {
        o.insert("maintenance".into(), relay.operator.maintenance().into());
        o.insert("in_flight".into(), METRICS.in_flight.get().into());
        o.insert(
            "mailbox".into(),
            if relay.mailbox.is_some() {
                json!({
                    "messages": METRICS.mailbox_messages.get(),
                    "bytes": METRICS.mailbox_bytes.get(),
                    "oldest_age_s": METRICS.mailbox_oldest_age_seconds.get(),
                })
            } else {
                Value::Null
            },
        );
        o.insert(
            "requests_per_minute".into(),
            HISTORY
                .last_hour(now)
                .into_iter()
                .map(|(minute, counts)| json!({"minute": minute.to_rfc3339(), "outcomes": counts}))
                .collect(),
        );
    }
    let planned = crate::decisions::planned(relay).await.unwrap_or_default();
    let (feed, incidents) = match crate::status::feed::Snapshot::read(relay).await {
        Ok(s) => (
            s.summary(relay),
            s.incidents.iter().map(|i| s.incident_json(i)).collect(),
        ),
        Err(_) => (Value::Null, Vec::new()),
    };
    json!({
        "generated_at": now.to_rfc3339(),
        "relay": status,
        "providers": crate::admin::provider_rows(relay).await,
        "service_levels": relay.console.get(relay).await,
        "suspensions": crate::admin::suspension_rows(relay),
        "withdrawals": relay.operator.withdrawals().into_iter()
            .map(|(provider, org)| json!({"provider": provider, "org": org.as_str()}))
            .collect::<Vec<_>>(),
        "planned_maintenance": planned,
        "status_feed": feed,
        "incidents": incidents,
    })
}

/// `GET /admin/console`: the JSON behind the page.
pub async fn json_endpoint(State(relay): State<Arc<Relay>>) -> axum::Json<Value> {
    axum::Json(data(&relay).await)
}

/// `GET /`: the page. Its script runs only with the nonce of this response;
/// nothing is loaded from elsewhere and it may not be framed.
pub async fn page_endpoint(State(relay): State<Arc<Relay>>) -> Response {
    let data = data(&relay).await;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let html = page::render(&data, &nonce);
    (
        [
            (http::header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (http::header::CACHE_CONTROL, "no-store".to_owned()),
            (
                http::header::CONTENT_SECURITY_POLICY,
                format!(
                    "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; \
                     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
                ),
            ),
            (http::header::X_FRAME_OPTIONS, "DENY".to_owned()),
            (http::header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
        html,
    )
        .into_response()
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
