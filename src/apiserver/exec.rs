//! Running a command in a pod's container through the API server's `pods/{name}/exec`
//! subresource, as `kubectl exec` does: a WebSocket speaking the channel protocol
//! (`v5.channel.k8s.io`, else `v4.channel.k8s.io`; kube's `ws` feature negotiates it), stdout
//! on channel 1, stderr on channel 2, and the exit status as a `metav1.Status` on channel 3.
//!
//! What this gives is one typed answer, [`ExecOutput`]: how the command ended
//! ([`ExecExit`]), its output up to [`EXEC_OUTPUT_LIMIT`] bytes a stream, and how long it took.
//! A command that ends badly (non-zero exit, past its timeout, could not start) is an answer,
//! not an error; [`ApiError`] is kept for what stopped the command from being asked for at all
//! (no such pod or container, RBAC, a broken connection).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status as MetaStatus;
use kube::api::{AttachParams, AttachedProcess};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{ApiError, ApiServer};

/// How much of each of stdout and stderr [`ApiServer::exec`] keeps; the rest is read (so the
/// command is never blocked on a full pipe) and counted, not kept.
pub const EXEC_OUTPUT_LIMIT: usize = 64 * 1024;

/// How a command run by [`ApiServer::exec`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecExit {
    /// It exited with this code (the API server's `Success` status is 0, `NonZeroExitCode`
    /// carries the code).
    Code(i32),
    /// It was still running when the timeout passed: the connection was dropped. On a real
    /// cluster the process may go on running in the container (the kubelet does not kill an
    /// exec whose stream went away); only the wait for it was cut off.
    TimedOut,
    /// The status channel said `Failure` without an exit code: the command could not be
    /// started (no such executable, container not running), as the container runtime put it.
    Failed {
        /// The status's `reason` (`InternalError`, ...).
        reason: String,
        /// The status's `message`.
        message: String,
    },
    /// The connection closed before an exit status came: whether the command ran, and how,
    /// is unknown.
    Lost,
}

impl ExecExit {
    /// Whether the command ran and exited 0.
    pub fn success(&self) -> bool {
        matches!(self, ExecExit::Code(0))
    }
}

impl std::fmt::Display for ExecExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecExit::Code(code) => write!(f, "exit code {code}"),
            ExecExit::TimedOut => f.write_str("timed out"),
            ExecExit::Failed { reason, message } => write!(f, "failed ({reason}): {message}"),
            ExecExit::Lost => f.write_str("connection closed before the exit status"),
        }
    }
}

/// What [`ApiServer::exec`] saw of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// How it ended.
    pub exit: ExecExit,
    /// Its stdout, the first [`EXEC_OUTPUT_LIMIT`] bytes.
    pub stdout: Vec<u8>,
    /// Its stderr, the first [`EXEC_OUTPUT_LIMIT`] bytes.
    pub stderr: Vec<u8>,
    /// Bytes of stdout read past the limit and not kept (0: `stdout` is whole).
    pub stdout_dropped: u64,
    /// Bytes of stderr read past the limit and not kept (0: `stderr` is whole).
    pub stderr_dropped: u64,
    /// From the request to the exit status (or to the timeout).
    pub duration: Duration,
}

impl ExecOutput {
    /// Whether stdout or stderr was cut at [`EXEC_OUTPUT_LIMIT`].
    pub fn truncated(&self) -> bool {
        self.stdout_dropped > 0 || self.stderr_dropped > 0
    }
}

/// What a command wrote.
#[derive(Default)]
struct Output {
    stdout: Captured,
    stderr: Captured,
}

/// One output stream, kept up to the limit.
#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    dropped: u64,
}

impl Captured {
    /// Reads `reader` to its end (the end of the stream, or of the connection).
    async fn drain(&mut self, mut reader: impl AsyncRead + Unpin) -> std::io::Result<()> {
        let mut chunk = [0u8; 8192];
        loop {
            let n = reader.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            let room = EXEC_OUTPUT_LIMIT.saturating_sub(self.kept.len()).min(n);
            self.kept.extend_from_slice(&chunk[..room]);
            self.dropped += (n - room) as u64;
        }
    }
}

/// The exit status as kubectl reads it from the status channel (client-go's
/// `remotecommand` error decoder for v4 and later).
fn exit_of(status: MetaStatus) -> ExecExit {
    let reason = status.reason.unwrap_or_default();
    let message = status.message.unwrap_or_default();
    match status.status.as_deref() {
        Some("Success") => ExecExit::Code(0),
        Some("Failure") if reason == "NonZeroExitCode" => {
            let cause = status
                .details
                .and_then(|d| d.causes)
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"));
            match cause.and_then(|c| c.message) {
                Some(code) => match code.trim().parse::<i32>() {
                    Ok(code) => ExecExit::Code(code),
                    Err(_) => ExecExit::Failed {
                        reason,
                        message: format!(
                            "error stream protocol error: invalid exit code {code:?}: {message}"
                        ),
                    },
                },
                None => ExecExit::Failed {
                    reason,
                    message: format!("error stream protocol error: no ExitCode cause: {message}"),
                },
            }
        }
        Some("Failure") => ExecExit::Failed { reason, message },
        other => ExecExit::Failed {
            reason,
            message: format!(
                "error stream protocol error: unknown status {:?}: {message}",
                other.unwrap_or_default()
            ),
        },
    }
}

