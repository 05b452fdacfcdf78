//! The shared run-time state, written once and run on both engines with two
//! store handles ("nodes"): a decision taken through one is what the other sees.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod support;

use std::time::Duration;

use chrono::TimeDelta;
use relay_ident::Organisationsnummer;
use relay_store::{
    AcceptedReport, MaintenanceWindow, Mandate, ProductName, RateLimit, RetryLimit, Scope, Seen,
    SharedState,
};
use support::*;

on_both_engines!(
    a_suspension_set_through_one_node_holds_at_the_other,
    a_withdrawal_is_per_provider_on_every_node,
    maintenance_and_planned_windows_are_shared,
    a_duplicate_sender_and_tx_id_is_recognised_across_nodes,
    a_second_elt_call_within_the_second_on_another_node_is_refused,
    of_concurrent_elt_calls_on_two_nodes_exactly_one_gets_the_token,
    a_refilled_bucket_allows_the_next_call,
    elt_retries_are_counted_across_nodes,
    an_elt_mandate_decided_through_one_node_holds_at_the_other,
    importing_mandates_twice_changes_nothing_and_never_overrides_a_decision,
    an_accepted_elt_report_is_kept_once_for_every_node_and_the_oldest_are_forgotten,
    elt_attempts_older_than_the_window_are_swept,
);

fn org(s: &str) -> Organisationsnummer {
    Organisationsnummer::parse(s).unwrap()
}

async fn a_suspension_set_through_one_node_holds_at_the_other(c: Cluster) {
    let b = c.node().await;
    let sundsvall = org("2120002411");
    assert!(
        !b.is_suspended(sundsvall, ProductName::Ssbtek)
            .await
            .unwrap()
    );
    assert!(
        c.a()
            .suspend(sundsvall, &Scope::Product(ProductName::Ssbtek))
            .await
            .unwrap()
    );
    assert!(
        !b.suspend(sundsvall, &Scope::Product(ProductName::Ssbtek))
            .await
            .unwrap(),
        "already"
    );
    assert!(
        b.is_suspended(sundsvall, ProductName::Ssbtek)
            .await
            .unwrap()
    );
    assert!(!b.is_suspended(sundsvall, ProductName::Ping).await.unwrap());
    b.suspend(sundsvall, &Scope::All).await.unwrap();
    assert!(
        c.a()
            .is_suspended(sundsvall, ProductName::Ping)
            .await
            .unwrap()
    );
    assert!(!c.a().is_anordnare_suspended(sundsvall).await.unwrap());
    c.a()
        .suspend(sundsvall, &Scope::EltAnordnare)
        .await
        .unwrap();
    assert!(b.is_anordnare_suspended(sundsvall).await.unwrap());
    assert_eq!(
        b.suspensions().await.unwrap(),
        vec![
            (sundsvall, Scope::All),
            (sundsvall, Scope::Product(ProductName::Ssbtek)),
            (sundsvall, Scope::EltAnordnare),
        ]
    );
    assert!(b.resume(sundsvall, &Scope::All).await.unwrap());
    assert!(
        c.a()
            .resume(sundsvall, &Scope::Product(ProductName::Ssbtek))
            .await
            .unwrap()
    );
    assert!(
        !c.a().resume(sundsvall, &Scope::All).await.unwrap(),
        "already lifted"
    );
    assert!(
        !b.is_suspended(sundsvall, ProductName::Ssbtek)
            .await
            .unwrap()
    );
    c.finish().await;
}

async fn a_withdrawal_is_per_provider_on_every_node(c: Cluster) {
    let b = c.node().await;
    let stockholm = org("2120000142");
    assert!(c.a().withdraw("CSN", stockholm).await.unwrap());
    assert!(b.is_withdrawn("CSN", stockholm).await.unwrap());
    assert!(!b.is_withdrawn("FK", stockholm).await.unwrap());
    assert_eq!(
        b.withdrawals().await.unwrap(),
        vec![("CSN".to_owned(), stockholm)]
    );
    assert!(b.restore("CSN", stockholm).await.unwrap());
    assert!(!c.a().is_withdrawn("CSN", stockholm).await.unwrap());
    assert!(!c.a().restore("CSN", stockholm).await.unwrap());
    c.finish().await;
}

