//! A model-based test of the bank, the way storage engines test their invariants: random
//! sequences of protect (with churn in etcd between them), delete, gc, concurrent writers,
//! processes killed at random points of their writes, and damage of random files, checked
//! after every step against what must be true:
//!
//! * every checkpoint listed `available` verifies, and every object it holds is byte for
//!   byte the etcd value of its key at the checkpoint's revision (etcd itself is the oracle:
//!   nothing is compacted), and it holds exactly the pods etcd had in its namespaces then;
//! * every checkpoint a protect reported `available` stays listed and `available` until it
//!   is deleted, unless damage hit it (then verify named it, and after `bank repair` it is
//!   `error` or moved aside: never listed `available` and unreadable);
//! * gc never deletes what a live checkpoint needs.
//!
//! Fixed seeds run in every test run, plus one new seed, printed (replay it with
//! `PODBANK_MODEL_SEED=<seed>`); `PODBANK_MODEL_STEPS=<n>` makes a long soak of it. One fixed
//! seed runs again on an encrypted bank (packs sealed in chunks: damage, repair and reads go
//! through the encryption decorator).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use podbank::bank::backend::Kind;
use podbank::bank::{Bank, BankKey, CheckpointId};
use podbank::model::{Checkpoint, CheckpointStatus};
use podbank_seed::{self as seed, SeedPlan};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::bank::{open, protect_from_etcd};
use crate::support::etcd::TestEtcd;

/// Steps per seed in a normal run.
const STEPS: usize = 70;
/// The seeds every run replays.
const FIXED_SEEDS: [u64; 3] = [11, 23, 47];
/// Pods in the model cluster, over three namespaces.
const PODS: usize = 240;

/// A checkpoint the model expects to find.
#[derive(Debug, Clone)]
struct Expected {
    /// Listed `available` until deleted (unless damage hit it).
    available: bool,
}

struct World {
    rng: StdRng,
    etcd: TestEtcd,
    client: podbank::etcd::Etcd,
    dir: tempfile::TempDir,
    plan: SeedPlan,
    /// Checkpoints reported `available` and not deleted.
    expected: BTreeMap<CheckpointId, Expected>,
    /// What happened, for the failure message.
    log: Vec<String>,
    /// The bank's key, if it is encrypted.
    key: Option<BankKey>,
}

impl World {
    async fn new(seed: u64, key: Option<BankKey>) -> World {
        let etcd = TestEtcd::start();
        let client = etcd.connect().await;
        let plan = SeedPlan {
            pods: PODS,
            namespaces: 3,
            seed,
            ..SeedPlan::default()
        };
        seed::write(&client, seed::generate(&plan))
            .await
            .expect("seed etcd");
        World {
            rng: StdRng::seed_from_u64(seed),
            etcd,
            client,
            dir: tempfile::tempdir().expect("tempdir"),
            plan,
            expected: BTreeMap::new(),
            log: Vec::new(),
            key,
        }
    }

    fn bank_dir(&self) -> PathBuf {
        self.dir.path().join("bank")
    }

    async fn bank(&self) -> Arc<Bank> {
        open(&self.bank_dir(), self.key.clone())
            .await
            .expect("open the bank")
    }

    fn note(&mut self, what: String) {
        self.log.push(what);
    }

    fn history(&self) -> String {
        self.log.join("\n  ")
    }

    fn namespaces(&mut self) -> String {
        match self.rng.gen_range(0..4) {
            0 => String::new(),
            n => format!("ns-{}", n - 1),
        }
    }

    async fn protect(&mut self) {
        let ns = self.namespaces();
        let bank = self.bank().await;
        let cp = protect_from_etcd(&bank, &self.etcd.url, &ns)
            .await
            .unwrap_or_else(|e| panic!("protect {ns:?}: {e}\n  {}", self.history()));
        assert_eq!(cp.status, CheckpointStatus::Available, "{cp:?}");
        self.note(format!("protect {ns:?} -> {}", cp.id));
        self.expected
            .insert(cp.id.clone(), Expected { available: true });
    }

