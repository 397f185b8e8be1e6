//! Restore of workloads against the control-plane stand-in (no volumes: a stateless
//! namespace, protected without volume backups): `--pods-only` gives bare pods that the
//! garbage collector leaves alone; an owner that already exists follows the conflict policy;
//! a restore whose objects are deleted while it settles fails, naming the object and the
//! Event's reason.

use std::time::Duration;

use crate::support::apiserver::FakeApiServer;
use crate::support::apps::{self, WEB_PODS};
use crate::support::etcd::TestEtcd;
use crate::support::workload::{self, Podbank};
use podbank_seed as seed;
use serde_json::{json, Value};

struct Scene {
    _etcd: TestEtcd,
    dir: tempfile::TempDir,
    podbank: Podbank,
    checkpoint: String,
    api: FakeApiServer,
    kubeconfig: String,
}

/// A protected stateless namespace `shop`, and a stand-in where `shop` exists, empty.
async fn scene() -> Scene {
    let etcd = TestEtcd::start();
    seed::write(&etcd.connect().await, apps::stateless_objects("shop"))
        .await
        .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let podbank = Podbank::without_cinder(&etcd.url, dir.path());
    podbank
        .ok(&[
            "protect",
            "-n",
            "shop",
            "--backup-name",
            "apps",
            "--description",
            "stateless",
            "--no-volume-backups",
            "--secrets-in-plain-bank",
        ])
        .await;
    let checkpoint = workload::checkpoints(&podbank.bank)
        .await
        .remove(0)
        .id
        .to_string();
    let api = FakeApiServer::start(&["shop"]).await;
    let kubeconfig = api
        .write_kubeconfig(dir.path())
        .to_str()
        .expect("utf-8")
        .to_string();
    Scene {
        _etcd: etcd,
        dir,
        podbank,
        checkpoint,
        api,
        kubeconfig,
    }
}

