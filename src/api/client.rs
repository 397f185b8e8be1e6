//! A client of the agent's HTTP API: what `podbank --agent URL ...` speaks.
//!
//! [`RemoteEngine`] implements the application API ([`Engine`]) over it, so that the CLI
//! does the same thing whichever engine it holds. Typed over the same request and response
//! types the server uses ([`super`]), so that the two cannot disagree on a field. Long
//! operations answer `202 Accepted`; the client follows the operation's status URL until
//! it ends.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{
    error_of, Accepted, ErrorBody, OperationRecord, OperationResult, OperationState, PlanList,
    ProtectBody, Readiness, RestoreBody,
};
use crate::bank::{GcReport, RepairReport, Stats, VerifyReport};
use crate::engine::{
    CheckpointFilter, CheckpointList, CheckpointView, Engine, EngineError, PlanRun, PlanView,
    PodDetail, PodList, PodSpecifier, ProtectRequest, ReadinessCheck, RestoreList, RestoreRequest,
    RestoreView, SelectionSpec,
};
use crate::model::{CheckpointId, RestoreId};
use crate::protection::DeleteOutcome;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the agent is and how to authenticate to it.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// The agent's base URL, e.g. `https://10.0.0.5:8443` (a path prefix is kept).
    pub url: String,
    /// A file holding the bearer token (the agent's `token_file`).
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate(s) to trust for an `https` agent, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mTLS (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// What went wrong talking to the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The settings are unusable (bad URL, unreadable token or certificate file).
    #[error("agent client: {0}")]
    Settings(String),
    /// The agent could not be reached, or the connection broke.
    #[error("cannot reach the agent at {url}: {source}")]
    Transport {
        /// The URL asked.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The agent answered with an error.
    #[error("the agent refused {method} {path}: {status} {code}: {message}")]
    Api {
        /// The method.
        method: String,
        /// The path asked.
        path: String,
        /// HTTP status.
        status: u16,
        /// The error code of the body (`invalid`, `not_found`, `unauthorized`, ...).
        code: String,
        /// The agent's message.
        message: String,
    },
    /// The agent answered something that is not what its API says.
    #[error("unexpected answer from the agent to {path}: {reason}")]
    Protocol {
        /// The path asked.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A followed operation failed or was cancelled on the agent.
    #[error("operation {id} {state}: {message}")]
    Operation {
        /// The error's code, if the agent gave one.
        code: Option<String>,
        /// The operation.
        id: String,
        /// `failed` or `cancelled`.
        state: String,
        /// The agent's reason.
        message: String,
    },
}

impl ClientError {
    /// Whether the caller is at fault: unusable settings, or a request the agent refused
    /// as invalid (HTTP 400).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ClientError::Settings(_) | ClientError::Api { status: 400, .. }
        )
    }
}

/// A connection to one agent.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

fn read_file(what: &str, path: &PathBuf) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path)
        .map_err(|e| ClientError::Settings(format!("cannot read {what} {}: {e}", path.display())))
}

fn body<T: Serialize>(request: &T) -> Result<Value, ClientError> {
    serde_json::to_value(request)
        .map_err(|e| ClientError::Settings(format!("cannot encode the request: {e}")))
}

