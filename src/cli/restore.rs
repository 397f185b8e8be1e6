//! `podbank restore` and `podbank restores list | show`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::bank::BankArgs;
use super::output::{print, Tabular};
use super::{Context, UsageError};
use crate::apiserver::{ApiServer, KubeSettings};
use crate::bank::pb;
use crate::protection::report::RestoreView;
use crate::protection::schema::RestoreParams;
use crate::protection::{restore, ConflictPolicy, RestoreRequest, Target, VolumeBackups};

/// `podbank restore` arguments.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The checkpoint to restore.
    pub checkpoint: String,
    /// Only this pod, `<namespace>/<name>` (repeatable); default: every pod of the checkpoint.
    #[arg(long = "pod")]
    pub pods: Vec<String>,
    /// Karbor's restore_name: the restored pod's name (one pod only).
    #[arg(long)]
    pub restore_name: Option<String>,
    /// Karbor's restore_description, recorded in an annotation.
    #[arg(long)]
    pub restore_description: Option<String>,
    /// All parameters as a JSON object (see `podbank schema restore`); flags override it.
    #[arg(long)]
    pub parameters: Option<String>,
    /// Restore namespace OLD into NEW (repeatable): `--namespace-map old=new`.
    #[arg(long = "namespace-map")]
    pub namespace_map: Vec<String>,
    /// When an object exists: fail, skip the pod, or rename the new objects.
    #[arg(long, value_enum, default_value_t)]
    pub conflict: ConflictPolicy,
    /// Keep spec.nodeName (default: cleared, so that the scheduler places the pod).
    #[arg(long)]
    pub keep_node: bool,
    /// Restore nothing; write the objects and the plan into --export (default ./podbank-restore-plan).
    #[arg(long)]
    pub dry_run: bool,
    /// Restore nothing; write the exact objects (protobuf bytes) and plan.yaml into this folder.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Per-volume timeout, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub volume_timeout: u64,
    /// kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context.
    #[arg(long)]
    pub context: Option<String>,
}

impl RestoreArgs {
    /// The restore parameters: `--parameters` with `--restore-name` and
    /// `--restore-description` on top.
    pub(super) fn parameters_json(&self) -> Result<serde_json::Value, UsageError> {
        super::checkpoints::parameters(
            self.parameters.as_deref(),
            &[
                ("restore_name", &self.restore_name),
                ("restore_description", &self.restore_description),
            ],
        )
    }
}

/// The restores subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RestoresCommand {
    /// List restores, oldest first.
    List,
    /// Show a restore: per-resource outcome and the old -> new id map.
    Show {
        /// Restore id.
        id: String,
    },
}

#[derive(Serialize)]
struct List(Vec<RestoreView>);

impl Tabular for List {
    fn headers(&self) -> Vec<&'static str> {
        vec![
            "ID",
            "CHECKPOINT",
            "STATUS",
            "CREATED",
            "RESOURCES",
            "REASON",
        ]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        self.0
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.checkpoint_id.clone(),
                    r.status.clone(),
                    r.created_at.clone().unwrap_or_default(),
                    r.resources.len().to_string(),
                    r.reason.clone(),
                ]
            })
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct Show(pub(super) RestoreView);

impl Tabular for Show {
    fn headers(&self) -> Vec<&'static str> {
        vec!["TYPE", "SOURCE", "TARGET", "STATUS", "NEW ID", "REASON"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        self.0
            .resources
            .iter()
            .map(|r| {
                vec![
                    r.kind.clone(),
                    r.source.clone(),
                    r.target.clone(),
                    r.status.clone(),
                    r.new_id.clone(),
                    r.reason.clone(),
                ]
            })
            .collect()
    }
}

pub(super) fn parse_pod(p: &str) -> Result<(String, String), UsageError> {
    match p.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => Err(UsageError(format!(
            "pod {p:?}: expected <namespace>/<name>"
        ))),
    }
}

/// `podbank restore`.
pub async fn run_restore(
    ctx: &Context,
    bank_args: &BankArgs,
    args: RestoreArgs,
) -> anyhow::Result<()> {
    let checkpoint = args.checkpoint.parse().map_err(UsageError)?;
    let params = RestoreParams::from_json(&args.parameters_json()?)?;
    let pods = args
        .pods
        .iter()
        .map(|p| parse_pod(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut namespace_map = BTreeMap::new();
    for m in &args.namespace_map {
        match m.split_once('=') {
            Some((old, new)) if !old.is_empty() && !new.is_empty() => {
                namespace_map.insert(old.to_string(), new.to_string());
            }
            _ => return Err(UsageError(format!("--namespace-map {m:?}: expected old=new")).into()),
        }
    }
    let request = RestoreRequest {
        checkpoint,
        params,
        pods,
        namespace_map,
        conflict: args.conflict,
        keep_node: args.keep_node,
        volume_timeout: Duration::from_secs(args.volume_timeout),
    };
    let bank = bank_args.open(ctx, false).await?;
    let export = match (&args.export, args.dry_run) {
        (Some(dir), _) => Some(dir.clone()),
        (None, true) => Some(PathBuf::from("podbank-restore-plan")),
        (None, false) => None,
    };
    let record = if let Some(dir) = export {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let backups = VolumeBackups::Skip("dry run".into());
        let record = restore(&bank, Target::Export(&dir), &backups, &request).await?;
        eprintln!(
            "dry run: nothing restored; objects and plan.yaml written to {}",
            dir.display()
        );
        record
    } else {
        // Reach Cinder and the API server before anything is created.
        let cp = bank.checkpoint(&request.checkpoint).await?;
        let needs_cinder = cp.volumes.iter().any(|v| !v.backup_id.is_empty());
        let cinder = if needs_cinder {
            Some(ctx.openstack.connect(ctx).await?)
        } else {
            None
        };
        let backups = match &cinder {
            Some(c) => VolumeBackups::Cinder(c),
            None => VolumeBackups::Skip("the checkpoint has no volume backups".into()),
        };
        let api = ApiServer::connect(&KubeSettings {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
        })
        .await?;
        restore(&bank, Target::Api(&api), &backups, &request).await?
    };
    let view = RestoreView::new(&record);
    print(ctx.output, &Show(view))?;
    if record.status() == pb::RestoreStatus::Fail {
        return Err(anyhow::anyhow!(
            "restore {} failed: {}",
            record.id,
            record.reason
        ));
    }
    Ok(())
}

/// `podbank restores ...`.
pub async fn run_restores(
    ctx: &Context,
    bank_args: &BankArgs,
    cmd: RestoresCommand,
) -> anyhow::Result<()> {
    let bank = bank_args.open(ctx, false).await?;
    match cmd {
        RestoresCommand::List => {
            let (restores, problems) = bank.restore_records().await?;
            for p in &problems {
                eprintln!("warning: {}: {}", p.subject, p.reason);
            }
            let views = restores.iter().map(RestoreView::new).collect();
            print(ctx.output, &List(views))
        }
        RestoresCommand::Show { id } => {
            let r = bank.restore(&id).await?;
            print(ctx.output, &Show(RestoreView::new(&r)))
        }
    }
}
