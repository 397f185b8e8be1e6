//! The consistent scan: several key prefixes read at ONE pinned revision, page by page.
//!
//! The scan *pushes* pages into a [`ScanSink`] (as ripgrep's searcher pushes matches into
//! a `Sink`): the sink decides what to keep, so memory is bounded by one page in flight
//! plus one being fetched, whatever the number of keys. While the sink works on page N,
//! page N+1 is already being fetched, so etcd reads overlap the sink's decode, compression,
//! hashing and writing.
//!
//! Consistency: the first range request is served at the current revision R, read from
//! that response's own header (not from a separate call). Every later page, of every
//! prefix, is requested *at R*. If etcd compacts past R mid-scan, the scan starts over at
//! a new revision, at most [`ScanOptions::max_restarts`] times; the sink is told through
//! [`ScanSink::begin`] and must forget what it received. The revision that was actually
//! read is returned in [`ScanSummary`].

use async_trait::async_trait;
use etcd_client::GetOptions;

use super::{Etcd, EtcdError, Revision};

/// One key-value pair as read from etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/registry/pods/default/web-0`.
    pub key: Vec<u8>,
    /// The stored value, opaque here.
    pub value: Vec<u8>,
    /// Revision of the last change to this key (the object's resourceVersion).
    pub mod_revision: i64,
    /// Revision at which the key was created.
    pub create_revision: i64,
}

impl KeyValue {
    /// The key as text, for messages.
    pub fn key_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.key)
    }
}

/// Knobs of a scan.
///
/// Pages are sized by bytes: each request asks for about [`ScanOptions::page_bytes`] of
/// values (from the average value size of the page before; the first request of a prefix
/// asks for at most [`FIRST_PAGE_KEYS`]), and never more than [`ScanOptions::page_size`]
/// keys. Few large pages cost etcd less than many small ones (etcd 3.4 walks the rest of
/// the range's index for every limited request), and a byte budget keeps a page of large
/// objects within memory and gRPC's message limit.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Most keys per range request.
    pub page_size: usize,
    /// Value bytes a range request aims for.
    pub page_bytes: usize,
    /// How often to start over at a new revision after a compaction before giving up.
    pub max_restarts: u32,
    /// Pin the scan to this revision instead of the current one (fails if compacted).
    pub revision: Option<Revision>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            page_size: DEFAULT_PAGE_SIZE,
            page_bytes: DEFAULT_PAGE_BYTES,
            max_restarts: 3,
            revision: None,
        }
    }
}

/// Most keys per range request, by default.
pub const DEFAULT_PAGE_SIZE: usize = 10_000;

/// Value bytes a range request aims for, by default (~5 000 pods of 1.6 KB).
pub const DEFAULT_PAGE_BYTES: usize = 8 << 20;

/// Keys asked for by the first request of a prefix, before any value size is known.
pub const FIRST_PAGE_KEYS: usize = 500;

/// Keys to ask for next, after a page of `keys` keys and `bytes` value bytes.
fn next_limit(options: &ScanOptions, keys: usize, bytes: u64) -> usize {
    let most = options.page_size.max(1);
    let average = (bytes / keys.max(1) as u64).max(1);
    let fit = u64::try_from(options.page_bytes.max(1)).unwrap_or(u64::MAX) / average;
    usize::try_from(fit).unwrap_or(usize::MAX).clamp(1, most)
}

/// What a finished scan read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ScanSummary {
    /// The revision every page was read at.
    pub revision: Revision,
    /// Keys handed to the sink (in the final, successful pass).
    pub keys: u64,
    /// Bytes of values handed to the sink (in the final pass).
    pub value_bytes: u64,
    /// Range requests made, over all passes.
    pub requests: u64,
    /// Times the scan started over after a compaction.
    pub restarts: u32,
}

/// Receives the pages of a scan.
///
/// Who drives: [`Etcd::scan`] calls `begin` once with the pinned revision, then `page` for
/// every page in key order, prefix by prefix. If a compaction forces a restart, `begin` is
/// called again with the new revision: the sink must discard everything it got since the
/// previous `begin` (pages of different revisions must never be mixed).
///
/// On error: an error returned by the sink stops the scan at once and is returned to the
/// caller unchanged; `page` is not called again. An etcd error is converted into the
/// sink's error type through `From<EtcdError>`.
#[async_trait]
pub trait ScanSink: Send {
    /// The sink's error type; etcd errors are converted into it.
    type Error: From<EtcdError> + Send;

