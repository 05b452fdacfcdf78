//! SSBTEK: validate each question, check who may ask, ask every included
//! provider for every person **in parallel** under one deadline, and combine the
//! answers, one `hamtaBastjanstInformationResponse` per person, in request order.
//!
//! # Layout
//!
//! - this module, the product's answer in two steps for every way in:
//!   [`admit`] (the gate, the parse, the gate per ingivare: admitted
//!   [`Questions`]) and [`answer`] (fan out, combine, audit);
//! - [`shs`]: decode and encode over SHS (synchronous and asynchronous);
//! - [`soap`]: decode and encode of the SSBTEK v10 SOAP service.
//!
//! The questions and every provider payload live only in memory for the life of
//! the request and are wiped (zeroize) when dropped; nothing here logs them.

use std::time::Duration;

use futures::future::join_all;
use relay_ident::Organisationsnummer;
use relay_ssbtek::{
    Answer, CombinedAnswer, Question, RelayFelkod, Slot, SlotOutcome, SlotStatus, ValidationLimits,
};
use shs_proto::v1 as proto;
use tokio::time::Instant;
use tracing::Instrument;

use zeroize::Zeroizing;

pub mod shs;
pub mod soap;

use crate::Relay;
use crate::config::{Environment, ProductName};
use crate::failure::{Code, Failure};
use crate::identity::Caller;
use crate::policy::{self, Ask};
use crate::providers::CallOutcome;

/// The question documents as a way in decoded them, not yet parsed.
pub enum Documents {
    /// SHS: one `hamtaBastjanstInformation` document per data part.
    Parts(Vec<Zeroizing<Vec<u8>>>),
    /// SOAP: the envelope; the question is the Body's element.
    SoapBody(Zeroizing<Vec<u8>>),
}

impl Documents {
    fn count(&self) -> usize {
        match self {
            Documents::Parts(p) => p.len(),
            Documents::SoapBody(_) => 1,
        }
    }
}

/// Which call this is, for logs and the audit trail.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub channel: relay_audit::Channel,
    pub tx_id: &'a str,
    pub corr_id: Option<&'a str>,
    /// Each answer a standalone document (SHS) or ready to embed in a SOAP body.
    pub declaration: bool,
}

/// SSBTEK questions the gate admitted and the parser read: what the answer
/// step takes, whatever the way in. Only [`admit`] makes one, so an answer
/// cannot be reached without the gate; an asynchronous message keeps it from
/// its 202 to its answer.
pub struct Questions {
    list: Vec<Question>,
    /// When the request began (its answer's latency counts from here).
    started: std::time::Instant,
}

