//! `restore`: Cinder volumes from a checkpoint's backups, then what the pods need
//! (namespace, ConfigMaps, Secrets, ServiceAccounts), claims and volumes, and each pod's
//! top owner (or the pod itself) through the API server, losing no field; then a settle
//! watch: success only once the cluster has kept what was made.
//!
//! In four parts, apart from each other:
//! * [`plan`]: a pure planner decides the units (top owners, bare pods), every name, edit
//!   and conflict outcome from the checkpoint, the request and what the target holds;
//! * [`execute`]: the executor carries the plan out, step by step, into a target, keeping
//!   the restore record (`in_progress` → `success` | `fail`, every outcome, the old → new
//!   id map) in a journal as it goes;
//! * [`target`]: where the objects go: the cluster ([`ClusterTarget`]), an export folder
//!   ([`ExportTarget`]) or a dry run kept in memory ([`DryRunTarget`]);
//! * [`journal`]: where the record is kept: the bank ([`BankJournal`]) or nowhere
//!   ([`NoJournal`], for an export or a dry run).
//!
//! Objects are written from their stored bytes, edited at the protobuf wire level only
//! where something must change ([`crate::codec::edit_object`]), and sent as protobuf
//! (JSON-stored objects as JSON), so fields newer than podbank's compiled schema survive.
//! Running the same restore again resumes it: volumes and objects already made are
//! reused, never duplicated.

mod error;
pub mod execute;
pub mod journal;
pub mod plan;
mod request;
pub mod target;

pub use error::RestoreError;
pub use journal::{BankJournal, NoJournal, RestoreJournal};
pub use plan::{ANNOTATION_CHECKPOINT, ANNOTATION_DESCRIPTION, ANNOTATION_RESTORE};
pub use request::{
    ConflictPolicy, NamespaceMap, NamespaceMapError, RestoreMode, RestoreRequest,
    UnknownConflictPolicy, DEFAULT_CONCURRENCY, DEFAULT_SETTLE, DEFAULT_VOLUME_CONCURRENCY,
};
pub use target::{ClusterTarget, DryRunTarget, ExportTarget, RestoreTarget};

use super::progress::{Progress, Stage};
use super::ProtectionError;
use crate::bank::Bank;
use crate::model::{
    CheckpointStatus, Outcome, RestoreId, RestoreRecord, RestoreStatus, RestoredResource,
};

/// Restores pods of a checkpoint into `target`, keeping the record in `journal`: see the
/// module doc.
///
/// Returns the restore record (for an export, with [`NoJournal`]: a record that was not
/// saved, describing the plan). `Err` only when nothing could start (checkpoint missing, bad
/// request, the target unreachable) or the record could not be kept.
///
/// Runs in a record cache scope ([`crate::bank::backend::scoped`]; the caller's, if it
/// runs in one): the manifest is read once however many times the command asks for it.
pub async fn restore(
    bank: &Bank,
    target: &dyn RestoreTarget,
    journal: &dyn RestoreJournal,
    req: &RestoreRequest,
    progress: &dyn Progress,
) -> Result<RestoreRecord, ProtectionError> {
    crate::bank::backend::scoped(restore_scoped(bank, target, journal, req, progress)).await
}

