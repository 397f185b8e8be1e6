//! The seeder: realistic pods, claims and volumes written into etcd exactly as
//! kube-apiserver stores them (`k8s\0` + `runtime.Unknown` + the object message).
//!
//! Used by the tests, the README quickstart (`podbank demo seed`) and the benchmarks. The
//! objects follow the shape of real API-server output (see
//! `shared/testdata/apiserver-v1.32/`): server-set metadata (uid, creationTimestamp,
//! managedFields), defaulted spec fields, owner references, a running status.
//!
//! Generation ([`generate`], [`pod_objects`]) is pure; [`write`] does the I/O.
//!
//! Volume mix, by pod index `i` (`i % 5`): 0 a Cinder CSI claim, 1 a claim bound to an
//! in-tree Cinder volume, 2 an inline in-tree Cinder volume, 3 a generic ephemeral volume
//! (claim `<pod>-<volume>` bound to a Cinder CSI volume), 4 no persistent volume. Every pod
//! also mounts an emptyDir and a configMap. Every 50th pod (`i % 50 == 9`) refers to a claim
//! that does not exist, and every 50th (`i % 50 == 24`) to a claim bound to a non-Cinder
//! (`ebs.csi.aws.com`) volume, so that `dependents` meets every case.

use std::collections::BTreeMap;

use etcd_client::{Txn, TxnOp};
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::codec::{encode_envelope, ResourceKind};
use crate::etcd::{Etcd, EtcdError};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    /// Number of pods.
    pub pods: usize,
    /// Number of namespaces (`ns-0` ... `ns-<n-1>`); pods are spread round-robin.
    pub namespaces: usize,
    /// kube-apiserver's `--etcd-prefix`.
    pub prefix: String,
    /// Varies uids and volume ids, so two plans with different seeds do not collide.
    pub seed: u64,
    /// Bumped to "change" pods: a pod whose index is in `changed` gets this generation in
    /// an annotation, which changes its bytes (used to simulate churn).
    pub generation: u64,
    /// Indexes of pods that carry `generation` (empty: none).
    pub changed: std::collections::BTreeSet<usize>,
}

impl Default for SeedPlan {
    fn default() -> Self {
        SeedPlan {
            pods: 100,
            namespaces: 5,
            prefix: "/registry".into(),
            seed: 1,
            generation: 0,
            changed: Default::default(),
        }
    }
}

/// One generated etcd entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedObject {
    /// The full etcd key.
    pub key: String,
    /// The value, in kube-apiserver's protobuf storage encoding.
    pub value: Vec<u8>,
}

fn s(v: impl Into<String>) -> Option<String> {
    Some(v.into())
}

/// A deterministic UUID-shaped id from some text.
pub fn uuid_from(text: &str) -> String {
    let h = Sha256::digest(text.as_bytes());
    let x = hex::encode(&h[..16]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    )
}

fn time(seconds: i64) -> Option<meta::Time> {
    Some(meta::Time {
        seconds: Some(seconds),
        nanos: Some(0),
    })
}

/// Seconds since the epoch of all seeded creation timestamps: 2026-11-01T00:00:00Z.
const BASE_TIME: i64 = 1_793_491_200;

fn managed_fields(manager: &str, seconds: i64, fields: &str) -> meta::ManagedFieldsEntry {
    meta::ManagedFieldsEntry {
        manager: s(manager),
        operation: s("Update"),
        api_version: s("v1"),
        time: time(seconds),
        fields_type: s("FieldsV1"),
        fields_v1: Some(meta::FieldsV1 {
            raw: Some(fields.as_bytes().to_vec()),
        }),
        subresource: None,
    }
}

fn quantity(q: &str) -> Quantity {
    Quantity { string: s(q) }
}

fn key_of(prefix: &str, kind: ResourceKind, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{prefix}/{}/{ns}/{name}", kind.resource()),
        None => format!("{prefix}/{}/{name}", kind.resource()),
    }
}

fn envelope(kind: ResourceKind, message: &impl Message) -> Vec<u8> {
    encode_envelope("v1", kind.kind(), &message.encode_to_vec())
}

/// The persistent volume behind a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeBacking {
    /// Cinder CSI driver (`cinder.csi.openstack.org`), with this Cinder volume id.
    CinderCsi(String),
    /// In-tree `spec.cinder.volumeID`.
    CinderInTree(String),
    /// Another CSI driver, e.g. `ebs.csi.aws.com`, with its volume handle.
    OtherCsi {
        /// The CSI driver name.
        driver: String,
        /// Its volume handle.
        handle: String,
    },
}

