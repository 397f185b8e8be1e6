//! Slim protobuf views of pods, claims and volumes (and the metadata of any object): only
//! the fields podbank summarizes, with kube's own field numbers
//! (`k8s.io/api/core/v1/generated.proto`, `k8s.io/apimachinery/.../meta/v1`).
//!
//! Decoding the full `k8s_pb` types allocates every container, env var and probe of a pod
//! only to drop them again; these views skip what they do not name (prost skips unknown
//! fields without allocating), which makes summarizing a pod several times cheaper. The
//! stored bytes are never re-encoded from these views: they are for reading only, and a
//! test checks that they read the same as the full types on Kubernetes' own fixtures.

use std::collections::BTreeMap;

/// A nested message whose presence is all that matters (`emptyDir: {}` is present).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Present {}

/// `metav1.Time`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Time {
    /// Seconds since the epoch.
    #[prost(int64, optional, tag = "1")]
    pub seconds: Option<i64>,
}

/// `metav1.OwnerReference`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OwnerReference {
    /// `kind`.
    #[prost(string, optional, tag = "1")]
    pub kind: Option<String>,
    /// `name`.
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    /// `uid`.
    #[prost(string, optional, tag = "4")]
    pub uid: Option<String>,
    /// `apiVersion`.
    #[prost(string, optional, tag = "5")]
    pub api_version: Option<String>,
    /// `controller`.
    #[prost(bool, optional, tag = "6")]
    pub controller: Option<bool>,
}

/// `metav1.ObjectMeta`: name, namespace, uid, creationTimestamp, labels, ownerReferences.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Meta {
    /// `name`.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// `namespace`.
    #[prost(string, optional, tag = "3")]
    pub namespace: Option<String>,
    /// `uid`.
    #[prost(string, optional, tag = "5")]
    pub uid: Option<String>,
    /// `creationTimestamp`.
    #[prost(message, optional, tag = "8")]
    pub creation_timestamp: Option<Time>,
    /// `labels`.
    #[prost(btree_map = "string, string", tag = "11")]
    pub labels: BTreeMap<String, String>,
    /// `annotations` (a pod's exec hooks are declared there).
    #[prost(btree_map = "string, string", tag = "12")]
    pub annotations: BTreeMap<String, String>,
    /// `ownerReferences`.
    #[prost(message, repeated, tag = "13")]
    pub owner_references: Vec<OwnerReference>,
}

/// Any top-level object: only its metadata (field 1 of every Kubernetes object).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Object {
    /// `metadata`.
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<Meta>,
}

/// `v1.LocalObjectReference`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NameRef {
    /// `name`.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
}

/// A message whose field 1 is a `LocalObjectReference`: ConfigMapKeySelector,
/// SecretKeySelector, ConfigMapEnvSource, SecretEnvSource, ConfigMapVolumeSource,
/// ConfigMapProjection, SecretProjection.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Referencing {
    /// `localObjectReference` (inlined in JSON).
    #[prost(message, optional, tag = "1")]
    pub reference: Option<NameRef>,
}

impl Referencing {
    /// The name referenced, if any.
    pub fn name(&self) -> Option<&str> {
        self.reference
            .as_ref()
            .and_then(|r| r.name.as_deref())
            .filter(|n| !n.is_empty())
    }
}

/// `v1.EnvVarSource`: the ConfigMap and Secret references.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EnvVarSource {
    /// `configMapKeyRef`.
    #[prost(message, optional, tag = "3")]
    pub config_map_key_ref: Option<Referencing>,
    /// `secretKeyRef`.
    #[prost(message, optional, tag = "4")]
    pub secret_key_ref: Option<Referencing>,
}

/// `v1.EnvVar`: its source.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EnvVar {
    /// `valueFrom`.
    #[prost(message, optional, tag = "3")]
    pub value_from: Option<EnvVarSource>,
}

/// `v1.EnvFromSource`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EnvFromSource {
    /// `configMapRef`.
    #[prost(message, optional, tag = "2")]
    pub config_map_ref: Option<Referencing>,
    /// `secretRef`.
    #[prost(message, optional, tag = "3")]
    pub secret_ref: Option<Referencing>,
}

/// `v1.Container` (and `EphemeralContainerCommon`, same numbers): what it references.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Container {
    /// `name` (an exec hook names its container, or runs in the first).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// `env`.
    #[prost(message, repeated, tag = "7")]
    pub env: Vec<EnvVar>,
    /// `envFrom`.
    #[prost(message, repeated, tag = "19")]
    pub env_from: Vec<EnvFromSource>,
}

