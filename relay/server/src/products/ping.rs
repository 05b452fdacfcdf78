//! SHS ping (product `00000000-0000-0000-0000-000000000000`): answered by the
//! relay itself, as Axel's SHS-PING plugin does.

/// The reply text of a ping.
pub const PING_REPLY: &str =
    "I'm completely operational, and all my circuits are functioning perfectly.";
