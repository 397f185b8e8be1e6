//! The workload controllers of kube-controller-manager, reduced to what restore tests need:
//! Deployment → ReplicaSet → pods, ReplicationController → pods, StatefulSet → ordinal pods
//! and their claims, DaemonSet → one pod for the one node `node-1`, Job → `parallelism` pods.
//! CronJobs are stored only (no schedule is simulated). No kubelet and no scheduler are
//! modelled: pods stay without status, and ordered StatefulSet creation does not wait for
//! readiness. Every object they create is sent as JSON (`content_type: application/json`,
//! `body` the JSON the controller posted). Each controller records the Events its real
//! counterpart does, with the same `source.component`.

use serde_json::{json, Map, Value};

use super::resources;
use super::store::{terminating, text, Origin, Store};

/// A snapshot of the live (not terminating) objects of `resource`.
fn live(s: &Store, resource: &str, ns: Option<&str>) -> Vec<Value> {
    s.list(resource, ns)
        .into_iter()
        .filter(|o| !terminating(&o.object))
        .map(|o| o.object.clone())
        .collect()
}

fn post(s: &mut Store, resource: &str, ns: &str, object: &Value) -> Option<Value> {
    let r = resources::by_name(resource).expect("a served resource");
    let body = serde_json::to_vec(object).expect("json");
    s.create(r, Some(ns), "application/json", &body, Origin::Api)
        .ok()
}

/// The ownerReference a controller puts on what it creates.
fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": text(owner, "/metadata/name"), "uid": text(owner, "/metadata/uid"),
        "controller": true, "blockOwnerDeletion": true,
    })
}

/// Whether `object`'s controller (the ownerReference with `controller: true`) has `uid`.
pub fn controlled_by(object: &Value, uid: &str) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r["uid"] == uid && r["controller"] == true)
        })
}

fn replicas(object: &Value, pointer: &str) -> usize {
    object.pointer(pointer).and_then(Value::as_u64).unwrap_or(1) as usize
}

fn labels(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

/// A pod from `template`, controlled by `owner`; `name` or, when `None`, `generateName`
/// `<owner>-` (the API server adds 5 random characters).
fn pod_from(
    template: &Value,
    owner: &Value,
    name: Option<&str>,
    extra: &[(&str, String)],
) -> Value {
    let mut l = labels(template.pointer("/metadata/labels"));
    for (k, v) in extra {
        l.insert(k.to_string(), json!(v));
    }
    let mut metadata = json!({"labels": l, "ownerReferences": [controller_ref(owner)]});
    match name {
        Some(n) => metadata["name"] = json!(n),
        None => metadata["generateName"] = json!(format!("{}-", text(owner, "/metadata/name"))),
    }
    if let Some(a) = template.pointer("/metadata/annotations") {
        metadata["annotations"] = a.clone();
    }
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    })
}

/// `pod-template-hash` as the deployment controller computes it: FNV-32a of the template,
/// its decimal digits mapped onto the alphabet of generated names (at most 10 characters).
pub fn template_hash(template: &Value) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in serde_json::to_string(template).expect("json").bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// A Deployment without a ReplicaSet it controls gets `<deployment>-<hash>`.
pub fn deployment_controller(s: &mut Store) {
    for d in live(s, "deployments", None) {
        let (ns, name, uid) = (
            text(&d, "/metadata/namespace"),
            text(&d, "/metadata/name"),
            text(&d, "/metadata/uid"),
        );
        if live(s, "replicasets", Some(ns))
            .iter()
            .any(|rs| controlled_by(rs, uid))
        {
            continue;
        }
        let mut template = d["spec"]["template"].clone();
        let hash = template_hash(&template);
        let rs_name = format!("{name}-{hash}");
        if s.get("replicasets", ns, &rs_name).is_some() {
            continue;
        }
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let n = replicas(&d, "/spec/replicas");
        let rs = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "labels": template["metadata"]["labels"],
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": n.to_string(),
                    "deployment.kubernetes.io/max-replicas": (n + n.div_ceil(4)).to_string(),
                    "deployment.kubernetes.io/revision": "1",
                },
                "ownerReferences": [controller_ref(&d)],
            },
            "spec": {"replicas": n, "selector": selector, "template": template},
        });
        if post(s, "replicasets", ns, &rs).is_some() {
            let message = format!("Scaled up replica set {rs_name} from 0 to {n}");
            s.record_event(
                &d,
                "Normal",
                "ScalingReplicaSet",
                message,
                "deployment-controller",
            );
        }
    }
}

