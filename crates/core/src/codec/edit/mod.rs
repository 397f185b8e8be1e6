//! Object edits for restore, applied to the stored bytes so that nothing else changes.
//!
//! Protobuf values are edited at the wire level ([`super::wire`]): only the fields an
//! edit touches are rewritten, every other byte (unknown fields newer than `k8s-pb`,
//! field order, ownerReferences, finalizers, labels) is copied as it was. JSON values
//! are edited as a `serde_json::Value` and keep every field; an edit that changes
//! nothing returns the input bytes unchanged in both encodings.
//!
//! Field numbers used here come from `k8s.io/api/core/v1/generated.proto` and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto` (the same numbers as the
//! `k8s-pb` types).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

mod workload;

use super::value::{parse_plain, Encoding, PROTOBUF_MAGIC};
use super::wire::{self, len_field, FieldAction, Rewrite, WireError};
use super::{CodecError, ResourceKind};

/// What becomes of `metadata.ownerReferences`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OwnerEdit {
    /// Kept as stored.
    #[default]
    Keep,
    /// Every reference left out (the object is restored without its owners).
    Drop,
    /// References to these uids point at the new owners' uids (old -> new); references to
    /// any other uid are left out, so that nothing keeps a reference to an owner that does
    /// not exist in the target.
    Map(BTreeMap<String, String>),
}

/// What to change in a stored object. `ObjectEdits::default()` changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectEdits {
    /// New `metadata.name`.
    pub name: Option<String>,
    /// New `metadata.namespace` (namespaced kinds only).
    pub namespace: Option<String>,
    /// Drop what the API server sets: metadata `uid`, `resourceVersion`, `generation`,
    /// `creationTimestamp`, `deletionTimestamp`, `deletionGracePeriodSeconds`,
    /// `managedFields`, `selfLink`, and the top-level `status`.
    pub drop_server_fields: bool,
    /// Annotations to set: an existing key's entry is replaced in place, new keys are
    /// appended after the existing annotations.
    pub set_annotations: Vec<(String, String)>,
    /// Pod: `spec.volumes[].persistentVolumeClaim.claimName` renames, old -> new.
    pub pod_claim_renames: BTreeMap<String, String>,
    /// Pod: inline `spec.volumes[].cinder.volumeID` swaps, old -> new.
    pub pod_cinder_volume_ids: BTreeMap<String, String>,
    /// Pod: clear `spec.nodeName` so that the scheduler places the pod.
    pub pod_clear_node_name: bool,
    /// PersistentVolume: new `spec.csi.volumeHandle` (the PV must have `spec.csi`).
    pub pv_volume_handle: Option<String>,
    /// PersistentVolume: new in-tree `spec.cinder.volumeID` (the PV must have `spec.cinder`).
    pub pv_cinder_volume_id: Option<String>,
    /// PersistentVolume: `spec.claimRef` to this (namespace, name); the old claimRef's
    /// `uid` and `resourceVersion` are dropped, its other fields kept.
    pub pv_claim_ref: Option<(String, String)>,
    /// PersistentVolumeClaim: new `spec.volumeName`.
    pub pvc_volume_name: Option<String>,
    /// `metadata.ownerReferences`: kept, dropped, or pointed at the new owners.
    pub owners: OwnerEdit,
    /// Workloads (Deployment, ReplicaSet, StatefulSet, DaemonSet, ReplicationController,
    /// Job, CronJob): claim renames in the pod template's volumes, old -> new.
    pub template_claim_renames: BTreeMap<String, String>,
    /// Job: drop `spec.selector` and the `controller-uid` labels of its pod template,
    /// which the API server generated for the original Job; the new Job gets its own.
    pub job_drop_generated_selector: bool,
}