    async fn concurrent(&mut self) {
        let (a, b) = (self.namespaces(), self.namespaces());
        let bank = self.bank().await;
        let (x, y) = tokio::join!(
            protect_from_etcd(&bank, &self.etcd.url, &a),
            protect_from_etcd(&bank, &self.etcd.url, &b)
        );
        for (ns, cp) in [(a, x), (b, y)] {
            let cp = cp.unwrap_or_else(|e| panic!("concurrent protect {ns:?}: {e}"));
            self.note(format!("concurrent protect {ns:?} -> {}", cp.id));
            self.expected
                .insert(cp.id.clone(), Expected { available: true });
        }
    }

    async fn churn(&mut self) {
        let n = self.rng.gen_range(1..20);
        self.plan.generation += 1;
        let changed: BTreeSet<usize> = (0..n).map(|_| self.rng.gen_range(0..PODS)).collect();
        self.plan.changed.extend(changed.iter().copied());
        let objects: Vec<_> = changed
            .iter()
            .flat_map(|&i| seed::pod_objects(&self.plan, i))
            .filter(|o| o.key.contains("/pods/"))
            .collect();
        seed::write(&self.client, objects)
            .await
            .expect("churn in etcd");
        self.note(format!("churn {} pods", changed.len()));
    }

    async fn delete(&mut self) {
        let bank = self.bank().await;
        let (listed, _) = bank.checkpoints().await.expect("list");
        if listed.is_empty() {
            return;
        }
        let cp = &listed[self.rng.gen_range(0..listed.len())];
        let id: CheckpointId = cp.id.clone();
        bank.remove_checkpoint(&id).await.expect("delete");
        self.expected.remove(&cp.id);
        self.note(format!("delete {}", cp.id));
    }

    async fn gc(&mut self) {
        let bank = self.bank().await;
        match bank.gc(Duration::from_secs(30)).await {
            Ok(report) => self.note(format!(
                "gc: {} packs removed, {} locks",
                report.packs_removed, report.stale_locks_removed
            )),
            Err(e) => panic!("gc failed on a healthy bank: {e}\n  {}", self.history()),
        }
    }