/// A claim and its bound volume, as the PV controller leaves them.
///
/// # Arguments
///
/// * `prefix` - the etcd prefix (`/registry`).
/// * `namespace`, `claim` - where the claim lives and its name.
/// * `pv` - the volume's name.
/// * `backing` - what the volume is.
/// * `size_gi` - its size in GiB.
pub fn claim_and_volume(
    prefix: &str,
    namespace: &str,
    claim: &str,
    pv: &str,
    backing: &VolumeBacking,
    size_gi: u32,
) -> Vec<SeedObject> {
    let claim_uid = uuid_from(&format!("pvc/{namespace}/{claim}/{pv}"));
    let size = format!("{size_gi}Gi");
    let (driver, storage_class) = match backing {
        VolumeBacking::CinderCsi(_) => ("cinder.csi.openstack.org", "csi-cinder-sc-delete"),
        VolumeBacking::CinderInTree(_) => ("kubernetes.io/cinder", "standard"),
        VolumeBacking::OtherCsi { driver, .. } => (driver.as_str(), "gp3"),
    };
    let annotations: BTreeMap<String, String> = [
        ("pv.kubernetes.io/bind-completed", "yes"),
        ("pv.kubernetes.io/bound-by-controller", "yes"),
        ("volume.beta.kubernetes.io/storage-provisioner", driver),
        ("volume.kubernetes.io/storage-provisioner", driver),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let pvc = core::PersistentVolumeClaim {
        metadata: Some(meta::ObjectMeta {
            name: s(claim),
            generate_name: s(""),
            namespace: s(namespace),
            self_link: s(""),
            resource_version: s(""),
            generation: Some(0),
            uid: s(claim_uid.clone()),
            creation_timestamp: time(BASE_TIME),
            annotations,
            finalizers: vec!["kubernetes.io/pvc-protection".into()],
            managed_fields: vec![managed_fields(
                "kube-controller-manager",
                BASE_TIME,
                r#"{"f:metadata":{"f:annotations":{"f:pv.kubernetes.io/bind-completed":{}}},"f:spec":{"f:volumeName":{}}}"#,
            )],
            ..Default::default()
        }),
        spec: Some(core::PersistentVolumeClaimSpec {
            access_modes: vec!["ReadWriteOnce".into()],
            resources: Some(core::VolumeResourceRequirements {
                requests: [("storage".to_string(), quantity(&size))].into(),
                ..Default::default()
            }),
            volume_name: s(pv),
            storage_class_name: s(storage_class),
            volume_mode: s("Filesystem"),
            ..Default::default()
        }),
        status: Some(core::PersistentVolumeClaimStatus {
            phase: s("Bound"),
            access_modes: vec!["ReadWriteOnce".into()],
            capacity: [("storage".to_string(), quantity(&size))].into(),
            ..Default::default()
        }),
    };
    let source = match backing {
        VolumeBacking::CinderCsi(id) => core::PersistentVolumeSource {
            csi: Some(core::CSIPersistentVolumeSource {
                driver: s("cinder.csi.openstack.org"),
                volume_handle: s(id.clone()),
                fs_type: s("ext4"),
                volume_attributes: [(
                    "storage.kubernetes.io/csiProvisionerIdentity".to_string(),
                    "1793491000000-8081-cinder.csi.openstack.org".to_string(),
                )]
                .into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        VolumeBacking::CinderInTree(id) => core::PersistentVolumeSource {
            cinder: Some(core::CinderPersistentVolumeSource {
                volume_id: s(id.clone()),
                fs_type: s("ext4"),
                ..Default::default()
            }),
            ..Default::default()
        },
        VolumeBacking::OtherCsi { driver, handle } => core::PersistentVolumeSource {
            csi: Some(core::CSIPersistentVolumeSource {
                driver: s(driver.clone()),
                volume_handle: s(handle.clone()),
                fs_type: s("ext4"),
                ..Default::default()
            }),
            ..Default::default()
        },
    };
    let pv_obj = core::PersistentVolume {
        metadata: Some(meta::ObjectMeta {
            name: s(pv),
            generate_name: s(""),
            namespace: s(""),
            self_link: s(""),
            resource_version: s(""),
            generation: Some(0),
            uid: s(uuid_from(&format!("pv/{pv}"))),
            creation_timestamp: time(BASE_TIME),
            annotations: [(
                "pv.kubernetes.io/provisioned-by".to_string(),
                driver.to_string(),
            )]
            .into(),
            finalizers: vec!["kubernetes.io/pv-protection".into()],
            managed_fields: vec![managed_fields(
                "csi-provisioner",
                BASE_TIME,
                r#"{"f:metadata":{"f:annotations":{".":{},"f:pv.kubernetes.io/provisioned-by":{}}},"f:spec":{"f:accessModes":{},"f:capacity":{},"f:claimRef":{},"f:csi":{}}}"#,
            )],
            ..Default::default()
        }),
        spec: Some(core::PersistentVolumeSpec {
            capacity: [("storage".to_string(), quantity(&size))].into(),
            persistent_volume_source: Some(source),
            access_modes: vec!["ReadWriteOnce".into()],
            claim_ref: Some(core::ObjectReference {
                kind: s("PersistentVolumeClaim"),
                namespace: s(namespace),
                name: s(claim),
                uid: s(claim_uid),
                api_version: s("v1"),
                resource_version: s("1"),
                ..Default::default()
            }),
            persistent_volume_reclaim_policy: s("Delete"),
            storage_class_name: s(storage_class),
            volume_mode: s("Filesystem"),
            ..Default::default()
        }),
        status: Some(core::PersistentVolumeStatus {
            phase: s("Bound"),
            last_phase_transition_time: time(BASE_TIME),
            ..Default::default()
        }),
    };
    vec![
        SeedObject {
            key: key_of(
                prefix,
                ResourceKind::PersistentVolumeClaim,
                Some(namespace),
                claim,
            ),
            value: envelope(ResourceKind::PersistentVolumeClaim, &pvc),
        },
        SeedObject {
            key: key_of(prefix, ResourceKind::PersistentVolume, None, pv),
            value: envelope(ResourceKind::PersistentVolume, &pv_obj),
        },
    ]
}

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
/// and volume.
pub fn pod_objects(plan: &SeedPlan, index: usize) -> Vec<SeedObject> {
    let prefix = plan.prefix.trim_end_matches('/');
    let namespace = format!("ns-{}", index % plan.namespaces.max(1));
    let app = ["web", "api", "worker", "db", "cache"][index % 5];
    let name = format!("{app}-{index}");
    let seeded = |what: &str| uuid_from(&format!("{}/{what}/{namespace}/{name}", plan.seed));
    let mut out = Vec::new();
    let mut volumes = vec![
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
                        name: s(format!("{app}-config")),
                    }),
                    default_mode: Some(420),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        },
    ];
    let data_volume = match index % 5 {
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
                    prefix, &namespace, &claim, &pv, &backing, 10,
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
                &namespace,
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
    };
    let mut mounts = vec![("scratch", "/tmp"), ("config", "/etc/app")];
    if let Some(v) = data_volume {
        volumes.push(v);
        mounts.push(("data", "/var/lib/data"));
    }
    let pod = build_pod(plan, index, &namespace, &name, app, volumes, &mounts);
    out.push(SeedObject {
        key: key_of(prefix, ResourceKind::Pod, Some(&namespace), &name),
        value: envelope(ResourceKind::Pod, &pod),
    });
    out
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
    let rs = format!("{app}-{:x}", index % 7 + 0x5d8f9c);
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
        ("pod-template-hash", format!("{:x}", index % 7 + 0x5d8f9c)),
        ("release", format!("r{}", index % 3)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut containers = vec![container(
        app,
        &format!("registry.example.com/{app}:1.{}.{}", index % 4, index % 10),
        8080,
        index,
        mounts,
    )];
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
    let node = format!("node-{}", index % 16);
    let container_statuses = containers
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
        .collect();
    core::Pod {
        metadata: Some(meta::ObjectMeta {
            name: s(name),
            generate_name: s(format!("{rs}-")),
            namespace: s(namespace),
            self_link: s(""),
            resource_version: s(""),
            generation: Some(0),
            uid: s(uid),
            creation_timestamp: time(created),
            labels,
            annotations,
            owner_references: vec![meta::OwnerReference {
                api_version: s("apps/v1"),
                kind: s("ReplicaSet"),
                name: s(rs.clone()),
                uid: s(uuid_from(&format!("rs/{namespace}/{rs}"))),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }],
            managed_fields: vec![
                managed_fields(
                    "kube-controller-manager",
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
        spec: Some(core::PodSpec {
            volumes,
            containers,
            restart_policy: s("Always"),
            termination_grace_period_seconds: Some(30),
            dns_policy: s("ClusterFirst"),
            service_account_name: s("default"),
            service_account: s("default"),
            node_name: s(node.clone()),
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
        }),
        status: Some(core::PodStatus {
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
        }),
    }
}

/// Every object of `plan`, pod by pod, lazily.
pub fn generate(plan: &SeedPlan) -> impl Iterator<Item = SeedObject> + '_ {
    (0..plan.pods).flat_map(move |i| pod_objects(plan, i))
}

/// Put `objects` into etcd, 100 per transaction, a few transactions in flight.
///
/// Returns the number of keys written.
pub async fn write(
    etcd: &Etcd,
    objects: impl IntoIterator<Item = SeedObject>,
) -> Result<u64, EtcdError> {
    use futures::stream::{self, StreamExt, TryStreamExt};

    let mut batches = Vec::new();
    let mut batch = Vec::new();
    for o in objects {
        batch.push(o);
        if batch.len() == 100 {
            batches.push(std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    let client = etcd.client().kv_client();
    let counts: Vec<u64> = stream::iter(batches)
        .map(|batch| {
            let mut kv = client.clone();
            async move {
                let n = batch.len() as u64;
                let first = batch.first().map(|o| o.key.clone()).unwrap_or_default();
                let ops: Vec<TxnOp> = batch
                    .into_iter()
                    .map(|o| TxnOp::put(o.key, o.value, None))
                    .collect();
                kv.txn(Txn::new().and_then(ops))
                    .await
                    .map_err(|e| EtcdError::Request {
                        op: "txn put",
                        key: first,
                        source: Box::new(e),
                    })?;
                Ok::<u64, EtcdError>(n)
            }
        })
        .buffer_unordered(4)
        .try_collect()
        .await?;
    Ok(counts.iter().sum())
}
