//! Where the OpenStack credentials come from: `clouds.yaml` (one named cloud) or the `OS_*`
//! environment variables, resolved once into a [`CloudEntry`], and turned into an osauth
//! identity plugin (password, application credential or token).
//!
//! Not supported (refused or ignored, never guessed): `secure.yaml` and `clouds-public.yaml`
//! profiles, domain-scoped tokens, a password user given by id only (osauth's limit).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use osauth::common::IdOrName;
use osauth::identity::{ApplicationCredential, Password, Token};
use osauth::AuthType;
use serde::Deserialize;

use super::OpenStackError;

/// The `auth:` section of a cloud: every field osauth or podbank understands.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthSection {
    /// Keystone's URL (`OS_AUTH_URL`).
    pub auth_url: Option<String>,
    /// Password auth: the user's name (`OS_USERNAME`).
    pub username: Option<String>,
    /// The user's id (`OS_USER_ID`): names the user of an application credential given by
    /// name; not usable for password auth.
    pub user_id: Option<String>,
    /// Password auth: the password (`OS_PASSWORD`).
    pub password: Option<String>,
    /// The project to scope the token to, by name (`OS_PROJECT_NAME`).
    pub project_name: Option<String>,
    /// The project to scope the token to, by id (`OS_PROJECT_ID`).
    pub project_id: Option<String>,
    /// The project's domain, by name (`OS_PROJECT_DOMAIN_NAME`).
    pub project_domain_name: Option<String>,
    /// The project's domain, by id (`OS_PROJECT_DOMAIN_ID`).
    pub project_domain_id: Option<String>,
    /// The user's domain, by name (`OS_USER_DOMAIN_NAME`).
    pub user_domain_name: Option<String>,
    /// The user's domain, by id (`OS_USER_DOMAIN_ID`; only `default` is supported).
    pub user_domain_id: Option<String>,
    /// Token auth: an existing token (`OS_TOKEN`).
    pub token: Option<String>,
    /// Application-credential auth: its id (`OS_APPLICATION_CREDENTIAL_ID`).
    pub application_credential_id: Option<String>,
    /// Application-credential auth: its name, with `user_id`.
    pub application_credential_name: Option<String>,
    /// Application-credential auth: its secret (`OS_APPLICATION_CREDENTIAL_SECRET`).
    pub application_credential_secret: Option<String>,
}

/// One cloud, as found in `clouds.yaml` or assembled from `OS_*` variables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CloudEntry {
    /// The credentials.
    pub auth: AuthSection,
    /// `password`, `v3applicationcredential` or `v3token`; guessed from the fields if unset.
    pub auth_type: Option<String>,
    /// The region of the endpoints to use (`OS_REGION_NAME`).
    pub region_name: Option<String>,
    /// The endpoint interface: `public` (default), `internal`, `admin` (`OS_INTERFACE`).
    pub interface: Option<String>,
    /// A CA bundle to trust for Keystone and the services (`OS_CACERT`).
    pub cacert: Option<PathBuf>,
    /// `false` to accept any TLS certificate (`OS_INSECURE=true`).
    pub verify: Option<bool>,
    /// Every other key of the entry; `<service type>_endpoint_override` among them (see
    /// [`CloudEntry::endpoint_override`]).
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
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
pub enum AuthKind {
    /// User name and password.
    Password,
    /// An application credential (id or name, and secret).
    ApplicationCredential,
    /// An existing token.
    Token,
}

impl CloudEntry {
    /// Resolves a cloud: the entry `cloud` of a `clouds.yaml` (the one given, else the first
    /// of `./clouds.yaml`, `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`),
    /// or, without a cloud name, the `OS_*` variables of the process.
    ///
    /// # Arguments
    /// * `cloud` - the cloud's name in `clouds.yaml` (`OS_CLOUD`), if any.
    /// * `clouds_file` - the `clouds.yaml` to read (`OS_CLIENT_CONFIG_FILE`), if given.
    pub fn resolve(
        cloud: Option<&str>,
        clouds_file: Option<&Path>,
    ) -> Result<CloudEntry, OpenStackError> {
        Self::resolve_with(cloud, clouds_file, |name| std::env::var(name).ok())
    }

