//! `podbank pods list | show | dependents` against a real etcd seeded with 1 000 pods.

use std::process::Command;

use crate::support::etcd::TestEtcd;
use podbank_seed::{self as seed, SeedPlan};
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn podbank(etcd: &TestEtcd, args: &[&str]) -> Run {
    let out = Command::new(crate::support::podbank_bin())
        .args(args)
        .env("PODBANK_ETCD_SERVERS", &etcd.url)
        .env_remove("PODBANK_CONFIG")
        .output()
        .expect("run podbank");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(etcd: &TestEtcd, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let run = podbank(etcd, &all);
    assert_eq!(run.code, 0, "podbank {args:?} failed: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("json output")
}

fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["namespace"].as_str().expect("namespace"),
                i["name"].as_str().expect("name")
            )
        })
        .collect();
    v.sort();
    v
}

const APPS: [&str; 5] = ["web", "api", "worker", "db", "cache"];

/// The pods the seeder wrote for which `keep(index)` holds, as `ns/name`.
fn expected(pods: usize, keep: impl Fn(usize) -> bool) -> Vec<String> {
    let mut v: Vec<String> = (0..pods)
        .filter(|i| keep(*i))
        .map(|i| format!("ns-{}/{}-{i}", i % 5, APPS[i % 5]))
        .collect();
    v.sort();
    v
}

fn seeded(pods: usize) -> TestEtcd {
    let server = TestEtcd::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let etcd = server.connect().await;
        let plan = SeedPlan {
            pods,
            namespaces: 5,
            ..SeedPlan::default()
        };
        seed::write(&etcd, seed::generate(&plan))
            .await
            .expect("seed");
    });
    server
}

#[test]
fn list_and_selectors_filter_exactly() {
    let etcd = seeded(1000);
    let n = 1000;
    let all = json(&etcd, &["pods", "list"]);
    assert_eq!(names(&all), expected(n, |_| true));
    assert!(all["problems"].as_array().expect("problems").is_empty());
    assert!(all["revision"].as_i64().expect("revision") > 0);

    let ns = json(&etcd, &["pods", "list", "-n", "ns-2"]);
    assert_eq!(names(&ns), expected(n, |i| i % 5 == 2));
    let two = json(&etcd, &["pods", "list", "-n", "ns-1,ns-3"]);
    assert_eq!(names(&two), expected(n, |i| i % 5 == 1 || i % 5 == 3));

    type Keep = Box<dyn Fn(usize) -> bool>;
    let cases: Vec<(&str, Keep)> = vec![
        ("app=web", Box::new(|i| i % 5 == 0)),
        ("app==web", Box::new(|i| i % 5 == 0)),
        ("app!=web", Box::new(|i| i % 5 != 0)),
        ("app in (db,cache)", Box::new(|i| i % 5 >= 3)),
        (
            "app notin (db,cache),tier=frontend",
            Box::new(|i| i % 5 < 3 && i % 2 == 0),
        ),
        ("release", Box::new(|_| true)),
        ("!release", Box::new(|_| false)),
        ("!nolabel,release=r2", Box::new(|i| i % 3 == 2)),
    ];
    for (selector, keep) in cases {
        let got = json(&etcd, &["pods", "list", "-l", selector]);
        assert_eq!(names(&got), expected(n, keep), "selector {selector}");
    }
    let by_name = json(
        &etcd,
        &["pods", "list", "--field-selector", "metadata.name=db-3"],
    );
    assert_eq!(names(&by_name), vec!["ns-3/db-3".to_string()]);
    let combined = json(
        &etcd,
        &[
            "pods",
            "list",
            "-n",
            "ns-0",
            "-l",
            "tier=backend",
            "--field-selector",
            "status.phase!=Pending",
        ],
    );
    assert_eq!(
        names(&combined),
        expected(n, |i| i % 5 == 0 && i % 2 == 1 && i % 97 != 5)
    );

    // The table has the promised columns and one row per pod.
    let table = podbank(&etcd, &["pods", "list", "-n", "ns-4"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    let mut lines = table.stdout.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "NAME",
            "UID",
            "NODE",
            "PHASE",
            "VOLUMES",
            "AGE"
        ]
    );
    assert_eq!(lines.count(), 200);
    let yaml = podbank(&etcd, &["pods", "list", "-n", "ns-4", "-o", "yaml"]);
    let parsed: serde_yaml::Value = serde_yaml::from_str(&yaml.stdout).expect("yaml output");
    assert_eq!(parsed["items"].as_sequence().map(|s| s.len()), Some(200));
}

