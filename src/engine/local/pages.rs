//! Pods a page at a time, and one pod by name or uid, at the cost of what is returned.
//!
//! A page reads the pods' keys in order from just after the page before (etcd ranges are
//! in key order, so a position is a key), then the page's claims, volumes and closure by
//! exact keys at the same revision ([`read_inventory_of`]). Karbor names pods by uid, and
//! etcd keys them by namespace and name, so the engine keeps the key of every uid it has
//! listed: a marker or a lookup by uid seeks straight to the key, and a marker whose pod
//! has gone since still marks its place. A uid the engine has not seen costs one listing
//! of the pods (not of their closure), which also teaches it every other uid.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{from_protection, LocalEngine};
use crate::codec::{resource_prefix, ResourceKind};
use crate::engine::views::{ClosureView, DependentView, PodDetail, PodPage};
use crate::engine::{EngineError, PageRequest, PodSpecifier, SelectionSpec, MAX_PAGE};
use crate::etcd::{Etcd, KeyValue, Revision};
use crate::model::{Edge, ObjectRef, ResourceType};
use crate::protection::inventory::{ObjectHandler, SelectedObject, CLOSURE_ORDER};
use crate::protection::{read_inventory_of, Inventory, ProtectionError, Selection};
use crate::resources::PodInfo;

/// Most uids whose keys are kept (about 100 bytes each); past it the map starts over.
const MAX_KNOWN_UIDS: usize = 250_000;

/// Keys read per range request while looking for a page's pods.
const WINDOW_KEYS: usize = 512;

/// The etcd key of each pod uid the engine has listed.
#[derive(Debug, Default)]
pub(super) struct UidKeys(Mutex<HashMap<String, String>>);

impl UidKeys {
    pub(super) fn get(&self, uid: &str) -> Option<String> {
        self.0.lock().ok().and_then(|m| m.get(uid).cloned())
    }

    pub(super) fn learn<'a>(&self, pods: impl IntoIterator<Item = (&'a str, &'a str)>) {
        if let Ok(mut m) = self.0.lock() {
            for (uid, key) in pods {
                if m.len() >= MAX_KNOWN_UIDS && !m.contains_key(uid) {
                    m.clear();
                }
                m.insert(uid.to_string(), key.to_string());
            }
        }
    }
}

/// Keeps the edges of the pods and closure objects of a read, to give each pod its own
/// closure.
#[derive(Default)]
struct Edges {
    pods: HashMap<String, Vec<Edge>>,
    objects: HashMap<(ResourceType, ObjectRef), Vec<Edge>>,
}

#[async_trait]
impl ObjectHandler for Edges {
    async fn objects(&mut self, objects: Vec<SelectedObject<'_>>) -> Result<(), ProtectionError> {
        for o in objects {
            if o.kind == ResourceKind::Pod {
                self.pods.insert(o.key.to_string(), o.edges);
            } else if CLOSURE_ORDER.contains(&o.kind) {
                self.objects.insert(
                    (o.kind.resource_type(), ObjectRef::new(o.namespace, o.name)),
                    o.edges,
                );
            }
        }
        Ok(())
    }
}

impl LocalEngine {
    fn pod_key(etcd: &Etcd, pod: &ObjectRef) -> String {
        let mut key = resource_prefix(
            etcd.config().prefix(),
            ResourceKind::Pod,
            Some(pod.namespace()),
        );
        key.push_str(pod.name());
        key
    }

    /// The etcd key of the pod `uid`: known from a listing, or found by listing the pods.
    async fn key_of_uid(&self, uid: &str) -> Result<Option<String>, EngineError> {
        if let Some(key) = self.uid_keys.get(uid) {
            return Ok(Some(key));
        }
        let inv = self.inventory(&Selection::default()).await?;
        self.uid_keys.learn(
            inv.pods
                .iter()
                .map(|p| (p.info.uid.as_str(), p.key.as_str())),
        );
        Ok(self.uid_keys.get(uid))
    }

    /// Reads the pods `pods` (read at `revision`) with their dependents and closure, each
    /// pod with its own.
    async fn details(
        &self,
        etcd: &Etcd,
        selection: &Selection,
        revision: Revision,
        pods: Vec<KeyValue>,
    ) -> Result<(Vec<PodDetail>, Inventory), EngineError> {
        let mut selection = selection.clone();
        selection.closure = true;
        let mut edges = Edges::default();
        let mut inv =
            read_inventory_of(etcd, &self.decoder, &selection, revision, pods, &mut edges)
                .await
                .map_err(from_protection)?;
        self.uid_keys.learn(
            inv.pods
                .iter()
                .map(|p| (p.info.uid.as_str(), p.key.as_str())),
        );
        let closure = super::closure_views(&mut inv);
        let pods = std::mem::take(&mut inv.pods);
        let details = pods
            .into_iter()
            .map(|entry| {
                let mut reach: HashSet<(ResourceType, ObjectRef)> = HashSet::new();
                let mut queue: Vec<&Edge> = edges
                    .pods
                    .get(&entry.key)
                    .map(|e| e.iter().collect())
                    .unwrap_or_default();
                while let Some(e) = queue.pop() {
                    let k = (e.kind.clone(), e.target.clone());
                    if let Some(next) = edges.objects.get(&k) {
                        if !reach.contains(&k) {
                            queue.extend(next.iter());
                        }
                    }
                    reach.insert(k);
                }
                let dependents = inv.catalog.dependents(&entry.info);
                PodDetail {
                    revision,
                    resource_type: ResourceType::Kube(ResourceKind::Pod),
                    id: entry.info.uid.clone(),
                    cinder_volumes: dependents.iter().filter(|d| d.is_protectable()).count(),
                    pod: entry,
                    dependents: dependents.into_iter().map(DependentView::from).collect(),
                    closure: closure
                        .iter()
                        .filter(|c: &&ClosureView| {
                            reach.contains(&(c.kind.clone(), c.name.clone()))
                        })
                        .cloned()
                        .collect(),
                }
            })
            .collect();
        Ok((details, inv))
    }

