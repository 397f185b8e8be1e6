//! `podbank checkpoints list | show | verify | delete` and `podbank protect`.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::bank::{human_bytes, BankArgs};
use super::output::{print, write_table, OutputFormat, Tabular};
use super::{Context, UsageError};
use crate::bank::{pb, CheckpointId, VerifyReport};
use crate::etcd::ScanOptions;
use crate::protection::report::CheckpointView;
use crate::protection::schema::ProtectParams;
use crate::protection::{
    delete_checkpoint, protect, DeleteOutcome, ProtectRequest, Selection, Services, VolumeBackups,
};
use crate::resources::{FieldSelector, LabelSelector};

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
    /// Only these namespaces (repeatable, or comma-separated).
    #[arg(short = 'n', long = "namespace", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Label selector over the pods.
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// Field selector over the pods.
    #[arg(long = "field-selector")]
    pub field_selector: Option<String>,
    /// Do not back up volumes (record them as not protected).
    #[arg(long)]
    pub no_volume_backups: bool,
    /// Explicit pods, `<namespace>/<name>`.
    pub pods: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct List(pub(super) Vec<CheckpointView>);

impl Tabular for List {
    fn headers(&self) -> Vec<&'static str> {
        vec![
            "ID", "NAME", "STATUS", "CREATED", "PODS", "VOLUMES", "REVISION", "NEW DATA",
        ]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        self.0
            .iter()
            .map(|c| {
                let (backed, cinder) = (c.volume_counts.backed_up, c.volume_counts.cinder);
                vec![
                    c.id.clone(),
                    c.backup_name.clone(),
                    c.status.clone(),
                    c.created_at.clone().unwrap_or_default(),
                    c.pods.to_string(),
                    format!("{backed}/{cinder}"),
                    c.etcd_revision.to_string(),
                    human_bytes(c.stats.bytes_new),
                ]
            })
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
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
                let name = if r.namespace.is_empty() {
                    r.name.clone()
                } else {
                    format!("{}/{}", r.namespace, r.name)
                };
                vec![
                    r.kind.clone(),
                    name,
                    r.status.clone(),
                    format!(
                        "rv {} {}",
                        r.resource_version,
                        &r.object_id.get(..12).unwrap_or("")
                    ),
                    r.reason.clone(),
                ]
            })
            .collect();
        for v in &self.0.volumes {
            let name = if v.volume_id.is_empty() {
                format!("{} ({})", v.pod_volume, v.pods.join(","))
            } else {
                v.volume_id.clone()
            };
            let detail = if v.backup_id.is_empty() {
                String::new()
            } else if v.incremental {
                format!("backup {} (incremental)", v.backup_id)
            } else {
                format!("backup {}", v.backup_id)
            };
            rows.push(vec![
                crate::resources::VOLUME_TYPE.to_string(),
                name,
                v.status.clone(),
                detail,
                v.reason.clone(),
            ]);
        }
        rows
    }
}

#[derive(Serialize)]
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
struct Deleted(DeleteOutcome);

impl Tabular for Deleted {
    fn headers(&self) -> Vec<&'static str> {
        vec!["ID", "STATUS", "BACKUPS DELETED", "BACKUPS KEPT"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        vec![vec![
            self.0.id.clone(),
            self.0.status.clone(),
            self.0.backups_deleted.join(","),
            self.0.backups_kept.join(","),
        ]]
    }
}

pub(super) fn checkpoint_id(s: &str) -> Result<CheckpointId, UsageError> {
    s.parse().map_err(UsageError)
}

pub(super) fn print_header(ctx: &Context, cp: &CheckpointView) -> anyhow::Result<()> {
    if ctx.output == OutputFormat::Table {
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
                cp.id.clone(),
                cp.backup_name.clone(),
                cp.status.clone(),
                cp.created_at.clone().unwrap_or_default(),
                cp.etcd_revision.to_string(),
                cp.pods.to_string(),
            ]],
        )?;
        if !cp.reason.is_empty() {
            use std::io::Write as _;
            writeln!(out, "reason: {}", cp.reason)?;
        }
        use std::io::Write as _;
        writeln!(out)?;
    }
    Ok(())
}

