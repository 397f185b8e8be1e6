//! The OpenStack flags (`--os-cloud`, ...) and the config file's `openstack:` section,
//! resolved into Cinder settings ([`super::settings`]). Flags override `OS_*` variables,
//! which override the file.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::cinder::CinderSettings;

/// OpenStack flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OpenStackArgs {
    /// Cloud of clouds.yaml to use for Cinder [env: OS_CLOUD].
    #[arg(long = "os-cloud", global = true)]
    pub cloud: Option<String>,
    /// The clouds.yaml file [env: OS_CLIENT_CONFIG_FILE].
    #[arg(long = "os-clouds-file", global = true)]
    pub clouds_file: Option<PathBuf>,
    /// Region of the block-storage endpoint [env: OS_REGION_NAME].
    #[arg(long = "os-region", global = true)]
    pub region: Option<String>,
    /// Endpoint interface: public, internal or admin [env: OS_INTERFACE].
    #[arg(long = "os-interface", global = true)]
    pub interface: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOpenStack {
    cloud: Option<String>,
    clouds_file: Option<PathBuf>,
    region: Option<String>,
    interface: Option<String>,
    endpoint_override: Option<String>,
}

impl OpenStackArgs {
    /// The resolved settings: flags over `OS_*` variables over the config file's
    /// `openstack:` section (`section`).
    pub fn resolve(&self, section: &serde_yaml::Value) -> anyhow::Result<CinderSettings> {
        let file: FileOpenStack = if section.is_null() {
            FileOpenStack::default()
        } else {
            serde_yaml::from_value(section.clone()).context(
                "config file: invalid `openstack` section \
                 (keys: cloud, clouds_file, region, interface, endpoint_override)",
            )?
        };
        let env = CinderSettings::from_env();
        Ok(CinderSettings {
            cloud: self.cloud.clone().or(env.cloud).or(file.cloud),
            clouds_file: self
                .clouds_file
                .clone()
                .or(env.clouds_file)
                .or(file.clouds_file),
            region: self.region.clone().or(env.region).or(file.region),
            interface: self.interface.clone().or(env.interface).or(file.interface),
            endpoint_override: env.endpoint_override.or(file.endpoint_override),
            ..env
        })
    }
}

/// What to do when Cinder cannot be reached.
pub const UNREACHABLE: &str = "cannot reach Cinder (use --os-cloud / OS_CLOUD and clouds.yaml, \
     or OS_* variables; --no-volume-backups skips volumes)";
