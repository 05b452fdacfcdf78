//! The admin listener answers only to its own names, and the audit trail names
//! the operator the listener authenticated, never whoever a header says.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::time::{Duration, Instant};

use shs_tests::*;

async fn send(method: reqwest::Method, url: &str, host: Option<&str>) -> (u16, String) {
    let mut r = reqwest::Client::new()
        .request(method, url)
        .header("X-SHS-Admin", "1")
        .header("X-Operator", "mallory");
    if let Some(h) = host {
        r = r.header(reqwest::header::HOST, h);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_host_is_refused_by_the_admin_listener_and_its_own_names_are_not() {
    let stack = Stack::start().await;
    let admin = stack.demo().info.admin["url"].clone();
    let port = admin.rsplit(':').next().unwrap().to_owned();
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    // A page that rebound its own name to the admin port (DNS rebinding).
    for host in [
        "rebind.attacker.example",
        "rebind.attacker.example:9100",
        "10.1.2.3",
    ] {
        for path in ["/admin/status", "/metrics", "/admin/console", "/"] {
            let (status, body) = send(get.clone(), &format!("{admin}{path}"), Some(host)).await;
            assert_eq!(status, 403, "{host} {path}: {body}");
            assert!(!body.contains("in_flight"), "{body}");
        }
        let (status, _) = send(
            post.clone(),
            &format!("{admin}/admin/maintenance/on"),
            Some(host),
        )
        .await;
        assert_eq!(status, 403, "{host}");
    }
    let (_, state) = send(get.clone(), &format!("{admin}/admin/maintenance"), None).await;
    assert_eq!(state.trim(), "maintenance: off", "nothing changed");
    let (_, metrics) = send(get.clone(), &format!("{admin}/metrics"), None).await;
    assert!(
        metrics.contains(
            "shs_relay_rejections_total{route=\"admin\",by=\"caller\",code=\"foreign_host\"}"
        ),
        "{metrics}"
    );
    // The loopback names and addresses, with and without the port.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_owned(),
        format!("[::1]:{port}"),
        "LOCALHOST.".to_owned(),
    ] {
        let (status, body) = send(get.clone(), &format!("{admin}/admin/status"), Some(&host)).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    // Probes by IP need no configuration.
    let (status, _) = send(
        get.clone(),
        &format!("{admin}/livez"),
        Some("10.1.2.3:9100"),
    )
    .await;
    assert_eq!(status, 200);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_admin_names_are_accepted() {
    let mut stack = Stack::start().await;
    // `[admin]` changes need a restart.
    let config = stack.demo().info.relay.config.clone();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("[admin]"), "{text}");
    let text = text.replacen(
        "[admin]\n",
        "[admin]\nallowed_hosts = [\"relay1.mgmt.example.se\"]\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    stack.kill_relay().await;
    stack.restart_relay().await;
    let admin = stack.demo().info.admin["url"].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = send(
            reqwest::Method::GET,
            &format!("{admin}/admin/status"),
            Some("relay1.mgmt.example.se:9100"),
        )
        .await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = send(
        reqwest::Method::GET,
        &format!("{admin}/admin/status"),
        Some("relay2.mgmt.example.se"),
    )
    .await;
    assert_eq!(status, 403);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_loopback_listener_the_trail_names_loopback_and_x_operator_only_as_a_note() {
    let stack = Stack::start().await;
    let admin = stack.demo().info.admin["url"].clone();
    let (status, body) = send(
        reqwest::Method::POST,
        &format!("{admin}/admin/maintenance/on"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let file = stack.demo().info.audit["file"].clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let who: Vec<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["kind"] == "admin" && v["action"] == "maintenance_on")
            .map(|v| v["who"].as_str().unwrap_or_default().to_owned())
            .collect();
        if let Some(who) = who.first() {
            assert_eq!(who, "loopback (X-Operator: mallory)");
            break;
        }
        assert!(Instant::now() < deadline, "not audited: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.stop().await;
}
