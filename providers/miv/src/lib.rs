//! # providers-miv
//!
//! The Migrationsverket adapter: answers the relay's SSBTEK queries by calling
//! Migrationsverket's base service (SOAP 1.1, SSBTEKWebService v1) and turns the answer into the SSBTEK v10
//! `MIV` slot payload (inline XML of `findByPersonnummerResponse`). Base-service errors become provider
//! errors (`kalla=BT`); an unreachable or slow base service becomes
//! `UNAVAILABLE` / `DEADLINE_EXCEEDED`. Nothing personal is logged.

use providers_sdk::{
    AdapterConfig, Backend, BackendError, Description, Health, QueryOutcome, proto,
};
use providers_soap::{SoapReply, caller, esc, split_fault};

/// The Migrationsverket backend.
pub struct MivBackend {
    base: providers_soap::BaseService,
}

impl MivBackend {
    pub fn new(cfg: &AdapterConfig) -> anyhow::Result<Self> {
        Ok(Self {
            base: providers_soap::BaseService::new(cfg)?,
        })
    }
}

impl Backend for MivBackend {
    fn describe(&self) -> Description {
        providers_soap::description("MIV", "Migrationsverket", env!("CARGO_PKG_VERSION"))
    }

    async fn health(&self) -> Health {
        self.base.health("miv").await
    }

    async fn query(&self, q: proto::QueryRequest) -> Result<QueryOutcome, BackendError> {
        let (org, namn, _) = caller(&q);
        let request = format!(
            "<miv:findByPersonnummer xmlns:miv=\"{NS}\"><query><korrelationsid>{}</korrelationsid><personnummer>{}</personnummer><ingivare><organisationsnummer>{}</organisationsnummer><namn>{}</namn></ingivare></query></miv:findByPersonnummer>",
            esc(&q.transaction_id),
            esc(&q.person_id),
            esc(&org),
            esc(&namn)
        );
        let url = self.base.url("/miv/ssbtek/v1");
        match providers_soap::call(self.base.client(), &url, "findByPersonnummer", &request).await?
        {
            SoapReply::Fault {
                faultstring,
                detail,
            } => {
                let code = providers_soap::text_of(&detail, "faultCode");
                let (fallback, messages) = split_fault(&faultstring);
                let messages = providers_soap::text_of(&detail, "faultString")
                    .map(|m| vec![m])
                    .unwrap_or(messages);
                Ok(QueryOutcome::ProviderError {
                    code: code.unwrap_or(fallback),
                    messages,
                })
            }
            SoapReply::Body(body) => {
                let children = providers_soap::children(&body, "findByPersonnummerResponse")
                    .ok_or_else(|| BackendError::Internal("unexpected answer".into()))?;
                Ok(QueryOutcome::Data {
                    payload: children.concat().into_bytes(),
                })
            }
        }
    }
}

const NS: &str = "http://schema.migrationsverket.se/ssbtek/1/";
