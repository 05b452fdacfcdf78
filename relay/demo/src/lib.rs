//! The one-command development stack: `shs-relay demo --dir DIR`.
//!
//! Generates a development PKI with rcgen, writes every configuration, starts the
//! simulator (`shs-sim`), the seven adapters and the relay **as separate
//! processes** (the same binaries an operator deploys), waits until they answer,
//! and writes `DIR/demo.json` describing the stack. Every process binds a free
//! port and reports it on its first stdout line, so two demos can run side by
//! side. The end-to-end tests start their stacks through [`Demo::start`] too.
//!
//! Not for production: nothing on the request path imports this crate (only the
//! `shs-relay` binary's `demo` command, the tests and the load bench do), and it
//! imports nothing of `relay-server`.

// Exception to [workspace.lints]: 3 indexing/slicing sites (2026-12) in the
// development stack, not yet rewritten.
#![allow(clippy::indexing_slicing, clippy::string_slice)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use relay_pki::{CertFiles, DevCa, Subject};
use relay_ssbtek::Slot;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// SHS product id the demo gives SSBTEK.
pub const SSBTEK_PRODUCT: &str = "6f1c3b57-4f0a-4e0e-9a59-55b7e5a0c0d1";
/// SHS ping product id.
pub const PING_PRODUCT: &str = "00000000-0000-0000-0000-000000000000";
/// The relay's organisation number in the demo (Försäkringskassan operates SSBTEK).
pub const NODE_ORG: &str = "2021005489";
/// SHS product id the demo gives ELT (time reports).
pub const ELT_PRODUCT: &str = "3e9a8f52-6b1d-4c7e-a0f4-2d5b8c9e7a13";
/// A product the demo's municipalities may exchange with each other by direct
/// asynchronous delivery (the relay stores and forwards it; demo.json
/// `products.direct`).
pub const DIRECT_PRODUCT: &str = "3f8b1c2e-6a41-4c1e-9d2a-0b6f4f3f5a10";
/// The path of the SkickaTidredovisning SOAP service in the demo.
pub const ELT_SOAP_PATH: &str = "/elt/SkickaTidredovisning/1";
/// The demo's ELT system vendor (a client with role `elt-vendor`).
pub const ELT_VENDOR: &str = "5566770011";
/// The demo's assistance company (anordnare) and its test assistant.
pub const ELT_ANORDNARE: &str = "5566770029";
pub const ELT_ASSISTANT: &str = "190308189802";

/// The binary of a slot's adapter crate (`providers/<id>`). The `match` is
/// exhaustive: a new [`Slot`] does not compile until its adapter is named here.
pub const fn adapter_binary(slot: Slot) -> &'static str {
    match slot {
        Slot::Af => "shs-adapter-af",
        Slot::Csn => "shs-adapter-csn",
        Slot::Fk => "shs-adapter-fk",
        Slot::Skv => "shs-adapter-skv",
        Slot::So => "shs-adapter-so",
        Slot::Tns => "shs-adapter-tns",
        Slot::Miv => "shs-adapter-miv",
    }
}

/// The adapters, one per [`Slot`] in XSD order: (slot id, binary name).
pub fn adapters() -> impl Iterator<Item = (&'static str, &'static str)> {
    Slot::ALL
        .into_iter()
        .map(|slot| (slot.as_str(), adapter_binary(slot)))
}

