//! `podbank --agent URL ...`: the same commands, done by a running agent through its HTTP
//! API instead of here. Results render exactly as the local commands render them where the
//! API returns the same view (pods, checkpoint and restore details); lists show what the
//! API lists. Long operations are followed to their end unless `--no-wait` is given.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::checkpoints::{self, CheckpointsCommand, DeleteArgs, ProtectArgs};
use super::output::{print, OutputFormat, Tabular};
use super::pods::{self, PodsCommand};
use super::restore::{self, RestoreArgs, RestoresCommand};
use super::{Command, Context, PlansCommand, UsageError};
use crate::agent::client::{Client, ClientSettings};
use crate::agent::engine::{
    CheckpointId, CheckpointStatus, CheckpointSummary, ProtectRequest, ProtectableQuery,
    RestoreRequest, RestoreSummary, SelectionSpec,
};
use crate::agent::http::PlanList;
use crate::agent::operations::OperationRecord;
use crate::protection::report::{CheckpointView, RestoreView};
use crate::protection::schema::{ProtectParams, RestoreParams};
use crate::protection::ConflictPolicy;
use crate::resources::{FieldSelector, LabelSelector};

/// Flags that send commands to a running agent.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RemoteArgs {
    /// Send the command to the agent at this URL (its HTTP API) instead of doing the work
    /// here: pods, protect, checkpoints list/show/delete, delete, restore, restores, plans.
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
    /// With --agent: print the started operation and return instead of following it.
    #[arg(long, global = true)]
    pub no_wait: bool,
}

impl RemoteArgs {
    fn client(&self, url: &str) -> anyhow::Result<Client> {
        Ok(Client::new(&ClientSettings {
            url: url.to_string(),
            token_file: self.token_file.clone(),
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
        })?)
    }
}

fn local_only(what: &str) -> anyhow::Error {
    UsageError(format!(
        "`podbank {what}` works on the bank here and does not go through an agent: drop \
         --agent (and PODBANK_AGENT)"
    ))
    .into()
}

fn not_remote(flag: &str, why: &str) -> anyhow::Error {
    UsageError(format!("{flag} is not available through --agent: {why}")).into()
}

/// Run `command` through the agent at `url`.
pub async fn run(
    ctx: &Context,
    args: &RemoteArgs,
    url: &str,
    command: Command,
) -> anyhow::Result<()> {
    // The client is made (token and certificates read) only for commands that use it.
    let remote = || -> anyhow::Result<Remote<'_>> {
        Ok(Remote {
            ctx,
            client: args.client(url)?,
            wait: !args.no_wait,
        })
    };
    match command {
        Command::Schema { which } => super::schema::run(which),
        Command::Checkpoints(CheckpointsCommand::Verify { .. }) => {
            Err(local_only("checkpoints verify"))
        }
        Command::Bank(_) => Err(local_only("bank")),
        Command::Demo(_) => Err(local_only("demo")),
        Command::Agent(_) => Err(UsageError(
            "`podbank agent` runs an agent; it does not talk to one: drop --agent".into(),
        )
        .into()),
        Command::Pods(cmd) => remote()?.pods(cmd).await,
        Command::Protect(a) => remote()?.protect(a).await,
        Command::Checkpoints(CheckpointsCommand::List { all }) => remote()?.checkpoints(all).await,
        Command::Checkpoints(CheckpointsCommand::Show { id }) => remote()?.checkpoint(&id).await,
        Command::Checkpoints(CheckpointsCommand::Delete(a)) | Command::Delete(a) => {
            remote()?.delete(a).await
        }
        Command::Restore(a) => remote()?.restore(a).await,
        Command::Restores(RestoresCommand::List) => remote()?.restores().await,
        Command::Restores(RestoresCommand::Show { id }) => remote()?.restore_record(&id).await,
        Command::Plans(PlansCommand::List) => remote()?.plans().await,
        Command::Plans(PlansCommand::Trigger { name }) => remote()?.trigger(&name).await,
    }
}

struct Remote<'a> {
    ctx: &'a Context,
    client: Client,
    wait: bool,
}

/// Decode an API answer into the view the local command prints.
fn view<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> anyhow::Result<T> {
    serde_json::from_value(v)
        .map_err(|e| anyhow::anyhow!("the agent's {what} does not have the expected shape: {e}"))
}

