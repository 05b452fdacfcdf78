//! The seven adapters against the simulated base services, as separate processes
//! over real mutual TLS, called over gRPC the way the relay calls them.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::time::{Duration, Instant};

use providers_sdk::proto;
use shs_tests::*;

const TOLVAN: &str = "191212121212";

fn adapter(
    stack: &Stack,
    id: &str,
) -> proto::provider_client::ProviderClient<tonic::transport::Channel> {
    let info = &stack.demo().info;
    let url = &info.providers.iter().find(|p| p.id == id).unwrap().url;
    let pki = stack.dir().join("pki");
    providers_sdk::connect(
        url,
        "localhost",
        &info.relay.ca,
        &pki.join("relay.pem"),
        &pki.join("relay-key.pem"),
    )
    .unwrap()
}

fn query(person: &str) -> proto::QueryRequest {
    let today = chrono::Local::now().date_naive();
    proto::QueryRequest {
        transaction_id: uuid::Uuid::new_v4().to_string(),
        caller: Some(proto::Caller {
            organisation_number: "2120002411".into(),
            name: "Sundsvalls kommun".into(),
            case_worker: "hl-1".into(),
        }),
        person_id: person.into(),
        case_id: "A-1".into(),
        period: Some(proto::Period {
            from: (today - chrono::Months::new(6)).to_string(),
            to: today.to_string(),
        }),
        purpose: "Beslut om eller kontroll av ekonomiskt bistånd".into(),
        legal_basis: "11 kap. 11 a § socialtjänstlagen (2001:453)".into(),
        environment: proto::Environment::Test as i32,
        ..Default::default()
    }
}

fn wrapped(slot: &str, payload: &[u8]) -> String {
    format!(
        "<ssbt:hamtaBastjanstInformationResponse xmlns:ssbt=\"http://schema.forsakringskassan.se/integration/ssbt/10\"><ssbt:svarsdata><ssbt:{slot}><ssbt:data>{}</ssbt:data></ssbt:{slot}></ssbt:svarsdata></ssbt:hamtaBastjanstInformationResponse>",
        String::from_utf8_lossy(payload)
    )
}

async fn put_scenario(stack: &Stack, toml: &str) -> reqwest::Response {
    reqwest::Client::new()
        .put(format!("{}/admin/scenario", stack.demo().info.sim.admin))
        .body(toml.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_adapter_answers_with_a_schema_valid_slot_payload_and_scenarios_change_it() {
    let stack = Stack::start().await;
    for slot in ["AF", "CSN", "FK", "SKV", "SO", "TNS", "MIV"] {
        let mut c = adapter(&stack, slot);
        let d = c
            .describe(proto::DescribeRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(d.provider_id, slot);
        assert_eq!(d.payload_format, format!("ssbtek-v10/{slot}"));
        assert_eq!(d.contract_version, proto::CONTRACT_VERSION);
        for person in [
            "191212121212",
            "201901012391",
            "190308189802",
            "202601622380",
        ] {
            let reply = c.query(query(person)).await.unwrap().into_inner();
            let Some(proto::query_reply::Outcome::Data(data)) = reply.outcome else {
                panic!("{slot} answered {reply:?}");
            };
            let s: relay_ssbtek::Slot = slot.parse().unwrap();
            relay_ssbtek::check_payload(s, &data.payload)
                .unwrap_or_else(|e| panic!("{slot}: {e:?}"));
            xmllint(wrapped(slot, &data.payload).as_bytes(), &ssbtek_xsd())
                .unwrap_or_else(|e| panic!("{slot} payload for {person} is not valid: {e}"));
        }
        // Deterministic: the same person gets the same answer.
        let q = query(TOLVAN);
        let a = c.query(q.clone()).await.unwrap().into_inner();
        let b = c.query(q).await.unwrap().into_inner();
        assert_eq!(a, b, "{slot} is deterministic");
    }

    // The agency's own error → a provider error (kalla BT).
    let r = put_scenario(&stack, "[agency.SKV]\nerror_rate = 1.0\n[agency.MIV]\nerror_rate = 1.0\n[agency.TNS]\nerror_rate = 1.0\n[agency.FK]\nerror_rate = 1.0\n").await;
    assert_eq!(r.status(), 200);
    for (slot, code) in [
        ("SKV", "9071001"),
        ("MIV", "MIV-500"),
        ("TNS", "9"),
        ("FK", "INTERNT_FEL"),
    ] {
        let reply = adapter(&stack, slot)
            .query(query(TOLVAN))
            .await
            .unwrap()
            .into_inner();
        match reply.outcome {
            Some(proto::query_reply::Outcome::Error(e)) => assert_eq!(e.code, code, "{slot}"),
            other => panic!("{slot}: expected a provider error, got {other:?}"),
        }
    }

    // A per-person override, and an outage: UNAVAILABLE and health NOT_SERVING.
    put_scenario(&stack, "[agency.SO]\ndown = true\n[[override]]\nperson = \"201901012391\"\nagency = \"CSN\"\nerror = \"CSN-7\"\n").await;
    let reply = adapter(&stack, "CSN")
        .query(query("201901012391"))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(reply.outcome, Some(proto::query_reply::Outcome::Error(ref e)) if e.code == "CSN-7"),
        "{reply:?}"
    );
    let reply = adapter(&stack, "CSN")
        .query(query(TOLVAN))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(reply.outcome, Some(proto::query_reply::Outcome::Data(_))),
        "others unaffected"
    );
    let status = adapter(&stack, "SO")
        .query(query(TOLVAN))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);

    // A hang → DEADLINE_EXCEEDED within the caller's deadline.
    put_scenario(&stack, "[agency.TNS]\nhang_rate = 1.0\n").await;
    let mut req = tonic::Request::new(query(TOLVAN));
    req.metadata_mut()
        .insert("grpc-timeout", "1500m".parse().unwrap());
    let started = Instant::now();
    let status = adapter(&stack, "TNS").query(req).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // An invalid scenario is refused with the reason; reset restores the start.
    let r = put_scenario(&stack, "[agency.TNS]\nerror_rate = 7\n").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("error_rate"));
    reqwest::Client::new()
        .post(format!("{}/admin/reset", stack.demo().info.sim.admin))
        .send()
        .await
        .unwrap();
    let reply = adapter(&stack, "TNS")
        .query(query(TOLVAN))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        reply.outcome,
        Some(proto::query_reply::Outcome::Data(_))
    ));

    let logs = stack.all_logs();
    assert!(
        !logs.contains(TOLVAN) && !logs.contains("Tolvansson"),
        "no personal data in the logs"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adapter_reports_not_serving_while_its_base_service_is_down() {
    let stack = Stack::start().await;
    put_scenario(&stack, "[agency.MIV]\ndown = true\n").await;
    let info = &stack.demo().info;
    let url = &info.providers.iter().find(|p| p.id == "MIV").unwrap().url;
    let pki = stack.dir().join("pki");
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(&info.relay.ca).unwrap(),
        ))
        .identity(tonic::transport::Identity::from_pem(
            std::fs::read(pki.join("relay.pem")).unwrap(),
            std::fs::read(pki.join("relay-key.pem")).unwrap(),
        ))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: proto::SERVICE_NAME.into(),
            })
            .await;
        if matches!(&r, Ok(r) if r.get_ref().status == tonic_health::pb::health_check_response::ServingStatus::NotServing as i32)
        {
            break;
        }
        assert!(Instant::now() < deadline, "health never became NOT_SERVING");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stack.stop().await;
}
