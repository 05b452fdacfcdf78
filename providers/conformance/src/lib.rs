//! # providers-conformance
//!
//! `shs-conformance`: the provider conformance kit. An agency runs it against
//! its adapter's endpoint, with its test certificates, before the adapter is put
//! in front of municipalities; the relay's operator runs it before connecting
//! one. It checks, each as a named case that passes, fails or is skipped (not
//! applicable) with a reason, that the adapter keeps the provider contract
//! (`shs_relay.provider.v1`): `Describe`, gRPC health, slot payloads against the
//! real SSBTEK v10 XSDs, provider errors, deadlines and cancellation, the
//! concurrency limit, mutual TLS, trace context, and `Submit`. The cases and
//! what they mean are in `providers/README.md` ("Certify your adapter").
//!
//! Cases that need to steer the base service (errors, outages, hangs, an
//! unknown person) or to see what reached it (cancellation, trace context) use
//! the simulator's admin endpoint (`--sim-admin`); without it they are skipped.
//!
//! # Layout
//!
//! - this file: the command line and the run (which cases, in what order);
//! - [`cases`]: one function per case;
//! - [`payload`]: what a slot's payload must be (XSDs via `xmllint`, encodings);
//! - [`sim`]: the simulator's admin endpoint;
//! - [`report`]: the summary, JUnit XML and JSON.
//!
//! Not for: load testing (see the relay's benches) or checking the agency's own
//! base service.

// Exception to [workspace.lints]: 9 indexing/slicing sites (2026-12) in the
// kit's checks of an adapter under test, not yet rewritten.
#![allow(clippy::indexing_slicing, clippy::string_slice)]

pub mod cases;
pub mod payload;
pub mod report;
pub mod sim;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use relay_ident::Personnummer;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

pub use report::{CaseReport, Outcome, Report};

/// `shs-conformance`: checks a provider adapter against the provider contract.
#[derive(Parser, Debug, Clone)]
#[command(name = "shs-conformance", version)]
pub struct Args {
    /// The adapter's gRPC endpoint, e.g. https://adapter.example:7003.
    #[arg(long)]
    pub endpoint: String,
    /// The CA the adapter's server certificate chains to (PEM); the kit's own
    /// certificate must be accepted by the adapter (the relay's test CA).
    #[arg(long)]
    pub ca: PathBuf,
    /// The kit's client certificate (PEM), as the relay would present.
    #[arg(long)]
    pub cert: PathBuf,
    /// The key of `--cert` (PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// The SSBTEK v10 slot the adapter serves: AF, CSN, FK, SKV, SO, TNS or MIV
    /// (another id checks the contract without the SSBTEK payload rules).
    #[arg(long)]
    pub slot: String,
    /// Test persons, one per line: `PERSONNUMMER` for a person the base service
    /// knows, `PERSONNUMMER unknown` for one it does not; `#` starts a comment.
    /// Default: Tolvan (191212121212) and 201901012391, both known.
    #[arg(long)]
    pub persons: Option<PathBuf>,
    /// Also write the report as JUnit XML to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// The adapter's declared concurrency limit (its `limits.max_concurrent`,
    /// 64 by default in the SDK): `limits.declared_concurrency` checks that
    /// this many calls reach the base service at once. Without it that case
    /// is skipped.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_concurrent: Option<u64>,
    /// Print the report as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// The simulator's admin URL (`shs-sim`, e.g. http://127.0.0.1:8601), when
    /// the adapter's base service is the simulator: enables the cases that
    /// script the base service. Without it those are skipped.
    #[arg(long)]
    pub sim_admin: Option<String>,
    /// For `submit.receipt` (adapters that offer `Submit`): the certificate
    /// (PEM) of a test assistant the adapter's signing trust accepts. Its
    /// subject serialNumber (a personnummer) is the assistant the example
    /// report names. Needs the three `--*-signer-*` options beside it.
    #[arg(long, requires_all = ["assistant_signer_key", "anordnare_signer_cert", "anordnare_signer_key"])]
    pub assistant_signer_cert: Option<PathBuf>,
    /// The key (PEM, PKCS#8) of `--assistant-signer-cert`.
    #[arg(long, requires = "assistant_signer_cert")]
    pub assistant_signer_key: Option<PathBuf>,
    /// The certificate (PEM) of a test assistance company (anordnare) the
    /// adapter trusts; its subject serialNumber is an organisation number.
    #[arg(long, requires = "assistant_signer_cert")]
    pub anordnare_signer_cert: Option<PathBuf>,
    /// The key (PEM, PKCS#8) of `--anordnare-signer-cert`.
    #[arg(long, requires = "assistant_signer_cert")]
    pub anordnare_signer_key: Option<PathBuf>,
}

