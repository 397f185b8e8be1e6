//! podbank's exec through the API server's `pods/{name}/exec` subresource against the
//! stand-in, which runs the command as a local process behind kube-apiserver's WebSocket
//! channel protocol: output and exit status as kubectl reads them, the timeout, the refusals.

use std::time::Duration;

use crate::support::apiserver::exec::ExecEnd;
use crate::support::apiserver::FakeApiServer;
use podbank::apiserver::{ApiError, ApiServer, ExecExit, KubeSettings, EXEC_OUTPUT_LIMIT};

/// A stand-in with pod `demo/db` (containers `db` and `sidecar`, scheduled on a node) and a
/// client of it.
async fn cluster() -> (FakeApiServer, ApiServer, tempfile::TempDir) {
    let fake = FakeApiServer::start(&["demo"]).await;
    fake.create_json(
        "pods",
        "demo",
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "db", "namespace": "demo"},
            "spec": {
                "nodeName": "node-1",
                "containers": [
                    {"name": "db", "image": "postgres:17"},
                    {"name": "sidecar", "image": "busybox"}
                ]
            }
        }),
    )
    .expect("pod");
    let dir = tempfile::tempdir().expect("tempdir");
    let api = ApiServer::connect(&KubeSettings {
        kubeconfig: Some(fake.write_kubeconfig(dir.path())),
        context: None,
    })
    .await
    .expect("client");
    (fake, api, dir)
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn stdout_stderr_and_exit_status() {
    let (fake, api, _dir) = cluster().await;

    let ok = api
        .exec(
            "demo",
            "db",
            "db",
            &sh("echo flushed; echo note >&2"),
            TIMEOUT,
        )
        .await
        .expect("exec");
    assert_eq!(ok.exit, ExecExit::Code(0));
    assert!(ok.exit.success());
    assert_eq!(ok.stdout, b"flushed\n");
    assert_eq!(ok.stderr, b"note\n");
    assert!(!ok.truncated());

    let failed = api
        .exec(
            "demo",
            "db",
            "sidecar",
            &sh("echo half; echo broken >&2; exit 3"),
            TIMEOUT,
        )
        .await
        .expect("exec");
    assert_eq!(failed.exit, ExecExit::Code(3));
    assert_eq!(failed.stdout, b"half\n");
    assert_eq!(failed.stderr, b"broken\n");

    let execs = fake.execs();
    assert_eq!(execs.len(), 2);
    assert_eq!(execs[0].container, "db");
    assert_eq!(execs[1].container, "sidecar");
    assert_eq!(execs[1].command, sh("echo half; echo broken >&2; exit 3"));
    // kube-apiserver 1.30+ speaks v5, which the client prefers.
    assert!(execs.iter().all(|e| e.protocol == "v5.channel.k8s.io"));
    assert_eq!(execs[1].end, Some(ExecEnd::Exited(3)));
}

#[tokio::test]
async fn an_older_server_is_spoken_to_in_v4() {
    let (fake, api, _dir) = cluster().await;
    fake.serve_exec_protocols(&["v4.channel.k8s.io"]);
    let out = api
        .exec("demo", "db", "db", &sh("echo v4; exit 7"), TIMEOUT)
        .await
        .expect("exec");
    assert_eq!(out.exit, ExecExit::Code(7));
    assert_eq!(out.stdout, b"v4\n");
    assert_eq!(fake.execs()[0].protocol, "v4.channel.k8s.io");
}

#[tokio::test]
async fn past_its_timeout_a_command_is_cut_off() {
    let (fake, api, _dir) = cluster().await;
    let timeout = Duration::from_secs(3);
    let out = api
        .exec(
            "demo",
            "db",
            "db",
            &sh("echo frozen; exec sleep 120"),
            timeout,
        )
        .await
        .expect("a timeout is an answer, not an error");
    assert_eq!(out.exit, ExecExit::TimedOut);
    assert!(!out.exit.success());
    // What came before the cut is kept.
    assert_eq!(out.stdout, b"frozen\n");
    assert!(out.duration >= timeout, "{:?}", out.duration);
    assert!(out.duration < Duration::from_secs(60), "{:?}", out.duration);
    // The connection was dropped: the server saw the client go.
    let gone = fake
        .wait_for(Duration::from_secs(20), |s| {
            s.execs()
                .first()
                .is_some_and(|e| e.end == Some(ExecEnd::Disconnected))
        })
        .await;
    assert!(gone, "{:?}", fake.execs());
}

#[tokio::test]
async fn output_is_bounded_and_the_rest_counted() {
    let (_fake, api, _dir) = cluster().await;
    let out = api
        .exec("demo", "db", "db", &sh("head -c 100000 /dev/zero"), TIMEOUT)
        .await
        .expect("exec");
    assert_eq!(out.exit, ExecExit::Code(0));
    assert_eq!(out.stdout.len(), EXEC_OUTPUT_LIMIT);
    assert_eq!(out.stdout_dropped, (100_000 - EXEC_OUTPUT_LIMIT) as u64);
    assert!(out.truncated());
}

#[tokio::test]
async fn a_command_that_cannot_start_is_a_failed_exit() {
    let (_fake, api, _dir) = cluster().await;
    let out = api
        .exec("demo", "db", "db", &["no-such-hook".to_string()], TIMEOUT)
        .await
        .expect("exec");
    match &out.exit {
        ExecExit::Failed { reason, message } => {
            assert_eq!(reason, "InternalError");
            assert!(message.contains("no-such-hook"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unknown_pod_container_or_unscheduled_pod_are_errors_naming_them() {
    let (fake, api, _dir) = cluster().await;

    let err = api
        .exec("demo", "nope", "db", &sh("true"), TIMEOUT)
        .await
        .expect_err("no such pod");
    assert!(matches!(err, ApiError::NotFound { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("demo/nope"), "{text}");
    assert!(text.contains("pods \"nope\" not found"), "{text}");

    let err = api
        .exec("demo", "db", "postgres", &sh("true"), TIMEOUT)
        .await
        .expect_err("no such container");
    assert!(matches!(err, ApiError::Other { code: 400, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("demo/db (container postgres)"), "{text}");
    assert!(
        text.contains("container postgres is not valid for pod db"),
        "{text}"
    );

    fake.create_json(
        "pods",
        "demo",
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "pending", "namespace": "demo"},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]}
        }),
    )
    .expect("pod");
    let err = api
        .exec("demo", "pending", "app", &sh("true"), TIMEOUT)
        .await
        .expect_err("not scheduled");
    assert!(
        err.to_string()
            .contains("pod pending does not have a host assigned"),
        "{err}"
    );

    let err = api
        .exec("demo", "db", "db", &[], TIMEOUT)
        .await
        .expect_err("nothing to run");
    assert!(matches!(err, ApiError::EmptyCommand { .. }), "{err}");
    assert!(err.to_string().contains("demo/db (container db)"), "{err}");

    // Without the WebSocket upgrade the API server will not run anything either.
    let plain = reqwest::get(format!(
        "{}/api/v1/namespaces/demo/pods/db/exec?container=db&command=true",
        fake.url()
    ))
    .await
    .expect("GET");
    assert_eq!(plain.status(), 400);
    let status: serde_json::Value = plain.json().await.expect("a Status");
    assert_eq!(status["message"], "Upgrade request required");

    // None of them got as far as running anything.
    assert!(fake.execs().is_empty(), "{:?}", fake.execs());
}
