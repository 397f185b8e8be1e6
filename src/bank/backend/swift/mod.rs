//! A bank in an OpenStack Swift container (`swift://container/prefix`), over Swift's REST
//! API with `reqwest`; Keystone v3 through [`crate::openstack::Keystone`], or Swift's own
//! v1.0 auth.
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
//! * Keystone, clouds.yaml and the `OS_*` variables are [`crate::openstack`]'s; this file
//!   knows Swift's v1.0 auth, its paths, headers and statuses.
//! * A 401 re-authenticates once and repeats the request; refused credentials are
//!   [`BackendError::Config`]. Each request is tried once: 5xx, 408, 429, connection
//!   errors and broken answers are transient [`BackendError::Io`] errors, retried by the
//!   [`super::RetryBackend`] that [`super::open_with`] puts around this backend.
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
use tokio::sync::OnceCell;
use url::Url;

use super::settings::SwiftSettings;
use super::{
    check_name, kind_prefix, object_key, short_range, Backend, BackendError, Kind, ObjectInfo,
};
use crate::openstack::error::{body_message, chain};
use crate::openstack::retry::{retryable_status, retryable_transport, Idempotency};
use crate::openstack::{self, TokenGeneration};

mod auth;
use auth::{Auth, Failure};

/// Objects per listing page (Swift's default limit is 10 000; smaller pages keep each
/// answer small and the paging path exercised).
const PAGE: usize = 1000;
/// Upper bound of one request (a pack is a few MiB); at most 10 s of it to connect.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

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
        let client = openstack::client_builder(REQUEST_TIMEOUT)
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

    /// A failure a retry would repeat.
    fn io_error(
        &self,
        op: &'static str,
        kind: Kind,
        name: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BackendError {
        self.failed(op, kind, name, source.into(), false)
    }

    fn failed(
        &self,
        op: &'static str,
        kind: Kind,
        name: &str,
        source: Box<dyn std::error::Error + Send + Sync>,
        transient: bool,
    ) -> BackendError {
        BackendError::Io {
            location: self.location.clone(),
            op,
            kind,
            name: name.to_string(),
            source,
            transient,
        }
    }

    /// The backend's error for a failure of `call`.
    fn failure(&self, call: &Call<'_>, failure: Failure) -> BackendError {
        match failure {
            Failure::Refused(reason) => self.config_error(reason),
            Failure::Io { reason, transient } => {
                self.failed(call.op, call.kind, call.name, reason.into(), transient)
            }
        }
    }

    /// The authenticator, set up on first use.
    async fn auth(&self) -> Result<&Auth, Failure> {
        self.auth
            .get_or_try_init(|| async { Auth::from_settings(&self.settings) })
            .await
    }

    /// The object's (or, with `key` None, the container's) URL.
    fn url(&self, storage_url: &Url, key: Option<&str>) -> Result<Url, Failure> {
        let mut url = storage_url.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                Failure::Refused(format!("the storage URL {storage_url} cannot take a path"))
            })?;
            segments.pop_if_empty().push(&self.container);
            if let Some(key) = key {
                segments.extend(key.split('/'));
            }
        }
        Ok(url)
    }

    /// Sends one request, authenticating it and re-authenticating once on 401. Returns the
    /// response of any status but 401, 403 and the transient ones (see
    /// [`crate::openstack::retry`]), which are errors: transient errors are not retried here.
    async fn send(&self, call: Call<'_>) -> Result<reqwest::Response, BackendError> {
        let mut reauthenticated = false;
        loop {
            let (response, signed) = self
                .send_once(&call)
                .await
                .map_err(|f| self.failure(&call, f))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                if reauthenticated {
                    return Err(self.config_error(
                        "Swift refused the token right after authenticating (401): check \
                         the user's roles and the container's ACLs"
                            .into(),
                    ));
                }
                reauthenticated = true;
                let auth = self.auth().await.map_err(|f| self.failure(&call, f))?;
                auth.refresh(&self.client, signed)
                    .await
                    .map_err(|f| self.failure(&call, f))?;
                continue;
            }
            if retryable_status(status, Idempotency::Idempotent) {
                let reason = format!("HTTP {status}");
                return Err(self.failure(&call, Failure::transient(reason)));
            }
            if status == StatusCode::FORBIDDEN {
                return Err(self.config_error(format!(
                    "Swift refused access to container {} (403): check the user's roles \
                     and the container's ACLs",
                    self.container
                )));
            }
            return Ok(response);
        }
    }

    /// One request with the current token; which token signed it, for a re-authentication.
    async fn send_once(
        &self,
        call: &Call<'_>,
    ) -> Result<(reqwest::Response, Option<TokenGeneration>), Failure> {
        let auth = self.auth().await?;
        let region = self.settings.region.as_deref();
        let storage_url = auth.storage_url(&self.client, region).await?;
        let url = self.url(&storage_url, call.key)?;
        let mut request = auth.client(&self.client).request(call.method.clone(), url);
        if !call.query.is_empty() {
            request = request.query(call.query);
        }
        for (name, value) in call.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &call.body {
            // Explicit: an empty body would otherwise go without a length, which Swift
            // refuses (411).
            request = request
                .header(reqwest::header::CONTENT_LENGTH, body.len())
                .body(body.clone());
        }
        let (request, signed) = auth.authorize(&self.client, request).await?;
        let response = request
            .send()
            .await
            .map_err(|e| Failure::http(call.method.to_string(), &e))?;
        Ok((response, signed))
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
        let body = response.bytes().await.unwrap_or_default();
        let message = body_message(&body);
        self.io_error(
            op,
            kind,
            name,
            format!("unexpected HTTP {status}: {message}"),
        )
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
        response.bytes().await.map_err(|e| {
            let transient = retryable_transport(&e, Idempotency::Idempotent);
            self.failed(op, kind, name, chain(&e).into(), transient)
        })
    }
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
                    let reason = "Swift received a body whose MD5 does not match (HTTP 422): \
                                  damaged in transit";
                    return Err(self.failed("put", kind, name, reason.into(), true));
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
