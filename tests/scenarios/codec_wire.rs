//! Lossless restore edits: rename, swap claim names, drop server-set fields, point PVs
//! and PVCs at new volumes — and every other byte stays as stored, including fields
//! newer than `k8s-pb` (the `HEAD` fixtures carry such fields; prost drops them).
//!
//! Each edit is checked twice: k8s-pb decodes the result to the expected values, and a
//! wire-level comparison shows that every field other than the edited ones is
//! byte-identical, in the same order.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_pb::api::core::v1::{
    CinderPersistentVolumeSource, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSource,
    PersistentVolumeSpec, Pod,
};
use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use podbank::codec::wire::{self, Field};
use podbank::codec::{
    edit_object, encode_envelope, parse_plain, CodecError, ObjectEdits, ResourceKind, StorageKey,
    PROTOBUF_MAGIC,
};
use prost::Message;
use serde_json::{json, Value};

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fixtures")
}

fn head(file: &str) -> Vec<u8> {
    let p = testdata().join("kubernetes/HEAD").join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn fields(buf: &[u8]) -> Vec<Field<'_>> {
    wire::parse(buf).expect("well-formed protobuf")
}

/// The payload of the first length-delimited field `number`.
fn sub(buf: &[u8], number: u32) -> &[u8] {
    fields(buf)
        .into_iter()
        .find(|f| f.number == number)
        .map(|f| f.value)
        .unwrap_or_else(|| panic!("no field {number}"))
}

/// All payloads of field `number`.
fn subs(buf: &[u8], number: u32) -> Vec<&[u8]> {
    fields(buf)
        .into_iter()
        .filter(|f| f.number == number)
        .map(|f| f.value)
        .collect()
}

/// Raw bytes (tag included) of every field not in `except`, in order.
fn others<'a>(buf: &'a [u8], except: &[u32]) -> Vec<&'a [u8]> {
    fields(buf)
        .into_iter()
        .filter(|f| !except.contains(&f.number))
        .map(|f| f.raw)
        .collect()
}

fn numbers(buf: &[u8]) -> Vec<u32> {
    fields(buf).iter().map(|f| f.number).collect()
}

/// Every field outside `edited` is byte-identical and in the same order.
fn assert_same_except(what: &str, old: &[u8], new: &[u8], edited: &[u32]) {
    let (a, b) = (others(old, edited), others(new, edited));
    assert_eq!(
        a.len(),
        b.len(),
        "{what}: number of unedited fields differs"
    );
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "{what}: unedited field #{i} changed");
    }
}

/// The object message inside an envelope, checking the envelope's other fields.
fn object_of<'a>(old: &[u8], new: &'a [u8]) -> &'a [u8] {
    assert_eq!(&new[..4], PROTOBUF_MAGIC);
    assert_same_except("envelope", &old[4..], &new[4..], &[2]);
    sub(&new[4..], 2)
}

fn raw_object(plain: &[u8]) -> &[u8] {
    sub(&plain[4..], 2)
}

/// Field numbers of `original` that prost drops on decode + encode.
fn dropped_by_prost<M: Message + Default>(
    original: &[u8],
    pick: impl Fn(&[u8]) -> &[u8],
) -> Vec<u32> {
    let reencoded = M::decode(original).expect("k8s-pb decodes").encode_to_vec();
    let kept = numbers(pick(&reencoded));
    let mut lost: Vec<u32> = numbers(pick(original))
        .into_iter()
        .filter(|n| !kept.contains(n))
        .collect();
    lost.dedup();
    lost
}

const META_SERVER: [u32; 8] = [4, 5, 6, 7, 8, 9, 10, 17];

fn assert_server_fields_gone(meta: &[u8]) {
    let present = numbers(meta);
    for n in META_SERVER {
        assert!(!present.contains(&n), "metadata field {n} not dropped");
    }
}

/// The metadata every edit below expects: old metadata with name changed, server fields
/// cleared and annotations set.
fn expected_meta(old: &ObjectMeta, name: &str, annotations: &[(&str, &str)]) -> ObjectMeta {
    let mut m = old.clone();
    m.name = Some(name.to_string());
    m.uid = None;
    m.resource_version = None;
    m.generation = None;
    m.creation_timestamp = None;
    m.deletion_timestamp = None;
    m.deletion_grace_period_seconds = None;
    m.managed_fields.clear();
    m.self_link = None;
    for (k, v) in annotations {
        m.annotations.insert(k.to_string(), v.to_string());
    }
    m
}

