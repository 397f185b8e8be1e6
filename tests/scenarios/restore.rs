//! `podbank restore`, end to end: a checkpoint protected with a REAL Cinder backup (the
//! rig of tests/rig/cinder) is restored into a new Cinder volume that holds the source's
//! bytes, then PV, PVC and pod are written through the API-server stand-in
//! (tests/support/apiserver.rs) as protobuf, losing no field. One protect serves the dry
//! run, the interrupted and resumed restore, and the three conflict policies. Fails, naming
//! the rig, when PODBANK_TEST_CINDER_DIR is not set (ignored under
//! PODBANK_TEST_WITHOUT_RIGS=cinder).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::require_rig;
use crate::support::apiserver::{FakeApiServer, Stored};
use crate::support::cinder::{new_volume, unique, with_cleanup, CinderRig, Created};
use crate::support::etcd::TestEtcd;
use crate::support::workload::{self, Claim, Podbank};
use k8s_pb::api::core::v1 as core;
use podbank::cinder::{BackupId, VolumeId};
use podbank::model::{CheckpointStatus, RestoreStatus};
use podbank::protection::restore::{ANNOTATION_CHECKPOINT, ANNOTATION_RESTORE};
use podbank_seed as seed;
use prost::Message;

const NS: &str = "shop";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// How many times Cinder was asked to restore `backup` (from the rig's cinder-api log).
fn restore_requests(rig: &CinderRig, backup: &str) -> usize {
    workload::cinder_requests(rig, backup)
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(&format!("/backups/{backup}/restore")))
        .count()
}

/// Remember the volumes every restore of the bank made, for cleanup; return them, sorted.
async fn restored_volumes(podbank: &Podbank, created: &Created) -> Vec<String> {
    let bank = podbank.open_bank().await;
    let mut out = Vec::new();
    for r in bank.restores().await.expect("restores") {
        for (k, v) in &r.new_resources {
            if k.starts_with("volume:") && !out.contains(v) {
                created.volume(&VolumeId::new(v.clone()));
                out.push(v.clone());
            }
        }
    }
    out.sort();
    out
}

fn decode<M: Message + Default>(o: &Stored) -> M {
    assert_eq!(
        o.content_type, PROTOBUF,
        "{} {} sent as protobuf",
        o.resource, o.name
    );
    M::decode(&workload::raw_of(&o.body)[..]).expect("k8s-pb decodes what was sent")
}

fn find<'a>(objects: &'a [Stored], resource: &str, name: &str) -> &'a Stored {
    objects
        .iter()
        .find(|o| o.resource == resource && o.name == name)
        .unwrap_or_else(|| panic!("{resource} {name} was not created: {objects:?}"))
}

/// Checks the server-set fields are gone and the two podbank annotations are there, then
/// removes those annotations so the rest can be compared with the original.
fn check_and_strip_meta(
    m: &mut k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    checkpoint: &str,
    restore: &str,
) {
    assert_eq!(m.uid, None, "uid dropped");
    assert_eq!(m.resource_version, None, "resourceVersion dropped");
    assert_eq!(m.creation_timestamp, None, "creationTimestamp dropped");
    assert!(m.managed_fields.is_empty(), "managedFields dropped");
    assert_eq!(m.generation, None, "generation dropped");
    assert_eq!(
        m.annotations.remove(ANNOTATION_CHECKPOINT).as_deref(),
        Some(checkpoint)
    );
    assert_eq!(
        m.annotations.remove(ANNOTATION_RESTORE).as_deref(),
        Some(restore)
    );
    m.annotations.remove("podbank.io/restore-description");
}

/// What the API server should have received for an original object's metadata: the same,
/// without what the server sets.
fn expected_meta(m: &mut k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta, name: &str) {
    m.name = Some(name.to_string());
    m.uid = None;
    m.resource_version = None;
    m.creation_timestamp = None;
    m.managed_fields.clear();
    m.generation = None;
    m.self_link = None;
}

