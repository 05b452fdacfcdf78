//! `shs-bench`: load against shs-relay. See the `shs_bench` crate and
//! docs/performance.md.
//!
//! ```text
//! shs-bench --start --zero-latency --baseline --concurrency 32 --duration 10
//! shs-bench --demo DIR --workload shs,soap,async --rate 200 --duration 20
//! shs-bench --url https://relay:8443 --ca ca.pem --cert c.pem --key k.pem \
//!           --org 2120002411 --to 2021005489 --product UUID --concurrency 8
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use relay_demo::{Demo, DemoOptions, adapters};
use shs_bench::procstat::{self, ProcSample};
use shs_bench::report;
use shs_bench::run::{Load, drive};
use shs_bench::schedule::OpenLoop;
use shs_bench::stats::Summary;
use shs_bench::target::{Identity, Target};
use shs_bench::workload::{FanOut, Relay, Workload};

/// Every simulated agency answers at once (PUT to the simulator's admin).
const ZERO_LATENCY: &str = "[agency.AF]\nlatency = { kind = \"fixed\", ms = 0 }\n[agency.CSN]\nlatency = { kind = \"fixed\", ms = 0 }\n[agency.FK]\nlatency = { kind = \"fixed\", ms = 0 }\n[agency.SKV]\nlatency = { kind = \"fixed\", ms = 0 }\n[agency.SO]\nlatency = { kind = \"fixed\", ms = 0 }\n[agency.TNS]\nlatency = { kind = \"fixed\", ms = 0 }\n[agency.MIV]\nlatency = { kind = \"fixed\", ms = 0 }\n[agency.ELT]\nlatency = { kind = \"fixed\", ms = 0 }\n";

#[derive(Parser, Debug)]
#[command(
    name = "shs-bench",
    about = "Load bench for shs-relay (loopback or your own test hosts only)"
)]
struct Args {
    /// Start the demo stack (simulator, seven adapters, relay) from the
    /// binaries beside this one, and report each process's CPU and memory.
    #[arg(long, conflicts_with = "demo")]
    start: bool,
    /// With --start: where the stack's files go (default: a temporary directory).
    #[arg(long, requires = "start")]
    dir: Option<PathBuf>,
    /// With --start: the relay's `limits.max_in_flight`.
    #[arg(long, requires = "start")]
    max_in_flight: Option<usize>,
    /// With --start: the simulator's scenario file.
    #[arg(long, requires = "start")]
    scenario: Option<PathBuf>,
    /// With --start: relay nodes on one PostgreSQL store (`demo --nodes`).
    #[arg(long, requires = "start", default_value_t = 1)]
    nodes: usize,
    /// With --start: the PostgreSQL database of the nodes (`demo --postgres`);
    /// also puts a single node on PostgreSQL.
    #[arg(long, requires = "start")]
    postgres: Option<String>,
    /// Spread the queries over every relay node in demo.json `relays` (round
    /// robin; an asynchronous message is fetched and acknowledged through the
    /// node after the one it was sent to).
    #[arg(long)]
    all_nodes: bool,
    /// A running demo: its directory or demo.json.
    #[arg(long)]
    demo: Option<PathBuf>,
    /// A deployed relay (https://host:port) instead of a demo.
    #[arg(long, requires_all = ["ca", "cert", "key", "org", "to", "product"])]
    url: Option<String>,
    /// With --url: the CA (PEM) the relay's certificate chains to.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// With --url: the client certificate (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// With --url: the client key (PEM, PKCS#8).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The calling organisation (with --demo: picks the client).
    #[arg(long)]
    org: Option<String>,
    /// The relay's organisation number.
    #[arg(long)]
    to: Option<String>,
    /// The SSBTEK product id.
    #[arg(long)]
    product: Option<String>,
    /// The SSBTEK SOAP facade's path.
    #[arg(long, default_value = "/ssbtek/v10")]
    soap_path: String,
    /// What to send, comma separated; each runs in turn.
    #[arg(long, value_delimiter = ',', default_value = "shs")]
    workload: Vec<Workload>,
    /// Closed loop: queries in flight at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Open loop: queries per second (overrides --concurrency).
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: at most this many unanswered queries; beyond, a due query is
    /// counted as `bench_saturated` instead of sent.
    #[arg(long, default_value_t = 10_000)]
    max_outstanding: usize,
    /// Seconds of load per run. Keep runs short on a shared machine.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Sequential queries before each run, not counted (connections, caches).
    #[arg(long, default_value_t = 20)]
    warmup: u64,
    /// Also run the bare fan-out baseline (needs the adapters: a demo).
    #[arg(long)]
    baseline: bool,
    /// Set every simulated agency to zero latency first (needs the simulator's admin).
    #[arg(long)]
    zero_latency: bool,
}

fn target(args: &Args, started: Option<&Demo>) -> anyhow::Result<Target> {
    let demo = started.map(|d| d.dir.clone()).or_else(|| args.demo.clone());
    if let Some(d) = demo {
        let mut t = Target::from_demo(&d, args.org.as_deref())?;
        if !args.all_nodes {
            t.nodes = vec![t.relay_url.clone()];
        }
        return Ok(t);
    }
    let need = |v: &Option<PathBuf>, what: &str| {
        v.clone()
            .with_context(|| format!("give --{what} (or --demo / --start)"))
    };
    let url = args.url.clone().context("give --demo, --start or --url")?;
    Ok(Target {
        nodes: vec![url.trim_end_matches('/').to_owned()],
        relay_url: url.trim_end_matches('/').to_owned(),
        ca: need(&args.ca, "ca")?,
        node_org: args.to.clone().context("give --to")?,
        ssbtek_product: args.product.clone().context("give --product")?,
        direct_product: None,
        soap_path: args.soap_path.clone(),
        caller: Identity {
            org: args.org.clone().context("give --org")?,
            name: "Kommunen".into(),
            cert: need(&args.cert, "cert")?,
            key: need(&args.key, "key")?,
        },
        recipient: None,
        providers: Vec::new(),
        provider_client: None,
        sim_admin: None,
    })
}

