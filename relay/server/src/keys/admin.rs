//! `/admin/keys...` on the admin listener (same admission and operator
//! identity as every admin endpoint; each change is audited):
//!
//! - `GET /admin/keys`: the ring (keys and states, the active id, messages
//!   per key id, live nodes with the ids they hold and wrap with) and this
//!   node's key file.
//! - `POST /admin/keys/add`: a fresh key in this node's key file, registered.
//! - `POST /admin/keys/activate` `{"id": N}`: refused (409) unless every live
//!   node holds N.
//! - `POST /admin/keys/rewrap`: every message not under the active key is
//!   rewrapped, in batches, while traffic runs.
//! - `POST /admin/keys/retire` `{"id": N}`: refused (409) while N is active,
//!   wraps on a node, or any message uses it; then N leaves this node's file.
//!
//! A refusal of the operator's request is 409 with what to do first; a store
//! that cannot be reached is 503 (the relay's side).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use relay_mailbox::KeyRing;
use relay_store::keys::KeyRingError;
use serde_json::{Value, json};

use crate::Relay;
use crate::admin::Operator;
use crate::outcomes::admin_action as audit_admin;

pub fn routes() -> Router<Arc<Relay>> {
    Router::new()
        .route("/admin/keys", get(status))
        .route("/admin/keys/add", post(add))
        .route("/admin/keys/activate", post(activate))
        .route("/admin/keys/rewrap", post(rewrap))
        .route("/admin/keys/retire", post(retire))
}

struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, format!("{}\n", self.1)).into_response()
    }
}

impl From<KeyRingError> for Refused {
    fn from(e: KeyRingError) -> Self {
        match e {
            KeyRingError::Refused(t) => Self(StatusCode::CONFLICT, format!("refused: {t}")),
            KeyRingError::Store(t) => Self(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the relay could not use its store: {t}"),
            ),
        }
    }
}

fn ring(relay: &Relay) -> Result<(Arc<relay_store::Store>, Arc<KeyRing>), Refused> {
    match (relay.mailbox.clone(), relay.key_ring.clone()) {
        (Some(s), Some(r)) => Ok((s, r)),
        _ => Err(Refused(
            StatusCode::NOT_FOUND,
            "this relay has no [mailbox]: no key ring".to_owned(),
        )),
    }
}

fn id_of(body: &[u8]) -> Result<relay_mailbox::KekId, Refused> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        Refused(
            StatusCode::BAD_REQUEST,
            "the body must be JSON {\"id\": <key id>}".to_owned(),
        )
    })?;
    v.get("id")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            Refused(
                StatusCode::BAD_REQUEST,
                "\"id\" must be a key id (a whole number)".to_owned(),
            )
        })
}

async fn report(store: &relay_store::Store, ring: &KeyRing) -> Result<(), Refused> {
    store
        .report_keys(&store.node_name(), &ring.file().ids(), ring.active())
        .await?;
    Ok(())
}

/// The ring as the store records it, plus this node.
async fn status_json(relay: &Relay) -> Result<Value, Refused> {
    let (store, ring) = ring(relay)?;
    let status = store.ring_status().await?;
    Ok(json!({
        "active": status.active,
        "keys": status.keys,
        "messages_per_key": status.messages,
        "live_nodes": status.live_nodes,
        "this_node": {
            "node": store.node_name(),
            "key_file": ring.file().path(),
            "held": ring.file().ids(),
            "wraps_with": ring.active(),
        },
        "messages_skipped_for_missing_key": relay_mailbox::ring::missing_key_skips(),
    }))
}

async fn status(State(relay): State<Arc<Relay>>) -> Result<axum::Json<Value>, Refused> {
    Ok(axum::Json(status_json(&relay).await?))
}

async fn add(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
) -> Result<Response, Refused> {
    let (store, ring) = ring(&relay)?;
    let id = relay_store::keys::add(&store, ring.file()).await?;
    report(&store, &ring).await?;
    audit_admin(&relay, &who, "keys_add", &format!("key {id}")).await;
    Ok(axum::Json(json!({
        "added": id,
        "key_file": ring.file().path(),
        "next": "copy this key file to every node, reload them, then activate",
    }))
    .into_response())
}

async fn activate(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    body: axum::body::Bytes,
) -> Result<Response, Refused> {
    let id = id_of(&body)?;
    let (store, ring) = ring(&relay)?;
    // This node's report first, so a file copied here just now counts.
    report(&store, &ring).await?;
    let nodes = match relay_store::keys::activate(&store, id).await {
        Ok(n) => n,
        Err(e) => {
            audit_admin(&relay, &who, "keys_activate_refused", &format!("key {id}")).await;
            return Err(e.into());
        }
    };
    if ring.set_active(id).is_ok() {
        report(&store, &ring).await?;
    }
    audit_admin(&relay, &who, "keys_activate", &format!("key {id}")).await;
    Ok(axum::Json(json!({"active": id, "nodes_holding_it": nodes})).into_response())
}

async fn rewrap(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
) -> Result<Response, Refused> {
    let (store, ring) = ring(&relay)?;
    let active = store
        .ring_status()
        .await?
        .active
        .ok_or_else(|| Refused(StatusCode::CONFLICT, "refused: no active key".to_owned()))?;
    ring.set_active(active).map_err(|_| {
        Refused(
            StatusCode::CONFLICT,
            format!("refused: this node's key file lacks the active key {active}"),
        )
    })?;
    let n = store
        .rewrap_all()
        .await
        .map_err(|e| Refused::from(KeyRingError::from(e)))?;
    audit_admin(
        &relay,
        &who,
        "keys_rewrap",
        &format!("{n} messages to key {active}"),
    )
    .await;
    Ok(axum::Json(json!({
        "rewrapped": n,
        "active": active,
        "messages_per_key": store.kek_usage().await.map_err(|e| Refused::from(KeyRingError::from(e)))?,
    }))
    .into_response())
}

async fn retire(
    State(relay): State<Arc<Relay>>,
    Operator(who): Operator,
    body: axum::body::Bytes,
) -> Result<Response, Refused> {
    let id = id_of(&body)?;
    let (store, ring) = ring(&relay)?;
    if let Err(e) = relay_store::keys::retire(&store, id).await {
        audit_admin(&relay, &who, "keys_retire_refused", &format!("key {id}")).await;
        return Err(e.into());
    }
    let dropped = ring.file().holds(id) && ring.file().retire(id).is_ok();
    report(&store, &ring).await?;
    audit_admin(&relay, &who, "keys_retire", &format!("key {id}")).await;
    Ok(axum::Json(json!({
        "retired": id,
        "removed_from_key_file": dropped,
        "next": "copy this key file to every node (or remove the key's line) and reload them",
    }))
    .into_response())
}
