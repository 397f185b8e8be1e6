//! A pod's closure: what it needs besides its claims and volumes to run again elsewhere
//! — its owners (ReplicaSet → Deployment, StatefulSet, DaemonSet, ReplicationController,
//! Job → CronJob), the ConfigMaps, Secrets and ServiceAccount it references, and its
//! Namespace — as summaries read from the stored objects (no I/O), and the set of names a
//! scan keeps ([`ClosureWants`]), so that memory follows the selected pods.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use super::{slim, ResourceError};
use crate::codec::{Encoding, ResourceKind, StoredObject};
use crate::model::{Edge, ObjectRef, Relation, ResourceType, Uid};

/// One entry of `metadata.ownerReferences`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRef {
    /// `kind` (`ReplicaSet`, ...).
    pub kind: String,
    /// `name` (in the object's namespace).
    pub name: String,
    /// `uid`.
    pub uid: Uid,
    /// `controller: true`: the managing controller.
    #[serde(default)]
    pub controller: bool,
}

impl OwnerRef {
    /// The kind podbank captures, if it is one.
    pub fn resource_kind(&self) -> Option<ResourceKind> {
        ResourceKind::from_kind(&self.kind).filter(|k| k.is_owner())
    }
}

/// What a pod references by name, besides its claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRefs {
    /// `metadata.ownerReferences`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<OwnerRef>,
    /// `spec.serviceAccountName` (or the deprecated `serviceAccount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// ConfigMaps named by volumes (`configMap`, `projected`) and by every container's
    /// `env[].valueFrom` and `envFrom`, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<String>,
    /// Secrets named the same ways, and by `imagePullSecrets`, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

impl PodRefs {
    /// The controller owner, if any.
    pub fn controller(&self) -> Option<&OwnerRef> {
        self.owners.iter().find(|o| o.controller)
    }

    /// The edges of a pod in `namespace`: owners, ConfigMaps, Secrets, ServiceAccount,
    /// Namespace.
    pub fn edges(&self, namespace: &str) -> Vec<Edge> {
        let mut out = owner_edges(namespace, &self.owners);
        let to = |relation: Relation, kind: ResourceKind, name: &str| Edge {
            relation,
            kind: kind.resource_type(),
            target: ObjectRef::new(namespace, name),
            uid: Uid::default(),
            controller: false,
        };
        out.extend(
            self.config_maps
                .iter()
                .map(|c| to(Relation::ConfigMap, ResourceKind::ConfigMap, c)),
        );
        out.extend(
            self.secrets
                .iter()
                .map(|c| to(Relation::Secret, ResourceKind::Secret, c)),
        );
        out.extend(
            self.service_account
                .iter()
                .map(|c| to(Relation::ServiceAccount, ResourceKind::ServiceAccount, c)),
        );
        out.push(Edge {
            target: ObjectRef::cluster(namespace),
            ..to(Relation::Namespace, ResourceKind::Namespace, "")
        });
        out
    }
}

/// How a closure object of `kind` is referred to.
pub fn relation_of(kind: ResourceKind) -> Relation {
    kind.relation()
}

/// The owner edges of an object in `namespace` (kinds podbank does not capture too: the
/// record says what the object pointed at).
pub fn owner_edges(namespace: &str, owners: &[OwnerRef]) -> Vec<Edge> {
    owners
        .iter()
        .map(|o| Edge {
            relation: Relation::Owner,
            kind: o
                .resource_kind()
                .map(ResourceKind::resource_type)
                .unwrap_or_else(|| ResourceType::Other(format!("OS::Kubernetes::{}", o.kind))),
            target: ObjectRef::new(namespace, &o.name),
            uid: o.uid.clone(),
            controller: o.controller,
        })
        .collect()
}

pub(super) fn owners_of(refs: Vec<slim::OwnerReference>) -> Vec<OwnerRef> {
    refs.into_iter()
        .map(|r| OwnerRef {
            kind: r.kind.unwrap_or_default(),
            name: r.name.unwrap_or_default(),
            uid: r.uid.map(Uid::from).unwrap_or_default(),
            controller: r.controller.unwrap_or(false),
        })
        .collect()
}

