//! The delivery service `/shs/ds/{outbox}...`: list, fetch (streamed), ack
//! (with a `confirm` to the original sender). Every call is admitted like any
//! other way in and passes the policy gate for the delivery service; an outbox
//! is readable only by the organisation whose certificate owns it (the path's
//! address is normalised to the 10-digit organisation number first).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use relay_ident::Organisationsnummer;
use relay_mailbox::{MailboxStore, Outbox};
use relay_shs::{AdmKind, ErrorCode, Label, TransferType};
use relay_store::Store;

use crate::Relay;
use crate::admission::{self, Admitted, Way};
use crate::asynch::SHS_DATETIME;
use crate::asynch::route::{deleted, deliver};
use crate::failure::{Code, Failure, PolicyKind, PolicyRefusal};
use crate::identity::Caller;
use crate::policy::{self, Ask, Use};

/// The store and the caller's outbox: the gate for the delivery service, then
/// ownership (403 when the certificate does not own the outbox), 404 when the
/// node has no delivery service.
fn open_outbox(
    relay: &Relay,
    caller: &Caller,
    outbox: &str,
) -> Result<(Arc<Store>, Outbox), Failure> {
    let store = relay.mailbox.clone().ok_or_else(|| {
        Failure::caller(
            Code::NotFound,
            "the delivery service is not configured on this node",
        )
    })?;
    policy::gate(
        &relay.metrics,
        &relay.live().config,
        &relay.operator,
        &Ask::to(caller, Use::Delivery),
    )?;
    // `urn:X-shs:` forms name the same outbox.
    let plain = relay_shs::ShsAddress::parse(outbox);
    let outbox = plain.as_ref().map_or(outbox, |a| a.as_str());
    let (org, unit) = match outbox.split_once('.') {
        Some((org, unit)) => (org, Some(unit)),
        None => (outbox, None),
    };
    let org = Organisationsnummer::parse(org).map_err(|_| {
        Failure::caller(
            Code::Shs(ErrorCode::UnknownReceiver),
            "the outbox is not an organisation number",
        )
    })?;
    if org != caller.org {
        return Err(Failure::caller(
            Code::Policy(PolicyRefusal {
                label: policy::Refusal::NotIngivareOrProcessor.label(),
                kind: PolicyKind::NotIngivareOrProcessor,
            }),
            "this outbox belongs to another organisation",
        ));
    }
    let key = match unit {
        Some(u) if !u.is_empty() => format!("{org}.{u}"),
        _ => org.to_string(),
    };
    let outbox = Outbox::parse(&key)
        .map_err(|_| Failure::caller(Code::Shs(ErrorCode::UnknownReceiver), "outbox missing"))?;
    Ok((store, outbox))
}

/// The delivery service `/shs/ds/...` as a way in: refusals are plain
/// statuses (403 for the gate's).
pub struct Delivery;

impl Way for Delivery {
    const ROUTE: &'static str = "shs_ds";
    fn render(failure: &Failure) -> Response {
        failure.plain_response()
    }
}

/// The message a fetch or ack names: the tx.id of the path, and the sender
/// when the query names one (`?sender=<organisation number>`). Several
/// organisations may have sent messages with one tx.id to this outbox; they are
/// different messages, all addressed to the caller. Without `sender` a fetch
/// hands them out oldest first and an ack takes the one just fetched
/// (`relay_mailbox::rules::fetch_order`, `ack_order`); the message list shows
/// each one's `from`.
fn which_in(tx_id: &str, query: &[(String, String)]) -> relay_mailbox::Which {
    relay_mailbox::Which {
        tx_id: tx_id.to_owned(),
        sender: query
            .iter()
            .find(|(k, _)| k == "sender")
            .and_then(|(_, v)| relay_mailbox::sender_org_of(v)),
    }
}

/// Runs a delivery-service call and renders its refusal.
async fn serve<F>(relay: &Relay, admitted: &Admitted<Delivery>, f: F) -> Response
where
    F: std::future::Future<Output = Result<Response, Failure>>,
{
    match f.await {
        Ok(r) => r,
        Err(failure) => {
            admission::refuse::<Delivery>(relay, Some(&admitted.caller), &failure, admitted.started)
                .await
        }
    }
}

/// `GET /shs/ds/{outbox}`: the message list.
pub async fn list(
    State(relay): State<Arc<Relay>>,
    admitted: Admitted<Delivery>,
    Path(outbox): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    serve(&relay, &admitted, async {
        let (store, outbox) = open_outbox(&relay, &admitted.caller, &outbox)?;
        list_with(&store, &outbox, &query).await
    })
    .await
}

