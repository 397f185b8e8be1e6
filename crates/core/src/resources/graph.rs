//! The pod -> claim -> persistent volume -> Cinder volume graph.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::objects::{ClaimInfo, PodInfo, PodVolume, PvSource, VolumeInfo, VolumeSourceKind};
use super::CINDER_CSI_DRIVER;

pub use crate::model::VolumeDriver;

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

/// What a pod volume is, as far as the pod alone says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodAlone {
    /// Resolved: no claim is involved.
    Resolved(Dependent),
    /// Through this claim (in the pod's namespace), which the catalog resolves.
    ThroughClaim(String),
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

    /// A pod volume resolved as far as the pod alone says: its dependent when it uses no
    /// claim (an inline Cinder volume, or a source that is no volume at all), or the claim's
    /// name when it does (then the catalog resolves it).
    pub fn without_claim(volume: &PodVolume, pod_name: &str) -> PodAlone {
        if let Some(claim) = volume.claim(pod_name) {
            return PodAlone::ThroughClaim(claim);
        }
        PodAlone::Resolved(match &volume.source {
            VolumeSourceKind::Cinder { volume_id } if !volume_id.is_empty() => Dependent {
                pod_volume: volume.name.clone(),
                status: DependentStatus::Protectable,
                volume_id: Some(volume_id.clone()),
                driver: Some(VolumeDriver::InlineCinder),
                claim: None,
                persistent_volume: None,
                capacity: None,
            },
            VolumeSourceKind::Cinder { .. } => {
                Dependent::not(&volume.name, "cinder: no volumeID".into())
            }
            VolumeSourceKind::Other { source } => {
                Dependent::not(&volume.name, format!("{source}: no backing volume"))
            }
            VolumeSourceKind::PersistentVolumeClaim { claim_name } => {
                Dependent::not(&volume.name, format!("PVC {claim_name} not found"))
            }
            VolumeSourceKind::Ephemeral => {
                Dependent::not(&volume.name, "ephemeral: no claim".into())
            }
        })
    }

    /// True when backed by a Cinder volume.
    pub fn is_protectable(&self) -> bool {
        self.status == DependentStatus::Protectable
    }
}

/// The first step of resolving a pod volume through its claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimStep {
    /// The claim settles it (not found, or not bound).
    Resolved(Dependent),
    /// The claim is bound to this persistent volume.
    BoundTo(String),
}

/// What resolving a pod volume needs of a claim.
#[derive(Debug, Clone)]
enum ClaimLink {
    /// Bound to this persistent volume.
    Bound(String),
    /// Not bound; its phase.
    Unbound(Option<String>),
}

/// What resolving a pod volume needs of a persistent volume.
#[derive(Debug, Clone)]
struct VolumeLink {
    source: PvSource,
    capacity: Option<String>,
}

/// The claims and volumes of one consistent read, to resolve pods against.
///
/// A read notes the claims its pods use ([`Catalog::need_claim`]) before claims stream past,
/// then keeps only those ([`Catalog::add_claim`]) and notes their volumes, and keeps only
/// those volumes ([`Catalog::add_volume`]). Of each it keeps what resolution needs, nothing
/// else: memory follows the selection, not the cluster.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// Claims used by the selection, by `(namespace, name)`; `None` until read.
    claims: HashMap<(String, String), Option<ClaimLink>>,
    /// Volumes bound to those claims, by name; `None` until read. Boxed: the map is made
    /// when the claims are read, before any volume, and its slots stay small until then.
    volumes: HashMap<String, Option<Box<VolumeLink>>>,
}

impl Catalog {
    /// Notes that a selected pod uses the claim `namespace/name`.
    pub fn need_claim(&mut self, namespace: &str, name: &str) {
        self.claims
            .entry((namespace.to_string(), name.to_string()))
            .or_insert(None);
    }

