//! The inventory: the selected pods, and the claims and volumes they use, read at ONE
//! etcd revision.
//!
//! The scan reads pods first, then claims, then volumes, then (for protect) the pods'
//! closure — owners, referenced ConfigMaps, Secrets and ServiceAccounts, namespaces — all
//! at the same revision. While pods stream past, only the selected ones are kept and the
//! names of the claims and closure objects they need are noted; claims, volumes and the
//! closure are then kept only if needed (the closure is filtered by key, before decoding). So memory follows
//! the selection, never the whole cluster. A value that cannot be decoded becomes a
//! [`Problem`] (key + reason) and the read goes on.

use std::collections::{BTreeSet, HashSet};

use async_trait::async_trait;
use serde::Serialize;

use super::ProtectionError;
use crate::codec::{resource_prefix, CodecError, Decoder, ResourceKind, StorageKey, StoredObject};
use crate::etcd::{Etcd, KeyValue, Revision, ScanOptions, ScanSink, ScanSummary};
use crate::model::{Edge, Namespace, ObjectRef};
use crate::resources::{
    owner_edges, Catalog, ClaimInfo, ClosureWants, FieldSelector, LabelSelector, ObjectInfo,
    PodInfo, VolumeInfo,
};

/// Which pods to read.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Namespaces; empty means all.
    pub namespaces: Vec<Namespace>,
    /// Label selector over pod labels.
    pub labels: LabelSelector,
    /// Field selector over pod fields.
    pub fields: FieldSelector,
    /// Explicit pods; empty means no restriction.
    pub pods: Vec<ObjectRef>,
    /// Explicit pod uids; empty means no restriction.
    pub uids: Vec<String>,
    /// Read the pods' closure too: owners, referenced ConfigMaps, Secrets and
    /// ServiceAccounts, namespaces.
    pub closure: bool,
}

/// The closure's kinds in scan order: an owner's owner comes after it (ReplicaSets and
/// Jobs before Deployments and CronJobs), the referenced objects and namespaces last.
pub const CLOSURE_ORDER: [ResourceKind; 11] = [
    ResourceKind::ReplicaSet,
    ResourceKind::Job,
    ResourceKind::StatefulSet,
    ResourceKind::DaemonSet,
    ResourceKind::ReplicationController,
    ResourceKind::Deployment,
    ResourceKind::CronJob,
    ResourceKind::ConfigMap,
    ResourceKind::Secret,
    ResourceKind::ServiceAccount,
    ResourceKind::Namespace,
];

impl Selection {
    /// The key prefixes to scan, in order: pods, claims, volumes, then (with
    /// [`Selection::closure`]) the closure in [`CLOSURE_ORDER`].
    pub fn prefixes(&self, etcd_prefix: &str) -> Vec<(ResourceKind, Vec<u8>)> {
        let mut out = Vec::new();
        let namespaces: BTreeSet<&str> = if !self.pods.is_empty() {
            self.pods.iter().map(ObjectRef::namespace).collect()
        } else {
            self.namespaces.iter().map(Namespace::as_str).collect()
        };
        for kind in [ResourceKind::Pod, ResourceKind::PersistentVolumeClaim] {
            if namespaces.is_empty() {
                out.push((kind, resource_prefix(etcd_prefix, kind, None).into_bytes()));
            } else if kind == ResourceKind::Pod && !self.pods.is_empty() {
                // Exact pods: one narrow prefix each (the name is filtered exactly later).
                for pod in &self.pods {
                    let mut p = resource_prefix(etcd_prefix, kind, Some(pod.namespace()));
                    p.push_str(pod.name());
                    out.push((kind, p.into_bytes()));
                }
            } else {
                for ns in &namespaces {
                    out.push((
                        kind,
                        resource_prefix(etcd_prefix, kind, Some(ns)).into_bytes(),
                    ));
                }
            }
        }
        out.push((
            ResourceKind::PersistentVolume,
            resource_prefix(etcd_prefix, ResourceKind::PersistentVolume, None).into_bytes(),
        ));
        if self.closure {
            for kind in CLOSURE_ORDER {
                if !kind.namespaced() || namespaces.is_empty() {
                    out.push((kind, resource_prefix(etcd_prefix, kind, None).into_bytes()));
                } else {
                    for ns in &namespaces {
                        out.push((
                            kind,
                            resource_prefix(etcd_prefix, kind, Some(ns)).into_bytes(),
                        ));
                    }
                }
            }
        }
        out
    }

