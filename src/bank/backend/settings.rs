//! How to reach the object-store backends: endpoints, regions and credentials for S3 and
//! Swift, resolved once (from flags or the environment) into a [`BackendSettings`] value that
//! [`super::open_with`] takes.
//!
//! Owns the names of the environment variables podbank honours for its bank; knows nothing
//! of HTTP. Secrets are kept in [`Secret`], whose `Debug` never shows them.

use std::fmt;

/// A credential that is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// Settings of the S3 backend (`s3://bucket/prefix`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// Endpoint URL, e.g. `http://127.0.0.1:8080` (default: AWS for the region).
    /// Environment: `AWS_ENDPOINT_URL`, then `AWS_ENDPOINT`.
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`). Environment: `AWS_REGION`, then `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// Path-style requests (`<endpoint>/<bucket>/<key>`) instead of virtual-hosted ones
    /// (`<bucket>.<endpoint>/<key>`). Default: path style, which every S3 implementation
    /// accepts (Swift's s3api, Ceph, MinIO). Environment: `PODBANK_S3_PATH_STYLE`
    /// (`true`/`false`).
    pub path_style: Option<bool>,
    /// Access key id. Environment: `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// Secret access key. Environment: `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Secret>,
    /// Session token of temporary credentials. Environment: `AWS_SESSION_TOKEN`.
    pub session_token: Option<Secret>,
    /// Allow plain `http://` endpoints that are not on the loopback interface (loopback
    /// endpoints are always allowed). Environment: `AWS_ALLOW_HTTP` (`true`/`false`).
    pub allow_http: bool,
}

/// Settings of the Swift backend (`swift://container/prefix`).
///
/// Swift's own v1.0 auth is used when `auth_url`, `user` and `key` are all set; otherwise
/// Keystone v3, from the cloud named by `cloud` in clouds.yaml, or from the `OS_*`
/// variables (`OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`, `OS_PROJECT_NAME`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwiftSettings {
    /// v1.0 auth URL, e.g. `http://127.0.0.1:8080/auth/v1.0`. Environment: `ST_AUTH`.
    pub auth_url: Option<String>,
    /// v1.0 user, `account:user`. Environment: `ST_USER`.
    pub user: Option<String>,
    /// v1.0 key. Environment: `ST_KEY`.
    pub key: Option<Secret>,
    /// Keystone: the cloud's name in clouds.yaml. Environment: `OS_CLOUD`.
    pub cloud: Option<String>,
    /// Keystone: the clouds.yaml to read `cloud` from, instead of the usual places
    /// (`./clouds.yaml`, `~/.config/openstack/`, `/etc/openstack/`). Environment:
    /// `OS_CLIENT_CONFIG_FILE`.
    pub clouds_file: Option<std::path::PathBuf>,
    /// Keystone: the region whose object-store endpoint to use. Environment:
    /// `OS_REGION_NAME` (read by the Keystone client itself when no cloud is named).
    pub region: Option<String>,
}

/// Everything the object-store backends need beyond the bank's URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendSettings {
    /// S3.
    pub s3: S3Settings,
    /// OpenStack Swift.
    pub swift: SwiftSettings,
}

impl BackendSettings {
    /// Reads the settings from the process environment (see the fields for the names).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (a variable name to its value); empty values
    /// count as unset.
    ///
    /// # Arguments
    /// * `lookup` - returns the value of an environment variable, if set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let first = |names: &[&str]| names.iter().find_map(|n| get(n));
        let flag = |name: &str| {
            get(name)
                .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        };
        Self {
            s3: S3Settings {
                endpoint: first(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]),
                region: first(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
                path_style: flag("PODBANK_S3_PATH_STYLE"),
                access_key_id: get("AWS_ACCESS_KEY_ID"),
                secret_access_key: get("AWS_SECRET_ACCESS_KEY").map(Secret::new),
                session_token: get("AWS_SESSION_TOKEN").map(Secret::new),
                allow_http: flag("AWS_ALLOW_HTTP").unwrap_or(false),
            },
            swift: SwiftSettings {
                auth_url: get("ST_AUTH"),
                user: get("ST_USER"),
                key: get("ST_KEY").map(Secret::new),
                cloud: get("OS_CLOUD"),
                clouds_file: get("OS_CLIENT_CONFIG_FILE").map(Into::into),
                region: get("OS_REGION_NAME"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_variables_and_hides_secrets() {
        let env = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:8080"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "test:tester"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("PODBANK_S3_PATH_STYLE", "false"),
            ("ST_AUTH", "http://127.0.0.1:8080/auth/v1.0"),
            ("ST_USER", "test:tester"),
            ("ST_KEY", "hidden-key"),
            ("OS_CLOUD", ""),
        ];
        let settings = BackendSettings::from_lookup(|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        });
        assert_eq!(
            settings.s3.endpoint.as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(settings.s3.region.as_deref(), Some("eu-west-1"));
        assert_eq!(settings.s3.path_style, Some(false));
        assert_eq!(settings.s3.access_key_id.as_deref(), Some("test:tester"));
        assert_eq!(
            settings.s3.secret_access_key.as_ref().map(Secret::expose),
            Some("testing")
        );
        assert_eq!(settings.swift.user.as_deref(), Some("test:tester"));
        assert_eq!(
            settings.swift.cloud, None,
            "an empty variable counts as unset"
        );
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hidden-key") && !shown.contains("\"testing\""));
    }
}
