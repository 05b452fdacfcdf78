//! # providers-af
//!
//! The Arbetsförmedlingen adapter: answers the relay's SSBTEK queries by calling
//! Arbetsförmedlingen's base service (SOAP 1.1, ers_stod v2) and turns the answer into the SSBTEK v10
//! `AF` slot payload (inline XML of `SvarMeddelande`). Base-service errors become provider
//! errors (`kalla=BT`); an unreachable or slow base service becomes
//! `UNAVAILABLE` / `DEADLINE_EXCEEDED`. Nothing personal is logged.

use providers_sdk::{
    AdapterConfig, Backend, BackendError, Description, Health, QueryOutcome, proto,
};
use providers_soap::{SoapReply, caller, esc, period, split_fault};

/// The Arbetsförmedlingen backend.
pub struct AfBackend {
    client: reqwest::Client,
    base: String,
}

impl AfBackend {
    pub fn new(cfg: &AdapterConfig) -> anyhow::Result<Self> {
        Ok(Self {
            client: providers_sdk::base_service_client(&cfg.backend)?,
            base: cfg.backend.url.trim_end_matches('/').to_owned(),
        })
    }
}

impl Backend for AfBackend {
    fn describe(&self) -> Description {
        Description {
            provider_id: "AF".into(),
            display_name: "Arbetsförmedlingen".into(),
            adapter_version: env!("CARGO_PKG_VERSION").into(),
            payload_format: "ssbtek-v10/AF".into(),
            submit_document_types: Vec::new(),
        }
    }

    async fn health(&self) -> Health {
        providers_soap::health(&self.client, &format!("{}/af/health", self.base)).await
    }

    async fn query(&self, q: proto::QueryRequest) -> Result<QueryOutcome, BackendError> {
        let (from, tom) = period(&q);
        let (org, namn, hl) = caller(&q);
        let request = format!(
            "<er:FragaMeddelande xmlns:er=\"{NS}\"><er:Fraga><er:OrganisationsnummerForIngivare>16{}</er:OrganisationsnummerForIngivare><er:NamnPaIngivare>{}</er:NamnPaIngivare><er:KontonamnForHandlaggare>{}</er:KontonamnForHandlaggare><er:Referensnummer>{}</er:Referensnummer><er:From>{from}</er:From><er:Tom>{tom}</er:Tom><er:SyfteMedFraga>{}</er:SyfteMedFraga><er:LagParagraf>{}</er:LagParagraf><er:IdentitetsbeteckningFysiskPerson>{}</er:IdentitetsbeteckningFysiskPerson></er:Fraga></er:FragaMeddelande>",
            esc(&org),
            esc(&namn),
            esc(&hl),
            esc(&q.case_id),
            esc(&q.purpose),
            esc(&q.legal_basis),
            esc(&q.person_id)
        );
        let url = format!("{}/af/ersattningsstod/v2", self.base);
        match providers_soap::call(
            &self.client,
            &url,
            "urn:af:ersattningsstod:v2:hamta",
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
                    providers_soap::children(&body, "SvarMeddelande").ok_or_else(|| {
                        BackendError::Internal("answer is not a SvarMeddelande".into())
                    })?;
                Ok(QueryOutcome::Data {
                    payload: children.concat().into_bytes(),
                })
            }
        }
    }
}

const NS: &str = "http://api.arbetsformedlingen.se/arbetssokande/ersattningsstod/v2";
