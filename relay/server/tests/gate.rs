//! The request pipeline in process (no child processes): every way in passes
//! the one admission step and the one policy gate, and the bypasses found
//! against the demo stack stay closed.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod support;

use relay_server::operator::Scope;
use relay_shs::{SequenceType, TransferType};
use support::*;

fn org(s: &str) -> relay_ident::Organisationsnummer {
    relay_ident::Organisationsnummer::parse(s).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    ShsSynchPing,
    ShsSynchSsbtek,
    ShsSynchElt,
    ShsAsynchSsbtek,
    ShsAsynchDirect,
    SoapHamta,
    SoapTesta,
    SoapElt,
    DeliveryList,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An organisation with the agreement.
    Member,
    /// The same organisation, suspended by the operator.
    Suspended,
    /// An organisation without any agreement.
    Stranger,
    /// A processor acting for a municipality the operator suspended.
    ProcessorForSuspended,
}

const WAYS: [Way; 9] = [
    Way::ShsSynchPing,
    Way::ShsSynchSsbtek,
    Way::ShsSynchElt,
    Way::ShsAsynchSsbtek,
    Way::ShsAsynchDirect,
    Way::SoapHamta,
    Way::SoapTesta,
    Way::SoapElt,
    Way::DeliveryList,
];

fn member_of(way: Way) -> &'static str {
    match way {
        Way::ShsSynchElt | Way::SoapElt => VENDOR,
        _ => SUNDSVALL,
    }
}

async fn call(kit: &Kit, way: Way, caller: &str, ingivare: &str, processors: &[&str]) -> Answer {
    match way {
        Way::ShsSynchPing => {
            let l = label(
                caller,
                NODE,
                PING,
                TransferType::Synch,
                SequenceType::Request,
            );
            kit.shs(caller, message(l, &[b"ping"]).await).await
        }
        Way::ShsSynchSsbtek | Way::ShsAsynchSsbtek => {
            let transfer = if way == Way::ShsSynchSsbtek {
                TransferType::Synch
            } else {
                TransferType::Asynch
            };
            let l = label(caller, NODE, SSBTEK, transfer, SequenceType::Request);
            let q = question(ingivare, processors);
            kit.shs(caller, message(l, &[&q]).await).await
        }
        Way::ShsSynchElt => {
            let mut l = label(
                caller,
                NODE,
                ELT,
                TransferType::Synch,
                SequenceType::Request,
            );
            l.status = relay_shs::Status::Test;
            kit.shs(caller, message(l, &[b"<not-a-report/>"]).await)
                .await
        }
        Way::ShsAsynchDirect => {
            let l = label(
                caller,
                STOCKHOLM,
                DIRECT,
                TransferType::Asynch,
                SequenceType::Event,
            );
            kit.shs(caller, message(l, &[b"<hello/>"]).await).await
        }
        Way::SoapHamta => {
            kit.soap(caller, "/ssbtek/v10", soap_question(ingivare, processors))
                .await
        }
        Way::SoapTesta => {
            let body = br#"<ssbt:testaBastjanstInformation xmlns:ssbt="http://schema.forsakringskassan.se/integration/ssbt/10"/>"#;
            kit.soap(caller, "/ssbtek/v10", envelope(body)).await
        }
        Way::SoapElt => {
            // A call the envelope reader decodes (two reports: the product's
            // rule refuses it after the gate), so the gate, which runs after
            // the decode, decides.
            let body = br#"<SkickaTidredovisning xmlns="urn:shs:emottagning:SkickaTidredovisning:1"><tidredovisning>AA==</tidredovisning><tidredovisning>AA==</tidredovisning></SkickaTidredovisning>"#;
            kit.soap(caller, "/elt/SkickaTidredovisning/1", envelope(body))
                .await
        }
        Way::DeliveryList => kit.list(caller).await,
    }
}

