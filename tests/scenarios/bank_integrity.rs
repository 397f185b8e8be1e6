//! The bank never calls a checkpoint `available` that it cannot read: index names never
//! come back after gc, every record is checked, damage is named and repaired, stray files
//! take nothing down, gc and writers exclude each other.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use podbank::bank::{Bank, BankError, CheckpointId};
use podbank::model::{Checkpoint, CheckpointStatus, RestoreId, RestoreRecord};

use crate::support::bank::{add_pods, begin, object, open, write_checkpoint};
use crate::support::etcd::TestEtcd;
use crate::support::workload::Podbank;

fn id_of(cp: &Checkpoint) -> CheckpointId {
    cp.id.clone()
}

/// Every file of `folder` under the bank at `dir` (recursively, temp files included).
fn files(dir: &Path, folder: &str) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(p) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join(folder), &mut out);
    out.sort();
    out
}

fn flip(path: &Path, at: usize) {
    let mut data = std::fs::read(path).expect("read");
    let at = at.min(data.len() - 1);
    data[at] ^= 0x10;
    std::fs::write(path, data).expect("write");
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string()
}

/// The reproduction of the bug: a protect after delete + gc wrote an index file under a name
/// that gc had recorded as superseded, so its objects were ignored and the "available"
/// checkpoint could not be read.
#[tokio::test]
async fn a_protect_after_delete_and_gc_is_readable() {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pb_ = Podbank::without_cinder(&etcd.url, dir.path());
    pb_.ok(&["demo", "seed", "--pods", "2000"]).await;
    let protect = |name: &'static str, ns: Option<&'static str>| {
        let mut args = vec![
            "protect",
            "--backup-name",
            name,
            "--description",
            name,
            "--no-volume-backups",
            "-o",
            "json",
        ];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        args
    };
    pb_.ok(&protect("keep", Some("ns-0"))).await;
    let drop = pb_.ok(&protect("drop", None)).await;
    let drop: serde_json::Value = serde_json::from_str(&drop.stdout).expect("json");
    let drop_id = drop[0]["id"].as_str().expect("an id").to_string();
    pb_.ok(&["delete", &drop_id]).await;
    pb_.ok(&["bank", "gc"]).await;
    let again = pb_.ok(&protect("again", None)).await;
    assert!(again.stdout.contains("available"), "{}", again.stdout);
    let verify = pb_.ok(&["checkpoints", "verify", "--all"]).await;
    assert!(verify.stdout.contains("no problems"), "{}", verify.stdout);
    pb_.ok(&["bank", "gc"]).await;
    pb_.ok(&["checkpoints", "verify", "--all"]).await;
    // Every object of every checkpoint reads back.
    let bank = pb_.open_bank().await;
    for cp in bank.checkpoints().await.expect("list").0 {
        for r in bank.resources(&cp).await.expect("resources") {
            // Records of what was not stored (missing owners, skipped Secrets) hold no id.
            if r.status != podbank::model::ResourceStatus::Protected {
                assert!(r.object_id.is_none(), "{r:?}");
                continue;
            }
            let id = r.object_id.expect("id");
            bank.read_object(&id, &cp.id).await.expect("readable");
        }
    }
}

/// The same at the library level, without etcd: the objects of a deleted checkpoint,
/// collected by gc, written again by the next checkpoint.
#[tokio::test]
async fn objects_collected_by_gc_and_written_again_stay_indexed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bank = open(dir.path(), None).await.expect("bank");
    let objects: Vec<Bytes> = (0..3000).map(|i| object(i, 1)).collect();
    write_checkpoint(&bank, "keep", objects[..100].to_vec())
        .await
        .expect("keep");
    let drop = write_checkpoint(&bank, "drop", objects[100..].to_vec())
        .await
        .expect("drop");
    bank.remove_checkpoint(&id_of(&drop)).await.expect("rm");
    bank.gc(Duration::from_secs(1)).await.expect("gc");
    for round in 0..3 {
        let again = write_checkpoint(&bank, "again", objects[100..].to_vec())
            .await
            .expect("again");
        let fresh = open(dir.path(), None).await.expect("reopen");
        let report = fresh.verify(None).await.expect("verify");
        assert!(report.is_clean(), "round {round}: {:?}", report.problems);
        fresh.remove_checkpoint(&id_of(&again)).await.expect("rm");
        fresh.gc(Duration::from_secs(1)).await.expect("gc");
    }
}

