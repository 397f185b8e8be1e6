//! Application-consistent volumes: exec hooks around the snapshot burst, declared with the
//! pod annotations Velero users already write.
//!
//! For each phase (`pre`, `post`) a pod may declare one hook:
//! * `<phase>.hook.backup.velero.io/command`: a JSON array (`["fsfreeze", "-f", "/data"]`)
//!   or a single command string (one executable, no arguments); without it the phase has no
//!   hook, and the phase's other annotations are ignored (as Velero does);
//! * `<phase>.hook.backup.velero.io/container`: the container (default: the pod's first);
//! * `<phase>.hook.backup.velero.io/on-error`: `Continue` or `Fail` (default `Fail`);
//! * `<phase>.hook.backup.velero.io/timeout`: a Go duration (`30s`, `1m`, `1m30s`, `500ms`;
//!   default `30s`).
//!
//! The same settings can be given per plan, in the agent's config file (a plan's `hooks:`, a
//! [`PlanHook`] each), for pods whose annotations the operator does not own. They are read
//! by the same functions as the annotations, so they mean exactly the same; a pod's own
//! annotation for a phase wins over the plan's for that phase ([`PlanHooks::hooks_of`]).
//!
//! [`PodHooks::of`] reads them (an annotation that does not parse is a [`HookError`] naming
//! the pod and the annotation, raised before anything is taken); [`run_phase`] runs one
//! phase's hooks through the API server's exec, a bounded number at a time, and returns what
//! each did as [`HookRecord`]s. Protect decides the order (pre, burst, post) and what a
//! failure does to the checkpoint ([`problems`]).

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::apiserver::{ApiServer, ExecExit, ExecOutput};
use crate::model::{HookOnError, HookOutcome, HookPhase, HookRecord, ObjectRef, HOOK_OUTPUT_KEPT};
use crate::resources::{LabelSelector, PodInfo};

/// How long a hook may run when its pod does not say (Velero's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many hooks of one phase run at once: enough that a checkpoint of many pods freezes
/// them close together, few enough not to flood the API server and the kubelets.
pub const CONCURRENCY: usize = 8;

/// Where hooks are run.
#[derive(Clone, Copy)]
pub enum HookExec<'a> {
    /// Through this API server's exec.
    Api(&'a ApiServer),
    /// Nowhere: there is no API server (protect reads etcd only), for this reason.
    Unavailable(&'a str),
}

impl std::fmt::Debug for HookExec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookExec::Api(_) => f.write_str("HookExec::Api"),
            HookExec::Unavailable(why) => write!(f, "HookExec::Unavailable({why:?})"),
        }
    }
}

/// The hooks of a checkpoint's pods and where they run: what brackets the snapshot burst.
#[derive(Clone, Copy)]
pub struct Bracket<'a> {
    /// The API server that runs them.
    pub api: &'a ApiServer,
    /// The pods that declare hooks, in the order read.
    pub pods: &'a [PodHooks],
}

/// One hook as its pod declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// The container to run it in.
    pub container: String,
    /// The command (not run through a shell).
    pub command: Vec<String>,
    /// What its failure does.
    pub on_error: HookOnError,
    /// How long it may take.
    pub timeout: Duration,
}

/// The hooks one pod declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodHooks {
    /// The pod.
    pub pod: ObjectRef,
    /// Run before the snapshot burst.
    pub pre: Option<HookSpec>,
    /// Run after it.
    pub post: Option<HookSpec>,
}

/// A hook setting (a pod's annotation, or a plan's `hooks:` key) that does not declare a
/// hook podbank can run in a pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pod {pod}: {setting}: {problem}")]
pub struct HookError {
    /// The pod.
    pub pod: ObjectRef,
    /// Where the value is written: `annotation <full name>`, or `plan <name>:
    /// hooks[<i>].<phase>.<key>`.
    pub setting: String,
    /// What is wrong with its value.
    pub problem: String,
}

