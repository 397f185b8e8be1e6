//! The units of a restore and the planning of what comes first: how pods group into units
//! (one per restore root: a top owner whose controller makes the pods, or a pod restored
//! as itself), and the namespaces and referenced objects the pods need. [`super::plan`]
//! calls these in order; each root's unit is planned whole in [`super::roots`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::super::error::RestoreError;
use super::super::request::ConflictPolicy;
use super::{base_edits, existing, note, Existing, Inputs, Key, ObjectStep, Step, UnitPlan};
use crate::codec::{ObjectEdits, ResourceKind};
use crate::model::{
    ObjectRef, Outcome, Relation, ResourceRecord, ResourceStatus, ResourceType, Source, Uid,
};

/// A root of the restore and the pods it brings back.
#[derive(Debug)]
pub enum Unit<'a> {
    /// A pod restored as itself, without owner references.
    Pod {
        /// The pod.
        pod: &'a ResourceRecord,
        /// Why its owners are not restored, if it has any.
        owners_left: Option<String>,
    },
    /// A top owner, restored so that its controller makes the pods.
    Workload {
        /// The top owner.
        root: &'a ResourceRecord,
        /// Its kind.
        kind: ResourceKind,
        /// The owners between it and the pods (a Deployment's ReplicaSet), left to the
        /// controllers.
        between: Vec<&'a ResourceRecord>,
        /// Its pods in the checkpoint.
        pods: Vec<&'a ResourceRecord>,
    },
}

impl<'a> Unit<'a> {
    /// What is created to bring the pods back.
    pub(super) fn root(&self) -> &'a ResourceRecord {
        match self {
            Unit::Pod { pod, .. } => pod,
            Unit::Workload { root, .. } => root,
        }
    }

    /// The root's kind.
    pub(super) fn root_kind(&self) -> ResourceKind {
        match self {
            Unit::Pod { .. } => ResourceKind::Pod,
            Unit::Workload { kind, .. } => *kind,
        }
    }

    /// The unit's pods.
    pub(super) fn pods(&self) -> Vec<&'a ResourceRecord> {
        match self {
            Unit::Pod { pod, .. } => vec![*pod],
            Unit::Workload { pods, .. } => pods.clone(),
        }
    }
}

/// `deployment:<ns>/<name>`: how the record names a restored object's source.
pub(super) fn source_of(kind: ResourceKind, name: &ObjectRef) -> Source {
    Source::object(kind, name.clone())
}

/// A pod's owner chain in the checkpoint.
enum Chain<'a> {
    /// From its controller up to the top owner the checkpoint holds (empty: no controller).
    Owners(Vec<&'a ResourceRecord>),
    /// Its controller cannot be restored, and why.
    Broken(String),
}

/// The owner chain of `pod` up to its top owner in the checkpoint.
fn owner_chain<'a>(inputs: &Inputs<'a>, pod: &'a ResourceRecord) -> Chain<'a> {
    let mut chain: Vec<&'a ResourceRecord> = Vec::new();
    let mut current = pod;
    while let Some(edge) = current
        .edges
        .iter()
        .find(|e| e.relation == Relation::Owner && e.controller)
    {
        let known = ResourceKind::of_type(&edge.kind).filter(|k| k.is_owner());
        let found = known.and_then(|_| inputs.find(&edge.kind, &edge.target));
        let why = match found {
            Some(r)
                if r.status == ResourceStatus::Protected
                    && r.object_id.is_some()
                    && (edge.uid.is_empty() || edge.uid == r.uid) =>
            {
                chain.push(r);
                current = r;
                continue;
            }
            _ if known.is_none() => format!(
                "its controller {} {} is of a kind podbank does not restore",
                edge.kind.kind_name(),
                edge.target
            ),
            Some(r) => format!(
                "its controller {} {} is not in the checkpoint ({}{})",
                edge.kind.kind_name(),
                edge.target,
                r.status,
                if r.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.reason)
                }
            ),
            None => format!(
                "its controller {} {} is not in the checkpoint",
                edge.kind.kind_name(),
                edge.target
            ),
        };
        // An owner whose own owner is missing is the top: restored itself.
        return if chain.is_empty() {
            Chain::Broken(why)
        } else {
            Chain::Owners(chain)
        };
    }
    Chain::Owners(chain)
}

