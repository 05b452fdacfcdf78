//! What the audit trail holds: one JSON object per line, tagged by `kind`.
//!
//! - `request`: who asked (organisation, case worker, case, product, purpose),
//!   about whom (keyed pseudonyms only), how each provider did, how long it took
//!   and what the caller got.
//! - `deletion`: that a transaction's intermediate data was deleted, and why.
//!   Never what it contained.
//! - `admin`: an operator action (who, what, on what).
//! - `outage`: the service was (or will be) unavailable from `start` to `end`:
//!   `planned` (a maintenance window, announced when the record was written) or
//!   `unplanned` (the prober's run of failed probes, or an operator's statement
//!   about an incident the relay could not see).
//! - `fetch`: a caller fetched a stored message from the delivery service (who,
//!   which message id, what came of it). Never the content.
//! - `probe`: one end-to-end check by the relay's prober: ok, or which step
//!   failed. The service-level report measures availability from these.
//! - `incident`: a disturbance (two or more providers failing at once, see
//!   [`crate::disturbance`]): written when it starts (no `end`) and again when it
//!   ends (with `end` and every provider that failed during it).
//!
//! Times are RFC 3339 in UTC with milliseconds (`2026-11-02T08:00:00.000Z`).
//! Nothing here can hold a personnummer: persons are [`Pseudonym`]s.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use relay_ident::Personnummer;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::pseudonym::{Pseudonym, PseudonymKey};

/// One line of the audit file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditRecord {
    // Boxed: a request record is several times the size of the others.
    Request(Box<RequestRecord>),
    Deletion(DeletionRecord),
    Admin(AdminRecord),
    Outage(OutageRecord),
    Fetch(FetchRecord),
    Probe(ProbeRecord),
    Incident(IncidentRecord),
}

impl AuditRecord {
    /// When the event happened (for a request: when it arrived).
    pub fn time(&self) -> DateTime<Utc> {
        match self {
            Self::Request(r) => r.time,
            Self::Deletion(r) => r.time,
            Self::Admin(r) => r.time,
            Self::Outage(r) => r.time,
            Self::Fetch(r) => r.time,
            Self::Probe(r) => r.time,
            Self::Incident(r) => r.time,
        }
    }
}

impl From<RequestRecord> for AuditRecord {
    fn from(r: RequestRecord) -> Self {
        Self::Request(Box::new(r))
    }
}

impl From<DeletionRecord> for AuditRecord {
    fn from(r: DeletionRecord) -> Self {
        Self::Deletion(r)
    }
}

impl From<AdminRecord> for AuditRecord {
    fn from(r: AdminRecord) -> Self {
        Self::Admin(r)
    }
}

impl From<OutageRecord> for AuditRecord {
    fn from(r: OutageRecord) -> Self {
        Self::Outage(r)
    }
}

impl From<FetchRecord> for AuditRecord {
    fn from(r: FetchRecord) -> Self {
        Self::Fetch(r)
    }
}

impl From<ProbeRecord> for AuditRecord {
    fn from(r: ProbeRecord) -> Self {
        Self::Probe(r)
    }
}

impl From<IncidentRecord> for AuditRecord {
    fn from(r: IncidentRecord) -> Self {
        Self::Incident(r)
    }
}

/// One question from a caller and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// When the request arrived.
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    /// The SHS transaction id (or the SOAP call's message id).
    pub tx_id: String,
    /// The caller's correlation id (SSBTEK `korrelationsid`), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corr_id: Option<String>,
    pub channel: Channel,
    /// The asking organisation (the ingivare's organisation number).
    pub caller_org: String,
    /// The case worker (SSBTEK `handlaggare`) as the caller's system names them.
    pub case_worker: String,
    /// The caller's case id (SSBTEK `arendeidentitet`).
    pub case_id: String,
    /// `ssbtek`, `elt`, ...
    pub product: String,
    /// The stated purpose (SSBTEK `syfte`).
    pub purpose: String,
    /// The [`PseudonymKey::id`] the persons were pseudonymised with.
    pub key_id: String,
    /// The persons asked about, as keyed pseudonyms, in request order.
    pub persons: Vec<Pseudonym>,
    /// How many persons the request carried (also those it was refused for before
    /// they could be parsed, which have no pseudonym).
    pub persons_count: u32,
    /// One entry per provider call: a request about n persons has up to n calls
    /// per provider.
    pub providers: Vec<ProviderCall>,
    /// From arrival to the answer leaving the relay.
    pub latency_ms: u64,
    /// The deadline the fan-out ran under.
    pub deadline_ms: u64,
    pub result: RequestResult,
    /// Who failed, when no answer went out (`refused`, `failed`, `overloaded`,
    /// `deadline_passed`): the relay's own account of the side at fault. Absent
    /// for an answer (its slots say who failed) and in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<FailedBy>,
}

