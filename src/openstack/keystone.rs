//! A Keystone session: the token that signs requests, the service catalog, and
//! re-authentication when a token is gone.
//!
//! # Why osauth for identity, reqwest for the requests
//!
//! osauth (0.5) does Keystone v3 well: password, application-credential and token plugins,
//! the token cache with early renewal, the service-catalog lookup by type, region and
//! interface. podbank uses exactly that part, through its [`osauth::AuthType`] trait, and
//! its services (Cinder, Swift) send their requests themselves with reqwest (the client
//! osauth is built on), because osauth's `Session` request path cannot:
//!
//! * **keep what a retry needs**: an osauth error keeps no reqwest error and no public HTTP
//!   status, so a connection refused (safe to retry, even a POST) cannot be told from a
//!   timeout after the request was sent (not safe for a POST);
//! * **re-authenticate on 401**: osauth's forced refresh is a no-op while the cached token
//!   is still more than 10 minutes from its expiry (a revoked token stays cached), so
//!   [`Keystone::reauthenticate`] replaces the plugin with a fresh one instead;
//! * **read a `clouds.yaml` at a given path**: osauth only searches its fixed locations;
//!   podbank reads the file itself ([`super::clouds`]) and builds the same osauth plugins.
//!
//! One reqwest client with the request timeout ([`http_client`]) serves Keystone and the
//! service (osauth uses the client it is given), so a hanging Keystone is bounded too.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use osauth::{AuthType, EndpointFilters, InterfaceType, ValidInterfaces};
use reqwest::Url;

use super::error::{body_message, http_error};
use super::retry::keystone_transient;
use super::{CloudEntry, OpenStackError};

/// Which identity plugin signed a request: after a 401, [`Keystone::reauthenticate`]
/// replaces that one only, so that concurrent requests refused together log in once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenGeneration(u64);

/// What to look up in the service catalog.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceQuery<'a> {
    /// Catalog types, in the order they are tried (`["volumev3", "block-storage"]`).
    pub types: &'a [&'a str],
    /// The interface; the cloud's `interface` if `None`, else `public`.
    pub interface: Option<&'a str>,
    /// The region; the cloud's `region_name` if `None`, else any.
    pub region: Option<&'a str>,
}

/// What Keystone says of a token it vouches for (`GET /v3/auth/tokens`): who holds it, the
/// project it is scoped to, its roles there, and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The id of the user the token was issued to.
    pub user_id: String,
    /// The id of the project the token is scoped to; `None` for an unscoped or
    /// domain-scoped token.
    pub project_id: Option<String>,
    /// The names of the token's roles (on its project).
    pub roles: Vec<String>,
    /// When the token expires (`expires_at`); `None` if Keystone did not say.
    pub expires_at: Option<std::time::SystemTime>,
}

