//! A client of the agent's HTTP API: what `podbank --agent URL ...` speaks.
//!
//! Typed over the same request and response types the server uses ([`super::engine`],
//! [`super::operations`], [`super::http`]), so that the two cannot disagree on a field.
//! Long operations answer `202 Accepted`; [`Client::wait`] follows the operation's status
//! URL until it ends.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::engine::{
    CheckpointId, CheckpointSummary, ProtectRequest, ProtectableQuery, RestoreRequest,
    RestoreSummary,
};
use super::http::{Accepted, ErrorBody, Items, PlanList};
use super::operations::{OperationRecord, OperationState};
use crate::resources::POD_TYPE;

/// How long one request may take (long work runs as operations, not in one request).
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

    async fn start(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
    ) -> Result<OperationRecord, ClientError> {
        let accepted: Accepted = self
            .call(method, segments, &[], body, StatusCode::ACCEPTED)
            .await?;
        Ok(accepted.operation)
    }

    /// `GET /v1/protectables/OS::Kubernetes::Pod/instances`.
    pub async fn protectables(&self, query: &ProtectableQuery) -> Result<Value, ClientError> {
        let namespaces = query.namespaces.join(",");
        let mut q = Vec::new();
        if !namespaces.is_empty() {
            q.push(("namespaces", namespaces.as_str()));
        }
        if let Some(l) = &query.label_selector {
            q.push(("label_selector", l.as_str()));
        }
        if let Some(f) = &query.field_selector {
            q.push(("field_selector", f.as_str()));
        }
        self.get(&["v1", "protectables", POD_TYPE, "instances"], &q)
            .await
    }

    /// `GET /v1/protectables/OS::Kubernetes::Pod/instances/{id}`: `id` is a uid or
    /// `<namespace>/<name>`.
    pub async fn protectable(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&["v1", "protectables", POD_TYPE, "instances", id], &[])
            .await
    }

    /// `GET /v1/protectables/OS::Kubernetes::Pod/instances/{id}/dependents`.
    pub async fn dependents(&self, id: &str) -> Result<Value, ClientError> {
        self.get(
            &[
                "v1",
                "protectables",
                POD_TYPE,
                "instances",
                id,
                "dependents",
            ],
            &[],
        )
        .await
    }

    /// `GET /v1/checkpoints`, optionally one plan's.
    pub async fn checkpoints(
        &self,
        plan: Option<&str>,
    ) -> Result<Vec<CheckpointSummary>, ClientError> {
        let q: Vec<(&str, &str)> = plan.map(|p| ("plan", p)).into_iter().collect();
        let items: Items<CheckpointSummary> = self.get(&["v1", "checkpoints"], &q).await?;
        Ok(items.items)
    }

    /// `GET /v1/checkpoints/{id}`: the checkpoint in full.
    pub async fn checkpoint(&self, id: &CheckpointId) -> Result<Value, ClientError> {
        self.get(&["v1", "checkpoints", &id.0], &[]).await
    }

    /// `POST /v1/checkpoints`: start a protect.
    pub async fn protect(&self, request: &ProtectRequest) -> Result<OperationRecord, ClientError> {
        self.start(Method::POST, &["v1", "checkpoints"], Some(body(request)?))
            .await
    }

    /// `DELETE /v1/checkpoints/{id}`: start a delete.
    pub async fn delete_checkpoint(
        &self,
        id: &CheckpointId,
    ) -> Result<OperationRecord, ClientError> {
        self.start(Method::DELETE, &["v1", "checkpoints", &id.0], None)
            .await
    }

    /// `POST /v1/restores`: start a restore.
    pub async fn restore(&self, request: &RestoreRequest) -> Result<OperationRecord, ClientError> {
        self.start(Method::POST, &["v1", "restores"], Some(body(request)?))
            .await
    }

    /// `GET /v1/restores`.
    pub async fn restores(&self) -> Result<Vec<RestoreSummary>, ClientError> {
        let items: Items<RestoreSummary> = self.get(&["v1", "restores"], &[]).await?;
        Ok(items.items)
    }

    /// `GET /v1/restores/{id}`: the restore in full.
    pub async fn restore_record(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&["v1", "restores", id], &[]).await
    }

    /// `GET /v1/plans`.
    pub async fn plans(&self) -> Result<PlanList, ClientError> {
        self.get(&["v1", "plans"], &[]).await
    }

    /// `POST /v1/plans/{name}/trigger`: run a plan now.
    pub async fn trigger_plan(&self, name: &str) -> Result<OperationRecord, ClientError> {
        self.start(Method::POST, &["v1", "plans", name, "trigger"], None)
            .await
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
            }),
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
        let url = c.url_of(&["v1", "protectables", POD_TYPE, "instances", "ns-1/web-0"]);
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
