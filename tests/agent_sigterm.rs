//! SIGTERM during a checkpoint: the agent stops taking work, lets the checkpoint finish
//! within the grace period, and `run` returns. Its own test binary, because it sends
//! SIGTERM to the test process itself.

// Tests, examples and benchmarks: a panic with the value is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use podbank::agent::{run, shutdown_signal, AgentConfig};
use support::engine::{wait_for, MemoryEngine};
use support::etcd::{free_port, TestEtcd};
use support::http::request;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_checkpoint_finishes_it_then_stops() {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "sig-token").expect("token");
    let port = free_port();
    let config = AgentConfig::from_yaml(
        &serde_yaml::from_str(&format!(
            r#"
listen: 127.0.0.1:{port}
token_file: {}
election: {{ ttl: 3 }}
grace_period: 30s
plans:
  - name: nightly
    schedule: "0 2 * * *"
    options: {{ backup_name: nightly, description: n }}
"#,
            token.display()
        ))
        .expect("yaml"),
    )
    .expect("config");
    let engine = MemoryEngine::new("sig", 3);
    engine.set_delay(Duration::from_millis(1500));
    let signal = shutdown_signal().expect("signal handlers");
    let client = etcd.connect().await;
    let agent = {
        let engine = engine.clone();
        tokio::spawn(async move { run(&config, engine, &client, signal).await })
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_for("the agent listens", Duration::from_secs(10), || {
        std::net::TcpStream::connect(addr).is_ok()
    })
    .await;
    let (status, body) = request(
        addr,
        "POST",
        support::http::CHECKPOINTS,
        Some("sig-token"),
        Some(serde_json::json!({"run_plan": "nightly"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    wait_for("the protect started", Duration::from_secs(5), || {
        engine.with_bank(|b| b.protects.len() == 1)
    })
    .await;

    let sent = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let result = tokio::time::timeout(Duration::from_secs(20), agent)
        .await
        .expect("run returns after SIGTERM")
        .expect("no panic");
    assert!(result.is_ok(), "{result:?}");
    eprintln!("run returned {:?} after SIGTERM", sent.elapsed());
    engine.with_bank(|b| {
        assert_eq!(
            b.checkpoints.len(),
            1,
            "the running checkpoint was finished"
        );
        assert!(b.protects[0].checkpoint.is_some());
    });
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening"
    );
}
