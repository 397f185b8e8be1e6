//! Restore at the API server's speed (issue 14): many pods restored concurrently through the
//! control-plane stand-in, with API Priority and Fairness turning creates away (429 +
//! `Retry-After`), the restore record kept as a journal (appended in batches, compacted at the
//! end), and a restore killed mid-way that resumes from its journal without making anything
//! twice. The seeded pods have claims and Cinder volumes, protected without volume backups and
//! restored with `--original-volumes`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::apiserver::FakeApiServer;
use crate::support::etcd::TestEtcd;
use crate::support::workload::{self, Podbank, Run};
use podbank::model::{
    JournalBatch, Outcome, ResourceKind, ResourceType, RestoreId, RestoreRecord, RestoreStatus,
    RestoredResource, Source,
};
use podbank_seed::{self as seed, SeedPlan};
use serde_json::Value;

const PODS: usize = 240;

struct Scene {
    _etcd: TestEtcd,
    dir: tempfile::TempDir,
    podbank: Podbank,
    checkpoint: String,
    api: FakeApiServer,
    kubeconfig: String,
}

/// `PODS` seeded pods in namespaces ns-0..ns-3 (most with a claim on a Cinder volume),
/// protected without volume backups; a stand-in where none of the namespaces exist.
async fn scene() -> Scene {
    let etcd = TestEtcd::start();
    let plan = SeedPlan {
        pods: PODS,
        namespaces: 4,
        ..SeedPlan::default()
    };
    seed::write(&etcd.connect().await, seed::generate(&plan))
        .await
        .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let podbank = Podbank::without_cinder(&etcd.url, dir.path());
    podbank
        .ok(&[
            "protect",
            "--backup-name",
            "many",
            "--description",
            "restore speed",
            "--no-volume-backups",
        ])
        .await;
    let checkpoint = workload::checkpoints(&podbank.bank)
        .await
        .remove(0)
        .id
        .to_string();
    let api = FakeApiServer::start(&[]).await;
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
    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "restore",
            &self.checkpoint,
            "--kubeconfig",
            &self.kubeconfig,
            "--original-volumes",
            // Every pod made by podbank itself (the seeded pods have owners, whose
            // controllers would make them otherwise): this is about many pod creates.
            "--pods-only",
            "--settle",
            "0",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        args
    }

    fn pods(&self) -> usize {
        pods_in(&self.api)
    }

    fn journal_files(&self) -> Vec<String> {
        journal_files(&self.podbank.bank)
    }
}

/// The pods the (one) restore record of the bank, read with its journal, says it made.
async fn journaled_pods(podbank: &Podbank) -> usize {
    let bank = podbank.open_bank().await;
    let restores = bank.restores().await.unwrap_or_default();
    restores.first().map_or(0, |r| {
        r.resources
            .iter()
            .filter(|r| {
                r.kind == ResourceType::Kube(ResourceKind::Pod) && r.outcome == Outcome::Restored
            })
            .count()
    })
}

fn pods_in(api: &FakeApiServer) -> usize {
    (0..4)
        .map(|ns| api.objects_of("pods", &format!("ns-{ns}")).len())
        .sum()
}

