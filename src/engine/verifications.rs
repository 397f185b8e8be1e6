//! Karbor's verifications: a full re-read and re-hash of one checkpoint (the bank's
//! verify of that checkpoint), its result kept per resource in the bank, so that every
//! agent replica sees it.
//!
//! A resource is keyed as a checkpoint's `resources_status` keys it (`<Karbor type>#<uid>`)
//! and is `available` when its object reads back and hashes right, `error` (with the
//! problem as its reason) when not, `skipped` when the checkpoint holds no object of it.
//! The verification is `success` when nothing is wrong, `failed` when something is (a
//! problem no one resource owns goes to its `reason`), `error` when it could not run.

use chrono::Utc;
use serde_json::Value;

use super::operation_logs::{self, OperationLog, OperationType};
use super::{CheckpointView, Engine};
use crate::bank::VerifyReport;
pub use crate::model::{BadVerification, Verification, VerificationStatus};

/// Takes in what verify found of `checkpoint` (`Err`: why its records cannot be
/// read; no resource is judged then, and the verification fails).
pub fn judge(
    v: &mut Verification,
    checkpoint: Result<&CheckpointView, String>,
    report: &VerifyReport,
) {
    let mut owned = vec![false; report.problems.len()];
    let resources = match &checkpoint {
        Ok(cp) => cp.resources.as_slice(),
        Err(_) => &[],
    };
    for r in resources {
        let key = format!("{}#{}", r.kind.karbor(), r.uid);
        let Some(oid) = r.object_id else {
            v.resources_status.insert(key, Value::from("skipped"));
            continue;
        };
        let hex = oid.to_string();
        let found: Vec<String> = report
            .problems
            .iter()
            .enumerate()
            .filter(|(_, p)| p.subject.contains(&hex) || p.reason.contains(&hex))
            .map(|(i, p)| {
                owned[i] = true;
                format!("{}: {}", p.subject, p.reason)
            })
            .collect();
        if found.is_empty() {
            v.resources_status.insert(key, Value::from("available"));
        } else {
            v.resources_status.insert(key.clone(), Value::from("error"));
            v.resources_reason
                .insert(key, Value::from(found.join("; ")));
        }
    }
    let mut rest: Vec<String> = report
        .problems
        .iter()
        .zip(&owned)
        .filter(|(_, o)| !**o)
        .map(|(p, _)| format!("{}: {}", p.subject, p.reason))
        .collect();
    if let Err(e) = &checkpoint {
        rest.insert(0, format!("the checkpoint's records cannot be read: {e}"));
    }
    v.reason = rest.join("; ");
    v.status = if report.is_clean() && checkpoint.is_ok() {
        VerificationStatus::Success
    } else {
        VerificationStatus::Failed
    };
    v.ended_at = Some(Utc::now());
}

/// Runs `v` (as stored, `verifying`): re-reads and re-hashes its checkpoint, stores the
/// result, and logs it as a `verify` operation. Returns the verification as it ended.
pub async fn run(engine: &dyn Engine, mut v: Verification) -> Verification {
    let mut log = OperationLog::start(OperationType::Verify, &v.project_id);
    log.checkpoint_id = Some(v.checkpoint_id.clone());
    log.verification_id = Some(v.id.clone());
    operation_logs::save(engine, &log).await;
    // A checkpoint whose own records are damaged is still verified: the report names
    // the damage, though no resource can be.
    let checkpoint = engine.checkpoint(&v.checkpoint_id).await;
    match (engine.verify(Some(&v.checkpoint_id)).await, checkpoint) {
        (Ok(report), Ok(cp)) => judge(&mut v, Ok(&cp), &report),
        (Ok(report), Err(e)) if !report.is_clean() => judge(&mut v, Err(e.to_string()), &report),
        (Ok(_), Err(e)) | (Err(e), _) => v.fail(e.to_string()),
    }
    if let Err(e) = engine.save_verification(&v).await {
        tracing::warn!("verification {} not written: {e}", v.id);
    }
    let error = match v.status {
        VerificationStatus::Success | VerificationStatus::Verifying => None,
        _ => {
            let mut why: Vec<String> = v
                .resources_reason
                .iter()
                .map(|(k, r)| format!("{k}: {}", r.as_str().unwrap_or_default()))
                .collect();
            if !v.reason.is_empty() {
                why.push(v.reason.clone());
            }
            Some(why.join("; "))
        }
    };
    log.end(error);
    operation_logs::save(engine, &log).await;
    v
}
