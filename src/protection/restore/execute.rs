//! The restore executor: carries a plan out through a [`RestoreSink`], step by step, and
//! keeps the restore record (every outcome, the old -> new id map) as it goes.
//!
//! A unit's steps run in order; the first that fails ends that unit (its outcome says why)
//! and the next unit starts. The record is saved after every step, so that running the same
//! restore again resumes it: volumes and objects already made are reused, never made twice.
//! Owner references are rewritten as the owners are made: each object's references point at
//! the new uids of owners this restore made, and references to anything else are removed.

use std::collections::BTreeMap;

use super::error::RestoreError;
use super::plan::{ObjectStep, Step, UnitPlan};
use super::sink::RestoreSink;
use crate::bank::Bank;
use crate::codec::{edit_object, OwnerEdit, ResourceKind};
use crate::model::{
    Checkpoint, ObjectRef, Outcome, ResourceType, RestoreRecord, RestoredResource, VolumeDriver,
    VolumeId, VolumeRecord,
};
use crate::protection::protect::type_of;

/// What the executor works with.
pub struct Executor<'a> {
    /// Where the stored objects are.
    pub bank: &'a Bank,
    /// The checkpoint restored.
    pub checkpoint: &'a Checkpoint,
    /// Where it goes.
    pub sink: &'a dyn RestoreSink,
    /// The record kept.
    pub record: RestoreRecord,
    /// Owners made so far: uid in the checkpoint -> uid in the target.
    pub owners: BTreeMap<String, String>,
    /// Every object made (or reused), to watch while the restore settles.
    pub made: Vec<Made>,
}

/// An object the restore made, as the settle watch follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// What it is.
    pub kind: ResourceKind,
    /// Where it is.
    pub target: ObjectRef,
    /// Its uid in the target.
    pub uid: String,
    /// What it was (the record's source).
    pub source: String,
}

