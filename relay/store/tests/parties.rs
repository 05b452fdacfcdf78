//! The register of parties, written once and run on both engines with two
//! store handles ("nodes"): what one node registers, the other reads.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod support;

use chrono::{NaiveDate, Utc};
use relay_ident::Organisationsnummer;
use relay_store::{
    Declaration, Parties, Party, PartyCertificate, PartyRegister, PartyState, Role, Store,
};
use support::*;

on_both_engines!(
    a_party_registered_through_one_node_is_read_at_the_other_with_its_history,
    an_edit_that_refuses_changes_nothing,
    declarations_are_per_municipality_and_dated,
    a_certificate_keeps_its_first_sighting,
);

fn org(s: &str) -> Organisationsnummer {
    Organisationsnummer::parse(s).unwrap()
}

async fn two(c: &Cluster) -> (Parties, Parties) {
    let mailbox = c.dir.path().join("mailbox.redb");
    let a = Parties::of(c.a(), &mailbox).await.unwrap();
    let b = match c.a() {
        Store::Redb { .. } => a.clone(),
        Store::Postgres(_) => Parties::of(&c.node().await, &mailbox).await.unwrap(),
    };
    (a, b)
}

async fn a_party_registered_through_one_node_is_read_at_the_other_with_its_history(c: Cluster) {
    let (a, b) = two(&c).await;
    let vendor = org("5566770037");
    let mut p = Party::new(
        vendor,
        "Ny Leverantör AB".into(),
        Role::EltVendor,
        Utc::now(),
    );
    p.change_state("elt", PartyState::Applied, "anna", None, Utc::now());
    assert!(a.add_party(&p).await.unwrap());
    assert!(!b.add_party(&p).await.unwrap(), "already registered");
    let moved = b
        .update(
            vendor,
            Box::new(|p: &mut Party| {
                p.change_state(
                    "elt",
                    PartyState::Test,
                    "bertil",
                    Some("order form".into()),
                    Utc::now(),
                );
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(moved, Some(Ok(())));
    let read = a.party(vendor).await.unwrap().unwrap();
    let elt = &read.products["elt"];
    assert_eq!(elt.state, PartyState::Test);
    assert_eq!(elt.history.len(), 2);
    assert_eq!(elt.history[1].operator, "bertil");
    assert_eq!(elt.history[1].from, Some(PartyState::Applied));
    assert_eq!(a.parties().await.unwrap().len(), 1);
    assert!(b.party(org("2120002411")).await.unwrap().is_none());
    c.finish().await;
}

async fn an_edit_that_refuses_changes_nothing(c: Cluster) {
    let (a, b) = two(&c).await;
    let m = org("2120002411");
    let p = Party::new(
        m,
        "Sundsvalls kommun".into(),
        Role::Municipality,
        Utc::now(),
    );
    a.add_party(&p).await.unwrap();
    let refused = b
        .update(
            m,
            Box::new(|p: &mut Party| {
                p.require_declaration = true;
                Err::<(), _>("no".to_owned())
            }),
        )
        .await
        .unwrap();
    assert_eq!(refused, Some(Err("no".to_owned())));
    assert!(!a.party(m).await.unwrap().unwrap().require_declaration);
    let none = a
        .update(org("2120000142"), Box::new(|_: &mut Party| Ok(())))
        .await
        .unwrap();
    assert_eq!(none, None);
    c.finish().await;
}

async fn declarations_are_per_municipality_and_dated(c: Cluster) {
    let (a, b) = two(&c).await;
    let m = org("2120002411");
    let date = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let list = vec![
        Declaration {
            caseworker: "hl-1".into(),
            signed: date,
        },
        Declaration {
            caseworker: "hl-2".into(),
            signed: date,
        },
    ];
    assert_eq!(a.declare(m, &list).await.unwrap(), 2);
    assert_eq!(b.declare(m, &list[..1]).await.unwrap(), 0, "known");
    assert_eq!(b.declarations(m).await.unwrap(), list);
    assert!(b.declarations(org("2120000142")).await.unwrap().is_empty());
    assert!(a.revoke(m, "hl-1").await.unwrap());
    assert!(!b.revoke(m, "hl-1").await.unwrap());
    assert_eq!(
        b.all_declarations().await.unwrap(),
        vec![(m, list[1].clone())]
    );
    c.finish().await;
}

async fn a_certificate_keeps_its_first_sighting(c: Cluster) {
    let (a, b) = two(&c).await;
    let m = org("2120002411");
    let first = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let later = chrono::DateTime::from_timestamp(1_700_100_000, 0).unwrap();
    let cert = PartyCertificate {
        fingerprint: "ab".repeat(32),
        subject: "CN=Sundsvalls kommun".into(),
        issuer: "CN=CA".into(),
        not_after: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        first_seen: first,
        last_seen: first,
    };
    a.seen_certificate(m, &cert).await.unwrap();
    b.seen_certificate(
        m,
        &PartyCertificate {
            first_seen: later,
            last_seen: later,
            ..cert.clone()
        },
    )
    .await
    .unwrap();
    let all = a.certificates().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.first_seen, first);
    assert_eq!(all[0].1.last_seen, later);
    c.finish().await;
}
