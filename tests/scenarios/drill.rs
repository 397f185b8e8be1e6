//! The disaster drill of issue 13, with the real etcd, the real Cinder rig and the
//! control-plane stand-in (garbage collector, Deployment/ReplicaSet and StatefulSet
//! controllers, namespace lifecycle): a namespace with a Deployment (2 replicas, configMap
//! volume, Secret env, a Cinder-backed claim), a StatefulSet (2 replicas, a claim each on
//! Cinder), a CronJob and a bare pod is protected into an encrypted bank; the namespace is
//! gone; restore brings it back whole: after the settle period every object exists, the
//! controllers made the pods, each StatefulSet pod's claim is bound to a volume restored
//! from its own backup (same bytes), and nothing was garbage-collected. The same again
//! into a second namespace with `--namespace-map`.

use crate::require_rig;
use crate::support::apiserver::FakeApiServer;
use crate::support::apps::{self, Drill, WEB_PODS};
use crate::support::cinder::{new_volume, unique, with_cleanup, CinderRig, Created};
use crate::support::etcd::TestEtcd;
use crate::support::workload::Podbank;
use podbank::cinder::{BackupId, VolumeId};
use podbank::protection::restore::ANNOTATION_RESTORE;
use podbank_seed as seed;
use serde_json::Value;

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The Cinder volume behind claim `claim` in `ns`, through its PV.
fn volume_of_claim(api: &FakeApiServer, ns: &str, claim: &str) -> VolumeId {
    let pvc = api
        .get("persistentvolumeclaims", ns, claim)
        .unwrap_or_else(|| panic!("claim {ns}/{claim} exists"));
    let pv_name = text(&pvc.object, "/spec/volumeName").to_string();
    let pv = api
        .get("persistentvolumes", "", &pv_name)
        .unwrap_or_else(|| panic!("PV {pv_name} of {ns}/{claim} exists"));
    assert_eq!(text(&pv.object, "/spec/claimRef/name"), claim);
    assert_eq!(text(&pv.object, "/spec/claimRef/namespace"), ns);
    VolumeId::new(text(&pv.object, "/spec/csi/volumeHandle"))
}

/// Everything the drill expects of namespace `ns` once the restore settled.
fn check_restored(api: &FakeApiServer, rig: &CinderRig, created: &Created, ns: &str, sums: &Sums) {
    let namespace = api.get("namespaces", "", ns).expect("the namespace");
    assert_eq!(
        text(
            &namespace.object,
            "/metadata/labels/pod-security.kubernetes.io~1enforce"
        ),
        "baseline",
        "the Namespace's labels come from the stored object: {}",
        namespace.object
    );
    for (resource, name) in [
        ("configmaps", "web-config"),
        ("secrets", "web-secret"),
        ("serviceaccounts", "web"),
        ("deployments", "web"),
        ("statefulsets", "db"),
        ("cronjobs", "report"),
        ("pods", "debug"),
    ] {
        let o = api
            .get(resource, ns, name)
            .unwrap_or_else(|| panic!("{resource} {ns}/{name} exists"));
        assert!(
            o.object["metadata"]["ownerReferences"].is_null(),
            "{resource} {name} names no owner: {}",
            o.object
        );
    }
    let secret = api.get("secrets", ns, "web-secret").expect("secret");
    assert!(
        secret.body.windows(12).any(|w| w == b"s3cr3t-t0ken"),
        "the Secret's data came back"
    );
    // The controllers made the pods: 2 of the Deployment (through its ReplicaSet), db-0/1.
    let pods = api.objects_of("pods", ns);
    let web: Vec<_> = pods
        .iter()
        .filter(|p| p.name.starts_with("web-") && p.content_type == "application/json")
        .collect();
    assert_eq!(
        web.len(),
        2,
        "{:?}",
        pods.iter().map(|p| &p.name).collect::<Vec<_>>()
    );
    for p in &web {
        assert_eq!(
            text(&p.object, "/metadata/ownerReferences/0/kind"),
            "ReplicaSet"
        );
        assert!(
            !WEB_PODS.contains(&p.name.as_str()),
            "made by the controller, not restored"
        );
    }
    // The Deployment's pods mount the restored claim, with the data of its backup.
    let web_volume = volume_of_claim(api, ns, "web-data");
    created.volume(&web_volume);
    assert_eq!(rig.checksum(&web_volume), sums.web);
    for n in 0..2 {
        let pod = api
            .get("pods", ns, &format!("db-{n}"))
            .unwrap_or_else(|| panic!("pod db-{n}"));
        assert_eq!(
            text(&pod.object, "/metadata/ownerReferences/0/kind"),
            "StatefulSet"
        );
        let claim = format!("data-db-{n}");
        let mounted: Vec<&str> = pod.object["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                v.pointer("/persistentVolumeClaim/claimName")
                    .and_then(Value::as_str)
            })
            .collect();
        assert_eq!(mounted, [claim.as_str()], "db-{n} uses its own claim");
        let pvc = api
            .get("persistentvolumeclaims", ns, &claim)
            .expect("claim");
        assert!(
            pvc.object["metadata"]["annotations"][ANNOTATION_RESTORE].is_string(),
            "{claim} is podbank's (the controller adopted it): {}",
            pvc.object
        );
        let volume = volume_of_claim(api, ns, &claim);
        created.volume(&volume);
        assert_eq!(
            rig.checksum(&volume),
            sums.db[n],
            "db-{n}'s claim holds the data of its own backup"
        );
    }
    assert!(api.gc_deletions().is_empty(), "{:?}", api.gc_deletions());
}

