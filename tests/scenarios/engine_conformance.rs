//! One conformance suite for every implementation of the application API ([`Engine`]):
//! the local engine over a real etcd and bank, the remote engine over a running agent's
//! HTTP API, and the in-memory double the agent's tests use. What one does, all do: the
//! same answers, the same errors for the same mistakes, nothing stored by a refused
//! request. A double that drifts from production fails here.

use std::sync::Arc;
use std::time::Duration;

use crate::support::apiserver::FakeApiServer;
use crate::support::engine::MemoryEngine;
use crate::support::etcd::TestEtcd;
use crate::support::workload;
use podbank::agent::{Agent, AgentConfig};
use podbank::api::client::{ClientSettings, RemoteEngine};
use podbank::codec::Decoder;
use podbank::engine::{
    CheckpointFilter, Engine, EngineError, Lazy, LocalEngine, PodSpecifier, ProtectRequest,
    RestoreMode, RestoreRequest, SelectionSpec, VolumeMode,
};
use podbank::model::{CheckpointId, CheckpointStatus, ObjectRef, RestoreId, RestoreStatus};
use podbank::protection::schema::{ProtectParams, RestoreParams};
use serde_json::json;

/// What the suite needs to know of the engine's world.
struct World {
    /// A pod that exists, with no Cinder volume (so that it restores without Cinder).
    pod: ObjectRef,
}

fn protect_request(pod: &ObjectRef, name: &str) -> ProtectRequest {
    ProtectRequest {
        plan: None,
        selection: SelectionSpec {
            pods: vec![pod.clone()],
            ..SelectionSpec::default()
        },
        parameters: ProtectParams::from_json(
            &json!({"backup_name": name, "description": "conformance"}),
        )
        .expect("valid parameters"),
        volume_backups: true,
        secrets_in_plain_bank: false,
        skip_hooks: false,
        hooks: Vec::new(),
        checkpoint_id: None,
        project_id: String::new(),
    }
}

fn restore_request(checkpoint: &CheckpointId, pod: &ObjectRef) -> RestoreRequest {
    RestoreRequest {
        checkpoint_id: checkpoint.clone(),
        pods: vec![pod.clone()],
        parameters: RestoreParams::from_json(&json!({"restore_description": "conformance"}))
            .expect("valid parameters"),
        namespace_map: Default::default(),
        conflict: Default::default(),
        keep_node: false,
        pods_only: false,
        original_volumes: false,
        settle: None,
        concurrency: None,
        volume_concurrency: None,
        mode: RestoreMode::Apply,
        restore_id: None,
        project_id: String::new(),
    }
}

fn unknown_checkpoint() -> CheckpointId {
    "20200101T000000Z-deadbeef".parse().expect("id")
}

/// What kind of answer `r` is.
fn kind<T>(r: &Result<T, EngineError>) -> &'static str {
    match r {
        Err(EngineError::NotFound(_)) => "not found",
        Err(EngineError::Invalid(_)) => "invalid",
        Err(EngineError::Conflict(_)) => "conflict",
        Err(EngineError::Unsupported(_)) => "unsupported",
        Err(_) => "other error",
        Ok(_) => "ok",
    }
}

