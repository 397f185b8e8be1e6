//! Writes through the Kubernetes API server, for restore.
//!
//! Configuration is resolved once (an explicit kubeconfig and context, else the usual
//! kubeconfig, else the in-cluster service account) into a `kube::Client`, which gives
//! transport and authentication. Objects are sent as the bytes the restore path built:
//! protobuf bodies as `application/vnd.kubernetes.protobuf` (the stored value, edited at
//! the wire level — never re-encoded, so no field is lost), JSON bodies as JSON. Answers
//! are asked for as JSON; a `Status` body becomes a typed [`ApiError`].
//!
//! It also runs commands in containers (`exec`, the `pods/{name}/exec` subresource over
//! WebSocket), for the hooks around a backup.
//!
//! This module knows URLs and status codes, nothing of checkpoints or Cinder.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Deserialize;

use crate::codec::{Encoding, ResourceKind};

mod exec;

pub use exec::{ExecExit, ExecOutput, EXEC_OUTPUT_LIMIT};

/// Where the API server is and how to authenticate.
#[derive(Debug, Clone, Default)]
pub struct KubeSettings {
    /// A kubeconfig file; `None` uses `$KUBECONFIG` / `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig; `None` uses its current context.
    pub context: Option<String>,
}

/// A `Status` answer of the API server.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Status {
    /// `Failure` or `Success`.
    pub status: String,
    /// Human-readable description.
    pub message: String,
    /// Machine-readable reason: `AlreadyExists`, `NotFound`, `Invalid`, ...
    pub reason: String,
    /// HTTP code.
    pub code: u16,
}

/// Errors writing to the API server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No kubeconfig and no in-cluster service account, or a broken kubeconfig.
    #[error("cannot configure the Kubernetes client: {0} (pass --kubeconfig/--context, or run in-cluster)")]
    Config(String),
    /// 409 AlreadyExists.
    #[error("{kind} {name} already exists: {message}")]
    AlreadyExists {
        /// The object's kind.
        kind: &'static str,
        /// `namespace/name` or `name`.
        name: String,
        /// The API server's message.
        message: String,
    },
    /// 404, e.g. the namespace does not exist.
    #[error("{kind} {name}: not found: {message}")]
    NotFound {
        /// The object's kind.
        kind: &'static str,
        /// `namespace/name` or `name`.
        name: String,
        /// The API server's message.
        message: String,
    },
    /// 422 Invalid: the object was rejected by validation.
    #[error("{kind} {name} is invalid: {message}")]
    Invalid {
        /// The object's kind.
        kind: &'static str,
        /// `namespace/name` or `name`.
        name: String,
        /// The API server's message, with the causes.
        message: String,
    },
    /// 401/403.
    #[error("not allowed to {verb} {kind} {name}: {message} (check the ServiceAccount's RBAC or the kubeconfig's user)")]
    Forbidden {
        /// create, get, ...
        verb: &'static str,
        /// The object's kind.
        kind: &'static str,
        /// `namespace/name` or `name`.
        name: String,
        /// The API server's message.
        message: String,
    },
    /// Any other answer.
    #[error("{verb} {kind} {name}: HTTP {code}: {message}")]
    Other {
        /// create, get, ...
        verb: &'static str,
        /// The object's kind.
        kind: &'static str,
        /// `namespace/name` or `name`.
        name: String,
        /// HTTP status code.
        code: u16,
        /// The API server's message or body.
        message: String,
    },
    /// An exec with nothing to run (the API server would take it and fail in the runtime).
    #[error("exec in Pod {name}: no command to run")]
    EmptyCommand {
        /// `namespace/pod (container c)`.
        name: String,
    },
    /// The request could not be made.
    #[error("{verb} {kind} {name}: {source}")]
    Transport {
        /// create, get, ...
        verb: &'static str,
        /// The object's kind.
        kind: &'static str,
        /// `namespace/name` or `name`.
        name: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A connected API-server client.
#[derive(Clone)]
pub struct ApiServer {
    client: kube::Client,
    throttling: Arc<Counters>,
}

/// How often the API server's flow control pushed back, as counted by one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttling {
    /// Answers that said "retry later" (429, or a 5xx with `Retry-After`).
    pub answers: u64,
    /// The time spent waiting as they asked.
    pub waited: Duration,
}

#[derive(Debug, Default)]
struct Counters {
    answers: AtomicU64,
    waited_ms: AtomicU64,
}

/// How many times one request is retried when the API server asks to retry later; client-go
/// retries as many.
const MAX_RETRIES: u32 = 10;
/// The longest wait honoured from one `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long to wait before sending again, if `code` and `headers` ask for a retry: a 429
/// always (its `Retry-After`, else a backoff doubling from 250 ms with the attempt), a 5xx
/// only when it carries `Retry-After` (kube-apiserver's "try again later").
fn retry_after(code: StatusCode, headers: &http::HeaderMap, attempt: u32) -> Option<Duration> {
    let header = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let backoff = || Duration::from_millis(250u64 << attempt.min(6));
    match code {
        StatusCode::TOO_MANY_REQUESTS => Some(header.unwrap_or_else(backoff)),
        c if c.is_server_error() => header,
        _ => None,
    }
    .map(|d| d.min(MAX_RETRY_AFTER))
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer").finish_non_exhaustive()
    }
}

