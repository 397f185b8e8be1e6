//! What protect records of each pod volume, against what `pods dependents` says of it. A
//! real etcd holds the seeder's mix (Cinder CSI and inline Cinder volumes, generic
//! ephemeral volumes, claims of another driver and missing claims, emptyDir and configMap)
//! plus two pods sharing one claim; a checkpoint is made without volume backups, and every
//! volume record is read back from the bank. Protect resolves volumes while the pods stream
//! past (it keeps no pod summaries); listings resolve them from summaries kept to the end:
//! both must say the same of every volume.

use std::collections::BTreeMap;

use crate::support::etcd::TestEtcd;
use crate::support::workload::{self, Claim, Podbank};
use podbank::codec::Decoder;
use podbank::etcd::ScanOptions;
use podbank::model::{CheckpointStatus, VolumeRecord, VolumeStatus};
use podbank::protection::inventory::NoHandler;
use podbank::protection::{read_inventory, Selection};
use podbank::resources::DependentStatus;
use podbank_seed::{self as seed, SeedPlan};

/// What is recorded of one pod volume: its Cinder volume, or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Cinder { volume_id: String },
    Not { reason: String, claim: String },
}

#[tokio::test]
async fn every_pod_volume_is_recorded_as_dependents_resolve_it() {
    let etcd = TestEtcd::start();
    let client = etcd.connect().await;
    seed::write(
        &client,
        seed::generate(&SeedPlan {
            pods: 300,
            namespaces: 5,
            ..SeedPlan::default()
        }),
    )
    .await
    .expect("seed");
    let shared = Claim::of_cinder(
        "data",
        "shared-data",
        "5a4ed000-0000-4000-8000-000000000001",
    );
    for name in ["a-0", "b-0"] {
        let pod = workload::pod("shared", name, std::slice::from_ref(&shared));
        seed::write(
            &client,
            workload::objects("shared", &pod, std::slice::from_ref(&shared)),
        )
        .await
        .expect("seed the sharing pods");
    }

    // What listings say of every pod volume.
    let inventory = read_inventory(
        &client,
        &Decoder::new(None),
        &Selection::default(),
        &ScanOptions::default(),
        &mut NoHandler,
    )
    .await
    .expect("inventory");
    assert_eq!(inventory.pods.len(), 302);
    let mut expected: BTreeMap<(String, String), Verdict> = BTreeMap::new();
    for pod in &inventory.pods {
        let name = format!("{}/{}", pod.info.namespace, pod.info.name);
        for dep in inventory.catalog.dependents(&pod.info) {
            let verdict = match (&dep.status, &dep.volume_id) {
                (DependentStatus::Protectable, Some(id)) => Verdict::Cinder {
                    volume_id: id.clone(),
                },
                (DependentStatus::NotProtectable(reason), _) => Verdict::Not {
                    reason: reason.clone(),
                    claim: dep
                        .claim
                        .as_ref()
                        .map(|c| format!("{}/{c}", pod.info.namespace))
                        .unwrap_or_default(),
                },
                (DependentStatus::Protectable, None) => panic!("protectable without an id"),
            };
            expected.insert((name.clone(), dep.pod_volume.clone()), verdict);
        }
    }
    let kinds = |v: &Verdict| matches!(v, Verdict::Cinder { .. });
    assert!(expected.values().any(kinds) && !expected.values().all(kinds));

    // What the checkpoint records.
    let dir = tempfile::tempdir().expect("tempdir");
    let podbank = Podbank::without_cinder(&etcd.url, dir.path());
    podbank
        .ok(&[
            "protect",
            "--backup-name",
            "records",
            "--description",
            "every volume",
            "--no-volume-backups",
        ])
        .await;
    let cp = workload::checkpoints(&podbank.bank).await.remove(0);
    assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
    assert_eq!(cp.pods, 302);
    assert!(
        cp.volumes.iter().all(|v| !v.volume_id.is_empty()),
        "the manifest holds Cinder volumes only"
    );
    let records = podbank
        .open_bank()
        .await
        .volume_records(&cp)
        .await
        .expect("volume records");
    assert_eq!(
        records.len() as u64,
        cp.volumes.len() as u64 + cp.volume_table_count
    );
    let mut recorded: BTreeMap<(String, String), Verdict> = BTreeMap::new();
    for v in &records {
        if v.volume_id.is_empty() {
            assert_eq!(v.pods.len(), 1, "{v:?}");
            assert_eq!(v.status, VolumeStatus::NotProtected);
            let old = recorded.insert(
                (v.pods[0].to_string(), v.pod_volume.clone()),
                Verdict::Not {
                    reason: v.reason.clone(),
                    claim: v
                        .claim
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                },
            );
            assert!(old.is_none(), "recorded twice: {v:?}");
        } else {
            assert_eq!(v.reason, "volume backups disabled (--no-volume-backups)");
            for pod in &v.pods {
                let old = recorded.insert(
                    (pod.to_string(), v.pod_volume.clone()),
                    Verdict::Cinder {
                        volume_id: v.volume_id.to_string(),
                    },
                );
                assert!(old.is_none(), "recorded twice: {v:?}");
            }
        }
    }
    assert_eq!(recorded, expected);

    // The shared claim's volume is one record naming both pods.
    let shared_record: Vec<&VolumeRecord> = cp
        .volumes
        .iter()
        .filter(|v| v.volume_id.as_str() == shared.cinder_id)
        .collect();
    assert_eq!(shared_record.len(), 1);
    let pods: Vec<String> = shared_record[0]
        .pods
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(pods, ["shared/a-0", "shared/b-0"]);
    assert_eq!(
        shared_record[0]
            .claim
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("shared/shared-data")
    );

    // `checkpoints show` lists them all.
    let show = podbank
        .ok(&["checkpoints", "show", cp.id.as_str(), "-o", "json"])
        .await;
    let view: serde_json::Value = serde_json::from_str(&show.stdout).expect("json");
    assert_eq!(
        view["volumes"].as_array().map(Vec::len),
        Some(records.len())
    );
}
