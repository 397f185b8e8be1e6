//! A seeded pod: its containers, its volumes (by the mix the module doc of [`super`]
//! describes), its status, and the claims and volumes it refers to.

use std::collections::BTreeMap;

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};

use super::meta::{envelope, key_of, managed_fields, quantity, s, time, uuid_from, BASE_TIME};
use super::volumes::{claim_and_volume, VolumeBacking};
use super::workloads::{config_map_name, namespace_of, ownership, secret_name, PodOwnership, APPS};
use super::{SeedObject, SeedPlan};
use podbank_core::codec::ResourceKind;

fn container(
    name: &str,
    image: &str,
    port: i32,
    index: usize,
    mounts: &[(&str, &str)],
) -> core::Container {
    let probe = |path: &str, delay: i32| core::Probe {
        handler: Some(core::ProbeHandler {
            http_get: Some(core::HttpGetAction {
                path: s(path),
                port: Some(IntOrString {
                    r#type: Some(0),
                    int_val: Some(port),
                    str_val: None,
                }),
                scheme: s("HTTP"),
                ..Default::default()
            }),
            ..Default::default()
        }),
        initial_delay_seconds: Some(delay),
        timeout_seconds: Some(1),
        period_seconds: Some(10),
        success_threshold: Some(1),
        failure_threshold: Some(3),
        ..Default::default()
    };
    let env = |n: &str, v: String| core::EnvVar {
        name: s(n),
        value: Some(v),
        ..Default::default()
    };
    core::Container {
        name: s(name),
        image: s(image),
        ports: vec![core::ContainerPort {
            name: s("http"),
            container_port: Some(port),
            protocol: s("TCP"),
            ..Default::default()
        }],
        env: vec![
            env("APP_ENV", "production".into()),
            env("APP_INSTANCE", format!("{index}")),
            env("LOG_LEVEL", "info".into()),
            env(
                "CACHE_URL",
                format!("redis://cache-{}.cache.svc:6379/0", index % 3),
            ),
            core::EnvVar {
                name: s("POD_IP"),
                value_from: Some(core::EnvVarSource {
                    field_ref: Some(core::ObjectFieldSelector {
                        api_version: s("v1"),
                        field_path: s("status.podIP"),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ],
        resources: Some(core::ResourceRequirements {
            limits: [
                ("cpu".to_string(), quantity("500m")),
                ("memory".to_string(), quantity("512Mi")),
            ]
            .into(),
            requests: [
                ("cpu".to_string(), quantity("100m")),
                ("memory".to_string(), quantity("128Mi")),
            ]
            .into(),
            ..Default::default()
        }),
        volume_mounts: mounts
            .iter()
            .map(|(n, p)| core::VolumeMount {
                name: s(*n),
                mount_path: s(*p),
                ..Default::default()
            })
            .collect(),
        liveness_probe: Some(probe("/healthz", 10)),
        readiness_probe: Some(probe("/ready", 5)),
        termination_message_path: s("/dev/termination-log"),
        termination_message_policy: s("File"),
        image_pull_policy: s("IfNotPresent"),
        ..Default::default()
    }
}

fn pvc_volume(name: &str, claim: &str) -> core::Volume {
    core::Volume {
        name: s(name),
        volume_source: Some(core::VolumeSource {
            persistent_volume_claim: Some(core::PersistentVolumeClaimVolumeSource {
                claim_name: s(claim),
                read_only: None,
            }),
            ..Default::default()
        }),
    }
}

/// The objects of pod number `index` of `plan`: the pod and, where it has one, its claim
/// and volume. Its owners and what it references are in [`super::cluster_objects`].
pub fn pod_objects(plan: &SeedPlan, index: usize) -> Vec<SeedObject> {
    let prefix = plan.prefix.trim_end_matches('/');
    let namespace = namespace_of(plan, index);
    let app = APPS[index % 5];
    let name = format!("{app}-{index}");
    let mut out = Vec::new();
    let (volumes, mounts) = pod_volumes(plan, index, &mut out);
    let pod = build_pod(plan, index, &namespace, &name, app, volumes, &mounts);
    out.push(SeedObject {
        key: key_of(prefix, ResourceKind::Pod, Some(&namespace), &name),
        value: envelope(ResourceKind::Pod, &pod),
    });
    out
}

/// The volumes of pod `index` and its main container's mounts; the claims and volumes they
/// refer to go to `out`.
fn pod_volumes(
    plan: &SeedPlan,
    index: usize,
    out: &mut Vec<SeedObject>,
) -> (Vec<core::Volume>, Vec<(&'static str, &'static str)>) {
    let prefix = plan.prefix.trim_end_matches('/');
    let namespace = namespace_of(plan, index);
    let app = APPS[index % 5];
    let name = format!("{app}-{index}");
    let seeded = |what: &str| uuid_from(&format!("{}/{what}/{namespace}/{name}", plan.seed));
    let mut volumes = shared_volumes(app);
    let data_volume = data_volume(prefix, &namespace, &name, index, &seeded, out);
    let mut mounts = vec![("scratch", "/tmp"), ("config", "/etc/app")];
    if let Some(v) = data_volume {
        volumes.push(v);
        mounts.push(("data", "/var/lib/data"));
    }
    (volumes, mounts)
}

/// The spec of pod `index` as its workload's template has it (no node, no claim written).
pub(super) fn template_spec(plan: &SeedPlan, index: usize) -> Option<core::PodSpec> {
    let app = APPS[index % 5];
    let (volumes, mounts) = pod_volumes(plan, index, &mut Vec::new());
    let owned = ownership(plan, index, &namespace_of(plan, index), "");
    let containers = pod_containers(app, index, &mounts);
    Some(pod_spec(volumes, containers, String::new(), &owned))
}

/// The volumes every seeded pod mounts: an emptyDir and its app's configMap.
fn shared_volumes(app: &str) -> Vec<core::Volume> {
    vec![
        core::Volume {
            name: s("scratch"),
            volume_source: Some(core::VolumeSource {
                empty_dir: Some(core::EmptyDirVolumeSource::default()),
                ..Default::default()
            }),
        },
        core::Volume {
            name: s("config"),
            volume_source: Some(core::VolumeSource {
                config_map: Some(core::ConfigMapVolumeSource {
                    local_object_reference: Some(core::LocalObjectReference {
                        name: s(config_map_name(app)),
                    }),
                    default_mode: Some(420),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        },
    ]
}

/// The pod's `data` volume by the volume mix (see [`super`]), if it has one; the claim and
/// volume it refers to go to `out`.
fn data_volume(
    prefix: &str,
    namespace: &str,
    name: &str,
    index: usize,
    seeded: &dyn Fn(&str) -> String,
    out: &mut Vec<SeedObject>,
) -> Option<core::Volume> {
    match index % 5 {
        0 | 1 => {
            let claim = format!("data-{name}");
            let pv = format!("pvc-{}", seeded("pvc"));
            let backing = match index % 50 {
                20 => VolumeBacking::OtherCsi {
                    driver: "ebs.csi.aws.com".into(),
                    handle: format!("vol-{}", &seeded("ebs")[..17]),
                },
                _ if index.is_multiple_of(5) => VolumeBacking::CinderCsi(seeded("cinder")),
                _ => VolumeBacking::CinderInTree(seeded("cinder")),
            };
            if index % 50 != 11 {
                out.extend(claim_and_volume(
                    prefix, namespace, &claim, &pv, &backing, 10,
                ));
            }
            Some(pvc_volume("data", &claim))
        }
        2 => Some(core::Volume {
            name: s("data"),
            volume_source: Some(core::VolumeSource {
                cinder: Some(core::CinderVolumeSource {
                    volume_id: s(seeded("cinder")),
                    fs_type: s("ext4"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        3 => {
            let claim = format!("{name}-data");
            let pv = format!("pvc-{}", seeded("pvc"));
            out.extend(claim_and_volume(
                prefix,
                namespace,
                &claim,
                &pv,
                &VolumeBacking::CinderCsi(seeded("cinder")),
                5,
            ));
            Some(core::Volume {
                name: s("data"),
                volume_source: Some(core::VolumeSource {
                    ephemeral: Some(core::EphemeralVolumeSource {
                        volume_claim_template: Some(core::PersistentVolumeClaimTemplate {
                            metadata: Some(meta::ObjectMeta {
                                labels: [("type".to_string(), "ephemeral".to_string())].into(),
                                ..Default::default()
                            }),
                            spec: Some(core::PersistentVolumeClaimSpec {
                                access_modes: vec!["ReadWriteOnce".into()],
                                storage_class_name: s("csi-cinder-sc-delete"),
                                resources: Some(core::VolumeResourceRequirements {
                                    requests: [("storage".to_string(), quantity("5Gi"))].into(),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                        }),
                    }),
                    ..Default::default()
                }),
            })
        }
        _ => None,
    }
}

fn build_pod(
    plan: &SeedPlan,
    index: usize,
    namespace: &str,
    name: &str,
    app: &str,
    volumes: Vec<core::Volume>,
    mounts: &[(&str, &str)],
) -> core::Pod {
    let uid = uuid_from(&format!("{}/pod/{namespace}/{name}", plan.seed));
    let owned = ownership(plan, index, namespace, name);
    let created = BASE_TIME + (index as i64 % 86_400);
    let mut annotations: BTreeMap<String, String> = [(
        "kubectl.kubernetes.io/restartedAt".to_string(),
        "2026-11-01T00:00:00Z".to_string(),
    )]
    .into();
    if plan.changed.contains(&index) {
        annotations.insert("podbank.io/generation".into(), plan.generation.to_string());
    }
    let tier = if index.is_multiple_of(2) {
        "frontend"
    } else {
        "backend"
    };
    let labels: BTreeMap<String, String> = [
        ("app", app.to_string()),
        ("tier", tier.to_string()),
        ("release", format!("r{}", index % 3)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(owned.labels.iter().cloned())
    .collect();
    let containers = pod_containers(app, index, mounts);
    let node = format!("node-{}", index % 16);
    let container_statuses = container_statuses(&containers, &uid, created);
    core::Pod {
        metadata: Some(meta::ObjectMeta {
            name: s(name),
            generate_name: s(owned.generate_name.clone()),
            namespace: s(namespace),
            self_link: s(""),
            resource_version: s(""),
            generation: Some(0),
            uid: s(uid),
            creation_timestamp: time(created),
            labels,
            annotations,
            owner_references: owned.owners.clone(),
            managed_fields: vec![
                managed_fields(
                    if owned.owners.is_empty() {
                        "kubectl-run"
                    } else {
                        "kube-controller-manager"
                    },
                    created,
                    r#"{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{}},"f:ownerReferences":{}},"f:spec":{"f:containers":{},"f:volumes":{}}}"#,
                ),
                managed_fields(
                    "kubelet",
                    created + 5,
                    r#"{"f:status":{"f:conditions":{},"f:containerStatuses":{},"f:hostIP":{},"f:phase":{},"f:podIP":{},"f:startTime":{}}}"#,
                ),
            ],
            ..Default::default()
        }),
        spec: Some(pod_spec(volumes, containers, node, &owned)),
        status: Some(pod_status(index, created, container_statuses)),
    }
}

/// The app's container, a sidecar on two pods of three, a metrics exporter on one of three.
fn pod_containers(app: &str, index: usize, mounts: &[(&str, &str)]) -> Vec<core::Container> {
    let mut main = container(
        app,
        &format!("registry.example.com/{app}:1.{}.{}", index % 4, index % 10),
        8080,
        index,
        mounts,
    );
    main.env.push(core::EnvVar {
        name: s("APP_PASSWORD"),
        value_from: Some(core::EnvVarSource {
            secret_key_ref: Some(core::SecretKeySelector {
                local_object_reference: Some(core::LocalObjectReference {
                    name: s(secret_name(app)),
                }),
                key: s("password"),
                optional: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let mut containers = vec![main];
    if index % 3 != 2 {
        containers.push(container(
            "sidecar",
            "registry.example.com/envoy:1.31.2",
            9901,
            index,
            &[("config", "/etc/envoy")],
        ));
    }
    if index.is_multiple_of(3) {
        containers.push(container(
            "metrics",
            "registry.example.com/exporter:0.15.0",
            9100,
            index,
            &[],
        ));
    }
    containers
}

/// Every container running since five seconds after `created`.
fn container_statuses(
    containers: &[core::Container],
    uid: &str,
    created: i64,
) -> Vec<core::ContainerStatus> {
    containers
        .iter()
        .map(|c| core::ContainerStatus {
            name: c.name.clone(),
            ready: Some(true),
            restart_count: Some(0),
            image: c.image.clone(),
            image_id: s(format!(
                "{}@sha256:{}",
                c.image.clone().unwrap_or_default(),
                hex::encode(Sha256::digest(
                    c.image.clone().unwrap_or_default().as_bytes()
                ))
            )),
            container_id: s(format!(
                "containerd://{}",
                hex::encode(Sha256::digest(format!("{uid}/{:?}", c.name).as_bytes()))
            )),
            started: Some(true),
            state: Some(core::ContainerState {
                running: Some(core::ContainerStateRunning {
                    started_at: time(created + 5),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// The pod's spec, as the scheduler leaves it (bound to `node`, defaults filled in).
fn pod_spec(
    volumes: Vec<core::Volume>,
    containers: Vec<core::Container>,
    node: String,
    owned: &PodOwnership,
) -> core::PodSpec {
    core::PodSpec {
        volumes,
        containers,
        restart_policy: s(owned.restart_policy),
        termination_grace_period_seconds: Some(30),
        dns_policy: s("ClusterFirst"),
        service_account_name: s(owned.service_account.clone()),
        service_account: s(owned.service_account.clone()),
        node_name: s(node),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        hostname: s(""),
        subdomain: s(""),
        priority_class_name: s(""),
        security_context: Some(core::PodSecurityContext {
            run_as_non_root: Some(true),
            fs_group: Some(2000),
            ..Default::default()
        }),
        scheduler_name: s("default-scheduler"),
        tolerations: ["not-ready", "unreachable"]
            .iter()
            .map(|t| core::Toleration {
                key: s(format!("node.kubernetes.io/{t}")),
                operator: s("Exists"),
                effect: s("NoExecute"),
                toleration_seconds: Some(300),
                ..Default::default()
            })
            .collect(),
        priority: Some(0),
        enable_service_links: Some(true),
        preemption_policy: s("PreemptLowerPriority"),
        ..Default::default()
    }
}

/// A running pod's status (every 97th pod is still `Pending`).
fn pod_status(
    index: usize,
    created: i64,
    container_statuses: Vec<core::ContainerStatus>,
) -> core::PodStatus {
    core::PodStatus {
        phase: s(if index % 97 == 5 {
            "Pending"
        } else {
            "Running"
        }),
        conditions: ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
            .iter()
            .map(|c| core::PodCondition {
                r#type: s(*c),
                status: s("True"),
                last_transition_time: time(created + 5),
                ..Default::default()
            })
            .collect(),
        host_ip: s(format!("10.0.0.{}", index % 16 + 10)),
        pod_ip: s(format!("10.244.{}.{}", index / 250 % 250, index % 250 + 2)),
        start_time: time(created),
        container_statuses,
        qos_class: s("Burstable"),
        ..Default::default()
    }
}
