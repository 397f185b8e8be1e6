//! A bank in an OpenStack Swift container (`swift://container/prefix`), over Swift's REST
//! API with `reqwest`; Keystone v3 through the `osauth` crate, or Swift's own v1.0 auth.
//!
//! Layout: `<prefix>/config`, `<prefix>/data/<name>`, `<prefix>/index/<name>`,
//! `<prefix>/checkpoints/<name>`, `<prefix>/restores/<name>`, `<prefix>/locks/<name>` (the
//! same as the S3 backend, so a bank can be moved between the two APIs of one Swift).
//!
//! * Authentication happens on the first request. v1.0 (`auth_url` + `user` + `key`, as the
//!   `swift` CLI's `ST_AUTH`/`ST_USER`/`ST_KEY`): a GET on the auth URL gives the storage URL
//!   and a token. Keystone: the cloud named in clouds.yaml (`OS_CLOUD`) or the `OS_*`
//!   variables; the storage URL is the catalog's `object-store` endpoint, or the cloud's
//!   `object_store_endpoint_override` (the account URL, `.../v1/AUTH_<project id>`).
//! * A 401 re-authenticates once and repeats the request; 5xx, 408, 429 and connection
//!   errors are retried with exponential backoff; refused credentials are
//!   [`BackendError::Config`].
//! * `put` is one PUT with the body's MD5 as `ETag` (Swift refuses a body that arrived
//!   damaged); the container is created when a PUT finds it missing.
//! * `get_range` is one ranged GET; `list` follows markers over every page; `delete` of a
//!   missing object succeeds.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::{OnceCell, RwLock};
use url::Url;

use super::settings::{Secret, SwiftSettings};
use super::{
    check_name, kind_prefix, object_key, short_range, Backend, BackendError, Kind, ObjectInfo,
};

/// Objects per listing page (Swift's default limit is 10 000; smaller pages keep each
/// answer small and the paging path exercised).
const PAGE: usize = 1000;
/// Retries of a request after a transient failure.
const RETRIES: u32 = 5;
/// First backoff; doubled at each retry, capped at [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest backoff between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A bank stored in a Swift container.
pub struct SwiftBackend {
    container: String,
    prefix: String,
    location: String,
    settings: SwiftSettings,
    client: reqwest::Client,
    auth: OnceCell<Auth>,
}

impl fmt::Debug for SwiftBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwiftBackend")
            .field("location", &self.location)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// How requests are authenticated.
enum Auth {
    /// Swift's own v1.0 auth.
    V1(V1Auth),
    /// Keystone v3, through osauth.
    Keystone(osauth::Session),
}

/// v1.0 credentials and the token they gave.
struct V1Auth {
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

/// Why authentication failed.
enum AuthError {
    /// The credentials or the set-up are wrong: retrying will not help.
    Refused(String),
    /// The auth service could not be reached or failed: retrying may help.
    Transient(String),
}

/// One request to Swift: what it is for (named in errors) and what to send.
struct Call<'a> {
    /// The backend operation: get, put, list, delete, get_range.
    op: &'static str,
    kind: Kind,
    name: &'a str,
    method: Method,
    /// The object's key in the container; `None` for the container itself.
    key: Option<&'a str>,
    query: &'a [(&'a str, &'a str)],
    headers: &'a [(&'a str, String)],
    body: Option<Bytes>,
}

impl<'a> Call<'a> {
    fn new(
        op: &'static str,
        kind: Kind,
        name: &'a str,
        method: Method,
        key: Option<&'a str>,
    ) -> Self {
        Self {
            op,
            kind,
            name,
            method,
            key,
            query: &[],
            headers: &[],
            body: None,
        }
    }
}

/// One entry of a container listing.
#[derive(Deserialize)]
struct ListEntry {
    name: Option<String>,
    bytes: Option<u64>,
    /// `2026-12-03T08:40:44.123456`, UTC.
    last_modified: Option<String>,
}