async fn maintenance_and_planned_windows_are_shared(c: Cluster) {
    let b = c.node().await;
    assert_eq!(b.maintenance().await.unwrap(), None);
    c.a()
        .set_maintenance(Some("database upgrade"))
        .await
        .unwrap();
    let m = b.maintenance().await.unwrap().unwrap();
    assert_eq!(m.reason, "database upgrade");
    b.set_maintenance(None).await.unwrap();
    assert_eq!(c.a().maintenance().await.unwrap(), None);

    let late = MaintenanceWindow {
        starts_at: t0() + TimeDelta::days(2),
        ends_at: t0() + TimeDelta::days(2) + TimeDelta::hours(2),
        reason: "SKV certificate rollover".into(),
    };
    let early = MaintenanceWindow {
        starts_at: t0() + TimeDelta::days(1),
        ends_at: t0() + TimeDelta::days(1) + TimeDelta::hours(1),
        reason: "patching".into(),
    };
    let late_id = c.a().plan_maintenance(&late).await.unwrap();
    let early_id = b.plan_maintenance(&early).await.unwrap();
    let planned = c.a().maintenance_windows().await.unwrap();
    assert_eq!(
        planned
            .iter()
            .map(|p| (p.id, &p.window))
            .collect::<Vec<_>>(),
        vec![(early_id, &early), (late_id, &late)]
    );
    assert!(b.cancel_maintenance(late_id).await.unwrap());
    assert!(!c.a().cancel_maintenance(late_id).await.unwrap());
    assert_eq!(c.a().maintenance_windows().await.unwrap().len(), 1);
    c.finish().await;
}

async fn a_duplicate_sender_and_tx_id_is_recognised_across_nodes(c: Cluster) {
    let b = c.node().await;
    let day = Duration::from_secs(24 * 3600);
    assert_eq!(
        c.a().first_seen("5555555555", "tx-1", day).await.unwrap(),
        Seen::First
    );
    let Seen::Duplicate { first_seen } = b.first_seen("5555555555", "tx-1", day).await.unwrap()
    else {
        panic!("the second sight on another node is a duplicate")
    };
    assert!((chrono::Utc::now() - first_seen).num_minutes().abs() < 5);
    assert_eq!(
        b.first_seen("6666666666", "tx-1", day).await.unwrap(),
        Seen::First,
        "keyed by sender and tx.id"
    );
    // A record kept for no time at all no longer counts.
    assert_eq!(
        c.a()
            .first_seen("5555555555", "tx-2", Duration::ZERO)
            .await
            .unwrap(),
        Seen::First
    );
    assert_eq!(
        b.first_seen("5555555555", "tx-2", day).await.unwrap(),
        Seen::First
    );
    let far = chrono::Utc::now() + TimeDelta::days(2);
    assert!(b.sweep_state(far, day).await.unwrap() >= 3);
    assert_eq!(
        c.a().first_seen("5555555555", "tx-1", day).await.unwrap(),
        Seen::First,
        "swept"
    );
    c.finish().await;
}

/// One call per 100 s: the refusal cannot be a matter of timing.
const SLOW: RateLimit = RateLimit {
    per_second: 0.01,
    burst: 1,
};

async fn a_second_elt_call_within_the_second_on_another_node_is_refused(c: Cluster) {
    let b = c.node().await;
    assert_eq!(c.a().take_elt_call("vendor-1", SLOW).await.unwrap(), Ok(()));
    let wait = b
        .take_elt_call("vendor-1", SLOW)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(100),
        "{wait:?}"
    );
    assert_eq!(
        b.take_elt_call("vendor-2", SLOW).await.unwrap(),
        Ok(()),
        "per vendor"
    );
    // The terms' own figure, one per second: the second call at once is refused.
    let terms = RateLimit {
        per_second: 1.0,
        burst: 1,
    };
    assert_eq!(
        c.a().take_elt_call("vendor-3", terms).await.unwrap(),
        Ok(())
    );
    let wait = b
        .take_elt_call("vendor-3", terms)
        .await
        .unwrap()
        .unwrap_err();
    assert!(wait <= Duration::from_secs(1));
    c.finish().await;
}

async fn of_concurrent_elt_calls_on_two_nodes_exactly_one_gets_the_token(c: Cluster) {
    let b = c.node().await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let node = if i % 2 == 0 { c.a().clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            node.take_elt_call("vendor", SLOW).await.unwrap()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 1);
    c.finish().await;
}