/// The collection URL of `kind` (in `namespace` for namespaced kinds).
pub fn collection_path(kind: ResourceKind, namespace: Option<&str>) -> String {
    let root = match kind.group() {
        "" => "/api/v1".to_string(),
        _ => format!("/apis/{}", kind.api_version()),
    };
    match (kind.namespaced(), namespace) {
        (true, Some(ns)) => format!("{root}/namespaces/{ns}/{}", kind.resource()),
        _ => format!("{root}/{}", kind.resource()),
    }
}

/// What [`ApiServer::list`] tells of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// Whether it is being deleted (`metadata.deletionTimestamp` set).
    pub deleting: bool,
    /// Its annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// An Event of the API server, as restore reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Event {
    /// The object it is about.
    pub involved_object: InvolvedObject,
    /// `OwnerRefInvalidNamespace`, `SuccessfulDelete`, ...
    pub reason: String,
    /// Human-readable.
    pub message: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub event_type: String,
}

/// The object an [`Event`] is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct InvolvedObject {
    /// Its kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its uid.
    pub uid: String,
}

impl ApiServer {
    /// Resolve `settings` into a client (no request is made yet).
    pub async fn connect(settings: &KubeSettings) -> Result<ApiServer, ApiError> {
        let options = KubeConfigOptions {
            context: settings.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match &settings.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|e| ApiError::Config(format!("{}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| ApiError::Config(format!("{}: {e}", path.display())))?
            }
            None if settings.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| ApiError::Config(e.to_string()))?,
            None => kube::Config::infer()
                .await
                .map_err(|e| ApiError::Config(e.to_string()))?,
        };
        let mut config = config;
        // Retries after "retry later" are ours (`call`), so that they are counted.
        config.default_retry = false;
        let client = kube::Client::try_from(config).map_err(|e| ApiError::Config(e.to_string()))?;
        Ok(ApiServer::from_client(client))
    }

    /// Wrap an existing client.
    pub fn from_client(client: kube::Client) -> ApiServer {
        ApiServer {
            client,
            throttling: Arc::default(),
        }
    }

    /// How often the API server asked this client (and its clones) to retry later so far.
    pub fn throttling(&self) -> Throttling {
        Throttling {
            answers: self.throttling.answers.load(Ordering::Relaxed),
            waited: Duration::from_millis(self.throttling.waited_ms.load(Ordering::Relaxed)),
        }
    }

