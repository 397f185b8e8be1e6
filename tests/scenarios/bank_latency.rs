//! Issue 33: a Swift or S3 bank 20 ms a request away (the rig, or its s3api, behind
//! [`LatencyProxy`]) restores and verifies exactly as a local bank does, reading by pack:
//! the bank's own counters bound its GETs by the packs it touches, not by the objects it
//! reads; and a damaged frame is named there as it is in a local bank.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use podbank::bank::backend::{Backend, BackendSettings, Kind};
use podbank::bank::{backend, Bank, BankFile, ObjectId, OpenOptions, RequestCounts};
use podbank::model::{CheckpointId, Outcome, RestoreId, RestoreRecord, RestoredResource};
use podbank::protection::restore::{ExportTarget, NoJournal};
use podbank::protection::{self, RestoreRequest};
use podbank_seed::{self as seed, SeedPlan};

use crate::support::bank::protect_from_etcd_as;
use crate::support::etcd::TestEtcd;
use crate::support::latency::LatencyProxy;
use crate::support::swift::{SwiftRig, KEY, USER};

/// Pods seeded.
const PODS: usize = 3000;
/// Small packs, so that the checkpoint spans many.
const PACK_BYTES: u32 = 128 << 10;
/// The delay of each request.
const DELAY: Duration = Duration::from_millis(20);

/// Every file of `dir` (an export), by name.
fn files(dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        out.insert(
            entry.file_name().to_string_lossy().into_owned(),
            std::fs::read(entry.path())?,
        );
    }
    Ok(out)
}

/// A dry run of every pod of `checkpoint` into `dir`, as restore `id`; with the bank's
/// requests during it and its time.
async fn dry_run(
    bank: &Bank,
    checkpoint: &CheckpointId,
    id: &RestoreId,
    dir: &Path,
) -> anyhow::Result<(RestoreRecord, RequestCounts, Duration)> {
    std::fs::create_dir_all(dir)?;
    let req = RestoreRequest {
        restore_id: Some(id.clone()),
        original_volumes: true,
        settle: Some(Duration::ZERO),
        ..RestoreRequest::of(checkpoint.clone())
    };
    let target = ExportTarget::new(dir);
    let before = bank.requests();
    let started = Instant::now();
    let record = protection::restore(
        bank,
        &target,
        &NoJournal,
        &req,
        &podbank::protection::progress::Silent,
    )
    .await?;
    Ok((record, bank.requests().since(&before), started.elapsed()))
}

/// Which store of the rig the far bank is in.
#[derive(Debug, Clone, Copy)]
enum Store {
    /// The Swift API (v1.0 auth).
    Swift,
    /// The s3api of the same proxy.
    S3,
}

/// A bank in the rig's `store` behind a [`LatencyProxy`] of [`DELAY`] and a local bank
/// beside it, both with packs of [`PACK_BYTES`].
struct Banks {
    /// The far bank's location and settings (through the proxy).
    location: String,
    settings: BackendSettings,
    local_dir: PathBuf,
    proxy: LatencyProxy,
    dir: tempfile::TempDir,
}

impl Banks {
    async fn new(rig: &SwiftRig, store: Store) -> anyhow::Result<Self> {
        let proxy = LatencyProxy::start(&LatencyProxy::host_port(&rig.proxy), DELAY).await?;
        let far = SwiftRig {
            proxy: proxy.url.clone(),
        };
        let (location, settings) = match store {
            Store::Swift => (
                format!("swift://{}/bank", SwiftRig::unique_name("latency")),
                far.swift_settings(USER, KEY),
            ),
            // A fresh bucket, made with the Swift API (the backend does not create buckets).
            Store::S3 => (
                format!("s3://{}/bank", rig.create_container("latency-s3").await),
                far.s3_settings(USER, KEY),
            ),
        };
        let dir = tempfile::tempdir()?;
        Ok(Self {
            location,
            settings,
            local_dir: dir.path().join("bank"),
            proxy,
            dir,
        })
    }

    fn options() -> OpenOptions {
        OpenOptions {
            create: true,
            pack_target_bytes: Some(PACK_BYTES),
            ..Default::default()
        }
    }

    /// The far bank's own backend (no bank around it).
    fn far_backend(&self) -> anyhow::Result<Arc<dyn backend::Backend>> {
        Ok(backend::open_with(&self.location, &self.settings)?)
    }

