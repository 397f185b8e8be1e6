//! The HTTP session with Cinder: Keystone token (through osauth), endpoint from the service
//! catalog, the `OpenStack-API-Version` header, timeouts, retries, re-authentication.
//!
//! # Why osauth for identity, reqwest for the rest
//!
//! osauth (0.5) does Keystone v3 well: password, application-credential and token plugins,
//! the token cache with early renewal, the service-catalog lookup by type, region and
//! interface. podbank uses exactly that part, through its [`osauth::AuthType`] trait, and
//! sends the Cinder requests itself with reqwest (the client osauth is built on), because
//! osauth's `Session` request path cannot do four things this client needs:
//!
//! * **the microversion header**: osauth's block-storage service type implements no
//!   `VersionedService`, so `api_version()` does not exist for it, and its version discovery
//!   follows the root document's `self` link, which drops the project id from Cinder's URL;
//! * **retries**: an osauth error keeps no reqwest error and no public HTTP status, so a
//!   connection refused (safe to retry, even a POST) cannot be told from a timeout after the
//!   request was sent (not safe for a POST);
//! * **re-authentication on 401**: osauth's forced refresh is a no-op while the cached token
//!   is still more than 10 minutes from its expiry (a revoked token stays cached), so podbank
//!   replaces the plugin with a fresh one instead;
//! * **a `clouds.yaml` at a given path**: osauth only searches its fixed locations; podbank
//!   reads the file itself (see `config.rs`) and builds the same osauth plugins.
//!
//! One reqwest client with the request timeout serves both Cinder and Keystone (osauth uses
//! the client it is given), so a hanging Keystone is bounded too.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use osauth::{AuthType, EndpointFilters, InterfaceType, ValidInterfaces};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use super::config::{CinderSettings, CloudEntry};
use super::CinderError;

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
        error_message(&self.body)
    }
}

/// The current identity plugin and a counter bumped each time it is replaced.
struct AuthSlot {
    plugin: Arc<dyn AuthType>,
    generation: u64,
}

pub(crate) struct Session {
    http: reqwest::Client,
    entry: CloudEntry,
    auth: RwLock<AuthSlot>,
    reauth_lock: tokio::sync::Mutex<()>,
    endpoint: Url,
    microversion: Microversion,
    timeout: Duration,
    max_retries: u32,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("endpoint", &self.endpoint.as_str())
            .field("microversion", &self.microversion)
            .field("identity", &self.entry.describe())
            .finish()
    }
}

/// Which idempotency a request has, for the retry rule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// GET, DELETE: retried after 5xx, connection errors and timeouts.
    Idempotent,
    /// POST: retried only when the request surely did not reach Cinder (connection refused,
    /// 503 from a proxy with no backend), never after a timeout or another 5xx, so that a
    /// retry cannot create a second volume or backup.
    Once,
}

impl Session {
    /// Authenticate, find the block-storage endpoint, pick the microversion.
    pub async fn open(settings: &CinderSettings) -> Result<Session, CinderError> {
        let entry = CloudEntry::resolve(settings)?;
        let http = http_client(settings, &entry)?;
        let plugin = entry.build_auth()?;
        plugin
            .refresh(&http)
            .await
            .map_err(|e| auth_error(&entry, e))?;

        let override_url = settings
            .endpoint_override
            .as_deref()
            .or(entry.block_storage_endpoint_override.as_deref())
            .or(entry.volumev3_endpoint_override.as_deref());
        let endpoint = match override_url {
            Some(url) => Url::parse(url).map_err(|e| {
                CinderError::Config(format!("block-storage endpoint override {url:?}: {e}"))
            })?,
            None => {
                let filters = endpoint_filters(settings, &entry)?;
                find_endpoint(plugin.as_ref(), &http, &filters, &entry).await?
            }
        };
        let mut session = Session {
            http,
            entry,
            auth: RwLock::new(AuthSlot {
                plugin,
                generation: 0,
            }),
            reauth_lock: tokio::sync::Mutex::new(()),
            endpoint,
            microversion: PREFERRED_MICROVERSION,
            timeout: settings.request_timeout,
            max_retries: settings.max_retries,
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
        format!("{} ({})", self.entry.describe(), self.entry.source)
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
            Retry::Idempotent,
        )
        .await
    }

