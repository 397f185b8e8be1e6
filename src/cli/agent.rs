//! `podbank agent`: check the `agent:` section, connect to etcd, open the bank, run the
//! agent over the protection engine until SIGTERM or SIGINT. The work itself is
//! [`crate::agent`]'s.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;

use super::settings::Settings;
use crate::agent::AgentError;
use crate::cinder::Cinder;
use crate::engine::{EngineError, Lazy, LocalEngine, VolumeMode};

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

/// An error of [`crate::agent`]: a mistake in the `agent:` section is the caller's
/// ([`EngineError::Invalid`], exit code 2), anything else a failure.
fn agent_error(e: AgentError) -> anyhow::Error {
    match e {
        AgentError::Config(_) => EngineError::Invalid(e.to_string()).into(),
        other => other.into(),
    }
}

/// Run `podbank agent` with `settings` (the `agent:` section already carries this
/// command's flags).
pub async fn run(settings: &Settings, args: AgentArgs) -> anyhow::Result<()> {
    let config = &settings.agent;
    config
        .election_config()
        .validate(&settings.etcd.prefix)
        .map_err(|e| EngineError::Invalid(e.to_string()))?;
    config.authentication().map_err(agent_error)?;
    if args.check_config {
        println!(
            "configuration is valid: {} plan(s), listen {}, election key {}",
            settings.plans.len(),
            config.listen,
            config.election.key
        );
        return Ok(());
    }
    let volumes = if args.no_volume_backups {
        VolumeMode::Skip("volume backups disabled (--no-volume-backups)".into())
    } else {
        let cinder = Cinder::connect(&settings.openstack)
            .await
            .context(super::openstack::UNREACHABLE)?;
        VolumeMode::Cinder(Lazy::ready(cinder))
    };
    let signal = crate::agent::shutdown_signal().context("installing signal handlers")?;
    let etcd = settings.connect_etcd().await.context("agent")?;
    let decoder = settings.decoder()?;
    let bank = settings.bank.open(true).await?;
    let mut engine = LocalEngine::new(
        Lazy::ready(etcd.clone()),
        decoder,
        Lazy::ready(bank),
        volumes,
    )
    .with_plans(settings.plans.clone())
    .with_secrets_in_plain_bank(settings.secrets_in_plain_bank);
    // Restores need the API server; without one the agent still protects and answers
    // restore requests with "unavailable".
    match crate::apiserver::ApiServer::connect(&Default::default()).await {
        Ok(api) => engine = engine.with_api_server(Lazy::ready(api)),
        Err(e) => tracing::warn!("restores disabled: {e}"),
    }
    let engine = Arc::new(engine);
    crate::agent::run(config, engine, &etcd, signal)
        .await
        .map_err(agent_error)?;
    Ok(())
}