    /// A (re)start at `revision`. The default does nothing, which is only right for sinks
    /// that keep nothing across pages.
    async fn begin(&mut self, revision: Revision) -> Result<(), Self::Error> {
        let _ = revision;
        Ok(())
    }

    /// One page of key-values from prefix number `prefix_index` (an index into the
    /// prefixes given to [`Etcd::scan`]).
    async fn page(&mut self, prefix_index: usize, page: Vec<KeyValue>) -> Result<(), Self::Error>;
}

#[async_trait]
impl<S: ScanSink + ?Sized> ScanSink for &mut S {
    type Error = S::Error;

    async fn begin(&mut self, revision: Revision) -> Result<(), Self::Error> {
        (**self).begin(revision).await
    }

    async fn page(&mut self, prefix_index: usize, page: Vec<KeyValue>) -> Result<(), Self::Error> {
        (**self).page(prefix_index, page).await
    }
}

/// The smallest key greater than every key that starts with `prefix`.
pub(crate) fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): to the end of the key space.
    vec![0]
}

/// One range response, reduced to what the scan needs.
struct Page {
    revision: Revision,
    kvs: Vec<KeyValue>,
    more: bool,
}

enum ScanFailure<E> {
    Compacted(String),
    Other(E),
}

fn is_compacted(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            s.message().contains("required revision has been compacted")
        }
        _ => false,
    }
}