// ObjectMeta field numbers.
const META_NAME: u32 = 1;
const META_NAMESPACE: u32 = 3;
const META_ANNOTATIONS: u32 = 12;
/// selfLink 4, uid 5, resourceVersion 6, generation 7, creationTimestamp 8,
/// deletionTimestamp 9, deletionGracePeriodSeconds 10, managedFields 17.
const META_SERVER_FIELDS: [u32; 8] = [4, 5, 6, 7, 8, 9, 10, 17];
// Pod, PersistentVolume and PersistentVolumeClaim share metadata 1, spec 2, status 3.
const OBJ_METADATA: u32 = 1;
const OBJ_SPEC: u32 = 2;
const OBJ_STATUS: u32 = 3;
// PodSpec / Volume / VolumeSource / PersistentVolumeClaimVolumeSource.
const PODSPEC_VOLUMES: u32 = 1;
const PODSPEC_NODE_NAME: u32 = 10;
const VOLUME_SOURCE: u32 = 2;
const VOLSRC_PVC: u32 = 10;
const VOLSRC_CINDER: u32 = 13;
const PVCSRC_CLAIM_NAME: u32 = 1;
// PersistentVolumeSpec / PersistentVolumeSource / CSI / Cinder / ObjectReference.
const PVSPEC_SOURCE: u32 = 2;
const PVSPEC_CLAIM_REF: u32 = 4;
const PVSRC_CINDER: u32 = 8;
const PVSRC_CSI: u32 = 22;
const CINDER_VOLUME_ID: u32 = 1;
const CSI_VOLUME_HANDLE: u32 = 2;
const REF_KIND: u32 = 1;
const REF_NAMESPACE: u32 = 2;
const REF_NAME: u32 = 3;
const REF_UID: u32 = 4;
const REF_API_VERSION: u32 = 5;
const REF_RESOURCE_VERSION: u32 = 6;
// PersistentVolumeClaimSpec.
const PVCSPEC_VOLUME_NAME: u32 = 3;

/// Apply `edits` to a plain stored value of `kind`: protobuf envelope in, protobuf
/// envelope out; JSON in, JSON out. A no-op edit returns identical bytes.
///
/// # Arguments
///
/// * `kind` - what the value holds (decides which spec edits apply).
/// * `plain_value` - `k8s\0` + `runtime.Unknown`, or a JSON document (not encrypted).
/// * `edits` - what to change.
pub fn edit_object(
    kind: ResourceKind,
    plain_value: &[u8],
    edits: &ObjectEdits,
) -> Result<Vec<u8>, CodecError> {
    let k = kind.kind();
    check_edits(kind, edits)?;
    let stored = parse_plain(k, plain_value.to_vec())
        .map_err(|e| edit_err(k, format!("the value is not a plain storage value: {e}")))?;
    match stored.encoding() {
        Encoding::Protobuf => edit_envelope(kind, plain_value, edits),
        Encoding::Json => edit_json(kind, plain_value, edits),
    }
}

fn edit_err(kind: &'static str, reason: impl Into<String>) -> CodecError {
    CodecError::Edit {
        kind,
        reason: reason.into(),
    }
}

fn check_edits(kind: ResourceKind, e: &ObjectEdits) -> Result<(), CodecError> {
    let k = kind.kind();
    let wrong = |what: &str| Err(edit_err(k, format!("{what} does not apply to a {k}")));
    if e.namespace.is_some() && !kind.namespaced() {
        return wrong("a namespace (cluster-scoped kind)");
    }
    if kind != ResourceKind::Pod
        && (!e.pod_claim_renames.is_empty()
            || !e.pod_cinder_volume_ids.is_empty()
            || e.pod_clear_node_name)
    {
        return wrong("a pod edit");
    }
    if kind != ResourceKind::PersistentVolume
        && (e.pv_volume_handle.is_some()
            || e.pv_cinder_volume_id.is_some()
            || e.pv_claim_ref.is_some())
    {
        return wrong("a PersistentVolume edit");
    }
    if kind != ResourceKind::PersistentVolumeClaim && e.pvc_volume_name.is_some() {
        return wrong("a PersistentVolumeClaim edit");
    }
    if !kind.is_owner() && !e.template_claim_renames.is_empty() {
        return wrong("a pod-template edit");
    }
    if kind != ResourceKind::Job && e.job_drop_generated_selector {
        return wrong("a Job edit");
    }
    Ok(())
}

