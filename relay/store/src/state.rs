//! The [`SharedState`] trait: the run-time decisions and counters every relay node
//! must see the same, whatever node a caller reaches. Suspensions, withdrawals and
//! maintenance are the operator's decisions (today `relay-server`'s
//! `OperatorState`), and so are ELT mandates; duplicates, the ELT call rate, the
//! ELT retry counts and the accepted ELT reports (for repeats) are bookkeeping
//! that two nodes must not keep twice.
//!
//! A record that cannot be read back (damage, a hand-written row, a product
//! this version does not know) is an [`Unreadable`], reported and left out:
//! one bad row never stops a node from reading the rest.
//!
//! Not for: deciding what a suspension or a rate refusal means for a caller (the
//! relay maps the answers to SHS and ELT errors) or parsing configuration.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use relay_ident::Organisationsnummer;
use uuid::Uuid;

pub type Result<T, E = StateError> = std::result::Result<T, E>;

/// Why a shared-state operation failed. Always the relay's side: the caller did
/// nothing wrong, and the texts hold no personal data (keys and error codes only).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database could not be used: connection lost, pool exhausted, statement
    /// timeout. The relay answers "try again later" and reports not ready.
    #[error("shared state database: {0}")]
    Database(String),
    /// The embedded store file failed.
    #[error("shared state file: {0}")]
    File(String),
    /// A stored record could not be read back (a schema from another version, or
    /// damage).
    #[error("shared state record: {0}")]
    Record(String),
}

impl StateError {
    /// True when the failure is a lost or overloaded database, which heals by itself.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Database(_))
    }
}

/// A product the relay answers itself, by name (as agreements, suspensions and
/// the admin API name them). The one list of product names: an admin call or a
/// stored record naming anything else is refused, never kept as a string.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ProductName {
    Ssbtek,
    Ping,
    Elt,
}

impl ProductName {
    /// Every product name, in the order the relay lists them.
    pub const ALL: [Self; 3] = [Self::Ssbtek, Self::Ping, Self::Elt];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssbtek => "ssbtek",
            Self::Ping => "ping",
            Self::Elt => "elt",
        }
    }

    /// The product of this exact name (lower case, as configured); `None` for
    /// anything else, the empty name included.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl std::fmt::Display for ProductName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a suspension covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every product.
    All,
    /// One product.
    Product(ProductName),
    /// An ELT assistance company (anordnare): its reports are refused from any
    /// vendor.
    EltAnordnare,
}

impl Scope {
    /// The stored form: `*`, `product:<name>`, `elt-anordnare`.
    pub fn key(&self) -> String {
        match self {
            Self::All => "*".to_owned(),
            Self::Product(p) => format!("product:{p}"),
            Self::EltAnordnare => "elt-anordnare".to_owned(),
        }
    }

    /// Reads the stored form back; a product that is not one of
    /// [`ProductName::ALL`] (or empty) is an unreadable record.
    pub fn from_key(key: &str) -> Result<Self> {
        match key {
            "*" => Ok(Self::All),
            "elt-anordnare" => Ok(Self::EltAnordnare),
            _ => key
                .strip_prefix("product:")
                .and_then(ProductName::parse)
                .map(Self::Product)
                .ok_or_else(|| {
                    StateError::Record(format!("unknown suspension scope {:?}", printable(key)))
                }),
        }
    }
}

/// A stored text shown in a log or an error: at most 40 characters, and only
/// those a scope or product name may hold (a damaged record could hold anything).
pub fn printable(text: &str) -> String {
    text.chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "*:-_".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A stored record a node could not read: which table, which row (without
/// anything that could be personal) and why. It is left out of what was read,
/// never a reason to stop reading the rest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unreadable {
    pub table: &'static str,
    /// The row, as far as it can be shown: readable organisation numbers and
    /// [`printable`] scopes; an unreadable organisation number is not repeated.
    pub row: String,
    pub reason: String,
}

/// An ELT mandate decided through the admin API: the vendor may (`granted`)
/// or may not submit reports for the assistance company, whatever the
/// configuration says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mandate {
    pub vendor: Organisationsnummer,
    pub anordnare: Organisationsnummer,
    pub granted: bool,
}

/// Every decision a node follows, read at once; records that could not be read
/// are in `unreadable` and nowhere else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decisions {
    pub suspensions: Vec<(Organisationsnummer, Scope)>,
    pub withdrawals: Vec<(String, Organisationsnummer)>,
    pub mandates: Vec<Mandate>,
    pub unreadable: Vec<Unreadable>,
}

