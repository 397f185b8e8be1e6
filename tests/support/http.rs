//! A small HTTP/1 client for tests that talk to a running agent over TCP.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// What asks the agent for podbank's own representation (what the CLI's `--agent` reads).
pub const PODBANK_JSON: &str = "application/vnd.podbank+json";

/// The Karbor checkpoints of podbank's provider, in the project the CLI names by default.
pub const CHECKPOINTS: &str =
    "/v1/podbank/providers/b6a1c0de-7f3e-4c55-9a2d-0d0b0a4b0d01/checkpoints";

/// Send `method path` to `addr` with an optional bearer token and JSON body, asking for
/// podbank's representation; returns the status and the body (JSON if it parses, else a
/// JSON string).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    send(addr, method, path, token, body, Some(PODBANK_JSON)).await
}

/// [`request`] asking for Karbor's bodies, as python-karborclient does.
#[allow(dead_code)]
pub async fn karbor_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    send(addr, method, path, token, body, None).await
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    accept: Option<&str>,
) -> (u16, Value) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Full::new(Bytes::from(b.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let resp = client
        .request(req.body(body).expect("request"))
        .await
        .expect("HTTP request to the agent");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Send `method path` to `addr` over plain HTTP; the status, or why there was none.
pub async fn try_request(addr: SocketAddr, method: &str, path: &str) -> Result<u16, String> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    client
        .request(req)
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}