/// A client organisation the demo issues a certificate to.
#[derive(Debug, Clone, Serialize)]
pub struct DemoClient {
    pub org: String,
    pub name: String,
    pub role: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoRelay {
    pub url: String,
    pub ca: PathBuf,
    pub node_org: String,
    pub config: PathBuf,
    /// `test`: SHS messages to ELT must carry `status="test"`.
    pub environment: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoProvider {
    pub id: String,
    /// The adapter's endpoint (the first replica's, when there are several).
    pub url: String,
    /// Every replica's endpoint, when the adapter runs as several
    /// ([`DemoOptions::replicas`]); absent otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<String>,
    /// The adapter's `maintenance_file`: planned maintenance of the agency's
    /// base service written here (`[[window]]`, see the SDK's `maintenance`)
    /// is announced to the relay and shown in its status feed. Absent until
    /// written.
    pub maintenance_file: PathBuf,
    /// `http://127.0.0.1:PORT`: the adapter's admin listener (`/metrics`,
    /// `/livez`, `/readyz`; the first replica's when there are several).
    pub admin: String,
    /// Every replica's admin listener, when there are several; absent otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replica_admins: Vec<String>,
    /// `"python"` when the Python reference adapter serves the slot
    /// ([`DemoOptions::python_adapters`]); absent for the Rust adapters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implementation: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoSim {
    pub url: String,
    pub admin: String,
}

/// The contents of `demo.json`. Keys are stable; later versions only add keys.
#[derive(Debug, Clone, Serialize)]
pub struct DemoInfo {
    pub relay: DemoRelay,
    pub clients: Vec<DemoClient>,
    pub products: BTreeMap<String, String>,
    pub providers: Vec<DemoProvider>,
    pub sim: DemoSim,
    pub logs: PathBuf,
    /// `{"ssbtek": "/ssbtek/v10"}`: the SOAP web service paths on the relay.
    pub soap: BTreeMap<String, String>,
    /// `{"url": "http://127.0.0.1:PORT", "probe": "http://127.0.0.1:PORT"}`:
    /// the relay's admin listener and its read-only probe listener
    /// (`[admin] probe_listen`: `/livez`, `/readyz`, `/metrics`).
    pub admin: BTreeMap<String, String>,
    /// `{"file": ".../audit.jsonl", "key_file": ".../pseudonym.key"}`.
    pub audit: BTreeMap<String, PathBuf>,
    /// ELT test material: the signing CA, signer certificates and the SOAP path.
    pub elt: DemoElt,
    /// Every relay node, the first being `relay`/`admin`; only with `--nodes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relays: Option<Vec<DemoNode>>,
}

/// `demo.json` `relays[]`: one relay node's front and admin listener.
#[derive(Debug, Clone, Serialize)]
pub struct DemoNode {
    pub url: String,
    pub admin: String,
    /// Its configuration file.
    pub config: PathBuf,
}

/// `demo.json` `elt`.
#[derive(Debug, Clone, Serialize)]
pub struct DemoElt {
    /// The CA that signs signer certificates (PEM); Försäkringskassan's adapter trusts it.
    pub signing_ca: PathBuf,
    pub signers: Vec<DemoSigner>,
    pub soap_path: String,
    /// The signing CA's CRL (PEM), which the relay checks (`[elt] crls`); it
    /// lists `revoked_signer`.
    pub crl: PathBuf,
    /// A second certificate of the assistant, revoked (key compromise): every
    /// signature made with it is refused (ELT-SIGNATURE naming revocation).
    pub revoked_signer: DemoSigner,
    /// A delegated OCSP responder of the signing CA: responses it signs
    /// (`relay_elt::revocation::OcspResponder`) are accepted as `ocspResponse`.
    pub ocsp_responder: DemoCert,
    /// The mandates in the relay's configuration: the vendor may submit for
    /// these assistance companies.
    pub mandates: Vec<DemoMandate>,
}

/// A certificate and its key (PEM).
#[derive(Debug, Clone, Serialize)]
pub struct DemoCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `demo.json` `elt.mandates[]`.
#[derive(Debug, Clone, Serialize)]
pub struct DemoMandate {
    pub vendor: String,
    pub anordnare: Vec<String>,
}

/// A signer: `role` is `assistant` (id = personnummer) or `anordnare` (id =
/// organisation number); `cert`/`key` are PEM (PKCS#8 key).
#[derive(Debug, Clone, Serialize)]
pub struct DemoSigner {
    pub role: String,
    pub id: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where certificates, configs, logs and demo.json go (created if missing).
    pub dir: PathBuf,
    /// Simulator scenario file.
    pub scenario: Option<PathBuf>,
    /// Where the binaries are (default: beside the running executable).
    pub bin_dir: PathBuf,
    /// Extra TOML appended to the relay configuration (tests use it to withdraw
    /// a municipality or shorten deadlines).
    pub relay_extra: String,
    /// Per-provider timeout in the relay configuration (default 10 s).
    pub provider_timeout_ms: Option<u64>,
    /// The SSBTEK deadline for one person (default 12 s).
    pub deadline_base_ms: Option<u64>,
    /// Municipalities withdrawn by a provider: (provider id, organisation number).
    pub withdrawn: Vec<(String, String)>,
    /// The relay's in-flight request limit (default 256).
    pub max_in_flight: Option<usize>,
    /// Extra lines inside the relay's `[elt]` table.
    pub elt_extra: String,
    /// ELT calls per second per vendor (default 1, the terms' figure).
    pub elt_calls_per_second: Option<f64>,
    /// Extra lines inside the relay's `[probe]` table (tests shorten the interval).
    pub probe_extra: String,
    /// An OTLP/gRPC collector (`http://host:port`): when set, the relay and
    /// every adapter export their spans there (`[tracing]` in their configs).
    pub otlp_endpoint: Option<String>,
    /// Relay nodes to start (default 1). With more than one they share one
    /// PostgreSQL store and `demo.json` lists them all under `relays`.
    pub nodes: usize,
    /// The PostgreSQL database the nodes share (`postgres://...`); each demo
    /// gets a schema of its own in it. Without it, several nodes need the
    /// throwaway cluster the demo starts itself (PostgreSQL's server binaries).
    pub postgres: Option<String>,
    /// Adapters run as several replicas: provider id → how many (default one
    /// each). Replica `n` (from 1) runs the same binary with its own copy of the
    /// adapter's configuration (`config/adapter-csn.toml`, `adapter-csn-2.toml`,
    /// ...), pinned to the port it first bound so that
    /// [`Demo::stop_replica`] and [`Demo::start_replica`] restart it at the same
    /// address; the relay lists every replica (`endpoints = [...]`).
    pub replicas: BTreeMap<String, usize>,
    /// Extra lines inside the nodes' `[store]` table, with PostgreSQL (tests
    /// shorten `lease_s` or `statement_timeout_ms`).
    pub store_extra: String,
    /// Extra lines inside the relay's `[mailbox]` table (tests lower quotas).
    pub mailbox_extra: String,
    /// Slots served by the Python reference adapter (`providers/python`)
    /// instead of the Rust one: `shs-relay demo --python-adapter tns`. Only
    /// `TNS` has one. It runs on [`python_interpreter`] with the same
    /// configuration file the Rust adapter would get; `demo.json` marks its
    /// provider `"implementation": "python"`.
    pub python_adapters: Vec<String>,
}

impl DemoOptions {
    pub fn new(dir: impl Into<PathBuf>) -> anyhow::Result<Self> {
        Ok(Self {
            dir: dir.into(),
            scenario: None,
            bin_dir: default_bin_dir()?,
            relay_extra: String::new(),
            provider_timeout_ms: None,
            deadline_base_ms: None,
            withdrawn: Vec::new(),
            max_in_flight: None,
            elt_extra: String::new(),
            elt_calls_per_second: None,
            probe_extra: String::new(),
            otlp_endpoint: None,
            nodes: 1,
            postgres: None,
            replicas: BTreeMap::new(),
            store_extra: String::new(),
            mailbox_extra: String::new(),
            python_adapters: Vec::new(),
        })
    }

    /// Switches the relay's prober off (`[probe] interval_s = 0`): for tests
    /// that count every request, refusal or span, to which the prober's own
    /// SHS pings would add.
    pub fn without_prober(&mut self) {
        self.probe_extra.push_str("interval_s = 0\n");
    }
}

/// The directory holding the workspace's binaries: beside this executable, or one
/// level up when running from `target/*/deps` (test binaries).
pub fn default_bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no directory")?;
    if dir.join("shs-relay").is_file() || dir.file_name() != Some("deps".as_ref()) {
        Ok(dir.to_owned())
    } else {
        Ok(dir.parent().context("no parent")?.to_owned())
    }
}

/// The slots the Python reference adapter can serve.
pub const PYTHON_ADAPTER_SLOTS: [&str; 1] = ["TNS"];

/// The command that makes the Python environment the suite and the demo use.
pub const PYTHON_VENV_COMMAND: &str = "python3 -m venv target/venv && target/venv/bin/pip install -r providers/python/requirements.txt";

/// The workspace root for binaries in `bin_dir` (`target/debug` or
/// `target/release`): two levels up.
fn workspace_of(bin_dir: &Path) -> Option<PathBuf> {
    bin_dir.parent()?.parent().map(Path::to_owned)
}

/// The Python interpreter for the Python reference adapter: `$SHS_PYTHON`, or
/// the suite's virtual environment `<workspace>/target/venv/bin/python3`.
/// The error names the command that creates it.
pub fn python_interpreter(bin_dir: &Path) -> anyhow::Result<PathBuf> {
    let python = match std::env::var_os("SHS_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => workspace_of(bin_dir)
            .context("cannot tell the workspace from the binaries' directory")?
            .join("target/venv/bin/python3"),
    };
    if !python.is_file() {
        bail!(
            "no Python interpreter at {} for the Python adapter: create the environment from the workspace root with `{PYTHON_VENV_COMMAND}` (or set SHS_PYTHON)",
            python.display()
        );
    }
    Ok(python)
}

/// The Python reference adapter: `<workspace>/providers/python/adapter.py`.
pub fn python_adapter_script(bin_dir: &Path) -> anyhow::Result<PathBuf> {
    let script = workspace_of(bin_dir)
        .context("cannot tell the workspace from the binaries' directory")?
        .join("providers/python/adapter.py");
    anyhow::ensure!(
        script.is_file(),
        "the Python adapter is not at {} (run from a checkout of the repository)",
        script.display()
    );
    Ok(script)
}

/// A running stack. Dropping it kills every child process.
pub struct Demo {
    pub info: DemoInfo,
    pub dir: PathBuf,
    /// (name, process): the binary's name, with `-N` for replica N > 1 of an adapter.
    children: Vec<(String, Child)>,
    bin_dir: PathBuf,
    /// (database URL, schema) of the nodes' PostgreSQL store: the schema is
    /// this demo's own and is dropped when the demo stops.
    postgres_schema: Option<(String, String)>,
}

struct Pki {
    ca: PathBuf,
    relay: CertFiles,
    /// The relay's prober, a client of its own front (`[probe] client_cert`).
    prober: CertFiles,
    sim: CertFiles,
    adapters: BTreeMap<&'static str, CertFiles>,
    clients: Vec<DemoClient>,
    elt: DemoElt,
}

/// The demo's client organisations: three municipalities, a data processor and
/// an ELT system vendor.
const CLIENTS: [(&str, &str, &str); 5] = [
    ("2120002411", "Sundsvalls kommun", "municipality"),
    ("2120000142", "Stockholms stad", "municipality"),
    ("2120001355", "Göteborgs stad", "municipality"),
    ("5566778899", "Exempel Drift AB", "processor"),
    (ELT_VENDOR, "Exempel Systemleverantör AB", "elt-vendor"),
];

fn make_pki(dir: &Path) -> anyhow::Result<Pki> {
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki)?;
    let ca = DevCa::new("shs-relay demo CA")?;
    let ca_files = ca.as_issued().write(&pki, "ca")?;
    let local = ["localhost", "127.0.0.1"];
    let relay = ca.server_cert("shs-relay", &local)?.write(&pki, "relay")?;
    let prober = ca
        .client_cert(&Subject {
            serial_number: Some(NODE_ORG),
            organisation: Some("shs-relay demo"),
            common_name: "shs-relay demo prober",
        })?
        .write(&pki, "prober")?;
    let sim = ca.server_cert("shs-sim", &local)?.write(&pki, "sim")?;
    let mut adapters = BTreeMap::new();
    for (id, _) in crate::adapters() {
        let stem = format!("adapter-{}", id.to_lowercase());
        adapters.insert(id, ca.server_cert(&stem, &local)?.write(&pki, &stem)?);
    }
    let mut clients = Vec::new();
    for (org, name, role) in CLIENTS {
        let files = ca
            .client_cert(&Subject {
                serial_number: Some(org),
                organisation: Some(name),
                common_name: name,
            })?
            .write(&pki, &format!("client-{org}"))?;
        clients.push(DemoClient {
            org: org.into(),
            name: name.into(),
            role: role.into(),
            cert: files.cert,
            key: files.key,
        });
    }
    // ELT: a separate signing CA (the e-identity issuer) and two signers.
    let signing_ca = DevCa::new("shs-relay demo ELT signing CA")?;
    let signing_ca_files = signing_ca.as_issued().write(&pki, "elt-signing-ca")?;
    let mut signers = Vec::new();
    for (role, id, name) in [
        ("assistant", ELT_ASSISTANT, "Assistent Testsson"),
        ("anordnare", ELT_ANORDNARE, "Exempel Assistans AB"),
    ] {
        let files = signing_ca
            .signing_cert(&Subject {
                serial_number: Some(id),
                organisation: (role == "anordnare").then_some(name),
                common_name: name,
            })?
            .write(&pki, &format!("elt-signer-{role}"))?;
        signers.push(DemoSigner {
            role: role.into(),
            id: id.into(),
            cert: files.cert,
            key: files.key,
        });
    }
    // A revoked second certificate of the assistant, the CA's CRL listing it,
    // and a delegated OCSP responder.
    let revoked = signing_ca.signing_cert(&Subject {
        serial_number: Some(ELT_ASSISTANT),
        organisation: None,
        common_name: "Assistent Testsson (revoked)",
    })?;
    let revoked_files = revoked.write(&pki, "elt-signer-assistant-revoked")?;
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(24 * 3600);
    let crl = signing_ca.crl(
        &[relay_pki::Revoked {
            cert_pem: &revoked.cert_pem,
            at: now - day,
            key_compromise: true,
        }],
        now - day,
        now + 30 * day,
    )?;
    let crl_path = pki.join("elt-signing-ca-crl.pem");
    std::fs::write(&crl_path, crl)?;
    let responder = signing_ca
        .ocsp_responder_cert("shs-relay demo ELT OCSP responder")?
        .write(&pki, "elt-ocsp-responder")?;
    Ok(Pki {
        ca: ca_files.cert,
        relay,
        prober,
        sim,
        adapters,
        clients,
        elt: DemoElt {
            signing_ca: signing_ca_files.cert,
            signers,
            soap_path: ELT_SOAP_PATH.into(),
            crl: crl_path,
            revoked_signer: DemoSigner {
                role: "assistant".into(),
                id: ELT_ASSISTANT.into(),
                cert: revoked_files.cert,
                key: revoked_files.key,
            },
            ocsp_responder: DemoCert {
                cert: responder.cert,
                key: responder.key,
            },
            mandates: vec![DemoMandate {
                vendor: ELT_VENDOR.into(),
                anordnare: vec![ELT_ANORDNARE.into()],
            }],
        },
    })
}

