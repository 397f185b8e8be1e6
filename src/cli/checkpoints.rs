//! `podbank checkpoints list | show | verify | delete`, `podbank protect` and
//! `podbank delete`, over the engine.

use serde::Serialize;

use super::bank::human_bytes;
use super::output::{print, write_table, OutputFormat, Tabular};
use super::Context;
use crate::bank::VerifyReport;
use crate::engine::views::VolumeCounts;
use crate::engine::{
    CheckpointFilter, CheckpointItem, CheckpointView, Engine, EngineError, ProtectRequest,
    SelectionSpec,
};
use crate::model::{
    CheckpointId, CheckpointStatus, HookOutcome, Namespace, ObjectRef, Relation, ResourceType,
    TakenBy,
};
use crate::protection::DeleteOutcome;

/// The checkpoints subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CheckpointsCommand {
    /// List checkpoints, oldest first.
    List {
        /// Also list deleted checkpoints kept as tombstones.
        #[arg(long)]
        all: bool,
    },
    /// Show a checkpoint: its resources and volumes with status and reasons.
    Show {
        /// Checkpoint id.
        id: String,
    },
    /// Read back and re-hash everything a checkpoint (or the whole bank) needs.
    Verify {
        /// Checkpoint id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Verify every checkpoint and every pack.
        #[arg(long)]
        all: bool,
    },
    /// Delete a checkpoint and its Cinder backups (same as `podbank delete`).
    Delete(DeleteArgs),
}

/// `podbank delete` arguments.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Checkpoint id.
    pub id: String,
}

/// `podbank protect` arguments.
#[derive(Debug, clap::Args)]
pub struct ProtectArgs {
    /// Karbor's backup_name (required unless given in --parameters).
    #[arg(long)]
    pub backup_name: Option<String>,
    /// Karbor's description (required unless given in --parameters).
    #[arg(long)]
    pub description: Option<String>,
    /// All parameters as a JSON object (see `podbank schema protect`); flags override it.
    #[arg(long)]
    pub parameters: Option<String>,
    /// Every N-th backup of a volume is a full one (parameter `full_every`; plan option
    /// `full_every`): bounds each volume's incremental chain to N backups.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub full_every: Option<u32>,
    /// Only these namespaces (repeatable, or comma-separated).
    #[arg(short = 'n', long = "namespace", value_delimiter = ',')]
    pub namespaces: Vec<Namespace>,
    /// Label selector over the pods.
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// Field selector over the pods.
    #[arg(long = "field-selector")]
    pub field_selector: Option<String>,
    /// Do not back up volumes (record them as not protected).
    #[arg(long)]
    pub no_volume_backups: bool,
    /// Store the pods' Secrets although the bank is not encrypted (config file:
    /// `bank.secrets_in_plain_bank: true`); without it, a plain bank records each Secret as
    /// skipped.
    #[arg(long)]
    pub secrets_in_plain_bank: bool,
    /// Do not run the pods' exec hooks (pre/post.hook.backup.velero.io annotations): the
    /// volumes are taken crash-consistent, and the checkpoint records the pods whose hooks
    /// were skipped. Without it, hooks with no API server to run them fail the protect.
    #[arg(long)]
    pub skip_hooks: bool,
    /// kubeconfig file, for the API server that runs the pods' exec hooks (default:
    /// $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// kubeconfig context.
    #[arg(long)]
    pub context: Option<String>,
    /// Explicit pods, `<namespace>/<name>`.
    pub pods: Vec<String>,
}

#[derive(Serialize)]
#[serde(transparent)]
pub(super) struct List(pub(super) Vec<CheckpointItem>);

const LIST_HEADERS: [&str; 8] = [
    "ID", "NAME", "STATUS", "CREATED", "PODS", "VOLUMES", "REVISION", "NEW DATA",
];

/// One row of [`LIST_HEADERS`].
#[allow(clippy::too_many_arguments)]
fn list_row(
    id: &CheckpointId,
    name: &str,
    status: CheckpointStatus,
    created: String,
    pods: u32,
    volumes: VolumeCounts,
    revision: impl ToString,
    bytes_new: u64,
) -> Vec<String> {
    vec![
        id.to_string(),
        name.to_string(),
        status.to_string(),
        created,
        pods.to_string(),
        volumes_cell(volumes),
        revision.to_string(),
        human_bytes(bytes_new),
    ]
}

/// `backed up/Cinder volumes`, and why the rest were not backed up when that was on
/// purpose: `0/380 (backups skipped)`, `3/5 (2 skipped)`.
fn volumes_cell(v: VolumeCounts) -> String {
    let counts = format!("{}/{}", v.backed_up, v.cinder);
    if v.skipped == 0 {
        counts
    } else if v.skipped == v.cinder {
        format!("{counts} (backups skipped)")
    } else {
        format!("{counts} ({} skipped)", v.skipped)
    }
}

