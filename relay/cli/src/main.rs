//! `shs`: the command-line client for test teams.
//!
//! ```text
//! shs --demo demo ping
//! shs --demo demo ssbtek --person 19121212-1212 [--person ...] [--only CSN,TNS] [--period 2026-01-01..2026-10-31] [--raw]
//! shs --demo demo request --product UUID --in question.xml [--out DIR]
//! shs --demo demo elt example --person 19121212-1212 --out report.xml
//! shs --demo demo elt sign --in report.xml --role assistant --out assistent.p7s
//! shs --demo demo elt submit --in report.xml [--assistant-signature F --anordnare-signature F] [--soap]
//! ```
//!
//! `--demo DIR` (or `DIR/demo.json`) reads the relay URL, CA and client
//! identities the demo wrote; `--url`, `--ca`, `--cert`, `--key` and `--org`
//! name them explicitly instead.

// Exception to [workspace.lints]: 11 indexing/slicing sites (2026-12) in the
// test teams' client, not yet rewritten.
#![allow(clippy::indexing_slicing, clippy::string_slice)]

mod elt;
mod summary;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use relay_ident::{Organisationsnummer, Personnummer};
use relay_shs::{
    ContentBody, DataPart, DataRef, Label, PartHeaders, ProductId, SequenceType, ShsMessage,
    Status, TransferEncoding, TransferType,
};
use relay_ssbtek::{Ingivare, Period, QuestionBuilder, Slot};

