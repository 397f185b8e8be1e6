//! End-to-end benchmark: a real etcd seeded with realistic pods, then podbank's checkpoint
//! against the plain etcd read of the same keys. Prints one Markdown table per size.
//!
//! ```text
//! cargo build --release --bin podbank --example bench_e2e
//! target/release/examples/bench_e2e --pods 10000 --pods 100000
//! ```
//!
//! Needs `etcd` (and, for one extra baseline, `etcdctl`) on the PATH. Every podbank
//! command runs as a child process of the release binary next to this example, so its
//! wall time and peak RSS (from `wait4`) are its own.

// Tests, examples and benchmarks: a panic with the value is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use common::{podbank_bin, run_measured, start_etcd};
use podbank::etcd::{Etcd, EtcdConfig, EtcdError, KeyValue, ScanOptions, ScanSink};
use podbank_seed::{self as seed, SeedPlan};

/// The plain read: every key under the three prefixes at one revision, through podbank's
/// own scan (the same client, range requests, page sizes and prefetch as podbank), with the
/// values dropped as they arrive.
async fn plain_read(
    etcd: &Etcd,
    prefixes: &[&str],
    options: &ScanOptions,
) -> anyhow::Result<(f64, u64, u64)> {
    struct Discard;
    #[async_trait::async_trait]
    impl ScanSink for Discard {
        type Error = EtcdError;
        async fn page(&mut self, _: usize, _: Vec<KeyValue>) -> Result<(), EtcdError> {
            Ok(())
        }
    }
    let keys: Vec<Vec<u8>> = prefixes.iter().map(|p| p.as_bytes().to_vec()).collect();
    let started = Instant::now();
    let summary = etcd.scan(&keys, options, Discard).await?;
    Ok((
        started.elapsed().as_secs_f64(),
        summary.keys,
        summary.value_bytes,
    ))
}

fn checkpoint_stats(json: &str) -> anyhow::Result<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(json).context("protect output is not JSON")?;
    v.get(0)
        .and_then(|c| c.get("stats"))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no stats in protect output"))
}

