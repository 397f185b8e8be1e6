//! Where the OpenStack credentials come from: `clouds.yaml` (one named cloud) or the `OS_*`
//! environment variables, resolved once into a [`CloudEntry`], and turned into an osauth
//! identity plugin (password, application credential or token).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use osauth::common::IdOrName;
use osauth::identity::{ApplicationCredential, Password, Token};
use osauth::AuthType;
use serde::Deserialize;

use super::CinderError;

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
    /// How many times a request is retried after a 5xx answer or a connection error.
    pub max_retries: u32,
    /// Longest pause between two polls of a `wait_*` method (they start at 0.5 s and grow).
    pub poll_interval_max: Duration,
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

/// The `auth:` section of a cloud: every field osauth or podbank understands.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AuthSection {
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<String>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub token: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    pub application_credential_secret: Option<String>,
}

/// One cloud, as found in `clouds.yaml` or assembled from `OS_*` variables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CloudEntry {
    pub auth: AuthSection,
    pub auth_type: Option<String>,
    pub region_name: Option<String>,
    pub interface: Option<String>,
    pub cacert: Option<PathBuf>,
    pub verify: Option<bool>,
    pub block_storage_endpoint_override: Option<String>,
    pub volumev3_endpoint_override: Option<String>,
    /// Where the entry came from, for messages ("cloud rig in /x/clouds.yaml").
    #[serde(skip)]
    pub source: String,
}

#[derive(Deserialize)]
struct CloudsFile {
    #[serde(default)]
    clouds: BTreeMap<String, serde_yaml::Value>,
}

/// The identity plugin a cloud entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthKind {
    Password,
    ApplicationCredential,
    Token,
}

impl CloudEntry {
    /// Resolve the settings into one cloud entry (reads `clouds.yaml` or the environment).
    pub fn resolve(settings: &CinderSettings) -> Result<CloudEntry, CinderError> {
        Self::resolve_with(settings, |name| std::env::var(name).ok())
    }

