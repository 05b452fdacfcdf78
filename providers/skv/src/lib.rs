//! # providers-skv
//!
//! The Skatteverket adapter: answers the relay's SSBTEK queries by calling
//! Skatteverket's base service (SOAP 1.1, BeskattningsuppgifterWS) and turns the answer into the SSBTEK v10
//! `SKV` slot payload (the answer document as a string in `svar`). Base-service errors become provider
//! errors (`kalla=BT`); an unreachable or slow base service becomes
//! `UNAVAILABLE` / `DEADLINE_EXCEEDED`. Nothing personal is logged.

use providers_sdk::{
    AdapterConfig, Backend, BackendError, Description, Health, QueryOutcome, proto,
};
use providers_soap::{SoapReply, esc, split_fault};

/// The Skatteverket backend.
pub struct SkvBackend {
    client: reqwest::Client,
    base: String,
}

impl SkvBackend {
    pub fn new(cfg: &AdapterConfig) -> anyhow::Result<Self> {
        Ok(Self {
            client: providers_sdk::base_service_client(&cfg.backend)?,
            base: cfg.backend.url.trim_end_matches('/').to_owned(),
        })
    }
}

impl Backend for SkvBackend {
    fn describe(&self) -> Description {
        Description {
            provider_id: "SKV".into(),
            display_name: "Skatteverket".into(),
            adapter_version: env!("CARGO_PKG_VERSION").into(),
            payload_format: "ssbtek-v10/SKV".into(),
            submit_document_types: Vec::new(),
        }
    }

    async fn health(&self) -> Health {
        providers_soap::health(&self.client, &format!("{}/skv/health", self.base)).await
    }

    async fn query(&self, q: proto::QueryRequest) -> Result<QueryOutcome, BackendError> {
        let request = format!(
            "<skv:BeskattningsuppgifterRequest xmlns:skv=\"{NS}\"><forfragan>{}</forfragan></skv:BeskattningsuppgifterRequest>",
            esc(&q.person_id)
        );
        let url = format!("{}/skv/beskattningws", self.base);
        match providers_soap::call(&self.client, &url, "getBeskattningsuppgifter", &request).await?
        {
            SoapReply::Fault {
                faultstring,
                detail,
            } => {
                let (fallback, messages) = split_fault(&faultstring);
                let code = providers_soap::text_of(&detail, "MeddelandeKod").unwrap_or(fallback);
                let messages = providers_soap::text_of(&detail, "MeddelandeText")
                    .map(|m| vec![m])
                    .unwrap_or(messages);
                Ok(QueryOutcome::ProviderError { code, messages })
            }
            SoapReply::Body(body) => {
                let children = providers_soap::children(&body, "BeskattningsuppgifterResponse")
                    .ok_or_else(|| BackendError::Internal("unexpected answer".into()))?;
                Ok(QueryOutcome::Data {
                    payload: children.concat().into_bytes(),
                })
            }
        }
    }
}

const NS: &str = "http://beskattningws.ws.service.bs.zg.rsv.se/";
