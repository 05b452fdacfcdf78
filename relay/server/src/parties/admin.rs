//! `/admin/parties/...`: the register through the admin listener. Every change
//! is written to the store before the call returns, audited (who, what, which
//! party) and read back into this node's cache; other nodes follow within a
//! second. Input is checked first: a bad organisation number, product, role or
//! state is a 400 that names the value.
//!
//! | call | does |
//! |------|------|
//! | `GET /admin/parties` | every party (filters: `state`, `product`, `expiring_within_days`, `checks_missing=true`) |
//! | `POST /admin/parties` | registers a party: `{"org","name","role","products":["elt"],"state":"applied"}` |
//! | `POST /admin/parties/import` | seeds from a relay configuration's `[[agreements]]` (TOML body; empty: the running one) |
//! | `GET /admin/parties/{org}` | one party: states, history, checks with times, certificates |
//! | `POST /admin/parties/{org}/state` | `{"product","state","reason"}` |
//! | `POST /admin/parties/{org}/promote` | `{"product","override":"reason"}`: to `production` once every check passed |
//! | `GET /admin/parties/{org}/declarations` | the caseworker ids and dates |
//! | `POST /admin/parties/{org}/declarations` | JSON `{"require_declaration":true,"declarations":[{"caseworker","signed"}]}` or CSV `caseworker,signed` |
//! | `DELETE /admin/parties/{org}/declarations/{caseworker}` | revokes one |

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{NaiveDate, Utc};
use http::{HeaderMap, StatusCode};
use relay_ident::Organisationsnummer;
use relay_store::{Declaration, Parties, Party, PartyRegister, PartyState, Role};
use serde_json::{Value, json};

use super::checks;
use crate::Relay;
use crate::admin::Operator;
use crate::config::ProductName;
use crate::outcomes::admin_action;

/// Most declarations one call registers.
pub const MAX_DECLARATIONS_PER_CALL: usize = 10_000;
/// Longest caseworker id taken (the case system's id, not a name).
pub const MAX_CASEWORKER_ID: usize = 64;

pub fn routes() -> Router<Arc<Relay>> {
    Router::new()
        .route("/admin/parties", get(list).post(add))
        .route("/admin/parties/import", post(import))
        .route("/parties", get(super::page::endpoint))
        .route("/admin/parties/{org}", get(show))
        .route("/admin/parties/{org}/state", post(set_state))
        .route("/admin/parties/{org}/promote", post(promote))
        .route(
            "/admin/parties/{org}/declarations",
            get(declarations).post(declare),
        )
        .route(
            "/admin/parties/{org}/declarations/{caseworker}",
            delete(revoke),
        )
}

/// A refusal of an admin call, as `400`/`404`/`409`/`500` with a text.
pub struct Refused(StatusCode, String);

impl Refused {
    pub fn text(&self) -> &str {
        &self.1
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, format!("{}\n", self.1)).into_response()
    }
}

fn bad(text: impl Into<String>) -> Refused {
    Refused(StatusCode::BAD_REQUEST, text.into())
}

fn stored(e: relay_store::StateError) -> Refused {
    tracing::error!(error = %e, "the register of parties could not be used");
    Refused(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the register of parties could not be used; nothing was changed".into(),
    )
}

fn register(relay: &Relay) -> Result<&Parties, Refused> {
    relay.operator.parties.register().ok_or_else(|| {
        Refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "this relay has no store ([mailbox]), so no register of parties".into(),
        )
    })
}

pub fn parse_org(s: &str) -> Result<Organisationsnummer, Refused> {
    Organisationsnummer::parse(s.trim())
        .map_err(|_| bad(format!("{s:?} is not a valid organisation number")))
}

pub fn parse_product(s: &str) -> Result<&'static str, Refused> {
    ProductName::parse(s)
        .map(ProductName::as_str)
        .ok_or_else(|| {
            let names: Vec<&str> = ProductName::ALL.iter().map(|p| p.as_str()).collect();
            bad(format!("{s:?} is not a product ({})", names.join(", ")))
        })
}

