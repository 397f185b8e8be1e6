//! `podbank plans list | trigger <name>`: the plans of the config file (`agent.plans`), or
//! with `--agent` those of the running agent, and running one now.

use serde::Serialize;

use super::output::{print, Tabular};
use super::Context;
use crate::engine::{Engine, EngineError, PlanRun, PlanView};

/// The plans subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PlansCommand {
    /// List the plans, their schedules and retention.
    List,
    /// Run a plan now (protect, then retention) and wait for it.
    Trigger {
        /// The plan's name.
        name: String,
    },
}

#[derive(Serialize)]
struct List {
    items: Vec<PlanView>,
}

impl Tabular for List {
    fn headers(&self) -> Vec<&'static str> {
        vec!["NAME", "SCHEDULE", "NEXT RUN", "RETENTION", "RUNNING"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        self.items
            .iter()
            .map(|p| {
                let keep = [
                    p.retention.keep_last.map(|n| format!("keep last {n}")),
                    p.retention
                        .max_age
                        .map(|d| format!("max age {}", crate::model::duration::format_duration(d))),
                ];
                let keep: Vec<String> = keep.into_iter().flatten().collect();
                vec![
                    p.name.clone(),
                    p.schedule.clone(),
                    p.next_run.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    if keep.is_empty() {
                        "everything".into()
                    } else {
                        keep.join(", ")
                    },
                    p.running.to_string(),
                ]
            })
            .collect()
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct Run(PlanRun);

impl Tabular for Run {
    fn headers(&self) -> Vec<&'static str> {
        vec!["PLAN", "CHECKPOINT", "STATUS", "DELETED", "RETENTION"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        let r = &self.0;
        vec![vec![
            r.plan.clone(),
            r.checkpoint.id.to_string(),
            r.checkpoint.status.to_string(),
            r.retention
                .deleted
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            r.retention.error.clone().unwrap_or_else(|| "ok".into()),
        ]]
    }
}

/// Runs a plans subcommand. `here`: on a local engine, whose plans come from the config
/// file; without any, the plans to ask for are a running agent's.
pub async fn run(
    ctx: &Context,
    engine: &dyn Engine,
    here: bool,
    cmd: PlansCommand,
) -> anyhow::Result<()> {
    let items = engine.plans().await?;
    if here && items.is_empty() {
        return Err(EngineError::Invalid(
            "no plans here: the config file (--config) has no agent.plans; a running agent's \
             plans are listed and run with --agent URL (or PODBANK_AGENT)"
                .into(),
        )
        .into());
    }
    match cmd {
        PlansCommand::List => print(ctx.output, &List { items }),
        PlansCommand::Trigger { name } => print(ctx.output, &Run(engine.run_plan(&name).await?)),
    }
}
