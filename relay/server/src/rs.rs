//! `POST /shs/rs`: the SHS receive service, the SHS dialect of the request path.
//!
//! The path is straight: admitted (by [`crate::admission`]: caller identified, an
//! in-flight permit from its share) → the SHS decode step ([`crate::shs`]): the
//! label, read as the first MIME part by the real MIME reader within
//! `limits.label_timeout_ms`, checked once against the caller and the node → an
//! asynchronous message to another organisation streams into the mailbox
//! ([`crate::asynch::accept_stream`]); everything else is read whole
//! ([`crate::body`]: size limit, read timeout), parsed, and its label must
//! equal the one read first → an asynchronous message to the node or another
//! organisation is accepted by the mailbox ([`crate::asynch::accept`]), a
//! synchronous one answered by its product ([`crate::products::answer_shs`]:
//! decode, the policy gate, answer, encode) → the reply message. Refusals are
//! [`Failure`]s, counted, logged and audited by [`crate::admission::refuse`]
//! and rendered here as SHS errors (`X-shs-errorcode`, [`Shs`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use relay_shs::{ErrorCode, ShsMessage, TransferType};
use zeroize::Zeroizing;

use crate::Relay;
use crate::admission::{self, Admitted, Way};
use crate::failure::{Code, Failure};
use crate::identity::Caller;
use crate::shs::{check_label, multipart_type, open_label, same_label, shs_limits};

/// SHS `POST /shs/rs` as a way in: refusals are SHS errors (`X-shs-errorcode`).
pub struct Shs;

impl Way for Shs {
    const ROUTE: &'static str = "shs_rs";
    fn render(failure: &Failure) -> Response {
        shs_response(failure)
    }
}

/// The SHS answer, as Axel writes it: `X-shs-errorcode` and a plain-text body
/// naming the exception, ids, code and info (never content).
fn shs_response(failure: &Failure) -> Response {
    let code = failure.shs_code();
    let ids = failure.ids.clone().unwrap_or_default();
    let body = if failure.code == Code::Overloaded {
        format!("{}\n", failure.info)
    } else {
        format!(
            "{code}Exception [contentId={}, corrId={}, errorCode={code}, errorInfo={}]\n",
            ids.content_id,
            ids.corr_id,
            failure.text()
        )
    };
    let mut response = (failure.status(), body).into_response();
    let headers = response.headers_mut();
    if failure.code != Code::Overloaded {
        headers.insert("X-shs-errorcode", HeaderValue::from_static(code.as_str()));
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=ISO-8859-1"),
    );
    failure.set_retry_after(&mut response);
    response
}

/// `POST /shs/rs`.
pub async fn receive(
    State(relay): State<Arc<Relay>>,
    admitted: Admitted<Shs>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = &admitted.caller;
    match receive_message(&relay, caller, &headers, body).await {
        Ok((response, outcome)) => {
            relay
                .metrics
                .request(Shs::ROUTE, outcome, admitted.started.elapsed());
            response
        }
        Err(failure) => {
            admission::refuse::<Shs>(&relay, Some(caller), &failure, admitted.started).await
        }
    }
}

async fn receive_message(
    relay: &Arc<Relay>,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Response, &'static str), Failure> {
    let content_type = multipart_type(headers);
    let opened = open_label(relay, content_type.as_deref(), body).await?;
    let label = opened.label.clone();
    let about = |f: Failure| f.about(&label);
    let to = check_label(relay, caller, &label).map_err(about)?;
    let asynch = label.transfer_type == TransferType::Asynch;
    if asynch && relay.mailbox.is_none() {
        return Err(about(Failure::caller(
            Code::Shs(ErrorCode::MissingDeliveryExecution),
            "asynchronous transfer is not configured on this node",
        )));
    }
    if asynch && !to.is_node {
        // Streamed into the mailbox: never held in memory.
        let reader = opened.into_reader();
        let response = crate::asynch::accept_stream(
            relay.clone(),
            caller,
            label.clone(),
            to,
            content_type,
            reader,
        )
        .await
        .map_err(about)?;
        return Ok((response, "accepted"));
    }
    let bytes = crate::body::read_body(relay, headers, opened.into_reader())
        .await
        .map_err(|e| about(e.into()))?;
    let limits = shs_limits(relay, relay.live().config.limits.max_request_bytes);
    let message = ShsMessage::parse(&bytes, content_type.as_deref(), limits)
        .await
        .map_err(|e| about(e.into()))?;
    same_label(&label, &message.label).map_err(about)?;
    if asynch {
        let response = crate::asynch::accept(relay.clone(), caller, message, bytes, to)
            .await
            .map_err(about)?;
        return Ok((response, "accepted"));
    }
    drop(bytes);
    let (reply, product) = crate::products::answer_shs(relay, caller, message)
        .await
        .map_err(about)?;
    tracing::info!(
        route = "shs/rs",
        tx = %reply.label.tx_id,
        caller = %caller.org,
        product = product.as_str(),
        outcome = "answered",
        "request answered"
    );
    Ok((reply_response(reply).await, "answered"))
}

/// HTTP 200 with the reply message (`message/rfc822`). The bytes are wiped when
/// the response body is dropped.
pub async fn reply_response(reply: ShsMessage) -> Response {
    let bytes = Zeroizing::new(reply.to_bytes().await);
    drop(reply);
    let mut response = Response::new(Body::from(Bytes::from_owner(bytes)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::By;

    #[test]
    fn an_shs_error_names_its_code_and_an_overload_when_to_retry() {
        let r = shs_response(&Failure::relay("the mailbox could not store the message"));
        assert_eq!(r.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.headers()["X-shs-errorcode"], "OtherError");
        let r = shs_response(&Failure::overloaded(By::Relay, 2, "busy"));
        assert_eq!(r.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        assert!(r.headers().get("X-shs-errorcode").is_none());
    }
}
