//! SHS ping (product `00000000-0000-0000-0000-000000000000`): answered by the
//! relay itself, as Axel's SHS-PING plugin does, after the same policy gate as
//! every product. Its one way in is synchronous SHS ([`answer_shs`]: no
//! document to decode, a text part as the reply).

use bytes::Bytes;
use relay_shs::{Label, ShsMessage};

use crate::Relay;
use crate::config::ProductName;
use crate::failure::Failure;
use crate::identity::Caller;
use crate::policy::{self, Ask};

/// The reply text of a ping.
pub const PING_REPLY: &str =
    "I'm completely operational, and all my circuits are functioning perfectly.";

/// The one ping entry point.
pub fn answer(relay: &Relay, caller: &Caller) -> Result<&'static str, Failure> {
    policy::gate(
        &relay.metrics,
        &relay.live().config,
        &relay.operator,
        &Ask::product(caller, ProductName::Ping),
    )?;
    Ok(PING_REPLY)
}

/// A ping over synchronous SHS: the reply message with the reply text.
pub fn answer_shs(relay: &Relay, caller: &Caller, request: &Label) -> Result<ShsMessage, Failure> {
    let text = answer(relay, caller)?;
    let part = super::reply::text_part(
        "text/plain",
        "txt",
        None,
        Bytes::from_static(text.as_bytes()),
    );
    Ok(super::reply::synch_reply(request, vec![part]))
}
