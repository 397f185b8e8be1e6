//! What a checkpoint records of the exec hooks run around its snapshot burst (Velero's
//! `pre.hook.backup.velero.io/*` and `post.hook.backup.velero.io/*` pod annotations).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ObjectRef;

/// How much of each of a hook's stdout and stderr a checkpoint keeps: enough to say why a
/// freeze failed, small enough that a checkpoint of many pods stays a small record.
pub const HOOK_OUTPUT_KEPT: usize = 4 * 1024;

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookPhase {
    /// Before the snapshot burst (freeze, flush).
    Pre,
    /// After it (thaw).
    Post,
}

impl HookPhase {
    /// `pre` or `post`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookPhase::Pre => "pre",
            HookPhase::Post => "post",
        }
    }

    /// The phase named `text` (`pre`, `post`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pre" => Some(HookPhase::Pre),
            "post" => Some(HookPhase::Post),
            _ => None,
        }
    }
}

impl fmt::Display for HookPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a failed hook does to the checkpoint (Velero's `on-error`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HookOnError {
    /// The failure is recorded and protect goes on; the checkpoint can be `available`.
    Continue,
    /// The checkpoint is `error` (Velero's default).
    #[default]
    Fail,
}

impl HookOnError {
    /// `Continue` or `Fail`, as the annotation spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            HookOnError::Continue => "Continue",
            HookOnError::Fail => "Fail",
        }
    }

    /// The value an annotation gives (`Continue`, `Fail`; exactly, as Velero reads it).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Continue" => Some(HookOnError::Continue),
            "Fail" => Some(HookOnError::Fail),
            _ => None,
        }
    }
}

impl fmt::Display for HookOnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a hook ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookOutcome {
    /// It exited 0.
    #[default]
    Succeeded,
    /// It exited non-zero, could not be started, or the API server refused the exec.
    Failed,
    /// It was still running at its timeout: the wait was cut off (the command may go on
    /// running in the container).
    TimedOut,
}

impl HookOutcome {
    /// `succeeded`, `failed`, `timed-out`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookOutcome::Succeeded => "succeeded",
            HookOutcome::Failed => "failed",
            HookOutcome::TimedOut => "timed-out",
        }
    }

    /// The outcome named `text`; an unknown name (a newer writer) reads as failed.
    pub fn parse(text: &str) -> Self {
        match text {
            "succeeded" => HookOutcome::Succeeded,
            "timed-out" => HookOutcome::TimedOut,
            _ => HookOutcome::Failed,
        }
    }
}

impl fmt::Display for HookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One hook as it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRecord {
    /// The pod.
    pub pod: ObjectRef,
    /// The container it ran in.
    pub container: String,
    /// The command (not run through a shell).
    pub command: Vec<String>,
    /// Before or after the snapshot burst.
    pub phase: HookPhase,
    /// What its failure does.
    pub on_error: HookOnError,
    /// How it ended.
    pub outcome: HookOutcome,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Why it failed (empty when it succeeded).
    pub reason: String,
    /// When the exec was asked for.
    pub started: DateTime<Utc>,
    /// From the request to the exit status (or the timeout).
    pub duration_ms: u64,
    /// Its stdout, the first [`HOOK_OUTPUT_KEPT`] bytes (invalid UTF-8 replaced).
    pub stdout: String,
    /// Its stderr, the first [`HOOK_OUTPUT_KEPT`] bytes (invalid UTF-8 replaced).
    pub stderr: String,
    /// Whether stdout or stderr was longer than what is kept.
    pub output_truncated: bool,
}

impl HookRecord {
    /// When it ended (its start plus its duration).
    pub fn finished(&self) -> DateTime<Utc> {
        self.started
            + chrono::Duration::milliseconds(i64::try_from(self.duration_ms).unwrap_or(i64::MAX))
    }
}
