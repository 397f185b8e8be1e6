//! `podbank demo seed`: write realistic pods into etcd (for the quickstart, tests and
//! benchmarks). Refuses to write into an etcd that already holds pods under the prefix,
//! unless `--force`: it must never be pointed at a real cluster by accident.

use anyhow::Context as _;
use serde::Serialize;

use super::output::{print, Tabular};
use super::settings::Settings;
use super::Context;
use crate::codec::{resource_prefix, ResourceKind};
use crate::engine::EngineError;
use podbank_seed::{self as seed, SeedPlan};

/// The demo subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DemoCommand {
    /// Write a whole demo cluster of N pods into etcd: the pods, their claims and volumes,
    /// owners (Deployments, ReplicaSets, StatefulSets, CronJobs, Jobs), ConfigMaps, Secrets,
    /// ServiceAccounts and Namespaces.
    Seed {
        /// Number of pods.
        #[arg(long, default_value_t = 100)]
        pods: usize,
        /// Number of namespaces (ns-0 ...).
        #[arg(long, default_value_t = 5)]
        namespaces: usize,
        /// Varies uids and volume ids.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write even if pods already exist under the prefix.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Serialize)]
struct Seeded {
    pods: usize,
    keys: u64,
    revision: i64,
}

impl Tabular for Seeded {
    fn headers(&self) -> Vec<&'static str> {
        vec!["PODS", "KEYS", "REVISION"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        vec![vec![
            self.pods.to_string(),
            self.keys.to_string(),
            self.revision.to_string(),
        ]]
    }
}

/// Run a demo subcommand.
pub async fn run(ctx: &Context, settings: &Settings, cmd: DemoCommand) -> anyhow::Result<()> {
    match cmd {
        DemoCommand::Seed {
            pods,
            namespaces,
            seed: seed_value,
            force,
        } => {
            if namespaces == 0 {
                return Err(EngineError::Invalid("--namespaces must be at least 1".into()).into());
            }
            let etcd = settings.connect_etcd().await?;
            let prefix = etcd.config().prefix().to_string();
            let pods_prefix = resource_prefix(&prefix, ResourceKind::Pod, None);
            let mut kv = etcd.client().kv_client();
            let existing = kv
                .get(
                    pods_prefix.clone(),
                    Some(
                        etcd_client::GetOptions::new()
                            .with_prefix()
                            .with_count_only(),
                    ),
                )
                .await
                .with_context(|| format!("counting keys under {pods_prefix}"))?
                .count();
            if existing > 0 && !force {
                anyhow::bail!(
                    "etcd already holds {existing} pods under {pods_prefix}; \
                     refusing to seed demo pods into what may be a real cluster (use --force)"
                );
            }
            let plan = SeedPlan {
                pods,
                namespaces,
                prefix,
                seed: seed_value,
                ..SeedPlan::default()
            };
            let keys = seed::write(&etcd, seed::generate(&plan)).await?;
            let revision = etcd.current_revision().await?.get();
            print(
                ctx.output,
                &Seeded {
                    pods,
                    keys,
                    revision,
                },
            )
        }
    }
}
