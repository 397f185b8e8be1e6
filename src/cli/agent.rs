//! `podbank agent`: parse the `agent:` section, connect to etcd, run the agent until
//! SIGTERM or SIGINT. The work itself is [`crate::agent`]'s.

use std::net::SocketAddr;

use anyhow::Context as _;

use super::Context;
use crate::agent::AgentConfig;

/// Flags of `podbank agent` (override the config file's `agent:` section).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentArgs {
    /// Address and port of the HTTP API (agent.listen).
    #[arg(long, env = "PODBANK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// File holding the API's bearer token (agent.token_file).
    #[arg(long, env = "PODBANK_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
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
    config.plans()?;
    config
        .election_config()
        .validate(&ctx.etcd.resolve(&ctx.file)?.prefix)?;
    Ok(config)
}

/// Run `podbank agent`.
pub async fn run(ctx: &Context, args: AgentArgs) -> anyhow::Result<()> {
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
    let _etcd = ctx.connect_etcd().await.context("agent")?;
    // The engine adapter over `protection` and `bank` is wired here once they exist.
    anyhow::bail!(
        "protection engine not available: this build has the agent (election, schedules, \
         retention, HTTP API) but no protect/restore/delete engine to drive yet"
    )
}
