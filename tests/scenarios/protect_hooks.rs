//! `podbank protect` with exec hooks (Velero's `pre/post.hook.backup.velero.io` pod
//! annotations), end to end: the pods in a real etcd, the hooks run through the API-server
//! stand-in's `pods/exec` (the command a local process behind kube-apiserver's channel
//! protocol), the podbank binary in between. Most scenes take no volumes
//! (`--no-volume-backups`: the hooks run where the burst would be); the last brackets a real
//! snapshot burst on the Cinder rig.

use crate::require_rig;
use crate::support::apiserver::FakeApiServer;
use crate::support::cinder::{new_volume, unique, with_cleanup, CinderRig};
use crate::support::etcd::TestEtcd;
use crate::support::workload::{self, Claim, Podbank};
use podbank::model::{
    Checkpoint, CheckpointStatus, HookOnError, HookOutcome, HookPhase, VolumeStatus,
};
use podbank_seed as seed;

const NS: &str = "shop";
const POD: &str = "db-0";

/// etcd holding pod `shop/db-0` (container `db`) with `annotations` and a claim per Cinder
/// volume of `volumes`; the stand-in holding the same pod, scheduled, for its exec; podbank
/// pointed at both (and at the rig, when given).
struct Scene {
    _etcd: TestEtcd,
    _dir: tempfile::TempDir,
    fake: FakeApiServer,
    podbank: Podbank,
    kubeconfig: String,
}

async fn scene(annotations: &[(&str, &str)], rig: Option<(&CinderRig, &[String])>) -> Scene {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let claims: Vec<Claim> = rig
        .map(|(_, volumes)| volumes)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, v)| Claim::of_cinder(&format!("data{i}"), &format!("data{i}-{POD}"), v))
        .collect();
    let mut pod = workload::pod(NS, POD, &claims);
    if let Some(meta) = pod.metadata.as_mut() {
        meta.annotations.extend(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
    }
    let client = etcd.connect().await;
    seed::write(&client, workload::objects(NS, &pod, &claims))
        .await
        .expect("seed etcd");
    let fake = FakeApiServer::start(&[NS]).await;
    fake.create_json(
        "pods",
        NS,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": POD, "namespace": NS},
            "spec": {"nodeName": "node-3", "containers": [{"name": "db", "image": "postgres:17"}]}
        }),
    )
    .expect("pod in the stand-in");
    let kubeconfig = fake
        .write_kubeconfig(dir.path())
        .to_string_lossy()
        .into_owned();
    let podbank = match rig {
        Some((rig, _)) => Podbank {
            etcd: etcd.url.clone(),
            bank: dir.path().join("bank"),
            clouds: rig.clouds_yaml(),
            cloud: "rig".into(),
        },
        None => Podbank::without_cinder(&etcd.url, dir.path()),
    };
    Scene {
        _etcd: etcd,
        _dir: dir,
        fake,
        podbank,
        kubeconfig,
    }
}

impl Scene {
    /// `podbank protect` of the namespace, no volumes, hooks through the stand-in.
    async fn protect(&self, extra: &[&str]) -> workload::Run {
        let mut args = vec![
            "protect",
            "--backup-name",
            "hooks",
            "--description",
            "hooks",
            "--no-volume-backups",
            "--kubeconfig",
            &self.kubeconfig,
            "-n",
            NS,
        ];
        args.extend_from_slice(extra);
        self.podbank.run(&args).await
    }

    /// The one checkpoint of the bank.
    async fn checkpoint(&self) -> Checkpoint {
        let cps = workload::checkpoints(&self.podbank.bank).await;
        assert_eq!(cps.len(), 1, "{cps:?}");
        cps[0].clone()
    }
}

const PRE: &str = "pre.hook.backup.velero.io/command";
const POST: &str = "post.hook.backup.velero.io/command";

