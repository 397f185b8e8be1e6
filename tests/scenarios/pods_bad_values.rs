//! A listing goes on past values that cannot be read, naming each (key + reason); values
//! encrypted at rest are read with kube-apiserver's EncryptionConfiguration.

use std::process::Command;

use crate::support::etcd::TestEtcd;
use podbank::codec::EncryptionConfig;
use podbank_seed::{self as seed, SeedPlan};
use serde_json::Value;

const ENCRYPTION: &str = r#"
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ["pods"]
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
      - aesgcm:
          keys:
            - name: gcm1
              secret: ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=
      - secretbox:
          keys:
            - name: box1
              secret: YWxsIHRoYXQgZ2xpdHRlcnMgaXMgbm90IGdvbGQuLi4=
      - identity: {}
"#;

fn config_with_first(provider: &str) -> EncryptionConfig {
    // Reorder so that `provider` comes first: kube-apiserver writes with the first one.
    let doc: serde_yaml::Value = serde_yaml::from_str(ENCRYPTION).expect("yaml");
    let mut doc = doc;
    let providers = doc["resources"][0]["providers"]
        .as_sequence_mut()
        .expect("providers");
    let pos = providers
        .iter()
        .position(|p| p.get(provider).is_some())
        .expect("provider present");
    let p = providers.remove(pos);
    providers.insert(0, p);
    EncryptionConfig::from_yaml(&serde_yaml::to_string(&doc).expect("yaml")).expect("config")
}

fn list(etcd: &TestEtcd, extra: &[&str]) -> (i32, Value, String) {
    let out = Command::new(crate::support::podbank_bin())
        .args(["pods", "list", "-o", "json"])
        .args(extra)
        .env("PODBANK_ETCD_SERVERS", &etcd.url)
        .output()
        .expect("run podbank");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_values_are_reported_and_the_rest_is_listed() {
    let server = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let enc_path = dir.path().join("encryption.yaml");
    std::fs::write(&enc_path, ENCRYPTION).expect("write");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let plan = SeedPlan {
        pods: 20,
        ..SeedPlan::default()
    };
    rt.block_on(async {
        let etcd = server.connect().await;
        seed::write(&etcd, seed::generate(&plan))
            .await
            .expect("seed");
        let mut kv = etcd.client().kv_client();
        let good = seed::pod_objects(&plan, 0)
            .into_iter()
            .find(|o| o.key.starts_with("/registry/pods/"))
            .expect("a pod")
            .value;
        let mut wrong_offset = b"xx".to_vec();
        wrong_offset.extend_from_slice(&good);
        // Encrypted values, each written with its own provider.
        let enc = |provider: &str, key: &str| {
            config_with_first(provider)
                .encrypt(key.as_bytes(), "pods", &good)
                .expect("encrypt")
        };
        let bad: Vec<(String, Vec<u8>)> = vec![
            (
                "/registry/pods/bad/garbage".into(),
                b"\x00\x01garbage bytes".to_vec(),
            ),
            (
                "/registry/pods/bad/truncated".into(),
                good[..good.len() / 2].to_vec(),
            ),
            ("/registry/pods/bad/wrong-offset".into(), wrong_offset),
            (
                "/registry/pods/bad/kms".into(),
                b"k8s:enc:kms:v2:vault:\x0a\x10whatever".to_vec(),
            ),
            (
                "/registry/pods/enc/aescbc".into(),
                enc("aescbc", "/registry/pods/enc/aescbc"),
            ),
            (
                "/registry/pods/enc/aesgcm".into(),
                enc("aesgcm", "/registry/pods/enc/aesgcm"),
            ),
            (
                "/registry/pods/enc/secretbox".into(),
                enc("secretbox", "/registry/pods/enc/secretbox"),
            ),
        ];
        for (k, v) in bad {
            kv.put(k, v, None).await.expect("put");
        }
    });

    // Without the EncryptionConfiguration: 20 good pods listed, 7 problems named.
    let (code, v, stderr) = list(&server, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(20));
    let problems = v["problems"].as_array().expect("problems");
    let reason = |key: &str| -> String {
        problems
            .iter()
            .find(|p| p["key"] == key)
            .and_then(|p| p["reason"].as_str())
            .unwrap_or_else(|| panic!("no problem reported for {key}: {problems:?}"))
            .to_string()
    };
    let garbage = reason("/registry/pods/bad/garbage");
    let truncated = reason("/registry/pods/bad/truncated");
    let offset = reason("/registry/pods/bad/wrong-offset");
    let kms = reason("/registry/pods/bad/kms");
    let cbc = reason("/registry/pods/enc/aescbc");
    // Each cause has its own message, and each names the key.
    let all = [&garbage, &truncated, &offset, &kms, &cbc];
    for (i, a) in all.iter().enumerate() {
        assert!(a.contains("/registry/pods/"), "{a}");
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert!(truncated.contains("protobuf"), "{truncated}");
    assert!(offset.contains("offset"), "{offset}");
    assert!(kms.to_lowercase().contains("kms"), "{kms}");
    assert!(cbc.contains("--encryption-provider-config"), "{cbc}");
    for key in ["garbage", "truncated", "wrong-offset", "kms", "aescbc"] {
        let line = stderr
            .lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("no warning for {key}: {stderr}"));
        assert!(
            line.starts_with("warning: cannot read /registry/pods/"),
            "{line}"
        );
    }

    // With it: the three encrypted pods decrypt and are listed; the broken ones still are not.
    let (code, v, stderr) = list(
        &server,
        &[
            "--encryption-provider-config",
            enc_path.to_str().expect("path"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(23), "{stderr}");
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(4));
    let names: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    // The encrypted copies are the same pod (web-0) under other keys.
    assert_eq!(
        names.iter().filter(|n| **n == "web-0").count(),
        4,
        "{names:?}"
    );
}
