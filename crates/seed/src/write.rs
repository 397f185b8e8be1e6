//! The seeder's I/O: generated objects put into etcd in batched transactions.

use etcd_client::{Txn, TxnOp};

use super::SeedObject;

/// A batch of puts etcd refused.
#[derive(Debug, thiserror::Error)]
#[error("etcd txn put (first key {key}): {source}")]
pub struct SeedError {
    /// The first key of the refused batch.
    pub key: String,
    /// The client's error.
    #[source]
    pub source: Box<etcd_client::Error>,
}

/// Put `objects` into etcd, 100 per transaction, a few transactions in flight.
///
/// Returns the number of keys written.
/// `etcd` is etcd-client's `Client`, or anything that holds one (podbank's `Etcd`).
pub async fn write<E: AsRef<etcd_client::Client> + ?Sized>(
    etcd: &E,
    objects: impl IntoIterator<Item = SeedObject>,
) -> Result<u64, SeedError> {
    use futures::stream::{self, StreamExt, TryStreamExt};

    let mut batches = Vec::new();
    let mut batch = Vec::new();
    for o in objects {
        batch.push(o);
        if batch.len() == 100 {
            batches.push(std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    let client = etcd.as_ref().kv_client();
    let counts: Vec<u64> = stream::iter(batches)
        .map(|batch| {
            let mut kv = client.clone();
            async move {
                let n = batch.len() as u64;
                let first = batch.first().map(|o| o.key.clone()).unwrap_or_default();
                let ops: Vec<TxnOp> = batch
                    .into_iter()
                    .map(|o| TxnOp::put(o.key, o.value, None))
                    .collect();
                kv.txn(Txn::new().and_then(ops))
                    .await
                    .map_err(|e| SeedError {
                        key: first,
                        source: Box::new(e),
                    })?;
                Ok::<u64, SeedError>(n)
            }
        })
        .buffer_unordered(4)
        .try_collect()
        .await?;
    Ok(counts.iter().sum())
}