async fn a_refilled_bucket_allows_the_next_call(c: Cluster) {
    let b = c.node().await;
    let fast = RateLimit {
        per_second: 10.0,
        burst: 2,
    };
    assert_eq!(c.a().take_elt_call("vendor", fast).await.unwrap(), Ok(()));
    assert_eq!(
        b.take_elt_call("vendor", fast).await.unwrap(),
        Ok(()),
        "burst 2"
    );
    // 0.3 s refills three tokens, capped at the burst: sleeping longer only helps.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.take_elt_call("vendor", fast).await.unwrap(), Ok(()));
    assert_eq!(c.a().take_elt_call("vendor", fast).await.unwrap(), Ok(()));
    c.finish().await;
}

async fn elt_retries_are_counted_across_nodes(c: Cluster) {
    let b = c.node().await;
    let limit = RetryLimit {
        max_retries: 5,
        window: Duration::from_secs(3600),
    };
    for retry in 0..=5 {
        let node = if retry % 2 == 0 { c.a() } else { &b };
        assert_eq!(
            node.record_elt_attempt("vendor", &["report-1", "digest-1"], limit)
                .await
                .unwrap(),
            Ok(retry)
        );
    }
    assert_eq!(
        b.record_elt_attempt("vendor", &["report-1"], limit)
            .await
            .unwrap(),
        Err(5),
        "the sixth retry"
    );
    assert!(
        c.a()
            .record_elt_attempt("vendor", &["digest-1"], limit)
            .await
            .unwrap()
            .is_err(),
        "same content, other id"
    );
    assert_eq!(
        b.record_elt_attempt("vendor", &["report-2"], limit)
            .await
            .unwrap(),
        Ok(0)
    );
    assert_eq!(
        b.record_elt_attempt("other vendor", &["report-1"], limit)
            .await
            .unwrap(),
        Ok(0),
        "counted per vendor"
    );
    let short = RetryLimit {
        max_retries: 0,
        window: Duration::ZERO,
    };
    assert_eq!(
        c.a()
            .record_elt_attempt("vendor", &["report-1"], short)
            .await
            .unwrap(),
        Ok(0),
        "outside the window nothing counts"
    );
    c.finish().await;
}

/// PostgreSQL only: the schema is versioned and a newer one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_migrated_by_a_newer_relay_is_refused() {
    let c = Cluster::postgres().await;
    let Engine::Postgres { schema } = &c.engine else {
        unreachable!()
    };
    let (client, conn) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let versions: Vec<i32> = client
        .query(
            &format!("SELECT version FROM {schema}.store_schema_version"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let every = relay_store::pg::migration_versions();
    assert_eq!(versions, every, "each migration once, in order");
    // A second node opening the same schema applies nothing again.
    drop(c.node().await);
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.store_schema_version (version) VALUES ({})",
                relay_store::SCHEMA_VERSION + 1
            ),
            &[],
        )
        .await
        .unwrap();
    let err = relay_store::PgStore::open(pg_options(schema), c.kek.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("newer than this relay"), "{err}");
    c.finish().await;
}

async fn an_elt_mandate_decided_through_one_node_holds_at_the_other(c: Cluster) {
    let b = c.node().await;
    let (vendor, anordnare) = (org("5566770011"), org("5566770029"));
    let revoked = Mandate {
        vendor,
        anordnare,
        granted: false,
    };
    assert!(c.a().set_mandate(revoked).await.unwrap());
    assert!(!b.set_mandate(revoked).await.unwrap(), "already revoked");
    assert_eq!(b.decisions().await.unwrap().mandates, vec![revoked]);
    let granted = Mandate {
        granted: true,
        ..revoked
    };
    assert!(b.set_mandate(granted).await.unwrap());
    let d = c.a().decisions().await.unwrap();
    assert_eq!(d.mandates, vec![granted]);
    assert!(d.unreadable.is_empty());
    c.finish().await;
}

async fn importing_mandates_twice_changes_nothing_and_never_overrides_a_decision(c: Cluster) {
    let b = c.node().await;
    let vendor = org("5566770011");
    let file = [
        Mandate {
            vendor,
            anordnare: org("5566770029"),
            granted: true,
        },
        Mandate {
            vendor,
            anordnare: org("5566778899"),
            granted: false,
        },
    ];
    // Decided through the admin API before the import: stays as decided.
    let decided = Mandate {
        granted: true,
        ..file[1]
    };
    c.a().set_mandate(decided).await.unwrap();
    assert_eq!(c.a().import_mandates(&file).await.unwrap(), 1);
    assert_eq!(b.import_mandates(&file).await.unwrap(), 0, "idempotent");
    assert_eq!(
        b.decisions().await.unwrap().mandates,
        vec![file[0], decided]
    );
    c.finish().await;
}