/// The units of `pods`, in checkpoint order of their first pod.
pub fn units<'a>(inputs: &Inputs<'a>, pods: &[&'a ResourceRecord]) -> Vec<Unit<'a>> {
    let mut out: Vec<Unit<'a>> = Vec::new();
    let mut roots: HashMap<(&ResourceType, &ObjectRef), usize> = HashMap::new();
    for pod in pods {
        let has_owners = pod.edges.iter().any(|e| e.relation == Relation::Owner);
        if inputs.request.pods_only {
            out.push(Unit::Pod {
                pod,
                owners_left: has_owners
                    .then(|| "--pods-only: restored as a bare pod, without its owners".into()),
            });
            continue;
        }
        match owner_chain(inputs, pod) {
            Chain::Owners(chain) if chain.is_empty() => out.push(Unit::Pod {
                pod,
                owners_left: has_owners
                    .then(|| "it has no controller: restored without its owner references".into()),
            }),
            Chain::Owners(mut chain) => {
                let root = chain.pop().unwrap_or(pod);
                let kind = ResourceKind::of_type(&root.kind).unwrap_or(ResourceKind::Pod);
                match roots.get(&(&root.kind, &root.object)) {
                    Some(&i) => {
                        if let Unit::Workload { pods, between, .. } = &mut out[i] {
                            pods.push(pod);
                            for b in chain {
                                if !between
                                    .iter()
                                    .any(|x| x.object == b.object && x.kind == b.kind)
                                {
                                    between.push(b);
                                }
                            }
                        }
                    }
                    None => {
                        roots.insert((&root.kind, &root.object), out.len());
                        out.push(Unit::Workload {
                            root,
                            kind,
                            between: chain,
                            pods: vec![pod],
                        });
                    }
                }
            }
            Chain::Broken(why) => out.push(Unit::Pod {
                pod,
                owners_left: Some(format!("{why}: restored as a bare pod")),
            }),
        }
    }
    out
}

/// The target namespaces of `units`, with the namespace each comes from.
pub(super) fn namespaces(inputs: &Inputs<'_>, units: &[Unit<'_>]) -> BTreeMap<String, String> {
    units
        .iter()
        .map(|u| {
            let source = u.root().object.namespace().to_string();
            (inputs.target_namespace(&source), source)
        })
        .collect()
}

/// An object the pods reference (ConfigMap, Secret, ServiceAccount).
#[derive(Debug, Clone)]
pub(super) struct Referenced<'a> {
    /// Its kind.
    pub kind: ResourceKind,
    /// Its name in the checkpoint.
    pub source: ObjectRef,
    /// Its name in the target.
    pub target: ObjectRef,
    /// Its record, if the checkpoint has one.
    pub record: Option<&'a ResourceRecord>,
}

/// What the pods of `units` reference, once each.
pub(super) fn referenced<'a>(inputs: &Inputs<'a>, units: &[Unit<'a>]) -> Vec<Referenced<'a>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for pod in units.iter().flat_map(Unit::pods) {
        for e in &pod.edges {
            let kind = match e.relation {
                Relation::ConfigMap => ResourceKind::ConfigMap,
                Relation::Secret => ResourceKind::Secret,
                Relation::ServiceAccount => ResourceKind::ServiceAccount,
                _ => continue,
            };
            if !seen.insert((kind, e.target.clone())) {
                continue;
            }
            out.push(Referenced {
                kind,
                source: e.target.clone(),
                target: ObjectRef::new(
                    inputs.target_namespace(e.target.namespace()),
                    e.target.name(),
                ),
                record: inputs.find(&e.kind, &e.target),
            });
        }
    }
    out
}

/// The object step of a stored record, under `target`.
pub(super) fn stored_step(
    inputs: &Inputs<'_>,
    kind: ResourceKind,
    record: &ResourceRecord,
    target: ObjectRef,
    reused: bool,
) -> ObjectStep {
    let ns = (!target.namespace().is_empty()).then(|| target.namespace().to_string());
    let mut changes = Vec::new();
    if target.name() != record.object.name() {
        changes.push(format!(
            "name {} -> {}",
            record.object.name(),
            target.name()
        ));
    }
    if ns
        .as_deref()
        .is_some_and(|n| n != record.object.namespace())
    {
        changes.push(format!(
            "namespace {} -> {}",
            record.object.namespace(),
            target.namespace()
        ));
    }
    ObjectStep {
        kind,
        source: source_of(kind, &record.object),
        source_uid: record.uid.clone(),
        object_id: record.object_id,
        generated: None,
        edits: base_edits(inputs, target.name(), ns.as_deref()),
        pv_volume: None,
        pod_inline: Vec::new(),
        changes,
        reused,
        target,
    }
}

