//! # providers-fk
//!
//! The Försäkringskassan (med Pensionsmyndigheten) adapter: answers the relay's SSBTEK queries by calling
//! Försäkringskassan (med Pensionsmyndigheten)'s base service (LEFI v9 REST/JSON) and turns the answer into the SSBTEK v10
//! `FK` slot payload (base64 of the LEFI JSON answer in `lefiJsonSvar`). Base-service errors become provider
//! errors (`kalla=BT`); an unreachable or slow base service becomes
//! `UNAVAILABLE` / `DEADLINE_EXCEEDED`. Nothing personal is logged.
//!
//! It also receives ELT time reports (`Submit`, document type `tidredovisning`):
//! the report is read against `tidredovisning_1.xsd` and the service's rules,
//! both detached CMS signatures (attachments `assistent-signatur` and
//! `anordnare-signatur`) are verified against the trust anchors in
//! `extra.elt_trust_anchors` (chain, validity at the signing time, digest over
//! the exact bytes, and that the signer is the assistant or the assistance
//! company named in the report), and the report is registered with the base
//! service, whose receipt goes back to the relay.
//!
//! Repeats: the adapter remembers each registered report (id, SHA-256 of its
//! bytes, receipt), at most `extra.elt_remembered_reports` (default 100 000,
//! oldest forgotten first). The same id and bytes again get the original
//! receipt marked `repeat` and are not registered again, whichever relay sends
//! them; the same id with other bytes is refused as a conflict
//! (`SUBMIT_ERROR_KIND_CONFLICT`, code `REDAN_REGISTRERAD`).

// Exception to [workspace.lints]: 5 indexing sites (2026-12), not yet rewritten.
#![allow(clippy::indexing_slicing)]

use providers_sdk::{
    AdapterConfig, Backend, BackendError, Description, Health, QueryOutcome, SubmitOutcome, proto,
};
use providers_soap::period;
use relay_elt::{Report, TrustAnchors};

/// The Försäkringskassan (med Pensionsmyndigheten) backend.
pub struct FkBackend {
    base: providers_soap::BaseService,
    /// `extra.aktorsid`: the aktörs-id used when the question carries none.
    default_aktor: String,
    /// `extra.elt_trust_anchors`: CA certificates (PEM) that ELT signers must
    /// chain to. Without it the adapter does not offer `Submit`.
    elt_anchors: Option<TrustAnchors>,
    /// `extra.elt_max_report_bytes` (default 1 MiB).
    elt_max_report_bytes: usize,
    /// Reports registered through this adapter, by report id.
    registered: Registered,
}

/// Registered reports: id → (SHA-256, receipt), oldest forgotten first.
struct Registered {
    max: usize,
    state: std::sync::Mutex<(RecordById, std::collections::VecDeque<String>)>,
}

/// Report id → (SHA-256 of its bytes, receipt).
type RecordById = std::collections::HashMap<String, (String, proto::Receipt)>;

/// What the record says about a report about to be registered.
enum Seen {
    New,
    Repeat(proto::Receipt),
    Conflict,
}

