//! The admin listener (separate address, loopback by default; plain HTTP, or
//! mutual TLS with operator certificates when `[admin] client_ca` is set):
//! `/metrics` (Prometheus), `/livez`, `/readyz` (ready = configuration loaded, not
//! in maintenance, and at least `min_healthy_providers` adapters SERVING), and the
//! maintenance switch that drains the node from a load balancer; the operators'
//! console at `/` and its JSON at `/admin/console` ([`crate::console`]).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::future::join_all;
use http::StatusCode;

use crate::Relay;
use crate::identity::PeerCert;
use crate::metrics::METRICS;

/// The header every state-changing admin call must carry (any non-empty
/// value). A web page in an operator's browser cannot send it cross-site
/// without a CORS preflight, which this listener never grants, so a page cannot
/// trigger a suspension, a withdrawal, maintenance or a reload.
pub const ADMIN_REQUEST_HEADER: &str = "X-SHS-Admin";

/// Refuses a state-changing call without [`ADMIN_REQUEST_HEADER`], or from a
/// page of another origin.
async fn non_simple_only(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let changes = !matches!(*req.method(), http::Method::GET | http::Method::HEAD);
    let marked = req
        .headers()
        .get(ADMIN_REQUEST_HEADER)
        .is_some_and(|v| !v.is_empty());
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site");
    if changes && (!marked || cross_site) {
        return (
            StatusCode::FORBIDDEN,
            format!(
                "state-changing admin calls need the {ADMIN_REQUEST_HEADER} header (e.g. `curl -X POST -H '{ADMIN_REQUEST_HEADER}: 1' ...`) and are never taken from another site's page\n"
            ),
        )
            .into_response();
    }
    next.run(req).await
}

pub fn router(relay: Arc<Relay>) -> Router {
    router_with(relay, Router::new())
}

/// The admin router plus `more` routes behind the same admission (the
/// `Host` check, the non-simple-request rule). Modules whose handlers use
/// [`Operator`] and [`audit_admin`] hand their routes in from the crate root
/// (`keys::admin`), so this module need not import them.
pub fn router_with(relay: Arc<Relay>, more: Router<Arc<Relay>>) -> Router {
    routes(relay.clone(), more)
        .layer(axum::middleware::from_fn(non_simple_only))
        .layer(axum::middleware::from_fn_with_state(relay, named_host_only))
}

/// Refuses (403) a request whose `Host` (or HTTP/2 `:authority`) is not one
/// of the listener's names ([`crate::config::Admin::allows_host`]: loopback,
/// the listen address, `[admin] allowed_hosts`). Kept apart from every other
/// admin check: it is the defence against DNS rebinding, where a page's own
/// name is made to point at a tunnelled admin port. `/livez` and `/readyz`
/// (a word of health, no data, no action) answer whatever the `Host`, so a
/// load balancer's or Kubernetes' probe by IP needs no configuration.
async fn named_host_only(
    State(relay): State<Arc<Relay>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
    let probe = matches!(req.uri().path(), "/livez" | "/readyz");
    let allowed = probe
        || match (&relay.live().config.admin, host) {
            (Some(admin), Some(host)) => admin.allows_host(&host),
            // No [admin] section: nothing serves this router but tests. No Host
            // at all (HTTP/1.0, in-process callers): a browser always sends
            // one, so a rebinding page cannot be among them.
            (None, _) | (_, None) => true,
        };
    if !allowed {
        METRICS
            .rejections
            .get_or_create(&crate::metrics::Rejection {
                route: "admin",
                by: "caller",
                code: "foreign_host",
            })
            .inc();
        return (
            StatusCode::FORBIDDEN,
            "this Host is not a name of the admin listener (loopback, its listen address, or [admin] allowed_hosts)\n",
        )
            .into_response();
    }
    next.run(req).await
}

