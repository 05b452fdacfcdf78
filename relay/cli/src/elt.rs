//! `shs elt`: write an example time report, sign it, submit it (SHS or SOAP).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bytes::Bytes;
use chrono::{Datelike, NaiveDate};
use clap::Subcommand;
use relay_elt::soap::{self, SignatureBlock};
use relay_elt::{Receipt, Signer};
use relay_shs::{DataPart, PartHeaders, ProductId, Status, TransferEncoding};

use crate::Target;

#[derive(Subcommand)]
pub enum EltCommand {
    /// Write a valid example Tidredovisning for a test person.
    Example {
        /// The insured person (personSomHarAssistans).
        #[arg(long, default_value = "19121212-1212")]
        person: String,
        /// The assistant (personnummer or samordningsnummer); default: the demo's signer.
        #[arg(long)]
        assistant: Option<String>,
        /// The assistance company's organisation number; default: the demo's signer.
        #[arg(long)]
        anordnare: Option<String>,
        /// The reported month YYYY-MM (default: last month).
        #[arg(long)]
        month: Option<String>,
        /// Write here instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Sign a report: a detached CMS (PKCS#7) signature over its exact bytes, DER.
    /// The signer is --signer-cert/--signer-key (or the global --cert/--key), or
    /// with --demo the demo signer of --role.
    Sign {
        #[arg(long = "in", short = 'i')]
        input: PathBuf,
        /// The signer's certificate (PEM).
        #[arg(long)]
        signer_cert: Option<PathBuf>,
        /// The signer's key (PEM, PKCS#8).
        #[arg(long)]
        signer_key: Option<PathBuf>,
        /// With --demo: `assistant` or `anordnare`.
        #[arg(long)]
        role: Option<String>,
        /// Where to write the DER signature (default: stdout).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Submit a signed report and print the receipt. Without signature files and
    /// with --demo, it is signed with the demo's signers first.
    Submit {
        #[arg(long = "in", short = 'i')]
        input: PathBuf,
        /// The assistant's signature (DER, as `shs elt sign` writes it).
        #[arg(long, alias = "assistent-signatur")]
        assistant_signature: Option<PathBuf>,
        /// The assistance company's signature.
        #[arg(long, alias = "anordnare-signatur")]
        anordnare_signature: Option<PathBuf>,
        /// Use the SkickaTidredovisning SOAP service instead of SHS.
        #[arg(long)]
        soap: bool,
        /// Mark the SHS message as production data (`status="production"`); by
        /// default it is test data (`status="test"`), as a test environment expects.
        #[arg(long)]
        production: bool,
    },
}

fn demo_json(demo: Option<&Path>) -> anyhow::Result<Option<serde_json::Value>> {
    let Some(d) = demo else {
        return Ok(None);
    };
    let path = if d.is_dir() {
        d.join("demo.json")
    } else {
        d.to_owned()
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(serde_json::from_str(&text)?))
}

fn demo_signer(demo: &Option<serde_json::Value>, role: &str) -> Option<(PathBuf, PathBuf, String)> {
    let signers = demo.as_ref()?["elt"]["signers"].as_array()?;
    let s = signers.iter().find(|s| s["role"] == role)?;
    Some((
        PathBuf::from(s["cert"].as_str()?),
        PathBuf::from(s["key"].as_str()?),
        s["id"].as_str()?.to_owned(),
    ))
}

fn load_signer(cert: &Path, key: &Path) -> anyhow::Result<Signer> {
    let c = std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let k = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    Ok(Signer::from_pem(&c, &k)?)
}

/// Commands that need no relay.
pub fn offline(
    demo: Option<&Path>,
    tls_identity: (Option<&Path>, Option<&Path>),
    command: &EltCommand,
) -> anyhow::Result<bool> {
    let demo = demo_json(demo)?;
    match command {
        EltCommand::Example {
            person,
            assistant,
            anordnare,
            month,
            out,
        } => {
            let person = relay_ident::Personnummer::parse(person)
                .map_err(|e| anyhow::anyhow!("--person: {e}"))?;
            let assistant = match assistant {
                Some(a) => a.clone(),
                None => demo_signer(&demo, "assistant")
                    .map(|s| s.2)
                    .unwrap_or_else(|| "190308189802".into()),
            };
            let assistant = relay_ident::Personnummer::parse(&assistant)
                .map_err(|e| anyhow::anyhow!("--assistant: {e}"))?;
            let anordnare = match anordnare {
                Some(a) => a.clone(),
                None => demo_signer(&demo, "anordnare")
                    .map(|s| s.2)
                    .unwrap_or_else(|| "5566770029".into()),
            };
            let anordnare = relay_ident::Organisationsnummer::parse(&anordnare)
                .map_err(|e| anyhow::anyhow!("--anordnare: {e}"))?;
            let month = match month {
                Some(m) => NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d")
                    .context("--month is YYYY-MM")?,
                None => {
                    let today = chrono::Local::now().date_naive();
                    let first = today.with_day(1).unwrap_or(today);
                    first
                        .pred_opt()
                        .unwrap_or(first)
                        .with_day(1)
                        .unwrap_or(first)
                }
            };
            let xml = relay_elt::example::ExampleReport {
                insured: person.as_str(),
                assistant: assistant.as_str(),
                anordnare: anordnare.as_str(),
                month,
                id: uuid::Uuid::new_v4(),
            }
            .to_xml();
            relay_elt::Report::parse(xml.as_bytes()).context("the example is not valid")?;
            match out {
                Some(path) => std::fs::write(path, xml)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{xml}"),
            }
            Ok(true)
        }
        EltCommand::Sign {
            input,
            signer_cert,
            signer_key,
            role,
            out,
        } => {
            let (cert, key) = match (signer_cert, signer_key, role, tls_identity) {
                (Some(c), Some(k), _, _) => (c.clone(), k.clone()),
                (None, None, None, (Some(c), Some(k))) => (c.to_owned(), k.to_owned()),
                (_, _, Some(role), _) => {
                    let (c, k, _) = demo_signer(&demo, role).with_context(|| {
                        format!("no signer with role {role} in demo.json (give --demo, or --signer-cert and --signer-key)")
                    })?;
                    (c, k)
                }
                _ => bail!("give --signer-cert and --signer-key, or --demo and --role"),
            };
            let report =
                std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
            let signature = load_signer(&cert, &key)?.sign(&report)?;
            match out {
                Some(out) => std::fs::write(out, signature)
                    .with_context(|| format!("cannot write {}", out.display()))?,
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&signature)?;
                }
            }
            Ok(true)
        }
        EltCommand::Submit { .. } => Ok(false),
    }
}