/// A flipped byte in each kind of record is named by verify, never read as another record.
#[tokio::test]
async fn a_flipped_byte_in_any_record_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bank = open(dir.path(), None).await.expect("bank");
    let cp = write_checkpoint(&bank, "a", (0..2000).map(|i| object(i, 1)).collect())
        .await
        .expect("checkpoint");
    let rid: RestoreId = "r-20260101T000000Z-00000001".parse().expect("id");
    let mut record = RestoreRecord::new(rid, cp.id.clone(), chrono::Utc::now());
    record.restore_name = "x".into();
    bank.put_restore(&record).await.expect("restore record");

    // The manifest, at nine places.
    let manifest = dir.path().join("checkpoints").join(cp.id.as_str());
    let len = std::fs::metadata(&manifest).expect("manifest").len() as usize;
    let original = std::fs::read(&manifest).expect("read");
    for k in 0..9 {
        flip(&manifest, k * len / 9);
        let report = bank.verify(None).await.expect("verify");
        let named = report.problems.iter().any(|p| {
            p.file.as_ref().map(ToString::to_string) == Some(format!("checkpoints/{}", cp.id))
                && p.checkpoints.contains(&cp.id.to_string())
        });
        assert!(named, "flip {k}: {:?}", report.problems);
        std::fs::write(&manifest, &original).expect("restore");
    }
    assert!(bank.verify(None).await.expect("verify").is_clean());

    // Each index file, at nine places: the index file is named, with the checkpoint.
    for path in files(dir.path(), "index") {
        let original = std::fs::read(&path).expect("read");
        for k in 0..9 {
            flip(&path, k * original.len() / 9);
            let report = bank.verify(None).await.expect("verify");
            let name = format!("index/{}", name_of(&path));
            let named = report.problems.iter().any(|p| {
                p.file.as_ref().map(ToString::to_string) == Some(name.clone())
                    && p.checkpoints.contains(&cp.id.to_string())
            });
            assert!(named, "flip {k} of {name}: {:?}", report.problems);
            std::fs::write(&path, &original).expect("restore");
        }
    }
    // The restore record, a lock, a pack.
    let restore = dir.path().join("restores").join(record.id.as_str());
    let len = std::fs::metadata(&restore).expect("record").len() as usize;
    flip(&restore, len / 2);
    let report = bank.verify(None).await.expect("verify");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.subject.contains(record.id.as_str())),
        "{:?}",
        report.problems
    );
    let writer = begin(&bank, "in progress").await.expect("writer");
    let lock = files(dir.path(), "locks").pop().expect("a lock");
    // Written over with junk (as a failing disk would), older than a lease.
    std::fs::write(&lock, b"junk").expect("junk");
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .and_then(|f| f.set_modified(old))
        .expect("age the lock");
    let report = bank.verify(None).await.expect("verify");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.subject.contains(&name_of(&lock))),
        "{:?}",
        report.problems
    );
    drop(writer);
    let pack = files(dir.path(), "data").pop().expect("a pack");
    flip(&pack, 100);
    let report = bank.verify(None).await.expect("verify");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.file.as_ref().map(ToString::to_string)
                == Some(format!("data/{}", name_of(&pack)))),
        "{:?}",
        report.problems
    );
    // The config: the bank refuses to open, naming it.
    let config = dir.path().join("config");
    flip(&config, 10);
    let err = open(dir.path(), None).await.err().map(|e| e.to_string());
    assert!(
        err.as_deref().unwrap_or_default().contains("config"),
        "{err:?}"
    );
}