/// Whether the answer is the gate's refusal, in the way's own protocol.
fn refused_by_gate(way: Way, a: &Answer) -> bool {
    let text = a.text();
    match way {
        Way::ShsSynchPing | Way::ShsSynchSsbtek | Way::ShsAsynchSsbtek | Way::ShsAsynchDirect => {
            a.status == 400
                && matches!(
                    a.shs_error(),
                    Some("MissingAgreement") | Some("IllegalDatapartContent")
                )
                && !text.contains("VALIDERINGSFEL")
        }
        Way::ShsSynchElt => {
            a.status == 400
                && (text.contains("ELT-NO-AGREEMENT") || text.contains("ELT-SUSPENDED-VENDOR"))
        }
        Way::SoapHamta | Way::SoapTesta => {
            a.status == 500 && (text.contains("BEHORIGHET") || text.contains("AVTAL_SAKNAS"))
        }
        Way::SoapElt => text.contains("ELT-NO-AGREEMENT") || text.contains("ELT-SUSPENDED-VENDOR"),
        Way::DeliveryList => a.status == 403,
    }
}

fn applies(way: Way, kind: Kind) -> bool {
    // A processor acts for a municipality only where a question names one.
    kind != Kind::ProcessorForSuspended
        || matches!(
            way,
            Way::ShsSynchSsbtek | Way::ShsAsynchSsbtek | Way::SoapHamta
        )
}

#[tokio::test]
async fn every_way_in_product_and_caller_kind_passes_the_one_gate() {
    for way in WAYS {
        for kind in [
            Kind::Member,
            Kind::Suspended,
            Kind::Stranger,
            Kind::ProcessorForSuspended,
        ] {
            if !applies(way, kind) {
                continue;
            }
            let kit = Kit::new().await;
            let member = member_of(way);
            let (caller, ingivare, processors): (&str, &str, Vec<&str>) = match kind {
                Kind::Member => (member, member, vec![]),
                Kind::Suspended => {
                    kit.relay.operator.suspend(org(member), Scope::All);
                    (member, member, vec![])
                }
                Kind::Stranger => (STRANGER, STRANGER, vec![]),
                Kind::ProcessorForSuspended => {
                    kit.relay.operator.suspend(org(SUNDSVALL), Scope::All);
                    (PROCESSOR, SUNDSVALL, vec![PROCESSOR])
                }
            };
            let answer = call(&kit, way, caller, ingivare, &processors).await;
            let refused = refused_by_gate(way, &answer);
            assert_eq!(
                refused,
                kind != Kind::Member,
                "{way:?} × {kind:?}: status {} {:?}: {}",
                answer.status,
                answer.shs_error(),
                answer.text()
            );
        }
    }
}

#[tokio::test]
async fn a_suspended_municipality_gets_no_answer_asynchronously() {
    let kit = Kit::new().await;
    kit.relay.operator.suspend(
        org(SUNDSVALL),
        Scope::Product(relay_server::config::ProductName::Ssbtek),
    );
    let l = label(
        SUNDSVALL,
        NODE,
        SSBTEK,
        TransferType::Asynch,
        SequenceType::Request,
    );
    let a = kit
        .shs(SUNDSVALL, message(l, &[&question(SUNDSVALL, &[])]).await)
        .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.shs_error(), Some("MissingAgreement"));
    let list = kit.list(SUNDSVALL).await;
    assert_eq!(list.status, 200);
    assert!(
        !list.text().contains("tx.id"),
        "nothing answered: {}",
        list.text()
    );
}