/// [`restore`], in its cache scope.
async fn restore_scoped(
    bank: &Bank,
    target: &dyn RestoreTarget,
    journal: &dyn RestoreJournal,
    req: &RestoreRequest,
    progress: &dyn Progress,
) -> Result<RestoreRecord, ProtectionError> {
    let requests = bank.requests();
    let checkpoint = bank.checkpoint(&req.checkpoint_id).await?;
    if !matches!(
        checkpoint.status,
        CheckpointStatus::Available | CheckpointStatus::Error
    ) {
        return Err(RestoreError::NotRestorable {
            checkpoint: checkpoint.id.clone(),
            status: checkpoint.status,
        }
        .into());
    }
    let resources = bank.resources(&checkpoint).await?;
    // Resume an unfinished run of the same restore, or start a new one.
    let print = req.fingerprint();
    let record = match journal.resume(&print).await? {
        Some(record) => record,
        None => RestoreRecord {
            restore_name: req.parameters.restore_name.clone().unwrap_or_default(),
            restore_description: req
                .parameters
                .restore_description
                .clone()
                .unwrap_or_default(),
            parameters_json: print,
            project_id: req.project_id.clone(),
            ..RestoreRecord::new(
                req.restore_id.clone().unwrap_or_else(RestoreId::generate),
                checkpoint.id.clone(),
                chrono::Utc::now(),
            )
        },
    };
    let records = plan::Records::new(&resources, &checkpoint.volumes);
    let inputs = plan::Inputs {
        checkpoint: &checkpoint,
        resources: &resources,
        records: &records,
        request: req,
        restore: &record.id,
        dry_run: target.dry_run(),
    };
    let pods = inputs.pods()?;
    let units = plan::units(&inputs, &pods);
    let mut exists = target
        .existing_all(inputs.candidates(&units).into_iter().collect(), &record.id)
        .await?;
    // What the pods reference and someone else has: compared with the checkpoint's.
    let foreign: Vec<_> = inputs
        .stored_referenced(&units)
        .into_iter()
        .filter(|(key, _)| exists.get(key) == Some(&plan::Existing::Foreign))
        .collect();
    let read = bank
        .read_found(foreign.iter().map(|(_, id)| *id), checkpoint.id.as_str())
        .await;
    for (key, id) in foreign {
        let stored = match read.get(&id) {
            Some(stored) => stored.clone(),
            // Failed in the batch: read alone, for its own error.
            None => bank.read_object(&id, checkpoint.id.as_str()).await?,
        };
        if target.differs(key.0, &key.1, stored.to_vec()).await? {
            exists.insert(key, plan::Existing::Different);
        }
    }
    drop(read);
    let plans = plan::plan(&inputs, &units, &exists);
    let (volumes, creates) = plans.counts();
    progress.start(Stage::Volumes, Some(volumes));
    // A dry run plans the objects; it creates none.
    let creates_stage = if target.dry_run() {
        Stage::Planned
    } else {
        Stage::Creates
    };
    progress.start(creates_stage, Some(creates));
    // The plan owns all the execution needs: what planning read (every resource record of
    // the checkpoint, their index, the lookups) goes before the objects are read and made,
    // so that it is not held at the same time as the prefetched objects and the record.
    drop(units);
    drop(pods);
    drop(exists);
    drop(records);
    drop(resources);
    let mut record = record;
    record.status = RestoreStatus::InProgress;
    record.reason.clear();
    let started = std::time::Instant::now();
    let throttled = target.throttling();
    execute::save_whole(journal, &mut record).await?;
    let executor = execute::Executor {
        bank,
        checkpoint: &checkpoint,
        target,
        journal,
        concurrency: req.concurrency().min(target.concurrency()),
        volume_concurrency: req.volume_concurrency().min(target.concurrency()),
        state: tokio::sync::Mutex::new(execute::State::new(record)),
        progress,
        creates: creates_stage,
    };
    let mut failures = executor.run(plans).await?;
    progress.finish(Stage::Volumes);
    progress.finish(creates_stage);
    let execute::State {
        mut record, made, ..
    } = executor.state.into_inner();
    if !req.settle().is_zero() && !made.is_empty() {
        match target.settle(&made, req.settle()).await {
            Ok(lost) => {
                for (m, error) in lost {
                    record.record(RestoredResource {
                        kind: m.kind.resource_type(),
                        source: m.source,
                        target: m.target.to_string(),
                        new_id: m.uid,
                        outcome: Outcome::Error,
                        reason: error.to_string(),
                    });
                    failures.push(error.to_string().into());
                }
            }
            Err(e) => failures.push(format!("the settle watch failed: {e}").into()),
        }
    }
    target.finish(&checkpoint, &record).await?;
    record.finished = Some(chrono::Utc::now());
    if failures.is_empty() {
        record.status = RestoreStatus::Success;
    } else {
        record.status = RestoreStatus::Fail;
        for f in &failures {
            tracing::info!(restore = %record.id, "{}", f.message);
        }
        record.reason = execute::summarise(&failures);
    }
    let now = target.throttling();
    record.stats.throttled = now.answers.saturating_sub(throttled.answers);
    record.stats.throttle_wait = now.waited.saturating_sub(throttled.waited);
    record.stats.run_time = started.elapsed();
    // Up to here: the final record write is not in it.
    let read = bank.requests().since(&requests);
    record.stats.bank_gets = read.gets;
    record.stats.bank_range_gets = read.range_gets;
    record.stats.bank_pack_gets = read.pack_gets;
    record.stats.bank_bytes_read = read.bytes_read;
    // The compaction: the record whole, its journal batches gone.
    execute::save_whole(journal, &mut record).await?;
    Ok(record)
}