fn routes(relay: Arc<Relay>, more: Router<Arc<Relay>>) -> Router {
    more.route(
        "/metrics",
        get(|| async { crate::parties::certificates::with_party_metrics(METRICS.encode()) }),
    )
    .route("/livez", get(|| async { "ok\n" }))
    .route("/readyz", get(readyz))
    .route("/", get(crate::console::page_endpoint))
    .route("/admin/console", get(crate::console::json_endpoint))
    .route("/admin/status", get(status))
    .route("/admin/maintenance", get(maintenance_state))
    .route(
        "/admin/maintenance/on",
        post(|s, o| set_maintenance(s, o, true)),
    )
    .route(
        "/admin/maintenance/off",
        post(|s, o| set_maintenance(s, o, false)),
    )
    .route("/admin/suspensions", get(suspensions))
    .route("/admin/maintenance/plan", post(plan_maintenance))
    .route("/admin/maintenance/planned", get(planned_maintenance))
    .route("/admin/suspend", post(|s, h, q| suspension(s, h, q, true)))
    .route("/admin/resume", post(|s, h, q| suspension(s, h, q, false)))
    .route("/admin/withdraw", post(|s, h, q| withdrawal(s, h, q, true)))
    .route("/admin/restore", post(|s, h, q| withdrawal(s, h, q, false)))
    .route("/admin/providers", get(providers))
    .route(
        "/admin/elt/suspend-anordnare",
        post(|s, h, q| anordnare(s, h, q, true)),
    )
    .route(
        "/admin/elt/resume-anordnare",
        post(|s, h, q| anordnare(s, h, q, false)),
    )
    .route("/admin/elt/suspended-anordnare", get(suspended_anordnare))
    .route("/admin/elt/mandates", get(mandates))
    .route(
        "/admin/elt/grant-mandate",
        post(|s, h, q| mandate(s, h, q, true)),
    )
    .route(
        "/admin/elt/revoke-mandate",
        post(|s, h, q| mandate(s, h, q, false)),
    )
    .route("/admin/reload", post(reload))
    .route(
        "/admin/incidents",
        get(crate::status::admin::list).post(crate::status::admin::open),
    )
    .route(
        "/admin/incidents/{id}/update",
        post(crate::status::admin::update),
    )
    .merge(crate::parties::admin::routes())
    .with_state(relay)
}

/// Who did an admin action, as the audit trail records it: on a mutual-TLS
/// admin listener (`[admin] client_ca`), the authenticated operator
/// certificate's subject CN; on a plain one (which is loopback only),
/// `loopback`. The `X-Operator` header is kept only as a note beside it
/// (`loopback (X-Operator: eva)`): anyone can write it, so it names no one.
pub struct Operator(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Operator {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let cert = parts.extensions.get::<PeerCert>().map(|p| p.0.as_slice());
        Ok(Self(operator_of(cert, &parts.headers)))
    }
}

fn operator_of(cert: Option<&[u8]>, headers: &http::HeaderMap) -> String {
    let header = headers
        .get("X-Operator")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 100);
    let Some(der) = cert else {
        return match header {
            Some(h) => format!("loopback (X-Operator: {h})"),
            None => "loopback".to_owned(),
        };
    };
    // The handshake verified the chain; a certificate without a CN is still
    // an operator of that CA, named by its fingerprint.
    let cn = relay_pki::identity::PeerSubject::from_der(der).map(|s| {
        s.common_name
            .filter(|cn| !cn.is_empty())
            .unwrap_or_else(|| format!("sha256:{}", s.sha256_fingerprint))
    });
    let cn = cn.unwrap_or_else(|| "unparseable-certificate".to_owned());
    match header {
        Some(h) if h != cn => format!("{cn} (X-Operator: {h})"),
        _ => cn,
    }
}

/// Writes an admin action to the audit trail (for callers outside this module).
pub async fn audit_admin(relay: &Relay, who: &str, action: &str, target: &str) {
    record(relay, who, action, target).await;
}

/// Writes an admin action to the audit trail (when configured) and the log.
async fn record(relay: &Relay, who: &str, action: &str, target: &str) {
    tracing::warn!(event = "admin", who, action, target, "admin action");
    if let Some((log, _)) = &relay.audit {
        let rec = relay_audit::AdminRecord {
            time: chrono::Utc::now(),
            who: who.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
        };
        if let Err(e) = log.record(rec).await {
            tracing::error!(error = %e, "admin action could not be audited");
        }
    }
}

type Params = axum::extract::Query<std::collections::BTreeMap<String, String>>;

/// The refusal of an admin call with a bad parameter: 400, naming the
/// parameter and what it must be. Nothing was stored.
struct BadParams(String);

impl IntoResponse for BadParams {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            format!("{}; nothing was changed\n", self.0),
        )
            .into_response()
    }
}

