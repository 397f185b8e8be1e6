//! The kube-controller-manager part of the stand-in: the namespace controller and the garbage
//! collector (here), the workload controllers (in `workloads`). Each controller is a function
//! that looks at the whole [`Store`] and makes the changes the real controller would, through
//! the same create/delete operations HTTP requests use. [`reconcile`] runs them all until
//! nothing changes; the background task of `FakeApiServer` calls it when woken by a change
//! and every 100 ms. Controllers never sleep and never talk HTTP.

use serde_json::{json, Value};

use super::resources::{self, Resource};
use super::store::{terminating, text, GcDeletion, Key, Store};
use super::workloads;

/// Run every controller until none has anything left to do (bounded, so that a controller
/// fighting another cannot hang the task), then mark the store settled.
pub fn reconcile(s: &mut Store) {
    for _ in 0..50 {
        let before = s.mutations;
        namespace_controller(s);
        garbage_collector(s);
        workloads::deployment_controller(s);
        workloads::replica_set_controller(s, "replicasets", "replicaset-controller");
        workloads::replica_set_controller(s, "replicationcontrollers", "replication-controller");
        workloads::stateful_set_controller(s);
        workloads::daemon_set_controller(s);
        workloads::job_controller(s);
        if s.mutations == before {
            s.settled_at = s.mutations;
            return;
        }
    }
}

fn resource(name: &str) -> &'static Resource {
    resources::by_name(name).expect("a served resource")
}

/// Terminating namespaces: delete what they hold; once empty, remove them (their `kubernetes`
/// finalizer done). Objects held by finalizers keep their namespace terminating, as in a cluster.
fn namespace_controller(s: &mut Store) {
    let terminating_ns: Vec<String> = s
        .list("namespaces", None)
        .into_iter()
        .filter(|n| text(&n.object, "/status/phase") == "Terminating")
        .map(|n| n.name.clone())
        .collect();
    for ns in terminating_ns {
        let contents: Vec<Key> = s
            .objects
            .iter()
            .filter(|(k, o)| k.1 == ns && !terminating(&o.object))
            .map(|(k, _)| k.clone())
            .collect();
        let left = s.objects.keys().any(|k| k.1 == ns);
        if !left {
            s.remove(&("namespaces".into(), String::new(), ns));
            continue;
        }
        for (res, ns, name) in contents {
            let _ = s.delete(resource(&res), &ns, &name);
        }
    }
}

/// What the garbage collector makes of one ownerReference.
enum Owner {
    /// The owner exists where the reference says (or cannot be resolved: left alone).
    Solid,
    /// No object has the uid in the dependent's namespace, but one has it in `namespace`.
    InvalidNamespace,
    /// The owner existed and was deleted.
    Deleted,
    /// No such owner was ever seen.
    Absent,
}

fn classify(s: &Store, dependent_ns: &str, r: &Value) -> Owner {
    let (api_version, kind) = (text(r, "/apiVersion"), text(r, "/kind"));
    let (name, uid) = (text(r, "/name"), text(r, "/uid"));
    let Some(owner) = resources::by_kind(api_version, kind) else {
        return Owner::Solid;
    };
    let ns = if owner.namespaced { dependent_ns } else { "" };
    if s.get(owner.name, ns, name).is_some_and(|o| o.uid == uid) {
        return Owner::Solid;
    }
    match s.by_uid(uid) {
        Some(o) if !o.namespace.is_empty() && o.namespace != dependent_ns => {
            Owner::InvalidNamespace
        }
        _ if s.deleted_uids.contains(uid) => Owner::Deleted,
        _ => Owner::Absent,
    }
}

/// The garbage collector: a namespaced object none of whose owners exists is deleted
/// (background propagation: dependents go after their owner); references to owners that do not
/// exist are dropped from an object that still has a live owner. A dependent deleted because
/// an owner uid is absent from its namespace (in another namespace, or never seen) gets a
/// Warning event `OwnerRefInvalidNamespace`, as podbank's issue 13 specifies the model (the
/// real collector records it for uids of another namespace, the case seen when restoring into
/// another namespace; a restored object here names uids of the source cluster, which the
/// stand-in never held). Cascading deletion (the owner was deleted) records none.
fn garbage_collector(s: &mut Store) {
    let candidates: Vec<(Key, Value)> = s
        .objects
        .iter()
        .filter(|(k, o)| {
            !k.1.is_empty()
                && !terminating(&o.object)
                && o.object["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
        })
        .map(|(k, o)| (k.clone(), o.object.clone()))
        .collect();
    for ((res, ns, name), object) in candidates {
        let refs = object["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let verdicts: Vec<Owner> = refs.iter().map(|r| classify(s, &ns, r)).collect();
        if verdicts.iter().all(|v| matches!(v, Owner::Solid)) {
            continue;
        }
        if verdicts.iter().any(|v| matches!(v, Owner::Solid)) {
            let kept: Vec<Value> = refs
                .iter()
                .zip(&verdicts)
                .filter(|(_, v)| matches!(v, Owner::Solid))
                .map(|(r, _)| r.clone())
                .collect();
            s.update(&(res, ns, name), |o| {
                o["metadata"]["ownerReferences"] = json!(kept);
            });
            continue;
        }
        let mut reason = "OwnerAbsent";
        for (r, v) in refs.iter().zip(&verdicts) {
            match v {
                Owner::InvalidNamespace | Owner::Absent => {
                    reason = "OwnerRefInvalidNamespace";
                    let message = format!(
                        "ownerRef [{}/{}, namespace: {ns}, name: {}, uid: {}] does not exist in namespace \"{ns}\"",
                        text(r, "/apiVersion"),
                        text(r, "/kind"),
                        text(r, "/name"),
                        text(r, "/uid"),
                    );
                    s.record_event(
                        &object,
                        "Warning",
                        "OwnerRefInvalidNamespace",
                        message,
                        "garbage-collector-controller",
                    );
                }
                Owner::Deleted if reason == "OwnerAbsent" => reason = "OwnerDeleted",
                _ => {}
            }
        }
        if s.delete(resource(&res), &ns, &name).is_ok() {
            s.gc_deletions.push(GcDeletion {
                resource: res,
                namespace: ns,
                name,
                reason: reason.into(),
            });
        }
    }
}