impl Client {
    /// A client for the agent at `settings.url`; reads the token and certificates now, so
    /// that a bad file is reported before anything is sent.
    pub fn new(settings: &ClientSettings) -> Result<Client, ClientError> {
        let mut base = Url::parse(&settings.url).map_err(|e| {
            ClientError::Settings(format!(
                "agent URL {:?} is not a URL ({e}): expected http://HOST:PORT or \
                 https://HOST:PORT",
                settings.url
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::Settings(format!(
                "agent URL {:?}: expected http://HOST:PORT or https://HOST:PORT",
                settings.url
            )));
        }
        // Keep a path prefix (an agent behind a proxy), without a trailing empty segment.
        if let Ok(mut segments) = base.path_segments_mut() {
            segments.pop_if_empty();
        }
        let token = match &settings.token_file {
            Some(path) => {
                let bytes = read_file("token file", path)?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    ClientError::Settings(format!("token file {} is not UTF-8", path.display()))
                })?;
                let token = text.trim().to_string();
                if token.is_empty() {
                    return Err(ClientError::Settings(format!(
                        "token file {} is empty",
                        path.display()
                    )));
                }
                Some(token)
            }
            None => None,
        };
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("podbank/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_file {
            let pem = read_file("CA file", path)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ClientError::Settings(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(ClientError::Settings(format!(
                    "CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&settings.cert_file, &settings.key_file) {
            (Some(cert), Some(key)) => {
                let mut pem = read_file("client certificate", cert)?;
                pem.push(b'\n');
                pem.extend(read_file("client key", key)?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    ClientError::Settings(format!(
                        "client certificate {} / key {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(ClientError::Settings(
                    "a client certificate needs both the certificate and the key file".into(),
                ))
            }
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Settings(format!("cannot set up HTTP: {e}")))?;
        Ok(Client { http, base, token })
    }

    /// The base URL.
    pub fn url(&self) -> &Url {
        &self.base
    }

    fn url_of(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut s) = url.path_segments_mut() {
            // Each segment is percent-encoded: a pod id `ns/name` stays one segment.
            s.extend(segments);
        }
        url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Value>,
        expect: StatusCode,
    ) -> Result<T, ClientError> {
        let url = self.url_of(segments);
        let path = url.path().to_string();
        let mut req = self.http.request(method.clone(), url.clone());
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let transport = |source: reqwest::Error| ClientError::Transport {
            url: url.to_string(),
            source: source.without_url(),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        if status == expect {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
                path,
                reason: format!("{status} with a body that does not parse: {e}"),
            });
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => ClientError::Api {
                method: method.to_string(),
                path,
                status: status.as_u16(),
                code: b.error.code,
                message: b.error.message,
            },
            Err(_) => ClientError::Api {
                method: method.to_string(),
                path,
                status: status.as_u16(),
                code: "http".into(),
                message: String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(300)
                    .collect::<String>()
                    .trim()
                    .to_string(),
            },
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        self.call(Method::GET, segments, query, None, StatusCode::OK)
            .await
    }

    /// A GET whose body is the answer whatever the status (`/readyz` is 503 when not
    /// ready, with the checks).
    async fn get_status<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ClientError> {
        let url = self.url_of(segments);
        let path = url.path().to_string();
        let resp =
            self.http
                .get(url.clone())
                .send()
                .await
                .map_err(|source| ClientError::Transport {
                    url: url.to_string(),
                    source: source.without_url(),
                })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.to_string(),
                source: source.without_url(),
            })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
            path,
            reason: format!("{status} with a body that does not parse: {e}"),
        })
    }

    async fn start(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<OperationRecord, ClientError> {
        let accepted: Accepted = self
            .call(method, segments, query, body, StatusCode::ACCEPTED)
            .await?;
        Ok(accepted.operation)
    }

    /// `GET /v1/operations/{id}`.
    pub async fn operation(&self, id: &str) -> Result<OperationRecord, ClientError> {
        self.get(&["v1", "operations", id], &[]).await
    }

    /// Follow an operation until it ends; `Ok` only when it succeeded. Polls its status
    /// URL, 100 ms apart at first, then up to 2 s apart; `progress` sees every answer.
    pub async fn wait(
        &self,
        mut op: OperationRecord,
        mut progress: impl FnMut(&OperationRecord),
    ) -> Result<OperationRecord, ClientError> {
        let mut pause = Duration::from_millis(100);
        while op.state == OperationState::Running {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
            op = match self.operation(&op.id).await {
                Ok(next) => next,
                Err(ClientError::Api { status: 404, .. }) => {
                    return Err(ClientError::Protocol {
                        path: format!("/v1/operations/{}", op.id),
                        reason: "the operation is unknown to the agent that answered; \
                                 operations live in the replica that started them: point \
                                 --agent at one replica, not a load balancer"
                            .into(),
                    })
                }
                Err(e) => return Err(e),
            };
            progress(&op);
        }
        match op.state {
            OperationState::Succeeded => Ok(op),
            state => Err(ClientError::Operation {
                id: op.id.clone(),
                state: match state {
                    OperationState::Cancelled => "was cancelled",
                    _ => "failed",
                }
                .into(),
                message: op.error.clone().unwrap_or_else(|| "no reason given".into()),
                code: op.error_code.clone(),
            }),
        }
    }
}

/// A client error as the application API reports it: the agent's own error code when it
/// answered, `unavailable` when it could not be reached.
impl From<ClientError> for EngineError {
    fn from(e: ClientError) -> Self {
        let message = e.to_string();
        match e {
            ClientError::Settings(_) => EngineError::Invalid(message),
            ClientError::Transport { .. } => EngineError::Unavailable(message),
            ClientError::Api { code, .. } => error_of(&code, message),
            ClientError::Protocol { .. } => EngineError::Failed(message),
            ClientError::Operation { code, .. } => {
                error_of(code.as_deref().unwrap_or("failed"), message)
            }
        }
    }
}

/// The application API of a running agent, over its HTTP API.
#[derive(Debug, Clone)]
pub struct RemoteEngine {
    client: Client,
}

impl RemoteEngine {
    /// An engine that sends every call to the agent `settings` name.
    pub fn new(settings: &ClientSettings) -> Result<RemoteEngine, ClientError> {
        Ok(RemoteEngine {
            client: Client::new(settings)?,
        })
    }

