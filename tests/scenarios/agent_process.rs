//! Real `podbank agent` processes on a real etcd with a shared local bank: exactly one runs
//! the schedule; SIGKILL of the leader moves the schedule to the other; SIGTERM stops an
//! agent cleanly, and even one killed mid-checkpoint leaves no partial checkpoint
//! (`podbank checkpoints verify --all` stays clean).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::agent::{AgentProc, TOKEN};
use crate::support::etcd::TestEtcd;
use crate::support::http::{request, CHECKPOINTS};
use podbank_seed::{self as seed, SeedPlan};
use serde_json::Value;

async fn setup(pods: usize, schedule: &str, grace: &str) -> (TestEtcd, tempfile::TempDir) {
    let etcd = TestEtcd::start();
    seed::write(
        &etcd.connect().await,
        seed::generate(&SeedPlan {
            pods,
            ..SeedPlan::default()
        }),
    )
    .await
    .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), TOKEN).expect("token");
    std::fs::write(
        dir.path().join("podbank.yaml"),
        format!(
            r#"
agent:
  token_file: {}
  election: {{ key: /podbank/election/process-test, ttl: 3 }}
  grace_period: {grace}
  plans:
    - name: fast
      schedule: "{schedule}"
      options: {{ backup_name: fast, description: process test }}
      retention: {{ keep_last: 3 }}
"#,
            dir.path().join("token").display()
        ),
    )
    .expect("config");
    (etcd, dir)
}

/// `podbank checkpoints verify --all` on the bank, and the checkpoints it lists.
fn verify_and_list(dir: &Path) -> Vec<Value> {
    let bank = dir.join("bank");
    let out = Command::new(crate::support::podbank_bin())
        .args(["checkpoints", "verify", "--all", "--bank"])
        .arg(&bank)
        .env_remove("PODBANK_CONFIG")
        .output()
        .expect("verify");
    assert!(
        out.status.success(),
        "verify --all: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(crate::support::podbank_bin())
        .args(["checkpoints", "list", "-o", "json", "--bank"])
        .arg(&bank)
        .env_remove("PODBANK_CONFIG")
        .output()
        .expect("list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    match v {
        Value::Array(a) => a,
        other => other["items"].as_array().cloned().unwrap_or_default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agent_processes_one_schedule_and_sigkill_failover() {
    let (etcd, dir) = setup(100, "* * * * * *", "30s").await;
    let mut a = AgentProc::spawn(&etcd, dir.path(), "node-a");
    let mut b = AgentProc::spawn(&etcd, dir.path(), "node-b");
    a.wait_listening().await;
    b.wait_listening().await;

    // One leader; only it runs the plan.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (leader, follower) = loop {
        let (la, lb) = (a.leads().await, b.leads().await);
        assert!(!(la && lb), "two leaders");
        if la {
            break (a, b);
        }
        if lb {
            break (b, a);
        }
        assert!(
            Instant::now() < deadline,
            "no leader:\n{}\n{}",
            a.log(),
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut follower = follower;
    let deadline = Instant::now() + Duration::from_secs(20);
    while leader
        .plan_runs()
        .await
        .iter()
        .filter(|o| o["state"] == "succeeded")
        .count()
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "leader ran no plans:\n{}",
            leader.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        follower.plan_runs().await.is_empty(),
        "the follower ran a schedule"
    );
    assert!(!follower.leads().await);

    // SIGKILL the leader; the follower takes over and runs the schedule.
    let killed = Instant::now();
    leader.signal("-KILL");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !follower.leads().await {
        assert!(
            Instant::now() < deadline,
            "no takeover:\n{}",
            follower.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = killed.elapsed();
    while follower
        .plan_runs()
        .await
        .iter()
        .all(|o| o["state"] != "succeeded")
    {
        assert!(
            Instant::now() < deadline,
            "new leader ran no plan:\n{}",
            follower.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "takeover {takeover:?} after SIGKILL (TTL 3 s), first run by the new leader after {:?}",
        killed.elapsed()
    );
    assert!(takeover < Duration::from_millis(4500), "{takeover:?}");
    drop(leader);

    // SIGTERM: a clean exit.
    follower.signal("-TERM");
    let status = follower.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status}:\n{}", follower.log());

    // The bank: verify is clean; every visible checkpoint is complete; retention held
    // (keep_last 3, plus at most the run the SIGKILL cut short was never visible).
    let listed = verify_and_list(dir.path());
    assert!(!listed.is_empty());
    assert!(listed.len() <= 3, "{listed:?}");
    for c in &listed {
        assert_eq!(c["status"], "available", "{c}");
        assert_eq!(c["plan"], "fast");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_no_grace_mid_checkpoint_leaves_no_partial_checkpoint() {
    // 2000 pods: a protect takes long enough to be cut short. Never scheduled by time.
    let (etcd, dir) = setup(2000, "0 0 1 1 *", "0s").await;
    let mut a = AgentProc::spawn(&etcd, dir.path(), "node-a");
    a.wait_listening().await;
    let (status, acc) = request(
        a.addr,
        "POST",
        CHECKPOINTS,
        Some(TOKEN),
        Some(serde_json::json!({"run_plan": "fast"})),
    )
    .await;
    assert_eq!(status, 202, "{acc}");
    // Signal while the operation runs.
    let url = acc["statusUrl"].as_str().expect("url").to_string();
    let (_, op) = a.get(&url).await;
    let was_running = op["state"] == "running";
    a.signal("-TERM");
    let status = a.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status}:\n{}", a.log());
    assert!(
        was_running,
        "the protect ended before the signal: use more pods"
    );
    let log = a.log();
    assert!(
        log.contains("operations cancelled at the end of the grace period"),
        "{log}"
    );
    let listed = verify_and_list(dir.path());
    assert!(
        listed.is_empty(),
        "a cancelled checkpoint is visible: {listed:?}"
    );
    for c in &listed {
        assert_eq!(c["status"], "available", "{c}");
    }
}