pub fn parse_state(s: &str) -> Result<PartyState, Refused> {
    PartyState::parse(s).ok_or_else(|| {
        bad(format!(
            "{s:?} is not a state (applied, test, verified, production, suspended, terminated)"
        ))
    })
}

fn parse_role(s: &str) -> Result<Role, Refused> {
    Role::parse(s).ok_or_else(|| {
        bad(format!(
            "{s:?} is not a role (municipality, processor, elt-vendor, assistance-company, agency)"
        ))
    })
}

fn body_json(body: &[u8]) -> Result<serde_json::Map<String, Value>, Refused> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the body must be a JSON object")),
        Err(e) => Err(bad(format!("the body is not JSON: {e}"))),
    }
}

fn text_field<'a>(
    m: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, Refused> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("{key} must be a string"))),
    }
}

fn required<'a>(m: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a str, Refused> {
    text_field(m, key)?.ok_or_else(|| bad(format!("{key} is missing")))
}

fn reason(m: &serde_json::Map<String, Value>, key: &str) -> Result<Option<String>, Refused> {
    match text_field(m, key)? {
        Some(r) if r.chars().count() > 500 => {
            Err(bad(format!("{key} is longer than 500 characters")))
        }
        Some(r) if r.trim().is_empty() => Err(bad(format!("{key} is empty"))),
        r => Ok(r.map(str::to_owned)),
    }
}

/// One party as JSON: states with history, checks with times and what is missing,
/// certificates.
pub fn view(relay: &Relay, party: &Party) -> Value {
    let snapshot = relay.operator.parties.snapshot();
    let products: serde_json::Map<String, Value> = party
        .products
        .iter()
        .map(|(name, s)| {
            let checks: Vec<Value> = checks::required(name)
                .iter()
                .map(|c| json!({"check": c, "passed_at": s.checks.get(*c).map(|t| t.to_rfc3339())}))
                .collect();
            (
                name.clone(),
                json!({
                    "state": s.state.as_str(),
                    "since": s.since().map(|t| t.to_rfc3339()),
                    "checks": checks,
                    "checks_missing": checks::missing(name, &s.checks),
                    "history": s.history.iter().map(|h| json!({
                        "at": h.at.to_rfc3339(), "operator": h.operator,
                        "from": h.from.map(PartyState::as_str), "to": h.to.as_str(),
                        "reason": h.reason,
                    })).collect::<Vec<_>>(),
                }),
            )
        })
        .collect();
    let expires = super::certificates::expiry(&snapshot)
        .get(&party.org)
        .map(|t| t.to_rfc3339());
    json!({
        "org": party.org.as_str(),
        "name": party.name,
        "role": party.role.as_str(),
        "created": party.created.to_rfc3339(),
        "require_declaration": party.require_declaration,
        "products": products,
        "certificates": super::certificates::of_party(&snapshot, &party.org),
        "certificate_expires": expires,
    })
}

/// The filters of the list (and the console page).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Filter {
    pub state: Option<String>,
    pub product: Option<String>,
    pub expiring_within_days: Option<String>,
    pub checks_missing: Option<String>,
}

/// The parties matching `filter`, as JSON, or the bad filter value named.
pub fn filtered(relay: &Relay, filter: &Filter) -> Result<Vec<Value>, Refused> {
    let state = filter
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(parse_state)
        .transpose()?;
    let product = filter
        .product
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(parse_product)
        .transpose()?;
    let within = filter
        .expiring_within_days
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|d| {
            d.parse::<u32>().ok().filter(|d| *d <= 3650).ok_or_else(|| {
                bad(format!(
                    "expiring_within_days {d:?} is not a number of days up to 3650"
                ))
            })
        })
        .transpose()?;
    let missing = match filter.checks_missing.as_deref() {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(bad(format!(
                "checks_missing {other:?} is not true or false"
            )));
        }
    };
    let snapshot = relay.operator.parties.snapshot();
    let expiry = super::certificates::expiry(&snapshot);
    let now = Utc::now();
    Ok(snapshot
        .parties
        .values()
        .filter(|p| {
            let products: Vec<(&String, &relay_store::ProductStanding)> = p
                .products
                .iter()
                .filter(|(n, _)| product.is_none_or(|want| n.as_str() == want))
                .collect();
            (product.is_none() || !products.is_empty())
                && state.is_none_or(|s| products.iter().any(|(_, st)| st.state == s))
                && within.is_none_or(|d| {
                    expiry
                        .get(&p.org)
                        .is_some_and(|t| *t <= now + chrono::TimeDelta::days(i64::from(d)))
                })
                && (!missing
                    || products
                        .iter()
                        .any(|(n, st)| !checks::missing(n, &st.checks).is_empty()))
        })
        .map(|p| view(relay, p))
        .collect())
}

