//! An in-memory [`Engine`] for the agent's tests: a shared "bank" of checkpoints with
//! Cinder-like incremental volume backups, and a log of who did what.
//!
//! It behaves like the real thing where the agent's logic depends on it, and the engine
//! conformance suite (`engine_conformance.rs`) holds it to that:
//! * every `full_every`-th backup of a volume is full, the others incremental on the
//!   volume's previous backup (`parameters.incremental: false` forces a full one);
//! * deleting a checkpoint that another checkpoint's incremental backup depends on
//!   succeeds and leaves a tombstone (status `deleted`, listed only with `all`) that goes
//!   once no checkpoint depends on it any more, as the real delete does;
//! * a checkpoint becomes visible only when its protect completes: a protect that is
//!   cancelled (its future dropped) leaves nothing.
//!
//! Several engines can share one bank ([`MemoryEngine::sharing`]), each with its own tag,
//! to tell which agent replica ran a protect.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use podbank::bank::{GcReport, RepairReport, Stats, VerifyReport};
use podbank::engine::views::{
    CheckpointItem, CheckpointList, DependentView, RestoreItem, RestoreList, StatsView,
};
use podbank::engine::{
    CheckpointFilter, CheckpointView, Engine, EngineError, Plan, PlanRun, PlanView, PodDetail,
    PodList, PodSpecifier, PodView, ProtectRequest, ReadinessCheck, RestoreRequest, RestoreView,
    SelectionSpec,
};
use podbank::model::{
    BackupId, CheckpointId, CheckpointStatus, ResourceKind, ResourceType, RestoreId, RestoreRecord,
    RestoreStatus, Revision, VolumeId, VolumeStatus,
};
use podbank::protection::retention::{BackupLink, Candidate};
use podbank::protection::{DeleteOutcome, PodEntry};
use podbank::resources::{Dependent, DependentStatus, PodInfo};

/// One protect as the engine saw it.
#[derive(Debug, Clone)]
pub struct ProtectCall {
    /// The tag of the engine (agent replica) that ran it.
    pub tag: String,
    /// The request.
    pub request: ProtectRequest,
    /// The checkpoint made, if it completed.
    pub checkpoint: Option<CheckpointId>,
}

/// The shared state: the "bank".
#[derive(Debug, Default)]
pub struct Bank {
    /// Checkpoints by id (tombstones included, with status `deleted`).
    pub checkpoints: BTreeMap<CheckpointId, Candidate>,
    /// Each checkpoint's `backup_name`.
    pub names: BTreeMap<CheckpointId, String>,
    /// Restores.
    pub restores: Vec<RestoreRecord>,
    /// Every protect started, in order.
    pub protects: Vec<ProtectCall>,
    /// Every delete asked for, in order.
    pub deletes: Vec<CheckpointId>,
    /// Deletes that left a tombstone because a newer incremental backup depended on them
    /// (retention in dependency order makes none).
    pub tombstoned: Vec<CheckpointId>,
    /// Backups made per volume so far.
    backups_per_volume: HashMap<String, u64>,
    next: u64,
}

impl Bank {
    /// Whether a live checkpoint other than `id` depends on `id`.
    fn has_dependents(&self, id: &CheckpointId) -> bool {
        self.checkpoints.values().any(|c| {
            &c.id != id
                && c.status != CheckpointStatus::Deleted
                && c.volumes
                    .iter()
                    .any(|v| v.parent_checkpoint_id.as_ref() == Some(id))
        })
    }

    /// Removes tombstones nothing depends on any more, until none is left to remove.
    fn sweep(&mut self) {
        loop {
            let free: Vec<CheckpointId> = self
                .checkpoints
                .values()
                .filter(|c| c.status == CheckpointStatus::Deleted)
                .filter(|c| {
                    !self.checkpoints.values().any(|o| {
                        o.id != c.id
                            && o.volumes
                                .iter()
                                .any(|v| v.parent_checkpoint_id.as_ref() == Some(&c.id))
                    })
                })
                .map(|c| c.id.clone())
                .collect();
            if free.is_empty() {
                return;
            }
            for id in free {
                self.checkpoints.remove(&id);
            }
        }
    }
}