async fn bench(pods: usize, with_list_of_100: bool, page_size: usize) -> anyhow::Result<String> {
    let etcd_proc = start_etcd().await?;
    let config = EtcdConfig {
        servers: vec![etcd_proc.url.clone()],
        ..EtcdConfig::default()
    };
    let etcd = Etcd::connect(&config).await?;
    let mut plan = SeedPlan {
        pods,
        namespaces: 50,
        ..SeedPlan::default()
    };
    let t = Instant::now();
    // The whole cluster, as `podbank demo seed` writes it: namespaces, workloads (the pods'
    // owners), the ConfigMaps, Secrets and ServiceAccounts they reference, then the pods.
    let mut written = seed::write(&etcd, seed::cluster_objects(&plan)).await?;
    for start in (0..pods).step_by(10_000) {
        let objects: Vec<_> = (start..(start + 10_000).min(pods))
            .flat_map(|i| seed::pod_objects(&plan, i))
            .collect();
        written += seed::write(&etcd, objects).await?;
    }
    eprintln!(
        "seeded {pods} pods ({written} keys) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // What protect reads: pods, claims, volumes and the closure's kinds.
    let prefixes: Vec<String> = podbank::codec::ResourceKind::ALL
        .iter()
        .map(|k| format!("/registry/{}/", k.etcd_resource()))
        .collect();
    let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    // Warm the page cache and etcd's own caches once, then take the best of three.
    let scan = ScanOptions {
        page_size,
        ..ScanOptions::default()
    };
    plain_read(&etcd, &prefixes, &scan).await?;
    let mut plain = (f64::MAX, 0, 0);
    for _ in 0..3 {
        let r = plain_read(&etcd, &prefixes, &scan).await?;
        if r.0 < plain.0 {
            plain = r;
        }
    }
    let (plain_s, keys, value_bytes) = plain;
    let etcdctl = if Command::new("etcdctl").arg("version").output().is_ok() {
        let mut cmd = Command::new("etcdctl");
        cmd.env("ETCDCTL_API", "3").args([
            "--endpoints",
            &etcd_proc.url,
            "get",
            "/registry/",
            "--prefix",
            "-w",
            "protobuf",
        ]);
        run_measured(&mut cmd).ok().map(|m| m.seconds)
    } else {
        None
    };

    let bin = podbank_bin()?;
    let bank = tempfile::tempdir()?;
    let podbank = |args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.env("PODBANK_ETCD_SERVERS", &etcd_proc.url)
            .env("PODBANK_REPORT_PEAK_RSS", "1")
            .env("PODBANK_PAGE_SIZE", page_size.to_string())
            .env("PODBANK_BANK", bank.path())
            .args(args);
        cmd
    };
    let protect_args = [
        "protect",
        "--backup-name",
        "bench",
        "--description",
        "benchmark",
        "--no-volume-backups",
        "-o",
        "json",
    ];
    let first = run_measured(&mut podbank(&protect_args))?;
    let s1 = checkpoint_stats(&first.stdout)?;

    // 1 % of the pods change.
    plan.generation = 1;
    plan.changed = (0..pods).step_by(100).collect::<BTreeSet<_>>();
    let changed: Vec<_> = plan
        .changed
        .iter()
        .flat_map(|&i| seed::pod_objects(&plan, i))
        .filter(|o| o.key.starts_with("/registry/pods/"))
        .collect();
    seed::write(&etcd, changed).await?;
    let second = run_measured(&mut podbank(&protect_args))?;
    let s2 = checkpoint_stats(&second.stdout)?;

    let list = run_measured(&mut podbank(&["pods", "list", "-o", "json"]))?;

    let num = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0);
    let mb = value_bytes as f64 / 1e6;
    let mut out = String::new();
    use std::fmt::Write as _;
    writeln!(
        out,
        "\n### {pods} pods ({keys} keys, {mb:.0} MB of etcd values)\n"
    )?;
    writeln!(out, "| measurement | time | rate | peak RSS | notes |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    writeln!(
        out,
        "| plain etcd range read at one revision (baseline) | {plain_s:.2} s | {:.0} keys/s, {:.0} MB/s | - | best of 3, podbank's own requests (pages of ~8 MiB, at most {page_size} keys), values dropped |",
        keys as f64 / plain_s,
        mb / plain_s
    )?;
    if let Some(s) = etcdctl {
        writeln!(
            out,
            "| `etcdctl get /registry/ --prefix -w protobuf > /dev/null` | {s:.2} s | {:.0} MB/s | - | one unpaged request |",
            mb / s
        )?;
    }
    writeln!(
        out,
        "| **podbank protect** (full checkpoint, local bank) | {:.2} s | {:.0} pods/s, {:.0} MB/s | {:.0} MB | {:.2}x the plain read's speed |",
        first.seconds,
        pods as f64 / first.seconds,
        mb / first.seconds,
        first.max_rss_mb,
        plain_s / first.seconds
    )?;
    writeln!(
        out,
        "| podbank protect after 1 % churn | {:.2} s | {:.0} pods/s | {:.0} MB | {:.0} new objects ({:.2} % of {:.0}), {:.0} new bytes ({:.2} % of {:.0}) |",
        second.seconds,
        pods as f64 / second.seconds,
        second.max_rss_mb,
        num(&s2, "objectsNew"),
        100.0 * num(&s2, "objectsNew") / num(&s1, "objectsNew").max(1.0),
        num(&s1, "objectsNew"),
        num(&s2, "bytesNew"),
        100.0 * num(&s2, "bytesNew") / num(&s1, "bytesNew").max(1.0),
        num(&s1, "bytesNew"),
    )?;
    writeln!(
        out,
        "| `podbank pods list -o json` | {:.2} s | {:.0} pods/s | {:.0} MB | all namespaces |",
        list.seconds,
        pods as f64 / list.seconds,
        list.max_rss_mb
    )?;
    if with_list_of_100 {
        for i in 0..98 {
            run_measured(&mut podbank(&[
                "protect",
                "--backup-name",
                &format!("small-{i}"),
                "--description",
                "benchmark",
                "--no-volume-backups",
                "-n",
                "ns-1",
                "-l",
                "app=web",
            ]))?;
        }
        let list = run_measured(&mut podbank(&["checkpoints", "list"]))?;
        let count = list.stdout.lines().count().saturating_sub(1);
        writeln!(
            out,
            "| `podbank checkpoints list` | {:.3} s | {count} checkpoints | {:.0} MB | reads manifests only |",
            list.seconds, list.max_rss_mb
        )?;
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut sizes = Vec::new();
    let mut page_size = podbank::etcd::ScanOptions::default().page_size;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pods" => sizes.push(
                args.next()
                    .ok_or_else(|| anyhow::anyhow!("--pods needs a number"))?
                    .parse::<usize>()?,
            ),
            "--page-size" => {
                page_size = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--page-size needs a number"))?
                    .parse::<usize>()?
            }
            other => {
                bail!("unknown argument {other:?} (use --pods N, repeatable, and --page-size N)")
            }
        }
    }
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000];
    }
    println!("podbank end-to-end benchmark: {}", common::machine());
    let last = sizes.len().saturating_sub(1);
    for (i, pods) in sizes.iter().enumerate() {
        print!("{}", bench(*pods, i == last, page_size).await?);
    }
    Ok(())
}
