//! Criterion benchmarks of the hot functions of a checkpoint: decoding the storage format,
//! summarising a pod, hashing, compressing, and the wire-level edit of restore.
//!
//! `cargo bench --bench hot_paths`

// Tests, examples and benchmarks: a panic with the value is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use podbank::bank::ObjectId;
use podbank::codec::{edit_object, Decoder, ObjectEdits, ResourceKind};
use podbank::resources::PodInfo;
use podbank_seed::{self as seed, SeedPlan};

fn pods(n: usize) -> Vec<(String, Vec<u8>)> {
    let plan = SeedPlan {
        pods: n,
        ..SeedPlan::default()
    };
    (0..n)
        .filter_map(|i| seed::pod_objects(&plan, i).into_iter().next())
        .map(|o| (o.key, o.value))
        .collect()
}

fn hot_paths(c: &mut Criterion) {
    let batch = pods(1000);
    let bytes: u64 = batch.iter().map(|(_, v)| v.len() as u64).sum();
    let decoder = Decoder::new(None);
    let mut g = c.benchmark_group("1000 pods");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("decode storage values", |b| {
        b.iter(|| {
            for (k, v) in &batch {
                black_box(decoder.decode(k.as_bytes(), v).ok());
            }
        })
    });
    let decoded: Vec<_> = batch
        .iter()
        .filter_map(|(k, v)| decoder.decode(k.as_bytes(), v).ok().map(|o| (k.clone(), o)))
        .collect();
    g.bench_function("summarise pods (PodInfo)", |b| {
        b.iter(|| {
            for (k, o) in &decoded {
                black_box(PodInfo::from_object(k, o).ok());
            }
        })
    });
    g.bench_function("sha256 (ObjectId)", |b| {
        b.iter(|| {
            for (_, v) in &batch {
                black_box(ObjectId::of(v));
            }
        })
    });
    g.bench_function("zstd level 3, one frame per object", |b| {
        b.iter(|| {
            for (_, v) in &batch {
                black_box(zstd::bulk::compress(v, 3).ok());
            }
        })
    });
    let edits = ObjectEdits {
        name: Some("restored".into()),
        namespace: Some("other".into()),
        drop_server_fields: true,
        set_annotations: vec![("podbank.io/restore".into(), "r-1".into())],
        pod_clear_node_name: true,
        ..Default::default()
    };
    g.bench_function("wire-level restore edit", |b| {
        b.iter(|| {
            for (_, v) in &batch {
                black_box(edit_object(ResourceKind::Pod, v, &edits).ok());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