/// An accepted ELT report, kept to answer a repeat with its original receipt:
/// the SHA-256 of the report's bytes and the receipt document (opaque to the
/// store; no personal data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedReport {
    pub sha256: String,
    pub receipt: String,
}

/// Reads one suspension row, or says why it cannot be read.
pub(crate) fn suspension_row(
    org: &str,
    scope: &str,
) -> std::result::Result<(Organisationsnummer, Scope), Unreadable> {
    let shown = Organisationsnummer::parse(org)
        .map(|o| o.as_str().to_owned())
        .unwrap_or_else(|_| "(invalid organisation number)".to_owned());
    let unreadable = |reason: String| Unreadable {
        table: "suspensions",
        row: format!("{shown}/{}", printable(scope)),
        reason,
    };
    let o = Organisationsnummer::parse(org)
        .map_err(|e| unreadable(format!("organisation number: {e}")))?;
    let s = Scope::from_key(scope).map_err(|e| unreadable(e.to_string()))?;
    Ok((o, s))
}

/// Reads one withdrawal row, or says why it cannot be read.
pub(crate) fn withdrawal_row(
    provider: &str,
    municipality: &str,
) -> std::result::Result<(String, Organisationsnummer), Unreadable> {
    Organisationsnummer::parse(municipality)
        .map(|m| (provider.to_owned(), m))
        .map_err(|e| Unreadable {
            table: "withdrawals",
            row: format!("{}/(invalid organisation number)", printable(provider)),
            reason: format!("organisation number: {e}"),
        })
}

/// Reads one mandate row, or says why it cannot be read.
pub(crate) fn mandate_row(
    vendor: &str,
    anordnare: &str,
    granted: bool,
) -> std::result::Result<Mandate, Unreadable> {
    let parse = |s: &str| Organisationsnummer::parse(s);
    match (parse(vendor), parse(anordnare)) {
        (Ok(vendor), Ok(anordnare)) => Ok(Mandate {
            vendor,
            anordnare,
            granted,
        }),
        (v, a) => Err(Unreadable {
            table: "elt_mandates",
            row: format!(
                "{}/{}",
                v.map_or_else(|_| "(invalid)".to_owned(), |o| o.as_str().to_owned()),
                a.map_or_else(|_| "(invalid)".to_owned(), |o| o.as_str().to_owned())
            ),
            reason: "organisation number is not valid".to_owned(),
        }),
    }
}

/// Splits rows into the readable and the unreadable.
pub(crate) fn sort_out<T>(
    rows: impl IntoIterator<Item = std::result::Result<T, Unreadable>>,
    unreadable: &mut Vec<Unreadable>,
) -> Vec<T> {
    let mut out = Vec::new();
    for r in rows {
        match r {
            Ok(v) => out.push(v),
            Err(u) => unreadable.push(u),
        }
    }
    out
}

/// Maintenance switched on by an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    pub reason: String,
    pub since: DateTime<Utc>,
}

/// A planned maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
}

/// A stored maintenance window with its id (to cancel it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMaintenance {
    pub id: Uuid,
    pub window: MaintenanceWindow,
}

/// The answer to [`SharedState::first_seen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not seen before (or the earlier record has expired): recorded now.
    First,
    /// Already seen; when it was first recorded.
    Duplicate { first_seen: DateTime<Utc> },
}

/// The ELT call rate: a token bucket per vendor, `burst` tokens refilled at
/// `per_second` (the terms: one call per second, burst 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

/// The ELT retry limit: at most `max_retries` retries of one report within
/// `window` (the first attempt is not a retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryLimit {
    pub max_retries: u32,
    pub window: Duration,
}

