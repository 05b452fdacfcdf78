//! The audit trail fails closed: no answer leaves before its record is on disk
//! (`[audit] on_failure = "refuse"`, the default), a trail that cannot be
//! written refuses answers, counts, and makes the node not ready; a crash loses
//! no record of an answer that went out.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relay_demo::NODE_ORG;
use relay_ssbtek::Slot;
use shs_tests::*;

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A bin directory beside the demo's whose `shs-relay` runs the real one
/// without root's power to ignore file permissions (CAP_DAC_OVERRIDE and
/// friends dropped with `setpriv`), so a read-only directory is read-only to it
/// even when the tests run as root; every other binary is the real one.
fn bin_dir_honouring_permissions(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let real = relay_demo::default_bin_dir().expect("bin dir");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for entry in std::fs::read_dir(&real).unwrap().flatten() {
        let name = entry.file_name();
        if name != "shs-relay" && entry.path().is_file() {
            std::os::unix::fs::symlink(entry.path(), bin.join(&name)).unwrap();
        }
    }
    let relay = real.join("shs-relay");
    let script = format!(
        "#!/bin/sh\nif [ \"$(id -u)\" = 0 ]; then\n  exec setpriv --bounding-set=-dac_override,-dac_read_search,-fowner --inh-caps=-dac_override,-dac_read_search,-fowner -- '{r}' \"$@\"\nfi\nexec '{r}' \"$@\"\n",
        r = relay.display()
    );
    std::fs::write(bin.join("shs-relay"), script).unwrap();
    std::fs::set_permissions(
        bin.join("shs-relay"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    bin
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn audit_file(stack: &Stack) -> PathBuf {
    stack.demo().info.audit["file"].clone()
}

/// The tx ids of the `answered` request records in every file of the trail.
fn answered_in_trail(dir: &Path) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if v["kind"] == "request" && v["result"] == "answered" {
                ids.insert(v["tx_id"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_audit_directory_refuses_answers_counts_and_makes_the_node_unready_until_it_is_writable()
 {
    let mut stack = Stack::start_with(|o| {
        o.bin_dir = bin_dir_honouring_permissions(&o.dir);
    })
    .await;
    let q = question("191212121212", "2120002411", &[Slot::Tns], false);
    let ok = ask(&stack, "2120002411", std::slice::from_ref(&q)).await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));

    let file = audit_file(&stack);
    let dir = file.parent().unwrap().to_owned();
    stack.kill_relay().await;
    set_mode(&file, 0o400);
    set_mode(&dir, 0o500);
    stack.restart_relay().await;
    let admin = stack.demo().info.admin["url"].clone();

    // SHS: a relay-side error (500, OtherError) naming the audit trail; no answer.
    let refused = ask(&stack, "2120002411", std::slice::from_ref(&q)).await;
    assert_eq!(
        refused.status,
        500,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(refused.errorcode.as_deref(), Some("OtherError"));
    let text = String::from_utf8_lossy(&refused.body);
    assert!(text.contains("audit trail"), "{text}");
    assert!(!text.contains("Tolvan") && !text.contains("191212121212"));

    // ELT: the receipt is held back too (ELT-RELAY, the relay's fault).
    let report = stack.dir().join("report.xml");
    let out = shs_command(&stack)
        .args(["elt", "example", "--person", "19121212-1212", "--out"])
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = shs_command(&stack)
        .args(["elt", "submit", "--in"])
        .arg(&report)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("ELT-RELAY") && said.contains("audit trail"),
        "{said}"
    );

    let (status, body) = get(&format!("{admin}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("audit trail"), "{body}");
    let (_, metrics) = get(&format!("{admin}/metrics")).await;
    assert!(
        counter(&metrics, "shs_relay_audit_write_errors_total") >= 2.0,
        "{metrics}"
    );

    // Writable again: ready again without a restart, and answers carry records.
    set_mode(&dir, 0o700);
    set_mode(&file, 0o600);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(&format!("{admin}/readyz")).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still not ready: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let spec = LabelSpec::synch_request("2120002411", NODE_ORG, relay_demo::SSBTEK_PRODUCT, 1);
    let reply = post(
        &stack.client("2120002411"),
        stack.relay_url(),
        shs_message(&spec.to_xml(), &[("text/xml; charset=UTF-8", &q)]),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    // The record is on disk before the answer left: no waiting here.
    assert!(answered_in_trail(&dir).contains(&spec.tx_id));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_kill_9_under_load_every_request_that_got_an_answer_has_its_record() {
    let mut stack = Stack::start().await;
    let client = stack.client("2120002411");
    let url = stack.relay_url().to_owned();
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let q = question("191212121212", "2120002411", &[Slot::Tns, Slot::Csn], false);
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (client, url, answered, stop, q) = (
                client.clone(),
                url.clone(),
                answered.clone(),
                stop.clone(),
                q.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let spec = LabelSpec::synch_request(
                        "2120002411",
                        NODE_ORG,
                        relay_demo::SSBTEK_PRODUCT,
                        1,
                    );
                    let message = shs_message(&spec.to_xml(), &[("text/xml; charset=UTF-8", &q)]);
                    let Ok(r) = client
                        .post(format!("{url}/shs/rs"))
                        .header("Content-Type", "message/rfc822")
                        .body(message)
                        .send()
                        .await
                    else {
                        break;
                    };
                    // An answer counts once its whole body has arrived.
                    if r.status() == 200 && r.bytes().await.is_ok() {
                        answered.lock().unwrap().push(spec.tx_id);
                    }
                }
            })
        })
        .collect();
    // Load runs until a good number of answers went out, then the relay dies.
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.lock().unwrap().len() < 200 {
        assert!(Instant::now() < deadline, "too few answers under load");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack.kill_relay().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let answered: Vec<String> = answered.lock().unwrap().clone();
    let file = audit_file(&stack);
    let in_trail = answered_in_trail(file.parent().unwrap());
    let missing: Vec<&String> = answered.iter().filter(|t| !in_trail.contains(*t)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests have no record: {missing:?}",
        missing.len(),
        answered.len()
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_personnummer_typed_into_free_text_reaches_the_trail_only_as_its_pseudonym() {
    use relay_ssbtek::{Ingivare, Period, QuestionBuilder};
    let stack = Stack::start().await;
    let key =
        relay_audit::PseudonymKey::load(Path::new(&stack.demo().info.audit["key_file"])).unwrap();
    let today = chrono::Local::now().date_naive();
    // Each written shape, with and without century, hyphen or plus; a
    // personnummer and a samordningsnummer.
    let shapes = [
        ("191212121212", "191212121212"),
        ("19121212-1212", "191212121212"),
        ("1212121212", "201212121212"),
        ("121212-1212", "201212121212"),
        ("121212+1212", "191212121212"),
        ("202601622380", "202601622380"),
        ("260162-2380", "202601622380"),
    ];
    for (written, twelve) in shapes {
        let q = QuestionBuilder::new(
            relay_ident::Personnummer::parse("19030818-9802").unwrap(),
            Ingivare::new(
                relay_ident::Organisationsnummer::parse("2120002411").unwrap(),
                "Sundsvalls kommun",
                format!("hl för {written}").as_str(),
            ),
            &format!("ARENDE {written}"),
            Period::new(today - chrono::Months::new(1), today).unwrap(),
        )
        .syfte(&format!("bistånd till {written}"))
        .include(Slot::Tns)
        .build()
        .unwrap()
        .to_xml(true)
        .to_vec();
        let reply = ask(&stack, "2120002411", &[q]).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let text = std::fs::read_to_string(audit_file(&stack)).unwrap();
        let last = text
            .lines()
            .rev()
            .find(|l| l.contains("\"kind\":\"request\""))
            .unwrap();
        let record: serde_json::Value = serde_json::from_str(last).unwrap();
        let person = relay_ident::Personnummer::parse(twelve).unwrap();
        let pseudonym = format!("pseudonym:{}", key.pseudonym(&person));
        assert_eq!(
            record["case_worker"],
            format!("hl för {pseudonym}"),
            "{written}"
        );
        assert_eq!(
            record["case_id"],
            format!("ARENDE {pseudonym}"),
            "{written}"
        );
        assert_eq!(
            record["purpose"],
            format!("bistånd till {pseudonym}"),
            "{written}"
        );
        assert!(!text.contains(written), "{written} in clear: {last}");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pseudonym_key_rotates_online_and_who_asked_finds_a_person_under_every_key() {
    use relay_ssbtek::{Ingivare, Period, QuestionBuilder};
    let stack = Stack::start().await;
    let relay = relay_demo::default_bin_dir().unwrap().join("shs-relay");
    let config = stack.demo().info.relay.config.clone();
    let admin = stack.demo().info.admin["url"].clone();
    let today = chrono::Local::now().date_naive();
    let ask_in = |case: &'static str| {
        QuestionBuilder::new(
            relay_ident::Personnummer::parse("19121212-1212").unwrap(),
            Ingivare::new(
                relay_ident::Organisationsnummer::parse("2120002411").unwrap(),
                "Sundsvalls kommun",
                "hl-anna",
            ),
            case,
            Period::new(today - chrono::Months::new(1), today).unwrap(),
        )
        .include(Slot::Tns)
        .build()
        .unwrap()
        .to_xml(true)
        .to_vec()
    };
    let last_key_id = || {
        let text = std::fs::read_to_string(audit_file(&stack)).unwrap();
        let last = text
            .lines()
            .rev()
            .find(|l| l.contains("\"kind\":\"request\""))
            .unwrap()
            .to_owned();
        let v: serde_json::Value = serde_json::from_str(&last).unwrap();
        v["key_id"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        ask(&stack, "2120002411", &[ask_in("CASE-BEFORE")])
            .await
            .status,
        200
    );
    let before = last_key_id();

    let out = std::process::Command::new(&relay)
        .args(["audit", "rotate-key", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(&before), "{said}");
    let r = reqwest::Client::new()
        .post(format!("{admin}/admin/reload"))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        ask(&stack, "2120002411", &[ask_in("CASE-AFTER")])
            .await
            .status,
        200
    );
    let after = last_key_id();
    assert_ne!(before, after, "new records carry the new key's id");
    assert!(said.contains(&after), "{said}");

    // Who asked about Tolvan: both requests, each found under its own key.
    let out = std::process::Command::new(&relay)
        .args([
            "audit",
            "who-asked",
            "--person",
            "19121212-1212",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("CASE-BEFORE") && text.contains("CASE-AFTER"),
        "{text}"
    );
    stack.stop().await;
}
