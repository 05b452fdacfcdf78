//! One function per case. Each returns a [`CaseReport`] whose reason says what
//! was seen; none panics on what the adapter answers.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::Datelike;

use shs_proto::v1 as proto;
use tonic::Code;
use tonic::transport::Identity;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::report::CaseReport;
use crate::{Kit, sim};

/// The deadline the deadline case sends (`grpc-timeout`).
pub const DEADLINE: Duration = Duration::from_millis(2000);
/// How late after [`DEADLINE`] its DEADLINE_EXCEEDED may arrive.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1000);
/// Calls the limit probe holds at once (over [`PROBE_CONNECTIONS`]
/// connections, so that HTTP/2 stream limits do not hide the adapter's).
pub const PROBE_CALLS: usize = 300;
const PROBE_CONNECTIONS: usize = 3;
/// The deadline of each probe call.
const PROBE_DEADLINE: Duration = Duration::from_millis(3000);
/// A RESOURCE_EXHAUSTED must come at once, not after a wait.
const PROMPT: Duration = Duration::from_millis(2000);
/// How long health may take to follow the base service.
const HEALTH_FOLLOWS_WITHIN: Duration = Duration::from_secs(20);
/// How long a cancelled base-service call may take to be dropped.
const CANCEL_WITHIN: Duration = Duration::from_secs(5);
/// The deadline of ordinary calls.
const CALL_DEADLINE: Duration = Duration::from_secs(15);
/// The deadline `query.within_deadline` sends: the relay's per-person
/// service level is 7 s for 90% of questions.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(5);
/// The deadline of the call `cancellation` cancels (long: it must end by the
/// cancellation, not by its deadline).
const CANCELLED_CALL_DEADLINE: Duration = Duration::from_secs(60);
/// How long the calls of `cancellation` and `limits.declared_concurrency` may
/// take to reach the base service.
const REACH_WITHIN: Duration = Duration::from_secs(10);
/// The deadline of each call of `limits.declared_concurrency`.
const DECLARED_DEADLINE: Duration = Duration::from_secs(20);

/// Runs a case and records how long it took.
pub async fn timed_case(case: impl Future<Output = CaseReport>) -> CaseReport {
    timed(async { (case.await, ()) }).await.0
}

/// Runs a case that also yields a value and records how long it took.
pub async fn timed<T>(case: impl Future<Output = (CaseReport, T)>) -> (CaseReport, T) {
    let started = Instant::now();
    let (mut report, value) = case.await;
    report.duration = started.elapsed();
    (report, value)
}

fn status_text(s: &tonic::Status) -> String {
    let message: String = s.message().chars().take(160).collect();
    format!("{:?} ({message})", s.code())
}

/// A query as the relay sends it, for `person`.
pub fn query(person: &str) -> proto::QueryRequest {
    let today = last_six_months();
    proto::QueryRequest {
        transaction_id: uuid::Uuid::new_v4().to_string(),
        caller: Some(proto::Caller {
            organisation_number: "2120002411".into(),
            name: "Sundsvalls kommun".into(),
            case_worker: "shs-conformance".into(),
        }),
        data_processors: Vec::new(),
        person_id: person.into(),
        case_id: "SHS-CONFORMANCE-1".into(),
        period: Some(proto::Period {
            from: today.0,
            to: today.1,
        }),
        purpose: relay_ssbtek::SYFTE_EKONOMISKT_BISTAND.into(),
        legal_basis: relay_ssbtek::LAGTEXT_EKONOMISKT_BISTAND.into(),
        environment: proto::Environment::Test as i32,
        provider_parameters: Vec::new(),
        correlation_id: String::new(),
    }
}

/// The last six months as ISO dates (`from`, `to`), from the system clock.
fn last_six_months() -> (String, String) {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    (civil(days - 182), civil(days))
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

async fn ask(
    kit: &Kit,
    request: proto::QueryRequest,
    deadline: Duration,
) -> Result<proto::QueryReply, tonic::Status> {
    let mut req = tonic::Request::new(request);
    req.set_timeout(deadline);
    kit.provider()
        .query(req)
        .await
        .map(tonic::Response::into_inner)
}

/// `describe`: contract version compatible with this relay, provider id, slot
/// and formats declared.
pub async fn describe(kit: &Kit) -> (CaseReport, Option<proto::DescribeReply>) {
    const NAME: &str = "describe";
    let mut req = tonic::Request::new(proto::DescribeRequest {});
    req.set_timeout(CALL_DEADLINE);
    let d = match kit.provider().describe(req).await {
        Ok(r) => r.into_inner(),
        Err(s) => {
            return (
                CaseReport::fail(NAME, format!("Describe failed: {}", status_text(&s))),
                None,
            );
        }
    };
    let mut problems = Vec::new();
    if !proto::is_compatible(&d.contract_version) {
        problems.push(format!(
            "contract_version {:?} is not compatible with this relay ({})",
            d.contract_version,
            proto::CONTRACT_VERSION
        ));
    }
    if d.provider_id != kit.slot {
        problems.push(format!(
            "provider_id {:?} is not the slot {}",
            d.provider_id, kit.slot
        ));
    }
    let expected_format = kit
        .ssbtek
        .map(|s| s.payload_format().to_owned())
        .unwrap_or_default();
    if kit.ssbtek.is_some() && d.payload_format != expected_format {
        problems.push(format!(
            "payload_format {:?} is not {expected_format:?}",
            d.payload_format
        ));
    } else if d.payload_format.is_empty() {
        problems.push("payload_format is empty".into());
    }
    if !d.operations.contains(&(proto::Operation::Query as i32)) {
        problems.push("operations do not include OPERATION_QUERY".into());
    }
    let submit = d.operations.contains(&(proto::Operation::Submit as i32));
    if submit == d.submit_document_types.is_empty() {
        problems
            .push("submit_document_types must be declared exactly when OPERATION_SUBMIT is".into());
    }
    if d.display_name.trim().is_empty() {
        problems.push("display_name is empty".into());
    }
    let semver = d.adapter_version.split('.').count() >= 3
        && d.adapter_version
            .split(['.', '-', '+'])
            .take(3)
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !semver {
        problems.push(format!(
            "adapter_version {:?} is not a semantic version",
            d.adapter_version
        ));
    }
    let report = if problems.is_empty() {
        CaseReport::pass(
            NAME,
            format!(
                "{} ({}) {}, adapter {}, {}{}",
                d.provider_id,
                d.display_name,
                d.contract_version,
                d.adapter_version,
                d.payload_format,
                if submit {
                    format!(", submit: {}", d.submit_document_types.join(", "))
                } else {
                    String::new()
                }
            ),
        )
    } else {
        CaseReport::fail(NAME, problems.join("; "))
    };
    (report, Some(d))
}

async fn health_status(kit: &Kit) -> Result<ServingStatus, String> {
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: proto::SERVICE_NAME.into(),
    });
    req.set_timeout(Duration::from_secs(5));
    match HealthClient::new(kit.channel.clone()).check(req).await {
        Ok(r) => ServingStatus::try_from(r.into_inner().status)
            .map_err(|_| "an unknown serving status".to_owned()),
        Err(s) => Err(format!("grpc.health.v1 Check failed: {}", status_text(&s))),
    }
}

