//! `pods/{name}/exec` as kube-apiserver (and the kubelet behind it) answers it, the command run
//! as a local process instead of in a container.
//!
//! Before any upgrade, the pod is looked up as kube-apiserver's `streamLocation` does: no such
//! pod → 404 `pods "x" not found`; no container named and several in the pod, or a name that
//! is none of its containers → 400; a pod without `spec.nodeName` → 400 "does not have a host
//! assigned" (kube-apiserver has no kubelet to send it to). A request that is no WebSocket
//! upgrade → 400 "Upgrade request required". Then the WebSocket: the subprotocol is the first
//! the client offers of those served (`v5.channel.k8s.io`, `v4.channel.k8s.io`; only v4 after
//! [`super::FakeApiServer::serve_exec_protocols`] models a server older than 1.30), each channel
//! is announced with a one-byte message, stdout goes on channel 1 and stderr on channel 2 as
//! they come, and the kubelet's `metav1.Status` on channel 3 ends it: `Success`, `Failure` /
//! `NonZeroExitCode` with the `ExitCode` cause, or `InternalError` when the command could not
//! be started. Then the socket is closed.
//!
//! One difference from a cluster, on purpose: when the client goes away mid-command the local
//! process is killed (a kubelet leaves it running in the container), so that tests leave no
//! processes behind; [`ExecEnd::Disconnected`] records that it happened.

use std::process::Stdio;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::FakeApiServer;

/// The subprotocols kube-apiserver 1.30+ serves for exec that the stand-in speaks, in its
/// order of preference.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// One exec the stand-in accepted (upgraded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRecord {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container (resolved, when the request named none).
    pub container: String,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// The negotiated subprotocol.
    pub protocol: String,
    /// How it ended; `None` while it runs.
    pub end: Option<ExecEnd>,
}

/// How an exec ended, as the stand-in saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEnd {
    /// The command exited with this code and the status was sent.
    Exited(i32),
    /// The command could not be started (an `InternalError` status was sent).
    NotStarted,
    /// The client closed the connection before the command ended; the command was killed.
    Disconnected,
}

fn status_response(
    code: StatusCode,
    reason: &str,
    message: String,
    details: Option<Value>,
) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    (code, Json(body)).into_response()
}

