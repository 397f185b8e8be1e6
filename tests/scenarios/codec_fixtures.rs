//! Every protobuf fixture decodes, and says the same as the JSON beside it.
//!
//! Fixtures: `tests/data/fixtures/kubernetes/<release>/core.v1.<Kind>.{pb,json}` (the
//! round-trip data Kubernetes keeps per API release; `HEAD` is newer than `k8s-pb`) and
//! `tests/data/fixtures/apiserver-v1.32/<resource>_<ns>_<name>.{pb,json}` (real etcd
//! values). Folders are discovered, so a new release folder is tested without edits here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_pb::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeSource, Pod, VolumeSource,
};
use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use podbank::codec::{encode_envelope, Decoder, Encoding, ResourceKind, StorageKey};
use podbank::resources::{ClaimInfo, PodInfo, VolumeInfo};
use serde_json::Value;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fixtures")
}

/// `kubernetes/*/` and `apiserver-v1.32/`.
fn fixture_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(testdata().join("kubernetes"))
        .expect("tests/data/fixtures/kubernetes exists next to this checkout")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.push(testdata().join("apiserver-v1.32"));
    dirs
}

fn pb_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pb"))
        .collect();
    files.sort();
    files
}

/// What both sides must agree on for one volume.
#[derive(Debug, PartialEq, Eq)]
struct VolumeSummary {
    name: String,
    sources: BTreeSet<String>,
    claim_name: Option<String>,
    cinder_volume_id: Option<String>,
    csi_driver: Option<String>,
    csi_volume_handle: Option<String>,
}

