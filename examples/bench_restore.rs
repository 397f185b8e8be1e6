//! Restore benchmark: a checkpoint of N pods restored through the API-server stand-in of the
//! tests (`tests/support/apiserver/`), against plain clients that POST the very same bodies.
//! Prints one Markdown table per size.
//!
//! ```text
//! cargo build --release --bin podbank --example bench_restore
//! target/release/examples/bench_restore --pods 1000 --pods 10000 [--concurrency 32] [--runs 3]
//!     [--pause-controllers]
//! ```
//!
//! Needs `etcd` on the PATH. A real etcd is seeded with the seeder's pods (most with a claim,
//! a PV and a Cinder volume; an emptyDir and a ConfigMap volume each) and protected with the
//! release `podbank` binary (`protect --no-volume-backups`, local bank); restore brings every
//! pod back with `--original-volumes` (its PV and claim name the original Cinder volume: there
//! is no Cinder here), with the objects the seeder gives them (ServiceAccounts, ConfigMaps,
//! Secrets, their Deployments, ReplicaSets, StatefulSets, Jobs...), into namespaces the restore
//! creates. A pod whose owner's controller makes it anew (a CronJob's Job's) is not created by
//! the restore; each row is checked to have created as many objects of each resource as the dry-run's
//! export holds.
//!
//! Then, each against a fresh stand-in hosted in this process, best of `--runs` (the three
//! taking turns):
//! * `podbank restore <checkpoint> --settle 0 --original-volumes --concurrency C` as a child process (wall time;
//!   peak RSS and CPU time of the child alone);
//! * a plain sequential client (`reqwest`, one POST at a time, as `kubectl create -f` does) of
//!   the objects `podbank restore --dry-run --export` writes, in its order, bodies read into
//!   memory before the clock starts;
//! * the same client with C requests in flight (namespaces first, then the rest unordered):
//!   the stand-in's own ceiling.
//!
//! The stand-in (and the plain clients) run in this process, on the same cores as the podbank
//! child: its CPU is in every row. Its controllers scan all it holds after every change, which
//! bounds every client at 10k pods; `--pause-controllers` leaves only its REST front and store.

// Tests, examples and benchmarks: a panic with the value is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

#[allow(dead_code)]
#[path = "../tests/support/apiserver/mod.rs"]
mod apiserver;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use apiserver::FakeApiServer;
use bytes::Bytes;
use common::{podbank_bin, run_measured, start_etcd, Measured};
use futures::{StreamExt, TryStreamExt};
use podbank::apiserver::collection_path;
use podbank::codec::ResourceKind;
use podbank::etcd::{Etcd, EtcdConfig};
use podbank_seed::{self as seed, SeedPlan};
use serde::Deserialize;

/// Namespaces of the seed plan.
const SEED_NAMESPACES: usize = 10;

/// One object of the export's `plan.yaml`.
#[derive(Deserialize)]
struct PlanObject {
    kind: String,
    namespace: String,
    name: String,
    file: String,
    encoding: String,
}

#[derive(Deserialize)]
struct ExportPlan {
    objects: Vec<PlanObject>,
}

/// One POST of the plain clients, ready to send.
struct Request {
    path: String,
    content_type: &'static str,
    body: Bytes,
    namespace_object: bool,
    /// The stand-in's resource of the object.
    resource: &'static str,
    what: String,
}

/// The objects of an export, in its order, with their bodies.
fn read_export(dir: &Path) -> anyhow::Result<Vec<Request>> {
    let plan_file = dir.join("plan.yaml");
    let text = std::fs::read_to_string(&plan_file)
        .with_context(|| format!("cannot read {}", plan_file.display()))?;
    let plan: ExportPlan = serde_yaml::from_str(&text)
        .with_context(|| format!("{} is not an export plan", plan_file.display()))?;
    plan.objects
        .into_iter()
        .map(|o| {
            let kind = ResourceKind::from_kind(&o.kind)
                .ok_or_else(|| anyhow::anyhow!("unknown kind {:?} in plan.yaml", o.kind))?;
            let namespace = (!o.namespace.is_empty()).then_some(o.namespace.as_str());
            let content_type = match o.encoding.as_str() {
                "protobuf" => "application/vnd.kubernetes.protobuf",
                "json" => "application/json",
                other => bail!("unknown encoding {other:?} of {}", o.file),
            };
            let file = dir.join(&o.file);
            let body =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            Ok(Request {
                path: collection_path(kind, namespace),
                content_type,
                body: Bytes::from(body),
                namespace_object: kind == ResourceKind::Namespace,
                resource: kind.api().plural,
                what: format!("{} {}/{}", o.kind, o.namespace, o.name),
            })
        })
        .collect()
}

