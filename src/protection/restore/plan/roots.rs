//! The restore of one root: a pod as itself, or a workload through its top owner (its
//! volumes, PVs and claims first, then the owner, whose controller makes the pods).

use std::collections::BTreeMap;

use super::units::{source_of, stored_step, Unit};
use super::volumes::{plan_volumes, ClaimNaming, Volumes};
use super::{base_edits, choose, note, Existing, Inputs, Key, ObjectStep, Step, UnitPlan};
use crate::codec::{ObjectEdits, OwnerEdit, ResourceKind};
use crate::model::{ObjectRef, Outcome, Relation, ResourceRecord, ResourceType, Source};
use crate::protection::restore::error::RestoreError;

pub(super) fn plan_unit(
    inputs: &Inputs<'_>,
    unit: &Unit<'_>,
    exists: &BTreeMap<Key, Existing>,
) -> UnitPlan {
    match unit {
        Unit::Pod { pod, owners_left } => plan_pod(inputs, pod, owners_left.as_deref(), exists),
        Unit::Workload {
            root,
            kind,
            between,
            pods,
        } => plan_workload(inputs, root, *kind, between, pods, exists),
    }
}

/// Notes that the owners of `record` are not restored.
fn owners_notes(record: &ResourceRecord, why: &str) -> Vec<crate::model::RestoredResource> {
    record
        .edges
        .iter()
        .filter(|e| e.relation == Relation::Owner)
        .map(|e| {
            let kind = ResourceKind::of_type(&e.kind);
            note(
                e.kind.clone(),
                match kind {
                    Some(k) => source_of(k, &e.target),
                    None => Source::Text(format!(
                        "{}:{}",
                        e.kind.kind_name().to_lowercase(),
                        e.target
                    )),
                },
                String::new(),
                Outcome::Skipped,
                why,
            )
        })
        .collect()
}

fn plan_pod(
    inputs: &Inputs<'_>,
    pod: &ResourceRecord,
    owners_left: Option<&str>,
    exists: &BTreeMap<Key, Existing>,
) -> UnitPlan {
    let source = &pod.object;
    let unit = format!("pod {source}");
    let ns = inputs.target_namespace(source.namespace());
    let wanted = inputs.root_name(source);
    let (pod_name, pod_reused) = match choose(ResourceKind::Pod, &ns, &wanted, inputs, exists) {
        Ok(Some(chosen)) => chosen,
        Ok(None) => {
            return UnitPlan::Skip {
                unit,
                notes: vec![note(
                    ResourceType::Kube(ResourceKind::Pod),
                    // As recorded so far: `<ns>/<name>`, not `pod:<ns>/<name>`.
                    Source::Text(source.to_string()),
                    ObjectRef::new(&ns, &wanted).to_string(),
                    Outcome::Skipped,
                    "exists (--conflict skip)",
                )],
            };
        }
        Err(error) => {
            return UnitPlan::Fail {
                unit,
                error,
                notes: Vec::new(),
            }
        }
    };
    let mut volumes = match plan_volumes(inputs, &[pod], &ns, ClaimNaming::Pod, exists) {
        Volumes::Planned(v) => v,
        Volumes::Skip(notes) => return UnitPlan::Skip { unit, notes },
        Volumes::Fail(error, notes) => return UnitPlan::Fail { unit, error, notes },
    };
    if let Some(why) = owners_left {
        volumes.notes.extend(owners_notes(pod, why));
    }
    let mut changes = Vec::new();
    if !inputs.request.keep_node {
        changes.push("spec.nodeName cleared".to_string());
    }
    for (old, new) in &volumes.claim_renames {
        changes.push(format!("claim {old} -> {new}"));
    }
    if owners_left.is_some() {
        changes.push("ownerReferences removed".to_string());
    }
    volumes.steps.push(Step::Object(ObjectStep {
        kind: ResourceKind::Pod,
        target: ObjectRef::new(&ns, &pod_name),
        source: source_of(ResourceKind::Pod, source),
        source_uid: pod.uid.clone(),
        object_id: pod.object_id,
        generated: None,
        edits: ObjectEdits {
            pod_claim_renames: volumes.claim_renames.clone(),
            pod_clear_node_name: !inputs.request.keep_node,
            owners: OwnerEdit::Drop,
            ..base_edits(inputs, &pod_name, Some(&ns))
        },
        pv_volume: None,
        pod_inline: volumes.inline,
        changes,
        reused: pod_reused,
    }));
    UnitPlan::Restore {
        unit,
        steps: volumes.steps,
        notes: volumes.notes,
    }
}