async fn list(
    State(relay): State<Arc<Relay>>,
    Query(filter): Query<Filter>,
) -> Result<axum::Json<Vec<Value>>, Refused> {
    Ok(axum::Json(filtered(&relay, &filter)?))
}

async fn show(
    State(relay): State<Arc<Relay>>,
    Path(org): Path<String>,
) -> Result<axum::Json<Value>, Refused> {
    let org = parse_org(&org)?;
    let party = register(&relay)?.party(org).await.map_err(stored)?;
    match party {
        Some(p) => Ok(axum::Json(view(&relay, &p))),
        None => Err(Refused(
            StatusCode::NOT_FOUND,
            format!("{org} is not in the register of parties"),
        )),
    }
}

async fn changed(relay: &Relay, who: &str, action: &str, target: &str) {
    admin_action(relay, who, action, target).await;
    if let Err(e) = super::refresh(relay).await {
        tracing::warn!(error = %e, "the register of parties could not be read back");
    }
}

async fn add(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    body: Bytes,
) -> Result<Response, Refused> {
    let m = body_json(&body)?;
    let org = parse_org(required(&m, "org")?)?;
    let name = required(&m, "name")?.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(bad("name must be 1 to 200 characters"));
    }
    let role = parse_role(required(&m, "role")?)?;
    let state = text_field(&m, "state")?
        .map(parse_state)
        .transpose()?
        .unwrap_or(PartyState::Applied);
    let products: Vec<&'static str> = match m.get("products") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| bad("products must be a list of product names"))
                    .and_then(parse_product)
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("products must be a list of product names")),
    };
    if state == PartyState::Production {
        return Err(Refused(
            StatusCode::CONFLICT,
            "a new party is not registered in production: it is promoted through POST /admin/parties/{org}/promote".into(),
        ));
    }
    let now = Utc::now();
    let mut party = Party::new(org, name, role, now);
    for p in &products {
        party.change_state(p, state, &who, Some("registered".into()), now);
    }
    let register = register(&relay)?;
    if !register.add_party(&party).await.map_err(stored)? {
        return Err(Refused(
            StatusCode::CONFLICT,
            format!(
                "{org} is already in the register; change its states with /admin/parties/{org}/state"
            ),
        ));
    }
    changed(
        &relay,
        &who,
        "party-register",
        &format!(
            "{org} {} {} {}",
            role.as_str(),
            products.join(","),
            state.as_str()
        ),
    )
    .await;
    Ok((StatusCode::CREATED, axum::Json(view(&relay, &party))).into_response())
}