fn bad_request(message: String) -> Response {
    status_response(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

/// `/api/v1/namespaces/{namespace}/pods/{pod}/exec`, any method: the pod is checked first,
/// then anything but a WebSocket upgrade (a `GET`) is told an upgrade is required, as
/// kube-apiserver does.
pub async fn handle(
    State(server): State<FakeApiServer>,
    Path((namespace, pod)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    server.log_http(&format!("{method} {}", uri.path()));
    let (mut container, mut command) = (String::new(), Vec::new());
    for (key, value) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "container" => container = value.into_owned(),
            "command" => command.push(value.into_owned()),
            _ => {}
        }
    }

    let Some(object) = server
        .store()
        .get("pods", &namespace, &pod)
        .map(|o| o.object.clone())
    else {
        return status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("pods \"{pod}\" not found"),
            Some(json!({"name": pod, "kind": "pods"})),
        );
    };
    let names = |field: &str| -> Vec<String> {
        object["spec"][field]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    if container.is_empty() {
        match containers.as_slice() {
            [only] => container = only.clone(),
            [] => return bad_request(format!("a container name must be specified for pod {pod}")),
            several => {
                return bad_request(format!(
                    "a container name must be specified for pod {pod}, choose one of: [{}]",
                    several.join(" ")
                ))
            }
        }
    } else if !containers
        .iter()
        .chain(&names("initContainers"))
        .chain(&names("ephemeralContainers"))
        .any(|c| *c == container)
    {
        return bad_request(format!("container {container} is not valid for pod {pod}"));
    }
    if object["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
        return bad_request(format!("pod {pod} does not have a host assigned"));
    }

    let Ok(upgrade) = upgrade else {
        return bad_request("Upgrade request required".into());
    };
    // The first protocol the client offers that is served, in the client's order, as
    // kube-apiserver's wsstream handshake picks it.
    let served = server
        .store()
        .exec_protocols
        .clone()
        .unwrap_or_else(|| PROTOCOLS.to_vec());
    let offered: Vec<String> = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .collect();
    let Some(protocol) = offered
        .iter()
        .find_map(|p| served.iter().find(|s| **s == p.as_str()).copied())
    else {
        return (
            StatusCode::BAD_REQUEST,
            format!("requested protocol(s) are not supported: {offered:?}; supports {served:?}"),
        )
            .into_response();
    };
    let index = {
        let mut s = server.store();
        s.execs.push(ExecRecord {
            namespace,
            pod,
            container,
            command: command.clone(),
            protocol: protocol.to_string(),
            end: None,
        });
        s.execs.len() - 1
    };
    upgrade
        .protocols([protocol])
        .on_upgrade(move |socket| async move {
            let end = session(socket, &command).await;
            server.store().execs[index].end = Some(end);
            server.changed();
        })
}

const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;

fn framed(channel: u8, data: &[u8]) -> Message {
    let mut frame = Vec::with_capacity(data.len() + 1);
    frame.push(channel);
    frame.extend_from_slice(data);
    Message::Binary(frame.into())
}

/// Runs `command`, streaming its output, and sends its status; how it ended.
async fn session(socket: WebSocket, command: &[String]) -> ExecEnd {
    let (mut tx, mut rx) = socket.split();
    // The channels are announced with an empty message each, as wsstream does on open.
    for channel in [STDOUT, STDERR, STATUS] {
        if tx.send(framed(channel, &[])).await.is_err() {
            return ExecEnd::Disconnected;
        }
    }
    let spawned = match command.split_first() {
        Some((program, args)) => tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("exec: \"{program}\": executable file not found in $PATH")
                }
                _ => format!("exec: \"{program}\": {e}"),
            }),
        None => Err("no command given".to_string()),
    };
    let mut child = match spawned {
        Ok(child) => child,
        Err(why) => {
            // The kubelet's answer when the runtime cannot start the process.
            let message = format!("error executing command in container: {why}");
            let status = json!({
                "metadata": {}, "status": "Failure",
                "message": format!("Internal error occurred: {message}"),
                "reason": "InternalError",
                "details": {"causes": [{"message": message}]}, "code": 500
            });
            let _ = tx.send(framed(STATUS, status.to_string().as_bytes())).await;
            let _ = tx.close().await;
            return ExecEnd::NotStarted;
        }
    };
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return ExecEnd::NotStarted;
    };
    let (mut out_open, mut err_open) = (true, true);
    let (mut out_buf, mut err_buf) = ([0u8; 8192], [0u8; 8192]);
    while out_open || err_open {
        let sent = tokio::select! {
            n = out.read(&mut out_buf), if out_open => match n {
                Ok(0) | Err(_) => { out_open = false; Ok(()) }
                Ok(n) => tx.send(framed(STDOUT, &out_buf[..n])).await,
            },
            n = err.read(&mut err_buf), if err_open => match n {
                Ok(0) | Err(_) => { err_open = false; Ok(()) }
                Ok(n) => tx.send(framed(STDERR, &err_buf[..n])).await,
            },
            // The client sends nothing without stdin; anything ending its side ends the exec.
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    return ExecEnd::Disconnected; // `child` is killed on drop
                }
                Some(Ok(_)) => Ok(()),
            },
        };
        if sent.is_err() {
            return ExecEnd::Disconnected;
        }
    }
    let waited = loop {
        tokio::select! {
            waited = child.wait() => break waited,
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return ExecEnd::Disconnected,
                Some(Ok(_)) => {}
            },
        }
    };
    let code = match waited {
        Ok(status) => status.code().unwrap_or_else(|| {
            // Killed by a signal: runtimes report 128 + the signal, as a shell does.
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        }),
        Err(_) => -1,
    };
    let status = if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({
            "metadata": {}, "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: command '{}' exited with {code}",
                command.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
        })
    };
    if tx
        .send(framed(STATUS, status.to_string().as_bytes()))
        .await
        .is_err()
    {
        return ExecEnd::Disconnected;
    }
    let _ = tx.close().await;
    ExecEnd::Exited(code)
}
