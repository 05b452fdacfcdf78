//! The operators' console in a real browser: headless Chromium (Debian's
//! `chromium`) loads `/` on the demo stack's admin listener; the test reads the
//! rendered DOM (a row per provider, the relay's state, a disturbance once two
//! agencies are down in the simulator with the status feed's incident, an
//! operator decision made through the admin API) and keeps a screenshot in `target/tmp/console.png`.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use relay_demo::{NODE_ORG, SSBTEK_PRODUCT};
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
const AGENCIES: [&str; 7] = ["AF", "CSN", "FK", "MIV", "SKV", "SO", "TNS"];

/// Runs headless Chromium with `args` and `url`; its standard output.
fn chromium(profile: &Path, args: &[&str], url: &str) -> String {
    let out = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium (Debian's `chromium`) must be installed: apt-get install chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dom(profile: &Path, url: &str) -> String {
    chromium(profile, &["--dump-dom"], url)
}

async fn ask(stack: &Stack) {
    let spec = LabelSpec::synch_request(SUNDSVALL, NODE_ORG, SSBTEK_PRODUCT, 1);
    let question = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../relay/ssbtek/tests/fixtures/questions/sundsvall_all_slots.xml"),
    )
    .expect("the all-slots question fixture");
    let r = stack
        .client(SUNDSVALL)
        .post(format!("{}/shs/rs", stack.relay_url()))
        .header("Content-Type", "message/rfc822")
        .body(shs_message(&spec.to_xml(), &[("text/xml", &question)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_providers_the_relay_and_a_disturbance_in_a_real_browser() {
    let stack = Stack::start_with(|o| o.probe_extra.push_str("interval_s = 1\n")).await;
    let admin = stack.demo().info.admin["url"].clone();
    let profile = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        ask(&stack).await;
    }

    // Every provider has its row, SERVING, with the calls just made.
    let page = dom(profile.path(), &format!("{admin}/"));
    for id in AGENCIES {
        assert!(
            page.contains(&format!(r#"data-provider="{id}" data-serving="true""#)),
            "no serving row for {id}:\n{page}"
        );
    }
    assert!(
        page.contains(r#"id="disturbance" data-state="none""#),
        "{page}"
    );
    assert!(page.contains(r#"id="requests-chart""#), "{page}");
    assert!(page.contains("<rect"), "the chart has the requests: {page}");
    assert!(page.contains(r#"id="service-levels""#), "{page}");
    assert!(
        page.contains(r#"href="/parties""#),
        "the console links to the Parties page: {page}"
    );
    assert!(
        !page.contains("191212121212") && !page.contains("19121212"),
        "no personnummer on the page"
    );

    // An operator decision through the admin API: refused without the admin
    // header or from another site, then made, then on the page.
    let http = reqwest::Client::new();
    let url = format!("{admin}/admin/suspend?org=2120000142&product=ssbtek");
    let r = http.post(&url).send().await.unwrap();
    assert_eq!(r.status(), 403, "a plain form post is not an admin call");
    let r = http
        .post(&url)
        .header("X-SHS-Admin", "console")
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a cross-site request is refused");
    let r = http
        .post(&url)
        .header("X-SHS-Admin", "console")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Two agencies down in the simulator: a disturbance, live on the page.
    let r = http
        .put(format!("{}/admin/scenario", stack.demo().info.sim.admin))
        .body("[agency.CSN]\ndown = true\n\n[agency.TNS]\ndown = true\n")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(90);
    let page = loop {
        ask(&stack).await;
        let page = dom(profile.path(), &format!("{admin}/"));
        if page.contains(r#"id="disturbance" data-state="ongoing""#) {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "no disturbance on the console:\n{page}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let state = page
        .split(r#"id="disturbance""#)
        .nth(1)
        .and_then(|s| s.split("</div>").next())
        .unwrap_or_default();
    assert!(
        state.contains("CSN") && state.contains("TNS") && !state.contains("SKV"),
        "{state}"
    );
    assert!(
        page.contains(r#"data-org="2120000142""#),
        "the suspension is listed: {page}"
    );

    // The JSON behind the page says the same.
    let v: serde_json::Value = http
        .get(format!("{admin}/admin/console"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["providers"].as_array().map(Vec::len), Some(7), "{v}");
    assert!(
        v["relay"]["disturbance"]["providers"]
            .to_string()
            .contains("CSN"),
        "{v}"
    );
    assert_eq!(
        v["relay"]["requests_per_minute"].as_array().map(Vec::len),
        Some(60)
    );

    // The status feed's incident and components, with an update form.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: serde_json::Value = http
            .get(format!("{admin}/admin/console"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let down = v["status_feed"]["components"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["id"] == "ssbtek-csn" && c["status"] != "operational")
        });
        if down && v["incidents"][0]["status"] == "investigating" {
            break;
        }
        assert!(Instant::now() < deadline, "no incident on the console: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let page = dom(profile.path(), &format!("{admin}/"));
    assert!(page.contains(r#"id="status-feed""#), "{page}");
    assert!(page.contains(r#"data-component="ssbtek-csn""#), "{page}");
    assert!(
        page.contains(r#"data-status="investigating""#) && page.contains("/update"),
        "the open incident with its update form: {page}"
    );

    // A screenshot as the test's artefact.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        profile.path(),
        &[
            "--window-size=1280,1800",
            &format!("--screenshot={}", shot.display()),
        ],
        &format!("{admin}/"),
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    eprintln!("console screenshot: {}", shot.display());
    stack.stop().await;
}
