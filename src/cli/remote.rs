//! The flags that send commands to a running agent (`--agent URL`, token, TLS): then the
//! CLI holds a [`crate::api::client::RemoteEngine`] instead of a local engine, and every
//! command does the same through the agent's HTTP API. Here too: what the agent's API does
//! not take is refused before anything is sent ([`refused`]), and the commands whose
//! answer is the agent's operation record ([`operation`]).

use std::path::PathBuf;

use serde::Serialize;

use super::checkpoints::{self, CheckpointsCommand};
use super::output::{print, Tabular};
use super::plans::PlansCommand;
use super::restore::{self, DEFAULT_VOLUME_TIMEOUT};
use super::{Command, Context};
use crate::api::client::{ClientSettings, RemoteEngine};
use crate::api::OperationRecord;
use crate::engine::EngineError;

/// Flags that send commands to a running agent.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RemoteArgs {
    /// Send the command to the agent at this URL (its HTTP API) instead of doing the work
    /// here.
    #[arg(
        long = "agent",
        env = "PODBANK_AGENT",
        value_name = "URL",
        global = true
    )]
    pub url: Option<String>,
    /// File holding the agent's bearer token.
    #[arg(
        long = "agent-token-file",
        env = "PODBANK_AGENT_TOKEN_FILE",
        global = true
    )]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate to trust for an https agent.
    #[arg(long = "agent-ca-file", env = "PODBANK_AGENT_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for an agent that requires mTLS.
    #[arg(
        long = "agent-cert-file",
        env = "PODBANK_AGENT_CERT_FILE",
        global = true
    )]
    pub cert_file: Option<PathBuf>,
    /// PEM key of --agent-cert-file.
    #[arg(long = "agent-key-file", env = "PODBANK_AGENT_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,
    /// The Karbor project (tenant) id the agent's API is asked in (its URLs name one).
    #[arg(
        long = "agent-project",
        env = "OS_PROJECT_ID",
        value_name = "ID",
        global = true
    )]
    pub project: Option<String>,
    /// Through an agent: print the operation a long command started and return, instead
    /// of following it to its end.
    #[arg(long = "no-wait", global = true)]
    pub no_wait: bool,
}

impl RemoteArgs {
    /// The client settings for the agent at `url`.
    pub fn settings(&self, url: &str) -> ClientSettings {
        ClientSettings {
            url: url.to_string(),
            token_file: self.token_file.clone(),
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            project: self.project.clone(),
        }
    }
}

/// What a command asks for that the agent's API does not take, as the usage error that
/// names the flag (exit code 2), before anything is sent.
pub fn refused(command: &Command) -> Option<EngineError> {
    let not_remote = |flag: &str, why: &str| {
        Some(EngineError::Invalid(format!(
            "{flag} is not available through --agent: {why}"
        )))
    };
    let here_only = |what: &str| {
        Some(EngineError::Invalid(format!(
            "`podbank {what}` works on the bank here and does not go through an agent: drop \
             --agent (and PODBANK_AGENT)"
        )))
    };
    // What of a request the agent does not take: the engine's one list. A request that
    // does not build is left to the command, which says what is wrong with it.
    let refusal = match command {
        Command::Protect(a) => checkpoints::protect_request(a)
            .ok()
            .and_then(|r| r.agent_refusal()),
        Command::Restore(a) => restore::request(a).ok().and_then(|r| r.agent_refusal()),
        _ => None,
    };
    if let Some(r) = refusal {
        return not_remote(r.flag, r.why);
    }
    match command {
        Command::Restore(a) => {
            // Settings of the engine here, not of the request: the agent has its own.
            let flags = [
                (
                    a.volume_timeout != DEFAULT_VOLUME_TIMEOUT,
                    "--volume-timeout",
                ),
                (a.context.is_some(), "--context"),
            ];
            if let Some((_, flag)) = flags.iter().find(|(set, _)| *set) {
                return not_remote(flag, "the agent restores with its own settings");
            }
            None
        }
        Command::Checkpoints(CheckpointsCommand::Verify { .. }) => here_only("checkpoints verify"),
        Command::Bank(_) => here_only("bank"),
        Command::Demo(_) => here_only("demo"),
        Command::Agent(_) => Some(EngineError::Invalid(
            "`podbank agent` runs an agent; it does not talk to one: drop --agent".into(),
        )),
        _ => None,
    }
}

/// The commands whose answer through an agent is the agent's operation record: every long
/// operation with `--no-wait` (started, not followed), and `plans trigger` (followed to its
/// end: a plan run is an operation of the agent's). `None`: the command is not one of them.
pub async fn operation(
    ctx: &Context,
    args: &RemoteArgs,
    url: &str,
    command: &Command,
) -> anyhow::Result<Option<()>> {
    let wait = !args.no_wait;
    let long = matches!(
        command,
        Command::Protect(_)
            | Command::Delete(_)
            | Command::Checkpoints(CheckpointsCommand::Delete(_))
            | Command::Restore(_)
    );
    if !(long && !wait || matches!(command, Command::Plans(PlansCommand::Trigger { .. }))) {
        return Ok(None);
    }
    // Made (token and certificates read) only for the commands that use it.
    let engine = RemoteEngine::new(&args.settings(url)).map_err(EngineError::from)?;
    let op = match command {
        Command::Protect(a) if !wait => {
            engine
                .start_protect(&checkpoints::protect_request(a)?)
                .await?
        }
        Command::Delete(a) | Command::Checkpoints(CheckpointsCommand::Delete(a)) if !wait => {
            engine
                .start_delete(&checkpoints::checkpoint_id(&a.id)?)
                .await?
        }
        Command::Restore(a) if !wait => engine.start_restore(&restore::request(a)?).await?,
        Command::Plans(PlansCommand::Trigger { name }) => {
            let op = engine.start_plan(name).await?;
            if wait {
                engine.finish(op).await?
            } else {
                op
            }
        }
        _ => return Ok(None),
    };
    print(ctx.output, &Operations(vec![op]))?;
    Ok(Some(()))
}

/// The wire name of an enum value (`plan_run`, `succeeded`).
fn label<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Operations as the agent reports them.
#[derive(Serialize)]
#[serde(transparent)]
struct Operations(Vec<OperationRecord>);

impl Tabular for Operations {
    fn headers(&self) -> Vec<&'static str> {
        vec![
            "OPERATION",
            "KIND",
            "STATE",
            "PLAN",
            "TARGET",
            "STARTED",
            "FINISHED",
            "ERROR",
        ]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        let time = |t: &chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        self.0
            .iter()
            .map(|o| {
                vec![
                    o.id.clone(),
                    label(&o.kind),
                    label(&o.state),
                    o.plan.clone().unwrap_or_else(|| "-".into()),
                    o.target.clone().unwrap_or_else(|| "-".into()),
                    time(&o.started_at),
                    o.finished_at
                        .as_ref()
                        .map(time)
                        .unwrap_or_else(|| "-".into()),
                    o.error.clone().unwrap_or_default(),
                ]
            })
            .collect()
    }
}
