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

pub mod identity;
mod lazy;
mod local;
pub mod operation_logs;
pub mod plans;
pub mod triggers;
pub mod verifications;
pub mod views;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use lazy::Lazy;
pub use local::{from_bank, from_protection, LocalEngine, VolumeMode};
pub use plans::{Plan, PlanRun, PlanView, Schedule};
pub use views::{
    CheckpointItem, CheckpointList, CheckpointView, ClosureView, DependentView, DependentsView,
    PodDetail, PodList, PodPage, PodView, ReadinessCheck, RestoreItem, RestoreList, RestoreView,
};

use crate::bank::{GcReport, RepairReport, Stats, VerifyReport};
use crate::model::{
    CheckpointId, CheckpointStatus, Namespace, ObjectRef, PlanId, RestoreId, ScheduledOperationId,
    StoredOperation, StoredPlan, StoredTrigger, TriggerId,
};
pub use crate::protection::restore::{RestoreMode, RestoreRequest};
use crate::protection::schema::ProtectParams;
use crate::protection::{DeleteOutcome, Selection};
use crate::resources::{FieldSelector, LabelSelector};

/// Which pods an operation covers. All given criteria must hold; an empty selection means
/// every pod of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SelectionSpec {
    /// Namespaces; empty means all.
    #[schema(value_type = Vec<String>)]
    pub namespaces: Vec<Namespace>,
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
    /// The selection, checked: selectors parse (namespaces are checked when read).
    pub fn resolve(&self) -> Result<Selection, EngineError> {
        check_pods(&self.pods)?;
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
    /// podbank's `incremental`, `force`, ...); see `podbank schema protect`. Validated when
    /// the request is read (flags, an HTTP body), not again on the way.
    #[schema(value_type = Object)]
    pub parameters: ProtectParams,
    /// Back up the Cinder volumes (default); `false` records them as not protected.
    #[serde(default = "yes")]
    #[serde(alias = "volume_backups")]
    pub volume_backups: bool,
    /// Store the pods' Secrets even though the bank is not encrypted (an encrypted bank
    /// always stores them); otherwise each is recorded as skipped, with the reason.
    #[serde(default)]
    #[serde(alias = "secrets_in_plain_bank")]
    pub secrets_in_plain_bank: bool,
    /// Do not run the pods' exec hooks (Velero's `pre/post.hook.backup.velero.io`
    /// annotations); the pods that declare some are recorded in the checkpoint. Without it, a
    /// protect with no API server to run declared hooks fails before it takes anything.
    #[serde(default)]
    #[serde(alias = "skip_hooks")]
    pub skip_hooks: bool,
    /// The plan's exec hooks (a plan's `hooks:` in the agent's config file): Velero's hook
    /// settings for the selected pods that match each entry's selector, where a pod's own
    /// annotations say nothing for that phase. Checked when the protect starts. An agent
    /// takes them from its own plans only, never from a caller.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub hooks: Vec<crate::protection::hooks::PlanHook>,
    /// The id the checkpoint gets (one not in the bank); `None`: a new one. Set by fronts
    /// that answer with the id before the protect has started (Karbor's checkpoint create).
    #[serde(skip)]
    pub checkpoint_id: Option<CheckpointId>,
    /// The Karbor project the checkpoint belongs to (empty: none, the cluster admin's).
    /// Set by the agent from the route it was asked on, never taken from a body.
    #[serde(skip)]
    pub project_id: String,
}

fn yes() -> bool {
    true
}

/// A part of a request that an agent does not take from its callers, said once here for
/// every front: the remote client refuses it before sending, the agent refuses it when it
/// arrives (HTTP 501), and the CLI names the flag (exit code 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentRefusal {
    /// The request field (as in the HTTP body).
    pub field: &'static str,
    /// The CLI flag that sets it.
    pub flag: &'static str,
    /// Why the agent does not take it.
    pub why: &'static str,
}

impl AgentRefusal {
    /// The error a refused request is answered with.
    pub fn error(&self, operation: &str) -> EngineError {
        EngineError::Unsupported(format!(
            "the agent's {operation} takes no {} ({}): {}",
            self.field, self.flag, self.why
        ))
    }
}

const AGENT_SELECTS: &str = "the agent selects pods by namespace, label selector and name";
const AGENT_RESTORES: &str = "the agent's restores take the pods and the restore parameters only";

