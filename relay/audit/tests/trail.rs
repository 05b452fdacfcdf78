//! The audit trail end to end: writing through the background writer, rotation,
//! and finding who asked about a person across files and keys.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod support;

use std::path::Path;
use std::time::Duration;

use relay_audit::{
    AdminRecord, AuditConfig, AuditError, AuditLog, AuditRecord, DeletionRecord, Fsync,
    OutputFormat, PseudonymKey, audit_files, run_who_asked, who_asked,
};
use support::*;

fn all_text(dir: &Path) -> String {
    audit_files(dir)
        .unwrap()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[tokio::test]
async fn records_carry_pseudonyms_and_never_the_personnummer() {
    let dir = tempfile::tempdir().unwrap();
    let key = PseudonymKey::from_bytes(&[3u8; 32]);
    let config = AuditConfig {
        fsync: Fsync::EveryRecord,
        ..AuditConfig::new(dir.path())
    };
    let (log, task) = AuditLog::open(config).unwrap();
    let writer = task.spawn();
    log.record(request(
        &key,
        "2026-11-02T08:00:00Z",
        "tx-1",
        &[tolvan(), other()],
        1200,
        "answered",
        &[("FK", "data", 900), ("CSN", "timeout", 7000)],
    ))
    .await
    .unwrap();
    log.record(DeletionRecord {
        time: at("2026-11-02T08:00:02Z"),
        tx_id: "tx-1".into(),
        reason: "answered".into(),
    })
    .await
    .unwrap();
    log.record(AdminRecord {
        time: at("2026-11-02T09:00:00Z"),
        who: "operator:drift-1".into(),
        action: "suspend".into(),
        target: "2120002411".into(),
    })
    .await
    .unwrap();
    log.flush().await.unwrap();
    drop(log);
    let stats = writer.await.unwrap();
    assert_eq!(stats.written, 3);
    assert_eq!(stats.dropped, 0);

    let text = all_text(dir.path());
    assert_eq!(text.lines().count(), 3);
    for p in [tolvan(), other()] {
        assert!(!text.contains(p.as_str()), "12-digit form in the file");
        assert!(!text.contains(p.short_form()), "10-digit form in the file");
        let dashed = format!("{}-{}", &p.short_form()[..6], &p.short_form()[6..]);
        assert!(!text.contains(&dashed), "dashed form in the file");
        assert!(text.contains(&key.pseudonym(&p)), "pseudonym missing");
    }
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "request");
    assert_eq!(first["time"], "2026-11-02T08:00:00.000Z");
    assert_eq!(first["persons_count"], 2);
    assert_eq!(first["key_id"], key.id());
    assert_eq!(first["result"], "answered");
    assert_eq!(first["channel"], "shs");
    assert_eq!(first["providers"][1]["outcome"], "timeout");
    let lines: Vec<AuditRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(matches!(lines[1], AuditRecord::Deletion(_)));
    assert!(matches!(lines[2], AuditRecord::Admin(_)));
}

#[tokio::test]
async fn size_rotation_starts_new_files_and_who_asked_reads_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let key = PseudonymKey::from_bytes(&[4u8; 32]);
    let config = AuditConfig {
        // About two request records per file.
        max_file_bytes: 1500,
        fsync: Fsync::Batch { max_records: 4 },
        ..AuditConfig::new(dir.path())
    };
    let (log, task) = AuditLog::open(config).unwrap();
    let writer = task.spawn();
    for i in 0..10 {
        let who = if i % 2 == 0 { tolvan() } else { other() };
        log.record(request(
            &key,
            &format!("2026-11-02T08:00:{i:02}Z"),
            &format!("tx-{i}"),
            &[who],
            100,
            "answered",
            &[("FK", "data", 90)],
        ))
        .await
        .unwrap();
    }
    drop(log);
    let stats = writer.await.unwrap();
    assert_eq!(stats.written, 10);
    assert!(stats.rotations >= 3, "{stats:?}");

    let files = audit_files(dir.path()).unwrap();
    assert_eq!(files.len() as u64, stats.rotations + 1);
    assert!(files.last().unwrap().ends_with("audit.jsonl"));
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 1500);
    }

    let report = who_asked(&files, &[key], &tolvan(), None, None).unwrap();
    let txs: Vec<&str> = report.hits.iter().map(|h| h.tx_id.as_str()).collect();
    assert_eq!(txs, ["tx-0", "tx-2", "tx-4", "tx-6", "tx-8"]);
    assert_eq!(report.read.files_read, files.len());
    assert_eq!(report.read.records, 10);
}