/// Who failed a request that got no answer (the relay's `Failure::by`, the
/// split of pingora's error type): the caller (a refusal, a 4xx, or its own
/// share of the in-flight limit full), a provider, or the relay itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailedBy {
    Caller,
    Provider,
    Relay,
}

impl RequestRecord {
    /// Sets `persons` (pseudonymised with `key`), `persons_count` and `key_id`.
    /// The only way the relay should fill in who a request was about.
    ///
    /// It also pseudonymises the free text the caller wrote (case worker, case
    /// id, purpose, correlation id): a personnummer or samordningsnummer typed
    /// there, in any written shape, becomes `pseudonym:` and its pseudonym
    /// under `key` (see [`relay_ident::replace_personnummer`]), so the trail
    /// never holds one in clear.
    pub fn with_persons(mut self, key: &PseudonymKey, persons: &[Personnummer]) -> Self {
        self.persons = persons.iter().map(|p| key.pseudonymise(p)).collect();
        self.persons_count = u32::try_from(persons.len()).unwrap_or(u32::MAX);
        self.key_id = key.id().to_owned();
        let scrub = |text: &mut String| {
            let clean = match relay_ident::replace_personnummer(text, |p| {
                format!("pseudonym:{}", key.pseudonym(p))
            }) {
                std::borrow::Cow::Owned(clean) => Some(clean),
                std::borrow::Cow::Borrowed(_) => None,
            };
            if let Some(clean) = clean {
                *text = clean;
            }
        };
        scrub(&mut self.case_worker);
        scrub(&mut self.case_id);
        scrub(&mut self.purpose);
        if let Some(corr) = self.corr_id.as_mut() {
            scrub(corr);
        }
        self
    }

    /// The distinct providers with at least one failed call (see
    /// [`Outcome::is_failure`]).
    pub fn failed_providers(&self) -> Vec<&str> {
        let mut failed: Vec<&str> = self
            .providers
            .iter()
            .filter(|c| c.outcome.is_failure())
            .map(|c| c.provider.as_str())
            .collect();
        failed.sort_unstable();
        failed.dedup();
        failed
    }

    /// What the caller got, in the terms of the service levels (see
    /// [`Answer`]). `None` when no answer went out (refused, failed, overloaded,
    /// deadline passed).
    pub fn answer(&self) -> Option<Answer> {
        if self.result != RequestResult::Answered {
            return None;
        }
        if self.deadline_ms > 0 && self.latency_ms > self.deadline_ms {
            return Some(Answer::Late);
        }
        let asked: Vec<SlotSide> = self
            .providers
            .iter()
            .map(|c| c.outcome.side())
            .filter(|s| *s != SlotSide::NotAsked)
            .collect();
        let relay_failed = asked.iter().filter(|s| **s == SlotSide::Relay).count();
        Some(if relay_failed == 0 {
            Answer::Complete
        } else if relay_failed == asked.len() {
            Answer::NothingDelivered
        } else {
            Answer::Partial
        })
    }
}

/// What an answer that went out held, slot by slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// Before the deadline, and every asked provider delivered data or answered
    /// for itself (`kalla=BT`). Withdrawn providers were not asked. A request
    /// that asked no provider at all is complete too.
    Complete,
    /// Before the deadline, with at least one slot holding a relay-side error
    /// (`kalla=SSBT`: timeout, unreachable, overloaded, invalid answer) and at
    /// least one that did not.
    Partial,
    /// Before the deadline, but every asked slot holds a relay-side error: the
    /// caller got an answer with nothing in it. Not counted as answered.
    NothingDelivered,
    /// The answer left after the request's deadline (`latency_ms > deadline_ms`):
    /// not answered in time.
    Late,
}

