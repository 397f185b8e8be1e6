//! The restore planner: a pure function from a checkpoint, a request and what already
//! exists in the target to the steps of the restore: names, edits, conflict decisions, in
//! order. Nothing is read or written here; [`super::execute`] carries the plan out.
//!
//! Per pod, decided before anything of it is made (so that a pod that cannot be restored
//! whole leaves nothing behind): its name under the conflict policy; that every Cinder
//! volume it mounts has a backup; for each volume through a claim, the PV under a fresh
//! name and the claim under its own (or renamed) name, bound to each other; then the pod,
//! with claim names and inline volume ids swapped and `spec.nodeName` cleared.

use std::collections::{BTreeMap, BTreeSet};

use super::error::RestoreError;
use super::request::{ConflictPolicy, RestoreRequest};
use crate::codec::{ObjectEdits, ResourceKind};
use crate::model::{
    Checkpoint, ObjectId, ObjectRef, Outcome, ResourceRecord, ResourceType, RestoreId,
    RestoredResource, VolumeDriver, VolumeId, VolumeRecord,
};

/// Annotation: the checkpoint a restored object came from.
pub const ANNOTATION_CHECKPOINT: &str = "podbank.io/checkpoint";
/// Annotation: the restore that created the object.
pub const ANNOTATION_RESTORE: &str = "podbank.io/restore";
/// Annotation: Karbor's `restore_description`.
pub const ANNOTATION_DESCRIPTION: &str = "podbank.io/restore-description";

/// An object of the target, by kind and name.
pub type Key = (ResourceKind, ObjectRef);

/// What the target holds under a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Nothing.
    Absent,
    /// An object this restore made (an earlier run of it): reused.
    Ours,
    /// Someone else's object.
    Foreign,
}

/// One step of a pod's restore.
#[derive(Debug, Clone)]
pub enum Step {
    /// A new Cinder volume from the record's backup.
    Volume(VolumeRecord),
    /// An object created from its stored bytes, edited.
    Object(ObjectStep),
}

/// An object to create.
#[derive(Debug, Clone)]
pub struct ObjectStep {
    /// What it is.
    pub kind: ResourceKind,
    /// Where it goes (namespace empty for cluster-scoped kinds).
    pub target: ObjectRef,
    /// What it was: `pod:<ns>/<name>`, `pvc:<ns>/<name>`, `pv:<name>`.
    pub source: String,
    /// Its stored bytes.
    pub object_id: Option<ObjectId>,
    /// The edits known now.
    pub edits: ObjectEdits,
    /// For a PV: the Cinder volume whose new id goes into it, and how it is attached.
    pub pv_volume: Option<(VolumeId, Option<VolumeDriver>)>,
    /// For a pod: inline Cinder volumes whose new ids go into it.
    pub pod_inline: Vec<VolumeId>,
    /// What changes, in words (the plan of a dry run shows them).
    pub changes: Vec<String>,
    /// Made by an earlier run of this restore: not created again.
    pub reused: bool,
}

/// What happens to one pod of the checkpoint.
#[derive(Debug)]
pub enum PodPlan {
    /// Its steps, in order.
    Restore {
        /// The pod.
        pod: ObjectRef,
        /// The steps.
        steps: Vec<Step>,
        /// Outcomes known already (volumes left to Kubernetes).
        notes: Vec<RestoredResource>,
    },
    /// Left alone (conflict policy `skip`).
    Skip {
        /// The pod.
        pod: ObjectRef,
        /// Its outcomes and those of its objects.
        notes: Vec<RestoredResource>,
    },
    /// Cannot be restored; nothing of it is made.
    Fail {
        /// The pod.
        pod: ObjectRef,
        /// Why.
        error: RestoreError,
        /// Outcomes to record (the volume at fault).
        notes: Vec<RestoredResource>,
    },
}

/// What the planner needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The checkpoint.
    pub checkpoint: &'a Checkpoint,
    /// Its resource records.
    pub resources: &'a [ResourceRecord],
    /// The request.
    pub request: &'a RestoreRequest,
    /// The restore's id (annotations, renamed names).
    pub restore: &'a RestoreId,
}

