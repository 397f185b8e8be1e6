//! Encrypted against plain bank: one etcd seeded with a whole cluster, protected into a plain
//! and an encrypted local bank, then `checkpoints verify --all` and
//! `restore --dry-run --original-volumes --export` from each, side by side (best of
//! `--runs`, each a child process of the release binary). Prints a Markdown table per size.
//!
//! ```text
//! cargo build --release --bin podbank --example bench_sealed
//! target/release/examples/bench_sealed --pods 20000 [--runs 2]
//! ```

// Tests, examples and benchmarks: a panic with the value is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use common::{machine, podbank_bin, run_measured, start_etcd, Measured};
use podbank::etcd::{Etcd, EtcdConfig};
use podbank_seed::{self as seed, SeedPlan};

fn podbank(etcd: &str, bank: &Path, key: Option<&Path>, args: &[&str]) -> anyhow::Result<Command> {
    let mut cmd = Command::new(podbank_bin()?);
    cmd.env("PODBANK_ETCD_SERVERS", etcd)
        .env("PODBANK_BANK", bank)
        .env("PODBANK_REPORT_PEAK_RSS", "1")
        .args(args);
    if let Some(k) = key {
        cmd.env("PODBANK_BANK_KEY_FILE", k);
    }
    Ok(cmd)
}

fn best(
    runs: usize,
    mut make: impl FnMut() -> anyhow::Result<Command>,
) -> anyhow::Result<Measured> {
    let mut best: Option<Measured> = None;
    for _ in 0..runs.max(1) {
        let m = run_measured(&mut make()?)?;
        if best.as_ref().is_none_or(|b| m.seconds < b.seconds) {
            best = Some(m);
        }
    }
    best.ok_or_else(|| anyhow::anyhow!("no run"))
}

async fn bench(pods: usize, runs: usize) -> anyhow::Result<()> {
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
    let work = tempfile::tempdir()?;
    let key = work.path().join("bank.key");
    run_measured(&mut podbank(
        &etcd.url,
        &work.path().join("unused"),
        None,
        &["bank", "keygen", &key.display().to_string()],
    )?)?;
    let mut rows = Vec::new();
    let mut times = Vec::new();
    for (label, key) in [("plain", None), ("encrypted", Some(key.as_path()))] {
        let bank = work.path().join(label);
        let protect = run_measured(&mut podbank(
            &etcd.url,
            &bank,
            key,
            &[
                "protect",
                "--backup-name",
                "bench",
                "--description",
                "sealed benchmark",
                "--no-volume-backups",
                "-o",
                "json",
            ],
        )?)?;
        let view: serde_json::Value =
            serde_json::from_str(&protect.stdout).context("protect output is not JSON")?;
        let Some(id) = view
            .get(0)
            .and_then(|c| c.get("id"))
            .and_then(|i| i.as_str())
        else {
            bail!("no checkpoint id in protect output");
        };
        let id = id.to_string();
        let verify = best(runs, || {
            podbank(&etcd.url, &bank, key, &["checkpoints", "verify", "--all"])
        })?;
        let export = work.path().join(format!("{label}-export"));
        let restore = best(runs, || {
            let _ = std::fs::remove_dir_all(&export);
            podbank(
                &etcd.url,
                &bank,
                key,
                &[
                    "restore",
                    &id,
                    "--dry-run",
                    "--original-volumes",
                    "--export",
                    &export.display().to_string(),
                ],
            )
        })?;
        times.push((protect.seconds, verify.seconds, restore.seconds));
        rows.push(format!(
            "| {label} | {:.2} s, {:.0} MB | {:.2} s, {:.0} MB | {:.2} s, {:.0} MB |",
            protect.seconds,
            protect.max_rss_mb,
            verify.seconds,
            verify.max_rss_mb,
            restore.seconds,
            restore.max_rss_mb
        ));
    }
    println!("\n{pods} pods, local banks, best of {runs}\n");
    println!(
        "| bank | protect | checkpoints verify --all | restore --dry-run --original-volumes |"
    );
    println!("|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    if let [p, e] = times.as_slice() {
        println!(
            "| encrypted / plain | {:.2}x | {:.2}x | {:.2}x |",
            e.0 / p.0,
            e.1 / p.1,
            e.2 / p.2
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut sizes = Vec::new();
    let mut runs = 2;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().context("a flag without its value");
        match a.as_str() {
            "--pods" => sizes.push(value()?.parse::<usize>()?),
            "--runs" => runs = value()?.parse()?,
            other => bail!("unknown argument {other} (--pods N, --runs R)"),
        }
    }
    if sizes.is_empty() {
        sizes.push(20_000);
    }
    println!("{}", machine());
    for pods in sizes {
        bench(pods, runs).await?;
    }
    Ok(())
}
