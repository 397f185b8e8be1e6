//! `podbank restore` and `podbank restores list | show`, over the engine.

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use serde::Serialize;

use super::output::{print, Tabular};
use super::Context;
use crate::apiserver::KubeSettings;
use crate::engine::{Engine, EngineError, RestoreItem, RestoreMode, RestoreRequest, RestoreView};
use crate::model::{Outcome, RestoreStatus};
use crate::protection::restore::{ConflictPolicy, NamespaceMap};

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
    #[arg(long, value_parser = conflict_policy(), default_value_t)]
    pub conflict: ConflictPolicy,
    /// Keep spec.nodeName (default: cleared, so that the scheduler places the pod).
    #[arg(long)]
    pub keep_node: bool,
    /// Karbor's original semantics: bare pods, ownerReferences removed, owners not
    /// restored (default: a pod with a controller comes back through its top owner).
    #[arg(long)]
    pub pods_only: bool,
    /// Volumes protected without a backup (`protect --no-volume-backups`) keep their
    /// original Cinder volume: the PV is restored naming it (default: such a pod fails).
    #[arg(long)]
    pub original_volumes: bool,
    /// Watch what was created this long (`10s`, `1m`, `0` not at all); the restore fails
    /// if the cluster deletes any of it meanwhile.
    #[arg(long, value_parser = crate::model::duration::parse_duration)]
    pub settle: Option<std::time::Duration>,
    /// How many pods (or top owners) to restore at once [default: 32].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: Option<u16>,
    /// How many Cinder volumes to restore at once [default: 8].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub volume_concurrency: Option<u16>,
    /// Restore nothing; write the objects and the plan into --export (default ./podbank-restore-plan).
    #[arg(long)]
    pub dry_run: bool,
    /// Restore nothing; write the exact objects (protobuf bytes) and plan.yaml into this folder.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Per-volume timeout, in seconds.
    #[arg(long, default_value_t = DEFAULT_VOLUME_TIMEOUT)]
    pub volume_timeout: u64,
    /// kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context.
    #[arg(long)]
    pub context: Option<String>,
}

/// `--conflict`: one of [`ConflictPolicy::ALL`] by its label, each with what it does.
fn conflict_policy() -> impl TypedValueParser<Value = ConflictPolicy> {
    let help = |p: ConflictPolicy| match p {
        ConflictPolicy::Fail => "The pod's restore fails with the API server's message",
        ConflictPolicy::Skip => "The pod is skipped (nothing of it is created)",
        ConflictPolicy::Rename => "The new objects get a suffix (`-<restore id>`)",
    };
    PossibleValuesParser::new(
        ConflictPolicy::ALL.map(|p| PossibleValue::new(p.label()).help(help(p))),
    )
    .try_map(|s| s.parse::<ConflictPolicy>())
}

impl RestoreArgs {
    /// The restore parameters: `--parameters` with `--restore-name` and
    /// `--restore-description` on top.
    pub(super) fn parameters_json(&self) -> Result<serde_json::Value, EngineError> {
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

impl RestoreArgs {
    /// Where the API server is.
    pub fn kube_settings(&self) -> KubeSettings {
        KubeSettings {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct List(Vec<RestoreItem>);

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
                    r.id.to_string(),
                    r.checkpoint_id.to_string(),
                    r.status.to_string(),
                    r.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    r.resources.to_string(),
                    r.reason.clone(),
                ]
            })
            .collect()
    }
}

#[derive(Serialize)]
#[serde(transparent)]
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
                    r.kind.to_string(),
                    r.source.to_string(),
                    r.target.clone(),
                    r.status.to_string(),
                    r.new_id.clone(),
                    r.reason.clone(),
                ]
            })
            .collect()
    }
}

/// `podbank restore`.
pub async fn run_restore(
    ctx: &Context,
    engine: &dyn Engine,
    args: RestoreArgs,
) -> anyhow::Result<()> {
    let request = request(&args)?;
    let export = match &request.mode {
        RestoreMode::Export(dir) => Some(dir.clone()),
        RestoreMode::Apply => None,
    };
    let view = engine.restore(request).await?;
    if let Some(dir) = &export {
        eprintln!(
            "dry run: nothing restored; objects and plan.yaml written to {}",
            dir.display()
        );
    }
    let (id, failed, reason) = (
        view.id.clone(),
        view.status == RestoreStatus::Fail,
        view.reason.clone(),
    );
    if export.is_none() && ctx.output == super::output::OutputFormat::Table {
        eprintln!("{}", summary(&view));
    }
    if ctx.verbose > 0 {
        let s = &view.stats;
        eprintln!(
            "bank requests of restore {}: {} GETs + {} ranged GETs ({} of packs), {:.2} MiB read",
            view.id,
            s.bank_gets,
            s.bank_range_gets,
            s.bank_pack_gets,
            s.bank_bytes_read as f64 / f64::from(1 << 20)
        );
    }
    print(ctx.output, &Show(view))?;
    if failed {
        return Err(anyhow::anyhow!("restore {id} failed: {reason}"));
    }
    Ok(())
}