    /// [`CloudEntry::resolve`] with the environment looked up through `var`.
    pub fn resolve_with(
        settings: &CinderSettings,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<CloudEntry, CinderError> {
        match &settings.cloud {
            Some(cloud) => {
                let path = find_clouds_file(settings.clouds_file.as_deref(), &var)?;
                Self::from_clouds_file(&path, cloud)
            }
            None => Ok(Self::from_vars(var)),
        }
    }

    /// The entry `cloud` of the `clouds.yaml` at `path`.
    pub fn from_clouds_file(path: &Path, cloud: &str) -> Result<CloudEntry, CinderError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CinderError::Config(format!("cannot read clouds file {}: {e}", path.display()))
        })?;
        let file: CloudsFile = serde_yaml::from_str(&text).map_err(|e| {
            CinderError::Config(format!("cannot parse clouds file {}: {e}", path.display()))
        })?;
        let value = file.clouds.get(cloud).cloned().ok_or_else(|| {
            let known: Vec<&str> = file.clouds.keys().map(String::as_str).collect();
            CinderError::Config(format!(
                "no cloud named {cloud:?} in {} (it has: {})",
                path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        let mut entry: CloudEntry = serde_yaml::from_value(value).map_err(|e| {
            CinderError::Config(format!("cloud {cloud:?} in {}: {e}", path.display()))
        })?;
        entry.source = format!("cloud {cloud:?} in {}", path.display());
        Ok(entry)
    }

    /// An entry assembled from `OS_*` variables, as the openstack client reads them.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> CloudEntry {
        let v = |name: &str| var(name).filter(|s| !s.is_empty());
        let auth = AuthSection {
            auth_url: v("OS_AUTH_URL"),
            username: v("OS_USERNAME"),
            user_id: v("OS_USER_ID"),
            password: v("OS_PASSWORD"),
            project_name: v("OS_PROJECT_NAME").or_else(|| v("OS_TENANT_NAME")),
            project_id: v("OS_PROJECT_ID").or_else(|| v("OS_TENANT_ID")),
            project_domain_name: v("OS_PROJECT_DOMAIN_NAME"),
            project_domain_id: v("OS_PROJECT_DOMAIN_ID"),
            user_domain_name: v("OS_USER_DOMAIN_NAME"),
            user_domain_id: v("OS_USER_DOMAIN_ID"),
            token: v("OS_TOKEN"),
            application_credential_id: v("OS_APPLICATION_CREDENTIAL_ID"),
            application_credential_name: v("OS_APPLICATION_CREDENTIAL_NAME"),
            application_credential_secret: v("OS_APPLICATION_CREDENTIAL_SECRET"),
        };
        let insecure =
            v("OS_INSECURE").map(|s| matches!(s.to_lowercase().as_str(), "1" | "true" | "yes"));
        CloudEntry {
            auth,
            auth_type: v("OS_AUTH_TYPE"),
            region_name: v("OS_REGION_NAME"),
            interface: v("OS_INTERFACE"),
            cacert: v("OS_CACERT").map(PathBuf::from),
            verify: insecure.map(|i| !i),
            block_storage_endpoint_override: None,
            volumev3_endpoint_override: None,
            source: "the OS_* environment variables".to_string(),
        }
    }

    /// Which identity plugin the entry asks for (`auth_type`, or guessed from the fields).
    pub fn auth_kind(&self) -> Result<AuthKind, CinderError> {
        match self.auth_type.as_deref() {
            None => Ok(if self.auth.application_credential_secret.is_some() {
                AuthKind::ApplicationCredential
            } else if self.auth.token.is_some() && self.auth.password.is_none() {
                AuthKind::Token
            } else {
                AuthKind::Password
            }),
            Some("password" | "v3password") => Ok(AuthKind::Password),
            Some("v3applicationcredential" | "application_credential") => {
                Ok(AuthKind::ApplicationCredential)
            }
            Some("token" | "v3token") => Ok(AuthKind::Token),
            Some(other) => Err(CinderError::Config(format!(
                "{}: auth_type {other:?} is not supported; use password, \
                 v3applicationcredential or v3token",
                self.source
            ))),
        }
    }

    /// Keystone's URL, required by every supported plugin.
    pub fn auth_url(&self) -> Result<&str, CinderError> {
        self.auth.auth_url.as_deref().ok_or_else(|| {
            CinderError::Config(format!(
                "{}: no auth_url (OS_AUTH_URL); set the Keystone v3 URL, e.g. https://keystone:5000/v3",
                self.source
            ))
        })
    }

    /// Who authenticates, for messages; never includes a secret.
    pub fn describe(&self) -> String {
        let a = &self.auth;
        let project = a
            .project_name
            .as_deref()
            .or(a.project_id.as_deref())
            .unwrap_or("(none)");
        match self.auth_kind() {
            Ok(AuthKind::ApplicationCredential) => format!(
                "application credential {}",
                a.application_credential_id
                    .as_deref()
                    .or(a.application_credential_name.as_deref())
                    .unwrap_or("(unnamed)")
            ),
            Ok(AuthKind::Token) => format!("a token, project {project}"),
            _ => format!(
                "user {} (domain {}), project {project}",
                a.username
                    .as_deref()
                    .or(a.user_id.as_deref())
                    .unwrap_or("(none)"),
                a.user_domain_name
                    .as_deref()
                    .or(a.user_domain_id.as_deref())
                    .unwrap_or("Default")
            ),
        }
    }

    fn require<'a>(&self, value: &'a Option<String>, what: &str) -> Result<&'a str, CinderError> {
        value
            .as_deref()
            .ok_or_else(|| CinderError::Config(format!("{}: {what} is required", self.source)))
    }

    fn project_scope(&self) -> Result<Option<(IdOrName, IdOrName)>, CinderError> {
        let a = &self.auth;
        let project = match (&a.project_id, &a.project_name) {
            (Some(id), _) => IdOrName::Id(id.clone()),
            (None, Some(name)) => IdOrName::Name(name.clone()),
            (None, None) => return Ok(None),
        };
        let domain = match (&a.project_domain_id, &a.project_domain_name) {
            (Some(id), _) => IdOrName::Id(id.clone()),
            (None, Some(name)) => IdOrName::Name(name.clone()),
            (None, None) => IdOrName::Name("Default".to_string()),
        };
        Ok(Some((project, domain)))
    }

    /// A fresh osauth identity plugin (no cached token) for this entry.
    ///
    /// osauth's password plugin names the user and its domain by name only: a `user_id`, or a
    /// `user_domain_id` other than `default`, is refused here with a clear message.
    pub fn build_auth(&self) -> Result<Arc<dyn AuthType>, CinderError> {
        let auth_url = self.auth_url()?;
        let a = &self.auth;
        let osauth_err = |e: osauth::Error| CinderError::Config(format!("{}: {e}", self.source));
        match self.auth_kind()? {
            AuthKind::Password => {
                let user = match (&a.username, &a.user_id) {
                    (Some(u), _) => u.as_str(),
                    (None, Some(_)) => {
                        return Err(CinderError::Config(format!(
                            "{}: user_id is not supported with password auth (osauth needs \
                             the user name); set username (OS_USERNAME) instead",
                            self.source
                        )))
                    }
                    (None, None) => self.require(&a.username, "username (OS_USERNAME)")?,
                };
                let password = self.require(&a.password, "password (OS_PASSWORD)")?;
                let user_domain = match (&a.user_domain_name, &a.user_domain_id) {
                    (Some(name), _) => name.clone(),
                    (None, Some(id)) if id == "default" => "Default".to_string(),
                    (None, Some(id)) => {
                        return Err(CinderError::Config(format!(
                            "{}: user_domain_id {id:?} is not supported (osauth needs the \
                             domain name); set user_domain_name (OS_USER_DOMAIN_NAME)",
                            self.source
                        )))
                    }
                    (None, None) => "Default".to_string(),
                };
                let mut plugin =
                    Password::new(auth_url, user, password, user_domain).map_err(osauth_err)?;
                if let Some((project, domain)) = self.project_scope()? {
                    plugin.set_project_scope(project, domain);
                }
                Ok(Arc::new(plugin))
            }
            AuthKind::ApplicationCredential => {
                let secret = self.require(
                    &a.application_credential_secret,
                    "application_credential_secret (OS_APPLICATION_CREDENTIAL_SECRET)",
                )?;
                let plugin = match (&a.application_credential_id, &a.application_credential_name) {
                    (Some(id), _) => ApplicationCredential::new(auth_url, id, secret),
                    (None, Some(name)) => {
                        let user_id = self.require(
                            &a.user_id,
                            "user_id (with an application credential given by name)",
                        )?;
                        ApplicationCredential::with_user_id(auth_url, name, secret, user_id)
                    }
                    (None, None) => {
                        return Err(CinderError::Config(format!(
                        "{}: application_credential_id (OS_APPLICATION_CREDENTIAL_ID) is required",
                        self.source
                    )))
                    }
                }
                .map_err(osauth_err)?;
                Ok(Arc::new(plugin))
            }
            AuthKind::Token => {
                let token = self.require(&a.token, "token (OS_TOKEN)")?;
                let mut plugin = Token::new(auth_url, token).map_err(osauth_err)?;
                if let Some((project, domain)) = self.project_scope()? {
                    plugin.set_project_scope(project, domain);
                }
                Ok(Arc::new(plugin))
            }
        }
    }
}

