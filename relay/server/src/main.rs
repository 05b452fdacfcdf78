//! `shs-relay`: the relay binary. See `relay_server` for the layout.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "shs-relay",
    version,
    about = "SHS 1.2 relay with SSBTEK fan-out to provider adapters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay with a configuration file.
    Serve {
        /// The relay's TOML configuration.
        #[arg(long, short, env = "SHS_RELAY_CONFIG")]
        config: PathBuf,
    },
    /// Check a configuration file and exit (0 when valid).
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Start a complete development stack: PKI, simulator, seven adapters and the
    /// relay, each as its own process; writes DIR/demo.json; stops on Ctrl-C/SIGTERM.
    Demo {
        /// Where to write certificates, configs, logs and demo.json.
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// A simulator scenario file (default: the simulator's default scenario).
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    relay_pki::tls::install_crypto_provider();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shs-relay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => relay_server::serve_from_file(&config).await,
            Command::CheckConfig { config } => relay_server::config::Config::load(&config)
                .map(|_| println!("{}: valid", config.display()))
                .map_err(anyhow::Error::from),
            Command::Demo { dir, scenario } => {
                relay_server::demo::run(&dir, scenario.as_deref()).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shs-relay: {e:#}");
            ExitCode::FAILURE
        }
    }
}
