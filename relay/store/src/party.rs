//! The register of connected parties ([`PartyRegister`]): who may call the relay,
//! in which role, and how far each party has come per product on the way from
//! application to production. Shared by every node (redb on one machine,
//! PostgreSQL for several), so a promotion made through one node's admin API
//! admits at every node.
//!
//! A party holds, per product, a [`PartyState`] with the history of every change
//! (date, operator, reason), the test checks it has passed ([`Party::checks`]),
//! whether its caseworkers must have signed the declaration
//! (`require_declaration`, §9.2.9), and the client certificates it was seen with.
//! Declarations are kept apart from the party (a municipality may register
//! thousands of caseworker ids): only the id the case system sends and the date
//! it was signed, never a name or a personal identity number.
//!
//! Not for: what a state admits (the relay's policy gate decides), the checks a
//! product requires (the relay's), or parsing the TOML agreements.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use relay_ident::Organisationsnummer;
use serde::{Deserialize, Serialize};

use crate::state::{Result, StateError};

/// What a party is to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Municipality,
    Processor,
    EltVendor,
    AssistanceCompany,
    Agency,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Municipality,
        Role::Processor,
        Role::EltVendor,
        Role::AssistanceCompany,
        Role::Agency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Municipality => "municipality",
            Role::Processor => "processor",
            Role::EltVendor => "elt-vendor",
            Role::AssistanceCompany => "assistance-company",
            Role::Agency => "agency",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// How far a party has come with one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartyState {
    /// Applied; not yet let in anywhere.
    Applied,
    /// Let into the test environment: `status="test"` messages only.
    Test,
    /// Passed the product's test checks; still test only until promoted.
    Verified,
    /// In production: `status="production"` messages too.
    Production,
    /// Shut off by the operator for a while.
    Suspended,
    /// The agreement has ended.
    Terminated,
}

impl PartyState {
    pub const ALL: [PartyState; 6] = [
        PartyState::Applied,
        PartyState::Test,
        PartyState::Verified,
        PartyState::Production,
        PartyState::Suspended,
        PartyState::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PartyState::Applied => "applied",
            PartyState::Test => "test",
            PartyState::Verified => "verified",
            PartyState::Production => "production",
            PartyState::Suspended => "suspended",
            PartyState::Terminated => "terminated",
        }
    }

    pub fn parse(s: &str) -> Option<PartyState> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One change of a product's state: who, when, from what to what, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    pub at: DateTime<Utc>,
    /// The operator (an admin identity, `import` for the TOML seed).
    pub operator: String,
    pub from: Option<PartyState>,
    pub to: PartyState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A party's standing for one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductStanding {
    pub state: PartyState,
    /// Every change, oldest first.
    pub history: Vec<StateChange>,
    /// Test checks passed: check name → when first passed.
    #[serde(default)]
    pub checks: BTreeMap<String, DateTime<Utc>>,
}

impl ProductStanding {
    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.history.last().map(|c| c.at)
    }
}

/// One party of the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub org: Organisationsnummer,
    pub name: String,
    pub role: Role,
    /// Product name (`ssbtek`, `elt`, `ping`, ...) → standing.
    #[serde(default)]
    pub products: BTreeMap<String, ProductStanding>,
    /// Questions are answered only for caseworkers in the declaration register.
    #[serde(default)]
    pub require_declaration: bool,
    pub created: DateTime<Utc>,
}

impl Party {
    pub fn new(org: Organisationsnummer, name: String, role: Role, now: DateTime<Utc>) -> Self {
        Self {
            org,
            name,
            role,
            products: BTreeMap::new(),
            require_declaration: false,
            created: now,
        }
    }

    /// Moves `product` to `to`, recording the change; the product is added when new.
    pub fn change_state(
        &mut self,
        product: &str,
        to: PartyState,
        operator: &str,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) {
        let change = |from| StateChange {
            at: now,
            operator: operator.to_owned(),
            from,
            to,
            reason,
        };
        match self.products.get_mut(product) {
            Some(s) => {
                s.history.push(change(Some(s.state)));
                s.state = to;
            }
            None => {
                self.products.insert(
                    product.to_owned(),
                    ProductStanding {
                        state: to,
                        history: vec![change(None)],
                        checks: BTreeMap::new(),
                    },
                );
            }
        }
    }
}

/// A client certificate a party connected with. No personal data: the subject
/// and issuer are the organisation's certificate names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyCertificate {
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint: String,
    pub subject: String,
    pub issuer: String,
    pub not_after: DateTime<Utc>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// One caseworker's signed declaration (§9.2.9): the id the case system sends
/// as `handlaggare`, and the date it was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    pub caseworker: String,
    pub signed: NaiveDate,
}

/// A change made inside one transaction by [`PartyRegister::update`]: `Err`
/// leaves the party as it was and is handed back.
pub type Edit<T> = Box<dyn FnOnce(&mut Party) -> std::result::Result<T, String> + Send>;

/// The register every node shares. Every write is one transaction.
pub trait PartyRegister: Send + Sync + 'static {
    /// Every party, by organisation number.
    fn parties(&self) -> impl Future<Output = Result<Vec<Party>>> + Send;

    fn party(&self, org: Organisationsnummer)
    -> impl Future<Output = Result<Option<Party>>> + Send;

    /// Adds `party` unless one with its organisation number exists; whether it was added.
    fn add_party(&self, party: &Party) -> impl Future<Output = Result<bool>> + Send;

    /// Reads, changes and writes one party in one transaction. `Ok(None)`: no
    /// such party; `Ok(Some(Err(reason)))`: the edit refused and nothing changed.
    fn update<T: Send + 'static>(
        &self,
        org: Organisationsnummer,
        edit: Edit<T>,
    ) -> impl Future<Output = Result<Option<std::result::Result<T, String>>>> + Send;

    /// Registers (or re-dates) caseworkers' declarations for a municipality; how
    /// many were new.
    fn declare(
        &self,
        org: Organisationsnummer,
        declarations: &[Declaration],
    ) -> impl Future<Output = Result<usize>> + Send;

    /// Removes one caseworker's declaration; whether there was one.
    fn revoke(
        &self,
        org: Organisationsnummer,
        caseworker: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// A municipality's declarations, by caseworker id.
    fn declarations(
        &self,
        org: Organisationsnummer,
    ) -> impl Future<Output = Result<Vec<Declaration>>> + Send;

    /// Every declaration of every municipality (for a node's cache).
    fn all_declarations(
        &self,
    ) -> impl Future<Output = Result<Vec<(Organisationsnummer, Declaration)>>> + Send;

    /// Records a certificate `org` connected with at `now` (first and last seen).
    fn seen_certificate(
        &self,
        org: Organisationsnummer,
        cert: &PartyCertificate,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The certificates each party was seen with, oldest first.
    fn certificates(
        &self,
    ) -> impl Future<Output = Result<Vec<(Organisationsnummer, PartyCertificate)>>> + Send;
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| StateError::Record(e.to_string()))
}

pub(crate) fn from_json<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| StateError::Record(format!("party record: {e}")))
}
