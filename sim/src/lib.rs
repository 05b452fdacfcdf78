//! # shs-sim
//!
//! Simulated base services ("bastjänster") for the seven SSBTEK agencies, in one
//! process, speaking the protocols the adapters call (see `PROTOCOLS.md`), with
//! realistic deterministic data ([`data`]) and scripted trouble ([`scenario`]):
//! latency, errors, hangs, outages and per-person overrides, changeable at run
//! time through a small admin endpoint.
//!
//! # Layout
//!
//! - [`scenario`]: the scenario model (TOML) and the per-call [`scenario::Plan`].
//! - [`data`]: the answer documents per agency.
//! - this file: configuration, the HTTPS listener with one path per agency, the
//!   admin listener.
//!
//! Never feed the simulator real persons: use Skatteverket's published test
//! personnummer (`relay_ident::TEST_PERSONS`).

// Exception to [workspace.lints]: 9 indexing sites (2026-12) in the simulator,
// not yet rewritten.
#![allow(clippy::indexing_slicing)]

pub mod data;
pub mod scenario;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use hyper_util::rt::{TokioExecutor, TokioIo};
use relay_ident::Personnummer;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::data::Context;
use crate::scenario::{Plan, Scenario};
pub use relay_ssbtek::Slot;

/// An agency the simulator stands in for: one of the seven SSBTEK agencies
/// (the one list of agencies, [`Slot`]), or Försäkringskassan's ELT
/// registration service (`ELT`), which scenarios can also slow down or break.
/// Written and read as the slot id (`AF`, ..., `MIV`) or `ELT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Agency {
    Ssbtek(Slot),
    Elt,
}

impl From<Agency> for String {
    fn from(a: Agency) -> String {
        a.id().to_owned()
    }
}

impl TryFrom<String> for Agency {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Agency::ALL
            .into_iter()
            .find(|a| a.id() == s)
            .ok_or_else(|| {
                let ids: Vec<&str> = Agency::ALL.iter().map(|a| a.id()).collect();
                format!("unknown agency {s:?} (expected one of {})", ids.join(", "))
            })
    }
}

impl Agency {
    /// Every slot in XSD order, then ELT.
    pub const ALL: [Agency; Slot::ALL.len() + 1] = {
        let mut all = [Agency::Elt; Slot::ALL.len() + 1];
        let mut i = 0;
        while i < Slot::ALL.len() {
            all[i] = Agency::Ssbtek(Slot::ALL[i]);
            i += 1;
        }
        all
    };

    pub fn id(self) -> &'static str {
        match self {
            Self::Ssbtek(slot) => slot.as_str(),
            Self::Elt => "ELT",
        }
    }

    /// The path segment (`af`, `csn`, ...): the id in lower case.
    pub fn path(self) -> &'static str {
        match self {
            Self::Ssbtek(Slot::Af) => "af",
            Self::Ssbtek(Slot::Csn) => "csn",
            Self::Ssbtek(Slot::Fk) => "fk",
            Self::Ssbtek(Slot::Skv) => "skv",
            Self::Ssbtek(Slot::So) => "so",
            Self::Ssbtek(Slot::Tns) => "tns",
            Self::Ssbtek(Slot::Miv) => "miv",
            Self::Elt => "elt",
        }
    }

    fn from_path(p: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.path() == p)
    }

    /// The agency's error code when a scenario asks for an error without one.
    fn default_error(self) -> &'static str {
        match self {
            Self::Ssbtek(Slot::Af) => "502",
            Self::Ssbtek(Slot::Csn) => "CSN-9",
            Self::Ssbtek(Slot::Fk) => "INTERNT_FEL",
            Self::Ssbtek(Slot::Skv) => "9071001",
            Self::Ssbtek(Slot::So) => "SO-500",
            Self::Ssbtek(Slot::Tns) => "9",
            Self::Ssbtek(Slot::Miv) => "MIV-500",
            Self::Elt => "ELT_INTERNT_FEL",
        }
    }
}

