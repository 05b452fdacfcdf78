//! `shs-sim --config sim.toml [--scenario FILE]`: the simulated base services.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use shs_sim::scenario::Scenario;
use shs_sim::{Sim, SimConfig};

#[derive(Parser)]
#[command(
    name = "shs-sim",
    version,
    about = "Simulated SSBTEK base services (never feed it real persons)"
)]
struct Args {
    #[arg(long, short)]
    config: PathBuf,
    /// Scenario TOML (default: the built-in default scenario).
    #[arg(long)]
    scenario: Option<PathBuf>,
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .json()
        .try_init();
    let run = async {
        let mut config = SimConfig::load(&args.config)?;
        if let Some(l) = args.listen {
            config.listen = l;
        }
        if let Some(l) = args.admin_listen {
            config.admin_listen = l;
        }
        let scenario = match &args.scenario {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                Scenario::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
            }
            None => Scenario::parse(include_str!("../scenarios/default.toml"))
                .map_err(|e| anyhow::anyhow!("default scenario: {e}"))?,
        };
        let sim = Sim::start(config, scenario).await?;
        println!(
            "{}",
            serde_json::json!({ "listen": sim.listen.to_string(), "admin": sim.admin.to_string() })
        );
        tracing::info!(listen = %sim.listen, admin = %sim.admin, "shs-sim listening");
        shutdown().await;
        anyhow::Ok(())
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shs-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shs-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}
