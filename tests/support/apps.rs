//! A namespace of real applications, written into etcd the way kube-apiserver and
//! kube-controller-manager leave them: a Deployment (its ReplicaSet and 2 pods, a
//! configMap volume, a Secret env, a ServiceAccount, a claim), a StatefulSet (2 pods, a
//! claim each from its volumeClaimTemplate), a CronJob (its Job and the Job's pod) and a
//! bare pod, plus the Namespace object itself with pod-security labels. Every owner chain
//! is consistent (ownerReferences name the owners' uids), as a live cluster's is.

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use podbank::codec::encode_envelope;
use podbank_seed::{self as seed, SeedObject, VolumeBacking};
use prost::Message;

fn s(v: impl Into<String>) -> Option<String> {
    Some(v.into())
}

/// The uid of `kind/namespace/name`, stable across runs.
pub fn uid(kind: &str, ns: &str, name: &str) -> String {
    seed::uuid_from(&format!("{kind}/{ns}/{name}"))
}

fn metadata(
    kind: &str,
    ns: &str,
    name: &str,
    owner: Option<meta::OwnerReference>,
) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        namespace: (!ns.is_empty()).then(|| ns.to_string()),
        uid: s(uid(kind, ns, name)),
        generation: Some(1),
        creation_timestamp: Some(meta::Time {
            seconds: Some(1_793_491_200),
            nanos: Some(0),
        }),
        labels: [("app".to_string(), name.to_string())].into(),
        owner_references: owner.into_iter().collect(),
        ..Default::default()
    }
}