/// `v1.EphemeralContainer`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EphemeralContainer {
    /// `ephemeralContainerCommon` (inlined in JSON).
    #[prost(message, optional, tag = "1")]
    pub common: Option<Container>,
}

/// `v1.SecretVolumeSource`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SecretVolume {
    /// `secretName`.
    #[prost(string, optional, tag = "1")]
    pub secret_name: Option<String>,
}

/// `v1.VolumeProjection`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Projection {
    /// `secret`.
    #[prost(message, optional, tag = "1")]
    pub secret: Option<Referencing>,
    /// `configMap`.
    #[prost(message, optional, tag = "3")]
    pub config_map: Option<Referencing>,
}

/// `v1.ProjectedVolumeSource`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Projected {
    /// `sources`.
    #[prost(message, repeated, tag = "1")]
    pub sources: Vec<Projection>,
}

/// `v1.Pod`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Pod {
    /// `metadata`.
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<Meta>,
    /// `spec`.
    #[prost(message, optional, tag = "2")]
    pub spec: Option<PodSpec>,
    /// `status`.
    #[prost(message, optional, tag = "3")]
    pub status: Option<Phase>,
}

/// `v1.PodSpec`: volumes, nodeName, and what the pod references (containers' env,
/// service account, image pull secrets).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSpec {
    /// `volumes`.
    #[prost(message, repeated, tag = "1")]
    pub volumes: Vec<Volume>,
    /// `containers`.
    #[prost(message, repeated, tag = "2")]
    pub containers: Vec<Container>,
    /// `serviceAccountName`.
    #[prost(string, optional, tag = "8")]
    pub service_account_name: Option<String>,
    /// `serviceAccount` (deprecated alias).
    #[prost(string, optional, tag = "9")]
    pub service_account: Option<String>,
    /// `nodeName`.
    #[prost(string, optional, tag = "10")]
    pub node_name: Option<String>,
    /// `imagePullSecrets`.
    #[prost(message, repeated, tag = "15")]
    pub image_pull_secrets: Vec<NameRef>,
    /// `initContainers`.
    #[prost(message, repeated, tag = "20")]
    pub init_containers: Vec<Container>,
    /// `ephemeralContainers`.
    #[prost(message, repeated, tag = "34")]
    pub ephemeral_containers: Vec<EphemeralContainer>,
}

/// A status of which only `phase` (field 1 of pod and claim status) is read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Phase {
    /// `phase`.
    #[prost(string, optional, tag = "1")]
    pub phase: Option<String>,
}

/// `v1.Volume`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Volume {
    /// `name`.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// `volumeSource` (inlined in JSON).
    #[prost(message, optional, tag = "2")]
    pub volume_source: Option<VolumeSource>,
}

/// `persistentVolumeClaim` of a pod volume.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClaimRef {
    /// `claimName`.
    #[prost(string, optional, tag = "1")]
    pub claim_name: Option<String>,
}

/// An in-tree Cinder source (pod volume or persistent volume): `volumeID` is field 1 of both.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Cinder {
    /// `volumeID`.
    #[prost(string, optional, tag = "1")]
    pub volume_id: Option<String>,
}

