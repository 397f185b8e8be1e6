//! The application API: one [`Engine`] trait that every front is a client of.
//!
//! * [`LocalEngine`] does the work here, over etcd, the bank, Cinder and the API server
//!   ([`crate::protection`]);
//! * [`crate::api::client::RemoteEngine`] asks a running agent to do it, over its HTTP API;
//! * the CLI holds one or the other and renders what it returns; the agent serves its
//!   [`LocalEngine`] over HTTP and runs the plans' schedules with it.
//!
//! Requests are plain data ([`ProtectRequest`], [`RestoreRequest`], ...), checked by the
//! engine before any work starts; answers are typed views ([`views`]), never loose JSON;
//! failures are [`EngineError`]s, each of which maps to one HTTP status and one exit code.
//!
//! Owns: the operations' contract, the views, plan runs ([`plans`]). Must not touch: HTTP
//! (that is [`crate::api`]), the terminal (that is [`crate::cli`]).

mod lazy;
mod local;
pub mod plans;
pub mod views;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use lazy::Lazy;
pub use local::{from_bank, from_protection, LocalEngine, VolumeMode};
pub use plans::{Plan, PlanRun, PlanView, Schedule};
pub use views::{
    CheckpointItem, CheckpointList, CheckpointView, ClosureView, DependentView, DependentsView,
    PodDetail, PodList, PodPage, PodView, ReadinessCheck, RestoreItem, RestoreList, RestoreView,
};

use crate::bank::{GcReport, RepairReport, Stats, VerifyReport};
use crate::model::{CheckpointId, CheckpointStatus, ObjectRef, PlanId, RestoreId, StoredPlan};
use crate::protection::restore::{ConflictPolicy, NamespaceMap};
use crate::protection::{DeleteOutcome, Selection};
use crate::resources::{FieldSelector, LabelSelector};

/// Which pods an operation covers. All given criteria must hold; an empty selection means
/// every pod of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SelectionSpec {
    /// Namespaces; empty means all.
    pub namespaces: Vec<String>,
    /// Label selector over pod labels, kubectl syntax (`app=web,tier in (a,b),!canary`).
    #[serde(alias = "label_selector")]
    pub label_selector: Option<String>,
    /// Field selector over pod fields (`metadata.name`, `spec.nodeName`, `status.phase`,
    /// ...).
    #[serde(alias = "field_selector")]
    pub field_selector: Option<String>,
    /// Explicit pods as `<namespace>/<name>`; empty means no restriction.
    #[schema(value_type = Vec<String>)]
    pub pods: Vec<ObjectRef>,
    /// Explicit pod uids; empty means no restriction.
    pub uids: Vec<String>,
}

impl SelectionSpec {
    /// The selection, checked: selectors parse, namespaces are namespace names.
    pub fn resolve(&self) -> Result<Selection, EngineError> {
        check_pods(&self.pods)?;
        for ns in &self.namespaces {
            if !crate::protection::restore::valid_namespace(ns) {
                return Err(EngineError::Invalid(format!(
                    "namespace {ns:?} is not a valid namespace name"
                )));
            }
        }
        Ok(Selection {
            namespaces: self.namespaces.clone(),
            labels: LabelSelector::parse(self.label_selector.as_deref().unwrap_or(""))
                .map_err(|e| EngineError::Invalid(e.to_string()))?,
            fields: FieldSelector::parse(self.field_selector.as_deref().unwrap_or(""))
                .map_err(|e| EngineError::Invalid(e.to_string()))?,
            pods: self.pods.clone(),
            uids: self.uids.clone(),
            closure: false,
        })
    }
}

/// Every pod of a request must be `<namespace>/<name>`.
pub fn check_pods(pods: &[ObjectRef]) -> Result<(), EngineError> {
    match pods
        .iter()
        .find(|p| p.namespace().is_empty() || p.name().is_empty())
    {
        Some(p) => Err(EngineError::Invalid(format!(
            "pod {:?}: expected <namespace>/<name>",
            p.to_string()
        ))),
        None => Ok(()),
    }
}

/// A pod named by `<namespace>/<name>`, or by its uid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PodSpecifier {
    /// `<namespace>/<name>`.
    Name(ObjectRef),
    /// Its uid.
    Uid(String),
}

impl std::str::FromStr for PodSpecifier {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('/') {
            s.parse().map(PodSpecifier::Name).map_err(|_| {
                EngineError::Invalid(format!("pod {s:?}: expected <namespace>/<name> or a uid"))
            })
        } else if s.is_empty() {
            Err(EngineError::Invalid(
                "pod \"\": expected <namespace>/<name> or a uid".into(),
            ))
        } else {
            Ok(PodSpecifier::Uid(s.to_string()))
        }
    }
}