fn q(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

impl Demo {
    /// Generates the PKI and configs, starts every process, waits until each has
    /// reported its address, and writes `demo.json`.
    pub async fn start(opts: DemoOptions) -> anyhow::Result<Demo> {
        std::fs::create_dir_all(&opts.dir)
            .with_context(|| format!("cannot create {}", opts.dir.display()))?;
        let dir = std::fs::canonicalize(&opts.dir)?;
        let config_dir = dir.join("config");
        let logs = dir.join("logs");
        std::fs::create_dir_all(&config_dir)?;
        std::fs::create_dir_all(&logs)?;
        std::fs::create_dir_all(dir.join("mailbox"))?;
        // The demo creates its mailbox key file itself (the relay never does);
        // every node of a demo shares it.
        let kek = dir.join("mailbox").join("kek.key");
        if !kek.exists() {
            relay_mailbox::KeyFile::create(&kek)?;
        }
        for bin in ["shs-relay", "shs-sim"]
            .into_iter()
            .chain(adapters().map(|(_, b)| b))
        {
            if !opts.bin_dir.join(bin).is_file() {
                bail!(
                    "{} not found in {}: build every binary first (cargo build --release --workspace --bins)",
                    bin,
                    opts.bin_dir.display()
                );
            }
        }
        let python_adapters: Vec<String> = opts
            .python_adapters
            .iter()
            .map(|s| s.trim().to_ascii_uppercase())
            .collect();
        let python = if python_adapters.is_empty() {
            None
        } else {
            if let Some(s) = python_adapters
                .iter()
                .find(|s| !PYTHON_ADAPTER_SLOTS.contains(&s.as_str()))
            {
                bail!(
                    "--python-adapter {s}: the Python reference adapter serves {} only",
                    PYTHON_ADAPTER_SLOTS.join(", ")
                );
            }
            Some((
                python_interpreter(&opts.bin_dir)?,
                python_adapter_script(&opts.bin_dir)?,
            ))
        };
        let pki = make_pki(&dir)?;
        let mut demo = Demo {
            info: DemoInfo {
                relay: DemoRelay {
                    url: String::new(),
                    ca: pki.ca.clone(),
                    node_org: NODE_ORG.into(),
                    config: config_dir.join("relay.toml"),
                    environment: "test".into(),
                },
                clients: pki.clients.clone(),
                products: [
                    ("ssbtek".to_owned(), SSBTEK_PRODUCT.to_owned()),
                    ("ping".to_owned(), PING_PRODUCT.to_owned()),
                    ("elt".to_owned(), ELT_PRODUCT.to_owned()),
                    ("direct".to_owned(), DIRECT_PRODUCT.to_owned()),
                ]
                .into(),
                providers: Vec::new(),
                sim: DemoSim {
                    url: String::new(),
                    admin: String::new(),
                },
                logs: logs.clone(),
                soap: [
                    ("ssbtek".to_owned(), "/ssbtek/v10".to_owned()),
                    ("elt".to_owned(), ELT_SOAP_PATH.to_owned()),
                ]
                .into(),
                elt: pki.elt.clone(),
                admin: BTreeMap::new(),
                audit: [
                    ("file".to_owned(), dir.join("audit").join("audit.jsonl")),
                    (
                        "key_file".to_owned(),
                        dir.join("audit").join("pseudonym.key"),
                    ),
                ]
                .into(),
                relays: None,
            },
            dir: dir.clone(),
            children: Vec::new(),
            bin_dir: opts.bin_dir.clone(),
            postgres_schema: None,
        };

        // 1. The simulated base services.
        let sim_config = config_dir.join("sim.toml");
        std::fs::write(&sim_config, sim_toml(&pki))?;
        let mut args = vec!["--config".to_owned(), sim_config.display().to_string()];
        if let Some(s) = &opts.scenario {
            args.push("--scenario".into());
            args.push(std::fs::canonicalize(s)?.display().to_string());
        }
        let sim_addrs = demo.spawn_with("shs-sim", "shs-sim", &args).await?;
        let sim_url = format!("https://{}", addr_of(&sim_addrs, "listen")?);
        demo.info.sim = DemoSim {
            url: sim_url.clone(),
            admin: format!("http://{}", addr_of(&sim_addrs, "admin")?),
        };

        // 2. The seven adapters, each with its replicas.
        let maintenance_dir = dir.join("maintenance");
        std::fs::create_dir_all(&maintenance_dir)?;
        for (id, bin) in adapters() {
            let maintenance_file = maintenance_dir.join(format!("{id}.toml"));
            let count = opts.replicas.get(id).copied().unwrap_or(1).max(1);
            let in_python = python
                .as_ref()
                .filter(|_| python_adapters.iter().any(|s| s == id));
            let mut urls = Vec::new();
            let mut admins = Vec::new();
            for n in 1..=count {
                let (name, path) = replica_files(&config_dir, id, bin, n);
                let mut config = adapter_toml(&pki, id, &sim_url, &maintenance_file);
                if in_python.is_none() {
                    // The Python reference adapter exports no spans and serves
                    // no admin listener.
                    config += &admin_toml();
                    config += &tracing_toml(opts.otlp_endpoint.as_deref(), bin);
                }
                std::fs::write(&path, &config)?;
                let addrs = match in_python {
                    Some((interpreter, script)) => {
                        let args = [
                            script.display().to_string(),
                            "--config".to_owned(),
                            path.display().to_string(),
                        ];
                        // An absolute program: `bin_dir.join` keeps it as it is.
                        let program = interpreter.display().to_string();
                        demo.spawn_with(&name, &program, &args).await?
                    }
                    None => demo.spawn(&name, bin, &path).await?,
                };
                let listen = addr_of(&addrs, "listen")?;
                // The Python reference adapter has no admin listener.
                let admin = addr_of(&addrs, "admin").ok();
                if count > 1 {
                    // Pinned, so that a restart comes back at the same addresses.
                    let pinned = config
                        .replacen(
                            "listen = \"127.0.0.1:0\"",
                            &format!("listen = \"{listen}\""),
                            1,
                        )
                        .replacen(
                            "listen = \"127.0.0.1:0\"",
                            &format!("listen = \"{}\"", admin.unwrap_or("127.0.0.1:0")),
                            1,
                        );
                    std::fs::write(&path, pinned)?;
                }
                urls.push(format!("https://{listen}"));
                if let Some(admin) = admin {
                    admins.push(format!("http://{admin}"));
                }
            }
            demo.info.providers.push(DemoProvider {
                id: id.into(),
                url: urls[0].clone(),
                replicas: if count > 1 { urls } else { Vec::new() },
                maintenance_file,
                admin: admins.first().cloned().unwrap_or_default(),
                replica_admins: if admins.len() > 1 { admins } else { Vec::new() },
                implementation: in_python.map(|_| "python".to_owned()),
            });
        }

        // 3. The relay: one node, or several on one PostgreSQL store.
        let url = match (opts.nodes, &opts.postgres) {
            (0 | 1, None) => None,
            (_, Some(url)) => Some(url.clone()),
            (_, None) => Some(demo.throwaway_postgres(&dir, &logs).await?),
        };
        let store = match url {
            None => String::new(),
            Some(url) => {
                let schema = format!("demo_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                let toml = postgres_toml(&url, &schema) + &opts.store_extra;
                demo.postgres_schema = Some((url, schema));
                toml
            }
        };
        let mut nodes = Vec::new();
        for node in 1..=opts.nodes.max(1) {
            let (name, config) = node_name_and_config(&demo.info.relay.config, node);
            std::fs::write(
                &config,
                relay_toml(&pki, &demo.info.providers, &logs, &opts, node)
                    + &store
                    + &tracing_toml(opts.otlp_endpoint.as_deref(), "shs-relay")
                    + &opts.relay_extra,
            )?;
            let node = demo.start_node(&name, config).await?;
            // The next node shares files this one creates at start (the
            // pseudonym key, the mailbox key): it starts once this one is up.
            wait_live(&node.admin).await?;
            nodes.push(node);
        }
        if opts.nodes > 1 || opts.postgres.is_some() {
            demo.info.relays = Some(nodes);
        }
        demo.write_info()?;
        Ok(demo)
    }

    /// Starts one relay node from its configuration file; node 1 (`shs-relay`)
    /// is also `relay` and `admin` in `info`.
    async fn start_node(&mut self, name: &str, config: PathBuf) -> anyhow::Result<DemoNode> {
        let args = [
            "serve".into(),
            "--config".into(),
            config.display().to_string(),
        ];
        let addrs = self.spawn_with(name, "shs-relay", &args).await?;
        let node = DemoNode {
            url: format!("https://{}", addr_of(&addrs, "listen")?),
            admin: format!("http://{}", addr_of(&addrs, "admin")?),
            config,
        };
        if name == "shs-relay" {
            self.info.relay.url = node.url.clone();
            self.info.admin.insert("url".into(), node.admin.clone());
            if let Some(probe) = addrs.get("probe").and_then(|v| v.as_str()) {
                self.info
                    .admin
                    .insert("probe".into(), format!("http://{probe}"));
            }
            if let Some(first) = self.info.relays.as_mut().and_then(|r| r.first_mut()) {
                *first = node.clone();
            }
        }
        Ok(node)
    }

    /// Writes `demo.json`.
    fn write_info(&self) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(&self.info)?;
        std::fs::write(self.dir.join("demo.json"), json)?;
        Ok(())
    }

    /// Kills `bin` at once (SIGKILL, as a crash or a power cut would) and
    /// waits until it has exited, so its files are closed. For tests.
    pub async fn kill(&mut self, bin: &str) -> anyhow::Result<()> {
        let i = self
            .children
            .iter()
            .position(|(b, _)| b == bin)
            .with_context(|| format!("{bin} is not running"))?;
        let (_, mut child) = self.children.remove(i);
        child.kill().await?;
        Ok(())
    }

    /// Starts the relay again from the same configuration, store and audit
    /// trail after [`Demo::kill`]: new ports, in `info` and `demo.json`.
    pub async fn restart_relay(&mut self) -> anyhow::Result<()> {
        if self.children.iter().any(|(b, _)| b == "shs-relay") {
            bail!("the relay is still running");
        }
        let config = self.info.relay.config.clone();
        self.start_node("shs-relay", config).await?;
        self.write_info()
    }

    /// Starts relay node `node` (1 = `shs-relay`) again after [`Demo::kill`],
    /// from its configuration, on the same store: new ports, in `info`
    /// (`relays`, and `relay`/`admin` for node 1) and `demo.json`.
    pub async fn restart_node(&mut self, node: usize) -> anyhow::Result<()> {
        let (name, config) = node_name_and_config(&self.info.relay.config, node);
        if self.children.iter().any(|(b, _)| *b == name) {
            bail!("{name} is still running");
        }
        let started = self.start_node(&name, config).await?;
        wait_live(&started.admin).await?;
        if let Some(n) = self
            .info
            .relays
            .as_mut()
            .and_then(|r| r.get_mut(node.saturating_sub(1)))
        {
            *n = started;
        }
        self.write_info()
    }

    /// Starts adapter binary `bin` as `name` with the configuration at `config`.
    async fn spawn(
        &mut self,
        name: &str,
        bin: &str,
        config: &Path,
    ) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let args = ["--config".to_owned(), config.display().to_string()];
        self.spawn_with(name, bin, &args).await
    }

    /// Starts `bin` as `name`, appends its stderr to `logs/NAME.log`, and returns
    /// the JSON object it prints as its first stdout line (its bound addresses).
    async fn spawn_with(
        &mut self,
        name: &str,
        bin: &str,
        args: &[String],
    ) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let logs = self.info.logs.clone();
        let append = |file: PathBuf| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
        };
        let log = append(logs.join(format!("{name}.log")))?;
        let mut child = Command::new(self.bin_dir.join(bin))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {bin}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
        let line = match first {
            Ok(Ok(Some(line))) => line,
            _ => {
                let _ = child.kill().await;
                bail!(
                    "{name} did not report its address; see {}",
                    logs.join(format!("{name}.log")).display()
                );
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        let mut out = tokio::fs::File::from_std(append(logs.join(format!("{name}.stdout")))?);
        tokio::spawn(async move {
            while let Ok(Some(l)) = lines.next_line().await {
                let _ = out.write_all(l.as_bytes()).await;
                let _ = out.write_all(b"\n").await;
            }
        });
        let value: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{bin} printed an unexpected first line"))?;
        self.children.push((name.to_owned(), child));
        match value {
            serde_json::Value::Object(map) => Ok(map),
            _ => bail!("{bin} printed an unexpected first line"),
        }
    }

    /// Starts a throwaway PostgreSQL cluster under `dir/pg` (PostgreSQL's server
    /// binaries: Debian's `postgresql`), stopped with the demo; its URL.
    async fn throwaway_postgres(&mut self, dir: &Path, logs: &Path) -> anyhow::Result<String> {
        let bin = postgres_bin_dir().context(
            "several relay nodes share a PostgreSQL store: pass --postgres URL, or install PostgreSQL's server binaries (apt-get install postgresql) for a throwaway cluster",
        )?;
        let pg = dir.join("pg");
        let data = pg.join("data");
        std::fs::create_dir_all(&pg)?;
        // initdb and postgres refuse to run as root: then as the `postgres` user.
        let as_root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let run = |program: &Path| {
            let mut c = if as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            };
            c.stdin(Stdio::null());
            c
        };
        if as_root {
            let ok = std::process::Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&pg)
                .status()?
                .success();
            anyhow::ensure!(ok, "cannot hand {} to the postgres user", pg.display());
        }
        if !data.join("PG_VERSION").exists() {
            let out = run(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
                .output()
                .await
                .context("initdb")?;
            anyhow::ensure!(
                out.status.success(),
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(logs.join("postgres.log"))?;
        let child = run(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
            ])
            .arg(format!("unix_socket_directories={}", pg.display()))
            .args(["-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .context("cannot start postgres")?;
        self.children.push(("postgres".to_owned(), child));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the throwaway PostgreSQL did not start; see {}",
                logs.join("postgres.log").display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
    }

    /// The process id of a child by binary name, for tests that stop one.
    pub fn pid_of(&self, bin: &str) -> Option<u32> {
        self.children
            .iter()
            .find(|(b, _)| b == bin)
            .and_then(|(_, c)| c.id())
    }

    /// Stops replica `n` (from 1) of adapter `id` the way a rolling restart does:
    /// SIGTERM (the adapter finishes its calls in flight), then waits until it
    /// has exited (killed after 30 s).
    pub async fn stop_replica(&mut self, id: &str, n: usize) -> anyhow::Result<()> {
        let (name, _) = self.replica(id, n)?;
        let at = self
            .children
            .iter()
            .position(|(c, _)| *c == name)
            .with_context(|| format!("{name} is not running"))?;
        let (_, child) = self.children.remove(at);
        terminate(&name, child, Duration::from_secs(30)).await;
        Ok(())
    }

    /// Starts replica `n` of adapter `id` again, at the address it had (its
    /// configuration is pinned to it), and waits until it reports it.
    pub async fn start_replica(&mut self, id: &str, n: usize) -> anyhow::Result<()> {
        let (name, bin) = self.replica(id, n)?;
        if self.children.iter().any(|(c, _)| *c == name) {
            bail!("{name} is running");
        }
        let (_, config) = replica_files(&self.dir.join("config"), id, bin, n);
        self.spawn(&name, bin, &config).await?;
        Ok(())
    }

    /// (process name, binary) of replica `n` of a replicated adapter `id`.
    fn replica(&self, id: &str, n: usize) -> anyhow::Result<(String, &'static str)> {
        let (slot, bin) = adapters()
            .find(|(slot, _)| *slot == id)
            .with_context(|| format!("no adapter {id}"))?;
        let count = self
            .info
            .providers
            .iter()
            .find(|p| p.id == slot)
            .map_or(0, |p| p.replicas.len());
        if n == 0 || n > count {
            bail!("{id} has no replica {n} (start the demo with DemoOptions::replicas)");
        }
        Ok((replica_files(Path::new(""), slot, bin, n).0, bin))
    }

    /// Asks every child to stop (SIGTERM), waits up to 10 s, then kills.
    pub async fn stop(mut self) {
        // Stop in reverse start order: the relay first, the simulator last.
        while let Some((name, child)) = self.children.pop() {
            // The relays are gone once the database is next: drop the demo's
            // schema while the database still runs.
            if name == "postgres" {
                self.drop_postgres_schema().await;
            }
            terminate(&name, child, Duration::from_secs(10)).await;
        }
        self.drop_postgres_schema().await;
    }

    async fn drop_postgres_schema(&mut self) {
        if let Some((url, schema)) = self.postgres_schema.take()
            && let Err(e) = relay_store::pg::drop_schema(&url, &schema).await
        {
            eprintln!("the demo's PostgreSQL schema {schema} was not dropped: {e}");
        }
    }
}

/// Sends `child` SIGTERM, waits up to `grace`, then kills it.
async fn terminate(name: &str, mut child: Child, grace: Duration) {
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        // SAFETY-free: the kill(1) command sends SIGTERM without unsafe code.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        tracing::warn!(process = %name, "did not stop in time; killing");
        let _ = child.kill().await;
    }
}

/// (process name, configuration file) of replica `n` (from 1) of adapter `id`:
/// `shs-adapter-csn` and `adapter-csn.toml` for the first, `shs-adapter-csn-2`
/// and `adapter-csn-2.toml` for the second, ...
fn replica_files(config_dir: &Path, id: &str, bin: &str, n: usize) -> (String, PathBuf) {
    let stem = format!("adapter-{}", id.to_lowercase());
    if n <= 1 {
        (bin.to_owned(), config_dir.join(format!("{stem}.toml")))
    } else {
        (
            format!("{bin}-{n}"),
            config_dir.join(format!("{stem}-{n}.toml")),
        )
    }
}

fn addr_of<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> anyhow::Result<&'a str> {
    map.get(key)
        .and_then(|v| v.as_str())
        .with_context(|| format!("no `{key}` in the reported addresses"))
}

