//! The agent as a whole on a real etcd: schedules fire on the leader only, retention
//! prunes without ever breaking an incremental chain, a crashed leader's schedules move to
//! the other replica, and shutdown drains or cancels running work.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::engine::{wait_for, Bank, MemoryEngine};
use crate::support::etcd::TestEtcd;
use crate::support::http::request;
use podbank::agent::operations::OperationState;
use podbank::agent::{Agent, AgentConfig, AgentError};
use podbank::api::Trigger;
use podbank::model::CheckpointId;
use serde_json::Value;

const TOKEN: &str = "schedule-test-token";

fn config(dir: &Path, identity: &str, plans: &str, grace: &str) -> AgentConfig {
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("token");
    let text = format!(
        r#"
listen: 127.0.0.1:0
token_file: {}
election: {{ key: /podbank/election/schedule-test, ttl: 3 }}
identity: {identity}
grace_period: {grace}
plans:
{plans}
"#,
        token.display()
    );
    AgentConfig::from_yaml(&serde_yaml::from_str(&text).expect("yaml")).expect("config")
}

const EVERY_SECOND: &str = r#"
  - name: fast
    pods: [shop/web-0, shop/db-0]
    schedule: "* * * * * *"
    options: { backup_name: fast, description: every second }
    retention: { keep_last: 2 }
"#;

/// Every live checkpoint's incremental parents are live: no chain is broken.
fn chains_whole(bank: &Bank) -> Result<(), String> {
    for c in bank.checkpoints.values() {
        for v in &c.volumes {
            if let Some(p) = &v.parent_checkpoint_id {
                if !bank.checkpoints.contains_key(p) {
                    return Err(format!("{} depends on deleted {p}", c.id));
                }
            }
        }
    }
    Ok(())
}