/// A file that is not podbank's, in any folder, takes nothing down: listing and protect go
/// on, verify names it, gc refuses only where it cannot tell what is needed, and repair
/// moves it aside.
#[tokio::test]
async fn a_stray_file_in_any_folder_is_named_and_moved_aside() {
    for folder in ["index", "checkpoints", "locks", "restores", "data"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let bank = open(dir.path(), None).await.expect("bank");
        let first = write_checkpoint(&bank, "a", (0..500).map(|i| object(i, 1)).collect())
            .await
            .expect("checkpoint");
        let stray = dir.path().join(folder).join("notes-from-an-operator");
        std::fs::create_dir_all(dir.path().join(folder)).expect("folder");
        std::fs::write(&stray, b"remember to water the plants\n").expect("stray");
        let old = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&stray)
            .and_then(|f| f.set_modified(old))
            .expect("age it");

        // The rest works.
        let bank = open(dir.path(), None).await.expect("opens");
        let (listed, _) = bank.checkpoints().await.expect("list");
        assert_eq!(listed.len(), 1, "{folder}");
        let second = write_checkpoint(&bank, "b", (0..600).map(|i| object(i, 1)).collect())
            .await
            .unwrap_or_else(|e| panic!("{folder}: protect goes on: {e}"));
        assert!(
            bank.checkpoint(&id_of(&first)).await.is_ok(),
            "{folder}: the first is still there"
        );
        // verify names it.
        let report = bank.verify(None).await.expect("verify");
        let named = report
            .problems
            .iter()
            .any(|p| p.subject.contains("notes-from-an-operator"));
        assert!(named, "{folder}: {:?}", report.problems);
        // gc deletes nothing it cannot account for; repair moves the file aside.
        let gc = bank.gc(Duration::from_secs(5)).await;
        if folder == "index" || folder == "checkpoints" {
            let err = gc.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("bank repair"), "{folder}: {err}");
        } else {
            gc.unwrap_or_else(|e| panic!("{folder}: gc: {e}"));
        }
        let repair = bank.repair(Duration::from_secs(5)).await.expect("repair");
        assert!(
            repair
                .quarantined
                .iter()
                .any(|q| q.file.name == "notes-from-an-operator"),
            "{folder}: {repair:?}"
        );
        assert!(!stray.exists(), "{folder}");
        let quarantined = files(dir.path(), "quarantine");
        assert!(
            quarantined
                .iter()
                .any(|p| name_of(p).ends_with("notes-from-an-operator")),
            "{folder}: {quarantined:?}"
        );
        bank.gc(Duration::from_secs(5))
            .await
            .expect("gc after repair");
        let report = bank.verify(None).await.expect("verify");
        assert!(report.is_clean(), "{folder}: {:?}", report.problems);
        for cp in [&first, &second] {
            assert_eq!(
                bank.checkpoint(&id_of(cp)).await.expect("kept").status,
                CheckpointStatus::Available,
                "{folder}"
            );
        }
    }
}

/// Temporary files of a killed writer go at the next gc once they are older than any
/// lease; a young one (a live writer's) stays.
#[tokio::test]
async fn gc_removes_old_temporary_files_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bank = open(dir.path(), None).await.expect("bank");
    write_checkpoint(&bank, "a", (0..100).map(|i| object(i, 1)).collect())
        .await
        .expect("checkpoint");
    let folder = dir.path().join("data").join("ab");
    std::fs::create_dir_all(&folder).expect("folder");
    let old = folder.join(".tmp-abcd-1");
    let young = folder.join(".tmp-abcd-2");
    std::fs::write(&old, b"half a pack").expect("old");
    std::fs::write(&young, b"half a pack").expect("young");
    std::fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|f| f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600)))
        .expect("age it");
    let report = bank.gc(Duration::from_secs(1)).await.expect("gc");
    assert_eq!(report.leftovers_removed, 1);
    assert!(!old.exists());
    assert!(young.exists());
}

/// While gc waits for a slow writer, and while it runs, no other writer gets in.
#[tokio::test]
async fn gc_and_writers_exclude_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bank = open(dir.path(), None).await.expect("bank");
    write_checkpoint(&bank, "old", (0..100).map(|i| object(i, 1)).collect())
        .await
        .expect("checkpoint");
    // A slow writer holds its lock.
    let mut slow = begin(&bank, "slow").await.expect("slow writer");
    add_pods(
        &mut slow,
        &(0..50).map(|i| object(i, 2)).collect::<Vec<_>>(),
    )
    .await
    .expect("add");
    // gc waits for it...
    let gc_bank = bank.clone();
    let gc = tokio::spawn(async move { gc_bank.gc(Duration::from_secs(60)).await });
    wait_until("gc waits in line", || async {
        podbank::bank::lock::live_locks(bank.backend())
            .await
            .expect("locks")
            .iter()
            .any(|l| l.exclusive && l.waiting)
    })
    .await;
    // ...and a writer that starts meanwhile waits behind gc (here: gives up after 1 s).
    let second = bank
        .begin_checkpoint(
            podbank::bank::CheckpointDraft {
                backup_name: "second".into(),
                ..Default::default()
            },
            podbank::bank::WriterOptions {
                lock_wait: Duration::from_secs(1),
                ..Default::default()
            },
        )
        .await;
    match second {
        Err(BankError::Locked { holder, .. }) => assert!(holder.contains("gc"), "{holder}"),
        other => panic!("a writer got in while gc waited: {other:?}"),
    }
    assert!(!gc.is_finished(), "gc must wait for the slow writer");
    slow.commit(CheckpointStatus::Available, String::new())
        .await
        .expect("commit");
    gc.await.expect("join").expect("gc");
    // Afterwards both can write again, and everything reads.
    write_checkpoint(&bank, "after", (0..10).map(|i| object(i, 3)).collect())
        .await
        .expect("after gc");
    assert!(bank.verify(None).await.expect("verify").is_clean());
}

