//! Protect captures each selected pod's closure at the revision of the pods: the owner
//! chain (ReplicaSet → Deployment, StatefulSet, Job → CronJob), the ConfigMaps, Secrets
//! and ServiceAccounts the pods reference, and their Namespace, each a resource record
//! with its type and edges. Secrets go only into an encrypted bank unless the operator
//! opts in; an owner etcd does not hold is recorded as missing. `pods dependents` and
//! `checkpoints show` show the same closure.

use std::collections::BTreeMap;

use crate::support::apps::{self, Drill, REPORT_JOB, WEB_PODS, WEB_RS};
use crate::support::etcd::TestEtcd;
use crate::support::workload::{self, Podbank};
use podbank::model::{Relation, ResourceKind, ResourceRecord, ResourceStatus, ResourceType};
use podbank_seed as seed;

fn drill() -> Drill {
    Drill {
        ns: "shop".into(),
        web_volume: "0c1d0000-0000-4000-8000-000000000001".into(),
        db_volumes: [
            "0c1d0000-0000-4000-8000-000000000002".into(),
            "0c1d0000-0000-4000-8000-000000000003".into(),
        ],
    }
}

async fn seeded() -> (TestEtcd, tempfile::TempDir, Podbank) {
    let etcd = TestEtcd::start();
    let client = etcd.connect().await;
    seed::write(&client, apps::drill_objects(&drill()))
        .await
        .expect("seed the drill");
    // A pod whose StatefulSet is gone, in a namespace whose object is gone too.
    let lone = workload::pod("lone", "db-0", &[]);
    seed::write(&client, workload::objects("lone", &lone, &[]))
        .await
        .expect("seed the lone pod");
    let dir = tempfile::tempdir().expect("tempdir");
    let podbank = Podbank::without_cinder(&etcd.url, dir.path());
    (etcd, dir, podbank)
}

fn by_name(records: &[ResourceRecord]) -> BTreeMap<(String, String), ResourceRecord> {
    records
        .iter()
        .map(|r| ((r.kind.to_string(), r.object.to_string()), r.clone()))
        .collect()
}

