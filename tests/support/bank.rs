//! Banks for the bank scenarios: pod-like objects, a bank in a folder, checkpoints written
//! straight through the library.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use podbank::bank::backend::{Backend, BackendError, Kind, LocalBackend, ObjectInfo};
use podbank::bank::{
    Bank, BankError, BankKey, CheckpointDraft, CheckpointWriter, OpenOptions, WriterOptions,
};
use podbank::model::{
    Checkpoint, CheckpointStatus, EtcdKey, ObjectRef, ResourceKind, ResourceRecord, ResourceType,
};

/// A pod-like object of about 2 KiB: shared structure, per-object and per-version bytes.
pub fn object(i: usize, version: usize) -> Bytes {
    use sha2::Digest;
    let noise: String = (0..12)
        .map(|k| hex::encode(sha2::Sha256::digest(format!("{i}-{k}-{version}"))))
        .collect::<Vec<_>>()
        .join("\",\"");
    Bytes::from(format!(
        "{}\"env\":[\"{noise}\"]}}",
        base_object(i, version)
    ))
}

pub fn base_object(i: usize, version: usize) -> String {
    format!(
        "k8s\0{{\"kind\":\"Pod\",\"metadata\":{{\"name\":\"app-{i}\",\"namespace\":\"ns-{}\",\
         \"uid\":\"{:08x}-0000-4000-8000-{:012x}\",\"labels\":{{\"app\":\"web\"}}}},\
         \"spec\":{{\"containers\":[{{\"image\":\"registry.local/app:{version}\",\
         \"args\":[\"--port=8080\",\"--replica={i}\"]}}],\"nodeName\":\"node-{}\"}}}}",
        i % 7,
        i * 2654435761 % 0xffff_ffff,
        i,
        i % 13
    )
}

pub async fn open(dir: &Path, key: Option<BankKey>) -> Result<Arc<Bank>, BankError> {
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir)?);
    Bank::open(
        backend,
        OpenOptions {
            key,
            create: true,
            pack_target_bytes: Some(256 << 10),
        },
    )
    .await
}

/// Starts a checkpoint named `name`.
pub async fn begin(bank: &Arc<Bank>, name: &str) -> Result<CheckpointWriter, BankError> {
    bank.begin_checkpoint(
        CheckpointDraft {
            backup_name: name.to_string(),
            description: "test".into(),
            ..Default::default()
        },
        WriterOptions::default(),
    )
    .await
}

/// Stores `objects` as the pods `ns/pod-<i>`.
pub async fn add_pods(writer: &mut CheckpointWriter, objects: &[Bytes]) -> Result<(), BankError> {
    for (c, chunk) in objects.chunks(1000).enumerate() {
        let ids = writer.add_objects(chunk.to_vec()).await?;
        for (j, (id, data)) in ids.iter().zip(chunk).enumerate() {
            let i = c * 1000 + j;
            writer.add_resource(ResourceRecord {
                kind: ResourceType::Kube(ResourceKind::Pod),
                object: ObjectRef::new("ns", format!("pod-{i}")),
                key: EtcdKey::new(format!("/registry/pods/ns/pod-{i}")),
                object_id: Some(*id),
                size: data.len() as u64,
                ..Default::default()
            });
        }
    }
    Ok(())
}

pub async fn write_checkpoint(
    bank: &Arc<Bank>,
    name: &str,
    objects: Vec<Bytes>,
) -> Result<Checkpoint, BankError> {
    let mut writer = begin(bank, name).await?;
    add_pods(&mut writer, &objects).await?;
    writer
        .commit(CheckpointStatus::Available, String::new())
        .await
}

/// A local backend that kills its own process (SIGKILL) at the N-th write (a put or a
/// delete), before or after it: a crash at an exact point of the bank's protocol.
#[derive(Debug)]
pub struct KillAt {
    inner: LocalBackend,
    writes: std::sync::atomic::AtomicUsize,
    at: usize,
    after: bool,
}

impl KillAt {
    /// `spec` is `N` (kill before the N-th write) or `N+` (after it).
    pub fn parse(inner: LocalBackend, spec: &str) -> anyhow::Result<KillAt> {
        let (at, after) = match spec.strip_suffix('+') {
            Some(n) => (n.parse()?, true),
            None => (spec.parse()?, false),
        };
        Ok(KillAt {
            inner,
            writes: std::sync::atomic::AtomicUsize::new(0),
            at,
            after,
        })
    }
}

fn kill_self() {
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    // SIGKILL cannot be caught: nothing below runs.
    std::process::abort();
}

