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

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use podbank::etcd::{Etcd, EtcdConfig, EtcdError, KeyValue, ScanOptions, ScanSink};
use podbank::seed::{self, SeedPlan};

struct EtcdProcess {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start_etcd() -> anyhow::Result<EtcdProcess> {
    let dir = tempfile::tempdir()?;
    let (client, peer) = (free_port()?, free_port()?);
    let url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new("etcd")
        .args([
            "--data-dir",
            &dir.path().join("data").display().to_string(),
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
            "--initial-cluster",
            &format!("default={peer_url}"),
            "--quota-backend-bytes",
            "8589934592",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start etcd (apt-get install etcd-server)")?;
    let etcd = EtcdProcess {
        child,
        url,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let config = EtcdConfig {
            servers: vec![etcd.url.clone()],
            ..EtcdConfig::default()
        };
        if Etcd::connect(&config).await.is_ok() {
            return Ok(etcd);
        }
        if Instant::now() > deadline {
            bail!("etcd did not answer within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wall time and peak RSS of one child process.
struct Measured {
    seconds: f64,
    max_rss_mb: f64,
    stdout: String,
}

fn run_measured(cmd: &mut Command) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let pid = i32::try_from(child.id())?;
    let read_all = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_thread = read_all(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let err_thread = read_all(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    // wait4 reaps the child and returns its own rusage (peak RSS of that process alone).
    let mut status = 0;
    // SAFETY: rusage is plain data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes into the two out-parameters we own.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    if r < 0 {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let stdout = out_thread
        .join()
        .map_err(|_| anyhow::anyhow!("output thread panicked"))?;
    let stderr = err_thread
        .join()
        .map_err(|_| anyhow::anyhow!("output thread panicked"))?;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    // podbank reports its own VmHWM; ru_maxrss would also count this (big) parent.
    let own_rss_kib = String::from_utf8_lossy(&stderr)
        .lines()
        .find_map(|l| l.strip_prefix("podbank-peak-rss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    Ok(Measured {
        seconds,
        max_rss_mb: own_rss_kib.unwrap_or(usage.ru_maxrss as f64) / 1024.0,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
    })
}

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

fn podbank_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow::anyhow!("cannot find target dir"))?;
    let bin = dir.join("podbank");
    if !bin.exists() {
        bail!(
            "{} missing: cargo build --release --bin podbank",
            bin.display()
        );
    }
    Ok(bin)
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
    let mut written = 0;
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

    let prefixes = [
        "/registry/pods/",
        "/registry/persistentvolumeclaims/",
        "/registry/persistentvolumes/",
    ];
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
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "podbank end-to-end benchmark: {cpus} CPU(s), {} MB RAM, etcd {}",
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next().map(|l| l
                .split_whitespace()
                .nth(1)
                .unwrap_or("0")
                .parse::<u64>()
                .unwrap_or(0)
                / 1024))
            .unwrap_or(0),
        Command::new("etcd")
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.lines().next().map(str::to_string))
            .unwrap_or_default()
    );
    let last = sizes.len().saturating_sub(1);
    for (i, pods) in sizes.iter().enumerate() {
        print!("{}", bench(*pods, i == last, page_size).await?);
    }
    Ok(())
}