/// A damaged pack: repair saves what it still holds, the checkpoints that lost objects
/// become `error` and say so, the others stay `available` and verify clean.
#[tokio::test]
async fn repair_salvages_a_damaged_pack_and_marks_what_lost_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bank = open(dir.path(), None).await.expect("bank");
    let a = write_checkpoint(&bank, "a", (0..3000).map(|i| object(i, 1)).collect())
        .await
        .expect("a");
    let b = write_checkpoint(&bank, "b", (5000..5100).map(|i| object(i, 1)).collect())
        .await
        .expect("b");
    // Damage one frame in the middle of one of a's packs (not b's).
    let b_index = bank.index().await;
    let b_table = bank.resources(&b).await.expect("b resources");
    let b_pack = b_index
        .get(&b_table[0].object_id.expect("id"))
        .expect("indexed")
        .pack
        .to_string();
    let pack = files(dir.path(), "data")
        .into_iter()
        .find(|p| name_of(p) != b_pack)
        .expect("a pack of a");
    flip(&pack, 200);
    let report = bank.verify(None).await.expect("verify");
    assert!(report.affected_checkpoints().contains(&a.id.to_string()));
    let repair = bank.repair(Duration::from_secs(5)).await.expect("repair");
    assert_eq!(repair.packs_salvaged, 1, "{repair:?}");
    assert!(
        repair.objects_salvaged > 0 && repair.objects_lost > 0,
        "{repair:?}"
    );
    assert_eq!(repair.checkpoints_marked_error, vec![a.id.to_string()]);
    let a_now = bank.checkpoint(&id_of(&a)).await.expect("a");
    assert_eq!(a_now.status, CheckpointStatus::Error);
    assert!(a_now.reason.contains("damaged"), "{}", a_now.reason);
    assert_eq!(
        bank.checkpoint(&id_of(&b)).await.expect("b").status,
        CheckpointStatus::Available
    );
    assert!(bank
        .verify(Some(&id_of(&b)))
        .await
        .expect("verify b")
        .is_clean());
    // What a still has reads back; gc keeps it.
    bank.gc(Duration::from_secs(5)).await.expect("gc");
    let readable = read_all(&bank, &a_now).await;
    assert!(readable < 3000, "{readable}");
}

/// Lost index files come back from the packs' own trailers: nothing is lost.
#[tokio::test]
async fn repair_rebuilds_lost_index_files_from_the_packs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bank = open(dir.path(), None).await.expect("bank");
    let cp = write_checkpoint(&bank, "a", (0..4000).map(|i| object(i, 1)).collect())
        .await
        .expect("a");
    for path in files(dir.path(), "index") {
        std::fs::write(&path, b"gone").expect("damage");
    }
    let bank = open(dir.path(), None).await.expect("still opens");
    assert!(!bank.verify(None).await.expect("verify").is_clean());
    let repair = bank.repair(Duration::from_secs(5)).await.expect("repair");
    assert!(repair.packs_reindexed > 0, "{repair:?}");
    assert!(repair.checkpoints_marked_error.is_empty(), "{repair:?}");
    let report = bank.verify(None).await.expect("verify");
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(read_all(&bank, &cp).await, 4000);
}

async fn read_all(bank: &Arc<Bank>, cp: &Checkpoint) -> usize {
    let mut n = 0;
    if let Ok(resources) = bank.resources(cp).await {
        for r in resources {
            if let Some(id) = r.object_id {
                if bank.read_object(&id, &cp.id).await.is_ok() {
                    n += 1;
                }
            }
        }
    }
    n
}

/// Waits (polling) until `cond` holds, up to 30 s.
async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !cond().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