/// PV, PVC and pod of one restore, checked against the originals field by field.
#[allow(clippy::too_many_arguments)]
fn check_restored_set(
    objects: &[Stored],
    original_pod: &core::Pod,
    claim: &Claim,
    checkpoint: &str,
    restore: &str,
    new_volume: &str,
    pod_name: &str,
    claim_name: &str,
) {
    let (orig_pvc, orig_pv) = workload::claim_objects(NS, claim);
    // The PV of this restore: the one whose claimRef names `claim_name`.
    let pv_stored = objects
        .iter()
        .filter(|o| o.resource == "persistentvolumes")
        .find(|o| {
            let pv: core::PersistentVolume = decode(o);
            pv.spec
                .and_then(|s| s.claim_ref)
                .and_then(|r| r.name)
                .as_deref()
                == Some(claim_name)
        })
        .expect("a PV bound to the new claim");
    let mut pv: core::PersistentVolume = decode(pv_stored);
    let pv_name = pv_stored.name.clone();
    assert_ne!(pv_name, claim.pv, "the PV gets a fresh name");
    check_and_strip_meta(pv.metadata.as_mut().expect("metadata"), checkpoint, restore);
    assert_eq!(pv.status, None, "status dropped");
    let spec = pv.spec.as_ref().expect("spec");
    let csi = spec
        .persistent_volume_source
        .as_ref()
        .and_then(|s| s.csi.as_ref())
        .expect("csi");
    assert_eq!(csi.volume_handle.as_deref(), Some(new_volume));
    let cref = spec.claim_ref.as_ref().expect("claimRef");
    assert_eq!(cref.namespace.as_deref(), Some(NS));
    assert_eq!(cref.name.as_deref(), Some(claim_name));
    assert_eq!(cref.uid, None);
    assert_eq!(cref.resource_version, None);
    let mut want = orig_pv.clone();
    expected_meta(want.metadata.as_mut().expect("metadata"), &pv_name);
    want.status = None;
    {
        let s = want.spec.as_mut().expect("spec");
        let c = s.claim_ref.as_mut().expect("claimRef");
        c.name = Some(claim_name.to_string());
        c.uid = None;
        c.resource_version = None;
        s.persistent_volume_source
            .as_mut()
            .and_then(|p| p.csi.as_mut())
            .expect("csi")
            .volume_handle = Some(new_volume.to_string());
    }
    assert_eq!(pv, want, "the PV is the original but for what must change");

    let pvc_stored = find(objects, "persistentvolumeclaims", claim_name);
    assert_eq!(pvc_stored.namespace, NS);
    let mut pvc: core::PersistentVolumeClaim = decode(pvc_stored);
    check_and_strip_meta(
        pvc.metadata.as_mut().expect("metadata"),
        checkpoint,
        restore,
    );
    assert_eq!(pvc.status, None);
    assert_eq!(
        pvc.spec.as_ref().and_then(|s| s.volume_name.as_deref()),
        Some(pv_name.as_str())
    );
    let mut want = orig_pvc.clone();
    expected_meta(want.metadata.as_mut().expect("metadata"), claim_name);
    want.status = None;
    want.spec.as_mut().expect("spec").volume_name = Some(pv_name.clone());
    assert_eq!(
        pvc, want,
        "the PVC is the original but for what must change"
    );

    let pod_stored = find(objects, "pods", pod_name);
    let mut pod: core::Pod = decode(pod_stored);
    check_and_strip_meta(
        pod.metadata.as_mut().expect("metadata"),
        checkpoint,
        restore,
    );
    assert_eq!(pod.status, None);
    let mut want = original_pod.clone();
    expected_meta(want.metadata.as_mut().expect("metadata"), pod_name);
    // Its StatefulSet is not in the checkpoint: restored as a bare pod, so that no
    // ownerReference names a uid the target does not hold.
    want.metadata
        .as_mut()
        .expect("metadata")
        .owner_references
        .clear();
    want.status = None;
    {
        let s = want.spec.as_mut().expect("spec");
        s.node_name = None;
        for v in &mut s.volumes {
            if let Some(c) = v
                .volume_source
                .as_mut()
                .and_then(|s| s.persistent_volume_claim.as_mut())
            {
                c.claim_name = Some(claim_name.to_string());
            }
        }
    }
    assert_eq!(
        pod, want,
        "the pod is the original but for what must change"
    );
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn restore_from_a_real_backup_dry_run_resume_and_conflicts() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    with_cleanup(cinder, |created| async move {
        // Two pods, each with one Cinder volume holding a pattern, protected once.
        let source = new_volume(cinder, &created, &unique("restore-db")).await;
        let source_sum = rig.write_pattern(&source, 42);
        let source2 = new_volume(cinder, &created, &unique("restore-web")).await;
        let source2_sum = rig.write_pattern(&source2, 44);
        let etcd = TestEtcd::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let claim = Claim::of_cinder("data", "data-db-0", source.as_ref());
        let original_pod = workload::pod(NS, "db-0", std::slice::from_ref(&claim));
        let claim2 = Claim::of_cinder("data", "data-web-0", source2.as_ref());
        let web_pod = workload::pod(NS, "web-0", std::slice::from_ref(&claim2));
        let client = etcd.connect().await;
        let mut objects = workload::objects(NS, &original_pod, std::slice::from_ref(&claim));
        objects.extend(workload::objects(
            NS,
            &web_pod,
            std::slice::from_ref(&claim2),
        ));
        seed::write(&client, objects).await.expect("seed");
        let podbank = Podbank {
            etcd: etcd.url.clone(),
            bank: dir.path().join("bank"),
            clouds: rig.clouds_yaml(),
            cloud: "rig".into(),
        };
        let t = std::time::Instant::now();
        podbank
            .ok(&[
                "protect",
                "--backup-name",
                "r",
                "--description",
                "d",
                "-n",
                NS,
            ])
            .await;
        eprintln!("protect: {:?}", t.elapsed());
        let cp = workload::checkpoints(&podbank.bank).await.remove(0);
        assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
        let backup_of = |v: &VolumeId| {
            cp.volumes
                .iter()
                .find(|r| r.volume_id == *v)
                .expect("volume record")
                .backup_id
                .clone()
                .expect("a backup")
                .to_string()
        };
        let (backup, backup2) = (backup_of(&source), backup_of(&source2));
        created.backup(&BackupId::new(backup.clone()));
        created.backup(&BackupId::new(backup2.clone()));
        // The source changes after the backup: the restore must bring back the old bytes.
        rig.write_pattern(&source, 43);

        let api = FakeApiServer::start(&[NS]).await;
        let kubeconfig = api.write_kubeconfig(dir.path());
        let kubeconfig = kubeconfig.to_str().expect("utf-8 path");

        // 1. Dry run: the objects and plan.yaml, nothing created.
        let export = dir.path().join("export");
        podbank
            .ok(&[
                "restore",
                cp.id.as_str(),
                "--dry-run",
                "--export",
                export.to_str().expect("utf-8"),
                "--kubeconfig",
                kubeconfig,
            ])
            .await;
        let mut files: Vec<String> = std::fs::read_dir(&export)
            .expect("export dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files.len(), 8, "{files:?}");
        assert_eq!(files[7], "plan.yaml");
        // A dry run takes the target as empty: the namespace first (a bare one: the seeded
        // cluster holds no Namespace object), then each pod's PV, claim and pod.
        assert_eq!(files[0], "01-namespaces-shop.json");
        assert!(files[1].starts_with("02-persistentvolumes-") && files[1].ends_with(".pb"));
        assert_eq!(files[2], "03-persistentvolumeclaims-shop_data-db-0.pb");
        assert_eq!(files[3], "04-pods-shop_db-0.pb");
        assert!(files[4].starts_with("05-persistentvolumes-") && files[4].ends_with(".pb"));
        assert_eq!(files[5], "06-persistentvolumeclaims-shop_data-web-0.pb");
        assert_eq!(files[6], "07-pods-shop_web-0.pb");
        let exported_pod = std::fs::read(export.join(&files[3])).expect("pod file");
        let p = core::Pod::decode(&workload::raw_of(&exported_pod)[..]).expect("pod");
        assert_eq!(
            p.metadata.as_ref().and_then(|m| m.name.as_deref()),
            Some("db-0")
        );
        let plan: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(export.join("plan.yaml")).expect("plan"))
                .expect("plan.yaml is YAML");
        assert_eq!(plan["checkpoint"].as_str(), Some(cp.id.as_str()));
        assert_eq!(plan["objects"].as_sequence().map(Vec::len), Some(7));
        assert!(api.requests().is_empty(), "dry run: {:?}", api.requests());
        assert_eq!(
            restore_requests(rig, &backup),
            0,
            "dry run restores no volume"
        );
        assert_eq!(restore_requests(rig, &backup2), 0);
        assert!(podbank
            .open_bank()
            .await
            .restores()
            .await
            .expect("restores")
            .is_empty());

        // 2. A restore that fails at the first pod (the API server fails the 3rd create)
        //    and restores the second...
        api.fail_create_after(3);
        // One pod at a time: which create is the 3rd must not depend on which volume Cinder
        // finishes first.
        let args = [
            "restore",
            cp.id.as_str(),
            "--restore-description",
            "e2e",
            "--kubeconfig",
            kubeconfig,
            "--concurrency",
            "1",
        ];
        let t = std::time::Instant::now();
        let run = podbank.run(&args).await;
        eprintln!(
            "restore (volume + PV + PVC, pod refused): {:?}",
            t.elapsed()
        );
        let volumes = restored_volumes(&podbank, &created).await;
        assert_ne!(run.code, 0, "{}", run.stdout);
        assert!(run.stderr.contains("injected failure"), "{}", run.stderr);
        assert_eq!(volumes.len(), 2);
        assert_eq!(
            api.objects().len(),
            5,
            "PV and PVC made before db-0 failed, then web-0's three"
        );
        let failed = podbank
            .open_bank()
            .await
            .restores()
            .await
            .expect("restores");
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].status, RestoreStatus::Fail);

        // ... and run again: it resumes, reusing both volumes, the PVs, PVCs and web-0.
        let t = std::time::Instant::now();
        podbank.ok(&args).await;
        eprintln!("resumed restore: {:?}", t.elapsed());
        let restores = podbank
            .open_bank()
            .await
            .restores()
            .await
            .expect("restores");
        assert_eq!(restores.len(), 1, "the same restore record, resumed");
        let record = &restores[0];
        assert_eq!(record.id, failed[0].id);
        assert_eq!(record.status, RestoreStatus::Success, "{}", record.reason);
        assert_eq!(
            restored_volumes(&podbank, &created).await,
            volumes,
            "no second volume"
        );
        assert_eq!(
            restore_requests(rig, &backup),
            1,
            "Cinder restored the backup once"
        );
        assert_eq!(restore_requests(rig, &backup2), 1);
        let objects = api.objects();
        assert_eq!(objects.len(), 6, "no duplicate objects: {objects:?}");
        let creates: Vec<String> = api
            .requests()
            .into_iter()
            .filter(|r| r.starts_with("POST"))
            .collect();
        assert_eq!(
            creates,
            [
                "POST persistentvolumes ",
                "POST persistentvolumeclaims shop",
                "POST pods shop",
                "POST persistentvolumes ",
                "POST persistentvolumeclaims shop",
                "POST pods shop",
                "POST pods shop",
            ],
            "PV, PVC, pod in that order, per pod (db-0 refused, then resumed)"
        );

        // The new volumes: available, holding the sources' bytes as they were at protect.
        let new_of = |v: &VolumeId| {
            VolumeId::new(
                record
                    .new_resources
                    .get(&format!("volume:{v}"))
                    .expect("old -> new volume id in the restore record")
                    .clone(),
            )
        };
        let new_volume = new_of(&source);
        let new_volume2 = new_of(&source2);
        assert_eq!(rig.checksum(&new_volume2), source2_sum, "restored bytes");
        assert_ne!(new_volume, source);
        let v = cinder
            .get_volume(&new_volume)
            .await
            .expect("get")
            .expect("the restored volume exists");
        assert_eq!(v.status, "available");
        assert_eq!(v.size_gib, 1);
        assert_eq!(rig.checksum(&new_volume), source_sum, "restored bytes");
        assert_ne!(
            rig.checksum(&source),
            source_sum,
            "the source did change since"
        );

        check_restored_set(
            &objects,
            &original_pod,
            &claim,
            cp.id.as_str(),
            record.id.as_str(),
            new_volume.as_str(),
            "db-0",
            "data-db-0",
        );
        check_restored_set(
            &objects,
            &web_pod,
            &claim2,
            cp.id.as_str(),
            record.id.as_str(),
            new_volume2.as_str(),
            "web-0",
            "data-web-0",
        );

        // 3. Conflicts (for db-0 alone): the objects exist now.
        // fail (the default): a clear error, nothing created, no volume restored.
        let run = podbank
            .run(&[
                "restore",
                cp.id.as_str(),
                "--pod",
                "shop/db-0",
                "--kubeconfig",
                kubeconfig,
            ])
            .await;
        assert_ne!(run.code, 0);
        assert!(
            run.stderr.contains("already exists") && run.stderr.contains("shop/db-0"),
            "{}",
            run.stderr
        );
        assert_eq!(api.objects().len(), 6);
        assert_eq!(restore_requests(rig, &backup), 1);

        // skip: the pod is skipped, nothing created.
        let run = podbank
            .ok(&[
                "restore",
                cp.id.as_str(),
                "--pod",
                "shop/db-0",
                "--conflict",
                "skip",
                "--kubeconfig",
                kubeconfig,
                "-o",
                "json",
            ])
            .await;
        assert!(run.stdout.contains("skipped"), "{}", run.stdout);
        assert_eq!(api.objects().len(), 6);
        assert_eq!(restore_requests(rig, &backup), 1);

        // rename: a second volume, and PV, PVC and pod under new names.
        let t = std::time::Instant::now();
        podbank
            .ok(&[
                "restore",
                cp.id.as_str(),
                "--pod",
                "shop/db-0",
                "--conflict",
                "rename",
                "--kubeconfig",
                kubeconfig,
            ])
            .await;
        eprintln!("restore with --conflict rename: {:?}", t.elapsed());
        let volumes = restored_volumes(&podbank, &created).await;
        assert_eq!(volumes.len(), 3);
        let objects = api.objects();
        assert_eq!(objects.len(), 9, "{objects:?}");
        let restores = podbank
            .open_bank()
            .await
            .restores()
            .await
            .expect("restores");
        let renamed = restores
            .iter()
            .find(|r| r.parameters_json.contains("rename"))
            .expect("the rename restore");
        assert_eq!(renamed.status, RestoreStatus::Success, "{}", renamed.reason);
        let suffix = renamed.id.as_str().rsplit('-').next().expect("suffix");
        let new_pod = format!("db-0-{suffix}");
        let new_claim = format!("data-db-0-{suffix}");
        let second_volume = renamed
            .new_resources
            .get(&format!("volume:{source}"))
            .expect("the rename restore's volume");
        assert!(*second_volume != new_volume.to_string());
        assert_eq!(
            rig.checksum(&VolumeId::new(second_volume.clone())),
            source_sum
        );
        check_restored_set(
            &objects,
            &original_pod,
            &claim,
            cp.id.as_str(),
            renamed.id.as_str(),
            second_volume,
            &new_pod,
            &new_claim,
        );
        let by_name: BTreeMap<String, &Stored> =
            objects.iter().map(|o| (o.name.clone(), o)).collect();
        assert!(by_name.contains_key("db-0") && by_name.contains_key(&new_pod));
    })
    .await;
}

