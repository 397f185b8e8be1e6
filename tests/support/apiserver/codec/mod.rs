//! Request bodies in, JSON out: decodes `application/vnd.kubernetes.protobuf` bodies (`k8s\0` +
//! `runtime.Unknown`, the object in `raw`, decoded with k8s-pb) and `application/json` bodies
//! into the JSON rendering kube-apiserver answers with (camelCase field names, RFC 3339 times,
//! base64 bytes, empty fields left out). Only the fields the stand-in's controllers and the tests
//! read are rendered from protobuf: full metadata and the specs of the kinds served (see the
//! functions below); the stored bytes keep everything else. No I/O, no state.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{json, Map, Value};

use super::resources::Resource;
use specs::{claim, job_spec, pod_spec, pod_template, volume_spec};

mod specs;

/// A request body, decoded.
pub struct Decoded {
    /// `apiVersion` of the body.
    pub api_version: String,
    /// `kind` of the body.
    pub kind: String,
    /// The JSON rendering of the object.
    pub object: Value,
}

/// Decode `body` (sent as `content_type`) as an object of `resource`. The error is the
/// message of a 400 BadRequest (or `None` for an unsupported media type).
pub fn decode(
    resource: &Resource,
    content_type: &str,
    body: &[u8],
) -> Result<Decoded, Option<String>> {
    match content_type {
        "application/vnd.kubernetes.protobuf" => {
            let rest = body
                .strip_prefix(b"k8s\0")
                .ok_or_else(|| Some("protobuf body without the k8s\\0 magic".to_string()))?;
            let unknown =
                Unknown::decode(rest).map_err(|e| Some(format!("runtime.Unknown: {e}")))?;
            let type_meta = unknown.type_meta.unwrap_or_default();
            let kind = type_meta.kind.unwrap_or_default();
            let api_version = type_meta.api_version.unwrap_or_default();
            let raw = unknown.raw.unwrap_or_default();
            let mut object =
                protobuf_to_json(resource, &raw).map_err(|e| Some(format!("{kind}: {e}")))?;
            object["apiVersion"] = json!(api_version);
            object["kind"] = json!(kind);
            Ok(Decoded {
                api_version,
                kind,
                object,
            })
        }
        "application/json" => {
            let object: Value = serde_json::from_slice(body).map_err(|e| Some(e.to_string()))?;
            if !object.is_object() {
                return Err(Some("the body is not a JSON object".into()));
            }
            let s = |k: &str| object[k].as_str().unwrap_or_default().to_string();
            Ok(Decoded {
                api_version: s("apiVersion"),
                kind: s("kind"),
                object,
            })
        }
        _ => Err(None),
    }
}

/// Builds a JSON object, leaving out absent and empty fields as kube-apiserver does.
#[derive(Default)]
pub(super) struct J(Map<String, Value>);

impl J {
    pub(super) fn opt<T: Into<Value>>(mut self, key: &str, value: Option<T>) -> Self {
        if let Some(v) = value {
            self.0.insert(key.into(), v.into());
        }
        self
    }

    pub(super) fn sub(mut self, key: &str, value: Option<Value>) -> Self {
        if let Some(v) = value {
            self.0.insert(key.into(), v);
        }
        self
    }

    pub(super) fn list(mut self, key: &str, items: Vec<Value>) -> Self {
        if !items.is_empty() {
            self.0.insert(key.into(), Value::Array(items));
        }
        self
    }

    pub(super) fn strings(self, key: &str, items: &[String]) -> Self {
        self.list(key, items.iter().map(|s| json!(s)).collect())
    }

    pub(super) fn map(mut self, key: &str, m: &BTreeMap<String, String>) -> Self {
        if !m.is_empty() {
            self.0.insert(key.into(), json!(m));
        }
        self
    }

    pub(super) fn quantities(mut self, key: &str, m: &BTreeMap<String, Quantity>) -> Self {
        if !m.is_empty() {
            let m: Map<String, Value> = m
                .iter()
                .map(|(k, q)| (k.clone(), json!(q.string.clone().unwrap_or_default())))
                .collect();
            self.0.insert(key.into(), Value::Object(m));
        }
        self
    }