/// POST one object; anything but a 2xx is an error.
async fn post(client: &reqwest::Client, base: &str, r: &Request) -> anyhow::Result<()> {
    let answer = client
        .post(format!("{base}{}", r.path))
        .header(reqwest::header::CONTENT_TYPE, r.content_type)
        .header(reqwest::header::ACCEPT, "application/json")
        .bearer_auth("test-token")
        .body(r.body.clone())
        .send()
        .await
        .with_context(|| format!("POST {} ({})", r.path, r.what))?;
    let status = answer.status();
    let body = answer
        .bytes()
        .await
        .with_context(|| format!("answer to POST {} ({})", r.path, r.what))?;
    if !status.is_success() {
        bail!(
            "POST {} ({}): {status}: {}",
            r.path,
            r.what,
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// The plain client: every object in order, one at a time (`in_flight` 1), or the namespaces
/// in order and then the rest with `in_flight` requests at once. Returns the wall time.
async fn plain_client(
    api: &FakeApiServer,
    requests: &[Request],
    in_flight: usize,
) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder()
        .build()
        .context("cannot build the HTTP client")?;
    let base = api.url();
    let started = Instant::now();
    if in_flight <= 1 {
        for r in requests {
            post(&client, &base, r).await?;
        }
    } else {
        for r in requests.iter().filter(|r| r.namespace_object) {
            post(&client, &base, r).await?;
        }
        futures::stream::iter(requests.iter().filter(|r| !r.namespace_object))
            .map(|r| post(&client, &base, r))
            .buffer_unordered(in_flight)
            .try_collect::<()>()
            .await?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Run a child to its end off the runtime's threads, so that the stand-in keeps serving.
async fn measure(mut cmd: Command) -> anyhow::Result<Measured> {
    tokio::task::spawn_blocking(move || run_measured(&mut cmd))
        .await
        .context("the measuring thread panicked")?
}

/// A resource of which the stand-in holds fewer objects than `requests` create (namespaces
/// aside), with the two counts. Counted, not named: a restore names each PersistentVolume
/// anew, so the dry-run's PV names are not the restore's.
fn first_short(api: &FakeApiServer, requests: &[Request]) -> Option<(&'static str, usize, usize)> {
    let mut held = std::collections::HashMap::<String, usize>::new();
    for o in api.objects() {
        *held.entry(o.resource).or_default() += 1;
    }
    let mut wanted = std::collections::BTreeMap::<&'static str, usize>::new();
    for r in requests.iter().filter(|r| !r.namespace_object) {
        *wanted.entry(r.resource).or_default() += 1;
    }
    wanted.into_iter().find_map(|(resource, n)| {
        let have = held.get(resource).copied().unwrap_or(0);
        (have < n).then_some((resource, have, n))
    })
}

/// Stop a stand-in that is done with: its controllers would otherwise scan its store every
/// 100 ms for the rest of the run (the task cannot be stopped, only paused).
fn retire(api: &FakeApiServer) {
    api.pause_controllers(true);
}

/// The HTTP requests a stand-in saw, by method and resource (`GET pods/<name>` a get,
/// `GET pods` a list), most first.
fn request_mix(api: &FakeApiServer) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for line in api.http_log() {
        let (method, path) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let rest = match segments.as_slice() {
            ["api", _, rest @ ..] | ["apis", _, _, rest @ ..] => rest,
            other => other,
        };
        let what = match rest {
            ["namespaces", _, resource] => resource.to_string(),
            ["namespaces", _, resource, _] => format!("{resource}/<name>"),
            [resource, _] => format!("{resource}/<name>"),
            [resource] => resource.to_string(),
            _ => path.to_string(),
        };
        *counts.entry(format!("{method} {what}")).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
        .iter()
        .map(|(what, n)| format!("{n} `{what}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row of the table: the best of the runs (wall and CPU time), the highest peak RSS.
struct Row {
    label: String,
    seconds: f64,
    rss_mb: Option<f64>,
    /// The podbank child's user + system time.
    cpu_s: Option<f64>,
    requests: usize,
}

/// A fresh stand-in holding only `default`; with `paused`, its controllers do nothing (it
/// then only serves requests: no garbage collector, no namespace controller).
async fn stand_in(paused: bool) -> FakeApiServer {
    let api = FakeApiServer::start(&[]).await;
    if paused {
        api.pause_controllers(true);
    }
    api
}

async fn bench(
    pods: usize,
    concurrency: usize,
    runs: usize,
    paused: bool,
) -> anyhow::Result<String> {
    let etcd_proc = start_etcd().await?;
    let config = EtcdConfig {
        servers: vec![etcd_proc.url.clone()],
        ..EtcdConfig::default()
    };
    let etcd = Etcd::connect(&config).await?;
    let plan = SeedPlan {
        pods,
        namespaces: SEED_NAMESPACES,
        ..SeedPlan::default()
    };
    let t = Instant::now();
    let written = seed::write(&etcd, seed::generate(&plan)).await?;
    eprintln!(
        "seeded {pods} pods ({written} keys) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let bin = podbank_bin()?;
    let work = tempfile::tempdir()?;
    let bank = work.path().join("bank");
    let podbank = |args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.env("PODBANK_ETCD_SERVERS", &etcd_proc.url)
            .env("PODBANK_REPORT_PEAK_RSS", "1")
            .env("PODBANK_BANK", &bank)
            .args(args);
        cmd
    };
    let protect = measure(podbank(&[
        "protect",
        "--backup-name",
        "bench",
        "--description",
        "restore benchmark",
        "--no-volume-backups",
        "-o",
        "json",
    ]))
    .await?;
    let view: serde_json::Value =
        serde_json::from_str(&protect.stdout).context("protect output is not JSON")?;
    let checkpoint = view
        .get(0)
        .and_then(|c| c.get("id"))
        .and_then(|id| id.as_str())
        .ok_or_else(|| anyhow::anyhow!("no checkpoint id in protect output"))?
        .to_string();
    let protected = view
        .get(0)
        .and_then(|c| c.get("pods"))
        .and_then(|p| p.as_u64())
        .unwrap_or(0);
    if protected != pods as u64 {
        bail!("checkpoint {checkpoint} holds {protected} pods, not {pods}");
    }
    eprintln!(
        "protected {pods} pods as {checkpoint} in {:.2} s",
        protect.seconds
    );

    // The objects restore would create, exactly as it would send them.
    let export = work.path().join("export");
    std::fs::create_dir(&export)?;
    let export_arg = export.display().to_string();
    measure(podbank(&[
        "restore",
        &checkpoint,
        "--dry-run",
        "--original-volumes",
        "--export",
        &export_arg,
    ]))
    .await?;
    let requests = read_export(&export)?;
    let namespaces = requests.iter().filter(|r| r.namespace_object).count();
    let direct_pods = requests.iter().filter(|r| r.resource == "pods").count();
    let body_bytes: usize = requests.iter().map(|r| r.body.len()).sum();

    let concurrency_arg = concurrency.to_string();
    let labels = [
        format!("**podbank restore** (`--settle 0 --concurrency {concurrency}`)"),
        "plain sequential client (one POST at a time, like `kubectl create -f`)".to_string(),
        format!("plain concurrent client ({concurrency} POSTs in flight)"),
    ];
    let mut rows: Vec<Row> = labels
        .into_iter()
        .map(|label| Row {
            label,
            seconds: f64::MAX,
            rss_mb: None,
            cpu_s: None,
            requests: 0,
        })
        .collect();
    let mut last_restore = None;
    // The rows take turns, so that the load of a shared machine falls on all of them.
    for _ in 0..runs {
        // podbank restore, into a fresh stand-in that holds none of the namespaces.
        let api = stand_in(paused).await;
        let kube_dir = tempfile::tempdir()?;
        let kubeconfig = api.write_kubeconfig(kube_dir.path()).display().to_string();
        let restore = measure(podbank(&[
            "restore",
            &checkpoint,
            "--settle",
            "0",
            "--original-volumes",
            "--kubeconfig",
            &kubeconfig,
            "--concurrency",
            &concurrency_arg,
            "-o",
            "json",
        ]))
        .await?;
        let record: serde_json::Value =
            serde_json::from_str(&restore.stdout).context("restore output is not JSON")?;
        let status = record["status"].as_str().unwrap_or("");
        let restore_id = record["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no restore id in restore output"))?
            .to_string();
        if status != "success" {
            bail!(
                "restore {restore_id} ended {status:?}: {}",
                record["reason"]
            );
        }
        if let Some((resource, have, want)) = first_short(&api, &requests) {
            bail!("restore {restore_id}: the stand-in holds {have} {resource}, not {want}");
        }
        let row = &mut rows[0];
        row.seconds = row.seconds.min(restore.seconds);
        row.rss_mb = Some(row.rss_mb.unwrap_or(0.0).max(restore.max_rss_mb));
        row.cpu_s = Some(row.cpu_s.unwrap_or(f64::MAX).min(restore.cpu_seconds));
        row.requests = api.http_log().len();
        last_restore = Some((restore_id, record, restore.stdout.len(), request_mix(&api)));
        retire(&api);

        for (row, in_flight) in rows[1..].iter_mut().zip([1, concurrency]) {
            let api = stand_in(paused).await;
            let seconds = plain_client(&api, &requests, in_flight).await?;
            if let Some((resource, have, want)) = first_short(&api, &requests) {
                bail!(
                    "{}: the stand-in holds {have} {resource}, not {want}",
                    row.label
                );
            }
            row.seconds = row.seconds.min(seconds);
            row.requests = api.http_log().len();
            retire(&api);
        }
    }
    let (restore_id, record, json_bytes, podbank_mix) =
        last_restore.ok_or_else(|| anyhow::anyhow!("--runs must be at least 1"))?;
    let record_file = bank.join("restores").join(&restore_id);
    let record_bytes = std::fs::metadata(&record_file)
        .with_context(|| format!("cannot find the restore record {}", record_file.display()))?
        .len();
    let record_entries = record["resources"].as_array().map_or(0, Vec::len);

    let sequential = rows[1].seconds;
    let mut out = String::new();
    use std::fmt::Write as _;
    writeln!(
        out,
        "\n### {pods} pods ({} objects created: {namespaces} namespaces, {direct_pods} pods, {} of other kinds, {:.1} MB of request bodies)\n",
        requests.len(),
        requests.len() - namespaces - direct_pods,
        body_bytes as f64 / 1e6
    )?;
    writeln!(
        out,
        "| client | wall s | objects/s | peak RSS MB | CPU s | ratio vs sequential | HTTP requests |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for r in &rows {
        writeln!(
            out,
            "| {} | {:.2} | {:.0} | {} | {} | {:.2}x | {} |",
            r.label,
            r.seconds,
            requests.len() as f64 / r.seconds,
            r.rss_mb.map_or("-".to_string(), |m| format!("{m:.0}")),
            r.cpu_s.map_or("-".to_string(), |c| format!("{c:.2}")),
            sequential / r.seconds,
            r.requests
        )?;
    }
    writeln!(
        out,
        "\nRestore record `{restore_id}`: {record_entries} entries, {:.1} KB in the bank, {:.1} KB as `-o json`.",
        record_bytes as f64 / 1e3,
        json_bytes as f64 / 1e3
    )?;
    let stats = &record["stats"];
    let run_s = stats["runSeconds"].as_f64().unwrap_or(0.0);
    let write_s = stats["recordWriteSeconds"].as_f64().unwrap_or(0.0);
    writeln!(
        out,
        "Record writes (record + journal batches): {}, {:.1} ms, {:.2} % of the restore's {run_s:.2} s; API-server 429s honoured: {}.",
        stats["recordWrites"],
        write_s * 1e3,
        if run_s > 0.0 { 100.0 * write_s / run_s } else { 0.0 },
        stats["throttled"]
    )?;
    writeln!(out, "podbank's requests: {podbank_mix}.")?;
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut sizes = Vec::new();
    let mut concurrency = 32;
    let mut paused = false;
    let mut runs = 3;
    let mut args = std::env::args().skip(1);
    let number = |flag: &str, v: Option<String>| -> anyhow::Result<usize> {
        let v = v.ok_or_else(|| anyhow::anyhow!("{flag} needs a number"))?;
        v.parse::<usize>()
            .with_context(|| format!("{flag} {v:?} is not a number"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pods" => sizes.push(number("--pods", args.next())?),
            "--concurrency" => concurrency = number("--concurrency", args.next())?.max(1),
            "--runs" => runs = number("--runs", args.next())?.max(1),
            "--pause-controllers" => paused = true,
            other => {
                bail!("unknown argument {other:?} (use --pods N, repeatable, --concurrency C, --runs R, --pause-controllers)")
            }
        }
    }
    if sizes.is_empty() {
        sizes = vec![1_000, 10_000];
    }
    println!(
        "podbank restore benchmark: {}; best of {runs} runs; the stand-in's controllers {}",
        common::machine(),
        if paused { "paused" } else { "running" }
    );
    for pods in sizes {
        print!("{}", bench(pods, concurrency, runs, paused).await?);
    }
    Ok(())
}