    /// The local bank's own backend.
    fn local_backend(&self) -> anyhow::Result<Arc<dyn backend::Backend>> {
        Ok(Arc::new(backend::LocalBackend::new(&self.local_dir)?))
    }

    /// The far bank, freshly opened as a command would.
    async fn far(&self) -> anyhow::Result<Arc<Bank>> {
        Ok(Bank::open(self.far_backend()?, Self::options()).await?)
    }

    /// The local bank, freshly opened.
    async fn local(&self) -> anyhow::Result<Arc<Bank>> {
        Ok(Bank::open(self.local_backend()?, Self::options()).await?)
    }

    /// Seeds `pods` pods into a new etcd and protects them into both banks as the same
    /// checkpoint; returns its id, and the time of the protect into the far bank.
    async fn protect(&self, pods: usize, seed: u64) -> anyhow::Result<(CheckpointId, Duration)> {
        let etcd = TestEtcd::start();
        let plan = SeedPlan {
            pods,
            namespaces: 3,
            seed,
            ..SeedPlan::default()
        };
        seed::write(&etcd.connect().await, seed::generate(&plan)).await?;
        let id = CheckpointId::generate();
        let started = Instant::now();
        protect_from_etcd_as(&self.far().await?, &etcd.url, "", Some(id.clone())).await?;
        let far_time = started.elapsed();
        protect_from_etcd_as(&self.local().await?, &etcd.url, "", Some(id.clone())).await?;
        Ok((id, far_time))
    }
}