/// `shs elt submit`.
pub async fn submit(t: &Target, demo: Option<&Path>, command: EltCommand) -> anyhow::Result<()> {
    let EltCommand::Submit {
        input,
        assistant_signature,
        anordnare_signature,
        soap,
        production,
    } = command
    else {
        return Ok(());
    };
    let demo = demo_json(demo)?;
    let report =
        std::fs::read(&input).with_context(|| format!("cannot read {}", input.display()))?;
    let signature = |file: &Option<PathBuf>, role: &str| -> anyhow::Result<Vec<u8>> {
        match file {
            Some(f) => std::fs::read(f).with_context(|| format!("cannot read {}", f.display())),
            None => {
                let (c, k, _) = demo_signer(&demo, role).with_context(|| {
                    format!("no --{role}-signature and no {role} signer in demo.json")
                })?;
                Ok(load_signer(&c, &k)?.sign(&report)?)
            }
        }
    };
    let assistant = signature(&assistant_signature, "assistant")?;
    let anordnare = signature(&anordnare_signature, "anordnare")?;
    let digest = relay_elt::sha256_hex(&report);
    let receipt = if soap {
        let today = chrono::Local::now().date_naive();
        let block = |der: Vec<u8>| SignatureBlock {
            signature: der,
            ocsp_response: None,
            datum_for_signatur: today,
        };
        let body = soap::request_xml(&report, &block(assistant), &block(anordnare));
        let path = demo
            .as_ref()
            .and_then(|d| d["elt"]["soap_path"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "/elt/SkickaTidredovisning/1".into());
        let response = crate::client(t)?
            .post(format!("{}{path}", t.url))
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", format!("\"{}\"", soap::SOAP_ACTION))
            .body(body)
            .send()
            .await
            .context("cannot reach the relay")?;
        let retry = response
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await?;
        match soap::parse_response(&bytes) {
            Some(soap::Response::TxId(tx)) => {
                println!("tx-id:       {tx}");
                println!("sha256:      {digest} (of {})", input.display());
                return Ok(());
            }
            Some(soap::Response::Fault {
                faultcode,
                faultstring,
                detail,
                ..
            }) => bail!(
                "SOAP fault {faultcode} {detail}: {faultstring}{}",
                retry
                    .map(|r| format!(" (Retry-After: {r} s)"))
                    .unwrap_or_default()
            ),
            None => bail!("the relay's answer is not a SOAP envelope"),
        }
    } else {
        let product = t
            .products
            .get("elt")
            .and_then(|v| v.as_str())
            .context("no ELT product id: demo.json products.elt")?;
        let product = ProductId::parse(product).context("products.elt is not a UUID")?;
        let sig_part = |der: Vec<u8>, kind: &str| DataPart {
            headers: PartHeaders {
                mime_type: relay_elt::SIGNATURE_MIME.into(),
                charset: None,
                transfer_encoding: TransferEncoding::Base64,
                filename: Some(format!("{kind}.p7s")),
            },
            datapart_type: kind.into(),
            body: Bytes::from(der),
        };
        let parts = vec![
            crate::xml_part(
                report.clone(),
                relay_elt::DATAPART_REPORT,
                Some("tidredovisning.xml".into()),
            ),
            sig_part(assistant, relay_elt::DATAPART_ASSISTANT_SIGNATURE),
            sig_part(anordnare, relay_elt::DATAPART_ANORDNARE_SIGNATURE),
        ];
        let mut m = crate::message(t, product, parts);
        m.label.status = if production {
            Status::Production
        } else {
            Status::Test
        };
        let reply = crate::send(t, &m).await?;
        let part = reply
            .parts
            .iter()
            .find(|p| p.datapart_type == relay_elt::DATAPART_RECEIPT)
            .context("the reply carries no mottagningsbekraftelse")?;
        Receipt::parse(&part.body).context("the mottagningsbekraftelse cannot be read")?
    };
    println!("tx-id:       {}", receipt.tx_id);
    println!("report id:   {}", receipt.report_id);
    println!("received:    {}", receipt.received_at);
    println!("sha256:      {}", receipt.sha256);
    if receipt.sha256 != digest {
        bail!("the receipt's sha256 does not match {}", input.display());
    }
    println!("digest matches {}", input.display());
    Ok(())
}