/// The in-memory engine.
pub struct MemoryEngine {
    /// Which replica this engine stands for.
    pub tag: String,
    /// The shared bank.
    pub bank: Arc<Mutex<Bank>>,
    /// Every n-th backup of a volume is full.
    pub full_every: u64,
    /// How long a protect takes.
    pub protect_delay: Mutex<Duration>,
    /// Whether the bank answers (readiness).
    pub bank_ok: AtomicBool,
    /// The plans `run_plan` knows.
    pub plans: Mutex<Vec<Plan>>,
}

/// Pods the protectables endpoints know: (namespace, name, uid).
pub const PODS: [(&str, &str, &str); 3] = [
    ("shop", "web-0", "uid-web-0"),
    ("shop", "db-0", "uid-db-0"),
    ("ops", "tool", "uid-tool"),
];

fn cid(n: u64) -> CheckpointId {
    format!("cp-{n:04}").parse().expect("a checkpoint id")
}

fn item(c: &Candidate, name: Option<&String>) -> CheckpointItem {
    CheckpointItem {
        project_id: String::new(),
        id: c.id.clone(),
        plan: c.plan.clone(),
        status: c.status,
        created_at: c.created_at,
        volumes: c.volumes.clone(),
        backup_name: name.cloned().unwrap_or_default(),
        description: String::new(),
        finished_at: Some(c.created_at),
        etcd_revision: Revision::new(1),
        pods: c.volumes.len() as u32,
        resource_count: c.volumes.len() as u64,
        volume_counts: podbank::engine::views::VolumeCounts {
            cinder: c.volumes.len() as u64,
            backed_up: c.volumes.len() as u64,
            skipped: 0,
        },
        bytes_new: 0,
        reason: String::new(),
    }
}

fn view(c: &Candidate, name: Option<&String>) -> CheckpointView {
    CheckpointView {
        project_id: String::new(),
        id: c.id.clone(),
        status: c.status,
        backup_name: name.cloned().unwrap_or_default(),
        description: String::new(),
        created_at: Some(c.created_at.to_rfc3339()),
        finished_at: Some(c.created_at.to_rfc3339()),
        etcd_revision: Revision::new(1),
        pods: c.volumes.len() as u32,
        resource_count: c.volumes.len() as u64,
        reason: String::new(),
        plan: c.plan.clone().unwrap_or_default(),
        selection: Default::default(),
        volumes: c
            .volumes
            .iter()
            .map(|v| podbank::engine::views::VolumeView {
                volume_id: v.volume_id.clone(),
                backup_id: v.backup_id.clone(),
                status: VolumeStatus::Available,
                reason: String::new(),
                incremental: v.incremental,
                parent_backup_id: v.parent_backup_id.clone().unwrap_or_default(),
                parent_checkpoint: v.parent_checkpoint_id.clone(),
                size_gib: 1,
                pods: Vec::new(),
                pod_volume: "data".into(),
                claim: String::new(),
                persistent_volume: String::new(),
                driver: None,
                taken_by: Default::default(),
                taken_reason: String::new(),
                snapshot_id: String::new(),
                snapshot_sent_unix_ms: 0,
                snapshot_available_unix_ms: 0,
                skew_ms: 0,
                chain_depth: 0,
            })
            .collect(),
        volume_counts: podbank::engine::views::VolumeCounts {
            cinder: c.volumes.len() as u64,
            backed_up: c.volumes.len() as u64,
            skipped: 0,
        },
        resources: Vec::new(),
        stats: StatsView {
            objects: 4,
            objects_new: 2,
            bytes_plain: 4000,
            bytes_new: 1000,
            packs_new: 1,
            seconds: 0.0,
        },
        hooks: Vec::new(),
        hooks_skipped: Vec::new(),
    }
}