/// Runs a checkpoints subcommand.
pub async fn run(
    ctx: &Context,
    bank_args: &BankArgs,
    cmd: CheckpointsCommand,
) -> anyhow::Result<()> {
    match cmd {
        CheckpointsCommand::List { all } => {
            let bank = bank_args.open(ctx, false).await?;
            // Briefs: a checkpoint of 100k pods holds 300k volume records; a listing needs
            // their counts only.
            let (checkpoints, problems) = bank.checkpoint_briefs().await?;
            for p in &problems {
                eprintln!("warning: {}: {}", p.subject, p.reason);
            }
            let views = checkpoints
                .iter()
                .filter(|c| all || c.status() != pb::CheckpointStatus::Deleted)
                .map(CheckpointView::brief)
                .collect();
            print(ctx.output, &List(views))
        }
        CheckpointsCommand::Show { id } => {
            let id = checkpoint_id(&id)?;
            let bank = bank_args.open(ctx, false).await?;
            let cp = bank.checkpoint(&id).await?;
            let resources = bank.resources(&cp).await?;
            let volumes = bank.volume_records(&cp).await?;
            let view = CheckpointView::new(&cp, &resources, &volumes);
            print_header(ctx, &view)?;
            print(ctx.output, &Show(view))
        }
        CheckpointsCommand::Verify { id, all } => {
            let bank = bank_args.open(ctx, false).await?;
            let id = match (&id, all) {
                (Some(id), false) => Some(checkpoint_id(id)?),
                _ => None,
            };
            let report = bank.verify(id.as_ref()).await?;
            let clean = report.is_clean();
            let summary = format!(
                "verified {} checkpoint(s), {} object(s), {} pack(s): {}",
                report.checkpoints,
                report.objects,
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
        CheckpointsCommand::Delete(args) => delete(ctx, bank_args, args).await,
    }
}

/// `podbank delete <id>`.
pub async fn delete(ctx: &Context, bank_args: &BankArgs, args: DeleteArgs) -> anyhow::Result<()> {
    let id = checkpoint_id(&args.id)?;
    let bank = bank_args.open(ctx, false).await?;
    let cp = bank.checkpoint(&id).await?;
    let needs_cinder = cp
        .volumes
        .iter()
        .any(|v| !v.backup_id.is_empty() && v.status() != pb::VolumeStatus::VolumeDeleted);
    let cinder = if needs_cinder {
        Some(ctx.openstack.connect(ctx).await?)
    } else {
        None
    };
    let backups = match &cinder {
        Some(c) => VolumeBackups::Cinder(c),
        None => VolumeBackups::Skip("no Cinder needed".into()),
    };
    let outcome = delete_checkpoint(&bank, &id, &backups).await?;
    print(ctx.output, &Deleted(outcome))
}

/// Parameters as a JSON object: `--parameters` (if given) with the flags' values set on
/// top.
pub(super) fn parameters(
    json: Option<&str>,
    flags: &[(&str, &Option<String>)],
) -> Result<serde_json::Value, UsageError> {
    let mut params = match json {
        Some(text) => serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| UsageError(format!("--parameters is not JSON: {e}")))?,
        None => serde_json::json!({}),
    };
    let obj = params
        .as_object_mut()
        .ok_or_else(|| UsageError("--parameters must be a JSON object".into()))?;
    for (key, value) in flags {
        if let Some(v) = value {
            obj.insert((*key).into(), v.clone().into());
        }
    }
    Ok(params)
}

/// `podbank protect`.
pub async fn protect_cmd(
    ctx: &Context,
    bank_args: &BankArgs,
    args: ProtectArgs,
) -> anyhow::Result<()> {
    let params = parameters(
        args.parameters.as_deref(),
        &[
            ("backup_name", &args.backup_name),
            ("description", &args.description),
        ],
    )?;
    let validated = ProtectParams::from_json(&params)?;
    let pods = args
        .pods
        .iter()
        .map(|p| super::restore::parse_pod(p))
        .collect::<Result<Vec<_>, _>>()?;
    let selection = Selection {
        namespaces: args.namespaces.clone(),
        labels: LabelSelector::parse(args.selector.as_deref().unwrap_or(""))?,
        fields: FieldSelector::parse(args.field_selector.as_deref().unwrap_or(""))?,
        pods,
        uids: Vec::new(),
    };
    // Everything that can fail fast does, before the bank is touched.
    let cinder = if args.no_volume_backups {
        None
    } else {
        Some(ctx.openstack.connect(ctx).await?)
    };
    let backups = match &cinder {
        Some(c) => VolumeBackups::Cinder(c),
        None => VolumeBackups::Skip("volume backups disabled (--no-volume-backups)".into()),
    };
    let etcd = ctx.connect_etcd().await?;
    let decoder = ctx.decoder()?;
    let bank = bank_args.open(ctx, true).await?;
    let request = ProtectRequest {
        params: validated,
        params_json: params,
        selection,
        plan: String::new(),
        scan: ScanOptions {
            page_size: etcd.config().page_size,
            ..ScanOptions::default()
        },
        writer: Default::default(),
    };
    let services = Services {
        etcd: &etcd,
        decoder: &decoder,
        bank: &bank,
    };
    let cp = protect(services, &request, &backups)
        .await
        .context("protect failed")?;
    let view = CheckpointView::new(&cp, &[], &cp.volumes);
    let failed = cp.status() != pb::CheckpointStatus::Available;
    print(ctx.output, &List(vec![view]))?;
    if failed {
        return Err(anyhow::anyhow!(
            "checkpoint {} is {}: {}",
            cp.id,
            cp.status().label(),
            cp.reason
        ));
    }
    Ok(())
}