/// Two key periods: key A until the end of October, key B from November.
fn two_periods(dir: &Path) -> (PseudonymKey, PseudonymKey) {
    let a = PseudonymKey::from_bytes(&[0xa; 32]);
    let b = PseudonymKey::from_bytes(&[0xb; 32]);
    let calls = [("FK", "data", 100)];
    write_jsonl(
        &dir.join("audit-20261101-000000.jsonl"),
        &[
            request(
                &a,
                "2026-10-05T08:00:00Z",
                "a1",
                &[tolvan()],
                10,
                "answered",
                &calls,
            )
            .into(),
            request(
                &a,
                "2026-10-06T08:00:00Z",
                "a2",
                &[other()],
                10,
                "answered",
                &calls,
            )
            .into(),
            request(
                &a,
                "2026-10-07T08:00:00Z",
                "a3",
                &[other(), tolvan()],
                10,
                "answered",
                &calls,
            )
            .into(),
            request(
                &a,
                "2026-10-08T08:00:00Z",
                "a4",
                &[tolvan()],
                10,
                "refused:no_agreement",
                &[],
            )
            .into(),
        ],
    );
    let mut current = String::new();
    for r in [
        request(
            &b,
            "2026-11-02T08:00:00Z",
            "b1",
            &[third()],
            10,
            "answered",
            &calls,
        ),
        request(
            &b,
            "2026-11-03T08:00:00Z",
            "b2",
            &[tolvan()],
            10,
            "answered",
            &calls,
        ),
        request(
            &b,
            "2026-11-04T08:00:00Z",
            "b3",
            &[other()],
            10,
            "error",
            &calls,
        ),
    ] {
        current.push_str(&serde_json::to_string(&AuditRecord::from(r)).unwrap());
        current.push('\n');
    }
    // A crash tore the last line.
    current.push_str(r#"{"kind":"request","time":"2026-11-05T0"#);
    std::fs::write(dir.join("audit.jsonl"), current).unwrap();
    (a, b)
}

#[test]
fn who_asked_finds_exactly_the_requests_about_the_person_under_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_periods(dir.path());
    let files = audit_files(dir.path()).unwrap();
    let keys = [a.clone(), b.clone()];

    let txs = |p, from, to, keys: &[PseudonymKey]| {
        who_asked(&files, keys, &p, from, to)
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.tx_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(txs(tolvan(), None, None, &keys), ["a1", "a3", "a4", "b2"]);
    assert_eq!(txs(other(), None, None, &keys), ["a2", "a3", "b3"]);
    assert_eq!(txs(third(), None, None, &keys), ["b1"]);

    // from inclusive, to exclusive.
    let from = Some(at("2026-10-07T08:00:00Z"));
    let to = Some(at("2026-11-03T08:00:00Z"));
    assert_eq!(txs(tolvan(), from, to, &keys), ["a3", "a4"]);
    assert_eq!(txs(tolvan(), from, None, &keys), ["a3", "a4", "b2"]);
    assert_eq!(txs(tolvan(), None, to, &keys), ["a1", "a3", "a4"]);

    // One key finds its period and says which key the rest needs.
    let only_a = who_asked(&files, std::slice::from_ref(&a), &tolvan(), None, None).unwrap();
    let only_a_txs: Vec<&str> = only_a.hits.iter().map(|h| h.tx_id.as_str()).collect();
    assert_eq!(only_a_txs, ["a1", "a3", "a4"]);
    assert_eq!(only_a.unsearched_by_key.get(b.id()), Some(&3));

    let hit = &who_asked(&files, &keys, &tolvan(), None, None)
        .unwrap()
        .hits[2];
    assert_eq!(hit.caller_org, "2120002411");
    assert_eq!(hit.case_worker, "handl-17");
    assert_eq!(hit.case_id, "case-a4");
    assert_eq!(hit.product, "ssbtek");
    assert_eq!(hit.purpose, "ekonomiskt bistånd");
    assert_eq!(hit.result, "refused:no_agreement");
}

#[test]
fn a_torn_last_line_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_periods(dir.path());
    let files = audit_files(dir.path()).unwrap();
    let report = who_asked(&files, &[a, b], &tolvan(), None, None).unwrap();
    assert_eq!(report.read.skipped_lines, 1);
    assert_eq!(report.read.records, 7);
}

#[test]
fn files_closed_before_the_period_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_periods(dir.path());
    let files = audit_files(dir.path()).unwrap();
    let report = who_asked(
        &files,
        &[a, b],
        &tolvan(),
        Some(at("2026-11-01T00:00:01Z")),
        None,
    )
    .unwrap();
    assert_eq!(report.read.files_skipped, 1);
    assert_eq!(report.read.files_read, 1);
    assert_eq!(report.hits.len(), 1);
}