/// The contract, over `engine` in `world`.
async fn conformance(name: &str, engine: &dyn Engine, world: &World) {
    // Protectables.
    let pods = engine
        .pods(&SelectionSpec::default())
        .await
        .unwrap_or_else(|e| panic!("{name}: pods: {e}"));
    assert!(
        pods.items
            .iter()
            .any(|p| p.pod.info.name == world.pod.name()),
        "{name}: the pod is listed"
    );
    let bad_selector = engine
        .pods(&SelectionSpec {
            label_selector: Some("a notin ()".into()),
            ..SelectionSpec::default()
        })
        .await;
    assert_eq!(kind(&bad_selector), "invalid", "{name}: {bad_selector:?}");
    let pod = engine
        .pod(&PodSpecifier::Name(world.pod.clone()))
        .await
        .unwrap_or_else(|e| panic!("{name}: pod: {e}"));
    assert_eq!(pod.pod.info.name, world.pod.name(), "{name}");
    let missing = engine
        .pod(&PodSpecifier::Name(
            world.pod.in_namespace_named("no-such-pod"),
        ))
        .await;
    assert_eq!(kind(&missing), "not found", "{name}");

    // A refused protect stores nothing.
    let before = engine
        .checkpoints(&CheckpointFilter::default())
        .await
        .unwrap_or_else(|e| panic!("{name}: list: {e}"))
        .items
        .len();
    // Parameters are checked where a request is read: one without `backup_name` cannot
    // be built, whichever engine it would go to.
    let no_name = ProtectParams::from_json(&json!({"description": "no backup_name"}));
    assert!(no_name.is_err(), "{name}: {no_name:?}");
    let mut bad_pod = protect_request(&world.pod, "x");
    bad_pod.selection.label_selector = Some("tier in (".into());
    assert_eq!(kind(&engine.protect(bad_pod).await), "invalid", "{name}");
    let after = engine
        .checkpoints(&CheckpointFilter::default())
        .await
        .expect("list")
        .items
        .len();
    assert_eq!(before, after, "{name}: a refused protect stored something");

    // Protect, list, show.
    let first = engine
        .protect(protect_request(&world.pod, "first"))
        .await
        .unwrap_or_else(|e| panic!("{name}: protect: {e}"));
    assert_eq!(first.status, CheckpointStatus::Available, "{name}");
    assert_eq!(first.backup_name, "first", "{name}");
    let listed = engine
        .checkpoints(&CheckpointFilter::default())
        .await
        .expect("list");
    assert!(listed.items.iter().any(|c| c.id == first.id), "{name}");
    let shown = engine.checkpoint(&first.id).await.expect("show");
    assert_eq!(shown.id, first.id, "{name}");
    assert_eq!(
        kind(&engine.checkpoint(&unknown_checkpoint()).await),
        "not found",
        "{name}"
    );
    // The bank's maintenance: done, or refused as unsupported by an engine that does not
    // reach the bank itself (an agent's API) -- never half done.
    match engine.verify(Some(&first.id)).await {
        Err(EngineError::Unsupported(why)) => {
            assert!(why.contains("without --agent"), "{name}: {why}");
            for refused in [
                kind(&engine.verify(None).await),
                kind(&engine.gc(Duration::from_secs(5)).await),
                kind(&engine.repair(Duration::from_secs(5)).await),
                kind(&engine.bank_stats().await),
            ] {
                assert_eq!(refused, "unsupported", "{name}");
            }
        }
        verified => {
            let verified = verified.expect("verify");
            assert!(verified.is_clean(), "{name}: {verified:?}");
            assert_eq!(
                kind(&engine.verify(Some(&unknown_checkpoint())).await),
                "not found",
                "{name}"
            );
            assert!(engine.verify(None).await.expect("verify all").checkpoints >= 1);
            engine.bank_stats().await.expect("stats");
            engine.gc(Duration::from_secs(5)).await.expect("gc");
        }
    }

    // Restores: refused ones create nothing.
    let unknown = engine
        .restore(restore_request(&unknown_checkpoint(), &world.pod))
        .await;
    assert_eq!(kind(&unknown), "not found", "{name}: {unknown:?}");
    let bad_name = RestoreParams::from_json(&json!({"restore_name": "Bad_Name"}));
    assert!(bad_name.is_err(), "{name}: {bad_name:?}");
    let mut bare = restore_request(&first.id, &world.pod);
    bare.pods = vec![ObjectRef::cluster("no-namespace")];
    assert_eq!(kind(&engine.restore(bare).await), "invalid", "{name}");
    let restores_before = engine.restores().await.expect("restores").items.len();
    assert_eq!(restores_before, 0, "{name}: refused restores left records");
    let restored = engine
        .restore(restore_request(&first.id, &world.pod))
        .await
        .unwrap_or_else(|e| panic!("{name}: restore: {e}"));
    assert_eq!(
        restored.status,
        RestoreStatus::Success,
        "{name}: {restored:?}"
    );
    assert_eq!(restored.checkpoint_id, first.id, "{name}");
    let again = engine.restore_record(&restored.id).await.expect("record");
    assert_eq!(again.id, restored.id, "{name}");
    let unknown_restore: RestoreId = "r-20200101T000000Z-deadbeef".parse().expect("id");
    assert_eq!(
        kind(&engine.restore_record(&unknown_restore).await),
        "not found",
        "{name}"
    );

    // Delete: a second checkpoint of the same pod may build on the first (incremental
    // backups); deleting the first succeeds either way and it leaves the listing.
    let second = engine
        .protect(protect_request(&world.pod, "second"))
        .await
        .expect("protect again");
    let deleted = engine
        .delete_checkpoint(&first.id)
        .await
        .unwrap_or_else(|e| panic!("{name}: delete: {e}"));
    assert_eq!(deleted.status, CheckpointStatus::Deleted, "{name}");
    let listed = engine
        .checkpoints(&CheckpointFilter::default())
        .await
        .expect("list");
    assert!(!listed.items.iter().any(|c| c.id == first.id), "{name}");
    let with_all = engine
        .checkpoints(&CheckpointFilter {
            all: true,
            ..CheckpointFilter::default()
        })
        .await
        .expect("list all");
    if let Some(tomb) = with_all.items.iter().find(|c| c.id == first.id) {
        assert_eq!(
            tomb.status,
            CheckpointStatus::Deleted,
            "{name}: a tombstone"
        );
    }
    assert_eq!(
        kind(&engine.delete_checkpoint(&unknown_checkpoint()).await),
        "not found",
        "{name}"
    );
    engine
        .delete_checkpoint(&second.id)
        .await
        .expect("delete second");
    let with_all = engine
        .checkpoints(&CheckpointFilter {
            all: true,
            ..CheckpointFilter::default()
        })
        .await
        .expect("list all");
    assert!(
        with_all
            .items
            .iter()
            .all(|c| c.id != first.id && c.id != second.id),
        "{name}: the chain unwound: {:?}",
        with_all
            .items
            .iter()
            .map(|c| (&c.id, c.status))
            .collect::<Vec<_>>()
    );

    // Plans and the bank.
    assert_eq!(
        kind(&engine.run_plan("no-such-plan").await),
        "not found",
        "{name}"
    );
    engine.plans().await.expect("plans");
    let ready = engine.readiness().await;
    assert!(ready.iter().all(|c| c.ok), "{name}: {ready:?}");
}

