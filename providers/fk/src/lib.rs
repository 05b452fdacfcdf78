//! # providers-fk
//!
//! The Försäkringskassan (med Pensionsmyndigheten) adapter: answers the relay's SSBTEK queries by calling
//! Försäkringskassan (med Pensionsmyndigheten)'s base service (LEFI v9 REST/JSON) and turns the answer into the SSBTEK v10
//! `FK` slot payload (base64 of the LEFI JSON answer in `lefiJsonSvar`). Base-service errors become provider
//! errors (`kalla=BT`); an unreachable or slow base service becomes
//! `UNAVAILABLE` / `DEADLINE_EXCEEDED`. Nothing personal is logged.

use providers_sdk::{
    AdapterConfig, Backend, BackendError, Description, Health, QueryOutcome, proto,
};
use providers_soap::period;

/// The Försäkringskassan (med Pensionsmyndigheten) backend.
pub struct FkBackend {
    base: providers_soap::BaseService,
    /// `extra.aktorsid`: the aktörs-id used when the question carries none.
    default_aktor: String,
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
        })
    }
}

impl Backend for FkBackend {
    fn describe(&self) -> Description {
        providers_soap::description(
            "FK",
            "Försäkringskassan (med Pensionsmyndigheten)",
            env!("CARGO_PKG_VERSION"),
        )
    }

    async fn health(&self) -> Health {
        self.base.health("fk").await
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
        let response = self
            .base
            .client()
            .post(url)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(providers_soap::request_error)?;
        let status = response.status();
        if matches!(status.as_u16(), 502..=504) {
            return Err(BackendError::Unavailable(format!(
                "LEFI answered HTTP {status}"
            )));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(providers_soap::request_error)?;
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