/// ReplicaSets (and ReplicationControllers) keep `spec.replicas` pods they control.
pub fn replica_set_controller(s: &mut Store, resource: &str, component: &str) {
    for rs in live(s, resource, None) {
        let (ns, uid) = (text(&rs, "/metadata/namespace"), text(&rs, "/metadata/uid"));
        let want = replicas(&rs, "/spec/replicas");
        keep_count(s, &rs, ns, uid, want, &[], component);
    }
}

/// Create or delete pods controlled by `owner` until there are `want`.
fn keep_count(
    s: &mut Store,
    owner: &Value,
    ns: &str,
    uid: &str,
    want: usize,
    extra: &[(&str, String)],
    component: &str,
) {
    let mut pods: Vec<Value> = live(s, "pods", Some(ns))
        .into_iter()
        .filter(|p| controlled_by(p, uid))
        .collect();
    let template = owner["spec"]["template"].clone();
    for _ in pods.len()..want {
        let mut pod = pod_from(&template, owner, None, extra);
        if text(owner, "/kind") == "DaemonSet" {
            pod["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}]}}});
        }
        if let Some(created) = post(s, "pods", ns, &pod) {
            let message = format!("Created pod: {}", text(&created, "/metadata/name"));
            s.record_event(owner, "Normal", "SuccessfulCreate", message, component);
        }
    }
    pods.sort_by_key(|p| text(p, "/metadata/name").to_string());
    while pods.len() > want {
        let pod = pods.pop().expect("non-empty");
        let name = text(&pod, "/metadata/name");
        let r = resources::by_name("pods").expect("pods");
        if s.delete(r, ns, name).is_ok() {
            let message = format!("Deleted pod: {name}");
            s.record_event(owner, "Normal", "SuccessfulDelete", message, component);
        }
    }
}

/// StatefulSets: pods `<sts>-<n>` and, for each volumeClaimTemplate `<tpl>`, the claim
/// `<tpl>-<sts>-<n>` — created from the template unless a claim of that name exists, which
/// the pod then uses as it is. Claims get no ownerReferences (the default retention policy).
pub fn stateful_set_controller(s: &mut Store) {
    for sts in live(s, "statefulsets", None) {
        let (ns, name, uid) = (
            text(&sts, "/metadata/namespace"),
            text(&sts, "/metadata/name"),
            text(&sts, "/metadata/uid"),
        );
        let want = replicas(&sts, "/spec/replicas");
        let templates = sts["spec"]["volumeClaimTemplates"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let selector = labels(sts.pointer("/spec/selector/matchLabels"));
        for n in 0..want {
            let pod_name = format!("{name}-{n}");
            let mut volumes: Vec<Value> = Vec::new();
            for t in &templates {
                let tpl = text(t, "/metadata/name");
                let claim_name = format!("{tpl}-{name}-{n}");
                volumes
                    .push(json!({"name": tpl, "persistentVolumeClaim": {"claimName": claim_name}}));
                if s.get("persistentvolumeclaims", ns, &claim_name).is_some() {
                    continue;
                }
                let mut l = labels(t.pointer("/metadata/labels"));
                l.extend(selector.clone());
                let mut metadata = json!({"name": claim_name, "labels": l});
                if let Some(a) = t.pointer("/metadata/annotations") {
                    metadata["annotations"] = a.clone();
                }
                let claim = json!({
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata,
                    "spec": t.get("spec").cloned().unwrap_or(json!({})),
                });
                if post(s, "persistentvolumeclaims", ns, &claim).is_some() {
                    let message = format!(
                        "create Claim {claim_name} Pod {pod_name} in StatefulSet {name} success"
                    );
                    s.record_event(
                        &sts,
                        "Normal",
                        "SuccessfulCreate",
                        message,
                        "statefulset-controller",
                    );
                }
            }
            if s.get("pods", ns, &pod_name).is_some() {
                continue;
            }
            let extra = [
                ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                ("apps.kubernetes.io/pod-index", n.to_string()),
            ];
            let mut pod = pod_from(&sts["spec"]["template"], &sts, Some(&pod_name), &extra);
            let own: Vec<Value> = pod["spec"]["volumes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|v| !volumes.iter().any(|c| c["name"] == v["name"]))
                .collect();
            volumes.extend(own);
            if !volumes.is_empty() {
                pod["spec"]["volumes"] = json!(volumes);
            }
            pod["spec"]["hostname"] = json!(pod_name);
            if let Some(service) = sts.pointer("/spec/serviceName") {
                pod["spec"]["subdomain"] = service.clone();
            }
            if post(s, "pods", ns, &pod).is_some() {
                let message = format!("create Pod {pod_name} in StatefulSet {name} successful");
                s.record_event(
                    &sts,
                    "Normal",
                    "SuccessfulCreate",
                    message,
                    "statefulset-controller",
                );
            }
        }
        // Scale down: ordinals past the count go, highest first.
        let mut extra: Vec<(usize, String)> = live(s, "pods", Some(ns))
            .iter()
            .filter(|p| controlled_by(p, uid))
            .filter_map(|p| {
                let pod = text(p, "/metadata/name");
                let ordinal = pod.strip_prefix(&format!("{name}-"))?.parse().ok()?;
                (ordinal >= want).then(|| (ordinal, pod.to_string()))
            })
            .collect();
        extra.sort();
        for (_, pod) in extra.into_iter().rev() {
            let r = resources::by_name("pods").expect("pods");
            if s.delete(r, ns, &pod).is_ok() {
                let message = format!("delete Pod {pod} in StatefulSet {name} successful");
                s.record_event(
                    &sts,
                    "Normal",
                    "SuccessfulDelete",
                    message,
                    "statefulset-controller",
                );
            }
        }
    }
}

/// DaemonSets: one pod for the one node, `node-1`.
pub fn daemon_set_controller(s: &mut Store) {
    for ds in live(s, "daemonsets", None) {
        let (ns, uid) = (text(&ds, "/metadata/namespace"), text(&ds, "/metadata/uid"));
        keep_count(s, &ds, ns, uid, 1, &[], "daemonset-controller");
    }
}

/// Jobs: `spec.parallelism` (default 1, at most `spec.completions`) active pods, labelled
/// with the job's name and uid as the job controller does. Pods never complete.
pub fn job_controller(s: &mut Store) {
    for job in live(s, "jobs", None) {
        let (ns, name, uid) = (
            text(&job, "/metadata/namespace"),
            text(&job, "/metadata/name"),
            text(&job, "/metadata/uid"),
        );
        let parallelism = replicas(&job, "/spec/parallelism");
        let completions = job
            .pointer("/spec/completions")
            .and_then(Value::as_u64)
            .map_or(parallelism, |c| c as usize);
        let extra = [
            ("batch.kubernetes.io/controller-uid", uid.to_string()),
            ("batch.kubernetes.io/job-name", name.to_string()),
            ("controller-uid", uid.to_string()),
            ("job-name", name.to_string()),
        ];
        let want = parallelism.min(completions);
        keep_count(s, &job, ns, uid, want, &extra, "job-controller");
    }
}
