//! The status board (the public status feed's facts), written once and run on
//! both engines with two handles ("nodes"): what one node records the other
//! reads, and an automatic incident is opened once however many nodes open it.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod support;

use chrono::{DateTime, TimeDelta, Utc};
use relay_store::{
    AnnouncedWindow, Change, ComponentState, ComponentStatus, Impact, IncidentStatus, NewIncident,
    StatusBoard, StatusStore, Text, Updated,
};
use support::*;

on_both_engines!(
    an_automatic_incident_opened_by_two_nodes_at_once_is_opened_once,
    an_incident_is_updated_resolved_and_never_reopened,
    a_resolved_automatic_incident_frees_its_key_for_the_next_disturbance,
    a_component_keeps_its_status_time_and_the_latest_success_and_failure,
    an_agency_announcement_replaces_its_coming_windows_and_keeps_ended_ones,
    old_resolved_incidents_and_ended_windows_are_swept,
);

async fn boards(c: &Cluster) -> (StatusStore, StatusStore) {
    let path = c.dir.path().join("mailbox.redb");
    let a = StatusStore::open(c.a(), &path).unwrap();
    let b = match &c.engine {
        Engine::Redb => a.clone(),
        Engine::Postgres { .. } => StatusStore::open(&c.node().await, &path).unwrap(),
    };
    (a, b)
}

fn disturbance(at: DateTime<Utc>, components: &[&str]) -> NewIncident {
    NewIncident {
        auto_key: Some("disturbance".into()),
        name: Text::new("Tillgänglig med störning", "Available with disturbance"),
        impact: Impact::Major,
        components: components.iter().map(|s| s.to_string()).collect(),
        started_at: at,
        text: Text::new(
            "Två myndigheter svarar inte.",
            "Two agencies do not answer.",
        ),
    }
}

fn change(status: Option<IncidentStatus>, at: DateTime<Utc>) -> Change {
    Change {
        status,
        text: Text::new("Vi felsöker.", "We are investigating."),
        at,
        add_components: Vec::new(),
    }
}

async fn an_automatic_incident_opened_by_two_nodes_at_once_is_opened_once(c: Cluster) {
    let (a, b) = boards(&c).await;
    let now = t0();
    let new_a = disturbance(now, &["ssbtek-csn", "ssbtek-tns"]);
    let new_b = disturbance(now, &["ssbtek-tns", "ssbtek-csn"]);
    let (ra, rb) = tokio::join!(a.open_incident(&new_a, now), b.open_incident(&new_b, now));
    let (ia, opened_a) = ra.unwrap();
    let (ib, opened_b) = rb.unwrap();
    assert_eq!(ia.id, ib.id, "both nodes see the same incident");
    assert!(opened_a ^ opened_b, "exactly one node opened it");
    assert_eq!(ia.components, vec!["ssbtek-csn", "ssbtek-tns"]);
    assert_eq!(ia.status, IncidentStatus::Investigating);
    assert_eq!(ia.updates.len(), 1);
    let listed = a.incidents(now).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        b.open_with_key("disturbance").await.unwrap().unwrap().id,
        ia.id
    );
    // An operator's own incident has no key: a second one is a second incident.
    let manual = NewIncident {
        auto_key: None,
        ..disturbance(now, &["elt-fk"])
    };
    let (m1, _) = a.open_incident(&manual, now).await.unwrap();
    let (m2, _) = b.open_incident(&manual, now).await.unwrap();
    assert_ne!(m1.id, m2.id);
    assert_eq!(a.incidents(now).await.unwrap().len(), 3);
    c.finish().await;
}

