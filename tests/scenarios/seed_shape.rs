//! The seeder writes what kube-apiserver writes: the same envelope and, at the object,
//! metadata and spec levels, at least the fields a real API server stored for the same kind
//! of object (shared/testdata/apiserver-v1.32).

use std::collections::BTreeSet;

use podbank::codec::{parse_plain, wire};
use podbank_seed::{self as seed, SeedPlan};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/fixtures/apiserver-v1.32/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Field numbers present at the object level, in metadata (1) and in spec (2).
fn shape(value: &[u8]) -> [BTreeSet<u32>; 3] {
    let obj = parse_plain("shape", value.to_vec()).expect("decodes");
    let raw = obj.object_bytes();
    let top = wire::parse(raw).expect("object");
    let numbers =
        |fields: &[wire::Field<'_>]| fields.iter().map(|f| f.number).collect::<BTreeSet<_>>();
    let sub = |n: u32| {
        top.iter()
            .find(|f| f.number == n)
            .map(|f| numbers(&wire::parse(f.value).expect("submessage")))
            .unwrap_or_default()
    };
    [numbers(&top), sub(1), sub(2)]
}

#[test]
fn seeded_objects_have_the_shape_of_real_api_server_output() {
    let plan = SeedPlan::default();
    let objects = seed::pod_objects(&plan, 0); // web-0: a pod with a Cinder CSI claim
    let find = |prefix: &str| {
        objects
            .iter()
            .find(|o| o.key.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}"))
            .value
            .clone()
    };
    let pairs = [
        ("pods_demo_web-with-pvc.pb", find("/registry/pods/")),
        (
            "persistentvolumeclaims_demo_data-pvc.pb",
            find("/registry/persistentvolumeclaims/"),
        ),
        (
            "persistentvolumes_pvc-3f1c2a9e-8b7d-4e21-9a6f-0c5d7e8b1a24.pb",
            find("/registry/persistentvolumes/"),
        ),
    ];
    for (name, seeded) in pairs {
        let real = fixture(name);
        // Same envelope bytes up to the raw object: magic, typeMeta.
        assert_eq!(&seeded[..4], b"k8s\0");
        let real_obj = parse_plain(name, real.clone()).expect("fixture");
        let seeded_obj = parse_plain(name, seeded.clone()).expect("seeded");
        assert_eq!(real_obj.api_version(), seeded_obj.api_version());
        assert_eq!(real_obj.kind(), seeded_obj.kind());
        let (r, s) = (shape(&real), shape(&seeded));
        for (level, (rl, sl)) in ["object", "metadata", "spec"]
            .iter()
            .zip(r.iter().zip(s.iter()))
        {
            let missing: Vec<&u32> = rl.difference(sl).collect();
            assert!(missing.is_empty(), "{name}: the seeder leaves out {level} fields {missing:?} that kube-apiserver wrote");
        }
    }
}

/// The metadata every stored object starts with (field 1 of every kind's message).
#[derive(Clone, PartialEq, prost::Message)]
struct WithMeta {
    #[prost(message, optional, tag = "1")]
    metadata: Option<k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
}

fn metadata_of(key: &str, value: &[u8]) -> k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    use prost::Message;
    let obj = parse_plain(key, value.to_vec()).expect("decodes");
    WithMeta::decode(obj.object_bytes())
        .expect("object message")
        .metadata
        .unwrap_or_else(|| panic!("{key}: no metadata"))
}

fn resource_of(kind: &str) -> &'static str {
    podbank::codec::ResourceKind::from_kind(kind)
        .unwrap_or_else(|| panic!("unknown owner kind {kind}"))
        .resource()
}