fn pod_entry((ns, name, uid): (&str, &str, &str)) -> PodEntry {
    PodEntry {
        info: PodInfo {
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
            node: Some("node-1".into()),
            phase: Some("Running".into()),
            labels: Default::default(),
            created: None,
            volumes: Vec::new(),
            hook_annotations: Default::default(),
            containers: Vec::new(),
            refs: Default::default(),
        },
        key: format!("/registry/pods/{ns}/{name}"),
        mod_revision: 1,
    }
}

impl MemoryEngine {
    /// A fresh engine with its own bank.
    pub fn new(tag: &str, full_every: u64) -> Arc<MemoryEngine> {
        Arc::new(MemoryEngine {
            tag: tag.into(),
            bank: Arc::default(),
            full_every: full_every.max(1),
            protect_delay: Mutex::new(Duration::ZERO),
            bank_ok: AtomicBool::new(true),
            plans: Mutex::default(),
        })
    }

    /// Another engine over the same bank, with another tag.
    pub fn sharing(&self, tag: &str) -> Arc<MemoryEngine> {
        Arc::new(MemoryEngine {
            tag: tag.into(),
            bank: Arc::clone(&self.bank),
            full_every: self.full_every,
            protect_delay: Mutex::new(*self.protect_delay.lock().expect("lock")),
            bank_ok: AtomicBool::new(true),
            plans: Mutex::new(self.plans.lock().expect("lock").clone()),
        })
    }

    /// Make protects take `d`.
    pub fn set_delay(&self, d: Duration) {
        *self.protect_delay.lock().expect("lock") = d;
    }

    /// Let `run_plan` know these plans.
    pub fn set_plans(&self, plans: Vec<Plan>) {
        *self.plans.lock().expect("lock") = plans;
    }

    /// Run `f` on the bank.
    pub fn with_bank<T>(&self, f: impl FnOnce(&mut Bank) -> T) -> T {
        f(&mut self.bank.lock().expect("lock"))
    }

    fn volumes_of(request: &ProtectRequest) -> Vec<String> {
        if request.selection.pods.is_empty() {
            vec![format!(
                "vol-{}",
                request.plan.as_deref().unwrap_or("adhoc")
            )]
        } else {
            request
                .selection
                .pods
                .iter()
                .map(|p| format!("vol-{}-{}", p.namespace(), p.name()))
                .collect()
        }
    }

    fn find_pod(
        pod: &PodSpecifier,
    ) -> Result<(&'static str, &'static str, &'static str), EngineError> {
        PODS.iter()
            .find(|(ns, name, uid)| match pod {
                PodSpecifier::Uid(u) => u == uid,
                PodSpecifier::Name(r) => r.namespace() == *ns && r.name() == *name,
            })
            .copied()
            .ok_or_else(|| EngineError::not_found("pod", pod))
    }

    fn candidate(&self, id: &CheckpointId) -> Result<Candidate, EngineError> {
        self.with_bank(|b| b.checkpoints.get(id).cloned())
            .ok_or_else(|| EngineError::not_found("checkpoint", id))
    }
}

#[async_trait]
impl Engine for MemoryEngine {
    async fn pods(&self, selection: &SelectionSpec) -> Result<PodList, EngineError> {
        selection.resolve()?;
        let items = PODS
            .iter()
            .filter(|(ns, _, _)| {
                selection.namespaces.is_empty() || selection.namespaces.iter().any(|n| n == ns)
            })
            .map(|p| PodView {
                resource_type: ResourceType::Kube(ResourceKind::Pod),
                id: p.2.to_string(),
                pod: pod_entry(*p),
                cinder_volumes: 1,
            })
            .collect();
        Ok(PodList {
            revision: Revision::new(1),
            items,
            problems: Vec::new(),
            next: None,
        })
    }

