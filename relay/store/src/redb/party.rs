//! [`RedbParties`]: the one-machine [`PartyRegister`], on its own redb file
//! beside the mailbox (`<mailbox.store>.parties`).
//!
//! Tables:
//!
//! | table          | key                        | value                          |
//! |----------------|----------------------------|--------------------------------|
//! | `parties`      | org                        | JSON [`Party`]                 |
//! | `declarations` | (org, caseworker id)       | signed date, `YYYY-MM-DD`      |
//! | `certificates` | (org, fingerprint)         | JSON [`PartyCertificate`]      |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use relay_ident::Organisationsnummer;

use super::common::{blocking, file, insert_new};
use crate::party::{Declaration, Edit, Party, PartyCertificate, PartyRegister, from_json, to_json};
use crate::state::{Result, StateError};

const PARTIES: TableDefinition<&str, &[u8]> = TableDefinition::new("parties");
const DECLARATIONS: TableDefinition<(&str, &str), &str> = TableDefinition::new("declarations");
const CERTIFICATES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("certificates");

/// The register file that goes with a redb mailbox file (`<mailbox>.parties`).
pub fn parties_path(mailbox: &Path) -> PathBuf {
    let mut p = mailbox.as_os_str().to_owned();
    p.push(".parties");
    p.into()
}

/// The embedded register. Cheap to clone; clones share one file.
#[derive(Clone)]
pub struct RedbParties {
    db: Arc<Database>,
}

impl std::fmt::Debug for RedbParties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbParties").finish_non_exhaustive()
    }
}

fn org(s: &str) -> Result<Organisationsnummer> {
    Organisationsnummer::parse(s)
        .map_err(|_| StateError::Record("stored organisation number is invalid".into()))
}

impl RedbParties {
    /// Opens (or creates) the register file. Blocking: call at start-up.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(1024 * 1024)
            .create(path.as_ref())
            .map_err(file)?;
        let txn = db.begin_write().map_err(file)?;
        txn.open_table(PARTIES).map_err(file)?;
        txn.open_table(DECLARATIONS).map_err(file)?;
        txn.open_table(CERTIFICATES).map_err(file)?;
        txn.commit().map_err(file)?;
        Ok(Self { db: Arc::new(db) })
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
    {
        blocking(self.db.clone(), f).await
    }
}

impl PartyRegister for RedbParties {
    async fn parties(&self) -> Result<Vec<Party>> {
        self.run(|db| {
            let txn = db.begin_read().map_err(file)?;
            let t = txn.open_table(PARTIES).map_err(file)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(file)? {
                let (_, v) = row.map_err(file)?;
                out.push(from_json(v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn party(&self, org: Organisationsnummer) -> Result<Option<Party>> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(file)?;
            let t = txn.open_table(PARTIES).map_err(file)?;
            let v = t.get(org.as_str()).map_err(file)?;
            v.map(|v| from_json(v.value())).transpose()
        })
        .await
    }

    async fn add_party(&self, party: &Party) -> Result<bool> {
        let bytes = to_json(party)?;
        let key = party.org.as_str().to_owned();
        self.run(move |db| insert_new(db, PARTIES, &key, &bytes))
            .await
    }

    async fn update<T: Send + 'static>(
        &self,
        org: Organisationsnummer,
        edit: Edit<T>,
    ) -> Result<Option<std::result::Result<T, String>>> {
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let out = {
                let mut t = txn.open_table(PARTIES).map_err(file)?;
                let current: Option<Party> = t
                    .get(org.as_str())
                    .map_err(file)?
                    .map(|v| from_json(v.value()))
                    .transpose()?;
                match current {
                    None => None,
                    Some(mut party) => match edit(&mut party) {
                        Ok(v) => {
                            let bytes = to_json(&party)?;
                            t.insert(org.as_str(), bytes.as_slice()).map_err(file)?;
                            Some(Ok(v))
                        }
                        Err(e) => Some(Err(e)),
                    },
                }
            };
            txn.commit().map_err(file)?;
            Ok(out)
        })
        .await
    }

    async fn declare(&self, org: Organisationsnummer, list: &[Declaration]) -> Result<usize> {
        let list = list.to_vec();
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let mut new = 0;
            {
                let mut t = txn.open_table(DECLARATIONS).map_err(file)?;
                for d in &list {
                    let date = d.signed.format("%Y-%m-%d").to_string();
                    if t.insert((org.as_str(), d.caseworker.as_str()), date.as_str())
                        .map_err(file)?
                        .is_none()
                    {
                        new += 1;
                    }
                }
            }
            txn.commit().map_err(file)?;
            Ok(new)
        })
        .await
    }

    async fn revoke(&self, org: Organisationsnummer, caseworker: &str) -> Result<bool> {
        let caseworker = caseworker.to_owned();
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let removed = txn
                .open_table(DECLARATIONS)
                .map_err(file)?
                .remove((org.as_str(), caseworker.as_str()))
                .map_err(file)?
                .is_some();
            txn.commit().map_err(file)?;
            Ok(removed)
        })
        .await
    }

    async fn declarations(&self, org: Organisationsnummer) -> Result<Vec<Declaration>> {
        Ok(self
            .all_declarations()
            .await?
            .into_iter()
            .filter(|(o, _)| *o == org)
            .map(|(_, d)| d)
            .collect())
    }

    async fn all_declarations(&self) -> Result<Vec<(Organisationsnummer, Declaration)>> {
        self.run(|db| {
            let txn = db.begin_read().map_err(file)?;
            let t = txn.open_table(DECLARATIONS).map_err(file)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(file)? {
                let (k, v) = row.map_err(file)?;
                let (o, c) = k.value();
                let signed = chrono::NaiveDate::parse_from_str(v.value(), "%Y-%m-%d")
                    .map_err(|_| StateError::Record("stored declaration date".into()))?;
                out.push((
                    org(o)?,
                    Declaration {
                        caseworker: c.to_owned(),
                        signed,
                    },
                ));
            }
            Ok(out)
        })
        .await
    }

    async fn seen_certificate(
        &self,
        org: Organisationsnummer,
        cert: &PartyCertificate,
    ) -> Result<()> {
        let cert = cert.clone();
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            {
                let mut t = txn.open_table(CERTIFICATES).map_err(file)?;
                let key = (org.as_str(), cert.fingerprint.as_str());
                let earlier: Option<PartyCertificate> = t
                    .get(key)
                    .map_err(file)?
                    .map(|v| from_json(v.value()))
                    .transpose()?;
                let mut record = cert.clone();
                if let Some(e) = earlier {
                    record.first_seen = e.first_seen;
                }
                let bytes = to_json(&record)?;
                t.insert(key, bytes.as_slice()).map_err(file)?;
            }
            txn.commit().map_err(file)
        })
        .await
    }

    async fn certificates(&self) -> Result<Vec<(Organisationsnummer, PartyCertificate)>> {
        let mut out = self
            .run(|db| {
                let txn = db.begin_read().map_err(file)?;
                let t = txn.open_table(CERTIFICATES).map_err(file)?;
                let mut out = Vec::new();
                for row in t.iter().map_err(file)? {
                    let (k, v) = row.map_err(file)?;
                    let c: PartyCertificate = from_json(v.value())?;
                    out.push((org(k.value().0)?, c));
                }
                Ok(out)
            })
            .await?;
        out.sort_by_key(|a| (a.0, a.1.first_seen));
        Ok(out)
    }
}