/// `v1.VolumeSource`: which source is set, and the claim or Cinder volume behind it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VolumeSource {
    /// `hostPath`.
    #[prost(message, optional, tag = "1")]
    pub host_path: Option<Present>,
    /// `emptyDir`.
    #[prost(message, optional, tag = "2")]
    pub empty_dir: Option<Present>,
    /// `gcePersistentDisk`.
    #[prost(message, optional, tag = "3")]
    pub gce_persistent_disk: Option<Present>,
    /// `awsElasticBlockStore`.
    #[prost(message, optional, tag = "4")]
    pub aws_elastic_block_store: Option<Present>,
    /// `gitRepo`.
    #[prost(message, optional, tag = "5")]
    pub git_repo: Option<Present>,
    /// `secret`.
    #[prost(message, optional, tag = "6")]
    pub secret: Option<SecretVolume>,
    /// `nfs`.
    #[prost(message, optional, tag = "7")]
    pub nfs: Option<Present>,
    /// `iscsi`.
    #[prost(message, optional, tag = "8")]
    pub iscsi: Option<Present>,
    /// `glusterfs`.
    #[prost(message, optional, tag = "9")]
    pub glusterfs: Option<Present>,
    /// `persistentVolumeClaim`.
    #[prost(message, optional, tag = "10")]
    pub persistent_volume_claim: Option<ClaimRef>,
    /// `rbd`.
    #[prost(message, optional, tag = "11")]
    pub rbd: Option<Present>,
    /// `flexVolume`.
    #[prost(message, optional, tag = "12")]
    pub flex_volume: Option<Present>,
    /// `cinder`.
    #[prost(message, optional, tag = "13")]
    pub cinder: Option<Cinder>,
    /// `cephfs`.
    #[prost(message, optional, tag = "14")]
    pub cephfs: Option<Present>,
    /// `flocker`.
    #[prost(message, optional, tag = "15")]
    pub flocker: Option<Present>,
    /// `downwardAPI`.
    #[prost(message, optional, tag = "16")]
    pub downward_api: Option<Present>,
    /// `fc`.
    #[prost(message, optional, tag = "17")]
    pub fc: Option<Present>,
    /// `azureFile`.
    #[prost(message, optional, tag = "18")]
    pub azure_file: Option<Present>,
    /// `configMap`.
    #[prost(message, optional, tag = "19")]
    pub config_map: Option<Referencing>,
    /// `vsphereVolume`.
    #[prost(message, optional, tag = "20")]
    pub vsphere_volume: Option<Present>,
    /// `quobyte`.
    #[prost(message, optional, tag = "21")]
    pub quobyte: Option<Present>,
    /// `azureDisk`.
    #[prost(message, optional, tag = "22")]
    pub azure_disk: Option<Present>,
    /// `photonPersistentDisk`.
    #[prost(message, optional, tag = "23")]
    pub photon_persistent_disk: Option<Present>,
    /// `portworxVolume`.
    #[prost(message, optional, tag = "24")]
    pub portworx_volume: Option<Present>,
    /// `scaleIO`.
    #[prost(message, optional, tag = "25")]
    pub scale_io: Option<Present>,
    /// `projected`.
    #[prost(message, optional, tag = "26")]
    pub projected: Option<Projected>,
    /// `storageos`.
    #[prost(message, optional, tag = "27")]
    pub storageos: Option<Present>,
    /// `csi`.
    #[prost(message, optional, tag = "28")]
    pub csi: Option<Present>,
    /// `ephemeral`.
    #[prost(message, optional, tag = "29")]
    pub ephemeral: Option<Present>,
    /// `image`.
    #[prost(message, optional, tag = "30")]
    pub image: Option<Present>,
}

impl VolumeSource {
    /// The JSON field name of every set source other than a claim, Cinder or ephemeral
    /// volume, in the API's field order.
    pub fn named(&self) -> [(&'static str, bool); 27] {
        [
            ("emptyDir", self.empty_dir.is_some()),
            ("configMap", self.config_map.is_some()),
            ("secret", self.secret.is_some()),
            ("projected", self.projected.is_some()),
            ("downwardAPI", self.downward_api.is_some()),
            ("hostPath", self.host_path.is_some()),
            ("csi", self.csi.is_some()),
            ("image", self.image.is_some()),
            ("nfs", self.nfs.is_some()),
            ("iscsi", self.iscsi.is_some()),
            ("rbd", self.rbd.is_some()),
            ("cephfs", self.cephfs.is_some()),
            ("gitRepo", self.git_repo.is_some()),
            ("gcePersistentDisk", self.gce_persistent_disk.is_some()),
            (
                "awsElasticBlockStore",
                self.aws_elastic_block_store.is_some(),
            ),
            ("glusterfs", self.glusterfs.is_some()),
            ("flexVolume", self.flex_volume.is_some()),
            ("flocker", self.flocker.is_some()),
            ("fc", self.fc.is_some()),
            ("azureFile", self.azure_file.is_some()),
            ("azureDisk", self.azure_disk.is_some()),
            ("vsphereVolume", self.vsphere_volume.is_some()),
            ("quobyte", self.quobyte.is_some()),
            (
                "photonPersistentDisk",
                self.photon_persistent_disk.is_some(),
            ),
            ("portworxVolume", self.portworx_volume.is_some()),
            ("scaleIO", self.scale_io.is_some()),
            ("storageos", self.storageos.is_some()),
        ]
    }
}

/// `v1.PersistentVolumeClaim`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Claim {
    /// `metadata`.
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<Meta>,
    /// `spec`.
    #[prost(message, optional, tag = "2")]
    pub spec: Option<ClaimSpec>,
    /// `status`.
    #[prost(message, optional, tag = "3")]
    pub status: Option<Phase>,
}

/// `v1.PersistentVolumeClaimSpec`: the bound volume.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClaimSpec {
    /// `volumeName`.
    #[prost(string, optional, tag = "3")]
    pub volume_name: Option<String>,
}
