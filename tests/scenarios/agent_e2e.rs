//! The agent over the real protection engine: a real etcd seeded with pods, a local bank,
//! a 1-second schedule with retention, and the HTTP API reading protectables from etcd and
//! checkpoints from the bank.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::engine::wait_for;
use crate::support::etcd::TestEtcd;
use crate::support::http::{request, CHECKPOINTS};
use podbank::agent::{Agent, AgentConfig};
use podbank::bank::{backend, Bank, OpenOptions};
use podbank::codec::Decoder;
use podbank::engine::{CheckpointFilter, Engine, Lazy, LocalEngine, VolumeMode};
use podbank::model::CheckpointStatus;
use podbank_seed::{self as seed, SeedPlan};
use serde_json::json;

const TOKEN: &str = "e2e-token";

async fn open_bank(dir: &std::path::Path) -> Arc<Bank> {
    let backend = backend::open(&format!("file://{}", dir.display())).expect("backend");
    Bank::open(
        backend,
        OpenOptions {
            key: None,
            create: true,
            pack_target_bytes: None,
        },
    )
    .await
    .expect("bank")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_checkpoints_land_in_the_bank_and_retention_prunes_them() {
    let etcd = TestEtcd::start();
    let client = etcd.connect().await;
    seed::write(
        &client,
        seed::generate(&SeedPlan {
            pods: 50,
            ..SeedPlan::default()
        }),
    )
    .await
    .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let bank = open_bank(&dir.path().join("bank")).await;
    let engine = Arc::new(LocalEngine::new(
        Lazy::ready(client.clone()),
        Decoder::new(None),
        Lazy::ready(Arc::clone(&bank)),
        VolumeMode::Skip("no Cinder in this test".into()),
    ));
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("token");
    let config = AgentConfig::from_yaml(
        &serde_yaml::from_str(&format!(
            r#"
listen: 127.0.0.1:0
token_file: {}
election: {{ ttl: 3 }}
grace_period: 30s
plans:
  - name: fast
    namespaces: [ns-0, ns-1]
    schedule: "* * * * * *"
    options: {{ backup_name: fast, description: every second }}
    retention: {{ keep_last: 2 }}
"#,
            token.display()
        ))
        .expect("yaml"),
    )
    .expect("config");
    let started = Instant::now();
    let agent = Agent::start(&config, engine.clone(), &client)
        .await
        .expect("agent");
    let addr = agent.local_addr();

    // Five scheduled runs, each protect + retention.
    let service = Arc::clone(agent.service());
    wait_for("five plan runs", Duration::from_secs(30), || {
        service
            .operations()
            .list()
            .iter()
            .filter(|o| o.state == podbank::agent::operations::OperationState::Succeeded)
            .count()
            >= 5
    })
    .await;
    eprintln!(
        "5 scheduled checkpoints over the real engine in {:?}",
        started.elapsed()
    );
    for op in service.operations().list() {
        assert_ne!(
            op.state,
            podbank::agent::operations::OperationState::Failed,
            "{op:?}"
        );
    }
    wait_for("no run in progress", Duration::from_secs(10), || {
        service.operations().running() == 0
    })
    .await;

    // Protectables straight from etcd.
    let base = "/v1/podbank/protectables/OS::Kubernetes::Pod/instances";
    let (status, pods) = request(
        addr,
        "GET",
        &format!("{base}?parameters=%7B%22namespace%22%3A%22ns-0%22%7D"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let pods = pods["items"].as_array().expect("items").clone();
    assert_eq!(pods.len(), 10);
    let uid = pods[0]["id"].as_str().expect("uid").to_string();
    let name = format!(
        "{}%2F{}",
        pods[0]["namespace"].as_str().expect("ns"),
        pods[0]["name"].as_str().expect("name")
    );
    for id in [uid.as_str(), name.as_str()] {
        let (status, pod) = request(addr, "GET", &format!("{base}/{id}"), Some(TOKEN), None).await;
        assert_eq!(status, 200, "{pod}");
        assert_eq!(pod["id"], uid.as_str());
        assert!(pod["dependents"].is_array(), "{pod}");
    }
    let (status, _) = request(
        addr,
        "GET",
        &format!("{base}/no-such-uid"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Readiness checks the real etcd and bank.
    let (status, ready) = request(addr, "GET", "/readyz", None, None).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["checks"][0]["name"], "etcd");
    assert_eq!(ready["checks"][1]["name"], "bank");

    // An on-demand checkpoint (outside the plan, so retention leaves it alone): protect,
    // show, restore (not in this engine yet), delete.
    let body = json!({"selection": {"pods": [name.replace("%2F", "/")]},
                      "parameters": {"backup_name": "adhoc", "description": "by hand"}});
    let (status, acc) = request(addr, "POST", CHECKPOINTS, Some(TOKEN), Some(body)).await;
    assert_eq!(status, 202, "{acc}");
    let op = follow(addr, &acc).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    let adhoc = op["result"]["checkpointId"]
        .as_str()
        .expect("id")
        .to_string();
    let (status, shown) = request(
        addr,
        "GET",
        &format!("{CHECKPOINTS}/{adhoc}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["pods"], 1);
    assert_eq!(shown["backupName"], "adhoc");

    let (status, acc) = request(
        addr,
        "POST",
        "/v1/podbank/restores",
        Some(TOKEN),
        Some(json!({"checkpoint_id": adhoc})),
    )
    .await;
    assert_eq!(status, 202, "{acc}");
    let op = follow(addr, &acc).await;
    assert_eq!(op["state"], "failed");
    assert!(
        op["error"]
            .as_str()
            .is_some_and(|e| e.contains("no Kubernetes API server")),
        "{op}"
    );
    let (status, restores) = request(addr, "GET", "/v1/podbank/restores", Some(TOKEN), None).await;
    assert_eq!(status, 200);
    assert_eq!(restores["items"], json!([]));

    let (status, acc) = request(
        addr,
        "DELETE",
        &format!("{CHECKPOINTS}/{adhoc}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 202, "{acc}");
    let op = follow(addr, &acc).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    let (status, _) = request(
        addr,
        "GET",
        &format!("{CHECKPOINTS}/{adhoc}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 404);

    agent.shutdown().await.expect("shutdown");

    // After the last run's retention: the two newest of the plan, nothing else.
    let live = engine
        .checkpoints(&CheckpointFilter::default())
        .await
        .expect("list")
        .items;
    assert_eq!(live.len(), 2, "{live:?}");
    assert!(live
        .iter()
        .all(|c| c.status == CheckpointStatus::Available && c.plan.as_deref() == Some("fast")));
    let runs = service.operations().list();
    let deleted: usize = runs
        .iter()
        .filter_map(|o| o.result.as_ref())
        .map(|r| match r {
            podbank::agent::operations::OperationResult::PlanRun { retention, .. } => {
                retention.deleted.len()
            }
            _ => 0,
        })
        .sum();
    let made = runs
        .iter()
        .filter(|o| o.kind == podbank::agent::operations::OperationKind::PlanRun)
        .filter(|o| o.state == podbank::agent::operations::OperationState::Succeeded)
        .count();
    assert_eq!(made - deleted, 2, "{made} made, {deleted} pruned");
    assert!(service.render_metrics().contains(&format!(
        "podbank_checkpoints_deleted_total{{plan=\"fast\"}} {deleted}"
    )));
    let report = bank.verify(None).await.expect("verify");
    assert!(report.is_clean(), "{:?}", report.problems);
}

/// Follow a 202's status URL until the operation ends.
async fn follow(addr: std::net::SocketAddr, accepted: &serde_json::Value) -> serde_json::Value {
    let url = accepted["statusUrl"]
        .as_str()
        .expect("status_url")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, op) = request(addr, "GET", &url, Some(TOKEN), None).await;
        assert_eq!(status, 200, "{op}");
        if op["state"] != "running" {
            return op;
        }
        assert!(Instant::now() < deadline, "{op}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
