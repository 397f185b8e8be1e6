//! What the end-to-end benchmarks share: a real etcd on free loopback ports, the release
//! `podbank` binary next to the example, and a child process measured on its own (wall time
//! and peak RSS). Included by each benchmark as `mod common;`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use podbank::etcd::{Etcd, EtcdConfig};

/// An etcd process with its data in a temp dir; killed on drop.
pub struct EtcdProcess {
    child: std::process::Child,
    /// Its client URL.
    pub url: String,
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

/// Start etcd on two free loopback ports and wait (at most 20 s) until it answers.
pub async fn start_etcd() -> anyhow::Result<EtcdProcess> {
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
#[allow(dead_code)] // not every benchmark runs a command to its end
pub struct Measured {
    /// Wall time, spawn to exit.
    pub seconds: f64,
    /// Peak RSS of the child alone, MB.
    pub max_rss_mb: f64,
    /// Its CPU time, user and system, s.
    #[allow(dead_code)] // not every benchmark reports it
    pub cpu_seconds: f64,
    /// What it printed on stdout.
    pub stdout: String,
}

/// Run `cmd` to its end; fails unless it exits 0. Blocking (it waits for the child).
#[allow(dead_code)] // not every benchmark runs a command to its end
pub fn run_measured(cmd: &mut Command) -> anyhow::Result<Measured> {
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
        cpu_seconds: [usage.ru_utime, usage.ru_stime]
            .iter()
            .map(|t| t.tv_sec as f64 + t.tv_usec as f64 / 1e6)
            .sum(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
    })
}

/// The release `podbank` binary next to this example.
pub fn podbank_bin() -> anyhow::Result<PathBuf> {
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

/// One line on the machine: CPUs, RAM, etcd's version.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!(
        "{cpus} CPU(s), {} MB RAM, etcd {}",
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
            .and_then(|s| s
                .lines()
                .next()
                .map(|l| l.trim_start_matches("etcd Version:").trim().to_string()))
            .unwrap_or_default()
    )
}