    pub(super) fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An RFC 3339 time, as kube-apiserver writes `metav1.Time`.
pub fn time(t: &meta::Time) -> String {
    chrono::DateTime::from_timestamp(t.seconds.unwrap_or_default(), 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub(super) fn object_meta(m: &meta::ObjectMeta) -> Value {
    J::default()
        .opt("name", m.name.clone())
        .opt("generateName", m.generate_name.clone())
        .opt("namespace", m.namespace.clone())
        .opt("uid", m.uid.clone())
        .opt("resourceVersion", m.resource_version.clone())
        .opt("generation", m.generation)
        .opt("creationTimestamp", m.creation_timestamp.as_ref().map(time))
        .opt("deletionTimestamp", m.deletion_timestamp.as_ref().map(time))
        .opt(
            "deletionGracePeriodSeconds",
            m.deletion_grace_period_seconds,
        )
        .map("labels", &m.labels)
        .map("annotations", &m.annotations)
        .list(
            "ownerReferences",
            m.owner_references
                .iter()
                .map(|o| {
                    J::default()
                        .opt("apiVersion", o.api_version.clone())
                        .opt("kind", o.kind.clone())
                        .opt("name", o.name.clone())
                        .opt("uid", o.uid.clone())
                        .opt("controller", o.controller)
                        .opt("blockOwnerDeletion", o.block_owner_deletion)
                        .done()
                })
                .collect(),
        )
        .strings("finalizers", &m.finalizers)
        .done()
}

pub(super) fn selector(s: &meta::LabelSelector) -> Value {
    J::default()
        .map("matchLabels", &s.match_labels)
        .list(
            "matchExpressions",
            s.match_expressions
                .iter()
                .map(|e| {
                    J::default()
                        .opt("key", e.key.clone())
                        .opt("operator", e.operator.clone())
                        .strings("values", &e.values)
                        .done()
                })
                .collect(),
        )
        .done()
}

fn dec<M: Message + Default>(raw: &[u8]) -> Result<M, String> {
    M::decode(raw).map_err(|e| e.to_string())
}

/// The JSON rendering of the protobuf object `raw` of `resource` (without apiVersion/kind).
pub fn protobuf_to_json(resource: &Resource, raw: &[u8]) -> Result<Value, String> {
    let m = |m: &Option<meta::ObjectMeta>| Some(m.as_ref().map(object_meta).unwrap_or(json!({})));
    let strategy = |t: Option<String>| t.map(|t| json!({ "type": t }));
    let v = match resource.name {
        "pods" => {
            let o: core::Pod = dec(raw)?;
            J::default()
                .sub("metadata", m(&o.metadata))
                .sub("spec", o.spec.as_ref().map(pod_spec))
                .sub(
                    "status",
                    o.status.map(|s| J::default().opt("phase", s.phase).done()),
                )
        }
        "persistentvolumeclaims" => {
            let o: core::PersistentVolumeClaim = dec(raw)?;
            let mut v = claim(&o);
            if v.get("metadata").is_none() {
                v["metadata"] = json!({});
            }
            return Ok(v);
        }
        "persistentvolumes" => {
            let o: core::PersistentVolume = dec(raw)?;
            J::default()
                .sub("metadata", m(&o.metadata))
                .sub("spec", o.spec.as_ref().map(volume_spec))
                .sub(
                    "status",
                    o.status.map(|s| J::default().opt("phase", s.phase).done()),
                )
        }
        "configmaps" => {
            let o: core::ConfigMap = dec(raw)?;
            let binary: BTreeMap<String, String> = o
                .binary_data
                .iter()
                .map(|(k, v)| (k.clone(), b64(v)))
                .collect();
            J::default()
                .sub("metadata", m(&o.metadata))
                .opt("immutable", o.immutable)
                .map("data", &o.data)
                .map("binaryData", &binary)
        }
        "secrets" => {
            let o: core::Secret = dec(raw)?;
            let data: BTreeMap<String, String> =
                o.data.iter().map(|(k, v)| (k.clone(), b64(v))).collect();
            J::default()
                .sub("metadata", m(&o.metadata))
                .opt("immutable", o.immutable)
                .map("data", &data)
                .map("stringData", &o.string_data)
                .opt("type", o.r#type)
        }
        "serviceaccounts" => {
            let o: core::ServiceAccount = dec(raw)?;
            J::default().sub("metadata", m(&o.metadata)).opt(
                "automountServiceAccountToken",
                o.automount_service_account_token,
            )
        }
        "replicationcontrollers" => {
            let o: core::ReplicationController = dec(raw)?;
            J::default().sub("metadata", m(&o.metadata)).sub(
                "spec",
                o.spec.map(|s| {
                    J::default()
                        .opt("replicas", s.replicas)
                        .opt("minReadySeconds", s.min_ready_seconds)
                        .map("selector", &s.selector)
                        .sub("template", s.template.as_ref().map(pod_template))
                        .done()
                }),
            )
        }
        "namespaces" => {
            let o: core::Namespace = dec(raw)?;
            J::default().sub("metadata", m(&o.metadata)).sub(
                "spec",
                o.spec
                    .map(|s| J::default().strings("finalizers", &s.finalizers).done()),
            )
        }
        "events" => {
            let o: core::Event = dec(raw)?;
            let r = o.involved_object.unwrap_or_default();
            J::default()
                .sub("metadata", m(&o.metadata))
                .sub(
                    "involvedObject",
                    Some(
                        J::default()
                            .opt("kind", r.kind)
                            .opt("namespace", r.namespace)
                            .opt("name", r.name)
                            .opt("uid", r.uid)
                            .opt("apiVersion", r.api_version)
                            .done(),
                    ),
                )
                .opt("reason", o.reason)
                .opt("message", o.message)
                .sub(
                    "source",
                    o.source
                        .map(|s| J::default().opt("component", s.component).done()),
                )
                .opt("count", o.count)
                .opt("type", o.r#type)
        }
        "deployments" => {
            let o: apps::Deployment = dec(raw)?;
            J::default().sub("metadata", m(&o.metadata)).sub(
                "spec",
                o.spec.map(|s| {
                    J::default()
                        .opt("replicas", s.replicas)
                        .sub("selector", s.selector.as_ref().map(selector))
                        .sub("template", s.template.as_ref().map(pod_template))
                        .sub("strategy", strategy(s.strategy.and_then(|s| s.r#type)))
                        .opt("minReadySeconds", s.min_ready_seconds)
                        .opt("revisionHistoryLimit", s.revision_history_limit)
                        .opt("paused", s.paused)
                        .opt("progressDeadlineSeconds", s.progress_deadline_seconds)
                        .done()
                }),
            )
        }
        "replicasets" => {
            let o: apps::ReplicaSet = dec(raw)?;
            J::default().sub("metadata", m(&o.metadata)).sub(
                "spec",
                o.spec.map(|s| {
                    J::default()
                        .opt("replicas", s.replicas)
                        .opt("minReadySeconds", s.min_ready_seconds)
                        .sub("selector", s.selector.as_ref().map(selector))
                        .sub("template", s.template.as_ref().map(pod_template))
                        .done()
                }),
            )
        }
        "statefulsets" => {
            let o: apps::StatefulSet = dec(raw)?;
            J::default().sub("metadata", m(&o.metadata)).sub(
                "spec",
                o.spec.map(|s| {
                    J::default()
                        .opt("replicas", s.replicas)
                        .sub("selector", s.selector.as_ref().map(selector))
                        .sub("template", s.template.as_ref().map(pod_template))
                        .list(
                            "volumeClaimTemplates",
                            s.volume_claim_templates.iter().map(claim).collect(),
                        )
                        .opt("serviceName", s.service_name.clone())
                        .opt("podManagementPolicy", s.pod_management_policy.clone())
                        .sub(
                            "updateStrategy",
                            strategy(s.update_strategy.and_then(|s| s.r#type)),
                        )
                        .opt("revisionHistoryLimit", s.revision_history_limit)
                        .opt("minReadySeconds", s.min_ready_seconds)
                        .sub(
                            "persistentVolumeClaimRetentionPolicy",
                            s.persistent_volume_claim_retention_policy.map(|p| {
                                J::default()
                                    .opt("whenDeleted", p.when_deleted)
                                    .opt("whenScaled", p.when_scaled)
                                    .done()
                            }),
                        )
                        .done()
                }),
            )
        }
        "daemonsets" => {
            let o: apps::DaemonSet = dec(raw)?;
            J::default().sub("metadata", m(&o.metadata)).sub(
                "spec",
                o.spec.map(|s| {
                    J::default()
                        .sub("selector", s.selector.as_ref().map(selector))
                        .sub("template", s.template.as_ref().map(pod_template))
                        .sub(
                            "updateStrategy",
                            strategy(s.update_strategy.and_then(|s| s.r#type)),
                        )
                        .opt("minReadySeconds", s.min_ready_seconds)
                        .opt("revisionHistoryLimit", s.revision_history_limit)
                        .done()
                }),
            )
        }
        "jobs" => {
            let o: batch::Job = dec(raw)?;
            J::default()
                .sub("metadata", m(&o.metadata))
                .sub("spec", o.spec.as_ref().map(job_spec))
        }
        "cronjobs" => {
            let o: batch::CronJob = dec(raw)?;
            J::default().sub("metadata", m(&o.metadata)).sub(
                "spec",
                o.spec.map(|s| {
                    J::default()
                        .opt("schedule", s.schedule)
                        .opt("timeZone", s.time_zone)
                        .opt("startingDeadlineSeconds", s.starting_deadline_seconds)
                        .opt("concurrencyPolicy", s.concurrency_policy)
                        .opt("suspend", s.suspend)
                        .sub(
                            "jobTemplate",
                            s.job_template.map(|t| {
                                J::default()
                                    .sub("metadata", m(&t.metadata))
                                    .sub("spec", t.spec.as_ref().map(job_spec))
                                    .done()
                            }),
                        )
                        .opt(
                            "successfulJobsHistoryLimit",
                            s.successful_jobs_history_limit,
                        )
                        .opt("failedJobsHistoryLimit", s.failed_jobs_history_limit)
                        .done()
                }),
            )
        }
        other => return Err(format!("the stand-in does not serve {other}")),
    };
    Ok(v.done())
}
