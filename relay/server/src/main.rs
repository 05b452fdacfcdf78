//! `shs-relay`: the relay binary. See `relay_server` for the layout.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the request path makes many small,
/// short-lived allocations across worker threads, where glibc spent about 17 %
/// of the relay's CPU (docs/performance.md, "Third round").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e`,
/// mimalloc.h; libmimalloc-sys names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory the relay no longer uses goes back to the system: no transparent
/// huge pages (with them one touched byte of an arena is 2 MiB resident: the
/// relay sat at 64 MB instead of 33 MB after start), and freed pages returned
/// at once rather than after mimalloc's delay (a 100 MB message grew the
/// relay by 49 MB instead of 13 MB). Measured in docs/performance.md.
fn configure_memory() {
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes plain integers and touches no
    // memory of ours; mi_option_set only stores an option value. Both run
    // first thing in `main`, before the runtime starts other threads.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

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
    /// The configuration file: `config check FILE`.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Old spelling of `config check FILE`.
    #[command(hide = true)]
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// The audit trail: which case worker asked about a person.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The monthly service-level report from the audit trail.
    SlaReport {
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        /// md (default), json or html (one self-contained file).
        #[arg(long, default_value = "md")]
        format: String,
        /// The relay configuration: its `[audit] dir`, its `[service_levels]`
        /// targets and `[probe]` definitions. Without it: --audit-dir and the
        /// terms' targets.
        #[arg(long, short, env = "SHS_RELAY_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        audit_dir: Option<PathBuf>,
    },
    /// The register of connected parties, through a relay's admin API:
    /// `list`, `show ORG`, `state ORG`, `promote ORG`, `import FILE`.
    Parties {
        /// The relay's admin listener (`http://127.0.0.1:9090`).
        #[arg(long, env = "SHS_RELAY_ADMIN", global = true)]
        admin: Option<String>,
        /// Or the relay configuration, whose `[admin] listen` is used.
        #[arg(long, short, env = "SHS_RELAY_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: PartiesCommand,
    },
    /// The mailbox key ring: `init` (this node's first key file), and through
    /// a running relay's admin API `status`, `add`, `activate ID`, `rewrap`,
    /// `retire ID` (docs/operations.md, "Key rotation").
    Keys {
        /// The relay's admin listener (`http://127.0.0.1:9090`).
        #[arg(long, env = "SHS_RELAY_ADMIN", global = true)]
        admin: Option<String>,
        /// Or the relay configuration, whose `[admin] listen` is used.
        #[arg(long, short, env = "SHS_RELAY_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The store: `verify` (messages per key, missing keys, plaintext found).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
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
        /// An OTLP/gRPC collector (`http://127.0.0.1:4317`, e.g. Jaeger): the
        /// relay and every adapter export their spans there.
        #[arg(long)]
        otlp_endpoint: Option<String>,
        /// Relay nodes to start, sharing one PostgreSQL store (demo.json lists
        /// them under `relays`; `relay` is the first).
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// The PostgreSQL database the nodes share (each demo uses a schema of
        /// its own); without it, several nodes get a throwaway cluster.
        #[arg(long)]
        postgres: Option<String>,
        /// Run this slot's adapter as the Python reference adapter
        /// (providers/python) instead of the Rust one; only `tns`. Needs the
        /// environment target/venv (README.md, "Python adapter").
        #[arg(long, value_name = "SLOT")]
        python_adapter: Vec<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Creates `[mailbox] key_file` with one fresh key (id 1) unless it exists.
    Init,
    /// The ring: keys, the active one, messages per key, live nodes.
    Status,
    /// A fresh key in the relay's key file (copy the file to every node).
    Add,
    /// New messages use key ID (refused until every live node holds it).
    Activate { id: u32 },
    /// Rewraps every message under the active key, online.
    Rewrap,
    /// Retires key ID (refused while any message uses it).
    Retire { id: u32 },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Scans the store: messages per key id, messages whose key is missing,
    /// any stored body's plaintext found in the store's bytes. Exits non-zero
    /// on a missing key, a damaged message or plaintext. With redb, stop the
    /// relay first (it holds the file lock).
    Verify {
        #[arg(long, short, env = "SHS_RELAY_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum PartiesCommand {
    /// Every party (optionally only those with a state or product).
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        product: Option<String>,
    },
    /// One party: states with history, checks with times, certificates.
    Show { org: String },
    /// Moves a party's product to a state (not production: see `promote`).
    State {
        org: String,
        #[arg(long)]
        product: String,
        #[arg(long)]
        state: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Promotes a party's product to production once its test checks passed.
    Promote {
        org: String,
        #[arg(long)]
        product: String,
        /// Promote although checks are missing, for this reason (audited).
        #[arg(long = "override")]
        override_reason: Option<String>,
    },
    /// Seeds the register from a relay configuration's [[agreements]]
    /// (idempotent: adds what is missing, never changes what is there).
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Checks a configuration offline: prints every error as `FILE: KEY: REASON`
    /// and exits non-zero when there is one (0 and `FILE: valid` otherwise).
    Check {
        /// The relay's TOML configuration.
        file: PathBuf,
        /// Do not look at the files it names (certificates, keys), e.g. when
        /// checking it away from the host it is for; by default each must exist
        /// and parse as PEM.
        #[arg(long)]
        skip_files: bool,
    },
}

/// `shs-relay config check`: every error on stderr, one a line.
fn check_config(file: &std::path::Path, skip_files: bool) -> ExitCode {
    use relay_server::config::{Config, FileCheck};
    let files = if skip_files {
        FileCheck::Skip
    } else {
        FileCheck::Contents
    };
    match Config::check_file(file, files) {
        Ok(_) => {
            println!("{}: valid", file.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Rotates the pseudonym key: the current key is kept beside the key file
    /// as `<key_file>.<key id>` (who-asked reads it), a new key replaces it;
    /// reload the relay (SIGHUP or POST /admin/reload) to start using it.
    RotateKey {
        /// The relay configuration (its `[audit] key_file`).
        #[arg(
            long,
            short,
            env = "SHS_RELAY_CONFIG",
            required_unless_present = "key_file"
        )]
        config: Option<PathBuf>,
        /// The key file, instead of --config.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Lists which organisation, case worker and case asked about a person, when.
    WhoAsked {
        /// Personnummer or samordningsnummer.
        #[arg(long)]
        person: String,
        /// From this day (YYYY-MM-DD, Stockholm time), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// To this day, inclusive.
        #[arg(long)]
        to: Option<String>,
        /// md (default) or json.
        #[arg(long, default_value = "md")]
        format: String,
        /// The relay configuration (its `[audit]` section), or give the paths.
        #[arg(long, short, env = "SHS_RELAY_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        audit_dir: Option<PathBuf>,
        /// Pseudonym key files (several for periods before a key rotation).
        #[arg(long = "key-file")]
        key_files: Vec<PathBuf>,
    },
}

/// The configuration file, when one was given.
fn load_config(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<relay_server::config::Config>> {
    Ok(path.map(relay_server::config::Config::load).transpose()?)
}

/// The audit directory and key file from the flags or the configuration.
fn audit_paths(
    config: Option<&relay_server::config::Config>,
    dir: Option<PathBuf>,
    keys: Vec<PathBuf>,
) -> anyhow::Result<(PathBuf, Vec<PathBuf>)> {
    let from_config = config.and_then(|c| c.audit.clone());
    let dir = dir
        .or_else(|| from_config.as_ref().map(|a| a.dir.clone()))
        .ok_or_else(|| {
            anyhow::anyhow!("no audit directory: give --audit-dir or --config with [audit]")
        })?;
    let keys = if keys.is_empty() {
        // The key in use and every retired one (`audit rotate-key`).
        from_config
            .map(|a| {
                let mut all = vec![a.key_file.clone()];
                all.extend(relay_audit::retired_key_files(&a.key_file));
                all
            })
            .unwrap_or_default()
    } else {
        keys
    };
    Ok((dir, keys))
}

fn main() -> ExitCode {
    configure_memory();
    relay_pki::tls::install_crypto_provider();
    let cli = Cli::parse();
    match &cli.command {
        Command::Config {
            command: ConfigCommand::Check { file, skip_files },
        } => return check_config(file, *skip_files),
        Command::CheckConfig { config } => return check_config(config, false),
        _ => {}
    }
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
            // Answered above, without a runtime.
            Command::Config { .. } | Command::CheckConfig { .. } => Ok(()),
            Command::Demo {
                dir,
                scenario,
                otlp_endpoint,
                nodes,
                postgres,
                python_adapter,
            } => {
                let stop = tokio_util::sync::CancellationToken::new();
                relay_demo::run(
                    &dir,
                    scenario.as_deref(),
                    otlp_endpoint,
                    nodes,
                    postgres,
                    python_adapter,
                    relay_server::shutdown_on_signal(stop),
                )
                .await
            }
            Command::Keys {
                admin,
                config,
                command,
            } => {
                use relay_server::keys::cli::{Action, init, run};
                let action = match command {
                    KeysCommand::Init => {
                        return match config {
                            Some(c) => init(&c),
                            None => Err(anyhow::anyhow!("keys init needs --config")),
                        };
                    }
                    KeysCommand::Status => Action::Status,
                    KeysCommand::Add => Action::Add,
                    KeysCommand::Activate { id } => Action::Activate(id),
                    KeysCommand::Rewrap => Action::Rewrap,
                    KeysCommand::Retire { id } => Action::Retire(id),
                };
                match relay_server::parties::cli::admin_url(admin, config.as_deref()) {
                    Ok(url) => run(&url, action).await,
                    Err(e) => Err(e),
                }
            }
            Command::Store {
                command: StoreCommand::Verify { config },
            } => relay_server::keys::cli::verify(&config).await,
            Command::Parties {
                admin,
                config,
                command,
            } => {
                use relay_server::parties::cli::{Action, admin_url, run};
                let action = match command {
                    PartiesCommand::List { state, product } => Action::List { state, product },
                    PartiesCommand::Show { org } => Action::Show { org },
                    PartiesCommand::State {
                        org,
                        product,
                        state,
                        reason,
                    } => Action::State {
                        org,
                        product,
                        state,
                        reason,
                    },
                    PartiesCommand::Promote {
                        org,
                        product,
                        override_reason,
                    } => Action::Promote {
                        org,
                        product,
                        override_reason,
                    },
                    PartiesCommand::Import { file } => Action::Import { file },
                };
                match admin_url(admin, config.as_deref()) {
                    Ok(url) => run(&url, action).await,
                    Err(e) => Err(e),
                }
            }
            Command::Audit {
                command:
                    AuditCommand::WhoAsked {
                        person,
                        from,
                        to,
                        format,
                        config,
                        audit_dir,
                        key_files,
                    },
            } => load_config(config.as_deref())
                .and_then(|c| audit_paths(c.as_ref(), audit_dir, key_files))
                .and_then(|(dir, keys)| {
                    let format = format
                        .parse()
                        .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
                    let text = relay_audit::run_who_asked(
                        &[dir],
                        &keys,
                        &person,
                        from.as_deref(),
                        to.as_deref(),
                        format,
                    )?;
                    print!("{text}");
                    Ok(())
                }),
            Command::Audit {
                command: AuditCommand::RotateKey { config, key_file },
            } => load_config(config.as_deref()).and_then(|c| {
                let path = key_file
                    .or_else(|| c.and_then(|c| c.audit).map(|a| a.key_file))
                    .ok_or_else(|| {
                        anyhow::anyhow!("no key file: give --key-file or --config with [audit]")
                    })?;
                let (old, retired, new) = relay_audit::rotate_key(&path)?;
                println!(
                    "pseudonym key rotated: new key {} in {}; key {} kept as {} (who-asked reads it; keep it as long as the audit files of its period)\nreload the relay to start using the new key: systemctl reload shs-relay, or POST /admin/reload",
                    new.id(),
                    path.display(),
                    old.id(),
                    retired.display()
                );
                Ok(())
            }),
            Command::SlaReport {
                month,
                format,
                config,
                audit_dir,
            } => load_config(config.as_deref()).and_then(|c| {
                let (dir, _) = audit_paths(c.as_ref(), audit_dir, Vec::new())?;
                // The configured targets and probe definitions; the terms' without one.
                let sla = c.map(|c| c.sla()).unwrap_or_default();
                let format = format
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
                print!(
                    "{}",
                    relay_audit::run_sla_report(&[dir], &month, format, &sla)?
                );
                Ok(())
            }),
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
