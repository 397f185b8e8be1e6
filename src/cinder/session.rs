//! The HTTP session with Cinder: a Keystone session ([`crate::openstack::Keystone`]) for the
//! token and the endpoint, the `OpenStack-API-Version` header, timeouts, retries
//! ([`crate::openstack::retry`]: a POST only when Cinder surely did not get it) and one
//! re-authentication on 401.
//!
//! Why the requests go through reqwest and not osauth's `Session`: see
//! [`crate::openstack::keystone`]; for Cinder one more reason is **the microversion
//! header**: osauth's block-storage service type implements no `VersionedService`, so
//! `api_version()` does not exist for it, and its version discovery follows the root
//! document's `self` link, which drops the project id from Cinder's URL.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use super::config::CinderSettings;
use super::CinderError;
use crate::openstack::retry::{self, Idempotency};
use crate::openstack::{
    error, http_client, CloudEntry, Keystone, OpenStackError, RetryPolicy, ServiceQuery,
};

/// The microversion podbank asks for when the server offers it.
pub const PREFERRED_MICROVERSION: Microversion = Microversion(3, 60);
/// Below this, Cinder silently ignores `backup_id` on volume create: never used.
pub const MINIMUM_MICROVERSION: Microversion = Microversion(3, 47);

/// A block-storage API microversion, `3.60`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion(pub u16, pub u16);

impl Microversion {
    /// Parse `"3.60"`.
    pub fn parse(s: &str) -> Option<Microversion> {
        let (a, b) = s.trim().split_once('.')?;
        Some(Microversion(a.parse().ok()?, b.parse().ok()?))
    }
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// An answer from Cinder: its status and body (any status; the caller interprets it).
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: bytes::Bytes,
}

impl Reply {
    /// The message of a Cinder error body (`{"badRequest": {"message": ...}}`), else the text.
    pub fn message(&self) -> String {
        error::body_message(&self.body)
    }
}

/// Catalog types of the block-storage v3 API, in the order they are looked up.
const CATALOG_TYPES: [&str; 2] = ["volumev3", "block-storage"];

pub(crate) struct Session {
    keystone: Keystone,
    endpoint: Url,
    microversion: Microversion,
    timeout: std::time::Duration,
    policy: RetryPolicy,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("endpoint", &self.endpoint.as_str())
            .field("microversion", &self.microversion)
            .field("identity", &self.keystone.entry().describe())
            .finish()
    }
}

/// Why one try of a request failed without an answer.
enum Failure {
    /// Sending it or reading the answer.
    Http(reqwest::Error),
    /// Getting, renewing or replacing the token.
    Keystone(OpenStackError),
}

impl Session {
    /// Authenticate, find the block-storage endpoint, pick the microversion.
    pub async fn open(settings: &CinderSettings) -> Result<Session, CinderError> {
        let entry =
            CloudEntry::resolve(settings.cloud.as_deref(), settings.clouds_file.as_deref())?;
        let http = http_client(&entry, settings.request_timeout)?;
        let keystone = Keystone::new(entry, http)?;
        let policy = RetryPolicy::API.with_retries(settings.max_retries);
        policy
            .run(
                "Keystone login",
                || keystone.login(),
                |r| r.as_ref().is_err_and(OpenStackError::is_transient),
            )
            .await
            .result?;

        let endpoint = match settings.endpoint_override.as_deref() {
            Some(url) => Url::parse(url).map_err(|e| {
                CinderError::Config(format!("block-storage endpoint override {url:?}: {e}"))
            })?,
            None => {
                let query = ServiceQuery {
                    types: &CATALOG_TYPES,
                    interface: settings.interface.as_deref(),
                    region: settings.region.as_deref(),
                };
                keystone.endpoint(&query).await?
            }
        };
        let mut session = Session {
            keystone,
            endpoint,
            microversion: PREFERRED_MICROVERSION,
            timeout: settings.request_timeout,
            policy,
        };
        session.microversion = session.discover_microversion().await?;
        Ok(session)
    }

    /// The block-storage endpoint (with the project id Keystone put in it).
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The microversion sent with every request.
    pub fn microversion(&self) -> Microversion {
        self.microversion
    }

    /// Who is authenticated, for messages.
    pub fn identity(&self) -> String {
        self.keystone.identity()
    }

    /// The endpoint URL with `segments` appended and `query` set.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// GET a path under the endpoint.
    pub async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Reply, CinderError> {
        self.send(
            Method::GET,
            self.url(segments, query),
            None,
            Idempotency::Idempotent,
        )
        .await
    }

    /// DELETE a path under the endpoint.
    pub async fn delete(&self, segments: &[&str]) -> Result<Reply, CinderError> {
        self.send(
            Method::DELETE,
            self.url(segments, &[]),
            None,
            Idempotency::Idempotent,
        )
        .await
    }

    /// POST a JSON body to a path under the endpoint.
    pub async fn post(
        &self,
        segments: &[&str],
        body: serde_json::Value,
    ) -> Result<Reply, CinderError> {
        self.send(
            Method::POST,
            self.url(segments, &[]),
            Some(body),
            Idempotency::NotIdempotent,
        )
        .await
    }