#[derive(Parser)]
#[command(
    name = "shs",
    version,
    about = "SHS 1.2 client for shs-relay test teams"
)]
struct Cli {
    /// The demo directory (or its demo.json): relay URL, CA and client identities.
    #[arg(long, global = true)]
    demo: Option<PathBuf>,
    /// Relay base URL (https://host:port).
    #[arg(long, global = true)]
    url: Option<String>,
    /// CA certificate (PEM) the relay's certificate chains to.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, global = true)]
    cert: Option<PathBuf>,
    /// Client key (PEM, PKCS#8).
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    /// The calling organisation (10 digits); with --demo it picks the client.
    #[arg(long, global = true)]
    org: Option<String>,
    /// The relay's organisation number (the `to` of requests).
    #[arg(long, global = true)]
    to: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// SHS ping (product 00000000-0000-0000-0000-000000000000), synchronous.
    Ping,
    /// Any synchronous SHS request: label fields as flags, data parts from files.
    Request {
        /// Product id (UUID).
        #[arg(long, short)]
        product: String,
        /// Data part files, in order.
        #[arg(long = "in", short = 'i', required = true)]
        inputs: Vec<PathBuf>,
        /// datapartType of every part.
        #[arg(long, default_value = "xml")]
        datapart_type: String,
        /// Content type of every part.
        #[arg(long, default_value = "text/xml")]
        content_type: String,
        #[arg(long)]
        corr_id: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        /// Mark the message as test data.
        #[arg(long)]
        test: bool,
        /// Write the reply's label and data parts to this directory (else print).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Send an asynchronous SHS message (prints the tx.id).
    Send {
        /// The receiving organisation (10 digits, optionally `.internal-id`).
        #[arg(long, short = 't')]
        recipient: String,
        /// Product id (UUID).
        #[arg(long, short)]
        product: String,
        /// Data part files, in order.
        #[arg(long = "in", short = 'i', required = true)]
        inputs: Vec<PathBuf>,
        #[arg(long, default_value = "xml")]
        datapart_type: String,
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
        #[arg(long)]
        corr_id: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        /// event (default) or request.
        #[arg(long, default_value = "event")]
        sequence_type: String,
        #[arg(long)]
        test: bool,
    },
    /// List the messages waiting in your outbox (query parameters as Axel's).
    List {
        /// Extra list parameters, e.g. `producttype=confirm` `maxhits=10`.
        #[arg(long = "param", short = 'q')]
        params: Vec<String>,
    },
    /// Fetch messages (one by tx.id, or all listed): writes `<txId>-label.xml` and
    /// the data parts to `--out`, then acknowledges each unless `--no-ack`.
    Fetch {
        #[arg(long, short = 'x')]
        tx_id: Option<String>,
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[arg(long)]
        no_ack: bool,
    },
    /// Ask SSBTEK about one or more persons and print a per-agency summary.
    Ssbtek {
        /// Personnummer or samordningsnummer (repeat for up to 10 persons).
        #[arg(long, required = true)]
        person: Vec<String>,
        /// Only these agencies (comma separated: AF,CSN,FK,SKV,SO,TNS,MIV).
        #[arg(long)]
        only: Option<String>,
        /// Period FROM..TO (default: the last three months).
        #[arg(long)]
        period: Option<String>,
        /// The case worker (handläggare).
        #[arg(long, default_value = "handlaggare-1")]
        handlaggare: String,
        /// The case id (ärendeidentitet).
        #[arg(long, default_value = "ARENDE-1")]
        case_id: String,
        /// Echo the question in the answer.
        #[arg(long)]
        echo: bool,
        /// Print the raw answer XML instead of the summary.
        #[arg(long)]
        raw: bool,
        /// Use the SSBTEK v10 SOAP web service (one call per person) instead of SHS.
        #[arg(long)]
        soap: bool,
    },
    /// ELT time reports: example, sign, submit.
    #[command(subcommand)]
    Elt(elt::EltCommand),
}

/// Where and as whom to connect.
struct Target {
    url: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    org: String,
    org_name: String,
    to: String,
    products: serde_json::Value,
    soap_path: String,
}

fn target(cli: &Cli, default_role: &str) -> anyhow::Result<Target> {
    let demo: Option<serde_json::Value> = match &cli.demo {
        Some(d) => {
            let path = if d.is_dir() {
                d.join("demo.json")
            } else {
                d.clone()
            };
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?,
            )
        }
        None => None,
    };
    let client = demo.as_ref().and_then(|d| {
        let clients = d["clients"].as_array()?;
        match &cli.org {
            Some(org) => clients.iter().find(|c| c["org"] == org.as_str()).cloned(),
            None => clients.iter().find(|c| c["role"] == default_role).cloned(),
        }
    });
    let pick = |flag: &Option<PathBuf>, v: Option<&str>, what: &str| -> anyhow::Result<PathBuf> {
        flag.clone()
            .or_else(|| v.map(PathBuf::from))
            .with_context(|| format!("no {what}: give --{what} or --demo"))
    };
    let url = cli
        .url
        .clone()
        .or_else(|| {
            demo.as_ref()
                .and_then(|d| d["relay"]["url"].as_str().map(str::to_owned))
        })
        .context("no relay URL: give --url or --demo")?;
    Ok(Target {
        url: url.trim_end_matches('/').to_owned(),
        ca: pick(
            &cli.ca,
            demo.as_ref().and_then(|d| d["relay"]["ca"].as_str()),
            "ca",
        )?,
        cert: pick(
            &cli.cert,
            client.as_ref().and_then(|c| c["cert"].as_str()),
            "cert",
        )?,
        key: pick(
            &cli.key,
            client.as_ref().and_then(|c| c["key"].as_str()),
            "key",
        )?,
        org: cli
            .org
            .clone()
            .or_else(|| {
                client
                    .as_ref()
                    .and_then(|c| c["org"].as_str().map(str::to_owned))
            })
            .context("no calling organisation: give --org or --demo")?,
        org_name: client
            .as_ref()
            .and_then(|c| c["name"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "Kommun".into()),
        to: cli
            .to
            .clone()
            .or_else(|| {
                demo.as_ref()
                    .and_then(|d| d["relay"]["node_org"].as_str().map(str::to_owned))
            })
            .context("no relay organisation: give --to or --demo")?,
        soap_path: demo
            .as_ref()
            .and_then(|d| d["soap"]["ssbtek"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "/ssbtek/v10".into()),
        products: demo.map(|d| d["products"].clone()).unwrap_or_default(),
    })
}

fn client(t: &Target) -> anyhow::Result<reqwest::Client> {
    relay_pki::tls::install_crypto_provider();
    let tls = relay_pki::tls::client_config(&t.ca, Some((&t.cert, &t.key)), &[b"http/1.1"])?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(std::time::Duration::from_secs(120))
        .build()?)
}

/// Sends a synchronous SHS message; returns the reply, or the SHS error as an error.
async fn send(t: &Target, message: &ShsMessage) -> anyhow::Result<ShsMessage> {
    let body = message.to_bytes().await;
    let response = client(t)?
        .post(format!("{}/shs/rs", t.url))
        .header("Content-Type", "message/rfc822")
        .body(body)
        .send()
        .await
        .context("cannot reach the relay")?;
    let status = response.status();
    let code = response
        .headers()
        .get("X-shs-errorcode")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes);
        match code {
            Some(code) => bail!("SHS error {code} (HTTP {status}): {}", text.trim()),
            None => bail!("HTTP {status}: {}", text.trim()),
        }
    }
    Ok(ShsMessage::parse(&bytes, None, relay_shs::Limits::default()).await?)
}

