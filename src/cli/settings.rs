//! The settings of one run, resolved once: flags, then environment variables (clap reads
//! the `PODBANK_*` ones with the flags; `OS_*` come through
//! [`CinderSettings::from_env`]), then the config file, then built-in defaults. The
//! engine (or the agent) is built from this one value; nothing reads the raw file after.
//!
//! Resolved only for work done here: a command sent to an agent (`--agent`) and `podbank
//! schema` read none of it.

use std::path::PathBuf;

use super::bank::BankSettings;
use super::config::FileConfig;
use super::{Cli, Command};
use crate::agent::AgentConfig;
use crate::cinder::CinderSettings;
use crate::engine::{EngineError, Plan};
use crate::etcd::EtcdConfig;

/// Everything a command run here is set up with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How to reach etcd.
    pub etcd: EtcdConfig,
    /// kube-apiserver's EncryptionConfiguration, to read values encrypted at rest.
    pub encryption_provider_config: Option<PathBuf>,
    /// Where the bank is, and its key file.
    pub bank: BankSettings,
    /// Protect may store Secrets in a plain bank (`bank.secrets_in_plain_bank`).
    pub secrets_in_plain_bank: bool,
    /// How to reach Cinder.
    pub openstack: CinderSettings,
    /// The `agent:` section, with `podbank agent`'s flags over it.
    pub agent: AgentConfig,
    /// The plans of the `agent:` section, checked.
    pub plans: Vec<Plan>,
}

impl Settings {
    /// Resolves the flags of `cli` over `file` over the defaults. The `agent:` section's
    /// mistakes are the caller's ([`EngineError::Invalid`], exit code 2).
    pub fn resolve(cli: &Cli, file: &FileConfig) -> anyhow::Result<Settings> {
        let etcd = cli.etcd.resolve(file)?;
        let encryption_provider_config = cli.etcd.encryption_config(file);
        let (bank, secrets_in_plain_bank) = cli.bank.resolve(&file.bank)?;
        let openstack = cli.openstack.resolve(&file.openstack)?;
        let invalid = |e: crate::agent::AgentError| EngineError::Invalid(e.to_string());
        let mut agent = AgentConfig::from_yaml(&file.agent).map_err(invalid)?;
        if let Command::Agent(args) = &cli.command {
            if let Some(l) = args.listen {
                agent.listen = l;
            }
            if let Some(t) = &args.token_file {
                agent.token_file = Some(t.clone());
            }
            if let Some(i) = &args.identity {
                agent.identity = Some(i.clone());
            }
        }
        let plans = agent.plans().map_err(invalid)?;
        Ok(Settings {
            etcd,
            encryption_provider_config,
            bank,
            secrets_in_plain_bank,
            openstack,
            agent,
            plans,
        })
    }

    /// A decoder with the EncryptionConfiguration, if one is configured.
    pub fn decoder(&self) -> anyhow::Result<crate::codec::Decoder> {
        let encryption = match &self.encryption_provider_config {
            Some(path) => Some(crate::codec::EncryptionConfig::from_file(path)?),
            None => None,
        };
        Ok(crate::codec::Decoder::new(encryption))
    }

    /// Connects to etcd.
    pub async fn connect_etcd(&self) -> anyhow::Result<crate::etcd::Etcd> {
        Ok(crate::etcd::Etcd::connect(&self.etcd).await?)
    }
}
