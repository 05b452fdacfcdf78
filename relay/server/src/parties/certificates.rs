//! The client certificates each party connects with: fingerprint, subject,
//! issuer, not-after, first and last seen (no personal data: organisation
//! certificates). Written to the register when a node first sees a certificate
//! and at most every [`WRITE_EVERY`] after, off the request path. A party seen
//! with a new certificate while its older one is still valid is *renewed*.
//!
//! The metric `shs_relay_party_certificate_expiry_timestamp_seconds{org}`
//! says, per party, when its newest certificate expires (an alert rule warns
//! 60 days ahead). Labelled by organisation number only, never a name.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use relay_ident::Organisationsnummer;
use relay_store::{PartyCertificate, PartyRegister};
use x509_parser::prelude::*;

use super::Snapshot;
use crate::Relay;
use crate::metrics::{Metrics, OrgLabel};

/// How often a node writes `last_seen` of a certificate it keeps seeing.
pub const WRITE_EVERY: Duration = Duration::from_secs(60);

/// When this node last wrote each certificate (fingerprint).
#[derive(Debug, Default)]
pub struct Seen(Mutex<HashMap<String, Instant>>);

/// What a certificate says, for the register.
pub fn describe(der: &[u8], now: DateTime<Utc>) -> Option<PartyCertificate> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)?;
    let subject = crate::identity::fingerprint_of(Some(der))?;
    Some(PartyCertificate {
        fingerprint: subject,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after,
        first_seen: now,
        last_seen: now,
    })
}

/// Notes that `org` connected with the certificate `der`; writes it to the
/// register in the background when new to this node or not written for a while.
pub fn saw(relay: &std::sync::Arc<Relay>, org: Organisationsnummer, der: &[u8]) {
    let book = &relay.operator.parties;
    if book.register().is_none() {
        return;
    }
    let Some(fingerprint) = crate::identity::fingerprint_of(Some(der)) else {
        return;
    };
    {
        let mut seen = book
            .certificates
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if seen
            .get(&fingerprint)
            .is_some_and(|t| now.saturating_duration_since(*t) < WRITE_EVERY)
        {
            return;
        }
        // Bounded: a node sees a few thousand certificates at most.
        if seen.len() > 100_000 {
            seen.clear();
        }
        seen.insert(fingerprint, now);
    }
    let Some(cert) = describe(der, Utc::now()) else {
        return;
    };
    let relay = relay.clone();
    tokio::spawn(async move {
        let Some(register) = relay.operator.parties.register() else {
            return;
        };
        if let Err(e) = register.seen_certificate(org, &cert).await {
            tracing::warn!(error = %e, "a party's certificate could not be recorded");
            return;
        }
        if let Err(e) = super::refresh(&relay).await {
            tracing::warn!(error = %e, "the register of parties could not be read back");
        }
    });
}

/// One party's certificates as shown: newest last, each marked `renewed`
/// (a newer one appeared while it was still valid) or not.
pub fn of_party(snapshot: &Snapshot, org: &Organisationsnummer) -> Vec<serde_json::Value> {
    let certs: Vec<&PartyCertificate> = snapshot
        .certificates
        .iter()
        .filter(|(o, _)| o == org)
        .map(|(_, c)| c)
        .collect();
    certs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let renewed = certs[i + 1..]
                .iter()
                .any(|n| n.first_seen <= c.not_after && n.fingerprint != c.fingerprint);
            serde_json::json!({
                "fingerprint": c.fingerprint,
                "subject": c.subject,
                "issuer": c.issuer,
                "not_after": c.not_after.to_rfc3339(),
                "first_seen": c.first_seen.to_rfc3339(),
                "last_seen": c.last_seen.to_rfc3339(),
                "renewed": renewed,
            })
        })
        .collect()
}

/// When each party's newest certificate expires.
pub fn expiry(snapshot: &Snapshot) -> BTreeMap<Organisationsnummer, DateTime<Utc>> {
    let mut out: BTreeMap<Organisationsnummer, (DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
    for (org, c) in &snapshot.certificates {
        let e = out.entry(*org).or_insert((c.first_seen, c.not_after));
        if (c.first_seen, c.not_after) >= *e {
            *e = (c.first_seen, c.not_after);
        }
    }
    out.into_iter().map(|(o, (_, n))| (o, n)).collect()
}

/// Sets the expiry metric (`metrics.party_certificate_expiry`) from a fresh snapshot.
pub fn export(metrics: &Metrics, snapshot: &Snapshot) {
    let e = &metrics.party_certificate_expiry;
    e.clear();
    for (org, not_after) in expiry(snapshot) {
        e.get_or_create(&OrgLabel {
            org: org.to_string(),
        })
        .set(not_after.timestamp());
    }
}
