//! The SSBTEK v10 SOAP web service, called as a case system generated from the
//! WSDL would call it: hand-written SOAP 1.1 envelopes, not the relay's types.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::time::Duration;

use shs_tests::*;

const SUNDSVALL: &str = "2120002411";

fn question(
    person: &str,
    ingivare: &str,
    slots: &[(&str, bool)],
    echo: bool,
    extra: &str,
) -> String {
    let today = chrono::Local::now().date_naive();
    let from = today - chrono::Months::new(3);
    let specifika: String = slots
        .iter()
        .map(|(s, on)| format!("<ssbt:{s} inkludera=\"{on}\"/>"))
        .collect();
    format!(
        "<ssbt:hamtaBastjanstInformation xmlns:ssbt=\"http://schema.forsakringskassan.se/integration/ssbt/10\"><ssbt:generellaFrageparametrar><ssbt:korrelationsid>k-1</ssbt:korrelationsid><ssbt:fraganSkallInkluderasISvaret>{echo}</ssbt:fraganSkallInkluderasISvaret><ssbt:ingivare><ssbt:organisationsnummer>{ingivare}</ssbt:organisationsnummer><ssbt:namn>Sundsvalls kommun</ssbt:namn><ssbt:handlaggare>hl-1</ssbt:handlaggare></ssbt:ingivare><ssbt:personidentitet>{person}</ssbt:personidentitet><ssbt:arendeidentitet>A-1</ssbt:arendeidentitet><ssbt:tidsperiod><ssbt:fromDatum>{from}</ssbt:fromDatum><ssbt:tomDatum>{today}</ssbt:tomDatum></ssbt:tidsperiod>{extra}<ssbt:syfte>Beslut om eller kontroll av ekonomiskt bistånd</ssbt:syfte><ssbt:lagtext>11 kap. 11 a § socialtjänstlagen (2001:453)</ssbt:lagtext></ssbt:generellaFrageparametrar><ssbt:specifikaFrageparametrar>{specifika}</ssbt:specifikaFrageparametrar></ssbt:hamtaBastjanstInformation>"
    )
}

const ALL: [(&str, bool); 7] = [
    ("AF", true),
    ("CSN", true),
    ("FK", true),
    ("SKV", true),
    ("SO", true),
    ("TNS", true),
    ("MIV", true),
];

fn envelope(body: &str, header: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Header>{header}</soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )
}

