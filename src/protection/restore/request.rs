//! What a restore is asked to do: which checkpoint and pods, where to, and what to do
//! about objects that already exist.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::schema::RestoreParams;
use crate::model::{CheckpointId, Namespace, ObjectRef, RestoreId};

/// What to do when an object to create already exists. Written as its [`label`]
/// (`fail`, `skip`, `rename`) in requests, flags and records.
///
/// [`label`]: ConflictPolicy::label
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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

impl ConflictPolicy {
    /// Every policy, in the order they are offered.
    pub const ALL: [Self; 3] = [Self::Fail, Self::Skip, Self::Rename];

    /// How it is written: `fail`, `skip`, `rename`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Fail => "fail",
            Self::Skip => "skip",
            Self::Rename => "rename",
        }
    }
}

impl std::fmt::Display for ConflictPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Text that names no [`ConflictPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is no conflict policy: expected fail, skip or rename")]
pub struct UnknownConflictPolicy(pub String);

impl std::str::FromStr for ConflictPolicy {
    type Err = UnknownConflictPolicy;
    /// Its label, as [`ConflictPolicy::label`] writes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.label() == s)
            .ok_or_else(|| UnknownConflictPolicy(s.to_string()))
    }
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
pub struct NamespaceMap(BTreeMap<Namespace, Namespace>);

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
            let (old, new) = Self::check(old, new).map_err(|reason| bad(&reason))?;
            if map.contains_key(&old) {
                return Err(bad(&format!("namespace {old} is mapped twice")));
            }
            map.insert(old, new);
        }
        Ok(Self(map))
    }

    /// `old=new` as namespaces, or why it cannot be taken.
    fn check(old: &str, new: &str) -> Result<(Namespace, Namespace), String> {
        let parse = |which: &str, name: &str| {
            Namespace::parse(name).map_err(|_| {
                format!(
                    "the {which} namespace {name:?} is not a valid namespace name ({})",
                    Namespace::EXPECTED
                )
            })
        };
        Ok((parse("old", old)?, parse("new", new)?))
    }

    /// Where objects of namespace `ns` go.
    pub fn target<'a>(&'a self, ns: &'a str) -> &'a str {
        self.0.get(ns).map_or(ns, Namespace::as_str)
    }

    /// Whether nothing is renamed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The renames, old -> new.
    pub fn entries(&self) -> &BTreeMap<Namespace, Namespace> {
        &self.0
    }
}

impl TryFrom<BTreeMap<String, String>> for NamespaceMap {
    type Error = NamespaceMapError;
    fn try_from(map: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        map.iter()
            .map(|(old, new)| {
                Self::check(old, new).map_err(|reason| NamespaceMapError {
                    entry: format!("{old}={new}"),
                    reason,
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl From<NamespaceMap> for BTreeMap<String, String> {
    fn from(m: NamespaceMap) -> Self {
        m.0.into_iter().map(|(o, n)| (o.into(), n.into())).collect()
    }
}

/// Where a restore goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind", content = "dir")]
pub enum RestoreMode {
    /// Into the cluster.
    #[default]
    Apply,
    /// Nothing is restored: every object it would create, and the plan, are written into
    /// this folder of the machine the engine runs on.
    #[schema(value_type = String)]
    Export(std::path::PathBuf),
}

/// A restore of (part of) a checkpoint: the one request type of a restore, read and
/// checked once where it comes in (CLI flags, an HTTP body, Karbor's restore create) and
/// passed unchanged through the engine, the remote client and the restore itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreRequest {
    /// The checkpoint to restore from.
    #[schema(value_type = String)]
    #[serde(alias = "checkpoint_id")]
    pub checkpoint_id: CheckpointId,
    /// Pods to restore as `<namespace>/<name>`; empty means every pod of the checkpoint.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub pods: Vec<ObjectRef>,
    /// Restore parameters, Karbor's RESTORE_SCHEMA (`restore_name`,
    /// `restore_description`); see `podbank schema restore`. Validated when the request is
    /// read.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: RestoreParams,
    /// Namespace renames, old -> new.
    #[serde(default)]
    #[schema(value_type = Object)]
    #[serde(alias = "namespace_map")]
    pub namespace_map: NamespaceMap,
    /// What to do when an object exists.
    #[serde(default)]
    #[schema(value_type = String)]
    pub conflict: ConflictPolicy,
    /// Keep `spec.nodeName` (default: cleared, the scheduler places the pod).
    #[serde(default)]
    #[serde(alias = "keep_node")]
    pub keep_node: bool,
    /// Karbor's original semantics: bare pods without ownerReferences, owners not
    /// restored. Default: a pod with a controller comes back through its top owner.
    #[serde(default)]
    #[serde(alias = "pods_only")]
    pub pods_only: bool,
    /// Volumes protected without a backup keep their original Cinder volume (the PV is
    /// restored naming it); default: such a pod fails.
    #[serde(default)]
    #[serde(alias = "original_volumes")]
    pub original_volumes: bool,
    /// How long to watch what was created before calling the restore a success (`10s`
    /// by default, `0` not at all).
    #[serde(default, with = "crate::model::duration::opt_duration")]
    #[schema(value_type = Option<String>)]
    pub settle: Option<std::time::Duration>,
    /// How many pods (or top owners) are restored at once; 32 by default.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// How many Cinder volumes are restored at once; 8 by default.
    #[serde(default)]
    #[serde(alias = "volume_concurrency")]
    pub volume_concurrency: Option<usize>,
    /// Into the cluster, or a dry run into a folder.
    #[serde(default)]
    pub mode: RestoreMode,
    /// The id a new restore record gets; `None`: a new one. Set by fronts that answer
    /// with the id before the restore has started (Karbor's restore create). A restore
    /// that resumes an unfinished run of the same request keeps that run's id.
    #[serde(skip)]
    pub restore_id: Option<RestoreId>,
    /// The Karbor project the restore belongs to (empty: none, the cluster admin's). Set
    /// by the agent from the route it was asked on, never taken from a body.
    #[serde(skip)]
    pub project_id: String,
}

/// The default of [`RestoreRequest::concurrency`].
pub const DEFAULT_CONCURRENCY: usize = 32;

/// The default of [`RestoreRequest::volume_concurrency`].
pub const DEFAULT_VOLUME_CONCURRENCY: usize = 8;

/// The default settle period.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(10);

impl RestoreRequest {
    /// A restore of every pod of `checkpoint_id`, into the cluster, with the defaults.
    pub fn of(checkpoint_id: CheckpointId) -> Self {
        RestoreRequest {
            checkpoint_id,
            pods: Vec::new(),
            parameters: RestoreParams::default(),
            namespace_map: NamespaceMap::default(),
            conflict: ConflictPolicy::default(),
            keep_node: false,
            pods_only: false,
            original_volumes: false,
            settle: None,
            concurrency: None,
            volume_concurrency: None,
            mode: RestoreMode::Apply,
            restore_id: None,
            project_id: String::new(),
        }
    }

    /// How long to watch what was created ([`DEFAULT_SETTLE`] unless asked).
    pub fn settle(&self) -> Duration {
        self.settle.unwrap_or(DEFAULT_SETTLE)
    }

    /// How many units are restored at once ([`DEFAULT_CONCURRENCY`] unless asked).
    pub fn concurrency(&self) -> usize {
        self.concurrency.unwrap_or(DEFAULT_CONCURRENCY)
    }

    /// How many volumes are restored at once ([`DEFAULT_VOLUME_CONCURRENCY`] unless asked).
    pub fn volume_concurrency(&self) -> usize {
        self.volume_concurrency
            .unwrap_or(DEFAULT_VOLUME_CONCURRENCY)
    }

    /// Stable text of the request, to recognise "the same restore" when it runs again.
    pub fn fingerprint(&self) -> String {
        serde_json::json!({
            "checkpoint": self.checkpoint_id.as_str(),
            "restore_name": self.parameters.restore_name,
            "restore_description": self.parameters.restore_description,
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
    fn conflict_policies_read_what_they_write_as_serde_does() {
        for p in ConflictPolicy::ALL {
            assert_eq!(p.label().parse::<ConflictPolicy>(), Ok(p));
            assert_eq!(
                serde_json::to_value(p).ok(),
                Some(serde_json::Value::from(p.label()))
            );
        }
        assert!("Fail".parse::<ConflictPolicy>().is_err());
        assert_eq!(ConflictPolicy::default().to_string(), "fail");
    }

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
