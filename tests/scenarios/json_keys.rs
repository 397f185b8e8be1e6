//! One naming convention for every `-o json` output: each object key, at every depth, is
//! lowerCamelCase (see the README's "Output" paragraph). Run over every read command
//! against a real etcd and a local bank.

use serde_json::Value;

use crate::support::etcd::TestEtcd;
use crate::support::workload::Podbank;

/// Fields whose values are maps keyed by data, not by podbank: their keys are not
/// checked (their values are, where they are objects of ours).
/// - `labels`: Kubernetes label keys (`app.kubernetes.io/name`, `pod-template-hash`).
/// - `annotations`: Kubernetes annotation keys, likewise.
/// - `parameters`: Karbor's protect/restore parameters (`backup_name`, `restore_name`):
///   Karbor's schema, which podbank takes as it is.
/// - `newResources`: old id -> new id of a restore.
const DATA_MAPS: [&str; 4] = ["labels", "annotations", "parameters", "newResources"];

fn is_camel(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// Every key of `v` (recursively) that is not lowerCamelCase, with its path.
fn bad_keys(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let here = format!("{path}.{k}");
                if !is_camel(k) {
                    out.push(here.clone());
                }
                if !DATA_MAPS.contains(&k.as_str()) {
                    bad_keys(x, &here, out);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|x| bad_keys(x, &format!("{path}[]"), out)),
        _ => {}
    }
}

/// Runs `podbank <args> -o json`, requires success, and checks every key; returns the
/// document and how many keys it held.
async fn checked(pb: &Podbank, args: &[&str]) -> (Value, usize) {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let run = pb.ok(&all).await;
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("podbank {args:?}: not JSON ({e}): {}", run.stdout));
    let mut bad = Vec::new();
    bad_keys(&doc, "", &mut bad);
    assert!(
        bad.is_empty(),
        "podbank {args:?}: keys not camelCase: {bad:?}"
    );
    (doc.clone(), count_keys(&doc))
}

fn count_keys(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.len() + m.values().map(count_keys).sum::<usize>(),
        Value::Array(a) => a.iter().map(count_keys).sum(),
        _ => 0,
    }
}

#[test]
fn the_checker_catches_snake_case_and_skips_data_maps() {
    let doc = serde_json::json!({
        "okKey": {"volume_counts": 1},
        "labels": {"app.kubernetes.io/name": "x"},
        "items": [{"backup_name": "b", "parameters": {"backup_name": "b"}}],
    });
    let mut bad = Vec::new();
    bad_keys(&doc, "", &mut bad);
    bad.sort();
    assert_eq!(bad, vec![".items[].backup_name", ".okKey.volume_counts"]);
}

#[tokio::test]
async fn every_read_command_names_its_keys_in_camel_case() {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = Podbank::without_cinder(&etcd.url, dir.path());
    checked(&pb, &["demo", "seed", "--pods", "30"]).await;

    let (pods, _) = checked(&pb, &["pods", "list"]).await;
    let first = &pods["items"][0];
    let pod = format!(
        "{}/{}",
        first["namespace"].as_str().expect("namespace"),
        first["name"].as_str().expect("name")
    );
    checked(&pb, &["pods", "show", &pod]).await;
    checked(&pb, &["pods", "dependents", &pod]).await;

    let (taken, _) = checked(
        &pb,
        &[
            "protect",
            "--backup-name",
            "keys",
            "--description",
            "keys",
            "--no-volume-backups",
        ],
    )
    .await;
    let id = taken[0]["id"].as_str().expect("checkpoint id").to_string();
    let (list, _) = checked(&pb, &["checkpoints", "list"]).await;
    // The names the issue found mixed, now in one convention.
    assert_eq!(list[0]["backupName"], "keys", "{list}");
    assert!(list[0]["volumeCounts"]["backedUp"].is_u64(), "{list}");
    let (show, keys) = checked(&pb, &["checkpoints", "show", &id]).await;
    assert!(keys > 50, "checkpoints show held only {keys} keys: {show}");
    checked(&pb, &["checkpoints", "verify", &id]).await;
    checked(&pb, &["checkpoints", "verify", "--all"]).await;
    checked(&pb, &["restores", "list"]).await;
    let (stats, _) = checked(&pb, &["bank", "stats"]).await;
    assert!(
        stats["logicalBytes"].as_u64().expect("logicalBytes") > 0,
        "{stats}"
    );
    checked(&pb, &["bank", "gc"]).await;
    checked(&pb, &["bank", "repair"]).await;

    let config = dir.path().join("podbank.yaml");
    std::fs::write(
        &config,
        "agent:\n  plans:\n    - name: nightly\n      schedule: \"0 1 * * *\"\n      \
         selector: app=web\n      options: { backup_name: nightly, description: d }\n      \
         retention: { keep_last: 3, max_age: 30d }\n",
    )
    .expect("config");
    let config = config.to_str().expect("utf8");
    let (plans, _) = checked(&pb, &["plans", "list", "--config", config]).await;
    // Config input keeps its snake_case; the output is camelCase.
    assert_eq!(plans["items"][0]["retention"]["keepLast"], 3, "{plans}");

    checked(&pb, &["delete", &id]).await;
}
