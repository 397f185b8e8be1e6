//! Issue 33: a Swift bank 20 ms a request away (the rig behind [`LatencyProxy`]) restores
//! and verifies exactly as a local bank does, reading by pack: the bank's own counters
//! bound its GETs by the packs it touches, not by the objects it reads.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use podbank::bank::{backend, Bank, OpenOptions, RequestCounts};
use podbank::model::{CheckpointId, RestoreId, RestoreRecord};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_swift_bank_far_away_restores_and_verifies_as_a_local_one_by_pack() -> anyhow::Result<()>
{
    let rig = SwiftRig::require();
    let etcd = TestEtcd::start();
    let plan = SeedPlan {
        pods: PODS,
        namespaces: 3,
        seed: 33,
        ..SeedPlan::default()
    };
    seed::write(&etcd.connect().await, seed::generate(&plan)).await?;
    let proxy = LatencyProxy::start(&LatencyProxy::host_port(&rig.proxy), DELAY).await?;
    let far = SwiftRig {
        proxy: proxy.url.clone(),
    }
    .swift_settings(USER, KEY);
    let location = format!("swift://{}/bank", SwiftRig::unique_name("latency"));
    let dir = tempfile::tempdir()?;
    let local_dir = dir.path().join("bank");
    let open_swift = || async {
        let backend = backend::open_with(&location, &far)?;
        Bank::open(
            backend,
            OpenOptions {
                create: true,
                pack_target_bytes: Some(PACK_BYTES),
                ..Default::default()
            },
        )
        .await
    };
    let open_local = || async {
        let backend: Arc<dyn backend::Backend> = Arc::new(backend::LocalBackend::new(&local_dir)?);
        Bank::open(
            backend,
            OpenOptions {
                create: true,
                pack_target_bytes: Some(PACK_BYTES),
                ..Default::default()
            },
        )
        .await
    };

    // The same etcd, the same checkpoint id, into both banks.
    let id = CheckpointId::generate();
    let swift = open_swift().await?;
    let local = open_local().await?;
    let started = Instant::now();
    protect_from_etcd_as(&swift, &etcd.url, "", Some(id.clone())).await?;
    let protect_swift = started.elapsed();
    protect_from_etcd_as(&local, &etcd.url, "", Some(id.clone())).await?;

    // Freshly opened, as a command would.
    let swift = open_swift().await?;
    let local = open_local().await?;
    let restore_id = RestoreId::generate();
    let (local_record, local_reads, local_time) =
        dry_run(&local, &id, &restore_id, &dir.path().join("local")).await?;
    let proxied = proxy.requests();
    let (swift_record, swift_reads, swift_time) =
        dry_run(&swift, &id, &restore_id, &dir.path().join("swift")).await?;
    let proxied = proxy.requests() - proxied;

    // What it needed, and from how many packs.
    let checkpoint = swift.checkpoint(&id).await?;
    let resources = swift.resources(&checkpoint).await?;
    let index = swift.index().await;
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
         swift through {DELAY:?} {swift_time:.2?} ({swift_reads}; {proxied} requests at the proxy); \
         protect into swift {protect_swift:.2?}",
        resources.len()
    );
    assert_eq!(
        local_record.resources, swift_record.resources,
        "the same outcomes"
    );
    assert_eq!(local_record.status, swift_record.status);
    let (local_files, swift_files) = (
        files(&dir.path().join("local"))?,
        files(&dir.path().join("swift"))?,
    );
    assert!(local_files.len() > PODS, "{} files", local_files.len());
    assert!(local_files == swift_files, "the exports differ");
    // The record keeps what the run read.
    assert_eq!(swift_record.stats.bank_pack_gets, swift_reads.pack_gets);
    assert!(swift_record.stats.bank_bytes_read > 0);
    assert!(
        swift_reads.pack_gets <= 3 * packs,
        "{swift_reads}: {packs} packs touched"
    );
    assert!(
        swift_reads.reads() <= 3 * packs + 5,
        "{swift_reads}: {packs} packs touched"
    );

    // verify --all: the same report, each pack read once, the tables by pack.
    let started = Instant::now();
    let mut local_report = local.verify(None).await?;
    let local_time = started.elapsed();
    let started = Instant::now();
    let mut swift_report = swift.verify(None).await?;
    let swift_time = started.elapsed();
    let all_packs = swift.index().await.packs().len() as u64;
    println!(
        "verify --all ({all_packs} packs): local {local_time:.2?} ({}); swift {swift_time:.2?} ({})",
        local_report.requests, swift_report.requests
    );
    let r = swift_report.requests;
    assert!(r.pack_gets <= 3 * all_packs, "{r}: {all_packs} packs");
    local_report.requests = RequestCounts::default();
    swift_report.requests = RequestCounts::default();
    assert!(swift_report.is_clean(), "{:?}", swift_report.problems);
    assert_eq!(local_report, swift_report);
    Ok(())
}