#[tokio::test]
async fn unknown_checkpoint_and_invalid_restore_name_are_clear_errors_that_create_nothing() {
    // No Cinder needed: the checkpoint is made without volume backups.
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let claim = Claim {
        volume: "data".into(),
        claim: "data-db-0".into(),
        pv: "pvc-no-backups".into(),
        cinder_id: "00000000-0000-4000-8000-0000000000aa".into(),
    };
    let pod = workload::pod(NS, "db-0", std::slice::from_ref(&claim));
    let client = etcd.connect().await;
    seed::write(
        &client,
        workload::objects(NS, &pod, std::slice::from_ref(&claim)),
    )
    .await
    .expect("seed");
    let podbank = Podbank::without_cinder(&etcd.url, dir.path());
    podbank
        .ok(&[
            "protect",
            "--backup-name",
            "b",
            "--description",
            "d",
            "--no-volume-backups",
            "-n",
            NS,
        ])
        .await;
    let cp = workload::checkpoints(&podbank.bank).await.remove(0);
    let api = FakeApiServer::start(&[NS]).await;
    let kubeconfig = api.write_kubeconfig(dir.path());
    let kubeconfig = kubeconfig.to_str().expect("utf-8 path");

    let unknown = "20260101T000000Z-deadbeef";
    let run = podbank
        .run(&["restore", unknown, "--kubeconfig", kubeconfig])
        .await;
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains(unknown),
        "names the checkpoint: {}",
        run.stderr
    );

    let run = podbank
        .run(&[
            "restore",
            cp.id.as_str(),
            "--restore-name",
            "Not_A_DNS_Name",
            "--kubeconfig",
            kubeconfig,
        ])
        .await;
    assert_eq!(run.code, 2, "a usage error: {}", run.stderr);
    assert!(
        run.stderr.contains("restore_name") && run.stderr.contains("Not_A_DNS_Name"),
        "{}",
        run.stderr
    );

    assert!(api.requests().is_empty(), "{:?}", api.requests());
    assert!(
        podbank
            .open_bank()
            .await
            .restores()
            .await
            .expect("restores")
            .is_empty(),
        "no restore record"
    );
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_restore_killed_while_cinder_restores_the_volume_resumes_without_a_second_volume() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    with_cleanup(cinder, |created| async move {
        let source = new_volume(cinder, &created, &unique("restore-kill")).await;
        let source_sum = rig.write_pattern(&source, 7);
        let etcd = TestEtcd::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let claim = Claim::of_cinder("data", "data-db-0", source.as_ref());
        let pod = workload::pod(NS, "db-0", std::slice::from_ref(&claim));
        let client = etcd.connect().await;
        seed::write(
            &client,
            workload::objects(NS, &pod, std::slice::from_ref(&claim)),
        )
        .await
        .expect("seed");
        let podbank = Podbank {
            etcd: etcd.url.clone(),
            bank: dir.path().join("bank"),
            clouds: rig.clouds_yaml(),
            cloud: "rig".into(),
        };
        podbank
            .ok(&[
                "protect",
                "--backup-name",
                "k",
                "--description",
                "d",
                "-n",
                NS,
            ])
            .await;
        let cp = workload::checkpoints(&podbank.bank).await.remove(0);
        let backup = cp
            .volumes
            .iter()
            .find(|v| v.volume_id == source)
            .expect("volume record")
            .backup_id
            .clone()
            .expect("a backup")
            .to_string();
        created.backup(&BackupId::new(backup.clone()));
        let api = FakeApiServer::start(&[NS]).await;
        let kubeconfig = api.write_kubeconfig(dir.path());
        let args = [
            "restore",
            cp.id.as_str(),
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8"),
        ];

        // Kill the restore while Cinder is still writing the new volume.
        let mut child = podbank.spawn(&args);
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while restore_requests(rig, &backup) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the restore never asked Cinder"
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("restore ended ({status}) before Cinder was asked");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Give podbank a moment to record the volume Cinder returned (it does so before it
        // waits); a podbank that records it only once the volume is ready is killed anyway.
        let recorded = std::time::Instant::now() + Duration::from_secs(2);
        while std::time::Instant::now() < recorded {
            let bank = podbank.open_bank().await;
            if let Ok(restores) = bank.restores().await {
                if restores
                    .iter()
                    .any(|r| r.new_resources.contains_key(&format!("volume:{source}")))
                {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.kill().await.expect("kill restore");
        let volumes = restored_volumes(&podbank, &created).await;
        assert_eq!(volumes.len(), 1, "the volume being restored is recorded");
        let v = cinder
            .get_volume(&VolumeId::new(volumes[0].clone()))
            .await
            .expect("get")
            .expect("exists");
        eprintln!("restore killed while the new volume was {}", v.status);
        assert!(api.objects().is_empty());

        // Run again: it waits for that volume and goes on; Cinder restored the backup once.
        podbank.ok(&args).await;
        let restores = podbank
            .open_bank()
            .await
            .restores()
            .await
            .expect("restores");
        assert_eq!(restores.len(), 1, "the same restore, resumed");
        assert_eq!(restores[0].status, RestoreStatus::Success);
        assert_eq!(restored_volumes(&podbank, &created).await, volumes);
        assert_eq!(restore_requests(rig, &backup), 1, "no second volume");
        assert_eq!(api.objects().len(), 3);
        assert_eq!(rig.checksum(&VolumeId::new(volumes[0].clone())), source_sum);
    })
    .await;
}