/// A listing's `last_modified` (UTC, without a zone).
fn listed_time(text: Option<&str>) -> Option<std::time::SystemTime> {
    let t = chrono::NaiveDateTime::parse_from_str(text?, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some(t.and_utc().into())
}

impl SwiftBackend {
    /// Prepares a client for `container` (nothing is contacted yet).
    ///
    /// # Arguments
    /// * `container` - the container; created on the first write if missing.
    /// * `prefix` - object name prefix of the bank (may be empty), without leading or
    ///   trailing slashes.
    /// * `settings` - v1.0 or Keystone credentials.
    pub fn new(
        container: &str,
        prefix: &str,
        settings: &SwiftSettings,
    ) -> Result<Self, BackendError> {
        let location = if prefix.is_empty() {
            format!("swift://{container}")
        } else {
            format!("swift://{container}/{prefix}")
        };
        let v1_parts = [
            settings.auth_url.is_some(),
            settings.user.is_some(),
            settings.key.is_some(),
        ];
        if v1_parts.iter().any(|p| *p) && !v1_parts.iter().all(|p| *p) {
            return Err(BackendError::Config {
                location,
                reason: "Swift v1.0 auth needs the auth URL, the user and the key together \
                         (ST_AUTH, ST_USER, ST_KEY)"
                    .into(),
            });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| BackendError::Config {
                location: location.clone(),
                reason: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(Self {
            container: container.to_string(),
            prefix: prefix.to_string(),
            location,
            settings: settings.clone(),
            client,
            auth: OnceCell::new(),
        })
    }

    fn config_error(&self, reason: String) -> BackendError {
        BackendError::Config {
            location: self.location.clone(),
            reason,
        }
    }

    fn io_error(
        &self,
        op: &'static str,
        kind: Kind,
        name: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BackendError {
        BackendError::Io {
            location: self.location.clone(),
            op,
            kind,
            name: name.to_string(),
            source: source.into(),
        }
    }

    /// The authenticator, set up on first use.
    async fn auth(&self) -> Result<&Auth, AuthError> {
        self.auth
            .get_or_try_init(|| async {
                let s = &self.settings;
                if let (Some(auth_url), Some(user), Some(key)) = (&s.auth_url, &s.user, &s.key) {
                    return Ok(Auth::V1(V1Auth {
                        auth_url: auth_url.clone(),
                        user: user.clone(),
                        key: key.clone(),
                        current: RwLock::new(None),
                    }));
                }
                let session = match (&s.cloud, &s.clouds_file) {
                    (Some(cloud), Some(file)) => {
                        cloud_from_file(cloud, file)?.create_session().await
                    }
                    (Some(cloud), None) => osauth::Session::from_config(cloud).await,
                    (None, _) => osauth::Session::from_env().await,
                };
                let mut session = session.map_err(|e| match e.kind() {
                    osauth::ErrorKind::InvalidConfig | osauth::ErrorKind::InvalidInput => {
                        AuthError::Refused(format!(
                            "no usable Swift credentials: set ST_AUTH/ST_USER/ST_KEY for v1.0 \
                             auth, or OS_CLOUD (clouds.yaml) or OS_AUTH_URL/OS_USERNAME/\
                             OS_PASSWORD/OS_PROJECT_NAME for Keystone ({e})"
                        ))
                    }
                    _ => keystone_error(e),
                })?;
                if let Some(region) = &s.region {
                    session.set_region(region.clone());
                }
                Ok(Auth::Keystone(session))
            })
            .await
    }

    /// The object's (or, with `key` None, the container's) URL.
    fn url(&self, storage_url: &Url, key: Option<&str>) -> Result<Url, AuthError> {
        let mut url = storage_url.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                AuthError::Refused(format!("the storage URL {storage_url} cannot take a path"))
            })?;
            segments.pop_if_empty().push(&self.container);
            if let Some(key) = key {
                segments.extend(key.split('/'));
            }
        }
        Ok(url)
    }

    /// Sends one request, authenticating it, re-authenticating once on 401 and retrying
    /// transient failures with backoff. Returns the response of any other status.
    async fn send(&self, call: Call<'_>) -> Result<reqwest::Response, BackendError> {
        let Call {
            op,
            kind,
            name,
            method,
            key,
            query,
            headers,
            body,
        } = call;
        let mut attempt = 0;
        let mut reauthenticated = false;
        loop {
            let outcome: Result<reqwest::Response, AuthError> = async {
                let auth = self.auth().await?;
                let storage_url = auth.storage_url(&self.client).await?;
                let url = self.url(&storage_url, key)?;
                let mut request = auth.client(&self.client).request(method.clone(), url);
                if !query.is_empty() {
                    request = request.query(query);
                }
                for (name, value) in headers {
                    request = request.header(*name, value);
                }
                if let Some(body) = &body {
                    // Explicit: an empty body would otherwise go without a length, which
                    // Swift refuses (411).
                    request = request
                        .header(reqwest::header::CONTENT_LENGTH, body.len())
                        .body(body.clone());
                }
                let request = auth.authorize(&self.client, request).await?;
                request.send().await.map_err(|e| {
                    AuthError::Transient(format!("{method} failed: {}", error_chain(&e)))
                })
            }
            .await;
            let transient = match outcome {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    if reauthenticated {
                        return Err(self.config_error(
                            "Swift refused the token right after authenticating (401): check \
                             the user's roles and the container's ACLs"
                                .into(),
                        ));
                    }
                    reauthenticated = true;
                    if let Ok(auth) = self.auth().await {
                        if let Err(AuthError::Refused(reason)) = auth.refresh(&self.client).await {
                            return Err(self.config_error(reason));
                        }
                    }
                    continue;
                }
                Ok(response) if retryable(response.status()) => {
                    format!("HTTP {}", response.status())
                }
                Ok(response) if response.status() == StatusCode::FORBIDDEN => {
                    return Err(self.config_error(format!(
                        "Swift refused access to container {} (403): check the user's roles \
                         and the container's ACLs",
                        self.container
                    )));
                }
                Ok(response) => return Ok(response),
                Err(AuthError::Refused(reason)) => return Err(self.config_error(reason)),
                Err(AuthError::Transient(reason)) => reason,
            };
            if attempt >= RETRIES {
                return Err(self.io_error(
                    op,
                    kind,
                    name,
                    format!("{transient} (gave up after {} tries)", attempt + 1),
                ));
            }
            tracing::debug!(location = %self.location, op, %name, "retrying after {transient}");
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Reads an error answer into an [`BackendError::Io`].
    async fn unexpected(
        &self,
        op: &'static str,
        kind: Kind,
        name: &str,
        response: reqwest::Response,
    ) -> BackendError {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        self.io_error(op, kind, name, format!("unexpected HTTP {status}: {body}"))
    }

    /// Creates the container (idempotent).
    async fn create_container(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        let response = self
            .send(Call::new("put", kind, name, Method::PUT, None))
            .await?;
        if response.status().is_success() {
            tracing::info!(location = %self.location, "created Swift container {}", self.container);
            return Ok(());
        }
        Err(self.unexpected("put", kind, name, response).await)
    }

    /// The size of an object, `None` if it does not exist.
    async fn head(&self, kind: Kind, name: &str) -> Result<Option<u64>, BackendError> {
        let key = object_key(&self.prefix, kind, name);
        let response = self
            .send(Call::new("get", kind, name, Method::HEAD, Some(&key)))
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            // The header itself: for a HEAD, reqwest's content_length() is the empty body's.
            s if s.is_success() => response
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .map(Some)
                .ok_or_else(|| {
                    self.io_error("get", kind, name, "HEAD answer without a Content-Length")
                }),
            _ => Err(self.unexpected("get", kind, name, response).await),
        }
    }

    async fn body(
        &self,
        op: &'static str,
        kind: Kind,
        name: &str,
        response: reqwest::Response,
    ) -> Result<Bytes, BackendError> {
        response
            .bytes()
            .await
            .map_err(|e| self.io_error(op, kind, name, error_chain(&e)))
    }
}

impl Auth {
    /// The HTTP client to send with (Keystone sessions carry their own: CA bundle, ...).
    fn client<'a>(&'a self, own: &'a reqwest::Client) -> &'a reqwest::Client {
        match self {
            Auth::V1(_) => own,
            Auth::Keystone(session) => session.client().inner(),
        }
    }

    async fn storage_url(&self, client: &reqwest::Client) -> Result<Url, AuthError> {
        match self {
            Auth::V1(v1) => Ok(v1.token(client).await?.storage_url),
            Auth::Keystone(session) => {
                // `object_store_endpoint_override` in clouds.yaml (the full account URL).
                if let Some(url) = session.endpoint_overrides().get("object-store") {
                    return Ok(url.clone());
                }
                let client = session.client().inner();
                session
                    .auth_type()
                    .get_endpoint(client, "object-store", session.endpoint_filters())
                    .await
                    .map_err(keystone_error)
            }
        }
    }

    async fn authorize(
        &self,
        client: &reqwest::Client,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, AuthError> {
        match self {
            Auth::V1(v1) => Ok(request.header("X-Auth-Token", v1.token(client).await?.token)),
            Auth::Keystone(session) => session
                .auth_type()
                .authenticate(session.client().inner(), request)
                .await
                .map_err(keystone_error),
        }
    }

    async fn refresh(&self, client: &reqwest::Client) -> Result<(), AuthError> {
        match self {
            Auth::V1(v1) => {
                *v1.current.write().await = Some(v1.authenticate(client).await?);
                Ok(())
            }
            Auth::Keystone(session) => session
                .auth_type()
                .refresh(session.client().inner())
                .await
                .map_err(keystone_error),
        }
    }
}

impl V1Auth {
    /// The current token, authenticating if there is none yet.
    async fn token(&self, client: &reqwest::Client) -> Result<V1Token, AuthError> {
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

    async fn authenticate(&self, client: &reqwest::Client) -> Result<V1Token, AuthError> {
        let response = client
            .get(&self.auth_url)
            .header("X-Auth-User", &self.user)
            .header("X-Auth-Key", self.key.expose())
            .send()
            .await
            .map_err(|e| {
                AuthError::Transient(format!(
                    "Swift v1.0 auth at {} failed: {}",
                    self.auth_url,
                    error_chain(&e)
                ))
            })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(AuthError::Refused(format!(
                "Swift v1.0 auth at {} refused the credentials of user {} (HTTP {status}): \
                 check ST_USER and ST_KEY",
                self.auth_url, self.user
            )));
        }
        if retryable(status) {
            return Err(AuthError::Transient(format!(
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
            return Err(AuthError::Refused(format!(
                "{} answered HTTP {status} without X-Storage-Url and X-Auth-Token: is it a \
                 Swift v1.0 auth URL (like http://host:8080/auth/v1.0)?",
                self.auth_url
            )));
        };
        let storage_url = Url::parse(&storage_url).map_err(|e| {
            AuthError::Refused(format!(
                "Swift v1.0 auth at {} gave an invalid storage URL {storage_url:?}: {e}",
                self.auth_url
            ))
        })?;
        Ok(V1Token { storage_url, token })
    }
}

/// Reads the entry `cloud` of the clouds.yaml at `file`.
fn cloud_from_file(cloud: &str, file: &std::path::Path) -> Result<osauth::CloudConfig, AuthError> {
    let refused =
        |reason: String| AuthError::Refused(format!("clouds file {}: {reason}", file.display()));
    let text =
        std::fs::read_to_string(file).map_err(|e| refused(format!("cannot read it: {e}")))?;
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| refused(format!("not YAML: {e}")))?;
    let entry = yaml
        .get("clouds")
        .and_then(|clouds| clouds.get(cloud))
        .ok_or_else(|| refused(format!("no cloud named {cloud:?} under `clouds`")))?;
    serde_yaml::from_value(entry.clone())
        .map_err(|e| refused(format!("cloud {cloud:?} is not a valid cloud entry: {e}")))
}

fn keystone_error(e: osauth::Error) -> AuthError {
    match e.kind() {
        osauth::ErrorKind::OperationTimedOut | osauth::ErrorKind::OperationFailed => {
            AuthError::Transient(format!("Keystone: {e}"))
        }
        osauth::ErrorKind::EndpointNotFound => AuthError::Refused(format!(
            "Keystone's catalog has no object-store endpoint (for this region and interface): {e}"
        )),
        _ => AuthError::Refused(format!(
            "Keystone authentication failed: {e}; check clouds.yaml / OS_CLOUD or the OS_* \
             variables"
        )),
    }
}

/// Whether a status is worth retrying.
fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// Backoff before retry `attempt` (0-based): doubling from [`FIRST_BACKOFF`], capped, with
/// up to 25 % jitter so that concurrent writers do not retry in lock step.
fn backoff(attempt: u32) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(MAX_BACKOFF);
    base + base.mul_f64(rand::random::<f64>() * 0.25)
}

/// An error and its causes, on one line (reqwest's own message hides the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[async_trait]
impl Backend for SwiftBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError> {
        check_name(&self.location, kind, name)?;
        let key = object_key(&self.prefix, kind, name);
        let etag = hex::encode(Md5::digest(&data));
        let headers = [("ETag", etag)];
        let mut created = false;
        loop {
            let response = self
                .send(Call {
                    headers: &headers,
                    body: Some(data.clone()),
                    ..Call::new("put", kind, name, Method::PUT, Some(&key))
                })
                .await?;
            match response.status() {
                s if s.is_success() => return Ok(()),
                StatusCode::NOT_FOUND if !created => {
                    self.create_container(kind, name).await?;
                    created = true;
                }
                StatusCode::UNPROCESSABLE_ENTITY => {
                    return Err(self.io_error(
                        "put",
                        kind,
                        name,
                        "Swift received a body whose MD5 does not match (HTTP 422): damaged in \
                         transit; retry",
                    ));
                }
                _ => return Err(self.unexpected("put", kind, name, response).await),
            }
        }
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        check_name(&self.location, kind, name)?;
        let key = object_key(&self.prefix, kind, name);
        let response = self
            .send(Call::new("get", kind, name, Method::GET, Some(&key)))
            .await?;
        match response.status() {
            StatusCode::OK => self.body("get", kind, name, response).await,
            StatusCode::NOT_FOUND => Err(BackendError::NotFound {
                location: self.location.clone(),
                kind,
                name: name.to_string(),
            }),
            _ => Err(self.unexpected("get", kind, name, response).await),
        }
    }

    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        check_name(&self.location, kind, name)?;
        let past_end = |got| short_range(self.location.clone(), kind, name, offset, length, got);
        let end = offset.checked_add(length).ok_or_else(|| past_end(0))?;
        if length == 0 {
            // An empty range cannot be written as an HTTP Range: check the size instead.
            return match self.head(kind, name).await? {
                None => Err(BackendError::NotFound {
                    location: self.location.clone(),
                    kind,
                    name: name.to_string(),
                }),
                Some(size) if offset > size => Err(past_end(0)),
                Some(_) => Ok(Bytes::new()),
            };
        }
        let key = object_key(&self.prefix, kind, name);
        let range = [("Range", format!("bytes={offset}-{}", end - 1))];
        let response = self
            .send(Call {
                headers: &range,
                ..Call::new("get_range", kind, name, Method::GET, Some(&key))
            })
            .await?;
        let data = match response.status() {
            StatusCode::PARTIAL_CONTENT => self.body("get_range", kind, name, response).await?,
            // The whole object: Swift ignored the range (it does for some manifests).
            StatusCode::OK => {
                let all = self.body("get_range", kind, name, response).await?;
                let (start, stop) = match (usize::try_from(offset), usize::try_from(end)) {
                    (Ok(start), Ok(stop)) if stop <= all.len() => (start, stop),
                    _ => return Err(past_end(all.len())),
                };
                all.slice(start..stop)
            }
            StatusCode::RANGE_NOT_SATISFIABLE => return Err(past_end(0)),
            StatusCode::NOT_FOUND => {
                return Err(BackendError::NotFound {
                    location: self.location.clone(),
                    kind,
                    name: name.to_string(),
                })
            }
            _ => return Err(self.unexpected("get_range", kind, name, response).await),
        };
        if data.len() as u64 != length {
            return Err(past_end(data.len()));
        }
        Ok(data)
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
        if kind == Kind::Config {
            return Ok(self
                .head(kind, "config")
                .await?
                .map(|size| ObjectInfo {
                    name: "config".into(),
                    size,
                    modified: None,
                })
                .into_iter()
                .collect());
        }
        let folder = kind_prefix(&self.prefix, kind);
        let limit = PAGE.to_string();
        let mut marker = String::new();
        let mut out = Vec::new();
        loop {
            let query = [
                ("format", "json"),
                ("prefix", folder.as_str()),
                ("limit", limit.as_str()),
                ("marker", marker.as_str()),
            ];
            let response = self
                .send(Call {
                    query: &query,
                    ..Call::new("list", kind, "", Method::GET, None)
                })
                .await?;
            let page: Vec<ListEntry> = match response.status() {
                // No container yet: an empty bank.
                StatusCode::NOT_FOUND => return Ok(out),
                StatusCode::NO_CONTENT => Vec::new(),
                StatusCode::OK => {
                    let body = self.body("list", kind, "", response).await?;
                    serde_json::from_slice(&body).map_err(|e| {
                        self.io_error("list", kind, "", format!("unreadable listing: {e}"))
                    })?
                }
                _ => return Err(self.unexpected("list", kind, "", response).await),
            };
            let full = page.len() >= PAGE;
            for entry in page {
                let Some(key) = entry.name else { continue };
                if let Some(name) = key.strip_prefix(folder.as_str()) {
                    if !name.is_empty() && !name.contains('/') {
                        out.push(ObjectInfo {
                            name: name.to_string(),
                            size: entry.bytes.unwrap_or(0),
                            modified: listed_time(entry.last_modified.as_deref()),
                        });
                    }
                }
                marker = key;
            }
            if !full {
                return Ok(out);
            }
        }
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        check_name(&self.location, kind, name)?;
        let key = object_key(&self.prefix, kind, name);
        let response = self
            .send(Call::new("delete", kind, name, Method::DELETE, Some(&key)))
            .await?;
        match response.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.unexpected("delete", kind, name, response).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        for attempt in 0..8 {
            let base = FIRST_BACKOFF.saturating_mul(1 << attempt).min(MAX_BACKOFF);
            let wait = backoff(attempt);
            assert!(
                wait >= base && wait <= base.mul_f64(1.25),
                "{attempt}: {wait:?}"
            );
        }
        assert!(retryable(StatusCode::SERVICE_UNAVAILABLE));
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(!retryable(StatusCode::NOT_FOUND));
        assert!(!retryable(StatusCode::UNAUTHORIZED));
    }

    #[test]
    fn object_urls_escape_names_and_keep_the_account() {
        let backend = SwiftBackend::new("my container", "a b", &SwiftSettings::default())
            .expect("no network at set-up");
        let storage = Url::parse("http://127.0.0.1:8080/v1/AUTH_test/").expect("url");
        let key = object_key("a b", Kind::Pack, "ff00");
        let url = backend.url(&storage, Some(&key)).ok().map(String::from);
        assert_eq!(
            url.as_deref(),
            Some("http://127.0.0.1:8080/v1/AUTH_test/my%20container/a%20b/data/ff00")
        );
        let partial = SwiftSettings {
            user: Some("u".into()),
            ..SwiftSettings::default()
        };
        let err = SwiftBackend::new("c", "", &partial).expect_err("partial v1 settings");
        assert!(
            err.to_string().contains("ST_AUTH, ST_USER, ST_KEY"),
            "{err}"
        );
    }
}