/// The shared body of the tests of a far bank in `store` against a local one: the same
/// dry-run export and restore record, the same verify report, GETs bounded by the packs.
async fn restores_and_verifies_as_a_local_one_by_pack(store: Store) -> anyhow::Result<()> {
    let rig = SwiftRig::require();
    let banks = Banks::new(&rig, store).await?;
    let (id, protect_far) = banks.protect(PODS, 33).await?;

    // Freshly opened, as a command would.
    let far = banks.far().await?;
    let local = banks.local().await?;
    let dir = banks.dir.path();
    let restore_id = RestoreId::generate();
    let (local_record, local_reads, local_time) =
        dry_run(&local, &id, &restore_id, &dir.join("local")).await?;
    let proxied = banks.proxy.requests();
    let (far_record, far_reads, far_time) =
        dry_run(&far, &id, &restore_id, &dir.join("far")).await?;
    let proxied = banks.proxy.requests() - proxied;

    // What it needed, and from how many packs.
    let checkpoint = far.checkpoint(&id).await?;
    let resources = far.resources(&checkpoint).await?;
    let index = far.index().await;
    let touched: HashSet<_> = resources
        .iter()
        .filter_map(|r| r.object_id)
        .chain(checkpoint.tables.resources.iter().copied())
        .chain(checkpoint.tables.volumes.iter().copied())
        .filter_map(|o| index.get(&o).map(|l| l.pack))
        .collect();
    let packs = touched.len() as u64;
    println!(
        "restore --dry-run of {} resources in {packs} packs: local {local_time:.2?} ({local_reads}); \
         {store:?} through {DELAY:?} {far_time:.2?} ({far_reads}; {proxied} requests at the proxy); \
         protect into {store:?} {protect_far:.2?}",
        resources.len()
    );
    assert_eq!(
        local_record.resources, far_record.resources,
        "the same outcomes"
    );
    assert_eq!(local_record.status, far_record.status);
    let (local_files, far_files) = (files(&dir.join("local"))?, files(&dir.join("far"))?);
    assert!(local_files.len() > PODS, "{} files", local_files.len());
    assert!(local_files == far_files, "the exports differ");
    // The record keeps what the run read.
    assert_eq!(far_record.stats.bank_pack_gets, far_reads.pack_gets);
    assert!(far_record.stats.bank_bytes_read > 0);
    assert!(
        far_reads.pack_gets <= 3 * packs,
        "{far_reads}: {packs} packs touched"
    );
    assert!(
        far_reads.reads() <= 3 * packs + 5,
        "{far_reads}: {packs} packs touched"
    );

    // verify --all: the same report, each pack read once, the tables by pack.
    let started = Instant::now();
    let mut local_report = local.verify(None).await?;
    let local_time = started.elapsed();
    let started = Instant::now();
    let mut far_report = far.verify(None).await?;
    let far_time = started.elapsed();
    let all_packs = far.index().await.packs().len() as u64;
    println!(
        "verify --all ({all_packs} packs): local {local_time:.2?} ({}); {store:?} {far_time:.2?} ({})",
        local_report.requests, far_report.requests
    );
    let r = far_report.requests;
    assert!(r.pack_gets <= 3 * all_packs, "{r}: {all_packs} packs");
    local_report.requests = RequestCounts::default();
    far_report.requests = RequestCounts::default();
    assert!(far_report.is_clean(), "{:?}", far_report.problems);
    assert_eq!(local_report, far_report);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_swift_bank_far_away_restores_and_verifies_as_a_local_one_by_pack() -> anyhow::Result<()>
{
    restores_and_verifies_as_a_local_one_by_pack(Store::Swift).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn an_s3_bank_far_away_restores_and_verifies_as_a_local_one_by_pack() -> anyhow::Result<()> {
    restores_and_verifies_as_a_local_one_by_pack(Store::S3).await
}

/// Flips a byte in the middle of the frame of `object` in its pack, through `backend` (a
/// GET of the pack, a PUT of it back); returns the pack's name.
async fn damage_frame(
    bank: &Bank,
    backend: &dyn Backend,
    object: &ObjectId,
) -> anyhow::Result<String> {
    let loc = bank
        .index()
        .await
        .get(object)
        .ok_or_else(|| anyhow::anyhow!("object {object} is not indexed"))?;
    let mut data = backend.get(Kind::Pack, &loc.pack).await?.to_vec();
    let at = usize::try_from(loc.offset + u64::from(loc.length) / 2)?;
    data[at] ^= 0x10;
    backend
        .put(Kind::Pack, &loc.pack, bytes::Bytes::from(data))
        .await?;
    Ok(loc.pack.to_string())
}

/// `problems` sorted, for comparing reports whose packs were read in another order.
fn sorted(mut problems: Vec<podbank::bank::Problem>) -> Vec<podbank::bank::Problem> {
    problems.sort_by(|a, b| (&a.subject, &a.reason).cmp(&(&b.subject, &b.reason)));
    problems
}

/// The outcomes of `record` with `bank`'s location (named in error reasons) blanked.
fn outcomes(record: &RestoreRecord, bank: &Bank) -> Vec<RestoredResource> {
    let location = bank.location();
    record
        .resources
        .iter()
        .cloned()
        .map(|mut r| {
            r.reason = r.reason.replace(&location, "<bank>");
            r
        })
        .collect()
}

/// The shared body of the damage tests: the same pods in a far bank in `store` and in a
/// local bank, the same frame damaged in both; verify (of the bank and of the checkpoint)
/// and a restore dry run name the same objects, the same pack and the same problems in both.
async fn a_damaged_frame_is_named_as_in_a_local_bank(store: Store) -> anyhow::Result<()> {
    let rig = SwiftRig::require();
    let banks = Banks::new(&rig, store).await?;
    let (id, _) = banks.protect(300, 34).await?;
    let (far, local) = (banks.far().await?, banks.local().await?);

    // A pod's object, in both banks in the same pack at the same place.
    let checkpoint = local.checkpoint(&id).await?;
    let resources = local.resources(&checkpoint).await?;
    let pods: Vec<_> = resources
        .iter()
        .filter(|r| r.kind == podbank::model::ResourceType::Kube(podbank::model::ResourceKind::Pod))
        .filter_map(|r| r.object_id)
        .collect();
    let victim = pods[pods.len() / 2];
    let (far_loc, local_loc) = (
        far.index().await.get(&victim),
        local.index().await.get(&victim),
    );
    assert_eq!(far_loc, local_loc, "the same layout in both banks");
    let far_pack = damage_frame(&far, banks.far_backend()?.as_ref(), &victim).await?;
    let local_pack = damage_frame(&local, banks.local_backend()?.as_ref(), &victim).await?;
    assert_eq!(far_pack, local_pack);
    let pack = local_pack;
    // The objects of the checkpoint that share the damaged frame: the flipped byte damages
    // one or more of them (which depends on where the compressed byte lands).
    let frame = local_loc.map(|l| l.offset);
    let index = local.index().await;
    let in_frame: HashSet<ObjectId> = resources
        .iter()
        .filter_map(|r| r.object_id)
        .filter(|o| {
            index
                .get(o)
                .is_some_and(|l| *l.pack == *pack && Some(l.offset) == frame)
        })
        .collect();

    // verify --all and verify of the checkpoint: the same problems in both banks, naming
    // the pack (its file) and each damaged object in it, with the checkpoint.
    let (far, local) = (banks.far().await?, banks.local().await?);
    let mut damaged = HashSet::new();
    for only in [None, Some(&id)] {
        let far_report = far.verify(only).await?;
        let local_report = local.verify(only).await?;
        println!(
            "{store:?}: verify {only:?}: {} problems ({} objects share the frame); {}",
            far_report.problems.len(),
            in_frame.len(),
            far_report.requests
        );
        let file = Some(BankFile::new(Kind::Pack, pack.clone()));
        let objects: HashSet<ObjectId> = far_report
            .problems
            .iter()
            .filter_map(|p| {
                let named = p.subject.strip_prefix("object ")?;
                let (object, in_pack) = named.split_once(" in pack ")?;
                assert_eq!(in_pack, pack, "{p:?}");
                assert_eq!(p.file, file, "{p:?}");
                assert_eq!(p.checkpoints, vec![id.to_string()], "{p:?}");
                assert!(!p.reason.is_empty(), "{p:?}");
                object.parse().ok()
            })
            .collect();
        assert!(!objects.is_empty(), "{only:?}: {:#?}", far_report.problems);
        assert!(objects.is_subset(&in_frame), "{only:?}: {objects:?}");
        assert!(
            far_report
                .problems
                .iter()
                .any(|p| p.subject == format!("pack {pack}")
                    && p.file == file
                    && p.reason.contains("damaged")
                    && p.checkpoints == vec![id.to_string()]),
            "{only:?}: {:#?}",
            far_report.problems
        );
        assert_eq!(
            sorted(far_report.problems),
            sorted(local_report.problems),
            "{only:?}"
        );
        damaged = objects;
    }

    // A restore dry run: the same in both, the damaged objects named with their pack:
    // the restore fails (the planner reads the pods it plans), or the pods that cannot be
    // read fail.
    let dir = banks.dir.path();
    let restore_id = RestoreId::generate();
    let local_run = dry_run(&local, &id, &restore_id, &dir.join("local")).await;
    let before = far.requests();
    let far_run = dry_run(&far, &id, &restore_id, &dir.join("far")).await;
    println!(
        "{store:?}: restore --dry-run: {}",
        far.requests().since(&before)
    );
    let names_damage = |text: &str| {
        damaged
            .iter()
            .any(|o| text.contains(&format!("object {o} in pack data/{pack}")))
    };
    match (far_run, local_run) {
        (Err(far_err), Err(local_err)) => {
            let (far_err, local_err) = (
                far_err.to_string().replace(&far.location(), "<bank>"),
                local_err.to_string().replace(&local.location(), "<bank>"),
            );
            println!("{store:?}: restore --dry-run fails: {far_err}");
            assert!(
                names_damage(&far_err),
                "{far_err}: verify named {damaged:?}"
            );
            assert_eq!(far_err, local_err);
        }
        (Ok((far_record, _, _)), Ok((local_record, _, _))) => {
            let (far_outcomes, local_outcomes) =
                (outcomes(&far_record, &far), outcomes(&local_record, &local));
            let failed: Vec<_> = far_outcomes
                .iter()
                .filter(|r| r.outcome == Outcome::Error)
                .collect();
            assert!(!failed.is_empty(), "nothing failed");
            for r in &failed {
                assert!(names_damage(&r.reason), "{r:#?}: verify named {damaged:?}");
            }
            assert_eq!(far_outcomes, local_outcomes);
            assert_eq!(far_record.status, local_record.status);
            assert!(
                files(&dir.join("local"))? == files(&dir.join("far"))?,
                "the exports differ"
            );
        }
        (far_run, local_run) => panic!(
            "a restore from {store:?} gave {:?}, from a local bank {:?}",
            far_run.map(|r| r.0.status),
            local_run.map(|r| r.0.status)
        ),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_damaged_frame_in_a_swift_bank_is_named_as_in_a_local_one() -> anyhow::Result<()> {
    a_damaged_frame_is_named_as_in_a_local_bank(Store::Swift).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_damaged_frame_in_an_s3_bank_is_named_as_in_a_local_one() -> anyhow::Result<()> {
    a_damaged_frame_is_named_as_in_a_local_bank(Store::S3).await
}
