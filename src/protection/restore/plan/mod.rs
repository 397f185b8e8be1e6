//! The restore planner: a pure function from a checkpoint, a request and what already
//! exists in the target to the steps of the restore: names, edits, conflict decisions, in
//! order. Nothing is read or written here; [`super::execute`] carries the plan out.
//!
//! The restore is made of *units*, top-down ([`plan`], grouping by [`units()`]):
//! 1. what the pods need first: each target namespace that does not exist (from the
//!    stored Namespace object), then the ConfigMaps, Secrets and ServiceAccounts they
//!    reference that the target lacks;
//! 2. one unit per restore root: a pod with a controller owner comes back through its top
//!    owner (Deployment, StatefulSet, DaemonSet, CronJob; a ReplicaSet or Job without
//!    owner itself), whose controller then makes the pods; a bare pod (or every pod with
//!    `--pods-only`) comes back as itself.
//!
//! Per unit, decided before anything of it is made (so that a unit that cannot be restored
//! whole leaves nothing behind): its name under the conflict policy; that every Cinder
//! volume it mounts has a backup; for each volume through a claim, the PV under a fresh
//! name and the claim under the name its pod (or controller) expects, bound to each other
//! ([`volumes`]); then the root, with claim names and inline volume ids swapped. Owner
//! references are rewritten when the executor knows the new owners' uids: references to
//! anything this restore did not create are removed.

mod roots;
mod units;
mod volumes;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::error::RestoreError;
use super::request::{ConflictPolicy, RestoreRequest};
use crate::codec::{ObjectEdits, ResourceKind};
use crate::model::{
    Checkpoint, ObjectId, ObjectRef, Outcome, ResourceRecord, ResourceType, RestoreId,
    RestoredResource, Source, Uid, VolumeDriver, VolumeId, VolumeRecord,
};

pub use units::{units, Unit};

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
    /// Someone else's object (for what pods reference: with the checkpoint's content).
    Foreign,
    /// Someone else's ConfigMap, Secret or ServiceAccount with other content than the
    /// checkpoint's.
    Different,
}

/// One step of a unit's restore.
// Steps live in short vectors, one unit at a time: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
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
    /// What it was: `pod:<ns>/<name>`, `pvc:<ns>/<name>`, `pv:<name>`, `deployment:...`.
    pub source: Source,
    /// Its uid in the checkpoint (owner references to it are rewritten to the new uid).
    pub source_uid: Uid,
    /// Its stored bytes.
    pub object_id: Option<ObjectId>,
    /// The object itself, for what the checkpoint does not hold (a namespace of an old
    /// checkpoint): JSON, already complete.
    pub generated: Option<Vec<u8>>,
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

/// What happens to one unit of the restore.
#[derive(Debug)]
pub enum UnitPlan {
    /// Its steps, in order.
    Restore {
        /// What it is, for messages (`pod ns/name`, `Deployment ns/web`).
        unit: String,
        /// The steps.
        steps: Vec<Step>,
        /// Outcomes known already (volumes left to Kubernetes, pods left to controllers).
        notes: Vec<RestoredResource>,
    },
    /// Left alone (conflict policy `skip`).
    Skip {
        /// What it is.
        unit: String,
        /// Its outcomes and those of its objects.
        notes: Vec<RestoredResource>,
    },
    /// Cannot be restored; nothing of it is made.
    Fail {
        /// What it is.
        unit: String,
        /// Why.
        error: RestoreError,
        /// Outcomes to record (the volume at fault).
        notes: Vec<RestoredResource>,
    },
}

/// The whole restore: what the roots need, made first and in order, then the units, which
/// are independent of each other.
#[derive(Debug)]
pub struct Plan {
    /// Namespaces, then referenced objects.
    pub first: Vec<UnitPlan>,
    /// One per root.
    pub units: Vec<UnitPlan>,
}

/// Plans the restore of `units` (from [`units()`]), top-down: first the target namespaces
/// that do not exist, then the referenced objects the target lacks ([`mod@units`]), then each
/// root's unit, whole ([`roots`]).
pub fn plan(inputs: &Inputs<'_>, units: &[Unit<'_>], exists: &BTreeMap<Key, Existing>) -> Plan {
    let first = units::plan_namespaces(inputs, units, exists)
        .into_iter()
        .chain(units::plan_referenced(inputs, units, exists))
        .collect();
    let units = units
        .iter()
        .map(|u| roots::plan_unit(inputs, u, exists))
        .collect();
    Plan { first, units }
}

impl Plan {
    /// How many volume steps and object steps it has, to make.
    pub fn counts(&self) -> (u64, u64) {
        let mut counts = (0, 0);
        for unit in self.first.iter().chain(&self.units) {
            if let UnitPlan::Restore { steps, .. } = unit {
                for step in steps {
                    match step {
                        Step::Volume(_) => counts.0 += 1,
                        Step::Object(_) => counts.1 += 1,
                    }
                }
            }
        }
        counts
    }
}

/// The checkpoint's records by type and name, and its Cinder volume records by pod.
#[derive(Debug, Default)]
pub struct Records<'a> {
    by_name: HashMap<(&'a ResourceType, &'a ObjectRef), &'a ResourceRecord>,
    volumes_by_pod: HashMap<&'a ObjectRef, Vec<&'a VolumeRecord>>,
}