    /// Whether `pod` is one of the selected pods.
    pub fn accepts(&self, pod: &PodInfo) -> bool {
        (self.namespaces.is_empty() || self.namespaces.iter().any(|n| *n == *pod.namespace))
            && (self.pods.is_empty()
                || self
                    .pods
                    .iter()
                    .any(|p| p.namespace() == pod.namespace && p.name() == pod.name))
            && (self.uids.is_empty() || self.uids.contains(&pod.uid))
            && self.labels.matches(&pod.labels)
            && self.fields.matches(pod)
    }
}

/// A value that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Problem {
    /// The etcd key.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A selected pod and where it came from.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodEntry {
    /// The summary.
    #[serde(flatten)]
    pub info: PodInfo,
    /// Its etcd key.
    pub key: String,
    /// Revision of its last change (its resourceVersion).
    pub mod_revision: i64,
}

/// One object handed to an [`ObjectHandler`]: a selected pod, or a claim or volume one
/// of them needs.
#[derive(Debug)]
pub struct SelectedObject<'a> {
    /// What it is.
    pub kind: ResourceKind,
    /// Its etcd key.
    pub key: &'a str,
    /// Namespace (empty for volumes) and name.
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// `metadata.uid`.
    pub uid: &'a str,
    /// Its mod revision.
    pub mod_revision: i64,
    /// The plaintext storage value.
    pub object: &'a StoredObject,
    /// What it refers to (pods and owners).
    pub edges: Vec<Edge>,
}

/// Receives the selected objects as the inventory streams past (protect stores them in
/// the bank). The defaults keep every pod's summary in the [`Inventory`] and do nothing
/// else.
///
/// The inventory drives: for each page, [`ObjectHandler::pod`] sees each selected pod's
/// summary, then [`ObjectHandler::objects`] gets the page's selected objects. An error
/// from a handler ends the read with that error.
#[async_trait]
pub trait ObjectHandler: Send {
    /// A selected pod's summary, before its page's objects are handed over. Returns what
    /// the inventory keeps: the default keeps it; a handler that has taken what it needs
    /// returns `None`, so that memory does not grow with the pods.
    fn pod(&mut self, pod: PodEntry) -> Option<PodEntry> {
        Some(pod)
    }

    /// Every claim has been read; the persistent volumes come next. A handler that takes
    /// [`Catalog::claim_step`] for its uses now may [`Catalog::forget_claims`]. The default
    /// does nothing.
    fn claims_read(&mut self, catalog: &mut Catalog) {
        let _ = catalog;
    }

    /// The scan restarted at `revision`: forget everything handed over before.
    async fn restart(&mut self, revision: Revision) -> Result<(), ProtectionError> {
        let _ = revision;
        Ok(())
    }

    /// A page's worth of selected objects.
    async fn objects(&mut self, objects: Vec<SelectedObject<'_>>) -> Result<(), ProtectionError> {
        let _ = objects;
        Ok(())
    }
}

/// An [`ObjectHandler`] that keeps nothing (listing).
#[derive(Debug, Default)]
pub struct NoHandler;

impl ObjectHandler for NoHandler {}

