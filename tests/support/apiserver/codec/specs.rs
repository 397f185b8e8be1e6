//! The JSON rendering of the specs inside objects: pods and their templates, claims, volumes,
//! jobs. No I/O.

use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use serde_json::{json, Value};

use super::{object_meta, selector, J};

fn volume(v: &core::Volume) -> Value {
    let src = v.volume_source.clone().unwrap_or_default();
    J::default()
        .opt("name", v.name.clone())
        .sub(
            "persistentVolumeClaim",
            src.persistent_volume_claim.map(|c| {
                J::default()
                    .opt("claimName", c.claim_name)
                    .opt("readOnly", c.read_only)
                    .done()
            }),
        )
        .sub(
            "emptyDir",
            src.empty_dir.map(|e| {
                J::default()
                    .opt("medium", e.medium)
                    .opt("sizeLimit", e.size_limit.and_then(|q| q.string))
                    .done()
            }),
        )
        .sub(
            "configMap",
            src.config_map.map(|c| {
                J::default()
                    .opt("name", c.local_object_reference.and_then(|r| r.name))
                    .opt("defaultMode", c.default_mode)
                    .opt("optional", c.optional)
                    .done()
            }),
        )
        .sub(
            "secret",
            src.secret.map(|c| {
                J::default()
                    .opt("secretName", c.secret_name)
                    .opt("defaultMode", c.default_mode)
                    .opt("optional", c.optional)
                    .done()
            }),
        )
        .sub(
            "hostPath",
            src.host_path.map(|h| {
                J::default()
                    .opt("path", h.path)
                    .opt("type", h.r#type)
                    .done()
            }),
        )
        .done()
}

fn container(c: &core::Container) -> Value {
    J::default()
        .opt("name", c.name.clone())
        .opt("image", c.image.clone())
        .strings("command", &c.command)
        .strings("args", &c.args)
        .opt("workingDir", c.working_dir.clone())
        .list(
            "ports",
            c.ports
                .iter()
                .map(|p| {
                    J::default()
                        .opt("name", p.name.clone())
                        .opt("containerPort", p.container_port)
                        .opt("protocol", p.protocol.clone())
                        .done()
                })
                .collect(),
        )
        .list(
            "env",
            c.env
                .iter()
                .map(|e| {
                    J::default()
                        .opt("name", e.name.clone())
                        .opt("value", e.value.clone())
                        .done()
                })
                .collect(),
        )
        .sub(
            "resources",
            c.resources.as_ref().map(|r| {
                J::default()
                    .quantities("limits", &r.limits)
                    .quantities("requests", &r.requests)
                    .done()
            }),
        )
        .list(
            "volumeMounts",
            c.volume_mounts
                .iter()
                .map(|m| {
                    J::default()
                        .opt("name", m.name.clone())
                        .opt("readOnly", m.read_only)
                        .opt("mountPath", m.mount_path.clone())
                        .opt("subPath", m.sub_path.clone())
                        .done()
                })
                .collect(),
        )
        .opt("terminationMessagePath", c.termination_message_path.clone())
        .opt(
            "terminationMessagePolicy",
            c.termination_message_policy.clone(),
        )
        .opt("imagePullPolicy", c.image_pull_policy.clone())
        .done()
}

pub(super) fn pod_spec(s: &core::PodSpec) -> Value {
    J::default()
        .list("volumes", s.volumes.iter().map(volume).collect())
        .list(
            "initContainers",
            s.init_containers.iter().map(container).collect(),
        )
        .list("containers", s.containers.iter().map(container).collect())
        .opt("restartPolicy", s.restart_policy.clone())
        .opt(
            "terminationGracePeriodSeconds",
            s.termination_grace_period_seconds,
        )
        .opt("dnsPolicy", s.dns_policy.clone())
        .map("nodeSelector", &s.node_selector)
        .opt("serviceAccountName", s.service_account_name.clone())
        .opt("serviceAccount", s.service_account.clone())
        .opt("nodeName", s.node_name.clone())
        .opt("hostname", s.hostname.clone())
        .opt("subdomain", s.subdomain.clone())
        .opt("schedulerName", s.scheduler_name.clone())
        .list(
            "tolerations",
            s.tolerations
                .iter()
                .map(|t| {
                    J::default()
                        .opt("key", t.key.clone())
                        .opt("operator", t.operator.clone())
                        .opt("value", t.value.clone())
                        .opt("effect", t.effect.clone())
                        .opt("tolerationSeconds", t.toleration_seconds)
                        .done()
                })
                .collect(),
        )
        .opt("priority", s.priority)
        .opt("enableServiceLinks", s.enable_service_links)
        .opt("preemptionPolicy", s.preemption_policy.clone())
        .done()
}

pub(super) fn pod_template(t: &core::PodTemplateSpec) -> Value {
    J::default()
        .sub(
            "metadata",
            Some(t.metadata.as_ref().map(object_meta).unwrap_or(json!({}))),
        )
        .sub("spec", t.spec.as_ref().map(pod_spec))
        .done()
}

fn claim_spec(s: &core::PersistentVolumeClaimSpec) -> Value {
    J::default()
        .strings("accessModes", &s.access_modes)
        .sub("selector", s.selector.as_ref().map(selector))
        .sub(
            "resources",
            s.resources.as_ref().map(|r| {
                J::default()
                    .quantities("limits", &r.limits)
                    .quantities("requests", &r.requests)
                    .done()
            }),
        )
        .opt("volumeName", s.volume_name.clone())
        .opt("storageClassName", s.storage_class_name.clone())
        .opt("volumeMode", s.volume_mode.clone())
        .done()
}

pub(super) fn claim(c: &core::PersistentVolumeClaim) -> Value {
    J::default()
        .sub("metadata", c.metadata.as_ref().map(object_meta))
        .sub("spec", c.spec.as_ref().map(claim_spec))
        .sub(
            "status",
            c.status
                .as_ref()
                .map(|s| J::default().opt("phase", s.phase.clone()).done()),
        )
        .done()
}

pub(super) fn volume_spec(s: &core::PersistentVolumeSpec) -> Value {
    let src = s.persistent_volume_source.clone().unwrap_or_default();
    J::default()
        .quantities("capacity", &s.capacity)
        .sub(
            "cinder",
            src.cinder.map(|c| {
                J::default()
                    .opt("volumeID", c.volume_id)
                    .opt("fsType", c.fs_type)
                    .opt("readOnly", c.read_only)
                    .done()
            }),
        )
        .sub(
            "csi",
            src.csi.map(|c| {
                J::default()
                    .opt("driver", c.driver)
                    .opt("volumeHandle", c.volume_handle)
                    .opt("fsType", c.fs_type)
                    .opt("readOnly", c.read_only)
                    .map("volumeAttributes", &c.volume_attributes)
                    .done()
            }),
        )
        .sub(
            "hostPath",
            src.host_path.map(|h| {
                J::default()
                    .opt("path", h.path)
                    .opt("type", h.r#type)
                    .done()
            }),
        )
        .strings("accessModes", &s.access_modes)
        .sub(
            "claimRef",
            s.claim_ref.as_ref().map(|r| {
                J::default()
                    .opt("kind", r.kind.clone())
                    .opt("namespace", r.namespace.clone())
                    .opt("name", r.name.clone())
                    .opt("uid", r.uid.clone())
                    .opt("apiVersion", r.api_version.clone())
                    .opt("resourceVersion", r.resource_version.clone())
                    .done()
            }),
        )
        .opt(
            "persistentVolumeReclaimPolicy",
            s.persistent_volume_reclaim_policy.clone(),
        )
        .opt("storageClassName", s.storage_class_name.clone())
        .strings("mountOptions", &s.mount_options)
        .opt("volumeMode", s.volume_mode.clone())
        .done()
}

pub(super) fn job_spec(s: &batch::JobSpec) -> Value {
    J::default()
        .opt("parallelism", s.parallelism)
        .opt("completions", s.completions)
        .opt("activeDeadlineSeconds", s.active_deadline_seconds)
        .opt("backoffLimit", s.backoff_limit)
        .sub("selector", s.selector.as_ref().map(selector))
        .opt("manualSelector", s.manual_selector)
        .sub("template", s.template.as_ref().map(pod_template))
        .opt("ttlSecondsAfterFinished", s.ttl_seconds_after_finished)
        .opt("completionMode", s.completion_mode.clone())
        .opt("suspend", s.suspend)
        .done()
}
