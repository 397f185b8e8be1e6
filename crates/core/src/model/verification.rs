//! Karbor's verifications: a full re-read and re-hash of one checkpoint, its result kept
//! per resource. The engine runs them; the bank stores them.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

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

    /// Marks it `error`: it could not run.
    pub fn fail(&mut self, why: String) {
        self.status = VerificationStatus::Error;
        self.reason = why;
        self.ended_at = Some(Utc::now());
    }
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
