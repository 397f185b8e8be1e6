//! Agent benchmark: `podbank agent` (the release binary, as a child process) over a real
//! etcd seeded with a whole cluster, answering Karbor's protectable instances a page at a
//! time, alone and under 32 concurrent clients. Prints Markdown tables.
//!
//! ```text
//! cargo build --release --bin podbank --example bench_agent
//! target/release/examples/bench_agent --pods 2000 --pods 20000 --pods 100000 --load 20000
//! ```
//!
//! Per size: the time of one page of 100 instances (with dependents and closure) at the
//! start, the middle and the end of the pod keys. Under load (`--load N`: at N pods), 32
//! clients for `--seconds` (15) page instances (limit 100, following the next links), list
//! checkpoints and read `/metrics`, one route per client in turn; every answer is counted
//! by status, latencies of the 200s give p50/p99, and the agent's peak RSS is read from
//! `/proc/<pid>/status` (VmHWM) before it is stopped. Loopback only.

// Tests, examples and benchmarks: a panic with the value is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use common::{machine, podbank_bin, start_etcd, EtcdProcess};
use podbank::agent::karbor::types::PROVIDER_ID;
use podbank::etcd::{Etcd, EtcdConfig};
use podbank_seed::{self as seed, SeedPlan};
use tokio::sync::Mutex;

const TOKEN: &str = "bench-token-0123456789";
const PROJECT: &str = "0f7e1a2b3c4d4e5f8a9b0c1d2e3f4a5b";
const CLIENTS: usize = 32;

