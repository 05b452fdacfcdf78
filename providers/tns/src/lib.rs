//! # providers-tns
//!
//! The Transportstyrelsen adapter: answers the relay's SSBTEK queries by calling
//! Transportstyrelsen's base service (SOAP 1.1, HamtaUppgifter v1) and turns the answer into the SSBTEK v10
//! `TNS` slot payload (inline XML of `HamtaUppgifterResponseType`). Base-service errors become provider
//! errors (`kalla=BT`); an unreachable or slow base service becomes
//! `UNAVAILABLE` / `DEADLINE_EXCEEDED`. Nothing personal is logged.

// Exception to [workspace.lints]: 2 string slices (2026-12), not yet rewritten.
#![allow(clippy::string_slice)]

use providers_sdk::{
    AdapterConfig, Backend, BackendError, Description, Health, QueryOutcome, proto,
};
use providers_soap::{SoapReply, esc, split_fault};

/// The Transportstyrelsen backend.
pub struct TnsBackend {
    base: providers_soap::BaseService,
}

impl TnsBackend {
    pub fn new(cfg: &AdapterConfig) -> anyhow::Result<Self> {
        Ok(Self {
            base: providers_soap::BaseService::new(cfg)?,
        })
    }
}

impl Backend for TnsBackend {
    fn describe(&self) -> Description {
        providers_soap::description("TNS", "Transportstyrelsen", env!("CARGO_PKG_VERSION"))
    }

    async fn health(&self) -> Health {
        self.base.health("tns").await
    }

    async fn query(&self, q: proto::QueryRequest) -> Result<QueryOutcome, BackendError> {
        let pnr = &q.person_id;
        if pnr.len() != 12 {
            return Err(BackendError::InvalidArgument(
                "person id must have 12 digits".into(),
            ));
        }
        let request = format!(
            "<tns:HamtaUppgifter xmlns:tns=\"{NS}\" xmlns:per=\"http://schema.transportstyrelsen.se/ssbtek/person/1\"><tns:identifikation><per:sekel>{}</per:sekel><per:personnummer>{}</per:personnummer></tns:identifikation></tns:HamtaUppgifter>",
            esc(&pnr[..2]),
            esc(&pnr[2..])
        );
        let url = self.base.url("/tns/hamtauppgifter/v1");
        match providers_soap::call(self.base.client(), &url, "HamtaUppgifter", &request).await? {
            SoapReply::Fault { faultstring, .. } => {
                let (code, messages) = split_fault(&faultstring);
                Ok(QueryOutcome::ProviderError { code, messages })
            }
            SoapReply::Body(body) => {
                if providers_soap::text_of(&body, "resultat").as_deref() == Some("FEL") {
                    let code = providers_soap::text_of(&body, "felkod").unwrap_or_default();
                    let text = providers_soap::text_of(&body, "feltext")
                        .unwrap_or_else(|| "Fel hos Transportstyrelsen".into());
                    return Ok(QueryOutcome::ProviderError {
                        code,
                        messages: vec![text],
                    });
                }
                let children = providers_soap::children(&body, "HamtaUppgifterResponse")
                    .ok_or_else(|| BackendError::Internal("unexpected answer".into()))?;
                Ok(QueryOutcome::Data {
                    payload: children.concat().into_bytes(),
                })
            }
        }
    }
}

const NS: &str = "http://schema.transportstyrelsen.se/ssbtek/hamtauppgifterresponder/1";
