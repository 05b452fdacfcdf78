//! [`StatusBoard`] on PostgreSQL (`migrations/0004_status.sql`). An automatic
//! incident is opened by a conditional insert against the partial unique index
//! `status_incidents_one_open`, so two nodes opening it at once open it once;
//! an update locks its incident's row.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Column, PgStore, describe, describe_pool};
use crate::state::{Result, StateError};
use crate::status::{
    AnnouncedWindow, Change, ComponentState, ComponentStatus, Impact, Incident, IncidentStatus,
    IncidentUpdate, NewIncident, StatusBoard, Text, Updated, merge_announced, record_error,
};

fn db(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StateError {
    move |e| StateError::Database(format!("{op}: {}", describe(&e)))
}

const INCIDENT_COLUMNS: &str = "id, auto_key, name_sv, name_en, status, impact, components, \
                                started_at, resolved_at, updated_at";

fn incident_of(row: &Row) -> Result<Incident> {
    let status: String = row.col(4)?;
    let impact: String = row.col(5)?;
    Ok(Incident {
        id: row.col(0)?,
        auto_key: row.col(1)?,
        name: Text::new(row.col::<String>(2)?, row.col::<String>(3)?),
        status: IncidentStatus::parse(&status)
            .ok_or_else(|| record_error(format!("incident status {status:?}")))?,
        impact: Impact::parse(&impact)
            .ok_or_else(|| record_error(format!("incident impact {impact:?}")))?,
        components: row.col(6)?,
        started_at: row.col(7)?,
        resolved_at: row.col(8)?,
        updated_at: row.col(9)?,
        updates: Vec::new(),
    })
}

fn update_of(row: &Row) -> Result<(Uuid, IncidentUpdate)> {
    let status: String = row.col(2)?;
    Ok((
        row.col(1)?,
        IncidentUpdate {
            id: row.col(0)?,
            status: IncidentStatus::parse(&status)
                .ok_or_else(|| record_error(format!("update status {status:?}")))?,
            text: Text::new(row.col::<String>(3)?, row.col::<String>(4)?),
            created_at: row.col(5)?,
        },
    ))
}

fn window_of(row: &Row) -> Result<AnnouncedWindow> {
    Ok(AnnouncedWindow {
        provider: row.col(0)?,
        id: row.col(1)?,
        starts_at: row.col(2)?,
        ends_at: row.col(3)?,
        text: Text::new(row.col::<String>(4)?, row.col::<String>(5)?),
        updated_at: row.col(6)?,
    })
}

const UPDATE_COLUMNS: &str = "id, incident, status, text_sv, text_en, created_at";
const WINDOW_COLUMNS: &str = "provider, id, starts_at, ends_at, text_sv, text_en, updated_at";

impl PgStore {
    async fn status_client(&self, op: &'static str) -> Result<deadpool_postgres::Object> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| StateError::Database(format!("{op}: {}", describe_pool(&e))))
    }

    /// Fills in the updates of `incidents`.
    async fn with_updates(
        client: &impl deadpool_postgres::GenericClient,
        mut incidents: Vec<Incident>,
    ) -> Result<Vec<Incident>> {
        if incidents.is_empty() {
            return Ok(incidents);
        }
        let ids: Vec<Uuid> = incidents.iter().map(|i| i.id).collect();
        let rows = client
            .query(
                &format!(
                    "SELECT {UPDATE_COLUMNS} FROM status_incident_updates \
                     WHERE incident = ANY($1) ORDER BY created_at, id"
                ),
                &[&ids],
            )
            .await
            .map_err(db("incident updates"))?;
        for row in &rows {
            let (incident, update) = update_of(row)?;
            if let Some(i) = incidents.iter_mut().find(|i| i.id == incident) {
                i.updates.push(update);
            }
        }
        Ok(incidents)
    }
}

async fn insert_update(
    tx: &deadpool_postgres::Transaction<'_>,
    incident: Uuid,
    u: &IncidentUpdate,
) -> Result<()> {
    tx.execute(
        "INSERT INTO status_incident_updates (id, incident, status, text_sv, text_en, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &u.id,
            &incident,
            &u.status.as_str(),
            &u.text.sv,
            &u.text.en,
            &u.created_at,
        ],
    )
    .await
    .map_err(db("incident update"))?;
    Ok(())
}