impl Executor<'_> {
    /// Runs every unit's plan; returns one message per unit that failed.
    pub async fn run(&mut self, plans: Vec<UnitPlan>) -> Result<Vec<String>, RestoreError> {
        let mut failures = Vec::new();
        for plan in plans {
            match plan {
                UnitPlan::Skip { notes, .. } => {
                    for n in notes {
                        self.record.record(n);
                    }
                    self.sink.save(&self.record).await?;
                }
                UnitPlan::Fail { unit, error, notes } => {
                    for n in notes {
                        self.record.record(n);
                    }
                    self.sink.save(&self.record).await?;
                    failures.push(format!("{unit}: {error}"));
                }
                UnitPlan::Restore { unit, steps, notes } => {
                    for n in notes {
                        self.record.record(n);
                    }
                    if let Err(e) = self.run_pod(steps).await {
                        if let RestoreError::Bank(_) = e {
                            // The record cannot be kept: stop here, the next run resumes.
                            return Err(e);
                        }
                        failures.push(format!("{unit}: {e}"));
                    }
                }
            }
        }
        Ok(failures)
    }

    async fn run_pod(&mut self, steps: Vec<Step>) -> Result<(), RestoreError> {
        let mut volumes: BTreeMap<VolumeId, VolumeId> = BTreeMap::new();
        for step in steps {
            match step {
                Step::Volume(v) => {
                    let new = self.volume(&v).await?;
                    volumes.insert(v.volume_id.clone(), new);
                }
                Step::Object(o) => self.object(o, &volumes).await?,
            }
        }
        Ok(())
    }

    fn outcome(
        &mut self,
        kind: ResourceType,
        source: String,
        target: String,
        new_id: String,
        outcome: Outcome,
        reason: String,
    ) {
        self.record.record(RestoredResource {
            kind,
            source,
            target,
            new_id,
            outcome,
            reason,
        });
    }

    /// A new volume from `v`'s backup. Its id enters the record as soon as the sink returns
    /// it, before the wait.
    async fn volume(&mut self, v: &VolumeRecord) -> Result<VolumeId, RestoreError> {
        let backup = v.backup_id.clone().unwrap_or_default();
        let key = format!("volume:{}", v.volume_id);
        let source = v.volume_id.to_string();
        let (id, reused) = match self.record.new_resources.get(&key) {
            Some(id) => (VolumeId::new(id.clone()), true),
            None => {
                let name = format!("podbank-{}-{}", self.record.id, v.volume_id.short());
                match self.sink.start_volume(&backup, &name).await {
                    Ok(new) => {
                        if new.outcome == Outcome::Planned {
                            let target = new.id.to_string();
                            self.outcome(
                                ResourceType::CinderVolume,
                                source,
                                target,
                                String::new(),
                                Outcome::Planned,
                                new.note,
                            );
                            return Ok(new.id);
                        }
                        self.record.new_resources.insert(key, new.id.to_string());
                        let id = new.id.to_string();
                        self.outcome(
                            ResourceType::CinderVolume,
                            source.clone(),
                            id.clone(),
                            id,
                            new.outcome,
                            String::new(),
                        );
                        self.sink.save(&self.record).await?;
                        (new.id, false)
                    }
                    Err(e) => {
                        self.outcome(
                            ResourceType::CinderVolume,
                            source,
                            String::new(),
                            String::new(),
                            Outcome::Error,
                            e.to_string(),
                        );
                        self.sink.save(&self.record).await?;
                        return Err(e);
                    }
                }
            }
        };
        let waited = self.sink.wait_volume(&id, &backup).await;
        let (outcome, reason) = match &waited {
            Ok(()) if reused => (Outcome::Reused, String::new()),
            Ok(()) => (Outcome::Restored, String::new()),
            Err(e) => (Outcome::Error, e.to_string()),
        };
        let new_id = id.to_string();
        self.outcome(
            ResourceType::CinderVolume,
            source,
            new_id.clone(),
            new_id,
            outcome,
            reason,
        );
        self.sink.save(&self.record).await?;
        waited.map(|()| id)
    }

    /// Creates one object, with the new volume ids put in.
    async fn object(
        &mut self,
        mut step: ObjectStep,
        volumes: &BTreeMap<VolumeId, VolumeId>,
    ) -> Result<(), RestoreError> {
        let kind = type_of(step.kind);
        let target = step.target.to_string();
        if step.reused {
            if let Some(uid) = self.record.new_resources.get(&step.source).cloned() {
                self.made(&step, &uid);
            }
            self.outcome(
                kind,
                step.source,
                target,
                String::new(),
                Outcome::Reused,
                String::new(),
            );
            return Ok(());
        }
        resolve_volumes(&mut step, volumes);
        if step.edits.owners == OwnerEdit::Keep {
            step.edits.owners = OwnerEdit::Map(self.owners.clone());
        }
        let result = self.create(&step).await;
        let source = step.source.clone();
        match result {
            Ok(created) => {
                if created.outcome != Outcome::Planned {
                    self.record
                        .new_resources
                        .insert(source.clone(), created.uid.clone());
                    self.made(&step, &created.uid);
                }
                self.outcome(
                    kind,
                    source,
                    target,
                    created.uid,
                    created.outcome,
                    String::new(),
                );
                self.sink.save(&self.record).await?;
                Ok(())
            }
            Err(e) => {
                self.outcome(
                    kind,
                    source,
                    target,
                    String::new(),
                    Outcome::Error,
                    e.to_string(),
                );
                self.sink.save(&self.record).await?;
                Err(e)
            }
        }
    }

    /// Notes an object made: an owner's new uid, and what the settle watch follows.
    fn made(&mut self, step: &ObjectStep, uid: &str) {
        if uid.is_empty() {
            return;
        }
        if step.kind.is_owner() && !step.source_uid.is_empty() {
            self.owners.insert(step.source_uid.clone(), uid.to_string());
        }
        self.made.push(Made {
            kind: step.kind,
            target: step.target.clone(),
            uid: uid.to_string(),
            source: step.source.clone(),
        });
    }

    async fn create(&self, step: &ObjectStep) -> Result<super::sink::Created, RestoreError> {
        if let Some(body) = &step.generated {
            return self.sink.create(step, body.clone()).await;
        }
        let id = step.object_id.ok_or_else(|| RestoreError::NotStored {
            object: step.source.clone(),
        })?;
        let stored = self
            .bank
            .read_object(&id, self.checkpoint.id.as_str())
            .await?;
        let body = edit_object(step.kind, &stored, &step.edits)?;
        self.sink.create(step, body).await
    }
}

/// Puts the new ids of restored volumes into a PV's source and a pod's inline volumes.
fn resolve_volumes(step: &mut ObjectStep, volumes: &BTreeMap<VolumeId, VolumeId>) {
    if let Some((old, driver)) = &step.pv_volume {
        if let Some(new) = volumes.get(old) {
            if *driver == Some(VolumeDriver::CinderInTree) {
                step.edits.pv_cinder_volume_id = Some(new.to_string());
            } else {
                step.edits.pv_volume_handle = Some(new.to_string());
            }
            step.changes
                .insert(1.min(step.changes.len()), format!("volume {old} -> {new}"));
        }
    }
    if step.kind == ResourceKind::Pod {
        for old in &step.pod_inline {
            if let Some(new) = volumes.get(old) {
                step.edits
                    .pod_cinder_volume_ids
                    .insert(old.to_string(), new.to_string());
                step.changes.push(format!("cinder volume {old} -> {new}"));
            }
        }
    }
}
