//! End to end: the real `shs-sim`, seven `shs-adapter-*` and `shs-relay`
//! processes over real mutual TLS, driven as a municipal case system would:
//! raw SHS 1.2 messages over HTTPS with a client certificate.

use std::time::{Duration, Instant};

use relay_demo::{NODE_ORG, PING_PRODUCT, SSBTEK_PRODUCT};
use relay_ident::{Organisationsnummer, Personnummer};
use relay_ssbtek::{Ingivare, Period, QuestionBuilder, Slot};
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
const STOCKHOLM: &str = "2120000142";
const TOLVAN: &str = "191212121212";

fn assert_valid(answer: &str) {
    if let Err(e) = xmllint(answer.as_bytes(), &ssbtek_xsd()) {
        panic!("answer does not validate against the v10 XSD: {e}\n{answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_municipality_asks_all_seven_agencies_through_the_real_stack() {
    let stack = Stack::start().await;

    // Ping, answered by the relay itself.
    let spec = LabelSpec::synch_request(SUNDSVALL, NODE_ORG, PING_PRODUCT, 1);
    let reply = post(
        &stack.client(SUNDSVALL),
        stack.relay_url(),
        shs_message(&spec.to_xml(), &[("text/plain", b"ping")]),
    )
    .await;
    assert_eq!(reply.status, 200);
    let parts = split_message(&reply.body);
    let label = String::from_utf8_lossy(&parts[0].body).into_owned();
    assert!(
        label.contains(&format!("tx.id=\"{}\"", spec.tx_id)),
        "same tx.id: {label}"
    );
    assert!(label.contains("sequence-type=\"reply\""), "{label}");
    assert!(
        label.contains(&format!("<to>urn:X-shs:{SUNDSVALL}</to>")),
        "from/to swapped: {label}"
    );
    assert!(String::from_utf8_lossy(&parts[1].body).contains("operational"));

    // All seven agencies answer for Tolvan.
    let reply = ask(
        &stack,
        SUNDSVALL,
        &[question(TOLVAN, SUNDSVALL, &Slot::ALL, false)],
    )
    .await;
    let answers = answers_of(&reply);
    assert_eq!(answers.len(), 1);
    assert_valid(&answers[0]);
    for slot in Slot::ALL {
        let xml = slot_xml(&answers[0], slot.as_str());
        assert!(
            xml.contains("<ssbt:data"),
            "{slot:?} answered with data: {xml}"
        );
    }

    // A subset: only the included slots appear.
    let reply = ask(
        &stack,
        SUNDSVALL,
        &[question(TOLVAN, SUNDSVALL, &[Slot::Csn, Slot::Tns], false)],
    )
    .await;
    let answer = &answers_of(&reply)[0];
    assert_valid(answer);
    assert!(answer.contains("<ssbt:CSN>") && answer.contains("<ssbt:TNS>"));
    assert!(!answer.contains("<ssbt:FK>") && !answer.contains("<ssbt:AF>"));

    // Ten persons, answered in request order (the echo carries each person).
    let persons = [
        "191212121212",
        "190308189802",
        "190312049802",
        "201901012391",
        "201903312385",
        "202601622380",
        "202601612381",
        "202601912393",
        "191401682396",
        "191212121212",
    ];
    let questions: Vec<Vec<u8>> = persons
        .iter()
        .map(|p| question(p, SUNDSVALL, &[Slot::Tns, Slot::Miv], true))
        .collect();
    let started = Instant::now();
    let reply = ask(&stack, SUNDSVALL, &questions).await;
    let answers = answers_of(&reply);
    assert_eq!(answers.len(), 10);
    for (answer, person) in answers.iter().zip(persons) {
        assert_valid(answer);
        assert!(
            answer.contains(&format!(
                "<ssbt:personidentitet>{person}</ssbt:personidentitet>"
            )),
            "order"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(30));

    // An eleventh person is refused.
    let mut eleven = questions.clone();
    eleven.push(question(TOLVAN, SUNDSVALL, &[Slot::Tns], false));
    let reply = ask(&stack, SUNDSVALL, &eleven).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.errorcode.as_deref(), Some("IllegalDatapartContent"));

    // An invalid personnummer (check digit) is refused without echoing it.
    let bad = String::from_utf8(question(TOLVAN, SUNDSVALL, &[Slot::Tns], false))
        .unwrap()
        .replace(TOLVAN, "191212121213");
    let reply = ask(&stack, SUNDSVALL, &[bad.into_bytes()]).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.errorcode.as_deref(), Some("IllegalDatapartContent"));
    let text = String::from_utf8_lossy(&reply.body);
    assert!(text.contains("personidentitet"), "names the field: {text}");
    assert!(
        !text.contains("191212121213") && !text.contains("1212121213"),
        "never echoes the number: {text}"
    );

    // A question on behalf of another municipality (ingivare ≠ certificate) is refused.
    let reply = ask(
        &stack,
        SUNDSVALL,
        &[question(TOLVAN, STOCKHOLM, &[Slot::Tns], false)],
    )
    .await;
    assert_eq!(reply.errorcode.as_deref(), Some("IllegalDatapartContent"));

    // A configured processor (personuppgiftsbiträde) named in the question may ask
    // for Sundsvall; the same processor not named in the question may not.
    let today = chrono::Local::now().date_naive();
    let build = |named: bool| {
        let mut b = QuestionBuilder::new(
            Personnummer::parse(TOLVAN).unwrap(),
            Ingivare::new(
                Organisationsnummer::parse(SUNDSVALL).unwrap(),
                "Sundsvalls kommun",
                "hl",
            ),
            "A-9",
            Period::new(today - chrono::Months::new(1), today).unwrap(),
        )
        .include(Slot::Tns);
        if named {
            b = b.personuppgiftsbitrade(relay_ssbtek::Personuppgiftsbitrade::new(
                None,
                Organisationsnummer::parse("5566778899").unwrap(),
                "Exempel Drift AB",
            ));
        }
        b.build().unwrap().to_xml(true).to_vec()
    };
    let reply = ask(&stack, "5566778899", &[build(true)]).await;
    assert!(slot_xml(&answers_of(&reply)[0], "TNS").contains("<ssbt:data"));
    let reply = ask(&stack, "5566778899", &[build(false)]).await;
    assert_eq!(reply.errorcode.as_deref(), Some("IllegalDatapartContent"));

    // A bare multipart body with the boundary in the HTTP Content-Type is accepted too.
    let spec = LabelSpec::synch_request(SUNDSVALL, NODE_ORG, PING_PRODUCT, 1);
    let full = shs_message(&spec.to_xml(), &[("text/plain", b"ping")]);
    let text = String::from_utf8_lossy(&full).into_owned();
    let boundary = text
        .split("boundary=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let bare = &full[text.find("\r\n\r\n").unwrap() + 4..];
    let r = stack
        .client(SUNDSVALL)
        .post(format!("{}/shs/rs", stack.relay_url()))
        .header(
            "Content-Type",
            format!("multipart/mixed; boundary=\"{boundary}\""),
        )
        .body(bare.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A message larger than the configured limit is refused at once.
    let huge = vec![b'x'; 11 * 1024 * 1024];
    let spec = LabelSpec::synch_request(SUNDSVALL, NODE_ORG, PING_PRODUCT, 1);
    let reply = post(
        &stack.client(SUNDSVALL),
        stack.relay_url(),
        shs_message(&spec.to_xml(), &[("text/plain", &huge)]),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.errorcode.as_deref(), Some("IllegalMessageStructure"));

    // The `shs` CLI, as a test team uses it against the demo.
    let out = std::process::Command::new(relay_demo::default_bin_dir().unwrap().join("shs"))
        .arg("--demo")
        .arg(stack.dir())
        .args(["ssbtek", "--person", "19121212-1212"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for slot in ["AF", "CSN", "FK", "SKV", "SO", "TNS", "MIV"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(slot) && l.contains("data")),
            "{slot} in {text}"
        );
    }

    // The label's from must be the certificate's organisation.
    let spec = LabelSpec::synch_request(STOCKHOLM, NODE_ORG, PING_PRODUCT, 1);
    let reply = post(
        &stack.client(SUNDSVALL),
        stack.relay_url(),
        shs_message(&spec.to_xml(), &[("text/plain", b"x")]),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.errorcode.as_deref(), Some("IllegalSender"));

    // The label's to must be the relay.
    let spec = LabelSpec::synch_request(SUNDSVALL, "5560360793", PING_PRODUCT, 1);
    let reply = post(
        &stack.client(SUNDSVALL),
        stack.relay_url(),
        shs_message(&spec.to_xml(), &[("text/plain", b"x")]),
    )
    .await;
    assert_eq!(reply.errorcode.as_deref(), Some("UnknownReceiver"));

    // An unknown product.
    let spec = LabelSpec::synch_request(
        SUNDSVALL,
        NODE_ORG,
        "11111111-2222-3333-4444-555555555555",
        1,
    );
    let reply = post(
        &stack.client(SUNDSVALL),
        stack.relay_url(),
        shs_message(&spec.to_xml(), &[("text/plain", b"x")]),
    )
    .await;
    assert_eq!(reply.errorcode.as_deref(), Some("UnknownProductType"));

    // A certificate from the relay's CA for an organisation without an agreement.
    let pki = stack.dir().join("pki");
    let ca = relay_pki::DevCa::load(
        &std::fs::read_to_string(pki.join("ca.pem")).unwrap(),
        &std::fs::read_to_string(pki.join("ca-key.pem")).unwrap(),
    )
    .unwrap();
    let stranger = ca
        .client_cert(&relay_pki::Subject {
            serial_number: Some("2120000217"),
            organisation: Some("Okänd kommun"),
            common_name: "okand",
        })
        .unwrap()
        .write(&pki, "stranger")
        .unwrap();
    let client = https_client(
        &stack.demo().info.relay.ca,
        Some((&stranger.cert, &stranger.key)),
    );
    let spec = LabelSpec::synch_request("2120000217", NODE_ORG, PING_PRODUCT, 1);
    let reply = post(
        &client,
        stack.relay_url(),
        shs_message(&spec.to_xml(), &[("text/plain", b"x")]),
    )
    .await;
    assert_eq!(reply.errorcode.as_deref(), Some("MissingAgreement"));

    // A client certificate from another CA is refused in the TLS handshake.
    let other = relay_pki::DevCa::new("other CA").unwrap();
    let foreign = other
        .client_cert(&relay_pki::Subject {
            serial_number: Some(SUNDSVALL),
            organisation: None,
            common_name: "x",
        })
        .unwrap()
        .write(&pki, "foreign")
        .unwrap();
    let client = https_client(
        &stack.demo().info.relay.ca,
        Some((&foreign.cert, &foreign.key)),
    );
    assert!(
        client
            .post(format!("{}/shs/rs", stack.relay_url()))
            .body("x")
            .send()
            .await
            .is_err()
    );
    let anonymous = https_client(&stack.demo().info.relay.ca, None);
    assert!(
        anonymous
            .post(format!("{}/shs/rs", stack.relay_url()))
            .body("x")
            .send()
            .await
            .is_err()
    );

    // Nothing personal in any process's logs.
    let logs = stack.all_logs();
    assert!(!logs.is_empty());
    for secret in [
        TOLVAN,
        "121212-1212",
        "1212121212",
        "Tolvansson",
        "190308189802",
        "handlaggare-7",
        "ARENDE-2026-1",
    ] {
        assert!(!logs.contains(secret), "logs contain {secret}");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_failing_or_withdrawn_agency_never_fails_the_whole_answer() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("trouble.toml");
    std::fs::write(
        &scenario,
        "[agency.TNS]\nlatency = { kind = \"fixed\", ms = 60000 }\n\n[agency.CSN]\nerror_rate = 1.0\nerror_code = \"CSN-9\"\n",
    )
    .unwrap();
    let stack = Stack::start_with(|o| {
        o.scenario = Some(scenario.clone());
        o.deadline_base_ms = Some(4_000);
        o.withdrawn = vec![("SO".into(), SUNDSVALL.into())];
        o.max_in_flight = Some(1);
        // One permit: the prober's ping must not take it.
        o.without_prober();
    })
    .await;
    // While one request waits on the slow agency, a second is refused at once.
    let first = {
        let client = stack.client(STOCKHOLM);
        let url = stack.relay_url().to_owned();
        let q = question(TOLVAN, STOCKHOLM, &[Slot::Tns], false);
        tokio::spawn(async move {
            let spec = LabelSpec::synch_request(STOCKHOLM, NODE_ORG, SSBTEK_PRODUCT, 1);
            post(
                &client,
                &url,
                shs_message(&spec.to_xml(), &[("text/xml", &q)]),
            )
            .await
        })
    };
    let mut refused = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = stack
            .client(SUNDSVALL)
            .post(format!("{}/shs/rs", stack.relay_url()))
            .body("x")
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("a second request is refused while the first is in flight");
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(first.await.unwrap().status, 200);
    let started = Instant::now();
    let reply = ask(
        &stack,
        SUNDSVALL,
        &[question(TOLVAN, SUNDSVALL, &Slot::ALL, false)],
    )
    .await;
    let elapsed = started.elapsed();
    let answer = &answers_of(&reply)[0];
    assert_valid(answer);
    assert!(
        elapsed < Duration::from_secs(20),
        "the deadline holds: {elapsed:?}"
    );
    let tns = slot_xml(answer, "TNS");
    assert!(
        tns.contains("<ssbt:kalla>SSBT</ssbt:kalla>") && tns.contains("SSBT-TIMEOUT"),
        "{tns}"
    );
    let csn = slot_xml(answer, "CSN");
    assert!(
        csn.contains("<ssbt:kalla>BT</ssbt:kalla>") && csn.contains("CSN-9"),
        "{csn}"
    );
    let so = slot_xml(answer, "SO");
    assert!(so.contains("SSBT-WITHDRAWN"), "{so}");
    for slot in ["AF", "FK", "SKV", "MIV"] {
        assert!(
            slot_xml(answer, slot).contains("<ssbt:data"),
            "{slot} still answers"
        );
    }
    // The withdrawn provider was not called at all.
    let stats: serde_json::Value =
        reqwest::get(format!("{}/admin/stats", stack.demo().info.sim.admin))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(stats["SO"]["requests"], 0, "{stats}");
    // Stockholm is still served by SO.
    let reply = ask(
        &stack,
        STOCKHOLM,
        &[question(TOLVAN, STOCKHOLM, &[Slot::So], false)],
    )
    .await;
    assert!(slot_xml(&answers_of(&reply)[0], "SO").contains("<ssbt:data"));
    stack.stop().await;
}