/// Every reference of a seeded pod resolves: its Namespace, its owners (with their uids, up
/// to the top), its ConfigMaps, Secrets and ServiceAccount; and every workload kind is there.
#[test]
fn a_seeded_cluster_is_whole() {
    use k8s_pb::api::core::v1 as core;
    use prost::Message;
    use std::collections::BTreeMap;

    let plan = SeedPlan {
        pods: 120,
        namespaces: 3,
        ..SeedPlan::default()
    };
    let objects: BTreeMap<String, Vec<u8>> =
        seed::generate(&plan).map(|o| (o.key, o.value)).collect();
    let pods: Vec<(&String, &Vec<u8>)> = objects
        .iter()
        .filter(|(k, _)| k.starts_with("/registry/pods/"))
        .collect();
    assert_eq!(pods.len(), 120, "--pods keeps its meaning: pods in all");

    let exists = |resource: &str, ns: &str, name: &str| {
        let key = if ns.is_empty() {
            format!("/registry/{resource}/{name}")
        } else {
            format!("/registry/{resource}/{ns}/{name}")
        };
        assert!(
            objects.contains_key(&key),
            "{key} is referenced but not seeded"
        );
        key
    };
    let mut top_kinds = BTreeMap::<String, usize>::new();
    for (key, value) in pods {
        let obj = parse_plain(key, value.clone()).expect("pod");
        let pod = core::Pod::decode(obj.object_bytes()).expect("pod message");
        let meta = pod.metadata.expect("metadata");
        let ns = meta.namespace.clone().expect("namespace");
        exists("namespaces", "", &ns);
        let spec = pod.spec.expect("spec");
        exists(
            "serviceaccounts",
            &ns,
            spec.service_account_name
                .as_deref()
                .expect("service account"),
        );
        for v in &spec.volumes {
            if let Some(cm) = v.volume_source.as_ref().and_then(|s| s.config_map.as_ref()) {
                let name = cm
                    .local_object_reference
                    .as_ref()
                    .and_then(|r| r.name.clone());
                exists("configmaps", &ns, &name.expect("configMap name"));
            }
        }
        for e in spec.containers.iter().flat_map(|c| &c.env) {
            let Some(from) = &e.value_from else { continue };
            if let Some(s) = &from.secret_key_ref {
                let name = s
                    .local_object_reference
                    .as_ref()
                    .and_then(|r| r.name.clone());
                exists("secrets", &ns, &name.expect("secret name"));
            }
            if let Some(c) = &from.config_map_key_ref {
                let name = c
                    .local_object_reference
                    .as_ref()
                    .and_then(|r| r.name.clone());
                exists("configmaps", &ns, &name.expect("configMap name"));
            }
        }
        // The owner chain, uid by uid, to the top.
        let mut owners = meta.owner_references.clone();
        let mut top = "Pod (bare)".to_string();
        while let Some(o) = owners.pop() {
            assert_eq!(o.controller, Some(true), "{key}: {o:?}");
            let kind = o.kind.clone().expect("kind");
            let owner_key = exists(resource_of(&kind), &ns, o.name.as_deref().expect("name"));
            let owner_meta = metadata_of(&owner_key, &objects[&owner_key]);
            assert_eq!(
                owner_meta.uid, o.uid,
                "{key}: the uid of its owner {owner_key}"
            );
            assert_eq!(owner_meta.namespace.as_deref(), Some(ns.as_str()));
            top = kind;
            owners.extend(owner_meta.owner_references);
        }
        *top_kinds.entry(top).or_default() += 1;
    }
    for kind in ["Deployment", "StatefulSet", "CronJob", "Pod (bare)"] {
        assert!(
            top_kinds.get(kind).is_some_and(|n| *n > 0),
            "no pod of a {kind}: {top_kinds:?}"
        );
    }
    // Cinder CSI and in-tree Cinder volumes.
    let pvs: Vec<String> = objects
        .iter()
        .filter(|(k, _)| k.starts_with("/registry/persistentvolumes/"))
        .map(|(k, v)| {
            let obj = parse_plain(k, v.clone()).expect("pv");
            let pv = core::PersistentVolume::decode(obj.object_bytes()).expect("pv message");
            let src = pv
                .spec
                .and_then(|s| s.persistent_volume_source)
                .expect("source");
            match (src.csi, src.cinder) {
                (Some(csi), _) => csi.driver.unwrap_or_default(),
                (_, Some(_)) => "in-tree cinder".into(),
                _ => "other".into(),
            }
        })
        .collect();
    assert!(
        pvs.iter().any(|d| d == "cinder.csi.openstack.org"),
        "{pvs:?}"
    );
    assert!(pvs.iter().any(|d| d == "in-tree cinder"), "{pvs:?}");
}

/// Every closure row `pods dependents` shows for a seeded pod of each workload is found in
/// etcd, the owners up to the top among them; the table shows volumes and closure apart.
#[test]
fn dependents_of_seeded_pods_find_their_whole_closure() {
    use crate::support::etcd::TestEtcd;
    use serde_json::Value;

    let server = TestEtcd::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let etcd = server.connect().await;
        let plan = SeedPlan {
            pods: 50,
            namespaces: 5,
            ..SeedPlan::default()
        };
        seed::write(&etcd, seed::generate(&plan))
            .await
            .expect("seed");
    });
    let run = |args: &[&str]| {
        let out = std::process::Command::new(crate::support::podbank_bin())
            .args(args)
            .env("PODBANK_ETCD_SERVERS", &server.url)
            .env_remove("PODBANK_CONFIG")
            .output()
            .expect("run podbank");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // (pod, the types of its owners, top last)
    let cases: [(&str, &[&str]); 5] = [
        ("ns-0/web-0", &["StatefulSet"]),
        ("ns-1/api-1", &["StatefulSet"]),
        ("ns-2/worker-2", &["Job", "CronJob"]),
        ("ns-3/db-3", &["ReplicaSet", "Deployment"]),
        ("ns-4/cache-9", &[]),
    ];
    for (pod, owners) in cases {
        let v: Value =
            serde_json::from_str(&run(&["pods", "dependents", pod, "-o", "json"])).expect("json");
        let closure = v["closure"].as_array().expect("closure");
        for row in closure {
            assert_eq!(row["status"], "protected", "{pod}: {row}");
        }
        let types = |relation: &str| -> Vec<String> {
            closure
                .iter()
                .filter(|r| r["relation"] == relation)
                .map(|r| r["type"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        let mut want: Vec<String> = owners
            .iter()
            .map(|k| format!("OS::Kubernetes::{k}"))
            .collect();
        want.sort();
        let mut got = types("owner");
        got.sort();
        assert_eq!(got, want, "{pod}: owners");
        for relation in ["configmap", "secret", "serviceaccount", "namespace"] {
            assert!(
                !types(relation).is_empty(),
                "{pod}: no {relation} row in {closure:?}"
            );
        }
    }
    // Two tables: the volumes', then the closure's, each with its own header.
    let table = run(&["pods", "dependents", "ns-3/db-3"]);
    let blocks: Vec<&str> = table.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{table}");
    assert!(blocks[0].starts_with("VOLUME"), "{table}");
    assert!(blocks[1].starts_with("NEEDS"), "{table}");
    assert!(!blocks[1].contains("no:"), "{table}");
    assert!(blocks[1].contains("OS::Kubernetes::Deployment"), "{table}");
}
