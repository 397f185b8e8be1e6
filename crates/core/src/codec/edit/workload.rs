//! Edits of workloads (the controllers a pod belongs to: their pod templates, a Job's
//! generated selector) and of `metadata.ownerReferences`, in both encodings.
//!
//! Field numbers from `k8s.io/api/apps/v1`, `k8s.io/api/batch/v1` and
//! `k8s.io/api/core/v1` `generated.proto`: the pod template is field 3 of a Deployment's,
//! ReplicaSet's, StatefulSet's and ReplicationController's spec, 2 of a DaemonSet's, 6 of
//! a Job's; a CronJob's spec holds a JobTemplateSpec (5) whose spec (2) is a JobSpec.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    edit_pod_volumes, finish, map_entry_key, string_field, EditResult, ObjectEdits, OwnerEdit,
};
use crate::codec::wire::{FieldAction, Rewrite};
use crate::codec::ResourceKind;

const META_LABELS: u32 = 11;
const META_OWNER_REFERENCES: u32 = 13;
const OWNER_UID: u32 = 4;
const TEMPLATE_META: u32 = 1;
const TEMPLATE_SPEC: u32 = 2;
const JOB_SELECTOR: u32 = 4;
const JOB_TEMPLATE: u32 = 6;
const CRONJOB_JOB_TEMPLATE: u32 = 5;
const JOB_TEMPLATE_SPEC: u32 = 2;

/// The labels kube-apiserver adds to a Job's pod template with the selector it generates.
const GENERATED_JOB_LABELS: [&str; 2] = ["controller-uid", "batch.kubernetes.io/controller-uid"];

/// The spec field that holds the pod template (not for Jobs and CronJobs).
fn template_field(kind: ResourceKind) -> u32 {
    match kind {
        ResourceKind::DaemonSet => 2,
        _ => 3,
    }
}

/// A workload's spec, edited.
pub(super) fn edit_spec(
    kind: ResourceKind,
    spec: &[u8],
    edits: &ObjectEdits,
) -> EditResult<Vec<u8>> {
    match kind {
        ResourceKind::Job => edit_job_spec(spec, edits, edits.job_drop_generated_selector),
        ResourceKind::CronJob => {
            let mut rw = Rewrite::new(spec)?;
            rw.edit_message(CRONJOB_JOB_TEMPLATE, false, |jt| {
                let mut j = Rewrite::new(jt)?;
                j.edit_message(JOB_TEMPLATE_SPEC, false, |js| {
                    edit_job_spec(js, edits, false)
                })?;
                EditResult::Ok(finish(j, jt))
            })?;
            Ok(finish(rw, spec))
        }
        other => {
            let mut rw = Rewrite::new(spec)?;
            rw.edit_message(template_field(other), false, |t| {
                edit_template(t, edits, false)
            })?;
            Ok(finish(rw, spec))
        }
    }
}

fn edit_job_spec(spec: &[u8], edits: &ObjectEdits, drop_selector: bool) -> EditResult<Vec<u8>> {
    let mut rw = Rewrite::new(spec)?;
    if drop_selector {
        rw.drop_number(JOB_SELECTOR);
    }
    rw.edit_message(JOB_TEMPLATE, false, |t| {
        edit_template(t, edits, drop_selector)
    })?;
    Ok(finish(rw, spec))
}

fn edit_template(
    template: &[u8],
    edits: &ObjectEdits,
    drop_generated_labels: bool,
) -> EditResult<Vec<u8>> {
    let mut rw = Rewrite::new(template)?;
    if drop_generated_labels {
        rw.edit_message(TEMPLATE_META, false, |meta| {
            let mut m = Rewrite::new(meta)?;
            for i in m.indexes_of(META_LABELS) {
                let key = map_entry_key(m.fields()[i].value)?;
                if GENERATED_JOB_LABELS.contains(&key.as_str()) {
                    m.set(i, FieldAction::Drop);
                }
            }
            EditResult::Ok(finish(m, meta))
        })?;
    }
    if !edits.template_claim_renames.is_empty() {
        rw.edit_message(TEMPLATE_SPEC, false, |spec| {
            edit_pod_volumes(spec, &edits.template_claim_renames, &BTreeMap::new(), false)
        })?;
    }
    Ok(finish(rw, template))
}

/// `metadata.ownerReferences` of an ObjectMeta being rewritten.
pub(super) fn edit_owner_refs(meta: &mut Rewrite<'_>, owners: &OwnerEdit) -> EditResult<()> {
    match owners {
        OwnerEdit::Keep => {}
        OwnerEdit::Drop => meta.drop_number(META_OWNER_REFERENCES),
        OwnerEdit::Map(map) => {
            for i in meta.indexes_of(META_OWNER_REFERENCES) {
                let reference = meta.fields()[i].value;
                match string_field(reference, OWNER_UID)?.and_then(|uid| map.get(&uid)) {
                    Some(new) => {
                        let mut r = Rewrite::new(reference)?;
                        r.set_string(OWNER_UID, new)?;
                        meta.set(i, FieldAction::Replace(finish(r, reference)));
                    }
                    None => meta.set(i, FieldAction::Drop),
                }
            }
        }
    }
    Ok(())
}

/// The same on a JSON `metadata`.
pub(super) fn edit_json_owner_refs(meta: &mut Map<String, Value>, owners: &OwnerEdit) {
    match owners {
        OwnerEdit::Keep => {}
        OwnerEdit::Drop => {
            meta.remove("ownerReferences");
        }
        OwnerEdit::Map(map) => {
            if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
                refs.retain_mut(|r| {
                    let new = r
                        .get("uid")
                        .and_then(Value::as_str)
                        .and_then(|uid| map.get(uid))
                        .cloned();
                    match (new, r.as_object_mut()) {
                        (Some(new), Some(obj)) => {
                            obj.insert("uid".into(), Value::String(new));
                            true
                        }
                        _ => false,
                    }
                });
                if refs.is_empty() {
                    meta.remove("ownerReferences");
                }
            }
        }
    }
}

/// A workload's spec as JSON, edited.
pub(super) fn edit_json_spec(
    kind: ResourceKind,
    root: &mut Map<String, Value>,
    edits: &ObjectEdits,
) {
    let Some(Value::Object(spec)) = root.get_mut("spec") else {
        return;
    };
    let drop = kind == ResourceKind::Job && edits.job_drop_generated_selector;
    if drop {
        spec.remove("selector");
    }
    let template = match kind {
        ResourceKind::CronJob => spec
            .get_mut("jobTemplate")
            .and_then(|t| t.get_mut("spec"))
            .and_then(|s| s.get_mut("template")),
        _ => spec.get_mut("template"),
    };
    let Some(template) = template else {
        return;
    };
    if drop {
        if let Some(Value::Object(labels)) = template
            .get_mut("metadata")
            .and_then(|m| m.get_mut("labels"))
        {
            for l in GENERATED_JOB_LABELS {
                labels.remove(l);
            }
        }
    }
    if let Some(Value::Array(volumes)) = template.get_mut("spec").and_then(|s| s.get_mut("volumes"))
    {
        for v in volumes {
            if let Some(Value::String(claim)) = v
                .get_mut("persistentVolumeClaim")
                .and_then(|p| p.get_mut("claimName"))
            {
                if let Some(new) = edits.template_claim_renames.get(claim.as_str()) {
                    *claim = new.clone();
                }
            }
        }
    }
}
