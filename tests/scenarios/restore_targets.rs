//! The restore-target conformance suite: one set of checks of the contract the executor
//! relies upon (src/protection/restore/target/mod.rs), run over every target: the cluster
//! (against the API-server stand-in, with no Cinder), an export into a temporary folder and
//! a dry run kept in memory. Each target says only how to see from outside that it holds an
//! object (the stand-in has it, the folder has its file, the plan lists it); the rest is
//! the same for all. Then what differs by design: the cluster tells its own objects from
//! others' and reports what was deleted while it settles; the export lists its objects in
//! `plan.yaml`. Last, the two journals (where the record is kept): the bank's, and none.

use std::time::Duration;

use crate::support::apiserver::FakeApiServer;
use podbank::apiserver::{ApiServer, KubeSettings};
use podbank::codec::{ObjectEdits, ResourceKind};
use podbank::model::{
    BackupId, Checkpoint, CheckpointId, ObjectRef, Outcome, RestoreId, RestoreRecord, Source,
    VolumeId,
};
use podbank::model::{JournalBatch, RestoreStatus};
use podbank::protection::restore::plan::{Existing, ObjectStep};
use podbank::protection::restore::target::Made;
use podbank::protection::restore::{
    BankJournal, ClusterTarget, DryRunTarget, ExportTarget, NoJournal, RestoreError,
    RestoreJournal, RestoreTarget, ANNOTATION_RESTORE,
};
use podbank::protection::volumes::VolumeBackups;

const NS: &str = "conform";

/// More names of one kind in one namespace than the cluster answers by GETs: its
/// `existing_all` LISTs them.
const MANY: usize = 20;

/// The step creating ConfigMap `name` in [`NS`].
fn step(name: &str) -> ObjectStep {
    ObjectStep {
        kind: ResourceKind::ConfigMap,
        target: ObjectRef::new(NS, name),
        source: Source::object(ResourceKind::ConfigMap, ObjectRef::new(NS, name)),
        source_uid: Default::default(),
        object_id: None,
        generated: None,
        edits: ObjectEdits::default(),
        pv_volume: None,
        pod_inline: Vec::new(),
        changes: vec![format!("namespace {NS}")],
        reused: false,
    }
}

/// ConfigMap `name` as the executor hands it to a target: edited, with the restore
/// annotation of `restore`.
fn body(name: &str, restore: &RestoreId) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": NS,
            "annotations": {ANNOTATION_RESTORE: restore.as_str()},
        },
        "data": {"key": name},
    }))
    .expect("json")
}

