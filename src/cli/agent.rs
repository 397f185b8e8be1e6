//! `podbank agent`: parse the `agent:` section, connect to etcd, open the bank, run the
//! agent over the protection engine until SIGTERM or SIGINT. The work itself is
//! [`crate::agent`]'s.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;

use super::bank::BankArgs;
use super::Context;
use crate::agent::AgentConfig;
use crate::engine::{Lazy, LocalEngine, VolumeMode};

/// Flags of `podbank agent` (override the config file's `agent:` section).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentArgs {
    /// Address and port of the HTTP API (agent.listen).
    #[arg(long, env = "PODBANK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// File holding the API's bearer token (agent.token_file).
    #[arg(long, env = "PODBANK_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// This replica's name in the leader election (agent.identity).
    #[arg(long, env = "PODBANK_IDENTITY")]
    pub identity: Option<String>,
    /// Record volumes as not protected instead of backing them up in Cinder.
    #[arg(long)]
    pub no_volume_backups: bool,
    /// Check the configuration and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// The typed agent settings: the file's section, overridden by flags.
pub fn resolve(ctx: &Context, args: &AgentArgs) -> anyhow::Result<AgentConfig> {
    let mut config = AgentConfig::from_yaml(&ctx.file.agent)?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(t) = &args.token_file {
        config.token_file = Some(t.clone());
    }
    if let Some(i) = &args.identity {
        config.identity = Some(i.clone());
    }
    config.plans()?;
    config
        .election_config()
        .validate(&ctx.etcd.resolve(&ctx.file)?.prefix)?;
    Ok(config)
}

/// Run `podbank agent`.
pub async fn run(ctx: &Context, bank_args: &BankArgs, args: AgentArgs) -> anyhow::Result<()> {
    let config = resolve(ctx, &args)?;
    config.read_token()?;
    if args.check_config {
        println!(
            "configuration is valid: {} plan(s), listen {}, election key {}",
            config.plans.len(),
            config.listen,
            config.election.key
        );
        return Ok(());
    }
    let volumes = if args.no_volume_backups {
        VolumeMode::Skip("volume backups disabled (--no-volume-backups)".into())
    } else {
        VolumeMode::Cinder(Lazy::ready(ctx.openstack.connect(ctx).await?))
    };
    let signal = crate::agent::shutdown_signal().context("installing signal handlers")?;
    let etcd = ctx.connect_etcd().await.context("agent")?;
    let decoder = ctx.decoder()?;
    let bank = bank_args.open(ctx, true).await?;
    let mut engine = LocalEngine::new(
        Lazy::ready(etcd.clone()),
        decoder,
        Lazy::ready(bank),
        volumes,
    )
    .with_plans(config.plans()?)
    .with_secrets_in_plain_bank(super::bank::secrets_in_plain_bank(ctx)?);
    // Restores need the API server; without one the agent still protects and answers
    // restore requests with "unavailable".
    match crate::apiserver::ApiServer::connect(&Default::default()).await {
        Ok(api) => engine = engine.with_api_server(Lazy::ready(api)),
        Err(e) => tracing::warn!("restores disabled: {e}"),
    }
    let engine = Arc::new(engine);
    crate::agent::run(&config, engine, &etcd, signal).await?;
    Ok(())
}