/// A wire error while editing, as a [`CodecError::Edit`].
struct EditError(CodecError);

impl From<WireError> for EditError {
    fn from(e: WireError) -> Self {
        EditError(CodecError::Edit {
            kind: "object",
            reason: format!("malformed protobuf: {e}"),
        })
    }
}

impl From<CodecError> for EditError {
    fn from(e: CodecError) -> Self {
        EditError(e)
    }
}

type EditResult<T> = Result<T, EditError>;

fn edit_envelope(
    kind: ResourceKind,
    plain: &[u8],
    edits: &ObjectEdits,
) -> Result<Vec<u8>, CodecError> {
    let k = kind.kind();
    let relabel = |EditError(e): EditError| match e {
        CodecError::Edit { reason, .. } => edit_err(k, reason),
        other => other,
    };
    let body = &plain[PROTOBUF_MAGIC.len()..];
    let mut rw = Rewrite::new(body).map_err(|e| relabel(EditError::from(e)))?;
    let edited = rw
        .edit_message(2, false, |raw| edit_object_message(kind, raw, edits))
        .map_err(relabel)?;
    if edited == 0 {
        return Err(edit_err(k, "the envelope has no raw object"));
    }
    if rw.is_noop() {
        return Ok(plain.to_vec());
    }
    let mut out = PROTOBUF_MAGIC.to_vec();
    out.extend_from_slice(&rw.finish());
    Ok(out)
}

fn edit_object_message(kind: ResourceKind, raw: &[u8], edits: &ObjectEdits) -> EditResult<Vec<u8>> {
    let mut rw = Rewrite::new(raw)?;
    rw.edit_message(OBJ_METADATA, true, |m| edit_meta(m, edits))?;
    // Only kinds with a spec: a ConfigMap's or Secret's field 2 is its data.
    match kind {
        ResourceKind::Pod => rw.edit_message(OBJ_SPEC, true, |s| edit_pod_spec(s, edits))?,
        ResourceKind::PersistentVolume => {
            rw.edit_message(OBJ_SPEC, true, |s| edit_pv_spec(s, edits))?
        }
        ResourceKind::PersistentVolumeClaim => {
            rw.edit_message(OBJ_SPEC, true, |s| edit_pvc_spec(s, edits))?
        }
        k if k.is_owner() => {
            rw.edit_message(OBJ_SPEC, false, |s| workload::edit_spec(k, s, edits))?
        }
        _ => 0,
    };
    if edits.drop_server_fields && kind.has_status() {
        rw.drop_number(OBJ_STATUS);
    }
    Ok(finish(rw, raw))
}

/// The rebuilt message, or the original bytes if nothing changed.
fn finish(rw: Rewrite<'_>, original: &[u8]) -> Vec<u8> {
    if rw.is_noop() {
        original.to_vec()
    } else {
        rw.finish()
    }
}

fn edit_meta(meta: &[u8], edits: &ObjectEdits) -> EditResult<Vec<u8>> {
    let mut rw = Rewrite::new(meta)?;
    if let Some(name) = &edits.name {
        rw.set_string(META_NAME, name)?;
    }
    if let Some(ns) = &edits.namespace {
        rw.set_string(META_NAMESPACE, ns)?;
    }
    if edits.drop_server_fields {
        for n in META_SERVER_FIELDS {
            rw.drop_number(n);
        }
    }
    workload::edit_owner_refs(&mut rw, &edits.owners)?;
    if !edits.set_annotations.is_empty() {
        // Last value wins for a key given twice; keep first-given order for new keys.
        let mut wanted: Vec<(&str, &str)> = Vec::new();
        for (key, value) in &edits.set_annotations {
            match wanted.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => wanted.push((key, value)),
            }
        }
        let mut placed = vec![false; wanted.len()];
        for i in rw.indexes_of(META_ANNOTATIONS) {
            let entry = rw.fields()[i];
            let entry_key = map_entry_key(entry.value)?;
            if let Some(j) = wanted.iter().position(|(k, _)| *k == entry_key) {
                let mut e = Rewrite::new(entry.value)?;
                e.set_string(2, wanted[j].1)?;
                let new_entry = finish(e, entry.value);
                rw.set(i, FieldAction::Replace(new_entry));
                placed[j] = true;
            }
        }
        for (j, (key, value)) in wanted.iter().enumerate() {
            if !placed[j] {
                let mut entry = len_field(1, key.as_bytes());
                entry.extend_from_slice(&len_field(2, value.as_bytes()));
                rw.insert(META_ANNOTATIONS, len_field(META_ANNOTATIONS, &entry));
            }
        }
    }
    Ok(finish(rw, meta))
}