/// The simulator's configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    pub listen: SocketAddr,
    #[serde(default = "default_admin")]
    pub admin_listen: SocketAddr,
    pub tls: SimTls,
    /// Longest a "hang" holds a connection before dropping it, in seconds.
    #[serde(default = "default_hang")]
    pub max_hang_s: u64,
}

fn default_admin() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
fn default_hang() -> u64 {
    300
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate chaining to this CA.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

impl SimConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

/// Per-agency counters (`GET /admin/stats`).
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub hangs: AtomicU64,
    pub outages: AtomicU64,
    /// Calls being answered now; a call whose client went away (an adapter
    /// that cancelled it) is no longer counted.
    pub in_flight: AtomicU64,
    /// Calls held by a hang now (a subset of `in_flight`).
    pub hanging: AtomicU64,
    /// Calls whose client went away before they were answered (an adapter
    /// that cancelled its base-service call, or gave up on it), since start.
    pub abandoned: AtomicU64,
    /// Trace ids of the last calls that carried a W3C `traceparent`.
    pub trace_ids: std::sync::Mutex<std::collections::VecDeque<String>>,
}

/// How many trace ids `GET /admin/stats` keeps per agency.
const TRACE_IDS_KEPT: usize = 64;

impl Counters {
    /// Notes the trace id of a call's `traceparent` header, when it has one.
    fn note_trace(&self, headers: &HeaderMap) {
        let trace_id = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.split('-').nth(1))
            .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        if let Some(id) = trace_id {
            let mut ids = self.trace_ids.lock().unwrap_or_else(|p| p.into_inner());
            if ids.len() == TRACE_IDS_KEPT {
                ids.pop_front();
            }
            ids.push_back(id.to_ascii_lowercase());
        }
    }
}

/// Counts a call in flight until it is answered or dropped.
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a call as abandoned when it is dropped (its client went away)
/// before [`Answering::answered`].
struct Answering<'a> {
    abandoned: &'a AtomicU64,
    answered: bool,
}

impl Answering<'_> {
    fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.abandoned.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Shared {
    scenario: RwLock<Scenario>,
    initial: Scenario,
    started: Instant,
    stats: BTreeMap<Agency, Counters>,
    max_hang: Duration,
    calls: AtomicU64,
}

/// A running simulator.
pub struct Sim {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
}

impl Sim {
    /// Binds both listeners and serves in the background.
    pub async fn start(config: SimConfig, scenario: Scenario) -> anyhow::Result<Sim> {
        relay_pki::tls::install_crypto_provider();
        let tls = relay_pki::tls::server_config(
            &config.tls.cert,
            &config.tls.key,
            config.tls.client_ca.as_deref(),
            &[b"http/1.1"],
        )?;
        let shared = Arc::new(Shared {
            scenario: RwLock::new(scenario.clone()),
            initial: scenario,
            started: Instant::now(),
            stats: Agency::ALL
                .iter()
                .map(|a| (*a, Counters::default()))
                .collect(),
            max_hang: Duration::from_secs(config.max_hang_s),
            calls: AtomicU64::new(0),
        });
        let listener = TcpListener::bind(config.listen).await?;
        let admin = TcpListener::bind(config.admin_listen).await?;
        let sim = Sim {
            listen: listener.local_addr()?,
            admin: admin.local_addr()?,
        };
        let services = Router::new()
            .route(
                "/fk/lefi-extern-formansinformation/v9/aktorer/{aktor}/formansinformation/fraga",
                post(fk),
            )
            .route(
                "/csn/kommunfraga/v4",
                post(|s, h, b| soap(s, h, b, Agency::Ssbtek(Slot::Csn))),
            )
            .route(
                "/skv/beskattningws",
                post(|s, h, b| soap(s, h, b, Agency::Ssbtek(Slot::Skv))),
            )
            .route(
                "/af/ersattningsstod/v2",
                post(|s, h, b| soap(s, h, b, Agency::Ssbtek(Slot::Af))),
            )
            .route(
                "/so/ubpservice",
                post(|s, h, b| soap(s, h, b, Agency::Ssbtek(Slot::So))),
            )
            .route(
                "/tns/hamtauppgifter/v1",
                post(|s, h, b| soap(s, h, b, Agency::Ssbtek(Slot::Tns))),
            )
            .route(
                "/miv/ssbtek/v1",
                post(|s, h, b| soap(s, h, b, Agency::Ssbtek(Slot::Miv))),
            )
            .route("/fk/elt/tidredovisning/v1", post(elt))
            .route("/{agency}/health", get(health))
            .with_state(shared.clone());
        tokio::spawn(serve_tls(listener, Arc::new(tls), services));
        let admin_app = Router::new()
            .route("/admin/scenario", get(get_scenario).put(put_scenario))
            .route("/admin/reset", post(reset))
            .route("/admin/stats", get(stats))
            .with_state(shared);
        tokio::spawn(async move {
            let _ = axum::serve(admin, admin_app).await;
        });
        Ok(sim)
    }
}

