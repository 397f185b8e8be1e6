//! A scheduled operation kept in the bank (Karbor's scheduled operation): what runs when a
//! trigger fires. Karbor's two types exist: `protect` (a checkpoint of a plan) and
//! `retention_protect` (the same, then the plan's older checkpoints pruned to
//! `max_backups` and `retention_duration` days).
//!
//! The trigger and plan are named by id only; whether they exist is checked above the
//! model, where the bank is.

use std::fmt;
use std::str::FromStr;

use super::TriggerId;

/// A scheduled operation's id: a UUID, as Karbor's have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScheduledOperationId(uuid::Uuid);

impl ScheduledOperationId {
    /// A new, random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for ScheduledOperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A scheduled operation id that is no UUID.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid scheduled operation id {0:?}: a scheduled operation id is a UUID")]
pub struct InvalidScheduledOperationId(pub String);

impl FromStr for ScheduledOperationId {
    type Err = InvalidScheduledOperationId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Hyphenated only: the form the id is written in (a name under
        // `scheduled_operations/`).
        match uuid::Uuid::try_parse(s) {
            Ok(u) if u.hyphenated().to_string() == s.to_ascii_lowercase() => Ok(Self(u)),
            _ => Err(InvalidScheduledOperationId(s.to_string())),
        }
    }
}

/// What a scheduled operation does (Karbor's `operation_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationType {
    /// A checkpoint of the plan.
    Protect,
    /// A checkpoint of the plan, then the plan's retention.
    RetentionProtect,
}

impl OperationType {
    /// Karbor's word for it.
    pub fn label(self) -> &'static str {
        match self {
            OperationType::Protect => "protect",
            OperationType::RetentionProtect => "retention_protect",
        }
    }

    /// The type a label names.
    pub fn from_label(s: &str) -> Option<Self> {
        match s {
            "protect" => Some(OperationType::Protect),
            "retention_protect" => Some(OperationType::RetentionProtect),
            _ => None,
        }
    }
}

/// A scheduled operation kept in the bank.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredOperation {
    /// Id.
    pub id: ScheduledOperationId,
    /// The project that owns it; only that project sees it.
    pub project_id: String,
    /// Its name.
    pub name: String,
    /// Its description (empty: none).
    pub description: String,
    /// What it does.
    pub operation_type: OperationType,
    /// The trigger that says when.
    pub trigger_id: TriggerId,
    /// The plan protected: its Karbor id (a UUID, of a plan kept in the bank or of one
    /// from the agent's config file).
    pub plan_id: String,
    /// The provider named (podbank's).
    pub provider_id: String,
    /// `retention_protect`: keep at most this many of the plan's newest checkpoints.
    pub max_backups: Option<u32>,
    /// `retention_protect`: delete the plan's checkpoints older than this many days.
    pub retention_days: Option<u32>,
    /// Whether it runs (Karbor's `enabled`; always true here: Karbor's API never
    /// changed it).
    pub enabled: bool,
    /// When it was made.
    pub created: chrono::DateTime<chrono::Utc>,
}