#[tokio::test]
async fn pre_and_post_hooks_are_run_and_recorded_in_order() {
    let s = scene(
        &[
            (PRE, r#"["sh", "-c", "echo frozen; echo note >&2"]"#),
            (POST, r#"["sh", "-c", "echo thawed"]"#),
        ],
        None,
    )
    .await;
    s.protect(&[]).await;
    let cp = s.checkpoint().await;
    assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
    assert_eq!(cp.hooks.len(), 2, "{:?}", cp.hooks);
    let (pre, post) = (&cp.hooks[0], &cp.hooks[1]);
    assert_eq!(pre.phase, HookPhase::Pre);
    assert_eq!(pre.pod.to_string(), "shop/db-0");
    assert_eq!(pre.container, "db", "the pod's first container");
    assert_eq!(pre.command, ["sh", "-c", "echo frozen; echo note >&2"]);
    assert_eq!(pre.outcome, HookOutcome::Succeeded);
    assert_eq!(pre.exit_code, Some(0));
    assert_eq!(pre.on_error, HookOnError::Fail);
    assert_eq!(pre.stdout, "frozen\n");
    assert_eq!(pre.stderr, "note\n");
    assert_eq!(post.phase, HookPhase::Post);
    assert_eq!(post.stdout, "thawed\n");
    assert!(
        post.started >= pre.finished(),
        "the post-hook ran after the pre-hook ended: {pre:?} {post:?}"
    );
    // The stand-in ran them, in that order.
    let execs = s.fake.execs();
    let commands: Vec<&str> = execs.iter().map(|e| e.command[2].as_str()).collect();
    assert_eq!(commands, ["echo frozen; echo note >&2", "echo thawed"]);

    // `checkpoints show` lists them, in the table and in JSON.
    let id = cp.id.to_string();
    let table = s.podbank.ok(&["checkpoints", "show", &id]).await.stdout;
    assert!(table.contains("HOOK"), "{table}");
    assert!(table.contains("shop/db-0 (db)"), "{table}");
    assert!(table.contains("sh -c echo thawed"), "{table}");
    let json = s
        .podbank
        .ok(&["checkpoints", "show", &id, "-o", "json"])
        .await
        .stdout;
    let view: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let hooks = view["hooks"].as_array().expect("hooks in the JSON view");
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[0]["phase"], "pre");
    assert_eq!(hooks[0]["outcome"], "succeeded");
    assert_eq!(hooks[0]["exitCode"], 0);
    assert_eq!(hooks[0]["stdout"], "frozen\n");
    assert_eq!(hooks[1]["phase"], "post");
}

#[tokio::test]
async fn a_failing_pre_hook_that_fails_makes_the_checkpoint_error_and_the_post_hook_still_runs() {
    let s = scene(
        &[
            (PRE, r#"["sh", "-c", "echo cannot freeze >&2; exit 3"]"#),
            (POST, r#"["sh", "-c", "echo thawed"]"#),
        ],
        None,
    )
    .await;
    let run = s.protect(&[]).await;
    assert_ne!(run.code, 0, "{run:?}");
    let cp = s.checkpoint().await;
    assert_eq!(cp.status, CheckpointStatus::Error);
    assert!(
        cp.reason
            .contains("pre-hook in pod shop/db-0 (container db) failed: exit code 3")
            && cp.reason.contains("cannot freeze"),
        "{}",
        cp.reason
    );
    assert_eq!(cp.hooks.len(), 2, "{:?}", cp.hooks);
    assert_eq!(cp.hooks[0].outcome, HookOutcome::Failed);
    assert_eq!(cp.hooks[0].exit_code, Some(3));
    assert_eq!(cp.hooks[0].stderr, "cannot freeze\n");
    assert_eq!(cp.hooks[1].phase, HookPhase::Post);
    assert_eq!(
        cp.hooks[1].outcome,
        HookOutcome::Succeeded,
        "thawed all the same"
    );
}

#[tokio::test]
async fn a_failing_hook_that_continues_is_recorded_and_the_checkpoint_is_available() {
    let s = scene(
        &[
            (PRE, r#"["sh", "-c", "echo half; exit 4"]"#),
            ("pre.hook.backup.velero.io/on-error", "Continue"),
        ],
        None,
    )
    .await;
    let run = s.protect(&[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let cp = s.checkpoint().await;
    assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
    assert_eq!(cp.hooks.len(), 1);
    let h = &cp.hooks[0];
    assert_eq!(h.outcome, HookOutcome::Failed);
    assert_eq!(h.on_error, HookOnError::Continue);
    assert_eq!(h.exit_code, Some(4));
    assert_eq!(h.reason, "exit code 4");
    assert_eq!(h.stdout, "half\n");
}

#[tokio::test]
async fn a_hook_past_its_timeout_is_cut_off_and_recorded_as_such() {
    let s = scene(
        &[
            (PRE, r#"["sh", "-c", "echo freezing; exec sleep 120"]"#),
            ("pre.hook.backup.velero.io/timeout", "2s"),
        ],
        None,
    )
    .await;
    let run = s.protect(&[]).await;
    assert_ne!(run.code, 0, "{run:?}");
    let cp = s.checkpoint().await;
    assert_eq!(cp.status, CheckpointStatus::Error);
    let h = &cp.hooks[0];
    assert_eq!(h.outcome, HookOutcome::TimedOut);
    assert_eq!(h.exit_code, None);
    assert_eq!(h.stdout, "freezing\n", "what came before the cut is kept");
    assert!(h.duration_ms >= 2000, "{h:?}");
    assert!(h.reason.contains("timeout of 2s"), "{}", h.reason);
    assert!(
        cp.reason.contains("still running after its timeout"),
        "{}",
        cp.reason
    );
}

#[tokio::test]
async fn bad_hook_annotations_fail_before_anything_is_taken() {
    for (annotations, names) in [
        (
            vec![(PRE, r#"["sh", "-c""#)],
            "annotation pre.hook.backup.velero.io/command",
        ),
        (
            vec![(POST, "")],
            "annotation post.hook.backup.velero.io/command",
        ),
        (
            vec![(PRE, "true"), ("pre.hook.backup.velero.io/container", "pg")],
            "annotation pre.hook.backup.velero.io/container",
        ),
        (
            vec![
                (PRE, "true"),
                ("pre.hook.backup.velero.io/on-error", "Ignore"),
            ],
            "annotation pre.hook.backup.velero.io/on-error",
        ),
    ] {
        let s = scene(&annotations, None).await;
        let run = s.protect(&[]).await;
        assert_eq!(run.code, 2, "a usage error: {run:?}");
        assert!(
            run.stderr.contains("pod shop/db-0") && run.stderr.contains(names),
            "{annotations:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("nothing was taken"), "{}", run.stderr);
        assert!(workload::checkpoints(&s.podbank.bank).await.is_empty());
        assert!(s.fake.execs().is_empty(), "no hook ran");
    }
}

#[tokio::test]
async fn hooks_without_an_api_server_are_refused_unless_skipped_which_is_recorded() {
    let s = scene(&[(PRE, "/sbin/fsfreeze")], None).await;
    let bare = [
        "protect",
        "--backup-name",
        "hooks",
        "--description",
        "no API server",
        "--no-volume-backups",
        "-n",
        NS,
    ];
    // No kubeconfig (the runner removes KUBECONFIG; HOME has none) and not in a cluster.
    let run = s.podbank.run(&bare).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("pods shop/db-0 declare exec hooks")
            && run.stderr.contains("--skip-hooks"),
        "{}",
        run.stderr
    );
    assert!(workload::checkpoints(&s.podbank.bank).await.is_empty());

    let mut skipping = bare.to_vec();
    skipping.push("--skip-hooks");
    s.podbank.ok(&skipping).await;
    let cp = s.checkpoint().await;
    assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
    assert!(cp.hooks.is_empty());
    let skipped: Vec<String> = cp.hooks_skipped.iter().map(ToString::to_string).collect();
    assert_eq!(skipped, ["shop/db-0"]);
    let id = cp.id.to_string();
    let table = s.podbank.ok(&["checkpoints", "show", &id]).await.stdout;
    assert!(table.contains("not run (--skip-hooks)"), "{table}");
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn the_hooks_bracket_the_snapshot_burst() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    with_cleanup(cinder, |created| async move {
        let name = unique("hooks");
        let volume = new_volume(cinder, &created, &format!("{name}-a")).await;
        let volumes = [volume.to_string()];
        let s = scene(
            &[
                (PRE, r#"["sh", "-c", "echo frozen"]"#),
                (POST, r#"["sh", "-c", "echo thawed"]"#),
            ],
            Some((rig, &volumes)),
        )
        .await;
        s.podbank
            .ok(&[
                "protect",
                "--backup-name",
                "bracketed",
                "--description",
                "hooks around the burst",
                "--kubeconfig",
                &s.kubeconfig,
                "-n",
                NS,
            ])
            .await;
        let cp = s.checkpoint().await;
        for v in &cp.volumes {
            if let Some(b) = &v.backup_id {
                created.backup(b);
            }
        }
        assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
        let v = &cp.volumes[0];
        assert_eq!(v.status, VolumeStatus::Available, "{v:?}");
        assert!(v.snapshot_sent_unix_ms > 0, "{v:?}");
        let (pre, post) = (&cp.hooks[0], &cp.hooks[1]);
        assert_eq!((pre.phase, post.phase), (HookPhase::Pre, HookPhase::Post));
        let ms = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis() as u64;
        assert!(
            ms(pre.finished()) <= v.snapshot_sent_unix_ms,
            "pre-hook ended before the snapshot was asked for: {pre:?} {v:?}"
        );
        assert!(
            ms(post.started) >= v.snapshot_available_unix_ms,
            "post-hook started once the snapshot was available: {post:?} {v:?}"
        );
    })
    .await;
}

/// A plan's `hooks:` in the agent's config file, for a pod WITHOUT hook annotations: the
/// plan's request (read from the config as the agent reads it) driven through the engine the
/// agent runs; the hooks run through the stand-in's exec and are recorded as the
/// annotations' would be. An entry whose selector the pod does not match gives nothing.
#[tokio::test]
async fn a_plan_hook_runs_in_a_pod_without_annotations_and_is_recorded() {
    use podbank::engine::{Engine, Lazy, LocalEngine, VolumeMode};
    let s = scene(&[], None).await;
    let config: serde_yaml::Value = serde_yaml::from_str(
        r#"
plans:
  - name: db
    namespaces: [shop]
    schedule: "0 * * * *"
    options: { backup_name: db, description: plan hooks }
    hooks:
      - selector: app=web
        pre: { command: [sh, -c, "echo wrong pod"] }
      - selector: app=db
        pre: { container: db, command: [sh, -c, "echo checkpointed"], on_error: Fail, timeout: 30s }
        post: { command: '["sh", "-c", "echo thawed"]', on_error: Continue }
"#,
    )
    .expect("yaml");
    let plans = podbank::agent::AgentConfig::from_yaml(&config)
        .expect("config")
        .plans()
        .expect("valid plans");
    let request = plans[0].protect_request();

    std::fs::create_dir_all(&s.podbank.bank).expect("bank dir");
    let backend: std::sync::Arc<dyn podbank::bank::Backend> = std::sync::Arc::new(
        podbank::bank::backend::LocalBackend::new(&s.podbank.bank).expect("backend"),
    );
    let bank = podbank::bank::Bank::open(
        backend,
        podbank::bank::OpenOptions {
            create: true,
            ..Default::default()
        },
    )
    .await
    .expect("bank");
    let api = podbank::apiserver::ApiServer::connect(&podbank::apiserver::KubeSettings {
        kubeconfig: Some(s.kubeconfig.clone().into()),
        context: None,
    })
    .await
    .expect("kube client");
    let engine = LocalEngine::new(
        Lazy::ready(s._etcd.connect().await),
        podbank::codec::Decoder::new(None),
        Lazy::ready(bank),
        VolumeMode::Skip("no Cinder in this scene".into()),
    )
    .with_api_server(Lazy::ready(api));
    let view = engine.protect(request).await.expect("protect");
    drop(engine);

    let cp = s.checkpoint().await;
    assert_eq!(cp.id, view.id);
    assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
    assert_eq!(cp.plan, "db");
    assert_eq!(cp.hooks.len(), 2, "{:?}", cp.hooks);
    let (pre, post) = (&cp.hooks[0], &cp.hooks[1]);
    assert_eq!(pre.phase, HookPhase::Pre);
    assert_eq!(pre.pod.to_string(), "shop/db-0");
    assert_eq!(pre.container, "db");
    assert_eq!(pre.command, ["sh", "-c", "echo checkpointed"]);
    assert_eq!(pre.outcome, HookOutcome::Succeeded);
    assert_eq!(pre.on_error, HookOnError::Fail);
    assert_eq!(pre.stdout, "checkpointed\n");
    assert_eq!(post.phase, HookPhase::Post);
    assert_eq!(post.container, "db", "the pod's first container");
    assert_eq!(post.on_error, HookOnError::Continue);
    assert_eq!(post.stdout, "thawed\n");
    assert!(post.started >= pre.finished(), "{pre:?} {post:?}");
    // The stand-in ran exactly the plan's matching hooks, in order.
    let execs = s.fake.execs();
    let commands: Vec<&str> = execs.iter().map(|e| e.command[2].as_str()).collect();
    assert_eq!(commands, ["echo checkpointed", "echo thawed"]);
}