async fn wait_health(
    kit: &Kit,
    wanted: ServingStatus,
    within: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        // An error (e.g. the service not registered yet while the adapter
        // starts) counts as "not yet" until the time is up.
        let now = health_status(kit).await;
        if now == Ok(wanted) {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= within {
            return Err(match now {
                Ok(s) => format!("still {} after {} s", s.as_str_name(), within.as_secs()),
                Err(e) => format!("{e} (for {} s)", within.as_secs()),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `health.serving`: `grpc.health.v1` answers SERVING for the contract's
/// service while the base service is up.
pub async fn health_serving(kit: &Kit) -> CaseReport {
    const NAME: &str = "health.serving";
    // An adapter may report NOT_SERVING until its first base-service check.
    match wait_health(kit, ServingStatus::Serving, Duration::from_secs(10)).await {
        Ok(_) => CaseReport::pass(NAME, format!("{} is SERVING", proto::SERVICE_NAME)),
        Err(e) => CaseReport::fail(NAME, format!("{}: {e}", proto::SERVICE_NAME)),
    }
}

/// `health.follows_base_service`: NOT_SERVING while the base service is down
/// (and a query then answers UNAVAILABLE), SERVING again when it is back.
pub async fn health_follows_base_service(kit: &Kit) -> CaseReport {
    const NAME: &str = "health.follows_base_service";
    let Some(sim) = &kit.sim else {
        return CaseReport::skipped(NAME, kit.no_sim.clone());
    };
    if let Err(e) = sim.set_down(true).await {
        return CaseReport::fail(NAME, format!("cannot take the base service down: {e}"));
    }
    let down = wait_health(kit, ServingStatus::NotServing, HEALTH_FOLLOWS_WITHIN).await;
    let person = kit.persons.known.first().cloned().unwrap_or_default();
    let while_down = ask(kit, query(&person), CALL_DEADLINE).await;
    let up_again = match sim.set_down(false).await {
        Ok(()) => wait_health(kit, ServingStatus::Serving, HEALTH_FOLLOWS_WITHIN).await,
        Err(e) => Err(format!("cannot bring the base service back: {e}")),
    };
    let mut problems = Vec::new();
    let down = match down {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("base service down, health {e}"));
            Duration::ZERO
        }
    };
    match &while_down {
        Err(s) if s.code() == Code::Unavailable => {}
        Err(s) => problems.push(format!(
            "a query while the base service is down answered {}, not UNAVAILABLE",
            status_text(s)
        )),
        Ok(r) => problems.push(format!(
            "a query while the base service is down answered {}, not UNAVAILABLE",
            reply_kind(r)
        )),
    }
    let up = match up_again {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("base service back, health {e}"));
            Duration::ZERO
        }
    };
    if problems.is_empty() {
        CaseReport::pass(
            NAME,
            format!(
                "NOT_SERVING {} ms after the base service went down (queries: UNAVAILABLE), SERVING {} ms after it came back",
                down.as_millis(),
                up.as_millis()
            ),
        )
    } else {
        CaseReport::fail(NAME, problems.join("; "))
    }
}

fn reply_kind(r: &proto::QueryReply) -> String {
    match &r.outcome {
        Some(proto::query_reply::Outcome::Data(d)) => format!("data ({})", d.format),
        Some(proto::query_reply::Outcome::Error(e)) => format!("a provider error ({})", e.code),
        None => "an empty reply".into(),
    }
}

/// `query.payload`: every known test person gets data whose payload is valid
/// for the slot.
pub async fn query_payload(kit: &Kit) -> CaseReport {
    const NAME: &str = "query.payload";
    let mut problems = Vec::new();
    let mut with_records = 0;
    for person in &kit.persons.known {
        let masked = mask(person);
        match ask(kit, query(person), CALL_DEADLINE).await {
            Err(s) => problems.push(format!("{masked}: {}", status_text(&s))),
            Ok(proto::QueryReply {
                outcome: Some(proto::query_reply::Outcome::Data(d)),
            }) => {
                if let Some(slot) = kit.ssbtek {
                    if d.format != slot.payload_format() {
                        problems.push(format!(
                            "{masked}: format {:?}, not {:?}",
                            d.format,
                            slot.payload_format()
                        ));
                    } else if let Err(e) = kit.schemas.check(slot, &d.payload) {
                        problems.push(format!("{masked}: {e}"));
                    } else if !crate::payload::records(slot, &d.payload).is_empty() {
                        with_records += 1;
                    }
                } else if d.payload.is_empty() {
                    problems.push(format!("{masked}: an empty payload"));
                }
            }
            Ok(r) => problems.push(format!("{masked}: {}, not data", reply_kind(&r))),
        }
    }
    if !problems.is_empty() {
        return CaseReport::fail(NAME, problems.join("; "));
    }
    match kit.ssbtek {
        Some(slot) => CaseReport::pass(
            NAME,
            format!(
                "{} persons: data valid against the SSBTEK v10 XSD as {} ({}), {} with records",
                kit.persons.known.len(),
                slot.as_str(),
                encoding(slot),
                with_records
            ),
        ),
        None => CaseReport::pass(
            NAME,
            format!(
                "{} persons answered with data (slot {} has no SSBTEK v10 schema: payloads not validated)",
                kit.persons.known.len(),
                kit.slot
            ),
        ),
    }
}

fn encoding(slot: relay_ssbtek::Slot) -> &'static str {
    use relay_ssbtek::Slot;
    match slot {
        Slot::Csn => "base64 XML",
        Slot::Fk => "base64 LEFI JSON",
        Slot::Skv => "a string",
        Slot::Af | Slot::So | Slot::Tns | Slot::Miv => "inline XML",
    }
}

/// A person id as it may appear in a report: birth date only.
fn mask(person: &str) -> String {
    format!("{}-****", person.get(..8).unwrap_or(person))
}

