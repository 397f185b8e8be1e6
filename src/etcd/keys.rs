//! Reads that cost what they return: a window of a range from a start key, and exact keys
//! by the batch, both at one pinned revision. A page of a listing, or the claims, volumes
//! and closure of a few pods, is read this way instead of scanning whole prefixes.

use etcd_client::{GetOptions, Txn, TxnOp, TxnOpResponse};
use futures::{StreamExt, TryStreamExt};

use super::scan::prefix_range_end;
use super::{Etcd, EtcdError, KeyValue, Revision};

/// Exact keys asked for in one transaction: under etcd's default `--max-txn-ops` (128).
pub const KEYS_PER_TXN: usize = 100;

/// Transactions of exact keys in flight at once.
const TXNS_AT_ONCE: usize = 8;

/// A window of a range.
#[derive(Debug, Clone)]
pub struct Window {
    /// The revision it was read at.
    pub revision: Revision,
    /// The key-values, in key order.
    pub kvs: Vec<KeyValue>,
    /// Whether the range holds more keys after the last one returned.
    pub more: bool,
}

fn kv_of(kv: etcd_client::KeyValue) -> KeyValue {
    let mod_revision = kv.mod_revision();
    let create_revision = kv.create_revision();
    let (key, value) = kv.into_key_value();
    KeyValue {
        key,
        value,
        mod_revision,
        create_revision,
    }
}

fn request_error(op: &'static str, key: &[u8], e: etcd_client::Error) -> EtcdError {
    let key = String::from_utf8_lossy(key).into_owned();
    if let etcd_client::Error::GRpcStatus(s) = &e {
        if s.message().contains("required revision has been compacted") {
            return EtcdError::Compacted {
                revision: Revision::new(0),
                key,
                restarts: 0,
            };
        }
    }
    EtcdError::Request {
        op,
        key,
        source: Box::new(e),
    }
}

impl Etcd {
    /// At most `limit` keys of the range `[from, end of prefix)`, at `revision` (the
    /// current one if `None`; the window says which).
    ///
    /// # Arguments
    ///
    /// * `prefix` - the range's prefix, e.g. `/registry/pods/`.
    /// * `from` - the first key to return (inclusive); it must start with `prefix`.
    /// * `limit` - most keys returned (at least one is asked for).
    /// * `revision` - the revision to read at.
    pub async fn window(
        &self,
        prefix: &[u8],
        from: Vec<u8>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<Window, EtcdError> {
        let mut opts = GetOptions::new()
            .with_range(prefix_range_end(prefix))
            .with_limit(i64::try_from(limit.max(1)).unwrap_or(i64::MAX));
        if let Some(r) = revision {
            opts = opts.with_revision(r.get());
        }
        let mut resp = self
            .kv()
            .get(from.clone(), Some(opts))
            .await
            .map_err(|e| request_error("range", &from, e))?;
        let revision = resp
            .header()
            .map(|h| Revision::new(h.revision()))
            .ok_or_else(|| EtcdError::NoHeader {
                key: String::from_utf8_lossy(&from).into_owned(),
            })?;
        let more = resp.more();
        let kvs = resp.take_kvs().into_iter().map(kv_of).collect();
        Ok(Window {
            revision,
            kvs,
            more,
        })
    }

    /// The values of `keys` at `revision`, in the order of `keys`; keys etcd does not hold
    /// at that revision are left out. Keys go [`KEYS_PER_TXN`] to a transaction, several
    /// transactions at once.
    pub async fn get_keys(
        &self,
        keys: Vec<Vec<u8>>,
        revision: Revision,
    ) -> Result<Vec<KeyValue>, EtcdError> {
        let batches: Vec<Vec<Vec<u8>>> = keys.chunks(KEYS_PER_TXN).map(<[_]>::to_vec).collect();
        let read = futures::stream::iter(batches.into_iter().map(|batch| {
            let mut kv = self.kv();
            async move {
                let first = batch.first().cloned().unwrap_or_default();
                let ops: Vec<TxnOp> = batch
                    .into_iter()
                    .map(|k| TxnOp::get(k, Some(GetOptions::new().with_revision(revision.get()))))
                    .collect();
                let resp = kv
                    .txn(Txn::new().and_then(ops))
                    .await
                    .map_err(|e| request_error("txn range", &first, e))?;
                let mut out = Vec::new();
                for op in resp.op_responses() {
                    if let TxnOpResponse::Get(mut g) = op {
                        out.extend(g.take_kvs().into_iter().map(kv_of));
                    }
                }
                Ok::<_, EtcdError>(out)
            }
        }))
        .buffered(TXNS_AT_ONCE)
        .try_collect::<Vec<_>>()
        .await?;
        Ok(read.into_iter().flatten().collect())
    }
}