async fn serve_tls(listener: TcpListener, tls: Arc<rustls::ServerConfig>, app: Router) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        // Answers are small; without TCP_NODELAY a response written in more
        // than one segment waits for the adapter's delayed ACK (~40 ms).
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let svc = hyper::service::service_fn(move |req| app.clone().oneshot(req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}

impl Shared {
    fn counters(&self, a: Agency) -> &Counters {
        &self.stats[&a]
    }

    fn records(&self, agency: Agency, person: &str) -> Option<u32> {
        self.scenario
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .records(agency, person)
    }

    fn is_unknown(&self, agency: Agency, person: &str) -> bool {
        self.scenario
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_unknown(agency, person)
    }

    /// The plan for one call; the random numbers come from a per-call counter so
    /// rates apply across calls while answers stay deterministic per person.
    fn plan(&self, agency: Agency, person: &str) -> Plan {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let mut r = data::Rng::for_person(
            agency,
            &Personnummer::parse("191212121212").unwrap_or_else(|_| unreachable!()),
            &format!("call{n}{person}"),
        );
        let u = [r.unit(), r.unit(), r.unit(), r.unit()];
        let scenario = self.scenario.read().unwrap_or_else(|p| p.into_inner());
        scenario.plan(agency, person, self.started.elapsed(), u)
    }
}

/// Runs the plan: waits, hangs, or reports an outage. `Ok(None)` = answer now,
/// `Ok(Some(code))` = answer with the agency's error.
async fn execute(
    shared: &Shared,
    agency: Agency,
    person: &str,
) -> Result<Option<String>, Response> {
    let c = shared.counters(agency);
    c.requests.fetch_add(1, Ordering::Relaxed);
    let _in_flight = InFlight::enter(&c.in_flight);
    let answering = Answering {
        abandoned: &c.abandoned,
        answered: false,
    };
    let plan = async {
        match shared.plan(agency, person) {
            Plan::Down => {
                c.outages.fetch_add(1, Ordering::Relaxed);
                Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "30")],
                    "service unavailable (simulated outage)",
                )
                    .into_response())
            }
            Plan::Hang => {
                c.hangs.fetch_add(1, Ordering::Relaxed);
                let _hanging = InFlight::enter(&c.hanging);
                tokio::time::sleep(shared.max_hang).await;
                Err(StatusCode::GATEWAY_TIMEOUT.into_response())
            }
            Plan::Error { code, after } => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(after).await;
                Ok(Some(
                    code.unwrap_or_else(|| agency.default_error().to_owned()),
                ))
            }
            Plan::Answer { after } => {
                tokio::time::sleep(after).await;
                Ok(None)
            }
        }
    };
    let outcome = plan.await;
    answering.answered();
    outcome
}

async fn health(State(shared): State<Arc<Shared>>, UrlPath(agency): UrlPath<String>) -> Response {
    let Some(agency) = Agency::from_path(&agency) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let down = shared
        .scenario
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .is_down(agency, shared.started.elapsed());
    if down {
        (StatusCode::SERVICE_UNAVAILABLE, "DOWN").into_response()
    } else {
        (StatusCode::OK, "UP").into_response()
    }
}