/// The contract of every target. `holds(step, body)` tells from outside whether the target
/// holds the object of `step` with exactly `body`. Returns what `create` made (uids empty
/// in a dry run), in order.
async fn conformance(
    target: &dyn RestoreTarget,
    holds: &dyn Fn(&ObjectStep, &[u8]) -> bool,
) -> Vec<Made> {
    let restore = RestoreId::generate();
    let other = RestoreId::generate();
    let dry = target.dry_run();

    // Bounds and counters before anything is made.
    assert!(target.concurrency() >= 1, "concurrency at least 1");
    assert_eq!(target.throttling().answers, 0, "not throttled yet");

    // Nothing there yet.
    let names: Vec<String> = (0..MANY).map(|i| format!("cm-{i:02}")).collect();
    for name in &names {
        let s = step(name);
        assert_eq!(
            target
                .existing(s.kind, &s.target, &restore)
                .await
                .expect("existing"),
            Existing::Absent,
            "{name} absent before it is made"
        );
        assert!(!holds(&s, &body(name, &restore)), "{name} not held yet");
    }
    assert!(
        !target
            .differs(
                ResourceKind::ConfigMap,
                &ObjectRef::new(NS, "nowhere"),
                b"{}".to_vec()
            )
            .await
            .expect("differs"),
        "an absent object differs from nothing"
    );

    // Create: the outcome and the uid say whether this is a dry run.
    let mut made = Vec::new();
    let mut uids = std::collections::BTreeSet::new();
    for name in &names {
        let s = step(name);
        let b = body(name, &restore);
        let created = target.create(&s, b.clone()).await.expect("create");
        if dry {
            assert_eq!(created.outcome, Outcome::Planned, "a dry run plans {name}");
            assert!(created.uid.is_empty(), "a dry run gives no uid");
        } else {
            assert_eq!(created.outcome, Outcome::Restored, "{name} restored");
            assert!(!created.uid.is_empty(), "{name} has a uid");
            assert!(uids.insert(created.uid.clone()), "{name}'s uid is its own");
        }
        assert!(holds(&s, &b), "{name} held once created");
        made.push(Made {
            kind: s.kind,
            target: s.target.clone(),
            uid: created.uid,
            source: s.source.clone(),
        });
    }

    // What was made is found (ours), unless the target is not looked at; one by one and all
    // at once (the cluster LISTs these) say the same.
    let expected = if dry {
        Existing::Absent
    } else {
        Existing::Ours
    };
    let mut keys: Vec<_> = names
        .iter()
        .map(|n| (ResourceKind::ConfigMap, ObjectRef::new(NS, n.as_str())))
        .collect();
    keys.push((ResourceKind::ConfigMap, ObjectRef::new(NS, "never-made")));
    let all = target
        .existing_all(keys.clone(), &restore)
        .await
        .expect("existing_all");
    assert_eq!(all.len(), keys.len(), "an answer for every key");
    for key in &keys {
        let one = target
            .existing(key.0, &key.1, &restore)
            .await
            .expect("existing");
        let want = if key.1.name() == "never-made" {
            Existing::Absent
        } else {
            expected
        };
        assert_eq!(one, want, "{}", key.1);
        assert_eq!(all.get(key), Some(&one), "existing_all agrees on {}", key.1);
    }
    // Another restore's view: someone else's object, unless not looked at.
    let foreign = if dry {
        Existing::Absent
    } else {
        Existing::Foreign
    };
    let first = &keys[0];
    assert_eq!(
        target
            .existing(first.0, &first.1, &other)
            .await
            .expect("existing"),
        foreign
    );

    // Volumes: a dry run plans a placeholder; a cluster without Cinder says why not.
    let backup = BackupId::new("backup-1");
    match target.start_volume(&backup, "podbank-test-vol").await {
        Ok(v) => {
            assert!(dry, "only a dry run makes a volume without Cinder here");
            assert_eq!(v.outcome, Outcome::Planned);
            assert!(!v.id.as_str().is_empty(), "a placeholder id");
            assert!(!v.note.is_empty(), "a dry run says what it would do");
            target.wait_volume(&v.id, &backup).await.expect("wait");
        }
        Err(e) => {
            assert!(!dry, "a dry run makes no volume fail: {e}");
            assert!(matches!(e, RestoreError::NoCinder { .. }), "{e}");
            let waited = target
                .wait_volume(&VolumeId::new("some-volume"), &backup)
                .await;
            assert!(matches!(waited, Err(RestoreError::NoCinder { .. })));
        }
    }

    // Settle: nothing was deleted, nothing is lost.
    let watched: Vec<Made> = made.iter().filter(|m| !m.uid.is_empty()).cloned().collect();
    assert_eq!(watched.is_empty(), dry, "a dry run has nothing to watch");
    let lost = target
        .settle(&watched, Duration::from_millis(300))
        .await
        .expect("settle");
    assert!(lost.is_empty(), "nothing lost: {lost:?}");

    // Finish, once.
    let checkpoint = Checkpoint::new(CheckpointId::generate(), chrono::Utc::now());
    let record = RestoreRecord::new(restore.clone(), checkpoint.id.clone(), chrono::Utc::now());
    target.finish(&checkpoint, &record).await.expect("finish");
    for (name, m) in names.iter().zip(&made) {
        assert!(
            holds(&step(name), &body(name, &restore)),
            "{} still held",
            m.target
        );
    }
    assert_eq!(target.throttling().answers, 0, "never throttled");
    made
}

#[tokio::test]
async fn the_cluster_keeps_the_contract() {
    let fake = FakeApiServer::start(&[NS]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let api = ApiServer::connect(&KubeSettings {
        kubeconfig: Some(fake.write_kubeconfig(dir.path())),
        context: None,
    })
    .await
    .expect("client");
    let volumes = VolumeBackups::Skip("no Cinder in this test".into());
    let target = ClusterTarget {
        api: &api,
        volumes: &volumes,
        volume_timeout: Duration::from_secs(5),
    };
    assert!(!target.dry_run());
    let holds = |s: &ObjectStep, b: &[u8]| {
        fake.get("configmaps", s.target.namespace(), s.target.name())
            .is_some_and(|o| o.body == b)
    };
    let made = conformance(&target, &holds).await;

    // Made again meanwhile: the target says so.
    let again = target
        .create(&step("cm-00"), body("cm-00", &RestoreId::generate()))
        .await;
    assert!(
        matches!(again, Err(RestoreError::CreatedMeanwhile(_))),
        "{again:?}"
    );
    // Someone else's object, without our annotation: foreign to every restore.
    fake.create_json(
        "configmaps",
        NS,
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "theirs", "namespace": NS}}),
    )
    .expect("seed");
    assert_eq!(
        target
            .existing(
                ResourceKind::ConfigMap,
                &ObjectRef::new(NS, "theirs"),
                &RestoreId::generate()
            )
            .await
            .expect("existing"),
        Existing::Foreign
    );
    // Deleted while settling: reported lost, the others kept.
    fake.delete("configmaps", NS, "cm-03").expect("delete");
    let lost = target
        .settle(&made, Duration::from_millis(300))
        .await
        .expect("settle");
    let names: Vec<&str> = lost.iter().map(|(m, _)| m.target.name()).collect();
    assert_eq!(names, ["cm-03"], "{lost:?}");
    assert!(
        matches!(lost[0].1, RestoreError::Lost { .. }),
        "{:?}",
        lost[0].1
    );
}

