//! The products the relay answers itself, by SHS product id.
//!
//! Each product module works on decoded documents and returns documents; the SHS
//! front (`rs`) and, later, the SOAP front wrap them in their protocol.

pub mod elt;
pub mod ping;
pub mod ssbtek;
