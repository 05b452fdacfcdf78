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
use providers_soap::{caller, esc, period};

/// The Arbetslöshetskassornas samorganisation backend.
pub struct SoBackend {
    base: providers_soap::BaseService,
}

impl SoBackend {
    pub fn new(cfg: &AdapterConfig) -> anyhow::Result<Self> {
        Ok(Self {
            base: providers_soap::BaseService::new(cfg)?,
        })
    }
}

impl Backend for SoBackend {
    fn describe(&self) -> Description {
        providers_soap::description(
            "SO",
            "Arbetslöshetskassornas samorganisation",
            env!("CARGO_PKG_VERSION"),
        )
    }

    async fn health(&self) -> Health {
        self.base.health("so").await
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
        let url = self.base.url("/so/ubpservice");
        let reply = providers_soap::call(
            self.base.client(),
            &url,
            "GetUnemploymentBenefitPayment",
            &request,
        )
        .await?;
        providers_soap::payload_of(reply, "GetUnemploymentBenefitPaymentResponse")
    }
}

const NS: &str = "http://INT014.UBPService.Schemas";
