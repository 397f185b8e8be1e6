//! A claim and its bound persistent volume, as the PV controller leaves them: Cinder CSI,
//! in-tree Cinder, or another CSI driver.

use std::collections::BTreeMap;

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;

use super::meta::{envelope, key_of, managed_fields, quantity, s, time, uuid_from, BASE_TIME};
use super::SeedObject;
use podbank_core::codec::ResourceKind;

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
    let binding = Binding {
        namespace,
        claim,
        claim_uid: uuid_from(&format!("pvc/{namespace}/{claim}/{pv}")),
        pv,
        size: format!("{size_gi}Gi"),
        driver: match backing {
            VolumeBacking::CinderCsi(_) => "cinder.csi.openstack.org",
            VolumeBacking::CinderInTree(_) => "kubernetes.io/cinder",
            VolumeBacking::OtherCsi { driver, .. } => driver.as_str(),
        },
        storage_class: match backing {
            VolumeBacking::CinderCsi(_) => "csi-cinder-sc-delete",
            VolumeBacking::CinderInTree(_) => "standard",
            VolumeBacking::OtherCsi { .. } => "gp3",
        },
    };
    let pvc = claim_object(&binding);
    let pv_obj = volume_object(&binding, volume_source(backing));
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

/// What a claim and its volume share.
struct Binding<'a> {
    namespace: &'a str,
    claim: &'a str,
    claim_uid: String,
    pv: &'a str,
    /// The size, as a quantity (`10Gi`).
    size: String,
    /// The provisioner (a CSI driver, or `kubernetes.io/cinder`).
    driver: &'a str,
    storage_class: &'a str,
}

/// The bound claim.
fn claim_object(b: &Binding<'_>) -> core::PersistentVolumeClaim {
    let Binding {
        namespace,
        claim,
        pv,
        driver,
        storage_class,
        ..
    } = *b;
    let claim_uid = &b.claim_uid;
    let size = &b.size;
    let annotations: BTreeMap<String, String> = [
        ("pv.kubernetes.io/bind-completed", "yes"),
        ("pv.kubernetes.io/bound-by-controller", "yes"),
        ("volume.beta.kubernetes.io/storage-provisioner", driver),
        ("volume.kubernetes.io/storage-provisioner", driver),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    core::PersistentVolumeClaim {
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
                requests: [("storage".to_string(), quantity(size))].into(),
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
            capacity: [("storage".to_string(), quantity(size))].into(),
            ..Default::default()
        }),
    }
}

/// Where the volume's data is, by its backing.
fn volume_source(backing: &VolumeBacking) -> core::PersistentVolumeSource {
    match backing {
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
    }
}

/// The persistent volume, bound to the claim.
fn volume_object(b: &Binding<'_>, source: core::PersistentVolumeSource) -> core::PersistentVolume {
    let Binding {
        namespace,
        claim,
        pv,
        driver,
        storage_class,
        ..
    } = *b;
    let size = &b.size;
    core::PersistentVolume {
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
            capacity: [("storage".to_string(), quantity(size))].into(),
            persistent_volume_source: Some(source),
            access_modes: vec!["ReadWriteOnce".into()],
            claim_ref: Some(core::ObjectReference {
                kind: s("PersistentVolumeClaim"),
                namespace: s(namespace),
                name: s(claim),
                uid: s(b.claim_uid.clone()),
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
    }
}
