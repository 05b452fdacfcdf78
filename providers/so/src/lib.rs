//! # providers-so
//!
//! The Arbetslöshetskassornas samorganisation adapter: answers the relay's SSBTEK queries by calling
//! Arbetslöshetskassornas samorganisation's base service (SOAP 1.1, INT014 UBPService) and turns the answer into the SSBTEK v10
//! `SO` slot payload (inline XML of `GetUnemploymentBenefitPaymentResponseType`). Base-service errors become provider
//! errors (`kalla=BT`); an unreachable or slow base service becomes
//! `UNAVAILABLE` / `DEADLINE_EXCEEDED`. Nothing personal is logged.

use providers_sdk::{
    AdapterConfig, Backend, BackendError, Description, Health, QueryOutcome, proto,
};
use providers_soap::{SoapReply, caller, esc, period, split_fault};

/// The Arbetslöshetskassornas samorganisation backend.
pub struct SoBackend {
    client: reqwest::Client,
    base: String,
}

impl SoBackend {
    pub fn new(cfg: &AdapterConfig) -> anyhow::Result<Self> {
        Ok(Self {
            client: providers_sdk::base_service_client(&cfg.backend)?,
            base: cfg.backend.url.trim_end_matches('/').to_owned(),
        })
    }
}

impl Backend for SoBackend {
    fn describe(&self) -> Description {
        Description {
            provider_id: "SO".into(),
            display_name: "Arbetslöshetskassornas samorganisation".into(),
            adapter_version: env!("CARGO_PKG_VERSION").into(),
            payload_format: "ssbtek-v10/SO".into(),
            submit_document_types: Vec::new(),
        }
    }

    async fn health(&self) -> Health {
        providers_soap::health(&self.client, &format!("{}/so/health", self.base)).await
    }

    async fn query(&self, q: proto::QueryRequest) -> Result<QueryOutcome, BackendError> {
        let (from, tom) = period(&q);
        let (org, namn, hl) = caller(&q);
        let request = format!(
            "<in:GetUnemploymentBenefitPaymentRequest xmlns:in=\"{NS}\"><in:OrganisationsnummerIngivare>16{}</in:OrganisationsnummerIngivare><in:NamnIngivare>{}</in:NamnIngivare><in:KontonamnHandlaggare>{}</in:KontonamnHandlaggare><in:Referensnummer>{}</in:Referensnummer><in:From>{from}</in:From><in:Tom>{tom}</in:Tom><in:Syfte>{}</in:Syfte><in:Paragraf>{}</in:Paragraf><in:IdentificationNumber>{}</in:IdentificationNumber></in:GetUnemploymentBenefitPaymentRequest>",
            esc(&org),
            esc(&namn),
            esc(&hl),
            esc(&q.case_id),
            esc(&q.purpose),
            esc(&q.legal_basis),
            esc(&q.person_id)
        );
        let url = format!("{}/so/ubpservice", self.base);
        match providers_soap::call(
            &self.client,
            &url,
            "GetUnemploymentBenefitPayment",
            &request,
        )
        .await?
        {
            SoapReply::Fault { faultstring, .. } => {
                let (code, messages) = split_fault(&faultstring);
                Ok(QueryOutcome::ProviderError { code, messages })
            }
            SoapReply::Body(body) => {
                let children =
                    providers_soap::children(&body, "GetUnemploymentBenefitPaymentResponse")
                        .ok_or_else(|| BackendError::Internal("unexpected answer".into()))?;
                Ok(QueryOutcome::Data {
                    payload: children.concat().into_bytes(),
                })
            }
        }
    }
}

const NS: &str = "http://INT014.UBPService.Schemas";