impl Scene {
    async fn restore(&self, extra: &[&str]) -> crate::support::workload::Run {
        let mut args = vec![
            "restore",
            &self.checkpoint,
            "--kubeconfig",
            &self.kubeconfig,
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        self.podbank.run(&args).await
    }
}

fn record(run: &crate::support::workload::Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[tokio::test]
async fn pods_only_gives_bare_pods_that_the_garbage_collector_leaves_alone() {
    let s = scene().await;
    let run = s.restore(&["--pods-only", "--settle", "2s"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let rec = record(&run);
    assert_eq!(rec["status"], "success", "{rec}");
    s.api.settled().await;
    for pod in WEB_PODS.iter().chain(&["debug"]) {
        let p = s
            .api
            .get("pods", "shop", pod)
            .unwrap_or_else(|| panic!("pod {pod} restored"));
        assert!(
            p.object["metadata"]["ownerReferences"].is_null(),
            "{pod} is bare: {}",
            p.object
        );
    }
    assert!(s.api.objects_of("deployments", "shop").is_empty());
    assert!(s.api.objects_of("replicasets", "shop").is_empty());
    assert!(
        s.api.gc_deletions().is_empty(),
        "{:?}",
        s.api.gc_deletions()
    );
    // The owners are reported as not restored.
    let owners: Vec<&Value> = rec["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r["type"] == "OS::Kubernetes::ReplicaSet")
        .collect();
    assert_eq!(owners.len(), 1, "{rec}");
    assert_eq!(owners[0]["status"], "skipped");
    assert!(
        owners[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("--pods-only"),
        "{}",
        owners[0]
    );
}

/// A Deployment `web` already in the target, not podbank's.
fn live_deployment(api: &FakeApiServer) -> String {
    let live = api
        .create_json(
            "deployments",
            "shop",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "labels": {"live": "yes"}},
                   "spec": {"replicas": 1,
                            "selector": {"matchLabels": {"app": "live"}},
                            "template": {"metadata": {"labels": {"app": "live"}},
                                         "spec": {"containers": [{"name": "c", "image": "live:1"}]}}}}),
        )
        .expect("live deployment");
    live["metadata"]["uid"].as_str().expect("uid").to_string()
}

#[tokio::test]
async fn an_owner_in_the_target_follows_the_conflict_policy() {
    let s = scene().await;
    let live_uid = live_deployment(&s.api);

    // fail (the default): the Deployment's unit fails, naming it; the rest is restored.
    let run = s.restore(&["--settle", "1s"]).await;
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("Deployment shop/web already exists"),
        "{}",
        run.stderr
    );
    assert!(s.api.get("pods", "shop", "debug").is_some());
    assert_eq!(
        s.api.get("deployments", "shop", "web").expect("live").uid,
        live_uid
    );

    // skip: the live owner is kept, the restore succeeds.
    let run = s.restore(&["--conflict", "skip", "--settle", "1s"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rec = record(&run);
    let web = rec["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "OS::Kubernetes::Deployment")
        .expect("the Deployment's outcome")
        .clone();
    assert_eq!(web["status"], "skipped", "{web}");
    assert_eq!(
        s.api.get("deployments", "shop", "web").expect("live").uid,
        live_uid
    );
    assert_eq!(s.api.objects_of("deployments", "shop").len(), 1);

    // rename: a renamed copy, whose controller makes its own pods.
    let run = s.restore(&["--conflict", "rename", "--settle", "1s"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    s.api.settled().await;
    let deployments = s.api.objects_of("deployments", "shop");
    assert_eq!(deployments.len(), 2, "{deployments:?}");
    let copy = deployments
        .iter()
        .find(|d| d.name != "web")
        .expect("the renamed copy");
    assert!(copy.name.starts_with("web-"), "{}", copy.name);
    let copies_pods = s
        .api
        .objects_of("pods", "shop")
        .into_iter()
        .filter(|p| p.name.starts_with(&copy.name))
        .count();
    assert_eq!(copies_pods, 2, "the copy's ReplicaSet made its 2 pods");
    assert_eq!(
        s.api.get("deployments", "shop", "web").expect("live").uid,
        live_uid,
        "the live Deployment is untouched"
    );
    assert!(
        s.api.gc_deletions().is_empty(),
        "{:?}",
        s.api.gc_deletions()
    );
}

#[tokio::test]
async fn a_restore_whose_objects_are_deleted_while_it_settles_fails_naming_them() {
    let s = scene().await;
    let podbank = s.podbank.clone();
    let (checkpoint, kubeconfig) = (s.checkpoint.clone(), s.kubeconfig.clone());
    let run = tokio::spawn(async move {
        podbank
            .run(&[
                "restore",
                &checkpoint,
                "--pods-only",
                "--pod",
                "shop/debug",
                "--kubeconfig",
                &kubeconfig,
                "--settle",
                "20s",
            ])
            .await
    });
    assert!(
        s.api
            .wait_for(Duration::from_secs(60), |a| a
                .get("pods", "shop", "debug")
                .is_some())
            .await,
        "the pod was restored"
    );
    let pod = s.api.get("pods", "shop", "debug").expect("pod");
    // The node evicts it (the Event a kubelet records), and it is gone.
    s.api
        .create_json(
            "events",
            "shop",
            json!({"apiVersion": "v1", "kind": "Event",
                   "metadata": {"name": "debug.evicted"},
                   "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "debug",
                                      "namespace": "shop", "uid": pod.uid},
                   "reason": "Evicted", "message": "The node was low on resource: memory.",
                   "type": "Warning"}),
        )
        .expect("event");
    s.api.delete("pods", "shop", "debug").expect("delete");
    let run = run.await.expect("the restore ran");
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains("Pod shop/debug was deleted")
            && run
                .stderr
                .contains("Evicted: The node was low on resource: memory."),
        "{}",
        run.stderr
    );
    let _ = &s.dir;
}

#[tokio::test]
async fn a_dry_run_shows_the_whole_plan_in_order_with_each_edit() {
    let s = scene().await;
    let export = s.dir.path().join("plan");
    let run = s
        .restore(&["--dry-run", "--export", export.to_str().expect("utf-8")])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(s.api.requests().is_empty(), "{:?}", s.api.requests());
    let plan: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(export.join("plan.yaml")).expect("plan"))
            .expect("yaml");
    let kinds: Vec<(String, String)> = plan["objects"]
        .as_sequence()
        .expect("objects")
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or("").to_string(),
                o["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let at = |kind: &str, name: &str| {
        kinds
            .iter()
            .position(|(k, n)| k == kind && n == name)
            .unwrap_or_else(|| panic!("{kind} {name} in {kinds:?}"))
    };
    // Top-down: the namespace, what the pods reference, then the roots.
    assert_eq!(at("Namespace", "shop"), 0);
    assert!(at("ConfigMap", "web-config") < at("Deployment", "web"));
    assert!(at("Secret", "web-secret") < at("Deployment", "web"));
    assert!(at("ServiceAccount", "web") < at("Deployment", "web"));
    at("Pod", "debug");
    assert!(
        !kinds.iter().any(|(k, _)| k == "ReplicaSet"),
        "the ReplicaSet is left to the Deployment controller: {kinds:?}"
    );
    // The pods of the Deployment are left to its controller, and the plan says so.
    let left: Vec<String> = plan["not_created"]
        .as_sequence()
        .expect("not_created")
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["source"].as_str().unwrap_or(""),
                o["status"].as_str().unwrap_or("")
            )
        })
        .collect();
    for pod in WEB_PODS {
        assert!(
            left.contains(&format!("pod:shop/{pod} by-controller")),
            "{left:?}"
        );
    }
    // Each object's edits are listed.
    let pod = plan["objects"]
        .as_sequence()
        .expect("objects")
        .iter()
        .find(|o| o["name"] == "debug")
        .expect("the bare pod");
    let changes = format!("{:?}", pod["changes"]);
    assert!(changes.contains("spec.nodeName cleared"), "{changes}");
}

#[tokio::test]
async fn a_secret_left_out_of_a_plain_bank_is_named_as_one_that_must_exist_in_the_target() {
    let s = scene().await;
    // A second checkpoint, without opting Secrets into the plain bank.
    s.podbank
        .ok(&[
            "protect",
            "-n",
            "shop",
            "--backup-name",
            "no-secrets",
            "--description",
            "plain bank",
            "--no-volume-backups",
        ])
        .await;
    let plain = workload::checkpoints(&s.podbank.bank)
        .await
        .into_iter()
        .find(|c| c.backup_name == "no-secrets")
        .expect("the second checkpoint")
        .id
        .to_string();
    let run = s
        .podbank
        .run(&[
            "restore",
            &plain,
            "--kubeconfig",
            &s.kubeconfig,
            "--settle",
            "0",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let rec = record(&run);
    let secret = rec["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "OS::Kubernetes::Secret")
        .unwrap_or_else(|| panic!("the Secret's outcome: {rec}"));
    assert_eq!(secret["status"], "skipped", "{secret}");
    let reason = secret["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("must exist in the target") && reason.contains("not encrypted"),
        "{reason}"
    );
    assert!(s.api.get("secrets", "shop", "web-secret").is_none());
    // What the checkpoint holds is restored.
    assert!(s.api.get("configmaps", "shop", "web-config").is_some());
}

/// The outcome of `kind` in a restore record.
fn outcome_of(rec: &Value, kind: &str) -> Value {
    rec["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == kind)
        .unwrap_or_else(|| panic!("the {kind}'s outcome: {rec}"))
        .clone()
}

#[tokio::test]
async fn a_referenced_configmap_in_the_target_is_compared_and_follows_the_conflict_policy() {
    let s = scene().await;
    // The same content: used as it is, whatever the policy.
    s.api
        .create_json(
            "configmaps",
            "shop",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "web-config", "labels": {"live": "yes"}},
                   "data": {"site.conf": "listen 8080\n"}}),
        )
        .expect("live configmap");
    let run = s.restore(&["--settle", "0"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cm = outcome_of(&record(&run), "OS::Kubernetes::ConfigMap");
    assert_eq!(cm["status"], "skipped", "{cm}");
    assert!(
        cm["reason"]
            .as_str()
            .unwrap_or("")
            .contains("checkpoint's content"),
        "{cm}"
    );

    // Other content, in a fresh namespace: fail names it and leaves it alone...
    let other = FakeApiServer::start(&["shop"]).await;
    other
        .create_json(
            "configmaps",
            "shop",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "web-config"},
                   "data": {"site.conf": "listen 9090\n"}}),
        )
        .expect("live configmap");
    let kubeconfig_dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = other.write_kubeconfig(kubeconfig_dir.path());
    let kubeconfig = kubeconfig.to_str().expect("utf-8");
    let restore = |extra: &'static [&'static str]| {
        let mut args = vec![
            "restore",
            s.checkpoint.as_str(),
            "--kubeconfig",
            kubeconfig,
            "--settle",
            "0",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        let podbank = &s.podbank;
        async move { podbank.run(&args).await }
    };
    let run = restore(&[]).await;
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("ConfigMap shop/web-config exists in the target with other content"),
        "{}",
        run.stderr
    );
    let live = other.get("configmaps", "shop", "web-config").expect("live");
    assert_eq!(live.object["data"]["site.conf"], "listen 9090\n");