/// Waits until the admin listener at `admin` (`http://host:port`) answers
/// `/livez` (the relay has opened its store and audit trail).
async fn wait_live(admin: &str) -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    let addr = admin.trim_start_matches("http://").to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await {
            let mut answer = Vec::new();
            let asked = s
                .write_all(b"GET /livez HTTP/1.0\r\nHost: demo\r\n\r\n")
                .await;
            if asked.is_ok()
                && tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer))
                    .await
                    .is_ok()
                && answer.get(8..13) == Some(b" 200 ".as_slice())
            {
                return Ok(());
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the relay at {admin} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Node `node`'s process name and configuration file (node 1: `shs-relay`
/// with `relay.toml`).
fn node_name_and_config(first: &Path, node: usize) -> (String, PathBuf) {
    if node <= 1 {
        ("shs-relay".to_owned(), first.to_path_buf())
    } else {
        (
            format!("shs-relay-node{node}"),
            first.with_file_name(format!("relay-node{node}.toml")),
        )
    }
}

/// The newest installed PostgreSQL server's binaries (Debian's layout, or `PATH`).
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file() && b.join("postgres").is_file())
        .collect();
    versions.sort_by_key(|b| {
        b.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop().or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
        })
    })
}

/// `[store]` on PostgreSQL at `url`, in a schema of this demo's own.
fn postgres_toml(url: &str, schema: &str) -> String {
    format!(
        "\n[store]\nkind = \"postgres\"\nurl = {}\nschema = \"{schema}\"\npool_size = 8\n",
        toml::Value::String(url.to_owned())
    )
}

