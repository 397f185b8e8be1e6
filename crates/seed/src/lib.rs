//! The seeder: realistic pods, claims and volumes written into etcd exactly as
//! kube-apiserver stores them (`k8s\0` + `runtime.Unknown` + the object message).
//!
//! Used by the tests, the README quickstart (`podbank demo seed`) and the benchmarks. The
//! objects follow the shape of real API-server output (see
//! `tests/data/fixtures/apiserver-v1.32/`): server-set metadata (uid, creationTimestamp,
//! managedFields), defaulted spec fields, owner references, a running status.
//!
//! Generation ([`generate`], [`pod_objects`]) is pure; [`write`] does the I/O. The parts:
//!
//! * `meta`: what every generated object shares (ids, timestamps, managed fields, keys and
//!   the storage envelope);
//! * `volumes`: a claim and its bound persistent volume ([`claim_and_volume`]);
//! * `pods`: a pod, its containers and its volumes ([`pod_objects`]);
//! * `workloads`: what owns each pod and what pods reference: Namespaces, Deployments ->
//!   ReplicaSets, StatefulSets, CronJobs -> Jobs, ConfigMaps, Secrets, ServiceAccounts
//!   ([`cluster_objects`]), with real uids, so that every reference resolves;
//! * `write`: the one part with I/O, the batched puts into etcd ([`write`](fn@write)).
//!
//! Owns: the shape of seeded objects. Must not touch: anything but etcd (no bank, no
//! Cinder); it is a test and demo tool, not part of protect or restore.
//!
//! Volume mix, by pod index `i` (`i % 5`): 0 a Cinder CSI claim, 1 a claim bound to an
//! in-tree Cinder volume, 2 an inline in-tree Cinder volume, 3 a generic ephemeral volume
//! (claim `<pod>-<volume>` bound to a Cinder CSI volume), 4 no persistent volume. Every pod
//! also mounts an emptyDir and a configMap. Every 50th pod (`i % 50 == 11`) refers to a claim
//! that does not exist, and every 50th (`i % 50 == 20`) to a claim bound to a non-Cinder
//! (`ebs.csi.aws.com`) volume, so that `dependents` meets every case.
//!
//! Workloads, by app: `web` (`i % 5 == 0`) and `api` (1) are StatefulSets whose claims come
//! from their `volumeClaimTemplates`; `worker` (2) a CronJob with a Job per pod; `db` (3) a
//! Deployment; `cache` (4) a Deployment when `i % 10 == 4`, a bare pod when `i % 10 == 9`.
//! Every pod mounts its app's ConfigMap, reads its app's Secret and runs as its app's
//! ServiceAccount (bare pods: `default`).

mod meta;
mod pods;
mod volumes;
mod workloads;
mod write;

pub use meta::uuid_from;
pub use pods::pod_objects;
pub use volumes::{claim_and_volume, VolumeBacking};
pub use workloads::cluster_objects;
pub use write::{write, SeedError};

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

/// Every object of `plan`: the cluster's objects besides pods ([`cluster_objects`]:
/// Namespaces, ServiceAccounts, ConfigMaps, Secrets, the pods' owners), then pod by pod,
/// lazily.
pub fn generate(plan: &SeedPlan) -> impl Iterator<Item = SeedObject> + '_ {
    cluster_objects(plan)
        .into_iter()
        .chain((0..plan.pods).flat_map(move |i| pod_objects(plan, i)))
}