fn message(t: &Target, product: ProductId, parts: Vec<DataPart>) -> ShsMessage {
    let mut label = Label::new(
        &t.org,
        Some(&t.to),
        product,
        SequenceType::Request,
        TransferType::Synch,
    );
    if let Some(f) = label.from.as_mut() {
        f.common_name = t.org_name.clone();
    }
    label.content.body = ContentBody::Data(
        parts
            .iter()
            .map(|p| DataRef {
                datapart_type: p.datapart_type.clone(),
                filename: p.headers.filename.clone(),
                ..DataRef::default()
            })
            .collect(),
    );
    ShsMessage { label, parts }
}

fn xml_part(body: Vec<u8>, datapart_type: &str, filename: Option<String>) -> DataPart {
    DataPart {
        headers: PartHeaders {
            mime_type: "text/xml".into(),
            charset: Some("UTF-8".into()),
            transfer_encoding: TransferEncoding::Binary,
            filename,
        },
        datapart_type: datapart_type.into(),
        body: Bytes::from(body),
    }
}

/// One data part per file, in order, with the given datapartType and content type.
fn file_parts(
    inputs: &[PathBuf],
    datapart_type: &str,
    content_type: &str,
) -> anyhow::Result<Vec<DataPart>> {
    inputs
        .iter()
        .map(|path| {
            let body =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let mut part = xml_part(
                body,
                datapart_type,
                path.file_name().map(|f| f.to_string_lossy().into_owned()),
            );
            part.headers.mime_type = content_type.to_owned();
            part.headers.charset = None;
            Ok(part)
        })
        .collect()
}

