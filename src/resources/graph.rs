//! The pod -> claim -> persistent volume -> Cinder volume graph.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::objects::{ClaimInfo, PodInfo, PvSource, VolumeInfo, VolumeSourceKind};
use super::CINDER_CSI_DRIVER;

/// How a Cinder volume is attached to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VolumeDriver {
    /// Through a PV of the Cinder CSI driver (`csi.volumeHandle`).
    CinderCsi,
    /// Through a PV of the in-tree plugin (`cinder.volumeID`).
    CinderInTree,
    /// Inline in the pod spec (`volumes[].cinder.volumeID`).
    InlineCinder,
}

impl VolumeDriver {
    /// Short text for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeDriver::CinderCsi => "cinder-csi",
            VolumeDriver::CinderInTree => "cinder-in-tree",
            VolumeDriver::InlineCinder => "inline-cinder",
        }
    }
}

/// Whether a pod volume can be protected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "reason")]
pub enum DependentStatus {
    /// Backed by a Cinder volume.
    Protectable,
    /// Not backed by a Cinder volume; the reason says why.
    NotProtectable(String),
}

/// One volume of a pod, resolved as far as it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependent {
    /// The volume's name in the pod spec.
    pub pod_volume: String,
    /// Protectable or not, and why not.
    #[serde(flatten)]
    pub status: DependentStatus,
    /// The Cinder volume id, when protectable.
    pub volume_id: Option<String>,
    /// How the Cinder volume is attached.
    pub driver: Option<VolumeDriver>,
    /// The claim, where one is involved.
    pub claim: Option<String>,
    /// The persistent volume, where one is involved.
    pub persistent_volume: Option<String>,
    /// The PV's capacity, as written (`10Gi`).
    pub capacity: Option<String>,
}

impl Dependent {
    fn not(pod_volume: &str, reason: String) -> Dependent {
        Dependent {
            pod_volume: pod_volume.to_string(),
            status: DependentStatus::NotProtectable(reason),
            volume_id: None,
            driver: None,
            claim: None,
            persistent_volume: None,
            capacity: None,
        }
    }

    /// True when backed by a Cinder volume.
    pub fn is_protectable(&self) -> bool {
        self.status == DependentStatus::Protectable
    }
}

/// The claims and volumes of one consistent read, to resolve pods against.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    claims: HashMap<(String, String), ClaimInfo>,
    volumes: HashMap<String, VolumeInfo>,
}

impl Catalog {
    /// Add a claim.
    pub fn add_claim(&mut self, claim: ClaimInfo) {
        self.claims
            .insert((claim.namespace.clone(), claim.name.clone()), claim);
    }

    /// Add a persistent volume.
    pub fn add_volume(&mut self, volume: VolumeInfo) {
        self.volumes.insert(volume.name.clone(), volume);
    }

    /// The claim `namespace/name`, if read.
    pub fn claim(&self, namespace: &str, name: &str) -> Option<&ClaimInfo> {
        self.claims.get(&(namespace.to_string(), name.to_string()))
    }

    /// The persistent volume `name`, if read.
    pub fn volume(&self, name: &str) -> Option<&VolumeInfo> {
        self.volumes.get(name)
    }

    /// Resolve every volume of `pod` to a Cinder volume, or to the reason it has none.
    pub fn dependents(&self, pod: &PodInfo) -> Vec<Dependent> {
        pod.volumes
            .iter()
            .map(|v| match &v.source {
                VolumeSourceKind::Cinder { volume_id } if volume_id.is_empty() => {
                    Dependent::not(&v.name, "cinder: no volumeID".into())
                }
                VolumeSourceKind::Cinder { volume_id } => Dependent {
                    pod_volume: v.name.clone(),
                    status: DependentStatus::Protectable,
                    volume_id: Some(volume_id.clone()),
                    driver: Some(VolumeDriver::InlineCinder),
                    claim: None,
                    persistent_volume: None,
                    capacity: None,
                },
                VolumeSourceKind::PersistentVolumeClaim { claim_name } => {
                    self.through_claim(&pod.namespace, &v.name, claim_name)
                }
                VolumeSourceKind::Ephemeral => {
                    let claim = format!("{}-{}", pod.name, v.name);
                    self.through_claim(&pod.namespace, &v.name, &claim)
                }
                VolumeSourceKind::Other { source } => {
                    Dependent::not(&v.name, format!("{source}: no backing volume"))
                }
            })
            .collect()
    }

    fn through_claim(&self, namespace: &str, pod_volume: &str, claim_name: &str) -> Dependent {
        let with_claim = |mut d: Dependent| {
            d.claim = Some(claim_name.to_string());
            d
        };
        let Some(claim) = self.claim(namespace, claim_name) else {
            return with_claim(Dependent::not(
                pod_volume,
                format!("PVC {claim_name} not found"),
            ));
        };
        let Some(pv_name) = &claim.volume_name else {
            let phase = claim.phase.as_deref().unwrap_or("unknown");
            return with_claim(Dependent::not(
                pod_volume,
                format!("PVC {claim_name} is not bound to a volume (phase {phase})"),
            ));
        };
        let with_pv = |mut d: Dependent| {
            d.persistent_volume = Some(pv_name.clone());
            with_claim(d)
        };
        let Some(pv) = self.volume(pv_name) else {
            return with_pv(Dependent::not(
                pod_volume,
                format!("PV {pv_name} (bound to PVC {claim_name}) not found"),
            ));
        };
        let protectable = |volume_id: &str, driver| {
            with_pv(Dependent {
                pod_volume: pod_volume.to_string(),
                status: DependentStatus::Protectable,
                volume_id: Some(volume_id.to_string()),
                driver: Some(driver),
                claim: None,
                persistent_volume: None,
                capacity: pv.capacity.clone(),
            })
        };
        match &pv.source {
            PvSource::Csi {
                driver,
                volume_handle,
            } if driver == CINDER_CSI_DRIVER && !volume_handle.is_empty() => {
                protectable(volume_handle, VolumeDriver::CinderCsi)
            }
            PvSource::Cinder { volume_id } if !volume_id.is_empty() => {
                protectable(volume_id, VolumeDriver::CinderInTree)
            }
            PvSource::Csi { driver, .. } => with_pv(Dependent::not(
                pod_volume,
                format!("PV {pv_name} is not a Cinder volume (driver {driver})"),
            )),
            PvSource::Cinder { .. } => with_pv(Dependent::not(
                pod_volume,
                format!("PV {pv_name} has an empty cinder.volumeID"),
            )),
            PvSource::Other { source } => with_pv(Dependent::not(
                pod_volume,
                format!("PV {pv_name} is not a Cinder volume ({source})"),
            )),
        }
    }
}
