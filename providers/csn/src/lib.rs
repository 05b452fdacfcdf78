//! # providers-csn
//!
//! The Centrala studiestödsnämnden adapter: answers the relay's SSBTEK queries by calling
//! Centrala studiestödsnämnden's base service (SOAP 1.1, kommunfråga v4) and turns the answer into the SSBTEK v10
//! `CSN` slot payload (base64 of the `CSNSvar` document in `svar`). Base-service errors become provider
//! errors (`kalla=BT`); an unreachable or slow base service becomes
//! `UNAVAILABLE` / `DEADLINE_EXCEEDED`. Nothing personal is logged.

// Exception to [workspace.lints]: 2 string slices (2026-12), not yet rewritten.
#![allow(clippy::string_slice)]

use providers_sdk::{
    AdapterConfig, Backend, BackendError, Description, Health, QueryOutcome, proto,
};
use providers_soap::{SoapReply, caller, esc, period, split_fault};

/// The Centrala studiestödsnämnden backend.
pub struct CsnBackend {
    base: providers_soap::BaseService,
}

impl CsnBackend {
    pub fn new(cfg: &AdapterConfig) -> anyhow::Result<Self> {
        Ok(Self {
            base: providers_soap::BaseService::new(cfg)?,
        })
    }
}

impl Backend for CsnBackend {
    fn describe(&self) -> Description {
        providers_soap::description(
            "CSN",
            "Centrala studiestödsnämnden",
            env!("CARGO_PKG_VERSION"),
        )
    }

    async fn health(&self) -> Health {
        self.base.health("csn").await
    }

    async fn query(&self, q: proto::QueryRequest) -> Result<QueryOutcome, BackendError> {
        use base64::Engine;
        let pnr = &q.person_id;
        if pnr.len() != 12 {
            return Err(BackendError::InvalidArgument(
                "person id must have 12 digits".into(),
            ));
        }
        let (from, tom) = period(&q);
        let (org, _, _) = caller(&q);
        let request = format!(
            "<sam:SBNUppgEkBistandBegar xmlns:sam=\"http://www.sambruk.se/SBNyttomeddelanden\"><sam:Organisationsnummer>{}</sam:Organisationsnummer><sam:Personnummer>{}</sam:Personnummer><sam:Sekel>{}</sam:Sekel><sam:From>{}</sam:From><sam:Tom>{}</sam:Tom></sam:SBNUppgEkBistandBegar>",
            esc(&org),
            esc(&pnr[2..]),
            esc(&pnr[..2]),
            from.replace('-', ""),
            tom.replace('-', "")
        );
        let url = self.base.url("/csn/kommunfraga/v4");
        match providers_soap::call(self.base.client(), &url, "kommunfraga", &request).await? {
            SoapReply::Fault { faultstring, .. } => {
                let (code, messages) = split_fault(&faultstring);
                Ok(QueryOutcome::ProviderError { code, messages })
            }
            SoapReply::Body(body) => {
                let code = providers_soap::text_of(&body, "ResultatKod").unwrap_or_default();
                if !code.is_empty() && code != "0" {
                    let text = providers_soap::text_of(&body, "ResultatText").unwrap_or_default();
                    return Ok(QueryOutcome::ProviderError {
                        code,
                        messages: vec![text],
                    });
                }
                let document = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{body}");
                let encoded = base64::engine::general_purpose::STANDARD.encode(document);
                Ok(QueryOutcome::Data {
                    payload: format!("<ssbt:svar xmlns:ssbt=\"http://schema.forsakringskassan.se/integration/ssbt/10\">{encoded}</ssbt:svar>").into_bytes(),
                })
            }
        }
    }
}
