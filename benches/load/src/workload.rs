//! The queries the bench sends, each one a complete exchange checked for
//! success: an SSBTEK composite query over SHS, the same over the SSBTEK SOAP
//! facade, an asynchronous SHS message sent, fetched and acknowledged, and the
//! baseline: the seven provider calls made straight to the adapters.
//!
//! Messages are written with the same builders the relay and the `shs` CLI use
//! (`relay_shs::Label`/`ShsMessage`, `relay_ssbtek::QuestionBuilder`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use providers_sdk::proto;
use relay_ident::{Organisationsnummer, Personnummer};
use relay_shs::{
    ContentBody, DataPart, DataRef, Label, PartHeaders, ProductId, SequenceType, ShsMessage,
    TransferEncoding, TransferType,
};
use relay_ssbtek::{Ingivare, Period, Question, QuestionBuilder, Slot};
use tonic::transport::Channel;

use crate::target::{Identity, Target};

/// Skatteverket's published test persons (the simulator knows them); the
/// bench asks about them in turn.
pub const TEST_PERSONS: [&str; 9] = [
    "191212121212",
    "190308189802",
    "190312049802",
    "201901012391",
    "201903312385",
    "202601622380",
    "202601612381",
    "202601912393",
    "191401682396",
];

/// The product id of the bench's asynchronous messages.
pub const ASYNC_PRODUCT: &str = "b3c1e0a2-5d4f-4a8e-9c7b-6f2e1d0c9b8a";

/// How often, and how many times, the recipient asks for an asynchronous
/// message that is not delivered yet (at most 10 s in all).
const FETCH_POLL_INTERVAL: Duration = Duration::from_millis(2);
const FETCH_POLLS: u32 = 5_000;

/// What the bench sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// SSBTEK composite query (one person, seven agencies) over SHS 1.2.
    Shs,
    /// The same over the SSBTEK v10 SOAP facade.
    Soap,
    /// Asynchronous SHS: send (202), fetch by the recipient, acknowledge.
    Async,
}

/// Why a query failed; the label the report counts it under. Never holds
/// personal data or payloads.
pub type ErrorKind = String;