#[tokio::test]
async fn the_closure_is_recorded_with_types_edges_and_secrets_skipped_in_a_plain_bank() {
    let (_etcd, _dir, podbank) = seeded().await;
    podbank
        .ok(&[
            "protect",
            "--backup-name",
            "drill",
            "--description",
            "closure",
            "--no-volume-backups",
        ])
        .await;
    let bank = podbank.open_bank().await;
    let cp = workload::checkpoints(&podbank.bank).await.remove(0);
    let records = by_name(&bank.resources(&cp).await.expect("resources"));
    let get = |kind: ResourceType, name: &str| -> ResourceRecord {
        records
            .get(&(kind.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} {name} in {:#?}", records.keys()))
    };
    // Every kind of the closure, stored at the checkpoint's revision.
    for (kind, name) in [
        (ResourceType::Kube(ResourceKind::Deployment), "shop/web"),
        (
            ResourceType::Kube(ResourceKind::ReplicaSet),
            &format!("shop/{WEB_RS}"),
        ),
        (ResourceType::Kube(ResourceKind::StatefulSet), "shop/db"),
        (ResourceType::Kube(ResourceKind::CronJob), "shop/report"),
        (
            ResourceType::Kube(ResourceKind::Job),
            &format!("shop/{REPORT_JOB}"),
        ),
        (
            ResourceType::Kube(ResourceKind::ConfigMap),
            "shop/web-config",
        ),
        (ResourceType::Kube(ResourceKind::ServiceAccount), "shop/web"),
        (
            ResourceType::Kube(ResourceKind::ServiceAccount),
            "shop/default",
        ),
        (ResourceType::Kube(ResourceKind::Namespace), "shop"),
    ] {
        let r = get(kind.clone(), name);
        assert_eq!(r.status, ResourceStatus::Protected, "{kind} {name}: {r:?}");
        assert!(r.object_id.is_some(), "{kind} {name} is stored");
        assert!(r.mod_revision <= cp.revision, "{kind} {name}");
    }
    assert_eq!(
        get(ResourceType::Kube(ResourceKind::Namespace), "shop")
            .uid
            .as_str(),
        apps::uid("namespace", "", "shop")
    );

    // A plain bank keeps no Secret: recorded as skipped, with the reason.
    let secret = get(ResourceType::Kube(ResourceKind::Secret), "shop/web-secret");
    assert_eq!(secret.status, ResourceStatus::Skipped);
    assert!(secret.object_id.is_none());
    assert!(
        secret.reason.contains("not encrypted")
            && secret.reason.contains("--secrets-in-plain-bank"),
        "{}",
        secret.reason
    );

    // Edges: pod -> ReplicaSet (with its uid) and what it references; RS -> Deployment.
    let pod = get(
        ResourceType::Kube(ResourceKind::Pod),
        &format!("shop/{}", WEB_PODS[0]),
    );
    let edge = |r: &ResourceRecord, relation: Relation| -> Vec<String> {
        r.edges
            .iter()
            .filter(|e| e.relation == relation)
            .map(|e| format!("{} {} {}", e.kind, e.target, e.uid))
            .collect()
    };
    assert_eq!(
        edge(&pod, Relation::Owner),
        vec![format!(
            "OS::Kubernetes::ReplicaSet shop/{WEB_RS} {}",
            apps::uid("ReplicaSet", "shop", WEB_RS)
        )]
    );
    assert_eq!(
        edge(&pod, Relation::ConfigMap),
        vec!["OS::Kubernetes::ConfigMap shop/web-config ".to_string()]
    );
    assert_eq!(
        edge(&pod, Relation::Secret),
        vec!["OS::Kubernetes::Secret shop/web-secret ".to_string()]
    );
    assert_eq!(
        edge(&pod, Relation::ServiceAccount),
        vec!["OS::Kubernetes::ServiceAccount shop/web ".to_string()]
    );
    assert_eq!(edge(&pod, Relation::Namespace).len(), 1);
    let rs = get(
        ResourceType::Kube(ResourceKind::ReplicaSet),
        &format!("shop/{WEB_RS}"),
    );
    assert_eq!(
        edge(&rs, Relation::Owner),
        vec![format!(
            "OS::Kubernetes::Deployment shop/web {}",
            apps::uid("Deployment", "shop", "web")
        )]
    );
    let job = get(
        ResourceType::Kube(ResourceKind::Job),
        &format!("shop/{REPORT_JOB}"),
    );
    assert!(edge(&job, Relation::Owner)[0].starts_with("OS::Kubernetes::CronJob shop/report "));

    // What etcd does not hold is recorded as missing, with why.
    let sts = get(ResourceType::Kube(ResourceKind::StatefulSet), "lone/db");
    assert_eq!(sts.status, ResourceStatus::Missing, "{sts:?}");
    assert!(sts.reason.contains("not found in etcd"), "{}", sts.reason);
    assert_eq!(
        get(ResourceType::Kube(ResourceKind::Namespace), "lone").status,
        ResourceStatus::Missing
    );
    // Nothing outside the pods' closure was stored: one Deployment, one StatefulSet.
    let count = |kind: ResourceType| {
        records
            .keys()
            .filter(|(k, _)| *k == kind.to_string())
            .count()
    };
    assert_eq!(count(ResourceType::Kube(ResourceKind::Deployment)), 1);
    assert_eq!(count(ResourceType::Kube(ResourceKind::Pod)), 7);

    // `checkpoints show` lists the closure and the owners.
    let show = podbank
        .ok(&["checkpoints", "show", &cp.id.to_string()])
        .await;
    for needle in [
        "OS::Kubernetes::Deployment",
        "OS::Kubernetes::CronJob",
        "owner ReplicaSet",
        "skipped",
        "missing",
    ] {
        assert!(show.stdout.contains(needle), "{needle} in {}", show.stdout);
    }
}

#[tokio::test]
async fn secrets_are_stored_when_the_operator_opts_in_or_the_bank_is_encrypted() {
    let (_etcd, dir, podbank) = seeded().await;
    podbank
        .ok(&[
            "protect",
            "-n",
            "shop",
            "--backup-name",
            "optin",
            "--description",
            "secrets",
            "--no-volume-backups",
            "--secrets-in-plain-bank",
        ])
        .await;
    let bank = podbank.open_bank().await;
    let cp = workload::checkpoints(&podbank.bank).await.remove(0);
    let secret = bank
        .resources(&cp)
        .await
        .expect("resources")
        .into_iter()
        .find(|r| r.kind == ResourceType::Kube(ResourceKind::Secret))
        .expect("the secret's record");
    assert_eq!(secret.status, ResourceStatus::Protected);
    let stored = bank
        .read_object(&secret.object_id.expect("stored"), "the test")
        .await
        .expect("read the secret back");
    assert!(
        stored.windows(12).any(|w| w == b"s3cr3t-t0ken"),
        "the Secret's data is stored decrypted"
    );

    // An encrypted bank stores Secrets without being asked.
    let key = dir.path().join("bank.key");
    std::fs::write(&key, [7u8; 32]).expect("key");
    let key_arg = key.to_string_lossy().to_string();
    let podbank = Podbank {
        bank: dir.path().join("encrypted"),
        ..podbank
    };
    podbank
        .ok(&["bank", "init", "--bank-key-file", &key_arg])
        .await;
    let show = podbank
        .ok(&[
            "--bank-key-file",
            &key_arg,
            "protect",
            "-n",
            "shop",
            "--backup-name",
            "enc",
            "--description",
            "secrets",
            "--no-volume-backups",
            "-o",
            "json",
        ])
        .await;
    let view: serde_json::Value = serde_json::from_str(&show.stdout).expect("json");
    let id = view[0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("id in {view}"))
        .to_string();
    let shown = podbank
        .ok(&[
            "--bank-key-file",
            &key_arg,
            "checkpoints",
            "show",
            &id,
            "-o",
            "json",
        ])
        .await;
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).expect("json");
    let secret = shown["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "OS::Kubernetes::Secret")
        .expect("the secret")
        .clone();
    assert_eq!(secret["status"], "protected", "{secret}");
}

#[tokio::test]
async fn pods_dependents_show_the_closure() {
    let (_etcd, _dir, podbank) = seeded().await;
    let pod = format!("shop/{}", WEB_PODS[1]);
    let out = podbank
        .ok(&["pods", "dependents", &pod, "-o", "json"])
        .await;
    let view: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let closure: Vec<String> = view["closure"]
        .as_array()
        .expect("closure")
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["relation"].as_str().unwrap_or(""),
                c["type"].as_str().unwrap_or(""),
                c["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    for want in [
        format!("owner OS::Kubernetes::ReplicaSet shop/{WEB_RS}"),
        "owner OS::Kubernetes::Deployment shop/web".to_string(),
        "configmap OS::Kubernetes::ConfigMap shop/web-config".to_string(),
        "secret OS::Kubernetes::Secret shop/web-secret".to_string(),
        "serviceaccount OS::Kubernetes::ServiceAccount shop/web".to_string(),
        "namespace OS::Kubernetes::Namespace shop".to_string(),
    ] {
        assert!(closure.contains(&want), "{want} in {closure:#?}");
    }
    let table = podbank.ok(&["pods", "dependents", "lone/db-0"]).await;
    assert!(
        table.stdout.contains("OS::Kubernetes::StatefulSet")
            && table.stdout.contains("no: not found in etcd"),
        "{}",
        table.stdout
    );
}