/// The result of a read.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// The revision everything was read at.
    pub revision: Revision,
    /// How many pods were selected.
    #[serde(skip)]
    pub pod_count: usize,
    /// Selected pods, in key order: those the handler left to the inventory (all, with
    /// the default handler).
    pub pods: Vec<PodEntry>,
    /// Claims and volumes the selected pods use.
    #[serde(skip)]
    pub catalog: Catalog,
    /// Values that could not be read.
    pub problems: Vec<Problem>,
    /// What the scan did.
    #[serde(skip)]
    pub scan: Option<ScanSummary>,
    /// The closure found (with [`Selection::closure`]): owners, referenced objects,
    /// namespaces, as summaries.
    #[serde(skip)]
    pub closure: Vec<ObjectInfo>,
    /// What the selected pods reference and etcd does not hold at the revision read (an
    /// owner under its name but with another uid counts as missing), with why.
    #[serde(skip)]
    pub missing: Vec<Missing>,
}

/// A referenced object that was not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// Its kind.
    pub kind: ResourceKind,
    /// `<namespace>/<name>`.
    pub name: ObjectRef,
    /// Why it counts as missing.
    pub reason: String,
}

struct InventorySink<'a, H: ObjectHandler> {
    decoder: &'a Decoder,
    etcd_prefix: String,
    kinds: Vec<ResourceKind>,
    selection: &'a Selection,
    handler: &'a mut H,
    revision: Revision,
    pods: Vec<PodEntry>,
    /// Pods selected: those kept, and those the handler took.
    pod_count: usize,
    /// Whether the handler was told that every claim is read.
    claims_read: bool,
    /// Pod keys already taken, when exact pods are selected: their prefixes can overlap
    /// (`web` and `web-1`). Other selections read each key once.
    pod_keys: Option<HashSet<String>>,
    catalog: Catalog,
    problems: Vec<Problem>,
    wants: ClosureWants,
    closure: Vec<ObjectInfo>,
    found: HashSet<(ResourceKind, ObjectRef)>,
    stale: Vec<Missing>,
}

struct Decoded {
    key: String,
    mod_revision: i64,
    object: Result<StoredObject, CodecError>,
}

