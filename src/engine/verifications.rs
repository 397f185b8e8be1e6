//! Karbor's verifications: a full re-read and re-hash of one checkpoint (the bank's
//! verify of that checkpoint), its result kept per resource in the bank, so that every
//! agent replica sees it.
//!
//! A resource is keyed as a checkpoint's `resources_status` keys it (`<Karbor type>#<uid>`)
//! and is `available` when its object reads back and hashes right, `error` (with the
//! problem as its reason) when not, `skipped` when the checkpoint holds no object of it.
//! The verification is `success` when nothing is wrong, `failed` when something is (a
//! problem no one resource owns goes to its `reason`), `error` when it could not run.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use super::operation_logs::{self, OperationLog, OperationType};
use super::{CheckpointView, Engine};
use crate::bank::format::pb;
use crate::bank::VerifyReport;
use crate::model::CheckpointId;

/// Where a verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationStatus {
    /// Running.
    Verifying,
    /// Everything read back and hashed right.
    Success,
    /// Something is damaged or missing.
    Failed,
    /// It could not run.
    Error,
}

impl VerificationStatus {
    /// Karbor's label.
    pub fn label(self) -> &'static str {
        match self {
            VerificationStatus::Verifying => "verifying",
            VerificationStatus::Success => "success",
            VerificationStatus::Failed => "failed",
            VerificationStatus::Error => "error",
        }
    }

    /// The status a label names.
    pub fn from_label(label: &str) -> Option<VerificationStatus> {
        [
            VerificationStatus::Verifying,
            VerificationStatus::Success,
            VerificationStatus::Failed,
            VerificationStatus::Error,
        ]
        .into_iter()
        .find(|s| s.label() == label)
    }
}

/// One verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Its UUID.
    pub id: String,
    /// The project that asked.
    pub project_id: String,
    /// The checkpoint verified.
    pub checkpoint_id: CheckpointId,
    /// The parameters given (kept, not used: the whole checkpoint is verified).
    pub parameters: Map<String, Value>,
    /// Where it stands.
    pub status: VerificationStatus,
    /// Per resource, `available`, `error` or `skipped`.
    pub resources_status: Map<String, Value>,
    /// Per resource in error, why.
    pub resources_reason: Map<String, Value>,
    /// What went wrong beyond single resources (or why it could not run).
    pub reason: String,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
}

impl Verification {
    /// A new verification of `checkpoint_id`, `verifying`.
    pub fn new(
        project_id: &str,
        checkpoint_id: CheckpointId,
        parameters: Map<String, Value>,
    ) -> Verification {
        Verification {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: project_id.to_string(),
            checkpoint_id,
            parameters,
            status: VerificationStatus::Verifying,
            resources_status: Map::new(),
            resources_reason: Map::new(),
            reason: String::new(),
            created_at: Utc::now(),
            ended_at: None,
        }
    }

