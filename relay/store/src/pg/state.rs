//! [`SharedState`] on PostgreSQL. Each decision is one statement (or one
//! transaction under a row or advisory lock), on the database's clock, so every
//! node agrees whatever its own clock says.

use std::time::Duration;

use chrono::{DateTime, Utc};
use relay_ident::Organisationsnummer;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{Column, PgStore, describe, describe_pool};
use crate::state::{
    AcceptedReport, Decisions, Maintenance, MaintenanceWindow, Mandate, PlannedMaintenance,
    ProductName, RateLimit, Result, RetryLimit, Scope, Seen, SharedState, StateError, Unreadable,
    mandate_row, sort_out, suspension_row, withdrawal_row,
};

fn db(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StateError {
    move |e| StateError::Database(format!("{op}: {}", describe(&e)))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PgStore {
    async fn state_client(&self, op: &'static str) -> Result<deadpool_postgres::Object> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| StateError::Database(format!("{op}: {}", describe_pool(&e))))
    }

    async fn exec(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        self.state_client(op)
            .await?
            .execute(sql, params)
            .await
            .map_err(db(op))
    }

    async fn exists(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<bool> {
        let row = self
            .state_client(op)
            .await?
            .query_one(sql, params)
            .await
            .map_err(db(op))?;
        Ok(row.col(0)?)
    }
}

impl SharedState for PgStore {
    async fn suspend(&self, o: Organisationsnummer, scope: &Scope) -> Result<bool> {
        let n = self
            .exec(
                "suspend",
                "INSERT INTO suspensions (org, scope) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&o.as_str(), &scope.key()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn resume(&self, o: Organisationsnummer, scope: &Scope) -> Result<bool> {
        let n = self
            .exec(
                "resume",
                "DELETE FROM suspensions WHERE org = $1 AND scope = $2",
                &[&o.as_str(), &scope.key()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn is_suspended(&self, o: Organisationsnummer, product: ProductName) -> Result<bool> {
        self.exists(
            "suspension check",
            "SELECT EXISTS (SELECT 1 FROM suspensions WHERE org = $1 AND scope IN ($2, $3))",
            &[
                &o.as_str(),
                &Scope::All.key(),
                &Scope::Product(product).key(),
            ],
        )
        .await
    }

    async fn is_anordnare_suspended(&self, o: Organisationsnummer) -> Result<bool> {
        self.exists(
            "suspension check",
            "SELECT EXISTS (SELECT 1 FROM suspensions WHERE org = $1 AND scope = $2)",
            &[&o.as_str(), &Scope::EltAnordnare.key()],
        )
        .await
    }

    async fn suspensions(&self) -> Result<Vec<(Organisationsnummer, Scope)>> {
        let client = self.state_client("suspensions").await?;
        read_suspensions(&**client, &mut Vec::new()).await
    }

    async fn withdraw(&self, provider: &str, m: Organisationsnummer) -> Result<bool> {
        let n = self
            .exec(
                "withdraw",
                "INSERT INTO withdrawals (provider, municipality) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                &[&provider, &m.as_str()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn restore(&self, provider: &str, m: Organisationsnummer) -> Result<bool> {
        let n = self
            .exec(
                "restore",
                "DELETE FROM withdrawals WHERE provider = $1 AND municipality = $2",
                &[&provider, &m.as_str()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn is_withdrawn(&self, provider: &str, m: Organisationsnummer) -> Result<bool> {
        self.exists(
            "withdrawal check",
            "SELECT EXISTS (SELECT 1 FROM withdrawals WHERE provider = $1 AND municipality = $2)",
            &[&provider, &m.as_str()],
        )
        .await
    }

    async fn withdrawals(&self) -> Result<Vec<(String, Organisationsnummer)>> {
        let client = self.state_client("withdrawals").await?;
        read_withdrawals(&**client, &mut Vec::new()).await
    }

    async fn set_maintenance(&self, reason: Option<&str>) -> Result<()> {
        match reason {
            Some(reason) => {
                self.exec(
                    "maintenance on",
                    "INSERT INTO maintenance (singleton, reason, since) VALUES (true, $1, now()) \
                     ON CONFLICT (singleton) DO UPDATE SET reason = EXCLUDED.reason",
                    &[&reason],
                )
                .await?
            }
            None => {
                self.exec("maintenance off", "DELETE FROM maintenance", &[])
                    .await?
            }
        };
        Ok(())
    }

    async fn maintenance(&self) -> Result<Option<Maintenance>> {
        let row = self
            .state_client("maintenance")
            .await?
            .query_opt("SELECT reason, since FROM maintenance", &[])
            .await
            .map_err(db("maintenance"))?;
        row.map(|r| {
            Ok(Maintenance {
                reason: r.col(0)?,
                since: r.col(1)?,
            })
        })
        .transpose()
    }

    async fn plan_maintenance(&self, w: &MaintenanceWindow) -> Result<Uuid> {
        let id = Uuid::new_v4();
        self.exec(
            "planning maintenance",
            "INSERT INTO maintenance_windows (id, starts_at, ends_at, reason) \
             VALUES ($1, $2, $3, $4)",
            &[&id, &w.starts_at, &w.ends_at, &w.reason],
        )
        .await?;
        Ok(id)
    }

    async fn cancel_maintenance(&self, id: Uuid) -> Result<bool> {
        let n = self
            .exec(
                "cancelling maintenance",
                "DELETE FROM maintenance_windows WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(n == 1)
    }

    async fn maintenance_windows(&self) -> Result<Vec<PlannedMaintenance>> {
        let rows = self
            .state_client("maintenance windows")
            .await?
            .query(
                "SELECT id, starts_at, ends_at, reason FROM maintenance_windows \
                 ORDER BY starts_at, id",
                &[],
            )
            .await
            .map_err(db("maintenance windows"))?;
        rows.iter()
            .map(|r| {
                Ok(PlannedMaintenance {
                    id: r.col(0)?,
                    window: MaintenanceWindow {
                        starts_at: r.col(1)?,
                        ends_at: r.col(2)?,
                        reason: r.col(3)?,
                    },
                })
            })
            .collect()
    }

    async fn first_seen(&self, sender: &str, tx_id: &str, keep_for: Duration) -> Result<Seen> {
        let client = self.state_client("duplicate check").await?;
        // One statement decides: a row comes back only when this call recorded it
        // (new, or the earlier record had expired).
        let recorded = client
            .query_opt(
                "INSERT INTO seen_tx (sender, tx_id, first_seen, expires_at) \
                 VALUES ($1, $2, now(), now() + $3::float8 * interval '1 millisecond') \
                 ON CONFLICT (sender, tx_id) DO UPDATE \
                   SET first_seen = EXCLUDED.first_seen, expires_at = EXCLUDED.expires_at \
                   WHERE seen_tx.expires_at <= now() \
                 RETURNING first_seen",
                &[&sender, &tx_id, &(millis(keep_for) as f64)],
            )
            .await
            .map_err(db("duplicate check"))?;
        if recorded.is_some() {
            return Ok(Seen::First);
        }
        let first_seen: DateTime<Utc> = client
            .query_one(
                "SELECT first_seen FROM seen_tx WHERE sender = $1 AND tx_id = $2",
                &[&sender, &tx_id],
            )
            .await
            .map_err(db("duplicate check"))?
            .col(0)?;
        Ok(Seen::Duplicate { first_seen })
    }

    async fn take_elt_call(&self, vendor: &str, limit: RateLimit) -> Result<Result<(), Duration>> {
        let client = self.state_client("ELT rate").await?;
        let burst = f64::from(limit.burst.max(1));
        let rate = limit.per_second;
        // The one statement that decides, across every node: the bucket is
        // refilled by the time passed on the database's clock, and a token is
        // taken only when there is one. Concurrent callers queue on the row lock.
        let taken = client
            .query_opt(
                "INSERT INTO elt_rate AS r (vendor, tokens, updated_at) \
                 VALUES ($1, $2::float8 - 1, clock_timestamp()) \
                 ON CONFLICT (vendor) DO UPDATE SET \
                   tokens = least($2::float8, r.tokens + extract(epoch FROM clock_timestamp() - r.updated_at)::float8 * $3::float8) - 1, \
                   updated_at = clock_timestamp() \
                 WHERE least($2::float8, r.tokens + extract(epoch FROM clock_timestamp() - r.updated_at)::float8 * $3::float8) >= 1 \
                 RETURNING tokens",
                &[&vendor, &burst, &rate],
            )
            .await
            .map_err(db("ELT rate"))?;
        if taken.is_some() {
            return Ok(Ok(()));
        }
        // Refused: only the hint is read separately.
        let tokens: f64 = client
            .query_opt(
                "SELECT least($2::float8, tokens + extract(epoch FROM clock_timestamp() - updated_at)::float8 * $3::float8) \
                 FROM elt_rate WHERE vendor = $1",
                &[&vendor, &burst, &rate],
            )
            .await
            .map_err(db("ELT rate"))?
            .map(|r| r.col(0))
            .transpose()?
            .unwrap_or(0.0);
        let wait = ((1.0 - tokens) / rate).clamp(0.0, 86_400.0);
        Ok(Err(Duration::from_secs_f64(wait)))
    }

    async fn record_elt_attempt(
        &self,
        vendor: &str,
        keys: &[&str],
        limit: RetryLimit,
    ) -> Result<Result<u32, u32>> {
        let mut client = self.state_client("ELT retries").await?;
        let tx = client.transaction().await.map_err(db("ELT retries"))?;
        // Attempts of one vendor are counted and recorded one at a time.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('relay-store/elt/' || $1))",
            &[&vendor],
        )
        .await
        .map_err(db("ELT retries"))?;
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let window = millis(limit.window) as f64;
        let previous: i64 = tx
            .query_one(
                "SELECT coalesce(max(n), 0) FROM ( \
                   SELECT count(*) AS n FROM elt_attempts \
                   WHERE vendor = $1 AND key = ANY($2) \
                     AND at > clock_timestamp() - $3::float8 * interval '1 millisecond' \
                   GROUP BY key) per_key",
                &[&vendor, &keys, &window],
            )
            .await
            .map_err(db("ELT retries"))?
            .col(0)?;
        let previous = u32::try_from(previous).unwrap_or(u32::MAX);
        if previous > limit.max_retries {
            tx.rollback().await.map_err(db("ELT retries"))?;
            return Ok(Err(previous - 1));
        }
        tx.execute(
            "INSERT INTO elt_attempts (vendor, key, at) \
             SELECT $1, k, clock_timestamp() FROM unnest($2::text[]) AS k",
            &[&vendor, &keys],
        )
        .await
        .map_err(db("ELT retries"))?;
        tx.commit().await.map_err(db("ELT retries"))?;
        Ok(Ok(previous))
    }

    async fn sweep_state(&self, now: DateTime<Utc>, attempt_window: Duration) -> Result<u64> {
        let seen = self
            .exec(
                "sweeping duplicates",
                "DELETE FROM seen_tx WHERE expires_at <= $1",
                &[&now],
            )
            .await?;
        let attempts = self
            .exec(
                "sweeping ELT attempts",
                "DELETE FROM elt_attempts WHERE at <= $1::timestamptz - $2::float8 * interval '1 millisecond'",
                &[&now, &(millis(attempt_window) as f64)],
            )
            .await?;
        Ok(seen + attempts)
    }

    async fn decisions(&self) -> Result<Decisions> {
        let mut client = self.state_client("decisions").await?;
        let client: &mut tokio_postgres::Client = &mut client;
        // One snapshot of all three tables.
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(db("decisions"))?;
        let mut unreadable = Vec::new();
        let suspensions = read_suspensions(&tx, &mut unreadable).await?;
        let withdrawals = read_withdrawals(&tx, &mut unreadable).await?;
        let rows = tx
            .query(
                "SELECT vendor, anordnare, granted FROM elt_mandates ORDER BY vendor, anordnare",
                &[],
            )
            .await
            .map_err(db("mandates"))?;
        let mandates = rows
            .iter()
            .map(|r| {
                Ok(mandate_row(
                    r.col::<&str>(0)?,
                    r.col::<&str>(1)?,
                    r.col::<bool>(2)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let mandates = sort_out(mandates, &mut unreadable);
        tx.commit().await.map_err(db("decisions"))?;
        Ok(Decisions {
            suspensions,
            withdrawals,
            mandates,
            unreadable,
        })
    }

    async fn set_mandate(&self, m: Mandate) -> Result<bool> {
        let n = self
            .exec(
                "mandate",
                "INSERT INTO elt_mandates (vendor, anordnare, granted) VALUES ($1, $2, $3) \
                 ON CONFLICT (vendor, anordnare) DO UPDATE \
                   SET granted = EXCLUDED.granted, since = now() \
                   WHERE elt_mandates.granted <> EXCLUDED.granted",
                &[&m.vendor.as_str(), &m.anordnare.as_str(), &m.granted],
            )
            .await?;
        Ok(n == 1)
    }

    async fn import_mandates(&self, mandates: &[Mandate]) -> Result<u64> {
        let vendors: Vec<&str> = mandates.iter().map(|m| m.vendor.as_str()).collect();
        let anordnare: Vec<&str> = mandates.iter().map(|m| m.anordnare.as_str()).collect();
        let granted: Vec<bool> = mandates.iter().map(|m| m.granted).collect();
        self.exec(
            "importing mandates",
            "INSERT INTO elt_mandates (vendor, anordnare, granted) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[]) \
             ON CONFLICT (vendor, anordnare) DO NOTHING",
            &[&vendors, &anordnare, &granted],
        )
        .await
    }

    async fn accepted_elt_report(&self, report_id: &str) -> Result<Option<AcceptedReport>> {
        let row = self
            .state_client("accepted ELT report")
            .await?
            .query_opt(
                "SELECT sha256, receipt FROM elt_reports WHERE report_id = $1",
                &[&report_id],
            )
            .await
            .map_err(db("accepted ELT report"))?;
        row.map(|r| {
            Ok(AcceptedReport {
                sha256: r.col(0)?,
                receipt: r.col(1)?,
            })
        })
        .transpose()
    }

    async fn keep_elt_report(&self, report_id: &str, a: &AcceptedReport) -> Result<bool> {
        let n = self
            .exec(
                "keeping an accepted ELT report",
                "INSERT INTO elt_reports (report_id, sha256, receipt, accepted_at) \
                 VALUES ($1, $2, $3, now()) ON CONFLICT (report_id) DO NOTHING",
                &[&report_id, &a.sha256, &a.receipt],
            )
            .await?;
        Ok(n == 1)
    }

    async fn forget_elt_reports(&self, keep: usize) -> Result<u64> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.exec(
            "forgetting accepted ELT reports",
            "DELETE FROM elt_reports WHERE report_id IN ( \
               SELECT report_id FROM elt_reports ORDER BY accepted_at DESC, report_id OFFSET $1)",
            &[&keep],
        )
        .await
    }
}

async fn read_suspensions(
    client: &impl tokio_postgres::GenericClient,
    unreadable: &mut Vec<Unreadable>,
) -> Result<Vec<(Organisationsnummer, Scope)>> {
    let rows = client
        .query("SELECT org, scope FROM suspensions", &[])
        .await
        .map_err(db("suspensions"))?;
    let rows = rows
        .iter()
        .map(|r| Ok(suspension_row(r.col::<&str>(0)?, r.col::<&str>(1)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut out = sort_out(rows, unreadable);
    out.sort();
    Ok(out)
}

async fn read_withdrawals(
    client: &impl tokio_postgres::GenericClient,
    unreadable: &mut Vec<Unreadable>,
) -> Result<Vec<(String, Organisationsnummer)>> {
    let rows = client
        .query(
            "SELECT provider, municipality FROM withdrawals ORDER BY provider, municipality",
            &[],
        )
        .await
        .map_err(db("withdrawals"))?;
    let rows = rows
        .iter()
        .map(|r| Ok(withdrawal_row(r.col::<&str>(0)?, r.col::<&str>(1)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(sort_out(rows, unreadable))
}