/// How the request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Shs,
    Soap,
}

/// One call to one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCall {
    /// The provider id (`AF`, `CSN`, `FK`, ...).
    pub provider: String,
    pub outcome: Outcome,
    pub latency_ms: u64,
}

/// What one provider call came to (the relay's `CallOutcome` labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Data,
    ProviderError,
    Timeout,
    Unavailable,
    Withdrawn,
    Overloaded,
    InvalidAnswer,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Self::Data,
        Self::ProviderError,
        Self::Timeout,
        Self::Unavailable,
        Self::Withdrawn,
        Self::Overloaded,
        Self::InvalidAnswer,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::ProviderError => "provider_error",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Withdrawn => "withdrawn",
            Self::Overloaded => "overloaded",
            Self::InvalidAnswer => "invalid_answer",
        }
    }

    /// The provider could not answer. `withdrawn` is not a failure: the provider
    /// has decided not to serve this municipality and was not asked.
    pub fn is_failure(self) -> bool {
        !matches!(self, Self::Data | Self::Withdrawn)
    }

    /// Which side the slot's content came from: SSBTEK's `kalla`.
    pub fn side(self) -> SlotSide {
        match self {
            Self::Data => SlotSide::Data,
            Self::ProviderError => SlotSide::Provider,
            Self::Withdrawn => SlotSide::NotAsked,
            Self::Timeout | Self::Unavailable | Self::Overloaded | Self::InvalidAnswer => {
                SlotSide::Relay
            }
        }
    }
}

/// Who filled a provider slot of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotSide {
    /// The provider delivered data.
    Data,
    /// The provider answered with an error of its own (`kalla=BT`).
    Provider,
    /// The relay wrote the error (`kalla=SSBT`): the provider could not be
    /// reached, did not answer in time or answered something unusable.
    Relay,
    /// The provider has withdrawn the municipality and was not asked.
    NotAsked,
}

impl FromStr for Outcome {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|o| o.label() == s).ok_or(())
    }
}

/// What the caller got. Written as `answered`, `refused:<code>`,
/// `failed:<code>`, `overloaded` or `deadline_passed`.
///
/// Older files also hold `error` (the relay failed, cause not recorded); it
/// reads as `Failed("error")` and is written back as `failed:error`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestResult {
    /// An answer went back (possibly with some provider slots holding errors;
    /// see [`RequestRecord::answer`]).
    Answered,
    /// The caller's fault: refused before or instead of asking, with the relay's
    /// refusal code (`validation`, `no_agreement`, `suspended`, ...).
    Refused(String),
    /// The relay's fault: no answer, with a bounded code saying what failed
    /// (`internal`, `store`, `maintenance`, `no_provider`, ...).
    Failed(String),
    /// Turned away for lack of capacity (HTTP 503 / SHS overload), no answer.
    Overloaded,
    /// The deadline passed before any answer could be sent.
    DeadlinePassed,
}

impl RequestResult {
    /// Whether an answer went out.
    pub fn is_answered(&self) -> bool {
        *self == Self::Answered
    }
}

impl fmt::Display for RequestResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Answered => f.write_str("answered"),
            Self::Refused(code) => write!(f, "refused:{code}"),
            Self::Failed(code) => write!(f, "failed:{code}"),
            Self::Overloaded => f.write_str("overloaded"),
            Self::DeadlinePassed => f.write_str("deadline_passed"),
        }
    }
}

impl FromStr for RequestResult {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "answered" => Ok(Self::Answered),
            "overloaded" => Ok(Self::Overloaded),
            "deadline_passed" => Ok(Self::DeadlinePassed),
            // The spelling of older files.
            "error" => Ok(Self::Failed("error".to_owned())),
            _ => {
                if let Some(code) = s.strip_prefix("refused:") {
                    Ok(Self::Refused(code.to_owned()))
                } else if let Some(code) = s.strip_prefix("failed:") {
                    Ok(Self::Failed(code.to_owned()))
                } else {
                    Err(format!(
                        "unknown result {s:?}: expected answered, refused:<code>, failed:<code>, overloaded or deadline_passed"
                    ))
                }
            }
        }
    }
}

