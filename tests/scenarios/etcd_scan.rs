//! The pinned-revision scan against a real etcd: consistency under churn, compaction
//! mid-scan, large values, TLS with client certificates.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::etcd::TestEtcd;
use async_trait::async_trait;
use etcd_client::{CompactionOptions, GetOptions};
use podbank::etcd::{Etcd, EtcdConfig, EtcdError, KeyValue, Revision, ScanOptions, ScanSink};
use podbank_seed::{self as seed, SeedPlan};

/// Collects everything; remembers how often the scan (re)started.
#[derive(Default)]
struct Collect {
    seen: BTreeMap<Vec<u8>, (Vec<u8>, i64)>,
    begins: Vec<Revision>,
    pages: usize,
}

#[async_trait]
impl ScanSink for Collect {
    type Error = EtcdError;
    async fn begin(&mut self, revision: Revision) -> Result<(), EtcdError> {
        self.begins.push(revision);
        self.seen.clear();
        Ok(())
    }
    async fn page(&mut self, _prefix: usize, page: Vec<KeyValue>) -> Result<(), EtcdError> {
        self.pages += 1;
        for kv in page {
            self.seen.insert(kv.key, (kv.value, kv.mod_revision));
        }
        Ok(())
    }
}

fn prefixes() -> Vec<Vec<u8>> {
    ["pods", "persistentvolumeclaims", "persistentvolumes"]
        .iter()
        .map(|r| format!("/registry/{r}/").into_bytes())
        .collect()
}

/// A plain range read of every prefix at `revision`, in one request each.
async fn plain_read(etcd: &Etcd, revision: Revision) -> BTreeMap<Vec<u8>, (Vec<u8>, i64)> {
    let mut kv = etcd.client().kv_client().max_decoding_message_size(1 << 30);
    let mut out = BTreeMap::new();
    for p in prefixes() {
        let resp = kv
            .get(
                p,
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_revision(revision.get()),
                ),
            )
            .await
            .expect("plain range read");
        for kv in resp.kvs() {
            out.insert(kv.key().to_vec(), (kv.value().to_vec(), kv.mod_revision()));
        }
    }
    out
}

async fn seeded(pods: usize) -> (TestEtcd, Etcd) {
    let server = TestEtcd::start();
    let etcd = server.connect().await;
    let plan = SeedPlan {
        pods,
        ..SeedPlan::default()
    };
    seed::write(&etcd, seed::generate(&plan))
        .await
        .expect("seed");
    (server, etcd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_under_churn_returns_exactly_the_pinned_revision() {
    let (_server, etcd) = seeded(1000).await;
    let stop = Arc::new(AtomicBool::new(false));
    // A writer that keeps changing and deleting pods while the scan runs.
    let writer = {
        let etcd = etcd.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut kv = etcd.client().kv_client();
            let plan = SeedPlan {
                pods: 1000,
                generation: 1,
                ..SeedPlan::default()
            };
            let mut i = 0usize;
            let mut writes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let objs = seed::pod_objects(&plan, i % 1000);
                if i.is_multiple_of(3) {
                    for o in &objs {
                        kv.delete(o.key.clone(), None).await.expect("delete");
                    }
                } else {
                    for o in objs {
                        kv.put(o.key, o.value, None).await.expect("put");
                    }
                }
                writes += 1;
                i += 7;
            }
            writes
        })
    };
    let options = ScanOptions {
        page_size: 37,
        ..ScanOptions::default()
    };
    let mut sink = Collect::default();
    let summary = etcd
        .scan(&prefixes(), &options, &mut sink)
        .await
        .expect("scan");
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.expect("writer");
    assert!(writes > 0, "the writer made no change during the scan");
    assert!(sink.pages > 20, "expected many pages, got {}", sink.pages);
    assert_eq!(summary.keys as usize, sink.seen.len());
    let expected = plain_read(&etcd, summary.revision).await;
    assert_eq!(sink.seen.len(), expected.len());
    assert!(
        sink.seen == expected,
        "scan differs from a plain read at {}",
        summary.revision
    );
    // The scan's revision is the one its first page was served at, not a later one.
    assert_eq!(sink.begins, vec![summary.revision]);
    let now = etcd.current_revision().await.expect("revision");
    assert!(
        now > summary.revision,
        "the writer should have moved etcd past the scan"
    );
}

