//! How the Swift backend's requests are authenticated: Swift's own v1.0 auth (a GET on the
//! auth URL gives the storage URL and a token), or a Keystone session
//! ([`crate::openstack::Keystone`]) whose catalog gives the `object-store` endpoint; and
//! [`Failure`], what a request that could not be made or answered reports.

use reqwest::StatusCode;
use tokio::sync::RwLock;
use url::Url;

use super::REQUEST_TIMEOUT;
use crate::bank::backend::settings::{Secret, SwiftSettings};
use crate::openstack::error::chain;
use crate::openstack::retry::{retryable_status, retryable_transport, Idempotency};
use crate::openstack::{self, CloudEntry, Keystone, OpenStackError, ServiceQuery, TokenGeneration};

/// The catalog type of Swift.
const CATALOG_TYPES: [&str; 1] = ["object-store"];

/// How requests are authenticated.
// One value per backend, set once: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Auth {
    /// Swift's own v1.0 auth.
    V1(V1Auth),
    /// Keystone v3.
    Keystone(Keystone),
}

/// v1.0 credentials and the token they gave.
pub(super) struct V1Auth {
    auth_url: String,
    user: String,
    key: Secret,
    current: RwLock<Option<V1Token>>,
}

#[derive(Clone)]
struct V1Token {
    storage_url: Url,
    token: String,
}

/// Why a request could not be made or answered.
pub(super) enum Failure {
    /// The credentials or the set-up are wrong: retrying will not help.
    Refused(String),
    /// Swift or its auth service could not be reached, or failed; `transient` if another
    /// try may succeed.
    Io { reason: String, transient: bool },
}

impl Failure {
    /// A failure that another try may cure.
    pub(super) fn transient(reason: String) -> Failure {
        Failure::Io {
            reason,
            transient: true,
        }
    }

    /// A request that could not be sent, or whose answer broke off.
    pub(super) fn http(what: String, e: &reqwest::Error) -> Failure {
        Failure::Io {
            reason: format!("{what} failed: {}", chain(e)),
            transient: retryable_transport(e, Idempotency::Idempotent),
        }
    }
}

impl Auth {
    /// The authenticator the settings ask for: v1.0 when its URL, user and key are set,
    /// else Keystone (nothing is contacted yet).
    pub(super) fn from_settings(s: &SwiftSettings) -> Result<Auth, Failure> {
        if let (Some(auth_url), Some(user), Some(key)) = (&s.auth_url, &s.user, &s.key) {
            return Ok(Auth::V1(V1Auth {
                auth_url: auth_url.clone(),
                user: user.clone(),
                key: key.clone(),
                current: RwLock::new(None),
            }));
        }
        keystone_session(s).map(Auth::Keystone).map_err(|e| {
            Failure::Refused(format!(
                "no usable Swift credentials: set ST_AUTH/ST_USER/ST_KEY for v1.0 auth, or \
                 OS_CLOUD (clouds.yaml) or OS_AUTH_URL/OS_USERNAME/OS_PASSWORD/\
                 OS_PROJECT_NAME for Keystone ({})",
                e.message()
            ))
        })
    }

    /// The HTTP client to send with (a Keystone session carries its own: the cloud's CA).
    pub(super) fn client<'a>(&'a self, own: &'a reqwest::Client) -> &'a reqwest::Client {
        match self {
            Auth::V1(_) => own,
            Auth::Keystone(keystone) => keystone.http(),
        }
    }

    /// The account URL: v1.0 auth's `X-Storage-Url`, or the cloud's
    /// `object_store_endpoint_override`, or the catalog's `object-store` endpoint.
    pub(super) async fn storage_url(
        &self,
        client: &reqwest::Client,
        region: Option<&str>,
    ) -> Result<Url, Failure> {
        match self {
            Auth::V1(v1) => Ok(v1.token(client).await?.storage_url),
            Auth::Keystone(keystone) => {
                let query = ServiceQuery {
                    types: &CATALOG_TYPES,
                    interface: None,
                    region,
                };
                keystone.endpoint(&query).await.map_err(keystone_error)
            }
        }
    }

