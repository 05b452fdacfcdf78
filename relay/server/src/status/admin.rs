//! The operators' side of the status feed, on the admin listener (the same
//! `X-SHS-Admin` rule and operator identity as every admin call; every change
//! is audited):
//!
//! - `GET /admin/incidents`: incidents over the history, newest first (JSON,
//!   the feed's shape, resolved ones included).
//! - `POST /admin/incidents`: opens an incident by hand; body
//!   `{"name_sv", "name_en", "impact", "components": [...], "text_sv", "text_en"}`.
//! - `POST /admin/incidents/{id}/update`: adds an update; body
//!   `{"status"?: "investigating|identified|monitoring|resolved", "text_sv", "text_en"}`
//!   (one text may be left out: the other is used for both).
//!
//! Without a body the same fields are taken from the query string (the
//! console's forms; `components` comma-separated). Texts are public: at most 2000 characters, and a text with ten or more
//! digits in a row (an organisation or personal number) is refused (400).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use http::StatusCode;
use relay_store::{Change, Impact, IncidentStatus, NewIncident, StatusBoard, Text, Updated};
use serde::Deserialize;

use super::feed::Snapshot;
use super::public_text_ok;
use crate::Relay;
use crate::admin::Operator;
use crate::outcomes::admin_action;

/// The longest operator text, per language.
pub const MAX_TEXT_CHARS: usize = 2000;
/// The largest request body.
const MAX_BODY: usize = 32 * 1024;

fn bad(reason: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, format!("{}\n", reason.into())).into_response()
}

fn store_failed(e: &relay_store::StateError) -> Response {
    tracing::error!(error = %e, "status: the store could not be used");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the store could not be used; retry later\n",
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    status: Option<String>,
    text_sv: Option<String>,
    text_en: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    name_sv: Option<String>,
    name_en: Option<String>,
    impact: Option<String>,
    #[serde(default)]
    components: Vec<String>,
    text_sv: Option<String>,
    text_en: Option<String>,
}

type Query = axum::extract::Query<std::collections::BTreeMap<String, String>>;

/// The JSON body, or without a body the query parameters (the console's
/// forms), `components` comma-separated.
fn parse<T: serde::de::DeserializeOwned>(
    body: &Bytes,
    query: std::collections::BTreeMap<String, String>,
) -> Result<T, Response> {
    if body.len() > MAX_BODY {
        return Err(bad(format!("the body is larger than {MAX_BODY} bytes")));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        let object: serde_json::Map<String, serde_json::Value> = query
            .into_iter()
            .map(|(k, v)| {
                let value = if k == "components" {
                    serde_json::Value::from(
                        v.split(',')
                            .map(str::trim)
                            .filter(|c| !c.is_empty())
                            .collect::<Vec<_>>(),
                    )
                } else {
                    serde_json::Value::from(v)
                };
                (k, value)
            })
            .collect();
        return serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|e| bad(format!("the parameters are not the expected ones: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("the body is not the expected JSON: {e}")))
}

/// A public text in both languages from one or two given, checked.
fn text(sv: Option<String>, en: Option<String>, what: &str) -> Result<Text, Response> {
    let clean = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (sv, en) = match (clean(sv), clean(en)) {
        (Some(sv), Some(en)) => (sv, en),
        (Some(one), None) | (None, Some(one)) => (one.clone(), one),
        (None, None) => return Err(bad(format!("{what}_sv or {what}_en is required"))),
    };
    for (lang, t) in [("sv", &sv), ("en", &en)] {
        public_text_ok(t, MAX_TEXT_CHARS).map_err(|reason| {
            bad(format!(
                "{what}_{lang}: {reason}; the text is shown to every connected party"
            ))
        })?;
    }
    Ok(Text::new(sv, en))
}

/// `GET /admin/incidents`.
pub async fn list(State(relay): State<Arc<Relay>>) -> Response {
    let snapshot = match Snapshot::read(&relay).await {
        Ok(s) => s,
        Err(e) => return store_failed(&e),
    };
    let list: Vec<serde_json::Value> = snapshot
        .incidents
        .iter()
        .map(|i| snapshot.incident_json(i))
        .collect();
    axum::Json(list).into_response()
}

/// `POST /admin/incidents`.
pub async fn open(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    axum::extract::Query(query): Query,
    body: Bytes,
) -> Response {
    let b: OpenBody = match parse(&body, query) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = match text(b.name_sv, b.name_en, "name") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let first = match text(b.text_sv, b.text_en, "text") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let impact = match b.impact.as_deref().map(Impact::parse) {
        None => Impact::Minor,
        Some(Some(i)) => i,
        Some(None) => return bad("impact: none, minor, major or critical"),
    };
    let known: Vec<String> = super::components(&relay.live().config)
        .into_iter()
        .map(|c| c.id)
        .collect();
    if let Some(c) = b.components.iter().find(|c| !known.contains(c)) {
        return bad(format!(
            "components: {c:?} is not one of {}",
            known.join(", ")
        ));
    }
    let now = Utc::now();
    let new = NewIncident {
        auto_key: None,
        name,
        impact,
        components: b.components,
        started_at: now,
        text: first,
    };
    match relay.status.board.open_incident(&new, now).await {
        Ok((incident, _)) => {
            admin_action(&relay, &who, "incident_open", &incident.id.to_string()).await;
            let snapshot = Snapshot::read(&relay).await;
            let body = match snapshot {
                Ok(s) => s.incident_json(&incident),
                Err(_) => serde_json::json!({"id": incident.id.to_string()}),
            };
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(e) => store_failed(&e),
    }
}

/// `POST /admin/incidents/{id}/update`.
pub async fn update(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    Path(id): Path<String>,
    axum::extract::Query(query): Query,
    body: Bytes,
) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return (StatusCode::NOT_FOUND, "no incident with that id\n").into_response();
    };
    let b: UpdateBody = match parse(&body, query) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let status = match b.status.as_deref().map(IncidentStatus::parse) {
        None => None,
        Some(Some(s)) => Some(s),
        Some(None) => return bad("status: investigating, identified, monitoring or resolved"),
    };
    let text = match text(b.text_sv, b.text_en, "text") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let change = Change {
        status,
        text,
        at: Utc::now(),
        add_components: Vec::new(),
    };
    match relay.status.board.update_incident(id, &change).await {
        Ok(Updated::Done(incident)) => {
            let action = if status == Some(IncidentStatus::Resolved) {
                "incident_resolve"
            } else {
                "incident_update"
            };
            admin_action(&relay, &who, action, &id.to_string()).await;
            match Snapshot::read(&relay).await {
                Ok(s) => axum::Json(s.incident_json(&incident)).into_response(),
                Err(e) => store_failed(&e),
            }
        }
        Ok(Updated::NotFound) => {
            (StatusCode::NOT_FOUND, "no incident with that id\n").into_response()
        }
        Ok(Updated::AlreadyResolved) => (
            StatusCode::CONFLICT,
            "the incident is resolved; open a new one instead of reopening it\n",
        )
            .into_response(),
        Err(e) => store_failed(&e),
    }
}
