//! The [`SharedState`] trait: the run-time decisions and counters every relay node
//! must see the same, whatever node a caller reaches. Suspensions, withdrawals and
//! maintenance are the operator's decisions (today `relay-server`'s
//! `OperatorState`); duplicates, the ELT call rate and the ELT retry counts are
//! bookkeeping that two nodes must not keep twice (today `relay-server`'s
//! `limits`).
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

/// What a suspension covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every product.
    All,
    /// One product, by name (`ssbtek`, `elt`, ...).
    Product(String),
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

    /// Reads the stored form back.
    pub fn from_key(key: &str) -> Result<Self> {
        match key {
            "*" => Ok(Self::All),
            "elt-anordnare" => Ok(Self::EltAnordnare),
            _ => key
                .strip_prefix("product:")
                .filter(|p| !p.is_empty())
                .map(|p| Self::Product(p.to_owned()))
                .ok_or_else(|| StateError::Record(format!("unknown suspension scope {key:?}"))),
        }
    }
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
        product: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Whether an ELT assistance company is shut off.
    fn is_anordnare_suspended(
        &self,
        org: Organisationsnummer,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Every suspension, ordered.
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

    /// Every withdrawal as (provider, municipality), ordered.
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

    /// The planned windows, earliest first.
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
}