impl StatusBoard for PgStore {
    async fn record_component(&self, s: &ComponentState) -> Result<()> {
        self.status_client("component")
            .await?
            .execute(
                "INSERT INTO status_components (id, status, updated_at, last_success_at, last_failure_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET \
                   updated_at = CASE WHEN status_components.status = EXCLUDED.status \
                                THEN status_components.updated_at ELSE EXCLUDED.updated_at END, \
                   status = EXCLUDED.status, \
                   last_success_at = GREATEST(status_components.last_success_at, EXCLUDED.last_success_at), \
                   last_failure_at = GREATEST(status_components.last_failure_at, EXCLUDED.last_failure_at)",
                &[
                    &s.id,
                    &s.status.as_str(),
                    &s.updated_at,
                    &s.last_success_at,
                    &s.last_failure_at,
                ],
            )
            .await
            .map_err(db("component"))?;
        Ok(())
    }

    async fn components(&self) -> Result<Vec<ComponentState>> {
        let rows = self
            .status_client("components")
            .await?
            .query(
                "SELECT id, status, updated_at, last_success_at, last_failure_at \
                 FROM status_components ORDER BY id",
                &[],
            )
            .await
            .map_err(db("components"))?;
        rows.iter()
            .map(|r| {
                let status: String = r.col(1)?;
                Ok(ComponentState {
                    id: r.col(0)?,
                    status: ComponentStatus::parse(&status)
                        .ok_or_else(|| record_error(format!("component status {status:?}")))?,
                    updated_at: r.col(2)?,
                    last_success_at: r.col(3)?,
                    last_failure_at: r.col(4)?,
                })
            })
            .collect()
    }

    async fn open_incident(
        &self,
        new: &NewIncident,
        now: DateTime<Utc>,
    ) -> Result<(Incident, bool)> {
        let incident = new.clone().into_incident(now);
        let mut client = self.status_client("open incident").await?;
        let tx = client.transaction().await.map_err(db("open incident"))?;
        let inserted = tx
            .execute(
                "INSERT INTO status_incidents (id, auto_key, name_sv, name_en, status, impact, \
                 components, started_at, resolved_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9) \
                 ON CONFLICT (auto_key) WHERE resolved_at IS NULL AND auto_key IS NOT NULL DO NOTHING",
                &[
                    &incident.id,
                    &incident.auto_key,
                    &incident.name.sv,
                    &incident.name.en,
                    &incident.status.as_str(),
                    &incident.impact.as_str(),
                    &incident.components,
                    &incident.started_at,
                    &incident.updated_at,
                ],
            )
            .await
            .map_err(db("open incident"))?;
        if inserted == 1 {
            for u in &incident.updates {
                insert_update(&tx, incident.id, u).await?;
            }
            tx.commit().await.map_err(db("open incident"))?;
            return Ok((incident, true));
        }
        drop(tx);
        let key = new.auto_key.as_deref().unwrap_or_default();
        match self.open_with_key(key).await? {
            Some(existing) => Ok((existing, false)),
            // Resolved between the insert and the read: a rare race; the
            // caller tries again on its next transition.
            None => Err(StateError::Database(
                "open incident: the open incident was resolved meanwhile".to_owned(),
            )),
        }
    }

    async fn update_incident(&self, id: Uuid, change: &Change) -> Result<Updated> {
        let mut client = self.status_client("update incident").await?;
        let tx = client.transaction().await.map_err(db("update incident"))?;
        let row = tx
            .query_opt(
                &format!(
                    "SELECT {INCIDENT_COLUMNS} FROM status_incidents WHERE id = $1 FOR UPDATE"
                ),
                &[&id],
            )
            .await
            .map_err(db("update incident"))?;
        let Some(row) = row else {
            return Ok(Updated::NotFound);
        };
        let incident = incident_of(&row)?;
        let mut incident = PgStore::with_updates(&tx, vec![incident])
            .await?
            .pop()
            .ok_or_else(|| record_error("incident vanished"))?;
        let outcome = change.clone().apply(&mut incident);
        if let Updated::Done(updated) = &outcome {
            tx.execute(
                "UPDATE status_incidents SET status = $2, components = $3, resolved_at = $4, \
                 updated_at = $5 WHERE id = $1",
                &[
                    &id,
                    &updated.status.as_str(),
                    &updated.components,
                    &updated.resolved_at,
                    &updated.updated_at,
                ],
            )
            .await
            .map_err(db("update incident"))?;
            if let Some(u) = updated.updates.last() {
                insert_update(&tx, id, u).await?;
            }
            tx.commit().await.map_err(db("update incident"))?;
        }
        Ok(outcome)
    }