async fn set_state(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    Path(org): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Value>, Refused> {
    let org = parse_org(&org)?;
    let m = body_json(&body)?;
    let product = parse_product(required(&m, "product")?)?;
    let state = parse_state(required(&m, "state")?)?;
    let reason = reason(&m, "reason")?;
    if state == PartyState::Production {
        return Err(Refused(
            StatusCode::CONFLICT,
            format!(
                "production is reached through POST /admin/parties/{org}/promote, which checks the test checks"
            ),
        ));
    }
    let operator = who.clone();
    let edit = Box::new(move |p: &mut Party| {
        p.change_state(product, state, &operator, reason, Utc::now());
        Ok(())
    });
    edited(
        &relay,
        org,
        register(&relay)?.update(org, edit).await.map_err(stored)?,
    )?;
    changed(
        &relay,
        &who,
        "party-state",
        &format!("{org} {product} {}", state.as_str()),
    )
    .await;
    party_json(&relay, org).await
}

fn edited<T>(
    _relay: &Relay,
    org: Organisationsnummer,
    result: Option<Result<T, String>>,
) -> Result<T, Refused> {
    match result {
        None => Err(Refused(
            StatusCode::NOT_FOUND,
            format!("{org} is not in the register of parties"),
        )),
        Some(Err(why)) => Err(Refused(StatusCode::CONFLICT, why)),
        Some(Ok(v)) => Ok(v),
    }
}

async fn party_json(relay: &Relay, org: Organisationsnummer) -> Result<axum::Json<Value>, Refused> {
    let party = register(relay)?.party(org).await.map_err(stored)?;
    Ok(axum::Json(
        party.map(|p| view(relay, &p)).unwrap_or(Value::Null),
    ))
}

async fn promote(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    Path(org): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Value>, Refused> {
    let org = parse_org(&org)?;
    let m = body_json(&body)?;
    let product = parse_product(required(&m, "product")?)?;
    let override_reason = reason(&m, "override")?;
    let operator = who.clone();
    let overriding = override_reason.clone();
    let edit = Box::new(move |p: &mut Party| {
        let Some(s) = p.products.get(product) else {
            return Err(format!("{} is not registered for {product}", p.org));
        };
        if !matches!(s.state, PartyState::Test | PartyState::Verified) {
            return Err(format!(
                "{} is in state {} for {product}: only a party in test or verified is promoted",
                p.org,
                s.state.as_str()
            ));
        }
        let missing = checks::missing(product, &s.checks);
        let reason = match (&overriding, missing.is_empty()) {
            (_, true) => None,
            (Some(r), false) => Some(format!(
                "override of the missing checks {}: {r}",
                missing.join(", ")
            )),
            (None, false) => {
                return Err(format!(
                    "not promoted: the test checks {} have not passed (an operator may override with {{\"override\": \"reason\"}})",
                    missing.join(", ")
                ));
            }
        };
        p.change_state(
            product,
            PartyState::Production,
            &operator,
            reason,
            Utc::now(),
        );
        Ok(missing)
    });
    let missing = edited(
        &relay,
        org,
        register(&relay)?.update(org, edit).await.map_err(stored)?,
    )?;
    let action = if missing.is_empty() {
        "party-promote"
    } else {
        "party-promote-override"
    };
    changed(&relay, &who, action, &format!("{org} {product}")).await;
    party_json(&relay, org).await
}

async fn declarations(
    State(relay): State<Arc<Relay>>,
    Path(org): Path<String>,
) -> Result<axum::Json<Value>, Refused> {
    let org = parse_org(&org)?;
    let register = register(&relay)?;
    let party = register.party(org).await.map_err(stored)?;
    let list = register.declarations(org).await.map_err(stored)?;
    Ok(axum::Json(json!({
        "org": org.as_str(),
        "require_declaration": party.is_some_and(|p| p.require_declaration),
        "declarations": list.iter().map(|d| json!({"caseworker": d.caseworker, "signed": d.signed.to_string()})).collect::<Vec<_>>(),
    })))
}

fn caseworker(s: &str) -> Result<String, Refused> {
    let s = s.trim();
    if s.is_empty()
        || s.chars().count() > MAX_CASEWORKER_ID
        || s.chars().any(|c| c.is_control() || c == ',')
    {
        return Err(bad(format!(
            "a caseworker id must be 1 to {MAX_CASEWORKER_ID} characters without commas or control characters (line or item {})",
            "given"
        )));
    }
    Ok(s.to_owned())
}

fn date(s: &str) -> Result<NaiveDate, Refused> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| bad(format!("{:?} is not a date (YYYY-MM-DD)", s.trim())))
}

