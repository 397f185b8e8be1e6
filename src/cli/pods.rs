//! `podbank pods list | show | dependents`: Karbor's protectables over etcd.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::output::{print, Tabular};
use super::{Context, UsageError};
use crate::etcd::{Revision, ScanOptions};
use crate::protection::inventory::NoHandler;
use crate::protection::{read_inventory, Inventory, PodEntry, Problem, Selection};
use crate::resources::{
    Catalog, Dependent, DependentStatus, FieldSelector, LabelSelector, POD_TYPE, VOLUME_TYPE,
};

/// The pods subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PodsCommand {
    /// List pods (all namespaces unless -n is given).
    List {
        /// Only these namespaces (repeatable, or comma-separated).
        #[arg(short = 'n', long = "namespace", value_delimiter = ',')]
        namespaces: Vec<String>,
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

/// Parse `<namespace>/<name>` or a uid into a selection of one pod.
pub fn one_pod(arg: &str) -> Result<Selection, UsageError> {
    match arg.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(Selection {
                pods: vec![(ns.to_string(), name.to_string())],
                ..Selection::default()
            })
        }
        None if !arg.is_empty() => Ok(Selection {
            uids: vec![arg.to_string()],
            ..Selection::default()
        }),
        _ => Err(UsageError(format!(
            "pod {arg:?}: expected <namespace>/<name> or a uid"
        ))),
    }
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

/// A pod as Karbor shows a protectable instance.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PodRow {
    #[serde(rename = "type")]
    resource_type: String,
    id: String,
    #[serde(flatten)]
    pod: PodEntry,
    cinder_volumes: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PodList {
    revision: Revision,
    items: Vec<PodRow>,
    pub(super) problems: Vec<Problem>,
    #[serde(skip)]
    pub(super) now: i64,
}

fn rows(inv: Inventory) -> (Vec<PodRow>, Vec<Problem>, Revision) {
    let catalog: &Catalog = &inv.catalog;
    let items = inv
        .pods
        .into_iter()
        .map(|pod| {
            let cinder_volumes = catalog
                .dependents(&pod.info)
                .iter()
                .filter(|d| d.is_protectable())
                .count();
            PodRow {
                resource_type: POD_TYPE.into(),
                id: pod.info.uid.clone(),
                pod,
                cinder_volumes,
            }
        })
        .collect();
    (items, inv.problems, inv.revision)
}

impl Tabular for PodList {
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
        self.items
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

/// A dependent as Karbor shows one (`OS::Cinder::Volume`, parent the pod).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DependentRow {
    #[serde(rename = "type")]
    resource_type: Option<String>,
    id: Option<String>,
    #[serde(flatten)]
    dependent: Dependent,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Dependents {
    revision: Revision,
    pod: String,
    pod_uid: String,
    dependents: Vec<DependentRow>,
}

impl Tabular for Dependents {
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
        self.dependents
            .iter()
            .map(|r| {
                let d = &r.dependent;
                let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
                vec![
                    d.pod_volume.clone(),
                    if d.is_protectable() {
                        VOLUME_TYPE.into()
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
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PodShow {
    revision: Revision,
    #[serde(rename = "type")]
    resource_type: String,
    #[serde(flatten)]
    pod: PodEntry,
    dependents: Vec<DependentRow>,
    #[serde(skip)]
    pub(super) now: i64,
}

impl Tabular for PodShow {
    fn headers(&self) -> Vec<&'static str> {
        vec!["FIELD", "VALUE"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        let p = &self.pod.info;
        let mut rows = vec![
            vec!["Type".into(), POD_TYPE.into()],
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
            vec!["etcd key".into(), self.pod.key.clone()],
            vec!["Revision read".into(), self.revision.to_string()],
        ];
        for d in &self.dependents {
            let d = &d.dependent;
            let what = match (&d.status, &d.volume_id) {
                (DependentStatus::Protectable, Some(id)) => format!(
                    "{VOLUME_TYPE} {id} ({}{})",
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
        rows
    }
}

async fn read(ctx: &Context, selection: &Selection) -> anyhow::Result<Inventory> {
    let etcd = ctx.connect_etcd().await?;
    let decoder = ctx.decoder()?;
    let options = ScanOptions {
        page_size: etcd.config().page_size,
        ..ScanOptions::default()
    };
    let inv = read_inventory(&etcd, &decoder, selection, &options, &mut NoHandler)
        .await
        .context("reading pods from etcd")?;
    report_problems(&inv.problems);
    Ok(inv)
}

async fn one(ctx: &Context, arg: &str) -> anyhow::Result<(PodEntry, Catalog, Revision)> {
    let selection = one_pod(arg)?;
    let mut inv = read(ctx, &selection).await?;
    let revision = inv.revision;
    match inv.pods.len() {
        0 => anyhow::bail!("pod {arg} not found at etcd revision {revision}"),
        1 => {}
        n => anyhow::bail!("{n} pods have uid {arg}; name one as <namespace>/<name>"),
    }
    let pod = inv.pods.remove(0);
    Ok((pod, inv.catalog, revision))
}

fn dependent_rows(catalog: &Catalog, pod: &PodEntry) -> Vec<DependentRow> {
    catalog
        .dependents(&pod.info)
        .into_iter()
        .map(|d| DependentRow {
            resource_type: d.is_protectable().then(|| VOLUME_TYPE.to_string()),
            id: d.volume_id.clone(),
            dependent: d,
        })
        .collect()
}

/// Run a pods subcommand.
pub async fn run(ctx: &Context, cmd: PodsCommand) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp();
    match cmd {
        PodsCommand::List {
            namespaces,
            selector,
            field_selector,
        } => {
            let selection = Selection {
                namespaces,
                labels: LabelSelector::parse(selector.as_deref().unwrap_or(""))?,
                fields: FieldSelector::parse(field_selector.as_deref().unwrap_or(""))?,
                ..Selection::default()
            };
            let (items, problems, revision) = rows(read(ctx, &selection).await?);
            print(
                ctx.output,
                &PodList {
                    revision,
                    items,
                    problems,
                    now,
                },
            )
        }
        PodsCommand::Show { pod } => {
            let (pod, catalog, revision) = one(ctx, &pod).await?;
            let dependents = dependent_rows(&catalog, &pod);
            print(
                ctx.output,
                &PodShow {
                    revision,
                    resource_type: POD_TYPE.into(),
                    pod,
                    dependents,
                    now,
                },
            )
        }
        PodsCommand::Dependents { pod } => {
            let (pod, catalog, revision) = one(ctx, &pod).await?;
            let dependents = dependent_rows(&catalog, &pod);
            print(
                ctx.output,
                &Dependents {
                    revision,
                    pod: pod.info.qualified_name(),
                    pod_uid: pod.info.uid.clone(),
                    dependents,
                },
            )
        }
    }
}