#[test]
fn the_who_asked_command_reads_a_directory_and_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    std::fs::create_dir(&audit).unwrap();
    let (a, b) = two_periods(&audit);
    let key_a = dir.path().join("a.key");
    let key_b = dir.path().join("b.key");
    std::fs::write(&key_a, [0xa; 32]).unwrap();
    std::fs::write(&key_b, [0xb; 32]).unwrap();
    assert_eq!(PseudonymKey::load(&key_a).unwrap().id(), a.id());
    assert_eq!(PseudonymKey::load(&key_b).unwrap().id(), b.id());

    let md = run_who_asked(
        std::slice::from_ref(&audit),
        &[key_a.clone(), key_b.clone()],
        "121212+1212",
        Some("2026-10-06"),
        Some("2026-11-03"),
        OutputFormat::Md,
    )
    .unwrap();
    assert!(md.contains("| case-a3 |"), "{md}");
    assert!(md.contains("| case-a4 |"), "{md}");
    assert!(md.contains("| case-b2 |"), "{md}");
    assert!(!md.contains("case-a1"), "{md}");
    assert!(md.contains("1 line(s) were not records"), "{md}");
    assert!(!md.contains("1212121212"), "the person must not be echoed");

    let json = run_who_asked(
        &[audit],
        &[key_a],
        "19121212-1212",
        None,
        None,
        OutputFormat::Json,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["hits"].as_array().unwrap().len(), 3);
    assert_eq!(v["unsearched_by_key"][b.id()], 3);
}

#[tokio::test]
async fn a_full_queue_drops_with_an_error_and_a_count_never_silently() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuditConfig {
        queue_capacity: 1,
        max_wait: Duration::from_millis(50),
        ..AuditConfig::new(dir.path())
    };
    let (log, task) = AuditLog::open(config).unwrap();
    let deletion = |tx: &str| DeletionRecord {
        time: at("2026-11-02T08:00:00Z"),
        tx_id: tx.into(),
        reason: "answered".into(),
    };
    // The writer is not running yet: the first record fills the queue.
    log.record(deletion("kept")).await.unwrap();
    let err = log.record(deletion("dropped")).await.unwrap_err();
    assert!(matches!(err, AuditError::Dropped(_)), "{err}");
    assert_eq!(log.stats().dropped, 1);

    let writer = task.spawn();
    log.record(deletion("after")).await.unwrap();
    drop(log);
    let stats = writer.await.unwrap();
    assert_eq!(stats.written, 2);
    assert_eq!(stats.dropped, 1);
    let text = all_text(dir.path());
    assert!(text.contains("kept") && text.contains("after") && !text.contains("dropped"));
}

#[tokio::test]
async fn a_stopped_writer_refuses_records_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (log, task) = AuditLog::open(AuditConfig::new(dir.path())).unwrap();
    drop(task);
    let err = log
        .record(DeletionRecord {
            time: at("2026-11-02T08:00:00Z"),
            tx_id: "t".into(),
            reason: "answered".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, AuditError::Closed));
    assert_eq!(log.stats().dropped, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_write_whole_lines_and_nothing_is_lost() {
    for fsync in [Fsync::EveryRecord, Fsync::Batch { max_records: 16 }] {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig {
            fsync,
            queue_capacity: 8,
            max_file_bytes: 4096,
            ..AuditConfig::new(dir.path())
        };
        let (log, task) = AuditLog::open(config).unwrap();
        let writer = task.spawn();
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        log.record(DeletionRecord {
                            time: at("2026-11-02T08:00:00Z"),
                            tx_id: format!("t{t}-{i}"),
                            reason: "answered".into(),
                        })
                        .await
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        drop(log);
        let stats = writer.await.unwrap();
        assert_eq!(
            (stats.written, stats.dropped, stats.write_errors),
            (400, 0, 0)
        );
        let text = all_text(dir.path());
        let mut txs: Vec<String> = text
            .lines()
            .map(|l| match serde_json::from_str::<AuditRecord>(l).unwrap() {
                AuditRecord::Deletion(d) => d.tx_id,
                other => panic!("{other:?}"),
            })
            .collect();
        txs.sort();
        txs.dedup();
        assert_eq!(txs.len(), 400, "{fsync:?}");
    }
}

#[tokio::test]
async fn the_writer_deletes_closed_files_past_retention_when_it_opens_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // Closed in 2000: far past 13 months. Closed yesterday: kept.
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let recent = format!("audit-{}.jsonl", yesterday.format("%Y%m%d-%H%M%S"));
    for name in ["audit-20000101-000000.jsonl", recent.as_str(), "keep.txt"] {
        std::fs::write(dir.path().join(name), "{}\n").unwrap();
    }
    let (log, task) = AuditLog::open(AuditConfig::new(dir.path())).unwrap();
    assert_eq!(log.stats().deleted_files, 1);
    let writer = task.spawn();
    drop(log);
    writer.await.unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [recent, "audit.jsonl".to_owned(), "keep.txt".to_owned()]
    );
    let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let rec: AuditRecord = serde_json::from_str(text.trim()).unwrap();
    let AuditRecord::Admin(a) = rec else {
        panic!("{rec:?}")
    };
    assert_eq!(
        (a.who.as_str(), a.action.as_str(), a.target.as_str()),
        (
            relay_audit::RETENTION_WHO,
            "audit_file_deleted",
            "audit-20000101-000000.jsonl"
        )
    );
}