/// The first element with one of `names` (local names) and its text.
fn field(xml: &str, names: &[&str]) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut current: Option<String> = None;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) => {
                let name = e.local_name();
                let local = name.as_ref().to_owned();
                current = names.contains(&local.as_str()).then_some(local);
            }
            Ok(quick_xml::events::Event::Text(t)) if current.is_some() => {
                return Some(t.xml10_content().trim().to_owned());
            }
            Ok(quick_xml::events::Event::End(_)) => current = None,
            Ok(quick_xml::events::Event::Eof) | Err(_) => return None,
            _ => {}
        }
    }
}

fn soap_envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>{body}</soap:Body></soap:Envelope>"
    )
}

fn soap_fault(code: &str, text: &str, detail: &str, client: bool) -> Response {
    let faultcode = if client { "soap:Client" } else { "soap:Server" };
    let body = soap_envelope(&format!(
        "<soap:Fault><faultcode>{faultcode}</faultcode><faultstring>{} {}</faultstring><detail>{detail}</detail></soap:Fault>",
        data::esc(code),
        data::esc(text)
    ));
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn soap_ok(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        soap_envelope(&body),
    )
        .into_response()
}

fn date(s: Option<String>) -> Option<NaiveDate> {
    let s = s?;
    let s = s.get(..10).unwrap_or(&s);
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s.get(..8).unwrap_or(s), "%Y%m%d"))
        .ok()
}

/// The person and period of a SOAP request.
fn context(xml: &str) -> Option<Context> {
    let pnr = match field(
        xml,
        &[
            "IdentitetsbeteckningFysiskPerson",
            "IdentificationNumber",
            "forfragan",
        ],
    ) {
        Some(p) => p,
        None => {
            let ten = field(xml, &["personnummer", "Personnummer"])?;
            match field(xml, &["sekel", "Sekel"]) {
                Some(sekel) if ten.len() == 10 => format!("{sekel}{ten}"),
                _ => ten,
            }
        }
    };
    let person = Personnummer::parse(&pnr).ok()?;
    let today = chrono::Local::now().date_naive();
    let tom = date(field(xml, &["Tom", "tom", "TomDatum"])).unwrap_or(today);
    let from =
        date(field(xml, &["From", "from", "FromDatum"])).unwrap_or(tom - chrono::Days::new(90));
    Some(Context {
        person,
        from: from.min(tom),
        tom,
        ingivare_orgnr: field(
            xml,
            &[
                "OrganisationsnummerForIngivare",
                "OrganisationsnummerIngivare",
                "organisationsnummer",
                "Organisationsnummer",
            ],
        )
        .unwrap_or_default(),
        ingivare_namn: field(xml, &["NamnPaIngivare", "NamnIngivare", "namn"]).unwrap_or_default(),
        handlaggare: field(xml, &["KontonamnForHandlaggare", "KontonamnHandlaggare"])
            .unwrap_or_default(),
        referens: field(xml, &["Referensnummer"]).unwrap_or_default(),
        syfte: field(xml, &["SyfteMedFraga", "Syfte"]).unwrap_or_default(),
        lagtext: field(xml, &["LagParagraf", "Paragraf"]).unwrap_or_default(),
        known: true,
        records: None,
    })
}

