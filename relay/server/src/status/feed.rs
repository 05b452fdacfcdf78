//! `GET /status/v1/summary.json` and `GET /status/v1/history.atom` on the front.
//!
//! Both pass the one admission step ([`crate::admission::Admitted`] with the way
//! [`StatusFeed`]) and the policy gate for [`Use::Status`] (any agreement in the
//! relay's environment, and no suspension from everything); a refusal is a 403
//! with the rule, counted and audited like every refusal. The body is built
//! from the store only, so every node answers the same bytes for the same
//! facts; its SHA-256 is the strong `ETag`, and `If-None-Match` with it answers
//! 304 without a body.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use relay_store::{ComponentStatus, Incident, StatusBoard, Text};
use serde_json::{Value, json};
use sha2::Digest;

use super::{Component, components};
use crate::Relay;
use crate::admission::{self, Admitted, Way};
use crate::failure::Failure;
use crate::policy::{self, Ask, Use};

/// The status feed as a way in: refusals are plain statuses (403 for the
/// gate's), like the delivery service's.
pub struct StatusFeed;

impl Way for StatusFeed {
    const ROUTE: &'static str = "status";
    fn render(failure: &Failure) -> Response {
        failure.plain_response()
    }
}

/// A maintenance window as the feed shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub id: String,
    /// `agency` (announced by an adapter) or `operator` (the relay's own).
    pub source: &'static str,
    /// Providers whose components it covers.
    pub providers: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub text: Text,
    pub updated_at: DateTime<Utc>,
    /// An Atom entry id (an IRI), stable for the window.
    pub entry_id: String,
}

/// The relay's own planned windows (configuration and admin API) and the
/// agencies' announced ones that end after `not_before`.
pub async fn windows_since(
    relay: &Relay,
    not_before: DateTime<Utc>,
) -> Result<Vec<Window>, relay_store::StateError> {
    use relay_store::SharedState;
    let live = relay.live();
    let all: Vec<String> = live
        .config
        .providers
        .iter()
        .map(|p| p.id.to_string())
        .collect();
    let relay_text = || {
        Text::new(
            "Planerat underhåll av förmedlingstjänsten: alla myndigheters svar kan utebli.",
            "Planned maintenance of the relay: answers from every agency may be missing.",
        )
    };
    let mut out = Vec::new();
    if let Some(a) = &live.config.audit {
        for w in &a.planned_maintenance {
            let key = w.start.timestamp();
            out.push(Window {
                id: format!("relay-{key}"),
                source: "operator",
                providers: all.clone(),
                starts_at: w.start,
                ends_at: w.end,
                text: relay_text(),
                updated_at: w.start,
                entry_id: format!("urn:shs-relay:maintenance:relay:{key}"),
            });
        }
    }
    if let Some(store) = &relay.decisions {
        for p in store.maintenance_windows().await? {
            out.push(Window {
                id: p.id.to_string(),
                source: "operator",
                providers: all.clone(),
                starts_at: p.window.starts_at,
                ends_at: p.window.ends_at,
                text: relay_text(),
                updated_at: p.window.starts_at,
                entry_id: format!("urn:uuid:{}", p.id),
            });
        }
    }
    for w in relay.status.board.announced().await? {
        out.push(Window {
            id: format!("{}:{}", w.provider, w.id),
            source: "agency",
            providers: vec![w.provider.clone()],
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            entry_id: format!("urn:shs-relay:maintenance:{}:{}", w.provider, w.id),
            text: w.text,
            updated_at: w.updated_at,
        });
    }
    out.retain(|w| w.ends_at > not_before);
    out.sort_by(|a, b| (a.starts_at, &a.id).cmp(&(b.starts_at, &b.id)));
    Ok(out)
}

/// Windows that have not ended at `now`.
pub async fn windows(
    relay: &Relay,
    now: DateTime<Utc>,
) -> Result<Vec<Window>, relay_store::StateError> {
    windows_since(relay, now).await
}

/// Everything the feed shows, read from the store at one moment.
pub struct Snapshot {
    pub components: Vec<(Component, Option<relay_store::ComponentState>)>,
    /// Unresolved incidents and those updated within the history.
    pub incidents: Vec<Incident>,
    /// Windows ending within the history or later.
    pub windows: Vec<Window>,
    pub now: DateTime<Utc>,
    pub history_from: DateTime<Utc>,
}