/// The key (field 1) of a `map<string, string>` entry.
fn map_entry_key(entry: &[u8]) -> EditResult<String> {
    let mut key = String::new();
    for f in wire::fields(entry) {
        let f = f?;
        if f.number == 1 {
            key = f.as_str()?.to_string();
        }
    }
    Ok(key)
}

/// The last value of a string field in a message, if any.
fn string_field(msg: &[u8], number: u32) -> EditResult<Option<String>> {
    let mut out = None;
    for f in wire::fields(msg) {
        let f = f?;
        if f.number == number {
            out = Some(f.as_str()?.to_string());
        }
    }
    Ok(out)
}

fn edit_pod_spec(spec: &[u8], edits: &ObjectEdits) -> EditResult<Vec<u8>> {
    edit_pod_volumes(
        spec,
        &edits.pod_claim_renames,
        &edits.pod_cinder_volume_ids,
        edits.pod_clear_node_name,
    )
}

/// A PodSpec (of a pod, or of a workload's pod template) with claim names and inline
/// Cinder volume ids swapped, and `nodeName` cleared if asked.
fn edit_pod_volumes(
    spec: &[u8],
    claim_renames: &BTreeMap<String, String>,
    cinder_ids: &BTreeMap<String, String>,
    clear_node_name: bool,
) -> EditResult<Vec<u8>> {
    let mut rw = Rewrite::new(spec)?;
    if !claim_renames.is_empty() || !cinder_ids.is_empty() {
        rw.edit_message(PODSPEC_VOLUMES, false, |volume| {
            let mut v = Rewrite::new(volume)?;
            v.edit_message(VOLUME_SOURCE, false, |source| {
                let mut s = Rewrite::new(source)?;
                s.edit_message(VOLSRC_PVC, false, |pvc| {
                    let mut p = Rewrite::new(pvc)?;
                    if let Some(old) = string_field(pvc, PVCSRC_CLAIM_NAME)? {
                        if let Some(new) = claim_renames.get(&old) {
                            p.set_string(PVCSRC_CLAIM_NAME, new)?;
                        }
                    }
                    Ok::<_, EditError>(finish(p, pvc))
                })?;
                s.edit_message(VOLSRC_CINDER, false, |cinder| {
                    let mut c = Rewrite::new(cinder)?;
                    if let Some(old) = string_field(cinder, CINDER_VOLUME_ID)? {
                        if let Some(new) = cinder_ids.get(&old) {
                            c.set_string(CINDER_VOLUME_ID, new)?;
                        }
                    }
                    Ok::<_, EditError>(finish(c, cinder))
                })?;
                Ok::<_, EditError>(finish(s, source))
            })?;
            Ok::<_, EditError>(finish(v, volume))
        })?;
    }
    if clear_node_name {
        rw.drop_number(PODSPEC_NODE_NAME);
    }
    Ok(finish(rw, spec))
}

