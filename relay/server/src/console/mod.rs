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
//! Layout: [`data`] (one snapshot of everything the page shows: the relay's
//! [`crate::metrics::Metrics`] and their request history, read from
//! `relay.metrics`), [`page`] (the HTML).

pub mod page;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use crate::Relay;

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
        o.insert("in_flight".into(), relay.metrics.in_flight.get().into());
        o.insert(
            "mailbox".into(),
            if relay.mailbox.is_some() {
                json!({
                    "messages": relay.metrics.mailbox_messages.get(),
                    "bytes": relay.metrics.mailbox_bytes.get(),
                    "oldest_age_s": relay.metrics.mailbox_oldest_age_seconds.get(),
                })
            } else {
                Value::Null
            },
        );
        o.insert(
            "requests_per_minute".into(),
            relay
                .metrics
                .history
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
