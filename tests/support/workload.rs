//! Small workloads for the end-to-end protect and restore tests: a pod whose claims are
//! bound to PVs that point at REAL Cinder volumes of the rig (CSI driver
//! `cinder.csi.openstack.org`, `volumeHandle` = the volume id), written into etcd the way
//! kube-apiserver stores them; the podbank binary run against that etcd, a local bank and
//! the rig's `clouds.yaml`; and the bank opened read-only to check what was written.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use podbank::bank::backend::{Backend, LocalBackend};
use podbank::bank::{Bank, OpenOptions};
use podbank::codec::encode_envelope;
use podbank_seed::{self as seed, SeedObject, VolumeBacking};
use prost::Message;

/// One claim of the pod: the pod's volume name, the claim, its PV and the Cinder volume.
#[derive(Debug, Clone)]
pub struct Claim {
    /// `spec.volumes[].name` in the pod.
    pub volume: String,
    /// The PVC's name.
    pub claim: String,
    /// The PV's name.
    pub pv: String,
    /// The Cinder volume id (the PV's `csi.volumeHandle`).
    pub cinder_id: String,
}

impl Claim {
    /// The claim `claim`, mounted as `volume`, bound to a CSI PV (named after the volume
    /// id) of the Cinder volume `cinder_id`.
    pub fn of_cinder(volume: &str, claim: &str, cinder_id: &str) -> Claim {
        Claim {
            volume: volume.into(),
            claim: claim.into(),
            pv: format!("pvc-{}", seed::uuid_from(cinder_id)),
            cinder_id: cinder_id.into(),
        }
    }
}

fn s(v: impl Into<String>) -> Option<String> {
    Some(v.into())
}

/// A pod as kube-apiserver stores it, with fields a restore must keep (labels,
/// annotations, ownerReferences, finalizers, containers and mounts, tolerations) and the
/// fields it must drop (uid, resourceVersion, creationTimestamp, managedFields, status),
/// mounting `claims`.
pub fn pod(namespace: &str, name: &str, claims: &[Claim]) -> core::Pod {
    let mut volumes: Vec<core::Volume> = claims
        .iter()
        .map(|c| core::Volume {
            name: s(c.volume.clone()),
            volume_source: Some(core::VolumeSource {
                persistent_volume_claim: Some(core::PersistentVolumeClaimVolumeSource {
                    claim_name: s(c.claim.clone()),
                    read_only: Some(false),
                }),
                ..Default::default()
            }),
        })
        .collect();
    volumes.push(core::Volume {
        name: s("scratch"),
        volume_source: Some(core::VolumeSource {
            empty_dir: Some(core::EmptyDirVolumeSource::default()),
            ..Default::default()
        }),
    });
    let mounts = claims
        .iter()
        .map(|c| core::VolumeMount {
            name: s(c.volume.clone()),
            mount_path: s(format!("/data/{}", c.volume)),
            ..Default::default()
        })
        .collect();
    core::Pod {
        metadata: Some(meta::ObjectMeta {
            name: s(name),
            generate_name: s(format!("{name}-")),
            namespace: s(namespace),
            uid: s(seed::uuid_from(&format!("pod/{namespace}/{name}"))),
            resource_version: s(""),
            generation: Some(1),
            creation_timestamp: Some(meta::Time {
                seconds: Some(1_793_491_200),
                nanos: Some(0),
            }),
            labels: [
                ("app".to_string(), "db".to_string()),
                ("tier".to_string(), "backend".to_string()),
            ]
            .into(),
            annotations: [("example.com/owner".to_string(), "team-storage".to_string())].into(),
            owner_references: vec![meta::OwnerReference {
                api_version: s("apps/v1"),
                kind: s("StatefulSet"),
                name: s("db"),
                uid: s(seed::uuid_from(&format!("sts/{namespace}/db"))),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }],
            finalizers: vec!["example.com/keep".into()],
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kube-controller-manager"),
                operation: s("Update"),
                api_version: s("v1"),
                time: Some(meta::Time {
                    seconds: Some(1_793_491_200),
                    nanos: Some(0),
                }),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:metadata":{"f:labels":{}}}"#.to_vec()),
                }),
                subresource: None,
            }],
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            volumes,
            containers: vec![core::Container {
                name: s("db"),
                image: s("registry.local/postgres:16"),
                args: vec!["-c".into(), "shared_buffers=256MB".into()],
                env: vec![core::EnvVar {
                    name: s("PGDATA"),
                    value: s("/data/data/pg"),
                    value_from: None,
                }],
                volume_mounts: mounts,
                termination_message_path: s("/dev/termination-log"),
                image_pull_policy: s("IfNotPresent"),
                ..Default::default()
            }],
            restart_policy: s("Always"),
            termination_grace_period_seconds: Some(30),
            dns_policy: s("ClusterFirst"),
            service_account_name: s("default"),
            node_name: s("node-3"),
            hostname: s(name),
            scheduler_name: s("default-scheduler"),
            tolerations: vec![core::Toleration {
                key: s("node.kubernetes.io/not-ready"),
                operator: s("Exists"),
                effect: s("NoExecute"),
                toleration_seconds: Some(300),
                value: None,
            }],
            priority: Some(0),
            enable_service_links: Some(true),
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: s("Running"),
            host_ip: s("10.0.0.13"),
            pod_ip: s("10.244.3.7"),
            qos_class: s("BestEffort"),
            ..Default::default()
        }),
    }
}