    /// The client it speaks through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts a protect on the agent; its operation, running.
    pub async fn start_protect(
        &self,
        request: &ProtectRequest,
    ) -> Result<OperationRecord, EngineError> {
        let body = body(&ProtectBody::try_from(request)?)?;
        Ok(self
            .client
            .start(Method::POST, &["v1", "checkpoints"], &[], Some(body))
            .await?)
    }

    /// Starts deleting a checkpoint on the agent; its operation, running.
    pub async fn start_delete(&self, id: &CheckpointId) -> Result<OperationRecord, EngineError> {
        Ok(self
            .client
            .start(
                Method::DELETE,
                &["v1", "checkpoints", id.as_str()],
                &[],
                None,
            )
            .await?)
    }

    /// Starts a restore on the agent; its operation, running.
    pub async fn start_restore(
        &self,
        request: &RestoreRequest,
    ) -> Result<OperationRecord, EngineError> {
        let body = body(&RestoreBody::try_from(request)?)?;
        Ok(self
            .client
            .start(Method::POST, &["v1", "restores"], &[], Some(body))
            .await?)
    }

    /// Starts a run of the agent's plan `name`; its operation, running.
    pub async fn start_plan(&self, name: &str) -> Result<OperationRecord, EngineError> {
        Ok(self
            .client
            .start(Method::POST, &["v1", "plans", name, "trigger"], &[], None)
            .await?)
    }

    /// Follows an operation to its end; `Ok` only when it succeeded.
    pub async fn finish(&self, op: OperationRecord) -> Result<OperationRecord, EngineError> {
        Ok(self.client.wait(op, |_| {}).await?)
    }

    /// Follows an operation to its end; its result.
    async fn result(&self, op: OperationRecord) -> Result<OperationResult, EngineError> {
        let op = self.finish(op).await?;
        op.result.ok_or_else(|| {
            EngineError::Failed(format!("operation {} succeeded without a result", op.id))
        })
    }

    fn unexpected(what: &str, got: &OperationResult) -> EngineError {
        EngineError::Failed(format!("the agent answered a {what} with {got:?}"))
    }

    fn bank_only(what: &str) -> EngineError {
        EngineError::Unsupported(format!(
            "{what} works on the bank directly, not through the agent's API: run it where \
             the bank is reachable, without --agent"
        ))
    }
}

const POD: &str = "OS::Kubernetes::Pod";

#[async_trait]
impl Engine for RemoteEngine {
    async fn pods(&self, selection: &SelectionSpec) -> Result<PodList, EngineError> {
        let namespaces = selection.namespaces.join(",");
        let mut q = Vec::new();
        if !namespaces.is_empty() {
            q.push(("namespaces", namespaces.as_str()));
        }
        if let Some(l) = &selection.label_selector {
            q.push(("label_selector", l.as_str()));
        }
        if let Some(f) = &selection.field_selector {
            q.push(("field_selector", f.as_str()));
        }
        Ok(self
            .client
            .get(&["v1", "protectables", POD, "instances"], &q)
            .await?)
    }

    async fn pod(&self, pod: &PodSpecifier) -> Result<PodDetail, EngineError> {
        let id = pod.to_string();
        Ok(self
            .client
            .get(&["v1", "protectables", POD, "instances", &id], &[])
            .await?)
    }

    async fn protect(&self, request: ProtectRequest) -> Result<CheckpointView, EngineError> {
        let result = self.result(self.start_protect(&request).await?).await?;
        let OperationResult::Protect { checkpoint_id, .. } = &result else {
            return Err(Self::unexpected("protect", &result));
        };
        // As protect returns it here: without the resource records.
        let mut view = self.checkpoint(checkpoint_id).await?;
        view.resources.clear();
        view.volumes.retain(|v| !v.volume_id.is_empty());
        Ok(view)
    }

    async fn checkpoints(&self, filter: &CheckpointFilter) -> Result<CheckpointList, EngineError> {
        let mut q: Vec<(&str, &str)> = filter
            .plan
            .as_deref()
            .map(|p| ("plan", p))
            .into_iter()
            .collect();
        if filter.all {
            q.push(("all", "true"));
        }
        Ok(self.client.get(&["v1", "checkpoints"], &q).await?)
    }