    async fn pod(&self, pod: &PodSpecifier) -> Result<PodDetail, EngineError> {
        let found = Self::find_pod(pod)?;
        let (ns, name, _) = found;
        Ok(PodDetail {
            revision: Revision::new(1),
            resource_type: ResourceType::Kube(ResourceKind::Pod),
            id: found.2.to_string(),
            cinder_volumes: 1,
            pod: pod_entry(found),
            closure: Vec::new(),
            dependents: vec![DependentView::from(Dependent {
                pod_volume: "data".into(),
                status: DependentStatus::Protectable,
                volume_id: Some(format!("vol-{ns}-{name}")),
                driver: Some(podbank::model::VolumeDriver::CinderCsi),
                claim: Some("data".into()),
                persistent_volume: Some(format!("pv-{name}")),
                capacity: Some("1Gi".into()),
            })],
        })
    }

    async fn protect(&self, request: ProtectRequest) -> Result<CheckpointView, EngineError> {
        request.selection.resolve()?;
        let index = self.with_bank(|b| {
            b.protects.push(ProtectCall {
                tag: self.tag.clone(),
                request: request.clone(),
                checkpoint: None,
            });
            b.protects.len() - 1
        });
        let delay = *self.protect_delay.lock().expect("lock");
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let force_full = request.parameters.incremental == Some(false);
        // Written at the end, in one step: a cancelled protect leaves nothing.
        let made = self.with_bank(|b| {
            b.next += 1;
            let id = cid(b.next);
            let mut volumes = Vec::new();
            for vol in Self::volumes_of(&request) {
                let n = b.backups_per_volume.entry(vol.clone()).or_insert(0);
                let full = force_full || *n % self.full_every == 0;
                *n += 1;
                let parent = if full {
                    None
                } else {
                    b.checkpoints
                        .values()
                        .filter(|c| c.volumes.iter().any(|v| v.volume_id.as_str() == vol))
                        .max_by_key(|c| (c.created_at, c.id.clone()))
                        .map(|c| {
                            let backup = c
                                .volumes
                                .iter()
                                .find(|v| v.volume_id.as_str() == vol)
                                .map(|v| v.backup_id.clone());
                            (c.id.clone(), backup)
                        })
                };
                volumes.push(BackupLink {
                    volume_id: VolumeId::new(vol.clone()),
                    backup_id: BackupId::new(format!("bk-{id}-{vol}")),
                    incremental: parent.is_some(),
                    parent_backup_id: parent.as_ref().and_then(|p| p.1.clone()),
                    parent_checkpoint_id: parent.map(|p| p.0),
                });
            }
            let c = Candidate {
                id: id.clone(),
                plan: request.plan.clone(),
                status: CheckpointStatus::Available,
                created_at: Utc::now(),
                volumes,
            };
            b.checkpoints.insert(id.clone(), c.clone());
            let name = request.parameters.backup_name.clone();
            b.names.insert(id.clone(), name.clone());
            b.protects[index].checkpoint = Some(id);
            (c, name)
        });
        Ok(view(&made.0, Some(&made.1)))
    }

    async fn checkpoints(&self, filter: &CheckpointFilter) -> Result<CheckpointList, EngineError> {
        Ok(CheckpointList {
            items: self.with_bank(|b| {
                b.checkpoints
                    .values()
                    .filter(|c| filter.all || c.status != CheckpointStatus::Deleted)
                    .filter(|c| filter.plan.is_none() || c.plan == filter.plan)
                    .map(|c| item(c, b.names.get(&c.id)))
                    .collect()
            }),
            problems: Vec::new(),
        })
    }

    async fn checkpoint(&self, id: &CheckpointId) -> Result<CheckpointView, EngineError> {
        let c = self.candidate(id)?;
        Ok(self.with_bank(|b| view(&c, b.names.get(id))))
    }

    async fn verify(&self, id: Option<&CheckpointId>) -> Result<VerifyReport, EngineError> {
        let checkpoints = match id {
            Some(id) => self.candidate(id).map(|_| 1)?,
            None => self.with_bank(|b| b.checkpoints.len()),
        };
        Ok(VerifyReport {
            checkpoints,
            ..VerifyReport::default()
        })
    }