fn plan_workload(
    inputs: &Inputs<'_>,
    root: &ResourceRecord,
    kind: ResourceKind,
    between: &[&ResourceRecord],
    pods: &[&ResourceRecord],
    exists: &BTreeMap<Key, Existing>,
) -> UnitPlan {
    let source = &root.object;
    let unit = format!("{kind} {source}");
    let ns = inputs.target_namespace(source.namespace());
    let wanted = inputs.root_name(source);
    let chosen = match choose(kind, &ns, &wanted, inputs, exists) {
        Ok(c) => c,
        Err(error) => {
            return UnitPlan::Fail {
                unit,
                error,
                notes: Vec::new(),
            }
        }
    };
    let name = chosen.as_ref().map_or(wanted.clone(), |(n, _)| n.clone());
    let naming = match kind {
        ResourceKind::StatefulSet => ClaimNaming::StatefulSet {
            old: source.name(),
            new: &name,
        },
        _ => ClaimNaming::Workload,
    };
    let mut volumes = match plan_volumes(inputs, pods, &ns, naming, exists) {
        Volumes::Planned(v) => v,
        Volumes::Skip(notes) => return UnitPlan::Skip { unit, notes },
        Volumes::Fail(error, notes) => return UnitPlan::Fail { unit, error, notes },
    };
    if !volumes.inline.is_empty() {
        return UnitPlan::Fail {
            unit,
            error: RestoreError::InlineInTemplate { kind: kind.kind() },
            notes: Vec::new(),
        };
    }
    let by = match kind {
        ResourceKind::CronJob => format!("made by CronJob {ns}/{name} at its next schedule"),
        _ => format!("made by the {kind} controller from {ns}/{name}"),
    };
    for b in between {
        let k = ResourceKind::of_type(&b.kind).unwrap_or(kind);
        volumes.notes.push(note(
            b.kind.clone(),
            source_of(k, &b.object),
            String::new(),
            Outcome::ByController,
            &by,
        ));
    }
    for p in pods {
        volumes.notes.push(note(
            ResourceType::Kube(ResourceKind::Pod),
            source_of(ResourceKind::Pod, &p.object),
            String::new(),
            Outcome::ByController,
            &by,
        ));
    }
    match chosen {
        None => volumes.notes.push(note(
            root.kind.clone(),
            source_of(kind, source),
            ObjectRef::new(&ns, &wanted).to_string(),
            Outcome::Skipped,
            &format!("exists (--conflict skip): the live {kind} is kept"),
        )),
        Some((name, reused)) => {
            let mut step = stored_step(inputs, kind, root, ObjectRef::new(&ns, &name), reused);
            step.edits.owners = OwnerEdit::Drop;
            if root.edges.iter().any(|e| e.relation == Relation::Owner) {
                step.changes.push("ownerReferences removed".into());
            }
            if kind != ResourceKind::StatefulSet {
                for (old, new) in &volumes.claim_renames {
                    step.changes.push(format!("template claim {old} -> {new}"));
                }
                step.edits.template_claim_renames = volumes.claim_renames.clone();
            }
            if kind == ResourceKind::Job {
                step.edits.job_drop_generated_selector = true;
                step.changes
                    .push("generated selector and controller-uid labels removed".into());
            }
            volumes.steps.push(Step::Object(step));
        }
    }
    UnitPlan::Restore {
        unit,
        steps: volumes.steps,
        notes: volumes.notes,
    }
}
