//! A dry run as a restore target ([`DryRunTarget`]): nothing is made and the target is not
//! looked at (taken as empty); every object the restore would create is planned, in the
//! order it would be made, with its edits, and kept in memory. The export
//! ([`super::ExportTarget`]) is this plan written into a folder.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use serde::Serialize;

use super::{Created, NewVolume, RestoreTarget};
use crate::codec::ResourceKind;
use crate::model::{
    BackupId, Checkpoint, ObjectRef, Outcome, ResourceType, RestoreId, RestoreRecord, VolumeId,
};
use crate::protection::restore::error::RestoreError;
use crate::protection::restore::plan::{Existing, ObjectStep};

/// One object of a dry run, as an export's `plan.yaml` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedObject {
    /// Its kind (`Pod`, `Deployment`, ...).
    pub kind: &'static str,
    /// Its namespace in the target (empty for a cluster-scoped object).
    pub namespace: String,
    /// Its name in the target.
    pub name: String,
    /// What it was (the record's source).
    pub source: String,
    /// The file an export writes it to: `NN-<resource>-<ns>_<name>.pb|json`, numbered in
    /// the order the restore would make the objects.
    pub file: String,
    /// `json` or `protobuf`.
    pub encoding: &'static str,
    /// How long its edited bytes are.
    pub bytes: usize,
    /// What changes, in words.
    pub changes: Vec<String>,
}

/// A dry run that keeps its plan in memory: see the module doc.
#[derive(Debug, Default)]
pub struct DryRunTarget {
    planned: Mutex<Vec<PlannedObject>>,
}

impl DryRunTarget {
    /// A dry run with nothing planned yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// What was planned so far, in order.
    pub fn planned(&self) -> Vec<PlannedObject> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<PlannedObject>> {
        self.planned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Plans the object of `step` from `body`; `write` is handed its file name and bytes
    /// first (an export writes them there); what `write` refuses is not planned.
    pub(super) fn plan_with(
        &self,
        step: &ObjectStep,
        body: &[u8],
        write: impl FnOnce(&str, &[u8]) -> Result<(), RestoreError>,
    ) -> Result<Created, RestoreError> {
        let json = body.first() == Some(&b'{');
        let mut planned = self.lock();
        let file = format!(
            "{:02}-{}-{}.{}",
            planned.len() + 1,
            step.kind.resource(),
            step.target.to_string().replace('/', "_"),
            if json { "json" } else { "pb" }
        );
        write(&file, body)?;
        planned.push(PlannedObject {
            kind: step.kind.kind(),
            namespace: step.target.namespace().to_string(),
            name: step.target.name().to_string(),
            source: step.source.to_string(),
            file,
            encoding: if json { "json" } else { "protobuf" },
            bytes: body.len(),
            changes: step.changes.clone(),
        });
        Ok(Created {
            uid: String::new(),
            outcome: Outcome::Planned,
        })
    }

    /// Writes the plan as `plan.yaml` says it to `out`: the objects planned, the volumes, and
    /// what is not created by podbank (and why), from the `record` of the dry run of
    /// `checkpoint`. Streamed: at 20 000 pods the text is tens of MB, never held whole.
    pub fn write_plan_yaml(
        &self,
        checkpoint: &Checkpoint,
        record: &RestoreRecord,
        out: impl std::io::Write,
    ) -> Result<(), serde_yaml::Error> {
        #[derive(Serialize)]
        struct Plan<'a> {
            checkpoint: &'a str,
            restore_name: &'a str,
            restore_description: &'a str,
            note: &'static str,
            objects: &'a [PlannedObject],
            volumes: Vec<BTreeMap<&'static str, String>>,
            /// What is not created by podbank, and why: pods left to their controllers,
            /// skipped objects.
            not_created: Vec<BTreeMap<&'static str, String>>,
        }
        let not_created = record
            .resources
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::ByController | Outcome::Skipped))
            .filter(|r| r.kind != ResourceType::CinderVolume)
            .map(|r| {
                BTreeMap::from([
                    ("type", r.kind.to_string()),
                    ("source", r.source.to_string()),
                    ("status", r.outcome.label().to_string()),
                    ("reason", r.reason.clone()),
                ])
            })
            .collect();
        let volumes = record
            .resources
            .iter()
            .filter(|r| r.kind == ResourceType::CinderVolume)
            .map(|r| {
                BTreeMap::from([
                    ("volume", r.source.to_string()),
                    ("status", r.outcome.label().to_string()),
                    (
                        "action",
                        if r.reason.is_empty() {
                            r.target.clone()
                        } else {
                            r.reason.clone()
                        },
                    ),
                ])
            })
            .collect();
        let planned = self.lock();
        let plan = Plan {
            checkpoint: checkpoint.id.as_str(),
            restore_name: &record.restore_name,
            restore_description: &record.restore_description,
            note: "dry run: nothing was restored; volume ids read restored-from-backup-<id> until a real restore makes the volumes",
            objects: &planned,
            volumes,
            not_created,
        };
        serde_yaml::to_writer(out, &plan)
    }
}

#[async_trait]
impl RestoreTarget for DryRunTarget {
    /// One at a time: the objects are numbered in the order a restore makes them.
    fn concurrency(&self) -> usize {
        1
    }

    fn dry_run(&self) -> bool {
        true
    }

    async fn existing(
        &self,
        _kind: ResourceKind,
        _name: &ObjectRef,
        _restore: &RestoreId,
    ) -> Result<Existing, RestoreError> {
        Ok(Existing::Absent)
    }

    async fn start_volume(
        &self,
        backup: &BackupId,
        _name: &str,
    ) -> Result<NewVolume, RestoreError> {
        Ok(NewVolume {
            id: VolumeId::new(format!("restored-from-backup-{backup}")),
            outcome: Outcome::Planned,
            note: format!("new volume from backup {backup}"),
        })
    }

    async fn wait_volume(
        &self,
        _volume: &VolumeId,
        _backup: &BackupId,
    ) -> Result<(), RestoreError> {
        Ok(())
    }

    async fn create(&self, step: &ObjectStep, body: Vec<u8>) -> Result<Created, RestoreError> {
        self.plan_with(step, &body, |_, _| Ok(()))
    }
}
