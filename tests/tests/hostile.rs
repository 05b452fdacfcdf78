//! Hostile, slow and huge input against the real binaries: one organisation's
//! stalled uploads hold only its own share of the relay; oversized and
//! attribute-heavy bodies are refused fast while others are answered.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use relay_demo::{NODE_ORG, PING_PRODUCT};
use shs_tests::*;
use tokio::io::AsyncWriteExt;

const SUNDSVALL: &str = "2120002411";
const STOCKHOLM: &str = "2120000142";

async fn ping(stack: &Stack, org: &str) -> (u16, Duration) {
    let spec = LabelSpec::synch_request(org, NODE_ORG, PING_PRODUCT, 1);
    let started = Instant::now();
    let r = stack
        .client(org)
        .post(format!("{}/shs/rs", stack.relay_url()))
        .header("Content-Type", "message/rfc822")
        .body(shs_message(&spec.to_xml(), &[("text/plain", b"ping")]))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), started.elapsed())
}

/// Opens a TLS connection as `org` and sends request headers and a few bytes
/// of a large body, then nothing more.
async fn stalled_upload(
    stack: &Stack,
    org: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let c = stack.client_info(org);
    let tls = relay_pki::tls::client_config(
        &stack.demo().info.relay.ca,
        Some((&c.cert, &c.key)),
        &[b"http/1.1"],
    )
    .unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let addr = stack.relay_url().trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    s.write_all(
        format!(
            "POST /shs/rs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: message/rfc822\r\nContent-Length: 1000000\r\n\r\nSubject: SHS"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s.flush().await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn one_organisations_stalled_uploads_do_not_lock_out_another() {
    let stack = Stack::start_with(|o| o.max_in_flight = Some(16)).await;
    // Far more stalled uploads than the whole in-flight limit, from Sundsvall.
    let mut stalls = Vec::new();
    for _ in 0..40 {
        stalls.push(stalled_upload(&stack, SUNDSVALL).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Sundsvall is at its share: a fast 503 with Retry-After.
    let (status, took) = ping(&stack, SUNDSVALL).await;
    assert_eq!(status, 503);
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Stockholm is answered, promptly.
    let (status, took) = ping(&stack, STOCKHOLM).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The stalls run into the label timeout (10 s) and the relay recovers by
    // itself: Sundsvall is answered again while the connections are still open.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if ping(&stack, SUNDSVALL).await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the relay never recovered");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(stalls);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attribute_heavy_elt_body_is_refused_fast_and_others_are_answered() {
    let stack = Stack::start().await;
    let info = stack.demo().info.clone();
    // About 5 MB: 200 000 attributes on one element.
    let mut body = String::from(
        "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><x ",
    );
    for i in 0..200_000 {
        body.push_str(&format!("a{i}=\"v\" "));
    }
    body.push_str("/></soap:Body></soap:Envelope>");
    let vendor = stack.client("5566770011");
    let url = format!("{}{}", stack.relay_url(), info.elt.soap_path);
    let started = Instant::now();
    let heavy = tokio::spawn(async move {
        vendor
            .post(url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    let (status, took) = ping(&stack, STOCKHOLM).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let status = heavy.await.unwrap();
    assert_eq!(status, 500, "an ELT SOAP fault");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused in {:?}",
        started.elapsed()
    );
    stack.stop().await;
}