impl Inputs<'_> {
    /// The pods to restore, in checkpoint order; fails for a pod asked for that the
    /// checkpoint does not hold.
    pub fn pods(&self) -> Result<Vec<&ResourceRecord>, RestoreError> {
        let req = self.request;
        let pods: Vec<&ResourceRecord> = self
            .resources
            .iter()
            .filter(|r| r.kind == ResourceType::Pod)
            .filter(|r| req.pods.is_empty() || req.pods.contains(&r.object))
            .collect();
        for p in &req.pods {
            if !pods.iter().any(|r| &r.object == p) {
                return Err(RestoreError::PodNotInCheckpoint {
                    pod: p.clone(),
                    checkpoint: self.checkpoint.id.clone(),
                });
            }
        }
        if req.params.restore_name.is_some() && pods.len() != 1 {
            return Err(RestoreError::RestoreNameNeedsOnePod(pods.len()));
        }
        Ok(pods)
    }

    fn find(&self, kind: &ResourceType, name: &ObjectRef) -> Option<&ResourceRecord> {
        self.resources
            .iter()
            .find(|r| &r.kind == kind && &r.object == name)
    }

    fn volumes_of(&self, pod: &ObjectRef) -> Vec<&VolumeRecord> {
        self.checkpoint
            .volumes
            .iter()
            .filter(|v| v.is_cinder() && v.pods.contains(pod))
            .collect()
    }

    fn target_namespace(&self, pod: &ObjectRef) -> String {
        self.request
            .namespace_map
            .target(pod.namespace())
            .to_string()
    }

    fn pod_name(&self, pod: &ObjectRef) -> String {
        self.request
            .params
            .restore_name
            .clone()
            .unwrap_or_else(|| pod.name().to_string())
    }

    fn suffixed(&self, name: &str) -> String {
        with_suffix(name, self.restore.suffix())
    }

    /// Every name whose existence decides the plan: pods, claims (and their renamed
    /// copies), PVs under their fresh names.
    pub fn candidates(&self, pods: &[&ResourceRecord]) -> BTreeSet<Key> {
        let mut out = BTreeSet::new();
        for pod in pods {
            let ns = self.target_namespace(&pod.object);
            let name = self.pod_name(&pod.object);
            out.insert((ResourceKind::Pod, ObjectRef::new(&ns, &name)));
            out.insert((ResourceKind::Pod, ObjectRef::new(&ns, self.suffixed(&name))));
            for v in self.volumes_of(&pod.object) {
                if let Some(claim) = &v.claim {
                    out.insert((
                        ResourceKind::PersistentVolumeClaim,
                        ObjectRef::new(&ns, claim.name()),
                    ));
                    out.insert((
                        ResourceKind::PersistentVolumeClaim,
                        ObjectRef::new(&ns, self.suffixed(claim.name())),
                    ));
                }
                if let Some(pv) = &v.persistent_volume {
                    out.insert((
                        ResourceKind::PersistentVolume,
                        ObjectRef::cluster(self.suffixed(pv)),
                    ));
                }
            }
        }
        out
    }
}

/// Kubernetes names are at most 253 characters.
pub fn with_suffix(name: &str, suffix: &str) -> String {
    let keep = 253usize.saturating_sub(suffix.len() + 1);
    let base: String = name.chars().take(keep).collect();
    format!("{}-{suffix}", base.trim_end_matches(['-', '.']))
}

/// The annotations every restored object gets.
pub fn annotations(inputs: &Inputs<'_>) -> Vec<(String, String)> {
    let mut a = vec![
        (
            ANNOTATION_CHECKPOINT.to_string(),
            inputs.checkpoint.id.to_string(),
        ),
        (ANNOTATION_RESTORE.to_string(), inputs.restore.to_string()),
    ];
    if let Some(d) = inputs
        .request
        .params
        .restore_description
        .as_ref()
        .filter(|d| !d.is_empty())
    {
        a.push((ANNOTATION_DESCRIPTION.to_string(), d.clone()));
    }
    a
}

fn note(
    kind: ResourceType,
    source: String,
    target: String,
    outcome: Outcome,
    reason: &str,
) -> RestoredResource {
    RestoredResource {
        kind,
        source,
        target,
        new_id: String::new(),
        outcome,
        reason: reason.to_string(),
    }
}