#[tokio::test]
async fn a_processor_needs_a_municipality_that_named_it_holds_the_agreement_and_is_not_suspended() {
    let kit = Kit::new().await;
    let ask = |ingivare: &'static str, named: Vec<&'static str>| {
        let kit = &kit;
        async move {
            let l = label(
                PROCESSOR,
                NODE,
                SSBTEK,
                TransferType::Synch,
                SequenceType::Request,
            );
            kit.shs(PROCESSOR, message(l, &[&question(ingivare, &named)]).await)
                .await
        }
    };
    assert_eq!(ask(SUNDSVALL, vec![PROCESSOR]).await.status, 200);
    // Not named by the municipality in its question.
    let a = ask(SUNDSVALL, vec![]).await;
    assert_eq!(
        a.shs_error(),
        Some("IllegalDatapartContent"),
        "{}",
        a.text()
    );
    // Not configured for Stockholm.
    let a = ask(STOCKHOLM, vec![PROCESSOR]).await;
    assert_eq!(
        a.shs_error(),
        Some("IllegalDatapartContent"),
        "{}",
        a.text()
    );
    // Göteborg has named it, but holds no SSBTEK agreement itself.
    let a = ask(GOTEBORG, vec![PROCESSOR]).await;
    assert_eq!(a.shs_error(), Some("MissingAgreement"), "{}", a.text());
    // Sundsvall suspended: nothing for its processor either, over SOAP too.
    kit.relay.operator.suspend(org(SUNDSVALL), Scope::All);
    let a = ask(SUNDSVALL, vec![PROCESSOR]).await;
    assert_eq!(a.shs_error(), Some("MissingAgreement"), "{}", a.text());
    let a = kit
        .soap(
            PROCESSOR,
            "/ssbtek/v10",
            soap_question(SUNDSVALL, &[PROCESSOR]),
        )
        .await;
    assert_eq!(a.status, 500);
    assert!(a.text().contains("BEHORIGHET"), "{}", a.text());
}

#[tokio::test]
async fn a_decoy_label_before_the_first_boundary_is_not_taken_for_the_label() {
    let kit = Kit::new().await;
    // The real label says the message is from Stockholm; a decoy in the MIME
    // preamble says Sundsvall, the caller.
    let real = label(
        STOCKHOLM,
        SUNDSVALL,
        DIRECT,
        TransferType::Asynch,
        SequenceType::Event,
    );
    let decoy = label(
        SUNDSVALL,
        SUNDSVALL,
        DIRECT,
        TransferType::Asynch,
        SequenceType::Event,
    );
    let body = message(real, &[b"<spoofed/>"]).await;
    let text = String::from_utf8(body).unwrap();
    let decoy_xml = String::from_utf8(decoy.to_xml()).unwrap();
    let boundary_at = text.find("\r\n--").or_else(|| text.find("\n--")).unwrap();
    let spoofed = format!(
        "{}\r\n{}\r\n{}",
        &text[..boundary_at],
        decoy_xml,
        &text[boundary_at..]
    );
    let a = kit.shs(SUNDSVALL, spoofed.into_bytes()).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.shs_error(), Some("IllegalSender"));
    let list = kit.list(SUNDSVALL).await;
    assert!(!list.text().contains("tx.id"), "{}", list.text());
}

#[tokio::test]
async fn direct_delivery_needs_the_product_on_both_sides_and_adm_needs_an_exchange() {
    let kit = Kit::new().await;
    let send = |from: &'static str, to: &'static str, product: &'static str, seq: SequenceType| {
        let kit = &kit;
        async move {
            let l = label(from, to, product, TransferType::Asynch, seq);
            kit.shs(from, message(l, &[b"<x/>"]).await).await
        }
    };
    // No agreement at all, an agreement without the product, a recipient
    // without it: refused.
    let a = send(STRANGER, STOCKHOLM, DIRECT, SequenceType::Event).await;
    assert_eq!(a.shs_error(), Some("MissingAgreement"), "{}", a.text());
    let a = send(GOTEBORG, STOCKHOLM, DIRECT, SequenceType::Event).await;
    assert_eq!(a.shs_error(), Some("MissingAgreement"), "{}", a.text());
    let a = send(SUNDSVALL, GOTEBORG, DIRECT, SequenceType::Event).await;
    assert_eq!(a.shs_error(), Some("MissingAgreement"), "{}", a.text());
    // An adm message that refers to nothing between the two is refused.
    let a = send(SUNDSVALL, STOCKHOLM, "error", SequenceType::Adm).await;
    assert_eq!(
        a.shs_error(),
        Some("IllegalMessageStructure"),
        "{}",
        a.text()
    );
    // Both with the product: accepted.
    let a = send(SUNDSVALL, STOCKHOLM, DIRECT, SequenceType::Event).await;
    assert_eq!(a.status, 202, "{}", a.text());
}