/// The test persons of a run.
#[derive(Debug, Clone, Default)]
pub struct Persons {
    pub known: Vec<String>,
    pub unknown: Vec<String>,
}

impl Persons {
    /// Reads the `--persons` file; errors name the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut persons = Persons::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let pnr = words.next().unwrap_or("");
            let pnr = Personnummer::parse(pnr)
                .map_err(|_| format!("line {}: not a valid personnummer", i + 1))?;
            if persons
                .known
                .iter()
                .chain(&persons.unknown)
                .any(|p| p == pnr.as_str())
            {
                return Err(format!("line {}: the person is listed twice", i + 1));
            }
            match words.next() {
                None | Some("known") => persons.known.push(pnr.as_str().to_owned()),
                Some("unknown") => persons.unknown.push(pnr.as_str().to_owned()),
                Some(_) => {
                    return Err(format!(
                        "line {}: expected `PERSONNUMMER` or `PERSONNUMMER unknown`",
                        i + 1
                    ));
                }
            }
        }
        if persons.known.is_empty() {
            return Err("no known person (a line with only a personnummer)".into());
        }
        Ok(persons)
    }

    fn default_set() -> Self {
        Self {
            known: vec!["191212121212".into(), "201901012391".into()],
            unknown: Vec::new(),
        }
    }

    /// Test persons (Skatteverket's published test numbers) the kit may script
    /// behaviour for: none of the persons the run asks about otherwise.
    fn scripted(&self) -> Option<sim::Scripted> {
        let mut free = relay_ident::TEST_PERSONS
            .iter()
            .rev()
            .filter(|p| !self.known.iter().chain(&self.unknown).any(|q| q == *p))
            .map(|p| (*p).to_owned());
        Some(sim::Scripted {
            error: free.next()?,
            hang: free.next()?,
            limit: free.next()?,
            unknown: free.next()?,
            large: free.next()?,
        })
    }
}

/// Everything the cases share.
pub struct Kit {
    pub args: Args,
    /// The slot id as given (upper case).
    pub slot: String,
    /// The SSBTEK slot, when the id names one.
    pub ssbtek: Option<relay_ssbtek::Slot>,
    pub channel: Channel,
    pub tls_name: String,
    pub persons: Persons,
    pub schemas: payload::Schemas,
    pub sim: Option<sim::SimAdmin>,
    /// Why the simulator cases are skipped, when they are.
    pub no_sim: String,
    /// Where the kit keeps its throwaway certificates.
    pub scratch: tempfile::TempDir,
}

impl Kit {
    pub fn provider(&self) -> shs_proto::v1::provider_client::ProviderClient<Channel> {
        shs_proto::v1::provider_client::ProviderClient::new(self.channel.clone())
            .max_decoding_message_size(16 * 1024 * 1024)
    }

    /// A new connection to the adapter (own TCP and TLS), presenting `identity`.
    pub fn connect(&self, identity: Option<Identity>) -> anyhow::Result<Channel> {
        channel(&self.args.endpoint, &self.tls_name, &self.args.ca, identity)
    }
}

fn channel(
    endpoint: &str,
    tls_name: &str,
    ca: &std::path::Path,
    identity: Option<Identity>,
) -> anyhow::Result<Channel> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)?))
        .domain_name(tls_name);
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    Ok(Channel::from_shared(endpoint.to_owned())?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy())
}

fn read(p: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
}

/// Sets up a run from the arguments (files, connection, simulator).
pub async fn prepare(args: Args) -> anyhow::Result<Kit> {
    relay_pki::tls::install_crypto_provider();
    let slot = args.slot.trim().to_ascii_uppercase();
    let ssbtek = slot.parse::<relay_ssbtek::Slot>().ok();
    let uri: tonic::codegen::http::Uri = args
        .endpoint
        .parse()
        .map_err(|e| anyhow::anyhow!("--endpoint: {e}"))?;
    let tls_name = uri
        .host()
        .ok_or_else(|| anyhow::anyhow!("--endpoint: no host"))?
        .trim_matches(['[', ']'])
        .to_owned();
    let identity = Identity::from_pem(read(&args.cert)?, read(&args.key)?);
    let channel = channel(&args.endpoint, &tls_name, &args.ca, Some(identity))?;
    let persons = match &args.persons {
        Some(p) => Persons::parse(&String::from_utf8_lossy(&read(p)?))
            .map_err(|e| anyhow::anyhow!("--persons {}: {e}", p.display()))?,
        None => Persons::default_set(),
    };
    let schemas = payload::Schemas::unpack()?;
    let (sim, no_sim) = match (&args.sim_admin, ssbtek) {
        (None, _) => (
            None,
            "needs --sim-admin (the base service must be steered; see providers/README.md)"
                .to_owned(),
        ),
        (Some(_), None) => (
            None,
            format!("the simulator has no base service for slot {slot}"),
        ),
        (Some(url), Some(s)) => {
            let scripted = persons
                .scripted()
                .ok_or_else(|| anyhow::anyhow!("--persons leaves no test person to script"))?;
            let admin = sim::SimAdmin::connect(url, s.as_str(), scripted)
                .await
                .map_err(|e| anyhow::anyhow!("--sim-admin {url}: {e}"))?;
            (Some(admin), String::new())
        }
    };
    Ok(Kit {
        args,
        slot,
        ssbtek,
        channel,
        tls_name,
        persons,
        schemas,
        sim,
        no_sim,
        scratch: tempfile::tempdir()?,
    })
}

