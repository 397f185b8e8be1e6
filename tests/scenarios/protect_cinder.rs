//! `podbank protect` and `podbank delete`, end to end, with REAL Cinder backups (the rig of
//! tests/rig/cinder in keystone mode) and a real etcd holding a pod whose claims are bound
//! to PVs that point at real Cinder volumes. Fails, naming the rig, when
//! PODBANK_TEST_CINDER_DIR is not set (ignored under PODBANK_TEST_WITHOUT_RIGS=cinder).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::require_rig;
use crate::support::apiserver::FakeApiServer;
use crate::support::cinder::{
    new_volume, new_volume_of_type, unique, with_cleanup, CinderRig, RigGroups,
};
use crate::support::etcd::TestEtcd;
use crate::support::workload::{self, Claim, Podbank};
use podbank::cinder::{BackupId, BackupStatus, Cinder, VolumeId};
use podbank::model::{Checkpoint, CheckpointStatus, TakenBy, VolumeRecord, VolumeStatus};
use podbank::protection::volumes::CHECKPOINT_METADATA;
use podbank_seed as seed;

/// etcd with one pod in `ns` mounting one claim per volume; the podbank binary pointed at
/// it, a fresh bank and the rig.
struct Scene {
    _etcd: TestEtcd,
    _dir: tempfile::TempDir,
    podbank: Podbank,
    ns: String,
}

async fn scene(rig: &CinderRig, volumes: &[&VolumeId]) -> Scene {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let ns = "shop".to_string();
    let claims: Vec<Claim> = volumes
        .iter()
        .enumerate()
        .map(|(i, v)| Claim::of_cinder(&format!("data{i}"), &format!("data{i}-db-0"), v.as_ref()))
        .collect();
    let pod = workload::pod(&ns, "db-0", &claims);
    let client = etcd.connect().await;
    seed::write(&client, workload::objects(&ns, &pod, &claims))
        .await
        .expect("seed etcd");
    let podbank = Podbank {
        etcd: etcd.url.clone(),
        bank: dir.path().join("bank"),
        clouds: rig.clouds_yaml(),
        cloud: "rig".into(),
    };
    Scene {
        _etcd: etcd,
        _dir: dir,
        podbank,
        ns,
    }
}

/// The checkpoint's Cinder volume records, by volume id.
fn cinder_records(cp: &Checkpoint) -> Vec<&VolumeRecord> {
    cp.volumes
        .iter()
        .filter(|v| !v.volume_id.is_empty())
        .collect()
}

