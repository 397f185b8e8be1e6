//! The command-line front: parses arguments, resolves configuration once, builds one
//! [`Engine`] (a [`LocalEngine`] over etcd and the bank, or a
//! [`crate::api::client::RemoteEngine`] with `--agent URL`), calls it and renders the
//! views it returns. The same command tree whatever engine it holds; no business logic
//! lives here.
//!
//! Exit codes: 0 success, 1 failure (one line `error: <cause>` on stderr), 2 bad usage,
//! invalid parameters or an invalid config file.

mod agent;
pub mod bank;
mod checkpoints;
pub mod config;
mod demo;
pub mod openstack;
pub mod output;
mod plans;
mod pods;
mod progress;
mod remote;
mod restore;
mod schema;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use self::config::{EtcdArgs, FileConfig};
use self::output::OutputFormat;
use crate::codec::{Decoder, EncryptionConfig};
use crate::engine::{Engine, EngineError, Lazy, LocalEngine, VolumeMode};
use crate::etcd::Etcd;

/// podbank: backups of Kubernetes pods and their Cinder volumes, read straight from etcd.
#[derive(Debug, Parser)]
#[command(name = "podbank", version, about, propagate_version = true)]
pub struct Cli {
    /// Config file (YAML); flags and PODBANK_* variables override it.
    #[arg(long, env = "PODBANK_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t, global = true)]
    pub output: OutputFormat,
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// etcd connection flags.
    #[command(flatten)]
    pub etcd: EtcdArgs,
    /// Bank flags.
    #[command(flatten)]
    pub bank: bank::BankArgs,
    /// OpenStack (Keystone, Cinder) flags.
    #[command(flatten)]
    pub openstack: openstack::OpenStackArgs,
    /// The agent to ask instead of doing the work here.
    #[command(flatten)]
    pub remote: remote::RemoteArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Protectable pods (Karbor's OS::Kubernetes::Pod): list, show, dependents.
    #[command(subcommand)]
    Pods(pods::PodsCommand),
    /// Print the JSON Schema of protect's or restore's parameters.
    Schema {
        /// protect or restore.
        #[arg(value_enum)]
        which: schema::Which,
    },
    /// Protect pods: store them (with their claims and volumes) and back up their Cinder
    /// volumes into a new checkpoint.
    Protect(checkpoints::ProtectArgs),
    /// Checkpoints in the bank: list, show, verify, delete.
    #[command(subcommand)]
    Checkpoints(checkpoints::CheckpointsCommand),
    /// Delete a checkpoint and its Cinder backups.
    Delete(checkpoints::DeleteArgs),
    /// Restore pods of a checkpoint: volumes from their backups, then PV, PVC and pod.
    Restore(restore::RestoreArgs),
    /// Restore records: list, show.
    #[command(subcommand)]
    Restores(restore::RestoresCommand),
    /// The bank itself: gc, stats, init, keygen.
    #[command(subcommand)]
    Bank(bank::BankCommand),
    /// Demo and test helpers: seed realistic pods into etcd.
    #[command(subcommand)]
    Demo(demo::DemoCommand),
    /// Run the long-running agent: schedules, retention, leader election, HTTP API.
    Agent(agent::AgentArgs),
    /// Plans (the config file's `agent.plans`, or a running agent's): list, run one now.
    #[command(subcommand)]
    Plans(plans::PlansCommand),
}

/// What every command gets: resolved settings and the output format.
pub struct Context {
    /// The parsed config file (empty if none).
    pub file: FileConfig,
    /// Output format.
    pub output: OutputFormat,
    /// How many `-v`: from one on, commands that read the bank say what it cost in
    /// requests (on stderr).
    pub verbose: u8,
    /// etcd flags.
    pub etcd: EtcdArgs,
    /// OpenStack flags.
    pub openstack: openstack::OpenStackArgs,
}

impl Context {
    /// Connect to etcd with the resolved settings.
    pub async fn connect_etcd(&self) -> anyhow::Result<Etcd> {
        let config = self.etcd.resolve(&self.file)?;
        Ok(Etcd::connect(&config).await?)
    }

    /// A decoder with the EncryptionConfiguration, if one is configured.
    pub fn decoder(&self) -> anyhow::Result<Decoder> {
        let encryption = match self.etcd.encryption_config(&self.file) {
            Some(path) => Some(EncryptionConfig::from_file(&path)?),
            None => None,
        };
        Ok(Decoder::new(encryption))
    }
}

/// What the engine of one command is set up with.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Create the bank if there is none (protect does).
    pub create_bank: bool,
    /// Where restores reach the API server.
    pub kube: Option<crate::apiserver::KubeSettings>,
    /// How long a restore waits for one volume.
    pub volume_timeout: Option<std::time::Duration>,
}