impl Remote<'_> {
    async fn pods(&self, cmd: PodsCommand) -> anyhow::Result<()> {
        let now = chrono::Utc::now().timestamp();
        match cmd {
            PodsCommand::List {
                namespaces,
                selector,
                field_selector,
            } => {
                // Same syntax errors as the local command, before asking.
                LabelSelector::parse(selector.as_deref().unwrap_or(""))?;
                FieldSelector::parse(field_selector.as_deref().unwrap_or(""))?;
                let v = self
                    .client
                    .protectables(&ProtectableQuery {
                        namespaces,
                        label_selector: selector,
                        field_selector,
                    })
                    .await?;
                let mut list: pods::PodList = view("pod list", v)?;
                for p in &list.problems {
                    eprintln!("warning: cannot read {}: {}", p.key, p.reason);
                }
                list.now = now;
                print(self.ctx.output, &list)
            }
            PodsCommand::Show { pod } => {
                pods::one_pod(&pod)?;
                let mut show: pods::PodShow = view("pod", self.client.protectable(&pod).await?)?;
                show.now = now;
                print(self.ctx.output, &show)
            }
            PodsCommand::Dependents { pod } => {
                pods::one_pod(&pod)?;
                let deps: pods::Dependents =
                    view("dependents", self.client.dependents(&pod).await?)?;
                print(self.ctx.output, &deps)
            }
        }
    }

    /// Follow `op` to its end unless `--no-wait`; `None` when not waiting (the operation
    /// was printed).
    async fn follow(&self, op: OperationRecord) -> anyhow::Result<Option<OperationRecord>> {
        if !self.wait {
            print(self.ctx.output, &Operations(vec![op]))?;
            return Ok(None);
        }
        if std::io::stderr().is_terminal() {
            eprintln!(
                "operation {} ({}) runs on the agent at {}; waiting for it (Ctrl-C stops \
                 waiting, not the operation)",
                op.id,
                label(&op.kind),
                self.client.url()
            );
        }
        Ok(Some(self.client.wait(op, |_| {}).await?))
    }

    async fn protect(&self, args: ProtectArgs) -> anyhow::Result<()> {
        if args.field_selector.is_some() {
            return Err(not_remote(
                "--field-selector",
                "the agent selects pods by namespace, label selector and name",
            ));
        }
        if args.no_volume_backups {
            return Err(not_remote(
                "--no-volume-backups",
                "whether volumes are backed up is the agent's setting \
                 (podbank agent --no-volume-backups)",
            ));
        }
        let params = checkpoints::parameters(
            args.parameters.as_deref(),
            &[
                ("backup_name", &args.backup_name),
                ("description", &args.description),
            ],
        )?;
        ProtectParams::from_json(&params)?;
        LabelSelector::parse(args.selector.as_deref().unwrap_or(""))?;
        for p in &args.pods {
            restore::parse_pod(p)?;
        }
        let request = ProtectRequest {
            plan: None,
            selection: SelectionSpec {
                namespaces: args.namespaces,
                label_selector: args.selector,
                pods: args.pods,
            },
            parameters: params,
        };
        let op = self.client.protect(&request).await?;
        let Some(done) = self.follow(op).await? else {
            return Ok(());
        };
        let id = result_field(&done, "checkpoint_id")?;
        let cp: CheckpointView = view(
            "checkpoint",
            self.client.checkpoint(&CheckpointId(id.clone())).await?,
        )?;
        let failed = cp.status != "available";
        let (status, reason) = (cp.status.clone(), cp.reason.clone());
        print(self.ctx.output, &checkpoints::List(vec![cp]))?;
        if failed {
            anyhow::bail!("checkpoint {id} is {status}: {reason}");
        }
        Ok(())
    }

    async fn checkpoints(&self, all: bool) -> anyhow::Result<()> {
        let mut items = self.client.checkpoints(None).await?;
        items.retain(|c| all || c.status != CheckpointStatus::Deleted);
        // Oldest first, as the local list.
        items.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        print(self.ctx.output, &Summaries(items))
    }

    async fn checkpoint(&self, id: &str) -> anyhow::Result<()> {
        let id = checkpoints::checkpoint_id(id)?;
        let cp: CheckpointView = view(
            "checkpoint",
            self.client
                .checkpoint(&CheckpointId(id.to_string()))
                .await?,
        )?;
        checkpoints::print_header(self.ctx, &cp)?;
        print(self.ctx.output, &checkpoints::Show(cp))
    }

    async fn delete(&self, args: DeleteArgs) -> anyhow::Result<()> {
        let id = checkpoints::checkpoint_id(&args.id)?;
        let op = self
            .client
            .delete_checkpoint(&CheckpointId(id.to_string()))
            .await?;
        let Some(done) = self.follow(op).await? else {
            return Ok(());
        };
        print(self.ctx.output, &Operations(vec![done]))
    }

    async fn restore(&self, args: RestoreArgs) -> anyhow::Result<()> {
        let refused = [
            (!args.namespace_map.is_empty(), "--namespace-map"),
            (args.conflict != ConflictPolicy::default(), "--conflict"),
            (args.keep_node, "--keep-node"),
            (args.volume_timeout != 3600, "--volume-timeout"),
            (args.context.is_some(), "--context"),
        ];
        if let Some((_, flag)) = refused.iter().find(|(set, _)| *set) {
            return Err(not_remote(
                flag,
                "the agent's restores take the pods and the restore parameters only",
            ));
        }
        if args.dry_run || args.export.is_some() {
            return Err(not_remote(
                "--dry-run/--export",
                "the agent would write the plan on its own disk; run the dry run here",
            ));
        }
        let checkpoint = checkpoints::checkpoint_id(&args.checkpoint)?;
        let params = args.parameters_json()?;
        RestoreParams::from_json(&params)?;
        for p in &args.pods {
            restore::parse_pod(p)?;
        }
        let request = RestoreRequest {
            checkpoint_id: CheckpointId(checkpoint.to_string()),
            pods: args.pods,
            parameters: params,
        };
        let op = self.client.restore(&request).await?;
        let Some(done) = self.follow(op).await? else {
            return Ok(());
        };
        let id = result_field(&done, "id")?;
        let record: RestoreView = view("restore", self.client.restore_record(&id).await?)?;
        let failed = record.status != "success";
        let reason = record.reason.clone();
        print(self.ctx.output, &restore::Show(record))?;
        if failed {
            anyhow::bail!("restore {id} failed: {reason}");
        }
        Ok(())
    }

    async fn restores(&self) -> anyhow::Result<()> {
        let mut items = self.client.restores().await?;
        items.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        print(self.ctx.output, &Restores(items))
    }

    async fn restore_record(&self, id: &str) -> anyhow::Result<()> {
        let record: RestoreView = view("restore", self.client.restore_record(id).await?)?;
        print(self.ctx.output, &restore::Show(record))
    }

    async fn plans(&self) -> anyhow::Result<()> {
        let plans = self.client.plans().await?;
        if self.ctx.output == OutputFormat::Table && !plans.leader {
            eprintln!("note: this replica does not lead; the leader runs the schedules");
        }
        print(self.ctx.output, &Plans(plans))
    }

    async fn trigger(&self, name: &str) -> anyhow::Result<()> {
        let op = self.client.trigger_plan(name).await?;
        let Some(done) = self.follow(op).await? else {
            return Ok(());
        };
        print(self.ctx.output, &Operations(vec![done]))
    }
}

