//! A Swift bank far away against a local bank (issue 33): one etcd seeded with a whole
//! cluster, protected into a local bank and into a Swift bank on the rig behind a
//! latency-injecting forwarder (each request held back `--delay-ms`, 20 by default), then
//! `checkpoints verify --all` and `restore --dry-run --original-volumes --export` from each,
//! side by side: times (best of `--runs`, each a child process of the release binary) and
//! the bank's own request counts (from `-o json`: verify's `requests`, the restore's
//! `stats.bank*`). Prints a Markdown table.
//!
//! ```text
//! cargo build --release --bin podbank --example bench_swift
//! PODBANK_TEST_SWIFT=http://127.0.0.1:8080 target/release/examples/bench_swift --pods 20000
//! ```

// Tests, examples and benchmarks: a panic with the value is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "../tests/support/latency.rs"]
mod latency;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use common::{machine, podbank_bin, run_measured, start_etcd, Measured};
use latency::LatencyProxy;
use podbank::etcd::{Etcd, EtcdConfig};
use podbank_seed::{self as seed, SeedPlan};
use serde_json::Value;

/// A `podbank` command on `bank` (a path or a swift:// URL), Swift reached as `swift_auth`.
fn podbank(etcd: &str, bank: &str, swift_auth: &str, args: &[&str]) -> anyhow::Result<Command> {
    let mut cmd = Command::new(podbank_bin()?);
    cmd.env("PODBANK_ETCD_SERVERS", etcd)
        .env("PODBANK_BANK", bank)
        .env("ST_AUTH", swift_auth)
        .env("ST_USER", "test:tester")
        .env("ST_KEY", "testing")
        .env("PODBANK_REPORT_PEAK_RSS", "1")
        .args(args);
    Ok(cmd)
}

/// Runs the command (off the async workers: the forwarder runs on them meanwhile).
fn measured(cmd: &mut Command) -> anyhow::Result<Measured> {
    tokio::task::block_in_place(|| run_measured(cmd))
}

fn best(
    runs: usize,
    mut make: impl FnMut() -> anyhow::Result<Command>,
) -> anyhow::Result<Measured> {
    let mut best: Option<Measured> = None;
    for _ in 0..runs.max(1) {
        let m = measured(&mut make()?)?;
        if best.as_ref().is_none_or(|b| m.seconds < b.seconds) {
            best = Some(m);
        }
    }
    best.ok_or_else(|| anyhow::anyhow!("no run"))
}

fn json(m: &Measured, what: &str) -> anyhow::Result<Value> {
    serde_json::from_str(&m.stdout).with_context(|| format!("{what} output is not JSON"))
}

fn n(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

async fn bench(pods: usize, runs: usize, swift: &str, delay: Duration) -> anyhow::Result<()> {
    let etcd = start_etcd().await?;
    let client = Etcd::connect(&EtcdConfig {
        servers: vec![etcd.url.clone()],
        ..EtcdConfig::default()
    })
    .await?;
    let plan = SeedPlan {
        pods,
        namespaces: 50,
        ..SeedPlan::default()
    };
    let mut batch = Vec::new();
    for o in seed::generate(&plan) {
        batch.push(o);
        if batch.len() == 10_000 {
            seed::write(&client, std::mem::take(&mut batch)).await?;
        }
    }
    seed::write(&client, batch).await?;
    let proxy = LatencyProxy::start(&LatencyProxy::host_port(swift), delay).await?;
    let auth = format!("{}/auth/v1.0", proxy.url);
    let work = tempfile::tempdir()?;
    let container = format!("pb-bench-{:016x}", rand::random::<u64>());
    let banks = [
        (
            "local".to_string(),
            work.path().join("local").display().to_string(),
        ),
        (
            format!("swift, {} ms a request", delay.as_millis()),
            format!("swift://{container}/bank"),
        ),
    ];
    let mut rows = Vec::new();
    let mut times = Vec::new();
    for (i, (label, bank)) in banks.iter().enumerate() {
        let protect = measured(&mut podbank(
            &etcd.url,
            bank,
            &auth,
            &[
                "protect",
                "--backup-name",
                "bench",
                "--description",
                "swift benchmark",
                "--no-volume-backups",
                "-o",
                "json",
            ],
        )?)?;
        let Some(id) = json(&protect, "protect")?
            .get(0)
            .and_then(|c| c.get("id"))
            .and_then(|i| i.as_str())
            .map(str::to_string)
        else {
            bail!("no checkpoint id in protect output");
        };
        let verify = best(runs, || {
            podbank(
                &etcd.url,
                bank,
                &auth,
                &["checkpoints", "verify", "--all", "-o", "json"],
            )
        })?;
        let v = json(&verify, "verify")?;
        let vr = v.get("requests").cloned().unwrap_or_default();
        let export = Path::new(work.path()).join(format!("export-{i}"));
        let restore = best(runs, || {
            let _ = std::fs::remove_dir_all(&export);
            podbank(
                &etcd.url,
                bank,
                &auth,
                &[
                    "restore",
                    &id,
                    "--dry-run",
                    "--original-volumes",
                    "--export",
                    &export.display().to_string(),
                    "-o",
                    "json",
                ],
            )
        })?;
        let r = json(&restore, "restore")?;
        let rs = r.get("stats").cloned().unwrap_or_default();
        times.push((verify.seconds, restore.seconds));
        rows.push(format!(
            "| {label} | {:.2} s | {:.2} s, {} GETs + {} ranged ({} of packs), {:.1} MiB | {:.2} s, {:.0} MB, {} GETs + {} ranged ({} of packs), {:.1} MiB |",
            protect.seconds,
            verify.seconds,
            n(&vr, "gets"),
            n(&vr, "rangeGets"),
            n(&vr, "packGets"),
            n(&vr, "bytesRead") as f64 / f64::from(1 << 20),
            restore.seconds,
            restore.max_rss_mb,
            n(&rs, "bankGets"),
            n(&rs, "bankRangeGets"),
            n(&rs, "bankPackGets"),
            n(&rs, "bankBytesRead") as f64 / f64::from(1 << 20),
        ));
    }
    println!(
        "\n{pods} pods, best of {runs}; {} requests passed the forwarder\n",
        proxy.requests()
    );
    println!(
        "| bank | protect | checkpoints verify --all | restore --dry-run --original-volumes |"
    );
    println!("|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    if let [l, s] = times.as_slice() {
        println!(
            "| swift / local | | {:.2}x | {:.2}x |",
            s.0 / l.0,
            s.1 / l.1
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut sizes = Vec::new();
    let mut runs = 2;
    let mut delay = Duration::from_millis(20);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().context("a flag without its value");
        match a.as_str() {
            "--pods" => sizes.push(value()?.parse::<usize>()?),
            "--runs" => runs = value()?.parse()?,
            "--delay-ms" => delay = Duration::from_millis(value()?.parse()?),
            other => bail!("unknown argument {other} (--pods N, --runs R, --delay-ms D)"),
        }
    }
    if sizes.is_empty() {
        sizes.push(20_000);
    }
    let swift = std::env::var("PODBANK_TEST_SWIFT")
        .context("set PODBANK_TEST_SWIFT to the Swift rig's proxy, e.g. http://127.0.0.1:8080")?;
    println!("{}", machine());
    for pods in sizes {
        bench(pods, runs, &swift, delay).await?;
    }
    Ok(())
}