impl Questions {
    /// How many persons (questions).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// The first SSBTEK step, for every way in (SHS synch and asynch, SOAP): the
/// gate for the caller → 1 to `max_persons` questions parsed (off the async
/// workers) → the gate for each question's ingivare (a processor must be named
/// by a municipality that holds the agreement itself). A refusal is counted
/// and written to the audit trail here (persons as pseudonyms).
pub async fn admit(
    relay: &Relay,
    caller: &Caller,
    call: Call<'_>,
    documents: Documents,
) -> Result<Questions, Failure> {
    let started = std::time::Instant::now();
    match gate_and_parse(relay, caller, documents).await {
        Ok(list) => Ok(Questions { list, started }),
        Err((questions, f)) => {
            count(relay, questions.len(), None, started, Some(&f));
            // A refusal discloses nothing: its record is queued, not waited for.
            let _ = audit(
                relay,
                call.channel,
                call.tx_id,
                call.corr_id,
                &caller.org,
                &questions,
                &FanOutReport::default(),
                started,
                AuditResult::NotAnswered(&f),
            )
            .await;
            Err(f.audited())
        }
    }
}

/// The second SSBTEK step: ask every included provider for every admitted
/// person in parallel under one deadline → combine. Every answer is written to
/// the audit trail here before it is released.
pub async fn answer(
    relay: &Relay,
    caller: &Caller,
    call: Call<'_>,
    questions: Questions,
) -> Result<Vec<CombinedAnswer>, Failure> {
    let Questions {
        list: questions,
        started,
    } = questions;
    let deadline = relay.live().config.limits.deadline_for(questions.len());
    let (answers, report) = ask(relay, call.tx_id, &questions, deadline, call.declaration).await;
    count(relay, questions.len(), Some(&report), started, None);
    let complete = report.calls.iter().all(|(_, outcome)| *outcome == "data");
    crate::parties::checks::ssbtek(relay, &caller.org, complete).await;
    // The answers are released only once their record is on disk (or dropped,
    // and so wiped, when it cannot be written).
    let audited = audit(
        relay,
        call.channel,
        call.tx_id,
        call.corr_id,
        &caller.org,
        &questions,
        &report,
        started,
        AuditResult::Answered,
    )
    .await;
    if audited.is_err() {
        return Err(Failure::relay(crate::outcomes::NotAudited::TEXT).audited());
    }
    tracing::info!(
        tx = %call.tx_id,
        persons = answers.len(),
        calls = ?report.calls.iter().map(|(s, o)| format!("{}={o}", s.as_str())).collect::<Vec<_>>(),
        "fan-out done"
    );
    Ok(answers)
}

/// The gate for the caller → 1 to `max_persons` questions parsed → the gate
/// for each question's ingivare; on a refusal, the questions read so far.
async fn gate_and_parse(
    relay: &Relay,
    caller: &Caller,
    documents: Documents,
) -> Result<Vec<Question>, (Vec<Question>, Failure)> {
    if let Err(f) = gate_caller(relay, caller) {
        return Err((Vec::new(), f));
    }
    let live = relay.live();
    let config = &live.config;
    let max = config.limits.max_persons;
    if documents.count() > max {
        let f = Failure::caller(
            Code::InvalidQuestion,
            format!(
                "{} data parts: at most {max} persons (data parts) per message",
                documents.count()
            ),
        );
        return Err((Vec::new(), f));
    }
    let questions = parse(relay, documents).await.map_err(|f| (Vec::new(), f))?;
    for (i, q) in questions.iter().enumerate() {
        let named: Vec<Organisationsnummer> = q
            .generella()
            .personuppgiftsbitrade()
            .iter()
            .map(|p| p.orgnr())
            .collect();
        let ask = Ask::product(caller, ProductName::Ssbtek)
            .on_behalf_of(q.ingivare().orgnr(), &named)
            .by_caseworker(q.ingivare().handlaggare());
        if let Err(r) = policy::gate(&relay.metrics, config, &relay.operator, &ask) {
            let mut f = Failure::from(r);
            f.info = format!("data part {}: ingivare: {}", i + 1, f.info);
            return Err((questions, f));
        }
    }
    Ok(questions)
}

/// The gate for the caller alone (SSBTEK's `testaBastjanstInformation`,
/// which carries no question, and the first check of [`admit`]).
pub fn gate_caller(relay: &Relay, caller: &Caller) -> Result<(), Failure> {
    policy::gate(
        &relay.metrics,
        &relay.live().config,
        &relay.operator,
        &Ask::product(caller, ProductName::Ssbtek),
    )?;
    Ok(())
}

/// Parses the questions; large documents off the async workers ([`crate::cpu`]).
async fn parse(relay: &Relay, documents: Documents) -> Result<Vec<Question>, Failure> {
    let limits = validation_limits(relay);
    let total: usize = match &documents {
        Documents::Parts(p) => p.iter().map(|d| d.len()).sum(),
        Documents::SoapBody(b) => b.len(),
    };
    let work = move || -> Result<Vec<Question>, Failure> {
        match documents {
            Documents::Parts(parts) => parts
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    Question::parse_with(body, &limits).map_err(|e| {
                        Failure::caller(Code::InvalidQuestion, format!("data part {}: {e}", i + 1))
                    })
                })
                .collect(),
            Documents::SoapBody(body) => Question::parse_element(&body, &limits)
                .map(|q| vec![q])
                .map_err(|e| Failure::caller(Code::InvalidQuestion, e.to_string())),
        }
    };
    crate::cpu::parse(total, work).await?
}