/// A plan's `hooks:` entry that is wrong whatever pod it meets (found at config load, or
/// when a request carrying it is read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct PlanHookError {
    /// The key, from the plan: `hooks[<i>].<phase>.<key>`.
    pub key: String,
    /// What is wrong with its value.
    pub problem: String,
}

/// One entry of a plan's `hooks:` in the config file: the hooks Velero's annotations
/// declare, given by the operator for the plan's pods that match `selector` (for pods whose
/// annotations the operator does not own). Each value means what the annotation of the same
/// name means, and is read by the same functions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanHook {
    /// A label selector over the plan's pods; absent or empty: every pod of the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Run before the snapshot burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre: Option<HookSettings>,
    /// Run after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<HookSettings>,
}

/// One phase of a [`PlanHook`]: the four annotations of a phase, as keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSettings {
    /// The container (default: the pod's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The command: a list, or a string read as the annotation is (a JSON array, or else
    /// one executable).
    pub command: HookCommand,
    /// `Continue` or `Fail` (default `Fail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<String>,
    /// A Go duration (default `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A plan hook's command as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HookCommand {
    /// A YAML (or JSON) list: the executable and its arguments.
    List(Vec<String>),
    /// A string, read as the `command` annotation is.
    Text(String),
}

/// The settings of one hook, borrowed from wherever they are written.
struct Raw<'a> {
    command: CommandValue<'a>,
    container: Option<&'a str>,
    on_error: Option<&'a str>,
    timeout: Option<&'a str>,
}

#[derive(Clone, Copy)]
enum CommandValue<'a> {
    Text(&'a str),
    List(&'a [String]),
}

/// Which setting of a hook a problem is with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Command,
    Container,
    OnError,
    Timeout,
}

impl Key {
    /// The last part of its annotation's name.
    fn annotation(self) -> &'static str {
        match self {
            Key::Command => "command",
            Key::Container => "container",
            Key::OnError => "on-error",
            Key::Timeout => "timeout",
        }
    }

    /// Its key in a plan's `hooks:` (YAML keys of the config file are snake case).
    fn config(self) -> &'static str {
        match self {
            Key::OnError => "on_error",
            other => other.annotation(),
        }
    }
}

impl HookSettings {
    fn raw(&self) -> Raw<'_> {
        Raw {
            command: match &self.command {
                HookCommand::List(l) => CommandValue::List(l),
                HookCommand::Text(t) => CommandValue::Text(t),
            },
            container: self.container.as_deref(),
            on_error: self.on_error.as_deref(),
            timeout: self.timeout.as_deref(),
        }
    }
}

impl PlanHook {
    /// The settings of `phase`, if given.
    pub fn phase(&self, phase: HookPhase) -> Option<&HookSettings> {
        match phase {
            HookPhase::Pre => self.pre.as_ref(),
            HookPhase::Post => self.post.as_ref(),
        }
    }
}

/// A plan's hooks, checked and ready to meet pods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanHooks {
    /// The plan (empty: an on-demand request), to name in errors.
    plan: String,
    /// Each entry with its index in `hooks:` and its selector, parsed.
    entries: Vec<(usize, LabelSelector, PlanHook)>,
}