impl ProtectRequest {
    /// What of this request an agent does not take from a caller, if anything.
    pub fn agent_refusal(&self) -> Option<AgentRefusal> {
        let s = &self.selection;
        let refusal = |field, flag, why| Some(AgentRefusal { field, flag, why });
        if s.field_selector.is_some() {
            return refusal("fieldSelector", "--field-selector", AGENT_SELECTS);
        }
        if !s.uids.is_empty() {
            return refusal("uids", "pod uids", AGENT_SELECTS);
        }
        if !self.volume_backups {
            return refusal(
                "volumeBackups",
                "--no-volume-backups",
                "whether volumes are backed up is the agent's setting (podbank agent \
                 --no-volume-backups)",
            );
        }
        if !self.hooks.is_empty() {
            // Hooks are commands the agent runs in pods with its own API-server rights: a
            // caller allowed to protect must not gain an exec into every pod by them.
            return refusal(
                "hooks",
                "plan hooks",
                "the commands run in pods are the pods' own annotations or the agent's plans' \
                 (hooks: in the config file)",
            );
        }
        if self.secrets_in_plain_bank {
            return refusal(
                "secretsInPlainBank",
                "--secrets-in-plain-bank",
                "whether Secrets go into a plain bank is the agent's setting \
                 (bank.secrets_in_plain_bank)",
            );
        }
        None
    }
}

impl RestoreRequest {
    /// What of this request an agent does not take from a caller, if anything.
    pub fn agent_refusal(&self) -> Option<AgentRefusal> {
        restore_refusal(self)
    }
}

fn restore_refusal(r: &RestoreRequest) -> Option<AgentRefusal> {
    let refusal = |field, flag, why| Some(AgentRefusal { field, flag, why });
    let fields = [
        (
            !r.namespace_map.is_empty(),
            "namespaceMap",
            "--namespace-map",
        ),
        (r.conflict != Default::default(), "conflict", "--conflict"),
        (r.keep_node, "keepNode", "--keep-node"),
        (r.pods_only, "podsOnly", "--pods-only"),
        (r.original_volumes, "originalVolumes", "--original-volumes"),
        (r.settle.is_some(), "settle", "--settle"),
        (r.concurrency.is_some(), "concurrency", "--concurrency"),
        (
            r.volume_concurrency.is_some(),
            "volumeConcurrency",
            "--volume-concurrency",
        ),
    ];
    if let Some((_, field, flag)) = fields.iter().find(|(set, _, _)| *set) {
        return refusal(field, flag, AGENT_RESTORES);
    }
    if r.mode != RestoreMode::Apply {
        return refusal(
            "mode",
            "--dry-run/--export",
            "the agent would write the plan on its own disk; run the dry run here",
        );
    }
    None
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

    /// The triggers kept in the bank (Karbor's triggers), oldest first.
    async fn stored_triggers(&self) -> Result<Vec<StoredTrigger>, EngineError> {
        Err(EngineError::Unsupported(
            "this engine keeps no triggers: use the agent's Karbor API (/v1/{project_id}/triggers)"
                .into(),
        ))
    }

    /// Keeps a trigger in the bank (a new one, or a change of one).
    async fn save_trigger(&self, trigger: &StoredTrigger) -> Result<(), EngineError> {
        let _ = trigger;
        self.stored_triggers().await.map(|_| ())
    }

    /// Removes a trigger kept in the bank.
    async fn remove_trigger(&self, id: &TriggerId) -> Result<(), EngineError> {
        let _ = id;
        self.stored_triggers().await.map(|_| ())
    }

    /// The scheduled operations kept in the bank (Karbor's scheduled operations), oldest
    /// first.
    async fn stored_operations(&self) -> Result<Vec<StoredOperation>, EngineError> {
        Err(EngineError::Unsupported(
            "this engine keeps no scheduled operations: use the agent's Karbor API \
             (/v1/{project_id}/scheduled_operations)"
                .into(),
        ))
    }

    /// Keeps a scheduled operation in the bank.
    async fn save_operation(&self, operation: &StoredOperation) -> Result<(), EngineError> {
        let _ = operation;
        self.stored_operations().await.map(|_| ())
    }

    /// Removes a scheduled operation kept in the bank.
    async fn remove_operation(&self, id: &ScheduledOperationId) -> Result<(), EngineError> {
        let _ = id;
        self.stored_operations().await.map(|_| ())
    }

    /// The operation logs kept in the bank (Karbor's operation logs), oldest first.
    async fn operation_logs(&self) -> Result<Vec<operation_logs::OperationLog>, EngineError> {
        Err(EngineError::Unsupported(
            "this engine keeps no operation logs: use the agent's Karbor API".into(),
        ))
    }

    /// Keeps an operation log in the bank (a new one, or its end).
    async fn save_operation_log(
        &self,
        log: &operation_logs::OperationLog,
    ) -> Result<(), EngineError> {
        let _ = log;
        self.operation_logs().await.map(|_| ())
    }

    /// The verifications kept in the bank (Karbor's verifications), oldest first.
    async fn verifications(&self) -> Result<Vec<verifications::Verification>, EngineError> {
        Err(EngineError::Unsupported(
            "this engine keeps no verifications: use the agent's Karbor API".into(),
        ))
    }

    /// Keeps a verification in the bank (a new one, or its result).
    async fn save_verification(&self, v: &verifications::Verification) -> Result<(), EngineError> {
        let _ = v;
        self.verifications().await.map(|_| ())
    }
}