fn http_error(e: &reqwest::Error) -> ErrorKind {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// The SSBTEK question about test person `i` (modulo the list), from `caller`.
pub fn question(i: u64, caller: &Identity) -> anyhow::Result<Question> {
    let person = TEST_PERSONS[(i % TEST_PERSONS.len() as u64) as usize];
    let pnr = Personnummer::parse(person).map_err(|e| anyhow::anyhow!("{person}: {e}"))?;
    let org = Organisationsnummer::parse(&caller.org)
        .map_err(|e| anyhow::anyhow!("caller {}: {e}", caller.org))?;
    let today = chrono::Local::now().date_naive();
    let period = Period::new(today - chrono::Months::new(3), today)
        .ok_or_else(|| anyhow::anyhow!("period"))?;
    QuestionBuilder::new(
        pnr,
        Ingivare::new(org, caller.name.as_str(), "handlaggare-bench"),
        "BENCH-1",
        period,
    )
    .include_all(Slot::ALL)
    .korrelationsid(&uuid::Uuid::new_v4().to_string())
    .fk_lefi(
        "000-00",
        &relay_ssbtek::LefiRequest::ekonomiskt_bistand(pnr, period),
    )
    .build()
    .map_err(|e| anyhow::anyhow!("cannot build the question: {e}"))
}

fn xml_part(body: Vec<u8>) -> DataPart {
    DataPart {
        headers: PartHeaders {
            mime_type: "text/xml".into(),
            charset: Some("UTF-8".into()),
            transfer_encoding: TransferEncoding::Binary,
            filename: None,
        },
        datapart_type: "xml".into(),
        body: Bytes::from(body),
    }
}

/// An SHS message from `from` with `parts`.
pub fn shs_message(
    from: &Identity,
    to: &str,
    product: ProductId,
    transfer: TransferType,
    sequence: SequenceType,
    parts: Vec<DataPart>,
) -> ShsMessage {
    let mut label = Label::new(&from.org, Some(to), product, sequence, transfer);
    if let Some(f) = label.from.as_mut() {
        f.common_name = from.name.clone();
    }
    label.content.body = ContentBody::Data(
        parts
            .iter()
            .map(|p| DataRef {
                datapart_type: p.datapart_type.clone(),
                ..DataRef::default()
            })
            .collect(),
    );
    ShsMessage { label, parts }
}

/// An HTTPS client presenting `who`'s certificate, trusting `ca`.
pub fn https_client(
    ca: &std::path::Path,
    who: &Identity,
    pool: usize,
) -> anyhow::Result<reqwest::Client> {
    relay_pki::tls::install_crypto_provider();
    let tls = relay_pki::tls::client_config(ca, Some((&who.cert, &who.key)), &[b"http/1.1"])?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .tcp_nodelay(true)
        .pool_max_idle_per_host(pool)
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// Everything one query needs, shared by all concurrent queries.
pub struct Relay {
    target: Target,
    caller: reqwest::Client,
    recipient: Option<reqwest::Client>,
    product: ProductId,
}

impl Relay {
    pub fn new(target: Target, pool: usize) -> anyhow::Result<Arc<Self>> {
        let caller = https_client(&target.ca, &target.caller, pool)?;
        let recipient = target
            .recipient
            .as_ref()
            .map(|r| https_client(&target.ca, r, pool))
            .transpose()?;
        let product = ProductId::parse(&target.ssbtek_product)
            .ok_or_else(|| anyhow::anyhow!("the SSBTEK product id is not a UUID"))?;
        Ok(Arc::new(Self {
            target,
            caller,
            recipient,
            product,
        }))
    }

    /// The relay node query `i` goes to (round robin over [`Target::nodes`]).
    fn node(&self, i: u64) -> &str {
        let n = &self.target.nodes;
        n.get((i % n.len().max(1) as u64) as usize)
            .map_or(self.target.relay_url.as_str(), String::as_str)
    }

    /// One query of `workload` about test person `i`.
    pub async fn run(&self, workload: Workload, i: u64) -> Result<(), ErrorKind> {
        match workload {
            Workload::Shs => self.composite_over_shs(i).await,
            Workload::Soap => self.composite_over_soap(i).await,
            Workload::Async => self.send_fetch_ack(i).await,
        }
    }

    async fn composite_over_shs(&self, i: u64) -> Result<(), ErrorKind> {
        let q = question(i, &self.target.caller).map_err(|_| "bench_question")?;
        let m = shs_message(
            &self.target.caller,
            &self.target.node_org,
            self.product,
            TransferType::Synch,
            SequenceType::Request,
            vec![xml_part(q.to_xml(true).to_vec())],
        );
        let r = self
            .caller
            .post(format!("{}/shs/rs", self.node(i)))
            .header("Content-Type", "message/rfc822")
            .body(m.to_bytes().await)
            .send()
            .await
            .map_err(|e| http_error(&e))?;
        let status = r.status();
        if !status.is_success() {
            let code = r
                .headers()
                .get("X-shs-errorcode")
                .and_then(|v| v.to_str().ok())
                .filter(|c| c.len() <= 40 && c.chars().all(|ch| ch.is_ascii_alphanumeric()))
                .map(str::to_owned);
            return Err(match code {
                Some(c) => format!("shs_{c}"),
                None => format!("http_{}", status.as_u16()),
            });
        }
        let body = r.bytes().await.map_err(|e| http_error(&e))?;
        check_answer(&body)
    }

    async fn composite_over_soap(&self, i: u64) -> Result<(), ErrorKind> {
        let q = question(i, &self.target.caller).map_err(|_| "bench_question")?;
        let xml = q.to_xml(false);
        let mut envelope = Vec::with_capacity(xml.len() + 200);
        envelope.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>");
        envelope.extend_from_slice(&xml);
        envelope.extend_from_slice(b"</soap:Body></soap:Envelope>");
        let r = self
            .caller
            .post(format!("{}{}", self.node(i), self.target.soap_path))
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", "\"\"")
            .body(envelope)
            .send()
            .await
            .map_err(|e| http_error(&e))?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| http_error(&e))?;
        if !status.is_success() {
            return Err(if contains(&body, b"Fault") {
                format!("soap_fault_http_{}", status.as_u16())
            } else {
                format!("http_{}", status.as_u16())
            });
        }
        check_answer(&body)
    }

    async fn send_fetch_ack(&self, i: u64) -> Result<(), ErrorKind> {
        let recipient = self.target.recipient.as_ref().ok_or("no_recipient")?;
        let fetcher = self.recipient.as_ref().ok_or("no_recipient")?;
        let q = question(i, &self.target.caller).map_err(|_| "bench_question")?;
        let product = ProductId::parse(
            self.target
                .direct_product
                .as_deref()
                .unwrap_or(ASYNC_PRODUCT),
        )
        .ok_or("bench_product")?;
        let m = shs_message(
            &self.target.caller,
            &recipient.org,
            product,
            TransferType::Asynch,
            SequenceType::Event,
            vec![xml_part(q.to_xml(true).to_vec())],
        );
        let tx = m.label.tx_id.clone();
        let url = self.node(i);
        let r = self
            .caller
            .post(format!("{url}/shs/rs"))
            .header("Content-Type", "message/rfc822")
            .body(m.to_bytes().await)
            .send()
            .await
            .map_err(|e| http_error(&e))?;
        if r.status().as_u16() != 202 {
            return Err(format!("send_http_{}", r.status().as_u16()));
        }
        let _ = r.bytes().await;
        // Fetched and acknowledged through the next node (the same one when
        // there is one). Delivery into the recipient's mailbox may trail the
        // 202 slightly: poll (as a receiving system would) until it is there.
        let url = self.node(i + 1);
        let mut polls = 0u32;
        let r = loop {
            let r = fetcher
                .get(format!("{url}/shs/ds/{}/{tx}", recipient.org))
                .send()
                .await
                .map_err(|e| http_error(&e))?;
            if r.status().as_u16() != 404 || polls >= FETCH_POLLS {
                break r;
            }
            polls += 1;
            tokio::time::sleep(FETCH_POLL_INTERVAL).await;
        };
        if !r.status().is_success() {
            return Err(format!("fetch_http_{}", r.status().as_u16()));
        }
        let body = r.bytes().await.map_err(|e| http_error(&e))?;
        if !contains(&body, tx.as_bytes()) {
            return Err("fetch_wrong_message".into());
        }
        let r = fetcher
            .post(format!("{url}/shs/ds/{}/{tx}?action=ack", recipient.org))
            .send()
            .await
            .map_err(|e| http_error(&e))?;
        if !r.status().is_success() {
            return Err(format!("ack_http_{}", r.status().as_u16()));
        }
        let _ = r.bytes().await;
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A composite answer counts as a success only when no slot carries a relay
/// error (`SSBT-…`): an empty slot is not a fast answer.
fn check_answer(body: &[u8]) -> Result<(), ErrorKind> {
    for code in [
        "SSBT-TIMEOUT",
        "SSBT-UNAVAILABLE",
        "SSBT-OVERLOAD",
        "SSBT-INVALID-ANSWER",
        "SSBT-INTERNAL",
        "SSBT-WITHDRAWN",
    ] {
        if contains(body, code.as_bytes()) {
            return Err(format!("slot_{code}"));
        }
    }
    if !contains(body, b"ssbt:") {
        return Err("not_an_answer".into());
    }
    Ok(())
}

/// The baseline: a bare tonic client per adapter (HTTP/2 over mutual TLS,
/// as the relay holds them) making the same seven calls the relay would.
pub struct FanOut {
    adapters: Vec<(Slot, proto::provider_client::ProviderClient<Channel>)>,
    caller: Identity,
    timeout: Duration,
}

impl FanOut {
    pub fn new(target: &Target, timeout: Duration) -> anyhow::Result<Arc<Self>> {
        let (cert, key) = target.provider_client.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "the baseline needs a certificate the adapters accept (the demo's pki/relay.pem)"
            )
        })?;
        let mut adapters = Vec::new();
        for (id, url) in &target.providers {
            let slot: Slot = id
                .parse()
                .map_err(|_| anyhow::anyhow!("unknown provider {id}"))?;
            adapters.push((
                slot,
                providers_sdk::connect(url, "localhost", &target.ca, &cert, &key)?,
            ));
        }
        Ok(Arc::new(Self {
            adapters,
            caller: target.caller.clone(),
            timeout,
        }))
    }

    /// The seven calls for test person `i`, at once; done when the slowest is.
    pub async fn run(&self, i: u64) -> Result<(), ErrorKind> {
        let q = question(i, &self.caller).map_err(|_| "bench_question")?;
        let tx = uuid::Uuid::new_v4().to_string();
        let calls = self.adapters.iter().map(|(slot, client)| {
            let mut client = client.clone();
            let mut req = tonic::Request::new(query_for(&tx, &q, *slot));
            req.set_timeout(self.timeout);
            async move { client.query(req).await }
        });
        for reply in futures::future::join_all(calls).await {
            match reply {
                Ok(r) => {
                    if let Some(proto::query_reply::Outcome::Error(_)) = r.get_ref().outcome {
                        return Err("provider_error".into());
                    }
                }
                Err(status) => return Err(format!("grpc_{:?}", status.code())),
            }
        }
        Ok(())
    }
}