impl Etcd {
    async fn range_page(
        kv: &mut etcd_client::KvClient,
        from: Vec<u8>,
        end: Vec<u8>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<Page, Result<String, EtcdError>> {
        let key_text = String::from_utf8_lossy(&from).into_owned();
        let mut opts = GetOptions::new()
            .with_range(end)
            .with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        if let Some(r) = revision {
            opts = opts.with_revision(r.get());
        }
        let mut resp = match kv.get(from, Some(opts)).await {
            Ok(r) => r,
            Err(e) if is_compacted(&e) => return Err(Ok(key_text)),
            Err(e) => {
                return Err(Err(EtcdError::Request {
                    op: "range",
                    key: key_text,
                    source: Box::new(e),
                }))
            }
        };
        let revision = resp
            .header()
            .map(|h| Revision::new(h.revision()))
            .ok_or_else(|| Err(EtcdError::NoHeader { key: key_text }))?;
        let more = resp.more();
        let kvs = resp
            .take_kvs()
            .into_iter()
            .map(|kv| {
                let mod_revision = kv.mod_revision();
                let create_revision = kv.create_revision();
                let (key, value) = kv.into_key_value();
                KeyValue {
                    key,
                    value,
                    mod_revision,
                    create_revision,
                }
            })
            .collect();
        Ok(Page {
            revision,
            kvs,
            more,
        })
    }

    /// Scan every key under each of `prefixes` at one revision, pushing pages into `sink`.
    ///
    /// # Arguments
    ///
    /// * `prefixes` - full key prefixes, e.g. `/registry/pods/`; scanned in this order.
    /// * `options` - page size, restart budget, optional fixed revision.
    /// * `sink` - receives the pages; see [`ScanSink`] for the protocol.
    ///
    /// Returns the revision actually read and what was read at it.
    pub async fn scan<S: ScanSink>(
        &self,
        prefixes: &[Vec<u8>],
        options: &ScanOptions,
        mut sink: S,
    ) -> Result<ScanSummary, S::Error> {
        let mut restarts = 0u32;
        let mut requests = 0u64;
        let mut pinned = options.revision;
        loop {
            match self
                .scan_once(prefixes, options, pinned, &mut sink, &mut requests)
                .await
            {
                Ok((revision, keys, value_bytes)) => {
                    return Ok(ScanSummary {
                        revision,
                        keys,
                        value_bytes,
                        requests,
                        restarts,
                    })
                }
                Err(ScanFailure::Other(e)) => return Err(e),
                Err(ScanFailure::Compacted(key)) => {
                    let last = pinned.unwrap_or(Revision::new(0));
                    if options.revision.is_some() || restarts >= options.max_restarts {
                        return Err(EtcdError::Compacted {
                            revision: last,
                            key,
                            restarts,
                        }
                        .into());
                    }
                    restarts += 1;
                    tracing::warn!(
                        revision = last.get(),
                        key,
                        restarts,
                        "revision compacted during scan; starting over at a new revision"
                    );
                    pinned = None;
                }
            }
        }
    }

    async fn scan_once<S: ScanSink>(
        &self,
        prefixes: &[Vec<u8>],
        options: &ScanOptions,
        mut pinned: Option<Revision>,
        sink: &mut S,
        requests: &mut u64,
    ) -> Result<(Revision, u64, u64), ScanFailure<S::Error>> {
        let mut keys = 0u64;
        let mut value_bytes = 0u64;
        let mut begun = false;
        let fail = |r: Result<String, EtcdError>| match r {
            Ok(key) => ScanFailure::Compacted(key),
            Err(e) => ScanFailure::Other(S::Error::from(e)),
        };
        for (index, prefix) in prefixes.iter().enumerate() {
            let end = prefix_range_end(prefix);
            let mut kv = self.kv();
            *requests += 1;
            let first = options.page_size.clamp(1, FIRST_PAGE_KEYS);
            let mut page = Self::range_page(&mut kv, prefix.clone(), end.clone(), first, pinned)
                .await
                .map_err(fail)?;
            let revision = *pinned.get_or_insert(page.revision);
            if !begun {
                sink.begin(revision).await.map_err(ScanFailure::Other)?;
                begun = true;
            }
            loop {
                // Start fetching the next page before handing this one to the sink.
                let page_bytes: u64 = page.kvs.iter().map(|kv| kv.value.len() as u64).sum();
                let next = match (page.more, page.kvs.last()) {
                    (true, Some(last)) => {
                        let mut from = last.key.clone();
                        from.push(0);
                        let mut kv = kv.clone();
                        let end = end.clone();
                        let limit = next_limit(options, page.kvs.len(), page_bytes);
                        *requests += 1;
                        Some(tokio::spawn(async move {
                            Self::range_page(&mut kv, from, end, limit, Some(revision)).await
                        }))
                    }
                    _ => None,
                };
                let kvs = std::mem::take(&mut page.kvs);
                keys += kvs.len() as u64;
                value_bytes += page_bytes;
                if !kvs.is_empty() {
                    let sent = sink.page(index, kvs).await;
                    if let Err(e) = sent {
                        if let Some(handle) = next {
                            handle.abort();
                        }
                        return Err(ScanFailure::Other(e));
                    }
                }
                match next {
                    None => break,
                    Some(handle) => {
                        page = match handle.await {
                            Ok(result) => result.map_err(fail)?,
                            Err(join) => {
                                return Err(ScanFailure::Other(S::Error::from(EtcdError::Task(
                                    join.to_string(),
                                ))))
                            }
                        };
                    }
                }
            }
        }
        let revision = match pinned {
            Some(r) => r,
            None => {
                let r = self
                    .current_revision()
                    .await
                    .map_err(|e| ScanFailure::Other(e.into()))?;
                sink.begin(r).await.map_err(ScanFailure::Other)?;
                r
            }
        };
        Ok((revision, keys, value_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::{next_limit, prefix_range_end, ScanOptions};

    #[test]
    fn pages_aim_at_a_byte_budget_within_the_key_limit() {
        let options = ScanOptions {
            page_size: 10_000,
            page_bytes: 8 << 20,
            ..ScanOptions::default()
        };
        // Pods of ~1.6 KB: about 5 000 a page.
        assert_eq!(next_limit(&options, 500, 500 * 1600), 5242);
        // Small claims: the key limit.
        assert_eq!(next_limit(&options, 500, 500 * 300), 10_000);
        // Objects of 1.5 MiB: five a page, not thousands.
        assert_eq!(next_limit(&options, 10, 10 * (3 << 19)), 5);
        // Larger than the budget: one at a time.
        assert_eq!(next_limit(&options, 1, 64 << 20), 1);
        // An empty page (or empty values) does not divide by zero.
        assert_eq!(next_limit(&options, 0, 0), 10_000);
    }

    #[test]
    fn range_end_increments_last_byte() {
        assert_eq!(
            prefix_range_end(b"/registry/pods/"),
            b"/registry/pods0".to_vec()
        );
        assert_eq!(prefix_range_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_range_end(b"\xff\xff"), vec![0]);
    }
}
