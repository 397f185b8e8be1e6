//! One conformance suite for every bank backend ([`podbank::bank::Backend`]'s contract),
//! run against the local directory backend and the decorators around it (encryption,
//! retries, retries over a backend that fails every other call) always, and against S3
//! (the Swift rig's s3api, a fresh bucket per test) and Swift (v1.0 auth on the rig, a fresh
//! container per test), which `PODBANK_TEST_SWIFT` names (a missing rig fails the test; ignored
//! under PODBANK_TEST_WITHOUT_RIGS=swift). Plus: wrong credentials give
//! a clear error, a bank works end to end on each object store, and the retry decorator
//! retries transient failures only and gives up naming the operation and the object.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::swift::{SwiftRig, KEY, USER};
use bytes::Bytes;
use futures::StreamExt;
use podbank::bank::backend::{
    self, Backend, BackendError, BackendSettings, BankKey, CountedBackend, CryptBackend, GaveUp,
    Kind, LocalBackend, ObjectInfo, RetryBackend,
};
use podbank::bank::{Bank, CheckpointDraft, ObjectId, OpenOptions, WriterOptions};
use podbank::model::CheckpointStatus;
use podbank::openstack::RetryPolicy;

/// Objects in the paging case: more than one page of S3 (1000) and of the Swift backend.
const MANY: usize = 1100;