fn dependents(etcd: &TestEtcd, pod: &str) -> Vec<Value> {
    let v = json(etcd, &["pods", "dependents", pod]);
    v["dependents"].as_array().expect("dependents").clone()
}

fn data_volume(deps: &[Value]) -> Value {
    deps.iter()
        .find(|d| d["podVolume"] == "data")
        .cloned()
        .expect("a data volume")
}

#[test]
fn dependents_resolve_every_volume_kind() {
    let etcd = seeded(60);
    let plan = SeedPlan::default();
    let cinder_id =
        |ns: &str, name: &str| seed::uuid_from(&format!("{}/cinder/{ns}/{name}", plan.seed));

    // Cinder CSI claim -> PV -> volumeHandle.
    let d = data_volume(&dependents(&etcd, "ns-0/web-0"));
    assert_eq!(d["status"], "protectable");
    assert_eq!(d["driver"], "cinder-csi");
    assert_eq!(d["claim"], "data-web-0");
    assert_eq!(d["type"], "OS::Cinder::Volume");
    assert_eq!(d["volumeId"], cinder_id("ns-0", "web-0"));

    // In-tree cinder PV.
    let d = data_volume(&dependents(&etcd, "ns-1/api-1"));
    assert_eq!(d["driver"], "cinder-in-tree");
    assert_eq!(d["volumeId"], cinder_id("ns-1", "api-1"));

    // Inline cinder volume.
    let d = data_volume(&dependents(&etcd, "ns-2/worker-2"));
    assert_eq!(d["driver"], "inline-cinder");
    assert_eq!(d["volumeId"], cinder_id("ns-2", "worker-2"));
    assert!(d["claim"].is_null());

    // Generic ephemeral volume: claim <pod>-<volume>.
    let d = data_volume(&dependents(&etcd, "ns-3/db-3"));
    assert_eq!(d["claim"], "db-3-data");
    assert_eq!(d["driver"], "cinder-csi");
    assert_eq!(d["volumeId"], cinder_id("ns-3", "db-3"));

    // emptyDir and configMap are listed as not protectable, with the reason.
    let deps = dependents(&etcd, "ns-4/cache-4");
    assert_eq!(deps.len(), 2);
    let reasons: Vec<&str> = deps
        .iter()
        .map(|d| d["reason"].as_str().expect("reason"))
        .collect();
    assert_eq!(
        reasons,
        [
            "emptyDir: no backing volume",
            "configMap: no backing volume"
        ]
    );
    assert!(deps
        .iter()
        .all(|d| d["status"] == "not-protectable" && d["type"].is_null()));

    // A claim that does not exist.
    let d = data_volume(&dependents(&etcd, "ns-1/api-11"));
    assert_eq!(d["status"], "not-protectable");
    assert_eq!(d["reason"], "PVC data-api-11 not found");

    // A claim bound to a volume of another CSI driver.
    let d = data_volume(&dependents(&etcd, "ns-0/web-20"));
    let reason = d["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("PV pvc-")
            && reason.ends_with("is not a Cinder volume (driver ebs.csi.aws.com)"),
        "{reason}"
    );

    // Table form names the volume type and the reasons.
    let table = podbank(&etcd, &["pods", "dependents", "ns-0/web-20"]);
    assert!(table.stdout.contains("no: PV pvc-"), "{}", table.stdout);
}