impl Snapshot {
    pub async fn read(relay: &Relay) -> Result<Self, relay_store::StateError> {
        let now = Utc::now();
        let live = relay.live();
        let history_from = now - TimeDelta::days(i64::from(live.config.status.history_days));
        let stored = relay.status.board.components().await?;
        let components = components(&live.config)
            .into_iter()
            .map(|c| {
                let s = stored.iter().find(|s| s.id == c.id).cloned();
                (c, s)
            })
            .collect();
        Ok(Self {
            components,
            incidents: relay.status.board.incidents(history_from).await?,
            windows: windows_since(relay, history_from).await?,
            now,
            history_from,
        })
    }

    /// The time of the latest change the feed shows.
    pub fn updated_at(&self) -> DateTime<Utc> {
        let times = self
            .components
            .iter()
            .filter_map(|(_, s)| s.as_ref().map(|s| s.updated_at))
            .chain(self.incidents.iter().map(|i| i.updated_at))
            .chain(self.windows.iter().map(|w| w.updated_at.min(self.now)));
        times.max().unwrap_or(DateTime::UNIX_EPOCH)
    }

    fn component_name(&self, id: &str) -> String {
        self.components
            .iter()
            .find(|(c, _)| c.id == id)
            .map_or_else(|| id.to_owned(), |(c, _)| c.name.clone())
    }

    fn component_refs(&self, ids: &[String]) -> Value {
        Value::Array(
            ids.iter()
                .map(|id| json!({"id": id, "name": self.component_name(id)}))
                .collect(),
        )
    }

    fn window_components(&self, w: &Window) -> Vec<String> {
        self.components
            .iter()
            .filter(|(c, _)| w.providers.contains(&c.provider))
            .map(|(c, _)| c.id.clone())
            .collect()
    }

    fn window_status(&self, w: &Window) -> &'static str {
        if self.now >= w.ends_at {
            "completed"
        } else if self.now >= w.starts_at {
            "in_progress"
        } else {
            "scheduled"
        }
    }

    /// The overall indicator and its description (Statuspage's words).
    fn indicator(&self) -> (&'static str, &'static str, &'static str) {
        let open: Vec<&Incident> = self
            .incidents
            .iter()
            .filter(|i| i.resolved_at.is_none())
            .collect();
        let statuses: Vec<ComponentStatus> = self
            .components
            .iter()
            .map(|(_, s)| {
                s.as_ref()
                    .map_or(ComponentStatus::Operational, |s| s.status)
            })
            .collect();
        let down = statuses
            .iter()
            .filter(|s| matches!(s, ComponentStatus::MajorOutage))
            .count();
        let impaired = statuses
            .iter()
            .filter(|s| **s != ComponentStatus::Operational)
            .count();
        let worst = open.iter().map(|i| i.impact).max();
        let level = if worst == Some(relay_store::Impact::Critical)
            || (!statuses.is_empty() && down == statuses.len())
        {
            3
        } else if worst == Some(relay_store::Impact::Major) || down >= 2 {
            2
        } else if worst.is_some() || impaired > 0 {
            1
        } else {
            0
        };
        match level {
            3 => ("critical", "Major System Outage", "Omfattande avbrott"),
            2 => ("major", "Partial System Outage", "Delvis avbrott"),
            1 => ("minor", "Minor Service Outage", "Mindre störning"),
            _ => ("none", "All Systems Operational", "Alla tjänster fungerar"),
        }
    }

    /// `summary.json`, shaped like Atlassian Statuspage's.
    pub fn summary(&self, relay: &Relay) -> Value {
        let live = relay.live();
        let config = &live.config;
        let (indicator, description, description_sv) = self.indicator();
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let opt = |t: Option<DateTime<Utc>>| t.map(at);
        let components: Vec<Value> = self
            .components
            .iter()
            .enumerate()
            .map(|(n, (c, s))| {
                json!({
                    "id": c.id,
                    "name": c.name,
                    "product": c.product,
                    "agency": c.provider,
                    "position": n + 1,
                    "status": s.as_ref().map_or(ComponentStatus::Operational, |s| s.status).as_str(),
                    "updated_at": s.as_ref().map(|s| at(s.updated_at)),
                    "last_success_at": s.as_ref().and_then(|s| opt(s.last_success_at)),
                    "last_failure_at": s.as_ref().and_then(|s| opt(s.last_failure_at)),
                })
            })
            .collect();
        let incidents: Vec<Value> = self
            .incidents
            .iter()
            .filter(|i| i.resolved_at.is_none())
            .map(|i| self.incident_json(i))
            .collect();
        let maintenances: Vec<Value> = self
            .windows
            .iter()
            .filter(|w| w.ends_at > self.now)
            .map(|w| {
                json!({
                    "id": w.id,
                    "name": w.text.en,
                    "name_sv": w.text.sv,
                    "status": self.window_status(w),
                    "impact": "maintenance",
                    "source": w.source,
                    "components": self.component_refs(&self.window_components(w)),
                    "scheduled_for": at(w.starts_at),
                    "scheduled_until": at(w.ends_at),
                    "updated_at": at(w.updated_at),
                    "text": {"sv": w.text.sv, "en": w.text.en},
                })
            })
            .collect();
        json!({
            "page": {
                "name": config.status.page_name.clone().unwrap_or_else(|| config.node.name.clone()),
                "environment": config.node.environment.as_str(),
                "time_zone": "Etc/UTC",
                "updated_at": at(self.updated_at()),
            },
            "status": {
                "indicator": indicator,
                "description": description,
                "description_sv": description_sv,
            },
            "components": components,
            "incidents": incidents,
            "scheduled_maintenances": maintenances,
        })
    }

    pub fn incident_json(&self, i: &Incident) -> Value {
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let updates: Vec<Value> = i
            .updates
            .iter()
            .rev()
            .map(|u| {
                json!({
                    "id": u.id.to_string(),
                    "status": u.status.as_str(),
                    "body": u.text.en,
                    "text": {"sv": u.text.sv, "en": u.text.en},
                    "created_at": at(u.created_at),
                })
            })
            .collect();
        json!({
            "id": i.id.to_string(),
            "name": i.name.en,
            "name_sv": i.name.sv,
            "status": i.status.as_str(),
            "impact": i.impact.as_str(),
            "automatic": i.auto_key.is_some(),
            "components": self.component_refs(&i.components),
            "started_at": at(i.started_at),
            "created_at": i.updates.first().map(|u| at(u.created_at)),
            "updated_at": at(i.updated_at),
            "resolved_at": i.resolved_at.map(at),
            "updates": updates,
        })
    }
}

