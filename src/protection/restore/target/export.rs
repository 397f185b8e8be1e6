//! An export folder as a restore target ([`ExportTarget`]): a dry run ([`DryRunTarget`])
//! that writes every object it would create into a folder
//! (`NN-<resource>-<ns>_<name>.pb|json`), and at the end `plan.yaml` listing them, their
//! order and their edits. Nothing is restored, and the target is taken as empty.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{Created, DryRunTarget, NewVolume, RestoreTarget};
use crate::codec::ResourceKind;
use crate::model::{BackupId, Checkpoint, ObjectRef, RestoreId, RestoreRecord, VolumeId};
use crate::protection::restore::error::RestoreError;
use crate::protection::restore::plan::{Existing, ObjectStep};

/// A dry run written into a folder: see the module doc.
pub struct ExportTarget {
    dir: PathBuf,
    plan: DryRunTarget,
}

impl ExportTarget {
    /// An export into `dir` (which must exist).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            plan: DryRunTarget::new(),
        }
    }

    fn write(&self, file: &str, data: &[u8]) -> Result<(), RestoreError> {
        let path = self.dir.join(file);
        std::fs::write(&path, data).map_err(|source| RestoreError::Export { path, source })
    }
}

/// Everything but the writing is the dry run's.
#[async_trait]
impl RestoreTarget for ExportTarget {
    fn concurrency(&self) -> usize {
        self.plan.concurrency()
    }

    fn dry_run(&self) -> bool {
        self.plan.dry_run()
    }

    async fn existing(
        &self,
        kind: ResourceKind,
        name: &ObjectRef,
        restore: &RestoreId,
    ) -> Result<Existing, RestoreError> {
        self.plan.existing(kind, name, restore).await
    }

    async fn start_volume(&self, backup: &BackupId, name: &str) -> Result<NewVolume, RestoreError> {
        self.plan.start_volume(backup, name).await
    }

    async fn wait_volume(&self, volume: &VolumeId, backup: &BackupId) -> Result<(), RestoreError> {
        self.plan.wait_volume(volume, backup).await
    }

    async fn create(&self, step: &ObjectStep, body: Vec<u8>) -> Result<Created, RestoreError> {
        self.plan
            .plan_with(step, &body, |file, data| self.write(file, data))
    }

    async fn finish(
        &self,
        checkpoint: &Checkpoint,
        record: &RestoreRecord,
    ) -> Result<(), RestoreError> {
        let path = self.dir.join("plan.yaml");
        let export = |source| RestoreError::Export {
            path: path.clone(),
            source,
        };
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(export)?);
        self.plan
            .write_plan_yaml(checkpoint, record, &mut out)
            .map_err(|e| export(std::io::Error::other(e)))?;
        std::io::Write::flush(&mut out).map_err(export)
    }
}
