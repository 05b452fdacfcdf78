//! [`SharedStore`]: ELT's rate buckets and retry counts in the store several
//! relay nodes share (`[store] kind = "postgres"`), so a vendor gets one call a
//! second across all nodes, decided by one atomic statement in the database.
//! Receipts of accepted reports stay in each node's memory.
//!
//! A database that cannot be used is the relay's problem, not the vendor's:
//! the node then keeps the rate and the retry counts in its own memory until
//! the database answers again (logged), rather than refusing every report.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use relay_store::{RateLimit, RetryLimit, SharedState, Store};

use super::{Accepted, EltStore, MemoryStore, StoreSettings};

/// The key under which retry counts are kept (the call key names the vendor).
const CALLS: &str = "elt-calls";

pub struct SharedStore {
    store: Store,
    memory: MemoryStore,
}

impl SharedStore {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self {
            store,
            memory: MemoryStore::default(),
        })
    }
}

impl EltStore for SharedStore {
    fn take_token<'a>(
        &'a self,
        vendor: &'a str,
        settings: &'a StoreSettings,
    ) -> BoxFuture<'a, Result<(), Duration>> {
        Box::pin(async move {
            let limit = RateLimit {
                per_second: settings.calls_per_second,
                burst: settings.burst,
            };
            match self.store.take_elt_call(vendor, limit).await {
                Ok(decision) => decision,
                Err(e) => {
                    tracing::error!(error = %e, "ELT rate: the shared store failed; this node's own count applies");
                    self.memory.take_token(vendor, settings).await
                }
            }
        })
    }

    fn count_call<'a>(
        &'a self,
        call: &'a str,
        settings: &'a StoreSettings,
    ) -> BoxFuture<'a, Result<u32, u32>> {
        Box::pin(async move {
            let limit = RetryLimit {
                max_retries: settings.max_retries,
                window: settings.retry_window,
            };
            match self.store.record_elt_attempt(CALLS, &[call], limit).await {
                Ok(decision) => decision,
                Err(e) => {
                    tracing::error!(error = %e, "ELT retries: the shared store failed; this node's own count applies");
                    self.memory.count_call(call, settings).await
                }
            }
        })
    }

    fn accepted<'a>(&'a self, report_id: &'a str) -> BoxFuture<'a, Option<Accepted>> {
        self.memory.accepted(report_id)
    }

    fn remember<'a>(
        &'a self,
        report_id: String,
        accepted: Accepted,
        settings: &'a StoreSettings,
    ) -> BoxFuture<'a, ()> {
        self.memory.remember(report_id, accepted, settings)
    }
}