fn edit_pv_spec(spec: &[u8], edits: &ObjectEdits) -> EditResult<Vec<u8>> {
    let k = ResourceKind::PersistentVolume.kind();
    let mut rw = Rewrite::new(spec)?;
    if edits.pv_volume_handle.is_some() || edits.pv_cinder_volume_id.is_some() {
        let (mut csi_seen, mut cinder_seen) = (0, 0);
        rw.edit_message(PVSPEC_SOURCE, false, |source| {
            let mut s = Rewrite::new(source)?;
            if let Some(handle) = &edits.pv_volume_handle {
                csi_seen += s.edit_message(PVSRC_CSI, false, |csi| {
                    let mut c = Rewrite::new(csi)?;
                    c.set_string(CSI_VOLUME_HANDLE, handle)?;
                    Ok::<_, EditError>(finish(c, csi))
                })?;
            }
            if let Some(id) = &edits.pv_cinder_volume_id {
                cinder_seen += s.edit_message(PVSRC_CINDER, false, |cinder| {
                    let mut c = Rewrite::new(cinder)?;
                    c.set_string(CINDER_VOLUME_ID, id)?;
                    Ok::<_, EditError>(finish(c, cinder))
                })?;
            }
            Ok::<_, EditError>(finish(s, source))
        })?;
        if edits.pv_volume_handle.is_some() && csi_seen == 0 {
            return Err(edit_err(
                k,
                "cannot set spec.csi.volumeHandle: the PersistentVolume has no spec.csi",
            )
            .into());
        }
        if edits.pv_cinder_volume_id.is_some() && cinder_seen == 0 {
            return Err(edit_err(
                k,
                "cannot set spec.cinder.volumeID: the PersistentVolume has no spec.cinder",
            )
            .into());
        }
    }
    if let Some((ns, name)) = &edits.pv_claim_ref {
        let existed = !rw.indexes_of(PVSPEC_CLAIM_REF).is_empty();
        rw.edit_message(PVSPEC_CLAIM_REF, true, |r| {
            let mut c = Rewrite::new(r)?;
            if !existed {
                c.set_string(REF_KIND, "PersistentVolumeClaim")?;
                c.set_string(REF_API_VERSION, "v1")?;
            }
            c.set_string(REF_NAMESPACE, ns)?;
            c.set_string(REF_NAME, name)?;
            c.drop_number(REF_UID);
            c.drop_number(REF_RESOURCE_VERSION);
            Ok::<_, EditError>(finish(c, r))
        })?;
    }
    Ok(finish(rw, spec))
}

fn edit_pvc_spec(spec: &[u8], edits: &ObjectEdits) -> EditResult<Vec<u8>> {
    let mut rw = Rewrite::new(spec)?;
    if let Some(volume) = &edits.pvc_volume_name {
        rw.set_string(PVCSPEC_VOLUME_NAME, volume)?;
    }
    Ok(finish(rw, spec))
}

