//! The inventory: the selected pods, and the claims and volumes they use, read at ONE
//! etcd revision.
//!
//! The scan reads pods first, then claims, then volumes, all at the same revision. While
//! pods stream past, only the selected ones are kept and the names of the claims they
//! need are noted; claims and volumes are then kept only if needed. So memory follows
//! the selection, never the whole cluster. A value that cannot be decoded becomes a
//! [`Problem`] (key + reason) and the read goes on.

use std::collections::{BTreeSet, HashSet};

use async_trait::async_trait;
use serde::Serialize;

use super::ProtectionError;
use crate::codec::{resource_prefix, Decoder, ResourceKind, StoredObject};
use crate::etcd::{Etcd, KeyValue, Revision, ScanOptions, ScanSink, ScanSummary};
use crate::model::ObjectRef;
use crate::resources::{Catalog, ClaimInfo, FieldSelector, LabelSelector, PodInfo, VolumeInfo};

/// Which pods to read.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Namespaces; empty means all.
    pub namespaces: Vec<String>,
    /// Label selector over pod labels.
    pub labels: LabelSelector,
    /// Field selector over pod fields.
    pub fields: FieldSelector,
    /// Explicit pods; empty means no restriction.
    pub pods: Vec<ObjectRef>,
    /// Explicit pod uids; empty means no restriction.
    pub uids: Vec<String>,
}

impl Selection {
    /// The key prefixes to scan, in order: pods, claims, volumes.
    pub fn prefixes(&self, etcd_prefix: &str) -> Vec<(ResourceKind, Vec<u8>)> {
        let mut out = Vec::new();
        let namespaces: BTreeSet<&str> = if !self.pods.is_empty() {
            self.pods.iter().map(ObjectRef::namespace).collect()
        } else {
            self.namespaces.iter().map(String::as_str).collect()
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
        out
    }

    fn accepts(&self, pod: &PodInfo) -> bool {
        (self.namespaces.is_empty() || self.namespaces.contains(&pod.namespace))
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
}

struct Decoded {
    key: String,
    mod_revision: i64,
    object: Result<StoredObject, String>,
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
        let decoded: Vec<Decoded> = page
            .into_iter()
            .map(|kv| Decoded {
                key: kv.key_str().into_owned(),
                mod_revision: kv.mod_revision,
                object: self
                    .decoder
                    .decode_owned(&kv.key, kv.value)
                    .map_err(|e| e.to_string()),
            })
            .collect();
        // Summaries first (they decide what is selected), then hand objects over.
        let mut keep: Vec<(usize, String, String, String)> = Vec::new();
        for (i, d) in decoded.iter().enumerate() {
            let obj = match &d.object {
                Ok(o) => o,
                Err(reason) => {
                    self.problems.push(Problem {
                        key: d.key.clone(),
                        reason: reason.clone(),
                    });
                    continue;
                }
            };
            let summary = match kind {
                ResourceKind::Pod => PodInfo::from_object(&d.key, obj).map(|pod| {
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
                    let ids = (pod.namespace.clone(), pod.name.clone(), pod.uid.clone());
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
                        );
                        self.catalog.add_claim(claim).then_some(ids)
                    })
                }
                ResourceKind::PersistentVolume => VolumeInfo::from_object(&d.key, obj).map(|pv| {
                    let ids = (String::new(), pv.name.clone(), pv.uid.clone());
                    self.catalog.add_volume(pv).then_some(ids)
                }),
            };
            match summary {
                Ok(Some((ns, name, uid))) => keep.push((i, ns, name, uid)),
                Ok(None) => {}
                Err(e) => self.problems.push(Problem {
                    key: d.key.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        let mut selected = Vec::with_capacity(keep.len());
        for (i, ns, name, uid) in &keep {
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
    };
    let summary = etcd.scan(&keys, options, &mut sink).await?;
    Ok(Inventory {
        revision: summary.revision,
        pod_count: sink.pod_count,
        pods: sink.pods,
        catalog: sink.catalog,
        problems: sink.problems,
        scan: Some(summary),
    })
}