/// `query.unknown_person`: a person the base service does not know gets data
/// with no records, valid for the slot; not an error.
pub async fn query_unknown_person(kit: &Kit) -> CaseReport {
    const NAME: &str = "query.unknown_person";
    let Some(slot) = kit.ssbtek else {
        return CaseReport::skipped(
            NAME,
            format!("slot {} has no SSBTEK v10 answer shape", kit.slot),
        );
    };
    let mut persons = kit.persons.unknown.clone();
    if let Some(sim) = &kit.sim
        && persons.is_empty()
    {
        persons.push(sim.scripted().unknown.clone());
    }
    if persons.is_empty() {
        return CaseReport::skipped(
            NAME,
            "no person the base service does not know: mark one `unknown` in --persons, or use --sim-admin",
        );
    }
    let mut problems = Vec::new();
    for person in &persons {
        let masked = mask(person);
        match ask(kit, query(person), CALL_DEADLINE).await {
            Err(s) => problems.push(format!("{masked}: {}", status_text(&s))),
            Ok(proto::QueryReply {
                outcome: Some(proto::query_reply::Outcome::Data(d)),
            }) => {
                if let Err(e) = kit.schemas.check(slot, &d.payload) {
                    problems.push(format!("{masked}: {e}"));
                }
                let records = crate::payload::records(slot, &d.payload);
                if !records.is_empty() {
                    problems.push(format!(
                        "{masked}: the answer holds records ({}) for a person the base service does not know",
                        records.join(", ")
                    ));
                }
            }
            Ok(r) => problems.push(format!(
                "{masked}: {} (an unknown person is not an error)",
                reply_kind(&r)
            )),
        }
    }
    if problems.is_empty() {
        CaseReport::pass(
            NAME,
            format!(
                "{} unknown person(s): valid data with no records, not an error",
                persons.len()
            ),
        )
    } else {
        CaseReport::fail(NAME, problems.join("; "))
    }
}

/// `errors.provider_error`: a base-service error arrives as the typed provider
/// error with the agency's own code.
pub async fn provider_error(kit: &Kit) -> CaseReport {
    const NAME: &str = "errors.provider_error";
    let Some(sim) = &kit.sim else {
        return CaseReport::skipped(NAME, kit.no_sim.clone());
    };
    match ask(kit, query(&sim.scripted().error), CALL_DEADLINE).await {
        Ok(proto::QueryReply {
            outcome: Some(proto::query_reply::Outcome::Error(e)),
        }) if e.code == sim::ERROR_CODE => CaseReport::pass(
            NAME,
            format!(
                "the base service's error {} arrived as a provider error with its code",
                sim::ERROR_CODE
            ),
        ),
        Ok(proto::QueryReply {
            outcome: Some(proto::query_reply::Outcome::Error(e)),
        }) => CaseReport::fail(
            NAME,
            format!(
                "the base service answered error {}, the adapter's provider error has code {:?}",
                sim::ERROR_CODE,
                e.code
            ),
        ),
        Ok(r) => CaseReport::fail(
            NAME,
            format!(
                "the base service answered error {}, the adapter answered {}",
                sim::ERROR_CODE,
                reply_kind(&r)
            ),
        ),
        Err(s) => CaseReport::fail(
            NAME,
            format!(
                "the base service answered error {}, the adapter answered {} instead of a provider error",
                sim::ERROR_CODE,
                status_text(&s)
            ),
        ),
    }
}

/// No answer within the deadline plus the margin.
struct Late;

/// A query with `grpc-timeout` = `deadline` over a plain HTTP/2 connection of
/// the kit's own: tonic's channel would end the call at the deadline itself,
/// and then a late adapter could not be told from a punctual one. The kit
/// waits up to the deadline plus [`DEADLINE_MARGIN`].
async fn ask_without_own_timer(
    kit: &Kit,
    request: proto::QueryRequest,
    deadline: Duration,
) -> Result<Result<proto::QueryReply, tonic::Status>, Late> {
    let send = async {
        let sender = match h2_connection(kit).await {
            Ok(s) => s,
            Err(e) => return Err(tonic::Status::unavailable(format!("cannot connect: {e}"))),
        };
        let service = tower::service_fn(
            move |req: tonic::codegen::http::Request<tonic::body::Body>| {
                let mut sender = sender.clone();
                async move { sender.send_request(req).await }
            },
        );
        let origin: tonic::codegen::http::Uri = kit
            .args
            .endpoint
            .parse()
            .map_err(|_| tonic::Status::invalid_argument("--endpoint"))?;
        let mut client = proto::provider_client::ProviderClient::with_origin(service, origin);
        let mut req = tonic::Request::new(request);
        req.set_timeout(deadline);
        client.query(req).await.map(tonic::Response::into_inner)
    };
    tokio::time::timeout(deadline + DEADLINE_MARGIN, send)
        .await
        .map_err(|_| Late)
}