/// One line on how a restore went: objects, rate, record writes, throttling.
fn summary(view: &RestoreView) -> String {
    let s = &view.stats;
    let made = view
        .resources
        .iter()
        .filter(|r| matches!(r.status, Outcome::Restored | Outcome::Reused))
        .count();
    let rate = if s.run_seconds > 0.0 {
        made as f64 / s.run_seconds
    } else {
        0.0
    };
    let mut line = format!(
        "restore {}: {made} resource(s) restored or reused in {:.2} s ({rate:.0}/s); record: {} write(s), {:.0} ms",
        view.id,
        s.run_seconds,
        s.record_writes,
        s.record_write_seconds * 1000.0
    );
    if s.throttled > 0 {
        line.push_str(&format!(
            "; the API server asked {} time(s) to retry later (429), {:.1} s waited",
            s.throttled, s.throttle_wait_seconds
        ));
    }
    line
}

/// The request of `podbank restore`, checked: a bad one fails before anything is reached.
pub(super) fn request(args: &RestoreArgs) -> anyhow::Result<RestoreRequest> {
    let checkpoint_id = super::checkpoints::checkpoint_id(&args.checkpoint)?;
    let parameters = crate::protection::schema::RestoreParams::from_json(&args.parameters_json()?)
        .map_err(|e| EngineError::Invalid(e.to_string()))?;
    let pods = super::checkpoints::pod_refs(&args.pods)?;
    let namespace_map = NamespaceMap::parse(&args.namespace_map)
        .map_err(|e| EngineError::Invalid(e.to_string()))?;
    let export = match (&args.export, args.dry_run) {
        (Some(dir), _) => Some(dir.clone()),
        (None, true) => Some(PathBuf::from("podbank-restore-plan")),
        (None, false) => None,
    };
    Ok(RestoreRequest {
        checkpoint_id,
        pods,
        parameters,
        namespace_map,
        conflict: args.conflict,
        keep_node: args.keep_node,
        pods_only: args.pods_only,
        original_volumes: args.original_volumes,
        settle: args.settle,
        concurrency: args.concurrency.map(usize::from),
        volume_concurrency: args.volume_concurrency.map(usize::from),
        mode: export.map_or(RestoreMode::Apply, RestoreMode::Export),
        restore_id: None,
        project_id: String::new(),
    })
}

/// `--volume-timeout`'s default, in seconds.
pub const DEFAULT_VOLUME_TIMEOUT: u64 = 3600;

/// `podbank restores ...`.
pub async fn run_restores(
    ctx: &Context,
    engine: &dyn Engine,
    cmd: RestoresCommand,
) -> anyhow::Result<()> {
    match cmd {
        RestoresCommand::List => {
            let list = engine.restores().await?;
            for p in &list.problems {
                eprintln!("warning: {}: {}", p.subject, p.reason);
            }
            print(ctx.output, &List(list.items))
        }
        RestoresCommand::Show { id } => {
            let id = id
                .parse()
                .map_err(|e: crate::model::IdError| EngineError::Invalid(e.to_string()))?;
            print(ctx.output, &Show(engine.restore_record(&id).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;

    fn conflict(args: &[&str]) -> Result<ConflictPolicy, clap::Error> {
        let cli = Cli::try_parse_from(["podbank", "restore", "cp"].iter().chain(args))?;
        match cli.command {
            Command::Restore(a) => Ok(a.conflict),
            other => panic!("not a restore: {other:?}"),
        }
    }

    #[test]
    fn conflict_takes_each_policy_by_its_label_and_defaults_to_fail() {
        assert_eq!(conflict(&[]).ok(), Some(ConflictPolicy::Fail));
        for p in ConflictPolicy::ALL {
            assert_eq!(conflict(&["--conflict", p.label()]).ok(), Some(p));
        }
        let err = conflict(&["--conflict", "bogus"]).err().map(|e| e.kind());
        assert_eq!(err, Some(clap::error::ErrorKind::InvalidValue));
    }
}