#[async_trait::async_trait]
impl Backend for KillAt {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError> {
        let n = self
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if n == self.at && !self.after {
            kill_self();
        }
        self.inner.put(kind, name, data).await?;
        if n == self.at && self.after {
            kill_self();
        }
        Ok(())
    }
    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        self.inner.get(kind, name).await
    }
    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        o: u64,
        l: u64,
    ) -> Result<Bytes, BackendError> {
        self.inner.get_range(kind, name, o, l).await
    }
    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
        self.inner.list(kind).await
    }
    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        let n = self
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if n == self.at && !self.after {
            kill_self();
        }
        self.inner.delete(kind, name).await?;
        if n == self.at && self.after {
            kill_self();
        }
        Ok(())
    }
    async fn remove_leftovers(&self, older_than: Duration) -> Result<usize, BackendError> {
        self.inner.remove_leftovers(older_than).await
    }
}

/// One protect (no volume backups) of the pods of `namespaces` (comma-separated; empty:
/// all) from the etcd at `etcd_url` into `bank`, through the library.
pub async fn protect_from_etcd(
    bank: &Arc<Bank>,
    etcd_url: &str,
    namespaces: &str,
) -> anyhow::Result<Checkpoint> {
    protect_from_etcd_as(bank, etcd_url, namespaces, None).await
}

/// [`protect_from_etcd`] into a checkpoint of the id given (`None`: a new one).
pub async fn protect_from_etcd_as(
    bank: &Arc<Bank>,
    etcd_url: &str,
    namespaces: &str,
    id: Option<podbank::model::CheckpointId>,
) -> anyhow::Result<Checkpoint> {
    use podbank::protection::{self, schema::ProtectParams, ProtectRequest, Selection, Services};
    let etcd = podbank::etcd::Etcd::connect(&podbank::etcd::EtcdConfig {
        servers: vec![etcd_url.to_string()],
        ..Default::default()
    })
    .await?;
    let params = serde_json::json!({"backup_name": "model", "description": "model"});
    let request = ProtectRequest {
        id,
        params: ProtectParams::from_json(&params)?,
        selection: Selection {
            namespaces: podbank::model::Namespace::parse_list(namespaces)?,
            ..Default::default()
        },
        plan: String::new(),
        project_id: String::new(),
        scan: Default::default(),
        writer: WriterOptions::default(),
        secrets: Default::default(),
        skip_hooks: false,
        plan_hooks: Default::default(),
    };
    let decoder = podbank::codec::Decoder::new(None);
    let services = Services {
        etcd: &etcd,
        decoder: &decoder,
        bank,
        progress: &podbank::protection::progress::Silent,
        exec: podbank::protection::hooks::HookExec::Unavailable("the model gives none"),
        hooks: None,
    };
    Ok(protection::protect(
        services,
        &request,
        &protection::VolumeBackups::Skip("model: no Cinder".into()),
    )
    .await?)
}

/// A backend that counts the reads of packs that reach it (`get` and `get_range`), and the
/// bytes they return: what a bank's read costs in requests on an object store.
#[derive(Debug)]
pub struct Counting {
    inner: Arc<dyn Backend>,
    gets: std::sync::atomic::AtomicUsize,
    bytes: std::sync::atomic::AtomicU64,
}

impl Counting {
    pub fn new(inner: Arc<dyn Backend>) -> Arc<Counting> {
        Arc::new(Counting {
            inner,
            gets: Default::default(),
            bytes: Default::default(),
        })
    }

    /// (pack reads, bytes read) since the last call; the counters start again at zero.
    pub fn take(&self) -> (usize, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.gets.swap(0, SeqCst), self.bytes.swap(0, SeqCst))
    }

    fn count(&self, kind: Kind, read: &Result<Bytes, BackendError>) {
        use std::sync::atomic::Ordering::SeqCst;
        if kind == Kind::Pack {
            self.gets.fetch_add(1, SeqCst);
            if let Ok(data) = read {
                self.bytes.fetch_add(data.len() as u64, SeqCst);
            }
        }
    }
}

#[async_trait::async_trait]
impl Backend for Counting {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError> {
        self.inner.put(kind, name, data).await
    }
    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        let read = self.inner.get(kind, name).await;
        self.count(kind, &read);
        read
    }
    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        o: u64,
        l: u64,
    ) -> Result<Bytes, BackendError> {
        let read = self.inner.get_range(kind, name, o, l).await;
        self.count(kind, &read);
        read
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
