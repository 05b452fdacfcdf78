//! [`Parties`]: the register a node runs, on the engine of its [`Store`]: a redb
//! file beside the mailbox (`<mailbox.store>.parties`), or the same PostgreSQL
//! database. Kept apart from [`Store`] so the register is one concern.

use std::path::Path;

use relay_ident::Organisationsnummer;

use crate::node::Store;
use crate::party::{Declaration, Edit, Party, PartyCertificate, PartyRegister};
use crate::pg::PgStore;
use crate::redb::{RedbParties, parties_path};
use crate::state::{Result, StateError};

/// A node's party register. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Parties {
    Redb(RedbParties),
    Postgres(PgStore),
}

impl Parties {
    /// The register beside `store`: for redb, `<mailbox>.parties` next to the
    /// mailbox file `mailbox`.
    pub async fn of(store: &Store, mailbox: &Path) -> Result<Self> {
        match store {
            Store::Redb { .. } => {
                let path = parties_path(mailbox);
                tokio::task::spawn_blocking(move || RedbParties::open(path))
                    .await
                    .map_err(|e| StateError::File(e.to_string()))?
                    .map(Self::Redb)
            }
            Store::Postgres(pg) => Ok(Self::Postgres(pg.clone())),
        }
    }

    /// Whether several nodes share this register.
    pub fn shared(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

macro_rules! engine {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Parties::Redb($s) => $e,
            Parties::Postgres($s) => $e,
        }
    };
}

impl PartyRegister for Parties {
    async fn parties(&self) -> Result<Vec<Party>> {
        engine!(self, s => s.parties().await)
    }

    async fn party(&self, org: Organisationsnummer) -> Result<Option<Party>> {
        engine!(self, s => s.party(org).await)
    }

    async fn add_party(&self, party: &Party) -> Result<bool> {
        engine!(self, s => s.add_party(party).await)
    }

    async fn update<T: Send + 'static>(
        &self,
        org: Organisationsnummer,
        edit: Edit<T>,
    ) -> Result<Option<std::result::Result<T, String>>> {
        engine!(self, s => s.update(org, edit).await)
    }

    async fn declare(&self, org: Organisationsnummer, list: &[Declaration]) -> Result<usize> {
        engine!(self, s => s.declare(org, list).await)
    }

    async fn revoke(&self, org: Organisationsnummer, caseworker: &str) -> Result<bool> {
        engine!(self, s => s.revoke(org, caseworker).await)
    }

    async fn declarations(&self, org: Organisationsnummer) -> Result<Vec<Declaration>> {
        engine!(self, s => s.declarations(org).await)
    }

    async fn all_declarations(&self) -> Result<Vec<(Organisationsnummer, Declaration)>> {
        engine!(self, s => s.all_declarations().await)
    }

    async fn seen_certificate(&self, org: Organisationsnummer, c: &PartyCertificate) -> Result<()> {
        engine!(self, s => s.seen_certificate(org, c).await)
    }

    async fn certificates(&self) -> Result<Vec<(Organisationsnummer, PartyCertificate)>> {
        engine!(self, s => s.certificates().await)
    }
}
