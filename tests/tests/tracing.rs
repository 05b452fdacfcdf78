//! Tracing end to end: the real relay and adapters export their spans over
//! OTLP/gRPC to a collector run by the test; one SSBTEK request is one trace
//! from the front to every adapter, and no span carries personal data.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use relay_demo::{NODE_ORG, SSBTEK_PRODUCT};
use relay_ident::{Organisationsnummer, Personnummer};
use relay_ssbtek::{Ingivare, Period, QuestionBuilder, Slot};
use shs_tests::collector::{CollectedSpan, Collector};
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
const TOLVAN: &str = "191212121212";
const CASE_WORKER: &str = "handlaggare-7";
const CASE_ID: &str = "ARENDE-2026-1";

fn question() -> Vec<u8> {
    let today = chrono::Local::now().date_naive();
    let period = Period::new(today - chrono::Months::new(3), today).unwrap();
    QuestionBuilder::new(
        Personnummer::parse(TOLVAN).unwrap(),
        Ingivare::new(
            Organisationsnummer::parse(SUNDSVALL).unwrap(),
            "Sundsvalls kommun",
            CASE_WORKER,
        ),
        CASE_ID,
        period,
    )
    .include_all(Slot::ALL)
    .build()
    .unwrap()
    .to_xml(true)
    .to_vec()
}