impl<'a> Records<'a> {
    /// An index of `resources` and of the Cinder records of `volumes`.
    pub fn new(resources: &'a [ResourceRecord], volumes: &'a [VolumeRecord]) -> Self {
        let mut volumes_by_pod: HashMap<&ObjectRef, Vec<&VolumeRecord>> = HashMap::new();
        for v in volumes.iter().filter(|v| v.is_cinder()) {
            for pod in &v.pods {
                volumes_by_pod.entry(pod).or_default().push(v);
            }
        }
        Self {
            by_name: resources
                .iter()
                .map(|r| ((&r.kind, &r.object), r))
                .collect(),
            volumes_by_pod,
        }
    }

    fn get(&self, kind: &ResourceType, name: &ObjectRef) -> Option<&'a ResourceRecord> {
        self.by_name.get(&(kind, name)).copied()
    }
}

/// What the planner needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The checkpoint.
    pub checkpoint: &'a Checkpoint,
    /// Its resource records.
    pub resources: &'a [ResourceRecord],
    /// The same, by name.
    pub records: &'a Records<'a>,
    /// The request.
    pub request: &'a RestoreRequest,
    /// The restore's id (annotations, renamed names).
    pub restore: &'a RestoreId,
    /// A dry run: the target was not looked at, so an absent object is not known to be
    /// missing there.
    pub dry_run: bool,
}

impl<'a> Inputs<'a> {
    /// The pods to restore, in checkpoint order; fails for a pod asked for that the
    /// checkpoint does not hold.
    pub fn pods(&self) -> Result<Vec<&'a ResourceRecord>, RestoreError> {
        let req = self.request;
        let pods: Vec<&ResourceRecord> = self
            .resources
            .iter()
            .filter(|r| r.kind == ResourceType::Kube(ResourceKind::Pod))
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
        if req.parameters.restore_name.is_some() && pods.len() != 1 {
            return Err(RestoreError::RestoreNameNeedsOnePod(pods.len()));
        }
        Ok(pods)
    }

    fn find(&self, kind: &ResourceType, name: &ObjectRef) -> Option<&'a ResourceRecord> {
        self.records.get(kind, name)
    }

    fn volumes_of(&self, pod: &ObjectRef) -> &'a [&'a VolumeRecord] {
        self.records
            .volumes_by_pod
            .get(pod)
            .map_or(&[], Vec::as_slice)
    }

    fn target_namespace(&self, source_namespace: &str) -> String {
        self.request
            .namespace_map
            .target(source_namespace)
            .to_string()
    }

    /// The name the root of a unit is restored under (Karbor's `restore_name`, else its
    /// own).
    fn root_name(&self, root: &ObjectRef) -> String {
        self.request
            .parameters
            .restore_name
            .clone()
            .unwrap_or_else(|| root.name().to_string())
    }

    fn suffixed(&self, name: &str) -> String {
        with_suffix(name, self.restore.suffix())
    }

    /// What the pods of `units` reference that the checkpoint holds: where each goes, and
    /// its stored object, to compare with one the target has.
    pub fn stored_referenced(&self, units: &[Unit<'a>]) -> Vec<(Key, ObjectId)> {
        units::referenced(self, units)
            .into_iter()
            .filter_map(|r| {
                let record = r.record?;
                let id = record
                    .object_id
                    .filter(|_| record.status == crate::model::ResourceStatus::Protected)?;
                Some(((r.kind, r.target), id))
            })
            .collect()
    }

    /// Every name whose existence decides the plan: namespaces, referenced objects, roots
    /// (and their renamed copies), claims (and theirs), PVs under their fresh names.
    pub fn candidates(&self, units: &[Unit<'a>]) -> BTreeSet<Key> {
        let mut out = BTreeSet::new();
        for ns in units::namespaces(self, units).into_keys() {
            out.insert((ResourceKind::Namespace, ObjectRef::cluster(ns)));
        }
        for r in units::referenced(self, units) {
            out.insert((r.kind, r.target));
        }
        for unit in units {
            let root = unit.root();
            let kind = unit.root_kind();
            let ns = self.target_namespace(root.object.namespace());
            let name = self.root_name(&root.object);
            out.insert((kind, ObjectRef::new(&ns, &name)));
            out.insert((kind, ObjectRef::new(&ns, self.suffixed(&name))));
            for pod in unit.pods() {
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
        .parameters
        .restore_description
        .as_ref()
        .filter(|d| !d.is_empty())
    {
        a.push((ANNOTATION_DESCRIPTION.to_string(), d.clone()));
    }
    a
}

/// The edits every restored object gets: its name and namespace, server fields dropped,
/// the restore's annotations.
fn base_edits(inputs: &Inputs<'_>, name: &str, namespace: Option<&str>) -> ObjectEdits {
    ObjectEdits {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        drop_server_fields: true,
        set_annotations: annotations(inputs),
        ..Default::default()
    }
}

fn note(
    kind: ResourceType,
    source: Source,
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
        source: Source::Volume(v.volume_id.clone()),
        target: String::new(),
        new_id: String::new(),
        outcome,
        reason,
    }
}

/// What the target holds at `kind` `ns/name`.
fn existing(
    exists: &BTreeMap<Key, Existing>,
    kind: ResourceKind,
    ns: &str,
    name: &str,
) -> Existing {
    exists
        .get(&(kind, ObjectRef::new(ns, name)))
        .copied()
        .unwrap_or(Existing::Absent)
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
    let at = |n: &str| existing(exists, kind, ns, n);
    match at(name) {
        Existing::Absent => Ok(Some((name.to_string(), false))),
        Existing::Ours => Ok(Some((name.to_string(), true))),
        Existing::Foreign | Existing::Different => match inputs.request.conflict {
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
                    Existing::Foreign | Existing::Different => Err(RestoreError::BothExist {
                        kind: kind.kind(),
                        name: ObjectRef::new(ns, name),
                        renamed,
                    }),
                }
            }
        },
    }
}