/// Reads `caseworker,signed` lines (a header line `caseworker,signed` is skipped).
fn from_csv(body: &[u8]) -> Result<Vec<Declaration>, Refused> {
    let text = std::str::from_utf8(body).map_err(|_| bad("the CSV is not UTF-8"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.to_ascii_lowercase().starts_with("caseworker")) {
            continue;
        }
        let mut cols = line.split(',');
        let (Some(c), Some(d), None) = (cols.next(), cols.next(), cols.next()) else {
            return Err(bad(format!(
                "CSV line {}: expected two columns, caseworker,signed",
                i + 1
            )));
        };
        let cw = caseworker(c).map_err(|e| bad(format!("CSV line {}: {}", i + 1, e.1)))?;
        let signed = date(d).map_err(|e| bad(format!("CSV line {}: {}", i + 1, e.1)))?;
        out.push(Declaration {
            caseworker: cw,
            signed,
        });
        if out.len() > MAX_DECLARATIONS_PER_CALL {
            return Err(bad(format!(
                "at most {MAX_DECLARATIONS_PER_CALL} declarations a call"
            )));
        }
    }
    Ok(out)
}

async fn declare(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>, Refused> {
    let org = parse_org(&org)?;
    let csv = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv"));
    let (require, list) = if csv {
        (None, from_csv(&body)?)
    } else {
        let m = body_json(&body)?;
        let require = match m.get("require_declaration") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(bad("require_declaration must be true or false")),
        };
        let list = match m.get("declarations") {
            None => Vec::new(),
            Some(Value::Array(a)) if a.len() <= MAX_DECLARATIONS_PER_CALL => a
                .iter()
                .map(|d| {
                    let c = d
                        .get("caseworker")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("each declaration needs a caseworker"))?;
                    let s = d
                        .get("signed")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("each declaration needs a signed date"))?;
                    Ok(Declaration {
                        caseworker: caseworker(c)?,
                        signed: date(s)?,
                    })
                })
                .collect::<Result<_, Refused>>()?,
            Some(_) => {
                return Err(bad(format!(
                    "declarations must be a list of at most {MAX_DECLARATIONS_PER_CALL}"
                )));
            }
        };
        (require, list)
    };
    let register = register(&relay)?;
    if register.party(org).await.map_err(stored)?.is_none() {
        return Err(Refused(
            StatusCode::NOT_FOUND,
            format!("{org} is not in the register of parties"),
        ));
    }
    let new = register.declare(org, &list).await.map_err(stored)?;
    if let Some(on) = require {
        let edit = Box::new(move |p: &mut Party| {
            p.require_declaration = on;
            Ok(())
        });
        edited(
            &relay,
            org,
            register.update(org, edit).await.map_err(stored)?,
        )?;
        changed(
            &relay,
            &who,
            "party-require-declaration",
            &format!("{org} {on}"),
        )
        .await;
    }
    // Audited by count: the ids are the case system's, kept in the register only.
    changed(
        &relay,
        &who,
        "party-declarations",
        &format!("{org} {} registered, {new} new", list.len()),
    )
    .await;
    Ok(axum::Json(json!({"registered": list.len(), "new": new})))
}