fn named<'a>(spans: &'a [CollectedSpan], name: &str) -> Vec<&'a CollectedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// Everything one SSBTEK request about every slot should produce.
fn complete(spans: &[CollectedSpan]) -> bool {
    !named(spans, "front").is_empty()
        && !named(spans, "combine").is_empty()
        && named(spans, "policy").len() >= 2
        && named(spans, "provider.call").len() == Slot::ALL.len()
        && named(spans, "adapter.query").len() == Slot::ALL.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_ssbtek_request_is_one_trace_from_the_front_to_every_adapter() {
    let collector = Collector::start().await;
    // One request's spans: without the prober's pings and their traces.
    let stack = Stack::start_with(|o| {
        o.otlp_endpoint = Some(collector.url.clone());
        o.without_prober();
    })
    .await;

    let spec = LabelSpec::synch_request(SUNDSVALL, NODE_ORG, SSBTEK_PRODUCT, 1);
    let q = question();
    let reply = stack
        .client(SUNDSVALL)
        .post(format!("{}/shs/rs", stack.relay_url()))
        .header("Content-Type", "message/rfc822")
        .body(shs_message(
            &spec.to_xml(),
            &[("text/xml; charset=UTF-8", q.as_slice())],
        ))
        .send()
        .await
        .expect("the relay answers");
    assert_eq!(reply.status(), 200);

    // Spans leave in batches (every few seconds); a loaded machine gets time.
    let deadline = Instant::now() + Duration::from_secs(120);
    let spans = loop {
        let spans = collector.spans();
        if complete(&spans) {
            break spans;
        }
        if Instant::now() > deadline {
            let names: Vec<(&str, &str)> = spans
                .iter()
                .map(|s| (s.service.as_str(), s.name.as_str()))
                .collect();
            panic!("not every span arrived: {names:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // The front span is the root of the request's trace.
    let front = named(&spans, "front");
    assert_eq!(front.len(), 1, "one request, one front span");
    let front = front[0];
    assert_eq!(front.service, "shs-relay");
    assert!(front.parent_span_id.is_empty(), "the front span is a root");
    assert_eq!(front.attribute("http.route"), Some("/shs/rs"));
    assert_eq!(front.attribute("outcome"), Some("ok"));
    assert_eq!(front.attribute("http.response.status_code"), Some("200"));
    assert_eq!(front.attribute("shs.tx_id"), Some(spec.tx_id.as_str()));
    let trace = front.trace_id.clone();

    // Policy, provider calls and combine are the front span's children.
    for name in ["policy", "provider.call", "combine"] {
        for s in named(&spans, name) {
            assert_eq!(s.service, "shs-relay", "{name}");
            assert_eq!(s.trace_id, trace, "{name} is in the request's trace");
            assert_eq!(s.parent_span_id, front.span_id, "{name} under front");
        }
    }
    let decisions: BTreeSet<(&str, &str)> = named(&spans, "policy")
        .iter()
        .map(|s| {
            (
                s.attribute("policy.check").unwrap_or(""),
                s.attribute("policy.decision").unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [("agreement", "allowed"), ("ingivare", "allowed")].into()
    );
    let calls = named(&spans, "provider.call");
    let providers: BTreeSet<&str> = calls
        .iter()
        .map(|s| s.attribute("provider.id").unwrap_or(""))
        .collect();
    assert_eq!(
        providers,
        Slot::ALL.iter().map(|s| s.as_str()).collect(),
        "one call span per provider"
    );
    for c in &calls {
        assert!(c.attribute("provider.outcome").is_some(), "{c:?}");
        assert!(c.attribute("provider.latency_ms").is_some(), "{c:?}");
    }

    // Each adapter continued the relay's trace under its provider call.
    for a in named(&spans, "adapter.query") {
        assert!(a.service.starts_with("shs-adapter-"), "{}", a.service);
        assert_eq!(a.trace_id, trace, "{} is in the relay's trace", a.service);
        let parent = calls
            .iter()
            .find(|c| c.span_id == a.parent_span_id)
            .unwrap_or_else(|| panic!("{}: parent is not a provider.call span", a.service));
        assert_eq!(
            parent.attribute("provider.id").map(str::to_ascii_lowercase),
            Some(a.service.trim_start_matches("shs-adapter-").to_owned()),
            "the call span of the same provider"
        );
    }

    // The adapters' logs name the trace too (for log-to-trace lookups).
    let logs = stack.all_logs();
    let traced = logs
        .lines()
        .filter(|l| l.contains("\"message\":\"query\""))
        .filter(|l| l.contains(&format!("\"trace_id\":\"{trace}\"")))
        .count();
    assert_eq!(traced, Slot::ALL.len(), "{logs}");

    // No span, from any process, carries the person, the case or the case worker.
    let forbidden = [TOLVAN, "19121212-1212", "121212-1212", CASE_WORKER, CASE_ID];
    for s in &spans {
        for t in &s.texts {
            for f in forbidden {
                assert!(
                    !t.contains(f),
                    "span {} from {} carries {f}: {t}",
                    s.name,
                    s.service
                );
            }
        }
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_tracing_section_no_trace_context_is_sent() {
    let stack = Stack::start().await;
    let spec = LabelSpec::synch_request(SUNDSVALL, NODE_ORG, SSBTEK_PRODUCT, 1);
    let q = question();
    let reply = stack
        .client(SUNDSVALL)
        .post(format!("{}/shs/rs", stack.relay_url()))
        .header("Content-Type", "message/rfc822")
        .body(shs_message(
            &spec.to_xml(),
            &[("text/xml; charset=UTF-8", q.as_slice())],
        ))
        .send()
        .await
        .expect("the relay answers");
    assert_eq!(reply.status(), 200);
    // The adapters log the trace id of an incoming traceparent: there was none.
    let logs = stack.all_logs();
    let queries: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("\"message\":\"query\""))
        .collect();
    assert_eq!(queries.len(), Slot::ALL.len(), "{logs}");
    for q in queries {
        assert!(q.contains("\"trace_id\":\"\""), "{q}");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_elt_submission_is_one_trace_into_the_fk_adapter_and_carries_no_report_content() {
    use relay_demo::{ELT_ANORDNARE, ELT_ASSISTANT, ELT_VENDOR};
    let collector = Collector::start().await;
    // One request's spans: without the prober's pings and their traces.
    let stack = Stack::start_with(|o| {
        o.otlp_endpoint = Some(collector.url.clone());
        o.without_prober();
    })
    .await;
    let info = &stack.demo().info;
    let signer = |role: &str| {
        let s = info.elt.signers.iter().find(|s| s.role == role).unwrap();
        relay_elt::Signer::from_pem(
            &std::fs::read(&s.cert).unwrap(),
            &std::fs::read(&s.key).unwrap(),
        )
        .unwrap()
    };
    let report = relay_elt::example::ExampleReport {
        insured: TOLVAN,
        assistant: ELT_ASSISTANT,
        anordnare: ELT_ANORDNARE,
        month: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        id: uuid::Uuid::new_v4(),
    }
    .to_xml()
    .into_bytes();
    let block = |s: relay_elt::Signer| relay_elt::soap::SignatureBlock {
        signature: s.sign(&report).unwrap(),
        ocsp_response: None,
        datum_for_signatur: chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
    };
    let envelope = relay_elt::soap::request_xml(
        &report,
        &block(signer("assistant")),
        &block(signer("anordnare")),
    );
    let reply = stack
        .client(ELT_VENDOR)
        .post(format!("{}{}", stack.relay_url(), info.elt.soap_path))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(envelope)
        .send()
        .await
        .expect("the relay answers");
    assert_eq!(reply.status(), 200, "{}", reply.text().await.unwrap());

    let deadline = Instant::now() + Duration::from_secs(120);
    let spans = loop {
        let spans = collector.spans();
        if !named(&spans, "adapter.submit").is_empty() && !named(&spans, "front").is_empty() {
            break spans;
        }
        assert!(Instant::now() < deadline, "not every span arrived");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let front = named(&spans, "front")[0];
    let trace = front.trace_id.clone();
    let policy = named(&spans, "policy");
    assert!(
        policy
            .iter()
            .any(|p| p.attribute("policy.check") == Some("elt")
                && p.attribute("policy.decision") == Some("allowed")
                && p.trace_id == trace),
        "{policy:?}"
    );
    let call = named(&spans, "provider.call")
        .into_iter()
        .find(|c| c.attribute("provider.id") == Some("FK"))
        .expect("a provider.call span for FK");
    assert_eq!(call.trace_id, trace);
    assert_eq!(call.attribute("provider.outcome"), Some("receipt"));
    let submit = named(&spans, "adapter.submit")[0];
    assert_eq!(submit.service, "shs-adapter-fk");
    assert_eq!(
        submit.trace_id, trace,
        "the adapter continued the relay's trace"
    );
    assert_eq!(submit.parent_span_id, call.span_id);
    let forbidden = [TOLVAN, ELT_ASSISTANT, "Tolvan", "Testsson", "08-123 456 78"];
    for s in &spans {
        for t in &s.texts {
            for f in forbidden {
                assert!(
                    !t.contains(f),
                    "span {} from {} carries {f}: {t}",
                    s.name,
                    s.service
                );
            }
        }
    }
    stack.stop().await;
}
