//! The simulator's admin endpoint (`shs-sim`, `--sim-admin URL`): the kit
//! scripts the base service behind the adapter (an error, a hang, an unknown
//! person, an outage) and reads what reached it (calls in flight, trace ids).
//! The scenario found at the start is put back at the end.

use std::time::Duration;

/// Persons the kit scripts behaviour for (per agency).
#[derive(Debug, Clone)]
pub struct Scripted {
    /// The base service answers with the agency's error [`ERROR_CODE`].
    pub error: String,
    /// The base service never answers (deadline case).
    pub hang: String,
    /// The base service never answers (limits case).
    pub limit: String,
    /// The base service does not know this person.
    pub unknown: String,
    /// The base service answers with [`LARGE_RECORDS`] records.
    pub large: String,
}

/// How many records the kit asks the base service to answer `large` with.
pub const LARGE_RECORDS: u32 = 2000;

/// The error code the kit scripts; the adapter must hand it on as it is.
pub const ERROR_CODE: &str = "KIT-4711";

pub struct SimAdmin {
    base: String,
    http: reqwest::Client,
    /// The agency id in the simulator (the slot id).
    pub agency: String,
    original: String,
    scripted: Scripted,
}

impl SimAdmin {
    /// Reads the current scenario (to restore it at the end).
    pub async fn connect(base: &str, agency: &str, scripted: Scripted) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let base = base.trim_end_matches('/').to_owned();
        let response = http.get(format!("{base}/admin/scenario")).send().await?;
        if !response.status().is_success() {
            anyhow::bail!("GET /admin/scenario answered {}", response.status());
        }
        let original = response.text().await?;
        Ok(Self {
            base,
            http,
            agency: agency.to_owned(),
            original,
            scripted,
        })
    }

    /// The original scenario plus the kit's overrides; with `down`, the
    /// agency's base service is in an outage.
    fn scenario(&self, down: bool) -> anyhow::Result<String> {
        let mut table: toml::Table = toml::from_str(&self.original)?;
        let mut overrides = match table.remove("override") {
            Some(toml::Value::Array(a)) => a,
            _ => Vec::new(),
        };
        let s = &self.scripted;
        for (person, key, value) in [
            (&s.error, "error", toml::Value::String(ERROR_CODE.into())),
            (&s.hang, "hang", toml::Value::Boolean(true)),
            (&s.limit, "hang", toml::Value::Boolean(true)),
            (&s.unknown, "unknown", toml::Value::Boolean(true)),
            (
                &s.large,
                "records",
                toml::Value::Integer(i64::from(LARGE_RECORDS)),
            ),
        ] {
            let mut o = toml::Table::new();
            o.insert("person".into(), toml::Value::String(person.clone()));
            o.insert("agency".into(), toml::Value::String(self.agency.clone()));
            o.insert(key.into(), value);
            overrides.push(toml::Value::Table(o));
        }
        table.insert("override".into(), toml::Value::Array(overrides));
        if down {
            let agencies = table
                .entry("agency")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(agencies) = agencies {
                let agency = agencies
                    .entry(self.agency.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(agency) = agency {
                    agency.insert("down".into(), toml::Value::Boolean(true));
                }
            }
        }
        Ok(toml::to_string(&table)?)
    }

    async fn put(&self, text: String) -> anyhow::Result<()> {
        let response = self
            .http
            .put(format!("{}/admin/scenario", self.base))
            .body(text)
            .send()
            .await?;
        if !response.status().is_success() {
            anyhow::bail!(
                "PUT /admin/scenario answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default().trim()
            );
        }
        Ok(())
    }

    /// The persons the kit scripts.
    pub fn scripted(&self) -> &Scripted {
        &self.scripted
    }

    /// Puts the kit's overrides in place.
    pub async fn script(&self) -> anyhow::Result<()> {
        self.put(self.scenario(false)?).await
    }

    /// Takes the agency's base service down (or back up) for the health case.
    pub async fn set_down(&self, down: bool) -> anyhow::Result<()> {
        self.put(self.scenario(down)?).await
    }

    /// Puts back the scenario found at the start.
    pub async fn restore(&self) -> anyhow::Result<()> {
        self.put(self.original.clone()).await
    }

    /// The agency's counters (`GET /admin/stats`).
    pub async fn stats(&self) -> anyhow::Result<serde_json::Value> {
        let all: serde_json::Value = self
            .http
            .get(format!("{}/admin/stats", self.base))
            .send()
            .await?
            .json()
            .await?;
        Ok(all[&self.agency].clone())
    }

    /// Calls held by a hang at the agency now.
    pub async fn hanging(&self) -> anyhow::Result<u64> {
        self.stats()
            .await?
            .get("hanging")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| anyhow::anyhow!("the simulator reports no `hanging` counter"))
    }

    /// Calls the agency saw abandoned by their client since it started.
    pub async fn abandoned(&self) -> anyhow::Result<u64> {
        self.stats()
            .await?
            .get("abandoned")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| anyhow::anyhow!("the simulator reports no `abandoned` counter"))
    }

    /// Waits (polling, up to `within`) until at least `n` calls hang at the
    /// agency at once; the most seen.
    pub async fn wait_hanging(&self, n: u64, within: Duration) -> anyhow::Result<u64> {
        let until = tokio::time::Instant::now() + within;
        let mut most = 0;
        loop {
            most = most.max(self.hanging().await?);
            if most >= n || tokio::time::Instant::now() >= until {
                return Ok(most);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (polling, up to `within`) until no call hangs at the agency.
    /// `Ok(false)` when some still do.
    pub async fn wait_no_hanging(&self, within: Duration) -> anyhow::Result<bool> {
        let until = tokio::time::Instant::now() + within;
        loop {
            if self.hanging().await? == 0 {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= until {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether a call with `trace_id` reached the agency.
    pub async fn saw_trace(&self, trace_id: &str) -> anyhow::Result<bool> {
        let stats = self.stats().await?;
        Ok(stats["trace_ids"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(trace_id))))
    }
}