impl Tabular for List {
    fn headers(&self) -> Vec<&'static str> {
        LIST_HEADERS.to_vec()
    }
    fn rows(&self) -> Vec<Vec<String>> {
        self.0
            .iter()
            .map(|c| {
                list_row(
                    &c.id,
                    &c.backup_name,
                    c.status,
                    c.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    c.pods,
                    c.volume_counts,
                    c.etcd_revision,
                    c.bytes_new,
                )
            })
            .collect()
    }
}

/// A checkpoint just taken, as one row of the list.
#[derive(Serialize)]
pub(super) struct Taken(pub(super) Vec<CheckpointView>);

impl Tabular for Taken {
    fn headers(&self) -> Vec<&'static str> {
        LIST_HEADERS.to_vec()
    }
    fn rows(&self) -> Vec<Vec<String>> {
        self.0
            .iter()
            .map(|c| {
                list_row(
                    &c.id,
                    &c.backup_name,
                    c.status,
                    c.created_at.clone().unwrap_or_default(),
                    c.pods,
                    c.volume_counts,
                    c.etcd_revision,
                    c.stats.bytes_new,
                )
            })
            .collect()
    }
}

#[derive(Serialize)]
#[serde(transparent)]
pub(super) struct Show(pub(super) CheckpointView);