    /// DELETE a path under the endpoint.
    pub async fn delete(&self, segments: &[&str]) -> Result<Reply, CinderError> {
        self.send(
            Method::DELETE,
            self.url(segments, &[]),
            None,
            Retry::Idempotent,
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
            Retry::Once,
        )
        .await
    }

    fn current_auth(&self) -> (Arc<dyn AuthType>, u64) {
        match self.auth.read() {
            Ok(slot) => (slot.plugin.clone(), slot.generation),
            Err(poisoned) => {
                let slot = poisoned.into_inner();
                (slot.plugin.clone(), slot.generation)
            }
        }
    }

    /// Replace the identity plugin with a fresh one (a new token), unless another task did so
    /// since `seen` was read.
    async fn reauthenticate(&self, seen: u64) -> Result<(), CinderError> {
        let _one_at_a_time = self.reauth_lock.lock().await;
        if self.current_auth().1 != seen {
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
        slot.generation = seen + 1;
        Ok(())
    }

    /// Send one request: token, microversion header, timeout; retries with backoff on 5xx and
    /// connection errors (see [`Retry`]); one re-authentication on 401.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
        retry: Retry,
    ) -> Result<Reply, CinderError> {
        let mut attempt: u32 = 0;
        let mut reauthenticated = false;
        loop {
            let (plugin, generation) = self.current_auth();
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(
                    "OpenStack-API-Version",
                    format!("volume {}", self.microversion),
                )
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(self.timeout);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let request = plugin
                .authenticate(&self.http, request)
                .await
                .map_err(|e| auth_error(&self.entry, e))?;
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(body) => Ok(Reply { status, body }),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let retryable = match &outcome {
                Ok(reply) => {
                    if reply.status == StatusCode::UNAUTHORIZED && !reauthenticated {
                        reauthenticated = true;
                        tracing::debug!(%url, "Cinder answered 401: authenticating again");
                        self.reauthenticate(generation).await?;
                        continue;
                    }
                    reply.status.is_server_error()
                        && (retry == Retry::Idempotent
                            || reply.status == StatusCode::SERVICE_UNAVAILABLE)
                }
                Err(e) => e.is_connect() || (retry == Retry::Idempotent && !e.is_builder()),
            };
            if retryable && attempt < self.max_retries {
                let delay = backoff(attempt);
                tracing::debug!(%method, %url, attempt, ?delay, "retrying Cinder request");
                attempt += 1;
                tokio::time::sleep(delay).await;
                continue;
            }
            return match outcome {
                Ok(reply) if reply.status == StatusCode::UNAUTHORIZED => {
                    Err(CinderError::Auth(format!(
                        "Cinder refused a fresh Keystone token for {} on {method} {url}: {}",
                        self.identity(),
                        reply.message()
                    )))
                }
                Ok(reply) => Ok(reply),
                Err(e) => Err(CinderError::Transport {
                    url: url.to_string(),
                    message: transport_message(&e, attempt),
                }),
            };
        }
    }

