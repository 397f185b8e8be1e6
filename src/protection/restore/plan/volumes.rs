//! The volume steps of a unit: for each Cinder volume its pods mount (once, however many
//! pods share it), a new volume from its backup and, for a volume through a claim, the PV
//! under a fresh name and the claim under the name its pod or controller expects, bound to
//! each other.

use std::collections::{BTreeMap, BTreeSet};

use super::units::source_of;
use super::{base_edits, choose, note, volume_note, Existing, Inputs, Key, ObjectStep, Step};
use crate::codec::{ObjectEdits, ResourceKind};
use crate::model::{
    ObjectRef, Outcome, ResourceRecord, ResourceType, RestoredResource, Source, VolumeDriver,
    VolumeId,
};
use crate::protection::restore::error::RestoreError;

/// How the claims of a unit are named in the target.
#[derive(Debug, Clone, Copy)]
pub(super) enum ClaimNaming<'x> {
    /// A claim keeps its name; an existing one follows the conflict policy (`skip` skips
    /// the whole unit: a bare pod).
    Pod,
    /// As [`ClaimNaming::Pod`], but `skip` keeps the live claim and restores the rest (a
    /// workload whose owner is restored).
    Workload,
    /// A StatefulSet's claims are `<template>-<statefulset>-<ordinal>`: renamed with the
    /// StatefulSet (`old` -> `new`), so that its controller adopts them.
    StatefulSet {
        /// Its name in the checkpoint.
        old: &'x str,
        /// Its name in the target.
        new: &'x str,
    },
}

/// The volume steps of a unit.
#[derive(Debug, Default)]
pub(super) struct VolumePlan {
    pub steps: Vec<Step>,
    pub notes: Vec<RestoredResource>,
    /// Claims restored under another name, old -> new.
    pub claim_renames: BTreeMap<String, String>,
    /// Inline Cinder volumes (of a bare pod) whose new ids go into it.
    pub inline: Vec<VolumeId>,
}

/// What becomes of a unit's volumes.
#[derive(Debug)]
pub(super) enum Volumes {
    /// Planned.
    Planned(VolumePlan),
    /// A claim exists and the policy is `skip`: the unit is skipped.
    Skip(Vec<RestoredResource>),
    /// The unit cannot be restored.
    Fail(RestoreError, Vec<RestoredResource>),
}

/// The name a StatefulSet's claim gets when the StatefulSet is renamed.
fn statefulset_claim(claim: &str, pod: &str, old: &str, new: &str) -> String {
    match (claim.strip_suffix(pod), pod.strip_prefix(old)) {
        (Some(template), Some(ordinal)) if old != new => format!("{template}{new}{ordinal}"),
        _ => claim.to_string(),
    }
}