fn volume_note(v: &VolumeRecord, outcome: Outcome, reason: String) -> RestoredResource {
    RestoredResource {
        kind: ResourceType::CinderVolume,
        source: v.volume_id.to_string(),
        target: String::new(),
        new_id: String::new(),
        outcome,
        reason,
    }
}

/// The name to create `kind` under, following the conflict policy: `Ok(None)` to skip,
/// `Ok(Some((name, reused)))`.
fn choose(
    kind: ResourceKind,
    ns: &str,
    name: &str,
    inputs: &Inputs<'_>,
    exists: &BTreeMap<Key, Existing>,
) -> Result<Option<(String, bool)>, RestoreError> {
    let at = |n: &str| {
        exists
            .get(&(kind, ObjectRef::new(ns, n)))
            .copied()
            .unwrap_or(Existing::Absent)
    };
    match at(name) {
        Existing::Absent => Ok(Some((name.to_string(), false))),
        Existing::Ours => Ok(Some((name.to_string(), true))),
        Existing::Foreign => match inputs.request.conflict {
            ConflictPolicy::Fail => Err(RestoreError::Exists {
                kind: kind.kind(),
                name: ObjectRef::new(ns, name),
            }),
            ConflictPolicy::Skip => Ok(None),
            ConflictPolicy::Rename => {
                let renamed = inputs.suffixed(name);
                match at(&renamed) {
                    Existing::Absent => Ok(Some((renamed, false))),
                    Existing::Ours => Ok(Some((renamed, true))),
                    Existing::Foreign => Err(RestoreError::BothExist {
                        kind: kind.kind(),
                        name: ObjectRef::new(ns, name),
                        renamed,
                    }),
                }
            }
        },
    }
}

/// Plans the restore of every pod of `pods`.
pub fn plan(
    inputs: &Inputs<'_>,
    pods: &[&ResourceRecord],
    exists: &BTreeMap<Key, Existing>,
) -> Vec<PodPlan> {
    pods.iter()
        .map(|pod| plan_pod(inputs, pod, exists))
        .collect()
}