/// The etcd entries of `pod` and of its claims and volumes (from [`seed::claim_and_volume`],
/// 1 GiB each, CSI-backed by the given Cinder volumes).
pub fn objects(namespace: &str, pod: &core::Pod, claims: &[Claim]) -> Vec<SeedObject> {
    let name = pod
        .metadata
        .as_ref()
        .and_then(|m| m.name.clone())
        .unwrap_or_default();
    let mut out = vec![SeedObject {
        key: format!("/registry/pods/{namespace}/{name}"),
        value: encode_envelope("v1", "Pod", &pod.encode_to_vec()),
    }];
    for c in claims {
        out.extend(seed::claim_and_volume(
            "/registry",
            namespace,
            &c.claim,
            &c.pv,
            &VolumeBacking::CinderCsi(c.cinder_id.clone()),
            1,
        ));
    }
    out
}

/// The raw object (`runtime.Unknown.raw`) of a stored `k8s\0` value.
pub fn raw_of(value: &[u8]) -> Vec<u8> {
    let rest = value
        .strip_prefix(b"k8s\0")
        .expect("a protobuf storage value starts with k8s\\0");
    k8s_pb::apimachinery::pkg::runtime::Unknown::decode(rest)
        .expect("runtime.Unknown")
        .raw
        .unwrap_or_default()
}

/// The claim and PV of `claim` as [`objects`] writes them, decoded.
pub fn claim_objects(
    namespace: &str,
    claim: &Claim,
) -> (core::PersistentVolumeClaim, core::PersistentVolume) {
    let objs = seed::claim_and_volume(
        "/registry",
        namespace,
        &claim.claim,
        &claim.pv,
        &VolumeBacking::CinderCsi(claim.cinder_id.clone()),
        1,
    );
    let find = |part: &str| {
        objs.iter()
            .find(|o| o.key.contains(part))
            .map(|o| raw_of(&o.value))
            .expect("seeded claim and volume")
    };
    (
        core::PersistentVolumeClaim::decode(&find("/persistentvolumeclaims/")[..]).expect("pvc"),
        core::PersistentVolume::decode(&find("/persistentvolumes/")[..]).expect("pv"),
    )
}

/// What the podbank binary printed.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// The podbank binary, pointed at one etcd, one local bank and the rig's `clouds.yaml`.
#[derive(Debug, Clone)]
pub struct Podbank {
    /// etcd URL.
    pub etcd: String,
    /// The bank directory.
    pub bank: PathBuf,
    /// `clouds.yaml` to use.
    pub clouds: PathBuf,
    /// The cloud of `clouds` to use.
    pub cloud: String,
}

impl Podbank {
    /// podbank against `etcd_url` and a bank in `dir`, with no Cinder to reach (for
    /// `--no-volume-backups` and what fails before Cinder).
    pub fn without_cinder(etcd_url: &str, dir: &Path) -> Podbank {
        Podbank {
            etcd: etcd_url.to_string(),
            bank: dir.join("bank"),
            clouds: dir.join("no-clouds.yaml"),
            cloud: "none".into(),
        }
    }

    /// Run `podbank <args>` (asynchronously: the test's own servers keep answering).
    pub async fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().await.expect("run podbank");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("podbank {args:?} -> {}", run.code);
        run
    }

    /// Start `podbank <args>` in the background (output discarded), to be killed.
    pub fn spawn(&self, args: &[&str]) -> tokio::process::Child {
        self.command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start podbank")
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(super::podbank_bin());
        cmd.arg("--bank")
            .arg(&self.bank)
            .arg("--os-cloud")
            .arg(&self.cloud)
            .arg("--os-clouds-file")
            .arg(&self.clouds)
            .args(args)
            .env("PODBANK_ETCD_SERVERS", &self.etcd)
            .env_remove("PODBANK_CONFIG")
            .env_remove("PODBANK_BANK")
            .env_remove("PODBANK_BANK_KEY_FILE")
            .env_remove("KUBECONFIG")
            .env_remove("OS_CLOUD")
            .env_remove("OS_CLIENT_CONFIG_FILE")
            .env_remove("OS_AUTH_URL")
            .env_remove("OS_PASSWORD")
            .env_remove("OS_USERNAME")
            .env_remove("OS_TOKEN");
        cmd
    }

    /// Run `podbank <args>` and require exit code 0.
    pub async fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(
            run.code, 0,
            "podbank {args:?} failed:\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        run
    }

    /// Open the bank (it must exist).
    pub async fn open_bank(&self) -> Arc<Bank> {
        open_bank(&self.bank).await
    }
}

/// Open the local bank at `dir` (it must exist).
pub async fn open_bank(dir: &Path) -> Arc<Bank> {
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir).expect("local backend"));
    Bank::open(
        backend,
        OpenOptions {
            key: None,
            create: false,
            pack_target_bytes: None,
        },
    )
    .await
    .expect("open the bank")
}

/// The checkpoints of the bank at `dir`, oldest first.
pub async fn checkpoints(dir: &Path) -> Vec<podbank::model::Checkpoint> {
    open_bank(dir).await.checkpoints().await.expect("list").0
}

/// One request the rig's cinder-api logged (its wsgi access line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CinderRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The status Cinder answered.
    pub status: u16,
}

/// The requests of the rig's cinder-api log whose line mentions `needle` (a backup or
/// volume id).
pub fn cinder_requests(rig: &super::cinder::CinderRig, needle: &str) -> Vec<CinderRequest> {
    let text = std::fs::read_to_string(rig.dir.join("logs/cinder-api.log")).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("eventlet.wsgi.server") && l.contains(needle))
        .filter_map(|l| {
            let mut request = l.split('"').nth(1)?.split(' ');
            let method = request.next()?.to_string();
            let path = request.next()?.to_string();
            let status = l
                .split("status: ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some(CinderRequest {
                method,
                path,
                status,
            })
        })
        .collect()
}