impl TokenInfo {
    /// The token part of a validation answer (`{"token": {...}}`); `None` when the body is
    /// not one (no user id).
    ///
    /// # Arguments
    /// * `body` - the JSON body of `GET /v3/auth/tokens`.
    pub fn from_body(body: &serde_json::Value) -> Option<TokenInfo> {
        let token = body.get("token")?;
        let user_id = token.get("user")?.get("id")?.as_str()?.to_string();
        let project_id = token
            .get("project")
            .and_then(|p| p.get("id"))
            .and_then(|id| id.as_str())
            .map(str::to_string);
        let roles = token
            .get("roles")
            .and_then(|r| r.as_array())
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(|r| r.get("name").and_then(|n| n.as_str()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let expires_at = token
            .get("expires_at")
            .and_then(|e| e.as_str())
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
            .map(std::time::SystemTime::from);
        Some(TokenInfo {
            user_id,
            project_id,
            roles,
            expires_at,
        })
    }
}

/// The current identity plugin and its generation.
struct AuthSlot {
    plugin: Arc<dyn AuthType>,
    generation: u64,
}

/// A Keystone session for one cloud entry. `Send + Sync`; share it behind an `Arc` or in
/// the service client that owns it.
pub struct Keystone {
    http: reqwest::Client,
    entry: CloudEntry,
    auth: RwLock<AuthSlot>,
    reauth_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Keystone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystone")
            .field("auth_url", &self.entry.auth.auth_url)
            .field("identity", &self.entry.describe())
            .finish_non_exhaustive()
    }
}

impl Keystone {
    /// A session for `entry`, sending with `http` (nothing is contacted yet: the first
    /// [`Keystone::login`], [`Keystone::authorize`] or [`Keystone::endpoint`] gets a token).
    ///
    /// # Arguments
    /// * `entry` - the cloud: Keystone's URL and the credentials.
    /// * `http` - the client for Keystone and the service, e.g. from [`http_client`].
    pub fn new(entry: CloudEntry, http: reqwest::Client) -> Result<Keystone, OpenStackError> {
        let plugin = entry.build_auth()?;
        Ok(Keystone {
            http,
            entry,
            auth: RwLock::new(AuthSlot {
                plugin,
                generation: 0,
            }),
            reauth_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Gets a token now (one try: retrying is the caller's, see
    /// [`super::RetryPolicy::run`] and [`OpenStackError::is_transient`]).
    pub async fn login(&self) -> Result<(), OpenStackError> {
        let (plugin, _) = self.current();
        plugin
            .refresh(&self.http)
            .await
            .map_err(|e| auth_error(&self.entry, e))
    }

    /// The cloud entry the session authenticates with.
    pub fn entry(&self) -> &CloudEntry {
        &self.entry
    }

    /// The HTTP client for Keystone and the service.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Who is authenticated and where the settings came from, for messages.
    pub fn identity(&self) -> String {
        format!("{} ({})", self.entry.describe(), self.entry.source)
    }

    /// Signs `request` with the current token (getting or renewing it first when it is
    /// missing or close to its expiry).
    ///
    /// # Arguments
    /// * `request` - a request built on [`Keystone::http`].
    pub async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::RequestBuilder, TokenGeneration), OpenStackError> {
        let (plugin, generation) = self.current();
        let request = plugin
            .authenticate(&self.http, request)
            .await
            .map_err(|e| auth_error(&self.entry, e))?;
        Ok((request, TokenGeneration(generation)))
    }

    /// Replaces the identity plugin with a fresh one and logs in with it (the service
    /// refused the token with 401), unless another task did so since `seen`.
    ///
    /// # Arguments
    /// * `seen` - the generation that signed the refused request.
    pub async fn reauthenticate(&self, seen: TokenGeneration) -> Result<(), OpenStackError> {
        let _one_at_a_time = self.reauth_lock.lock().await;
        if self.current().1 != seen.0 {
            return Ok(());
        }
        let plugin = self.entry.build_auth()?;
        plugin
            .refresh(&self.http)
            .await
            .map_err(|e| auth_error(&self.entry, e))?;
        let mut slot = match self.auth.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        slot.plugin = plugin;
        slot.generation = seen.0 + 1;
        Ok(())
    }

    /// The URL of a service: the cloud's `<type>_endpoint_override` for the first type of
    /// `query` that has one, else the catalog's endpoint of the first type it has.
    ///
    /// # Arguments
    /// * `query` - the catalog types, interface and region.
    pub async fn endpoint(&self, query: &ServiceQuery<'_>) -> Result<Url, OpenStackError> {
        for kind in query.types {
            if let Some(url) = self.entry.endpoint_override(kind) {
                return Url::parse(url).map_err(|e| {
                    OpenStackError::Config(format!("{kind} endpoint override {url:?}: {e}"))
                });
            }
        }
        let filters = self.filters(query)?;
        let (plugin, _) = self.current();
        let mut last = None;
        for kind in query.types {
            match plugin.get_endpoint(&self.http, kind, &filters).await {
                Ok(url) => return Ok(url),
                Err(e) if e.kind() == osauth::ErrorKind::EndpointNotFound => last = Some(e),
                Err(e) => return Err(auth_error(&self.entry, e)),
            }
        }
        let interface = filters
            .interfaces
            .first()
            .map(|i| i.to_string())
            .unwrap_or_else(|| "public".into());
        Err(OpenStackError::Catalog(format!(
            "the service catalog of {} has no {} endpoint with interface {interface}{}{}",
            self.entry.describe(),
            query.types.join(" or "),
            filters
                .region
                .as_deref()
                .map(|r| format!(" in region {r}"))
                .unwrap_or_default(),
            last.map(|e| format!(" ({e})")).unwrap_or_default()
        )))
    }

    /// Asks Keystone whether `subject` is a valid token (`GET /v3/auth/tokens?nocatalog`
    /// with `X-Subject-Token`), signed with this session's own token (re-authenticating
    /// once if Keystone refuses it). One try otherwise: the caller decides about retries.
    ///
    /// Returns `Ok(None)` when Keystone says the token is not valid (404: unknown, revoked
    /// or expired; or a token that cannot even be sent as a header). Keystone unreachable
    /// or failing (5xx) is an [`OpenStackError::Transport`]; the session's own credentials
    /// refused, or not allowed to validate tokens, an [`OpenStackError::Auth`].
    ///
    /// # Arguments
    /// * `subject` - the token to check.
    pub async fn validate_token(&self, subject: &str) -> Result<Option<TokenInfo>, OpenStackError> {
        let Ok(subject_header) = reqwest::header::HeaderValue::from_str(subject) else {
            return Ok(None);
        };
        let base = self.entry.auth_url()?.trim_end_matches('/').to_string();
        let url = format!("{base}/auth/tokens?nocatalog");
        let transport = |message: String| OpenStackError::Transport {
            url: base.clone(),
            message,
        };
        let mut refused_once = false;
        loop {
            let request = self
                .http
                .get(&url)
                .header("X-Subject-Token", subject_header.clone());
            let (request, generation) = self.authorize(request).await?;
            let response = request
                .send()
                .await
                .map_err(|e| transport(format!("Keystone: {}", http_error(&e))))?;
            let status = response.status();
            let body = response
                .bytes()
                .await
                .map_err(|e| transport(format!("Keystone: {}", http_error(&e))))?;
            match status.as_u16() {
                200 => {
                    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                        transport(format!(
                            "Keystone: a token validation body that is not JSON: {e}"
                        ))
                    })?;
                    return TokenInfo::from_body(&value).map(Some).ok_or_else(|| {
                        transport("Keystone: a token validation body without token.user.id".into())
                    });
                }
                404 => return Ok(None),
                401 if !refused_once => {
                    refused_once = true;
                    self.reauthenticate(generation).await?;
                }
                401 | 403 => {
                    return Err(OpenStackError::Auth(format!(
                        "Keystone at {base} does not let {} validate tokens ({status}: {}); \
                         give it the admin or service role",
                        self.entry.describe(),
                        body_message(&body)
                    )))
                }
                s if s >= 500 || s == 429 => {
                    return Err(transport(format!(
                        "Keystone answered {status}: {}",
                        body_message(&body)
                    )))
                }
                _ => {
                    return Err(transport(format!(
                        "Keystone answered a token validation with {status}: {}",
                        body_message(&body)
                    )))
                }
            }
        }
    }

    fn filters(&self, query: &ServiceQuery<'_>) -> Result<EndpointFilters, OpenStackError> {
        let interface = query
            .interface
            .or(self.entry.interface.as_deref())
            .unwrap_or("public");
        let interface: InterfaceType = interface.parse().map_err(|_| {
            OpenStackError::Config(format!(
                "interface {interface:?} is not one of public, internal, admin"
            ))
        })?;
        let mut filters =
            EndpointFilters::default().with_interfaces(ValidInterfaces::one(interface));
        if let Some(region) = query.region.or(self.entry.region_name.as_deref()) {
            filters.set_region(region);
        }
        Ok(filters)
    }

    fn current(&self) -> (Arc<dyn AuthType>, u64) {
        match self.auth.read() {
            Ok(slot) => (slot.plugin.clone(), slot.generation),
            Err(poisoned) => {
                let slot = poisoned.into_inner();
                (slot.plugin.clone(), slot.generation)
            }
        }
    }
}

/// A client builder with podbank's user agent and timeouts: `request_timeout` for a whole
/// request (connect, send, read the body), at most 10 s of it to connect.
///
/// # Arguments
/// * `request_timeout` - the upper bound of one request.
pub fn client_builder(request_timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(request_timeout)
        .connect_timeout(request_timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("podbank/", env!("CARGO_PKG_VERSION")))
}

/// The HTTP client for a cloud: [`client_builder`]'s, trusting the cloud's `cacert` (and
/// any certificate with `verify: false`).
///
/// # Arguments
/// * `entry` - the cloud.
/// * `request_timeout` - the upper bound of one request, Keystone's included.
pub fn http_client(
    entry: &CloudEntry,
    request_timeout: Duration,
) -> Result<reqwest::Client, OpenStackError> {
    let mut builder = client_builder(request_timeout);
    if let Some(path) = &entry.cacert {
        let pem = std::fs::read(path).map_err(|e| {
            OpenStackError::Config(format!(
                "{}: cannot read cacert {}: {e}",
                entry.source,
                path.display()
            ))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            OpenStackError::Config(format!(
                "{}: cacert {} is not PEM: {e}",
                entry.source,
                path.display()
            ))
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if entry.verify == Some(false) {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|e| OpenStackError::Config(format!("HTTP client: {e}")))
}

/// An osauth error while authenticating, as an error that says what to check.
fn auth_error(entry: &CloudEntry, e: osauth::Error) -> OpenStackError {
    use osauth::ErrorKind as K;
    let url = entry.auth.auth_url.as_deref().unwrap_or("(no auth_url)");
    if keystone_transient(&e) {
        return OpenStackError::Transport {
            url: url.to_string(),
            message: format!("Keystone: {e}"),
        };
    }
    match e.kind() {
        K::AuthenticationFailed | K::AccessDenied | K::ResourceNotFound => {
            OpenStackError::Auth(format!(
                "Keystone at {url} rejected {} from {}: {e}; check the credentials and the project",
                entry.describe(),
                entry.source
            ))
        }
        K::InvalidConfig | K::InvalidInput => {
            OpenStackError::Config(format!("{}: {e}", entry.source))
        }
        K::EndpointNotFound => OpenStackError::Catalog(format!("{e}")),
        _ => OpenStackError::Auth(format!(
            "authentication of {} at {url} failed: {e}",
            entry.describe()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_body_gives_user_project_roles_and_expiry() {
        let body = serde_json::json!({"token": {
            "user": {"id": "u1", "name": "alice"},
            "project": {"id": "p1", "name": "shop"},
            "roles": [{"id": "r1", "name": "reader"}, {"id": "r2", "name": "member"}],
            "expires_at": "2026-12-08T03:28:48.000000Z"
        }});
        let info = TokenInfo::from_body(&body).expect("a token");
        assert_eq!(info.user_id, "u1");
        assert_eq!(info.project_id.as_deref(), Some("p1"));
        assert_eq!(info.roles, ["reader", "member"]);
        let expires = info
            .expires_at
            .and_then(|e| e.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        assert_eq!(expires, Some(1_796_700_528));

        let unscoped = serde_json::json!({"token": {"user": {"id": "u1"}}});
        let info = TokenInfo::from_body(&unscoped).expect("a token");
        assert_eq!(
            (info.project_id, info.roles.len(), info.expires_at),
            (None, 0, None)
        );
        assert_eq!(
            TokenInfo::from_body(&serde_json::json!({"error": {}})),
            None
        );
    }
}