/// A record's backup id as text (empty: none).
fn bid(v: &VolumeRecord) -> String {
    v.backup_id
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// The Cinder backups whose name says they belong to checkpoint `id`.
async fn backups_named_for(cinder: &Cinder, id: impl std::fmt::Display) -> BTreeSet<String> {
    cinder
        .list_backups(Some(&format!("podbank-{id}-")))
        .await
        .expect("list backups")
        .into_iter()
        .map(|b| b.id.to_string())
        .collect()
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn two_volumes_then_incremental_then_delete_older_first_removes_every_backup() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    with_cleanup(cinder, |created| async move {
        let name = unique("protect");
        let v1 = new_volume(cinder, &created, &format!("{name}-a")).await;
        let v2 = new_volume(cinder, &created, &format!("{name}-b")).await;
        rig.write_pattern(&v1, 1);
        rig.write_pattern(&v2, 2);
        let scene = scene(rig, &[&v1, &v2]).await;
        let pb_ = &scene.podbank;

        // 1. A pod with two Cinder volumes: checkpoint available, both backups available.
        let t = std::time::Instant::now();
        pb_.ok(&[
            "protect",
            "--backup-name",
            "first",
            "--description",
            "two volumes",
            "-n",
            &scene.ns,
            "-o",
            "json",
        ])
        .await;
        eprintln!("first protect (2 full backups): {:?}", t.elapsed());
        let cps = workload::checkpoints(&pb_.bank).await;
        assert_eq!(cps.len(), 1);
        let first = cps[0].clone();
        assert_eq!(
            first.status,
            CheckpointStatus::Available,
            "{}",
            first.reason
        );
        assert_eq!(first.pods, 1);
        let records = cinder_records(&first);
        let ids: BTreeSet<String> = records.iter().map(|v| v.volume_id.to_string()).collect();
        assert_eq!(ids, BTreeSet::from([v1.to_string(), v2.to_string()]));
        for v in &records {
            created.backup(&v.backup_id.clone().expect("a backup"));
        }
        for v in &records {
            assert_eq!(v.status, VolumeStatus::Available, "{v:?}");
            assert!(!v.incremental, "the first backup of a volume is full");
            let b = cinder
                .get_backup(&v.backup_id.clone().expect("a backup"))
                .await
                .expect("get backup")
                .expect("the backup the checkpoint lists exists");
            assert_eq!(b.status, BackupStatus::Available);
            assert_eq!(b.volume_id, v.volume_id);
            assert!(!b.is_incremental);
            assert!(
                b.name.starts_with(&format!("podbank-{}-", first.id)),
                "{}",
                b.name
            );
            assert_eq!(
                b.metadata.get(CHECKPOINT_METADATA).map(String::as_str),
                Some(first.id.as_str())
            );
            let pods: Vec<String> = v.pods.iter().map(ToString::to_string).collect();
            assert_eq!(pods, vec![format!("{}/db-0", scene.ns)]);
        }
        assert_eq!(
            backups_named_for(cinder, &first.id).await,
            records.iter().map(|v| bid(v)).collect(),
            "Cinder holds exactly the backups the checkpoint lists"
        );
        // The pod's emptyDir is recorded as not protected, which is not an error: in the
        // checkpoint's volume tables, for the manifest lists its Cinder volumes only.
        assert!(first.volumes.iter().all(|v| !v.volume_id.is_empty()));
        let all = pb_
            .open_bank()
            .await
            .volume_records(&first)
            .await
            .expect("volume records");
        let scratch = all
            .iter()
            .find(|v| v.pod_volume == "scratch")
            .expect("a record of the emptyDir volume");
        assert_eq!(scratch.status, VolumeStatus::NotProtected);
        assert!(scratch.backup_id.is_none());

        // 2. A second protect: incremental backups on top of the first ones.
        rig.write_pattern(&v1, 11);
        let t = std::time::Instant::now();
        pb_.ok(&[
            "protect",
            "--backup-name",
            "second",
            "--description",
            "incremental",
            "-n",
            &scene.ns,
        ])
        .await;
        eprintln!("second protect (2 incremental backups): {:?}", t.elapsed());
        let cps = workload::checkpoints(&pb_.bank).await;
        assert_eq!(cps.len(), 2);
        let second = cps
            .iter()
            .find(|c| c.id != first.id)
            .expect("second checkpoint")
            .clone();
        assert_eq!(
            second.status,
            CheckpointStatus::Available,
            "{}",
            second.reason
        );
        for v in cinder_records(&second) {
            created.backup(&v.backup_id.clone().expect("a backup"));
        }
        for v in cinder_records(&second) {
            let parent = cinder_records(&first)
                .into_iter()
                .find(|p| p.volume_id == v.volume_id)
                .expect("same volume in the first checkpoint");
            assert!(v.incremental, "{v:?}");
            assert_eq!(v.parent_backup_id, parent.backup_id);
            assert_eq!(v.parent_checkpoint, Some(first.id.clone()));
            let b = cinder
                .get_backup(&v.backup_id.clone().expect("a backup"))
                .await
                .expect("get")
                .expect("exists");
            assert_eq!(b.status, BackupStatus::Available);
            assert!(b.is_incremental, "Cinder made it incremental: {b:?}");
            let p = cinder
                .get_backup(&parent.backup_id.clone().expect("a backup"))
                .await
                .expect("get")
                .expect("exists");
            assert!(p.has_dependent_backups);
        }

        // 3. Delete the older checkpoint first: its backups stay (the newer ones depend on
        //    them), listed by a tombstone; no request Cinder refuses.
        let out = pb_.ok(&["delete", first.id.as_str(), "-o", "json"]).await;
        let outcome: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
        let first_backups: BTreeSet<String> =
            cinder_records(&first).iter().map(|v| bid(v)).collect();
        let kept: BTreeSet<String> = outcome["backupsKept"]
            .as_array()
            .expect("backups_kept")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        assert_eq!(kept, first_backups, "{}", out.stdout);
        for id in &first_backups {
            assert!(cinder
                .get_backup(&BackupId::new(id.clone()))
                .await
                .expect("get")
                .is_some());
        }
        let cps = workload::checkpoints(&pb_.bank).await;
        let tomb = cps.iter().find(|c| c.id == first.id).expect("tombstone");
        assert_eq!(tomb.status, CheckpointStatus::Deleted);
        let listed = pb_.ok(&["checkpoints", "list", "-o", "json"]).await;
        assert!(
            !listed.stdout.contains(first.id.as_str()),
            "a tombstone is not listed: {}",
            listed.stdout
        );

        // 4. Then the newer: every backup goes, children first.
        let out = pb_.ok(&["delete", second.id.as_str(), "-o", "json"]).await;
        let outcome: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
        let deleted: BTreeSet<String> = outcome["backupsDeleted"]
            .as_array()
            .expect("backups_deleted")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let all: BTreeSet<String> = cinder_records(&first)
            .into_iter()
            .chain(cinder_records(&second))
            .map(bid)
            .collect();
        assert_eq!(deleted, all, "{}", out.stdout);
        for id in &all {
            assert!(
                cinder
                    .get_backup(&BackupId::new(id.clone()))
                    .await
                    .expect("get")
                    .is_none(),
                "backup {id} is gone"
            );
            let refused: Vec<_> = workload::cinder_requests(rig, id)
                .into_iter()
                .filter(|r| r.status == 400)
                .collect();
            assert!(
                refused.is_empty(),
                "Cinder answered 400 for {id}: {refused:?}"
            );
        }
        assert!(backups_named_for(cinder, &first.id).await.is_empty());
        assert!(backups_named_for(cinder, &second.id).await.is_empty());
        assert!(
            workload::checkpoints(&pb_.bank).await.is_empty(),
            "no checkpoint and no tombstone left"
        );
    })
    .await;
}

/// Backups of `cp` in Cinder == the backups `cp` lists.
async fn assert_every_backup_listed(cinder: &Cinder, cp: &Checkpoint) {
    let listed: BTreeSet<String> = cp
        .volumes
        .iter()
        .filter(|v| v.backup_id.is_some())
        .map(bid)
        .collect();
    assert_eq!(
        backups_named_for(cinder, &cp.id).await,
        listed,
        "every Cinder backup of checkpoint {} is listed in it",
        cp.id
    );
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_failed_backup_makes_an_error_checkpoint_that_lists_every_backup() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    with_cleanup(cinder, |created| async move {
        let name = unique("protect-fail");
        let good = new_volume(cinder, &created, &format!("{name}-good")).await;
        let bad = new_volume(cinder, &created, &format!("{name}-bad")).await;
        rig.write_pattern(&good, 3);
        let scene = scene(rig, &[&good, &bad]).await;
        let pb_ = &scene.podbank;

        // The backup of `bad` fails in cinder-backup: its file is not there.
        let file = rig.volume_file(&bad);
        let aside = file.with_extension("aside");
        std::fs::rename(&file, &aside).expect("move the volume file aside");
        let run = pb_
            .run(&[
                "protect",
                "--backup-name",
                "broken",
                "--description",
                "one volume unreadable",
                "-n",
                &scene.ns,
            ])
            .await;
        std::fs::rename(&aside, &file).expect("put the volume file back");
        let cps = workload::checkpoints(&pb_.bank).await;
        for v in cps.iter().flat_map(|c| c.volumes.iter()) {
            if v.backup_id.is_some() {
                created.backup(&v.backup_id.clone().expect("a backup"));
            }
        }
        assert_ne!(run.code, 0, "an error checkpoint fails the command");
        assert_eq!(cps.len(), 1);
        let cp = &cps[0];
        assert_eq!(cp.status, CheckpointStatus::Error);
        assert!(cp.reason.contains(&bad.to_string()), "{}", cp.reason);
        assert!(run.stderr.contains(cp.id.as_str()), "{}", run.stderr);
        let bad_rec = cp
            .volumes
            .iter()
            .find(|v| v.volume_id == bad)
            .expect("record of the bad volume");
        assert_eq!(bad_rec.status, VolumeStatus::Error);
        assert!(!bad_rec.reason.is_empty());
        // Its snapshot failed too (the driver cannot read the file): backed up directly,
        // recorded as such with Cinder's answer, never silently.
        eprintln!(
            "bad volume taken {:?}: {}",
            bad_rec.taken_by, bad_rec.taken_reason
        );
        assert_eq!(bad_rec.taken_by, TakenBy::Direct, "{bad_rec:?}");
        assert!(
            bad_rec.taken_reason.contains("snapshot"),
            "{}",
            bad_rec.taken_reason
        );
        let good_rec = cp
            .volumes
            .iter()
            .find(|v| v.volume_id == good)
            .expect("record of the good volume");
        assert_eq!(good_rec.status, VolumeStatus::Available);
        assert_eq!(good_rec.taken_by, TakenBy::Snapshot, "{good_rec:?}");
        assert_every_backup_listed(cinder, cp).await;
        let show = pb_.ok(&["checkpoints", "show", cp.id.as_str()]).await;
        assert!(
            show.stdout.contains("error") && show.stdout.contains(&bad.to_string()),
            "show lists per-resource status: {}",
            show.stdout
        );

        // Restoring the error checkpoint: its pod has a volume without a backup, so the
        // restore says so and creates nothing (not even the good volume's).
        let api = FakeApiServer::start(&[&scene.ns]).await;
        let kubeconfig = api.write_kubeconfig(scene._dir.path());
        let run = pb_
            .run(&[
                "restore",
                cp.id.as_str(),
                "--kubeconfig",
                kubeconfig.to_str().expect("utf-8"),
            ])
            .await;
        assert_ne!(run.code, 0);
        assert!(
            run.stderr.contains("has no available backup") && run.stderr.contains(&bad.to_string()),
            "{}",
            run.stderr
        );
        assert!(api.objects().is_empty(), "{:?}", api.requests());
        let restores: Vec<_> = workload::cinder_requests(rig, &bid(good_rec))
            .into_iter()
            .filter(|r| r.path.ends_with("/restore"))
            .collect();
        assert!(restores.is_empty(), "no volume restored: {restores:?}");

        // A per-volume timeout too short for Cinder: error, the backups still listed.
        let run = pb_
            .run(&[
                "protect",
                "--parameters",
                r#"{"backup_name":"hurried","description":"1 s per volume","volume_timeout_seconds":1,"incremental":false}"#,
                "-n",
                &scene.ns,
            ])
            .await;
        let cps = workload::checkpoints(&pb_.bank).await;
        for v in cps.iter().flat_map(|c| c.volumes.iter()) {
            if v.backup_id.is_some() {
                created.backup(&v.backup_id.clone().expect("a backup"));
            }
        }
        let hurried = cps
            .iter()
            .find(|c| c.backup_name == "hurried")
            .expect("hurried checkpoint");
        assert_ne!(run.code, 0);
        assert_eq!(hurried.status, CheckpointStatus::Error);
        assert!(
            hurried.reason.contains("did not become available within 1s"),
            "{}",
            hurried.reason
        );
        assert_eq!(cinder_records(hurried).len(), 2);
        assert!(cinder_records(hurried).iter().all(|v| v.backup_id.is_some()));
        assert_every_backup_listed(cinder, hurried).await;

        // Deleting both error checkpoints removes every backup they made.
        for cp in &cps {
            pb_.ok(&["delete", cp.id.as_str()]).await;
            assert!(
                backups_named_for(cinder, &cp.id).await.is_empty(),
                "checkpoint {} left backups",
                cp.id
            );
        }
        assert!(workload::checkpoints(&pb_.bank).await.is_empty());
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn wrong_credentials_fail_before_anything_is_written_to_the_bank() {
    let rig = require_rig!();
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let client = etcd.connect().await;
    let claims = [Claim {
        volume: "data".into(),
        claim: "data-db-0".into(),
        pv: "pvc-wrong-credentials".into(),
        cinder_id: "00000000-0000-4000-8000-00000000abcd".into(),
    }];
    let pod = workload::pod("shop", "db-0", &claims);
    seed::write(&client, workload::objects("shop", &pod, &claims))
        .await
        .expect("seed");
    let secret = "wrong-password-31337";
    let settings = rig.settings_with_auth(
        dir.path(),
        None,
        &[
            ("auth_url", crate::support::cinder::KEYSTONE),
            ("username", "admin"),
            ("password", secret),
            ("project_name", "admin"),
            ("user_domain_name", "Default"),
            ("project_domain_name", "Default"),
        ],
    );
    let bank = dir.path().join("bank");
    let podbank = Podbank {
        etcd: etcd.url.clone(),
        bank: bank.clone(),
        clouds: settings.clouds_file.clone().expect("clouds.yaml"),
        cloud: "test".into(),
    };
    let t = std::time::Instant::now();
    let run = podbank
        .run(&[
            "protect",
            "--backup-name",
            "b",
            "--description",
            "d",
            "-n",
            "shop",
        ])
        .await;
    eprintln!("wrong credentials answered in {:?}", t.elapsed());
    assert_ne!(run.code, 0);
    assert_ne!(run.code, 2, "not a usage error: {}", run.stderr);
    assert!(run.stderr.contains("Cinder"), "{}", run.stderr);
    assert!(
        run.stderr.contains("user admin") && run.stderr.contains("127.0.0.1:5000"),
        "says who was refused where: {}",
        run.stderr
    );
    assert!(!run.stderr.contains(secret), "never prints the password");
    assert!(
        !bank.exists() || walk(&bank).is_empty(),
        "nothing written to the bank: {:?}",
        walk(&bank)
    );

    // A missing backup_name: exit code 2 and the schema's message, nothing written either.
    let run = podbank
        .run(&["protect", "--description", "d", "-n", "shop"])
        .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("\"backup_name\" is a required property"),
        "{}",
        run.stderr
    );
    assert!(!bank.exists() || walk(&bank).is_empty());
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_protect_killed_mid_backup_leaves_its_backups_listed_for_delete() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    with_cleanup(cinder, |created| async move {
        let v = new_volume(cinder, &created, &unique("protect-kill")).await;
        rig.write_pattern(&v, 5);
        let scene = scene(rig, &[&v]).await;
        let pb_ = &scene.podbank;
        let mut child = pb_.spawn(&[
            "protect",
            "--backup-name",
            "killed",
            "--description",
            "killed while Cinder writes the backup",
            "-n",
            &scene.ns,
        ]);
        // Wait until the writer's lock records the backup Cinder returned, then kill it.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let backup = loop {
            if pb_.bank.join("config").exists() {
                let bank = pb_.open_bank().await;
                let locks = podbank::bank::lock::read_all(bank.backend())
                    .await
                    .expect("read locks");
                let found = locks
                    .into_iter()
                    .filter_map(|l| l.lock().and_then(|l| l.partial.clone()))
                    .flat_map(|p| p.volumes)
                    .find(|r| r.volume_id == v.to_string() && !r.backup_id.is_empty());
                if let Some(r) = found {
                    break r.backup_id;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the protect never recorded a backup in its lock"
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("protect ended ({status}) before it could be killed");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        created.backup(&BackupId::new(backup.clone()));
        child.kill().await.expect("kill protect");
        let status = cinder
            .get_backup(&BackupId::new(backup.clone()))
            .await
            .expect("get")
            .expect("the backup exists");
        eprintln!(
            "protect killed while its backup was {}",
            status.status.as_str()
        );
        assert!(
            workload::checkpoints(&pb_.bank).await.is_empty(),
            "no manifest written"
        );

        // gc turns the dead writer's lock into an error checkpoint that lists the backup.
        let out = pb_.ok(&["bank", "gc", "-o", "json"]).await;
        let cps = workload::checkpoints(&pb_.bank).await;
        assert_eq!(cps.len(), 1, "{}", out.stdout);
        let cp = &cps[0];
        assert!(out.stdout.contains(cp.id.as_str()), "{}", out.stdout);
        assert_eq!(cp.status, CheckpointStatus::Error);
        assert_every_backup_listed(cinder, cp).await;
        assert!(cp.volumes.iter().any(|r| bid(r) == backup));

        // ... and delete removes it (waiting for Cinder to finish writing it if need be).
        pb_.ok(&["delete", cp.id.as_str()]).await;
        assert!(backups_named_for(cinder, &cp.id).await.is_empty());
        assert!(cinder
            .get_backup(&BackupId::new(backup.clone()))
            .await
            .expect("get")
            .is_none());
        // ... and the snapshot the backup was being made from (gc, or this delete).
        let left = cinder
            .list_snapshots(Some(&format!("podbank-{}-", cp.id)))
            .await
            .expect("list snapshots");
        assert!(left.is_empty(), "snapshots left: {left:?}");
        assert!(workload::checkpoints(&pb_.bank).await.is_empty());
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn two_volumes_are_snapshotted_in_one_burst_backed_up_from_the_snapshots_and_no_snapshot_stays(
) {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    with_cleanup(cinder, |created| async move {
        let name = unique("burst");
        let v1 = new_volume(cinder, &created, &format!("{name}-data")).await;
        let v2 = new_volume(cinder, &created, &format!("{name}-log")).await;
        rig.write_pattern(&v1, 21);
        rig.write_pattern(&v2, 22);
        let scene = scene(rig, &[&v1, &v2]).await;
        let pb_ = &scene.podbank;

        let t = std::time::Instant::now();
        pb_.ok(&[
            "protect",
            "--backup-name",
            "burst",
            "--description",
            "snapshot burst",
            "-n",
            &scene.ns,
        ])
            .await;
        eprintln!("protect with a snapshot burst (2 volumes): {:?}", t.elapsed());
        let cps = workload::checkpoints(&pb_.bank).await;
        assert_eq!(cps.len(), 1);
        let cp = cps[0].clone();
        let records = cinder_records(&cp);
        for v in &records {
            if let Some(b) = &v.backup_id {
                created.backup(b);
            }
        }
        assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
        assert_eq!(records.len(), 2);

        // Two snapshots, each requested in the burst and available before its backup.
        let snapshots: BTreeSet<String> = records
            .iter()
            .filter_map(|v| v.snapshot_id.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(snapshots.len(), 2, "one snapshot per volume: {records:?}");
        let sent: Vec<u64> = records.iter().map(|v| v.snapshot_sent_unix_ms).collect();
        let spread = sent.iter().max().copied().unwrap_or(0) - sent.iter().min().copied().unwrap_or(0);
        let max_skew = records.iter().map(|v| v.skew_ms).max().unwrap_or(0);
        eprintln!(
            "snapshot burst, 2 volumes: requests sent within {spread} ms; skew from the revision read: {:?} ms (largest {max_skew} ms)",
            records.iter().map(|v| v.skew_ms).collect::<Vec<_>>()
        );
        eprintln!(
            "of which sent -> available: {:?} ms",
            records
                .iter()
                .map(|v| v.snapshot_available_unix_ms.saturating_sub(v.snapshot_sent_unix_ms))
                .collect::<Vec<_>>()
        );
        for v in &records {
            assert_eq!(v.taken_by, TakenBy::Snapshot, "{v:?}");
            assert!(v.taken_reason.is_empty(), "{v:?}");
            assert!(v.snapshot_sent_unix_ms > 0, "{v:?}");
            assert!(
                v.snapshot_available_unix_ms >= v.snapshot_sent_unix_ms,
                "available after sent: {v:?}"
            );
            assert!(v.skew_ms > 0, "the skew is measured: {v:?}");
            // The burst is all in flight at once: both requests leave within a second.
            assert!(spread < 1000, "requests {spread} ms apart");
            // Bounded: the rig's snapshots are qcow2 overlays, available in seconds.
            assert!(v.skew_ms < 60_000, "skew {} ms", v.skew_ms);
            assert_eq!(v.status, VolumeStatus::Available, "{v:?}");
            let b = cinder
                .get_backup(&v.backup_id.clone().expect("a backup"))
                .await
                .expect("get backup")
                .expect("the backup the checkpoint lists exists");
            assert_eq!(b.status, BackupStatus::Available);
            assert_eq!(b.snapshot_id, v.snapshot_id, "the backup is made from the snapshot");
            // No snapshot left in Cinder.
            let snap = v.snapshot_id.clone().expect("snapshot id");
            assert_eq!(
                cinder.get_snapshot(&snap).await.expect("get snapshot"),
                None,
                "snapshot {snap} was deleted once its backup was available"
            );
        }
        let left = cinder
            .list_snapshots(Some(&format!("podbank-{}-", cp.id)))
            .await
            .expect("list snapshots");
        assert!(left.is_empty(), "snapshots left: {left:?}");

        // `checkpoints show` prints the largest skew and, per volume, how it was taken.
        let show = pb_.ok(&["checkpoints", "show", cp.id.as_str()]).await;
        assert!(
            show.stdout.contains("(largest skew)")
                && show.stdout.contains(&format!("{max_skew} ms")),
            "{}",
            show.stdout
        );
        for v in &records {
            let line = show
                .stdout
                .lines()
                .find(|l| l.starts_with(v.volume_id.as_str()) && l.contains("snapshot"))
                .unwrap_or_else(|| panic!("a line for {} taken by snapshot: {}", v.volume_id, show.stdout));
            assert!(line.contains(&format!("{} ms", v.skew_ms)), "{line}");
        }

        // Deleting the checkpoint removes the backups (and leaves no snapshot).
        pb_.ok(&["delete", cp.id.as_str()]).await;
        for v in &records {
            let b = cinder
                .get_backup(&v.backup_id.clone().expect("a backup"))
                .await
                .expect("get backup");
            assert_eq!(b, None);
        }
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_protect_killed_after_its_snapshot_burst_leaves_the_snapshot_to_gc() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    with_cleanup(cinder, |created| async move {
        let v = new_volume(cinder, &created, &unique("burst-kill")).await;
        rig.write_pattern(&v, 6);
        let scene = scene(rig, &[&v]).await;
        let pb_ = &scene.podbank;
        let mut child = pb_.spawn(&[
            "protect",
            "--backup-name",
            "killed",
            "--description",
            "killed after the snapshot burst",
            "-n",
            &scene.ns,
        ]);
        // Wait until the writer's lock records the snapshot Cinder returned, then kill it.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let (snapshot, backup) = loop {
            if pb_.bank.join("config").exists() {
                let bank = pb_.open_bank().await;
                let locks = podbank::bank::lock::read_all(bank.backend())
                    .await
                    .expect("read locks");
                let found = locks
                    .into_iter()
                    .filter_map(|l| l.lock().and_then(|l| l.partial.clone()))
                    .flat_map(|p| p.volumes)
                    .find(|r| r.volume_id == v.to_string() && !r.snapshot_id.is_empty());
                if let Some(r) = found {
                    child.kill().await.expect("kill protect");
                    break (r.snapshot_id, r.backup_id);
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the protect never recorded a snapshot in its lock"
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("protect ended ({status}) before it could be killed");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if !backup.is_empty() {
            created.backup(&BackupId::new(backup.clone()));
        }
        let snapshot = podbank::cinder::SnapshotId::new(snapshot);
        let before = cinder
            .get_snapshot(&snapshot)
            .await
            .expect("get snapshot")
            .expect("the snapshot exists after the kill");
        eprintln!(
            "protect killed with its snapshot {}, backup {:?}",
            before.status, backup
        );

        // gc recovers the dead writer's checkpoint and deletes its snapshot in Cinder.
        let out = pb_.ok(&["bank", "gc", "-o", "json"]).await;
        let cps = workload::checkpoints(&pb_.bank).await;
        assert_eq!(cps.len(), 1, "{}", out.stdout);
        let cp = &cps[0];
        assert_eq!(cp.status, CheckpointStatus::Error);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("gc json");
        assert_eq!(
            report["snapshotsDeleted"],
            serde_json::json!([snapshot.to_string()]),
            "{}",
            out.stdout
        );
        assert_eq!(
            cinder.get_snapshot(&snapshot).await.expect("get snapshot"),
            None,
            "gc deleted the snapshot"
        );

        // delete of the recovered checkpoint leaves nothing either.
        pb_.ok(&["delete", cp.id.as_str()]).await;
        assert!(backups_named_for(cinder, &cp.id).await.is_empty());
        let left = cinder
            .list_snapshots(Some(&format!("podbank-{}-", cp.id)))
            .await
            .expect("list snapshots");
        assert!(left.is_empty(), "snapshots left: {left:?}");
    })
    .await;
}

/// Five protects of one volume with `--full-every 3`; returns the checkpoints, oldest first.
async fn five_protects_full_every_3(scene: &Scene, round: &str) -> Vec<Checkpoint> {
    let pb_ = &scene.podbank;
    for i in 0..5 {
        let name = format!("{round}-{i}");
        // The flag, and the same setting as a parameter (the plan option's spelling).
        let args: Vec<&str> = if i % 2 == 0 {
            vec![
                "protect",
                "--backup-name",
                &name,
                "--description",
                "chain",
                "--full-every",
                "3",
            ]
        } else {
            vec![
                "protect",
                "--backup-name",
                &name,
                "--description",
                "chain",
                "--parameters",
                r#"{"full_every": 3}"#,
            ]
        };
        let mut args = args;
        args.extend(["-n", scene.ns.as_str()]);
        pb_.ok(&args).await;
    }
    let mut cps = workload::checkpoints(&pb_.bank).await;
    cps.sort_by_key(|c| c.created);
    assert_eq!(cps.len(), 5);
    cps
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn full_every_3_makes_full_incr_incr_full_incr_and_deletes_in_any_order_leave_nothing() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    with_cleanup(cinder, |created| async move {
        let name = unique("chain");
        let v1 = new_volume(cinder, &created, &format!("{name}-a")).await;
        rig.write_pattern(&v1, 3);
        let scene = scene(rig, &[&v1]).await;
        let pb_ = &scene.podbank;
        // Checkpoint indexes (oldest = 0) in the order they are deleted. One round (five
        // protects and their deletes take about 4 minutes on the rig): this order deletes
        // an incremental with a dependent (1), a full with a dependent (3), a full whose
        // chain is half gone (0), then the leaves (4, 2) that free what was kept; oldest-
        // first deletes are also `two_volumes_then_incremental_then_delete_older_first...`.
        let orders: [(&str, [usize; 5]); 1] = [("mixed", [1, 3, 0, 4, 2])];
        for (round, order) in orders {
            let t = std::time::Instant::now();
            let cps = five_protects_full_every_3(&scene, round).await;
            eprintln!("{round}: five protects in {:?}", t.elapsed());
            let mut ids = Vec::new();
            for cp in &cps {
                assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
                let v = cp.volume(&v1).expect("the volume's record");
                let id = v.backup_id.clone().expect("a backup");
                created.backup(&id);
                ids.push(id);
            }
            // From Cinder: full, incr, incr, full, incr.
            let mut cinder_incremental = Vec::new();
            for id in &ids {
                let b = cinder.get_backup(id).await.expect("get").expect("exists");
                assert_eq!(b.status, BackupStatus::Available);
                cinder_incremental.push(b.is_incremental);
            }
            assert_eq!(
                cinder_incremental,
                [false, true, true, false, true],
                "{round}: Cinder's is_incremental"
            );
            // From the records and from `checkpoints show`: depths 0 1 2 0 1.
            let depths: Vec<u32> = cps
                .iter()
                .map(|c| c.volume(&v1).map(|v| v.chain_depth).unwrap_or(99))
                .collect();
            assert_eq!(depths, [0, 1, 2, 0, 1], "{round}: recorded chain depths");
            let mut shown = Vec::new();
            for cp in &cps {
                let out = pb_
                    .ok(&["checkpoints", "show", cp.id.as_str(), "-o", "json"])
                    .await;
                let view: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
                let volume = view["volumes"]
                    .as_array()
                    .expect("volumes")
                    .iter()
                    .find(|v| v["volumeId"] == v1.as_str())
                    .expect("the volume in show")
                    .clone();
                shown.push((
                    volume["chainDepth"].as_u64().expect("chainDepth"),
                    volume["incremental"].as_bool().expect("incremental"),
                ));
            }
            assert_eq!(
                shown,
                [(0, false), (1, true), (2, true), (0, false), (1, true)],
                "{round}: checkpoints show -o json"
            );
            let table = pb_.ok(&["checkpoints", "show", cps[2].id.as_str()]).await;
            assert!(
                table.stdout.contains("(incremental, chain depth 2)"),
                "{}",
                table.stdout
            );
            eprintln!("{round}: {}", table.stdout);
            // Delete in this round's order: every command succeeds, and in the end Cinder
            // holds none of the backups, and answered no request about them with 400.
            for i in order {
                pb_.ok(&["delete", cps[i].id.as_str(), "-o", "json"]).await;
            }
            for (cp, id) in cps.iter().zip(&ids) {
                assert!(
                    cinder.get_backup(id).await.expect("get").is_none(),
                    "{round}: backup {id} of {} is gone",
                    cp.id
                );
                assert!(backups_named_for(cinder, &cp.id).await.is_empty());
                let refused: Vec<_> = workload::cinder_requests(rig, id.as_str())
                    .into_iter()
                    .filter(|r| r.status == 400)
                    .collect();
                assert!(refused.is_empty(), "{round}: 400 for {id}: {refused:?}");
            }
            assert!(
                workload::checkpoints(&pb_.bank).await.is_empty(),
                "{round}: no checkpoint and no tombstone left"
            );
            eprintln!(
                "{round}: deleted in order {order:?}, {:?} in all",
                t.elapsed()
            );
        }
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_volume_whose_driver_refuses_snapshots_is_backed_up_directly_with_cinders_reason() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    with_cleanup(cinder, |created| async move {
        // The rig's volume type `nosnap` is its second NFS backend, snapshots off.
        let v = new_volume_of_type(cinder, &created, &unique("nosnap"), Some("nosnap")).await;
        assert!(
            rig.volume_file(&v)
                .starts_with(rig.dir.join("state/export-nosnap")),
            "the volume is on nfs-nosnap: {}",
            rig.volume_file(&v).display()
        );
        let sum = rig.write_pattern(&v, 31);
        let scene = scene(rig, &[&v]).await;
        let pb_ = &scene.podbank;
        pb_.ok(&[
            "protect",
            "--backup-name",
            "nosnap",
            "--description",
            "a driver without snapshots",
            "-n",
            &scene.ns,
        ])
        .await;
        let cps = workload::checkpoints(&pb_.bank).await;
        assert_eq!(cps.len(), 1);
        let cp = cps[0].clone();
        let records = cinder_records(&cp);
        for r in &records {
            if let Some(b) = &r.backup_id {
                created.backup(b);
            }
        }
        assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
        assert_eq!(records.len(), 1);
        let r = records[0];
        eprintln!(
            "recorded: taken_by {:?}, reason {:?}",
            r.taken_by, r.taken_reason
        );
        assert_eq!(r.taken_by, TakenBy::Direct, "{r:?}");
        assert_eq!(r.status, VolumeStatus::Available, "{r:?}");
        // The burst asked for a snapshot, Cinder's driver refused it; the reason recorded is
        // the user message Cinder wrote about that snapshot, read back from Cinder here.
        let snapshot = r
            .taken_reason
            .strip_prefix("snapshot ")
            .and_then(|rest| rest.split_whitespace().next())
            .map(podbank::cinder::SnapshotId::new)
            .unwrap_or_else(|| panic!("the reason names the snapshot: {}", r.taken_reason));
        let messages = cinder
            .messages_about(snapshot.as_str())
            .await
            .expect("Cinder's messages");
        assert!(
            !messages.is_empty(),
            "Cinder wrote a message about {snapshot}"
        );
        eprintln!("Cinder's messages about {snapshot}: {messages:?}");
        for m in &messages {
            assert!(
                r.taken_reason.contains(&m.user_message),
                "the record gives Cinder's message {:?}: {}",
                m.user_message,
                r.taken_reason
            );
        }
        assert!(
            r.taken_reason.contains("went to status error"),
            "{}",
            r.taken_reason
        );

        // The backup is a direct one, available, and listed.
        let backup_id = r.backup_id.clone().expect("a backup");
        let b = cinder
            .get_backup(&backup_id)
            .await
            .expect("get backup")
            .expect("the backup exists");
        assert_eq!(b.status, BackupStatus::Available);
        assert_eq!(b.snapshot_id, None, "a direct backup reads the volume");
        assert_eq!(
            backups_named_for(cinder, &cp.id).await,
            BTreeSet::from([bid(r)])
        );

        // No snapshot left: neither the refused one nor any other of the checkpoint's.
        assert_eq!(
            cinder.get_snapshot(&snapshot).await.expect("get snapshot"),
            None
        );
        let left = cinder
            .list_snapshots(Some(&format!("podbank-{}-", cp.id)))
            .await
            .expect("list snapshots");
        assert!(left.is_empty(), "snapshots left: {left:?}");

        // `checkpoints show` says how it was taken, and why.
        let show = pb_.ok(&["checkpoints", "show", cp.id.as_str()]).await;
        let line = show
            .stdout
            .lines()
            .find(|l| l.starts_with(v.as_str()))
            .unwrap_or_else(|| panic!("a line for {v}: {}", show.stdout));
        assert!(line.contains("direct"), "{line}");
        assert!(
            show.stdout.contains(&messages[0].user_message),
            "show gives Cinder's reason: {}",
            show.stdout
        );

        // Restorable: Cinder restores it to a new volume holding the pattern.
        let restored = cinder
            .restore_backup(&backup_id, None, Some(&unique("nosnap-restored")))
            .await
            .expect("restore");
        created.volume(&restored);
        let nv = cinder
            .wait_volume(&restored, Duration::from_secs(300))
            .await
            .expect("restored volume");
        assert_eq!(nv.status, "available");
        assert_eq!(rig.checksum(&restored), sum, "restored bytes");

        pb_.ok(&["delete", cp.id.as_str()]).await;
        assert_eq!(
            cinder.get_backup(&backup_id).await.expect("get backup"),
            None
        );
    })
    .await;
}

/// The test seam of [`a_volume_overwritten_after_its_snapshot_is_restored_as_it_was_at_the_snapshot`]:
/// once the burst's snapshots are available, and before any backup is requested, it
/// overwrites each snapshotted volume (in the qcow2 overlay the volume writes to now) and
/// checks that the live volume reads the overwrite.
#[derive(Debug)]
struct OverwriteAfterSnapshot {
    rig: CinderRig,
    /// What the hook saw: (volume, snapshot, file overwritten), once per call.
    seen: std::sync::Mutex<Vec<Vec<(VolumeId, String, std::path::PathBuf)>>>,
}

/// `qemu-io -f qcow2 -c <command>... <file>`, required to succeed; returns its output.
fn qemu_io(file: &std::path::Path, commands: &[&str]) -> String {
    let mut cmd = std::process::Command::new("qemu-io");
    cmd.args(["-f", "qcow2"]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    let out = cmd.arg(file).output().expect("run qemu-io");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "qemu-io {commands:?} {}: {text}",
        file.display()
    );
    text
}

#[async_trait::async_trait]
impl podbank::protection::ProtectHooks for OverwriteAfterSnapshot {
    async fn snapshots_ready(&self, volumes: &[VolumeRecord]) {
        let rig = &self.rig;
        let mut seen = Vec::new();
        for v in volumes {
            let Some(snapshot) = &v.snapshot_id else {
                continue;
            };
            if v.taken_by != TakenBy::Snapshot {
                continue;
            }
            // After its first snapshot a volume writes into the overlay `.info` names.
            let active = rig.active_volume_file(&v.volume_id);
            assert_ne!(
                active,
                rig.volume_file(&v.volume_id),
                "an overlay is active"
            );
            // Over the header and the 2 MiB pattern at 10 MiB that write_pattern wrote.
            qemu_io(&active, &["write -P 0x5a 0 1M", "write -P 0x5a 10M 2M"]);
            let check = qemu_io(&active, &["read -P 0x5a 0 1M", "read -P 0x5a 10M 2M"]);
            assert!(
                !check.contains("Pattern verification failed"),
                "the live volume reads the overwrite: {check}"
            );
            seen.push((v.volume_id.clone(), snapshot.to_string(), active));
        }
        if let Ok(mut s) = self.seen.lock() {
            s.push(seen);
        }
    }
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_volume_overwritten_after_its_snapshot_is_restored_as_it_was_at_the_snapshot() {
    use podbank::protection::{self, schema::ProtectParams, ProtectRequest, Selection, Services};
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    with_cleanup(cinder, |created| async move {
        let v = new_volume(cinder, &created, &unique("overwrite")).await;
        let pattern = rig.write_pattern(&v, 41);
        let scene = scene(rig, &[&v]).await;

        // protect in this process, with the hook between the burst and the backups.
        let etcd = podbank::etcd::Etcd::connect(&podbank::etcd::EtcdConfig {
            servers: vec![scene.podbank.etcd.clone()],
            ..Default::default()
        })
        .await
        .expect("etcd");
        let bank = crate::support::bank::open(&scene.podbank.bank, None)
            .await
            .expect("bank");
        let params = serde_json::json!({"backup_name": "overwrite", "description": "hook"});
        let request = ProtectRequest {
            id: None,
            params: ProtectParams::from_json(&params).expect("params"),
            selection: Selection {
                namespaces: vec![scene.ns.parse().unwrap()],
                ..Default::default()
            },
            plan: String::new(),
            project_id: String::new(),
            scan: Default::default(),
            writer: Default::default(),
            secrets: Default::default(),
            skip_hooks: false,
            plan_hooks: Default::default(),
        };
        let decoder = podbank::codec::Decoder::new(None);
        let hook = OverwriteAfterSnapshot {
            rig: rig.clone(),
            seen: Default::default(),
        };
        let services = Services {
            etcd: &etcd,
            decoder: &decoder,
            bank: &bank,
            progress: &podbank::protection::progress::Silent,
            exec: podbank::protection::hooks::HookExec::Unavailable("the test gives none"),
            hooks: Some(&hook),
        };
        let cp = protection::protect(
            services,
            &request,
            &protection::VolumeBackups::Cinder(cinder),
        )
        .await
        .expect("protect");
        let records = cinder_records(&cp);
        for r in &records {
            if let Some(b) = &r.backup_id {
                created.backup(b);
            }
        }
        assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
        assert_eq!(records.len(), 1);
        let r = records[0];
        let seen = hook.seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(seen.len(), 1, "the hook ran once: {seen:?}");
        assert_eq!(seen[0].len(), 1, "and overwrote the one volume: {seen:?}");
        let snapshot = r.snapshot_id.clone().expect("a snapshot");
        assert_eq!(seen[0][0].0, v);
        assert_eq!(seen[0][0].1, snapshot.to_string());
        eprintln!(
            "overwrote {} after snapshot {snapshot} was available",
            seen[0][0].2.display()
        );

        // The backup was made from the snapshot, after the overwrite.
        assert_eq!(r.taken_by, TakenBy::Snapshot, "{r:?}");
        let backup_id = r.backup_id.clone().expect("a backup");
        let b = cinder
            .get_backup(&backup_id)
            .await
            .expect("get backup")
            .expect("the backup exists");
        assert_eq!(b.status, BackupStatus::Available);
        assert_eq!(b.snapshot_id.as_ref(), Some(&snapshot));
        assert_eq!(
            cinder.get_snapshot(&snapshot).await.expect("get snapshot"),
            None
        );

        // Restored to a new volume: the pattern, as at the snapshot, not the overwrite.
        let restored = cinder
            .restore_backup(&backup_id, None, Some(&unique("overwrite-restored")))
            .await
            .expect("restore");
        created.volume(&restored);
        let nv = cinder
            .wait_volume(&restored, Duration::from_secs(300))
            .await
            .expect("restored volume");
        assert_eq!(nv.status, "available");
        let restored_file = rig.volume_file(&restored);
        let mut head = vec![0u8; 64];
        {
            use std::io::Read;
            std::fs::File::open(&restored_file)
                .and_then(|mut f| f.read_exact(&mut head))
                .expect("read the restored volume");
        }
        assert!(
            head.starts_with(format!("PODBANK-TEST-{v}-41").as_bytes()),
            "the restored volume starts with the pattern's header, not 0x5a: {:?}",
            String::from_utf8_lossy(&head)
        );
        assert_eq!(
            rig.checksum(&restored),
            pattern,
            "restored bytes = the pattern"
        );

        drop(bank);
        scene.podbank.ok(&["delete", cp.id.as_str()]).await;
        assert_eq!(
            cinder.get_backup(&backup_id).await.expect("get backup"),
            None
        );
    })
    .await;
}

/// A pod with two volumes in one Cinder group of group type `group_type` (the rig's `cg`
/// or `nocg`), protected; runs `check` on the checkpoint and its two volume records, then
/// deletes the checkpoint and checks that its backups are gone. The group is taken apart
/// afterwards, also when `check` panics.
async fn protect_a_pod_in_a_group<C, Fut>(group_type: &str, check: C)
where
    C: FnOnce(Cinder, Checkpoint) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::FutureExt;
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    with_cleanup(cinder, |created| async move {
        let name = unique(group_type);
        let v1 = new_volume(cinder, &created, &format!("{name}-data")).await;
        let v2 = new_volume(cinder, &created, &format!("{name}-log")).await;
        rig.write_pattern(&v1, 41);
        rig.write_pattern(&v2, 42);
        let groups = RigGroups::login().await;
        let group = groups
            .create(&name, group_type, &[&v1, &v2])
            .await
            .unwrap_or_else(|e| panic!("the rig cannot make a {group_type} group: {e}"));
        let outcome = std::panic::AssertUnwindSafe(async {
            for v in [&v1, &v2] {
                let got = cinder
                    .get_volume(v)
                    .await
                    .expect("get volume")
                    .expect("volume");
                assert_eq!(
                    got.group_id.as_ref().map(|g| g.to_string()),
                    Some(group.clone())
                );
            }
            let scene = scene(rig, &[&v1, &v2]).await;
            let pb_ = &scene.podbank;
            let t = std::time::Instant::now();
            pb_.ok(&[
                "protect",
                "--backup-name",
                group_type,
                "--description",
                "a pod whose volumes are in one Cinder group",
                "-n",
                &scene.ns,
            ])
            .await;
            eprintln!(
                "protect of a pod in a {group_type} group: {:?}",
                t.elapsed()
            );
            let cps = workload::checkpoints(&pb_.bank).await;
            assert_eq!(cps.len(), 1);
            let cp = cps[0].clone();
            for v in cinder_records(&cp) {
                if let Some(b) = &v.backup_id {
                    created.backup(b);
                }
            }
            assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
            assert_eq!(cinder_records(&cp).len(), 2);
            for v in cinder_records(&cp) {
                assert_eq!(v.status, VolumeStatus::Available, "{v:?}");
                assert_eq!(v.taken_by, TakenBy::Snapshot, "{v:?}");
                let b = cinder
                    .get_backup(&v.backup_id.clone().expect("a backup"))
                    .await
                    .expect("get backup")
                    .expect("the backup the checkpoint lists exists");
                assert_eq!(b.status, BackupStatus::Available);
                assert!(v.snapshot_id.is_some(), "{v:?}");
                assert_eq!(
                    b.snapshot_id, v.snapshot_id,
                    "the backup is made from the snapshot"
                );
                let snap = v.snapshot_id.clone().expect("snapshot id");
                assert_eq!(
                    cinder.get_snapshot(&snap).await.expect("get snapshot"),
                    None,
                    "snapshot {snap} is deleted"
                );
            }
            check(cinder.clone(), cp.clone()).await;
            pb_.ok(&["delete", cp.id.as_str()]).await;
            for v in cinder_records(&cp) {
                let b = cinder
                    .get_backup(&v.backup_id.clone().expect("a backup"))
                    .await
                    .expect("get backup");
                assert_eq!(b, None);
            }
        })
        .catch_unwind()
        .await;
        let left = groups.dispose(&group, &[&v1, &v2]).await;
        if let Err(panic) = outcome {
            eprintln!("group cleanup after failure left: {left:?}");
            std::panic::resume_unwind(panic);
        }
        assert!(left.is_empty(), "group cleanup: {left:?}");
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn two_volumes_in_a_consistent_group_get_one_group_snapshot_and_none_stays() {
    protect_a_pod_in_a_group("cg", |cinder, cp| async move {
        let records = cinder_records(&cp);
        let groups: BTreeSet<String> = records
            .iter()
            .filter_map(|v| v.group_snapshot_id.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(groups.len(), 1, "one group snapshot for both: {records:?}");
        let members: BTreeSet<String> = records
            .iter()
            .filter_map(|v| v.snapshot_id.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(
            members.len(),
            2,
            "a member snapshot per volume: {records:?}"
        );
        let gs = records[0]
            .group_snapshot_id
            .clone()
            .expect("group snapshot");
        for v in &records {
            assert!(
                v.taken_reason.contains(gs.as_str()),
                "the note names the group snapshot: {v:?}"
            );
            assert!(v.skew_ms > 0 && v.skew_ms < 60_000, "skew {} ms", v.skew_ms);
        }
        // Both were requested at one moment: one request.
        assert_eq!(
            records[0].snapshot_sent_unix_ms,
            records[1].snapshot_sent_unix_ms
        );
        eprintln!(
            "group snapshot {gs}: members {members:?}; skew {:?} ms",
            records.iter().map(|v| v.skew_ms).collect::<Vec<_>>()
        );
        assert_eq!(
            cinder
                .get_group_snapshot(&gs)
                .await
                .expect("get group snapshot"),
            None,
            "group snapshot {gs} is deleted once the backups are done"
        );
        let left: Vec<_> = cinder
            .list_snapshots(None)
            .await
            .expect("list snapshots")
            .into_iter()
            .filter(|s| s.group_snapshot_id.as_ref() == Some(&gs))
            .collect();
        assert!(left.is_empty(), "member snapshots left: {left:?}");
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn two_volumes_in_a_group_without_consistent_snapshots_get_snapshots_of_their_own() {
    protect_a_pod_in_a_group("nocg", |_cinder, cp| async move {
        let records = cinder_records(&cp);
        let snapshots: BTreeSet<String> = records
            .iter()
            .filter_map(|v| v.snapshot_id.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(snapshots.len(), 2, "one snapshot per volume: {records:?}");
        for v in &records {
            assert_eq!(v.group_snapshot_id, None, "{v:?}");
            assert!(
                v.taken_reason.contains("has no consistent group snapshots")
                    && v.taken_reason.contains("nocg"),
                "the reason is recorded: {v:?}"
            );
        }
        eprintln!("per-volume snapshots, reason: {}", records[0].taken_reason);
    })
    .await;
}

/// A benchmark, not a check: the snapshot burst of one pod with 1, 4 and 16 Cinder volumes on
/// the rig, printed a line each (requests' spread, burst duration, largest skew from the
/// revision read). Run it with the rig:
/// `cargo test --test scenarios protect_cinder::snapshot_burst_benchmark -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "benchmark: run with --ignored on the Cinder rig; prints the burst's numbers"]
async fn snapshot_burst_benchmark_for_1_4_and_16_volumes() {
    let rig = require_rig!();
    let cinder = rig.connect().await;
    let cinder = &cinder;
    let rig = &rig;
    for n in [1usize, 4, 16] {
        with_cleanup(cinder, |created| async move {
            let name = unique(&format!("bench{n}"));
            let mut volumes = Vec::new();
            for i in 0..n {
                volumes.push(new_volume(cinder, &created, &format!("{name}-{i}")).await);
            }
            let refs: Vec<&VolumeId> = volumes.iter().collect();
            let scene = scene(rig, &refs).await;
            let pb_ = &scene.podbank;
            let t = std::time::Instant::now();
            pb_.ok(&[
                "protect",
                "--backup-name",
                "bench",
                "--description",
                "snapshot burst benchmark",
                "-n",
                &scene.ns,
            ])
            .await;
            let took = t.elapsed();
            let cps = workload::checkpoints(&pb_.bank).await;
            assert_eq!(cps.len(), 1);
            let cp = cps[0].clone();
            let records = cinder_records(&cp);
            for v in &records {
                if let Some(b) = &v.backup_id {
                    created.backup(b);
                }
            }
            assert_eq!(cp.status, CheckpointStatus::Available, "{}", cp.reason);
            assert_eq!(records.len(), n);
            assert!(
                records.iter().all(|v| v.taken_by == TakenBy::Snapshot),
                "{records:?}"
            );
            let first_sent = records.iter().map(|v| v.snapshot_sent_unix_ms).min();
            let last_sent = records.iter().map(|v| v.snapshot_sent_unix_ms).max();
            let last_available = records.iter().map(|v| v.snapshot_available_unix_ms).max();
            let (Some(first), Some(last), Some(available)) =
                (first_sent, last_sent, last_available)
            else {
                panic!("no snapshot times recorded: {records:?}");
            };
            let max_skew = records.iter().map(|v| v.skew_ms).max().unwrap_or(0);
            println!(
                "snapshot burst, {n:>2} volume(s): requests sent within {} ms; all available {} ms \
                 after the first was sent; largest skew from the revision read {max_skew} ms; \
                 protect (burst + backups) {:.1} s",
                last - first,
                available.saturating_sub(first),
                took.as_secs_f64()
            );
            pb_.ok(&["delete", cp.id.as_str()]).await;
        })
        .await;
    }
}
