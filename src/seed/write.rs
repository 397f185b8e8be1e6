//! The seeder's I/O: generated objects put into etcd in batched transactions.

use etcd_client::{Txn, TxnOp};

use super::SeedObject;
use crate::etcd::{Etcd, EtcdError};

/// Put `objects` into etcd, 100 per transaction, a few transactions in flight.
///
/// Returns the number of keys written.
pub async fn write(
    etcd: &Etcd,
    objects: impl IntoIterator<Item = SeedObject>,
) -> Result<u64, EtcdError> {
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
    let client = etcd.client().kv_client();
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
                    .map_err(|e| EtcdError::Request {
                        op: "txn put",
                        key: first,
                        source: Box::new(e),
                    })?;
                Ok::<u64, EtcdError>(n)
            }
        })
        .buffer_unordered(4)
        .try_collect()
        .await?;
    Ok(counts.iter().sum())
}