/// The engine commands run on: the agent's (`--agent`), or one here whose etcd, bank,
/// Cinder and API server are reached when a command first needs them.
pub fn engine(
    ctx: &Context,
    bank: &bank::BankArgs,
    remote: &remote::RemoteArgs,
    options: EngineOptions,
) -> anyhow::Result<Box<dyn Engine>> {
    if let Some(url) = &remote.url {
        let engine = crate::api::client::RemoteEngine::new(&remote.settings(url))?;
        return Ok(Box::new(engine));
    }
    let etcd_config = ctx.etcd.resolve(&ctx.file)?;
    let decoder = ctx.decoder()?;
    let etcd = Lazy::later(move || {
        let config = etcd_config.clone();
        Box::pin(async move {
            Etcd::connect(&config)
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))
        })
    });
    let opener = bank.opener(ctx, options.create_bank)?;
    let bank = Lazy::later(move || {
        let opener = opener.clone();
        Box::pin(async move { opener.open().await })
    });
    let cinder_settings = ctx.openstack.settings(ctx)?;
    let cinder = Lazy::later(move || {
        let settings = cinder_settings.clone();
        Box::pin(async move {
            crate::cinder::Cinder::connect(&settings)
                .await
                .map_err(|e| {
                    EngineError::Unavailable(format!(
                        "cannot reach Cinder (use --os-cloud / OS_CLOUD and clouds.yaml, or OS_* \
                     variables; --no-volume-backups skips volumes): {e}"
                    ))
                })
        })
    });
    let mut engine = LocalEngine::new(etcd, decoder, bank, VolumeMode::Cinder(cinder))
        .with_plans(plans_of(ctx)?)
        .with_secrets_in_plain_bank(bank::secrets_in_plain_bank(ctx)?)
        .with_progress(progress::for_output(ctx.output));
    if let Some(timeout) = options.volume_timeout {
        engine = engine.with_volume_timeout(timeout);
    }
    let kube = options.kube.unwrap_or_default();
    engine = engine.with_api_server(Lazy::later(move || {
        let kube = kube.clone();
        Box::pin(async move {
            crate::apiserver::ApiServer::connect(&kube)
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))
        })
    }));
    Ok(Box::new(engine))
}

/// The plans of the config file's `agent:` section.
fn plans_of(ctx: &Context) -> anyhow::Result<Vec<crate::engine::Plan>> {
    Ok(crate::agent::AgentConfig::from_yaml(&ctx.file.agent)?.plans()?)
}

/// An error that is the user's fault (bad parameters): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Entry point of the `podbank` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Do not wait for idle background tasks (gRPC connection shutdown, blocking-pool
    // threads): everything the command did is finished and flushed by now.
    runtime.shutdown_background();
    if std::env::var_os("PODBANK_REPORT_PEAK_RSS").is_some() {
        // For the benchmark: this process's own high-water mark (wait4's ru_maxrss of a
        // child also counts its parent's memory at spawn time).
        if let Some(kib) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_string()))
            })
        {
            eprintln!("podbank-peak-rss: {kib}");
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let usage = e.chain().any(|c| {
                c.is::<UsageError>()
                    || c.is::<crate::resources::ResourceError>()
                    || c.is::<crate::protection::schema::InvalidParameters>()
                    || c.is::<crate::protection::restore::NamespaceMapError>()
                    || c.is::<crate::model::IdError>()
                    || c.downcast_ref::<crate::agent::AgentError>()
                        .is_some_and(|a| matches!(a, crate::agent::AgentError::Config(_)))
                    || c.is::<crate::etcd::ElectionError>()
                    || c.downcast_ref::<crate::api::client::ClientError>()
                        .is_some_and(|e| e.is_usage())
                    || c.downcast_ref::<EngineError>().is_some_and(|e| {
                        matches!(e, EngineError::Invalid(_) | EngineError::Unsupported(_))
                    })
            });
            eprintln!("error: {}", one_line(&e));
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Output cut short by the reader (`podbank pods list | head`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

/// The error chain on one line, without repeating a cause its context already quotes.
fn one_line(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if text.contains(&s) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&s);
    }
    text.replace('\n', " ")
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = match &cli.config {
        Some(path) => FileConfig::load(path).map_err(|e| UsageError(format!("{e:#}")))?,
        None => FileConfig::default(),
    };
    let ctx = Context {
        file,
        output: cli.output,
        verbose: cli.verbose,
        etcd: cli.etcd,
        openstack: cli.openstack,
    };
    if let Some(url) = &cli.remote.url {
        if let Some(refusal) = remote::refused(&cli.command) {
            return Err(refusal.into());
        }
        if remote::operation(&ctx, &cli.remote, url, &cli.command)
            .await?
            .is_some()
        {
            return Ok(());
        }
    }
    let engine = |options: EngineOptions| engine(&ctx, &cli.bank, &cli.remote, options);
    match cli.command {
        Command::Schema { which } => schema::run(which),
        Command::Demo(cmd) => demo::run(&ctx, cmd).await,
        Command::Agent(args) => agent::run(&ctx, &cli.bank, args).await,
        Command::Pods(cmd) => pods::run(&ctx, &*engine(EngineOptions::default())?, cmd).await,
        Command::Protect(args) => {
            let options = EngineOptions {
                create_bank: true,
                ..EngineOptions::default()
            };
            checkpoints::protect(&ctx, &*engine(options)?, args).await
        }
        Command::Checkpoints(cmd) => {
            checkpoints::run(&ctx, &*engine(EngineOptions::default())?, cmd).await
        }
        Command::Delete(args) => {
            checkpoints::delete(&ctx, &*engine(EngineOptions::default())?, args).await
        }
        Command::Restore(args) => {
            let options = EngineOptions {
                kube: Some(args.kube_settings()),
                volume_timeout: Some(std::time::Duration::from_secs(args.volume_timeout)),
                ..EngineOptions::default()
            };
            restore::run_restore(&ctx, &*engine(options)?, args).await
        }
        Command::Restores(cmd) => {
            restore::run_restores(&ctx, &*engine(EngineOptions::default())?, cmd).await
        }
        Command::Bank(cmd) => {
            bank::run(&ctx, &cli.bank, &*engine(EngineOptions::default())?, cmd).await
        }
        Command::Plans(cmd) => {
            let here = cli.remote.url.is_none();
            plans::run(&ctx, &*engine(EngineOptions::default())?, here, cmd).await
        }
    }
}
