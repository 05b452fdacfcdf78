//! The key ring on PostgreSQL: tables `mailbox_kek` (id, fingerprint, state;
//! at most one `active`, by a unique index) and `mailbox_kek_nodes` (what each
//! node holds and wraps with, and when it last said so). See [`crate::keys`].

use chrono::{DateTime, Utc};
use relay_mailbox::KekId;

use super::{PgStore, describe, describe_pool};
use crate::keys::{KeyRecord, KeyRingError, KeyState, NodeKeys, Result};

fn db(op: &'static str) -> impl Fn(tokio_postgres::Error) -> KeyRingError {
    move |e| KeyRingError::Store(format!("{op}: {}", describe(&e)))
}

fn id_of(v: i64) -> KekId {
    KekId::try_from(v).unwrap_or(KekId::MAX)
}

impl PgStore {
    async fn ring_client(&self, op: &'static str) -> Result<deadpool_postgres::Object> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| KeyRingError::Store(format!("{op}: {}", describe_pool(&e))))
    }

    pub(crate) fn node_name(&self) -> &str {
        &self.inner.node
    }

    pub(crate) async fn key_records(&self) -> Result<Vec<KeyRecord>> {
        let client = self.ring_client("key ring").await?;
        let rows = client
            .query(
                "SELECT kek_id, fingerprint, state, changed_at FROM mailbox_kek ORDER BY kek_id",
                &[],
            )
            .await
            .map_err(db("key ring"))?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get(2).map_err(db("key ring"))?;
                Ok(KeyRecord {
                    id: id_of(r.try_get(0).map_err(db("key ring"))?),
                    fingerprint: r.try_get(1).map_err(db("key ring"))?,
                    state: KeyState::parse(&state)
                        .ok_or_else(|| KeyRingError::Store(format!("key ring: state {state:?}")))?,
                    changed_at: r.try_get(3).map_err(db("key ring"))?,
                })
            })
            .collect()
    }

    /// The fingerprint recorded for `id` after this call.
    pub(crate) async fn register_key(&self, id: KekId, print: &str) -> Result<String> {
        let client = self.ring_client("registering a key").await?;
        client
            .execute(
                "INSERT INTO mailbox_kek (kek_id, fingerprint, state) VALUES ($1, $2, 'registered') \
                 ON CONFLICT (kek_id) DO NOTHING",
                &[&i64::from(id), &print],
            )
            .await
            .map_err(db("registering a key"))?;
        client
            .query_one(
                "SELECT fingerprint FROM mailbox_kek WHERE kek_id = $1",
                &[&i64::from(id)],
            )
            .await
            .map_err(db("registering a key"))?
            .try_get(0)
            .map_err(db("registering a key"))
    }

    pub(crate) async fn set_key_state(
        &self,
        id: KekId,
        to: KeyState,
        only_if_none: bool,
    ) -> Result<bool> {
        let mut client = self.ring_client("changing a key").await?;
        let tx = client.transaction().await.map_err(db("changing a key"))?;
        // One operator change at a time.
        tx.execute("LOCK TABLE mailbox_kek IN SHARE ROW EXCLUSIVE MODE", &[])
            .await
            .map_err(db("changing a key"))?;
        let known = tx
            .query_opt(
                "SELECT 1 FROM mailbox_kek WHERE kek_id = $1",
                &[&i64::from(id)],
            )
            .await
            .map_err(db("changing a key"))?;
        if known.is_none() {
            return Err(KeyRingError::Refused(format!(
                "mailbox key {id} is not known to the store"
            )));
        }
        if to == KeyState::Active {
            let active = tx
                .query_opt("SELECT kek_id FROM mailbox_kek WHERE state = 'active'", &[])
                .await
                .map_err(db("changing a key"))?;
            if only_if_none && active.is_some() {
                return Ok(false);
            }
            tx.execute(
                "UPDATE mailbox_kek SET state = 'registered', changed_at = now() \
                 WHERE state = 'active' AND kek_id <> $1",
                &[&i64::from(id)],
            )
            .await
            .map_err(db("changing a key"))?;
        }
        tx.execute(
            "UPDATE mailbox_kek SET state = $2, changed_at = now() WHERE kek_id = $1",
            &[&i64::from(id), &to.as_str()],
        )
        .await
        .map_err(db("changing a key"))?;
        tx.commit().await.map_err(db("changing a key"))?;
        Ok(true)
    }

    pub(crate) async fn report_keys(
        &self,
        node: &str,
        held: &[KekId],
        wraps_with: KekId,
    ) -> Result<()> {
        let held: Vec<i64> = held.iter().map(|&i| i64::from(i)).collect();
        let client = self.ring_client("reporting keys").await?;
        client
            .execute(
                "INSERT INTO mailbox_kek_nodes (node, held, wraps_with, seen_at) \
                 VALUES ($1, $2, $3, now()) ON CONFLICT (node) DO UPDATE \
                 SET held = $2, wraps_with = $3, seen_at = now()",
                &[&node, &held, &i64::from(wraps_with)],
            )
            .await
            .map_err(db("reporting keys"))?;
        Ok(())
    }

    pub(crate) async fn key_nodes(&self) -> Result<Vec<NodeKeys>> {
        let client = self.ring_client("key ring nodes").await?;
        let rows = client
            .query(
                "SELECT node, held, wraps_with, seen_at FROM mailbox_kek_nodes ORDER BY node",
                &[],
            )
            .await
            .map_err(db("key ring nodes"))?;
        rows.iter()
            .map(|r| {
                let held: Vec<i64> = r.try_get(1).map_err(db("key ring nodes"))?;
                let seen_at: DateTime<Utc> = r.try_get(3).map_err(db("key ring nodes"))?;
                Ok(NodeKeys {
                    node: r.try_get(0).map_err(db("key ring nodes"))?,
                    held: held.into_iter().map(id_of).collect(),
                    wraps_with: id_of(r.try_get(2).map_err(db("key ring nodes"))?),
                    seen_at,
                })
            })
            .collect()
    }
}