/// What both sides must agree on for one object.
#[derive(Debug, Default, PartialEq, Eq)]
struct Summary {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    labels: BTreeMap<String, String>,
    owner_uids: Vec<String>,
    finalizers: Vec<String>,
    images: Vec<String>,
    volumes: Vec<VolumeSummary>,
    pvc_volume_name: Option<String>,
    pv_claim_ref: Option<(String, String)>,
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

fn meta_summary(m: Option<&ObjectMeta>) -> Summary {
    let Some(m) = m else {
        return Summary::default();
    };
    Summary {
        name: non_empty(m.name.as_deref()),
        namespace: non_empty(m.namespace.as_deref()),
        uid: non_empty(m.uid.as_deref()),
        labels: m.labels.clone(),
        owner_uids: m
            .owner_references
            .iter()
            .map(|o| o.uid.clone().unwrap_or_default())
            .collect(),
        finalizers: m.finalizers.clone(),
        ..Summary::default()
    }
}

fn set(pairs: &[(&str, bool)]) -> BTreeSet<String> {
    pairs
        .iter()
        .filter(|(_, present)| *present)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// JSON names of the sources set in a pod volume.
fn pb_volume_sources(v: &VolumeSource) -> BTreeSet<String> {
    set(&[
        ("hostPath", v.host_path.is_some()),
        ("emptyDir", v.empty_dir.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("secret", v.secret.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("rbd", v.rbd.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("cinder", v.cinder.is_some()),
        ("cephfs", v.cephfs.is_some()),
        ("flocker", v.flocker.is_some()),
        ("downwardAPI", v.downward_api.is_some()),
        ("fc", v.fc.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("configMap", v.config_map.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("projected", v.projected.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("storageos", v.storageos.is_some()),
        ("csi", v.csi.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("image", v.image.is_some()),
    ])
}

const PV_SOURCE_NAMES: [&str; 22] = [
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "nfs",
    "rbd",
    "iscsi",
    "cinder",
    "cephfs",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

fn pb_pv_sources(s: &PersistentVolumeSource) -> BTreeSet<String> {
    set(&[
        ("gcePersistentDisk", s.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", s.aws_elastic_block_store.is_some()),
        ("hostPath", s.host_path.is_some()),
        ("glusterfs", s.glusterfs.is_some()),
        ("nfs", s.nfs.is_some()),
        ("rbd", s.rbd.is_some()),
        ("iscsi", s.iscsi.is_some()),
        ("cinder", s.cinder.is_some()),
        ("cephfs", s.cephfs.is_some()),
        ("fc", s.fc.is_some()),
        ("flocker", s.flocker.is_some()),
        ("flexVolume", s.flex_volume.is_some()),
        ("azureFile", s.azure_file.is_some()),
        ("vsphereVolume", s.vsphere_volume.is_some()),
        ("quobyte", s.quobyte.is_some()),
        ("azureDisk", s.azure_disk.is_some()),
        ("photonPersistentDisk", s.photon_persistent_disk.is_some()),
        ("portworxVolume", s.portworx_volume.is_some()),
        ("scaleIO", s.scale_io.is_some()),
        ("local", s.local.is_some()),
        ("storageos", s.storageos.is_some()),
        ("csi", s.csi.is_some()),
    ])
}

fn pb_summary(kind: ResourceKind, object: &podbank::codec::StoredObject) -> Summary {
    match kind {
        ResourceKind::Pod => {
            let pod: Pod = object.decode_protobuf().expect("decodes as v1.Pod");
            let mut s = meta_summary(pod.metadata.as_ref());
            if let Some(spec) = &pod.spec {
                s.images = spec
                    .containers
                    .iter()
                    .chain(&spec.init_containers)
                    .filter_map(|c| c.image.clone())
                    .chain(
                        spec.ephemeral_containers
                            .iter()
                            .filter_map(|c| c.ephemeral_container_common.as_ref()?.image.clone()),
                    )
                    .collect();
                s.volumes = spec
                    .volumes
                    .iter()
                    .map(|v| {
                        let src = v.volume_source.clone().unwrap_or_default();
                        VolumeSummary {
                            name: v.name.clone().unwrap_or_default(),
                            sources: pb_volume_sources(&src),
                            claim_name: src
                                .persistent_volume_claim
                                .as_ref()
                                .and_then(|p| p.claim_name.clone()),
                            cinder_volume_id: src.cinder.as_ref().and_then(|c| c.volume_id.clone()),
                            csi_driver: src.csi.as_ref().and_then(|c| c.driver.clone()),
                            csi_volume_handle: None,
                        }
                    })
                    .collect();
            }
            s
        }
        ResourceKind::PersistentVolume => {
            let pv: PersistentVolume = object
                .decode_protobuf()
                .expect("decodes as v1.PersistentVolume");
            let mut s = meta_summary(pv.metadata.as_ref());
            if let Some(spec) = &pv.spec {
                let src = spec.persistent_volume_source.clone().unwrap_or_default();
                s.volumes = vec![VolumeSummary {
                    name: String::new(),
                    sources: pb_pv_sources(&src),
                    claim_name: None,
                    cinder_volume_id: src.cinder.as_ref().and_then(|c| c.volume_id.clone()),
                    csi_driver: src.csi.as_ref().and_then(|c| c.driver.clone()),
                    csi_volume_handle: src.csi.as_ref().and_then(|c| c.volume_handle.clone()),
                }];
                s.pv_claim_ref = spec.claim_ref.as_ref().map(|r| {
                    (
                        r.namespace.clone().unwrap_or_default(),
                        r.name.clone().unwrap_or_default(),
                    )
                });
            }
            s
        }
        ResourceKind::PersistentVolumeClaim => {
            let pvc: PersistentVolumeClaim = object
                .decode_protobuf()
                .expect("decodes as v1.PersistentVolumeClaim");
            let mut s = meta_summary(pvc.metadata.as_ref());
            s.pvc_volume_name = pvc
                .spec
                .as_ref()
                .and_then(|s| non_empty(s.volume_name.as_deref()));
            s
        }
        other => panic!("the fixtures hold no {other:?}"),
    }
}

fn str_at(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    non_empty(cur.as_str())
}

fn json_summary(kind: ResourceKind, doc: &Value) -> Summary {
    let meta = &doc["metadata"];
    let mut s = Summary {
        name: str_at(meta, &["name"]),
        namespace: str_at(meta, &["namespace"]),
        uid: str_at(meta, &["uid"]),
        labels: serde_json::from_value(meta.get("labels").cloned().unwrap_or(Value::Null))
            .unwrap_or_default(),
        owner_uids: meta["ownerReferences"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|o| str_at(o, &["uid"]).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default(),
        finalizers: serde_json::from_value(meta.get("finalizers").cloned().unwrap_or(Value::Null))
            .unwrap_or_default(),
        ..Summary::default()
    };
    let spec = &doc["spec"];
    match kind {
        ResourceKind::Pod => {
            for list in ["containers", "initContainers", "ephemeralContainers"] {
                for c in spec[list].as_array().into_iter().flatten() {
                    if let Some(image) = c["image"].as_str() {
                        s.images.push(image.to_string());
                    }
                }
            }
            for v in spec["volumes"].as_array().into_iter().flatten() {
                let obj = v.as_object().expect("volume is an object");
                s.volumes.push(VolumeSummary {
                    name: str_at(v, &["name"]).unwrap_or_default(),
                    sources: obj.keys().filter(|k| *k != "name").cloned().collect(),
                    claim_name: str_at(v, &["persistentVolumeClaim", "claimName"]),
                    cinder_volume_id: str_at(v, &["cinder", "volumeID"]),
                    csi_driver: str_at(v, &["csi", "driver"]),
                    csi_volume_handle: None,
                });
            }
        }
        ResourceKind::PersistentVolume => {
            s.volumes = vec![VolumeSummary {
                name: String::new(),
                sources: PV_SOURCE_NAMES
                    .iter()
                    .filter(|n| spec.get(**n).is_some())
                    .map(|n| n.to_string())
                    .collect(),
                claim_name: None,
                cinder_volume_id: str_at(spec, &["cinder", "volumeID"]),
                csi_driver: str_at(spec, &["csi", "driver"]),
                csi_volume_handle: str_at(spec, &["csi", "volumeHandle"]),
            }];
            s.pv_claim_ref = spec.get("claimRef").map(|r| {
                (
                    str_at(r, &["namespace"]).unwrap_or_default(),
                    str_at(r, &["name"]).unwrap_or_default(),
                )
            });
        }
        ResourceKind::PersistentVolumeClaim => {
            s.pvc_volume_name = str_at(spec, &["volumeName"]);
        }
        other => panic!("the fixtures hold no {other:?}"),
    }
    s
}

#[test]
fn every_fixture_folder_has_protobuf_values() {
    let dirs = fixture_dirs();
    assert!(
        dirs.len() >= 5,
        "expected 4 releases + apiserver-v1.32, found {dirs:?}"
    );
    for dir in &dirs {
        assert!(
            !pb_files(dir).is_empty(),
            "{} has no .pb fixture",
            dir.display()
        );
    }
}

#[test]
fn every_pb_fixture_decodes_and_matches_its_json() {
    let decoder = Decoder::new(None);
    let mut checked = 0;
    for dir in fixture_dirs() {
        for pb in pb_files(&dir) {
            let what = pb.display().to_string();
            let json_path = pb.with_extension("json");
            let doc: Value = serde_json::from_slice(
                &std::fs::read(&json_path)
                    .unwrap_or_else(|e| panic!("{}: {e}", json_path.display())),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
            let kind_name = doc["kind"].as_str().unwrap_or_default();
            let kind = ResourceKind::from_kind(kind_name)
                .unwrap_or_else(|| panic!("{what}: unexpected kind {kind_name:?}"));
            let key = StorageKey::new(
                kind,
                doc["metadata"]["namespace"].as_str(),
                doc["metadata"]["name"].as_str().unwrap_or("unnamed"),
            )
            .to_key("/registry");

            let value = std::fs::read(&pb).unwrap_or_else(|e| panic!("{what}: {e}"));
            let object = decoder
                .decode(key.as_bytes(), &value)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(object.encoding(), Encoding::Protobuf, "{what}");
            assert_eq!(object.kind(), kind_name, "{what}");
            assert_eq!(
                Some(object.api_version()),
                doc["apiVersion"].as_str(),
                "{what}"
            );
            assert_eq!(object.plain(), value.as_slice(), "{what}");

            let from_pb = pb_summary(kind, &object);
            let from_json = json_summary(kind, &doc);
            assert_eq!(from_pb, from_json, "{what}");
            assert!(
                from_pb.name.is_some() && from_pb.uid.is_some(),
                "{what}: empty summary"
            );
            if kind == ResourceKind::Pod {
                assert!(
                    !from_pb.images.is_empty() && !from_pb.volumes.is_empty(),
                    "{what}"
                );
            }

            // podbank's own summaries (slim protobuf views) read the same as the JSON.
            let json_object = decoder
                .decode(key.as_bytes(), &serde_json::to_vec(&doc).expect("json"))
                .unwrap_or_else(|e| panic!("{what} as JSON: {e}"));
            match kind {
                ResourceKind::Pod => assert_eq!(
                    PodInfo::from_object(&key, &object).expect("pod summary"),
                    PodInfo::from_object(&key, &json_object).expect("pod summary from JSON"),
                    "{what}"
                ),
                ResourceKind::PersistentVolumeClaim => assert_eq!(
                    ClaimInfo::from_object(&key, &object).expect("claim summary"),
                    ClaimInfo::from_object(&key, &json_object).expect("claim summary from JSON"),
                    "{what}"
                ),
                ResourceKind::PersistentVolume => assert_eq!(
                    VolumeInfo::from_object(&key, &object).expect("volume summary"),
                    VolumeInfo::from_object(&key, &json_object).expect("volume summary from JSON"),
                    "{what}"
                ),
                other => panic!("the fixtures hold no {other:?}"),
            }

            // The envelope is byte-for-byte what encode_envelope writes.
            assert_eq!(
                encode_envelope(object.api_version(), object.kind(), object.object_bytes()),
                value,
                "{what}: envelope differs from encode_envelope"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} fixtures checked");
}

#[test]
fn the_real_apiserver_objects_have_the_expected_volume_chain() {
    let dir = testdata().join("apiserver-v1.32");
    let decoder = Decoder::new(None);
    let read = |name: &str| std::fs::read(dir.join(name)).expect("fixture");
    let pod: Pod = decoder
        .decode(
            b"/registry/pods/demo/web-with-pvc",
            &read("pods_demo_web-with-pvc.pb"),
        )
        .and_then(|o| o.decode_protobuf())
        .expect("pod");
    let claim = pod.spec.as_ref().and_then(|s| {
        s.volumes.iter().find_map(|v| {
            v.volume_source
                .as_ref()?
                .persistent_volume_claim
                .as_ref()?
                .claim_name
                .clone()
        })
    });
    assert_eq!(claim.as_deref(), Some("data-pvc"));
    let pvc: PersistentVolumeClaim = decoder
        .decode(
            b"/registry/persistentvolumeclaims/demo/data-pvc",
            &read("persistentvolumeclaims_demo_data-pvc.pb"),
        )
        .and_then(|o| o.decode_protobuf())
        .expect("pvc");
    let volume_name = pvc.spec.and_then(|s| s.volume_name).expect("bound");
    let pv: PersistentVolume = decoder
        .decode(
            format!("/registry/persistentvolumes/{volume_name}").as_bytes(),
            &read(&format!("persistentvolumes_{volume_name}.pb")),
        )
        .and_then(|o| o.decode_protobuf())
        .expect("pv");
    let csi = pv
        .spec
        .and_then(|s| s.persistent_volume_source)
        .and_then(|s| s.csi)
        .expect("csi");
    assert_eq!(csi.driver.as_deref(), Some("cinder.csi.openstack.org"));
    assert!(csi.volume_handle.is_some_and(|h| !h.is_empty()));
}

/// Truncated and bit-flipped values give errors, never panics, in decode and in edits.
#[test]
fn damaged_values_never_panic() {
    use rand::{Rng, SeedableRng};
    let plain = std::fs::read(testdata().join("kubernetes/HEAD/core.v1.Pod.pb")).expect("fixture");
    let decoder = Decoder::new(None);
    let edits = podbank::codec::ObjectEdits {
        name: Some("x".into()),
        drop_server_fields: true,
        ..Default::default()
    };
    let mut errors = 0;
    for len in (0..plain.len()).step_by(7) {
        let cut = &plain[..len];
        if decoder.decode(b"/registry/pods/a/b", cut).is_err() {
            errors += 1;
        }
        let _ = podbank::codec::edit_object(ResourceKind::Pod, cut, &edits);
    }
    assert!(
        errors > plain.len() / 7 - 2,
        "almost every truncation is an error ({errors})"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..2000 {
        let mut damaged = plain.clone();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..damaged.len());
            damaged[i] ^= 1 << rng.gen_range(0..8);
        }
        if let Ok(o) = decoder.decode(b"/registry/pods/a/b", &damaged) {
            let _ = o.decode_protobuf::<Pod>();
        }
        let _ = podbank::codec::edit_object(ResourceKind::Pod, &damaged, &edits);
    }
}