/// Runs every case and returns the report. The cases that share the adapter
/// quietly run side by side; the limit probe (which fills the adapter) and the
/// outage (which takes the base service down) run alone, at the end.
pub async fn run(kit: &Kit) -> Report {
    let mut reports = Vec::new();
    let (describe, description) = cases::timed(cases::describe(kit)).await;
    reports.push(describe);
    reports.push(cases::planned_maintenance(description.as_ref()));
    reports.push(cases::timed_case(cases::health_serving(kit)).await);
    if let Some(sim) = &kit.sim
        && let Err(e) = sim.script().await
    {
        reports.push(CaseReport::fail(
            "setup",
            format!("cannot script the simulator: {e}"),
        ));
    }
    let together = futures::join!(
        cases::timed_case(cases::query_payload(kit)),
        cases::timed_case(cases::query_within_deadline(kit)),
        cases::timed_case(cases::query_unknown_person(kit)),
        cases::timed_case(cases::query_large_answer(kit)),
        cases::timed_case(cases::provider_error(kit)),
        cases::timed_case(cases::deadline(kit)),
        cases::timed_case(cases::no_client_certificate(kit)),
        cases::timed_case(cases::foreign_ca(kit)),
        cases::timed_case(cases::tracing(kit)),
        cases::timed_case(cases::submit(kit, description.as_ref())),
    );
    reports.extend([
        together.0, together.1, together.2, together.3, together.4, together.5, together.6,
        together.7, together.8, together.9,
    ]);
    reports.push(cases::timed_case(cases::submit_receipt(kit, description.as_ref())).await);
    // The cases below count the base service's held calls: one at a time.
    reports.push(cases::timed_case(cases::cancellation(kit)).await);
    reports.push(cases::timed_case(cases::declared_concurrency(kit)).await);
    reports.push(cases::timed_case(cases::limits(kit)).await);
    reports.push(cases::timed_case(cases::health_follows_base_service(kit)).await);
    if let Some(sim) = &kit.sim
        && let Err(e) = sim.restore().await
    {
        reports.push(CaseReport::fail(
            "teardown",
            format!("cannot restore the simulator's scenario: {e}"),
        ));
    }
    Report::new(&kit.args.endpoint, &kit.slot, reports)
}

/// The whole `main`: exit 0 when every applicable case passed, 1 when one
/// failed, 2 when the kit could not run.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shs-conformance: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let kit = match prepare(args).await {
            Ok(k) => k,
            Err(e) => {
                eprintln!("shs-conformance: {e:#}");
                return ExitCode::from(2);
            }
        };
        let report = run(&kit).await;
        if let Some(path) = &kit.args.junit
            && let Err(e) = std::fs::write(path, report.to_junit())
        {
            eprintln!("shs-conformance: --junit {}: {e}", path.display());
            return ExitCode::from(2);
        }
        if kit.args.json {
            println!("{}", report.to_json());
        } else {
            print!("{}", report.to_text());
        }
        if report.passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_persons_file_names_known_and_unknown_persons() {
        let p = Persons::parse("# test persons\n191212121212\n201901012391 unknown # no data\n\n")
            .unwrap();
        assert_eq!(p.known, ["191212121212"]);
        assert_eq!(p.unknown, ["201901012391"]);
        let e = Persons::parse("191212121213\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = Persons::parse("201901012391 unknown\n").unwrap_err();
        assert!(e.contains("no known person"), "{e}");
        let e = Persons::parse("191212121212\n191212121212 unknown\n").unwrap_err();
        assert!(e.contains("line 2: the person is listed twice"), "{e}");
        let e = Persons::parse("191212121212 maybe\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn scripted_persons_are_never_the_persons_asked_about() {
        let p = Persons::default_set();
        let s = p.scripted().unwrap();
        let all = [&s.error, &s.hang, &s.limit, &s.unknown, &s.large];
        for q in &all {
            assert!(!p.known.contains(q), "{q}");
        }
        let mut distinct: Vec<_> = all.to_vec();
        distinct.dedup();
        assert_eq!(distinct.len(), 5);
    }
}