fn random_bytes(len: usize) -> Bytes {
    let mut data = vec![0u8; len];
    for chunk in data.chunks_mut(8) {
        let r = rand::random::<u64>().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    Bytes::from(data)
}

fn hex_name(seed: &str) -> String {
    ObjectId::of(seed.as_bytes()).to_hex()
}

async fn names(backend: &dyn Backend, kind: Kind) -> BTreeMap<String, u64> {
    backend
        .list(kind)
        .await
        .unwrap_or_else(|e| panic!("list {kind}: {e}"))
        .into_iter()
        .map(|info| (info.name, info.size))
        .collect()
}

fn assert_not_found(result: Result<Bytes, BackendError>, what: &str) {
    match result {
        Err(BackendError::NotFound { .. }) => {}
        Err(other) => panic!("{what}: expected NotFound, got {other}"),
        Ok(data) => panic!("{what}: expected NotFound, got {} bytes", data.len()),
    }
}

/// The contract of [`Backend`], point by point, on an empty bank.
async fn conformance(backend: Arc<dyn Backend>) {
    let b = backend.as_ref();
    let started = Instant::now();

    // An empty bank lists nothing, in every kind.
    for kind in Kind::ALL {
        assert!(names(b, kind).await.is_empty(), "fresh bank lists {kind}");
    }

    // get of a missing object is NotFound, never an empty body.
    assert_not_found(
        b.get(Kind::Pack, &hex_name("missing")).await,
        "missing pack",
    );
    assert_not_found(b.get(Kind::Config, "config").await, "missing config");
    assert_not_found(
        b.get_range(Kind::Pack, &hex_name("missing"), 0, 1).await,
        "range of a missing pack",
    );

    // Round trips: empty, one byte, 5 MiB.
    let empty = hex_name("empty");
    let one = hex_name("one");
    let big = hex_name("big");
    let big_data = random_bytes(5 << 20);
    for (name, data) in [
        (&empty, Bytes::new()),
        (&one, Bytes::from_static(b"x")),
        (&big, big_data.clone()),
    ] {
        b.put(Kind::Pack, name, data.clone())
            .await
            .unwrap_or_else(|e| panic!("put {} bytes: {e}", data.len()));
        let back = b.get(Kind::Pack, name).await.expect("get after put");
        assert_eq!(back.len(), data.len(), "length of {name}");
        assert!(back == data, "content of the {}-byte object", data.len());
    }

    // Ranged reads: start, middle, end, the whole object, an empty range.
    let len = big_data.len() as u64;
    for (offset, length) in [
        (0, 100),
        (1 << 20, 4096),
        (len - 7, 7),
        (0, len),
        (len / 2, 0),
    ] {
        let got = b
            .get_range(Kind::Pack, &big, offset, length)
            .await
            .unwrap_or_else(|e| panic!("range {offset}+{length}: {e}"));
        let (s, e) = (offset as usize, (offset + length) as usize);
        assert!(got == big_data.slice(s..e), "range {offset}+{length}");
    }
    assert_eq!(
        b.get_range(Kind::Pack, &one, 0, 1).await.ok(),
        Some(Bytes::from_static(b"x"))
    );
    // Past the end: an error, never a short answer.
    for (offset, length) in [(len - 5, 10), (len, 1), (len + 100, 1)] {
        let result = b.get_range(Kind::Pack, &big, offset, length).await;
        assert!(
            matches!(result, Err(BackendError::Io { .. })),
            "range {offset}+{length} past the end of {len} bytes: {:?}",
            result.map(|d| d.len())
        );
    }

    // Overwrite replaces the object.
    b.put(Kind::Pack, &one, Bytes::from_static(b"second"))
        .await
        .expect("overwrite");
    assert_eq!(
        b.get(Kind::Pack, &one).await.ok(),
        Some(Bytes::from_static(b"second"))
    );

    // list returns exactly the names put, without a prefix, with their sizes.
    let packs = names(b, Kind::Pack).await;
    let expected: BTreeMap<String, u64> =
        [(empty.clone(), 0), (one.clone(), 6), (big.clone(), len)]
            .into_iter()
            .collect();
    assert_eq!(packs, expected, "pack listing");

    // Kinds are isolated: one name in every kind, each with its own content.
    let shared = "20260101T000000Z-0123456789abcdef";
    b.put(Kind::Config, "config", Bytes::from_static(b"config body"))
        .await
        .expect("put config");
    for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Config) {
        b.put(kind, shared, Bytes::from(format!("{kind} body")))
            .await
            .unwrap_or_else(|e| panic!("put {kind}: {e}"));
    }
    for kind in Kind::ALL {
        let name = if kind == Kind::Config {
            "config"
        } else {
            shared
        };
        assert_eq!(
            b.get(kind, name).await.ok(),
            Some(Bytes::from(format!("{kind} body"))),
            "{kind} keeps its own content"
        );
        let listed = names(b, kind).await;
        let mut want: BTreeMap<String, u64> =
            [(name.to_string(), format!("{kind} body").len() as u64)]
                .into_iter()
                .collect();
        if kind == Kind::Pack {
            want.extend(expected.clone());
        }
        assert_eq!(listed, want, "{kind} lists only its own objects");
    }

    // delete is idempotent; what is deleted is gone from get and list.
    for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Config) {
        b.delete(kind, shared).await.expect("delete");
        assert_not_found(b.get(kind, shared).await, "deleted object");
        b.delete(kind, shared).await.expect("delete again");
    }
    b.delete(Kind::Lock, &hex_name("never-was"))
        .await
        .expect("delete of a never-written object");
    b.delete(Kind::Config, "config")
        .await
        .expect("delete config");
    assert!(names(b, Kind::Config).await.is_empty(), "config deleted");
    for name in [&empty, &one, &big] {
        b.delete(Kind::Pack, name).await.expect("delete pack");
    }
    for kind in Kind::ALL {
        assert!(names(b, kind).await.is_empty(), "{kind} empty at the end");
    }
    println!(
        "conformance on {} in {:.2} s",
        b.location(),
        started.elapsed().as_secs_f64()
    );
}

