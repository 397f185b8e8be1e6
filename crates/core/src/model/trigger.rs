//! A trigger kept in the bank (Karbor's trigger): when something is to run. Only Karbor's
//! `time` triggers exist: a pattern (an iCalendar RRULE or a crontab line), the time the
//! pattern starts and may end at, and the window a run may start late within.
//!
//! The pattern is kept as given; it is checked (and its times computed) above the model,
//! where the parsers are.

use std::fmt;
use std::str::FromStr;

/// A trigger's id: a UUID, as Karbor's triggers have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TriggerId(uuid::Uuid);

impl TriggerId {
    /// A new, random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for TriggerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A trigger id that is no UUID.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid trigger id {0:?}: a trigger id is a UUID")]
pub struct InvalidTriggerId(pub String);

impl FromStr for TriggerId {
    type Err = InvalidTriggerId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Hyphenated only: the form the id is written in (a name under `triggers/`).
        match uuid::Uuid::try_parse(s) {
            Ok(u) if u.hyphenated().to_string() == s.to_ascii_lowercase() => Ok(Self(u)),
            _ => Err(InvalidTriggerId(s.to_string())),
        }
    }
}

/// How a time trigger's pattern is written (Karbor's `format` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// An iCalendar VEVENT with an RRULE (`BEGIN:VEVENT\nRRULE:FREQ=HOURLY;INTERVAL=1;\nEND:VEVENT`).
    Calendar,
    /// A crontab line (`0 2 * * *`).
    Crontab,
}

impl TimeFormat {
    /// Karbor's word for it.
    pub fn label(self) -> &'static str {
        match self {
            TimeFormat::Calendar => "calendar",
            TimeFormat::Crontab => "crontab",
        }
    }

    /// The format a label names.
    pub fn from_label(s: &str) -> Option<Self> {
        match s {
            "calendar" => Some(TimeFormat::Calendar),
            "crontab" => Some(TimeFormat::Crontab),
            _ => None,
        }
    }
}

/// The type of a trigger (Karbor's `type`); Karbor only ever had `time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TriggerType {
    /// Fires at the times of a pattern.
    #[default]
    Time,
}

impl TriggerType {
    /// Karbor's word for it.
    pub fn label(self) -> &'static str {
        match self {
            TriggerType::Time => "time",
        }
    }

    /// The type a label names.
    pub fn from_label(s: &str) -> Option<Self> {
        match s {
            "time" => Some(TriggerType::Time),
            _ => None,
        }
    }
}

/// A trigger kept in the bank.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrigger {
    /// Id.
    pub id: TriggerId,
    /// The project that owns it; only that project sees it.
    pub project_id: String,
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: TriggerType,
    /// How its pattern is written.
    pub format: TimeFormat,
    /// The pattern, as given.
    pub pattern: String,
    /// No time before this one fires (UTC, whole seconds).
    pub start_time: chrono::DateTime<chrono::Utc>,
    /// No time after this one fires, if set.
    pub end_time: Option<chrono::DateTime<chrono::Utc>>,
    /// How late, in seconds, a run may still start after its time.
    pub window_seconds: u32,
    /// When it was made.
    pub created: chrono::DateTime<chrono::Utc>,
}