/// The question limits from the relay's configuration.
pub fn validation_limits(relay: &Relay) -> ValidationLimits {
    ValidationLimits {
        max_document_bytes: relay.live().config.limits.max_request_bytes as usize,
        max_period_months: relay.live().config.limits.max_period_months,
        ..ValidationLimits::default()
    }
}

/// What one request came to, for logs, metrics and the audit trail (no
/// personal data).
#[derive(Debug, Default)]
pub struct FanOutReport {
    /// (slot, outcome label) per provider call, all persons.
    pub calls: Vec<(Slot, &'static str)>,
    /// Latency per provider call, in the order of `calls`.
    pub latencies_ms: Vec<u64>,
}

/// What the caller got, for the audit trail.
pub enum AuditResult<'a> {
    Answered,
    /// Refused or failed: the failure says with what and who failed.
    NotAnswered(&'a Failure),
}

/// Counts one request in `shs_relay_ssbtek_requests_total` by what the caller
/// got, classed as the service-level report classes it
/// ([`relay_audit::RequestRecord::answer`]): `complete`, `partial`,
/// `nothing_delivered`, `late`, or `failed` when the relay or a provider failed
/// it before an answer; a refusal that is the caller's fault is not counted.
/// An answer's time goes to `shs_relay_ssbtek_answer_seconds` less the
/// allowance of each person beyond the first (`[service_levels]
/// per_extra_person_ms`), so its 7 s bucket counts the answers within the 7 s
/// target whatever their number of persons.
fn count(
    relay: &Relay,
    persons: usize,
    report: Option<&FanOutReport>,
    started: std::time::Instant,
    failure: Option<&Failure>,
) {
    use relay_audit::{Outcome, SlotSide};
    let metrics = &relay.metrics;
    let class = match (report, failure) {
        (_, Some(f)) if matches!(f.by, crate::failure::By::Caller) => return,
        (Some(report), None) => {
            let took = started.elapsed();
            let live = relay.live();
            let extra = u64::try_from(persons.max(1) - 1).unwrap_or(u64::MAX);
            let allowance = std::time::Duration::from_millis(
                extra.saturating_mul(live.config.service_levels.per_extra_person_ms),
            );
            metrics
                .ssbtek_duration
                .observe(took.saturating_sub(allowance).as_secs_f64());
            let sides: Vec<SlotSide> = report
                .calls
                .iter()
                .map(|(_, o)| o.parse().map_or(SlotSide::Relay, Outcome::side))
                .filter(|s| *s != SlotSide::NotAsked)
                .collect();
            let relay_failed = sides.iter().filter(|s| **s == SlotSide::Relay).count();
            if took > live.config.limits.deadline_for(persons.max(1)) {
                "late"
            } else if relay_failed == 0 {
                "complete"
            } else if relay_failed == sides.len() {
                "nothing_delivered"
            } else {
                "partial"
            }
        }
        _ => "failed",
    };
    metrics
        .ssbtek_requests
        .get_or_create(&crate::metrics::OutcomeLabel { outcome: class })
        .inc();
}

/// Writes one request record to the audit trail (when configured): who asked,
/// about whom as keyed pseudonyms, each provider's outcome and latency. The
/// record of an answer goes through [`crate::outcomes::answered`] (written and
/// fsynced before the answer is released, under `on_failure = "refuse"`); the
/// record of a refusal is queued and a failure to write it logged.
#[allow(clippy::too_many_arguments)]
pub async fn audit(
    relay: &Relay,
    channel: relay_audit::Channel,
    tx_id: &str,
    corr_id: Option<&str>,
    caller: &Organisationsnummer,
    questions: &[Question],
    report: &FanOutReport,
    started: std::time::Instant,
    result: AuditResult<'_>,
) -> Result<(), crate::outcomes::NotAudited> {
    let Some((log, key)) = &relay.audit else {
        return Ok(());
    };
    let answered = matches!(result, AuditResult::Answered);
    let (result, by) = match result {
        AuditResult::Answered => (relay_audit::RequestResult::Answered, None),
        AuditResult::NotAnswered(f) => {
            let (result, by) = f.audit_result();
            (result, Some(by))
        }
    };
    let first = questions.first().map(|q| q.generella());
    let persons: Vec<relay_ident::Personnummer> = questions.iter().map(|q| q.person()).collect();
    let record = relay_audit::RequestRecord {
        time: chrono::Utc::now(),
        tx_id: tx_id.to_owned(),
        corr_id: corr_id.map(str::to_owned),
        channel,
        caller_org: caller.as_str().to_owned(),
        case_worker: first
            .map(|g| g.ingivare().handlaggare().to_owned())
            .unwrap_or_default(),
        case_id: first
            .map(|g| g.arendeidentitet().to_owned())
            .unwrap_or_default(),
        product: "ssbtek".into(),
        purpose: first.map(|g| g.syfte().to_owned()).unwrap_or_default(),
        key_id: String::new(),
        persons: Vec::new(),
        persons_count: 0,
        providers: report
            .calls
            .iter()
            .zip(&report.latencies_ms)
            .map(|((slot, outcome), ms)| relay_audit::ProviderCall {
                provider: slot.as_str().to_owned(),
                outcome: outcome.parse().unwrap_or(relay_audit::Outcome::Unavailable),
                latency_ms: *ms,
            })
            .collect(),
        latency_ms: started.elapsed().as_millis() as u64,
        deadline_ms: relay
            .live()
            .config
            .limits
            .deadline_for(questions.len().max(1))
            .as_millis() as u64,
        result,
        by,
    }
    .with_persons(&key.load(), &persons);
    if answered {
        return crate::outcomes::answered(relay, record).await;
    }
    if let Err(e) = log.record(record).await {
        tracing::error!(tx = tx_id, error = %e, "audit record could not be written");
    }
    Ok(())
}

/// Asks every included provider about every person in parallel, within
/// `deadline`, and combines the answers (one per question, in order), each a
/// standalone document (`declaration`) or ready to embed in a SOAP body.
pub async fn ask(
    relay: &Relay,
    transaction_id: &str,
    questions: &[Question],
    deadline: Duration,
    declaration: bool,
) -> (Vec<CombinedAnswer>, FanOutReport) {
    let deadline = Instant::now() + deadline;
    let environment = match relay.live().config.node.environment {
        Environment::Test => proto::Environment::Test,
        Environment::Production => proto::Environment::Production,
    };
    let calls = questions
        .iter()
        .enumerate()
        .flat_map(|(i, q)| q.included_slots().map(move |slot| (i, q, slot)));
    let futures = calls.map(|(i, q, slot)| {
        // One span per provider call; the pool sends its context to the adapter.
        let span = tracing::info_span!(
            "provider.call",
            otel.kind = "client",
            provider.id = slot.as_str(),
            shs.tx_id = relay_telemetry::tx_attribute(transaction_id),
            provider.outcome = tracing::field::Empty,
            provider.latency_ms = tracing::field::Empty,
        );
        async move {
            let call_started = std::time::Instant::now();
            let outcome = if relay
                .operator
                .is_withdrawn(slot.as_str(), &q.ingivare().orgnr())
            {
                CallOutcome::Withdrawn
            } else if relay.live().providers.contains(slot.as_str()) {
                relay
                    .live()
                    .providers
                    .query(
                        slot.as_str(),
                        &q.ingivare().orgnr(),
                        query_for(transaction_id, q, slot, environment),
                        deadline,
                    )
                    .await
            } else {
                CallOutcome::Unavailable
            };
            let took = call_started.elapsed();
            relay
                .metrics
                .provider_call(slot.as_str(), outcome.label(), took);
            crate::service_levels::provider_call(relay, slot.as_str(), outcome.label()).await;
            tracing::Span::current()
                .record("provider.outcome", outcome.label())
                .record("provider.latency_ms", took.as_millis() as u64);
            (i, slot, outcome, took.as_millis() as u64)
        }
        .instrument(span)
    });
    let results = join_all(futures).await;
    relay.metrics.fanout_width.observe(results.len() as f64);
    let span = tracing::info_span!(
        "combine",
        shs.tx_id = relay_telemetry::tx_attribute(transaction_id),
        persons = questions.len(),
        provider_calls = results.len(),
    );
    span.in_scope(|| combine(transaction_id, questions, results, declaration))
}

/// The combine step: one answer per question, in order, from the provider
/// outcomes `(question index, slot, outcome, latency ms)`.
fn combine(
    transaction_id: &str,
    questions: &[Question],
    results: Vec<(usize, Slot, CallOutcome, u64)>,
    declaration: bool,
) -> (Vec<CombinedAnswer>, FanOutReport) {
    let mut answers: Vec<Answer<'_>> = questions
        .iter()
        .map(|q| Answer::new(q).with_declaration(declaration))
        .collect();
    let mut report = FanOutReport::default();
    for (i, slot, outcome, ms) in results {
        report.calls.push((slot, outcome.label()));
        report.latencies_ms.push(ms);
        // `record` only fails for a slot the question did not include, which
        // cannot happen: the calls were made from `included_slots`.
        let _ = answers[i].record(slot, slot_outcome(slot, outcome));
    }
    let combined = answers.into_iter().map(Answer::build).collect::<Vec<_>>();
    for c in &combined {
        for s in &c.slots {
            if let SlotStatus::PayloadRejected(_) = s.status {
                tracing::warn!(
                    tx = transaction_id,
                    slot = s.slot.as_str(),
                    "provider payload rejected"
                );
            }
        }
    }
    (combined, report)
}

fn slot_outcome(slot: Slot, outcome: CallOutcome) -> SlotOutcome {
    match outcome {
        CallOutcome::Data { format, payload } if format == slot.payload_format() => {
            SlotOutcome::Data(payload)
        }
        CallOutcome::Data { .. } => SlotOutcome::RelayError(RelayFelkod::InvalidAnswer),
        CallOutcome::ProviderError { code, messages } => {
            SlotOutcome::ProviderError { code, messages }
        }
        CallOutcome::Timeout => SlotOutcome::RelayError(RelayFelkod::Timeout),
        CallOutcome::Unavailable => SlotOutcome::RelayError(RelayFelkod::Unavailable),
        CallOutcome::Overloaded => SlotOutcome::RelayError(RelayFelkod::Overload),
        CallOutcome::Withdrawn => SlotOutcome::RelayError(RelayFelkod::Withdrawn),
        CallOutcome::InvalidAnswer => SlotOutcome::RelayError(RelayFelkod::InvalidAnswer),
    }
}

/// The provider contract's query for one slot of one question.
fn query_for(
    transaction_id: &str,
    q: &Question,
    slot: Slot,
    environment: proto::Environment,
) -> proto::QueryRequest {
    let g = q.generella();
    let ingivare = g.ingivare();
    let period = q.period_for(slot);
    proto::QueryRequest {
        transaction_id: transaction_id.to_owned(),
        caller: Some(proto::Caller {
            organisation_number: ingivare.orgnr().as_str().to_owned(),
            name: ingivare.namn().to_owned(),
            case_worker: ingivare.handlaggare().to_owned(),
        }),
        data_processors: g
            .personuppgiftsbitrade()
            .iter()
            .map(|p| proto::DataProcessor {
                organisation_number: p.orgnr().as_str().to_owned(),
                name: p.namn().to_owned(),
                sequence_number: p.ordningsnummer().map_or(0, i32::from),
            })
            .collect(),
        person_id: q.person().as_str().to_owned(),
        case_id: g.arendeidentitet().to_owned(),
        period: Some(proto::Period {
            from: period.from().to_string(),
            to: period.tom().to_string(),
        }),
        purpose: g.syfte().to_owned(),
        legal_basis: g.lagtext().to_owned(),
        environment: environment as i32,
        provider_parameters: q.slot(slot).parameters_xml().to_vec(),
        correlation_id: g.korrelationsid().unwrap_or_default().to_owned(),
    }
}