fn journal_files(bank: &Path) -> Vec<String> {
    match std::fs::read_dir(bank.join("restore-journal")) {
        Ok(dir) => dir
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn record(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
}

fn outcomes_of(rec: &Value, kind: &str) -> Vec<(String, String)> {
    rec["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r["type"] == kind)
        .map(|r| {
            (
                r["source"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn many_pods_are_restored_concurrently_through_429s_with_a_journal() {
    let s = scene().await;
    // Flow control turns the first creates away, as APF does with its queues full.
    s.api.throttle_creates(6);
    let run = s.podbank.run(&s.args(&["--concurrency", "32"])).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let rec = record(&run);
    assert_eq!(rec["status"], "success", "{rec}");

    // Every pod once, with its claim and PV, naming the original volume.
    assert_eq!(s.pods(), PODS);
    let pods = outcomes_of(&rec, "OS::Kubernetes::Pod");
    assert_eq!(pods.len(), PODS);
    assert!(
        pods.iter().all(|(_, status)| status == "restored"),
        "{pods:?}"
    );
    let claims = s
        .api
        .objects()
        .iter()
        .filter(|o| o.resource == "persistentvolumeclaims")
        .count();
    assert!(claims > 0 && claims < PODS, "{claims} claims");
    let pvs = s.api.objects_of("persistentvolumes", "");
    assert_eq!(pvs.len(), claims);
    let volumes = outcomes_of(&rec, "OS::Cinder::Volume");
    assert!(volumes.len() >= claims, "a volume note per claim at least");
    assert!(
        volumes.iter().all(|(_, status)| status == "skipped"),
        "no volume is made: {volumes:?}"
    );
    for pv in &pvs {
        let handle = pv.object["spec"]["cinder"]["volumeID"]
            .as_str()
            .or_else(|| pv.object["spec"]["csi"]["volumeHandle"].as_str())
            .unwrap_or_else(|| panic!("a Cinder source: {}", pv.object));
        assert!(
            volumes
                .iter()
                .any(|(source, status)| source == handle && status == "skipped"),
            "the PV names an original volume: {handle}"
        );
    }

    // The 429s were honoured and counted; nothing failed because of them.
    assert_eq!(s.api.throttled(), 6);
    assert_eq!(rec["stats"]["throttled"], 6, "{}", rec["stats"]);
    let waited = rec["stats"]["throttleWaitSeconds"]
        .as_f64()
        .expect("waited");
    assert!(
        (6.0..7.0).contains(&waited),
        "Retry-After: 1, six times: {waited}"
    );

    // The record was written as a journal: a few batches a second, then compacted.
    assert!(s.journal_files().is_empty(), "{:?}", s.journal_files());
    let run_seconds = rec["stats"]["runSeconds"].as_f64().expect("run seconds");
    let writes = rec["stats"]["recordWrites"].as_u64().expect("writes");
    assert!(
        (writes as f64) <= 2.0 + 4.0 * run_seconds + 2.0,
        "{writes} writes in {run_seconds} s: the record is written in batches"
    );
    let id: RestoreId = rec["id"].as_str().expect("id").parse().expect("restore id");
    let stored = s
        .podbank
        .open_bank()
        .await
        .restore(&id)
        .await
        .expect("record");
    assert_eq!(stored.status, RestoreStatus::Success);
    assert_eq!(
        stored.resources.len(),
        rec["resources"].as_array().map_or(0, Vec::len)
    );
    assert_eq!(stored.stats.throttled, 6);
}

#[tokio::test]
async fn a_restore_killed_mid_way_resumes_from_its_journal_without_making_anything_twice() {
    let s = scene().await;
    let args = s.args(&["--concurrency", "4"]);
    let mut child = s.podbank.spawn(&args);
    // Let it make a third of the pods and write journal batches, then stall it (every
    // create turned away) and kill it.
    let third = |api: &FakeApiServer| pods_in(api) >= PODS / 3;
    assert!(
        s.api.wait_for(Duration::from_secs(60), third).await,
        "the restore made {} pods",
        s.pods()
    );
    // The journal is in the bank: polled until a batch names a pod made.
    let deadline = Instant::now() + Duration::from_secs(10);
    while journaled_pods(&s.podbank).await == 0 {
        assert!(Instant::now() < deadline, "no journal batch names a pod");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the restore ended ({status}) before it was killed");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.api.throttle_creates(usize::MAX);
    child.kill().await.expect("kill restore");
    s.api.throttle_creates(0);
    let made_before = s.pods();
    assert!(made_before < PODS, "killed before the end: {made_before}");
    let batches = s.journal_files();
    assert!(!batches.is_empty(), "the killed restore left its journal");

    // The killed run's record, read with its journal, knows what it made.
    let bank = s.podbank.open_bank().await;
    let killed = bank.restores().await.expect("restores");
    assert_eq!(killed.len(), 1);
    let killed = &killed[0];
    assert_eq!(killed.status, RestoreStatus::InProgress);
    assert!(killed.journal_seq >= 1);
    let known = killed
        .resources
        .iter()
        .filter(|r| {
            r.kind == ResourceType::Kube(ResourceKind::Pod) && r.outcome == Outcome::Restored
        })
        .count();
    assert!(
        known > 0 && known <= made_before,
        "{known} of {made_before}"
    );

    // Run again: the same restore goes on; every pod is there once.
    let creates_before = s.api.requests().len();
    let run = s.podbank.run(&args).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let rec = record(&run);
    assert_eq!(rec["id"], killed.id.as_str(), "resumed, not started anew");
    assert_eq!(s.pods(), PODS);
    let pods = outcomes_of(&rec, "OS::Kubernetes::Pod");
    assert_eq!(pods.len(), PODS);
    let reused = pods.iter().filter(|(_, st)| st == "reused").count();
    assert_eq!(reused, made_before, "what the killed run made is reused");
    let pod_creates = s.api.requests()[creates_before..]
        .iter()
        .filter(|r| r.starts_with("POST pods "))
        .count();
    assert_eq!(pod_creates, PODS - made_before, "nothing is made twice");
    let sources: BTreeSet<&String> = pods.iter().map(|(src, _)| src).collect();
    assert_eq!(sources.len(), PODS, "one outcome per pod");
    assert!(
        s.journal_files().is_empty(),
        "compacted: {:?}",
        s.journal_files()
    );
    drop(s.dir);
}

#[tokio::test]
async fn the_journal_is_folded_in_order_and_gc_removes_what_the_record_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend: std::sync::Arc<dyn podbank::bank::backend::Backend> = std::sync::Arc::new(
        podbank::bank::backend::LocalBackend::new(dir.path().join("bank")).expect("backend"),
    );
    let bank = podbank::bank::Bank::open(
        backend,
        podbank::bank::OpenOptions {
            key: None,
            create: true,
            pack_target_bytes: None,
        },
    )
    .await
    .expect("bank");
    let id = RestoreId::generate();
    let record = RestoreRecord::new(
        id.clone(),
        "20260101T000000Z-00000001".parse().expect("checkpoint id"),
        chrono::Utc::now(),
    );
    bank.put_restore(&record).await.expect("put");
    let outcome = |source: &str, outcome: Outcome| RestoredResource {
        kind: ResourceType::Kube(ResourceKind::Pod),
        source: Source::parse(&ResourceType::Kube(ResourceKind::Pod), source),
        target: source.into(),
        new_id: String::new(),
        outcome,
        reason: String::new(),
    };
    let batches = [
        JournalBatch {
            seq: 1,
            resources: vec![
                outcome("a", Outcome::Error),
                outcome("b", Outcome::Restored),
            ],
            new_resources: [("a".to_string(), "uid-a".to_string())].into(),
        },
        JournalBatch {
            seq: 2,
            resources: vec![outcome("a", Outcome::Restored)],
            new_resources: Default::default(),
        },
    ];
    for b in &batches {
        bank.append_restore(&id, b).await.expect("append");
    }
    let read = bank.restore(&id).await.expect("read");
    assert_eq!(read.journal_seq, 2);
    assert_eq!(
        read.resources,
        vec![
            outcome("a", Outcome::Restored),
            outcome("b", Outcome::Restored)
        ],
        "later batches replace earlier outcomes, in place"
    );
    assert_eq!(
        read.new_resources.get("a").map(String::as_str),
        Some("uid-a")
    );

    // Compaction: the record whole, the batches gone.
    bank.put_restore(&read).await.expect("compact");
    assert!(journal_files(&dir.path().join("bank")).is_empty());

    // A batch the record already holds (left by a run killed while compacting) is passed
    // over when reading, and gc removes it.
    bank.append_restore(&id, &batches[0]).await.expect("append");
    assert_eq!(bank.restore(&id).await.expect("read"), read);
    bank.gc(Duration::from_secs(5)).await.expect("gc");
    assert!(journal_files(&dir.path().join("bank")).is_empty());

    // A damaged batch is named by verify.
    let next = JournalBatch {
        seq: 3,
        resources: vec![outcome("c", Outcome::Restored)],
        new_resources: Default::default(),
    };
    bank.append_restore(&id, &next).await.expect("append");
    let file = dir
        .path()
        .join("bank/restore-journal")
        .join(format!("{id}.00000003"));
    let mut bytes = std::fs::read(&file).expect("batch");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&file, bytes).expect("damage");
    let (_, problems) = bank.restore_records().await.expect("records");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].file.as_ref().map(ToString::to_string),
        Some(format!("restore-journal/{id}.00000003")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn progress_is_plain_lines_off_a_terminal_and_nothing_with_json_output() {
    let s = scene().await;
    // stderr is a pipe here: plain lines, and restore's summary.
    let args: Vec<&str> = s
        .args(&[])
        .into_iter()
        .filter(|a| *a != "-o" && *a != "json")
        .collect();
    let run = s.podbank.run(&args).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let last = |stage: &str| {
        run.stderr
            .lines()
            .rfind(|l| l.starts_with(stage))
            .unwrap_or_else(|| panic!("a {stage:?} line: {}", run.stderr))
            .to_string()
    };
    let created = last("objects created: ");
    let total: usize = created
        .trim_start_matches("objects created: ")
        .split_once('/')
        .and_then(|(done, rest)| {
            let total = rest.split(' ').next()?;
            (done == total).then(|| total.parse().ok())?
        })
        .unwrap_or_else(|| panic!("done = total: {created}"));
    assert!(total > PODS, "pods, claims, PVs and namespaces: {created}");
    assert!(
        run.stderr.contains("resource(s) restored or reused in"),
        "{}",
        run.stderr
    );

    // The protect of the scene ran with a pipe too; with -o json nothing is drawn.
    let json = s
        .podbank
        .run(&[
            "protect",
            "--backup-name",
            "quiet",
            "--description",
            "json",
            "--no-volume-backups",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert!(
        !json.stderr.contains("objects stored"),
        "nothing in -o json: {}",
        json.stderr
    );
    let plain = s
        .podbank
        .run(&[
            "protect",
            "--backup-name",
            "plain",
            "--description",
            "lines",
            "--no-volume-backups",
        ])
        .await;
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert!(
        plain.stderr.contains("objects stored: "),
        "a plain line off a terminal: {}",
        plain.stderr
    );
}

/// Issue 24: a restore of a checkpoint taken with `--no-volume-backups`, without
/// `--original-volumes`, fails for every pod with a volume; the error says so once (the
/// count, the first few, the remedy), not one line naming them all.
#[tokio::test]
async fn volumes_without_a_backup_fail_with_one_summarised_error() {
    let s = scene().await;
    let run = s
        .podbank
        .run(&[
            "restore",
            &s.checkpoint,
            "--kubeconfig",
            &s.kubeconfig,
            "--settle",
            "0",
        ])
        .await;
    assert_ne!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let error = run
        .stderr
        .lines()
        .find(|l| l.contains("failed:"))
        .unwrap_or_else(|| panic!("an error line: {}", run.stderr));
    let count: usize = error
        .split(" pods or workloads could not be restored")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count: {error}"));
    assert!(count > 5 && count <= PODS, "{count}: {error}");
    let named = error.matches("has no available backup").count();
    assert!((1..=5).contains(&named), "{named} named: {error}");
    assert!(
        error.contains(&format!("and {} more", count - named)),
        "{error}"
    );
    assert!(
        error.contains("--original-volumes") && error.contains("--pods-only"),
        "the remedy: {error}"
    );
    assert!(error.len() < 2000, "{} bytes: {error}", error.len());
}

/// Issue 24: a dry run counts what it plans, not what it created, and does not claim the
/// target lacks what it never looked at.
#[tokio::test]
async fn a_dry_run_says_planned_and_claims_nothing_of_the_target() {
    let s = scene().await;
    let export = s.dir.path().join("plan");
    let export = export.to_str().expect("utf-8");
    let args: Vec<&str> = s
        .args(&["--dry-run", "--export", export])
        .into_iter()
        .filter(|a| *a != "-o" && *a != "json")
        .collect();
    let run = s.podbank.run(&args).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("objects planned: ")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("objects created"), "{}", run.stderr);
    assert!(
        run.stderr.contains("dry run: nothing restored"),
        "{}",
        run.stderr
    );
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(!out.contains("the target has none"), "{out}");
    assert_eq!(s.pods(), 0, "nothing restored");
}