fn pod_edits() -> ObjectEdits {
    ObjectEdits {
        name: Some("restored-pod".into()),
        drop_server_fields: true,
        set_annotations: vec![
            ("annotationsKey".into(), "replaced in place".into()),
            ("podbank.io/checkpoint".into(), "cp-1".into()),
        ],
        pod_claim_renames: BTreeMap::from([("claimNameValue".into(), "restored-claim".into())]),
        pod_clear_node_name: true,
        ..ObjectEdits::default()
    }
}

#[test]
fn prost_round_trip_of_head_loses_fields() {
    let plain = head("core.v1.Pod.pb");
    let raw = raw_object(&plain);
    let reencoded = Pod::decode(raw).unwrap().encode_to_vec();
    assert!(
        reencoded.len() < raw.len(),
        "{} vs {}",
        reencoded.len(),
        raw.len()
    );
    let lost = dropped_by_prost::<Pod>(raw, |o| sub(o, 2));
    assert!(
        !lost.is_empty(),
        "HEAD PodSpec should carry fields k8s-pb does not know"
    );
}

#[test]
fn head_pod_rename_claim_swap_and_server_fields() {
    let old = head("core.v1.Pod.pb");
    let new = edit_object(ResourceKind::Pod, &old, &pod_edits()).unwrap();

    // 1. k8s-pb sees exactly the intended changes.
    let old_pod = Pod::decode(raw_object(&old)).unwrap();
    let new_pod = Pod::decode(raw_object(&new)).unwrap();
    let want_meta = expected_meta(
        old_pod.metadata.as_ref().unwrap(),
        "restored-pod",
        &[
            ("annotationsKey", "replaced in place"),
            ("podbank.io/checkpoint", "cp-1"),
        ],
    );
    assert_eq!(new_pod.metadata.as_ref(), Some(&want_meta));
    let mut want_spec = old_pod.spec.clone().unwrap();
    want_spec.node_name = None;
    for v in &mut want_spec.volumes {
        if let Some(p) = v
            .volume_source
            .as_mut()
            .and_then(|s| s.persistent_volume_claim.as_mut())
        {
            assert_eq!(p.claim_name.as_deref(), Some("claimNameValue"));
            p.claim_name = Some("restored-claim".into());
        }
    }
    assert_eq!(new_pod.spec.as_ref(), Some(&want_spec));
    assert!(new_pod.status.is_none());
    let m = new_pod.metadata.unwrap();
    assert!(!m.owner_references.is_empty() && !m.finalizers.is_empty() && !m.labels.is_empty());

    // 2. Wire level: every other byte unchanged.
    let (old_obj, new_obj) = (raw_object(&old), object_of(&old, &new));
    assert_same_except("pod", old_obj, new_obj, &[1, 2, 3]);
    assert!(!numbers(new_obj).contains(&3), "status kept");

    let (old_meta, new_meta) = (sub(old_obj, 1), sub(new_obj, 1));
    assert_same_except(
        "metadata",
        old_meta,
        new_meta,
        &[1, 12, 4, 5, 6, 7, 8, 9, 10, 17],
    );
    assert_server_fields_gone(new_meta);
    let ann = subs(new_meta, 12);
    assert_eq!(ann.len(), subs(old_meta, 12).len() + 1);
    // The replaced entry keeps its place; the new one follows the existing entries.
    assert_eq!(sub(ann[0], 1), b"annotationsKey");
    assert_eq!(sub(ann[0], 2), b"replaced in place");
    assert_eq!(sub(ann[ann.len() - 1], 1), b"podbank.io/checkpoint");
    let n = numbers(new_meta);
    let first12 = n.iter().position(|&x| x == 12).unwrap();
    assert!(
        n[first12..first12 + ann.len()].iter().all(|&x| x == 12),
        "annotations not contiguous: {n:?}"
    );

    let (old_spec, new_spec) = (sub(old_obj, 2), sub(new_obj, 2));
    assert_same_except("pod spec", old_spec, new_spec, &[1, 10]);
    assert!(!numbers(new_spec).contains(&10), "nodeName kept");
    // The fields k8s-pb does not know are there, byte for byte.
    let unknown = dropped_by_prost::<Pod>(old_obj, |o| sub(o, 2));
    assert!(!unknown.is_empty());
    for f in fields(old_spec)
        .iter()
        .filter(|f| unknown.contains(&f.number))
    {
        assert!(
            fields(new_spec).iter().any(|g| g.raw == f.raw),
            "unknown field {} lost",
            f.number
        );
    }

    let (old_vols, new_vols) = (subs(old_spec, 1), subs(new_spec, 1));
    assert_eq!(old_vols.len(), new_vols.len());
    for (ov, nv) in old_vols.iter().zip(&new_vols) {
        assert_same_except("volume", ov, nv, &[2]);
        let (os, ns) = (sub(ov, 2), sub(nv, 2));
        assert_same_except("volume source", os, ns, &[10]);
        assert_same_except("pvc source", sub(os, 10), sub(ns, 10), &[1]);
        assert_eq!(sub(sub(ns, 10), 1), b"restored-claim");
    }
}