struct Sums {
    web: String,
    db: [String; 2],
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_deleted_namespace_comes_back_whole_and_again_under_another_name() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let (cinder, rig) = (&cinder, &rig);
    with_cleanup(cinder, |created| async move {
        let web = new_volume(cinder, &created, &unique("drill-web")).await;
        let db0 = new_volume(cinder, &created, &unique("drill-db0")).await;
        let db1 = new_volume(cinder, &created, &unique("drill-db1")).await;
        let sums = Sums {
            web: rig.write_pattern(&web, 1),
            db: [rig.write_pattern(&db0, 2), rig.write_pattern(&db1, 3)],
        };
        let drill = Drill {
            ns: "shop".into(),
            web_volume: web.to_string(),
            db_volumes: [db0.to_string(), db1.to_string()],
        };
        let etcd = TestEtcd::start();
        seed::write(&etcd.connect().await, apps::drill_objects(&drill))
            .await
            .expect("seed");
        let dir = tempfile::tempdir().expect("tempdir");
        let podbank = Podbank {
            etcd: etcd.url.clone(),
            bank: dir.path().join("bank"),
            clouds: rig.clouds_yaml(),
            cloud: "rig".into(),
        };
        let key = dir.path().join("bank.key");
        std::fs::write(&key, [9u8; 32]).expect("key");
        let key = key.to_str().expect("utf-8").to_string();
        let with_key = |args: &[&str]| -> Vec<String> {
            let mut out = vec!["--bank-key-file".to_string(), key.clone()];
            out.extend(args.iter().map(|a| a.to_string()));
            out
        };
        let run = |args: Vec<String>| {
            let podbank = podbank.clone();
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                podbank.ok(&args).await
            }
        };
        run(with_key(&["bank", "init"])).await;
        let out = run(with_key(&[
            "protect",
            "-n",
            "shop",
            "--backup-name",
            "drill",
            "--description",
            "disaster",
            "-o",
            "json",
        ]))
        .await;
        let view: Value = serde_json::from_str(&out.stdout).expect("json");
        let cp = view[0]["id"].as_str().expect("id").to_string();
        assert_eq!(view[0]["status"], "available", "{view}");
        for v in view[0]["volumes"].as_array().into_iter().flatten() {
            if let Some(b) = v["backupId"].as_str().filter(|b| !b.is_empty()) {
                created.backup(&BackupId::new(b));
            }
        }
        // The source changes after the backup: the restore brings back the old bytes.
        rig.write_pattern(&db0, 7);

        // The namespace is gone from the cluster.
        let api = FakeApiServer::start(&[]).await;
        let kubeconfig = api.write_kubeconfig(dir.path());
        let kubeconfig = kubeconfig.to_str().expect("utf-8").to_string();
        let out = run(with_key(&[
            "restore",
            &cp,
            "--kubeconfig",
            &kubeconfig,
            "--settle",
            "3s",
            "-o",
            "json",
        ]))
        .await;
        let record: Value = serde_json::from_str(&out.stdout).expect("json");
        assert_eq!(record["status"], "success", "{record}");
        let by_controller = record["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter(|r| r["outcome"] == "by-controller" || r["status"] == "by-controller")
            .count();
        assert!(
            by_controller >= 5,
            "pods and ReplicaSet/Job left to controllers: {record}"
        );
        api.settled().await;
        check_restored(&api, rig, &created, "shop", &sums);

        // Again, into a second namespace.
        let out = run(with_key(&[
            "restore",
            &cp,
            "--kubeconfig",
            &kubeconfig,
            "--namespace-map",
            "shop=shop-b",
            "--settle",
            "3s",
            "-o",
            "json",
        ]))
        .await;
        let record: Value = serde_json::from_str(&out.stdout).expect("json");
        assert_eq!(record["status"], "success", "{record}");
        api.settled().await;
        check_restored(&api, rig, &created, "shop-b", &sums);
    })
    .await;
}
