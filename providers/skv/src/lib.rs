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
    base: providers_soap::BaseService,
}

impl SkvBackend {
    pub fn new(cfg: &AdapterConfig) -> anyhow::Result<Self> {
        Ok(Self {
            base: providers_soap::BaseService::new(cfg)?,
        })
    }
}

impl Backend for SkvBackend {
    fn describe(&self) -> Description {
        providers_soap::description("SKV", "Skatteverket", env!("CARGO_PKG_VERSION"))
    }

    async fn health(&self) -> Health {
        self.base.health("skv").await
    }

    async fn query(&self, q: proto::QueryRequest) -> Result<QueryOutcome, BackendError> {
        let request = format!(
            "<skv:BeskattningsuppgifterRequest xmlns:skv=\"{NS}\"><forfragan>{}</forfragan></skv:BeskattningsuppgifterRequest>",
            esc(&q.person_id)
        );
        let url = self.base.url("/skv/beskattningws");
        match providers_soap::call(
            self.base.client(),
            &url,
            "getBeskattningsuppgifter",
            &request,
        )
        .await?
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