/// The processes whose CPU and memory the report shows (when the bench started them).
fn processes(demo: Option<&Demo>) -> Vec<(String, u32)> {
    let Some(demo) = demo else {
        return Vec::new();
    };
    std::iter::once("shs-relay")
        .chain(adapters().map(|(_, b)| b))
        .chain(std::iter::once("shs-sim"))
        .filter_map(|b| demo.pid_of(b).map(|p| (b.to_owned(), p)))
        .collect()
}

fn sample_all(procs: &[(String, u32)], hz: u64) -> Vec<ProcSample> {
    procs
        .iter()
        .map(|(_, pid)| procstat::sample(*pid, hz).unwrap_or_default())
        .collect()
}

async fn measured<F, Fut>(
    title: &str,
    args: &Args,
    procs: &[(String, u32)],
    query: F,
) -> anyhow::Result<Summary>
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    for i in 0..args.warmup {
        if let Err(kind) = query(i).await {
            anyhow::bail!("{title}: a warm-up query failed: {kind}");
        }
    }
    let load = match args.rate {
        Some(r) => Load::Open {
            schedule: OpenLoop::new(r).context("--rate must be a positive number")?,
            max_outstanding: args.max_outstanding,
        },
        None => Load::Closed {
            concurrency: args.concurrency,
        },
    };
    let hz = procstat::ticks_per_second();
    let before = sample_all(procs, hz);
    let summary = drive(load, Duration::from_secs_f64(args.duration), query).await;
    let after = sample_all(procs, hz);
    let how = match load {
        Load::Closed { concurrency } => format!("closed loop, {concurrency} in flight"),
        Load::Open { schedule, .. } => format!("open loop, {} q/s", schedule.rate()),
    };
    print!("{}", report::summary(&format!("{title} ({how})"), &summary));
    for (((name, _), b), a) in procs.iter().zip(before).zip(after) {
        print!("{}", report::process(name, b, a, summary.completed()));
    }
    Ok(summary)
}

async fn bench(args: Args) -> anyhow::Result<()> {
    relay_pki::tls::install_crypto_provider();
    let mut _tmp = None;
    let demo = if args.start {
        let dir = match &args.dir {
            Some(d) => d.clone(),
            None => {
                let t = tempfile::tempdir()?;
                let p = t.path().to_owned();
                _tmp = Some(t);
                p
            }
        };
        let mut opts = DemoOptions::new(&dir)?;
        opts.max_in_flight = args.max_in_flight;
        opts.scenario = args.scenario.clone();
        opts.nodes = args.nodes;
        opts.postgres = args.postgres.clone();
        let demo = Demo::start(opts)
            .await
            .context("cannot start the demo stack")?;
        println!("started the demo stack in {}", demo.dir.display());
        Some(demo)
    } else {
        None
    };
    let result = run_all(&args, demo.as_ref()).await;
    if let Some(d) = demo {
        d.stop().await;
    }
    result
}

async fn run_all(args: &Args, demo: Option<&Demo>) -> anyhow::Result<()> {
    let target = target(args, demo)?;
    if args.zero_latency {
        let admin = target
            .sim_admin
            .as_deref()
            .context("--zero-latency needs the simulator's admin (a demo)")?;
        let r = reqwest::Client::new()
            .put(format!("{admin}/admin/scenario"))
            .body(ZERO_LATENCY)
            .send()
            .await
            .context("cannot reach the simulator's admin")?;
        anyhow::ensure!(
            r.status().is_success(),
            "the simulator refused the scenario: {}",
            r.status()
        );
        println!("simulator: every agency at zero latency");
    }
    let procs = processes(demo);
    let pool = args.concurrency.max(64);
    let relay = Relay::new(target.clone(), pool)?;
    let mut shs = None;
    for workload in &args.workload {
        let r = relay.clone();
        let w = *workload;
        let s = measured(&format!("{w:?} via the relay"), args, &procs, move |i| {
            let r = r.clone();
            async move { r.run(w, i).await }
        })
        .await?;
        if w == Workload::Shs {
            shs = Some(s);
        }
    }
    if args.baseline {
        let fan_out = FanOut::new(&target, Duration::from_secs(10))?;
        let adapters_and_sim: Vec<(String, u32)> = procs
            .iter()
            .filter(|(n, _)| n != "shs-relay")
            .cloned()
            .collect();
        let f: Arc<FanOut> = fan_out;
        let base = measured(
            "baseline: seven gRPC calls straight to the adapters",
            args,
            &adapters_and_sim,
            move |i| {
                let f = f.clone();
                async move { f.run(i).await }
            },
        )
        .await?;
        match &shs {
            Some(s) => print!("{}", report::comparison(s, &base)),
            None => println!("(run --workload shs too for relay ÷ baseline)"),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shs-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(bench(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shs-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
