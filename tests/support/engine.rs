//! An in-memory [`Engine`] for the agent's tests: a shared "bank" of checkpoints with
//! Cinder-like incremental volume backups, and a log of who did what.
//!
//! It behaves like the real thing where the agent's logic depends on it:
//! * every `full_every`-th backup of a volume is full, the others incremental on the
//!   volume's previous backup (`parameters.incremental: false` forces a full one);
//! * deleting a checkpoint that another checkpoint's incremental backup depends on fails
//!   with `Conflict` (Cinder answers 400 there);
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
use podbank::agent::engine::{
    CheckpointFilter, CheckpointId, CheckpointStatus, CheckpointSummary, Engine, EngineError,
    ProtectOutcome, ProtectRequest, ProtectStats, ProtectableQuery, ReadinessCheck, RestoreRequest,
    RestoreStatus, RestoreSummary, VolumeBackupRef,
};
use serde_json::{json, Value};

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
    /// Live checkpoints by id.
    pub checkpoints: BTreeMap<CheckpointId, CheckpointSummary>,
    /// Restores.
    pub restores: Vec<RestoreSummary>,
    /// Every protect started, in order.
    pub protects: Vec<ProtectCall>,
    /// Every successful delete, in order.
    pub deletes: Vec<CheckpointId>,
    /// Deletes refused because of dependents.
    pub refused_deletes: Vec<CheckpointId>,
    /// Backups made per volume so far.
    backups_per_volume: HashMap<String, u64>,
    next: u64,
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
}

/// Pods the protectables endpoints know: (namespace, name, uid).
pub const PODS: [(&str, &str, &str); 3] = [
    ("shop", "web-0", "uid-web-0"),
    ("shop", "db-0", "uid-db-0"),
    ("ops", "tool", "uid-tool"),
];

impl MemoryEngine {
    /// A fresh engine with its own bank.
    pub fn new(tag: &str, full_every: u64) -> Arc<MemoryEngine> {
        Arc::new(MemoryEngine {
            tag: tag.into(),
            bank: Arc::default(),
            full_every: full_every.max(1),
            protect_delay: Mutex::new(Duration::ZERO),
            bank_ok: AtomicBool::new(true),
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
        })
    }

    /// Make protects take `d`.
    pub fn set_delay(&self, d: Duration) {
        *self.protect_delay.lock().expect("lock") = d;
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
                .map(|p| format!("vol-{}", p.replace('/', "-")))
                .collect()
        }
    }

    fn find_pod(id: &str) -> Result<(&'static str, &'static str, &'static str), EngineError> {
        PODS.iter()
            .find(|(ns, name, uid)| *uid == id || format!("{ns}/{name}") == id)
            .copied()
            .ok_or(EngineError::NotFound {
                what: "pod",
                id: id.to_string(),
            })
    }
}