/// `list` returns every object however many pages the store answers in.
async fn paging(backend: Arc<dyn Backend>) {
    let started = Instant::now();
    let names_put: Vec<String> = (0..MANY).map(|i| hex_name(&format!("page-{i}"))).collect();
    let results: Vec<Result<(), BackendError>> = futures::stream::iter(names_put.iter())
        .map(|name| {
            let backend = backend.clone();
            async move {
                backend
                    .put(Kind::Index, name, Bytes::from(name[..4].to_string()))
                    .await
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for result in results {
        result.expect("put of a small index");
    }
    let put_secs = started.elapsed().as_secs_f64();
    let listed = names(backend.as_ref(), Kind::Index).await;
    let want: BTreeMap<String, u64> = names_put.into_iter().map(|n| (n, 4)).collect();
    assert_eq!(listed.len(), MANY, "every object listed once");
    assert_eq!(listed, want, "listing across pages");
    assert!(
        names(backend.as_ref(), Kind::Pack).await.is_empty(),
        "other kinds unaffected"
    );
    println!(
        "paging on {}: {MANY} puts in {put_secs:.2} s, listed in {:.2} s",
        backend.location(),
        started.elapsed().as_secs_f64() - put_secs
    );
}

/// One small checkpoint written, read back, verified and found again after a reopen.
async fn bank_end_to_end(backend: Arc<dyn Backend>, reopen: Arc<dyn Backend>) {
    let started = Instant::now();
    let bank = Bank::open(
        backend,
        OpenOptions {
            create: true,
            pack_target_bytes: Some(64 << 10),
            ..OpenOptions::default()
        },
    )
    .await
    .expect("create bank");
    let mut writer = bank
        .begin_checkpoint(
            CheckpointDraft {
                backup_name: "e2e".into(),
                ..CheckpointDraft::default()
            },
            WriterOptions::default(),
        )
        .await
        .expect("begin checkpoint");
    // Enough data for more than one pack: compressible values and random ones.
    let mut objects: Vec<Bytes> = (0..50)
        .map(|i| {
            Bytes::from(format!(
                "{{\"pod\":{i},\"pad\":\"{}\"}}",
                "a".repeat(i * 10)
            ))
        })
        .collect();
    objects.extend((0..3).map(|_| random_bytes(40 << 10)));
    let ids = writer
        .add_objects(objects.clone())
        .await
        .expect("add objects");
    assert_eq!(ids.len(), objects.len());
    for (i, (id, data)) in ids.iter().zip(&objects).enumerate() {
        writer.add_resource(podbank::model::ResourceRecord {
            kind: podbank::model::ResourceType::Kube(podbank::model::ResourceKind::Pod),
            key: podbank::model::EtcdKey::new(format!("/registry/pods/default/p{i}")),
            object: podbank::model::ObjectRef::new("default", format!("p{i}")),
            object_id: Some(*id),
            size: data.len() as u64,
            ..Default::default()
        });
    }
    let manifest = writer
        .commit(CheckpointStatus::Available, String::new())
        .await
        .expect("commit");
    let checkpoint_id = manifest.id.clone();
    for (id, data) in ids.iter().zip(&objects) {
        let back = bank
            .read_object(id, &checkpoint_id)
            .await
            .expect("read object");
        assert!(back == *data, "object {id} reads back");
    }
    let report = bank.verify(None).await.expect("verify");
    assert!(report.is_clean(), "verify: {:?}", report.problems);
    assert_eq!(report.checkpoints, 1);
    assert!(report.packs >= 2, "packs written: {}", report.packs);

    // A second client on the same location sees the checkpoint and its resources.
    let again = Bank::open(reopen, OpenOptions::default())
        .await
        .expect("reopen bank");
    let (checkpoints, problems) = again.checkpoints().await.expect("list checkpoints");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(checkpoints[0].id, checkpoint_id);
    assert_eq!(checkpoints[0].status, CheckpointStatus::Available);
    let resources = again.resources(&checkpoints[0]).await.expect("resources");
    assert_eq!(resources.len(), objects.len());
    assert_eq!(resources[3].object.name(), "p3");
    println!(
        "bank end to end on {} in {:.2} s",
        again.location(),
        started.elapsed().as_secs_f64()
    );
}

fn open(location: &str, settings: &BackendSettings) -> Arc<dyn Backend> {
    backend::open_with(location, settings).unwrap_or_else(|e| panic!("open {location}: {e}"))
}

// --- local -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().join("bank").display().to_string();
    conformance(open(&location, &BackendSettings::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_paging() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = format!("file://{}", dir.path().display());
    paging(open(&location, &BackendSettings::default())).await;
}

#[test]
fn bad_locations_are_named() {
    let settings = BackendSettings::default();
    for location in [
        "gs://bucket/x",
        "s3://",
        "swift:///prefix",
        "s3://user@bucket/p",
    ] {
        let err = backend::open_with(location, &settings)
            .expect_err(location)
            .to_string();
        assert!(err.contains(location), "{location}: {err}");
    }
}

// --- decorators around a local backend --------------------------------------------------

fn local_in(dir: &tempfile::TempDir) -> LocalBackend {
    LocalBackend::new(dir.path().join("bank")).expect("local backend")
}

/// Retries without the object stores' patience: tests wait milliseconds.
fn quick(retries: u32) -> RetryPolicy {
    RetryPolicy {
        retries,
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crypt_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = Arc::new(local_in(&dir));
    conformance(Arc::new(CryptBackend::new(inner, BankKey::generate()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crypt_paging() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = Arc::new(local_in(&dir));
    paging(Arc::new(CryptBackend::new(inner, BankKey::generate()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    conformance(Arc::new(RetryBackend::new(Arc::new(local_in(&dir))))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counted_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counted = CountedBackend::new(Arc::new(local_in(&dir)));
    let counter = counted.counter();
    conformance(Arc::new(counted)).await;
    let counts = counter.counts();
    assert!(
        counts.reads() > 0 && counts.puts > 0 && counts.lists > 0,
        "{counts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_paging() {
    let dir = tempfile::tempdir().expect("tempdir");
    paging(Arc::new(RetryBackend::new(Arc::new(local_in(&dir))))).await;
}

/// A test double: a local backend whose calls fail with a transient I/O error, the next
/// `fail_next` ones or every other one, counting every call.
#[derive(Debug)]
struct Flaky {
    inner: LocalBackend,
    every_other: bool,
    failures: AtomicUsize,
    calls: AtomicUsize,
}

impl Flaky {
    fn new(inner: LocalBackend, every_other: bool) -> Self {
        Self {
            inner,
            every_other,
            failures: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
        }
    }

    /// The next `n` calls fail.
    fn fail_next(&self, n: usize) {
        self.failures.store(n, Ordering::SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Counts the call, and fails it if its turn has come.
    fn call(&self, op: &'static str, kind: Kind, name: &str) -> Result<(), BackendError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let fail = if self.every_other {
            call.is_multiple_of(2)
        } else {
            self.failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        if !fail {
            return Ok(());
        }
        Err(BackendError::Io {
            location: self.inner.location(),
            op,
            kind,
            name: name.to_string(),
            source: format!("injected failure of call {call}").into(),
            transient: true,
        })
    }
}

#[async_trait::async_trait]
impl Backend for Flaky {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError> {
        self.call("put", kind, name)?;
        self.inner.put(kind, name, data).await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        self.call("get", kind, name)?;
        self.inner.get(kind, name).await
    }

    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        self.call("get_range", kind, name)?;
        self.inner.get_range(kind, name, offset, length).await
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
        self.call("list", kind, "")?;
        self.inner.list(kind).await
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        self.call("delete", kind, name)?;
        self.inner.delete(kind, name).await
    }
}

/// A [`Flaky`] local backend failing on demand, inside a [`RetryBackend`] that makes
/// `retries` retries; the directory lives as long as the first value.
fn flaky_behind_retries(retries: u32) -> (tempfile::TempDir, Arc<Flaky>, RetryBackend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let flaky = Arc::new(Flaky::new(local_in(&dir), false));
    let backend = RetryBackend::with_policy(flaky.clone(), quick(retries));
    (dir, flaky, backend)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_conformance_over_a_backend_that_fails_every_other_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flaky = Arc::new(Flaky::new(local_in(&dir), true));
    conformance(Arc::new(RetryBackend::with_policy(flaky.clone(), quick(2)))).await;
    assert!(flaky.calls() > 100, "{} calls", flaky.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_survives_transient_failures() {
    let (_dir, flaky, backend) = flaky_behind_retries(3);
    let name = hex_name("flaky");
    let data = Bytes::from_static(b"retried");
    let mut calls = 0;
    let mut three_failures_then = |what: &str| {
        assert_eq!(flaky.calls(), calls, "{what}: one call per try");
        flaky.fail_next(3);
        calls += 4;
    };

    three_failures_then("put");
    backend
        .put(Kind::Pack, &name, data.clone())
        .await
        .expect("put after 3 failures");
    three_failures_then("get");
    assert_eq!(backend.get(Kind::Pack, &name).await.ok(), Some(data));
    three_failures_then("get_range");
    assert_eq!(
        backend.get_range(Kind::Pack, &name, 2, 3).await.ok(),
        Some(Bytes::from_static(b"tri"))
    );
    three_failures_then("list");
    assert_eq!(names(&backend, Kind::Pack).await.len(), 1);
    three_failures_then("delete");
    backend
        .delete(Kind::Pack, &name)
        .await
        .expect("delete after 3 failures");
    assert_eq!(flaky.calls(), calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_gives_up_naming_the_operation_and_the_object() {
    let (_dir, flaky, backend) = flaky_behind_retries(2);
    let name = hex_name("never");
    flaky.fail_next(usize::MAX);
    let started = Instant::now();
    match backend.get(Kind::Pack, &name).await {
        Err(e @ BackendError::Io { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&backend.location()), "{text}");
            assert!(text.contains(&format!("get pack {name}")), "{text}");
            assert!(text.contains("injected failure of call 2"), "{text}");
            assert!(text.contains("gave up after 3 tries"), "{text}");
            assert!(!e.is_transient(), "spent retries are final: {text}");
            let gave_up = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<GaveUp>());
            assert_eq!(gave_up.map(|g| g.tries), Some(3), "{text}");
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
    assert_eq!(flaky.calls(), 3, "1 try + 2 retries");
    assert!(started.elapsed() < Duration::from_secs(5));

    let err = backend.list(Kind::Index).await.expect_err("list fails too");
    assert!(err.to_string().contains("list index"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_leaves_final_failures_alone() {
    let (_dir, flaky, backend) = flaky_behind_retries(5);
    assert_not_found(
        backend.get(Kind::Pack, &hex_name("missing")).await,
        "missing pack",
    );
    assert_eq!(flaky.calls(), 1, "NotFound is not retried");
    let invalid = backend
        .put(Kind::Lock, "../escape", Bytes::from_static(b"x"))
        .await;
    assert!(
        matches!(invalid, Err(BackendError::Config { .. })),
        "{invalid:?}"
    );
    assert_eq!(flaky.calls(), 2, "Config is not retried");
    let one = hex_name("one");
    backend
        .put(Kind::Pack, &one, Bytes::from_static(b"x"))
        .await
        .expect("put");
    let past_end = backend.get_range(Kind::Pack, &one, 5, 1).await;
    assert!(
        matches!(&past_end, Err(e @ BackendError::Io { .. }) if !e.is_transient()),
        "{past_end:?}"
    );
    assert_eq!(
        flaky.calls(),
        4,
        "an I/O error a retry would repeat is not retried"
    );
}

// --- S3 on the Swift rig's s3api ---------------------------------------------------------

async fn s3_bank(rig: &SwiftRig, tag: &str, prefix: &str) -> (String, BackendSettings) {
    let bucket = rig.create_container(tag).await;
    (
        format!("s3://{bucket}/{prefix}"),
        rig.s3_settings(USER, KEY),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn s3_conformance() {
    let rig = SwiftRig::require();
    let (location, settings) = s3_bank(&rig, "s3conf", "banks/one").await;
    conformance(open(&location, &settings)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn s3_conformance_without_prefix() {
    let rig = SwiftRig::require();
    let (location, settings) = s3_bank(&rig, "s3root", "").await;
    conformance(open(&location, &settings)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn s3_paging() {
    let rig = SwiftRig::require();
    let (location, settings) = s3_bank(&rig, "s3page", "p").await;
    paging(open(&location, &settings)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn s3_wrong_credentials_are_a_clear_error() {
    let rig = SwiftRig::require();
    let bucket = rig.create_container("s3cred").await;
    let location = format!("s3://{bucket}/p");
    let backend = open(&location, &rig.s3_settings(USER, "not-the-secret"));
    for result in [
        backend.get(Kind::Config, "config").await.map(|_| ()),
        backend
            .put(Kind::Lock, "l1", Bytes::from_static(b"x"))
            .await,
        backend.list(Kind::Pack).await.map(|_| ()),
    ] {
        match result {
            Err(e @ BackendError::Config { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&location), "{text}");
                assert!(text.contains("credentials"), "{text}");
            }
            other => panic!("wrong S3 secret: expected a Config error, got {other:?}"),
        }
    }
    let missing = open(
        &format!("s3://{}/p", SwiftRig::unique_name("nobucket")),
        &rig.s3_settings(USER, KEY),
    );
    let err = missing
        .put(Kind::Lock, "l1", Bytes::from_static(b"x"))
        .await
        .expect_err("put into a missing bucket");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn s3_bank_end_to_end() {
    let rig = SwiftRig::require();
    let (location, settings) = s3_bank(&rig, "s3bank", "bank").await;
    bank_end_to_end(open(&location, &settings), open(&location, &settings)).await;
}

// --- Swift (v1.0 auth) on the rig --------------------------------------------------------

fn swift_location(tag: &str, prefix: &str) -> String {
    // The container does not exist yet: the backend creates it on the first put.
    format!("swift://{}/{prefix}", SwiftRig::unique_name(tag))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn swift_conformance() {
    let rig = SwiftRig::require();
    let location = swift_location("swconf", "banks/one");
    conformance(open(&location, &rig.swift_settings(USER, KEY))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn swift_conformance_without_prefix() {
    let rig = SwiftRig::require();
    let location = swift_location("swroot", "");
    conformance(open(&location, &rig.swift_settings(USER, KEY))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn swift_paging() {
    let rig = SwiftRig::require();
    let location = swift_location("swpage", "p");
    paging(open(&location, &rig.swift_settings(USER, KEY))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn swift_wrong_credentials_are_a_clear_error() {
    let rig = SwiftRig::require();
    let location = swift_location("swcred", "p");
    let backend = open(&location, &rig.swift_settings(USER, "not-the-key"));
    for result in [
        backend.get(Kind::Config, "config").await.map(|_| ()),
        backend
            .put(Kind::Lock, "l1", Bytes::from_static(b"x"))
            .await,
        backend.list(Kind::Pack).await.map(|_| ()),
    ] {
        match result {
            Err(e @ BackendError::Config { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&location), "{text}");
                assert!(text.contains("refused the credentials"), "{text}");
                assert!(text.contains(USER), "{text}");
            }
            other => panic!("wrong Swift key: expected a Config error, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn swift_bank_end_to_end() {
    let rig = SwiftRig::require();
    let location = swift_location("swbank", "bank");
    let settings = rig.swift_settings(USER, KEY);
    bank_end_to_end(open(&location, &settings), open(&location, &settings)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn swift_reauthenticates_when_its_token_is_gone() {
    let rig = SwiftRig::require();
    let location = swift_location("swauth", "p");
    let backend = open(&location, &rig.swift_settings(USER, KEY));
    backend
        .put(Kind::Lock, "before", Bytes::from_static(b"one"))
        .await
        .expect("put with a fresh token");
    // tempauth keeps its tokens in memcached: emptying it invalidates every token, as a
    // memcached restart or an expired token would. The next request gets a 401.
    rig.forget_tokens().await;
    backend
        .put(Kind::Lock, "after", Bytes::from_static(b"two"))
        .await
        .expect("put after the token was lost");
    assert_eq!(
        backend.get(Kind::Lock, "before").await.ok(),
        Some(Bytes::from_static(b"one"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_unreachable_is_retried_then_an_io_error() {
    // A port nothing listens on: connection refused at every try.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let settings = BackendSettings {
        swift: podbank::bank::backend::SwiftSettings {
            auth_url: Some(format!("http://127.0.0.1:{port}/auth/v1.0")),
            user: Some(USER.into()),
            key: Some(KEY.into()),
            ..Default::default()
        },
        ..BackendSettings::default()
    };
    let backend = open("swift://nowhere/p", &settings);
    let started = Instant::now();
    match backend.get(Kind::Config, "config").await {
        Err(e @ BackendError::Io { .. }) => {
            let text = e.to_string();
            assert!(text.contains("gave up after 6 tries"), "{text}");
            assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        }
        other => panic!("unreachable Swift: expected an Io error, got {other:?}"),
    }
    // Five backoffs of 0.2, 0.4, 0.8, 1.6 and 3.2 s (plus jitter) were waited.
    assert!(
        started.elapsed().as_secs_f64() >= 6.0,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_without_credentials_says_what_to_set() {
    let settings = BackendSettings {
        swift: podbank::bank::backend::SwiftSettings {
            cloud: Some("no-such-cloud-in-clouds-yaml".into()),
            ..Default::default()
        },
        ..BackendSettings::default()
    };
    let backend = open("swift://c/p", &settings);
    match backend.list(Kind::Checkpoint).await {
        Err(e @ BackendError::Config { .. }) => {
            let text = e.to_string();
            assert!(text.contains("swift://c/p"), "{text}");
            assert!(
                text.contains("ST_AUTH") && text.contains("OS_CLOUD"),
                "{text}"
            );
        }
        other => panic!("no credentials: expected a Config error, got {other:?}"),
    }
}

/// Keystone v3 against the real Keystone of the Cinder rig (no Swift is registered in its
/// catalog): a token is obtained and the catalog read; a wrong password is refused clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn swift_keystone_authenticates_against_a_real_keystone() {
    let clouds = crate::support::cinder::CinderRig::require().clouds_yaml();
    let settings_for = |file: &std::path::Path| BackendSettings {
        swift: podbank::bank::backend::SwiftSettings {
            cloud: Some("rig".into()),
            clouds_file: Some(file.to_path_buf()),
            ..Default::default()
        },
        ..BackendSettings::default()
    };
    let backend = open("swift://pb-keystone/p", &settings_for(&clouds));
    match backend.list(Kind::Checkpoint).await {
        // The token was issued; the catalog has no object store.
        Err(e @ BackendError::Config { .. }) => {
            let text = e.to_string();
            assert!(text.contains("no object-store endpoint"), "{text}");
            println!("Keystone token issued; {text}");
        }
        // A Swift registered in that Keystone answered.
        Ok(list) => assert!(list.is_empty()),
        Err(other) => panic!("Keystone: unexpected {other}"),
    }

    let tmp = tempfile::tempdir().expect("tempdir");
    let wrong = tmp.path().join("clouds.yaml");
    let text = std::fs::read_to_string(&clouds).expect("rig clouds.yaml");
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("clouds.yaml is YAML");
    yaml["clouds"]["rig"]["auth"]["password"] = "not-the-password".into();
    std::fs::write(&wrong, serde_yaml::to_string(&yaml).expect("YAML")).expect("write");
    let backend = open("swift://pb-keystone/p", &settings_for(&wrong));
    match backend.list(Kind::Checkpoint).await {
        Err(e @ BackendError::Config { .. }) => {
            let text = e.to_string();
            assert!(text.contains("Keystone authentication failed"), "{text}");
            assert!(
                !text.contains("not-the-password"),
                "the password leaked: {text}"
            );
        }
        other => panic!("wrong Keystone password: expected a Config error, got {other:?}"),
    }
}

// --- Swift with Keystone tokens (the rig's second proxy, the Cinder rig's Keystone) ---------

async fn keystone_backend(tag: &str, dir: &std::path::Path) -> Arc<dyn Backend> {
    let (proxy, clouds) = SwiftRig::keystone_require();
    let file = SwiftRig::keystone_clouds_file(&proxy, &clouds, dir).await;
    let settings = BackendSettings {
        swift: podbank::bank::backend::SwiftSettings {
            cloud: Some("rig".into()),
            clouds_file: Some(file),
            ..Default::default()
        },
        ..BackendSettings::default()
    };
    open(&swift_location(tag, "p"), &settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn swift_keystone_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = keystone_backend("kconf", dir.path()).await;
    conformance(backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
#[cfg_attr(
    podbank_without_swift,
    ignore = "needs the Swift rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn swift_keystone_bank_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = keystone_backend("kbank", dir.path()).await;
    let location = backend.location();
    let file = dir.path().join("clouds.yaml");
    let settings = BackendSettings {
        swift: podbank::bank::backend::SwiftSettings {
            cloud: Some("rig".into()),
            clouds_file: Some(file),
            ..Default::default()
        },
        ..BackendSettings::default()
    };
    bank_end_to_end(backend, open(&location, &settings)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_unreachable_is_retried_then_an_io_error() {
    // A port nothing listens on: connection refused at every try.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let rig = SwiftRig {
        proxy: format!("http://127.0.0.1:{port}"),
    };
    let backend = open("s3://nowhere/p", &rig.s3_settings(USER, KEY));
    match backend
        .put(Kind::Lock, "l1", Bytes::from_static(b"x"))
        .await
    {
        Err(e @ BackendError::Io { .. }) => {
            let text = e.to_string();
            assert!(text.contains("s3://nowhere/p"), "{text}");
            assert!(text.contains("retries"), "{text}");
        }
        other => panic!("unreachable S3: expected an Io error, got {other:?}"),
    }
}
