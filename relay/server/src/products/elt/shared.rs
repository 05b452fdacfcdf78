//! [`SharedStore`]: ELT's rate buckets, retry counts and accepted reports in
//! the relay's store, on either engine. On PostgreSQL (`[store] kind =
//! "postgres"`) several nodes share it, so a vendor gets one call a second
//! across all nodes (one atomic statement in the database) and a repeat of a
//! report accepted through another node gets the original receipt; on redb
//! the accepted reports survive a restart.
//!
//! A database that cannot be used is the relay's problem, not the vendor's:
//! the node then keeps the rate, the retry counts and the receipts in its own
//! memory until the database answers again (logged), rather than refusing
//! every report. A repeat it cannot find then goes to Försäkringskassan's
//! adapter, which keeps its own record and answers with the original receipt.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use relay_store::{AcceptedReport, RateLimit, RetryLimit, SharedState, Store};

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
        Box::pin(async move {
            match self.store.accepted_elt_report(report_id).await {
                Ok(Some(kept)) => {
                    let receipt = relay_elt::Receipt::parse(kept.receipt.as_bytes());
                    if receipt.is_none() {
                        tracing::error!(
                            table = "elt_reports",
                            "a kept receipt cannot be read; the report goes to the adapter"
                        );
                    }
                    receipt.map(|receipt| Accepted {
                        sha256: kept.sha256,
                        receipt,
                    })
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "ELT repeats: the store failed; this node's own record applies");
                    self.memory.accepted(report_id).await
                }
            }
        })
    }

    fn remember<'a>(
        &'a self,
        report_id: String,
        accepted: Accepted,
        settings: &'a StoreSettings,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let kept = AcceptedReport {
                sha256: accepted.sha256.clone(),
                receipt: accepted.receipt.to_xml(),
            };
            if let Err(e) = self.store.keep_elt_report(&report_id, &kept).await {
                tracing::error!(error = %e, "ELT repeats: the store failed; the receipt is kept in this node's memory");
                self.memory.remember(report_id, accepted, settings).await;
            }
        })
    }
}