/// An ownerReference to `kind/name` in `ns` (controller).
pub fn owner_ref(api_version: &str, kind: &str, ns: &str, name: &str) -> meta::OwnerReference {
    meta::OwnerReference {
        api_version: s(api_version),
        kind: s(kind),
        name: s(name),
        uid: s(uid(kind, ns, name)),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn entry(
    resource: &str,
    ns: &str,
    name: &str,
    api_version: &str,
    kind: &str,
    raw: Vec<u8>,
) -> SeedObject {
    let key = if ns.is_empty() {
        format!("/registry/{resource}/{name}")
    } else {
        format!("/registry/{resource}/{ns}/{name}")
    };
    SeedObject {
        key,
        value: encode_envelope(api_version, kind, &raw),
    }
}

/// The names and Cinder volumes of the drill's namespace.
#[derive(Debug, Clone)]
pub struct Drill {
    /// The namespace.
    pub ns: String,
    /// The Cinder volume of the Deployment's claim `web-data`.
    pub web_volume: String,
    /// The Cinder volumes of the StatefulSet's claims `data-db-0`, `data-db-1`.
    pub db_volumes: [String; 2],
}

/// The Deployment's ReplicaSet.
pub const WEB_RS: &str = "web-7c9d8f6b5";
/// The Deployment's pods.
pub const WEB_PODS: [&str; 2] = ["web-7c9d8f6b5-x2k4q", "web-7c9d8f6b5-p9m3z"];
/// The CronJob's Job and its pod.
pub const REPORT_JOB: &str = "report-29000000";
/// The Job's pod.
pub const REPORT_POD: &str = "report-29000000-q7w8e";

fn web_spec(claim: Option<&str>) -> core::PodSpec {
    let mut spec = web_spec_with(claim.unwrap_or("web-data"));
    if claim.is_none() {
        spec.volumes.retain(|v| v.name.as_deref() != Some("data"));
        for c in &mut spec.containers {
            c.volume_mounts.clear();
        }
    }
    spec
}

fn web_spec_with(claim: &str) -> core::PodSpec {
    core::PodSpec {
        volumes: vec![
            core::Volume {
                name: s("config"),
                volume_source: Some(core::VolumeSource {
                    config_map: Some(core::ConfigMapVolumeSource {
                        local_object_reference: Some(core::LocalObjectReference {
                            name: s("web-config"),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            core::Volume {
                name: s("data"),
                volume_source: Some(core::VolumeSource {
                    persistent_volume_claim: Some(core::PersistentVolumeClaimVolumeSource {
                        claim_name: s(claim),
                        read_only: Some(false),
                    }),
                    ..Default::default()
                }),
            },
        ],
        containers: vec![core::Container {
            name: s("web"),
            image: s("registry.local/web:3"),
            env: vec![core::EnvVar {
                name: s("TOKEN"),
                value: None,
                value_from: Some(core::EnvVarSource {
                    secret_key_ref: Some(core::SecretKeySelector {
                        local_object_reference: Some(core::LocalObjectReference {
                            name: s("web-secret"),
                        }),
                        key: s("token"),
                        optional: None,
                    }),
                    ..Default::default()
                }),
            }],
            volume_mounts: vec![core::VolumeMount {
                name: s("data"),
                mount_path: s("/data"),
                ..Default::default()
            }],
            ..Default::default()
        }],
        restart_policy: s("Always"),
        service_account_name: s("web"),
        ..Default::default()
    }
}

fn db_spec() -> core::PodSpec {
    core::PodSpec {
        containers: vec![core::Container {
            name: s("db"),
            image: s("registry.local/postgres:16"),
            volume_mounts: vec![core::VolumeMount {
                name: s("data"),
                mount_path: s("/var/lib/postgresql"),
                ..Default::default()
            }],
            ..Default::default()
        }],
        restart_policy: s("Always"),
        service_account_name: s("default"),
        ..Default::default()
    }
}

fn template(labels: &str, spec: core::PodSpec) -> core::PodTemplateSpec {
    core::PodTemplateSpec {
        metadata: Some(meta::ObjectMeta {
            labels: [("app".to_string(), labels.to_string())].into(),
            ..Default::default()
        }),
        spec: Some(spec),
    }
}

fn selector(app: &str) -> meta::LabelSelector {
    meta::LabelSelector {
        match_labels: [("app".to_string(), app.to_string())].into(),
        match_expressions: vec![],
    }
}

/// A pod made from `spec` by its controller `owner`, placed on a node.
fn controlled_pod(
    ns: &str,
    name: &str,
    owner: meta::OwnerReference,
    app: &str,
    mut spec: core::PodSpec,
) -> SeedObject {
    spec.node_name = s("node-1");
    let mut m = metadata("pod", ns, name, Some(owner));
    m.labels = [("app".to_string(), app.to_string())].into();
    let pod = core::Pod {
        metadata: Some(m),
        spec: Some(spec),
        status: Some(core::PodStatus {
            phase: s("Running"),
            ..Default::default()
        }),
    };
    entry("pods", ns, name, "v1", "Pod", pod.encode_to_vec())
}

/// The claim `claim` bound to a CSI PV of the Cinder volume `volume`.
pub fn claim(ns: &str, claim: &str, volume: &str) -> Vec<SeedObject> {
    seed::claim_and_volume(
        "/registry",
        ns,
        claim,
        &format!("pvc-{}", seed::uuid_from(volume)),
        &VolumeBacking::CinderCsi(volume.to_string()),
        1,
    )
}

/// A namespace of stateless applications only: the Namespace, the Deployment `web` (its
/// ReplicaSet and 2 pods, without a claim), its ConfigMap, Secret and ServiceAccount, and
/// the bare pod `debug`.
pub fn stateless_objects(ns: &str) -> Vec<SeedObject> {
    let mut out = common_objects(ns);
    out.extend(deployment(ns, None));
    out.push(bare_pod(ns));
    out
}

/// Everything the drill's namespace holds in etcd.
pub fn drill_objects(d: &Drill) -> Vec<SeedObject> {
    let ns = d.ns.as_str();
    let mut out = common_objects(ns);
    out.extend(deployment(ns, Some("web-data")));
    out.extend(claim(ns, "web-data", &d.web_volume));
    out.extend(statefulset_and_cronjob(d));
    out.push(bare_pod(ns));
    out
}

fn common_objects(ns: &str) -> Vec<SeedObject> {
    let mut out = Vec::new();
    let mut nsm = metadata("namespace", "", ns, None);
    nsm.labels = [
        ("kubernetes.io/metadata.name".to_string(), ns.to_string()),
        (
            "pod-security.kubernetes.io/enforce".to_string(),
            "baseline".to_string(),
        ),
    ]
    .into();
    let namespace = core::Namespace {
        metadata: Some(nsm),
        spec: Some(core::NamespaceSpec {
            finalizers: vec!["kubernetes".into()],
        }),
        status: Some(core::NamespaceStatus {
            phase: s("Active"),
            conditions: vec![],
        }),
    };
    out.push(entry(
        "namespaces",
        "",
        ns,
        "v1",
        "Namespace",
        namespace.encode_to_vec(),
    ));
    let cm = core::ConfigMap {
        metadata: Some(metadata("configmap", ns, "web-config", None)),
        data: [("site.conf".to_string(), "listen 8080\n".to_string())].into(),
        ..Default::default()
    };
    out.push(entry(
        "configmaps",
        ns,
        "web-config",
        "v1",
        "ConfigMap",
        cm.encode_to_vec(),
    ));
    let secret = core::Secret {
        metadata: Some(metadata("secret", ns, "web-secret", None)),
        data: [("token".to_string(), b"s3cr3t-t0ken".to_vec())].into(),
        r#type: s("Opaque"),
        ..Default::default()
    };
    out.push(entry(
        "secrets",
        ns,
        "web-secret",
        "v1",
        "Secret",
        secret.encode_to_vec(),
    ));
    for sa in ["web", "default"] {
        let account = core::ServiceAccount {
            metadata: Some(metadata("serviceaccount", ns, sa, None)),
            ..Default::default()
        };
        out.push(entry(
            "serviceaccounts",
            ns,
            sa,
            "v1",
            "ServiceAccount",
            account.encode_to_vec(),
        ));
    }
    out
}

/// Deployment -> ReplicaSet -> 2 pods, sharing `claim` if any.
fn deployment(ns: &str, claim: Option<&str>) -> Vec<SeedObject> {
    let mut out = Vec::new();
    let deployment = apps::Deployment {
        metadata: Some(metadata("Deployment", ns, "web", None)),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(2),
            selector: Some(selector("web")),
            template: Some(template("web", web_spec(claim))),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            replicas: Some(2),
            ready_replicas: Some(2),
            ..Default::default()
        }),
    };
    out.push(entry(
        "deployments",
        ns,
        "web",
        "apps/v1",
        "Deployment",
        deployment.encode_to_vec(),
    ));
    let mut rsm = metadata(
        "ReplicaSet",
        ns,
        WEB_RS,
        Some(owner_ref("apps/v1", "Deployment", ns, "web")),
    );
    rsm.labels
        .insert("pod-template-hash".into(), "7c9d8f6b5".into());
    let rs = apps::ReplicaSet {
        metadata: Some(rsm),
        spec: Some(apps::ReplicaSetSpec {
            replicas: Some(2),
            selector: Some(selector("web")),
            template: Some(template("web", web_spec(claim))),
            ..Default::default()
        }),
        status: Some(apps::ReplicaSetStatus {
            replicas: Some(2),
            ..Default::default()
        }),
    };
    out.push(entry(
        "replicasets",
        ns,
        WEB_RS,
        "apps/v1",
        "ReplicaSet",
        rs.encode_to_vec(),
    ));
    for pod in WEB_PODS {
        out.push(controlled_pod(
            ns,
            pod,
            owner_ref("apps/v1", "ReplicaSet", ns, WEB_RS),
            "web",
            web_spec(claim),
        ));
    }
    out
}

fn statefulset_and_cronjob(d: &Drill) -> Vec<SeedObject> {
    let ns = d.ns.as_str();
    let mut out = Vec::new();
    // StatefulSet: 2 pods, claims data-db-<n> from its template.
    let sts = apps::StatefulSet {
        metadata: Some(metadata("StatefulSet", ns, "db", None)),
        spec: Some(apps::StatefulSetSpec {
            replicas: Some(2),
            selector: Some(selector("db")),
            template: Some(template("db", db_spec())),
            volume_claim_templates: vec![core::PersistentVolumeClaim {
                metadata: Some(meta::ObjectMeta {
                    name: s("data"),
                    ..Default::default()
                }),
                spec: Some(core::PersistentVolumeClaimSpec {
                    access_modes: vec!["ReadWriteOnce".into()],
                    ..Default::default()
                }),
                status: None,
            }],
            service_name: s("db"),
            ..Default::default()
        }),
        status: Some(apps::StatefulSetStatus {
            replicas: Some(2),
            ..Default::default()
        }),
    };
    out.push(entry(
        "statefulsets",
        ns,
        "db",
        "apps/v1",
        "StatefulSet",
        sts.encode_to_vec(),
    ));
    for (n, volume) in d.db_volumes.iter().enumerate() {
        let mut spec = db_spec();
        let claim_name = format!("data-db-{n}");
        spec.volumes.push(core::Volume {
            name: s("data"),
            volume_source: Some(core::VolumeSource {
                persistent_volume_claim: Some(core::PersistentVolumeClaimVolumeSource {
                    claim_name: s(claim_name.clone()),
                    read_only: None,
                }),
                ..Default::default()
            }),
        });
        out.push(controlled_pod(
            ns,
            &format!("db-{n}"),
            owner_ref("apps/v1", "StatefulSet", ns, "db"),
            "db",
            spec,
        ));
        out.extend(claim(ns, &claim_name, volume));
    }

    // CronJob -> Job -> pod.
    let job_template = core::PodSpec {
        containers: vec![core::Container {
            name: s("report"),
            image: s("registry.local/report:1"),
            ..Default::default()
        }],
        restart_policy: s("OnFailure"),
        service_account_name: s("default"),
        ..Default::default()
    };
    let cron = batch::CronJob {
        metadata: Some(metadata("CronJob", ns, "report", None)),
        spec: Some(batch::CronJobSpec {
            schedule: s("0 3 * * *"),
            job_template: Some(batch::JobTemplateSpec {
                metadata: None,
                spec: Some(batch::JobSpec {
                    template: Some(template("report", job_template.clone())),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    out.push(entry(
        "cronjobs",
        ns,
        "report",
        "batch/v1",
        "CronJob",
        cron.encode_to_vec(),
    ));
    let job_uid = uid("Job", ns, REPORT_JOB);
    let mut job_pod_labels = template("report", job_template.clone());
    if let Some(m) = job_pod_labels.metadata.as_mut() {
        m.labels
            .insert("batch.kubernetes.io/controller-uid".into(), job_uid.clone());
    }
    let job = batch::Job {
        metadata: Some(metadata(
            "Job",
            ns,
            REPORT_JOB,
            Some(owner_ref("batch/v1", "CronJob", ns, "report")),
        )),
        spec: Some(batch::JobSpec {
            selector: Some(meta::LabelSelector {
                match_labels: [("batch.kubernetes.io/controller-uid".to_string(), job_uid)].into(),
                match_expressions: vec![],
            }),
            manual_selector: None,
            template: Some(job_pod_labels),
            ..Default::default()
        }),
        status: None,
    };
    out.push(entry(
        "jobs",
        ns,
        REPORT_JOB,
        "batch/v1",
        "Job",
        job.encode_to_vec(),
    ));
    out.push(controlled_pod(
        ns,
        REPORT_POD,
        owner_ref("batch/v1", "Job", ns, REPORT_JOB),
        "report",
        job_template,
    ));

    out
}

/// A bare pod.
fn bare_pod(ns: &str) -> SeedObject {
    let bare = core::Pod {
        metadata: Some(metadata("pod", ns, "debug", None)),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: s("sh"),
                image: s("registry.local/busybox:1"),
                ..Default::default()
            }],
            service_account_name: s("default"),
            node_name: s("node-1"),
            ..Default::default()
        }),
        status: None,
    };
    entry("pods", ns, "debug", "v1", "Pod", bare.encode_to_vec())
}
