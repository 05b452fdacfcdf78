//! The smallest useful adapter: answers every query with a fixed payload.
//! `cargo run -p providers-sdk --example echo_adapter -- --config echo.toml`

use providers_sdk::{Backend, BackendError, Description, Health, QueryOutcome, proto};

struct Echo;

impl Backend for Echo {
    fn describe(&self) -> Description {
        Description {
            provider_id: "ECHO".into(),
            display_name: "Exempelmyndigheten".into(),
            adapter_version: env!("CARGO_PKG_VERSION").into(),
            payload_format: "example/echo".into(),
            submit_document_types: Vec::new(),
        }
    }

    async fn query(&self, q: proto::QueryRequest) -> Result<QueryOutcome, BackendError> {
        if q.person_id.len() != 12 {
            return Err(BackendError::InvalidArgument(
                "person id must have 12 digits".into(),
            ));
        }
        Ok(QueryOutcome::Data {
            payload: b"<ex:svar xmlns:ex=\"urn:example\">inga uppgifter</ex:svar>".to_vec(),
        })
    }

    async fn health(&self) -> Health {
        Health::Serving
    }
}

fn main() -> std::process::ExitCode {
    providers_sdk::main_with(|_cfg| Ok(Echo))
}
