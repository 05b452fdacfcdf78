//! The mailbox key ring on a node: what it must hold to start, following the
//! store's active key, reporting what it holds, and `shs-relay keys ...` /
//! `shs-relay store verify`. The ring's rules (activate only once every live
//! node holds the key, retire only when nothing uses it) live once in
//! `relay_store::keys`; this module is a node's side of them.
//!
//! - start-up ([`open`]): the key file is opened, never created (a missing
//!   one is empty); after the store opens, [`relay_store::keys::check_node`]
//!   refuses the start naming any key id in use that the file lacks.
//! - [`follow`]: every third of the lease, the store's active id is adopted
//!   (the key file is read again if it lacks it) and what this node holds is
//!   reported. A reload (SIGHUP, `POST /admin/reload`) reads the key file again
//!   and reports at once ([`reload`]).
//! - [`admin`]: `/admin/keys...` on the admin listener; [`cli`]: the commands.

pub mod admin;
pub mod cli;

use std::sync::Arc;

use anyhow::Context;
use relay_mailbox::{KeyFile, KeyRing};

use crate::Relay;

/// Opens the key file at `path`; a missing file is an empty one (the start is
/// then refused by the store check unless nothing needs a key, and even then:
/// a store needs one active key).
pub fn open(path: &std::path::Path) -> anyhow::Result<Arc<KeyRing>> {
    let file = if path.exists() {
        KeyFile::open(path).with_context(|| format!("mailbox.key_file: {}", path.display()))?
    } else {
        KeyFile::absent(path)
    };
    // Nothing wraps before `start` has set the store's active id.
    Ok(Arc::new(KeyRing::new(file, 0)))
}

/// After the store has opened: checks this node's keys against the store,
/// adopts its active id and reports what this node holds.
pub async fn start(store: &relay_store::Store, ring: &KeyRing) -> anyhow::Result<()> {
    let active = relay_store::keys::check_node(store, ring.file())
        .await
        .context("mailbox key ring")?;
    ring.set_active(active)
        .with_context(|| format!("mailbox key ring: key {active}"))?;
    report(store, ring).await;
    tracing::info!(
        active,
        held = ?ring.file().ids(),
        "mailbox key ring checked"
    );
    Ok(())
}

async fn report(store: &relay_store::Store, ring: &KeyRing) {
    if let Err(e) = store
        .report_keys(&store.node_name(), &ring.file().ids(), ring.active())
        .await
    {
        tracing::warn!(error = %e, "mailbox key ring: could not report this node's keys");
    }
}

/// Adopts the store's active key when it changed.
async fn adopt(store: &relay_store::Store, ring: &KeyRing) {
    let records = match store.key_records().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "mailbox key ring: could not read the store");
            return;
        }
    };
    let Some(active) = records
        .iter()
        .find(|k| k.state == relay_store::keys::KeyState::Active)
        .map(|k| k.id)
    else {
        return;
    };
    if active == ring.active() {
        return;
    }
    if !ring.file().holds(active)
        && let Err(e) = ring.file().reload()
    {
        tracing::warn!(error = %e, "mailbox key ring: could not read the key file again");
    }
    match ring.set_active(active) {
        Ok(()) => tracing::info!(
            kek_id = active,
            "mailbox key ring: new messages use this key"
        ),
        Err(_) => tracing::error!(
            kek_id = active,
            "mailbox key ring: the store's active key is not in this node's key file; \
             new messages still use the old key: copy the key file here and reload"
        ),
    }
}

/// Follows the store's active key and reports this node's keys, every third
/// of the liveness window.
pub async fn follow(relay: Arc<Relay>) {
    let (Some(store), Some(ring)) = (relay.mailbox.clone(), relay.key_ring.clone()) else {
        return;
    };
    let every = (store.key_liveness() / 3).max(std::time::Duration::from_millis(200));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        adopt(&store, &ring).await;
        report(&store, &ring).await;
    }
}

/// On a reload: reads the key file again and reports at once.
pub fn reload(relay: &Relay) -> anyhow::Result<()> {
    let (Some(store), Some(ring)) = (relay.mailbox.clone(), relay.key_ring.clone()) else {
        return Ok(());
    };
    ring.file()
        .reload()
        .context("mailbox.key_file: the key file")?;
    tokio::spawn(async move {
        adopt(&store, &ring).await;
        report(&store, &ring).await;
    });
    Ok(())
}