async fn an_accepted_elt_report_is_kept_once_for_every_node_and_the_oldest_are_forgotten(
    c: Cluster,
) {
    let b = c.node().await;
    let first = AcceptedReport {
        sha256: "aa".into(),
        receipt: "<kv:Mottagningsbekraftelse/>".into(),
    };
    assert_eq!(b.accepted_elt_report("report-1").await.unwrap(), None);
    assert!(c.a().keep_elt_report("report-1", &first).await.unwrap());
    let later = AcceptedReport {
        sha256: "bb".into(),
        receipt: "other".into(),
    };
    assert!(
        !b.keep_elt_report("report-1", &later).await.unwrap(),
        "the first kept stays"
    );
    assert_eq!(
        b.accepted_elt_report("report-1").await.unwrap(),
        Some(first.clone())
    );
    for id in ["report-2", "report-3"] {
        tokio::time::sleep(Duration::from_millis(20)).await;
        b.keep_elt_report(id, &later).await.unwrap();
    }
    assert_eq!(c.a().forget_elt_reports(2).await.unwrap(), 1);
    assert_eq!(c.a().forget_elt_reports(2).await.unwrap(), 0);
    assert_eq!(
        b.accepted_elt_report("report-1").await.unwrap(),
        None,
        "oldest"
    );
    assert!(b.accepted_elt_report("report-3").await.unwrap().is_some());
    c.finish().await;
}

/// PostgreSQL: rows nobody could write through the relay (an empty or unknown
/// product, a bad organisation number) are reported and skipped; the rest is
/// read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_decision_rows_are_reported_and_skipped() {
    let c = Cluster::postgres().await;
    let Engine::Postgres { schema } = &c.engine else {
        unreachable!()
    };
    let sundsvall = org("2120002411");
    c.a().suspend(sundsvall, &Scope::All).await.unwrap();
    c.a().withdraw("CSN", sundsvall).await.unwrap();
    let (client, conn) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "INSERT INTO {schema}.suspensions (org, scope) VALUES \
               ('2120002411', 'product:'), ('2120002411', 'product:SSBTEK'), ('12345', '*'); \
             INSERT INTO {schema}.withdrawals (provider, municipality) VALUES ('FK', 'x'); \
             INSERT INTO {schema}.elt_mandates (vendor, anordnare, granted) VALUES ('5566770011', '1', true);"
        ))
        .await
        .unwrap();
    let d = c.node().await.decisions().await.unwrap();
    assert_eq!(d.suspensions, vec![(sundsvall, Scope::All)]);
    assert_eq!(d.withdrawals, vec![("CSN".to_owned(), sundsvall)]);
    assert!(d.mandates.is_empty());
    assert_eq!(d.unreadable.len(), 5, "{:?}", d.unreadable);
    let shown = format!("{:?}", d.unreadable);
    assert!(
        shown.contains("product:SSBTEK") && !shown.contains("12345"),
        "{shown}"
    );
    assert_eq!(
        c.a().suspensions().await.unwrap(),
        vec![(sundsvall, Scope::All)]
    );
    c.finish().await;
}

async fn elt_attempts_older_than_the_window_are_swept(c: Cluster) {
    let b = c.node().await;
    let day = Duration::from_secs(24 * 3600);
    let limit = RetryLimit {
        max_retries: 5,
        window: day,
    };
    for n in 0..3 {
        assert_eq!(
            c.a()
                .record_elt_attempt("vendor", &["report", "digest"], limit)
                .await
                .unwrap(),
            Ok(n)
        );
    }
    // Nothing is old enough yet.
    assert_eq!(b.sweep_state(chrono::Utc::now(), day).await.unwrap(), 0);
    let far = chrono::Utc::now() + TimeDelta::days(2);
    assert_eq!(
        b.sweep_state(far, day).await.unwrap(),
        6,
        "3 attempts x 2 keys"
    );
    assert_eq!(b.sweep_state(far, day).await.unwrap(), 0);
    c.finish().await;
}