impl PgStore {
    /// The bytes of every row of every `mailbox_*` table, by table: each
    /// column's own bytes (`bytea` as stored, anything else as its text),
    /// concatenated per row. For `shs-relay store verify`.
    pub(crate) async fn mailbox_rows(&self) -> Result<Vec<(String, Vec<Vec<u8>>)>> {
        let client = self.ring_client("verify").await?;
        let columns = client
            .query(
                "SELECT table_name::text, column_name::text, data_type::text \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name LIKE 'mailbox\\_%' \
                 ORDER BY table_name, ordinal_position",
                &[],
            )
            .await
            .map_err(db("verify"))?;
        let mut tables: Vec<(String, Vec<String>)> = Vec::new();
        for c in &columns {
            let (table, column, ty): (String, String, String) = (
                c.try_get(0).map_err(db("verify"))?,
                c.try_get(1).map_err(db("verify"))?,
                c.try_get(2).map_err(db("verify"))?,
            );
            let column = format!("\"{}\"", column.replace('"', "\"\""));
            let expr = if ty == "bytea" {
                format!("coalesce({column}, ''::bytea)")
            } else {
                format!("convert_to(coalesce({column}::text, ''), 'UTF8')")
            };
            match tables.last_mut() {
                Some((t, exprs)) if *t == table => exprs.push(expr),
                _ => tables.push((table, vec![expr])),
            }
        }
        let mut out = Vec::new();
        for (table, exprs) in tables {
            let sql = format!(
                "SELECT {} FROM \"{}\"",
                exprs.join(" || "),
                table.replace('"', "\"\"")
            );
            let rows = client.query(&sql, &[]).await.map_err(db("verify"))?;
            let rows = rows
                .iter()
                .map(|r| r.try_get::<_, Vec<u8>>(0).map_err(db("verify")))
                .collect::<Result<Vec<_>>>()?;
            out.push((table, rows));
        }
        Ok(out)
    }
}