#[async_trait]
impl<H: ObjectHandler> ScanSink for InventorySink<'_, H> {
    type Error = ProtectionError;

    async fn begin(&mut self, revision: Revision) -> Result<(), ProtectionError> {
        self.revision = revision;
        self.pods.clear();
        self.pod_count = 0;
        self.claims_read = false;
        if let Some(keys) = self.pod_keys.as_mut() {
            keys.clear();
        }
        self.catalog = Catalog::default();
        self.problems.clear();
        self.wants = ClosureWants::default();
        self.closure.clear();
        self.found.clear();
        self.stale.clear();
        self.handler.restart(revision).await
    }

    async fn page(
        &mut self,
        prefix_index: usize,
        page: Vec<KeyValue>,
    ) -> Result<(), ProtectionError> {
        let kind = self.kinds[prefix_index];
        if kind == ResourceKind::PersistentVolume && !self.claims_read {
            // Prefixes come pods, then claims, then volumes: the claims are all read.
            self.claims_read = true;
            self.handler.claims_read(&mut self.catalog);
        }
        if CLOSURE_ORDER.contains(&kind) {
            return self.closure_page(kind, page).await;
        }
        let decoded: Vec<Decoded> = page
            .into_iter()
            .map(|kv| Decoded {
                key: kv.key_str().into_owned(),
                mod_revision: kv.mod_revision,
                object: self.decoder.decode_owned(&kv.key, kv.value),
            })
            .collect();
        // Summaries first (they decide what is selected), then hand objects over.
        let mut keep: Vec<(usize, String, String, String, Vec<Edge>)> = Vec::new();
        for (i, d) in decoded.iter().enumerate() {
            let obj = match &d.object {
                Ok(o) => o,
                Err(e) => {
                    self.problems.push(Problem {
                        key: d.key.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let summary = match kind {
                ResourceKind::Pod => PodInfo::from_object(&d.key, obj).map(|mut pod| {
                    let taken = match self.pod_keys.as_mut() {
                        Some(keys) => !keys.insert(d.key.clone()),
                        None => false,
                    };
                    if taken || !self.selection.accepts(&pod) {
                        return None;
                    }
                    for v in &pod.volumes {
                        if let Some(claim) = v.claim(&pod.name) {
                            self.catalog.need_claim(&pod.namespace, &claim);
                        }
                    }
                    // The references are the closure's business; a listing keeps every pod
                    // summary, so they are not kept with it.
                    let refs = std::mem::take(&mut pod.refs);
                    let edges = if self.selection.closure {
                        self.wants.add_pod(&pod.namespace, &refs);
                        refs.edges(&pod.namespace)
                    } else {
                        Vec::new()
                    };
                    let ids = (
                        pod.namespace.clone(),
                        pod.name.clone(),
                        pod.uid.clone(),
                        edges,
                    );
                    self.pod_count += 1;
                    let entry = PodEntry {
                        info: pod,
                        key: d.key.clone(),
                        mod_revision: d.mod_revision,
                    };
                    if let Some(kept) = self.handler.pod(entry) {
                        self.pods.push(kept);
                    }
                    Some(ids)
                }),
                ResourceKind::PersistentVolumeClaim => {
                    ClaimInfo::from_object(&d.key, obj).map(|claim| {
                        let ids = (
                            claim.namespace.clone(),
                            claim.name.clone(),
                            claim.uid.clone(),
                            Vec::new(),
                        );
                        self.catalog.add_claim(claim).then_some(ids)
                    })
                }
                ResourceKind::PersistentVolume => VolumeInfo::from_object(&d.key, obj).map(|pv| {
                    let ids = (String::new(), pv.name.clone(), pv.uid.clone(), Vec::new());
                    self.catalog.add_volume(pv).then_some(ids)
                }),
                // The closure's pages go through `closure_page`.
                _ => Ok(None),
            };
            match summary {
                Ok(Some((ns, name, uid, edges))) => keep.push((i, ns, name, uid, edges)),
                Ok(None) => {}
                Err(e) => self.problems.push(Problem {
                    key: d.key.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        let mut selected = Vec::with_capacity(keep.len());
        for (i, ns, name, uid, edges) in keep.iter_mut() {
            let d = &decoded[*i];
            if let Ok(object) = &d.object {
                selected.push(SelectedObject {
                    kind,
                    key: &d.key,
                    namespace: ns,
                    name,
                    uid,
                    mod_revision: d.mod_revision,
                    object,
                    edges: std::mem::take(edges),
                });
            }
        }
        if !selected.is_empty() {
            self.handler.objects(selected).await?;
        }
        let _ = &self.etcd_prefix;
        Ok(())
    }
}

impl<H: ObjectHandler> InventorySink<'_, H> {
    /// A page of one of the closure's kinds: only what the selected pods (or the owners
    /// kept so far) want is decoded and kept; an owner must have the uid its
    /// ownerReference names.
    async fn closure_page(
        &mut self,
        kind: ResourceKind,
        page: Vec<KeyValue>,
    ) -> Result<(), ProtectionError> {
        let mut decoded = Vec::new();
        for kv in page {
            let key = kv.key_str().into_owned();
            let Ok(parsed) = StorageKey::parse(&self.etcd_prefix, &kv.key) else {
                continue;
            };
            let name = ObjectRef::new(parsed.namespace.unwrap_or_default(), parsed.name);
            if !self.wants.wants(kind, &name) || self.found.contains(&(kind, name.clone())) {
                continue;
            }
            match self.decoder.decode_owned(&kv.key, kv.value) {
                Ok(object) => decoded.push((key, kv.mod_revision, name, object)),
                Err(e) => self.problems.push(Problem {
                    key,
                    reason: e.to_string(),
                }),
            }
        }
        let mut kept = Vec::with_capacity(decoded.len());
        for (i, (key, _, name, object)) in decoded.iter().enumerate() {
            let info = match ObjectInfo::from_object(kind, key, object) {
                Ok(info) => info,
                Err(e) => {
                    self.problems.push(Problem {
                        key: key.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            if let Some(uid) = self.wants.owner_uid(kind, name).filter(|u| !u.is_empty()) {
                if info.uid != *uid {
                    self.stale.push(Missing {
                        kind,
                        name: name.clone(),
                        reason: format!(
                            "etcd holds a {} {name} with uid {}, not the uid {uid} its dependents name",
                            kind.kind(),
                            info.uid
                        ),
                    });
                    continue;
                }
            }
            self.wants.add_owners(&info.namespace, &info.owners);
            self.found.insert((kind, name.clone()));
            let edges = owner_edges(&info.namespace, &info.owners);
            kept.push((i, edges));
            self.closure.push(info);
        }
        let first = self.closure.len() - kept.len();
        let mut selected = Vec::with_capacity(kept.len());
        for (n, (i, edges)) in kept.into_iter().enumerate() {
            let (key, mod_revision, _, object) = &decoded[i];
            let info = &self.closure[first + n];
            selected.push(SelectedObject {
                kind,
                key,
                namespace: &info.namespace,
                name: &info.name,
                uid: info.uid.as_str(),
                mod_revision: *mod_revision,
                object,
                edges,
            });
        }
        if !selected.is_empty() {
            self.handler.objects(selected).await?;
        }
        Ok(())
    }

    /// What was wanted and not found.
    fn missing(&mut self) -> Vec<Missing> {
        let mut out = std::mem::take(&mut self.stale);
        let stale: HashSet<(ResourceKind, ObjectRef)> =
            out.iter().map(|m| (m.kind, m.name.clone())).collect();
        for (kind, name) in self.wants.iter() {
            let k = (kind, name.clone());
            if !self.found.contains(&k) && !stale.contains(&k) {
                out.push(Missing {
                    kind,
                    name: name.clone(),
                    reason: format!("not found in etcd at revision {}", self.revision),
                });
            }
        }
        out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        out
    }
}

/// Read the pods `selection` picks, with their claims and volumes, at one revision.
///
/// # Arguments
///
/// * `etcd` - a connected client; its config gives the key prefix.
/// * `decoder` - decodes (and decrypts) values.
/// * `selection` - which pods.
/// * `options` - page size, restart budget.
/// * `handler` - receives the selected objects as they stream past.
pub async fn read_inventory<H: ObjectHandler>(
    etcd: &Etcd,
    decoder: &Decoder,
    selection: &Selection,
    options: &ScanOptions,
    handler: &mut H,
) -> Result<Inventory, ProtectionError> {
    let etcd_prefix = etcd.config().prefix().to_string();
    let prefixes = selection.prefixes(&etcd_prefix);
    let kinds: Vec<ResourceKind> = prefixes.iter().map(|(k, _)| *k).collect();
    let keys: Vec<Vec<u8>> = prefixes.into_iter().map(|(_, p)| p).collect();
    let mut sink = InventorySink {
        decoder,
        etcd_prefix,
        kinds,
        selection,
        handler,
        revision: Revision::new(0),
        pods: Vec::new(),
        pod_count: 0,
        claims_read: false,
        pod_keys: (!selection.pods.is_empty()).then(HashSet::new),
        catalog: Catalog::default(),
        problems: Vec::new(),
        wants: ClosureWants::default(),
        closure: Vec::new(),
        found: HashSet::new(),
        stale: Vec::new(),
    };
    let summary = etcd.scan(&keys, options, &mut sink).await?;
    let missing = sink.missing();
    Ok(Inventory {
        revision: summary.revision,
        pod_count: sink.pod_count,
        pods: sink.pods,
        catalog: sink.catalog,
        problems: sink.problems,
        scan: Some(summary),
        closure: sink.closure,
        missing,
    })
}

/// Read exactly the pods `pods` (key-values read at `revision`, in key order), with the
/// claims and volumes they use and (with [`Selection::closure`]) their closure, by exact
/// keys at that same revision: the cost follows these pods, never the cluster. Pods that
/// `selection` does not accept are left out, as in [`read_inventory`].
///
/// # Arguments
///
/// * `etcd` - a connected client; its config gives the key prefix.
/// * `decoder` - decodes (and decrypts) values.
/// * `selection` - which of the pods, and whether to read their closure.
/// * `revision` - the revision the pods were read at; everything else is read at it too.
/// * `pods` - the pods' key-values.
/// * `handler` - receives the selected objects.
pub async fn read_inventory_of<H: ObjectHandler>(
    etcd: &Etcd,
    decoder: &Decoder,
    selection: &Selection,
    revision: Revision,
    pods: Vec<KeyValue>,
    handler: &mut H,
) -> Result<Inventory, ProtectionError> {
    let etcd_prefix = etcd.config().prefix().to_string();
    let mut kinds = vec![
        ResourceKind::Pod,
        ResourceKind::PersistentVolumeClaim,
        ResourceKind::PersistentVolume,
    ];
    kinds.extend(CLOSURE_ORDER);
    let mut sink = InventorySink {
        decoder,
        etcd_prefix: etcd_prefix.clone(),
        kinds: kinds.clone(),
        selection,
        handler,
        revision,
        pods: Vec::new(),
        pod_count: 0,
        claims_read: false,
        pod_keys: Some(HashSet::new()),
        catalog: Catalog::default(),
        problems: Vec::new(),
        wants: ClosureWants::default(),
        closure: Vec::new(),
        found: HashSet::new(),
        stale: Vec::new(),
    };
    let key_of = |kind: ResourceKind, name: &ObjectRef| {
        let ns = (!name.namespace().is_empty()).then(|| name.namespace());
        let mut k = resource_prefix(&etcd_prefix, kind, ns);
        k.push_str(name.name());
        k.into_bytes()
    };
    let mut keys = 0u64;
    let mut value_bytes = 0u64;
    let mut requests = 0u64;
    let mut count = |kvs: &[KeyValue], batch: usize| {
        keys += kvs.len() as u64;
        value_bytes += kvs.iter().map(|kv| kv.value.len() as u64).sum::<u64>();
        requests += batch.div_ceil(crate::etcd::KEYS_PER_TXN) as u64;
    };
    sink.begin(revision).await?;
    count(&pods, 0);
    sink.page(0, pods).await?;
    for (index, kind) in kinds.iter().copied().enumerate().skip(1) {
        let mut wanted: Vec<Vec<u8>> = match kind {
            ResourceKind::PersistentVolumeClaim => sink
                .catalog
                .needed_claims()
                .map(|(ns, name)| key_of(kind, &ObjectRef::new(ns, name)))
                .collect(),
            ResourceKind::PersistentVolume => sink
                .catalog
                .needed_volumes()
                .map(|name| key_of(kind, &ObjectRef::cluster(name)))
                .collect(),
            _ if selection.closure => sink
                .wants
                .iter()
                .filter(|(k, name)| *k == kind && !sink.found.contains(&(kind, (*name).clone())))
                .map(|(_, name)| key_of(kind, name))
                .collect(),
            _ => continue,
        };
        wanted.sort();
        wanted.dedup();
        let n = wanted.len();
        let kvs = if wanted.is_empty() {
            Vec::new()
        } else {
            etcd.get_keys(wanted, revision).await?
        };
        count(&kvs, n);
        // Even empty: the volumes' page tells the handler that the claims are read.
        sink.page(index, kvs).await?;
    }
    let missing = sink.missing();
    Ok(Inventory {
        revision,
        pod_count: sink.pod_count,
        pods: sink.pods,
        catalog: sink.catalog,
        problems: sink.problems,
        scan: Some(ScanSummary {
            revision,
            keys,
            value_bytes,
            requests,
            restarts: 0,
        }),
        closure: sink.closure,
        missing,
    })
}