    /// The claims the selection uses, as `(namespace, name)`.
    pub fn needed_claims(&self) -> impl Iterator<Item = (&str, &str)> {
        self.claims.keys().map(|(ns, n)| (ns.as_str(), n.as_str()))
    }

    /// The persistent volumes the selection's claims are bound to.
    pub fn needed_volumes(&self) -> impl Iterator<Item = &str> {
        self.volumes.keys().map(String::as_str)
    }

    /// Whether the claim `namespace/name` is used by the selection.
    pub fn needs_claim(&self, namespace: &str, name: &str) -> bool {
        self.claims
            .contains_key(&(namespace.to_string(), name.to_string()))
    }

    /// Keeps `claim` if the selection uses it (and then notes its volume as needed).
    /// Returns whether it was kept.
    pub fn add_claim(&mut self, claim: ClaimInfo) -> bool {
        let Some(slot) = self.claims.get_mut(&(claim.namespace, claim.name)) else {
            return false;
        };
        let link = match claim.volume_name {
            Some(pv) => {
                self.volumes.entry(pv.clone()).or_insert(None);
                ClaimLink::Bound(pv)
            }
            None => ClaimLink::Unbound(claim.phase),
        };
        *slot = Some(link);
        true
    }

    /// Keeps `volume` if a claim of the selection is bound to it. Returns whether it was kept.
    pub fn add_volume(&mut self, volume: VolumeInfo) -> bool {
        let Some(slot) = self.volumes.get_mut(&volume.name) else {
            return false;
        };
        *slot = Some(Box::new(VolumeLink {
            source: volume.source,
            capacity: volume.capacity,
        }));
        true
    }

    /// Resolve every volume of `pod` to a Cinder volume, or to the reason it has none.
    pub fn dependents(&self, pod: &PodInfo) -> Vec<Dependent> {
        pod.volumes
            .iter()
            .map(|v| self.dependent(&pod.namespace, &pod.name, v))
            .collect()
    }

    /// Resolve one volume of the pod `namespace/pod_name`.
    pub fn dependent(&self, namespace: &str, pod_name: &str, volume: &PodVolume) -> Dependent {
        match Dependent::without_claim(volume, pod_name) {
            PodAlone::Resolved(dep) => dep,
            PodAlone::ThroughClaim(claim) => self.through_claim(namespace, &volume.name, &claim),
        }
    }

    /// Resolve the pod volume `pod_volume` that uses the claim `namespace/claim_name`.
    pub fn through_claim(&self, namespace: &str, pod_volume: &str, claim_name: &str) -> Dependent {
        match self.claim_step(namespace, pod_volume, claim_name) {
            ClaimStep::Resolved(dependent) => dependent,
            ClaimStep::BoundTo(pv_name) => self.through_volume(pod_volume, claim_name, &pv_name),
        }
    }

    /// The first step of [`Catalog::through_claim`]: what the claim says, once claims are
    /// read. A reader that takes this step for all its uses may then
    /// [`Catalog::forget_claims`] and finish with [`Catalog::through_volume`].
    pub fn claim_step(&self, namespace: &str, pod_volume: &str, claim_name: &str) -> ClaimStep {
        let not = |reason: String| {
            let mut d = Dependent::not(pod_volume, reason);
            d.claim = Some(claim_name.to_string());
            ClaimStep::Resolved(d)
        };
        match self
            .claims
            .get(&(namespace.to_string(), claim_name.to_string()))
            .and_then(Option::as_ref)
        {
            None => not(format!("PVC {claim_name} not found")),
            Some(ClaimLink::Unbound(phase)) => {
                let phase = phase.as_deref().unwrap_or("unknown");
                not(format!(
                    "PVC {claim_name} is not bound to a volume (phase {phase})"
                ))
            }
            Some(ClaimLink::Bound(pv_name)) => ClaimStep::BoundTo(pv_name.clone()),
        }
    }