fn parse_period(s: &str) -> anyhow::Result<Period> {
    let (a, b) = s.split_once("..").context("--period is FROM..TO")?;
    let d = |x: &str| {
        chrono::NaiveDate::parse_from_str(x.trim(), "%Y-%m-%d")
            .with_context(|| format!("not a date: {x}"))
    };
    Period::new(d(a)?, d(b)?).context("--period: FROM must not be after TO")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Elt(e) = &cli.command {
        if elt::offline(
            cli.demo.as_deref(),
            (cli.cert.as_deref(), cli.key.as_deref()),
            e,
        )? {
            return Ok(());
        }
        let t = target(&cli, "elt-vendor")?;
        let Command::Elt(e) = cli.command else {
            return Ok(());
        };
        return elt::submit(&t, cli.demo.as_deref(), e).await;
    }
    let t = target(&cli, "municipality")?;
    match cli.command {
        Command::Elt(_) => unreachable!("handled above"),
        Command::Send {
            recipient,
            product,
            inputs,
            datapart_type,
            content_type,
            corr_id,
            subject,
            sequence_type,
            test,
        } => {
            let product =
                ProductId::parse(&product).context("--product must be a UUID or confirm/error")?;
            let parts = file_parts(&inputs, &datapart_type, &content_type)?;
            let mut m = message(&t, product, parts);
            m.label.transfer_type = TransferType::Asynch;
            m.label.to = Some(relay_shs::To {
                value: recipient,
                common_name: None,
            });
            m.label.sequence_type = Some(match sequence_type.as_str() {
                "request" => SequenceType::Request,
                "event" => SequenceType::Event,
                other => bail!("--sequence-type must be event or request, not {other}"),
            });
            if let Some(c) = corr_id {
                m.label.corr_id = c;
            }
            m.label.subject = subject;
            if test {
                m.label.status = Status::Test;
            }
            let response = client(&t)?
                .post(format!("{}/shs/rs", t.url))
                .header("Content-Type", "message/rfc822")
                .body(m.to_bytes().await)
                .send()
                .await
                .context("cannot reach the relay")?;
            let status = response.status();
            let duplicate = response
                .headers()
                .get("X-shs-duplicatemsg")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let text = response.text().await?;
            if status.as_u16() != 202 {
                bail!("HTTP {status}: {}", text.trim());
            }
            println!(
                "{}{}",
                text.trim(),
                if duplicate == "yes" {
                    " (duplicate)"
                } else {
                    ""
                }
            );
        }
        Command::List { params } => {
            let xml = list_outbox(&t, &params).await?;
            print!("{xml}");
        }
        Command::Fetch { tx_id, out, no_ack } => {
            let ids = match tx_id {
                Some(id) => vec![id],
                None => {
                    let xml = list_outbox(&t, &[]).await?;
                    relay_shs::MessageList::parse(xml.as_bytes())?
                        .messages
                        .into_iter()
                        .map(|m| m.tx_id)
                        .collect()
                }
            };
            let c = client(&t)?;
            for id in ids {
                let r = c
                    .get(format!("{}/shs/ds/{}/{id}", t.url, t.org))
                    .send()
                    .await?;
                if !r.status().is_success() {
                    eprintln!("{id}: HTTP {}: {}", r.status(), r.text().await?.trim());
                    continue;
                }
                let bytes = r.bytes().await?;
                let reply = ShsMessage::parse(&bytes, None, relay_shs::Limits::default()).await?;
                write_reply(&reply, Some(&out))?;
                if !no_ack {
                    let r = c
                        .post(format!("{}/shs/ds/{}/{id}?action=ack", t.url, t.org))
                        .send()
                        .await?;
                    if !r.status().is_success() {
                        eprintln!("{id}: ack failed: HTTP {}", r.status());
                    }
                }
            }
        }
        Command::Ping => {
            let ping = ProductId::Uuid(uuid::Uuid::nil());
            let reply = send(
                &t,
                &message(&t, ping, vec![xml_part(b"ping".to_vec(), "txt", None)]),
            )
            .await?;
            for p in &reply.parts {
                println!("{}", String::from_utf8_lossy(&p.body));
            }
        }
        Command::Request {
            product,
            inputs,
            datapart_type,
            content_type,
            corr_id,
            subject,
            test,
            out,
        } => {
            let product = ProductId::parse(&product).context("--product must be a UUID")?;
            let parts = file_parts(&inputs, &datapart_type, &content_type)?;
            let mut m = message(&t, product, parts);
            if let Some(c) = corr_id {
                m.label.corr_id = c;
            }
            m.label.subject = subject;
            if test {
                m.label.status = Status::Test;
            }
            let reply = send(&t, &m).await?;
            write_reply(&reply, out.as_deref())?;
        }
        Command::Ssbtek {
            person,
            only,
            period,
            handlaggare,
            case_id,
            echo,
            raw,
            soap,
        } => {
            let slots: Vec<Slot> = match only {
                Some(list) => list
                    .split(',')
                    .map(|s| {
                        s.trim().to_uppercase().parse::<Slot>().map_err(|_| {
                            anyhow::anyhow!(
                                "unknown agency {s}; expected one of {}",
                                Slot::ALL.map(Slot::as_str).join(", ")
                            )
                        })
                    })
                    .collect::<anyhow::Result<_>>()?,
                None => Slot::ALL.to_vec(),
            };
            let period = match period {
                Some(p) => parse_period(&p)?,
                None => {
                    let today = chrono::Local::now().date_naive();
                    Period::new(today - chrono::Months::new(3), today).context("period")?
                }
            };
            let org = Organisationsnummer::parse(&t.org)
                .context("the calling organisation is not a valid organisation number")?;
            let mut parts = Vec::new();
            let mut persons = Vec::new();
            for p in &person {
                let pnr = Personnummer::parse(p)
                    .map_err(|e| anyhow::anyhow!("--person {}: {e}", persons.len() + 1))?;
                let q = QuestionBuilder::new(
                    pnr,
                    Ingivare::new(org, t.org_name.as_str(), handlaggare.as_str()),
                    &case_id,
                    period,
                )
                .include_all(slots.iter().copied())
                .fragan_skall_inkluderas(echo)
                .korrelationsid(&uuid::Uuid::new_v4().to_string())
                .fk_lefi(
                    "000-00",
                    &relay_ssbtek::LefiRequest::ekonomiskt_bistand(pnr, period),
                )
                .build()
                .map_err(|e| anyhow::anyhow!("cannot build the question: {e}"))?;
                parts.push(xml_part(
                    q.to_xml(true).to_vec(),
                    "xml",
                    Some(format!("fraga-{}.xml", parts.len() + 1)),
                ));
                persons.push(pnr);
            }
            if soap {
                for (part, pnr) in parts.iter().zip(&persons) {
                    let answer = soap_call(&t, &part.body).await?;
                    if raw {
                        println!("{answer}");
                    } else {
                        print!("{}", summary::render(pnr.as_str(), answer.as_bytes()));
                    }
                }
                return Ok(());
            }
            let product = t.products["ssbtek"]
                .as_str()
                .and_then(ProductId::parse)
                .context("no SSBTEK product id: use --demo (demo.json names it)")?;
            let reply = send(&t, &message(&t, product, parts)).await?;
            for (i, part) in reply.parts.iter().enumerate() {
                if raw {
                    println!("{}", String::from_utf8_lossy(&part.body));
                } else {
                    let who = persons
                        .get(i)
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default();
                    print!("{}", summary::render(&who, &part.body));
                }
            }
        }
    }
    Ok(())
}