impl Registered {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            state: Default::default(),
        }
    }

    fn seen(&self, id: &str, digest: &str) -> Seen {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.0.get(id) {
            None => Seen::New,
            Some((d, receipt)) if d == digest => Seen::Repeat(receipt.clone()),
            Some(_) => Seen::Conflict,
        }
    }

    fn remember(&self, id: String, digest: String, receipt: proto::Receipt) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *state;
        if map.insert(id.clone(), (digest, receipt)).is_none() {
            order.push_back(id);
        }
        while order.len() > self.max {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

impl FkBackend {
    pub fn new(cfg: &AdapterConfig) -> anyhow::Result<Self> {
        Ok(Self {
            base: providers_soap::BaseService::new(cfg)?,
            default_aktor: cfg
                .extra
                .get("aktorsid")
                .and_then(|v| v.as_str())
                .unwrap_or("000-00")
                .to_owned(),
            elt_anchors: cfg
                .extra
                .get("elt_trust_anchors")
                .and_then(|v| v.as_str())
                .map(|p| TrustAnchors::load(std::path::Path::new(p)))
                .transpose()
                .map_err(|e| anyhow::anyhow!("extra.elt_trust_anchors: {e}"))?,
            elt_max_report_bytes: cfg
                .extra
                .get("elt_max_report_bytes")
                .and_then(|v| v.as_integer())
                .and_then(|v| usize::try_from(v).ok())
                .unwrap_or(relay_elt::report::DEFAULT_MAX_REPORT_BYTES),
            registered: Registered::new(
                cfg.extra
                    .get("elt_remembered_reports")
                    .and_then(|v| v.as_integer())
                    .and_then(|v| usize::try_from(v).ok())
                    .unwrap_or(100_000),
            ),
        })
    }

    /// Checks a time report; the refusal says which check failed.
    fn check_report(
        &self,
        anchors: &TrustAnchors,
        submit: &proto::SubmitRequest,
    ) -> Result<Report, proto::SubmitError> {
        use proto::SubmitErrorKind as Kind;
        let refuse = |kind: Kind, code: &str, message: String| proto::SubmitError {
            kind: kind as i32,
            code: code.into(),
            messages: vec![message],
        };
        if submit.document_type != relay_elt::DATAPART_REPORT {
            return Err(refuse(
                Kind::Validation,
                "OKAND_DOKUMENTTYP",
                format!(
                    "document type {} is not received; use tidredovisning",
                    submit.document_type.chars().take(40).collect::<String>()
                ),
            ));
        }
        let report = Report::parse_with(&submit.document, self.elt_max_report_bytes)
            .map_err(|e| refuse(Kind::Validation, "XML_VALIDERING", e.to_string()))?;
        let now = chrono::Utc::now();
        for (role, name, expected) in [
            (
                "assistant",
                relay_elt::DATAPART_ASSISTANT_SIGNATURE,
                report.assistant.as_str(),
            ),
            (
                "assistance company",
                relay_elt::DATAPART_ANORDNARE_SIGNATURE,
                report.anordnare.as_str(),
            ),
        ] {
            let signature = submit
                .attachments
                .iter()
                .find(|a| a.name == name)
                .ok_or_else(|| {
                    refuse(
                        Kind::Signature,
                        "SIGNATUR_SAKNAS",
                        format!("the {role}'s signature ({name}) is missing"),
                    )
                })?;
            let verified =
                relay_elt::signature::verify(&signature.content, &submit.document, anchors, now)
                    .map_err(|e| {
                        refuse(
                            Kind::Signature,
                            "SIGNATUR_OGILTIG",
                            format!("the {role}'s signature: {e}"),
                        )
                    })?;
            if verified.serial_number.as_deref() != Some(expected) {
                return Err(refuse(
                    Kind::Signature,
                    "FEL_UNDERTECKNARE",
                    format!(
                        "the {role}'s signature is not by the {role} named in the report (certificate serialNumber)"
                    ),
                ));
            }
        }
        Ok(report)
    }
}

impl Backend for FkBackend {
    fn describe(&self) -> Description {
        let mut d = providers_soap::description(
            "FK",
            "Försäkringskassan (med Pensionsmyndigheten)",
            env!("CARGO_PKG_VERSION"),
        );
        if self.elt_anchors.is_some() {
            d.submit_document_types = vec![relay_elt::DATAPART_REPORT.into()];
        }
        d
    }

    async fn health(&self) -> Health {
        self.base.health("fk").await
    }

    fn supports_submit(&self) -> bool {
        self.elt_anchors.is_some()
    }

    async fn submit(&self, submit: proto::SubmitRequest) -> Result<SubmitOutcome, BackendError> {
        let Some(anchors) = &self.elt_anchors else {
            return Err(BackendError::Unimplemented);
        };
        let report = match self.check_report(anchors, &submit) {
            Ok(r) => r,
            Err(e) => return Ok(SubmitOutcome::Error(e)),
        };
        let digest = relay_elt::sha256_hex(&submit.document);
        let id = report.id.to_string();
        match self.registered.seen(&id, &digest) {
            Seen::New => {}
            Seen::Repeat(original) => {
                return Ok(SubmitOutcome::Receipt(proto::Receipt {
                    repeat: true,
                    ..original
                }));
            }
            Seen::Conflict => {
                return Ok(SubmitOutcome::Error(proto::SubmitError {
                    kind: proto::SubmitErrorKind::Conflict as i32,
                    code: "REDAN_REGISTRERAD".into(),
                    messages: vec![
                        "a time report with this id and other content is already registered; a corrected report needs a new id".into(),
                    ],
                }));
            }
        }
        let (status, bytes) = send(
            self.base
                .client()
                .post(self.base.url("/fk/elt/tidredovisning/v1"))
                .header("Content-Type", "application/xml")
                .header("X-Tidredovisning-Id", report.id.to_string())
                .body(submit.document),
            "ELT registration",
        )
        .await?;
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|_| BackendError::Internal("ELT registration answer is not JSON".into()))?;
        if !status.is_success() {
            return Ok(SubmitOutcome::Error(proto::SubmitError {
                kind: proto::SubmitErrorKind::Other as i32,
                code: json["kod"].as_str().unwrap_or("OKANT_FEL").to_owned(),
                messages: vec![
                    json["beskrivning"]
                        .as_str()
                        .unwrap_or("Försäkringskassan kunde inte ta emot tidredovisningen")
                        .to_owned(),
                ],
            }));
        }
        let field = |k: &str| json[k].as_str().unwrap_or_default().to_owned();
        if field("sha256") != digest {
            return Err(BackendError::Internal(
                "ELT registration acknowledged other bytes than were sent".into(),
            ));
        }
        let receipt = proto::Receipt {
            receipt_id: field("txId"),
            document_id: id.clone(),
            received_at: field("mottagen"),
            sha256: digest.clone(),
            repeat: false,
        };
        self.registered.remember(id, digest, receipt.clone());
        Ok(SubmitOutcome::Receipt(receipt))
    }

    async fn query(&self, q: proto::QueryRequest) -> Result<QueryOutcome, BackendError> {
        use base64::Engine;
        let b64 = &base64::engine::general_purpose::STANDARD;
        let params = String::from_utf8_lossy(&q.provider_parameters).into_owned();
        let version = providers_soap::text_of(&params, "version")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "v9".into());
        if version != "v9" {
            return Ok(QueryOutcome::ProviderError {
                code: "OKAND_VERSION".into(),
                messages: vec![format!("LEFI-version {version} stöds inte; v9 används")],
            });
        }
        let aktorsid = providers_soap::text_of(&params, "aktorsid")
            .unwrap_or_else(|| self.default_aktor.clone());
        let (from, tom) = period(&q);
        let body = match providers_soap::text_of(&params, "lefiJsonFraga")
            .and_then(|s| b64.decode(s.trim()).ok())
        {
            Some(json) => json,
            None => serde_json::json!({
                "personnummer": q.person_id,
                "period": { "from": from, "tom": tom },
                "formansinformation": ["FK:ABB"],
                "ansprak": ["PM:AP"],
                "beslut": ["PM:AP"],
                "preliminaraUtbetalningar": ["FK:ABB"],
                "utbetalningar": ["FK:ABB"],
                "ovrigInformation": ["FK:GEPI"]
            })
            .to_string()
            .into_bytes(),
        };
        let url = self.base.url(&format!(
            "/fk/lefi-extern-formansinformation/{version}/aktorer/{}/formansinformation/fraga",
            aktorsid.replace(['/', '?', '#'], "")
        ));
        let (status, bytes) = send(
            self.base
                .client()
                .post(url)
                .header("Content-Type", "application/json")
                .body(body),
            "LEFI",
        )
        .await?;
        if !status.is_success() {
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            return Ok(QueryOutcome::ProviderError {
                code: json["kod"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("HTTP-{}", status.as_u16())),
                messages: vec![
                    json["beskrivning"]
                        .as_str()
                        .unwrap_or("LEFI svarade med fel")
                        .to_owned(),
                ],
            });
        }
        if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
            return Err(BackendError::Internal("LEFI answer is not JSON".into()));
        }
        Ok(QueryOutcome::Data {
            payload: format!(
                "<ssbt:lefiJsonSvar xmlns:ssbt=\"http://schema.forsakringskassan.se/integration/ssbt/10\">{}</ssbt:lefiJsonSvar>",
                b64.encode(&bytes)
            )
            .into_bytes(),
        })
    }
}