impl PlanHooks {
    /// Checks `hooks` (of plan `plan`, empty for a request outside any plan): every value
    /// that does not depend on the pod (the selector, the command, `on_error`, `timeout`, a
    /// container name that is empty) is read as its annotation would be. A container the
    /// pod lacks can only be found when a pod is met ([`Self::hooks_of`]).
    pub fn new(plan: &str, hooks: &[PlanHook]) -> Result<PlanHooks, PlanHookError> {
        let mut entries = Vec::with_capacity(hooks.len());
        for (i, hook) in hooks.iter().enumerate() {
            let error = |key: String, problem: String| PlanHookError {
                key: format!("hooks[{i}]{key}"),
                problem,
            };
            let selector = LabelSelector::parse(hook.selector.as_deref().unwrap_or(""))
                .map_err(|e| error(".selector".into(), e.to_string()))?;
            if hook.pre.is_none() && hook.post.is_none() {
                return Err(error(
                    String::new(),
                    "it declares no hook: give it pre:, post: or both".into(),
                ));
            }
            for phase in [HookPhase::Pre, HookPhase::Post] {
                if let Some(settings) = hook.phase(phase) {
                    spec_from(&settings.raw(), None)
                        .map_err(|(key, p)| error(format!(".{phase}.{}", key.config()), p))?;
                }
            }
            entries.push((i, selector, hook.clone()));
        }
        Ok(PlanHooks {
            plan: plan.to_string(),
            entries,
        })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The hooks `pod` gets: its own annotations', and for each phase they leave without a
    /// hook, that of the first entry whose selector matches the pod and that gives the
    /// phase. The pod's annotations win: whoever owns the pod knows its application best.
    ///
    /// Errors as [`PodHooks::of`], and a plan hook naming a container the pod lacks (naming
    /// the pod, the plan and the key).
    pub fn hooks_of(&self, pod: &PodInfo) -> Result<Option<PodHooks>, HookError> {
        let own = PodHooks::of(pod)?;
        if self.entries.is_empty() {
            return Ok(own);
        }
        let name = ObjectRef::new(pod.namespace.clone(), pod.name.clone());
        let (mut pre, mut post) = own.map(|h| (h.pre, h.post)).unwrap_or_default();
        for phase in [HookPhase::Pre, HookPhase::Post] {
            let slot = match phase {
                HookPhase::Pre => &mut pre,
                HookPhase::Post => &mut post,
            };
            if slot.is_some() {
                continue;
            }
            let given = self.entries.iter().find_map(|(i, selector, hook)| {
                let settings = hook
                    .phase(phase)
                    .filter(|_| selector.matches(&pod.labels))?;
                Some((*i, settings))
            });
            let Some((i, settings)) = given else {
                continue;
            };
            let spec =
                spec_from(&settings.raw(), Some(&pod.containers)).map_err(|(key, problem)| {
                    let plan = if self.plan.is_empty() {
                        "the request's".to_string()
                    } else {
                        format!("plan {}:", self.plan)
                    };
                    HookError {
                        pod: name.clone(),
                        setting: format!("{plan} hooks[{i}].{phase}.{}", key.config()),
                        problem,
                    }
                })?;
            *slot = Some(spec);
        }
        if pre.is_none() && post.is_none() {
            return Ok(None);
        }
        Ok(Some(PodHooks {
            pod: name,
            pre,
            post,
        }))
    }
}

/// The annotation prefix of `phase`.
fn prefix(phase: HookPhase) -> &'static str {
    match phase {
        HookPhase::Pre => "pre.hook.backup.velero.io/",
        HookPhase::Post => "post.hook.backup.velero.io/",
    }
}

impl PodHooks {
    /// The hooks `pod` declares; `None` if it declares none.
    ///
    /// Errors: a command that is not a JSON array of strings (when it starts with `[`) or
    /// is empty; a container the pod does not have; an `on-error` other than `Continue` or
    /// `Fail`; a timeout that is not a positive Go duration. Each names the pod and the
    /// annotation.
    pub fn of(pod: &PodInfo) -> Result<Option<PodHooks>, HookError> {
        if pod.hook_annotations.is_empty() {
            return Ok(None);
        }
        let name = ObjectRef::new(pod.namespace.clone(), pod.name.clone());
        let pre = spec_of(pod, &name, HookPhase::Pre)?;
        let post = spec_of(pod, &name, HookPhase::Post)?;
        if pre.is_none() && post.is_none() {
            return Ok(None);
        }
        Ok(Some(PodHooks {
            pod: name,
            pre,
            post,
        }))
    }