impl ApiServer {
    /// Run `command` in `container` of pod `namespace/pod`, as `kubectl exec` does, waiting at
    /// most `timeout` for it (connecting included).
    ///
    /// # Arguments
    ///
    /// * `namespace`, `pod`, `container` - where to run it; the container must be named (a hook
    ///   knows which container it is for; the API server would refuse an unnamed one in a pod
    ///   of several).
    /// * `command` - the executable and its arguments, not run through a shell.
    /// * `timeout` - how long the command may take; past it the connection is dropped and the
    ///   answer is [`ExecExit::TimedOut`] with the output seen so far.
    ///
    /// Returns how the command ended and its output. Errors: an empty command; the API
    /// server's refusal (no such pod: [`ApiError::NotFound`]; no such container: HTTP 400 in
    /// [`ApiError::Other`]; RBAC: [`ApiError::Forbidden`]), each naming the pod and container;
    /// a connection that broke mid-stream ([`ApiError::Transport`]). Nothing is retried: a
    /// command is not known to be safe to run twice.
    pub async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, ApiError> {
        let name = format!("{namespace}/{pod} (container {container})");
        if command.is_empty() {
            return Err(ApiError::EmptyCommand { name });
        }
        let started = Instant::now();
        let mut output = Output::default();
        let run = self.exec_streams(namespace, pod, container, command, &name, &mut output);
        // Past the deadline the future is dropped with the attached process in it, which
        // aborts its message loop and so closes the WebSocket: the cut-off kubectl's
        // `--request-timeout` gives, and what is captured until then stays in the buffers.
        let exit = tokio::time::timeout(timeout, run)
            .await
            .unwrap_or(Ok(ExecExit::TimedOut))?;
        Ok(ExecOutput {
            exit,
            stdout: output.stdout.kept,
            stderr: output.stderr.kept,
            stdout_dropped: output.stdout.dropped,
            stderr_dropped: output.stderr.dropped,
            duration: started.elapsed(),
        })
    }

    /// Connects, reads both streams to their end into `output` (which the caller owns, so that
    /// what came before a timeout is kept), and reads the exit status.
    async fn exec_streams(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        command: &[String],
        name: &str,
        output: &mut Output,
    ) -> Result<ExecExit, ApiError> {
        let transport = |e: Box<dyn std::error::Error + Send + Sync>| ApiError::Transport {
            verb: "exec",
            kind: "Pod",
            name: name.to_string(),
            source: e,
        };
        let pods = kube::Api::<Pod>::namespaced(self.client.clone(), namespace);
        let params = AttachParams {
            container: Some(container.to_string()),
            stdin: false,
            stdout: true,
            stderr: true,
            tty: false,
            // Larger pipes than the 1 KiB default: fewer wake-ups for a chatty command.
            max_stdout_buf_size: Some(16 * 1024),
            max_stderr_buf_size: Some(16 * 1024),
            ..AttachParams::default()
        };
        let mut attached: AttachedProcess =
            match pods.exec(pod, command.iter().cloned(), &params).await {
                Ok(attached) => attached,
                // The API server refused before upgrading (no such pod or container, RBAC): its
                // `Status` body, which kube hands over parsed.
                Err(kube::Error::Api(status)) => {
                    let code = http::StatusCode::from_u16(status.code)
                        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                    return Err(ApiServer::refusal(
                        "exec",
                        "Pod",
                        name,
                        code,
                        &status.reason,
                        status.message.clone(),
                    ));
                }
                Err(e) => return Err(transport(Box::new(e))),
            };
        let status = attached.take_status();
        let (out, err) = (attached.stdout(), attached.stderr());
        let Output { stdout, stderr } = output;
        // Both streams at once: a command that fills stderr while stdout is read would block.
        let (read_out, read_err) = tokio::join!(
            async {
                match out {
                    Some(r) => stdout.drain(r).await,
                    None => Ok(()),
                }
            },
            async {
                match err {
                    Some(r) => stderr.drain(r).await,
                    None => Ok(()),
                }
            },
        );
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        // The message loop's own error (a broken WebSocket) says more than the pipes' EOF.
        attached.join().await.map_err(|e| transport(Box::new(e)))?;
        read_out.and(read_err).map_err(|e| transport(Box::new(e)))?;
        Ok(status.map_or(ExecExit::Lost, exit_of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: serde_json::Value) -> MetaStatus {
        serde_json::from_value(json).expect("a Status")
    }

    #[test]
    fn exit_status_as_kubectl_reads_it() {
        assert_eq!(
            exit_of(status(
                serde_json::json!({"metadata": {}, "status": "Success"})
            )),
            ExecExit::Code(0)
        );
        let failed = serde_json::json!({
            "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}
        });
        assert_eq!(exit_of(status(failed)), ExecExit::Code(3));
        let no_cause =
            serde_json::json!({"status": "Failure", "reason": "NonZeroExitCode", "details": {}});
        assert!(matches!(exit_of(status(no_cause)), ExecExit::Failed { .. }));
        let internal = serde_json::json!({
            "status": "Failure", "reason": "InternalError",
            "message": "Internal error occurred: exec: \"nope\": executable file not found in $PATH"
        });
        match exit_of(status(internal)) {
            ExecExit::Failed { reason, message } => {
                assert_eq!(reason, "InternalError");
                assert!(message.contains("nope"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(ExecExit::Code(0).success());
        assert!(!ExecExit::Code(1).success());
        assert!(!ExecExit::TimedOut.success());
    }

    #[tokio::test]
    async fn output_is_kept_up_to_the_limit_and_the_rest_counted() {
        let data = vec![b'x'; EXEC_OUTPUT_LIMIT + 1000];
        let mut captured = Captured::default();
        captured.drain(&data[..]).await.expect("drain");
        assert_eq!(captured.kept.len(), EXEC_OUTPUT_LIMIT);
        assert_eq!(captured.dropped, 1000);
    }
}