/// Sends a request to the base service (with the call's `traceparent` when it
/// has one): a gateway error (502-504) is
/// `UNAVAILABLE`, a transport failure as `request_error` says; otherwise the
/// status and the body.
async fn send(
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<(reqwest::StatusCode, bytes::Bytes), BackendError> {
    let request = match providers_sdk::base_service_traceparent() {
        Some(t) => request.header("traceparent", t),
        None => request,
    };
    let response = request
        .send()
        .await
        .map_err(providers_soap::request_error)?;
    let status = response.status();
    if matches!(status.as_u16(), 502..=504) {
        return Err(BackendError::Unavailable(format!(
            "{what} answered HTTP {status}"
        )));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(providers_soap::request_error)?;
    Ok((status, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(tx: &str) -> proto::Receipt {
        proto::Receipt {
            receipt_id: tx.into(),
            document_id: "report".into(),
            received_at: "2026-12-01T08:00:00Z".into(),
            sha256: "digest".into(),
            repeat: false,
        }
    }

    #[test]
    fn a_registered_report_is_a_repeat_with_the_same_bytes_and_a_conflict_with_others() {
        let record = Registered::new(2);
        assert!(matches!(record.seen("r1", "d1"), Seen::New));
        record.remember("r1".into(), "d1".into(), receipt("tx1"));
        assert!(matches!(record.seen("r1", "d1"), Seen::Repeat(r) if r.receipt_id == "tx1"));
        assert!(matches!(record.seen("r1", "d2"), Seen::Conflict));
        record.remember("r2".into(), "d".into(), receipt("tx2"));
        record.remember("r3".into(), "d".into(), receipt("tx3"));
        assert!(
            matches!(record.seen("r1", "d1"), Seen::New),
            "oldest forgotten"
        );
    }
}
