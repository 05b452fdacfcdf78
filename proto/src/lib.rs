//! # shs-proto
//!
//! The provider contract v1 (`shs_relay.provider.v1`): the gRPC service a provider
//! adapter serves and the relay calls. The `.proto` file in this crate is the source
//! of truth and documents how the contract evolves (additive only, field numbers
//! never reused, a breaking change is a new package).
//!
//! This crate only compiles the contract; it holds no logic.

/// Generated types and client/server stubs for `shs_relay.provider.v1`.
pub mod v1 {
    tonic::include_proto!("shs_relay.provider.v1");

    /// The contract version string adapters report in `Describe`.
    pub const CONTRACT_VERSION: &str = "shs_relay.provider.v1";
    /// Whether an adapter declaring `contract_version` in `Describe` speaks a
    /// contract this build can call: the same package (`shs_relay.provider.v1`).
    /// Within a package changes are additive only, so any v1 adapter is
    /// compatible with any v1 relay; another package is not.
    pub fn is_compatible(contract_version: &str) -> bool {
        contract_version.trim() == CONTRACT_VERSION
    }

    /// The service name used in `grpc.health.v1` checks.
    pub const SERVICE_NAME: &str = "shs_relay.provider.v1.Provider";
}