#[async_trait]
impl Engine for MemoryEngine {
    async fn protect(&self, request: ProtectRequest) -> Result<ProtectOutcome, EngineError> {
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
        let force_full = request.parameters.get("incremental") == Some(&Value::Bool(false));
        // Written at the end, in one step: a cancelled protect leaves nothing.
        let outcome = self.with_bank(|b| {
            b.next += 1;
            let id = CheckpointId(format!("cp-{:04}", b.next));
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
                        .filter(|c| c.volumes.iter().any(|v| v.volume_id == vol))
                        .max_by_key(|c| (c.created_at, c.id.clone()))
                        .map(|c| {
                            let backup = c
                                .volumes
                                .iter()
                                .find(|v| v.volume_id == vol)
                                .map(|v| v.backup_id.clone());
                            (c.id.clone(), backup)
                        })
                };
                volumes.push(VolumeBackupRef {
                    volume_id: vol.clone(),
                    backup_id: format!("bk-{}-{vol}", id.0),
                    incremental: parent.is_some(),
                    parent_backup_id: parent.as_ref().and_then(|p| p.1.clone()),
                    parent_checkpoint_id: parent.map(|p| p.0),
                });
            }
            let summary = CheckpointSummary {
                id: id.clone(),
                plan: request.plan.clone(),
                status: CheckpointStatus::Available,
                created_at: Utc::now(),
                volumes,
            };
            let vols = summary.volumes.len() as u64;
            b.checkpoints.insert(id.clone(), summary);
            b.protects[index].checkpoint = Some(id.clone());
            ProtectOutcome {
                checkpoint_id: id,
                status: CheckpointStatus::Available,
                stats: ProtectStats {
                    pods: vols,
                    objects_written: 2,
                    objects_reused: 2,
                    bytes_written: 1000,
                    volume_backups: vols,
                    volume_backup_failures: 0,
                },
            }
        });
        Ok(outcome)
    }

    async fn list_checkpoints(
        &self,
        filter: CheckpointFilter,
    ) -> Result<Vec<CheckpointSummary>, EngineError> {
        Ok(self.with_bank(|b| {
            b.checkpoints
                .values()
                .filter(|c| filter.plan.is_none() || c.plan == filter.plan)
                .cloned()
                .collect()
        }))
    }

    async fn show_checkpoint(&self, id: &CheckpointId) -> Result<Value, EngineError> {
        self.with_bank(|b| {
            b.checkpoints
                .get(id)
                .map(|c| json!({"checkpoint": c, "pods": []}))
                .ok_or(EngineError::NotFound {
                    what: "checkpoint",
                    id: id.0.clone(),
                })
        })
    }

    async fn delete_checkpoint(&self, id: &CheckpointId) -> Result<(), EngineError> {
        self.with_bank(|b| {
            if !b.checkpoints.contains_key(id) {
                return Err(EngineError::NotFound {
                    what: "checkpoint",
                    id: id.0.clone(),
                });
            }
            let child = b.checkpoints.values().find(|c| {
                c.volumes
                    .iter()
                    .any(|v| v.parent_checkpoint_id.as_ref() == Some(id))
            });
            if let Some(child) = child {
                let msg = format!("checkpoint {id} has incremental children ({})", child.id);
                b.refused_deletes.push(id.clone());
                return Err(EngineError::Conflict(msg));
            }
            b.checkpoints.remove(id);
            b.deletes.push(id.clone());
            Ok(())
        })
    }

    async fn create_restore(&self, request: RestoreRequest) -> Result<RestoreSummary, EngineError> {
        self.with_bank(|b| {
            if !b.checkpoints.contains_key(&request.checkpoint_id) {
                return Err(EngineError::NotFound {
                    what: "checkpoint",
                    id: request.checkpoint_id.0.clone(),
                });
            }
            let r = RestoreSummary {
                id: format!("restore-{}", b.restores.len() + 1),
                checkpoint_id: request.checkpoint_id.clone(),
                status: RestoreStatus::Success,
                created_at: Utc::now(),
            };
            b.restores.push(r.clone());
            Ok(r)
        })
    }

    async fn list_restores(&self) -> Result<Vec<RestoreSummary>, EngineError> {
        Ok(self.with_bank(|b| b.restores.clone()))
    }

    async fn show_restore(&self, id: &str) -> Result<Value, EngineError> {
        self.with_bank(|b| {
            b.restores
                .iter()
                .find(|r| r.id == id)
                .map(|r| json!({"restore": r, "resources": []}))
                .ok_or(EngineError::NotFound {
                    what: "restore",
                    id: id.to_string(),
                })
        })
    }

    async fn list_protectables(&self, query: ProtectableQuery) -> Result<Value, EngineError> {
        if let Some(sel) = &query.label_selector {
            podbank::resources::LabelSelector::parse(sel)
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
        }
        let items: Vec<Value> = PODS
            .iter()
            .filter(|(ns, _, _)| query.namespaces.is_empty() || query.namespaces.iter().any(|n| n == ns))
            .map(|(ns, name, uid)| {
                json!({"type": "OS::Kubernetes::Pod", "id": uid, "namespace": ns, "name": name})
            })
            .collect();
        Ok(json!({ "items": items }))
    }

    async fn show_protectable(&self, id: &str) -> Result<Value, EngineError> {
        let (ns, name, uid) = Self::find_pod(id)?;
        Ok(json!({"type": "OS::Kubernetes::Pod", "id": uid, "namespace": ns, "name": name}))
    }

    async fn protectable_dependents(&self, id: &str) -> Result<Value, EngineError> {
        let (ns, name, uid) = Self::find_pod(id)?;
        Ok(json!({
            "pod": format!("{ns}/{name}"),
            "pod_uid": uid,
            "dependents": [{"type": "OS::Cinder::Volume", "id": format!("vol-{ns}-{name}")}]
        }))
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
