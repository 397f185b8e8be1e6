//! The agent's Prometheus metrics (`GET /metrics`, OpenMetrics text).
//!
//! Owns the registry and every metric in it. The rest of the agent reports events through
//! the methods here (a protect finished, a checkpoint was deleted, leadership changed);
//! nothing else touches prometheus-client. The `plan` label is the plan's name, or
//! `_on_demand` for checkpoints outside any plan (plan names cannot start with `_`).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::api::ProtectStats;

/// The `plan` label value of on-demand checkpoints.
pub const ON_DEMAND: &str = "_on_demand";

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanLabel {
    plan: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanOutcome {
    plan: String,
    outcome: String,
}

/// Every metric of the agent.
pub struct Metrics {
    registry: Registry,
    checkpoint_duration: Family<PlanOutcome, Histogram>,
    objects_written: Family<PlanLabel, Counter>,
    objects_reused: Family<PlanLabel, Counter>,
    bytes_written: Family<PlanLabel, Counter>,
    dedup_ratio: Family<PlanLabel, Gauge<f64, AtomicU64>>,
    last_success: Family<PlanLabel, Gauge<f64, AtomicU64>>,
    cinder_backup_failures: Family<PlanLabel, Counter>,
    checkpoints_deleted: Family<PlanLabel, Counter>,
    retention_failures: Family<PlanLabel, Counter>,
    schedule_skipped: Family<PlanLabel, Counter>,
    leader: Gauge,
    operations_running: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn label(plan: Option<&str>) -> PlanLabel {
    PlanLabel {
        plan: plan.unwrap_or(ON_DEMAND).to_string(),
    }
}

impl Metrics {
    /// A registry with every metric registered, all at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("podbank");
        let checkpoint_duration = Family::<PlanOutcome, Histogram>::new_with_constructor(|| {
            // 0.5 s .. ~4.5 h
            Histogram::new(exponential_buckets(0.5, 2.0, 16))
        });
        let m = Metrics {
            checkpoint_duration,
            objects_written: Family::default(),
            objects_reused: Family::default(),
            bytes_written: Family::default(),
            dedup_ratio: Family::default(),
            last_success: Family::default(),
            cinder_backup_failures: Family::default(),
            checkpoints_deleted: Family::default(),
            retention_failures: Family::default(),
            schedule_skipped: Family::default(),
            leader: Gauge::default(),
            operations_running: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register_with_unit(
            "checkpoint_duration",
            "Time taken by a protect, by plan and outcome (available, error, failed)",
            Unit::Seconds,
            m.checkpoint_duration.clone(),
        );
        registry.register(
            "objects_written",
            "Objects newly written to the bank by protects",
            m.objects_written.clone(),
        );
        registry.register(
            "objects_reused",
            "Objects of protects that the bank already held (deduplicated)",
            m.objects_reused.clone(),
        );
        registry.register_with_unit(
            "bank_written",
            "Bytes newly written to the bank by protects (after compression)",
            Unit::Bytes,
            m.bytes_written.clone(),
        );
        registry.register(
            "dedup_ratio",
            "Share of the last checkpoint's objects already in the bank (0..1)",
            m.dedup_ratio.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last available checkpoint of the plan",
            m.last_success.clone(),
        );
        registry.register(
            "cinder_backup_failures",
            "Cinder volume backups that failed during protects",
            m.cinder_backup_failures.clone(),
        );
        registry.register(
            "checkpoints_deleted",
            "Checkpoints deleted by retention",
            m.checkpoints_deleted.clone(),
        );
        registry.register(
            "retention_failures",
            "Retention passes that stopped on an error",
            m.retention_failures.clone(),
        );
        registry.register(
            "schedule_skipped",
            "Scheduled runs skipped because the previous run was still in progress",
            m.schedule_skipped.clone(),
        );
        registry.register(
            "leader",
            "1 if this replica leads (runs the schedules), else 0",
            m.leader.clone(),
        );
        registry.register(
            "operations_running",
            "Operations (protects, deletes, restores) running on this replica",
            m.operations_running.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A protect finished with an outcome (checkpoint available or error).
    pub fn protect_done(
        &self,
        plan: Option<&str>,
        elapsed: Duration,
        available: bool,
        stats: &ProtectStats,
    ) {
        let l = label(plan);
        let outcome = if available { "available" } else { "error" };
        self.checkpoint_duration
            .get_or_create(&PlanOutcome {
                plan: l.plan.clone(),
                outcome: outcome.into(),
            })
            .observe(elapsed.as_secs_f64());
        self.objects_written
            .get_or_create(&l)
            .inc_by(stats.objects_written);
        self.objects_reused
            .get_or_create(&l)
            .inc_by(stats.objects_reused);
        self.bytes_written
            .get_or_create(&l)
            .inc_by(stats.bytes_written);
        self.dedup_ratio.get_or_create(&l).set(stats.dedup_ratio());
        self.cinder_backup_failures
            .get_or_create(&l)
            .inc_by(stats.volume_backup_failures);
        if available {
            let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
            self.last_success.get_or_create(&l).set(now);
        }
    }

    /// A protect failed without producing a checkpoint.
    pub fn protect_failed(&self, plan: Option<&str>, elapsed: Duration) {
        self.checkpoint_duration
            .get_or_create(&PlanOutcome {
                plan: label(plan).plan,
                outcome: "failed".into(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Retention deleted a checkpoint of `plan`.
    pub fn checkpoint_deleted(&self, plan: &str) {
        self.checkpoints_deleted
            .get_or_create(&label(Some(plan)))
            .inc();
    }

    /// A retention pass of `plan` stopped on an error.
    pub fn retention_failed(&self, plan: &str) {
        self.retention_failures
            .get_or_create(&label(Some(plan)))
            .inc();
    }

    /// A scheduled run of `plan` was skipped.
    pub fn schedule_skipped(&self, plan: &str) {
        self.schedule_skipped
            .get_or_create(&label(Some(plan)))
            .inc();
    }

    /// Leadership changed.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The number of running operations changed.
    pub fn set_operations_running(&self, n: usize) {
        self.operations_running
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_rendered_with_its_labels() {
        let m = Metrics::new();
        m.set_leader(true);
        m.protect_done(
            Some("nightly"),
            Duration::from_millis(1500),
            true,
            &ProtectStats {
                pods: 3,
                objects_written: 3,
                objects_reused: 1,
                bytes_written: 4096,
                volume_backups: 2,
                volume_backup_failures: 1,
            },
        );
        m.protect_failed(None, Duration::from_secs(1));
        m.checkpoint_deleted("nightly");
        m.retention_failed("nightly");
        m.schedule_skipped("nightly");
        m.set_operations_running(2);
        let text = m.render();
        for want in [
            "podbank_checkpoint_duration_seconds_count{plan=\"nightly\",outcome=\"available\"} 1",
            "podbank_checkpoint_duration_seconds_count{plan=\"_on_demand\",outcome=\"failed\"} 1",
            "podbank_objects_written_total{plan=\"nightly\"} 3",
            "podbank_objects_reused_total{plan=\"nightly\"} 1",
            "podbank_bank_written_bytes_total{plan=\"nightly\"} 4096",
            "podbank_dedup_ratio{plan=\"nightly\"} 0.25",
            "podbank_last_success_timestamp_seconds{plan=\"nightly\"} ",
            "podbank_cinder_backup_failures_total{plan=\"nightly\"} 1",
            "podbank_checkpoints_deleted_total{plan=\"nightly\"} 1",
            "podbank_retention_failures_total{plan=\"nightly\"} 1",
            "podbank_schedule_skipped_total{plan=\"nightly\"} 1",
            "podbank_leader 1",
            "podbank_operations_running 2",
            "# EOF",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}
