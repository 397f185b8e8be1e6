//! What a restore is asked to do: which checkpoint and pods, where to, and what to do
//! about objects that already exist.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::schema::RestoreParams;
use crate::model::{CheckpointId, ObjectRef, RestoreId};

/// What to do when an object to create already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ConflictPolicy {
    /// The pod's restore fails with the API server's message.
    #[default]
    Fail,
    /// The pod is skipped (nothing of it is created).
    Skip,
    /// The new objects get a suffix (`-<restore id>`).
    Rename,
}

/// A namespace name as Kubernetes accepts one: an RFC 1123 label.
pub fn valid_namespace(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A `--namespace-map` entry that cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--namespace-map {entry:?}: {reason}")]
pub struct NamespaceMapError {
    /// The entry as given.
    pub entry: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Namespace renames of a restore, old -> new: each old namespace once, every name a valid
/// namespace name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
pub struct NamespaceMap(BTreeMap<String, String>);

impl NamespaceMap {
    /// Reads `old=new` entries.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, NamespaceMapError> {
        let mut map = BTreeMap::new();
        for entry in entries {
            let entry = entry.as_ref();
            let bad = |reason: &str| NamespaceMapError {
                entry: entry.to_string(),
                reason: reason.to_string(),
            };
            let (old, new) = entry
                .split_once('=')
                .ok_or_else(|| bad("expected old=new"))?;
            if new.contains('=') {
                return Err(bad("expected old=new, with one '='"));
            }
            if let Some(reason) = Self::check(old, new) {
                return Err(bad(&reason));
            }
            if map.insert(old.to_string(), new.to_string()).is_some() {
                return Err(bad(&format!("namespace {old} is mapped twice")));
            }
        }
        Ok(Self(map))
    }

    /// Why `old=new` cannot be taken, if it cannot.
    fn check(old: &str, new: &str) -> Option<String> {
        for (which, name) in [("old", old), ("new", new)] {
            if !valid_namespace(name) {
                return Some(format!(
                    "the {which} namespace {name:?} is not a valid namespace name \
                     (1-63 lower-case letters, digits or '-', starting and ending with a \
                     letter or digit)"
                ));
            }
        }
        None
    }

    /// Where objects of namespace `ns` go.
    pub fn target<'a>(&'a self, ns: &'a str) -> &'a str {
        self.0.get(ns).map_or(ns, String::as_str)
    }

    /// Whether nothing is renamed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The renames, old -> new.
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

impl TryFrom<BTreeMap<String, String>> for NamespaceMap {
    type Error = NamespaceMapError;
    fn try_from(map: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        for (old, new) in &map {
            if let Some(reason) = Self::check(old, new) {
                return Err(NamespaceMapError {
                    entry: format!("{old}={new}"),
                    reason,
                });
            }
        }
        Ok(Self(map))
    }
}

impl From<NamespaceMap> for BTreeMap<String, String> {
    fn from(m: NamespaceMap) -> Self {
        m.0
    }
}

/// What to restore, and how.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The new record's id, if the caller chose it (a resumed run keeps its own).
    pub id: Option<RestoreId>,
    /// The checkpoint.
    pub checkpoint: CheckpointId,
    /// Validated parameters.
    pub params: RestoreParams,
    /// Only these pods; empty: every pod of the checkpoint.
    pub pods: Vec<ObjectRef>,
    /// Namespace renames.
    pub namespace_map: NamespaceMap,
    /// Conflict policy.
    pub conflict: ConflictPolicy,
    /// Keep `spec.nodeName` (default: cleared, the scheduler places the pod).
    pub keep_node: bool,
    /// How long to wait for one restored volume.
    pub volume_timeout: Duration,
    /// Karbor's original semantics: bare pods, ownerReferences removed, owners not
    /// restored. Default: pods with a controller come back through their top owner.
    pub pods_only: bool,
    /// Volumes protected without a backup (`protect --no-volume-backups`) keep their
    /// original Cinder volume: the PV is restored naming it. Default: such a pod fails.
    pub original_volumes: bool,
    /// How long to watch what was created before calling the restore a success.
    pub settle: Duration,
    /// How many units (roots and their volumes) are restored at once.
    pub concurrency: usize,
    /// How many Cinder volumes are restored at once.
    pub volume_concurrency: usize,
}

/// The default of [`RestoreRequest::concurrency`].
pub const DEFAULT_CONCURRENCY: usize = 32;

/// The default of [`RestoreRequest::volume_concurrency`].
pub const DEFAULT_VOLUME_CONCURRENCY: usize = 8;

/// The default settle period.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(10);

impl RestoreRequest {
    /// Stable text of the request, to recognise "the same restore" when it runs again.
    pub fn fingerprint(&self) -> String {
        serde_json::json!({
            "checkpoint": self.checkpoint.as_str(),
            "restore_name": self.params.restore_name,
            "restore_description": self.params.restore_description,
            "pods": self
                .pods
                .iter()
                .map(|p| (p.namespace().to_string(), p.name().to_string()))
                .collect::<Vec<_>>(),
            "namespace_map": self.namespace_map.entries(),
            "conflict": self.conflict,
            "keep_node": self.keep_node,
            "pods_only": self.pods_only,
            "original_volumes": self.original_volumes,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_maps_take_only_clean_entries() {
        let m = NamespaceMap::parse(&["ns-0=restored", "b=c"]).expect("valid");
        assert_eq!(m.target("ns-0"), "restored");
        assert_eq!(m.target("other"), "other");
        for bad in [
            &["ns-0=b=c"][..],
            &["=Bad_NS"],
            &["a=b", "a=c"],
            &["noequals"],
            &["a=Upper"],
            &["a="],
            &["-a=b"],
        ] {
            assert!(NamespaceMap::parse(bad).is_err(), "{bad:?}");
        }
    }
}
