//! The README's first command, `scripts/quickstart.sh`, run as a newcomer runs it (with the
//! binary this test run built, against a test etcd): every step succeeds, the seeded pods'
//! closure is found, the restore dry run plans a workload with its Cinder volume, and the
//! object counts of protect and verify agree.

use std::process::Command;

use crate::support::etcd::TestEtcd;

/// The number after `prefix` in `text`'s first line that contains it.
fn number_after(text: &str, prefix: &str) -> usize {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix:?} in the output:\n{text}"));
    text[at + prefix.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {prefix:?}"))
}

/// The output line of a restore plan row for `source`.
fn plan_row<'a>(text: &'a str, kind: &str, source: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(kind) && l.contains(source))
        .unwrap_or_else(|| panic!("no {kind} row for {source} in the plan:\n{text}"))
}

#[test]
fn the_quickstart_shows_the_closure_a_volume_in_the_plan_and_counts_that_agree() {
    let etcd = TestEtcd::start();
    let demo = tempfile::tempdir().expect("demo dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/quickstart.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("PODBANK_QUICKSTART_BIN", crate::support::podbank_bin())
        .env("PODBANK_ETCD_SERVERS", &etcd.url)
        .env("PODBANK_DEMO_DIR", demo.path())
        .env_remove("PODBANK_CONFIG")
        .env_remove("PODBANK_BANK")
        .output()
        .expect("run the quickstart");
    // What a newcomer sees: both streams (progress and notes go to stderr).
    let stdout = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "quickstart failed:\n{stdout}");
    assert!(stdout.contains("==> done"), "{stdout}");

    // `pods dependents`: each closure row found, none "not found".
    for (needs, kind, name) in [
        ("owner", "OS::Kubernetes::StatefulSet", "ns-0/web"),
        ("configmap", "OS::Kubernetes::ConfigMap", "ns-0/web-config"),
        (
            "serviceaccount",
            "OS::Kubernetes::ServiceAccount",
            "ns-0/web",
        ),
        ("namespace", "OS::Kubernetes::Namespace", "ns-0"),
        ("owner", "OS::Kubernetes::ReplicaSet", "ns-3/db-"),
        ("owner", "OS::Kubernetes::Deployment", "ns-3/db"),
    ] {
        let row = stdout
            .lines()
            .find(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() >= 5 && cols[0] == needs && cols[1] == kind && cols[2].starts_with(name)
            })
            .unwrap_or_else(|| panic!("no closure row {needs} {kind} {name}:\n{stdout}"));
        assert!(row.split_whitespace().nth(4) == Some("yes"), "{row}");
    }
    assert!(!stdout.contains("not found in etcd"), "{stdout}");
    // A Cinder volume among ns-3/db-3's volumes, found through its claim and PV.
    assert!(
        stdout.lines().any(|l| l.starts_with("data")
            && l.contains("OS::Cinder::Volume")
            && l.contains("db-3-data")),
        "{stdout}"
    );

    // The restore dry run plans the StatefulSet top-down with its claim, PV and volume.
    for (kind, source) in [
        ("OS::Kubernetes::Namespace", "namespace:ns-0"),
        ("OS::Kubernetes::StatefulSet", "statefulset:ns-0/web"),
        (
            "OS::Kubernetes::PersistentVolumeClaim",
            "pvc:ns-0/data-web-0",
        ),
        ("OS::Kubernetes::PersistentVolume", "pv:pvc-"),
    ] {
        let row = plan_row(&stdout, kind, source);
        assert!(row.contains("planned"), "{row}");
    }
    let volume = plan_row(&stdout, "OS::Cinder::Volume", "");
    assert!(volume.contains("--original-volumes"), "{volume}");
    let pod = plan_row(&stdout, "OS::Kubernetes::Pod", "pod:ns-0/web-0");
    assert!(pod.contains("by-controller"), "{pod}");
    assert!(stdout.contains("dry run: nothing restored"), "{stdout}");
    assert!(!stdout.contains("objects created"), "{stdout}");

    // One object count: what protect stored is what verify names as resources.
    let stored = number_after(&stdout, "objects stored:");
    let verified = number_after(&stdout, "object(s) (");
    assert_eq!(stored, verified, "protect and verify disagree:\n{stdout}");
    assert!(stdout.contains(": no problems"), "{stdout}");
}