fn completed(bank: &Bank) -> usize {
    bank.protects
        .iter()
        .filter(|p| p.checkpoint.is_some())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_second_schedule_makes_checkpoints_and_retention_prunes_whole_chains() {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // Every 3rd backup of a volume is full: chains of 3.
    let engine = MemoryEngine::new("solo", 3);
    let started = Instant::now();
    let agent = Agent::start(
        &config(dir.path(), "solo", EVERY_SECOND, "10s"),
        engine.clone(),
        &etcd.connect().await,
    )
    .await
    .expect("agent starts");

    // Watch the chains at every step while 8 checkpoints are taken.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (done, whole, live) =
            engine.with_bank(|b| (completed(b), chains_whole(b), b.checkpoints.len()));
        if let Err(e) = whole {
            panic!("broken chain: {e}");
        }
        // keep_last 2 with chains of 3: at most the 2 newest plus the rest of their
        // chain, i.e. 4, plus one just written before its retention pass.
        assert!(live <= 5, "{live} checkpoints live");
        if done >= 8 {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} checkpoints in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("8 scheduled checkpoints in {:?}", started.elapsed());
    // Let the last run's retention finish, then stop.
    wait_for("no run in progress", Duration::from_secs(5), || {
        agent.service().operations().running() == 0
    })
    .await;
    let cancelled = agent.shutdown().await.expect("shutdown");
    assert!(cancelled.is_empty());

    engine.with_bank(|b| {
        chains_whole(b).expect("chains whole at the end");
        assert!(
            b.tombstoned.is_empty(),
            "retention tried a parent before its child: {:?}",
            b.tombstoned
        );
        let first: CheckpointId = "cp-0001".parse().expect("id");
        assert!(b.deletes.contains(&first), "oldest pruned: {:?}", b.deletes);
        // The two newest are kept.
        let mut ids: Vec<&CheckpointId> = b.checkpoints.keys().collect();
        ids.sort();
        let newest = b
            .protects
            .iter()
            .rev()
            .filter_map(|p| p.checkpoint.as_ref())
            .take(2);
        for id in newest {
            assert!(
                b.checkpoints.contains_key(id),
                "{id} was pruned: live {ids:?}"
            );
        }
        // Deletions went children first: every deleted checkpoint's dependents (in the
        // run) were deleted before it. The engine refuses otherwise, so no refusals above
        // is the proof; and all runs were scheduled ones.
        assert!(b
            .protects
            .iter()
            .all(|p| p.tag == "solo" && p.request.plan.as_deref() == Some("fast")));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_runs_schedules_and_the_other_takes_over_after_a_crash() {
    let etcd = TestEtcd::start();
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let engine_a = MemoryEngine::new("a", 3);
    let engine_b = engine_a.sharing("b"); // one bank, two replicas
    let a = Agent::start(
        &config(dir_a.path(), "a", EVERY_SECOND, "10s"),
        engine_a.clone(),
        &etcd.connect().await,
    )
    .await
    .expect("agent a");
    let b = Agent::start(
        &config(dir_b.path(), "b", EVERY_SECOND, "10s"),
        engine_b.clone(),
        &etcd.connect().await,
    )
    .await
    .expect("agent b");

    wait_for(
        "three scheduled checkpoints",
        Duration::from_secs(20),
        || engine_a.with_bank(|bank| completed(bank) >= 3),
    )
    .await;
    let tags: Vec<String> =
        engine_a.with_bank(|bank| bank.protects.iter().map(|p| p.tag.clone()).collect());
    let leader_tag = tags[0].clone();
    assert!(
        tags.iter().all(|t| *t == leader_tag),
        "both replicas ran schedules: {tags:?}"
    );
    let (leader, follower, follower_tag) = if leader_tag == "a" {
        (a, b, "b")
    } else {
        (b, a, "a")
    };
    assert!(*leader.leading().borrow());
    assert!(!*follower.leading().borrow());

    // Over real HTTP: each replica says whether it leads; the follower serves reads too.
    let (status, plans) = request(
        leader.local_addr(),
        "GET",
        "/v1/podbank/plans",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(plans["leader"], true);
    assert!(plans["items"][0]["nextRun"].is_string(), "{plans}");
    let (_, plans) = request(
        follower.local_addr(),
        "GET",
        "/v1/podbank/plans",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(plans["leader"], false);
    assert_eq!(plans["items"][0]["nextRun"], Value::Null);
    let (status, _) = request(
        follower.local_addr(),
        "GET",
        "/v1/podbank/plans",
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (_, metrics) = request(follower.local_addr(), "GET", "/metrics", None, None).await;
    assert!(metrics
        .as_str()
        .is_some_and(|m| m.contains("podbank_leader 0")));

    // Crash the leader: its schedules stop; the follower runs the next trigger.
    let crashed_at = engine_a.with_bank(|bank| bank.protects.len());
    let crash = Instant::now();
    leader.abort();
    wait_for(
        "the other replica runs a schedule",
        Duration::from_secs(10),
        || {
            engine_a.with_bank(|bank| {
                bank.protects[crashed_at..]
                    .iter()
                    .any(|p| p.tag == follower_tag)
            })
        },
    )
    .await;
    eprintln!(
        "first scheduled run on the new leader {:?} after the crash",
        crash.elapsed()
    );
    assert!(
        crash.elapsed() < Duration::from_secs(3 + 3),
        "took {:?}",
        crash.elapsed()
    );
    assert!(*follower.leading().borrow());
    engine_a.with_bank(|bank| {
        let after: Vec<&str> = bank.protects[crashed_at..]
            .iter()
            .map(|p| p.tag.as_str())
            .collect();
        // A run the crashed leader had just started may still complete; none start later.
        let first_new = after.iter().position(|t| *t == follower_tag).unwrap_or(0);
        assert!(
            after[first_new..].iter().all(|t| *t == follower_tag),
            "{after:?}"
        );
        chains_whole(bank).expect("chains whole across the handover");
    });
    follower.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_running_checkpoint_finish_within_the_grace_period() {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plans = EVERY_SECOND.replace("\"* * * * * *\"", "\"0 0 1 1 *\"");
    let engine = MemoryEngine::new("g", 3);
    engine.set_delay(Duration::from_millis(1500));
    let agent = Agent::start(
        &config(dir.path(), "g", &plans, "10s"),
        engine.clone(),
        &etcd.connect().await,
    )
    .await
    .expect("agent");
    let op = agent
        .service()
        .trigger_plan("fast", Trigger::Manual)
        .expect("trigger");
    let started = Instant::now();
    let service = Arc::clone(agent.service());
    let cancelled = agent.shutdown().await.expect("shutdown");
    eprintln!(
        "shutdown waited {:?} for the running checkpoint",
        started.elapsed()
    );
    assert!(cancelled.is_empty());
    let rec = service.operations().get(&op.id).expect("record");
    assert_eq!(rec.state, OperationState::Succeeded, "{rec:?}");
    assert_eq!(engine.with_bank(|b| b.checkpoints.len()), 1);
    // After shutdown, nothing new is accepted.
    assert!(service.trigger_plan("fast", Trigger::Manual).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_what_outlives_the_grace_period_and_leaves_nothing_visible() {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plans = EVERY_SECOND.replace("\"* * * * * *\"", "\"0 0 1 1 *\"");
    let engine = MemoryEngine::new("c", 3);
    engine.set_delay(Duration::from_secs(600));
    let agent = Agent::start(
        &config(dir.path(), "c", &plans, "1s"),
        engine.clone(),
        &etcd.connect().await,
    )
    .await
    .expect("agent");
    let op = agent
        .service()
        .trigger_plan("fast", Trigger::Manual)
        .expect("trigger");
    wait_for("the protect started", Duration::from_secs(5), || {
        engine.with_bank(|b| b.protects.len() == 1)
    })
    .await;
    let started = Instant::now();
    let service = Arc::clone(agent.service());
    let cancelled = agent.shutdown().await.expect("shutdown");
    let took = started.elapsed();
    eprintln!("shutdown with a 1 s grace period took {took:?}");
    assert_eq!(cancelled, vec![op.id.clone()]);
    assert!(took < Duration::from_secs(4), "{took:?}");
    let rec = service.operations().get(&op.id).expect("record");
    assert_eq!(rec.state, OperationState::Cancelled);
    assert!(rec
        .error
        .as_deref()
        .is_some_and(|e| e.contains("grace period")));
    engine.with_bank(|b| {
        assert!(
            b.checkpoints.is_empty(),
            "a cancelled protect left a checkpoint"
        );
        assert_eq!(b.protects[0].checkpoint, None);
    });
}

#[tokio::test]
async fn the_agent_refuses_to_start_open_or_misconfigured() {
    let etcd = TestEtcd::start();
    let client = etcd.connect().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = MemoryEngine::new("x", 3);
    let mut c = config(dir.path(), "x", EVERY_SECOND, "1s");
    c.token_file = None;
    let err = Agent::start(&c, engine.clone(), &client)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, AgentError::Config(ref m) if m.contains("token_file")),
        "{err}"
    );

    let mut c = config(dir.path(), "x", EVERY_SECOND, "1s");
    c.election.key = "/registry/leases/podbank".into();
    let err = Agent::start(&c, engine.clone(), &client)
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, AgentError::Election(_)), "{err}");

    // The port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut c = config(dir.path(), "x", EVERY_SECOND, "1s");
    c.listen = taken.local_addr().expect("addr");
    let err = Agent::start(&c, engine, &client)
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, AgentError::Listen { .. }), "{err}");
}