impl Tabular for Show {
    fn headers(&self) -> Vec<&'static str> {
        vec!["TYPE", "NAME", "STATUS", "DETAIL", "REASON"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        let mut rows: Vec<Vec<String>> = self
            .0
            .resources
            .iter()
            .map(|r| {
                let name = ObjectRef::new(&r.namespace, &r.name).to_string();
                let object = r.object_id.map(|i| i.to_hex()).unwrap_or_default();
                let owner = r
                    .edges
                    .iter()
                    .find(|e| e.relation == Relation::Owner && e.controller)
                    .map(|e| format!(" owner {} {}", e.kind.kind_name(), e.target.name()))
                    .unwrap_or_default();
                vec![
                    r.kind.to_string(),
                    name,
                    r.status.to_string(),
                    format!(
                        "rv {} {}{owner}",
                        r.resource_version,
                        object.get(..12).unwrap_or("")
                    ),
                    r.reason.clone(),
                ]
            })
            .collect();
        for v in &self.0.volumes {
            let name = if v.volume_id.is_empty() {
                format!(
                    "{} ({})",
                    v.pod_volume,
                    v.pods
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            } else {
                v.volume_id.to_string()
            };
            let detail = if v.backup_id.is_empty() {
                String::new()
            } else if v.incremental {
                format!(
                    "backup {} (incremental, chain depth {})",
                    v.backup_id, v.chain_depth
                )
            } else {
                format!("backup {} (full, chain depth 0)", v.backup_id)
            };
            rows.push(vec![
                ResourceType::CinderVolume.to_string(),
                name,
                v.status.to_string(),
                detail,
                v.reason.clone(),
            ]);
        }
        rows
    }
    fn more_tables(&self) -> Vec<(Vec<&'static str>, Vec<Vec<String>>)> {
        let taken: Vec<_> = self
            .0
            .volumes
            .iter()
            .filter(|v| v.taken_by != TakenBy::Unrecorded)
            .collect();
        let hooks = self.hook_table();
        let Some(largest) = taken.iter().max_by_key(|v| v.skew_ms) else {
            return hooks.into_iter().collect();
        };
        let mut rows = vec![vec![
            "(largest skew)".to_string(),
            String::new(),
            String::new(),
            format!("{} ms", largest.skew_ms),
            format!("volume {}", largest.volume_id),
        ]];
        rows.extend(taken.iter().map(|v| {
            vec![
                v.volume_id.to_string(),
                v.taken_by.label().to_string(),
                v.snapshot_id.clone(),
                format!("{} ms", v.skew_ms),
                v.taken_reason.clone(),
            ]
        }));
        let mut tables = vec![(vec!["VOLUME", "TAKEN", "SNAPSHOT", "SKEW", "REASON"], rows)];
        tables.extend(hooks);
        tables
    }
}

impl Show {
    /// The exec hooks, in the order they ran, and the pods whose hooks were skipped.
    fn hook_table(&self) -> Option<(Vec<&'static str>, Vec<Vec<String>>)> {
        let view = &self.0;
        if view.hooks.is_empty() && view.hooks_skipped.is_empty() {
            return None;
        }
        let mut rows: Vec<Vec<String>> = view
            .hooks
            .iter()
            .map(|h| {
                let outcome = match h.exit_code {
                    Some(code) if h.outcome != HookOutcome::Succeeded => {
                        format!("{} (exit {code}, {})", h.outcome, h.on_error)
                    }
                    _ if h.outcome != HookOutcome::Succeeded => {
                        format!("{} ({})", h.outcome, h.on_error)
                    }
                    _ => h.outcome.to_string(),
                };
                // The first line of what it said: the rest is in `-o json`.
                let said = [h.stderr.trim(), h.stdout.trim()]
                    .into_iter()
                    .find(|o| !o.is_empty())
                    .and_then(|o| o.lines().next())
                    .unwrap_or_default();
                vec![
                    h.phase.to_string(),
                    format!("{} ({})", h.pod, h.container),
                    h.command.join(" "),
                    outcome,
                    h.started_at.clone(),
                    format!("{} ms", h.duration_ms),
                    [h.reason.as_str(), said]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(": "),
                ]
            })
            .collect();
        rows.extend(view.hooks_skipped.iter().map(|pod| {
            vec![
                "skipped".to_string(),
                pod.clone(),
                String::new(),
                "not run (--skip-hooks)".to_string(),
                String::new(),
                String::new(),
                String::new(),
            ]
        }));
        Some((
            vec![
                "HOOK", "POD", "COMMAND", "OUTCOME", "STARTED", "DURATION", "OUTPUT",
            ],
            rows,
        ))
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct Verify(VerifyReport);

impl Tabular for Verify {
    fn headers(&self) -> Vec<&'static str> {
        vec!["FILE", "SUBJECT", "PROBLEM", "CHECKPOINTS"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        self.0
            .problems
            .iter()
            .map(|p| {
                vec![
                    p.file.as_ref().map(ToString::to_string).unwrap_or_default(),
                    p.subject.clone(),
                    p.reason.clone(),
                    p.checkpoints.join(","),
                ]
            })
            .collect()
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct Deleted(DeleteOutcome);

impl Tabular for Deleted {
    fn headers(&self) -> Vec<&'static str> {
        vec!["ID", "STATUS", "BACKUPS DELETED", "BACKUPS KEPT"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        let join = |ids: &[crate::model::BackupId]| {
            ids.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        vec![vec![
            self.0.id.to_string(),
            self.0.status.to_string(),
            join(&self.0.backups_deleted),
            join(&self.0.backups_kept),
        ]]
    }
}

/// A checkpoint id given on the command line.
pub(super) fn checkpoint_id(s: &str) -> Result<CheckpointId, EngineError> {
    s.parse()
        .map_err(|e: crate::model::IdError| EngineError::Invalid(e.to_string()))
}

/// Pods given on the command line, `<namespace>/<name>` each.
pub(super) fn pod_refs(pods: &[String]) -> Result<Vec<ObjectRef>, EngineError> {
    pods.iter()
        .map(|p| {
            p.parse().map_err(|_| {
                EngineError::Invalid(format!("pod {p:?}: expected <namespace>/<name>"))
            })
        })
        .collect()
}

pub(super) fn print_header(ctx: &Context, cp: &CheckpointView) -> anyhow::Result<()> {
    if ctx.output == OutputFormat::Table {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        write_table(
            &mut out,
            &[
                "CHECKPOINT",
                "NAME",
                "STATUS",
                "CREATED",
                "REVISION",
                "PODS",
            ],
            &[vec![
                cp.id.to_string(),
                cp.backup_name.clone(),
                cp.status.to_string(),
                cp.created_at.clone().unwrap_or_default(),
                cp.etcd_revision.to_string(),
                cp.pods.to_string(),
            ]],
        )?;
        if !cp.reason.is_empty() {
            writeln!(out, "reason: {}", cp.reason)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Runs a checkpoints subcommand.
pub async fn run(
    ctx: &Context,
    engine: &dyn Engine,
    cmd: CheckpointsCommand,
) -> anyhow::Result<()> {
    match cmd {
        CheckpointsCommand::List { all } => {
            let list = engine
                .checkpoints(&CheckpointFilter {
                    all,
                    ..CheckpointFilter::default()
                })
                .await?;
            for p in &list.problems {
                eprintln!("warning: {}: {}", p.subject, p.reason);
            }
            // The backup chains are the API's (what retention decides on); the list here
            // names the checkpoints, `show` has their volumes.
            let items = list
                .items
                .into_iter()
                .map(|c| CheckpointItem {
                    volumes: Vec::new(),
                    ..c
                })
                .collect();
            print(ctx.output, &List(items))
        }
        CheckpointsCommand::Show { id } => {
            let view = engine.checkpoint(&checkpoint_id(&id)?).await?;
            print_header(ctx, &view)?;
            print(ctx.output, &Show(view))
        }
        CheckpointsCommand::Verify { id, all } => {
            let id = match (&id, all) {
                (Some(id), false) => Some(checkpoint_id(id)?),
                _ => None,
            };
            let report = engine.verify(id.as_ref()).await?;
            if ctx.verbose > 0 {
                eprintln!("bank requests of verify: {}", report.requests);
            }
            let clean = report.is_clean();
            let summary = format!(
                "verified {} checkpoint(s): {} object(s) ({} resources, {} record tables) in {} pack(s): {}",
                report.checkpoints,
                report.objects,
                report.objects.saturating_sub(report.tables),
                report.tables,
                report.packs,
                if clean {
                    "no problems".to_string()
                } else {
                    let affected = report.affected_checkpoints();
                    format!(
                        "{} problem(s){}",
                        report.problems.len(),
                        if affected.is_empty() {
                            String::new()
                        } else {
                            format!("; checkpoints affected: {}", affected.join(", "))
                        }
                    )
                }
            );
            if ctx.output == OutputFormat::Table {
                if !clean {
                    print(ctx.output, &Verify(report))?;
                }
                println!("{summary}");
            } else {
                print(ctx.output, &Verify(report))?;
            }
            if clean {
                Ok(())
            } else {
                Err(anyhow::anyhow!("{summary}"))
            }
        }
        CheckpointsCommand::Delete(args) => delete(ctx, engine, args).await,
    }
}

/// `podbank delete`.
pub async fn delete(ctx: &Context, engine: &dyn Engine, args: DeleteArgs) -> anyhow::Result<()> {
    let outcome = engine.delete_checkpoint(&checkpoint_id(&args.id)?).await?;
    print(ctx.output, &Deleted(outcome))
}

/// Parameters as a JSON object: `--parameters` (if given) with the flags' values set on
/// top.
pub(super) fn parameters(
    json: Option<&str>,
    flags: &[(&str, &Option<String>)],
) -> Result<serde_json::Value, EngineError> {
    let mut params = match json {
        Some(text) => serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| EngineError::Invalid(format!("--parameters is not JSON: {e}")))?,
        None => serde_json::json!({}),
    };
    let obj = params
        .as_object_mut()
        .ok_or_else(|| EngineError::Invalid("--parameters must be a JSON object".into()))?;
    for (key, value) in flags {
        if let Some(v) = value {
            obj.insert((*key).into(), v.clone().into());
        }
    }
    Ok(params)
}

/// `podbank protect`.
pub async fn protect(ctx: &Context, engine: &dyn Engine, args: ProtectArgs) -> anyhow::Result<()> {
    let cp = engine
        .protect(protect_request(&args)?)
        .await
        .map_err(|e| anyhow::Error::new(e).context("protect failed"))?;
    let failed = cp.status != CheckpointStatus::Available;
    let (id, status, reason) = (cp.id.clone(), cp.status, cp.reason.clone());
    print(ctx.output, &Taken(vec![cp]))?;
    if failed {
        return Err(anyhow::anyhow!("checkpoint {id} is {status}: {reason}"));
    }
    Ok(())
}

impl ProtectArgs {
    /// Where the API server that runs the hooks is.
    pub fn kube_settings(&self) -> crate::apiserver::KubeSettings {
        crate::apiserver::KubeSettings {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

/// The request of `podbank protect`, checked: a bad one fails before anything is reached.
pub(super) fn protect_request(args: &ProtectArgs) -> anyhow::Result<ProtectRequest> {
    let mut parameters = parameters(
        args.parameters.as_deref(),
        &[
            ("backup_name", &args.backup_name),
            ("description", &args.description),
        ],
    )?;
    if let (Some(n), Some(obj)) = (args.full_every, parameters.as_object_mut()) {
        obj.insert("full_every".into(), n.into());
    }
    let parameters = crate::protection::schema::ProtectParams::from_json(&parameters)
        .map_err(|e| EngineError::Invalid(e.to_string()))?;
    let selection = SelectionSpec {
        namespaces: args.namespaces.clone(),
        label_selector: args.selector.clone(),
        field_selector: args.field_selector.clone(),
        pods: pod_refs(&args.pods)?,
        uids: Vec::new(),
    };
    selection.resolve()?;
    Ok(ProtectRequest {
        plan: None,
        selection,
        parameters,
        volume_backups: !args.no_volume_backups,
        secrets_in_plain_bank: args.secrets_in_plain_bank,
        skip_hooks: args.skip_hooks,
        hooks: Vec::new(),
        checkpoint_id: None,
        project_id: String::new(),
    })
}