/// A string field of a finished operation's result.
fn result_field(op: &OperationRecord, field: &str) -> anyhow::Result<String> {
    op.result
        .as_ref()
        .and_then(|r| r.get(field))
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "operation {} succeeded but its result names no {field}: {}",
                op.id,
                op.result.clone().unwrap_or(Value::Null)
            )
        })
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn label<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

#[derive(Serialize)]
#[serde(transparent)]
struct Summaries(Vec<CheckpointSummary>);

impl Tabular for Summaries {
    fn headers(&self) -> Vec<&'static str> {
        vec!["ID", "PLAN", "STATUS", "CREATED", "VOLUME BACKUPS"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        self.0
            .iter()
            .map(|c| {
                let incremental = c.volumes.iter().filter(|v| v.incremental).count();
                vec![
                    c.id.to_string(),
                    c.plan.clone().unwrap_or_else(|| "-".into()),
                    label(&c.status),
                    time(&c.created_at),
                    format!("{} ({incremental} incremental)", c.volumes.len()),
                ]
            })
            .collect()
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct Restores(Vec<RestoreSummary>);

impl Tabular for Restores {
    fn headers(&self) -> Vec<&'static str> {
        vec!["ID", "CHECKPOINT", "STATUS", "CREATED"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        self.0
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.checkpoint_id.to_string(),
                    label(&r.status),
                    time(&r.created_at),
                ]
            })
            .collect()
    }
}

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
                    o.finished_at.as_ref().map(time).unwrap_or_default(),
                    o.error.clone().unwrap_or_default(),
                ]
            })
            .collect()
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct Plans(PlanList);

impl Tabular for Plans {
    fn headers(&self) -> Vec<&'static str> {
        vec![
            "PLAN",
            "SCHEDULE",
            "NEXT RUN",
            "KEEP LAST",
            "RUNNING",
            "LAST OPERATION",
        ]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        self.0
            .items
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.schedule.clone(),
                    p.next_run.as_ref().map(time).unwrap_or_else(|| "-".into()),
                    p.retention
                        .keep_last
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "-".into()),
                    if p.running { "yes" } else { "no" }.into(),
                    p.last_operation.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect()
    }
}