/// The provider contract's query for one slot, as the relay writes it
/// (`relay_server::products::ssbtek`).
pub fn query_for(transaction_id: &str, q: &Question, slot: Slot) -> proto::QueryRequest {
    let g = q.generella();
    let ingivare = g.ingivare();
    let period = q.period_for(slot);
    proto::QueryRequest {
        transaction_id: transaction_id.to_owned(),
        caller: Some(proto::Caller {
            organisation_number: ingivare.orgnr().as_str().to_owned(),
            name: ingivare.namn().to_owned(),
            case_worker: ingivare.handlaggare().to_owned(),
        }),
        data_processors: Vec::new(),
        person_id: q.person().as_str().to_owned(),
        case_id: g.arendeidentitet().to_owned(),
        period: Some(proto::Period {
            from: period.from().to_string(),
            to: period.tom().to_string(),
        }),
        purpose: g.syfte().to_owned(),
        legal_basis: g.lagtext().to_owned(),
        environment: proto::Environment::Test as i32,
        provider_parameters: q.slot(slot).parameters_xml().to_vec(),
        correlation_id: g.korrelationsid().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Identity {
        Identity {
            org: "2120002411".into(),
            name: "Sundsvalls kommun".into(),
            cert: "a.pem".into(),
            key: "a-key.pem".into(),
        }
    }

    #[test]
    fn every_test_person_makes_a_valid_seven_agency_question() {
        for i in 0..TEST_PERSONS.len() as u64 {
            let q = question(i, &caller()).unwrap();
            assert_eq!(q.included_slots().count(), 7);
            let fk = query_for("tx", &q, Slot::Fk);
            assert_eq!(fk.person_id, TEST_PERSONS[i as usize]);
            assert!(!fk.provider_parameters.is_empty());
        }
    }

    #[test]
    fn an_answer_with_a_relay_error_in_a_slot_is_not_a_success() {
        assert!(check_answer(b"<ssbt:svar><ssbt:AF>ok</ssbt:AF></ssbt:svar>").is_ok());
        assert_eq!(
            check_answer(b"<ssbt:AF><ssbt:felkod>SSBT-TIMEOUT</ssbt:felkod></ssbt:AF>"),
            Err("slot_SSBT-TIMEOUT".to_owned())
        );
        assert_eq!(check_answer(b"<html/>"), Err("not_an_answer".to_owned()));
    }
}
