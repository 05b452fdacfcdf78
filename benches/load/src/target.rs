//! What the bench talks to: read from a `demo.json` (as `shs-relay demo --dir D`
//! writes it), or given piece by piece for a deployed relay.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A client organisation and its certificate.
#[derive(Debug, Clone)]
pub struct Identity {
    pub org: String,
    pub name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The relay and who calls it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `https://host:port`, no trailing slash.
    pub relay_url: String,
    /// Every relay node queries are spread over (demo.json `relays`; else the
    /// relay alone).
    pub nodes: Vec<String>,
    /// The CA the relay's (and the adapters') certificates chain to.
    pub ca: PathBuf,
    /// The relay's organisation number (the `to` of synchronous requests).
    pub node_org: String,
    pub ssbtek_product: String,
    /// The product of asynchronous messages between organisations (demo.json
    /// `products.direct`; the caller needs it in its agreement).
    pub direct_product: Option<String>,
    /// The SSBTEK v10 SOAP facade's path on the relay.
    pub soap_path: String,
    /// The caller (a municipality).
    pub caller: Identity,
    /// The recipient of asynchronous messages (another municipality).
    pub recipient: Option<Identity>,
    /// The adapters (`SLOT`, `https://host:port`) for the baseline.
    pub providers: Vec<(String, String)>,
    /// The certificate the baseline presents to the adapters (the relay's own,
    /// in the demo).
    pub provider_client: Option<(PathBuf, PathBuf)>,
    /// The simulator's admin URL (plain HTTP), to set the scenario.
    pub sim_admin: Option<String>,
}

fn text(v: &serde_json::Value, what: &str) -> anyhow::Result<String> {
    v.as_str()
        .map(str::to_owned)
        .with_context(|| format!("demo.json has no {what}"))
}

fn identity(c: &serde_json::Value) -> anyhow::Result<Identity> {
    Ok(Identity {
        org: text(&c["org"], "clients[].org")?,
        name: text(&c["name"], "clients[].name")?,
        cert: text(&c["cert"], "clients[].cert")?.into(),
        key: text(&c["key"], "clients[].key")?.into(),
    })
}

impl Target {
    /// From `demo.json` (or the directory holding it). `caller` picks the
    /// calling organisation (default: the first municipality); the recipient of
    /// asynchronous messages is the next municipality.
    pub fn from_demo(path: &Path, caller: Option<&str>) -> anyhow::Result<Target> {
        let file = if path.is_dir() {
            path.join("demo.json")
        } else {
            path.to_owned()
        };
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?,
        )
        .with_context(|| format!("{} is not JSON", file.display()))?;
        let municipalities: Vec<&serde_json::Value> = json["clients"]
            .as_array()
            .context("demo.json has no clients")?
            .iter()
            .filter(|c| c["role"] == "municipality")
            .collect();
        let caller_json = match caller {
            Some(org) => json["clients"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["org"] == org))
                .with_context(|| format!("demo.json has no client {org}"))?,
            None => municipalities
                .first()
                .copied()
                .context("demo.json has no municipality")?,
        };
        let caller = identity(caller_json)?;
        let recipient = municipalities
            .iter()
            .find(|c| c["org"] != caller.org.as_str())
            .map(|c| identity(c))
            .transpose()?;
        let ca: PathBuf = text(&json["relay"]["ca"], "relay.ca")?.into();
        // The demo writes the relay's certificate beside the CA.
        let provider_client = ca
            .parent()
            .map(|pki| (pki.join("relay.pem"), pki.join("relay-key.pem")));
        let relay_url = text(&json["relay"]["url"], "relay.url")?
            .trim_end_matches('/')
            .to_owned();
        let mut nodes: Vec<String> = json["relays"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["url"].as_str())
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect();
        if nodes.is_empty() {
            nodes.push(relay_url.clone());
        }
        Ok(Target {
            nodes,
            relay_url,
            ca,
            node_org: text(&json["relay"]["node_org"], "relay.node_org")?,
            ssbtek_product: text(&json["products"]["ssbtek"], "products.ssbtek")?,
            direct_product: json["products"]["direct"].as_str().map(str::to_owned),
            soap_path: json["soap"]["ssbtek"]
                .as_str()
                .unwrap_or("/ssbtek/v10")
                .to_owned(),
            caller,
            recipient,
            providers: json["providers"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| {
                            Some((p["id"].as_str()?.to_owned(), p["url"].as_str()?.to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            provider_client: provider_client.filter(|(c, k)| c.is_file() && k.is_file()),
            sim_admin: json["sim"]["admin"].as_str().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_demo_json_names_the_relay_the_caller_the_recipient_and_the_adapters() {
        let dir = tempfile::tempdir().unwrap();
        let json = serde_json::json!({
            "relay": {"url": "https://127.0.0.1:9000/", "ca": dir.path().join("pki/ca.pem"), "node_org": "2021005489"},
            "clients": [
                {"org": "2120002411", "name": "Sundsvalls kommun", "role": "municipality", "cert": "a.pem", "key": "a-key.pem"},
                {"org": "5566778899", "name": "Drift", "role": "processor", "cert": "p.pem", "key": "p-key.pem"},
                {"org": "2120000142", "name": "Stockholms stad", "role": "municipality", "cert": "b.pem", "key": "b-key.pem"}
            ],
            "products": {"ssbtek": "6f1c3b57-4f0a-4e0e-9a59-55b7e5a0c0d1"},
            "providers": [{"id": "AF", "url": "https://127.0.0.1:9001"}],
            "sim": {"url": "https://127.0.0.1:9100", "admin": "http://127.0.0.1:9101"},
            "soap": {"ssbtek": "/ssbtek/v10"}
        });
        std::fs::write(dir.path().join("demo.json"), json.to_string()).unwrap();
        let t = Target::from_demo(dir.path(), None).unwrap();
        assert_eq!(t.relay_url, "https://127.0.0.1:9000");
        assert_eq!(t.caller.org, "2120002411");
        assert_eq!(t.recipient.unwrap().org, "2120000142");
        assert_eq!(
            t.providers,
            vec![("AF".to_owned(), "https://127.0.0.1:9001".to_owned())]
        );
        assert_eq!(t.sim_admin.as_deref(), Some("http://127.0.0.1:9101"));
        // No relay certificate on disk: no baseline identity.
        assert!(t.provider_client.is_none());
        let t = Target::from_demo(&dir.path().join("demo.json"), Some("2120000142")).unwrap();
        assert_eq!(t.caller.org, "2120000142");
        assert_eq!(t.recipient.unwrap().org, "2120002411");
        assert!(Target::from_demo(dir.path(), Some("1111111111")).is_err());
    }
}