/// The outbox's message list (XML).
async fn list_outbox(t: &Target, params: &[String]) -> anyhow::Result<String> {
    let query: Vec<(String, String)> = params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("{p}: use NAME=VALUE"))
        })
        .collect::<anyhow::Result<_>>()?;
    let r = client(t)?
        .get(format!("{}/shs/ds/{}", t.url, t.org))
        .query(&query)
        .send()
        .await
        .context("cannot reach the relay")?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {}", text.trim());
    }
    Ok(text)
}

/// One `hamtaBastjanstInformation` over the SOAP web service; the response
/// envelope, or the fault as an error.
async fn soap_call(t: &Target, question: &[u8]) -> anyhow::Result<String> {
    let q = String::from_utf8_lossy(question);
    let q = match q.find("?>") {
        Some(i) if q.starts_with("<?xml") => q[i + 2..].to_owned(),
        _ => q.into_owned(),
    };
    let envelope = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>{q}</soap:Body></soap:Envelope>"
    );
    let response = client(t)?
        .post(format!("{}{}", t.url, t.soap_path))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"\"")
        .body(envelope)
        .send()
        .await
        .context("cannot reach the relay")?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("SOAP fault (HTTP {status}): {text}");
    }
    Ok(text)
}

fn write_reply(reply: &ShsMessage, out: Option<&Path>) -> anyhow::Result<()> {
    match out {
        None => {
            for p in &reply.parts {
                println!("{}", String::from_utf8_lossy(&p.body));
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            std::fs::write(
                dir.join(format!("{}-label.xml", reply.label.tx_id)),
                reply.label.to_xml(),
            )?;
            for (i, p) in reply.parts.iter().enumerate() {
                let name = p
                    .headers
                    .filename
                    .clone()
                    .unwrap_or_else(|| format!("{}-{}.dat", reply.label.tx_id, i + 1));
                let name = Path::new(&name)
                    .file_name()
                    .map(|f| f.to_owned())
                    .unwrap_or_default();
                std::fs::write(dir.join(name), &p.body)?;
            }
            println!("reply {} written to {}", reply.label.tx_id, dir.display());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shs: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shs: {e:#}");
            ExitCode::FAILURE
        }
    }
}