async fn revoke(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    Path((org, cw)): Path<(String, String)>,
) -> Result<Response, Refused> {
    let org = parse_org(&org)?;
    let cw = caseworker(&cw)?;
    if !register(&relay)?.revoke(org, &cw).await.map_err(stored)? {
        return Err(Refused(
            StatusCode::NOT_FOUND,
            "no such declaration for this organisation".into(),
        ));
    }
    changed(&relay, &who, "party-declaration-revoke", &format!("{org}")).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// What an import added.
#[derive(Debug, Default, serde::Serialize)]
pub struct Imported {
    pub parties_added: Vec<String>,
    pub products_added: Vec<String>,
    pub unchanged: usize,
}

/// The role an agreement suggests (an operator corrects it with a new registration).
fn role_of(
    org: &Organisationsnummer,
    products: &BTreeSet<String>,
    processors: &BTreeSet<String>,
) -> Role {
    if processors.contains(org.as_str()) {
        Role::Processor
    } else if products.len() == 1 && products.contains("elt") {
        Role::EltVendor
    } else if org.as_str().starts_with("202") {
        Role::Agency
    } else {
        Role::Municipality
    }
}

/// Seeds the register from the `[[agreements]]` (and `[[processors]]`) of a relay
/// configuration: a party or product the register lacks is added (`production`
/// when the agreement covers the production environment, else `test`); what the
/// register holds is never changed. Running it again adds nothing.
pub async fn import_toml(relay: &Relay, text: &str, who: &str) -> Result<Imported, Refused> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        bad(format!("the configuration is not TOML: {}", e.message()))
    })?;
    let processors: BTreeSet<String> = doc
        .get("processors")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("org").and_then(|o| o.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let Some(agreements) = doc.get("agreements").and_then(|v| v.as_array()) else {
        return Err(bad("the configuration has no [[agreements]]"));
    };
    let register = register(relay)?;
    let mut out = Imported::default();
    for (i, a) in agreements.iter().enumerate() {
        let field = |k: &str| a.get(k);
        let org_text = field("org")
            .and_then(|o| o.as_str())
            .ok_or_else(|| bad(format!("agreements[{i}].org is missing")))?;
        let org = parse_org(org_text).map_err(|e| bad(format!("agreements[{i}].org: {}", e.1)))?;
        let name = field("name")
            .and_then(|n| n.as_str())
            .unwrap_or(org_text)
            .to_owned();
        let mut products = BTreeSet::new();
        for p in field("products")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            let p = p.as_str().unwrap_or_default();
            let p =
                parse_product(p).map_err(|e| bad(format!("agreements[{i}].products: {}", e.1)))?;
            products.insert(p.to_owned());
        }
        let production = field("environments")
            .and_then(|e| e.as_array())
            .is_none_or(|e| e.iter().any(|v| v.as_str() == Some("production")));
        let state = if production {
            PartyState::Production
        } else {
            PartyState::Test
        };
        let now = Utc::now();
        let mut party = Party::new(org, name, role_of(&org, &products, &processors), now);
        for p in &products {
            party.change_state(
                p,
                state,
                who,
                Some("imported from the configuration".into()),
                now,
            );
        }
        if register.add_party(&party).await.map_err(stored)? {
            out.parties_added.push(org.to_string());
            continue;
        }
        let operator = who.to_owned();
        let wanted = products.clone();
        let edit = Box::new(move |p: &mut Party| {
            let new: Vec<String> = wanted
                .iter()
                .filter(|w| !p.products.contains_key(*w))
                .cloned()
                .collect();
            for w in &new {
                p.change_state(
                    w,
                    state,
                    &operator,
                    Some("imported from the configuration".into()),
                    Utc::now(),
                );
            }
            Ok(new)
        });
        let added = edited(
            relay,
            org,
            register.update(org, edit).await.map_err(stored)?,
        )?;
        if added.is_empty() {
            out.unchanged += 1;
        }
        out.products_added
            .extend(added.into_iter().map(|p| format!("{org} {p}")));
    }
    changed(
        relay,
        who,
        "party-import",
        &format!(
            "{} parties and {} products added",
            out.parties_added.len(),
            out.products_added.len()
        ),
    )
    .await;
    Ok(out)
}

async fn import(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    body: Bytes,
) -> Result<axum::Json<Imported>, Refused> {
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        let Some(path) = relay.config_path() else {
            return Err(bad(
                "send the configuration as the body: this relay was not started from a file",
            ));
        };
        std::fs::read_to_string(path).map_err(|e| {
            Refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{}: {e}", path.display()),
            )
        })?
    } else {
        String::from_utf8(body.to_vec()).map_err(|_| bad("the configuration is not UTF-8"))?
    };
    Ok(axum::Json(import_toml(&relay, &text, &who).await?))
}