    async fn checkpoint(&self, id: &CheckpointId) -> Result<CheckpointView, EngineError> {
        Ok(self
            .client
            .get(&["v1", "checkpoints", id.as_str()], &[])
            .await?)
    }

    async fn verify(&self, id: Option<&CheckpointId>) -> Result<VerifyReport, EngineError> {
        let _ = id;
        Err(Self::bank_only("verify"))
    }

    async fn delete_checkpoint(&self, id: &CheckpointId) -> Result<DeleteOutcome, EngineError> {
        match self.result(self.start_delete(id).await?).await? {
            OperationResult::Delete {
                checkpoint_id,
                status,
                backups_deleted,
                backups_kept,
            } => Ok(DeleteOutcome {
                id: checkpoint_id,
                status,
                backups_deleted,
                backups_kept,
            }),
            other => Err(Self::unexpected("delete", &other)),
        }
    }

    async fn restore(&self, request: RestoreRequest) -> Result<RestoreView, EngineError> {
        let result = self.result(self.start_restore(&request).await?).await?;
        let OperationResult::Restore { id, .. } = &result else {
            return Err(Self::unexpected("restore", &result));
        };
        self.restore_record(id).await
    }

    async fn restores(&self) -> Result<RestoreList, EngineError> {
        Ok(self.client.get(&["v1", "restores"], &[]).await?)
    }

    async fn restore_record(&self, id: &RestoreId) -> Result<RestoreView, EngineError> {
        Ok(self
            .client
            .get(&["v1", "restores", id.as_str()], &[])
            .await?)
    }

    async fn plans(&self) -> Result<Vec<PlanView>, EngineError> {
        let list: PlanList = self.client.get(&["v1", "plans"], &[]).await?;
        Ok(list.items)
    }

    async fn run_plan(&self, name: &str) -> Result<PlanRun, EngineError> {
        match self.result(self.start_plan(name).await?).await? {
            OperationResult::PlanRun {
                checkpoint_id,
                retention,
                ..
            } => Ok(PlanRun {
                plan: name.to_string(),
                checkpoint: self.checkpoint(&checkpoint_id).await?,
                retention,
            }),
            other => Err(Self::unexpected("plan run", &other)),
        }
    }

    async fn gc(&self, _wait: Duration) -> Result<GcReport, EngineError> {
        Err(Self::bank_only("gc"))
    }

    async fn repair(&self, _wait: Duration) -> Result<RepairReport, EngineError> {
        Err(Self::bank_only("repair"))
    }

    async fn bank_stats(&self) -> Result<Stats, EngineError> {
        Err(Self::bank_only("bank stats"))
    }

    async fn readiness(&self) -> Vec<ReadinessCheck> {
        match self.client.get_status::<Readiness>(&["readyz"]).await {
            Ok(r) => r.checks,
            Err(e) => vec![ReadinessCheck {
                name: "agent".into(),
                ok: false,
                message: Some(e.to_string()),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Result<Client, ClientError> {
        Client::new(&ClientSettings {
            url: url.into(),
            ..ClientSettings::default()
        })
    }

    #[test]
    fn segments_are_percent_encoded_and_prefixes_kept() {
        let c = client("http://127.0.0.1:8080/podbank/").unwrap();
        let url = c.url_of(&["v1", "protectables", POD, "instances", "ns-1/web-0"]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/podbank/v1/protectables/OS::Kubernetes::Pod/instances/ns-1%2Fweb-0"
        );
        let c = client("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            c.url_of(&["v1", "plans"]).as_str(),
            "http://127.0.0.1:8080/v1/plans"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        for bad in ["127.0.0.1:8080", "ftp://127.0.0.1/"] {
            let e = client(bad).unwrap_err().to_string();
            assert!(e.contains("http://HOST:PORT"), "{e}");
        }
        let e = client("not a url").unwrap_err().to_string();
        assert!(e.contains("is not a URL"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("token");
        std::fs::write(&empty, "\n").unwrap();
        let e = Client::new(&ClientSettings {
            url: "http://127.0.0.1:1".into(),
            token_file: Some(empty),
            ..ClientSettings::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("is empty"), "{e}");
        let e = Client::new(&ClientSettings {
            url: "http://127.0.0.1:1".into(),
            cert_file: Some(dir.path().join("c.pem")),
            ..ClientSettings::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("both the certificate and the key"), "{e}");
    }
}