/// Serde through the type's text form (`Display` / `FromStr`).
macro_rules! serde_as_text {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_text!(RequestResult);

/// A transaction's intermediate data was deleted. Never records the content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionRecord {
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    pub tx_id: String,
    /// `answered`, `fetched`, `expired`, `operator`, ...
    pub reason: String,
}

/// An operator action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRecord {
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    /// The operator's identity (certificate subject or account), never a citizen.
    pub who: String,
    /// `suspend`, `resume`, `withdraw`, `maintenance_on`, ...
    pub action: String,
    /// What it was done to (an organisation number, a provider id, ...).
    pub target: String,
}

/// The service was (or will be) unavailable from `start` to `end`.
///
/// Written by the operator (a maintenance window, announced in advance, or an
/// incident the relay could not see) or by the relay's prober (a run of failed
/// probes, `who` = `prober`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutageRecord {
    /// When the statement was written. For a planned outage this is when it was
    /// announced: only the part after it counts as planned.
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub start: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub end: DateTime<Utc>,
    pub who: String,
    pub reason: String,
    /// `planned` or `unplanned`, written as `type` (`kind` is the record's tag).
    /// Absent in older files, where every outage record was an operator's
    /// statement of unavailability: those read as `unplanned`.
    #[serde(default, rename = "type")]
    pub kind: OutageKind,
}

/// Whether an outage was a maintenance window announced in advance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageKind {
    /// A maintenance window (servicefönster) announced before it began.
    Planned,
    /// Anything else: counts as unavailability and against reliability.
    #[default]
    Unplanned,
}

/// A caller fetched a message from the delivery service (asynchronous SHS).
/// Who fetched which message id; never its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRecord {
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    pub channel: Channel,
    /// The fetching organisation (from its certificate).
    pub caller_org: String,
    /// The message's transaction id (or the mailbox's local id).
    pub tx_id: String,
    pub result: FetchResult,
}

/// What a fetch came to. Written as `delivered`, `not_found` or `refused:<code>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FetchResult {
    Delivered,
    /// No such message for this caller (never delivered, expired or fetched).
    NotFound,
    /// Refused, with the relay's code (`not_recipient`, `suspended`, ...).
    Refused(String),
}

impl fmt::Display for FetchResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Delivered => f.write_str("delivered"),
            Self::NotFound => f.write_str("not_found"),
            Self::Refused(code) => write!(f, "refused:{code}"),
        }
    }
}

impl FromStr for FetchResult {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "delivered" => Ok(Self::Delivered),
            "not_found" => Ok(Self::NotFound),
            _ => s
                .strip_prefix("refused:")
                .map(|code| Self::Refused(code.to_owned()))
                .ok_or_else(|| {
                    format!(
                        "unknown fetch result {s:?}: expected delivered, not_found or refused:<code>"
                    )
                }),
        }
    }
}

serde_as_text!(FetchResult);

/// One end-to-end check by the relay's prober.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// When the probe began.
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    /// The prober's interval when it wrote this: the report treats a stretch of
    /// several intervals without any probe record as the relay being down.
    pub interval_s: u32,
    pub result: ProbeResult,
    pub latency_ms: u64,
}

/// What a probe came to. Written as `ok` or `failed:<step>`, the step being the
/// first that failed (`front`, `providers`, `store`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProbeResult {
    Ok,
    Failed(String),
}

impl ProbeResult {
    pub fn is_ok(&self) -> bool {
        *self == Self::Ok
    }
}

impl fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => f.write_str("ok"),
            Self::Failed(step) => write!(f, "failed:{step}"),
        }
    }
}

impl FromStr for ProbeResult {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ok" => Ok(Self::Ok),
            _ => s
                .strip_prefix("failed:")
                .map(|step| Self::Failed(step.to_owned()))
                .ok_or_else(|| format!("unknown probe result {s:?}: expected ok or failed:<step>")),
        }
    }
}

serde_as_text!(ProbeResult);

/// A disturbance: two or more providers failing at once (SSBTEK Bilaga 4, 3.8:
/// "tillgänglig med störning"; an incident is opened).
///
/// Written twice: when it starts (`end` absent, `providers` those failing then)
/// and when it ends (`end` set, `providers` every provider that failed during
/// it). Both carry the same `start`, which pairs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentRecord {
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub start: DateTime<Utc>,
    #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// Provider ids, sorted.
    pub providers: Vec<String>,
}