/// What every node must share besides the mailbox. Every method is one decision
/// made by the engine as a whole: two nodes asking at once get the answers one
/// node would give to two calls in a row.
pub trait SharedState: Send + Sync + 'static {
    /// Suspends `org` for `scope`; false when it already was.
    fn suspend(
        &self,
        org: Organisationsnummer,
        scope: &Scope,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Lifts one suspension; false when there was none.
    fn resume(
        &self,
        org: Organisationsnummer,
        scope: &Scope,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Whether `org` is suspended for `product`, by an all-products or a
    /// product suspension.
    fn is_suspended(
        &self,
        org: Organisationsnummer,
        product: ProductName,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Whether an ELT assistance company is shut off.
    fn is_anordnare_suspended(
        &self,
        org: Organisationsnummer,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Every readable suspension, ordered (unreadable records are left out;
    /// [`SharedState::decisions`] says which).
    fn suspensions(&self)
    -> impl Future<Output = Result<Vec<(Organisationsnummer, Scope)>>> + Send;

    /// Withdraws a municipality from one provider; false when it already was.
    fn withdraw(
        &self,
        provider: &str,
        municipality: Organisationsnummer,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Restores a withdrawn municipality; false when it was not withdrawn.
    fn restore(
        &self,
        provider: &str,
        municipality: Organisationsnummer,
    ) -> impl Future<Output = Result<bool>> + Send;

    fn is_withdrawn(
        &self,
        provider: &str,
        municipality: Organisationsnummer,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Every readable withdrawal as (provider, municipality), ordered.
    fn withdrawals(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, Organisationsnummer)>>> + Send;

    /// Switches maintenance on with a reason (`Some`), or off (`None`).
    fn set_maintenance(&self, reason: Option<&str>) -> impl Future<Output = Result<()>> + Send;

    /// The maintenance switch: `None` when off.
    fn maintenance(&self) -> impl Future<Output = Result<Option<Maintenance>>> + Send;

    /// Plans a maintenance window; returns its id.
    fn plan_maintenance(
        &self,
        window: &MaintenanceWindow,
    ) -> impl Future<Output = Result<Uuid>> + Send;

    /// Cancels a planned window; false when there was none with that id.
    fn cancel_maintenance(&self, id: Uuid) -> impl Future<Output = Result<bool>> + Send;

    /// The planned windows, earliest first (an unreadable record is left out).
    fn maintenance_windows(&self) -> impl Future<Output = Result<Vec<PlannedMaintenance>>> + Send;

    /// Records that `sender` used `tx_id`, unless it already did within
    /// `keep_for` (duplicate detection across nodes).
    fn first_seen(
        &self,
        sender: &str,
        tx_id: &str,
        keep_for: Duration,
    ) -> impl Future<Output = Result<Seen>> + Send;

    /// Takes one ELT call token for `vendor`. `Ok(Err(wait))` refuses the call
    /// and says how long until a token is back.
    fn take_elt_call(
        &self,
        vendor: &str,
        limit: RateLimit,
    ) -> impl Future<Output = Result<Result<(), Duration>>> + Send;

    /// Records an attempt of one ELT report for every key that identifies it
    /// (report id, content digest...). `Ok(Ok(n))`: accepted as retry number `n`
    /// (0 = first attempt); `Ok(Err(n))`: refused, `n` retries were made already.
    fn record_elt_attempt(
        &self,
        vendor: &str,
        keys: &[&str],
        limit: RetryLimit,
    ) -> impl Future<Output = Result<Result<u32, u32>>> + Send;

    /// Removes duplicate records that expired by `now` and ELT attempts older
    /// than `attempt_window` (the longest retry window in use); how many.
    fn sweep_state(
        &self,
        now: DateTime<Utc>,
        attempt_window: Duration,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Every suspension, withdrawal and ELT mandate, read at once: what a node
    /// follows. A record that cannot be read is reported in
    /// [`Decisions::unreadable`] and left out; it never fails the read.
    fn decisions(&self) -> impl Future<Output = Result<Decisions>> + Send;

    /// Grants (`granted`) or revokes an ELT mandate, overriding the
    /// configuration's; false when it already was so.
    fn set_mandate(&self, mandate: Mandate) -> impl Future<Output = Result<bool>> + Send;

    /// Imports mandates (a one-time import of an old mandates file): each pair
    /// that has no decision in the store yet gets this one; pairs decided
    /// already are left alone, so importing twice changes nothing. How many
    /// were added.
    fn import_mandates(&self, mandates: &[Mandate]) -> impl Future<Output = Result<u64>> + Send;

    /// The accepted ELT report with this id, if kept.
    fn accepted_elt_report(
        &self,
        report_id: &str,
    ) -> impl Future<Output = Result<Option<AcceptedReport>>> + Send;

    /// Keeps an accepted ELT report; when another node kept one under this id
    /// first, that one stays (false).
    fn keep_elt_report(
        &self,
        report_id: &str,
        accepted: &AcceptedReport,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Forgets the oldest accepted ELT reports beyond the newest `keep`; how
    /// many.
    fn forget_elt_reports(&self, keep: usize) -> impl Future<Output = Result<u64>> + Send;
}