    /// Send one request: token, microversion header, timeout; retried by the policy (see
    /// [`crate::openstack::retry`]), with one re-authentication on 401 over all tries.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
        idempotency: Idempotency,
    ) -> Result<Reply, CinderError> {
        let reauthenticated = AtomicBool::new(false);
        let what = format!("Cinder {method} {url}");
        let outcome = self
            .policy
            .run(
                &what,
                || self.send_once(&method, &url, body.as_ref(), &reauthenticated),
                |result| match result {
                    Ok(reply) => retry::retryable_status(reply.status, idempotency),
                    Err(Failure::Http(e)) => retry::retryable_transport(e, idempotency),
                    Err(Failure::Keystone(e)) => e.is_transient(),
                },
            )
            .await;
        match outcome.result {
            Ok(reply) if reply.status == StatusCode::UNAUTHORIZED => {
                Err(CinderError::Auth(format!(
                    "Cinder refused a fresh Keystone token for {} on {method} {url}: {}",
                    self.identity(),
                    reply.message()
                )))
            }
            Ok(reply) => Ok(reply),
            Err(Failure::Keystone(e)) => Err(e.into()),
            Err(Failure::Http(e)) => {
                let mut message = error::http_error(&e);
                if outcome.retries > 0 {
                    message.push_str(&format!(" (after {} retries)", outcome.retries));
                }
                Err(CinderError::Transport {
                    url: url.to_string(),
                    message,
                })
            }
        }
    }

    /// One try of a request; when Cinder answers 401 and no re-authentication was made for
    /// this request yet, a fresh token and the request again.
    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        reauthenticated: &AtomicBool,
    ) -> Result<Reply, Failure> {
        loop {
            let mut request = self
                .keystone
                .http()
                .request(method.clone(), url.clone())
                .header(
                    "OpenStack-API-Version",
                    format!("volume {}", self.microversion),
                )
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(self.timeout);
            if let Some(body) = body {
                request = request.json(body);
            }
            // the plugin renews its token here when it is close to expiry
            let (request, generation) = self
                .keystone
                .authorize(request)
                .await
                .map_err(Failure::Keystone)?;
            let response = request.send().await.map_err(Failure::Http)?;
            let status = response.status();
            let body = response.bytes().await.map_err(Failure::Http)?;
            if status == StatusCode::UNAUTHORIZED && !reauthenticated.swap(true, Ordering::SeqCst) {
                tracing::debug!(%url, "Cinder answered 401: authenticating again");
                if let Err(e) = self.keystone.reauthenticate(generation).await {
                    reauthenticated.store(false, Ordering::SeqCst);
                    return Err(Failure::Keystone(e));
                }
                continue;
            }
            return Ok(Reply { status, body });
        }
    }

    /// Pick min(3.60, the server's maximum) from Cinder's version document; fail below 3.47.
    async fn discover_microversion(&self) -> Result<Microversion, CinderError> {
        let root = version_root(&self.endpoint);
        let reply = self
            .send(Method::GET, root.clone(), None, Idempotency::Idempotent)
            .await?;
        let range = if reply.status.is_success() || reply.status == StatusCode::MULTIPLE_CHOICES {
            parse_versions(&reply.body)
        } else {
            None
        };
        let Some((min, max)) = range else {
            tracing::warn!(
                %root,
                status = %reply.status,
                "no Cinder version document; sending microversion {PREFERRED_MICROVERSION} unchecked"
            );
            return Ok(PREFERRED_MICROVERSION);
        };
        let chosen = PREFERRED_MICROVERSION.min(max);
        if chosen < MINIMUM_MICROVERSION || chosen < min {
            return Err(CinderError::Unsupported(format!(
                "Cinder at {} supports microversions {min} to {max}; podbank needs at least \
                 {MINIMUM_MICROVERSION} (below it Cinder ignores backup_id on volume create)",
                self.endpoint
            )));
        }
        Ok(chosen)
    }
}

/// The URL of the version document: the endpoint cut before its `v3` segment.
fn version_root(endpoint: &Url) -> Url {
    let mut root = endpoint.clone();
    let segments: Vec<String> = endpoint
        .path_segments()
        .map(|s| s.map(str::to_string).collect())
        .unwrap_or_default();
    let keep = segments
        .iter()
        .position(|s| s == "v3" || s.starts_with("v3."))
        .unwrap_or(0);
    if let Ok(mut path) = root.path_segments_mut() {
        path.clear().extend(&segments[..keep]).push("");
    }
    root.set_query(None);
    root
}

#[derive(Deserialize)]
struct VersionDoc {
    #[serde(default)]
    id: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    min_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VersionsRoot {
    Many { versions: Vec<VersionDoc> },
    One { version: VersionDoc },
}

/// The v3 microversion range of a Cinder version document.
fn parse_versions(body: &[u8]) -> Option<(Microversion, Microversion)> {
    let docs = match serde_json::from_slice::<VersionsRoot>(body).ok()? {
        VersionsRoot::Many { versions } => versions,
        VersionsRoot::One { version } => vec![version],
    };
    docs.iter()
        .filter(|d| d.id.starts_with("v3"))
        .filter_map(|d| {
            let max = Microversion::parse(d.version.as_deref()?)?;
            let min = d
                .min_version
                .as_deref()
                .and_then(Microversion::parse)
                .unwrap_or(Microversion(3, 0));
            Some((min, max))
        })
        .max_by_key(|(_, max)| *max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_document_range() {
        let body = br#"{"versions": [{"id": "v3.0", "status": "CURRENT", "version": "3.70", "min_version": "3.0"}]}"#;
        assert_eq!(
            parse_versions(body),
            Some((Microversion(3, 0), Microversion(3, 70)))
        );
        assert_eq!(parse_versions(b"not json"), None);
        assert_eq!(Microversion::parse("3.47"), Some(Microversion(3, 47)));
        assert!(Microversion(3, 9) < Microversion(3, 47));
    }

    #[test]
    fn version_root_cuts_before_v3() {
        let u = Url::parse("http://127.0.0.1:8776/v3/abc").expect("url");
        assert_eq!(version_root(&u).as_str(), "http://127.0.0.1:8776/");
        let u = Url::parse("https://cloud.example/volume/v3/abc").expect("url");
        assert_eq!(version_root(&u).as_str(), "https://cloud.example/volume/");
    }
}
