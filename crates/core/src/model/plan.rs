//! A protection plan kept in the bank (Karbor's plan): the resources to protect, the
//! parameters to protect them with, and the project it belongs to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A stored plan's id: a UUID, as Karbor's plans have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlanId(uuid::Uuid);

impl PlanId {
    /// A new, random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The id that stands for the configured plan `name`: the same on every agent and
    /// every run.
    pub fn of_configured(name: &str) -> Self {
        Self(uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("podbank:plan:{name}").as_bytes(),
        ))
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A plan id that is no UUID.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid plan id {0:?}: a plan id is a UUID")]
pub struct InvalidPlanId(pub String);

impl FromStr for PlanId {
    type Err = InvalidPlanId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Hyphenated only: the form the id is written in (a name under `plans/`).
        match uuid::Uuid::try_parse(s) {
            Ok(u) if u.hyphenated().to_string() == s.to_ascii_lowercase() => Ok(Self(u)),
            _ => Err(InvalidPlanId(s.to_string())),
        }
    }
}

impl Serialize for PlanId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PlanId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Whether a plan runs on its own (Karbor: a scheduled operation started it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// Created, not scheduled; only a suspended plan may be changed.
    #[default]
    Suspended,
    /// Scheduled.
    Started,
}

impl PlanStatus {
    /// Karbor's word for it.
    pub fn label(self) -> &'static str {
        match self {
            PlanStatus::Suspended => "suspended",
            PlanStatus::Started => "started",
        }
    }

    /// The status a label names.
    pub fn from_label(s: &str) -> Option<Self> {
        match s {
            "suspended" => Some(PlanStatus::Suspended),
            "started" => Some(PlanStatus::Started),
            _ => None,
        }
    }
}

/// One resource of a plan, as Karbor names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanResource {
    /// The instance id (a pod's uid, a volume's id).
    pub id: String,
    /// Its protectable type (`OS::Kubernetes::Pod`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its name (`namespace/name` for a pod).
    pub name: String,
    /// What the client attached to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_info: Option<serde_json::Value>,
}

/// A plan kept in the bank.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPlan {
    /// Id.
    pub id: PlanId,
    /// The project that owns it; only that project (and an admin) sees it.
    pub project_id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The provider it protects with.
    pub provider_id: String,
    /// Suspended or started.
    pub status: PlanStatus,
    /// What it protects.
    pub resources: Vec<PlanResource>,
    /// Per resource type (or `type#id`), the protect parameters.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// When it was made.
    pub created: chrono::DateTime<chrono::Utc>,
}
