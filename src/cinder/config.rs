//! How to reach Cinder: which cloud (whose credentials [`crate::openstack::clouds`] reads),
//! which region and interface, an endpoint override, timeouts, retries, polling and paging.

use std::path::PathBuf;
use std::time::Duration;

/// How to reach Cinder: which cloud, which region and interface, how long a request may take.
///
/// With `cloud` set, the credentials come from that entry of `clouds.yaml`; without it, from
/// the `OS_*` environment variables (`OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`,
/// `OS_PROJECT_NAME`, `OS_APPLICATION_CREDENTIAL_ID`, ...), read when [`super::Cinder::connect`]
/// runs. `region` and `interface`, when set, override the cloud's own `region_name` and
/// `interface`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CinderSettings {
    /// Name of the cloud in `clouds.yaml` (`OS_CLOUD`).
    pub cloud: Option<String>,
    /// The `clouds.yaml` to read (`OS_CLIENT_CONFIG_FILE`); default: `./clouds.yaml`,
    /// `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`, the first that exists.
    pub clouds_file: Option<PathBuf>,
    /// Region of the block-storage endpoint (`OS_REGION_NAME`).
    pub region: Option<String>,
    /// Endpoint interface: `public` (default), `internal` or `admin` (`OS_INTERFACE`).
    pub interface: Option<String>,
    /// Use this block-storage URL instead of the catalog's (e.g.
    /// `https://cinder.example:8776/v3/<project id>`); the cloud's
    /// `block_storage_endpoint_override` / `volumev3_endpoint_override` otherwise.
    pub endpoint_override: Option<String>,
    /// Upper bound of one HTTP request, Keystone's included (connect, send, read the body).
    pub request_timeout: Duration,
    /// How many times a request is retried after a transient failure (a 5xx answer, a
    /// connection error; see [`crate::openstack::retry`] for which, and the delays).
    pub max_retries: u32,
    /// Longest pause between two polls of a `wait_*` method (they start at 0.5 s and grow).
    pub poll_interval_max: Duration,
    /// Page size of listings (`limit`); Cinder caps it at its `osapi_max_limit`.
    pub page_size: usize,
}

impl Default for CinderSettings {
    fn default() -> Self {
        CinderSettings {
            cloud: None,
            clouds_file: None,
            region: None,
            interface: None,
            endpoint_override: None,
            request_timeout: Duration::from_secs(30),
            max_retries: 4,
            poll_interval_max: Duration::from_secs(3),
            page_size: 500,
        }
    }
}

impl CinderSettings {
    /// Settings from the process environment: `OS_CLOUD`, `OS_CLIENT_CONFIG_FILE`,
    /// `OS_REGION_NAME`, `OS_INTERFACE`. The other `OS_*` variables are read by
    /// [`super::Cinder::connect`] when no cloud is named.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`CinderSettings::from_env`], with the variables looked up through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let nonempty = |name: &str| var(name).filter(|v| !v.is_empty());
        CinderSettings {
            cloud: nonempty("OS_CLOUD"),
            clouds_file: nonempty("OS_CLIENT_CONFIG_FILE").map(PathBuf::from),
            region: nonempty("OS_REGION_NAME"),
            interface: nonempty("OS_INTERFACE"),
            ..CinderSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_vars_take_cloud_file_region_interface() {
        let s = CinderSettings::from_vars(|name| {
            let value = match name {
                "OS_CLOUD" => "prod",
                "OS_CLIENT_CONFIG_FILE" => "/x/clouds.yaml",
                "OS_REGION_NAME" => "R2",
                "OS_INTERFACE" => "",
                _ => return None,
            };
            Some(value.to_string())
        });
        assert_eq!(s.cloud.as_deref(), Some("prod"));
        assert_eq!(s.clouds_file, Some(PathBuf::from("/x/clouds.yaml")));
        assert_eq!(s.region.as_deref(), Some("R2"));
        assert_eq!(s.interface, None, "an empty variable counts as unset");
    }
}