    /// The hook of `phase`, if declared.
    pub fn phase(&self, phase: HookPhase) -> Option<&HookSpec> {
        match phase {
            HookPhase::Pre => self.pre.as_ref(),
            HookPhase::Post => self.post.as_ref(),
        }
    }
}

/// The hook of `phase` that `pod` declares.
fn spec_of(
    pod: &PodInfo,
    name: &ObjectRef,
    phase: HookPhase,
) -> Result<Option<HookSpec>, HookError> {
    let key = |what: &str| format!("{}{what}", prefix(phase));
    let get = |what: Key| {
        pod.hook_annotations
            .get(&key(what.annotation()))
            .map(String::as_str)
    };
    let Some(command) = get(Key::Command) else {
        return Ok(None);
    };
    let raw = Raw {
        command: CommandValue::Text(command),
        container: get(Key::Container),
        on_error: get(Key::OnError),
        timeout: get(Key::Timeout),
    };
    spec_from(&raw, Some(&pod.containers))
        .map(Some)
        .map_err(|(what, problem)| HookError {
            pod: name.clone(),
            setting: format!("annotation {}", key(what.annotation())),
            problem,
        })
}

/// Reads one hook's settings, wherever written; the one reading of them, so that a plan's
/// `hooks:` means exactly what the annotations mean. `containers` are the pod's; `None`
/// when there is no pod yet (config load): then the container is only checked to be a
/// name, and the spec's container is what was given (or empty).
fn spec_from(raw: &Raw<'_>, containers: Option<&[String]>) -> Result<HookSpec, (Key, String)> {
    let command = match raw.command {
        CommandValue::Text(text) => parse_command(text),
        CommandValue::List(list) => names_executable(list.to_vec(), &format!("{list:?}")),
    }
    .map_err(|p| (Key::Command, p))?;
    let container = match (raw.container, containers) {
        (Some(c), _) if c.trim().is_empty() => {
            return Err((Key::Container, "the container name is empty".into()))
        }
        (Some(c), Some(have)) if have.iter().any(|h| h == c) => c.to_string(),
        (Some(c), Some(have)) => {
            return Err((
                Key::Container,
                format!(
                    "the pod has no container {c:?} (it has: {})",
                    have.join(", ")
                ),
            ))
        }
        (Some(c), None) => c.to_string(),
        (None, Some(have)) => match have.first() {
            Some(first) if !first.is_empty() => first.clone(),
            _ => {
                return Err((
                    Key::Command,
                    "the pod has no container to run it in".to_string(),
                ))
            }
        },
        (None, None) => String::new(),
    };
    let on_error = match raw.on_error {
        None => HookOnError::default(),
        Some(v) => HookOnError::parse(v).ok_or_else(|| {
            (
                Key::OnError,
                format!("{v:?} is neither \"Continue\" nor \"Fail\""),
            )
        })?,
    };
    let timeout = match raw.timeout {
        None => DEFAULT_TIMEOUT,
        Some(v) => parse_go_duration(v).map_err(|p| (Key::Timeout, p))?,
    };
    Ok(HookSpec {
        container,
        command,
        on_error,
        timeout,
    })
}

/// A command as Velero reads it: a JSON array of strings, or else one string taken as the
/// whole command.
fn parse_command(text: &str) -> Result<Vec<String>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("the command is empty".into());
    }
    if !t.starts_with('[') {
        return Ok(vec![t.to_string()]);
    }
    let command: Vec<String> = serde_json::from_str(t)
        .map_err(|e| format!("{t:?} is not a JSON array of strings: {e}"))?;
    names_executable(command, &format!("{t:?}"))
}

/// `command` if its first word names an executable; `shown` is how it was written.
fn names_executable(command: Vec<String>, shown: &str) -> Result<Vec<String>, String> {
    if command.first().is_none_or(|c| c.trim().is_empty()) {
        return Err(format!("{shown} names no executable"));
    }
    Ok(command)
}

