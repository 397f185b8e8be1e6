//! `podbank pods list | show | dependents`: Karbor's protectables, as the engine reads them.

use serde::Serialize;

use super::output::{print, Tabular};
use super::Context;
use crate::engine::{
    ClosureView, DependentsView, Engine, PodDetail, PodList, PodSpecifier, SelectionSpec,
};
use crate::model::{Namespace, Relation, ResourceStatus};
use crate::protection::Problem;
use crate::resources::DependentStatus;

/// The pods subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PodsCommand {
    /// List pods (all namespaces unless -n is given).
    List {
        /// Only these namespaces (repeatable, or comma-separated).
        #[arg(short = 'n', long = "namespace", value_delimiter = ',')]
        namespaces: Vec<Namespace>,
        /// Label selector, e.g. 'app=web,tier in (a,b),!canary'.
        #[arg(short = 'l', long = "selector")]
        selector: Option<String>,
        /// Field selector: metadata.name, metadata.namespace, metadata.uid, spec.nodeName,
        /// status.phase with =, == or !=.
        #[arg(long = "field-selector")]
        field_selector: Option<String>,
    },
    /// Show one pod and its volumes.
    Show {
        /// `<namespace>/<name>` or the pod's uid.
        pod: String,
    },
    /// The Cinder volumes a pod depends on, and why its other volumes are not protectable.
    Dependents {
        /// `<namespace>/<name>` or the pod's uid.
        pod: String,
    },
}

fn report_problems(problems: &[Problem]) {
    for p in problems {
        eprintln!("warning: cannot read {}: {}", p.key, p.reason);
    }
}

fn age(created: Option<i64>, now: i64) -> String {
    let Some(c) = created else {
        return "<unknown>".into();
    };
    let s = (now - c).max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// A view and the time its ages are counted from.
#[derive(Serialize)]
#[serde(transparent)]
struct At<T> {
    view: T,
    #[serde(skip)]
    now: i64,
}

impl Tabular for At<PodList> {
    fn headers(&self) -> Vec<&'static str> {
        vec![
            "NAMESPACE",
            "NAME",
            "UID",
            "NODE",
            "PHASE",
            "VOLUMES",
            "AGE",
        ]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        self.view
            .items
            .iter()
            .map(|r| {
                let p = &r.pod.info;
                vec![
                    p.namespace.clone(),
                    p.name.clone(),
                    p.uid.clone(),
                    p.node.clone().unwrap_or_else(|| "<none>".into()),
                    p.phase.clone().unwrap_or_else(|| "<unknown>".into()),
                    format!("{}/{} cinder", r.cinder_volumes, p.volumes.len()),
                    age(p.created, self.now),
                ]
            })
            .collect()
    }
}

impl Tabular for At<DependentsView> {
    fn headers(&self) -> Vec<&'static str> {
        vec![
            "VOLUME",
            "TYPE",
            "CINDER VOLUME",
            "DRIVER",
            "CLAIM",
            "PV",
            "PROTECTABLE",
        ]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        self.view
            .dependents
            .iter()
            .map(|r| {
                let d = &r.dependent;
                let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
                vec![
                    d.pod_volume.clone(),
                    if d.is_protectable() {
                        crate::model::ResourceType::CinderVolume.karbor().into()
                    } else {
                        "-".into()
                    },
                    dash(&d.volume_id),
                    d.driver
                        .map(|x| x.as_str().to_string())
                        .unwrap_or_else(|| "-".into()),
                    dash(&d.claim),
                    dash(&d.persistent_volume),
                    match &d.status {
                        DependentStatus::Protectable => "yes".into(),
                        DependentStatus::NotProtectable(reason) => format!("no: {reason}"),
                    },
                ]
            })
            .collect()
    }
    /// The closure, in its own table: what the pod needs besides its volumes.
    fn more_tables(&self) -> Vec<(Vec<&'static str>, Vec<Vec<String>>)> {
        if self.view.closure.is_empty() {
            return Vec::new();
        }
        let rows = self
            .view
            .closure
            .iter()
            .map(|c| {
                vec![
                    c.relation.to_string(),
                    c.kind.to_string(),
                    c.name.to_string(),
                    if c.uid.is_empty() {
                        "-".into()
                    } else {
                        c.uid.clone()
                    },
                    closure_state(c),
                ]
            })
            .collect();
        vec![(vec!["NEEDS", "TYPE", "NAME", "UID", "CAPTURED"], rows)]
    }
}

/// Whether protect captures a closure object, and why not.
fn closure_state(c: &ClosureView) -> String {
    if c.status == ResourceStatus::Missing {
        format!("no: {}", c.reason)
    } else if c.relation == Relation::Secret {
        "yes (stored in an encrypted bank only, or with --secrets-in-plain-bank)".into()
    } else {
        "yes".into()
    }
}

impl Tabular for At<PodDetail> {
    fn headers(&self) -> Vec<&'static str> {
        vec!["FIELD", "VALUE"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        let p = &self.view.pod.info;
        let mut rows = vec![
            vec![
                "Type".into(),
                crate::model::ResourceKind::Pod.karbor().into(),
            ],
            vec!["Namespace".into(), p.namespace.clone()],
            vec!["Name".into(), p.name.clone()],
            vec!["UID".into(), p.uid.clone()],
            vec![
                "Node".into(),
                p.node.clone().unwrap_or_else(|| "<none>".into()),
            ],
            vec![
                "Phase".into(),
                p.phase.clone().unwrap_or_else(|| "<unknown>".into()),
            ],
            vec!["Age".into(), age(p.created, self.now)],
            vec![
                "Labels".into(),
                p.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ],
            vec!["etcd key".into(), self.view.pod.key.clone()],
            vec!["Revision read".into(), self.view.revision.to_string()],
        ];
        for d in &self.view.dependents {
            let d = &d.dependent;
            let what = match (&d.status, &d.volume_id) {
                (DependentStatus::Protectable, Some(id)) => format!(
                    "{} {id} ({}{})",
                    crate::model::ResourceType::CinderVolume.karbor(),
                    d.driver.map(|x| x.as_str()).unwrap_or("-"),
                    d.claim
                        .as_ref()
                        .map(|c| format!(", claim {c}"))
                        .unwrap_or_default()
                ),
                (DependentStatus::NotProtectable(reason), _) => {
                    format!("not protectable: {reason}")
                }
                _ => "-".into(),
            };
            rows.push(vec![format!("Volume {}", d.pod_volume), what]);
        }
        for c in &self.view.closure {
            rows.push(vec![
                format!("Needs {}", c.relation),
                format!("{} {} ({})", c.kind, c.name, closure_state(c)),
            ]);
        }
        rows
    }
}

/// Run a pods subcommand.
pub async fn run(ctx: &Context, engine: &dyn Engine, cmd: PodsCommand) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp();
    match cmd {
        PodsCommand::List {
            namespaces,
            selector,
            field_selector,
        } => {
            let selection = SelectionSpec {
                namespaces,
                label_selector: selector,
                field_selector,
                ..SelectionSpec::default()
            };
            let view = engine.pods(&selection).await?;
            report_problems(&view.problems);
            print(ctx.output, &At { view, now })
        }
        PodsCommand::Show { pod } => {
            let view = engine.pod(&pod.parse::<PodSpecifier>()?).await?;
            print(ctx.output, &At { view, now })
        }
        PodsCommand::Dependents { pod } => {
            let view = DependentsView::from(engine.pod(&pod.parse::<PodSpecifier>()?).await?);
            print(ctx.output, &At { view, now })
        }
    }
}