    async fn delete_checkpoint(&self, id: &CheckpointId) -> Result<DeleteOutcome, EngineError> {
        self.with_bank(|b| {
            let Some(c) = b.checkpoints.get(id).cloned() else {
                return Err(EngineError::not_found("checkpoint", id));
            };
            b.deletes.push(id.clone());
            let backups: Vec<BackupId> = c.volumes.iter().map(|v| v.backup_id.clone()).collect();
            let kept = b.has_dependents(id);
            if kept {
                b.tombstoned.push(id.clone());
                if let Some(c) = b.checkpoints.get_mut(id) {
                    c.status = CheckpointStatus::Deleted;
                }
            } else {
                b.checkpoints.remove(id);
            }
            b.sweep();
            Ok(DeleteOutcome {
                id: id.clone(),
                status: CheckpointStatus::Deleted,
                backups_deleted: if kept { Vec::new() } else { backups.clone() },
                backups_kept: if kept { backups } else { Vec::new() },
            })
        })
    }

    async fn restore(&self, request: RestoreRequest) -> Result<RestoreView, EngineError> {
        podbank::engine::check_pods(&request.pods)?;
        self.candidate(&request.checkpoint_id)?;
        Ok(self.with_bank(|b| {
            let mut r = RestoreRecord::new(
                RestoreId::generate(),
                request.checkpoint_id.clone(),
                Utc::now(),
            );
            r.status = RestoreStatus::Success;
            r.finished = Some(Utc::now());
            b.restores.push(r.clone());
            RestoreView::from(&r)
        }))
    }

    async fn restores(&self) -> Result<RestoreList, EngineError> {
        Ok(RestoreList {
            items: self.with_bank(|b| b.restores.iter().map(RestoreItem::from).collect()),
            problems: Vec::new(),
        })
    }

    async fn restore_record(&self, id: &RestoreId) -> Result<RestoreView, EngineError> {
        self.with_bank(|b| {
            b.restores
                .iter()
                .find(|r| &r.id == id)
                .map(RestoreView::from)
                .ok_or_else(|| EngineError::not_found("restore", id))
        })
    }

    async fn plans(&self) -> Result<Vec<PlanView>, EngineError> {
        Ok(self
            .plans
            .lock()
            .expect("lock")
            .iter()
            .map(PlanView::from)
            .collect())
    }

    async fn run_plan(&self, name: &str) -> Result<PlanRun, EngineError> {
        let plan = self
            .plans
            .lock()
            .expect("lock")
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| EngineError::not_found("plan", name))?;
        podbank::engine::plans::run_plan(self, &plan).await
    }

    async fn gc(&self, _wait: Duration) -> Result<GcReport, EngineError> {
        Ok(GcReport {
            checkpoints: self.with_bank(|b| b.checkpoints.len()),
            ..GcReport::default()
        })
    }

    async fn repair(&self, _wait: Duration) -> Result<RepairReport, EngineError> {
        Ok(RepairReport::default())
    }

    async fn bank_stats(&self) -> Result<Stats, EngineError> {
        Ok(Stats {
            location: format!("memory:{}", self.tag),
            checkpoints: self.with_bank(|b| b.checkpoints.len()),
            ..Stats::default()
        })
    }

    async fn readiness(&self) -> Vec<ReadinessCheck> {
        let bank = self.bank_ok.load(Ordering::SeqCst);
        vec![
            ReadinessCheck {
                name: "etcd".into(),
                ok: true,
                message: None,
            },
            ReadinessCheck {
                name: "bank".into(),
                ok: bank,
                message: (!bank).then(|| "memory bank switched off by the test".into()),
            },
        ]
    }
}

/// Poll `cond` every 20 ms until it holds or `timeout` passes; panics with `what`.
pub async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
