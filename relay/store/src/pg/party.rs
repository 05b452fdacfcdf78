//! [`PartyRegister`] on PostgreSQL: `parties` (one JSON document per party,
//! changed under a row lock), `party_declarations` and `party_certificates`
//! (migration `0005_parties.sql`).

use relay_ident::Organisationsnummer;

use super::{Column, PgStore, describe};
use crate::party::{Declaration, Edit, Party, PartyCertificate, PartyRegister, from_json, to_json};
use crate::state::{Result, StateError};

fn db(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StateError {
    move |e| StateError::Database(format!("{op}: {}", describe(&e)))
}

fn org(s: &str) -> Result<Organisationsnummer> {
    Organisationsnummer::parse(s)
        .map_err(|_| StateError::Record("stored organisation number is invalid".to_owned()))
}

fn party_of(row: &tokio_postgres::Row) -> Result<Party> {
    let doc: String = row.col(0)?;
    from_json(doc.as_bytes())
}

fn text(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| StateError::Record(e.to_string()))
}

impl PartyRegister for PgStore {
    async fn parties(&self) -> Result<Vec<Party>> {
        let client = self.state_client_for("parties").await?;
        let rows = client
            .query("SELECT doc FROM parties ORDER BY org", &[])
            .await
            .map_err(db("parties"))?;
        rows.iter().map(party_of).collect()
    }

    async fn party(&self, o: Organisationsnummer) -> Result<Option<Party>> {
        let client = self.state_client_for("party").await?;
        let row = client
            .query_opt("SELECT doc FROM parties WHERE org = $1", &[&o.as_str()])
            .await
            .map_err(db("party"))?;
        row.as_ref().map(party_of).transpose()
    }

    async fn add_party(&self, party: &Party) -> Result<bool> {
        let doc = text(to_json(party)?)?;
        let client = self.state_client_for("add party").await?;
        let n = client
            .execute(
                "INSERT INTO parties (org, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&party.org.as_str(), &doc],
            )
            .await
            .map_err(db("add party"))?;
        Ok(n == 1)
    }

    async fn update<T: Send + 'static>(
        &self,
        o: Organisationsnummer,
        edit: Edit<T>,
    ) -> Result<Option<std::result::Result<T, String>>> {
        let mut client = self.state_client_for("update party").await?;
        let tx = client.transaction().await.map_err(db("update party"))?;
        let row = tx
            .query_opt(
                "SELECT doc FROM parties WHERE org = $1 FOR UPDATE",
                &[&o.as_str()],
            )
            .await
            .map_err(db("update party"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut party = party_of(&row)?;
        match edit(&mut party) {
            Ok(v) => {
                let doc = text(to_json(&party)?)?;
                tx.execute(
                    "UPDATE parties SET doc = $2, updated_at = now() WHERE org = $1",
                    &[&o.as_str(), &doc],
                )
                .await
                .map_err(db("update party"))?;
                tx.commit().await.map_err(db("update party"))?;
                Ok(Some(Ok(v)))
            }
            Err(e) => Ok(Some(Err(e))),
        }
    }

    async fn declare(&self, o: Organisationsnummer, list: &[Declaration]) -> Result<usize> {
        let mut client = self.state_client_for("declare").await?;
        let tx = client.transaction().await.map_err(db("declare"))?;
        let mut new = 0;
        for d in list {
            // xmax = 0 only for a row this statement inserted.
            let row = tx
                .query_one(
                    "INSERT INTO party_declarations (org, caseworker, signed) VALUES ($1, $2, $3)
                     ON CONFLICT (org, caseworker) DO UPDATE SET signed = EXCLUDED.signed
                     RETURNING (xmax = 0)",
                    &[&o.as_str(), &d.caseworker, &d.signed],
                )
                .await
                .map_err(db("declare"))?;
            if row.col::<bool>(0)? {
                new += 1;
            }
        }
        tx.commit().await.map_err(db("declare"))?;
        Ok(new)
    }

    async fn revoke(&self, o: Organisationsnummer, caseworker: &str) -> Result<bool> {
        let client = self.state_client_for("revoke").await?;
        let n = client
            .execute(
                "DELETE FROM party_declarations WHERE org = $1 AND caseworker = $2",
                &[&o.as_str(), &caseworker],
            )
            .await
            .map_err(db("revoke"))?;
        Ok(n == 1)
    }

    async fn declarations(&self, o: Organisationsnummer) -> Result<Vec<Declaration>> {
        let client = self.state_client_for("declarations").await?;
        let rows = client
            .query(
                "SELECT caseworker, signed FROM party_declarations WHERE org = $1 ORDER BY caseworker",
                &[&o.as_str()],
            )
            .await
            .map_err(db("declarations"))?;
        rows.iter()
            .map(|r| {
                Ok(Declaration {
                    caseworker: r.col(0)?,
                    signed: r.col(1)?,
                })
            })
            .collect()
    }

    async fn all_declarations(&self) -> Result<Vec<(Organisationsnummer, Declaration)>> {
        let client = self.state_client_for("declarations").await?;
        let rows = client
            .query(
                "SELECT org, caseworker, signed FROM party_declarations ORDER BY org, caseworker",
                &[],
            )
            .await
            .map_err(db("declarations"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    org(&r.col::<String>(0)?)?,
                    Declaration {
                        caseworker: r.col(1)?,
                        signed: r.col(2)?,
                    },
                ))
            })
            .collect()
    }

    async fn seen_certificate(&self, o: Organisationsnummer, c: &PartyCertificate) -> Result<()> {
        let client = self.state_client_for("certificate").await?;
        client
            .execute(
                "INSERT INTO party_certificates
                     (org, fingerprint, subject, issuer, not_after, first_seen, last_seen)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (org, fingerprint) DO UPDATE SET last_seen =
                     greatest(party_certificates.last_seen, EXCLUDED.last_seen)",
                &[
                    &o.as_str(),
                    &c.fingerprint,
                    &c.subject,
                    &c.issuer,
                    &c.not_after,
                    &c.first_seen,
                    &c.last_seen,
                ],
            )
            .await
            .map_err(db("certificate"))?;
        Ok(())
    }

    async fn certificates(&self) -> Result<Vec<(Organisationsnummer, PartyCertificate)>> {
        let client = self.state_client_for("certificates").await?;
        let rows = client
            .query(
                "SELECT org, fingerprint, subject, issuer, not_after, first_seen, last_seen
                 FROM party_certificates ORDER BY org, first_seen",
                &[],
            )
            .await
            .map_err(db("certificates"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    org(&r.col::<String>(0)?)?,
                    PartyCertificate {
                        fingerprint: r.col(1)?,
                        subject: r.col(2)?,
                        issuer: r.col(3)?,
                        not_after: r.col(4)?,
                        first_seen: r.col(5)?,
                        last_seen: r.col(6)?,
                    },
                ))
            })
            .collect()
    }
}

impl PgStore {
    async fn state_client_for(&self, op: &'static str) -> Result<deadpool_postgres::Object> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| StateError::Database(format!("{op}: {}", super::describe_pool(&e))))
    }
}