/// A duration as Go's `time.ParseDuration` writes it (what Velero reads): numbers, each with
/// a unit (`ms`, `s`, `m`, `h`; `us`, `ns` too), possibly fractional, possibly several
/// (`1m30s`). It must be positive: a hook with no time at all cannot run.
fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = |why: &str| format!("{text:?} is not a duration like 30s, 1m or 1m30s: {why}");
    if t.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let number: f64 = number
            .parse()
            .map_err(|_| bad("a number must come before each unit"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(bad("a unit must follow each number (ms, s, m, h)")),
            other => return Err(bad(&format!("unknown unit {other:?}"))),
        };
        let part = Duration::try_from_secs_f64(number * seconds).map_err(|_| bad("too long"))?;
        total = total.checked_add(part).ok_or_else(|| bad("too long"))?;
        rest = after;
    }
    if total.is_zero() {
        return Err(bad("it must be more than zero"));
    }
    Ok(total)
}

/// Runs the `phase` hooks of `pods` through `api`, at most [`CONCURRENCY`] at once; returns a
/// record of each, in the order of `pods`. Never fails: a hook that could not run is a
/// failed record, with the reason.
pub async fn run_phase(api: &ApiServer, pods: &[PodHooks], phase: HookPhase) -> Vec<HookRecord> {
    // The futures are made before the stream, not by a closure of it: a stream whose
    // closure borrows makes the caller's future not provably `Send` (rust-lang/rust#102211).
    let runs: Vec<_> = pods
        .iter()
        .filter_map(|p| p.phase(phase).map(|spec| run_one(api, &p.pod, phase, spec)))
        .collect();
    futures::stream::iter(runs)
        .buffered(CONCURRENCY)
        .collect()
        .await
}

/// Runs one hook and records what it did.
async fn run_one(
    api: &ApiServer,
    pod: &ObjectRef,
    phase: HookPhase,
    spec: &HookSpec,
) -> HookRecord {
    let started = chrono::Utc::now();
    let clock = std::time::Instant::now();
    let answer = api
        .exec(
            pod.namespace(),
            pod.name(),
            &spec.container,
            &spec.command,
            spec.timeout,
        )
        .await;
    let mut record = HookRecord {
        pod: pod.clone(),
        container: spec.container.clone(),
        command: spec.command.clone(),
        phase,
        on_error: spec.on_error,
        outcome: HookOutcome::Failed,
        exit_code: None,
        reason: String::new(),
        started,
        duration_ms: millis(clock.elapsed()),
        stdout: String::new(),
        stderr: String::new(),
        output_truncated: false,
    };
    match answer {
        Ok(out) => record_output(&mut record, out, spec.timeout),
        Err(e) => record.reason = format!("the exec was refused: {e}"),
    }
    if record.outcome != HookOutcome::Succeeded {
        tracing::warn!(pod = %pod, container = %spec.container, "{phase}-hook: {}", record.reason);
    }
    record
}

/// Fills `record` from what the exec saw.
fn record_output(record: &mut HookRecord, out: ExecOutput, timeout: Duration) {
    record.duration_ms = millis(out.duration);
    let (stdout, cut_out) = kept(&out.stdout);
    let (stderr, cut_err) = kept(&out.stderr);
    record.stdout = stdout;
    record.stderr = stderr;
    record.output_truncated = cut_out || cut_err || out.truncated();
    match out.exit {
        ExecExit::Code(0) => {
            record.outcome = HookOutcome::Succeeded;
            record.exit_code = Some(0);
        }
        ExecExit::Code(code) => {
            record.exit_code = Some(code);
            record.reason = format!("exit code {code}");
        }
        ExecExit::TimedOut => {
            record.outcome = HookOutcome::TimedOut;
            record.reason = format!(
                "still running after its timeout of {}s: the wait was cut off (the command \
                 may still be running in the container)",
                timeout.as_secs_f64()
            );
        }
        other @ (ExecExit::Failed { .. } | ExecExit::Lost) => record.reason = other.to_string(),
    }
}