async fn list_with(
    store: &Store,
    outbox: &Outbox,
    query: &[(String, String)],
) -> Result<Response, Failure> {
    let filter = relay_mailbox::ListFilter::from_query_in(query, &chrono::Local)
        .map_err(|e| Failure::caller(Code::Shs(ErrorCode::OtherError), e.to_string()))?;
    let metas = store
        .list(outbox, &filter)
        .await
        .map_err(crate::asynch::mailbox_failed)?;
    let list = relay_shs::MessageList {
        messages: metas
            .into_iter()
            .map(|m| {
                let l = m.label;
                relay_shs::ListedMessage {
                    tx_id: l.tx_id,
                    timestamp: l
                        .datetime
                        .map(|d| d.format(SHS_DATETIME).to_string())
                        .unwrap_or_default(),
                    corr_id: Some(l.corr_id),
                    content_id: Some(l.content_id),
                    size: Some(m.body_bytes.to_string()),
                    originator: l.originator,
                    from: l.from,
                    to: Some(l.to.as_str().to_owned()),
                    end_recipient: l.end_recipient,
                    product: Some(l.product),
                    sequence_type: l.sequence_type.as_str().to_owned(),
                    status: match l.status {
                        relay_mailbox::Status::Test => "test".into(),
                        relay_mailbox::Status::Production => "production".into(),
                    },
                    meta: l.meta,
                    subject: l.subject,
                    data: l
                        .data_parts
                        .into_iter()
                        .map(|d| relay_shs::DataRef {
                            datapart_type: d.datapart_type,
                            filename: d.filename,
                            no_of_bytes: d.no_of_bytes,
                            no_of_records: None,
                        })
                        .collect(),
                }
            })
            .collect(),
    };
    let mut r = Response::new(Body::from(list.to_xml()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=ISO-8859-1"),
    );
    Ok(r)
}

/// `GET /shs/ds/{outbox}/{txId}` (fetch) or `/{outbox}/{product}` (list by product).
pub async fn fetch(
    State(relay): State<Arc<Relay>>,
    admitted: Admitted<Delivery>,
    Path((outbox, second)): Path<(String, String)>,
    Query(mut query): Query<Vec<(String, String)>>,
) -> Response {
    serve(&relay, &admitted, async {
        let (store, outbox) = open_outbox(&relay, &admitted.caller, &outbox)?;
        if uuid::Uuid::parse_str(&second).is_err() {
            query.push(("producttype".into(), second));
            return list_with(&store, &outbox, &query).await;
        }
        let not_found = || {
            Failure::caller(
                Code::NotFound,
                format!("Message entry not found in message log: {second}"),
            )
        };
        let mut handle = match store.fetch(&outbox, which_in(&second, &query)).await {
            Ok(h) => h,
            Err(e) if e.is_caller_fault() => {
                crate::outcomes::fetched(
                    &relay,
                    &admitted.caller,
                    &second,
                    relay_audit::FetchResult::NotFound,
                )
                .await;
                return Err(not_found());
            }
            Err(e) => return Err(crate::asynch::mailbox_failed(e)),
        };
        let body = handle.take_body().ok_or_else(not_found)?;
        relay
            .metrics
            .request("shs_ds_fetch", "fetched", admitted.started.elapsed());
        tracing::info!(
            route = "shs/ds",
            tx = %second,
            caller = %admitted.caller.org,
            outcome = "fetched",
            "message fetched"
        );
        crate::outcomes::fetched(
            &relay,
            &admitted.caller,
            &second,
            relay_audit::FetchResult::Delivered,
        )
        .await;
        // Stream the decrypted body; when it has been read to its end, the message
        // becomes Fetched. A client that goes away leaves it listed again.
        let stream =
            futures::stream::unfold((body, Some(handle)), |(mut body, mut handle)| async move {
                use futures::StreamExt;
                match body.next().await {
                    Some(chunk) => Some((chunk, (body, handle))),
                    None => {
                        if let Some(h) = handle.take() {
                            let _ = h.complete().await;
                        }
                        None
                    }
                }
            });
        let mut r = Response::new(Body::from_stream(stream));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("message/rfc822"),
        );
        Ok(r)
    })
    .await
}

/// `POST /shs/ds/{outbox}/{txId}?action=ack`.
pub async fn ack(
    State(relay): State<Arc<Relay>>,
    admitted: Admitted<Delivery>,
    Path((outbox, tx)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    serve(&relay, &admitted, async {
        let (store, outbox) = open_outbox(&relay, &admitted.caller, &outbox)?;
        if !query.iter().any(|(k, v)| k == "action" && v == "ack") {
            return Err(Failure::caller(
                Code::Shs(ErrorCode::OtherError),
                "unknown action; use ?action=ack",
            ));
        }
        let outcome = match store.ack(&outbox, which_in(&tx, &query)).await {
            Ok(o) => o,
            Err(e) if e.is_caller_fault() => {
                return Err(Failure::caller(
                    Code::NotFound,
                    format!("Message entry not found in message log: {tx}"),
                ));
            }
            Err(e) => return Err(crate::asynch::mailbox_failed(e)),
        };
        if let Some(d) = &outcome.deletion {
            deleted(&relay, &d.tx_id, d.reason.as_str()).await;
        }
        if outcome.send_confirm
            && let Some(from) = outcome.meta.label.from.clone()
        {
            let l = &outcome.meta.label;
            let mut original = Label::new(
                &from,
                Some(l.to.as_str()),
                relay_shs::ProductId::parse(&l.product).unwrap_or(relay_shs::ProductId::Confirm),
                relay_shs::SequenceType::Request,
                TransferType::Asynch,
            );
            original.tx_id = l.tx_id.clone();
            original.corr_id = l.corr_id.clone();
            original.content.content_id = l.content_id.clone();
            original.originator = l.originator.clone().map(|v| relay_shs::Originator {
                value: v,
                ..Default::default()
            });
            original.end_recipient = l.end_recipient.clone().map(|v| relay_shs::EndRecipient {
                value: v,
                ..Default::default()
            });
            let confirm = relay_shs::adm_message(&original, AdmKind::Confirm, None);
            if let Err(e) = deliver(&store, &confirm).await {
                tracing::warn!(tx = %tx, code = e.label(), "could not deliver the confirm message");
            }
        }
        Ok((StatusCode::OK, "OK").into_response())
    })
    .await
}