const JSON_SERVER_FIELDS: [&str; 8] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The same edits on a JSON document. Fields are kept; object keys come out in sorted
/// order when something changed (serde_json's map), which the API server does not mind.
fn edit_json(kind: ResourceKind, plain: &[u8], edits: &ObjectEdits) -> Result<Vec<u8>, CodecError> {
    let k = kind.kind();
    let original: Value =
        serde_json::from_slice(plain).map_err(|e| edit_err(k, format!("invalid JSON: {e}")))?;
    let mut doc = original.clone();
    let root = doc
        .as_object_mut()
        .ok_or_else(|| edit_err(k, "the JSON document is not an object"))?;
    let meta_edits = edits.name.is_some()
        || edits.namespace.is_some()
        || edits.drop_server_fields
        || !edits.set_annotations.is_empty()
        || edits.owners != OwnerEdit::Keep;
    if meta_edits {
        let meta = object_at(root, "metadata", k)?;
        if let Some(name) = &edits.name {
            meta.insert("name".into(), Value::String(name.clone()));
        }
        if let Some(ns) = &edits.namespace {
            meta.insert("namespace".into(), Value::String(ns.clone()));
        }
        if edits.drop_server_fields {
            for f in JSON_SERVER_FIELDS {
                meta.remove(f);
            }
        }
        if !edits.set_annotations.is_empty() {
            let ann = object_at(meta, "annotations", k)?;
            for (key, value) in &edits.set_annotations {
                ann.insert(key.clone(), Value::String(value.clone()));
            }
        }
        workload::edit_json_owner_refs(meta, &edits.owners);
    }
    if edits.drop_server_fields && kind.has_status() {
        root.remove("status");
    }
    match kind {
        ResourceKind::Pod => {
            if !edits.pod_claim_renames.is_empty() || !edits.pod_cinder_volume_ids.is_empty() {
                if let Some(Value::Array(volumes)) =
                    root.get_mut("spec").and_then(|s| s.get_mut("volumes"))
                {
                    for v in volumes {
                        if let Some(Value::String(claim)) = v
                            .get_mut("persistentVolumeClaim")
                            .and_then(|p| p.get_mut("claimName"))
                        {
                            if let Some(new) = edits.pod_claim_renames.get(claim.as_str()) {
                                *claim = new.clone();
                            }
                        }
                        if let Some(Value::String(id)) =
                            v.get_mut("cinder").and_then(|c| c.get_mut("volumeID"))
                        {
                            if let Some(new) = edits.pod_cinder_volume_ids.get(id.as_str()) {
                                *id = new.clone();
                            }
                        }
                    }
                }
            }
            if edits.pod_clear_node_name {
                if let Some(Value::Object(spec)) = root.get_mut("spec") {
                    spec.remove("nodeName");
                }
            }
        }
        ResourceKind::PersistentVolume => {
            let needs_spec = edits.pv_volume_handle.is_some()
                || edits.pv_cinder_volume_id.is_some()
                || edits.pv_claim_ref.is_some();
            if needs_spec {
                let spec = object_at(root, "spec", k)?;
                for (field, key, value) in [
                    ("csi", "volumeHandle", &edits.pv_volume_handle),
                    ("cinder", "volumeID", &edits.pv_cinder_volume_id),
                ] {
                    if let Some(value) = value {
                        match spec.get_mut(field) {
                            Some(Value::Object(src)) => {
                                src.insert(key.into(), Value::String(value.clone()));
                            }
                            _ => {
                                return Err(edit_err(
                                    k,
                                    format!("cannot set spec.{field}.{key}: the PersistentVolume has no spec.{field}"),
                                ))
                            }
                        }
                    }
                }
                if let Some((ns, name)) = &edits.pv_claim_ref {
                    let existed = spec.contains_key("claimRef");
                    let r = object_at(spec, "claimRef", k)?;
                    if !existed {
                        r.insert("kind".into(), Value::String("PersistentVolumeClaim".into()));
                        r.insert("apiVersion".into(), Value::String("v1".into()));
                    }
                    r.insert("namespace".into(), Value::String(ns.clone()));
                    r.insert("name".into(), Value::String(name.clone()));
                    r.remove("uid");
                    r.remove("resourceVersion");
                }
            }
        }
        ResourceKind::PersistentVolumeClaim => {
            if let Some(volume) = &edits.pvc_volume_name {
                object_at(root, "spec", k)?
                    .insert("volumeName".into(), Value::String(volume.clone()));
            }
        }
        other if other.is_owner() => workload::edit_json_spec(other, root, edits),
        _ => {}
    }
    if doc == original {
        return Ok(plain.to_vec());
    }
    let mut out = serde_json::to_vec(&doc).map_err(|e| edit_err(k, e.to_string()))?;
    if plain.ends_with(b"\n") {
        out.push(b'\n');
    }
    Ok(out)
}

/// `parent[key]` as an object, created if missing.
fn object_at<'m>(
    parent: &'m mut Map<String, Value>,
    key: &str,
    kind: &'static str,
) -> Result<&'m mut Map<String, Value>, CodecError> {
    let slot = parent
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| edit_err(kind, format!("`{key}` is not a JSON object")))
}