impl std::fmt::Display for PodSpecifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PodSpecifier::Name(r) => r.fmt(f),
            PodSpecifier::Uid(u) => f.write_str(u),
        }
    }
}

/// Which page of pods: those after `after` (in key order), at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The last pod of the page before; `None`: from the first pod.
    pub after: Option<PodSpecifier>,
    /// Most pods on the page (at least one).
    pub limit: usize,
}

/// The most pods a page holds, whatever the caller asks.
pub const MAX_PAGE: usize = 1000;

/// A protect: one checkpoint of the selected pods and their Cinder volumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProtectRequest {
    /// The plan this checkpoint belongs to (recorded in the checkpoint, used by retention);
    /// `None` for an on-demand checkpoint outside any plan.
    #[serde(default)]
    pub plan: Option<String>,
    /// The pods to protect.
    #[serde(default)]
    pub selection: SelectionSpec,
    /// Protect parameters, Karbor's OPTIONS_SCHEMA (`backup_name`, `description`, and
    /// podbank's `incremental`, `force`, ...); see `podbank schema protect`.
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// Back up the Cinder volumes (default); `false` records them as not protected.
    #[serde(default = "yes")]
    #[serde(alias = "volume_backups")]
    pub volume_backups: bool,
    /// Store the pods' Secrets even though the bank is not encrypted (an encrypted bank
    /// always stores them); otherwise each is recorded as skipped, with the reason.
    #[serde(default)]
    #[serde(alias = "secrets_in_plain_bank")]
    pub secrets_in_plain_bank: bool,
    /// The id the checkpoint gets (one not in the bank); `None`: a new one. Set by fronts
    /// that answer with the id before the protect has started (Karbor's checkpoint create).
    #[serde(skip)]
    pub checkpoint_id: Option<CheckpointId>,
}

fn yes() -> bool {
    true
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
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

/// A restore of (part of) a checkpoint.
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
    /// `restore_description`); see `podbank schema restore`.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub parameters: Value,
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
}

/// Which checkpoints to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct CheckpointFilter {
    /// Only this plan's checkpoints.
    pub plan: Option<String>,
    /// Deleted checkpoints kept as tombstones too.
    pub all: bool,
}

/// Errors the engine reports; each maps to one HTTP status and one exit code.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
#[serde(tag = "code", content = "message", rename_all = "snake_case")]
pub enum EngineError {
    /// The thing asked for does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The request is invalid: fix it (HTTP 400, exit code 2).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the current state: a checkpoint still being written, a
    /// bank locked by gc (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// A dependency (etcd, the bank, Cinder, the API server) is unreachable; retry later
    /// (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// This engine cannot do that; the message says where it can be done (HTTP 501).
    #[error("{0}")]
    Unsupported(String),
    /// The operation failed (HTTP 500, exit code 1); the message says where.
    #[error("{0}")]
    Failed(String),
}

impl EngineError {
    /// A `NotFound` for `what` `id`.
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        EngineError::NotFound(format!("{what} {id} not found"))
    }
}

