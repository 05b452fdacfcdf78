//! The console's Parties page (`GET /parties` on the admin listener): the
//! register as a table, server-rendered (maud, escaped by construction) from
//! the same JSON as `GET /admin/parties`, with the same filters as a GET form:
//! state, product, certificate expiring within N days (60 by default in the
//! form's choice), checks missing. No script, no external assets.
//!
//! Elements a browser test can rely on: `#parties tr.party[data-org=ORG]` with
//! `data-expiring="true|false"`, `#filters`, `td.checks-missing`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, html};
use serde_json::Value;

use super::admin::{Filter, filtered};
use crate::Relay;
use crate::config::ProductName;

/// Days ahead a certificate counts as expiring on the page.
pub const EXPIRING_DAYS: i64 = 60;

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f4f5f7}
header{background:#1f3a5f;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:baseline}
header h1{font-size:18px;margin:0} header a{color:#fff}
main{padding:12px 20px}
section{background:#fff;border:1px solid #d8dce2;border-radius:6px;padding:10px 14px;overflow-x:auto;margin-bottom:14px}
table{border-collapse:collapse}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eceef1;white-space:nowrap;vertical-align:top}
th{font-weight:600;color:#4a5564}
.bad{color:#b3261e;font-weight:600}.ok{color:#17692b}
form label{margin-right:12px}
"#;

pub async fn endpoint(State(relay): State<Arc<Relay>>, Query(filter): Query<Filter>) -> Response {
    let (rows, error) = match filtered(&relay, &filter) {
        Ok(rows) => (rows, None),
        Err(e) => (Vec::new(), Some(e.text().to_owned())),
    };
    let now = chrono::Utc::now();
    let soon = now + chrono::TimeDelta::days(EXPIRING_DAYS);
    let sel = |v: &Option<String>, want: &str| v.as_deref() == Some(want);
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "shs-relay: parties" }
                style { (STYLE) }
            }
            body {
                header { h1 { "Connected parties" } a href="/" { "console" } }
                main {
                    section {
                        form #filters method="get" action="/parties" {
                            label { "State " select name="state" {
                                option value="" { "any" }
                                @for s in relay_store::PartyState::ALL {
                                    option value=(s.as_str()) selected[sel(&filter.state, s.as_str())] { (s.as_str()) }
                                }
                            } }
                            label { "Product " select name="product" {
                                option value="" { "any" }
                                @for p in ProductName::ALL.map(ProductName::as_str) {
                                    option value=(p) selected[sel(&filter.product, p)] { (p) }
                                }
                            } }
                            label { input type="checkbox" name="expiring_within_days" value=(EXPIRING_DAYS) checked[filter.expiring_within_days.is_some()];
                                " certificate expiring within " (EXPIRING_DAYS) " days" }
                            label { input type="checkbox" name="checks_missing" value="true" checked[sel(&filter.checks_missing, "true")];
                                " checks missing" }
                            button type="submit" { "Filter" }
                        }
                        @if let Some(e) = &error { p.bad #filter-error { (e) } }
                    }
                    section {
                        table #parties {
                            thead { tr { th { "Organisation" } th { "Name" } th { "Role" } th { "Product" } th { "State" } th { "Since" } th { "Checks" } th { "Checks missing" } th { "Certificate expires" } } }
                            tbody {
                                @for p in &rows {
                                    @let org = p["org"].as_str().unwrap_or_default();
                                    @let expires = p["certificate_expires"].as_str();
                                    @let expiring = expires
                                        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
                                        .is_some_and(|t| t <= soon);
                                    @let renewed = p["certificates"].as_array().is_some_and(|c| c.iter().any(|c| c["renewed"] == Value::Bool(true)));
                                    @let products = p["products"].as_object().cloned().unwrap_or_default();
                                    @if products.is_empty() {
                                        tr.party data-org=(org) data-expiring=(expiring) {
                                            td { (org) } td { (p["name"].as_str().unwrap_or_default()) } td { (p["role"].as_str().unwrap_or_default()) }
                                            td {} td {} td {} td {} td.checks-missing {}
                                            td class=(if expiring { "bad" } else { "" }) { (expires.unwrap_or("-")) @if renewed { " (renewed)" } }
                                        }
                                    }
                                    @for (name, s) in &products {
                                        tr.party data-org=(org) data-product=(name) data-expiring=(expiring) {
                                            td { (org) } td { (p["name"].as_str().unwrap_or_default()) } td { (p["role"].as_str().unwrap_or_default()) }
                                            td { (name) }
                                            td { (s["state"].as_str().unwrap_or_default()) }
                                            td { (s["since"].as_str().unwrap_or("-")) }
                                            td {
                                                @for c in s["checks"].as_array().into_iter().flatten() {
                                                    @let passed = c["passed_at"].as_str();
                                                    span class=(if passed.is_some() { "ok" } else { "bad" }) {
                                                        (c["check"].as_str().unwrap_or_default()) ": " (passed.unwrap_or("not yet"))
                                                    }
                                                    br;
                                                }
                                            }
                                            td.checks-missing {
                                                (s["checks_missing"].as_array().map(|m| m.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default())
                                            }
                                            td class=(if expiring { "bad" } else { "" }) { (expires.unwrap_or("-")) @if renewed { " (renewed)" } }
                                        }
                                    }
                                }
                            }
                        }
                        @if rows.is_empty() { p #no-parties { "No party matches." } }
                    }
                }
            }
        }
    };
    (
        [
            (http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (http::header::CACHE_CONTROL, "no-store"),
            (
                http::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
            (http::header::X_FRAME_OPTIONS, "DENY"),
            (http::header::REFERRER_POLICY, "no-referrer"),
        ],
        html.into_string(),
    )
        .into_response()
}