    /// [`CloudEntry::resolve`] with the environment looked up through `var`.
    ///
    /// # Arguments
    /// * `cloud`, `clouds_file` - as for [`CloudEntry::resolve`].
    /// * `var` - returns the value of an environment variable, if set.
    pub fn resolve_with(
        cloud: Option<&str>,
        clouds_file: Option<&Path>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<CloudEntry, OpenStackError> {
        match cloud {
            Some(cloud) => {
                let path = find_clouds_file(clouds_file, &var)?;
                Self::from_clouds_file(&path, cloud)
            }
            None => Ok(Self::from_vars(var)),
        }
    }

    /// The entry `cloud` of the `clouds.yaml` at `path`.
    ///
    /// # Arguments
    /// * `path` - a `clouds.yaml`.
    /// * `cloud` - the name of the cloud under its `clouds:` key.
    pub fn from_clouds_file(path: &Path, cloud: &str) -> Result<CloudEntry, OpenStackError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            OpenStackError::Config(format!("cannot read clouds file {}: {e}", path.display()))
        })?;
        let file: CloudsFile = serde_yaml::from_str(&text).map_err(|e| {
            OpenStackError::Config(format!("cannot parse clouds file {}: {e}", path.display()))
        })?;
        let value = file.clouds.get(cloud).cloned().ok_or_else(|| {
            let known: Vec<&str> = file.clouds.keys().map(String::as_str).collect();
            OpenStackError::Config(format!(
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
            OpenStackError::Config(format!("cloud {cloud:?} in {}: {e}", path.display()))
        })?;
        entry.source = format!("cloud {cloud:?} in {}", path.display());
        Ok(entry)
    }

    /// An entry assembled from `OS_*` variables, as the openstack client reads them.
    ///
    /// # Arguments
    /// * `var` - returns the value of an environment variable, if set; empty counts as unset.
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
            other: BTreeMap::new(),
            source: "the OS_* environment variables".to_string(),
        }
    }

    /// The cloud's `<service type>_endpoint_override` (dashes written as underscores, as in
    /// `block_storage_endpoint_override`, `object_store_endpoint_override`), if it has one.
    ///
    /// # Arguments
    /// * `service_type` - a catalog type: `block-storage`, `volumev3`, `object-store`.
    pub fn endpoint_override(&self, service_type: &str) -> Option<&str> {
        let key = format!("{}_endpoint_override", service_type.replace('-', "_"));
        self.other.get(&key)?.as_str()
    }

    /// Which identity plugin the entry asks for (`auth_type`, or guessed from the fields).
    pub fn auth_kind(&self) -> Result<AuthKind, OpenStackError> {
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
            Some(other) => Err(OpenStackError::Config(format!(
                "{}: auth_type {other:?} is not supported; use password, \
                 v3applicationcredential or v3token",
                self.source
            ))),
        }
    }

    /// Keystone's URL, required by every supported plugin.
    pub fn auth_url(&self) -> Result<&str, OpenStackError> {
        self.auth.auth_url.as_deref().ok_or_else(|| {
            OpenStackError::Config(format!(
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

    fn require<'a>(
        &self,
        value: &'a Option<String>,
        what: &str,
    ) -> Result<&'a str, OpenStackError> {
        value
            .as_deref()
            .ok_or_else(|| OpenStackError::Config(format!("{}: {what} is required", self.source)))
    }

    fn project_scope(&self) -> Option<(IdOrName, IdOrName)> {
        let a = &self.auth;
        let project = match (&a.project_id, &a.project_name) {
            (Some(id), _) => IdOrName::Id(id.clone()),
            (None, Some(name)) => IdOrName::Name(name.clone()),
            (None, None) => return None,
        };
        let domain = match (&a.project_domain_id, &a.project_domain_name) {
            (Some(id), _) => IdOrName::Id(id.clone()),
            (None, Some(name)) => IdOrName::Name(name.clone()),
            (None, None) => IdOrName::Name("Default".to_string()),
        };
        Some((project, domain))
    }

    /// A fresh osauth identity plugin (no cached token) for this entry.
    ///
    /// osauth's password plugin names the user and its domain by name only: a `user_id`, or a
    /// `user_domain_id` other than `default`, is refused here with a clear message.
    pub fn build_auth(&self) -> Result<Arc<dyn AuthType>, OpenStackError> {
        let auth_url = self.auth_url()?;
        match self.auth_kind()? {
            AuthKind::Password => self.password_plugin(auth_url),
            AuthKind::ApplicationCredential => self.application_credential_plugin(auth_url),
            AuthKind::Token => {
                let token = self.require(&self.auth.token, "token (OS_TOKEN)")?;
                let mut plugin = Token::new(auth_url, token).map_err(|e| self.osauth(e))?;
                if let Some((project, domain)) = self.project_scope() {
                    plugin.set_project_scope(project, domain);
                }
                Ok(Arc::new(plugin))
            }
        }
    }

    fn password_plugin(&self, auth_url: &str) -> Result<Arc<dyn AuthType>, OpenStackError> {
        let a = &self.auth;
        let user = match (&a.username, &a.user_id) {
            (Some(u), _) => u.as_str(),
            (None, Some(_)) => {
                return Err(OpenStackError::Config(format!(
                    "{}: user_id is not supported with password auth (osauth needs the user \
                     name); set username (OS_USERNAME) instead",
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
                return Err(OpenStackError::Config(format!(
                    "{}: user_domain_id {id:?} is not supported (osauth needs the domain \
                     name); set user_domain_name (OS_USER_DOMAIN_NAME)",
                    self.source
                )))
            }
            (None, None) => "Default".to_string(),
        };
        let mut plugin =
            Password::new(auth_url, user, password, user_domain).map_err(|e| self.osauth(e))?;
        if let Some((project, domain)) = self.project_scope() {
            plugin.set_project_scope(project, domain);
        }
        Ok(Arc::new(plugin))
    }

    fn application_credential_plugin(
        &self,
        auth_url: &str,
    ) -> Result<Arc<dyn AuthType>, OpenStackError> {
        let a = &self.auth;
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
                return Err(OpenStackError::Config(format!(
                    "{}: application_credential_id (OS_APPLICATION_CREDENTIAL_ID) is required",
                    self.source
                )))
            }
        }
        .map_err(|e| self.osauth(e))?;
        Ok(Arc::new(plugin))
    }

    /// An osauth error while building a plugin: the settings are wrong.
    fn osauth(&self, e: osauth::Error) -> OpenStackError {
        OpenStackError::Config(format!("{}: {e}", self.source))
    }
}

/// The `clouds.yaml` to read: the one given, else the first of the usual places that exists.
fn find_clouds_file(
    given: Option<&Path>,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<PathBuf, OpenStackError> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(OpenStackError::Config(format!(
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
            OpenStackError::Config(format!(
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

    fn build_error(entry: &CloudEntry) -> String {
        entry
            .build_auth()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
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
        let err = build_error(&e);
        assert!(err.contains("OS_AUTH_URL"), "{err}");

        let e = CloudEntry::from_vars(vars(&[
            ("OS_AUTH_URL", "http://k/v3"),
            ("OS_USERNAME", "u"),
        ]));
        let err = build_error(&e);
        assert!(err.contains("OS_PASSWORD"), "{err}");

        let e = CloudEntry::from_vars(vars(&[
            ("OS_AUTH_URL", "http://k/v3"),
            ("OS_AUTH_TYPE", "v3oidcpassword"),
        ]));
        let err = build_error(&e);
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
            e.endpoint_override("block-storage"),
            Some("http://c:8776/v3/p")
        );
        assert_eq!(e.endpoint_override("object-store"), None);
        let err = CloudEntry::from_clouds_file(&path, "b")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("no cloud named \"b\"") && err.contains("it has: a"),
            "{err}"
        );

        let missing = dir.path().join("missing.yaml");
        let err = CloudEntry::resolve_with(Some("a"), Some(&missing), vars(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("does not exist"), "{err}");
    }
}