/// The application API. See the module doc.
///
/// Who drives: the CLI (one call per command), the agent's HTTP handlers and its scheduler.
/// Calls may run concurrently, so implementations are safe to call from several tasks at
/// once. Long operations (`protect`, `delete_checkpoint`, `restore`, `run_plan`, `gc`,
/// `repair`) return when the work is done.
///
/// Cancellation: a future dropped before it completes must leave nothing half-visible: a
/// checkpoint appears only when complete (the bank writes its manifest last), or is
/// recorded as `error` with the reason.
///
/// The conformance suite (`tests/scenarios/engine_conformance.rs`) runs over every
/// implementation, the test doubles included.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Protectable pods (Karbor's `OS::Kubernetes::Pod` instances) read from etcd.
    async fn pods(&self, selection: &SelectionSpec) -> Result<PodList, EngineError>;

    /// One pod and its dependents: its Cinder volumes (`OS::Cinder::Volume`), and why its
    /// other volumes are not protectable.
    async fn pod(&self, pod: &PodSpecifier) -> Result<PodDetail, EngineError>;

    /// One page of protectable pods with their dependents and closure, in key order:
    /// reads what the page needs, at one revision, never the whole cluster. A pod named
    /// by `after` that no longer exists still marks its place (when this engine has seen
    /// it); one it cannot place is `NotFound`.
    async fn pod_page(
        &self,
        selection: &SelectionSpec,
        page: &PageRequest,
    ) -> Result<PodPage, EngineError> {
        // An engine that can do no better: the whole listing, then each pod of the page.
        let list = self.pods(selection).await?;
        let start = match &page.after {
            None => 0,
            Some(after) => {
                let at = list.items.iter().position(|p| match after {
                    PodSpecifier::Uid(uid) => &p.id == uid,
                    PodSpecifier::Name(name) => {
                        p.pod.info.namespace == name.namespace() && p.pod.info.name == name.name()
                    }
                });
                at.map(|i| i + 1).ok_or_else(|| {
                    EngineError::NotFound(format!("marker {after}: no such pod is known"))
                })?
            }
        };
        let limit = page.limit.clamp(1, MAX_PAGE);
        let rest = list.items.get(start..).unwrap_or_default();
        let mut items = Vec::with_capacity(limit.min(rest.len()));
        for p in rest.iter().take(limit) {
            let name = ObjectRef::new(p.pod.info.namespace.clone(), p.pod.info.name.clone());
            items.push(self.pod(&PodSpecifier::Name(name)).await?);
        }
        Ok(PodPage {
            revision: list.revision,
            more: rest.len() > limit,
            items,
            problems: list.problems,
        })
    }

    /// Takes one checkpoint; returns it as written (`available` or `error`).
    async fn protect(&self, request: ProtectRequest) -> Result<CheckpointView, EngineError>;

    /// The checkpoints of the bank, oldest first.
    async fn checkpoints(&self, filter: &CheckpointFilter) -> Result<CheckpointList, EngineError>;

    /// One checkpoint with its resource and volume records.
    async fn checkpoint(&self, id: &CheckpointId) -> Result<CheckpointView, EngineError>;

    /// Re-reads and re-hashes everything a checkpoint (or, with `None`, the whole bank)
    /// needs.
    async fn verify(&self, id: Option<&CheckpointId>) -> Result<VerifyReport, EngineError>;

    /// Deletes a checkpoint and its Cinder backups. A backup a newer incremental backup
    /// depends on is kept under a tombstone until that one goes.
    async fn delete_checkpoint(&self, id: &CheckpointId) -> Result<DeleteOutcome, EngineError>;

    /// Sets a finished checkpoint's status to `available` or `error`, nothing else of it
    /// (Karbor's checkpoint reset-state). A checkpoint being written or deleted is a
    /// `Conflict`.
    async fn reset_checkpoint_status(
        &self,
        id: &CheckpointId,
        status: CheckpointStatus,
    ) -> Result<(), EngineError> {
        let _ = (id, status);
        Err(EngineError::Unsupported(
            "this engine does not reset checkpoint states: use the agent's Karbor API \
             (karbor checkpoint-reset-state)"
                .into(),
        ))
    }

    /// Restores from a checkpoint; returns the restore record.
    async fn restore(&self, request: RestoreRequest) -> Result<RestoreView, EngineError>;

    /// Every restore record.
    async fn restores(&self) -> Result<RestoreList, EngineError>;

    /// One restore record.
    async fn restore_record(&self, id: &RestoreId) -> Result<RestoreView, EngineError>;

    /// The configured plans.
    async fn plans(&self) -> Result<Vec<PlanView>, EngineError>;

    /// Runs a plan now: protect, then its retention.
    async fn run_plan(&self, name: &str) -> Result<PlanRun, EngineError>;

    /// Removes what no checkpoint needs (waits up to `wait` for writers).
    async fn gc(&self, wait: Duration) -> Result<GcReport, EngineError>;

    /// Mends the bank after damage (waits up to `wait` for writers).
    async fn repair(&self, wait: Duration) -> Result<RepairReport, EngineError>;

    /// Counts of the bank.
    async fn bank_stats(&self) -> Result<Stats, EngineError>;

    /// Whether etcd and the bank answer. Every check is reported, failed or not.
    async fn readiness(&self) -> Vec<ReadinessCheck>;

    /// The plans kept in the bank (Karbor's plans), oldest first.
    async fn stored_plans(&self) -> Result<Vec<StoredPlan>, EngineError> {
        Err(EngineError::Unsupported(
            "this engine keeps no plans: use the agent's Karbor API (/v1/{project_id}/plans)"
                .into(),
        ))
    }

    /// Keeps a plan in the bank (a new one, or a change of one).
    async fn save_plan(&self, plan: &StoredPlan) -> Result<(), EngineError> {
        let _ = plan;
        self.stored_plans().await.map(|_| ())
    }

    /// Removes a plan kept in the bank (its checkpoints stay).
    async fn remove_plan(&self, id: &PlanId) -> Result<(), EngineError> {
        let _ = id;
        self.stored_plans().await.map(|_| ())
    }
}
