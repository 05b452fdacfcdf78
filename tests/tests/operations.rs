//! The operator's view: metrics after known traffic, readiness and maintenance.

use std::time::{Duration, Instant};

use relay_server::demo::{NODE_ORG, PING_PRODUCT};
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

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_sees_traffic_in_metrics_and_can_drain_the_node() {
    let stack = Stack::start().await;
    let admin = stack.demo().info.admin["url"].clone();
    let relay = stack.relay_url().to_owned();
    let sundsvall = stack.client("2120002411");

    // Known traffic: two pings answered, one refused (from ≠ certificate).
    for _ in 0..2 {
        let spec = LabelSpec::synch_request("2120002411", NODE_ORG, PING_PRODUCT, 1);
        let r = sundsvall
            .post(format!("{relay}/shs/rs"))
            .body(shs_message(&spec.to_xml(), &[("text/plain", b"x")]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let spec = LabelSpec::synch_request("2120000142", NODE_ORG, PING_PRODUCT, 1);
    let r = sundsvall
        .post(format!("{relay}/shs/rs"))
        .body(shs_message(&spec.to_xml(), &[("text/plain", b"x")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A handshake with a certificate from another CA.
    let other = relay_pki::DevCa::new("other").unwrap();
    let pki = stack.dir().join("pki");
    let foreign = other
        .client_cert(&relay_pki::Subject {
            serial_number: Some("2120002411"),
            organisation: None,
            common_name: "x",
        })
        .unwrap()
        .write(&pki, "foreign-ops")
        .unwrap();
    let client = https_client(
        &stack.demo().info.relay.ca,
        Some((&foreign.cert, &foreign.key)),
    );
    assert!(
        client
            .post(format!("{relay}/shs/rs"))
            .body("x")
            .send()
            .await
            .is_err()
    );

    let (status, metrics) = get(&format!("{admin}/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(
        counter(
            &metrics,
            "shs_relay_requests_total{route=\"shs_rs\",outcome=\"answered\"}"
        ),
        2.0,
        "{metrics}"
    );
    assert_eq!(
        counter(
            &metrics,
            "shs_relay_rejections_total{route=\"shs_rs\",code=\"IllegalSender\"}"
        ),
        1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("shs_relay_tls_handshake_failures_total{reason="),
        "{metrics}"
    );
    assert!(metrics.contains("shs_relay_in_flight"));
    assert!(metrics.contains("shs_relay_build_info"));
    assert!(
        !metrics.contains("2120002411") && !metrics.contains("2120000142"),
        "no organisation numbers in labels"
    );

    // Ready once the adapters report their base services healthy.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, text) = get(&format!("{admin}/readyz")).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(get(&format!("{admin}/livez")).await.0, 200);

    // Maintenance drains the node; switching it off makes it ready again.
    let r = reqwest::Client::new()
        .post(format!("{admin}/admin/maintenance/on"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&format!("{admin}/readyz")).await.0, 503);
    reqwest::Client::new()
        .post(format!("{admin}/admin/maintenance/off"))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&format!("{admin}/readyz")).await.0, 200);

    // Readiness follows provider health: with MIV's base service down, not ready
    // (the demo requires all seven).
    reqwest::Client::new()
        .put(format!("{}/admin/scenario", stack.demo().info.sim.admin))
        .body("[agency.MIV]\ndown = true\n")
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&format!("{admin}/readyz")).await.0 != 503 {
        assert!(
            Instant::now() < deadline,
            "readiness never followed provider health"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stack.stop().await;
}