/// The `clouds.yaml` to read: the one given, else the first of the usual places that exists.
fn find_clouds_file(
    given: Option<&Path>,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<PathBuf, CinderError> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(CinderError::Config(format!(
                "clouds file {} does not exist",
                path.display()
            )))
        };
    }
    let mut candidates = vec![PathBuf::from("clouds.yaml")];
    if let Some(home) = var("HOME").filter(|h| !h.is_empty()) {
        candidates.push(Path::new(&home).join(".config/openstack/clouds.yaml"));
    }
    candidates.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            CinderError::Config(format!(
                "no clouds.yaml found (tried {}); set OS_CLIENT_CONFIG_FILE or the clouds file setting",
                tried.join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn settings_from_vars_take_cloud_file_region_interface() {
        let s = CinderSettings::from_vars(vars(&[
            ("OS_CLOUD", "prod"),
            ("OS_CLIENT_CONFIG_FILE", "/x/clouds.yaml"),
            ("OS_REGION_NAME", "R2"),
            ("OS_INTERFACE", ""),
        ]));
        assert_eq!(s.cloud.as_deref(), Some("prod"));
        assert_eq!(s.clouds_file, Some(PathBuf::from("/x/clouds.yaml")));
        assert_eq!(s.region.as_deref(), Some("R2"));
        assert_eq!(s.interface, None, "an empty variable counts as unset");
    }

    #[test]
    fn env_entry_guesses_the_plugin() {
        let pw = CloudEntry::from_vars(vars(&[
            ("OS_AUTH_URL", "http://k:5000/v3"),
            ("OS_USERNAME", "u"),
            ("OS_PASSWORD", "p"),
            ("OS_PROJECT_NAME", "proj"),
        ]));
        assert_eq!(pw.auth_kind().ok(), Some(AuthKind::Password));
        assert!(pw.build_auth().is_ok());
        assert_eq!(pw.describe(), "user u (domain Default), project proj");

        let ac = CloudEntry::from_vars(vars(&[
            ("OS_AUTH_URL", "http://k:5000/v3"),
            ("OS_APPLICATION_CREDENTIAL_ID", "abc"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "s3cret"),
        ]));
        assert_eq!(ac.auth_kind().ok(), Some(AuthKind::ApplicationCredential));
        assert!(ac.build_auth().is_ok());
        assert!(!ac.describe().contains("s3cret"));
    }

    #[test]
    fn missing_fields_are_named() {
        let e = CloudEntry::from_vars(vars(&[("OS_USERNAME", "u")]));
        let err = e
            .build_auth()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("OS_AUTH_URL"), "{err}");

        let e = CloudEntry::from_vars(vars(&[
            ("OS_AUTH_URL", "http://k/v3"),
            ("OS_USERNAME", "u"),
        ]));
        let err = e
            .build_auth()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("OS_PASSWORD"), "{err}");

        let e = CloudEntry::from_vars(vars(&[
            ("OS_AUTH_URL", "http://k/v3"),
            ("OS_AUTH_TYPE", "v3oidcpassword"),
        ]));
        let err = e
            .build_auth()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not supported"), "{err}");
    }

    #[test]
    fn clouds_file_entry_and_unknown_cloud() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clouds.yaml");
        std::fs::write(
            &path,
            "clouds:\n  a:\n    auth:\n      auth_url: http://k:5000/v3\n      username: u\n      \
             password: p\n      project_name: x\n    region_name: R1\n    interface: internal\n    \
             identity_api_version: 3\n    block_storage_endpoint_override: http://c:8776/v3/p\n",
        )
        .expect("write");
        let e = CloudEntry::from_clouds_file(&path, "a").expect("entry");
        assert_eq!(e.region_name.as_deref(), Some("R1"));
        assert_eq!(e.interface.as_deref(), Some("internal"));
        assert_eq!(e.auth.username.as_deref(), Some("u"));
        assert_eq!(
            e.block_storage_endpoint_override.as_deref(),
            Some("http://c:8776/v3/p")
        );
        let err = CloudEntry::from_clouds_file(&path, "b")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("no cloud named \"b\"") && err.contains("it has: a"),
            "{err}"
        );

        let s = CinderSettings {
            cloud: Some("a".into()),
            clouds_file: Some(dir.path().join("missing.yaml")),
            ..CinderSettings::default()
        };
        let err = CloudEntry::resolve_with(&s, vars(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("does not exist"), "{err}");
    }
}