async fn an_incident_is_updated_resolved_and_never_reopened(c: Cluster) {
    let (a, b) = boards(&c).await;
    let now = t0();
    let (incident, _) = a
        .open_incident(&disturbance(now, &["ssbtek-af"]), now)
        .await
        .unwrap();
    let later = now + TimeDelta::minutes(5);
    let Updated::Done(updated) = b
        .update_incident(
            incident.id,
            &change(Some(IncidentStatus::Identified), later),
        )
        .await
        .unwrap()
    else {
        panic!("not updated");
    };
    assert_eq!(updated.status, IncidentStatus::Identified);
    assert_eq!(updated.updated_at, later);
    let seen = a.incident(incident.id).await.unwrap().unwrap();
    assert_eq!(seen.updates.len(), 2);
    assert_eq!(seen.updates[1].text.en, "We are investigating.");
    assert_eq!(seen.updates[1].status, IncidentStatus::Identified);
    // A text without a status change keeps the status.
    let Updated::Done(same) = a
        .update_incident(incident.id, &change(None, later + TimeDelta::minutes(1)))
        .await
        .unwrap()
    else {
        panic!("not updated");
    };
    assert_eq!(same.status, IncidentStatus::Identified);
    let resolved_at = later + TimeDelta::minutes(10);
    let Updated::Done(resolved) = b
        .update_incident(
            incident.id,
            &change(Some(IncidentStatus::Resolved), resolved_at),
        )
        .await
        .unwrap()
    else {
        panic!("not resolved");
    };
    assert_eq!(resolved.resolved_at, Some(resolved_at));
    assert_eq!(
        a.update_incident(
            incident.id,
            &change(Some(IncidentStatus::Monitoring), resolved_at)
        )
        .await
        .unwrap(),
        Updated::AlreadyResolved
    );
    assert_eq!(
        a.update_incident(uuid::Uuid::new_v4(), &change(None, resolved_at))
            .await
            .unwrap(),
        Updated::NotFound
    );
    // Resolved long ago: no longer listed; resolved recently: listed.
    assert!(
        a.incidents(resolved_at + TimeDelta::seconds(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(a.incidents(resolved_at).await.unwrap().len(), 1);
    c.finish().await;
}

async fn a_resolved_automatic_incident_frees_its_key_for_the_next_disturbance(c: Cluster) {
    let (a, b) = boards(&c).await;
    let now = t0();
    let (first, opened) = a
        .open_incident(&disturbance(now, &["ssbtek-af"]), now)
        .await
        .unwrap();
    assert!(opened);
    let mut end = change(Some(IncidentStatus::Resolved), now + TimeDelta::minutes(3));
    end.add_components = vec!["ssbtek-so".into()];
    let Updated::Done(done) = b.update_incident(first.id, &end).await.unwrap() else {
        panic!("not resolved");
    };
    assert_eq!(done.components, vec!["ssbtek-af", "ssbtek-so"]);
    assert!(a.open_with_key("disturbance").await.unwrap().is_none());
    let next = now + TimeDelta::minutes(10);
    let (second, opened) = b
        .open_incident(&disturbance(next, &["ssbtek-miv"]), next)
        .await
        .unwrap();
    assert!(opened);
    assert_ne!(second.id, first.id);
    c.finish().await;
}

async fn a_component_keeps_its_status_time_and_the_latest_success_and_failure(c: Cluster) {
    let (a, b) = boards(&c).await;
    let t = t0();
    let state =
        |status, at, ok: Option<DateTime<Utc>>, failed: Option<DateTime<Utc>>| ComponentState {
            id: "ssbtek-csn".into(),
            status,
            updated_at: at,
            last_success_at: ok,
            last_failure_at: failed,
        };
    a.record_component(&state(ComponentStatus::Operational, t, Some(t), None))
        .await
        .unwrap();
    // Another node, same status, an older success and a failure: the status
    // time stays, the success stays the later one.
    b.record_component(&state(
        ComponentStatus::Operational,
        t + TimeDelta::minutes(1),
        Some(t - TimeDelta::minutes(1)),
        Some(t + TimeDelta::minutes(1)),
    ))
    .await
    .unwrap();
    let got = a.components().await.unwrap();
    assert_eq!(
        got,
        vec![state(
            ComponentStatus::Operational,
            t,
            Some(t),
            Some(t + TimeDelta::minutes(1))
        )]
    );
    let t2 = t + TimeDelta::minutes(2);
    b.record_component(&state(ComponentStatus::MajorOutage, t2, None, Some(t2)))
        .await
        .unwrap();
    let got = a.components().await.unwrap();
    assert_eq!(got[0].status, ComponentStatus::MajorOutage);
    assert_eq!(got[0].updated_at, t2);
    assert_eq!(got[0].last_success_at, Some(t));
    assert_eq!(got[0].last_failure_at, Some(t2));
    c.finish().await;
}

fn window(id: &str, starts_at: DateTime<Utc>, hours: i64, seen: DateTime<Utc>) -> AnnouncedWindow {
    AnnouncedWindow {
        provider: "SKV".into(),
        id: id.into(),
        starts_at,
        ends_at: starts_at + TimeDelta::hours(hours),
        text: Text::new("Planerat underhåll", "Planned maintenance"),
        updated_at: seen,
    }
}

async fn an_agency_announcement_replaces_its_coming_windows_and_keeps_ended_ones(c: Cluster) {
    let (a, b) = boards(&c).await;
    let now = t0();
    let past = window(
        "w-past",
        now - TimeDelta::hours(5),
        1,
        now - TimeDelta::hours(6),
    );
    let coming = window("w-1", now + TimeDelta::hours(2), 2, now);
    assert!(
        a.announce("SKV", &[past.clone(), coming.clone()], now)
            .await
            .unwrap()
    );
    assert!(
        !b.announce(
            "SKV",
            &[past.clone(), coming.clone()],
            now + TimeDelta::minutes(1)
        )
        .await
        .unwrap(),
        "the same announcement again changes nothing"
    );
    assert_eq!(
        b.announced().await.unwrap(),
        vec![past.clone(), coming.clone()]
    );
    // The adapter now announces another window only: the coming one is
    // cancelled, the ended one stays for the history.
    let other = window(
        "w-2",
        now + TimeDelta::days(1),
        1,
        now + TimeDelta::minutes(2),
    );
    assert!(
        b.announce(
            "SKV",
            std::slice::from_ref(&other),
            now + TimeDelta::minutes(2)
        )
        .await
        .unwrap()
    );
    assert_eq!(a.announced().await.unwrap(), vec![past, other.clone()]);
    // Another agency's windows are its own.
    let mut fk = window("w-1", now + TimeDelta::hours(3), 1, now);
    fk.provider = "FK".into();
    a.announce("FK", std::slice::from_ref(&fk), now)
        .await
        .unwrap();
    assert_eq!(a.announced().await.unwrap().len(), 3);
    c.finish().await;
}

async fn old_resolved_incidents_and_ended_windows_are_swept(c: Cluster) {
    let (a, _) = boards(&c).await;
    let now = t0();
    let old = now - TimeDelta::days(100);
    let (incident, _) = a
        .open_incident(&disturbance(old, &["ssbtek-af"]), old)
        .await
        .unwrap();
    a.update_incident(incident.id, &change(Some(IncidentStatus::Resolved), old))
        .await
        .unwrap();
    let (open, _) = a
        .open_incident(
            &NewIncident {
                auto_key: None,
                ..disturbance(old, &["ssbtek-csn"])
            },
            old,
        )
        .await
        .unwrap();
    a.announce("SKV", &[window("w-old", old, 1, old)], old)
        .await
        .unwrap();
    let removed = a.sweep_status(now - TimeDelta::days(90)).await.unwrap();
    assert_eq!(removed, 2);
    let left = a.incidents(old).await.unwrap();
    assert_eq!(left.len(), 1, "an unresolved incident is never swept");
    assert_eq!(left[0].id, open.id);
    assert!(a.announced().await.unwrap().is_empty());
    c.finish().await;
}
