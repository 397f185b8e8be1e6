//! The command-line front: parses arguments, resolves the settings once
//! ([`settings::Settings`]: flags over environment over the config file), builds one
//! [`Engine`] (a [`LocalEngine`] over etcd and the bank, or a
//! [`crate::api::client::RemoteEngine`] with `--agent URL`), calls it and renders the
//! views it returns. The same command tree whatever engine it holds; no business logic
//! lives here.
//!
//! Exit codes: 0 success, 1 failure (one line `error: <cause>` on stderr), 2 bad usage,
//! invalid parameters or an invalid config file; beyond clap's own usage errors, chosen by
//! [`exit_code`] from the [`EngineError`] an error carries, the CLI's own mistakes
//! converted into one where it meets them.

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
pub mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use self::config::{EtcdArgs, FileConfig};
use self::output::OutputFormat;
use self::settings::Settings;
use crate::api::client::ClientSettings;
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

/// How every command renders what it gets.
pub struct Context {
    /// Output format.
    pub output: OutputFormat,
    /// How many `-v`: from one on, commands that read the bank say what it cost in
    /// requests (on stderr).
    pub verbose: u8,
}

/// What the engine of one command is set up with.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Create the bank if there is none (protect does).
    pub create_bank: bool,
    /// Where restores and protect's exec hooks reach the API server.
    pub kube: Option<crate::apiserver::KubeSettings>,
    /// How long a restore waits for one volume.
    pub volume_timeout: Option<std::time::Duration>,
}

/// Where the commands' work is done.
pub enum Site {
    /// Here, with the settings resolved once for this run.
    Here(Box<Settings>),
    /// By the agent at this URL (`--agent`): nothing local is read.
    Agent(ClientSettings),
}

impl Site {
    /// The settings of work done here; a command that only works here is refused with
    /// `--agent` before it gets this far ([`remote::refused`]).
    fn here(&self) -> Result<&Settings, EngineError> {
        match self {
            Site::Here(settings) => Ok(settings),
            Site::Agent(_) => Err(EngineError::Invalid(
                "this command works here and does not go through an agent: drop --agent \
                 (and PODBANK_AGENT)"
                    .into(),
            )),
        }
    }
}

/// The engine commands run on: the agent's (`--agent`), or one here whose etcd, bank,
/// Cinder and API server are reached when a command first needs them.
pub fn engine(
    ctx: &Context,
    site: &Site,
    options: EngineOptions,
) -> anyhow::Result<Box<dyn Engine>> {
    let settings = match site {
        Site::Agent(client) => {
            let engine =
                crate::api::client::RemoteEngine::new(client).map_err(EngineError::from)?;
            return Ok(Box::new(engine));
        }
        Site::Here(settings) => settings,
    };
    let etcd_config = settings.etcd.clone();
    let decoder = settings.decoder()?;
    let etcd = Lazy::later(move || {
        let config = etcd_config.clone();
        Box::pin(async move {
            Etcd::connect(&config)
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))
        })
    });
    let opener = settings.bank.opener(options.create_bank)?;
    let bank = Lazy::later(move || {
        let opener = opener.clone();
        Box::pin(async move { opener.open().await })
    });
    let cinder_settings = settings.openstack.clone();
    let cinder = Lazy::later(move || {
        let settings = cinder_settings.clone();
        Box::pin(async move {
            crate::cinder::Cinder::connect(&settings)
                .await
                .map_err(|e| EngineError::Unavailable(format!("{}: {e}", openstack::UNREACHABLE)))
        })
    });
    let mut engine = LocalEngine::new(etcd, decoder, bank, VolumeMode::Cinder(cinder))
        .with_plans(settings.plans.clone())
        .with_secrets_in_plain_bank(settings.secrets_in_plain_bank)
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

/// The exit code of an engine error, by its classification: the caller's fault (an
/// invalid request, or one this engine cannot take) is bad usage, 2; anything else a
/// failure, 1. Errors outside the engine are converted into [`EngineError`] where the CLI
/// meets them (`--config`, flags, the agent's settings); one that carries none is a
/// failure.
pub fn exit_code(e: &EngineError) -> u8 {
    match e {
        EngineError::Invalid(_) | EngineError::Unsupported(_) => 2,
        EngineError::NotFound(_)
        | EngineError::Conflict(_)
        | EngineError::Unavailable(_)
        | EngineError::Failed(_) => 1,
    }
}

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
            eprintln!("error: {}", one_line(&e));
            let engine = e.chain().find_map(|c| c.downcast_ref::<EngineError>());
            ExitCode::from(engine.map_or(1, exit_code))
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
        Some(path) => FileConfig::load(path).map_err(|e| EngineError::Invalid(format!("{e:#}")))?,
        None => FileConfig::default(),
    };
    let ctx = Context {
        output: cli.output,
        verbose: cli.verbose,
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
    if let Command::Schema { which } = cli.command {
        return schema::run(which);
    }
    let site = match &cli.remote.url {
        Some(url) => Site::Agent(cli.remote.settings(url)),
        None => Site::Here(Box::new(Settings::resolve(&cli, &file)?)),
    };
    let engine = |options: EngineOptions| engine(&ctx, &site, options);
    match cli.command {
        Command::Schema { which } => schema::run(which),
        Command::Demo(cmd) => demo::run(&ctx, site.here()?, cmd).await,
        Command::Agent(args) => agent::run(site.here()?, args).await,
        Command::Pods(cmd) => pods::run(&ctx, &*engine(EngineOptions::default())?, cmd).await,
        Command::Protect(args) => {
            let options = EngineOptions {
                create_bank: true,
                kube: Some(args.kube_settings()),
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
            let bank = &site.here()?.bank;
            bank::run(&ctx, bank, &*engine(EngineOptions::default())?, cmd).await
        }
        Command::Plans(cmd) => {
            let here = cli.remote.url.is_none();
            plans::run(&ctx, &*engine(EngineOptions::default())?, here, cmd).await
        }
    }
}