async fn soap(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
    agency: Agency,
) -> Response {
    shared.counters(agency).note_trace(&headers);
    let Ok(xml) = std::str::from_utf8(&body) else {
        return soap_fault("CLIENT", "request is not UTF-8", "", true);
    };
    if !xml.contains("Envelope") {
        return soap_fault("CLIENT", "not a SOAP envelope", "", true);
    }
    let Some(ctx) = context(xml) else {
        return soap_fault(
            "CLIENT",
            "no valid person identity in the request",
            "",
            true,
        );
    };
    let code = match execute(&shared, agency, ctx.person.as_str()).await {
        Err(response) => return response,
        Ok(code) => code,
    };
    if let Some(code) = code {
        return agency_error(agency, &code);
    }
    let mut ctx = ctx;
    ctx.known = !shared.is_unknown(agency, ctx.person.as_str());
    ctx.records = shared.records(agency, ctx.person.as_str());
    tracing::info!(agency = agency.id(), "answered");
    soap_ok(match agency {
        Agency::Ssbtek(Slot::Af) => data::af(&ctx),
        Agency::Ssbtek(Slot::So) => data::so(&ctx),
        Agency::Ssbtek(Slot::Tns) => data::tns(&ctx),
        Agency::Ssbtek(Slot::Miv) => {
            data::miv(&ctx, &field(xml, &["korrelationsid"]).unwrap_or_default())
        }
        Agency::Ssbtek(Slot::Skv) => format!(
            "<skv:BeskattningsuppgifterResponse xmlns:skv=\"http://beskattningws.ws.service.bs.zg.rsv.se/\"><svar>{}</svar></skv:BeskattningsuppgifterResponse>",
            data::esc(&data::skv_document(&ctx))
        ),
        Agency::Ssbtek(Slot::Csn) => data::csn_document(&ctx)
            .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
            .to_owned(),
        Agency::Ssbtek(Slot::Fk) | Agency::Elt => unreachable!("FK and ELT are REST"),
    })
}

/// The agency's own error form.
fn agency_error(agency: Agency, code: &str) -> Response {
    match agency {
        Agency::Ssbtek(Slot::Skv) => soap_fault(
            code,
            "Tekniskt fel i Skatteverkets tjänst",
            &format!(
                "<skv:Exception xmlns:skv=\"http://beskattningws.ws.service.bs.zg.rsv.se/\"><MeddelandeKod>{}</MeddelandeKod><MeddelandeText>Tekniskt fel i Skatteverkets tjänst</MeddelandeText><Systemversion>sim-1</Systemversion></skv:Exception>",
                data::esc(code)
            ),
            false,
        ),
        Agency::Ssbtek(Slot::Miv) => soap_fault(
            code,
            "Tekniskt fel hos Migrationsverket",
            &format!(
                "<miv:SSBTEKSoapException xmlns:miv=\"http://schema.migrationsverket.se/ssbtek/1/\"><faultCode>{}</faultCode><faultString>Tekniskt fel hos Migrationsverket</faultString></miv:SSBTEKSoapException>",
                data::esc(code)
            ),
            false,
        ),
        Agency::Ssbtek(Slot::Tns) => soap_ok(format!(
            "<tns:HamtaUppgifterResponse xmlns:tns=\"http://schema.transportstyrelsen.se/ssbtek/hamtauppgifterresponder/1\"><tns:resultat>FEL</tns:resultat><tns:felresultat><tns:felkod>{}</tns:felkod><tns:feltext>Uppgifter kunde inte hämtas</tns:feltext></tns:felresultat></tns:HamtaUppgifterResponse>",
            data::esc(code)
        )),
        _ => soap_fault(code, "Tekniskt fel i bastjänsten", "", false),
    }
}

