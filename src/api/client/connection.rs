//! One connection to an agent: the settings read once (URL, token, CA, client
//! certificate), one request with its error mapping, and the following of a long
//! operation until it ends.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ClientError, ClientSettings};
use crate::api::{
    code_of_status, Accepted, ErrorBody, OperationRecord, OperationState, PODBANK_JSON,
};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

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

impl Client {
    /// A client for the agent at `settings.url`; reads the token and certificates now, so
    /// that a bad file is reported before anything is sent.
    pub fn new(settings: &ClientSettings) -> Result<Client, ClientError> {
        let base = base_url(&settings.url)?;
        let token = match &settings.token_file {
            Some(path) => Some(read_token(path)?),
            None => None,
        };
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("podbank/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_file {
            for cert in read_ca(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(identity) = read_identity(settings)? {
            builder = builder.identity(identity);
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

    pub(super) fn url_of(&self, segments: &[&str]) -> Url {
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
        // podbank's own views of the resources, not Karbor's bodies.
        req = req.header(reqwest::header::ACCEPT, PODBANK_JSON);
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
        Err(api_error(method.as_str(), path, status.as_u16(), &bytes))
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        self.call(Method::GET, segments, query, None, StatusCode::OK)
            .await
    }

    /// A GET whose body is the answer whatever the status (`/readyz` is 503 when not
    /// ready, with the checks).
    pub(super) async fn get_status<T: DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<T, ClientError> {
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

    pub(super) async fn start(
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

/// The error an answer of `status` says: podbank's error body (`{"error": {code,
/// message}}`), or Karbor's fault body (`{"badRequest": {"code": 400, "message": ...}}`)
/// whose status gives the code, or else the start of whatever came.
fn api_error(method: &str, path: String, status: u16, bytes: &[u8]) -> ClientError {
    let (code, message) = match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(b) => (b.error.code, b.error.message),
        Err(_) => {
            let fault = serde_json::from_slice::<Value>(bytes).ok().and_then(|v| {
                let obj = v.as_object()?;
                let (_, detail) = obj.iter().next().filter(|_| obj.len() == 1)?;
                detail.get("message")?.as_str().map(String::from)
            });
            match fault {
                Some(m) => (code_of_status(status).to_string(), m),
                None => (
                    "http".to_string(),
                    String::from_utf8_lossy(bytes)
                        .chars()
                        .take(300)
                        .collect::<String>()
                        .trim()
                        .to_string(),
                ),
            }
        }
    };
    ClientError::Api {
        method: method.to_string(),
        path,
        status,
        code,
        message,
    }
}

/// The agent's base URL: `http` or `https`, a path prefix kept without a trailing empty
/// segment (an agent behind a proxy).
fn base_url(url: &str) -> Result<Url, ClientError> {
    let mut base = Url::parse(url).map_err(|e| {
        ClientError::Settings(format!(
            "agent URL {url:?} is not a URL ({e}): expected http://HOST:PORT or \
             https://HOST:PORT"
        ))
    })?;
    if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
        return Err(ClientError::Settings(format!(
            "agent URL {url:?}: expected http://HOST:PORT or https://HOST:PORT"
        )));
    }
    if let Ok(mut segments) = base.path_segments_mut() {
        segments.pop_if_empty();
    }
    Ok(base)
}

/// The bearer token in `path`, trimmed; an empty one is refused.
fn read_token(path: &PathBuf) -> Result<String, ClientError> {
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
    Ok(token)
}

/// The CA certificates in the PEM file `path` (at least one).
fn read_ca(path: &PathBuf) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let pem = read_file("CA file", path)?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| ClientError::Settings(format!("CA file {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ClientError::Settings(format!(
            "CA file {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// The client certificate and key for mTLS, if the settings name them (both or neither).
fn read_identity(settings: &ClientSettings) -> Result<Option<reqwest::Identity>, ClientError> {
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
            Ok(Some(identity))
        }
        (None, None) => Ok(None),
        _ => Err(ClientError::Settings(
            "a client certificate needs both the certificate and the key file".into(),
        )),
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
        let url = c.url_of(&[
            "v1",
            "protectables",
            "OS::Kubernetes::Pod",
            "instances",
            "ns-1/web-0",
        ]);
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