/// The strong entity tag of a body.
pub fn etag(body: &[u8]) -> String {
    let digest = sha2::Sha256::digest(body);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether `If-None-Match` names `tag` (weak comparison, as RFC 9110 says
/// for this header; `*` matches any).
fn not_modified(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag)
}

/// A feed response: 304 when the caller holds this body, else the body, with
/// `ETag` and `Cache-Control` either way.
fn respond(
    relay: &Relay,
    headers: &HeaderMap,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response {
    let tag = etag(&body);
    let max_age = relay.live().config.status.max_age_s;
    let mut response = if not_modified(headers, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = body.into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("private, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    response
}

/// Admission is done; the gate, then the body.
async fn serve(
    relay: &Arc<Relay>,
    admitted: &Admitted<StatusFeed>,
    build: impl FnOnce(&Snapshot, &Relay) -> Vec<u8>,
    headers: &HeaderMap,
    content_type: &'static str,
) -> Response {
    let result = async {
        policy::gate(
            &relay.metrics,
            &relay.live().config,
            &relay.operator,
            &Ask::to(&admitted.caller, Use::Status),
        )?;
        Snapshot::read(relay).await.map_err(|e| {
            tracing::error!(error = %e, "status feed: the store could not be read");
            Failure::relay("the status could not be read; retry later")
        })
    }
    .await;
    match result {
        Ok(snapshot) => {
            relay
                .metrics
                .request(StatusFeed::ROUTE, "answered", admitted.started.elapsed());
            respond(relay, headers, content_type, build(&snapshot, relay))
        }
        Err(failure) => {
            admission::refuse::<StatusFeed>(
                relay,
                Some(&admitted.caller),
                &failure,
                admitted.started,
            )
            .await
        }
    }
}

/// `GET /status/v1/summary.json`.
pub async fn summary(
    State(relay): State<Arc<Relay>>,
    admitted: Admitted<StatusFeed>,
    headers: HeaderMap,
) -> Response {
    serve(
        &relay,
        &admitted,
        |s, r| serde_json::to_vec_pretty(&s.summary(r)).unwrap_or_default(),
        &headers,
        "application/json",
    )
    .await
}

/// `GET /status/v1/history.atom`.
pub async fn history(
    State(relay): State<Arc<Relay>>,
    admitted: Admitted<StatusFeed>,
    headers: HeaderMap,
) -> Response {
    serve(
        &relay,
        &admitted,
        super::atom::render,
        &headers,
        "application/atom+xml; charset=utf-8",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_matches_the_tag_in_a_list_weak_or_strong_and_star() {
        let tag = etag(b"body");
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(not_modified(&h(&tag), &tag));
        assert!(not_modified(&h(&format!("\"x\", W/{tag}")), &tag));
        assert!(not_modified(&h("*"), &tag));
        assert!(!not_modified(&h("\"other\""), &tag));
        assert!(!not_modified(&HeaderMap::new(), &tag));
        assert_ne!(etag(b"body"), etag(b"body2"));
    }
}