    async fn open_with_key(&self, auto_key: &str) -> Result<Option<Incident>> {
        let client = self.status_client("open incident").await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {INCIDENT_COLUMNS} FROM status_incidents \
                     WHERE auto_key = $1 AND resolved_at IS NULL"
                ),
                &[&auto_key],
            )
            .await
            .map_err(db("open incident"))?;
        match row {
            None => Ok(None),
            Some(row) => Ok(PgStore::with_updates(&client, vec![incident_of(&row)?])
                .await?
                .pop()),
        }
    }

    async fn incidents(&self, since: DateTime<Utc>) -> Result<Vec<Incident>> {
        let client = self.status_client("incidents").await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {INCIDENT_COLUMNS} FROM status_incidents \
                     WHERE resolved_at IS NULL OR updated_at >= $1 \
                     ORDER BY started_at DESC, id DESC"
                ),
                &[&since],
            )
            .await
            .map_err(db("incidents"))?;
        let incidents = rows.iter().map(incident_of).collect::<Result<Vec<_>>>()?;
        PgStore::with_updates(&client, incidents).await
    }

    async fn incident(&self, id: Uuid) -> Result<Option<Incident>> {
        let client = self.status_client("incident").await?;
        let row = client
            .query_opt(
                &format!("SELECT {INCIDENT_COLUMNS} FROM status_incidents WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(db("incident"))?;
        match row {
            None => Ok(None),
            Some(row) => Ok(PgStore::with_updates(&client, vec![incident_of(&row)?])
                .await?
                .pop()),
        }
    }

    async fn announce(
        &self,
        provider: &str,
        windows: &[AnnouncedWindow],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut client = self.status_client("announce").await?;
        let tx = client.transaction().await.map_err(db("announce"))?;
        // One provider's windows are replaced by one node at a time.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('relay-store/announced/' || $1))",
            &[&provider],
        )
        .await
        .map_err(db("announce"))?;
        let rows = tx
            .query(
                &format!("SELECT {WINDOW_COLUMNS} FROM status_announced WHERE provider = $1"),
                &[&provider],
            )
            .await
            .map_err(db("announce"))?;
        let stored = rows.iter().map(window_of).collect::<Result<Vec<_>>>()?;
        let (write, remove, changed) = merge_announced(&stored, windows, now);
        for w in &write {
            tx.execute(
                "INSERT INTO status_announced (provider, id, starts_at, ends_at, text_sv, text_en, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (provider, id) DO UPDATE SET starts_at = EXCLUDED.starts_at, \
                 ends_at = EXCLUDED.ends_at, text_sv = EXCLUDED.text_sv, text_en = EXCLUDED.text_en, \
                 updated_at = EXCLUDED.updated_at",
                &[
                    &provider,
                    &w.id,
                    &w.starts_at,
                    &w.ends_at,
                    &w.text.sv,
                    &w.text.en,
                    &w.updated_at,
                ],
            )
            .await
            .map_err(db("announce"))?;
        }
        if !remove.is_empty() {
            tx.execute(
                "DELETE FROM status_announced WHERE provider = $1 AND id = ANY($2)",
                &[&provider, &remove],
            )
            .await
            .map_err(db("announce"))?;
        }
        tx.commit().await.map_err(db("announce"))?;
        Ok(changed)
    }

    async fn announced(&self) -> Result<Vec<AnnouncedWindow>> {
        let rows = self
            .status_client("announced")
            .await?
            .query(
                &format!(
                    "SELECT {WINDOW_COLUMNS} FROM status_announced ORDER BY starts_at, provider, id"
                ),
                &[],
            )
            .await
            .map_err(db("announced"))?;
        rows.iter().map(window_of).collect()
    }

    async fn sweep_status(&self, before: DateTime<Utc>) -> Result<u64> {
        let client = self.status_client("sweep status").await?;
        let incidents = client
            .execute(
                "DELETE FROM status_incidents WHERE resolved_at IS NOT NULL AND updated_at < $1",
                &[&before],
            )
            .await
            .map_err(db("sweep status"))?;
        let windows = client
            .execute(
                "DELETE FROM status_announced WHERE ends_at < $1",
                &[&before],
            )
            .await
            .map_err(db("sweep status"))?;
        Ok(incidents + windows)
    }
}