    /// Pick min(3.60, the server's maximum) from Cinder's version document; fail below 3.47.
    async fn discover_microversion(&self) -> Result<Microversion, CinderError> {
        let root = version_root(&self.endpoint);
        let reply = self
            .send(Method::GET, root.clone(), None, Retry::Idempotent)
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

/// Backoff before retry `attempt` (0-based): 0.5 s, 1 s, 2 s, 4 s, then 8 s, plus up to 25 %.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500) * 2u32.saturating_pow(attempt.min(4));
    let jitter = rand::random::<f64>() * 0.25;
    base.mul_f64(1.0 + jitter)
}

fn transport_message(e: &reqwest::Error, retries: u32) -> String {
    use std::error::Error as _;
    let mut msg = if e.is_timeout() {
        "the request timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    };
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if retries > 0 {
        msg.push_str(&format!(" (after {retries} retries)"));
    }
    msg
}

fn http_client(
    settings: &CinderSettings,
    entry: &CloudEntry,
) -> Result<reqwest::Client, CinderError> {
    let mut builder = reqwest::Client::builder()
        .timeout(settings.request_timeout)
        .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("podbank/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &entry.cacert {
        let pem = std::fs::read(path).map_err(|e| {
            CinderError::Config(format!(
                "{}: cannot read cacert {}: {e}",
                entry.source,
                path.display()
            ))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            CinderError::Config(format!(
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
        .map_err(|e| CinderError::Config(format!("HTTP client: {e}")))
}

fn endpoint_filters(
    settings: &CinderSettings,
    entry: &CloudEntry,
) -> Result<EndpointFilters, CinderError> {
    let interface = settings
        .interface
        .as_deref()
        .or(entry.interface.as_deref())
        .unwrap_or("public");
    let interface: InterfaceType = interface.parse().map_err(|_| {
        CinderError::Config(format!(
            "interface {interface:?} is not one of public, internal, admin"
        ))
    })?;
    let mut filters = EndpointFilters::default().with_interfaces(ValidInterfaces::one(interface));
    if let Some(region) = settings.region.as_deref().or(entry.region_name.as_deref()) {
        filters.set_region(region);
    }
    Ok(filters)
}

/// Catalog types of the block-storage v3 API, in the order they are looked up.
const CATALOG_TYPES: [&str; 2] = ["volumev3", "block-storage"];

async fn find_endpoint(
    plugin: &dyn AuthType,
    http: &reqwest::Client,
    filters: &EndpointFilters,
    entry: &CloudEntry,
) -> Result<Url, CinderError> {
    let mut last = None;
    for kind in CATALOG_TYPES {
        match plugin.get_endpoint(http, kind, filters).await {
            Ok(url) => return Ok(url),
            Err(e) if e.kind() == osauth::ErrorKind::EndpointNotFound => last = Some(e),
            Err(e) => return Err(auth_error(entry, e)),
        }
    }
    let interface = filters
        .interfaces
        .first()
        .map(|i| i.to_string())
        .unwrap_or_else(|| "public".into());
    Err(CinderError::Catalog(format!(
        "the service catalog of {} has no {} endpoint with interface {interface}{}{}",
        entry.describe(),
        CATALOG_TYPES.join(" or "),
        filters
            .region
            .as_deref()
            .map(|r| format!(" in region {r}"))
            .unwrap_or_default(),
        last.map(|e| format!(" ({e})")).unwrap_or_default()
    )))
}

/// An osauth error while authenticating, as a podbank error that says what to check.
fn auth_error(entry: &CloudEntry, e: osauth::Error) -> CinderError {
    use osauth::ErrorKind as K;
    let url = entry.auth.auth_url.as_deref().unwrap_or("(no auth_url)");
    match e.kind() {
        K::AuthenticationFailed | K::AccessDenied | K::ResourceNotFound => {
            CinderError::Auth(format!(
                "Keystone at {url} rejected {} from {}: {e}; check the credentials and the project",
                entry.describe(),
                entry.source
            ))
        }
        K::InvalidConfig | K::InvalidInput => CinderError::Config(format!("{}: {e}", entry.source)),
        K::EndpointNotFound => CinderError::Catalog(format!("{e}")),
        K::ProtocolError | K::OperationTimedOut => CinderError::Transport {
            url: url.to_string(),
            message: format!("Keystone: {e}"),
        },
        _ => CinderError::Auth(format!(
            "authentication of {} at {url} failed: {e}",
            entry.describe()
        )),
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

/// The human message of an OpenStack error body.
///
/// Cinder: `{"badRequest": {"code": 400, "message": "..."}}` (also `itemNotFound`,
/// `overLimit`, `computeFault`, ...); Keystone: `{"error": {"message": ...}}`; anything else
/// (an HTML page from a proxy) is returned as trimmed text.
pub(crate) fn error_message(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(serde_json::Value::String(m)) = map.get("message") {
            return m.clone();
        }
        for value in map.values() {
            if let Some(serde_json::Value::String(m)) = value.get("message") {
                return m.clone();
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    let mut cut: String = text.chars().take(500).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(br#"{"badRequest": {"code": 400, "message": "Invalid backup: Incremental backups exist for this backup."}}"#),
            "Invalid backup: Incremental backups exist for this backup."
        );
        assert_eq!(
            error_message(br#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#),
            "The request you have made requires authentication."
        );
        assert_eq!(
            error_message(b"  <html>502 Bad Gateway</html>\n"),
            "<html>502 Bad Gateway</html>"
        );
        assert_eq!(error_message(b""), "(empty body)");
        assert_eq!(error_message(br#"{"message": "flat"}"#), "flat");
    }

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

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert!(
            backoff(0) >= Duration::from_millis(500) && backoff(0) <= Duration::from_millis(625)
        );
        assert!(backoff(3) >= Duration::from_secs(4));
        assert!(backoff(20) <= Duration::from_secs(10));
    }
}