/// A local engine over a fresh etcd holding one pod without Cinder volumes, a bank, and
/// the API-server stand-in.
async fn local_world() -> (
    LocalEngine,
    World,
    TestEtcd,
    tempfile::TempDir,
    FakeApiServer,
) {
    let etcd = TestEtcd::start();
    let client = etcd.connect().await;
    let pod = workload::pod("shop", "web-0", &[]);
    podbank_seed::write(&client, workload::objects("shop", &pod, &[]))
        .await
        .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let bank = open_new_bank(&dir.path().join("bank")).await;
    let api = FakeApiServer::start(&["shop"]).await;
    let kubeconfig = api.write_kubeconfig(dir.path());
    let server = podbank::apiserver::ApiServer::connect(&podbank::apiserver::KubeSettings {
        kubeconfig: Some(kubeconfig),
        context: None,
    })
    .await
    .expect("kube client");
    let engine = LocalEngine::new(
        Lazy::ready(client),
        Decoder::new(None),
        Lazy::ready(bank),
        VolumeMode::Skip("no Cinder in this test".into()),
    )
    .with_api_server(Lazy::ready(server));
    let world = World {
        pod: ObjectRef::new("shop", "web-0"),
    };
    (engine, world, etcd, dir, api)
}

async fn open_new_bank(dir: &std::path::Path) -> Arc<podbank::bank::Bank> {
    std::fs::create_dir_all(dir).expect("dir");
    let backend: Arc<dyn podbank::bank::Backend> =
        Arc::new(podbank::bank::backend::LocalBackend::new(dir).expect("backend"));
    let bank = podbank::bank::Bank::open(
        backend,
        podbank::bank::OpenOptions {
            create: true,
            ..Default::default()
        },
    )
    .await
    .expect("bank");
    bank
}

#[tokio::test]
async fn the_local_engine_conforms() {
    let (engine, world, _etcd, _dir, _api) = local_world().await;
    conformance("local", &engine, &world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_engine_over_an_agent_conforms() {
    let (engine, world, etcd, dir, _api) = local_world().await;
    let token = dir.path().join("token");
    std::fs::write(&token, "conformance-token\n").expect("token");
    let config = AgentConfig::from_yaml(
        &serde_yaml::from_str(&format!(
            "listen: 127.0.0.1:0\ntoken_file: {}\nelection: {{ key: /podbank/election/conformance, ttl: 3 }}\n",
            token.display()
        ))
        .expect("yaml"),
    )
    .expect("config");
    let agent = Agent::start(&config, Arc::new(engine), &etcd.connect().await)
        .await
        .expect("agent");
    let remote = RemoteEngine::new(&ClientSettings {
        url: format!("http://{}", agent.local_addr()),
        token_file: Some(token),
        ..ClientSettings::default()
    })
    .expect("client");
    conformance("remote", &remote, &world).await;
    agent.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_in_memory_double_conforms() {
    let engine = MemoryEngine::new("conformance", 2);
    let world = World {
        pod: ObjectRef::new("shop", "web-0"),
    };
    conformance("double", &*engine, &world).await;
}