fn sim_toml(pki: &Pki) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n[tls]\ncert = {}\nkey = {}\nclient_ca = {}\n",
        q(&pki.sim.cert),
        q(&pki.sim.key),
        q(&pki.ca)
    )
}

/// The adapter's admin listener: metrics and health for the operators'
/// Prometheus (deploy/prometheus).
fn admin_toml() -> String {
    "\n[admin]\nlisten = \"127.0.0.1:0\"\n".to_owned()
}

fn adapter_toml(pki: &Pki, id: &str, sim_url: &str, maintenance: &Path) -> String {
    let own = &pki.adapters[id];
    let mut s = format!(
        "listen = \"127.0.0.1:0\"\nmaintenance_file = {maintenance}\n\n[tls]\ncert = {cert}\nkey = {key}\nclient_ca = {ca}\n\n[backend]\nurl = \"{sim_url}\"\nca = {ca}\nclient_cert = {cert}\nclient_key = {key}\ntimeout_ms = 30000\n",
        cert = q(&own.cert),
        key = q(&own.key),
        ca = q(&pki.ca),
        maintenance = q(maintenance),
    );
    if id == "FK" {
        s.push_str(&format!(
            "\n[extra]\nelt_trust_anchors = {}\n",
            q(&pki.elt.signing_ca)
        ));
    }
    s
}

