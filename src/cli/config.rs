//! The config file (YAML) and its merge with flags and `PODBANK_*` variables.
//!
//! Precedence: command-line flags, then environment variables (both handled by clap),
//! then the config file, then built-in defaults. The same file serves the CLI and the
//! agent.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::etcd::EtcdConfig;

/// Etcd settings as they may appear in the file; every field optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileEtcd {
    /// Endpoints.
    pub servers: Option<Vec<String>>,
    /// CA bundle.
    pub ca_file: Option<PathBuf>,
    /// Client certificate.
    pub cert_file: Option<PathBuf>,
    /// Client key.
    pub key_file: Option<PathBuf>,
    /// kube-apiserver's `--etcd-prefix`.
    pub prefix: Option<String>,
    /// Keys per range request.
    pub page_size: Option<usize>,
    /// kube-apiserver's `--encryption-provider-config`.
    pub encryption_provider_config: Option<PathBuf>,
}

/// The whole config file. Sections other parts of podbank read are kept as raw YAML
/// until those parts parse them.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// etcd connection.
    pub etcd: FileEtcd,
    /// The bank.
    pub bank: serde_yaml::Value,
    /// OpenStack settings.
    pub openstack: serde_yaml::Value,
    /// Kubernetes API server settings.
    pub kubernetes: serde_yaml::Value,
    /// Agent settings and plans.
    pub agent: serde_yaml::Value,
}

impl FileConfig {
    /// Read and parse `path`; a missing or invalid file is an error naming it.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        serde_yaml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// The etcd flags, shared by every command that reads etcd.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EtcdArgs {
    /// etcd endpoints, comma-separated (kube-apiserver's --etcd-servers).
    #[arg(
        long,
        env = "PODBANK_ETCD_SERVERS",
        value_delimiter = ',',
        global = true
    )]
    pub etcd_servers: Option<Vec<String>>,
    /// CA file for etcd's server certificates.
    #[arg(long, env = "PODBANK_ETCD_CAFILE", global = true)]
    pub etcd_cafile: Option<PathBuf>,
    /// Client certificate for etcd.
    #[arg(long, env = "PODBANK_ETCD_CERTFILE", global = true)]
    pub etcd_certfile: Option<PathBuf>,
    /// Client key for etcd.
    #[arg(long, env = "PODBANK_ETCD_KEYFILE", global = true)]
    pub etcd_keyfile: Option<PathBuf>,
    /// Key prefix kube-apiserver writes under (its --etcd-prefix).
    #[arg(long, env = "PODBANK_ETCD_PREFIX", global = true)]
    pub etcd_prefix: Option<String>,
    /// Keys per etcd range request.
    #[arg(long, env = "PODBANK_PAGE_SIZE", global = true)]
    pub page_size: Option<usize>,
    /// kube-apiserver's EncryptionConfiguration, to read values encrypted at rest.
    #[arg(long, env = "PODBANK_ENCRYPTION_PROVIDER_CONFIG", global = true)]
    pub encryption_provider_config: Option<PathBuf>,
}

impl EtcdArgs {
    /// Resolve flags over the file over defaults.
    pub fn resolve(&self, file: &FileConfig) -> anyhow::Result<EtcdConfig> {
        let f = &file.etcd;
        let d = EtcdConfig::default();
        let config = EtcdConfig {
            servers: self
                .etcd_servers
                .clone()
                .or_else(|| f.servers.clone())
                .unwrap_or(d.servers),
            ca_file: self.etcd_cafile.clone().or_else(|| f.ca_file.clone()),
            cert_file: self.etcd_certfile.clone().or_else(|| f.cert_file.clone()),
            key_file: self.etcd_keyfile.clone().or_else(|| f.key_file.clone()),
            prefix: self
                .etcd_prefix
                .clone()
                .or_else(|| f.prefix.clone())
                .unwrap_or(d.prefix),
            page_size: self.page_size.or(f.page_size).unwrap_or(d.page_size),
            ..d
        };
        if config.page_size == 0 {
            anyhow::bail!("--page-size must be at least 1");
        }
        if config.endpoints().is_empty() {
            anyhow::bail!("--etcd-servers is empty");
        }
        Ok(config)
    }

    /// The EncryptionConfiguration path, flag over file.
    pub fn encryption_config(&self, file: &FileConfig) -> Option<PathBuf> {
        self.encryption_provider_config
            .clone()
            .or_else(|| file.etcd.encryption_provider_config.clone())
    }
}
