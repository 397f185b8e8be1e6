//! Issue 33, item 3: a command reads each small record once. On a local bank behind a
//! backend that logs every read by path: a restore dry run (as the engine runs one: the
//! manifest looked up, then the restore) and `verify --all` (the bank opened, then
//! verified) read each manifest and each index file at most once; and the restore's pack
//! reads stay within three per pack touched.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use podbank::bank::backend::{self, Backend, BackendError, Kind, LocalBackend, ObjectInfo};
use podbank::bank::{Bank, OpenOptions};
use podbank::model::{CheckpointId, RestoreId};
use podbank::protection::restore::{ExportTarget, NoJournal};
use podbank::protection::{self, RestoreRequest};
use podbank_seed::{self as seed, SeedPlan};

use crate::support::bank::protect_from_etcd_as;
use crate::support::etcd::TestEtcd;

/// Small packs, so that the checkpoint spans many.
const PACK_BYTES: u32 = 32 << 10;

/// A backend that logs the reads reaching it: (kind, name) -> reads (whole or ranged).
#[derive(Debug)]
struct Logged {
    inner: Arc<dyn Backend>,
    reads: Mutex<BTreeMap<(Kind, String), u64>>,
}

impl Logged {
    fn take(&self) -> BTreeMap<(Kind, String), u64> {
        std::mem::take(&mut *self.reads.lock().unwrap())
    }
    fn log(&self, kind: Kind, name: &str) {
        *self
            .reads
            .lock()
            .unwrap()
            .entry((kind, name.to_string()))
            .or_default() += 1;
    }
}

#[async_trait::async_trait]
impl Backend for Logged {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError> {
        self.inner.put(kind, name, data).await
    }
    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        self.log(kind, name);
        self.inner.get(kind, name).await
    }
    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        self.log(kind, name);
        self.inner.get_range(kind, name, offset, length).await
    }
    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
        self.inner.list(kind).await
    }
    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        self.inner.delete(kind, name).await
    }
    async fn remove_leftovers(&self, older_than: Duration) -> Result<usize, BackendError> {
        self.inner.remove_leftovers(older_than).await
    }
}

/// The small records read more than once.
fn reread(reads: &BTreeMap<(Kind, String), u64>) -> Vec<String> {
    reads
        .iter()
        .filter(|((kind, _), n)| *kind != Kind::Pack && **n > 1)
        .map(|((kind, name), n)| format!("{kind} {name}: {n} reads"))
        .collect()
}

async fn open(logged: &Arc<Logged>) -> anyhow::Result<Arc<Bank>> {
    Ok(Bank::open(
        logged.clone(),
        OpenOptions {
            create: true,
            pack_target_bytes: Some(PACK_BYTES),
            ..Default::default()
        },
    )
    .await?)
}

fn request(id: &CheckpointId) -> anyhow::Result<RestoreRequest> {
    Ok(RestoreRequest {
        restore_id: Some(RestoreId::generate()),
        original_volumes: true,
        settle: Some(Duration::ZERO),
        ..RestoreRequest::of(id.clone())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_reads_each_manifest_and_index_file_once() -> anyhow::Result<()> {
    let etcd = TestEtcd::start();
    let plan = SeedPlan {
        pods: 1500,
        namespaces: 3,
        seed: 3301,
        ..SeedPlan::default()
    };
    seed::write(&etcd.connect().await, seed::generate(&plan)).await?;
    let dir = tempfile::tempdir()?;
    let local: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path().join("bank"))?);
    let logged = Arc::new(Logged {
        inner: local,
        reads: Mutex::default(),
    });
    // Two checkpoints, so that there are two manifests and several index files.
    let bank = open(&logged).await?;
    let id = CheckpointId::generate();
    protect_from_etcd_as(&bank, &etcd.url, "", None).await?;
    protect_from_etcd_as(&bank, &etcd.url, "", Some(id.clone())).await?;
    drop(bank);
    logged.take();

    // restore --dry-run, as the engine runs it: open, look the checkpoint up, restore.
    let export = dir.path().join("export");
    std::fs::create_dir_all(&export)?;
    let record = backend::scoped(async {
        let bank = open(&logged).await?;
        bank.checkpoint(&id).await?;
        let target = ExportTarget::new(&export);
        anyhow::Ok(
            protection::restore(
                &bank,
                &target,
                &NoJournal,
                &request(&id)?,
                &podbank::protection::progress::Silent,
            )
            .await?,
        )
    })
    .await?;
    let reads = logged.take();
    assert!(reread(&reads).is_empty(), "{:?}", reread(&reads));
    let packs: Vec<u64> = reads
        .iter()
        .filter(|((kind, _), _)| *kind == Kind::Pack)
        .map(|(_, n)| *n)
        .collect();
    let pack_reads: u64 = packs.iter().sum();
    println!("reads per pack: {packs:?}");
    println!(
        "restore --dry-run of {} resources: {} packs touched, {pack_reads} pack reads",
        record.resources.len(),
        packs.len(),
    );
    assert_eq!(record.stats.bank_pack_gets, pack_reads);
    // By pack, not by object: each pack at most once per prefetch window and once for the
    // tables and the first units. (Not yet once in all: units are in plan order, packs in
    // etcd order, so each window touches most packs; see execute.rs `windows`.)
    assert!(
        pack_reads <= 3 * packs.len() as u64,
        "{pack_reads} pack reads of {} packs",
        packs.len()
    );

    // verify --all: open, verify; and verify of one checkpoint.
    for only in [None, Some(&id)] {
        let report = backend::scoped(async {
            let bank = open(&logged).await?;
            anyhow::Ok(bank.verify(only).await?)
        })
        .await?;
        assert!(report.is_clean(), "{:?}", report.problems);
        let reads = logged.take();
        assert!(reread(&reads).is_empty(), "{only:?}: {:?}", reread(&reads));
        let indexes = reads.keys().filter(|(k, _)| *k == Kind::Index).count();
        assert!(indexes > 0);
    }

    // A new command reads again: nothing is kept from one to the next.
    let bank = open(&logged).await?;
    logged.take();
    for _ in 0..2 {
        backend::scoped(async { bank.checkpoint(&id).await }).await?;
    }
    let manifest = (Kind::Checkpoint, id.to_string());
    assert_eq!(logged.take().get(&manifest), Some(&2));

    // Written by the command itself: read again, as written.
    backend::scoped(async {
        let mut cp = bank.checkpoint(&id).await?;
        cp.description = "changed".into();
        bank.put_checkpoint(&cp).await?;
        assert_eq!(bank.checkpoint(&id).await?.description, "changed");
        anyhow::Ok(())
    })
    .await?;
    assert_eq!(logged.take().get(&manifest), Some(&2));
    Ok(())
}