#[tokio::test]
async fn a_full_outbox_refuses_with_a_quota_error_and_blocks_no_other_outbox() {
    let kit = Kit::new().await;
    let send = |from: &'static str, to: &'static str| {
        let kit = &kit;
        async move {
            let l = label(from, to, DIRECT, TransferType::Asynch, SequenceType::Event);
            kit.shs(from, message(l, &[b"<x/>"]).await).await
        }
    };
    for _ in 0..3 {
        assert_eq!(send(SUNDSVALL, STOCKHOLM).await.status, 202);
        // Listable only once processed: wait for it, so the count is exact.
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let list = kit.list(STOCKHOLM).await;
        if list.text().matches("tx.id=").count() == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", list.text());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let a = send(SUNDSVALL, STOCKHOLM).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.shs_error(), Some("OtherError"));
    assert!(a.text().contains("QUOTA"), "{}", a.text());
    assert_eq!(send(STOCKHOLM, SUNDSVALL).await.status, 202);
}

#[tokio::test]
async fn tx_ids_are_uuids_duplicates_are_per_sender_and_addresses_are_normalised() {
    let kit = Kit::new().await;
    let mut l = label(
        SUNDSVALL,
        STOCKHOLM,
        DIRECT,
        TransferType::Asynch,
        SequenceType::Event,
    );
    l.tx_id = "not-a-uuid".into();
    let a = kit.shs(SUNDSVALL, message(l, &[b"<x/>"]).await).await;
    assert_eq!(
        a.shs_error(),
        Some("IllegalMessageStructure"),
        "{}",
        a.text()
    );

    // Sundsvall's message under a tx.id; Stockholm's message with the same
    // tx.id is Stockholm's own (a message is identified by sender and tx.id):
    // stored, and never reported as a duplicate of Sundsvall's.
    let first = label(
        SUNDSVALL,
        STOCKHOLM,
        DIRECT,
        TransferType::Asynch,
        SequenceType::Event,
    );
    let tx = first.tx_id.clone();
    assert_eq!(
        kit.shs(SUNDSVALL, message(first, &[b"<x/>"]).await)
            .await
            .status,
        202
    );
    let mut copy = label(
        STOCKHOLM,
        SUNDSVALL,
        DIRECT,
        TransferType::Asynch,
        SequenceType::Event,
    );
    copy.tx_id = tx.clone();
    let a = kit.shs(STOCKHOLM, message(copy, &[b"<x/>"]).await).await;
    assert_eq!(a.status, 202, "{}", a.text());
    assert_eq!(a.headers["x-shs-duplicatemsg"], "no");

    // 16-prefixed and dashed forms reach the same outbox.
    for to in ["162120000142", "212000-0142"] {
        let l = label(
            SUNDSVALL,
            to,
            DIRECT,
            TransferType::Asynch,
            SequenceType::Event,
        );
        let tx = l.tx_id.clone();
        assert_eq!(
            kit.shs(SUNDSVALL, message(l, &[b"<x/>"]).await)
                .await
                .status,
            202
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let list = kit.list(STOCKHOLM).await;
            if list.text().contains(&tx) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{to}: {}",
                list.text()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn the_wsdl_address_never_echoes_an_unchecked_host() {
    let kit = Kit::new().await;
    let req = http::Request::builder()
        .uri("/ssbtek/v10?wsdl")
        .header("Host", "evil.example\"><x y=\"")
        .body(axum::body::Body::empty())
        .unwrap();
    let a = kit
        .call(SUNDSVALL, "GET", "/ssbtek/v10?wsdl", None, vec![])
        .await;
    assert_eq!(a.status, 200);
    let with_host = {
        use tower::ServiceExt;
        let response = relay_server::router(kit.relay.clone())
            .oneshot(req)
            .await
            .unwrap();
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
    };
    let text = String::from_utf8_lossy(&with_host);
    assert!(!text.contains("evil.example"), "{text}");
    assert!(text.contains("https://127.0.0.1:0/ssbtek/v10"), "{text}");

    let public = Kit::with_public_url("https://relay.example.se").await;
    let a = public
        .call(SUNDSVALL, "GET", "/ssbtek/v10?wsdl", None, vec![])
        .await;
    assert!(
        a.text().contains("https://relay.example.se/ssbtek/v10"),
        "{}",
        a.text()
    );
}

#[tokio::test]
async fn refusals_say_who_failed_in_metrics_and_never_carry_personal_data() {
    let kit = Kit::new().await;
    kit.relay.operator.suspend(org(SUNDSVALL), Scope::All);
    let l = label(
        SUNDSVALL,
        NODE,
        SSBTEK,
        TransferType::Synch,
        SequenceType::Request,
    );
    let a = kit
        .shs(SUNDSVALL, message(l, &[&question(SUNDSVALL, &[])]).await)
        .await;
    assert_eq!(a.status, 400);
    assert!(!a.text().contains("191212121212"));
    let metrics = kit.relay.metrics.encode();
    assert!(
        metrics.contains("by=\"caller\"") && metrics.contains("code=\"suspended\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_web_page_cannot_change_the_relay_through_the_admin_listener() {
    use tower::ServiceExt;
    let kit = Kit::new().await;
    let call = |headers: &[(&str, &str)]| {
        let mut req = http::Request::builder()
            .method("POST")
            .uri("/admin/maintenance/on")
            .header("Content-Type", "application/x-www-form-urlencoded");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(axum::body::Body::empty()).unwrap();
        relay_server::admin_router(kit.relay.clone()).oneshot(req)
    };
    // A plain form post (what a page can send without a preflight): refused.
    assert_eq!(call(&[]).await.unwrap().status(), 403);
    assert!(!kit.relay.operator.maintenance());
    // The header, but from another site's page: refused.
    let r = call(&[("X-SHS-Admin", "1"), ("Sec-Fetch-Site", "cross-site")])
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!kit.relay.operator.maintenance());
    // An operator's tool: taken.
    assert_eq!(call(&[("X-SHS-Admin", "1")]).await.unwrap().status(), 200);
    assert!(kit.relay.operator.maintenance());
}

#[tokio::test]
async fn decisions_made_through_the_admin_api_survive_a_restart() {
    use tower::ServiceExt;
    let kit = Kit::new().await;
    for path in [
        format!("/admin/suspend?org={SUNDSVALL}&product=ssbtek"),
        format!("/admin/withdraw?provider=FK&org={STOCKHOLM}"),
        "/admin/maintenance/on".to_owned(),
    ] {
        let req = http::Request::builder()
            .method("POST")
            .uri(&path)
            .header("X-SHS-Admin", "1")
            .body(axum::body::Body::empty())
            .unwrap();
        let r = relay_server::admin_router(kit.relay.clone())
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let kit = kit.restart().await;
    assert!(
        kit.relay
            .operator
            .is_suspended(&org(SUNDSVALL), relay_server::config::ProductName::Ssbtek)
    );
    assert!(kit.relay.operator.is_withdrawn("FK", &org(STOCKHOLM)));
    assert!(kit.relay.operator.maintenance());
    let l = label(
        SUNDSVALL,
        NODE,
        SSBTEK,
        TransferType::Synch,
        SequenceType::Request,
    );
    let a = kit
        .shs(SUNDSVALL, message(l, &[&question(SUNDSVALL, &[])]).await)
        .await;
    assert_eq!(a.shs_error(), Some("MissingAgreement"), "{}", a.text());
}

#[tokio::test]
async fn a_planned_window_is_announced_kept_and_audited_as_planned() {
    use tower::ServiceExt;
    let kit = Kit::new().await;
    let start = chrono::Utc::now() + chrono::Duration::hours(1);
    let end = start + chrono::Duration::hours(2);
    let uri = format!(
        "/admin/maintenance/plan?start={}&end={}&reason=upgrade",
        start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let req = |method: &str, uri: &str| {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header("X-SHS-Admin", "1")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let r = relay_server::admin_router(kit.relay.clone())
        .oneshot(req("POST", &uri))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bad = relay_server::admin_router(kit.relay.clone())
        .oneshot(req("POST", "/admin/maintenance/plan?start=yesterday"))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let r = relay_server::admin_router(kit.relay.clone())
        .oneshot(req("GET", "/admin/maintenance/planned"))
        .await
        .unwrap();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("upgrade"));
    kit.audit_until(|r| {
        matches!(r, relay_audit::AuditRecord::Outage(o) if o.kind == relay_audit::OutageKind::Planned)
    })
    .await;
}

#[tokio::test]
async fn overloads_and_refusals_are_audited_with_who_failed() {
    use relay_audit::{AuditRecord, FailedBy, RequestResult};
    let kit = Kit::new().await;
    let ping = |from: &'static str| async move {
        let l = label(from, NODE, PING, TransferType::Synch, SequenceType::Request);
        message(l, &[b"ping"]).await
    };
    // Sundsvall holds its whole share of the in-flight limit: its next request
    // is turned away, and that is its own doing.
    let mut held = Vec::new();
    while let Ok(p) = kit.relay.in_flight.admit(&org(SUNDSVALL)) {
        held.push(p);
    }
    let a = kit.shs(SUNDSVALL, ping(SUNDSVALL).await).await;
    assert_eq!(a.status, 503, "{}", a.text());
    // Others take every remaining permit: the relay is full, for anyone.
    for other in [STOCKHOLM, PROCESSOR, VENDOR, STRANGER] {
        while let Ok(p) = kit.relay.in_flight.admit(&org(other)) {
            held.push(p);
        }
    }
    let a = kit.shs(GOTEBORG, ping(GOTEBORG).await).await;
    assert_eq!(a.status, 503, "{}", a.text());
    drop(held);
    // A caller without an agreement is refused: the caller's fault.
    let l = label(
        STRANGER,
        NODE,
        SSBTEK,
        TransferType::Synch,
        SequenceType::Request,
    );
    let a = kit
        .shs(STRANGER, message(l, &[&question(STRANGER, &[])]).await)
        .await;
    assert_eq!(a.status, 400, "{}", a.text());

    let of = |org: &str, records: &[AuditRecord]| -> Vec<(RequestResult, Option<FailedBy>)> {
        records
            .iter()
            .filter_map(|r| match r {
                AuditRecord::Request(r) if r.caller_org == org => Some((r.result.clone(), r.by)),
                _ => None,
            })
            .collect()
    };
    let records = kit
        .audit_until(|r| matches!(r, AuditRecord::Request(r) if r.caller_org == STRANGER))
        .await;
    assert_eq!(
        of(SUNDSVALL, &records),
        [(RequestResult::Overloaded, Some(FailedBy::Caller))]
    );
    assert_eq!(
        of(GOTEBORG, &records),
        [(RequestResult::Overloaded, Some(FailedBy::Relay))]
    );
    let stranger = of(STRANGER, &records);
    assert_eq!(stranger.len(), 1, "{stranger:?}");
    assert!(
        matches!(
            &stranger[0],
            (RequestResult::Refused(_), Some(FailedBy::Caller))
        ),
        "{stranger:?}"
    );
}
