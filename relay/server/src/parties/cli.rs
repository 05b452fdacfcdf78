//! `shs-relay parties ...`: the register from a shell, through a relay's admin
//! API (so every change is checked, stored, audited and followed by every node
//! exactly as a `curl` call would be). The admin URL comes from `--admin`, else
//! `SHS_RELAY_ADMIN`, else the `[admin] listen` of `--config`. A plain-HTTP
//! admin listener only (loopback); with operator certificates use `curl`.

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// What to do.
pub enum Action {
    List {
        state: Option<String>,
        product: Option<String>,
    },
    Show {
        org: String,
    },
    Promote {
        org: String,
        product: String,
        override_reason: Option<String>,
    },
    State {
        org: String,
        product: String,
        state: String,
        reason: Option<String>,
    },
    Import {
        file: std::path::PathBuf,
    },
}

/// The admin URL from the flag, or the configuration's `[admin] listen`.
pub fn admin_url(flag: Option<String>, config: Option<&std::path::Path>) -> anyhow::Result<String> {
    if let Some(url) = flag {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let Some(path) = config else {
        bail!("give --admin URL (or SHS_RELAY_ADMIN), or --config with an [admin] section");
    };
    let config = crate::config::Config::load(path)?;
    let admin = config
        .admin
        .with_context(|| format!("{}: no [admin] section", path.display()))?;
    Ok(format!("http://{}", admin.listen))
}

async fn answer(r: reqwest::Response) -> anyhow::Result<Value> {
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("{status}: {}", text.trim());
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Runs `action` against the admin API at `url`; prints the answer as JSON.
pub async fn run(url: &str, action: Action) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let post = |path: String| {
        client
            .post(format!("{url}{path}"))
            .header(crate::admin::ADMIN_REQUEST_HEADER, "1")
            .header("X-Operator", operator())
    };
    let value = match action {
        Action::List { state, product } => {
            let mut q = Vec::new();
            if let Some(s) = state {
                q.push(("state", s));
            }
            if let Some(p) = product {
                q.push(("product", p));
            }
            answer(
                client
                    .get(format!("{url}/admin/parties"))
                    .query(&q)
                    .send()
                    .await?,
            )
            .await?
        }
        Action::Show { org } => {
            answer(
                client
                    .get(format!("{url}/admin/parties/{org}"))
                    .send()
                    .await?,
            )
            .await?
        }
        Action::Promote {
            org,
            product,
            override_reason,
        } => {
            let mut body = json!({"product": product});
            if let Some(r) = override_reason {
                body["override"] = Value::String(r);
            }
            answer(
                post(format!("/admin/parties/{org}/promote"))
                    .json(&body)
                    .send()
                    .await?,
            )
            .await?
        }
        Action::State {
            org,
            product,
            state,
            reason,
        } => {
            let body = json!({"product": product, "state": state, "reason": reason});
            answer(
                post(format!("/admin/parties/{org}/state"))
                    .json(&body)
                    .send()
                    .await?,
            )
            .await?
        }
        Action::Import { file } => {
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("{}", file.display()))?;
            answer(
                post("/admin/parties/import".into())
                    .body(text)
                    .send()
                    .await?,
            )
            .await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

/// Who runs the command, for the audit trail: `$USER` on this machine.
fn operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && u.len() <= 100)
        .map_or_else(
            || "shs-relay parties".to_owned(),
            |u| format!("{u} (shs-relay parties)"),
        )
}