/// The organisation number in parameter `key`. An invalid one is named by the
/// parameter and the rule it breaks, never repeated (it could be a
/// personnummer typed in the wrong field).
fn org_named(
    q: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> Result<relay_ident::Organisationsnummer, BadParams> {
    let value = q
        .get(key)
        .ok_or_else(|| BadParams(format!("{key}=ORGANISATIONSNUMMER is required")))?;
    relay_ident::Organisationsnummer::parse(value)
        .map_err(|e| BadParams(format!("{key}: not a valid organisationsnummer: {e}")))
}

fn org_param(
    q: &std::collections::BTreeMap<String, String>,
) -> Result<relay_ident::Organisationsnummer, BadParams> {
    org_named(q, "org")
}

/// `product`: absent is every product; otherwise one of the products this
/// relay's configuration offers, by its exact name.
fn product_param(
    relay: &Relay,
    q: &std::collections::BTreeMap<String, String>,
) -> Result<crate::operator::Scope, BadParams> {
    let Some(name) = q.get("product") else {
        return Ok(crate::operator::Scope::All);
    };
    let offered = relay.live().config.products.offered();
    let names = offered
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if name.is_empty() {
        return Err(BadParams(format!(
            "product: empty; name one of {names}, or leave product out to suspend every product"
        )));
    }
    crate::config::ProductName::parse(name)
        .filter(|p| offered.contains(p))
        .map(crate::operator::Scope::Product)
        .ok_or_else(|| {
            BadParams(format!(
                "product: {:?} is not a product of this relay; one of {names} (lower case)",
                relay_store::state::printable(name)
            ))
        })
}

/// `POST /admin/suspend?org=ORG[&product=ssbtek]` and `/admin/resume?...`.
async fn suspension(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    axum::extract::Query(q): Params,
    on: bool,
) -> Response {
    let org = match org_param(&q) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let scope = match product_param(&relay, &q) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let target = match &scope {
        crate::operator::Scope::All => format!("{org}/all"),
        crate::operator::Scope::Product(p) => format!("{org}/{p}"),
    };
    if let Err(r) = crate::decisions::suspension(&relay, org, &scope, on).await {
        return r;
    }
    if on {
        relay.operator.suspend(org, scope);
    } else {
        relay.operator.resume(&org, &scope);
    }
    let action = if on { "suspend" } else { "resume" };
    record(&relay, &who, action, &target).await;
    format!("{action}: {target}\n").into_response()
}

async fn suspensions(State(relay): State<Arc<Relay>>) -> axum::Json<Vec<serde_json::Value>> {
    axum::Json(suspension_rows(&relay))
}

/// The suspensions in force, as `GET /admin/suspensions` and the console list them.
pub fn suspension_rows(relay: &Relay) -> Vec<serde_json::Value> {
    relay
        .operator
        .suspensions()
        .into_iter()
        .map(|(org, scope)| {
            serde_json::json!({
                "org": org.as_str(),
                "product": match scope {
                    crate::operator::Scope::All => "all",
                    crate::operator::Scope::Product(p) => p.as_str(),
                }
            })
        })
        .collect()
}

/// `POST /admin/elt/suspend-anordnare?org=ORG` and `/admin/elt/resume-anordnare?org=ORG`:
/// shuts an ELT assistance company off (its reports are refused from any
/// vendor) or lets it in again, with immediate effect.
async fn anordnare(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    axum::extract::Query(q): Params,
    on: bool,
) -> Response {
    let org = match org_param(&q) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = crate::decisions::anordnare(&relay, org, on).await {
        return r;
    }
    if on {
        relay.operator.suspend_anordnare(org);
    } else {
        relay.operator.resume_anordnare(&org);
    }
    let action = if on {
        "elt-suspend-anordnare"
    } else {
        "elt-resume-anordnare"
    };
    record(&relay, &who, action, org.as_str()).await;
    format!("{action}: {org}\n").into_response()
}

/// `GET /admin/elt/suspended-anordnare`: suspended assistance companies, by
/// admin action and by configuration.
async fn suspended_anordnare(State(relay): State<Arc<Relay>>) -> axum::Json<serde_json::Value> {
    let configured: Vec<String> = relay
        .live()
        .config
        .elt
        .as_ref()
        .map(|e| {
            e.suspended_anordnare
                .iter()
                .map(|o| o.as_str().to_owned())
                .collect()
        })
        .unwrap_or_default();
    axum::Json(serde_json::json!({
        "admin": relay.operator.suspended_anordnare().iter().map(|o| o.as_str().to_owned()).collect::<Vec<_>>(),
        "config": configured,
    }))
}

/// `POST /admin/elt/grant-mandate?vendor=ORG&anordnare=ORG` and
/// `/admin/elt/revoke-mandate?...`: lets a system vendor submit time reports
/// for an assistance company, or stops it (also a mandate from configuration).
/// Stored before the answer; in force at every node within a second.
async fn mandate(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    axum::extract::Query(q): Params,
    on: bool,
) -> Response {
    let (vendor, anordnare) = match (org_named(&q, "vendor"), org_named(&q, "anordnare")) {
        (Ok(v), Ok(a)) => (v, a),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    if relay.live().config.elt.is_none() {
        return (StatusCode::NOT_FOUND, "ELT is not offered by this relay\n").into_response();
    }
    let action = if on {
        "elt-grant-mandate"
    } else {
        "elt-revoke-mandate"
    };
    let target = format!("{vendor}/{anordnare}");
    let decision = relay_store::Mandate {
        vendor,
        anordnare,
        granted: on,
    };
    if let Err(r) = crate::decisions::mandate(&relay, decision).await {
        return r;
    }
    relay.elt_limiters.mandates.apply(decision);
    record(&relay, &who, action, &target).await;
    format!("{action}: {target}\n").into_response()
}

/// `GET /admin/elt/mandates`: every mandate in force, from configuration or
/// the admin API.
async fn mandates(State(relay): State<Arc<Relay>>) -> axum::Json<serde_json::Value> {
    let live = relay.live();
    let list = live
        .config
        .elt
        .as_ref()
        .map(|elt| relay.elt_limiters.mandates.list(elt))
        .unwrap_or_default();
    axum::Json(serde_json::json!(list))
}

/// `POST /admin/withdraw?provider=FK&org=ORG` and `/admin/restore?...`: a provider
/// stops (or resumes) serving a municipality, without a restart.
async fn withdrawal(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    axum::extract::Query(q): Params,
    on: bool,
) -> Response {
    let org = match org_param(&q) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let live = relay.live();
    let Some(provider) = q.get("provider").filter(|p| live.providers.contains(p)) else {
        let ids = live.providers.ids().collect::<Vec<_>>().join(", ");
        return BadParams(match q.get("provider") {
            None => format!("provider=ID is required, one of {ids}"),
            Some(p) => format!(
                "provider: {:?} is not a configured provider; one of {ids}",
                relay_store::state::printable(p)
            ),
        })
        .into_response();
    };
    if let Err(r) = crate::decisions::withdrawal(&relay, provider, org, on).await {
        return r;
    }
    if on {
        relay.operator.withdraw(provider, org);
    } else {
        relay.operator.restore(provider, &org);
    }
    let target = format!("{provider}/{org}");
    let action = if on { "withdraw" } else { "restore" };
    record(&relay, &who, action, &target).await;
    format!("{action}: {target}\n").into_response()
}

/// `POST /admin/reload`: reloads the configuration file; an invalid one is
/// refused with the reason (400) and the running configuration stays.
async fn reload(State(relay): State<Arc<Relay>>, Operator(who): Operator) -> Response {
    match relay.reload() {
        Ok(()) => {
            record(&relay, &who, "reload", "configuration").await;
            (StatusCode::OK, "configuration reloaded\n").into_response()
        }
        Err(e) => {
            record(&relay, &who, "reload_refused", "configuration").await;
            (StatusCode::BAD_REQUEST, format!("reload refused: {e:#}\n")).into_response()
        }
    }
}

/// `GET /admin/providers`: each provider's health, contract and adapter version,
/// whether its contract is compatible (`contract.state`: `compatible`,
/// `incompatible` = refused and not called, `unknown`), and how its recent
/// calls went.
async fn providers(State(relay): State<Arc<Relay>>) -> axum::Json<Vec<serde_json::Value>> {
    axum::Json(provider_rows(&relay).await)
}

/// One row per provider, as `GET /admin/providers` and the console show them
/// (health and `Describe` asked in parallel, within a second each).
pub async fn provider_rows(relay: &Arc<Relay>) -> Vec<serde_json::Value> {
    let ids: Vec<String> = relay.live().providers.ids().map(str::to_owned).collect();
    let checks = ids.iter().map(|id| {
        let relay = relay.clone();
        async move {
            let serving = relay
                .live()
                .providers
                .is_serving(id, Duration::from_secs(1))
                .await;
            let d = relay
                .live()
                .providers
                .describe(id, Duration::from_secs(1))
                .await;
            serde_json::json!({
                "id": id,
                "serving": serving,
                "display_name": d.as_ref().map(|d| d.display_name.clone()),
                "contract_version": d.as_ref().map(|d| d.contract_version.clone()),
                "adapter_version": d.as_ref().map(|d| d.adapter_version.clone()),
                "payload_format": d.as_ref().map(|d| d.payload_format.clone()),
                "contract": relay.live().providers.contract(id),
                "recent": relay.live().providers.recent(id),
                "endpoints": relay.live().providers.endpoints(id),
            })
        }
    });
    join_all(checks).await
}

async fn readyz(State(relay): State<Arc<Relay>>) -> Response {
    match crate::service_levels::readiness(&relay).await {
        Ok(text) => (StatusCode::OK, format!("{text}\n")).into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

/// `GET /admin/status`: the disturbance state, failing providers, the prober's
/// last result, maintenance and requests in flight (JSON; no personal data).
async fn status(State(relay): State<Arc<Relay>>) -> axum::Json<serde_json::Value> {
    let mut v = relay.service_levels.status();
    if let Some(o) = v.as_object_mut() {
        o.insert("maintenance".into(), relay.operator.maintenance().into());
        o.insert("in_flight".into(), METRICS.in_flight.get().into());
        o.insert(
            "decisions".into(),
            relay
                .followed
                .status(relay.decisions.as_ref().is_some_and(|s| s.is_shared())),
        );
    }
    axum::Json(v)
}

async fn maintenance_state(State(relay): State<Arc<Relay>>) -> String {
    format!(
        "maintenance: {}\n",
        if relay.operator.maintenance() {
            "on"
        } else {
            "off"
        }
    )
}

async fn set_maintenance(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    on: bool,
) -> Response {
    if let Err(r) = crate::decisions::maintenance(&relay, on).await {
        return r;
    }
    relay.operator.set_maintenance(on);
    record(
        &relay,
        &who,
        if on {
            "maintenance_on"
        } else {
            "maintenance_off"
        },
        "node",
    )
    .await;
    format!("maintenance: {}\n", if on { "on" } else { "off" }).into_response()
}

/// `POST /admin/maintenance/plan?start=RFC3339&end=RFC3339[&reason=TEXT]`:
/// announces a planned maintenance window. It is written to the audit trail as a
/// planned outage (the service-level report counts its minutes as planned from
/// this announcement on, not as unavailable) and kept in the relay's store.
async fn plan_maintenance(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    axum::extract::Query(q): Params,
) -> Response {
    let time = |k: &str| {
        q.get(k)
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let (Some(start), Some(end)) = (time("start"), time("end")) else {
        return BadParams("start and end are required, as RFC 3339 times".into()).into_response();
    };
    if end <= start || end <= chrono::Utc::now() {
        return BadParams("end must be after start and in the future".into()).into_response();
    }
    let reason = q.get("reason").cloned().unwrap_or_default();
    if reason.chars().count() > 500 {
        return BadParams("reason: at most 500 characters".into()).into_response();
    }
    if let Err(r) = crate::decisions::plan(&relay, start, end, &reason).await {
        return r;
    }
    crate::outcomes::planned_window(&relay, &who, start, end, &reason).await;
    let target = format!("{}..{}", start.to_rfc3339(), end.to_rfc3339());
    record(&relay, &who, "maintenance_planned", &target).await;
    format!("maintenance planned: {target}\n").into_response()
}

/// `GET /admin/maintenance/planned`: the announced windows (JSON).
async fn planned_maintenance(State(relay): State<Arc<Relay>>) -> Response {
    match crate::decisions::planned(&relay).await {
        Ok(list) => axum::Json(list).into_response(),
        Err(r) => r,
    }
}