/// The first [`HOOK_OUTPUT_KEPT`] bytes of `bytes` as text, and whether more was cut.
fn kept(bytes: &[u8]) -> (String, bool) {
    let cut = bytes.len() > HOOK_OUTPUT_KEPT;
    let head = &bytes[..bytes.len().min(HOOK_OUTPUT_KEPT)];
    (String::from_utf8_lossy(head).into_owned(), cut)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The checkpoint's problems among `records`: one reason per failed hook whose `on-error` is
/// `Fail`, with the start of its output (the rest is in the record).
pub fn problems(records: &[HookRecord]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.outcome != HookOutcome::Succeeded && r.on_error == HookOnError::Fail)
        .map(|r| {
            let output = [r.stderr.trim(), r.stdout.trim()]
                .into_iter()
                .find(|o| !o.is_empty())
                .map(|o| {
                    let line = o.lines().next().unwrap_or_default();
                    format!(" (output: {line:?})")
                })
                .unwrap_or_default();
            format!(
                "{}-hook in pod {} (container {}) failed: {}{output}",
                r.phase, r.pod, r.container, r.reason
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pod(annotations: &[(&str, &str)]) -> PodInfo {
        PodInfo {
            namespace: "shop".into(),
            name: "db-0".into(),
            uid: "u".into(),
            node: Some("node-1".into()),
            phase: Some("Running".into()),
            labels: BTreeMap::new(),
            created: None,
            volumes: Vec::new(),
            hook_annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            containers: vec!["db".into(), "sidecar".into()],
            refs: Default::default(),
        }
    }

    fn err(annotations: &[(&str, &str)]) -> HookError {
        PodHooks::of(&pod(annotations)).expect_err("a bad annotation")
    }

    #[test]
    fn velero_defaults_and_both_command_forms() {
        let hooks = PodHooks::of(&pod(&[
            (
                "pre.hook.backup.velero.io/command",
                r#"["/sbin/fsfreeze", "--freeze", "/data"]"#,
            ),
            ("post.hook.backup.velero.io/command", "/usr/local/bin/thaw"),
            ("post.hook.backup.velero.io/container", "sidecar"),
            ("post.hook.backup.velero.io/on-error", "Continue"),
            ("post.hook.backup.velero.io/timeout", "1m30s"),
        ]))
        .expect("valid")
        .expect("hooks");
        assert_eq!(hooks.pod.to_string(), "shop/db-0");
        let pre = hooks.pre.expect("a pre-hook");
        assert_eq!(pre.command, ["/sbin/fsfreeze", "--freeze", "/data"]);
        assert_eq!(pre.container, "db", "the first container by default");
        assert_eq!(pre.on_error, HookOnError::Fail);
        assert_eq!(pre.timeout, DEFAULT_TIMEOUT);
        let post = hooks.post.expect("a post-hook");
        assert_eq!(post.command, ["/usr/local/bin/thaw"]);
        assert_eq!(post.container, "sidecar");
        assert_eq!(post.on_error, HookOnError::Continue);
        assert_eq!(post.timeout, Duration::from_secs(90));
    }

    #[test]
    fn no_command_no_hook() {
        assert_eq!(PodHooks::of(&pod(&[])), Ok(None));
        // As Velero: the phase's other settings alone declare nothing.
        assert_eq!(
            PodHooks::of(&pod(&[("pre.hook.backup.velero.io/container", "db")])),
            Ok(None)
        );
    }

    #[test]
    fn bad_annotations_name_the_pod_and_the_annotation() {
        for (annotations, annotation, says) in [
            (
                vec![("pre.hook.backup.velero.io/command", r#"["sh", "-c""#)],
                "pre.hook.backup.velero.io/command",
                "not a JSON array",
            ),
            (
                vec![("pre.hook.backup.velero.io/command", "[1, 2]")],
                "pre.hook.backup.velero.io/command",
                "not a JSON array of strings",
            ),
            (
                vec![("post.hook.backup.velero.io/command", "  ")],
                "post.hook.backup.velero.io/command",
                "empty",
            ),
            (
                vec![("pre.hook.backup.velero.io/command", "[]")],
                "pre.hook.backup.velero.io/command",
                "names no executable",
            ),
            (
                vec![
                    ("pre.hook.backup.velero.io/command", "true"),
                    ("pre.hook.backup.velero.io/container", "postgres"),
                ],
                "pre.hook.backup.velero.io/container",
                "no container \"postgres\" (it has: db, sidecar)",
            ),
            (
                vec![
                    ("post.hook.backup.velero.io/command", "true"),
                    ("post.hook.backup.velero.io/on-error", "continue"),
                ],
                "post.hook.backup.velero.io/on-error",
                "neither \"Continue\" nor \"Fail\"",
            ),
            (
                vec![
                    ("pre.hook.backup.velero.io/command", "true"),
                    ("pre.hook.backup.velero.io/timeout", "30"),
                ],
                "pre.hook.backup.velero.io/timeout",
                "a unit must follow",
            ),
            (
                vec![
                    ("pre.hook.backup.velero.io/command", "true"),
                    ("pre.hook.backup.velero.io/timeout", "0s"),
                ],
                "pre.hook.backup.velero.io/timeout",
                "more than zero",
            ),
        ] {
            let e = err(&annotations);
            assert_eq!(
                e.setting,
                format!("annotation {annotation}"),
                "{annotations:?}"
            );
            let text = e.to_string();
            assert!(text.starts_with("pod shop/db-0: annotation "), "{text}");
            assert!(text.contains(annotation), "{text}");
            assert!(text.contains(says), "{annotations:?}: {text}");
        }
    }

    fn plan_hook(yaml: &str) -> PlanHook {
        serde_yaml::from_str(yaml).expect("a plan hook")
    }

    #[test]
    fn plan_hooks_mean_what_the_annotations_mean_and_yield_to_them() {
        let hooks = PlanHooks::new(
            "db",
            &[
                plan_hook("selector: app=other\npre: { command: [never] }"),
                plan_hook(
                    "pre: { container: sidecar, command: [sh, -c, \"psql -c CHECKPOINT\"], on_error: Continue, timeout: 1m30s }\npost: { command: '[\"thaw\", \"-v\"]' }",
                ),
            ],
        )
        .expect("valid");
        let got = hooks.hooks_of(&pod(&[])).expect("valid").expect("hooks");
        let pre = got.pre.expect("the plan's pre-hook");
        assert_eq!(pre.command, ["sh", "-c", "psql -c CHECKPOINT"]);
        assert_eq!(pre.container, "sidecar");
        assert_eq!(pre.on_error, HookOnError::Continue);
        assert_eq!(pre.timeout, Duration::from_secs(90));
        let post = got.post.expect("the plan's post-hook");
        assert_eq!(
            post.command,
            ["thaw", "-v"],
            "a string read as the annotation is"
        );
        assert_eq!(post.container, "db", "the first container by default");
        assert_eq!(post.on_error, HookOnError::Fail);
        assert_eq!(post.timeout, DEFAULT_TIMEOUT);

        // The pod's own annotation wins for its phase; the plan gives the other.
        let got = hooks
            .hooks_of(&pod(&[("pre.hook.backup.velero.io/command", "mine")]))
            .expect("valid")
            .expect("hooks");
        assert_eq!(got.pre.expect("own").command, ["mine"]);
        assert_eq!(got.post.expect("plan's").command, ["thaw", "-v"]);

        // A selector that does not match gives nothing.
        let only_other = PlanHooks::new(
            "db",
            &[plan_hook("selector: app=other\npre: { command: x }")],
        )
        .expect("valid");
        assert_eq!(only_other.hooks_of(&pod(&[])), Ok(None));
        assert_eq!(PlanHooks::default().hooks_of(&pod(&[])), Ok(None));
    }

    #[test]
    fn bad_plan_hooks_name_the_key() {
        for (yaml, key, says) in [
            (
                "pre: { command: \"[\\\"sh\" }",
                "hooks[0].pre.command",
                "not a JSON array",
            ),
            (
                "pre: { command: [] }",
                "hooks[0].pre.command",
                "names no executable",
            ),
            ("post: { command: \" \" }", "hooks[0].post.command", "empty"),
            (
                "pre: { command: x, on_error: continue }",
                "hooks[0].pre.on_error",
                "neither \"Continue\" nor \"Fail\"",
            ),
            (
                "pre: { command: x, timeout: \"30\" }",
                "hooks[0].pre.timeout",
                "a unit",
            ),
            (
                "pre: { command: x, container: \"\" }",
                "hooks[0].pre.container",
                "empty",
            ),
            (
                "selector: \"a in (\"\npre: { command: x }",
                "hooks[0].selector",
                "",
            ),
            ("selector: app=db", "hooks[0]", "declares no hook"),
        ] {
            let e = PlanHooks::new("db", &[plan_hook(yaml)]).expect_err(yaml);
            assert_eq!(e.key, key, "{yaml}: {e}");
            assert!(e.problem.contains(says), "{yaml}: {e}");
        }
        // A container the pod lacks is found when the pod is met: named with pod and plan.
        let hooks = PlanHooks::new("db", &[plan_hook("pre: { command: x, container: pg }")])
            .expect("valid until a pod is met");
        let e = hooks.hooks_of(&pod(&[])).expect_err("no container pg");
        assert_eq!(
            e.to_string(),
            "pod shop/db-0: plan db: hooks[0].pre.container: the pod has no container \"pg\" \
             (it has: db, sidecar)"
        );
        // Unknown keys are refused when read.
        assert!(serde_yaml::from_str::<PlanHook>("pre: { command: x, on-error: Fail }").is_err());
    }

    #[test]
    fn go_durations() {
        for (text, want) in [
            ("30s", Duration::from_secs(30)),
            ("1m", Duration::from_secs(60)),
            ("1h2m3s", Duration::from_secs(3723)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
        ] {
            assert_eq!(parse_go_duration(text), Ok(want), "{text}");
        }
        for bad in ["", "s", "10x", "-1s", "1d"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    fn record(outcome: HookOutcome, on_error: HookOnError) -> HookRecord {
        HookRecord {
            pod: ObjectRef::new("shop", "db-0"),
            container: "db".into(),
            command: vec!["fsfreeze".into()],
            phase: HookPhase::Pre,
            on_error,
            outcome,
            exit_code: None,
            reason: "exit code 3".into(),
            started: chrono::Utc::now(),
            duration_ms: 1,
            stdout: "frozen?\n".into(),
            stderr: "fsfreeze: /data: busy\nmore\n".into(),
            output_truncated: false,
        }
    }

    #[test]
    fn only_failures_that_fail_are_problems() {
        assert!(problems(&[record(HookOutcome::Succeeded, HookOnError::Fail)]).is_empty());
        assert!(problems(&[record(HookOutcome::Failed, HookOnError::Continue)]).is_empty());
        let p = problems(&[record(HookOutcome::TimedOut, HookOnError::Fail)]);
        assert_eq!(
            p,
            ["pre-hook in pod shop/db-0 (container db) failed: exit code 3 (output: \"fsfreeze: /data: busy\")"]
        );
    }

    #[test]
    fn output_is_kept_up_to_a_few_kib() {
        let (text, cut) = kept(&vec![b'x'; HOOK_OUTPUT_KEPT + 1]);
        assert_eq!(text.len(), HOOK_OUTPUT_KEPT);
        assert!(cut);
        assert_eq!(kept(b"ok\n"), ("ok\n".to_string(), false));
    }
}