#[test]
fn show_by_name_and_by_uid() {
    let etcd = seeded(20);
    let by_name = json(&etcd, &["pods", "show", "ns-0/web-5"]);
    assert_eq!(by_name["name"], "web-5");
    assert_eq!(by_name["type"], "OS::Kubernetes::Pod");
    let uid = by_name["uid"].as_str().expect("uid").to_string();
    assert_eq!(uid, seed::uuid_from("1/pod/ns-0/web-5"));
    let by_uid = json(&etcd, &["pods", "show", &uid]);
    assert_eq!(by_uid["name"], "web-5");
    assert_eq!(by_uid["namespace"], "ns-0");
    assert!(by_uid["volumes"].as_array().is_some_and(|v| v.len() == 3));
    // `web-5` must not also match `web-50`-like names: exact-name prefixes are filtered.
    let table = podbank(&etcd, &["pods", "show", "ns-0/web-1"]);
    assert_eq!(table.code, 1, "web-1 does not exist (index 1 is api-1)");
}

#[test]
fn errors_are_one_line_with_the_right_exit_code() {
    let etcd = seeded(5);
    let missing = podbank(&etcd, &["pods", "show", "ns-0/nope"]);
    assert_eq!(missing.code, 1);
    assert_eq!(missing.stderr.lines().count(), 1, "{}", missing.stderr);
    assert!(missing
        .stderr
        .starts_with("error: pod ns-0/nope not found at etcd revision"));

    let bad = podbank(&etcd, &["pods", "list", "-l", "app in web"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("invalid label selector"),
        "{}",
        bad.stderr
    );

    let bad_field = podbank(&etcd, &["pods", "list", "--field-selector", "spec.foo=bar"]);
    assert_eq!(bad_field.code, 2);
    assert!(
        bad_field.stderr.contains("unsupported field"),
        "{}",
        bad_field.stderr
    );

    let bad_arg = podbank(&etcd, &["pods", "show", "a/b/c"]);
    assert_eq!(bad_arg.code, 2);

    // A namespace that cannot exist is refused as usage, naming it, before etcd is read.
    let bad_ns = podbank(&etcd, &["pods", "list", "-n", "ns-0,Shop_1"]);
    assert_eq!(bad_ns.code, 2, "{}", bad_ns.stderr);
    assert!(
        bad_ns.stderr.contains("namespace \"Shop_1\" is invalid"),
        "{}",
        bad_ns.stderr
    );

    let port = crate::support::etcd::free_port();
    let out = Command::new(crate::support::podbank_bin())
        .args([
            "pods",
            "list",
            "--etcd-servers",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn settings_come_from_flags_then_environment_then_config_file() {
    let etcd = seeded(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let dead = format!("http://127.0.0.1:{}", crate::support::etcd::free_port());
    let write = |name: &str, servers: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!("etcd:\n  servers: [\"{servers}\"]\n  page_size: 2\n"),
        )
        .expect("write");
        path
    };
    let good_file = write("good.yaml", &etcd.url);
    let dead_file = write("dead.yaml", &dead);
    let run = |file: &std::path::Path, env: Option<&str>, flag: Option<&str>| {
        let mut cmd = Command::new(crate::support::podbank_bin());
        cmd.args(["pods", "list", "-o", "json", "--config"])
            .arg(file);
        cmd.env_remove("PODBANK_ETCD_SERVERS");
        if let Some(e) = env {
            cmd.env("PODBANK_ETCD_SERVERS", e);
        }
        if let Some(f) = flag {
            cmd.args(["--etcd-servers", f]);
        }
        cmd.output().expect("run").status.code()
    };
    assert_eq!(run(&good_file, None, None), Some(0), "the file alone");
    assert_eq!(
        run(&dead_file, Some(&etcd.url), None),
        Some(0),
        "env over file"
    );
    assert_eq!(
        run(&dead_file, Some(&dead), Some(&etcd.url)),
        Some(0),
        "flag over env"
    );
    assert_eq!(
        run(&good_file, Some(&dead), None),
        Some(1),
        "env over file, the other way"
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "etcd:\n  server: [x]\n").expect("write");
    let out = Command::new(crate::support::podbank_bin())
        .args(["pods", "list", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a bad config file is bad usage");
    assert!(
        err.contains("invalid config file") && err.contains("server"),
        "{err}"
    );
}