fn plan_pod(
    inputs: &Inputs<'_>,
    pod: &ResourceRecord,
    exists: &BTreeMap<Key, Existing>,
) -> PodPlan {
    let source = pod.object.clone();
    let ns = inputs.target_namespace(&source);
    let fail = |error: RestoreError, notes: Vec<RestoredResource>| PodPlan::Fail {
        pod: source.clone(),
        error,
        notes,
    };
    let wanted = inputs.pod_name(&source);
    let (pod_name, pod_reused) = match choose(ResourceKind::Pod, &ns, &wanted, inputs, exists) {
        Ok(Some(chosen)) => chosen,
        Ok(None) => {
            return PodPlan::Skip {
                pod: source.clone(),
                notes: vec![note(
                    ResourceType::Pod,
                    source.to_string(),
                    ObjectRef::new(&ns, &wanted).to_string(),
                    Outcome::Skipped,
                    "exists (--conflict skip)",
                )],
            }
        }
        Err(e) => return fail(e, Vec::new()),
    };
    let volumes = inputs.volumes_of(&source);
    // Every volume must have a backup before anything is made.
    for v in &volumes {
        if !v.is_backed_up() {
            let error = RestoreError::NoBackup {
                volume: v.volume_id.clone(),
                status: v.status,
                reason: v.reason.clone(),
            };
            let n = volume_note(v, Outcome::Error, error.to_string());
            return fail(error, vec![n]);
        }
    }
    let edits = |name: &str, namespace: Option<&str>| ObjectEdits {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        drop_server_fields: true,
        set_annotations: annotations(inputs),
        ..Default::default()
    };
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    let mut claim_renames = BTreeMap::new();
    let mut inline = Vec::new();
    for v in volumes {
        if v.driver == Some(VolumeDriver::InlineCinder) {
            steps.push(Step::Volume(v.clone()));
            inline.push(v.volume_id.clone());
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
            claim_ref
                .as_ref()
                .and_then(|c| inputs.find(&ResourceType::PersistentVolumeClaim, c)),
            pv_ref
                .as_ref()
                .and_then(|p| inputs.find(&ResourceType::PersistentVolume, p)),
        ) else {
            let error = RestoreError::MissingRecords {
                claim: claim_ref.map(|c| c.to_string()).unwrap_or_default(),
                persistent_volume: v.persistent_volume.clone().unwrap_or_default(),
            };
            let n = volume_note(v, Outcome::Error, error.to_string());
            return fail(error, vec![n]);
        };
        // Generic ephemeral volumes: the claim belongs to the pod's ephemeral controller.
        if v.ephemeral {
            notes.push(volume_note(
                v,
                Outcome::Skipped,
                "generic ephemeral volume: Kubernetes re-creates its claim from the pod's template, empty".into(),
            ));
            continue;
        }
        let claim_wanted = claim.object.name().to_string();
        let (claim_name, claim_reused) = match choose(
            ResourceKind::PersistentVolumeClaim,
            &ns,
            &claim_wanted,
            inputs,
            exists,
        ) {
            Ok(Some(chosen)) => chosen,
            Ok(None) => {
                return PodPlan::Skip {
                    pod: source.clone(),
                    notes: vec![
                        note(
                            ResourceType::PersistentVolumeClaim,
                            claim.object.to_string(),
                            ObjectRef::new(&ns, &claim_wanted).to_string(),
                            Outcome::Skipped,
                            "exists (--conflict skip)",
                        ),
                        note(
                            ResourceType::Pod,
                            source.to_string(),
                            ObjectRef::new(&ns, &pod_name).to_string(),
                            Outcome::Skipped,
                            &format!("its claim {claim_wanted} exists (--conflict skip)"),
                        ),
                    ],
                }
            }
            Err(e) => return fail(e, Vec::new()),
        };
        steps.push(Step::Volume(v.clone()));
        let pv_name = inputs.suffixed(pv.object.name());
        let pv_reused = exists.get(&(ResourceKind::PersistentVolume, ObjectRef::cluster(&pv_name)))
            == Some(&Existing::Ours);
        steps.push(Step::Object(ObjectStep {
            kind: ResourceKind::PersistentVolume,
            target: ObjectRef::cluster(&pv_name),
            source: format!("pv:{}", pv.object.name()),
            object_id: pv.object_id,
            edits: ObjectEdits {
                pv_claim_ref: Some((ns.clone(), claim_name.clone())),
                ..edits(&pv_name, None)
            },
            pv_volume: Some((v.volume_id.clone(), v.driver)),
            pod_inline: Vec::new(),
            changes: vec![
                format!("name {} -> {pv_name}", pv.object.name()),
                format!("claimRef -> {ns}/{claim_name}"),
            ],
            reused: pv_reused,
        }));
        steps.push(Step::Object(ObjectStep {
            kind: ResourceKind::PersistentVolumeClaim,
            target: ObjectRef::new(&ns, &claim_name),
            source: format!("pvc:{}", claim.object),
            object_id: claim.object_id,
            edits: ObjectEdits {
                pvc_volume_name: Some(pv_name.clone()),
                ..edits(&claim_name, Some(&ns))
            },
            pv_volume: None,
            pod_inline: Vec::new(),
            changes: vec![format!("volumeName -> {pv_name}")],
            reused: claim_reused,
        }));
        if claim_name != claim_wanted {
            claim_renames.insert(claim_wanted, claim_name);
        }
    }
    let mut changes = Vec::new();
    if !inputs.request.keep_node {
        changes.push("spec.nodeName cleared".to_string());
    }
    for (old, new) in &claim_renames {
        changes.push(format!("claim {old} -> {new}"));
    }
    steps.push(Step::Object(ObjectStep {
        kind: ResourceKind::Pod,
        target: ObjectRef::new(&ns, &pod_name),
        source: format!("pod:{source}"),
        object_id: pod.object_id,
        edits: ObjectEdits {
            pod_claim_renames: claim_renames,
            pod_clear_node_name: !inputs.request.keep_node,
            ..edits(&pod_name, Some(&ns))
        },
        pv_volume: None,
        pod_inline: inline,
        changes,
        reused: pod_reused,
    }));
    PodPlan::Restore {
        pod: source,
        steps,
        notes,
    }
}