async fn call(stack: &Stack, body: impl Into<reqwest::Body>) -> (u16, String) {
    let r = stack
        .client(SUNDSVALL)
        .post(format!("{}/ssbtek/v10", stack.relay_url()))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The element inside soap:Body, validated against the v10 XSD.
fn body_element(envelope: &str) -> String {
    let start = envelope.find("<soap:Body>").expect("a SOAP body") + "<soap:Body>".len();
    let end = envelope.rfind("</soap:Body>").unwrap();
    let inner = &envelope[start..end];
    let element = if let Some(d) = inner.find("<detail>") {
        &inner[d + "<detail>".len()..inner.rfind("</detail>").unwrap()]
    } else {
        inner
    };
    if let Err(e) = xmllint(element.as_bytes(), &ssbtek_xsd()) {
        panic!("not valid against the v10 XSD: {e}\n{element}");
    }
    element.to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_case_system_that_knows_only_the_wsdl_gets_valid_answers_and_faults() {
    let stack = Stack::start().await;
    assert_eq!(
        stack.demo().info.soap.get("ssbtek").map(String::as_str),
        Some("/ssbtek/v10")
    );

    // All seven agencies, Sundsvall's shape (12-digit ingivare).
    let (status, text) = call(
        &stack,
        envelope(
            &question("191212121212", "162120002411", &ALL, false, ""),
            "",
        ),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let answer = body_element(&text);
    for slot in ["AF", "CSN", "FK", "SKV", "SO", "TNS", "MIV"] {
        assert!(
            answer.contains(&format!("<ssbt:{slot}><ssbt:data")),
            "{slot}: {answer}"
        );
    }
    assert!(answer.contains("<ssbt:korrelationsid>k-1</ssbt:korrelationsid>"));

    // A subset, with the question echoed.
    let subset = [
        ("AF", false),
        ("CSN", true),
        ("FK", false),
        ("SKV", false),
        ("SO", false),
        ("TNS", true),
        ("MIV", false),
    ];
    let (status, text) = call(
        &stack,
        envelope(
            &question("191212121212", "162120002411", &subset, true, ""),
            "",
        ),
    )
    .await;
    assert_eq!(status, 200);
    let answer = body_element(&text);
    assert!(
        answer.contains("<ssbt:fraga>")
            && answer.contains("<ssbt:CSN>")
            && !answer.contains("<ssbt:AF>")
    );

    // An unknown header without mustUnderstand is ignored; with it, a fault.
    let (status, _) = call(
        &stack,
        envelope(
            &question("191212121212", "162120002411", &subset, false, ""),
            "<x:Trace xmlns:x=\"urn:x\">1</x:Trace>",
        ),
    )
    .await;
    assert_eq!(status, 200);
    let (status, text) = call(
        &stack,
        envelope(
            &question("191212121212", "162120002411", &subset, false, ""),
            "<x:Trace xmlns:x=\"urn:x\" soapenv:mustUnderstand=\"1\">1</x:Trace>",
        ),
    )
    .await;
    assert_eq!(status, 500);
    assert!(text.contains("MustUnderstand"), "{text}");

    // ISO-8859-1 request bodies.
    let latin1: Vec<u8> = envelope(
        &question("191212121212", "162120002411", &subset, false, ""),
        "",
    )
    .replace("UTF-8", "ISO-8859-1")
    .chars()
    .map(|c| c as u8)
    .collect();
    let (status, text) = call(&stack, latin1).await;
    assert_eq!(status, 200, "{text}");

    // Faults, each with a schema-valid hamtaBastjanstInformationFault.
    let faults = [
        (
            question("191212121213", "162120002411", &ALL, false, ""),
            "VALIDERINGSFEL",
            "191212121213",
        ),
        (
            question("191212121212", "162120002412", &ALL, false, ""),
            "VALIDERINGSFEL",
            "162120002412",
        ),
        (
            question("191212121212", "162120000142", &ALL, false, ""),
            "BEHORIGHET",
            "",
        ),
        (
            question(
                "191212121212",
                "162120002411",
                &ALL,
                false,
                "<ssbt:okand>x</ssbt:okand>",
            ),
            "VALIDERINGSFEL",
            "",
        ),
    ];
    for (q, felkod, secret) in faults {
        let (status, text) = call(&stack, envelope(&q, "")).await;
        assert_eq!(status, 500, "{text}");
        let detail = body_element(&text);
        assert!(
            detail.contains(&format!("<ssbt:felkod>{felkod}</ssbt:felkod>")),
            "{detail}"
        );
        if !secret.is_empty() {
            assert!(
                !text.contains(secret),
                "the fault never echoes the value: {text}"
            );
        }
    }
    let (status, text) = call(&stack, "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><broken").await;
    assert_eq!(status, 500);
    body_element(&text);
    let (status, text) = call(&stack, vec![b' '; 11 * 1024 * 1024]).await;
    assert_eq!(status, 500);
    assert!(text.contains("VALIDERINGSFEL"));
    let (status, text) = call(
        &stack,
        "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body/></e:Envelope>",
    )
    .await;
    assert_eq!(status, 500);
    assert!(text.contains("VersionMismatch"));

    // The WSDL with the real address, and every schema it references.
    let base = stack.relay_url().to_owned();
    let client = stack.client(SUNDSVALL);
    let wsdl = client
        .get(format!("{base}/ssbtek/v10?wsdl"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        wsdl.contains(&format!("location=\"{base}/ssbtek/v10\"")),
        "{wsdl}"
    );
    let mut pending: Vec<String> = vec![wsdl];
    let mut fetched = 0;
    while let Some(doc) = pending.pop() {
        for loc in doc
            .split("schemaLocation=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_owned())
        {
            let r = client.get(format!("{base}{loc}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{loc}");
            pending.push(String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned());
            fetched += 1;
        }
    }
    assert!(
        fetched >= 7,
        "the main XSD and the agency XSDs it imports: {fetched}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ping_operation_reports_each_provider_and_a_slow_agency_does_not_delay_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "[agency.MIV]\ndown = true\n[agency.TNS]\nlatency = { kind = \"fixed\", ms = 60000 }\n",
    )
    .unwrap();
    let stack = Stack::start_with(|o| {
        o.scenario = Some(scenario.clone());
        o.deadline_base_ms = Some(3_000);
    })
    .await;
    // The adapters poll their base service's health; give MIV's a moment to turn.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, text) = call(
        &stack,
        envelope("<ssbt:testaBastjanstInformation xmlns:ssbt=\"http://schema.forsakringskassan.se/integration/ssbt/10\"/>", ""),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let ping = body_element(&text);
    assert!(
        ping.contains("<ssbt:AF><ssbt:anropad>true</ssbt:anropad></ssbt:AF>"),
        "{ping}"
    );
    assert!(
        ping.contains("<ssbt:MIV><ssbt:anropad>false</ssbt:anropad><ssbt:error>"),
        "{ping}"
    );

    let started = std::time::Instant::now();
    let (status, text) = call(
        &stack,
        envelope(
            &question("191212121212", "162120002411", &ALL, false, ""),
            "",
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(15));
    let answer = body_element(&text);
    assert!(answer.contains("SSBT-TIMEOUT"), "{answer}");
    stack.stop().await;
}