    /// Signs `request`; with Keystone, says which token did.
    pub(super) async fn authorize(
        &self,
        client: &reqwest::Client,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::RequestBuilder, Option<TokenGeneration>), Failure> {
        match self {
            Auth::V1(v1) => {
                let token = v1.token(client).await?.token;
                Ok((request.header("X-Auth-Token", token), None))
            }
            Auth::Keystone(keystone) => keystone
                .authorize(request)
                .await
                .map(|(request, signed)| (request, Some(signed)))
                .map_err(keystone_error),
        }
    }

    /// A new token, after Swift refused the one that signed a request (`signed`).
    pub(super) async fn refresh(
        &self,
        client: &reqwest::Client,
        signed: Option<TokenGeneration>,
    ) -> Result<(), Failure> {
        match (self, signed) {
            (Auth::V1(v1), _) => {
                *v1.current.write().await = Some(v1.authenticate(client).await?);
                Ok(())
            }
            (Auth::Keystone(keystone), Some(signed)) => keystone
                .reauthenticate(signed)
                .await
                .map_err(keystone_error),
            (Auth::Keystone(keystone), None) => keystone.login().await.map_err(keystone_error),
        }
    }
}

impl V1Auth {
    /// The current token, authenticating if there is none yet.
    async fn token(&self, client: &reqwest::Client) -> Result<V1Token, Failure> {
        if let Some(token) = self.current.read().await.as_ref() {
            return Ok(token.clone());
        }
        let mut current = self.current.write().await;
        if let Some(token) = current.as_ref() {
            return Ok(token.clone());
        }
        let token = self.authenticate(client).await?;
        *current = Some(token.clone());
        Ok(token)
    }

    async fn authenticate(&self, client: &reqwest::Client) -> Result<V1Token, Failure> {
        let response = client
            .get(&self.auth_url)
            .header("X-Auth-User", &self.user)
            .header("X-Auth-Key", self.key.expose())
            .send()
            .await
            .map_err(|e| Failure::http(format!("Swift v1.0 auth at {}", self.auth_url), &e))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Failure::Refused(format!(
                "Swift v1.0 auth at {} refused the credentials of user {} (HTTP {status}): \
                 check ST_USER and ST_KEY",
                self.auth_url, self.user
            )));
        }
        if retryable_status(status, Idempotency::Idempotent) {
            return Err(Failure::transient(format!(
                "Swift v1.0 auth at {} answered HTTP {status}",
                self.auth_url
            )));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (Some(storage_url), Some(token)) = (header("X-Storage-Url"), header("X-Auth-Token"))
        else {
            return Err(Failure::Refused(format!(
                "{} answered HTTP {status} without X-Storage-Url and X-Auth-Token: is it a \
                 Swift v1.0 auth URL (like http://host:8080/auth/v1.0)?",
                self.auth_url
            )));
        };
        let storage_url = Url::parse(&storage_url).map_err(|e| {
            Failure::Refused(format!(
                "Swift v1.0 auth at {} gave an invalid storage URL {storage_url:?}: {e}",
                self.auth_url
            ))
        })?;
        Ok(V1Token { storage_url, token })
    }
}

/// A Keystone session for the settings' cloud (or the `OS_*` variables); nothing is
/// contacted yet.
fn keystone_session(settings: &SwiftSettings) -> Result<Keystone, OpenStackError> {
    let entry = CloudEntry::resolve(settings.cloud.as_deref(), settings.clouds_file.as_deref())?;
    let http = openstack::http_client(&entry, REQUEST_TIMEOUT)?;
    Keystone::new(entry, http)
}

/// A Keystone failure in a request's words: refused (credentials, catalog, settings) or
/// transient (Keystone unreachable or failing).
fn keystone_error(e: OpenStackError) -> Failure {
    match e {
        OpenStackError::Auth(m) => Failure::Refused(format!("Keystone authentication failed: {m}")),
        e if e.is_transient() => Failure::transient(e.to_string()),
        e => Failure::Refused(e.message()),
    }
}