/// RFC 3339 in UTC with milliseconds, one fixed shape for every record.
pub(crate) mod rfc3339 {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// [`rfc3339`] for an optional time (absent when `None`).
pub(crate) mod rfc3339_opt {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        s.map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn results_read_and_write_as_text() {
        for (r, s) in [
            (RequestResult::Answered, "answered"),
            (
                RequestResult::Refused("validation".into()),
                "refused:validation",
            ),
            (RequestResult::Failed("internal".into()), "failed:internal"),
            (RequestResult::Overloaded, "overloaded"),
            (RequestResult::DeadlinePassed, "deadline_passed"),
        ] {
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{s}\""));
            assert_eq!(
                serde_json::from_str::<RequestResult>(&format!("\"{s}\"")).unwrap(),
                r
            );
        }
        assert!(serde_json::from_str::<RequestResult>("\"maybe\"").is_err());
        // The older spelling of a relay-side failure still reads.
        assert_eq!(
            serde_json::from_str::<RequestResult>("\"error\"").unwrap(),
            RequestResult::Failed("error".into())
        );
    }

    #[test]
    fn a_deletion_record_is_one_tagged_object_with_a_utc_time() {
        let rec = AuditRecord::from(DeletionRecord {
            time: Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap(),
            tx_id: "tx-1".into(),
            reason: "answered".into(),
        });
        let line = serde_json::to_string(&rec).unwrap();
        assert_eq!(
            line,
            r#"{"kind":"deletion","time":"2026-11-02T08:00:00.000Z","tx_id":"tx-1","reason":"answered"}"#
        );
        assert_eq!(serde_json::from_str::<AuditRecord>(&line).unwrap(), rec);
    }

    #[test]
    fn withdrawn_is_not_a_failure_and_everything_else_but_data_is() {
        let failures: Vec<_> = Outcome::ALL
            .into_iter()
            .filter(|o| o.is_failure())
            .collect();
        assert_eq!(
            failures,
            [
                Outcome::ProviderError,
                Outcome::Timeout,
                Outcome::Unavailable,
                Outcome::Overloaded,
                Outcome::InvalidAnswer
            ]
        );
        for o in Outcome::ALL {
            assert_eq!(o.label().parse::<Outcome>(), Ok(o));
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.label())
            );
        }
    }

    #[test]
    fn a_refusal_says_who_failed_and_an_older_record_without_it_still_reads() {
        let mut rec = answered(&[], 3, 12_000);
        rec.result = RequestResult::Overloaded;
        rec.by = Some(FailedBy::Relay);
        let line = serde_json::to_string(&AuditRecord::from(rec.clone())).unwrap();
        assert!(
            line.ends_with(r#""result":"overloaded","by":"relay"}"#),
            "{line}"
        );
        assert_eq!(
            serde_json::from_str::<AuditRecord>(&line).unwrap(),
            AuditRecord::from(rec.clone())
        );
        // Older files have no `by`; an answer never writes one.
        let old = line.replace(r#","by":"relay""#, "");
        let AuditRecord::Request(back) = serde_json::from_str(&old).unwrap() else {
            panic!("not a request")
        };
        assert_eq!(back.by, None);
        let answer = serde_json::to_string(&answered(&[Outcome::Data], 3, 12_000)).unwrap();
        assert!(!answer.contains("\"by\""), "{answer}");
    }

    #[test]
    fn an_outage_record_of_an_older_file_reads_as_unplanned() {
        let old = r#"{"kind":"outage","time":"2026-11-04T07:10:00.000Z","start":"2026-11-04T06:50:00.000Z","end":"2026-11-04T07:05:30.000Z","who":"operator:drift-1","reason":"disk"}"#;
        let AuditRecord::Outage(o) = serde_json::from_str(old).unwrap() else {
            panic!("not an outage")
        };
        assert_eq!(o.kind, OutageKind::Unplanned);
        let line = serde_json::to_string(&AuditRecord::from(o)).unwrap();
        assert!(line.ends_with(r#","type":"unplanned"}"#), "{line}");
        assert_eq!(line.matches("\"kind\"").count(), 1);
        let AuditRecord::Outage(back) = serde_json::from_str(&line).unwrap() else {
            panic!("not an outage")
        };
        assert_eq!(back.kind, OutageKind::Unplanned);
    }

    #[test]
    fn probe_fetch_and_incident_records_have_one_fixed_shape() {
        let t = Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap();
        let cases: Vec<(AuditRecord, &str)> = vec![
            (
                ProbeRecord {
                    time: t,
                    interval_s: 60,
                    result: ProbeResult::Failed("providers".into()),
                    latency_ms: 812,
                }
                .into(),
                r#"{"kind":"probe","time":"2026-11-02T08:00:00.000Z","interval_s":60,"result":"failed:providers","latency_ms":812}"#,
            ),
            (
                FetchRecord {
                    time: t,
                    channel: Channel::Shs,
                    caller_org: "2120002411".into(),
                    tx_id: "tx-9".into(),
                    result: FetchResult::Delivered,
                }
                .into(),
                r#"{"kind":"fetch","time":"2026-11-02T08:00:00.000Z","channel":"shs","caller_org":"2120002411","tx_id":"tx-9","result":"delivered"}"#,
            ),
            (
                IncidentRecord {
                    time: t,
                    start: t,
                    end: None,
                    providers: vec!["AF".into(), "CSN".into()],
                }
                .into(),
                r#"{"kind":"incident","time":"2026-11-02T08:00:00.000Z","start":"2026-11-02T08:00:00.000Z","providers":["AF","CSN"]}"#,
            ),
            (
                IncidentRecord {
                    time: t,
                    start: t,
                    end: Some(t),
                    providers: vec!["AF".into()],
                }
                .into(),
                r#"{"kind":"incident","time":"2026-11-02T08:00:00.000Z","start":"2026-11-02T08:00:00.000Z","end":"2026-11-02T08:00:00.000Z","providers":["AF"]}"#,
            ),
        ];
        for (rec, line) in cases {
            assert_eq!(serde_json::to_string(&rec).unwrap(), line);
            assert_eq!(serde_json::from_str::<AuditRecord>(line).unwrap(), rec);
        }
        for bad in [r#""maybe""#, r#""failed""#] {
            assert!(serde_json::from_str::<ProbeResult>(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::from_str::<FetchResult>(r#""refused:not_recipient""#).unwrap(),
            FetchResult::Refused("not_recipient".into())
        );
    }

    fn answered(calls: &[Outcome], latency_ms: u64, deadline_ms: u64) -> RequestRecord {
        RequestRecord {
            time: Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap(),
            tx_id: "tx".into(),
            corr_id: None,
            channel: Channel::Shs,
            caller_org: "2120002411".into(),
            case_worker: String::new(),
            case_id: String::new(),
            product: "ssbtek".into(),
            purpose: String::new(),
            key_id: String::new(),
            persons: Vec::new(),
            persons_count: 1,
            providers: calls
                .iter()
                .map(|o| ProviderCall {
                    provider: "FK".into(),
                    outcome: *o,
                    latency_ms: 1,
                })
                .collect(),
            latency_ms,
            deadline_ms,
            result: RequestResult::Answered,
            by: None,
        }
    }

    #[test]
    fn an_answer_is_complete_partial_empty_or_late_by_its_slots_and_deadline() {
        use Outcome::*;
        let cases = [
            (vec![Data, ProviderError, Withdrawn], 100, Answer::Complete),
            (vec![], 100, Answer::Complete),
            (vec![Data, Timeout], 100, Answer::Partial),
            (vec![ProviderError, InvalidAnswer], 100, Answer::Partial),
            (
                vec![Timeout, Unavailable, Withdrawn],
                100,
                Answer::NothingDelivered,
            ),
            (vec![Overloaded], 100, Answer::NothingDelivered),
            (vec![Data], 15_000, Answer::Complete),
            (vec![Data], 15_001, Answer::Late),
        ];
        for (calls, latency, want) in cases {
            assert_eq!(
                answered(&calls, latency, 15_000).answer(),
                Some(want),
                "{calls:?} {latency}"
            );
        }
        // No deadline recorded: never late.
        assert_eq!(
            answered(&[Data], 99_000, 0).answer(),
            Some(Answer::Complete)
        );
        let mut refused = answered(&[], 1, 15_000);
        refused.result = RequestResult::Overloaded;
        assert_eq!(refused.answer(), None);
    }
}