    // ... and skip keeps the live one, saying so.
    let run = restore(&["--conflict", "skip"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cm = outcome_of(&record(&run), "OS::Kubernetes::ConfigMap");
    assert_eq!(cm["status"], "skipped", "{cm}");
    assert!(
        cm["reason"]
            .as_str()
            .unwrap_or("")
            .contains("other content"),
        "{cm}"
    );
    let live = other.get("configmaps", "shop", "web-config").expect("live");
    assert_eq!(live.object["data"]["site.conf"], "listen 9090\n");
}

/// A pod of a seeded Deployment (`podbank demo seed`'s cluster) restored with its owners into
/// an empty stand-in: the Namespace, ConfigMap, Secret and ServiceAccount it needs, the
/// Deployment (whose controllers make the ReplicaSet and pod again), and nothing is
/// garbage-collected.
#[tokio::test]
async fn a_seeded_deployments_pod_restores_with_its_owners_and_nothing_is_collected() {
    let etcd = TestEtcd::start();
    let plan = seed::SeedPlan {
        pods: 10,
        namespaces: 5,
        ..seed::SeedPlan::default()
    };
    seed::write(&etcd.connect().await, seed::generate(&plan))
        .await
        .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let podbank = Podbank::without_cinder(&etcd.url, dir.path());
    podbank
        .ok(&[
            "protect",
            "ns-4/cache-4",
            "--backup-name",
            "seeded",
            "--description",
            "a Deployment's pod",
            "--no-volume-backups",
            "--secrets-in-plain-bank",
        ])
        .await;
    let checkpoint = workload::checkpoints(&podbank.bank)
        .await
        .remove(0)
        .id
        .to_string();
    let api = FakeApiServer::start(&[]).await;
    let kubeconfig = api.write_kubeconfig(dir.path());
    let run = podbank
        .run(&[
            "restore",
            &checkpoint,
            "--pod",
            "ns-4/cache-4",
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8"),
            "--settle",
            "2s",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let rec = record(&run);
    assert_eq!(rec["status"], "success", "{rec}");
    api.settled().await;
    assert!(api.get("namespaces", "", "ns-4").is_some(), "the Namespace");
    for (resource, name) in [
        ("deployments", "cache"),
        ("configmaps", "cache-config"),
        ("secrets", "cache-credentials"),
        ("serviceaccounts", "cache"),
    ] {
        assert!(
            api.get(resource, "ns-4", name).is_some(),
            "{resource} ns-4/{name} restored: {rec}"
        );
    }
    assert_eq!(api.objects_of("replicasets", "ns-4").len(), 1);
    let pods = api.objects_of("pods", "ns-4");
    assert_eq!(pods.len(), 1, "the Deployment's one replica: {pods:?}");
    assert!(
        api.gc_deletions().is_empty(),
        "garbage-collected: {:?}",
        api.gc_deletions()
    );
}
