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
use providers_soap::{caller, esc, period};

/// The Arbetsförmedlingen backend.
pub struct AfBackend {
    base: providers_soap::BaseService,
}

impl AfBackend {
    pub fn new(cfg: &AdapterConfig) -> anyhow::Result<Self> {
        Ok(Self {
            base: providers_soap::BaseService::new(cfg)?,
        })
    }
}

impl Backend for AfBackend {
    fn describe(&self) -> Description {
        providers_soap::description("AF", "Arbetsförmedlingen", env!("CARGO_PKG_VERSION"))
    }

    async fn health(&self) -> Health {
        self.base.health("af").await
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
        let url = self.base.url("/af/ersattningsstod/v2");
        let reply = providers_soap::call(
            self.base.client(),
            &url,
            "urn:af:ersattningsstod:v2:hamta",
            &request,
        )
        .await?;
        providers_soap::payload_of(reply, "SvarMeddelande")
    }
}

const NS: &str = "http://api.arbetsformedlingen.se/arbetssokande/ersattningsstod/v2";