#[test]
fn no_op_edits_give_identical_bytes_for_every_fixture() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(testdata().join("kubernetes"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.push(testdata().join("apiserver-v1.32"));
    let mut checked = 0;
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext != "pb" && ext != "json" {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let stored = parse_plain(&path.display().to_string(), bytes.clone()).unwrap();
            let kind = ResourceKind::from_kind(stored.kind()).unwrap();
            let what = path.display().to_string();
            assert_eq!(
                edit_object(kind, &bytes, &ObjectEdits::default()).unwrap(),
                bytes,
                "{what}"
            );
            // Setting the name it already has changes nothing either.
            let name = match stored.encoding() {
                podbank::codec::Encoding::Json => stored.decode_json::<Value>().unwrap()
                    ["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                podbank::codec::Encoding::Protobuf => {
                    String::from_utf8(sub(sub(stored.object_bytes(), 1), 1).to_vec()).unwrap()
                }
            };
            let same = ObjectEdits {
                name: Some(name),
                ..ObjectEdits::default()
            };
            assert_eq!(edit_object(kind, &bytes, &same).unwrap(), bytes, "{what}");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} fixtures");
}

#[test]
fn head_pv_new_volume_and_claim_ref() {
    let old = head("core.v1.PersistentVolume.pb");
    let edits = ObjectEdits {
        name: Some("pv-restored".into()),
        drop_server_fields: true,
        pv_volume_handle: Some("new-cinder-volume-id".into()),
        pv_cinder_volume_id: Some("new-in-tree-id".into()),
        pv_claim_ref: Some(("ns-new".into(), "claim-new".into())),
        ..ObjectEdits::default()
    };
    let new = edit_object(ResourceKind::PersistentVolume, &old, &edits).unwrap();

    let old_pv = PersistentVolume::decode(raw_object(&old)).unwrap();
    let new_pv = PersistentVolume::decode(raw_object(&new)).unwrap();
    assert_eq!(
        new_pv.metadata.as_ref(),
        Some(&expected_meta(
            old_pv.metadata.as_ref().unwrap(),
            "pv-restored",
            &[]
        ))
    );
    let mut want = old_pv.spec.clone().unwrap();
    let src = want.persistent_volume_source.as_mut().unwrap();
    src.csi.as_mut().unwrap().volume_handle = Some("new-cinder-volume-id".into());
    src.cinder.as_mut().unwrap().volume_id = Some("new-in-tree-id".into());
    let r = want.claim_ref.as_mut().unwrap();
    r.namespace = Some("ns-new".into());
    r.name = Some("claim-new".into());
    r.uid = None;
    r.resource_version = None;
    assert_eq!(new_pv.spec.as_ref(), Some(&want));
    assert!(new_pv.status.is_none());

    let (old_obj, new_obj) = (raw_object(&old), object_of(&old, &new));
    assert_same_except("pv", old_obj, new_obj, &[1, 2, 3]);
    assert_same_except(
        "pv metadata",
        sub(old_obj, 1),
        sub(new_obj, 1),
        &[1, 4, 5, 6, 7, 8, 9, 10, 17],
    );
    let (os, ns) = (sub(old_obj, 2), sub(new_obj, 2));
    assert_same_except("pv spec", os, ns, &[2, 4]);
    let (osrc, nsrc) = (sub(os, 2), sub(ns, 2));
    assert_same_except("pv source", osrc, nsrc, &[8, 22]);
    assert_same_except("csi", sub(osrc, 22), sub(nsrc, 22), &[2]);
    assert_same_except("cinder", sub(osrc, 8), sub(nsrc, 8), &[1]);
    assert_same_except("claimRef", sub(os, 4), sub(ns, 4), &[2, 3, 4, 6]);
    let refnums = numbers(sub(ns, 4));
    assert!(
        !refnums.contains(&4) && !refnums.contains(&6),
        "{refnums:?}"
    );
}

#[test]
fn pv_claim_ref_is_inserted_and_missing_sources_are_errors() {
    let pv = PersistentVolume {
        metadata: Some(ObjectMeta {
            name: Some("pv-1".into()),
            ..Default::default()
        }),
        spec: Some(PersistentVolumeSpec {
            persistent_volume_source: Some(PersistentVolumeSource {
                cinder: Some(CinderPersistentVolumeSource {
                    volume_id: Some("old".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            storage_class_name: Some("standard".into()),
            ..Default::default()
        }),
        status: None,
    };
    let plain = encode_envelope("v1", "PersistentVolume", &pv.encode_to_vec());
    let edits = ObjectEdits {
        pv_cinder_volume_id: Some("new".into()),
        pv_claim_ref: Some(("demo".into(), "data".into())),
        ..ObjectEdits::default()
    };
    let out = edit_object(ResourceKind::PersistentVolume, &plain, &edits).unwrap();
    let got = PersistentVolume::decode(raw_object(&out))
        .unwrap()
        .spec
        .unwrap();
    let r = got.claim_ref.unwrap();
    assert_eq!(
        (
            r.kind.as_deref(),
            r.api_version.as_deref(),
            r.namespace.as_deref(),
            r.name.as_deref()
        ),
        (
            Some("PersistentVolumeClaim"),
            Some("v1"),
            Some("demo"),
            Some("data")
        )
    );
    assert_eq!(
        got.persistent_volume_source
            .unwrap()
            .cinder
            .unwrap()
            .volume_id
            .as_deref(),
        Some("new")
    );
    assert_eq!(got.storage_class_name.as_deref(), Some("standard"));
    // Field order: claimRef (4) lands between the source (2) and storageClassName (6).
    assert_eq!(numbers(sub(raw_object(&out), 2)), vec![2, 4, 6]);

    let no_csi = ObjectEdits {
        pv_volume_handle: Some("x".into()),
        ..ObjectEdits::default()
    };
    let err = edit_object(ResourceKind::PersistentVolume, &plain, &no_csi).unwrap_err();
    assert!(
        matches!(err, CodecError::Edit { .. }) && err.to_string().contains("spec.csi"),
        "{err}"
    );
    let wrong_kind = ObjectEdits {
        pvc_volume_name: Some("x".into()),
        ..ObjectEdits::default()
    };
    assert!(edit_object(ResourceKind::PersistentVolume, &plain, &wrong_kind).is_err());
}

#[test]
fn head_pvc_bound_to_new_volume() {
    let old = head("core.v1.PersistentVolumeClaim.pb");
    let edits = ObjectEdits {
        name: Some("claim-new".into()),
        namespace: Some("ns-new".into()),
        drop_server_fields: true,
        pvc_volume_name: Some("pv-restored".into()),
        ..ObjectEdits::default()
    };
    let new = edit_object(ResourceKind::PersistentVolumeClaim, &old, &edits).unwrap();
    let old_pvc = PersistentVolumeClaim::decode(raw_object(&old)).unwrap();
    let new_pvc = PersistentVolumeClaim::decode(raw_object(&new)).unwrap();
    let mut want_meta = expected_meta(old_pvc.metadata.as_ref().unwrap(), "claim-new", &[]);
    want_meta.namespace = Some("ns-new".into());
    assert_eq!(new_pvc.metadata.as_ref(), Some(&want_meta));
    let mut want_spec = old_pvc.spec.clone().unwrap();
    want_spec.volume_name = Some("pv-restored".into());
    assert_eq!(new_pvc.spec.as_ref(), Some(&want_spec));

    let (old_obj, new_obj) = (raw_object(&old), object_of(&old, &new));
    assert_same_except("pvc", old_obj, new_obj, &[1, 2, 3]);
    assert_same_except(
        "pvc metadata",
        sub(old_obj, 1),
        sub(new_obj, 1),
        &[1, 3, 4, 5, 6, 7, 8, 9, 10, 17],
    );
    assert_same_except("pvc spec", sub(old_obj, 2), sub(new_obj, 2), &[3]);
    // Unknown PVC fields (if this release has any) survive as well.
    let unknown = dropped_by_prost::<PersistentVolumeClaim>(old_obj, |o| o);
    for f in fields(old_obj)
        .iter()
        .filter(|f| unknown.contains(&f.number))
    {
        assert!(fields(new_obj).iter().any(|g| g.raw == f.raw));
    }
}

#[test]
fn real_apiserver_pod_restores_with_new_claim() {
    let path = testdata().join("apiserver-v1.32/pods_demo_web-with-pvc.pb");
    let old = std::fs::read(path).unwrap();
    let edits = ObjectEdits {
        name: Some("web-restored".into()),
        drop_server_fields: true,
        pod_claim_renames: BTreeMap::from([("data-pvc".into(), "data-pvc-restored".into())]),
        pod_clear_node_name: true,
        set_annotations: vec![("podbank.io/restore-description".into(), "drill".into())],
        ..ObjectEdits::default()
    };
    let new = edit_object(ResourceKind::Pod, &old, &edits).unwrap();
    let stored = parse_plain("restored", new).unwrap();
    let pod: Pod = stored.decode_protobuf().unwrap();
    let meta = pod.metadata.unwrap();
    assert_eq!(meta.name.as_deref(), Some("web-restored"));
    assert_eq!(meta.namespace.as_deref(), Some("demo"));
    assert!(
        meta.uid.is_none() && meta.resource_version.is_none() && meta.creation_timestamp.is_none()
    );
    assert!(meta
        .annotations
        .contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    assert_eq!(meta.annotations["podbank.io/restore-description"], "drill");
    let claims: Vec<String> = pod
        .spec
        .unwrap()
        .volumes
        .iter()
        .filter_map(|v| {
            v.volume_source
                .as_ref()?
                .persistent_volume_claim
                .as_ref()?
                .claim_name
                .clone()
        })
        .collect();
    assert_eq!(claims, vec!["data-pvc-restored".to_string()]);
    assert!(pod.status.is_none());
    assert_eq!(
        StorageKey::new(ResourceKind::Pod, meta.namespace.as_deref(), "web-restored")
            .to_key("/registry"),
        "/registry/pods/demo/web-restored"
    );
}

#[test]
fn json_values_are_edited_as_json_keeping_every_other_field() {
    let old = head("core.v1.Pod.json");
    let new = edit_object(ResourceKind::Pod, &old, &pod_edits()).unwrap();
    let got: Value = serde_json::from_slice(&new).unwrap();
    let mut want: Value = serde_json::from_slice(&old).unwrap();
    let meta = want["metadata"].as_object_mut().unwrap();
    meta.insert("name".into(), json!("restored-pod"));
    for f in [
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    ] {
        assert!(meta.remove(f).is_some(), "fixture has {f}");
    }
    meta["annotations"]["annotationsKey"] = json!("replaced in place");
    meta["annotations"]["podbank.io/checkpoint"] = json!("cp-1");
    want.as_object_mut().unwrap().remove("status");
    let spec = want["spec"].as_object_mut().unwrap();
    spec.remove("nodeName");
    for v in spec["volumes"].as_array_mut().unwrap() {
        v["persistentVolumeClaim"]["claimName"] = json!("restored-claim");
    }
    // Fields newer than k8s-pb (HEAD) are plain JSON and stay.
    assert!(want["spec"].get("evictionResponders").is_some());
    assert_eq!(got, want);
    assert_eq!(parse_plain("k", new).unwrap().kind(), "Pod");

    // PV and PVC edits in JSON.
    let pv = edit_object(
        ResourceKind::PersistentVolume,
        &head("core.v1.PersistentVolume.json"),
        &ObjectEdits {
            pv_volume_handle: Some("vh".into()),
            pv_claim_ref: Some(("n".into(), "c".into())),
            ..ObjectEdits::default()
        },
    )
    .unwrap();
    let pv: Value = serde_json::from_slice(&pv).unwrap();
    assert_eq!(pv["spec"]["csi"]["volumeHandle"], "vh");
    assert_eq!(pv["spec"]["claimRef"]["name"], "c");
    assert!(pv["spec"]["claimRef"].get("uid").is_none());
    assert_eq!(pv["spec"]["claimRef"]["fieldPath"], "fieldPathValue");
    let pvc = edit_object(
        ResourceKind::PersistentVolumeClaim,
        &head("core.v1.PersistentVolumeClaim.json"),
        &ObjectEdits {
            pvc_volume_name: Some("pv-x".into()),
            ..ObjectEdits::default()
        },
    )
    .unwrap();
    let pvc: Value = serde_json::from_slice(&pvc).unwrap();
    assert_eq!(pvc["spec"]["volumeName"], "pv-x");
    assert_eq!(pvc["spec"]["storageClassName"], "storageClassNameValue");
}