/// The volume steps of `pods`, restored into `ns`.
pub(super) fn plan_volumes(
    inputs: &Inputs<'_>,
    pods: &[&ResourceRecord],
    ns: &str,
    naming: ClaimNaming<'_>,
    exists: &BTreeMap<Key, Existing>,
) -> Volumes {
    let mut plan = VolumePlan::default();
    let mut seen = BTreeSet::new();
    for pod in pods {
        let source = &pod.object;
        let volumes = inputs.volumes_of(source);
        for &v in volumes {
            if !v.is_backed_up() && !inputs.request.original_volumes {
                let error = RestoreError::NoBackup {
                    volume: v.volume_id.clone(),
                    status: v.status,
                    reason: v.reason.clone(),
                };
                let n = volume_note(v, Outcome::Error, error.to_string());
                return Volumes::Fail(error, vec![n]);
            }
        }
        for &v in volumes {
            if !seen.insert(v.volume_id.clone()) {
                continue;
            }
            // Not backed up, and asked to keep it: nothing to make, the ids stay.
            let original = !v.is_backed_up();
            if original {
                let mut n = volume_note(
                    v,
                    Outcome::Skipped,
                    format!(
                        "not backed up ({}): kept, the restored objects name the original volume (--original-volumes)",
                        v.status
                    ),
                );
                n.target = v.volume_id.to_string();
                plan.notes.push(n);
            }
            if v.driver == Some(VolumeDriver::InlineCinder) {
                if !original {
                    plan.steps.push(Step::Volume(v.clone()));
                    plan.inline.push(v.volume_id.clone());
                }
                continue;
            }
            let claim_ref = v.claim.clone().map(|c| {
                // Checkpoints written before `namespace/name` held the bare claim name.
                if c.namespace().is_empty() {
                    source.in_namespace_named(c.name())
                } else {
                    c
                }
            });
            let pv_ref = v.persistent_volume.clone().map(ObjectRef::cluster);
            let (Some(claim), Some(pv)) = (
                claim_ref.as_ref().and_then(|c| {
                    inputs.find(&ResourceType::Kube(ResourceKind::PersistentVolumeClaim), c)
                }),
                pv_ref.as_ref().and_then(|p| {
                    inputs.find(&ResourceType::Kube(ResourceKind::PersistentVolume), p)
                }),
            ) else {
                let error = RestoreError::MissingRecords {
                    claim: claim_ref.map(|c| c.to_string()).unwrap_or_default(),
                    persistent_volume: v.persistent_volume.clone().unwrap_or_default(),
                };
                let n = volume_note(v, Outcome::Error, error.to_string());
                return Volumes::Fail(error, vec![n]);
            };
            // Generic ephemeral volumes: the claim belongs to the pod's ephemeral controller.
            if v.ephemeral {
                plan.notes.push(volume_note(
                    v,
                    Outcome::Skipped,
                    "generic ephemeral volume: Kubernetes re-creates its claim from the pod's template, empty".into(),
                ));
                continue;
            }
            let claim_wanted = match naming {
                ClaimNaming::StatefulSet { old, new } => {
                    statefulset_claim(claim.object.name(), source.name(), old, new)
                }
                _ => claim.object.name().to_string(),
            };
            let chosen = choose(
                ResourceKind::PersistentVolumeClaim,
                ns,
                &claim_wanted,
                inputs,
                exists,
            );
            let (claim_name, claim_reused) = match (chosen, naming) {
                (Ok(Some(chosen)), _) => chosen,
                (Ok(None), ClaimNaming::Pod) => {
                    return Volumes::Skip(vec![
                        note(
                            ResourceType::Kube(ResourceKind::PersistentVolumeClaim),
                            // As recorded so far: `<ns>/<name>`, no `pvc:`.
                            Source::Text(claim.object.to_string()),
                            ObjectRef::new(ns, &claim_wanted).to_string(),
                            Outcome::Skipped,
                            "exists (--conflict skip)",
                        ),
                        note(
                            ResourceType::Kube(ResourceKind::Pod),
                            // As recorded so far: `<ns>/<name>`, no `pod:`.
                            Source::Text(source.to_string()),
                            ObjectRef::new(ns, inputs.root_name(source)).to_string(),
                            Outcome::Skipped,
                            &format!("its claim {claim_wanted} exists (--conflict skip)"),
                        ),
                    ]);
                }
                (Ok(None), _) => {
                    plan.notes.push(note(
                        ResourceType::Kube(ResourceKind::PersistentVolumeClaim),
                        // As recorded so far: `<ns>/<name>`, no `pvc:`.
                        Source::Text(claim.object.to_string()),
                        ObjectRef::new(ns, &claim_wanted).to_string(),
                        Outcome::Skipped,
                        "exists (--conflict skip): the live claim is kept",
                    ));
                    continue;
                }
                (Err(e), _) => return Volumes::Fail(e, Vec::new()),
            };
            if !original {
                plan.steps.push(Step::Volume(v.clone()));
            }
            let pv_name = inputs.suffixed(pv.object.name());
            let pv_reused = exists
                .get(&(ResourceKind::PersistentVolume, ObjectRef::cluster(&pv_name)))
                == Some(&Existing::Ours);
            plan.steps.push(Step::Object(ObjectStep {
                kind: ResourceKind::PersistentVolume,
                target: ObjectRef::cluster(&pv_name),
                source: source_of(
                    ResourceKind::PersistentVolume,
                    &ObjectRef::cluster(pv.object.name()),
                ),
                source_uid: pv.uid.clone(),
                object_id: pv.object_id,
                generated: None,
                edits: ObjectEdits {
                    pv_claim_ref: Some((ns.to_string(), claim_name.clone())),
                    ..base_edits(inputs, &pv_name, None)
                },
                pv_volume: Some((v.volume_id.clone(), v.driver)),
                pod_inline: Vec::new(),
                changes: vec![
                    format!("name {} -> {pv_name}", pv.object.name()),
                    format!("claimRef -> {ns}/{claim_name}"),
                ],
                reused: pv_reused,
            }));
            let mut changes = vec![format!("volumeName -> {pv_name}")];
            if claim_name != claim.object.name() {
                changes.insert(0, format!("name {} -> {claim_name}", claim.object.name()));
            }
            plan.steps.push(Step::Object(ObjectStep {
                kind: ResourceKind::PersistentVolumeClaim,
                target: ObjectRef::new(ns, &claim_name),
                source: source_of(ResourceKind::PersistentVolumeClaim, &claim.object),
                source_uid: claim.uid.clone(),
                object_id: claim.object_id,
                generated: None,
                edits: ObjectEdits {
                    pvc_volume_name: Some(pv_name.clone()),
                    ..base_edits(inputs, &claim_name, Some(ns))
                },
                pv_volume: None,
                pod_inline: Vec::new(),
                changes,
                reused: claim_reused,
            }));
            if claim_name != claim.object.name() {
                plan.claim_renames
                    .insert(claim.object.name().to_string(), claim_name);
            }
        }
    }
    Volumes::Planned(plan)
}

#[cfg(test)]
mod tests {
    use super::statefulset_claim;

    #[test]
    fn statefulset_claims_follow_the_statefulset_name() {
        assert_eq!(
            statefulset_claim("data-db-0", "db-0", "db", "db-r1"),
            "data-db-r1-0"
        );
        assert_eq!(
            statefulset_claim("data-db-1", "db-1", "db", "db"),
            "data-db-1"
        );
        // A claim of another shape keeps its name.
        assert_eq!(statefulset_claim("shared", "db-1", "db", "db-r1"), "shared");
    }
}