    /// Takes in what verify found of `checkpoint` (`Err`: why its records cannot be
    /// read; no resource is judged then, and the verification fails).
    pub fn judge(&mut self, checkpoint: Result<&CheckpointView, String>, report: &VerifyReport) {
        let mut owned = vec![false; report.problems.len()];
        let resources = match &checkpoint {
            Ok(cp) => cp.resources.as_slice(),
            Err(_) => &[],
        };
        for r in resources {
            let key = format!("{}#{}", r.kind.karbor(), r.uid);
            let Some(oid) = r.object_id else {
                self.resources_status.insert(key, Value::from("skipped"));
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
                self.resources_status.insert(key, Value::from("available"));
            } else {
                self.resources_status
                    .insert(key.clone(), Value::from("error"));
                self.resources_reason
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
        self.reason = rest.join("; ");
        self.status = if report.is_clean() && checkpoint.is_ok() {
            VerificationStatus::Success
        } else {
            VerificationStatus::Failed
        };
        self.ended_at = Some(Utc::now());
    }

    /// Marks it `error`: it could not run.
    pub fn fail(&mut self, why: String) {
        self.status = VerificationStatus::Error;
        self.reason = why;
        self.ended_at = Some(Utc::now());
    }
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
        (Ok(report), Ok(cp)) => v.judge(Ok(&cp), &report),
        (Ok(report), Err(e)) if !report.is_clean() => v.judge(Err(e.to_string()), &report),
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

/// A stored verification that does not read back.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("verification {id}: {why}")]
pub struct BadVerification {
    /// Its id.
    pub id: String,
    /// What is wrong.
    pub why: String,
}

fn ms(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

fn time_of(ms: u64) -> Option<DateTime<Utc>> {
    i64::try_from(ms)
        .ok()
        .and_then(|m| Utc.timestamp_millis_opt(m).single())
}

fn object_of(json: &str) -> Option<Map<String, Value>> {
    if json.is_empty() {
        return Some(Map::new());
    }
    match serde_json::from_str(json) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

impl From<&Verification> for pb::Verification {
    fn from(v: &Verification) -> Self {
        pb::Verification {
            id: v.id.clone(),
            project_id: v.project_id.clone(),
            checkpoint_id: v.checkpoint_id.to_string(),
            parameters_json: Value::Object(v.parameters.clone()).to_string(),
            status: v.status.label().into(),
            resources_status_json: Value::Object(v.resources_status.clone()).to_string(),
            resources_reason_json: Value::Object(v.resources_reason.clone()).to_string(),
            reason: v.reason.clone(),
            created_unix_ms: ms(v.created_at),
            ended_unix_ms: v.ended_at.map(ms).unwrap_or(0),
        }
    }
}

impl TryFrom<pb::Verification> for Verification {
    type Error = BadVerification;
    fn try_from(v: pb::Verification) -> Result<Self, BadVerification> {
        let bad = |why: &str| BadVerification {
            id: v.id.clone(),
            why: why.to_string(),
        };
        let checkpoint_id = v
            .checkpoint_id
            .parse()
            .map_err(|_| bad("its checkpoint id does not parse"))?;
        let status =
            VerificationStatus::from_label(&v.status).ok_or_else(|| bad("unknown status"))?;
        let parameters = object_of(&v.parameters_json).ok_or_else(|| bad("parameters"))?;
        let resources_status =
            object_of(&v.resources_status_json).ok_or_else(|| bad("resources_status"))?;
        let resources_reason =
            object_of(&v.resources_reason_json).ok_or_else(|| bad("resources_reason"))?;
        let created_at = time_of(v.created_unix_ms).ok_or_else(|| bad("no creation time"))?;
        Ok(Verification {
            id: v.id,
            project_id: v.project_id,
            checkpoint_id,
            parameters,
            status,
            resources_status,
            resources_reason,
            reason: v.reason,
            created_at,
            ended_at: Some(v.ended_unix_ms).filter(|m| *m > 0).and_then(time_of),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verification_survives_its_record() {
        let mut params = Map::new();
        params.insert("a".into(), Value::from(1));
        let mut v = Verification::new("p", CheckpointId::generate(), params);
        v.resources_status
            .insert("OS::Kubernetes::Pod#u1".into(), Value::from("error"));
        v.resources_reason
            .insert("OS::Kubernetes::Pod#u1".into(), Value::from("bad hash"));
        v.fail("x".into());
        let back = Verification::try_from(pb::Verification::from(&v)).unwrap();
        assert_eq!(back.id, v.id);
        assert_eq!(back.checkpoint_id, v.checkpoint_id);
        assert_eq!(back.parameters, v.parameters);
        assert_eq!(back.status, VerificationStatus::Error);
        assert_eq!(back.resources_status, v.resources_status);
        assert_eq!(back.resources_reason, v.resources_reason);
        assert_eq!(back.reason, "x");
        let mut bad = pb::Verification::from(&v);
        bad.status = "maybe".into();
        assert!(Verification::try_from(bad).is_err());
    }
}