/// One HTTP/2 connection over mutual TLS to the adapter, with the kit's
/// certificate.
async fn h2_connection(
    kit: &Kit,
) -> anyhow::Result<hyper::client::conn::http2::SendRequest<tonic::body::Body>> {
    let uri: tonic::codegen::http::Uri = kit.args.endpoint.parse()?;
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let tls = relay_pki::tls::client_config(
        &kit.args.ca,
        Some((&kit.args.cert, &kit.args.key)),
        &[b"h2"],
    )?;
    let name = rustls::pki_types::ServerName::try_from(kit.tls_name.clone())?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect(name, tcp)
        .await?;
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// `deadline`: a call with a short `grpc-timeout` whose base-service call never
/// ends answers DEADLINE_EXCEEDED by the deadline, and the base-service call is
/// cancelled.
pub async fn deadline(kit: &Kit) -> CaseReport {
    const NAME: &str = "deadline";
    let Some(sim) = &kit.sim else {
        return CaseReport::skipped(NAME, kit.no_sim.clone());
    };
    let started = Instant::now();
    let answer = ask_without_own_timer(kit, query(&sim.scripted().hang), DEADLINE).await;
    let took = started.elapsed();
    let ms = DEADLINE.as_millis();
    let limit = DEADLINE + DEADLINE_MARGIN;
    let timing = match answer {
        Err(Late) => Err(format!(
            "no answer within the {ms} ms deadline plus {} ms: the adapter must answer DEADLINE_EXCEEDED itself, never late",
            DEADLINE_MARGIN.as_millis()
        )),
        Ok(Err(s)) if s.code() == Code::DeadlineExceeded && took <= limit => Ok(()),
        Ok(Err(s)) => Err(format!(
            "answered {} after {} ms, not DEADLINE_EXCEEDED within {} ms",
            status_text(&s),
            took.as_millis(),
            limit.as_millis()
        )),
        Ok(Ok(r)) => Err(format!(
            "answered {} after {} ms although the base service never answered",
            reply_kind(&r),
            took.as_millis()
        )),
    };
    let cancelled = match sim.wait_no_hanging(CANCEL_WITHIN).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "the base-service call was still open {} s after the deadline: the cancellation did not reach it",
            CANCEL_WITHIN.as_secs()
        )),
        Err(e) => Err(format!("cannot read the simulator's counters: {e}")),
    };
    match (timing, cancelled) {
        (Ok(()), Ok(())) => CaseReport::pass(
            NAME,
            format!(
                "DEADLINE_EXCEEDED after {} ms ({ms} ms deadline); the base-service call was cancelled",
                took.as_millis()
            ),
        ),
        (a, b) => CaseReport::fail(
            NAME,
            [a.err(), b.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

/// A large answer's payload is at least this big.
pub const LARGE_AT_LEAST: usize = 256 * 1024;
/// The contract's limit on a reply: the relay decodes at most 16 MiB.
pub const REPLY_LIMIT: usize = 16 * 1024 * 1024;

/// `query.large_answer`: when the base service answers with many records
/// ([`sim::LARGE_RECORDS`]), the adapter hands the whole answer on: data of
/// at least [`LARGE_AT_LEAST`] bytes, within the contract's 16 MiB, valid for
/// the slot.
pub async fn query_large_answer(kit: &Kit) -> CaseReport {
    const NAME: &str = "query.large_answer";
    let Some(sim) = &kit.sim else {
        return CaseReport::skipped(NAME, kit.no_sim.clone());
    };
    let Some(slot) = kit.ssbtek else {
        return CaseReport::skipped(NAME, kit.no_sim.clone());
    };
    let records = sim::LARGE_RECORDS;
    match ask(kit, query(&sim.scripted().large), CALL_DEADLINE).await {
        Ok(proto::QueryReply {
            outcome: Some(proto::query_reply::Outcome::Data(d)),
        }) => {
            let size = d.payload.len();
            if size < LARGE_AT_LEAST {
                CaseReport::fail(
                    NAME,
                    format!(
                        "the base service answered with {records} records, the payload has only {size} bytes: the answer was cut"
                    ),
                )
            } else if size > REPLY_LIMIT {
                CaseReport::fail(
                    NAME,
                    format!("a payload of {size} bytes is over the contract's 16 MiB"),
                )
            } else if let Err(e) = kit.schemas.check(slot, &d.payload) {
                CaseReport::fail(NAME, format!("{} KiB: {e}", size / 1024))
            } else {
                CaseReport::pass(
                    NAME,
                    format!(
                        "{records} records: {} KiB of data, valid for the slot, within the contract's 16 MiB",
                        size / 1024
                    ),
                )
            }
        }
        Ok(r) => CaseReport::fail(NAME, format!("{}, not data", reply_kind(&r))),
        Err(s) => CaseReport::fail(
            NAME,
            format!(
                "a large answer ({records} records) answered {}",
                status_text(&s)
            ),
        ),
    }
}

/// `query.within_deadline`: a known person's query, sent with a deadline the
/// base service can meet, is answered with data before that deadline (the
/// kit's own connection: it sees a late answer as late).
pub async fn query_within_deadline(kit: &Kit) -> CaseReport {
    const NAME: &str = "query.within_deadline";
    let person = kit.persons.known.first().cloned().unwrap_or_default();
    let started = Instant::now();
    let answer = ask_without_own_timer(kit, query(&person), ANSWER_DEADLINE).await;
    let took = started.elapsed();
    let ms = ANSWER_DEADLINE.as_millis();
    match answer {
        Ok(Ok(proto::QueryReply {
            outcome: Some(proto::query_reply::Outcome::Data(_)),
        })) if took <= ANSWER_DEADLINE => CaseReport::pass(
            NAME,
            format!("data after {} ms ({ms} ms deadline)", took.as_millis()),
        ),
        Ok(Ok(r)) if took <= ANSWER_DEADLINE => CaseReport::fail(
            NAME,
            format!("{}, not data, for a known person", reply_kind(&r)),
        ),
        Ok(Ok(_)) => CaseReport::fail(
            NAME,
            format!(
                "answered after {} ms, past its {ms} ms deadline",
                took.as_millis()
            ),
        ),
        Ok(Err(s)) => CaseReport::fail(
            NAME,
            format!(
                "answered {} after {} ms ({ms} ms deadline)",
                status_text(&s),
                took.as_millis()
            ),
        ),
        Err(Late) => CaseReport::fail(
            NAME,
            format!(
                "no answer within the {ms} ms deadline plus {} ms",
                DEADLINE_MARGIN.as_millis()
            ),
        ),
    }
}

/// `cancellation`: a call the caller cancels before its deadline (the relay
/// does so when the whole question has been answered or given up) stops its
/// base-service call at once: the base service sees the call abandoned.
pub async fn cancellation(kit: &Kit) -> CaseReport {
    const NAME: &str = "cancellation";
    let Some(sim) = &kit.sim else {
        return CaseReport::skipped(NAME, kit.no_sim.clone());
    };
    let before = match sim.abandoned().await {
        Ok(n) => n,
        Err(e) => {
            return CaseReport::fail(NAME, format!("cannot read the simulator's counters: {e}"));
        }
    };
    // Boxed, so that `drop` below really drops (cancels) the call.
    let mut call = Box::pin(ask(
        kit,
        query(&sim.scripted().hang),
        CANCELLED_CALL_DEADLINE,
    ));
    let reached = tokio::select! {
        r = &mut call => {
            let what = match r {
                Ok(r) => reply_kind(&r),
                Err(s) => status_text(&s),
            };
            return CaseReport::fail(
                NAME,
                format!("the call ended ({what}) although the base service never answers"),
            );
        }
        n = sim.wait_hanging(1, REACH_WITHIN) => n,
    };
    match reached {
        Ok(n) if n >= 1 => {}
        Ok(_) => {
            return CaseReport::fail(
                NAME,
                format!(
                    "the call did not reach the base service within {} s",
                    REACH_WITHIN.as_secs()
                ),
            );
        }
        Err(e) => {
            return CaseReport::fail(NAME, format!("cannot read the simulator's counters: {e}"));
        }
    }
    // Dropping the call cancels it (HTTP/2 RST_STREAM with CANCEL).
    drop(call);
    let started = Instant::now();
    let gone = sim.wait_no_hanging(CANCEL_WITHIN).await;
    let abandoned = sim.abandoned().await;
    match (gone, abandoned) {
        (Ok(true), Ok(after)) if after > before => CaseReport::pass(
            NAME,
            format!(
                "the base-service call was dropped {} ms after the call was cancelled",
                started.elapsed().as_millis()
            ),
        ),
        (Ok(true), Ok(_)) => CaseReport::fail(
            NAME,
            "the base-service call ended, but the base service did not see it abandoned",
        ),
        (Ok(false), _) => CaseReport::fail(
            NAME,
            format!(
                "the base-service call was still open {} s after the call was cancelled: the cancellation did not reach it",
                CANCEL_WITHIN.as_secs()
            ),
        ),
        (Err(e), _) | (_, Err(e)) => {
            CaseReport::fail(NAME, format!("cannot read the simulator's counters: {e}"))
        }
    }
}

/// `limits.declared_concurrency`: as many calls at once as the adapter
/// declares (`--max-concurrent`, its `limits.max_concurrent`) all reach the
/// base service together; none is refused.
pub async fn declared_concurrency(kit: &Kit) -> CaseReport {
    const NAME: &str = "limits.declared_concurrency";
    let Some(sim) = &kit.sim else {
        return CaseReport::skipped(NAME, kit.no_sim.clone());
    };
    let Some(n) = kit.args.max_concurrent else {
        return CaseReport::skipped(
            NAME,
            "needs --max-concurrent N, the adapter's declared limit (its limits.max_concurrent)",
        );
    };
    let identity = match (std::fs::read(&kit.args.cert), std::fs::read(&kit.args.key)) {
        (Ok(c), Ok(k)) => Identity::from_pem(c, k),
        _ => return CaseReport::fail(NAME, "cannot read --cert/--key"),
    };
    let mut channels = Vec::new();
    for _ in 0..PROBE_CONNECTIONS {
        match kit.connect(Some(identity.clone())) {
            Ok(c) => channels.push(c),
            Err(e) => return CaseReport::fail(NAME, format!("cannot connect: {e}")),
        }
    }
    let person = sim.scripted().limit.clone();
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let calls = (0..n as usize).map(|i| {
        let channel = channels[i % channels.len()].clone();
        let person = person.clone();
        let refused = &refused;
        async move {
            let mut req = tonic::Request::new(query(&person));
            req.set_timeout(DECLARED_DEADLINE);
            let r = proto::provider_client::ProviderClient::new(channel)
                .query(req)
                .await;
            if r.err().is_some_and(|s| s.code() == Code::ResourceExhausted) {
                refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    let all = futures::future::join_all(calls);
    let most = tokio::select! {
        _ = all => sim.hanging().await.map(|_| 0),
        most = sim.wait_hanging(n, REACH_WITHIN) => most,
    };
    // The calls are dropped (cancelled) here; let their base-service calls end.
    let _ = sim.wait_no_hanging(CANCEL_WITHIN).await;
    let refused = refused.load(std::sync::atomic::Ordering::SeqCst);
    match most {
        Err(e) => CaseReport::fail(NAME, format!("cannot read the simulator's counters: {e}")),
        Ok(most) if most >= n && refused == 0 => CaseReport::pass(
            NAME,
            format!("{n} calls at once (the declared limit) all reached the base service"),
        ),
        Ok(most) => CaseReport::fail(
            NAME,
            format!(
                "{n} calls at once (the declared limit): at most {most} reached the base service together within {} s, {refused} answered RESOURCE_EXHAUSTED",
                REACH_WITHIN.as_secs()
            ),
        ),
    }
}

/// `limits`: beyond its concurrency limit the adapter answers
/// RESOURCE_EXHAUSTED at once, not after a wait. (What the held calls answer
/// is the deadline case's business.)
pub async fn limits(kit: &Kit) -> CaseReport {
    const NAME: &str = "limits";
    let Some(sim) = &kit.sim else {
        return CaseReport::skipped(NAME, kit.no_sim.clone());
    };
    let identity = match (std::fs::read(&kit.args.cert), std::fs::read(&kit.args.key)) {
        (Ok(c), Ok(k)) => Identity::from_pem(c, k),
        _ => return CaseReport::fail(NAME, "cannot read --cert/--key"),
    };
    let mut channels = Vec::new();
    for _ in 0..PROBE_CONNECTIONS {
        match kit.connect(Some(identity.clone())) {
            Ok(c) => channels.push(c),
            Err(e) => return CaseReport::fail(NAME, format!("cannot connect: {e}")),
        }
    }
    let person = sim.scripted().limit.clone();
    let calls = (0..PROBE_CALLS).map(|i| {
        let channel = channels[i % channels.len()].clone();
        let person = person.clone();
        async move {
            let mut req = tonic::Request::new(query(&person));
            req.set_timeout(PROBE_DEADLINE);
            let started = Instant::now();
            let r = proto::provider_client::ProviderClient::new(channel)
                .query(req)
                .await;
            (r.err().map(|s| s.code()), started.elapsed())
        }
    });
    let results = futures::future::join_all(calls).await;
    let exhausted: Vec<Duration> = results
        .iter()
        .filter(|(c, _)| *c == Some(Code::ResourceExhausted))
        .map(|(_, t)| *t)
        .collect();
    let held = results.len() - exhausted.len();
    let slowest = exhausted.iter().max().copied().unwrap_or_default();
    // Let the held base-service calls end before the next case.
    let _ = sim.wait_no_hanging(CANCEL_WITHIN).await;
    if exhausted.is_empty() {
        CaseReport::fail(
            NAME,
            format!(
                "{PROBE_CALLS} calls at once whose base-service calls never end: none answered RESOURCE_EXHAUSTED (a limit above {PROBE_CALLS} cannot be probed: certify with limits.max_concurrent at most {})",
                PROBE_CALLS - 1
            ),
        )
    } else if slowest > PROMPT {
        CaseReport::fail(
            NAME,
            format!(
                "RESOURCE_EXHAUSTED came after up to {} ms: beyond the limit the answer must come at once",
                slowest.as_millis()
            ),
        )
    } else {
        CaseReport::pass(
            NAME,
            format!(
                "{held} calls held (the limit), {} answered RESOURCE_EXHAUSTED within {} ms",
                exhausted.len(),
                slowest.as_millis()
            ),
        )
    }
}

/// A Describe over `channel`; the security cases expect it to fail.
async fn probe(channel: tonic::transport::Channel) -> Result<(), tonic::Status> {
    let mut req = tonic::Request::new(proto::DescribeRequest {});
    req.set_timeout(Duration::from_secs(10));
    proto::provider_client::ProviderClient::new(channel)
        .describe(req)
        .await
        .map(|_| ())
}

/// The control for the security cases: the same probe with the kit's own
/// certificate must get through, or a refusal proves nothing.
async fn control(kit: &Kit) -> Result<(), String> {
    let identity = match (std::fs::read(&kit.args.cert), std::fs::read(&kit.args.key)) {
        (Ok(c), Ok(k)) => Identity::from_pem(c, k),
        _ => return Err("cannot read --cert/--key".into()),
    };
    let channel = kit.connect(Some(identity)).map_err(|e| e.to_string())?;
    probe(channel).await.map_err(|s| {
        format!(
            "the control probe with the kit's own certificate failed too ({}): nothing to conclude",
            status_text(&s)
        )
    })
}

fn refused(name: &'static str, who: &str, r: Result<(), tonic::Status>) -> CaseReport {
    match r {
        Ok(()) => CaseReport::fail(name, format!("the adapter answered {who}")),
        Err(s)
            if matches!(
                s.code(),
                Code::PermissionDenied | Code::Unauthenticated | Code::Unimplemented
            ) =>
        {
            CaseReport::fail(
                name,
                format!(
                    "{who} got through the TLS handshake and was refused only by the application ({}); the handshake must refuse it",
                    status_text(&s)
                ),
            )
        }
        Err(s) => CaseReport::pass(
            name,
            format!("{who} refused in the handshake ({:?})", s.code()),
        ),
    }
}

/// `security.no_client_certificate`: a client without a certificate is
/// refused in the handshake.
pub async fn no_client_certificate(kit: &Kit) -> CaseReport {
    const NAME: &str = "security.no_client_certificate";
    if let Err(e) = control(kit).await {
        return CaseReport::fail(NAME, e);
    }
    match kit.connect(None) {
        Ok(c) => refused(NAME, "a client without a certificate", probe(c).await),
        Err(e) => CaseReport::fail(NAME, format!("cannot set up the probe: {e}")),
    }
}

/// `security.foreign_ca`: a client whose certificate is from another CA is
/// refused in the handshake.
pub async fn foreign_ca(kit: &Kit) -> CaseReport {
    const NAME: &str = "security.foreign_ca";
    if let Err(e) = control(kit).await {
        return CaseReport::fail(NAME, e);
    }
    let files = relay_pki::DevCa::new("shs-conformance foreign CA").and_then(|ca| {
        ca.client_cert(&relay_pki::Subject {
            serial_number: None,
            organisation: None,
            common_name: "shs-relay",
        })?
        .write(kit.scratch.path(), "foreign")
    });
    let identity = files.map_err(|e| e.to_string()).and_then(|f| {
        Ok(Identity::from_pem(
            std::fs::read(&f.cert).map_err(|e| e.to_string())?,
            std::fs::read(&f.key).map_err(|e| e.to_string())?,
        ))
    });
    match identity.map(|id| kit.connect(Some(id))) {
        Ok(Ok(c)) => refused(
            NAME,
            "a client with a certificate from another CA",
            probe(c).await,
        ),
        Ok(Err(e)) => CaseReport::fail(NAME, format!("cannot set up the probe: {e}")),
        Err(e) => CaseReport::fail(NAME, format!("cannot make the foreign certificate: {e}")),
    }
}

/// `tracing`: an incoming `traceparent` is continued: the trace reaches the
/// base service.
pub async fn tracing(kit: &Kit) -> CaseReport {
    const NAME: &str = "tracing";
    let Some(sim) = &kit.sim else {
        return CaseReport::skipped(NAME, kit.no_sim.clone());
    };
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(16)
        .collect();
    let person = kit.persons.known.first().cloned().unwrap_or_default();
    let mut req = tonic::Request::new(query(&person));
    req.set_timeout(CALL_DEADLINE);
    match format!("00-{trace_id}-{span_id}-01").parse() {
        Ok(v) => {
            req.metadata_mut().insert("traceparent", v);
        }
        Err(_) => return CaseReport::fail(NAME, "cannot build a traceparent"),
    }
    if let Err(s) = kit.provider().query(req).await {
        return CaseReport::fail(
            NAME,
            format!("the traced query failed: {}", status_text(&s)),
        );
    }
    match sim.saw_trace(&trace_id).await {
        Ok(true) => CaseReport::pass(
            NAME,
            "the caller's trace id reached the base service in its traceparent header",
        ),
        Ok(false) => CaseReport::fail(
            NAME,
            "the base-service call did not carry the caller's trace id (traceparent): the trace is not continued",
        ),
        Err(e) => CaseReport::fail(NAME, format!("cannot read the simulator's counters: {e}")),
    }
}

fn offers_submit(d: Option<&proto::DescribeReply>) -> bool {
    d.is_some_and(|d| d.operations.contains(&(proto::Operation::Submit as i32)))
}

/// `submit.typed_refusal` (adapters that offer `Submit`): a document that is
/// neither valid nor signed is refused with a typed `SubmitError`, not a
/// receipt and not a bare gRPC error.
pub async fn submit(kit: &Kit, d: Option<&proto::DescribeReply>) -> CaseReport {
    const NAME: &str = "submit.typed_refusal";
    if !offers_submit(d) {
        return CaseReport::skipped(NAME, "the adapter does not offer Submit");
    }
    let document_type = d
        .and_then(|d| d.submit_document_types.first().cloned())
        .unwrap_or_default();
    let mut req = tonic::Request::new(proto::SubmitRequest {
        transaction_id: uuid::Uuid::new_v4().to_string(),
        caller: None,
        document_type,
        document: b"<inte-en-tidredovisning/>".to_vec(),
        attachments: Vec::new(),
        environment: proto::Environment::Test as i32,
        document_id: String::new(),
    });
    req.set_timeout(CALL_DEADLINE);
    match kit
        .provider()
        .submit(req)
        .await
        .map(tonic::Response::into_inner)
    {
        Ok(proto::SubmitReply {
            outcome: Some(proto::submit_reply::Outcome::Error(e)),
        }) if e.kind != proto::SubmitErrorKind::Unspecified as i32 => CaseReport::pass(
            NAME,
            format!(
                "refused as {} ({})",
                proto::SubmitErrorKind::try_from(e.kind)
                    .map(|k| k.as_str_name())
                    .unwrap_or("an unknown kind"),
                e.code
            ),
        ),
        Ok(proto::SubmitReply {
            outcome: Some(proto::submit_reply::Outcome::Error(_)),
        }) => CaseReport::fail(NAME, "refused with SUBMIT_ERROR_KIND_UNSPECIFIED"),
        Ok(proto::SubmitReply {
            outcome: Some(proto::submit_reply::Outcome::Receipt(_)),
        }) => CaseReport::fail(NAME, "an unsigned, invalid document got a receipt"),
        Ok(_) => CaseReport::fail(NAME, "an empty SubmitReply"),
        Err(s) => CaseReport::fail(
            NAME,
            format!(
                "answered {} instead of a typed SubmitError",
                status_text(&s)
            ),
        ),
    }
}

/// `submit.receipt` (adapters that offer `Submit`): a valid example time report
/// for last month, signed by the test assistant and assistance company given
/// with `--assistant-signer-*` and `--anordnare-signer-*`, gets a receipt whose
/// SHA-256 is the digest of the exact bytes sent and whose document id is the
/// report's; sent again unchanged, it gets the same receipt marked `repeat`.
pub async fn submit_receipt(kit: &Kit, d: Option<&proto::DescribeReply>) -> CaseReport {
    const NAME: &str = "submit.receipt";
    if !offers_submit(d) {
        return CaseReport::skipped(NAME, "the adapter does not offer Submit");
    }
    let a = &kit.args;
    let (Some(ac), Some(ak), Some(oc), Some(ok)) = (
        &a.assistant_signer_cert,
        &a.assistant_signer_key,
        &a.anordnare_signer_cert,
        &a.anordnare_signer_key,
    ) else {
        return CaseReport::skipped(
            NAME,
            "needs signers the adapter trusts: give --assistant-signer-cert/-key and --anordnare-signer-cert/-key",
        );
    };
    let (assistant, anordnare) = match (load_signer(ac, ak), load_signer(oc, ok)) {
        (Ok(a), Ok(o)) => (a, o),
        (Err(e), _) | (_, Err(e)) => return CaseReport::fail(NAME, e),
    };
    let (Some(assistant_id), Some(anordnare_id)) =
        (assistant.serial_number(), anordnare.serial_number())
    else {
        return CaseReport::fail(
            NAME,
            "a signer certificate has no subject serialNumber (the personnummer or organisation number the report names)",
        );
    };
    let Some(insured) = kit.persons.known.iter().find(|p| **p != assistant_id) else {
        return CaseReport::fail(NAME, "no known test person other than the assistant");
    };
    let today = chrono::Utc::now().date_naive();
    let month = today
        .with_day(1)
        .and_then(|first| first.pred_opt())
        .unwrap_or(today);
    let id = uuid::Uuid::new_v4();
    let document = relay_elt::example::ExampleReport {
        insured,
        assistant: &assistant_id,
        anordnare: &anordnare_id,
        month,
        id,
    }
    .to_xml()
    .into_bytes();
    let sign = |signer: &relay_elt::signature::Signer, name: &str| {
        signer
            .sign(&document)
            .map(|content| proto::Attachment {
                name: name.to_owned(),
                content_type: relay_elt::SIGNATURE_MIME.to_owned(),
                content,
                attributes: [("datumForSignatur".to_owned(), today.to_string())].into(),
            })
            .map_err(|e| format!("signing the example report: {e}"))
    };
    let attachments = match (
        sign(&assistant, relay_elt::DATAPART_ASSISTANT_SIGNATURE),
        sign(&anordnare, relay_elt::DATAPART_ANORDNARE_SIGNATURE),
    ) {
        (Ok(a), Ok(o)) => vec![a, o],
        (Err(e), _) | (_, Err(e)) => return CaseReport::fail(NAME, e),
    };
    let digest = relay_elt::sha256_hex(&document);
    let request = proto::SubmitRequest {
        transaction_id: uuid::Uuid::new_v4().to_string(),
        caller: None,
        document_type: relay_elt::DATAPART_REPORT.to_owned(),
        document: document.clone(),
        attachments,
        environment: proto::Environment::Test as i32,
        document_id: id.to_string(),
    };
    let send = |request: proto::SubmitRequest| async {
        let mut req = tonic::Request::new(request);
        req.set_timeout(CALL_DEADLINE);
        kit.provider()
            .submit(req)
            .await
            .map(tonic::Response::into_inner)
    };
    let first = match send(request.clone()).await {
        Ok(proto::SubmitReply {
            outcome: Some(proto::submit_reply::Outcome::Receipt(r)),
        }) => r,
        Ok(proto::SubmitReply {
            outcome: Some(proto::submit_reply::Outcome::Error(e)),
        }) => {
            return CaseReport::fail(
                NAME,
                format!(
                    "a valid, signed report was refused ({}: {})",
                    e.code,
                    e.messages.join("; ")
                ),
            );
        }
        Ok(_) => return CaseReport::fail(NAME, "an empty SubmitReply"),
        Err(s) => {
            return CaseReport::fail(
                NAME,
                format!("a valid, signed report answered {}", status_text(&s)),
            );
        }
    };
    if let Some(problem) = receipt_problem(&first, &digest, &id.to_string()) {
        return CaseReport::fail(NAME, problem);
    }
    if first.repeat {
        return CaseReport::fail(NAME, "the first receipt for a new report says `repeat`");
    }
    match send(request).await {
        Ok(proto::SubmitReply {
            outcome: Some(proto::submit_reply::Outcome::Receipt(again)),
        }) if again.repeat
            && again.receipt_id == first.receipt_id
            && again.sha256 == first.sha256 =>
        {
            CaseReport::pass(
                NAME,
                format!(
                    "receipt {} with the document's SHA-256; the repeat got the same receipt",
                    first.receipt_id
                ),
            )
        }
        Ok(proto::SubmitReply {
            outcome: Some(proto::submit_reply::Outcome::Receipt(_)),
        }) => CaseReport::fail(
            NAME,
            "sent again unchanged, the report got a new receipt instead of the original marked `repeat`",
        ),
        Ok(other) => CaseReport::fail(
            NAME,
            format!("sent again unchanged, the report was not acknowledged: {other:?}"),
        ),
        Err(s) => CaseReport::fail(
            NAME,
            format!(
                "sent again unchanged, the report answered {}",
                status_text(&s)
            ),
        ),
    }
}

/// What is wrong with a first receipt, if anything.
fn receipt_problem(r: &proto::Receipt, digest: &str, document_id: &str) -> Option<String> {
    if r.sha256 != digest {
        return Some(format!(
            "the receipt's sha256 {} is not the digest of the bytes sent ({digest})",
            r.sha256
        ));
    }
    if r.document_id != document_id {
        return Some("the receipt's document_id is not the report's id".into());
    }
    if uuid::Uuid::parse_str(&r.receipt_id).is_err() {
        return Some("the receipt_id is not a UUID".into());
    }
    if chrono::DateTime::parse_from_rfc3339(&r.received_at).is_err() {
        return Some("received_at is not an RFC 3339 timestamp".into());
    }
    None
}

fn load_signer(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<relay_elt::signature::Signer, String> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    relay_elt::signature::Signer::from_pem(&read(cert)?, &read(key)?)
        .map_err(|e| format!("{}: {e}", cert.display()))
}

/// `planned_maintenance`: the windows the adapter announces in `Describe`
/// (`planned_maintenance`, seed 002 §12.2.3) keep the contract's rules: at most
/// 20, unique ids of 1 to 64 characters of `A-Za-z0-9._-`, RFC 3339 times with
/// the end after the start and at most 7 days after it, texts of at most 200
/// characters without ten digits in a row (they are shown to every connected
/// party). An adapter announcing none passes (nothing planned).
pub fn planned_maintenance(d: Option<&proto::DescribeReply>) -> CaseReport {
    const NAME: &str = "planned_maintenance";
    let Some(d) = d else {
        return CaseReport::skipped(NAME, "Describe did not answer");
    };
    if d.planned_maintenance.is_empty() {
        return CaseReport::pass(NAME, "no planned maintenance announced");
    }
    let mut problems = Vec::new();
    if d.planned_maintenance.len() > 20 {
        problems.push(format!(
            "{} windows announced; the relay takes at most 20",
            d.planned_maintenance.len()
        ));
    }
    let time = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    for (n, w) in d.planned_maintenance.iter().enumerate() {
        let id_ok = !w.id.is_empty()
            && w.id.len() <= 64
            && w.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        let name: String = w.id.chars().take(64).collect();
        if !id_ok {
            problems.push(format!(
                "window {n}: id {name:?} is not 1 to 64 of A-Za-z0-9._-"
            ));
        }
        if d.planned_maintenance[..n].iter().any(|o| o.id == w.id) {
            problems.push(format!("window {name:?}: id announced twice"));
        }
        match (time(&w.starts_at), time(&w.ends_at)) {
            (Some(start), Some(end)) => {
                if end <= start || end - start > chrono::TimeDelta::days(7) {
                    problems.push(format!(
                        "window {name:?}: ends_at must be after starts_at and at most 7 days after it"
                    ));
                }
            }
            _ => problems.push(format!(
                "window {name:?}: starts_at and ends_at must be RFC 3339 times"
            )),
        }
        for (lang, text) in [
            ("description_sv", &w.description_sv),
            ("description_en", &w.description_en),
        ] {
            if text.chars().count() > 200 {
                problems.push(format!(
                    "window {name:?}: {lang} is longer than 200 characters"
                ));
            }
            let mut run = 0;
            if text.chars().any(|c| {
                run = if c.is_ascii_digit() { run + 1 } else { 0 };
                run >= 10
            }) {
                problems.push(format!(
                    "window {name:?}: {lang} holds ten digits in a row (an organisation or personal number?)"
                ));
            }
        }
    }
    if problems.is_empty() {
        CaseReport::pass(
            NAME,
            format!(
                "{} window(s) announced: {}",
                d.planned_maintenance.len(),
                d.planned_maintenance
                    .iter()
                    .map(|w| format!("{} {}..{}", w.id, w.starts_at, w.ends_at))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else {
        CaseReport::fail(NAME, problems.join("; "))
    }
}

#[cfg(test)]
mod tests {

    fn window(id: &str, start: &str, end: &str, sv: &str) -> proto::PlannedMaintenance {
        proto::PlannedMaintenance {
            id: id.into(),
            starts_at: start.into(),
            ends_at: end.into(),
            description_sv: sv.into(),
            description_en: String::new(),
        }
    }

    #[test]
    fn announced_maintenance_must_keep_the_contracts_rules() {
        let mut d = proto::DescribeReply::default();
        assert_eq!(
            planned_maintenance(Some(&d)).outcome,
            crate::report::Outcome::Pass
        );
        d.planned_maintenance = vec![window(
            "2026-12-08-db",
            "2026-12-08T18:00:00Z",
            "2026-12-08T20:00:00+01:00",
            "Uppgradering",
        )];
        assert_eq!(
            planned_maintenance(Some(&d)).outcome,
            crate::report::Outcome::Pass
        );
        for bad in [
            window("a b", "2026-12-08T18:00:00Z", "2026-12-08T20:00:00Z", ""),
            window("w", "in an hour", "2026-12-08T20:00:00Z", ""),
            window("w", "2026-12-08T20:00:00Z", "2026-12-08T18:00:00Z", ""),
            window("w", "2026-12-01T00:00:00Z", "2026-12-09T00:00:00Z", ""),
            window(
                "w",
                "2026-12-08T18:00:00Z",
                "2026-12-08T20:00:00Z",
                "ring 2120002411",
            ),
        ] {
            d.planned_maintenance = vec![bad.clone()];
            assert_eq!(
                planned_maintenance(Some(&d)).outcome,
                crate::report::Outcome::Fail,
                "{bad:?}"
            );
        }
        assert_eq!(
            planned_maintenance(None).outcome,
            crate::report::Outcome::Skipped
        );
    }

    use super::*;

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil(0), "1970-01-01");
        assert_eq!(civil(20_454), "2026-01-01");
        assert_eq!(civil(11_016), "2000-02-29");
    }

    #[test]
    fn a_receipt_must_carry_the_digest_of_the_bytes_sent() {
        let good = proto::Receipt {
            receipt_id: uuid::Uuid::new_v4().to_string(),
            document_id: "d-1".into(),
            received_at: "2026-12-01T10:00:00+01:00".into(),
            sha256: "ab".repeat(32),
            repeat: false,
        };
        let digest = "ab".repeat(32);
        assert_eq!(receipt_problem(&good, &digest, "d-1"), None);
        let other_bytes = proto::Receipt {
            sha256: "cd".repeat(32),
            ..good.clone()
        };
        assert!(
            receipt_problem(&other_bytes, &digest, "d-1")
                .is_some_and(|p| p.contains("not the digest"))
        );
        assert!(receipt_problem(&good, &digest, "d-2").is_some());
        let no_time = proto::Receipt {
            received_at: "yesterday".into(),
            ..good
        };
        assert!(receipt_problem(&no_time, &digest, "d-1").is_some());
    }

    #[test]
    fn reports_show_only_the_birth_date() {
        assert_eq!(mask("191212121212"), "19121212-****");
    }
}