/// Each target namespace that does not exist, from its stored Namespace object (a bare
/// one for a checkpoint that holds none).
pub(super) fn plan_namespaces(
    inputs: &Inputs<'_>,
    units: &[Unit<'_>],
    exists: &BTreeMap<Key, Existing>,
) -> Option<UnitPlan> {
    let mut steps = Vec::new();
    for (target, source) in namespaces(inputs, units) {
        let state = existing(exists, ResourceKind::Namespace, "", &target);
        if matches!(state, Existing::Foreign | Existing::Different) {
            continue;
        }
        let reused = state == Existing::Ours;
        let record = inputs
            .find(
                &ResourceType::Kube(ResourceKind::Namespace),
                &ObjectRef::cluster(&source),
            )
            .filter(|r| r.status == ResourceStatus::Protected && r.object_id.is_some());
        let step = match record {
            Some(r) => stored_step(
                inputs,
                ResourceKind::Namespace,
                r,
                ObjectRef::cluster(&target),
                reused,
            ),
            None => {
                let annotations: serde_json::Map<String, serde_json::Value> =
                    super::annotations(inputs)
                        .into_iter()
                        .map(|(k, v)| (k, serde_json::Value::String(v)))
                        .collect();
                let body = serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": target, "annotations": annotations},
                });
                ObjectStep {
                    kind: ResourceKind::Namespace,
                    target: ObjectRef::cluster(&target),
                    source: source_of(ResourceKind::Namespace, &ObjectRef::cluster(&source)),
                    source_uid: Uid::default(),
                    object_id: None,
                    generated: Some(body.to_string().into_bytes()),
                    edits: ObjectEdits::default(),
                    pv_volume: None,
                    pod_inline: Vec::new(),
                    changes: vec!["the checkpoint holds no Namespace object: a bare one".into()],
                    reused,
                }
            }
        };
        steps.push(Step::Object(step));
    }
    (!steps.is_empty()).then(|| UnitPlan::Restore {
        unit: "namespaces".into(),
        steps,
        notes: Vec::new(),
    })
}

/// The referenced ConfigMaps, Secrets and ServiceAccounts the target lacks.
pub(super) fn plan_referenced(
    inputs: &Inputs<'_>,
    units: &[Unit<'_>],
    exists: &BTreeMap<Key, Existing>,
) -> Vec<UnitPlan> {
    let (mut steps, mut notes, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for r in referenced(inputs, units) {
        // Kubernetes makes `default` in every namespace.
        if r.kind == ResourceKind::ServiceAccount && r.source.name() == "default" {
            continue;
        }
        let state = existing(exists, r.kind, r.target.namespace(), r.target.name());
        let skipped = |reason: String| {
            note(
                r.kind.resource_type(),
                source_of(r.kind, &r.source),
                r.target.to_string(),
                Outcome::Skipped,
                &reason,
            )
        };
        let Some(record) = r.record else {
            continue;
        };
        match (record.status, state) {
            (ResourceStatus::Protected, Existing::Absent | Existing::Ours)
                if record.object_id.is_some() =>
            {
                steps.push(Step::Object(stored_step(
                    inputs,
                    r.kind,
                    record,
                    r.target.clone(),
                    state == Existing::Ours,
                )));
            }
            (ResourceStatus::Protected, Existing::Different) => match inputs.request.conflict {
                ConflictPolicy::Fail => failures.push(UnitPlan::Fail {
                    unit: format!("{} {}", r.kind.kind(), r.target),
                    error: RestoreError::Differs {
                        kind: r.kind.kind(),
                        name: r.target.clone(),
                    },
                    notes: vec![note(
                        r.kind.resource_type(),
                        source_of(r.kind, &r.source),
                        r.target.to_string(),
                        Outcome::Error,
                        "exists in the target with other content (--conflict fail): the live one is left alone",
                    )],
                }),
                ConflictPolicy::Skip => notes.push(skipped(
                    "exists in the target with other content: the live one is kept (--conflict skip)"
                        .into(),
                )),
                ConflictPolicy::Rename => notes.push(skipped(
                    "exists in the target with other content: the live one is kept, and the pods \
                     use it (--conflict rename renames the pods' owners and claims, not what \
                     they reference)"
                        .into(),
                )),
            },
            (ResourceStatus::Protected, _) => notes.push(skipped(
                "exists in the target with the checkpoint's content: the live one is used".into(),
            )),
            (_, Existing::Absent) if inputs.dry_run => notes.push(skipped(format!(
                "not in the checkpoint ({}): it must exist in the target before the pods can \
                 start (not checked: a dry run does not look at the target)",
                record.reason
            ))),
            (_, Existing::Absent) => notes.push(skipped(format!(
                "not in the checkpoint ({}): it must exist in the target before the pods can \
                 start, and the target has none",
                record.reason
            ))),
            (_, _) => notes.push(skipped(format!(
                "not in the checkpoint ({}): the target's is used",
                record.reason
            ))),
        }
    }
    if !steps.is_empty() || !notes.is_empty() {
        failures.push(UnitPlan::Restore {
            unit: "referenced objects".into(),
            steps,
            notes,
        });
    }
    failures
}
