//! # shs-proto
//!
//! The provider contract v1 (`shs_relay.provider.v1`): the gRPC service a provider
//! adapter serves and the relay calls. The `.proto` file in this crate is the source
//! of truth and documents how the contract evolves (additive only, field numbers
//! never reused, a breaking change is a new package).
//!
//! This crate only compiles the contract and says how it is encoded
//! ([`codec::SmallBuffers`]); it holds no other logic.

pub mod codec {
    //! The contract's codec: prost, with per-call buffers sized to the
    //! contract's messages instead of tonic's 8 KiB default.
    //!
    //! Every gRPC call allocates one encode buffer that lives as long as the
    //! request body, and one decode buffer for the reply. A composite query
    //! makes seven calls whose requests are about 0.5 KiB, so with 1 000
    //! queries in flight the default buffers alone held tens of megabytes
    //! (docs/performance.md, the heap profile). The buffers still grow to fit
    //! any larger message.

    use std::marker::PhantomData;

    use tonic::codec::BufferSettings;
    use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

    /// Initial size of a call's encode and decode buffers.
    pub const BUFFER_SIZE: usize = 1024;
    /// Above this many encoded bytes a streaming encoder yields (tonic's default).
    pub const YIELD_THRESHOLD: usize = 32 * 1024;

    fn settings() -> BufferSettings {
        BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
    }

    /// [`ProstCodec`] with [`BUFFER_SIZE`] buffers.
    #[derive(Debug, Clone)]
    pub struct SmallBuffers<T, U>(PhantomData<(T, U)>);

    impl<T, U> Default for SmallBuffers<T, U> {
        fn default() -> Self {
            Self(PhantomData)
        }
    }

    impl<T, U> tonic::codec::Codec for SmallBuffers<T, U>
    where
        T: prost::Message + Send + 'static,
        U: prost::Message + Default + Send + 'static,
    {
        type Encode = T;
        type Decode = U;
        type Encoder = ProstEncoder<T>;
        type Decoder = ProstDecoder<U>;

        fn encoder(&mut self) -> Self::Encoder {
            ProstCodec::<T, U>::raw_encoder(settings())
        }

        fn decoder(&mut self) -> Self::Decoder {
            ProstCodec::<T, U>::raw_decoder(settings())
        }
    }
}

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