struct AgentProcess {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AgentProcess {
    /// Peak RSS so far, MB.
    fn peak_rss_mb(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

async fn seed_cluster(etcd: &EtcdProcess, pods: usize) -> anyhow::Result<()> {
    let config = EtcdConfig {
        servers: vec![etcd.url.clone()],
        ..EtcdConfig::default()
    };
    let client = Etcd::connect(&config).await?;
    let plan = SeedPlan {
        pods,
        namespaces: 50,
        ..SeedPlan::default()
    };
    let t = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    let mut written = 0;
    for o in seed::generate(&plan) {
        batch.push(o);
        if batch.len() == 10_000 {
            written += seed::write(&client, std::mem::take(&mut batch)).await?;
        }
    }
    written += seed::write(&client, batch).await?;
    eprintln!(
        "seeded {pods} pods ({written} keys) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn start_agent(etcd: &EtcdProcess) -> anyhow::Result<AgentProcess> {
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(podbank_bin()?)
        .env("PODBANK_ETCD_SERVERS", &etcd.url)
        .env("PODBANK_BANK", dir.path().join("bank"))
        .args([
            "agent",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--token-file",
            &token.display().to_string(),
            "--no-volume-backups",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start podbank agent")?;
    let agent = AgentProcess {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{}/healthz", agent.base)).send().await {
            if r.status().is_success() {
                return Ok(agent);
            }
        }
        if Instant::now() > deadline {
            bail!("the agent did not answer /healthz within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn instances_url(base: &str, limit: usize, marker: Option<&str>) -> String {
    let mut u =
        format!("{base}/v1/{PROJECT}/protectables/OS::Kubernetes::Pod/instances?limit={limit}");
    if let Some(m) = marker {
        u.push_str("&marker=");
        u.push_str(m);
    }
    u
}

/// One request: status, seconds, and the next page's marker for instance listings.
async fn fetch(http: &reqwest::Client, url: &str) -> (u16, f64, Option<String>, usize) {
    let t = Instant::now();
    let resp = http.get(url).header("X-Auth-Token", TOKEN).send().await;
    let Ok(resp) = resp else {
        return (0, t.elapsed().as_secs_f64(), None, 0);
    };
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    let secs = t.elapsed().as_secs_f64();
    let next = body["instances_links"][0]["href"]
        .as_str()
        .and_then(|h| h.split("marker=").nth(1))
        .map(|m| m.split('&').next().unwrap_or_default().to_string());
    let n = body["instances"].as_array().map_or(0, Vec::len);
    (status, secs, next, n)
}

/// Markers for pages at the start, the middle and the end of the pods (found by paging
/// through them 1000 at a time).
async fn markers(http: &reqwest::Client, base: &str) -> Vec<(String, String)> {
    let mut ids: Vec<String> = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let url = instances_url(base, 1000, marker.as_deref());
        let resp = http.get(&url).header("X-Auth-Token", TOKEN).send().await;
        let Ok(resp) = resp else { break };
        let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        ids.extend(
            body["instances"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["id"].as_str().map(String::from)),
        );
        match body["instances_links"][0]["href"].as_str() {
            Some(_) => marker = ids.last().cloned(),
            None => break,
        }
    }
    let mut out = vec![("start".to_string(), String::new())];
    if ids.len() > 200 {
        out.push(("middle".into(), ids[ids.len() / 2].clone()));
        out.push(("end".into(), ids[ids.len() - 101].clone()));
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn page_times(pods: usize) -> anyhow::Result<Vec<String>> {
    let etcd = start_etcd().await?;
    seed_cluster(&etcd, pods).await?;
    let agent = start_agent(&etcd).await?;
    let http = reqwest::Client::new();
    let mut rows = Vec::new();
    for (place, marker) in markers(&http, &agent.base).await {
        let marker = (!marker.is_empty()).then_some(marker.as_str());
        let url = instances_url(&agent.base, 100, marker);
        // Once to warm the connection, then the median of nine.
        let (status, _, _, _) = fetch(&http, &url).await;
        if status != 200 {
            bail!("{url}: HTTP {status}");
        }
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..9 {
            let (_, secs, _, count) = fetch(&http, &url).await;
            times.push(secs);
            n = count;
        }
        times.sort_by(f64::total_cmp);
        rows.push(format!(
            "| {pods} | {place} | {n} | {:.1} | {:.1} |",
            percentile(&times, 0.5) * 1000.0,
            times.last().copied().unwrap_or(0.0) * 1000.0
        ));
    }
    rows.push(format!(
        "| {pods} | agent peak RSS | | {:.0} MB | |",
        agent.peak_rss_mb()
    ));
    Ok(rows)
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    ok_secs: Vec<f64>,
}

async fn load(pods: usize, seconds: u64) -> anyhow::Result<Vec<String>> {
    let etcd = start_etcd().await?;
    seed_cluster(&etcd, pods).await?;
    let agent = start_agent(&etcd).await?;
    let base = agent.base.clone();
    let routes = ["instances", "checkpoints", "metrics"];
    let tallies: Arc<Mutex<BTreeMap<&'static str, Tally>>> = Arc::default();
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let route = routes[c % routes.len()];
        let base = base.clone();
        let tallies = Arc::clone(&tallies);
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut marker: Option<String> = None;
            while Instant::now() < until {
                let url = match route {
                    "instances" => instances_url(&base, 100, marker.as_deref()),
                    "checkpoints" => {
                        format!("{base}/v1/{PROJECT}/providers/{PROVIDER_ID}/checkpoints")
                    }
                    _ => format!("{base}/metrics"),
                };
                let (status, secs, next, _) = if route == "metrics" {
                    let t = Instant::now();
                    let s = match http.get(&url).send().await {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            let _ = r.bytes().await;
                            s
                        }
                        Err(_) => 0,
                    };
                    (s, t.elapsed().as_secs_f64(), None, 0)
                } else {
                    fetch(&http, &url).await
                };
                if route == "instances" {
                    marker = if status == 200 { next } else { marker };
                }
                let mut t = tallies.lock().await;
                let tally = t.entry(route).or_default();
                *tally.statuses.entry(status).or_default() += 1;
                if status == 200 {
                    tally.ok_secs.push(secs);
                }
                drop(t);
                if status == 503 || status == 429 {
                    // As a client honouring Retry-After would, shortened for the bench.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let wall = started.elapsed().as_secs_f64();
    let rss = agent.peak_rss_mb();
    let mut rows = Vec::new();
    let mut t = tallies.lock().await;
    for route in routes {
        let tally = t.entry(route).or_default();
        tally.ok_secs.sort_by(f64::total_cmp);
        let total: u64 = tally.statuses.values().sum();
        let statuses: Vec<String> = tally
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        rows.push(format!(
            "| {route} | {total} | {:.0} | {:.1} | {:.1} | {} |",
            total as f64 / wall,
            percentile(&tally.ok_secs, 0.5) * 1000.0,
            percentile(&tally.ok_secs, 0.99) * 1000.0,
            statuses.join(", ")
        ));
    }
    rows.push(format!(
        "\n{CLIENTS} clients, {wall:.1} s, {pods} pods; agent peak RSS {rss:.0} MB"
    ));
    Ok(rows)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut sizes = Vec::new();
    let mut load_at = None;
    let mut seconds = 15u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().context("a flag without its value");
        match a.as_str() {
            "--pods" => sizes.push(value()?.parse::<usize>()?),
            "--load" => load_at = Some(value()?.parse::<usize>()?),
            "--seconds" => seconds = value()?.parse()?,
            other => bail!("unknown argument {other} (--pods N, --load N, --seconds S)"),
        }
    }
    if sizes.is_empty() && load_at.is_none() {
        sizes = vec![2_000, 20_000];
        load_at = Some(20_000);
    }
    println!("{}\n", machine());
    if !sizes.is_empty() {
        println!(
            "One page of 100 instances (Karbor's API, with dependents and closure), median of 9\n"
        );
        println!("| pods | page at | instances | median ms | max ms |");
        println!("|---|---|---|---|---|");
        for pods in sizes {
            for row in page_times(pods).await? {
                println!("{row}");
            }
        }
    }
    if let Some(pods) = load_at {
        println!("\nUnder load\n");
        println!("| route | requests | req/s | p50 ms (200s) | p99 ms (200s) | statuses |");
        println!("|---|---|---|---|---|---|");
        for row in load(pods, seconds).await? {
            println!("{row}");
        }
    }
    Ok(())
}