    /// Runs `op` in a child process that kills itself at its `at`-th write.
    async fn killed(&mut self, op: &str) {
        let at = self.rng.gen_range(1..12);
        let after = self.rng.gen_bool(0.5);
        let spec = format!("{at}{}", if after { "+" } else { "" });
        let ns = self.namespaces();
        let before: BTreeSet<CheckpointId> = self
            .bank()
            .await
            .checkpoints()
            .await
            .expect("list")
            .0
            .into_iter()
            .map(|c| c.id)
            .collect();
        let mut child = tokio::process::Command::new(std::env::current_exe().expect("exe"));
        if let Some(key) = &self.key {
            child.env("PODBANK_CRASH_KEY", key.to_hex());
        }
        let out = child
            .args([
                "--exact",
                "bank::crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PODBANK_CRASH_DIR", self.bank_dir())
            .env("PODBANK_CRASH_AT", &spec)
            .env("PODBANK_CRASH_OP", op)
            .env("PODBANK_CRASH_ETCD", &self.etcd.url)
            .env("PODBANK_CRASH_NAMESPACES", &ns)
            .output()
            .await
            .expect("run the child");
        let killed = !out.status.success();
        self.note(format!(
            "{op} {ns:?} killed at write {spec}: {}",
            if killed { "killed" } else { "finished" }
        ));
        if !killed && op == "protect" {
            // It finished: its checkpoint is expected like any other.
            let bank = self.bank().await;
            for cp in bank.checkpoints().await.expect("list").0 {
                if !before.contains(&cp.id) {
                    self.expected.insert(cp.id, Expected { available: true });
                }
            }
        }
    }

    /// Damages one random file, checks that verify names it, repairs, and lets the model
    /// forget what the damage took.
    async fn damage(&mut self) {
        let dir = self.bank_dir();
        let mut candidates: Vec<(Kind, PathBuf)> = Vec::new();
        for (kind, folder) in [
            (Kind::Pack, "data"),
            (Kind::Index, "index"),
            (Kind::Checkpoint, "checkpoints"),
        ] {
            for f in files(&dir.join(folder)) {
                candidates.push((kind, f));
            }
        }
        let stray = self.rng.gen_bool(0.15) || candidates.is_empty();
        let (kind, path, how) = if stray {
            let folder = ["data", "index", "checkpoints", "locks"][self.rng.gen_range(0..4)];
            let path = dir
                .join(folder)
                .join(format!("stray-{}", self.rng.gen::<u32>()));
            std::fs::create_dir_all(dir.join(folder)).expect("folder");
            std::fs::write(&path, b"not podbank's").expect("stray");
            let old = std::time::SystemTime::now() - Duration::from_secs(3600);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(old))
                .expect("age");
            (Kind::Lock, path, "stray file")
        } else {
            let (kind, path) = candidates.swap_remove(self.rng.gen_range(0..candidates.len()));
            let mut data = std::fs::read(&path).expect("read");
            let how = if self.rng.gen_bool(0.8) && !data.is_empty() {
                let at = self.rng.gen_range(0..data.len());
                data[at] ^= self.rng.gen_range(1..=255u8);
                "flipped byte"
            } else {
                data.truncate(data.len() / 2);
                "truncated"
            };
            std::fs::write(&path, data).expect("write");
            (kind, path, how)
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        self.note(format!("damage: {how} {}", path.display()));
        // verify names the file.
        let bank = self.bank().await;
        let report = bank
            .verify(None)
            .await
            .expect("verify runs on a damaged bank");
        let named = report
            .problems
            .iter()
            .any(|p| p.subject.contains(&name) || p.file.as_ref().is_some_and(|f| f.name == name));
        assert!(
            named,
            "verify did not name the damaged {kind} {name}: {:?}\n  {}",
            report.problems,
            self.history()
        );
        let affected: BTreeSet<String> = report.affected_checkpoints().into_iter().collect();
        // gc never makes it worse: it refuses, or keeps what is needed.
        let _ = bank.gc(Duration::from_secs(30)).await;
        let repair = bank
            .repair(Duration::from_secs(30))
            .await
            .expect("repair runs on a damaged bank");
        self.note(format!(
            "repair: {} quarantined, {} salvaged, {} reindexed, error: {:?}",
            repair.quarantined.len(),
            repair.packs_salvaged,
            repair.packs_reindexed,
            repair.checkpoints_marked_error
        ));
        for id in repair
            .checkpoints_marked_error
            .iter()
            .chain(&repair.checkpoints_lost)
        {
            assert!(
                affected.contains(id),
                "repair gave up on {id}, which verify did not name as affected\n  {}",
                self.history()
            );
            if let Ok(id) = id.parse::<CheckpointId>() {
                self.expected.remove(&id);
            }
        }
        // What still has problems is no longer listed as available.
        let report = bank.verify(None).await.expect("verify");
        let (listed, _) = bank.checkpoints().await.expect("list");
        for p in &report.problems {
            for id in &p.checkpoints {
                let status = listed
                    .iter()
                    .find(|c| c.id.as_str() == id)
                    .map(|c| c.status);
                assert_ne!(
                    status,
                    Some(CheckpointStatus::Available),
                    "after repair, available checkpoint {id} still has a problem: {p:?}\n  {}",
                    self.history()
                );
            }
        }
    }

    /// The invariants, after every step.
    async fn check(&self, step: usize) {
        let bank = self.bank().await;
        let (listed, problems) = bank.checkpoints().await.expect("list");
        assert!(
            problems.is_empty(),
            "step {step}: unreadable manifests {problems:?}\n  {}",
            self.history()
        );
        let by_id: BTreeMap<&CheckpointId, &Checkpoint> =
            listed.iter().map(|c| (&c.id, c)).collect();
        for (id, e) in &self.expected {
            let cp = by_id.get(id).unwrap_or_else(|| {
                panic!(
                    "step {step}: checkpoint {id} vanished\n  {}",
                    self.history()
                )
            });
            if e.available {
                assert_eq!(
                    cp.status,
                    CheckpointStatus::Available,
                    "step {step}: {id}\n  {}",
                    self.history()
                );
            }
        }
        for cp in listed
            .iter()
            .filter(|c| c.status == CheckpointStatus::Available)
        {
            let report = bank.verify(Some(&cp.id)).await.expect("verify");
            assert!(
                report.is_clean(),
                "step {step}: available checkpoint {} does not verify: {:?}\n  {}",
                cp.id,
                report.problems,
                self.history()
            );
            self.matches_etcd(&bank, cp, step).await;
        }
    }

    /// Every object of `cp` is etcd's value at its revision, and it holds every pod etcd had
    /// in its namespaces.
    async fn matches_etcd(&self, bank: &Bank, cp: &Checkpoint, step: usize) {
        let resources = bank.resources(cp).await.expect("resources");
        let namespaces = cp.selection.namespaces.clone();
        let prefixes: Vec<String> = if namespaces.is_empty() {
            vec!["/registry/pods/".into()]
        } else {
            namespaces
                .iter()
                .map(|ns| format!("/registry/pods/{ns}/"))
                .collect()
        };
        let mut kv = self.client.client().kv_client();
        let mut at_revision: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for p in &prefixes {
            let resp = kv
                .get(
                    p.as_bytes(),
                    Some(
                        etcd_client::GetOptions::new()
                            .with_prefix()
                            .with_revision(cp.revision.get()),
                    ),
                )
                .await
                .expect("etcd at the checkpoint's revision");
            for kv in resp.kvs() {
                at_revision.insert(
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    kv.value().to_vec(),
                );
            }
        }
        let pods: BTreeSet<&str> = resources
            .iter()
            .filter(|r| r.key.as_str().starts_with("/registry/pods/"))
            .map(|r| r.key.as_str())
            .collect();
        let expected_pods: BTreeSet<&str> = at_revision.keys().map(String::as_str).collect();
        assert_eq!(
            pods, expected_pods,
            "step {step}: checkpoint {} holds other pods than etcd had at {}",
            cp.id, cp.revision
        );
        for r in resources
            .iter()
            .filter(|r| r.key.as_str().starts_with("/registry/pods/"))
        {
            let id = r.object_id.expect("id");
            let stored = bank.read_object(&id, &cp.id).await.expect("read");
            assert_eq!(
                stored.as_ref(),
                at_revision[r.key.as_str()].as_slice(),
                "step {step}: {} of {} differs from etcd at {}",
                r.key,
                cp.id,
                cp.revision
            );
        }
    }

    async fn step(&mut self, step: usize) {
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=24 => self.protect().await,
            25..=39 => self.churn().await,
            40..=51 => self.delete().await,
            52..=61 => self.gc().await,
            62..=67 => self.concurrent().await,
            68..=77 => self.killed("protect").await,
            78..=84 => self.killed("gc").await,
            _ => self.damage().await,
        }
        // Keep the bank small: at most eight checkpoints.
        while self.bank().await.checkpoints().await.expect("list").0.len() > 8 {
            self.delete().await;
        }
        self.check(step).await;
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if !p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
        {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn steps() -> usize {
    std::env::var("PODBANK_MODEL_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(STEPS)
}

async fn run(seed: u64, steps: usize, key: Option<BankKey>) {
    let sealed = if key.is_some() { ", encrypted" } else { "" };
    println!("bank model: seed {seed}{sealed}, {steps} steps (replay: PODBANK_MODEL_SEED={seed})");
    let mut world = World::new(seed, key).await;
    for step in 0..steps {
        world.step(step).await;
    }
    println!("bank model: seed {seed} passed:\n  {}", world.history());
}

#[tokio::test]
async fn the_bank_keeps_its_invariants_under_fixed_seeds() {
    for seed in FIXED_SEEDS {
        run(seed, steps(), None).await;
    }
}

#[tokio::test]
async fn an_encrypted_bank_keeps_its_invariants() {
    run(FIXED_SEEDS[0], steps(), Some(BankKey::generate())).await;
}

#[tokio::test]
async fn the_bank_keeps_its_invariants_under_a_new_seed() {
    let seed = std::env::var("PODBANK_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    run(seed, steps(), None).await;
}

/// The reproduction of the index-name bug, as a fixed sequence of the model's steps.
#[tokio::test]
async fn the_reproduction_is_a_fixed_case() {
    let mut world = World::new(7, None).await;
    let bank = world.bank().await;
    let keep = protect_from_etcd(&bank, &world.etcd.url, "ns-0")
        .await
        .expect("keep");
    world
        .expected
        .insert(keep.id.clone(), Expected { available: true });
    let drop = protect_from_etcd(&bank, &world.etcd.url, "")
        .await
        .expect("drop");
    world.check(0).await;
    bank.remove_checkpoint(&drop.id).await.expect("delete");
    world.gc().await;
    world.check(1).await;
    let again = protect_from_etcd(&bank, &world.etcd.url, "")
        .await
        .expect("again");
    world
        .expected
        .insert(again.id.clone(), Expected { available: true });
    world.check(2).await;
    world.gc().await;
    world.check(3).await;
}