    /// One pod by name or uid, read by its key.
    pub(super) async fn pod_by_key(&self, pod: &PodSpecifier) -> Result<PodDetail, EngineError> {
        let not_found = |revision: Option<Revision>| {
            EngineError::NotFound(match revision {
                Some(r) => format!("pod {pod} not found at etcd revision {r}"),
                None => format!("pod {pod} not found"),
            })
        };
        let etcd = self.etcd().await?;
        let key = match pod {
            PodSpecifier::Name(name) => Self::pod_key(etcd, name),
            PodSpecifier::Uid(uid) => match self.key_of_uid(uid).await? {
                Some(key) => key,
                None => return Err(not_found(None)),
            },
        };
        let window = etcd
            .window(key.as_bytes(), key.clone().into_bytes(), 1, None)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let revision = window.revision;
        let kvs: Vec<KeyValue> = window
            .kvs
            .into_iter()
            .filter(|kv| kv.key == key.as_bytes())
            .collect();
        let mut selection = Selection::default();
        if let PodSpecifier::Uid(uid) = pod {
            selection.uids = vec![uid.clone()];
        }
        let (mut details, mut inv) = self.details(etcd, &selection, revision, kvs).await?;
        match details.pop() {
            Some(d) => Ok(d),
            None => match inv.problems.pop() {
                Some(p) => Err(EngineError::Failed(format!(
                    "pod {pod}: {}: {}",
                    p.key, p.reason
                ))),
                None => Err(not_found(Some(revision))),
            },
        }
    }

    /// A page of pods; see [`crate::engine::Engine::pod_page`].
    pub(super) async fn page(
        &self,
        spec: &SelectionSpec,
        page: &PageRequest,
    ) -> Result<PodPage, EngineError> {
        let selection = spec.resolve()?;
        let limit = page.limit.clamp(1, MAX_PAGE);
        let etcd = self.etcd().await?;
        let prefix = match selection.namespaces.as_slice() {
            [ns] => resource_prefix(etcd.config().prefix(), ResourceKind::Pod, Some(ns.as_str())),
            _ => resource_prefix(etcd.config().prefix(), ResourceKind::Pod, None),
        }
        .into_bytes();
        let mut from = prefix.clone();
        if let Some(after) = &page.after {
            let key = match after {
                PodSpecifier::Name(name) => Self::pod_key(etcd, name),
                PodSpecifier::Uid(uid) => self.key_of_uid(uid).await?.ok_or_else(|| {
                    EngineError::NotFound(format!("marker {uid}: no such pod is known"))
                })?,
            };
            let mut key = key.into_bytes();
            key.push(0);
            from = from.max(key);
        }
        let mut revision = None;
        let mut chosen: Vec<KeyValue> = Vec::new();
        let mut accepted = 0usize;
        let mut more = false;
        'read: while from.starts_with(&prefix) {
            let window = etcd
                .window(&prefix, from.clone(), WINDOW_KEYS.max(limit + 1), revision)
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))?;
            revision.get_or_insert(window.revision);
            let window_more = window.more;
            for kv in window.kvs {
                from = kv.key.clone();
                from.push(0);
                let key = kv.key_str().into_owned();
                let take = match self.decoder.decode(&kv.key, &kv.value) {
                    Ok(object) => PodInfo::from_object(&key, &object)
                        .map(|pod| selection.accepts(&pod))
                        .unwrap_or(true),
                    // Undecodable: the page's read reports it as a problem.
                    Err(_) => true,
                };
                if !take {
                    continue;
                }
                if accepted == limit {
                    more = true;
                    break 'read;
                }
                accepted += 1;
                chosen.push(kv);
            }
            if !window_more {
                break;
            }
        }
        let revision = match revision {
            Some(r) => r,
            None => etcd
                .current_revision()
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))?,
        };
        let (items, inv) = self.details(etcd, &selection, revision, chosen).await?;
        Ok(PodPage {
            revision,
            items,
            more,
            problems: inv.problems,
        })
    }
}
