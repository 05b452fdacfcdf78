//! SHS ping (product `00000000-0000-0000-0000-000000000000`): answered by the
//! relay itself, as Axel's SHS-PING plugin does, after the same policy gate as
//! every product.

use crate::Relay;
use crate::admission::Caller;
use crate::config::ProductName;
use crate::failure::Failure;
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