    /// Sends `request`; `kind` names what it is about (`Pod`, `Event`), for errors. When the
    /// API server's flow control answers "retry later" (429 with `Retry-After`), waits as it
    /// asks and sends again, up to [`MAX_RETRIES`] times, counting each in [`Self::throttling`].
    async fn call(
        &self,
        verb: &'static str,
        kind: &'static str,
        name: &str,
        request: Request<Vec<u8>>,
    ) -> Result<(StatusCode, Vec<u8>), ApiError> {
        let transport = |e: Box<dyn std::error::Error + Send + Sync>| ApiError::Transport {
            verb,
            kind,
            name: name.to_string(),
            source: e,
        };
        let (parts, body) = request.into_parts();
        let mut attempt = 0;
        loop {
            let mut again = Request::builder()
                .method(parts.method.clone())
                .uri(parts.uri.clone())
                .body(kube::client::Body::from(body.clone()))
                .map_err(|e| transport(Box::new(e)))?;
            *again.headers_mut() = parts.headers.clone();
            let response = self
                .client
                .send(again)
                .await
                .map_err(|e| transport(Box::new(e)))?;
            let status = response.status();
            let wait = retry_after(status, response.headers(), attempt);
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| transport(Box::new(e)))?
                .to_bytes()
                .to_vec();
            match wait {
                Some(wait) if attempt < MAX_RETRIES => {
                    attempt += 1;
                    self.throttling.answers.fetch_add(1, Ordering::Relaxed);
                    self.throttling
                        .waited_ms
                        .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
                    tracing::debug!(
                        verb,
                        kind,
                        name,
                        code = status.as_u16(),
                        ?wait,
                        attempt,
                        "the API server asked to retry later"
                    );
                    // The server says when to come back: this wait is its answer, not a guess.
                    tokio::time::sleep(wait).await;
                }
                _ => return Ok((status, body)),
            }
        }
    }

    fn error(
        verb: &'static str,
        kind: &'static str,
        name: &str,
        code: StatusCode,
        body: &[u8],
    ) -> ApiError {
        let status: Status = serde_json::from_slice(body).unwrap_or_else(|_| Status {
            message: String::from_utf8_lossy(body).chars().take(500).collect(),
            code: code.as_u16(),
            ..Status::default()
        });
        Self::refusal(verb, kind, name, code, &status.reason, status.message)
    }

    /// The typed error of an answer with HTTP `code` and the `Status` fields `reason` and
    /// `message`.
    fn refusal(
        verb: &'static str,
        kind: &'static str,
        name: &str,
        code: StatusCode,
        reason: &str,
        message: String,
    ) -> ApiError {
        let name = name.to_string();
        match (code, reason) {
            (StatusCode::CONFLICT, _) | (_, "AlreadyExists") => ApiError::AlreadyExists {
                kind,
                name,
                message,
            },
            (StatusCode::NOT_FOUND, _) => ApiError::NotFound {
                kind,
                name,
                message,
            },
            (StatusCode::UNPROCESSABLE_ENTITY, _) | (_, "Invalid") => ApiError::Invalid {
                kind,
                name,
                message,
            },
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => ApiError::Forbidden {
                verb,
                kind,
                name,
                message,
            },
            _ => ApiError::Other {
                verb,
                kind,
                name,
                code: code.as_u16(),
                message,
            },
        }
    }

    /// Create an object from its encoded bytes.
    ///
    /// # Arguments
    ///
    /// * `kind` - what the object is.
    /// * `namespace` - its namespace (ignored for cluster-scoped kinds).
    /// * `name` - its name, for messages.
    /// * `encoding` - how `body` is encoded: protobuf (`k8s\0` envelope) or JSON.
    /// * `body` - the object.
    ///
    /// Returns the created object as JSON.
    pub async fn create(
        &self,
        kind: ResourceKind,
        namespace: Option<&str>,
        name: &str,
        encoding: Encoding,
        body: Vec<u8>,
    ) -> Result<serde_json::Value, ApiError> {
        let content_type = match encoding {
            Encoding::Protobuf => "application/vnd.kubernetes.protobuf",
            Encoding::Json => "application/json",
        };
        let qualified = qualified(namespace, name);
        let request = Request::builder()
            .method(Method::POST)
            .uri(collection_path(kind, namespace))
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::ACCEPT, "application/json")
            .body(body)
            .map_err(|e| ApiError::Transport {
                verb: "create",
                kind: kind.kind(),
                name: qualified.clone(),
                source: Box::new(e),
            })?;
        let (code, body) = self
            .call("create", kind.kind(), &qualified, request)
            .await?;
        if code.is_success() {
            serde_json::from_slice(&body).map_err(|e| ApiError::Other {
                verb: "create",
                kind: kind.kind(),
                name: qualified,
                code: code.as_u16(),
                message: format!("unreadable answer: {e}"),
            })
        } else {
            Err(Self::error("create", kind.kind(), &qualified, code, &body))
        }
    }

    /// Read an object as JSON; `Ok(None)` if it does not exist.
    pub async fn get(
        &self,
        kind: ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<serde_json::Value>, ApiError> {
        let path = format!("{}/{name}", collection_path(kind, namespace));
        self.get_json("get", kind.kind(), &qualified(namespace, name), path)
            .await
    }
}

impl ApiServer {
    /// GET `path` as JSON: `Ok(None)` on 404.
    async fn get_json(
        &self,
        verb: &'static str,
        kind: &'static str,
        name: &str,
        path: String,
    ) -> Result<Option<serde_json::Value>, ApiError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| ApiError::Transport {
                verb,
                kind,
                name: name.to_string(),
                source: Box::new(e),
            })?;
        let (code, body) = self.call(verb, kind, name, request).await?;
        match code {
            c if c.is_success() => {
                serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|e| ApiError::Other {
                        verb,
                        kind,
                        name: name.to_string(),
                        code: c.as_u16(),
                        message: format!("unreadable answer: {e}"),
                    })
            }
            StatusCode::NOT_FOUND => Ok(None),
            c => Err(Self::error(verb, kind, name, c, &body)),
        }
    }

    /// The objects of `kind` in `namespace` (all of them for cluster-scoped kinds): names,
    /// uids, and whether each is being deleted.
    pub async fn list(
        &self,
        kind: ResourceKind,
        namespace: Option<&str>,
    ) -> Result<Vec<Listed>, ApiError> {
        let what = namespace.unwrap_or_default().to_string();
        let list = self
            .get_json("list", kind.kind(), &what, collection_path(kind, namespace))
            .await?
            .unwrap_or_default();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        Ok(items
            .iter()
            .map(|o| {
                let meta = &o["metadata"];
                Listed {
                    name: meta["name"].as_str().unwrap_or_default().to_string(),
                    uid: meta["uid"].as_str().unwrap_or_default().to_string(),
                    deleting: meta.get("deletionTimestamp").is_some_and(|t| !t.is_null()),
                    annotations: meta["annotations"]
                        .as_object()
                        .map(|a| {
                            a.iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect())
    }

    /// The Events of `namespace`.
    pub async fn events(&self, namespace: &str) -> Result<Vec<Event>, ApiError> {
        let path = format!("/api/v1/namespaces/{namespace}/events");
        let list = self
            .get_json("list", "Event", namespace, path)
            .await?
            .unwrap_or_default();
        Ok(list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|e| serde_json::from_value(e.clone()).ok())
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn qualified(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}