fn add(set: &mut BTreeSet<String>, name: Option<&str>) {
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        set.insert(n.to_string());
    }
}

/// The references of a protobuf pod.
pub(super) fn proto_refs(meta: &mut slim::Meta, spec: &slim::PodSpec) -> PodRefs {
    let (mut cms, mut secrets) = (BTreeSet::new(), BTreeSet::new());
    for v in &spec.volumes {
        let Some(src) = &v.volume_source else {
            continue;
        };
        add(
            &mut cms,
            src.config_map.as_ref().and_then(slim::Referencing::name),
        );
        add(
            &mut secrets,
            src.secret.as_ref().and_then(|s| s.secret_name.as_deref()),
        );
        for p in src.projected.iter().flat_map(|p| &p.sources) {
            add(
                &mut cms,
                p.config_map.as_ref().and_then(slim::Referencing::name),
            );
            add(
                &mut secrets,
                p.secret.as_ref().and_then(slim::Referencing::name),
            );
        }
    }
    let containers = spec.containers.iter().chain(&spec.init_containers).chain(
        spec.ephemeral_containers
            .iter()
            .filter_map(|e| e.common.as_ref()),
    );
    for c in containers {
        for e in c.env.iter().filter_map(|e| e.value_from.as_ref()) {
            add(
                &mut cms,
                e.config_map_key_ref
                    .as_ref()
                    .and_then(slim::Referencing::name),
            );
            add(
                &mut secrets,
                e.secret_key_ref.as_ref().and_then(slim::Referencing::name),
            );
        }
        for e in &c.env_from {
            add(
                &mut cms,
                e.config_map_ref.as_ref().and_then(slim::Referencing::name),
            );
            add(
                &mut secrets,
                e.secret_ref.as_ref().and_then(slim::Referencing::name),
            );
        }
    }
    for s in &spec.image_pull_secrets {
        add(&mut secrets, s.name.as_deref());
    }
    PodRefs {
        owners: owners_of(std::mem::take(&mut meta.owner_references)),
        service_account: spec
            .service_account_name
            .clone()
            .or_else(|| spec.service_account.clone())
            .filter(|s| !s.is_empty()),
        config_maps: cms.into_iter().collect(),
        secrets: secrets.into_iter().collect(),
    }
}

fn json_name(v: Option<&serde_json::Value>, field: &str) -> Option<String> {
    v.and_then(|v| v.get(field))
        .and_then(|n| n.as_str())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// The references of a JSON pod (`metadata` and `spec` as stored).
pub(super) fn json_refs(metadata: &serde_json::Value, spec: &serde_json::Value) -> PodRefs {
    let (mut cms, mut secrets) = (BTreeSet::new(), BTreeSet::new());
    let list = |v: &serde_json::Value, key: &str| -> Vec<serde_json::Value> {
        v.get(key)
            .and_then(|a| a.as_array())
            .cloned()
            .unwrap_or_default()
    };
    for v in list(spec, "volumes") {
        cms.extend(json_name(v.get("configMap"), "name"));
        secrets.extend(json_name(v.get("secret"), "secretName"));
        for p in v
            .get("projected")
            .map(|p| list(p, "sources"))
            .unwrap_or_default()
        {
            cms.extend(json_name(p.get("configMap"), "name"));
            secrets.extend(json_name(p.get("secret"), "name"));
        }
    }
    for c in ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| list(spec, k))
    {
        for e in list(&c, "env") {
            let from = e.get("valueFrom");
            cms.extend(json_name(
                from.and_then(|f| f.get("configMapKeyRef")),
                "name",
            ));
            secrets.extend(json_name(from.and_then(|f| f.get("secretKeyRef")), "name"));
        }
        for e in list(&c, "envFrom") {
            cms.extend(json_name(e.get("configMapRef"), "name"));
            secrets.extend(json_name(e.get("secretRef"), "name"));
        }
    }
    for s in list(spec, "imagePullSecrets") {
        secrets.extend(json_name(Some(&s), "name"));
    }
    PodRefs {
        owners: json_owners(metadata),
        service_account: json_name(Some(spec), "serviceAccountName")
            .or_else(|| json_name(Some(spec), "serviceAccount")),
        config_maps: cms.into_iter().collect(),
        secrets: secrets.into_iter().collect(),
    }
}