#[tokio::test]
async fn an_export_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = ExportTarget::new(dir.path());
    assert!(target.dry_run());
    // Held: a file of the folder named after it, with its bytes.
    let holds = |s: &ObjectStep, b: &[u8]| {
        let suffix = format!("-configmaps-{NS}_{}.json", s.target.name());
        std::fs::read_dir(dir.path())
            .expect("the folder")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(&suffix))
            .any(|e| std::fs::read(e.path()).is_ok_and(|data| data == b))
    };
    let made = conformance(&target, &holds).await;

    // plan.yaml lists every object, in the order made, numbered.
    let plan: serde_yaml::Value = serde_yaml::from_slice(
        &std::fs::read(dir.path().join("plan.yaml")).expect("plan.yaml written by finish"),
    )
    .expect("yaml");
    let objects = plan["objects"].as_sequence().expect("objects");
    assert_eq!(objects.len(), made.len());
    for (i, (o, m)) in objects.iter().zip(&made).enumerate() {
        assert_eq!(o["name"].as_str(), Some(m.target.name()));
        assert_eq!(o["kind"].as_str(), Some("ConfigMap"));
        assert_eq!(
            o["file"].as_str(),
            Some(format!("{:02}-configmaps-{NS}_{}.json", i + 1, m.target.name()).as_str())
        );
    }
    // The objects and plan.yaml, nothing else.
    let files = std::fs::read_dir(dir.path()).expect("the folder").count();
    assert_eq!(files, made.len() + 1);
}

#[tokio::test]
async fn a_dry_run_keeps_the_contract() {
    let target = DryRunTarget::new();
    assert!(target.dry_run());
    // Held: planned, with its size.
    let holds = |s: &ObjectStep, b: &[u8]| {
        target
            .planned()
            .iter()
            .any(|p| p.namespace == NS && p.name == s.target.name() && p.bytes == b.len())
    };
    let made = conformance(&target, &holds).await;
    let planned = target.planned();
    let order: Vec<&str> = planned.iter().map(|p| p.name.as_str()).collect();
    let want: Vec<&str> = made.iter().map(|m| m.target.name()).collect();
    assert_eq!(order, want, "planned in the order made");
    assert!(planned
        .iter()
        .all(|p| p.encoding == "json" && p.source.starts_with("configmap:")));
}

#[tokio::test]
async fn the_bank_journal_keeps_and_resumes_the_record_and_no_journal_keeps_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bank = crate::support::bank::open(dir.path(), None)
        .await
        .expect("bank");
    let mut record = RestoreRecord::new(
        RestoreId::generate(),
        CheckpointId::generate(),
        chrono::Utc::now(),
    );
    record.parameters_json = "fingerprint".into();
    record.status = RestoreStatus::InProgress;
    let batch = JournalBatch {
        seq: 1,
        resources: Vec::new(),
        new_resources: [("volume:old".to_string(), "new".to_string())].into(),
    };

    let none = NoJournal;
    none.save(&record).await.expect("save");
    none.append(&record.id, &batch).await.expect("append");
    assert_eq!(none.resume("fingerprint").await.expect("resume"), None);

    let journal = BankJournal { bank: &bank };
    assert_eq!(journal.resume("fingerprint").await.expect("resume"), None);
    journal.save(&record).await.expect("save");
    journal.append(&record.id, &batch).await.expect("append");
    let resumed = journal
        .resume("fingerprint")
        .await
        .expect("resume")
        .expect("the unfinished run");
    assert_eq!(resumed.id, record.id);
    assert_eq!(
        resumed.new_resources.get("volume:old").map(String::as_str),
        Some("new"),
        "the batch folded in"
    );
    assert_eq!(journal.resume("another").await.expect("resume"), None);
    // Finished: nothing to resume.
    let mut done = resumed;
    done.status = RestoreStatus::Success;
    journal.save(&done).await.expect("save");
    assert_eq!(journal.resume("fingerprint").await.expect("resume"), None);
}
