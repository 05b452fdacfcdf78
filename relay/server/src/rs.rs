//! `POST /shs/rs`: the SHS receive service (placeholder until relay-shs lands).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::Relay;

pub async fn receive(State(_relay): State<Arc<Relay>>) -> Response {
    (http::StatusCode::NOT_IMPLEMENTED, "not yet").into_response()
}