fn json_owners(metadata: &serde_json::Value) -> Vec<OwnerRef> {
    metadata
        .get("ownerReferences")
        .and_then(|a| a.as_array())
        .map(|refs| {
            refs.iter()
                .map(|r| OwnerRef {
                    kind: json_name(Some(r), "kind").unwrap_or_default(),
                    name: json_name(Some(r), "name").unwrap_or_default(),
                    uid: json_name(Some(r), "uid").map(Uid::from).unwrap_or_default(),
                    controller: r.get("controller").and_then(|c| c.as_bool()) == Some(true),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the closure needs of any stored object: who it is and who owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectInfo {
    /// Its kind.
    #[serde(skip)]
    pub kind: ResourceKind,
    /// Namespace (empty for cluster-scoped kinds).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.uid`.
    pub uid: Uid,
    /// `metadata.ownerReferences`.
    pub owners: Vec<OwnerRef>,
}

impl ObjectInfo {
    /// Summarize a stored object of `kind` (its metadata only).
    pub fn from_object(
        kind: ResourceKind,
        key: &str,
        obj: &StoredObject,
    ) -> Result<ObjectInfo, ResourceError> {
        if !obj.kind().is_empty() && obj.kind() != kind.kind() {
            return Err(ResourceError::WrongKind {
                key: key.to_string(),
                expected: kind.kind(),
                found: obj.kind().to_string(),
            });
        }
        let (namespace, name, uid, owners) = match obj.encoding() {
            Encoding::Protobuf => {
                let o: slim::Object = obj.decode_protobuf()?;
                let m = o.metadata.unwrap_or_default();
                (m.namespace, m.name, m.uid, owners_of(m.owner_references))
            }
            Encoding::Json => {
                let v: serde_json::Value = obj.decode_json()?;
                let meta = v.get("metadata").cloned().unwrap_or_default();
                (
                    json_name(Some(&meta), "namespace"),
                    json_name(Some(&meta), "name"),
                    json_name(Some(&meta), "uid"),
                    json_owners(&meta),
                )
            }
        };
        let name = name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ResourceError::Missing {
                key: key.to_string(),
                kind: kind.kind(),
                field: "metadata.name",
            })?;
        Ok(ObjectInfo {
            kind,
            namespace: namespace.unwrap_or_default(),
            name,
            uid: uid.map(Uid::from).unwrap_or_default(),
            owners,
        })
    }

    /// `<namespace>/<name>` (or the name alone when cluster-scoped).
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(&self.namespace, &self.name)
    }
}

/// The objects of the closure a scan keeps, by kind and `<namespace>/<name>`, with the
/// uid an owner must have (a namesake with another uid is a different object).
///
/// Pods add what they reference ([`ClosureWants::add_pod`]); owners, as they are read,
/// add their own owners ([`ClosureWants::add_owners`]); the scan reads owners in an order
/// where an owner's owner comes after it (ReplicaSets and Jobs before Deployments and
/// CronJobs), so one pass suffices.
#[derive(Debug, Clone, Default)]
pub struct ClosureWants {
    wanted: BTreeMap<ResourceKind, HashSet<ObjectRef>>,
    uids: BTreeMap<(ResourceKind, ObjectRef), Uid>,
}

impl ClosureWants {
    /// Notes what the pod in `namespace` references.
    pub fn add_pod(&mut self, namespace: &str, refs: &PodRefs) {
        self.want(ResourceKind::Namespace, ObjectRef::cluster(namespace));
        self.add_owners(namespace, &refs.owners);
        if let Some(sa) = &refs.service_account {
            self.want(ResourceKind::ServiceAccount, ObjectRef::new(namespace, sa));
        }
        for cm in &refs.config_maps {
            self.want(ResourceKind::ConfigMap, ObjectRef::new(namespace, cm));
        }
        for s in &refs.secrets {
            self.want(ResourceKind::Secret, ObjectRef::new(namespace, s));
        }
    }

    /// Notes the owners (of a pod or of an owner) in `namespace`.
    pub fn add_owners(&mut self, namespace: &str, owners: &[OwnerRef]) {
        for o in owners {
            if let Some(kind) = o.resource_kind() {
                let name = ObjectRef::new(namespace, &o.name);
                self.uids.insert((kind, name.clone()), o.uid.clone());
                self.want(kind, name);
            }
        }
    }

    fn want(&mut self, kind: ResourceKind, name: ObjectRef) {
        self.wanted.entry(kind).or_default().insert(name);
    }

    /// Whether the object of `kind` at `name` is wanted (before decoding it).
    pub fn wants(&self, kind: ResourceKind, name: &ObjectRef) -> bool {
        self.wanted.get(&kind).is_some_and(|s| s.contains(name))
    }

    /// The uid an owner must have, if it was named by an ownerReference.
    pub fn owner_uid(&self, kind: ResourceKind, name: &ObjectRef) -> Option<&Uid> {
        self.uids.get(&(kind, name.clone()))
    }

    /// How many objects are wanted.
    pub fn len(&self) -> usize {
        self.wanted.values().map(HashSet::len).sum()
    }

    /// Whether nothing is wanted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every object wanted, by kind.
    pub fn iter(&self) -> impl Iterator<Item = (ResourceKind, &ObjectRef)> {
        self.wanted
            .iter()
            .flat_map(|(k, names)| names.iter().map(move |n| (*k, n)))
    }

    /// The namespaces wanted.
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.wanted
            .get(&ResourceKind::Namespace)
            .map(|s| s.iter().map(|r| r.name().to_string()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wants_follow_pods_and_their_owners() {
        let mut w = ClosureWants::default();
        let refs = PodRefs {
            owners: vec![OwnerRef {
                kind: "ReplicaSet".into(),
                name: "web-5d9c".into(),
                uid: "u-rs".into(),
                controller: true,
            }],
            service_account: Some("web".into()),
            config_maps: vec!["conf".into()],
            secrets: vec!["pull".into()],
        };
        w.add_pod("shop", &refs);
        assert!(w.wants(
            ResourceKind::ReplicaSet,
            &ObjectRef::new("shop", "web-5d9c")
        ));
        assert!(!w.wants(ResourceKind::Deployment, &ObjectRef::new("shop", "web")));
        assert_eq!(
            w.owner_uid(
                ResourceKind::ReplicaSet,
                &ObjectRef::new("shop", "web-5d9c")
            )
            .map(Uid::as_str),
            Some("u-rs")
        );
        w.add_owners(
            "shop",
            &[OwnerRef {
                kind: "Deployment".into(),
                name: "web".into(),
                uid: "u-d".into(),
                controller: true,
            }],
        );
        assert!(w.wants(ResourceKind::Deployment, &ObjectRef::new("shop", "web")));
        assert!(w.wants(ResourceKind::ServiceAccount, &ObjectRef::new("shop", "web")));
        assert!(w.wants(ResourceKind::ConfigMap, &ObjectRef::new("shop", "conf")));
        assert!(w.wants(ResourceKind::Secret, &ObjectRef::new("shop", "pull")));
        assert!(w.wants(ResourceKind::Namespace, &ObjectRef::cluster("shop")));
        // An owner kind podbank does not capture is not wanted.
        w.add_owners(
            "shop",
            &[OwnerRef {
                kind: "Node".into(),
                name: "n1".into(),
                uid: "u-n".into(),
                controller: false,
            }],
        );
        assert_eq!(w.len(), 6);
    }
}