/// Compacts etcd to its current revision on the first page of the first pass.
struct CompactOnce {
    inner: Collect,
    etcd: Etcd,
    every_pass: bool,
    compacted: usize,
}

#[async_trait]
impl ScanSink for CompactOnce {
    type Error = EtcdError;
    async fn begin(&mut self, revision: Revision) -> Result<(), EtcdError> {
        self.inner.begin(revision).await
    }
    async fn page(&mut self, prefix: usize, page: Vec<KeyValue>) -> Result<(), EtcdError> {
        if self.compacted == 0 || (self.every_pass && self.inner.pages == 0) {
            let mut kv = self.etcd.client().kv_client();
            // Move the store forward, then compact past the pinned revision.
            let put = kv.put("/podbank-test/tick", "x", None).await.expect("put");
            let rev = put.header().map(|h| h.revision()).expect("header");
            kv.compact(rev, Some(CompactionOptions::new().with_physical()))
                .await
                .expect("compact");
            self.compacted += 1;
        }
        self.inner.page(prefix, page).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_between_pages_restarts_at_a_new_revision() {
    let (_server, etcd) = seeded(200).await;
    let options = ScanOptions {
        page_size: 10,
        ..ScanOptions::default()
    };
    let mut sink = CompactOnce {
        inner: Collect::default(),
        etcd: etcd.clone(),
        every_pass: false,
        compacted: 0,
    };
    let summary = etcd
        .scan(&prefixes(), &options, &mut sink)
        .await
        .expect("scan");
    assert_eq!(summary.restarts, 1);
    assert_eq!(
        sink.inner.begins.len(),
        2,
        "begin is called again on restart"
    );
    assert!(sink.inner.begins[1] > sink.inner.begins[0]);
    assert_eq!(sink.inner.begins[1], summary.revision);
    let expected = plain_read(&etcd, summary.revision).await;
    assert!(sink.inner.seen == expected);
    assert!(!expected.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_on_every_pass_gives_up_with_a_clear_error() {
    let (_server, etcd) = seeded(50).await;
    let options = ScanOptions {
        page_size: 5,
        max_restarts: 2,
        ..ScanOptions::default()
    };
    let mut sink = CompactOnce {
        inner: Collect::default(),
        etcd: etcd.clone(),
        every_pass: true,
        compacted: 0,
    };
    // Reset the page counter on each begin so that every pass compacts once.
    struct ResetPages<'a>(&'a mut CompactOnce);
    #[async_trait]
    impl ScanSink for ResetPages<'_> {
        type Error = EtcdError;
        async fn begin(&mut self, revision: Revision) -> Result<(), EtcdError> {
            self.0.inner.pages = 0;
            self.0.begin(revision).await
        }
        async fn page(&mut self, prefix: usize, page: Vec<KeyValue>) -> Result<(), EtcdError> {
            self.0.page(prefix, page).await
        }
    }
    let err = etcd
        .scan(&prefixes(), &options, ResetPages(&mut sink))
        .await
        .expect_err("must give up");
    assert!(
        matches!(err, EtcdError::Compacted { restarts: 2, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("compacted") && text.contains("/registry/"),
        "{text}"
    );
}

/// Records the size of each page.
#[derive(Default)]
struct PageSizes {
    keys: Vec<usize>,
    last: Option<Vec<u8>>,
    out_of_order: usize,
}

#[async_trait]
impl ScanSink for PageSizes {
    type Error = EtcdError;
    async fn page(&mut self, _prefix: usize, page: Vec<KeyValue>) -> Result<(), EtcdError> {
        self.keys.push(page.len());
        for kv in page {
            if self.last.as_ref().is_some_and(|l| *l >= kv.key) {
                self.out_of_order += 1;
            }
            self.last = Some(kv.key);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_sized_by_bytes_within_the_key_limit() {
    let server = TestEtcd::start();
    let etcd = server.connect().await;
    let mut kv = etcd.client().kv_client();
    // 300 pods of 64 KiB, and 400 volumes of 1 KiB.
    for i in 0..300 {
        kv.put(
            format!("/registry/pods/a/p-{i:03}"),
            vec![b'x'; 64 << 10],
            None,
        )
        .await
        .expect("put");
    }
    for i in 0..400 {
        kv.put(
            format!("/registry/persistentvolumes/v-{i:03}"),
            vec![b'y'; 1024],
            None,
        )
        .await
        .expect("put");
    }
    let options = ScanOptions {
        page_size: 150,
        page_bytes: 1 << 20,
        ..ScanOptions::default()
    };
    let mut sink = PageSizes::default();
    let prefixes = [
        b"/registry/persistentvolumes/".to_vec(),
        b"/registry/pods/".to_vec(),
    ];
    let summary = etcd
        .scan(&prefixes, &options, &mut sink)
        .await
        .expect("scan");
    assert_eq!(summary.keys, 700);
    assert_eq!(sink.keys.iter().sum::<usize>(), 700);
    assert_eq!(sink.out_of_order, 0, "every key once, in order");
    assert_eq!(summary.requests as usize, sink.keys.len());
    // Small values: pages of the key limit. Large ones: the first page of the prefix asks
    // before any size is known (150 keys); after it, pages of ~1 MiB, 16 values.
    assert_eq!(
        sink.keys,
        [150, 150, 100, 150, 16, 16, 16, 16, 16, 16, 16, 16, 16, 6]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_of_one_and_a_half_mebibytes_passes() {
    let server = TestEtcd::start();
    let etcd = server.connect().await;
    let big = vec![b'x'; 1536 * 1024];
    let mut kv = etcd.client().kv_client();
    for i in 0..3 {
        kv.put(format!("/registry/pods/big/p{i}"), big.clone(), None)
            .await
            .expect("put 1.5 MiB");
    }
    let mut sink = Collect::default();
    let summary = etcd
        .scan(&prefixes(), &ScanOptions::default(), &mut sink)
        .await
        .expect("scan of large values");
    assert_eq!(summary.keys, 3);
    assert!(sink.seen.values().all(|(v, _)| v.len() == big.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() {
    let server = TestEtcd::start_tls();
    let etcd = server.connect().await;
    let mut kv = etcd.client().kv_client();
    kv.put("/registry/pods/ns/a", "v", None)
        .await
        .expect("put over TLS");
    let mut sink = Collect::default();
    let summary = etcd
        .scan(&prefixes(), &ScanOptions::default(), &mut sink)
        .await
        .expect("scan over TLS");
    assert_eq!(summary.keys, 1);

    let tls = server.tls.as_ref().expect("tls files");
    let wrong_ca = EtcdConfig {
        ca_file: Some(tls.other_ca.clone()),
        ..server.config()
    };
    let err = Etcd::connect(&wrong_ca)
        .await
        .expect_err("a wrong CA must fail");
    let text = err.to_string();
    assert!(text.contains("cannot connect to etcd"), "{text}");
    assert!(
        text.contains("--etcd-cafile"),
        "the hint names the flag: {text}"
    );

    let no_client_cert = EtcdConfig {
        cert_file: None,
        key_file: None,
        ..server.config()
    };
    let err = Etcd::connect(&no_client_cert)
        .await
        .expect_err("etcd requires a client certificate");
    assert!(err.to_string().contains("cannot connect to etcd"), "{err}");

    let half = EtcdConfig {
        key_file: None,
        ..server.config()
    };
    let err = Etcd::connect(&half).await.expect_err("cert without key");
    assert!(err.to_string().contains("--etcd-keyfile"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_etcd_names_the_endpoint() {
    let port = crate::support::etcd::free_port();
    let config = EtcdConfig {
        servers: vec![format!("http://127.0.0.1:{port}")],
        connect_timeout: std::time::Duration::from_secs(2),
        request_timeout: std::time::Duration::from_secs(2),
        ..EtcdConfig::default()
    };
    let err = Etcd::connect(&config)
        .await
        .expect_err("nothing listens there");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}