/// LEFI v9 (FK + PM), REST/JSON.
async fn fk(
    State(shared): State<Arc<Shared>>,
    UrlPath(_aktor): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared
        .counters(Agency::Ssbtek(Slot::Fk))
        .note_trace(&headers);
    let bad = |text: &str| {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "kod": "OGILTIG_FRAGA", "beskrivning": text }).to_string(),
        )
            .into_response()
    };
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return bad("frågan är inte giltig JSON");
    };
    let Some(person) = req["personnummer"]
        .as_str()
        .and_then(|p| Personnummer::parse(p).ok())
    else {
        return bad("personnummer saknas eller är ogiltigt");
    };
    let from = req["period"]["from"]
        .as_str()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let tom = req["period"]["tom"]
        .as_str()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let (Some(from), Some(tom)) = (from, tom) else {
        return bad("period saknas");
    };
    if from > tom || tom > from + chrono::Months::new(24) {
        return bad("perioden får vara högst två år");
    }
    match execute(&shared, Agency::Ssbtek(Slot::Fk), person.as_str()).await {
        Err(response) => response,
        Ok(Some(code)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "kod": code, "beskrivning": "Tekniskt fel hos Försäkringskassan" })
                .to_string(),
        )
            .into_response(),
        Ok(None) => {
            let known = !shared.is_unknown(Agency::Ssbtek(Slot::Fk), person.as_str());
            let ctx = Context {
                known,
                records: shared.records(Agency::Ssbtek(Slot::Fk), person.as_str()),
                person,
                from,
                tom,
                ingivare_orgnr: String::new(),
                ingivare_namn: String::new(),
                handlaggare: String::new(),
                referens: String::new(),
                syfte: String::new(),
                lagtext: String::new(),
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                data::fk_json(&ctx).to_string(),
            )
                .into_response()
        }
    }
}

/// Försäkringskassan's registration of a time report (ELT). The adapter posts
/// the exact report bytes (after checking schema, rules and signatures); the
/// answer is the receipt: a transaction id, the time received and the SHA-256
/// of what was registered. The report id comes as `X-Tidredovisning-Id`.
/// Scenarios act on the agency `ELT` (latency, errors, hangs, outages).
async fn elt(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let json = |status: StatusCode, value: serde_json::Value| {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
            .into_response()
    };
    let report_id = headers
        .get("X-Tidredovisning-Id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| uuid::Uuid::parse_str(v).ok());
    let Some(report_id) = report_id else {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "kod": "OGILTIG_BEGARAN", "beskrivning": "X-Tidredovisning-Id saknas eller är ogiltigt" }),
        );
    };
    if body.is_empty() {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "kod": "OGILTIG_BEGARAN", "beskrivning": "tidredovisningen saknas" }),
        );
    }
    match execute(&shared, Agency::Elt, &report_id.to_string()).await {
        Err(response) => response,
        Ok(Some(code)) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "kod": code, "beskrivning": "Tekniskt fel hos Försäkringskassan" }),
        ),
        Ok(None) => {
            use sha2::Digest;
            let digest: String = sha2::Sha256::digest(&body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            json(
                StatusCode::OK,
                serde_json::json!({
                    "txId": uuid::Uuid::new_v4().to_string(),
                    "tidredovisningId": report_id.to_string(),
                    "mottagen": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "sha256": digest,
                }),
            )
        }
    }
}

async fn get_scenario(State(shared): State<Arc<Shared>>) -> String {
    shared
        .scenario
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .to_toml()
}

async fn put_scenario(State(shared): State<Arc<Shared>>, body: String) -> Response {
    match Scenario::parse(&body) {
        Ok(s) => {
            *shared.scenario.write().unwrap_or_else(|p| p.into_inner()) = s;
            tracing::info!("scenario replaced");
            (StatusCode::OK, "scenario replaced\n").into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("invalid scenario: {e}\n")).into_response(),
    }
}

async fn reset(State(shared): State<Arc<Shared>>) -> &'static str {
    *shared.scenario.write().unwrap_or_else(|p| p.into_inner()) = shared.initial.clone();
    "scenario reset\n"
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let map: BTreeMap<&str, serde_json::Value> = shared
        .stats
        .iter()
        .map(|(a, c)| {
            (
                a.id(),
                serde_json::json!({
                    "requests": c.requests.load(Ordering::Relaxed),
                    "errors": c.errors.load(Ordering::Relaxed),
                    "hangs": c.hangs.load(Ordering::Relaxed),
                    "outages": c.outages.load(Ordering::Relaxed),
                    "in_flight": c.in_flight.load(Ordering::Relaxed),
                    "hanging": c.hanging.load(Ordering::Relaxed),
                    "abandoned": c.abandoned.load(Ordering::Relaxed),
                    "trace_ids": c.trace_ids.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect::<Vec<_>>(),
                }),
            )
        })
        .collect();
    axum::Json(map).into_response()
}