/// The `[tracing]` section for a collector, or nothing.
fn tracing_toml(otlp_endpoint: Option<&str>, service: &str) -> String {
    match otlp_endpoint {
        Some(url) => format!(
            "\n[tracing]\notlp_endpoint = {}\nservice_name = \"{service}\"\n",
            toml::Value::String(url.to_owned())
        ),
        None => String::new(),
    }
}

/// The relay's configuration; node 2 and later get their own node id, audit
/// trail, log and (unused on PostgreSQL) redb file, and share the rest.
fn relay_toml(
    pki: &Pki,
    providers: &[DemoProvider],
    logs: &Path,
    opts: &DemoOptions,
    node: usize,
) -> String {
    use std::fmt::Write;
    let suffix = if node <= 1 {
        String::new()
    } else {
        format!("-node{node}")
    };
    let mut s = format!(
        r#"# shs-relay configuration written by `shs-relay demo`.

[node]
id = "shs-relay-demo{suffix}"
org = "{NODE_ORG}"
name = "shs-relay demo"
environment = "test"

[front]
listen = "127.0.0.1:0"
cert = {relay_cert}
key = {relay_key}
client_ca = {ca}

[limits]
max_in_flight = {max_in_flight}
max_persons = 10
deadline_base_ms = {deadline}
deadline_per_extra_person_ms = 1500

[identity]
from = "serialNumber"

[products]
ssbtek = "{SSBTEK_PRODUCT}"
ping = "{PING_PRODUCT}"
elt = "{ELT_PRODUCT}"

[provider_tls]
ca = {ca}
cert = {relay_cert}
key = {relay_key}

[mailbox]
store = {store}
key_file = {kek}
ttl_hours = 72
{mailbox_extra}
[audit]
dir = {audit_dir}
key_file = {audit_key}

# The prober pings the front as a caller would, with its own certificate.
[probe]
client_cert = {prober_cert}
client_key = {prober_key}
{probe_extra}

[admin]
listen = "127.0.0.1:0"
probe_listen = "127.0.0.1:0"

[log]
file = {log}
"#,
        relay_cert = q(&pki.relay.cert),
        relay_key = q(&pki.relay.key),
        prober_cert = q(&pki.prober.cert),
        prober_key = q(&pki.prober.key),
        probe_extra = opts.probe_extra,
        mailbox_extra = opts.mailbox_extra,
        ca = q(&pki.ca),
        log = q(&logs.join(format!("shs-relay{suffix}.app.log"))),
        deadline = opts.deadline_base_ms.unwrap_or(12_000),
        max_in_flight = opts.max_in_flight.unwrap_or(256),
        store = q(&logs
            .with_file_name("mailbox")
            .join(format!("store{suffix}.redb"))),
        audit_dir = q(&logs.with_file_name(format!("audit{suffix}"))),
        audit_key = q(&logs.with_file_name("audit").join("pseudonym.key")),
        kek = q(&logs.with_file_name("mailbox").join("kek.key")),
    );
    for p in providers {
        let withdrawn: Vec<String> = opts
            .withdrawn
            .iter()
            .filter(|(id, _)| *id == p.id)
            .map(|(_, org)| format!("\"{org}\""))
            .collect();
        let endpoint = if p.replicas.is_empty() {
            format!("endpoint = \"{}\"", p.url)
        } else {
            let quoted: Vec<String> = p.replicas.iter().map(|u| format!("\"{u}\"")).collect();
            format!("endpoints = [{}]", quoted.join(", "))
        };
        let _ = write!(
            s,
            "\n[[providers]]\nid = \"{}\"\n{endpoint}\ntls_name = \"localhost\"\ntimeout_ms = {}\nwithdrawn = [{}]\n",
            p.id,
            opts.provider_timeout_ms.unwrap_or(10_000),
            withdrawn.join(", ")
        );
    }
    for (org, name, role) in CLIENTS {
        if role == "municipality" {
            let _ = write!(
                s,
                "\n[[agreements]]\norg = \"{org}\"\nname = \"{name}\"\nproducts = [\"ssbtek\", \"ping\"]\ndirect_products = [\"{DIRECT_PRODUCT}\"]\n"
            );
        }
    }
    let _ = write!(
        s,
        "\n[[agreements]]\norg = \"5566778899\"\nname = \"Exempel Drift AB\"\nproducts = [\"ssbtek\", \"ping\"]\n\n[[processors]]\norg = \"5566778899\"\nfor = [\"2120002411\", \"2120000142\"]\n"
    );
    // The prober's own organisation (the node's) may ping, nothing else.
    let _ = write!(
        s,
        "\n[[agreements]]\norg = \"{NODE_ORG}\"\nname = \"shs-relay demo prober\"\nproducts = [\"ping\"]\n"
    );
    let _ = write!(
        s,
        "\n[[agreements]]\norg = \"{ELT_VENDOR}\"\nname = \"Exempel Systemleverantör AB\"\nproducts = [\"elt\", \"ping\"]\n\n[elt]\nprovider = \"FK\"\nsoap_path = \"{ELT_SOAP_PATH}\"\ncalls_per_second = {:?}\nmax_retries = 5\nsigning_ca = {}\ncrls = [{}]\nmandates = [{}]\n{}\n",
        opts.elt_calls_per_second.unwrap_or(1.0),
        q(&pki.elt.signing_ca),
        q(&pki.elt.crl),
        pki.elt
            .mandates
            .iter()
            .map(|m| format!(
                "{{ vendor = \"{}\", anordnare = [{}] }}",
                m.vendor,
                m.anordnare
                    .iter()
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .collect::<Vec<_>>()
            .join(", "),
        opts.elt_extra
    );
    s
}

/// `shs-relay demo`: start the stack, print how to use it, run until `stop`
/// completes (the binary passes Ctrl-C or SIGTERM).
pub async fn run(
    dir: &Path,
    scenario: Option<&Path>,
    otlp_endpoint: Option<String>,
    nodes: usize,
    postgres: Option<String>,
    python_adapters: Vec<String>,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut opts = DemoOptions::new(dir)?;
    opts.python_adapters = python_adapters;
    opts.scenario = scenario.map(Path::to_owned);
    opts.otlp_endpoint = otlp_endpoint;
    opts.nodes = nodes.max(1);
    opts.postgres = postgres;
    let demo = Demo::start(opts).await?;
    let d = demo.dir.display();
    println!(
        "shs-relay demo is up.\n\n  relay:      {}\n  demo.json:  {d}/demo.json\n  logs:       {d}/logs/\n\nTry (from the repository root):\n\n  ./target/release/shs --demo {d} ping\n  ./target/release/shs --demo {d} ssbtek --person 19121212-1212\n  ./target/release/shs --demo {d} elt example --out report.xml\n  ./target/release/shs --demo {d} elt submit --in report.xml [--soap]\n\nPress Ctrl-C to stop every process.",
        demo.info.relay.url
    );
    if let Some(relays) = &demo.info.relays {
        println!("\nRelay nodes on one PostgreSQL store (demo.json `relays`):");
        for (i, n) in relays.iter().enumerate() {
            println!("  node {}: {}  admin {}", i + 1, n.url, n.admin);
        }
    }
    stop.await;
    println!("stopping...");
    demo.stop().await;
    Ok(())
}
