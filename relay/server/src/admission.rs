//! The one admission step every way in passes: identify the caller from its
//! client certificate (organisation, fingerprint, role), then take an in-flight
//! permit from the caller's fair share, then hand the body on.
//!
//! Each way in is an axum handler that takes an [`Admitted<W>`] argument; the
//! way `W` (a [`Way`], defined by the way in's own module) only says how a
//! [`Failure`] is rendered in its protocol. Refusals of every way in are
//! counted, logged and audited in one place, [`refuse`].
//!
//! The in-flight limit is shared fairly: one organisation holds at most
//! `limits.max_in_flight_per_caller` permits, so a caller that stalls many
//! uploads runs into its own share and not into everyone else's.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::response::Response;
use http::request::Parts;
use relay_ident::Organisationsnummer;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Relay;
use crate::failure::{By, Code, Failure};
use crate::identity::{Caller, PeerCert};
use prometheus_client::metrics::gauge::Gauge;

/// A way in: how its refusals are rendered, and its route label in metrics.
/// Each way in implements it in its own module, next to its handler (SHS in
/// `crate::rs`, the SOAP services in `crate::soap`, the delivery service in
/// `crate::asynch::delivery`, the status feed in `crate::status::feed`):
/// admission renders nothing itself.
pub trait Way: Send + Sync + 'static {
    const ROUTE: &'static str;
    fn render(failure: &Failure) -> Response;
}

/// An admitted request: the caller, and an in-flight permit held until the
/// handler returns.
pub struct Admitted<W> {
    pub caller: Caller,
    pub started: Instant,
    _permit: Permit,
    _way: PhantomData<W>,
}

impl<W: Way> FromRequestParts<Arc<Relay>> for Admitted<W> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, relay: &Arc<Relay>) -> Result<Self, Response> {
        let started = Instant::now();
        let der = parts.extensions.get::<PeerCert>().map(|p| p.0.clone());
        let caller = match Caller::identify(relay, der.as_deref().map(Vec::as_slice)) {
            Ok(c) => c,
            Err(f) => return Err(refuse::<W>(relay, None, &f, started).await),
        };
        if let Some(der) = &der {
            crate::parties::certificates::saw(relay, caller.org, der);
        }
        match relay.in_flight.admit(&caller.org) {
            Ok(permit) => Ok(Admitted {
                caller,
                started,
                _permit: permit,
                _way: PhantomData,
            }),
            Err(by) => {
                let retry = u64::from(relay.live().config.limits.retry_after_s);
                let info = match by {
                    By::Caller => {
                        "this organisation is at its share of the relay's requests in flight; retry later"
                    }
                    _ => "the relay is at its limit of requests in flight; retry later",
                };
                let f = Failure::overloaded(by, retry, info);
                Err(refuse::<W>(relay, Some(&caller), &f, started).await)
            }
        }
    }
}

/// The one place a refusal is counted, logged, audited and rendered, for every
/// way in. Logs carry the caller's organisation, the code and who failed; never
/// content.
pub async fn refuse<W: Way>(
    relay: &Relay,
    caller: Option<&Caller>,
    failure: &Failure,
    started: Instant,
) -> Response {
    let outcome = match (&failure.code, &failure.by) {
        (Code::Overloaded, _) => "overloaded",
        (_, By::Caller) => "refused",
        _ => "failed",
    };
    relay
        .metrics
        .refusal(W::ROUTE, failure.by.label(), failure.label());
    relay.metrics.request(W::ROUTE, outcome, started.elapsed());
    let tx = failure.ids.as_ref().map_or("", |i| i.tx_id.as_str());
    let org = caller.map(|c| c.org.to_string()).unwrap_or_default();
    match failure.by {
        By::Caller => tracing::info!(
            route = W::ROUTE, tx, caller = %org, outcome, by = failure.by.label(),
            code = failure.label(), latency_ms = started.elapsed().as_millis() as u64,
            "request refused"
        ),
        _ => tracing::warn!(
            route = W::ROUTE, tx, caller = %org, outcome, by = failure.by.label(),
            code = failure.label(), latency_ms = started.elapsed().as_millis() as u64,
            "request failed"
        ),
    }
    crate::outcomes::refused(relay, W::ROUTE, caller, failure, started).await;
    W::render(failure)
}

/// The in-flight limit: a global semaphore, and a per-organisation count so
/// that one organisation holds at most its share.
pub struct InFlight {
    global: Arc<Semaphore>,
    per_caller: Arc<Mutex<HashMap<Organisationsnummer, usize>>>,
    max_per_caller: usize,
    /// `shs_relay_in_flight` of the relay's metrics.
    gauge: Gauge,
}

/// One admitted request's hold on the in-flight limit.
pub struct Permit {
    _global: OwnedSemaphorePermit,
    org: Organisationsnummer,
    per_caller: Arc<Mutex<HashMap<Organisationsnummer, usize>>>,
    gauge: Gauge,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut map = self.per_caller.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.org) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.org);
            }
        }
        self.gauge.dec();
    }
}

impl InFlight {
    /// `gauge` counts the permits held (the relay's `in_flight` metric).
    pub fn new(max: usize, max_per_caller: usize, gauge: Gauge) -> Self {
        Self {
            global: Arc::new(Semaphore::new(max)),
            per_caller: Arc::new(Mutex::new(HashMap::new())),
            max_per_caller: max_per_caller.max(1),
            gauge,
        }
    }

    /// A permit for `org`, or who is at the limit: the caller (its share) or
    /// the relay (all permits taken).
    pub fn admit(&self, org: &Organisationsnummer) -> Result<Permit, By> {
        let mut map = self.per_caller.lock().unwrap_or_else(|p| p.into_inner());
        let held = map.get(org).copied().unwrap_or(0);
        if held >= self.max_per_caller {
            return Err(By::Caller);
        }
        let global = self
            .global
            .clone()
            .try_acquire_owned()
            .map_err(|_| By::Relay)?;
        map.insert(*org, held + 1);
        self.gauge.inc();
        Ok(Permit {
            _global: global,
            org: *org,
            per_caller: self.per_caller.clone(),
            gauge: self.gauge.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(s: &str) -> Organisationsnummer {
        Organisationsnummer::parse(s).unwrap()
    }

    #[test]
    fn one_organisation_cannot_take_everyone_elses_permits() {
        let limit = InFlight::new(4, 2, Gauge::default());
        let a = org("2120002411");
        let b = org("2120000142");
        let a1 = limit.admit(&a).unwrap();
        let _a2 = limit.admit(&a).unwrap();
        assert_eq!(limit.admit(&a).err(), Some(By::Caller));
        let _b1 = limit.admit(&b).unwrap();
        let _b2 = limit.admit(&b).unwrap();
        // All four taken: the relay is full for a third organisation.
        assert_eq!(limit.admit(&org("2120001355")).err(), Some(By::Relay));
        drop(a1);
        assert!(limit.admit(&a).is_ok());
    }
}