    /// The second step of [`Catalog::through_claim`]: the pod volume `pod_volume` uses the
    /// claim `claim_name`, bound to the persistent volume `pv_name`.
    pub fn through_volume(&self, pod_volume: &str, claim_name: &str, pv_name: &str) -> Dependent {
        let with_pv = |mut d: Dependent| {
            d.persistent_volume = Some(pv_name.to_string());
            d.claim = Some(claim_name.to_string());
            d
        };
        let Some(pv) = self.volumes.get(pv_name).and_then(Option::as_deref) else {
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

    /// Forgets the claims read (the volumes bound to them stay needed): for a reader that
    /// has taken [`Catalog::claim_step`] for every use, so that the claims' memory is free
    /// while the volumes stream past. [`Catalog::through_claim`] then finds no claim.
    pub fn forget_claims(&mut self) {
        self.claims = HashMap::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(name: &str, volume: Option<&str>, phase: Option<&str>) -> ClaimInfo {
        ClaimInfo {
            namespace: "ns".into(),
            name: name.into(),
            uid: String::new(),
            volume_name: volume.map(str::to_string),
            phase: phase.map(str::to_string),
        }
    }

    fn cinder_pv(name: &str, id: &str) -> VolumeInfo {
        VolumeInfo {
            name: name.into(),
            uid: String::new(),
            source: PvSource::Csi {
                driver: CINDER_CSI_DRIVER.into(),
                volume_handle: id.into(),
            },
            capacity: Some("1Gi".into()),
            claim: None,
        }
    }

    #[test]
    fn claims_resolve_in_two_steps_and_may_be_forgotten_between() {
        let mut catalog = Catalog::default();
        for c in ["bound", "pending", "missing"] {
            catalog.need_claim("ns", c);
        }
        assert!(catalog.add_claim(claim("bound", Some("pv-1"), Some("Bound"))));
        assert!(catalog.add_claim(claim("pending", None, Some("Pending"))));
        assert!(!catalog.add_claim(claim("unused", Some("pv-9"), None)));
        let whole = catalog.through_claim("ns", "data", "bound");

        let bound = catalog.claim_step("ns", "data", "bound");
        assert_eq!(bound, ClaimStep::BoundTo("pv-1".into()));
        let ClaimStep::Resolved(pending) = catalog.claim_step("ns", "data", "pending") else {
            panic!("an unbound claim settles its use");
        };
        assert_eq!(
            pending.status,
            DependentStatus::NotProtectable(
                "PVC pending is not bound to a volume (phase Pending)".into()
            )
        );
        assert_eq!(pending.claim.as_deref(), Some("pending"));
        let ClaimStep::Resolved(missing) = catalog.claim_step("ns", "data", "missing") else {
            panic!("a claim never read settles its use");
        };
        assert_eq!(
            missing.status,
            DependentStatus::NotProtectable("PVC missing not found".into())
        );

        catalog.forget_claims();
        assert!(!catalog.needs_claim("ns", "bound"));
        assert!(catalog.add_volume(cinder_pv("pv-1", "vol-1")));
        assert!(
            !catalog.add_volume(cinder_pv("pv-9", "vol-9")),
            "no claim of ours"
        );
        let two_steps = catalog.through_volume("data", "bound", "pv-1");
        assert_eq!(two_steps.volume_id.as_deref(), Some("vol-1"));
        assert_eq!(two_steps.claim.as_deref(), Some("bound"));
        assert_eq!(two_steps.persistent_volume.as_deref(), Some("pv-1"));
        assert_eq!(two_steps.capacity.as_deref(), Some("1Gi"));
        // The same as resolving in one step with the volume read: only the volume was
        // missing then.
        assert_eq!(whole.persistent_volume, two_steps.persistent_volume);
        assert_eq!(
            catalog.through_volume("data", "bound", "pv-2").status,
            DependentStatus::NotProtectable("PV pv-2 (bound to PVC bound) not found".into())
        );
    }
}
