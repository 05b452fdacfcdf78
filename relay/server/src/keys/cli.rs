//! `shs-relay keys ...` and `shs-relay store verify`.
//!
//! `keys init` creates a node's first key file (the relay never creates it);
//! `keys status | add | activate | rewrap | retire` go through a running
//! relay's admin API (`/admin/keys...`), since with redb the running relay
//! holds the store's lock and with PostgreSQL every check must see the same
//! store the nodes use. The admin URL comes from `--admin`, else
//! `SHS_RELAY_ADMIN`, else the `[admin] listen` of `--config`.
//!
//! `store verify` opens the store itself: with redb, stop the relay first
//! (the running relay holds the file lock); with PostgreSQL it runs beside the
//! nodes.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// What to do through the admin API.
pub enum Action {
    Status,
    Add,
    Activate(u32),
    Rewrap,
    Retire(u32),
}

/// `keys init`: creates the key file of `[mailbox] key_file` with one fresh
/// key (id 1) unless it exists.
pub fn init(config: &Path) -> anyhow::Result<()> {
    let config = crate::config::Config::load(config)?;
    let m = config
        .mailbox
        .context("the configuration has no [mailbox] section: no key file")?;
    if m.key_file.exists() {
        println!(
            "{}: exists; nothing changed (add keys with `shs-relay keys add`)",
            m.key_file.display()
        );
        return Ok(());
    }
    relay_mailbox::KeyFile::create(&m.key_file)
        .with_context(|| format!("mailbox.key_file: {}", m.key_file.display()))?;
    println!(
        "{}: created with key 1; copy it to every node of this store before they start",
        m.key_file.display()
    );
    Ok(())
}

/// Runs `action` against the admin API at `url`; prints the answer.
pub async fn run(url: &str, action: Action) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{url}{path}"))
            .header(crate::admin::ADMIN_REQUEST_HEADER, "1")
            .json(&body)
    };
    let request = match action {
        Action::Status => client.get(format!("{url}/admin/keys")),
        Action::Add => post("/admin/keys/add", json!({})),
        Action::Activate(id) => post("/admin/keys/activate", json!({"id": id})),
        Action::Rewrap => post("/admin/keys/rewrap", json!({})),
        Action::Retire(id) => post("/admin/keys/retire", json!({"id": id})),
    };
    let r = request.send().await.context("the relay's admin listener")?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("{status}: {}", text.trim());
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => println!("{}", serde_json::to_string_pretty(&v)?),
        Err(_) => print!("{text}"),
    }
    Ok(())
}

/// `store verify`: prints the report as JSON; an error when a key is
/// missing, a message is damaged or plaintext was found.
pub async fn verify(config: &Path) -> anyhow::Result<()> {
    let config = crate::config::Config::load(config)?;
    let m = config
        .mailbox
        .as_ref()
        .context("the configuration has no [mailbox] section: no store to verify")?;
    let ring = super::open(&m.key_file)?;
    if let Some(newest) = ring.file().ids().last() {
        // Nothing is written; the id only satisfies the ring.
        let _ = ring.set_active(*newest);
    }
    let options = relay_store::redb::StoreOptions {
        retention: m.retention()?,
        cache_size: config.store.redb_cache_bytes(),
        ..relay_store::redb::StoreOptions::default()
    };
    let store = relay_store::Store::open(&config.store, &m.store, ring.clone(), options)
        .await
        .with_context(|| match config.store.kind {
            relay_store::StoreKind::Redb => format!(
                "mailbox.store: {} (stop the relay first: it holds the file's lock)",
                m.store.display()
            ),
            relay_store::StoreKind::Postgres => "store: the PostgreSQL database".to_owned(),
        })?;
    let report = relay_store::verify::verify(&store, &m.store)
        .await
        .map_err(|e| anyhow::anyhow!("store verify: {e}"))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.clean() {
        bail!(
            "store verify: {} messages with a missing key, {} damaged, {} with plaintext found",
            report.key_missing.len(),
            report.damaged.len(),
            report.plaintext_found.len()
        );
    }
    Ok(())
}
