//! What the audit trail holds: one JSON object per line, tagged by `kind`.
//!
//! - `request`: who asked (organisation, case worker, case, product, purpose),
//!   about whom (keyed pseudonyms only), how each provider did, how long it took
//!   and what the caller got.
//! - `deletion`: that a transaction's intermediate data was deleted, and why.
//!   Never what it contained.
//! - `admin`: an operator action (who, what, on what).
//! - `outage`: an operator's statement that the service was unavailable from
//!   `start` to `end` (maintenance, an incident seen outside the relay); the
//!   service-level report counts those minutes as unavailable.
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
}

impl AuditRecord {
    /// When the event happened (for a request: when it arrived).
    pub fn time(&self) -> DateTime<Utc> {
        match self {
            Self::Request(r) => r.time,
            Self::Deletion(r) => r.time,
            Self::Admin(r) => r.time,
            Self::Outage(r) => r.time,
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
}

impl RequestRecord {
    /// Sets `persons` (pseudonymised with `key`), `persons_count` and `key_id`.
    /// The only way the relay should fill in who a request was about.
    pub fn with_persons(mut self, key: &PseudonymKey, persons: &[Personnummer]) -> Self {
        self.persons = persons.iter().map(|p| key.pseudonymise(p)).collect();
        self.persons_count = u32::try_from(persons.len()).unwrap_or(u32::MAX);
        self.key_id = key.id().to_owned();
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
}

impl FromStr for Outcome {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|o| o.label() == s).ok_or(())
    }
}

/// What the caller got. Written as `answered`, `refused:<code>` or `error`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestResult {
    /// An answer went back (possibly with some provider slots holding errors).
    Answered,
    /// Refused before or instead of asking, with the relay's refusal code
    /// (`validation`, `no_agreement`, `overloaded`, ...).
    Refused(String),
    /// The relay failed (an internal error): no answer.
    Error,
}

impl fmt::Display for RequestResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Answered => f.write_str("answered"),
            Self::Refused(code) => write!(f, "refused:{code}"),
            Self::Error => f.write_str("error"),
        }
    }
}

impl FromStr for RequestResult {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "answered" => Ok(Self::Answered),
            "error" => Ok(Self::Error),
            _ => match s.strip_prefix("refused:") {
                Some(code) => Ok(Self::Refused(code.to_owned())),
                None => Err(format!(
                    "unknown result {s:?}: expected answered, refused:<code> or error"
                )),
            },
        }
    }
}

impl Serialize for RequestResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RequestResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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

/// The operator declares the service unavailable from `start` to `end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutageRecord {
    /// When the statement was written.
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub start: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub end: DateTime<Utc>,
    pub who: String,
    pub reason: String,
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
            (RequestResult::Error, "error"),
        ] {
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{s}\""));
            assert_eq!(
                serde_json::from_str::<RequestResult>(&format!("\"{s}\"")).unwrap(),
                r
            );
        }
        assert!(serde_json::from_str::<RequestResult>("\"maybe\"").is_err());
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
}
