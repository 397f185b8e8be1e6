//! [`LocalEngine`]: the application API done here, over etcd, the bank, Cinder and the API
//! server, by [`crate::protection`]. It owns the wiring (which services, which options) and
//! the translation of protection's results into views and its errors into
//! [`EngineError`]s; the work itself is protection's.

mod pages;

use crate::protection::SharedProgress;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::lazy::Lazy;
use super::plans::{run_plan, Plan, PlanRun, PlanView};
use super::views::{
    CheckpointItem, CheckpointList, CheckpointView, ClosureView, PodDetail, PodList, PodPage,
    PodView, ReadinessCheck, RestoreItem, RestoreList, RestoreView,
};
use super::{
    check_pods, CheckpointFilter, Engine, EngineError, PageRequest, PodSpecifier, ProtectRequest,
    RestoreMode, RestoreRequest, SelectionSpec,
};
use crate::apiserver::ApiServer;
use crate::bank::{Bank, BankError, GcReport, Kind, RepairReport, Stats, VerifyReport};
use crate::cinder::Cinder;
use crate::codec::Decoder;
use crate::etcd::{Etcd, ScanOptions};
use crate::model::{
    CheckpointId, CheckpointStatus, ObjectRef, PlanId, ResourceKind, ResourceStatus, ResourceType,
    RestoreId, ScheduledOperationId, StoredOperation, StoredPlan, StoredTrigger, TriggerId,
    VolumeStatus,
};
use crate::protection::hooks::{HookExec, PlanHooks};
use crate::protection::inventory::NoHandler;
use crate::protection::restore::{
    self as restoring, BankJournal, ClusterTarget, ExportTarget, NoJournal,
};
use crate::protection::{
    self, read_inventory, DeleteOutcome, Inventory, ProtectionError, SecretPolicy, Selection,
    Services, VolumeBackups,
};
use crate::resources::relation_of;

/// How the engine backs up Cinder volumes.
#[non_exhaustive]
pub enum VolumeMode {
    /// No volume backups: volumes are recorded as not protected, with this reason.
    Skip(String),
    /// Back up, delete and restore volumes through this Cinder (connected on first use,
    /// so that what needs no Cinder needs no credentials either).
    Cinder(Lazy<Cinder>),
}

/// The protection engine over etcd and a bank.
pub struct LocalEngine {
    etcd: Lazy<Etcd>,
    decoder: Decoder,
    bank: Lazy<Arc<Bank>>,
    volumes: VolumeMode,
    api: Option<Lazy<ApiServer>>,
    plans: Vec<Plan>,
    volume_timeout: Duration,
    /// Secrets may go into a plain bank (`bank.secrets_in_plain_bank`).
    secrets_in_plain_bank: bool,
    /// Where protect and restore report how far they are.
    progress: SharedProgress,
    /// The etcd key of every pod uid listed so far.
    uid_keys: pages::UidKeys,
}

impl LocalEngine {
    /// An engine reading `etcd` (with `decoder`) and keeping checkpoints in `bank`.
    pub fn new(
        etcd: Lazy<Etcd>,
        decoder: Decoder,
        bank: Lazy<Arc<Bank>>,
        volumes: VolumeMode,
    ) -> Self {
        LocalEngine {
            etcd,
            decoder,
            bank,
            volumes,
            api: None,
            plans: Vec::new(),
            volume_timeout: Duration::from_secs(3600),
            secrets_in_plain_bank: false,
            progress: protection::progress::silent(),
            uid_keys: pages::UidKeys::default(),
        }
    }

    /// Report how far protect and restore are to `progress` (default: to nobody).
    pub fn with_progress(mut self, progress: SharedProgress) -> Self {
        self.progress = progress;
        self
    }

    /// Lets the engine restore through this API server (without one, restores answer
    /// "unavailable").
    pub fn with_api_server(mut self, api: Lazy<ApiServer>) -> Self {
        self.api = Some(api);
        self
    }

    /// The plans `plans` and `run_plan` know.
    pub fn with_plans(mut self, plans: Vec<Plan>) -> Self {
        self.plans = plans;
        self
    }

    /// Let protect store Secrets in a plain bank (the config file's
    /// `bank.secrets_in_plain_bank`).
    pub fn with_secrets_in_plain_bank(mut self, allow: bool) -> Self {
        self.secrets_in_plain_bank = allow;
        self
    }

    /// How long a restore waits for one volume.
    pub fn with_volume_timeout(mut self, timeout: Duration) -> Self {
        self.volume_timeout = timeout;
        self
    }

    /// The bank, opened on first use.
    pub async fn bank(&self) -> Result<&Arc<Bank>, EngineError> {
        self.bank.get().await
    }

    async fn etcd(&self) -> Result<&Etcd, EngineError> {
        self.etcd.get().await
    }

    /// Cinder for work that needs it (`needed`), connected on first use; otherwise, or
    /// without Cinder, the reason volumes are not backed up.
    async fn backups(&self, needed: bool, why_not: &str) -> Result<VolumeBackups<'_>, EngineError> {
        if !needed {
            return Ok(VolumeBackups::Skip(why_not.to_string()));
        }
        match &self.volumes {
            VolumeMode::Skip(reason) => Ok(VolumeBackups::Skip(reason.clone())),
            VolumeMode::Cinder(c) => c.get().await.map(VolumeBackups::Cinder),
        }
    }

    async fn api(&self) -> Result<&ApiServer, EngineError> {
        match &self.api {
            Some(api) => api.get().await,
            None => Err(EngineError::Unavailable(
                "no Kubernetes API server configured for restores (kubeconfig or in-cluster)"
                    .into(),
            )),
        }
    }

    fn scan_options(etcd: &Etcd) -> ScanOptions {
        ScanOptions {
            page_size: etcd.config().page_size,
            ..ScanOptions::default()
        }
    }

    async fn inventory(&self, selection: &Selection) -> Result<Inventory, EngineError> {
        let etcd = self.etcd().await?;
        read_inventory(
            etcd,
            &self.decoder,
            selection,
            &Self::scan_options(etcd),
            &mut NoHandler,
        )
        .await
        .map_err(from_protection)
    }
}

/// How long `gc` waits for a leftover snapshot to be deleted.
const SNAPSHOT_DELETE_TIMEOUT: Duration = Duration::from_secs(300);

/// Whether deleting `cp` needs Cinder: it (or an older tombstone the delete sweeps) lists
/// a backup that is not deleted yet.
async fn needs_cinder(cp: &crate::model::Checkpoint, bank: &Bank) -> bool {
    let live = |c: &crate::model::Checkpoint| {
        c.volumes
            .iter()
            .any(|v| v.backup_id.is_some() && v.status != VolumeStatus::Deleted)
            || (c.status == CheckpointStatus::Error
                && c.volumes
                    .iter()
                    .any(|v| v.snapshot_id.is_some() || v.group_snapshot_id.is_some()))
    };
    if live(cp) {
        return true;
    }
    match bank.checkpoints().await {
        Ok((all, _)) => all
            .iter()
            .any(|c| c.status == CheckpointStatus::Deleted && live(c)),
        Err(_) => false,
    }
}

/// A protection error as the API reports it.
pub fn from_protection(e: ProtectionError) -> EngineError {
    if e.is_invalid_request() {
        return EngineError::Invalid(e.to_string());
    }
    match e {
        ProtectionError::Bank(b) => from_bank(b),
        ProtectionError::Restore(restoring::RestoreError::Bank(b)) => from_bank(b),
        e @ ProtectionError::Etcd(_) => EngineError::Unavailable(e.to_string()),
        e @ ProtectionError::PodNotFound(..) => EngineError::NotFound(e.to_string()),
        e @ (ProtectionError::InvalidState { .. }
        | ProtectionError::Restore(restoring::RestoreError::NotRestorable { .. })) => {
            EngineError::Conflict(e.to_string())
        }
        other => EngineError::Failed(other.to_string()),
    }
}

/// A bank error as the API reports it.
pub fn from_bank(e: BankError) -> EngineError {
    match e {
        e @ (BankError::CheckpointNotFound { .. } | BankError::RestoreNotFound { .. }) => {
            EngineError::NotFound(e.to_string())
        }
        e @ (BankError::Locked { .. } | BankError::InvalidState { .. }) => {
            EngineError::Conflict(e.to_string())
        }
        e @ (BankError::Backend(_) | BankError::NotABank { .. }) => {
            EngineError::Unavailable(e.to_string())
        }
        other => EngineError::Failed(other.to_string()),
    }
}

fn pod_view(inv: &Inventory, pod: crate::protection::PodEntry) -> PodView {
    let cinder_volumes = inv
        .catalog
        .dependents(&pod.info)
        .iter()
        .filter(|d| d.is_protectable())
        .count();
    PodView {
        resource_type: ResourceType::Kube(ResourceKind::Pod),
        id: pod.info.uid.clone(),
        pod,
        cinder_volumes,
    }
}

/// The closure an inventory found, and what it did not find.
fn closure_views(inv: &mut Inventory) -> Vec<ClosureView> {
    let found = std::mem::take(&mut inv.closure)
        .into_iter()
        .map(|o| ClosureView {
            kind: o.kind.resource_type(),
            relation: relation_of(o.kind),
            name: ObjectRef::new(o.namespace, o.name),
            uid: o.uid.into(),
            status: ResourceStatus::Protected,
            reason: String::new(),
        });
    let missing = std::mem::take(&mut inv.missing)
        .into_iter()
        .map(|m| ClosureView {
            kind: m.kind.resource_type(),
            relation: relation_of(m.kind),
            name: m.name,
            uid: String::new(),
            status: ResourceStatus::Missing,
            reason: m.reason,
        });
    found.chain(missing).collect()
}

#[async_trait]
impl Engine for LocalEngine {
    async fn pods(&self, selection: &SelectionSpec) -> Result<PodList, EngineError> {
        let mut inv = self.inventory(&selection.resolve()?).await?;
        self.uid_keys.learn(
            inv.pods
                .iter()
                .map(|p| (p.info.uid.as_str(), p.key.as_str())),
        );
        let pods = std::mem::take(&mut inv.pods);
        let items = pods.into_iter().map(|p| pod_view(&inv, p)).collect();
        Ok(PodList {
            revision: inv.revision,
            items,
            problems: inv.problems,
            next: None,
        })
    }

    async fn pod(&self, pod: &PodSpecifier) -> Result<PodDetail, EngineError> {
        self.pod_by_key(pod).await
    }

    async fn pod_page(
        &self,
        selection: &SelectionSpec,
        page: &PageRequest,
    ) -> Result<PodPage, EngineError> {
        self.page(selection, page).await
    }

    async fn protect(&self, request: ProtectRequest) -> Result<CheckpointView, EngineError> {
        let mut selection = request.selection.resolve()?;
        selection.closure = true;
        let plan_name = request.plan.clone().unwrap_or_default();
        // Checked before anything is touched, as the selection is; the agent checked its
        // plans' at load, this is for a request that comes any other way.
        let plan_hooks = PlanHooks::new(&plan_name, &request.hooks).map_err(|e| {
            EngineError::Invalid(match &request.plan {
                Some(plan) => format!("plan {plan}: {e}"),
                None => e.to_string(),
            })
        })?;
        // Everything that can fail fast does, before the bank is touched: Cinder (wrong
        // credentials leave no trace), etcd, the bank.
        let backups = self
            .backups(
                request.volume_backups,
                "volume backups disabled (--no-volume-backups)",
            )
            .await?;
        let etcd = self.etcd().await?;
        let bank = self.bank().await?;
        if let Some(id) = &request.checkpoint_id {
            if bank.checkpoint(id).await.is_ok() {
                return Err(EngineError::Conflict(format!(
                    "checkpoint {id} is already in the bank"
                )));
            }
        }
        let req = protection::ProtectRequest {
            id: request.checkpoint_id.clone(),
            params: request.parameters.clone(),
            selection,
            plan: plan_name,
            project_id: request.project_id.clone(),
            scan: Self::scan_options(etcd),
            writer: Default::default(),
            skip_hooks: request.skip_hooks,
            plan_hooks,
            secrets: if request.secrets_in_plain_bank || self.secrets_in_plain_bank {
                SecretPolicy::AnyBank
            } else {
                SecretPolicy::EncryptedBankOnly
            },
        };
        // Only configured here, not reached: connecting builds the client from the
        // kubeconfig, and no request is made unless a selected pod declares hooks.
        let unavailable;
        let exec = match &self.api {
            Some(api) => match api.get().await {
                Ok(api) => HookExec::Api(api),
                Err(e) => {
                    unavailable = e.to_string();
                    HookExec::Unavailable(&unavailable)
                }
            },
            None => HookExec::Unavailable("no Kubernetes API server is configured"),
        };
        let services = Services {
            etcd,
            decoder: &self.decoder,
            bank,
            progress: self.progress.as_ref(),
            exec,
            hooks: None,
        };
        let cp = protection::protect(services, &req, &backups)
            .await
            .map_err(from_protection)?;
        Ok(CheckpointView::new(&cp, &[], &cp.volumes))
    }

    async fn checkpoints(&self, filter: &CheckpointFilter) -> Result<CheckpointList, EngineError> {
        // Summaries: a checkpoint of 100k pods holds 300k volume records; a listing needs
        // their counts only.
        let (all, problems) = self
            .bank()
            .await?
            .checkpoint_briefs()
            .await
            .map_err(from_bank)?;
        let items = all
            .iter()
            .filter(|c| filter.all || c.status != CheckpointStatus::Deleted)
            .filter(|c| filter.plan.as_deref().is_none_or(|p| c.plan == p))
            .map(CheckpointItem::from)
            .collect();
        Ok(CheckpointList { items, problems })
    }

    async fn checkpoint(&self, id: &CheckpointId) -> Result<CheckpointView, EngineError> {
        // One command: its small records read once (bank::backend::scoped).
        crate::bank::backend::scoped(async {
            let bank = self.bank().await?;
            let cp = bank.checkpoint(id).await.map_err(from_bank)?;
            let resources = bank.resources(&cp).await.map_err(from_bank)?;
            let volumes = bank.volume_records(&cp).await.map_err(from_bank)?;
            Ok(CheckpointView::new(&cp, &resources, &volumes))
        })
        .await
    }

    async fn verify(&self, id: Option<&CheckpointId>) -> Result<VerifyReport, EngineError> {
        // One command: its small records read once (bank::backend::scoped).
        crate::bank::backend::scoped(async {
            self.bank().await?.verify(id).await.map_err(from_bank)
        })
        .await
    }

    async fn delete_checkpoint(&self, id: &CheckpointId) -> Result<DeleteOutcome, EngineError> {
        // One command: its small records read once (bank::backend::scoped).
        crate::bank::backend::scoped(async {
            let bank = self.bank().await?;
            let cp = bank.checkpoint(id).await.map_err(from_bank)?;
            let backups = self
                .backups(needs_cinder(&cp, bank).await, "no Cinder needed")
                .await?;
            protection::delete_checkpoint(bank, id, &backups)
                .await
                .map_err(from_protection)
        })
        .await
    }

    async fn reset_checkpoint_status(
        &self,
        id: &CheckpointId,
        status: CheckpointStatus,
    ) -> Result<(), EngineError> {
        self.bank()
            .await?
            .set_checkpoint_status(id, status)
            .await
            .map(|_| ())
            .map_err(from_bank)
    }

    async fn restore(&self, request: RestoreRequest) -> Result<RestoreView, EngineError> {
        // One command: its small records read once (bank::backend::scoped).
        crate::bank::backend::scoped(async {
            check_pods(&request.pods)?;
            // The checkpoint must exist either way; say so before saying what is missing.
            let bank = self.bank().await?;
            let checkpoint = bank
                .checkpoint(&request.checkpoint_id)
                .await
                .map_err(from_bank)?;
            let record = match &request.mode {
                RestoreMode::Export(dir) => {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        EngineError::Invalid(format!("cannot create {}: {e}", dir.display()))
                    })?;
                    let target = ExportTarget::new(dir);
                    protection::restore(bank, &target, &NoJournal, &request, self.progress.as_ref())
                        .await
                }
                RestoreMode::Apply => {
                    // Cinder and the API server are reached before anything is created.
                    let backups = self
                        .backups(
                            checkpoint.backups().next().is_some(),
                            "the checkpoint has no volume backups",
                        )
                        .await?;
                    let api = self.api().await?;
                    let target = ClusterTarget {
                        api,
                        volumes: &backups,
                        volume_timeout: self.volume_timeout,
                    };
                    let journal = BankJournal { bank };
                    protection::restore(bank, &target, &journal, &request, self.progress.as_ref())
                        .await
                }
            }
            .map_err(from_protection)?;
            Ok(RestoreView::from(&record))
        })
        .await
    }

    async fn restores(&self) -> Result<RestoreList, EngineError> {
        let (all, problems) = self
            .bank()
            .await?
            .restore_records()
            .await
            .map_err(from_bank)?;
        Ok(RestoreList {
            items: all.iter().map(RestoreItem::from).collect(),
            problems,
        })
    }

    async fn restore_record(&self, id: &RestoreId) -> Result<RestoreView, EngineError> {
        let r = self.bank().await?.restore(id).await.map_err(from_bank)?;
        Ok(RestoreView::from(&r))
    }

    async fn plans(&self) -> Result<Vec<PlanView>, EngineError> {
        let now = chrono::Utc::now();
        Ok(self
            .plans
            .iter()
            .map(|p| PlanView {
                next_run: p.schedule.next_after(now),
                ..PlanView::from(p)
            })
            .collect())
    }

    async fn run_plan(&self, name: &str) -> Result<PlanRun, EngineError> {
        let plan = self
            .plans
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| EngineError::not_found("plan", name))?;
        run_plan(self, plan).await
    }

    async fn gc(&self, wait: Duration) -> Result<GcReport, EngineError> {
        let bank = self.bank().await?;
        let mut report = bank.gc(wait).await.map_err(from_bank)?;
        // A dead writer's snapshots (listed in the checkpoint gc recovered from its lock)
        // have served no backup that finished: delete them now, given Cinder.
        let mut snapshots = Vec::new();
        let mut group_snapshots = Vec::new();
        for id in &report.checkpoints_recovered {
            let Ok(id) = id.parse::<crate::model::CheckpointId>() else {
                continue;
            };
            match bank.checkpoint(&id).await {
                Ok(cp) => {
                    for v in cp.volumes {
                        group_snapshots.extend(v.group_snapshot_id);
                        snapshots.extend(v.snapshot_id);
                    }
                }
                Err(e) => tracing::warn!("gc: cannot read recovered checkpoint {id}: {e}"),
            }
        }
        group_snapshots.sort();
        group_snapshots.dedup();
        if snapshots.is_empty() && group_snapshots.is_empty() {
            return Ok(report);
        }
        // A group snapshot goes first: Cinder deletes its member snapshots only with it.
        let mut leftovers: Vec<String> = group_snapshots.iter().map(ToString::to_string).collect();
        leftovers.extend(snapshots.iter().map(ToString::to_string));
        match self.backups(true, "").await {
            Ok(VolumeBackups::Cinder(cinder)) => {
                for g in group_snapshots {
                    match protection::volumes::delete_group_snapshot(
                        cinder,
                        &g,
                        SNAPSHOT_DELETE_TIMEOUT,
                    )
                    .await
                    {
                        Ok(()) => report.snapshots_deleted.push(g.to_string()),
                        Err(e) => report
                            .snapshots_left
                            .push(format!("group snapshot {g}: {e}")),
                    }
                }
                for s in snapshots {
                    match protection::volumes::delete_snapshot(cinder, &s, SNAPSHOT_DELETE_TIMEOUT)
                        .await
                    {
                        Ok(()) => report.snapshots_deleted.push(s.to_string()),
                        Err(e) => report.snapshots_left.push(format!("{s}: {e}")),
                    }
                }
            }
            Ok(VolumeBackups::Skip(reason)) => report
                .snapshots_left
                .extend(leftovers.iter().map(|s| format!("{s}: {reason}"))),
            Err(e) => report
                .snapshots_left
                .extend(leftovers.iter().map(|s| format!("{s}: {e}"))),
        }
        for left in &report.snapshots_left {
            tracing::warn!(
                "gc: snapshot left in Cinder (delete of its checkpoint tries again): {left}"
            );
        }
        Ok(report)
    }

    async fn repair(&self, wait: Duration) -> Result<RepairReport, EngineError> {
        self.bank().await?.repair(wait).await.map_err(from_bank)
    }

    async fn stored_plans(&self) -> Result<Vec<StoredPlan>, EngineError> {
        let (plans, problems) = self.bank().await?.plans().await.map_err(from_bank)?;
        for p in problems {
            tracing::warn!(
                "{}: {} (run `podbank checkpoints verify --all`)",
                p.subject,
                p.reason
            );
        }
        Ok(plans)
    }

    async fn save_plan(&self, plan: &StoredPlan) -> Result<(), EngineError> {
        self.bank().await?.put_plan(plan).await.map_err(from_bank)
    }

    async fn remove_plan(&self, id: &PlanId) -> Result<(), EngineError> {
        if self
            .bank()
            .await?
            .remove_plan(id)
            .await
            .map_err(from_bank)?
        {
            Ok(())
        } else {
            Err(EngineError::not_found("plan", id))
        }
    }

    async fn stored_triggers(&self) -> Result<Vec<StoredTrigger>, EngineError> {
        let (triggers, problems) = self.bank().await?.triggers().await.map_err(from_bank)?;
        for p in problems {
            tracing::warn!("{}: {}", p.subject, p.reason);
        }
        Ok(triggers)
    }

    async fn save_trigger(&self, trigger: &StoredTrigger) -> Result<(), EngineError> {
        self.bank()
            .await?
            .put_trigger(trigger)
            .await
            .map_err(from_bank)
    }

    async fn remove_trigger(&self, id: &TriggerId) -> Result<(), EngineError> {
        if self
            .bank()
            .await?
            .remove_trigger(id)
            .await
            .map_err(from_bank)?
        {
            Ok(())
        } else {
            Err(EngineError::not_found("trigger", id))
        }
    }

    async fn stored_operations(&self) -> Result<Vec<StoredOperation>, EngineError> {
        let (operations, problems) = self.bank().await?.operations().await.map_err(from_bank)?;
        for p in problems {
            tracing::warn!("{}: {}", p.subject, p.reason);
        }
        Ok(operations)
    }

    async fn save_operation(&self, operation: &StoredOperation) -> Result<(), EngineError> {
        self.bank()
            .await?
            .put_operation(operation)
            .await
            .map_err(from_bank)
    }

    async fn remove_operation(&self, id: &ScheduledOperationId) -> Result<(), EngineError> {
        if self
            .bank()
            .await?
            .remove_operation(id)
            .await
            .map_err(from_bank)?
        {
            Ok(())
        } else {
            Err(EngineError::not_found("scheduled operation", id))
        }
    }

    async fn operation_logs(
        &self,
    ) -> Result<Vec<super::operation_logs::OperationLog>, EngineError> {
        let (records, problems) = self
            .bank()
            .await?
            .operation_logs()
            .await
            .map_err(from_bank)?;
        for p in problems {
            tracing::warn!("{}: {}", p.subject, p.reason);
        }
        let mut logs = Vec::new();
        for r in records {
            match super::operation_logs::OperationLog::try_from(r) {
                Ok(l) => logs.push(l),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        logs.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(logs)
    }

    async fn save_operation_log(
        &self,
        log: &super::operation_logs::OperationLog,
    ) -> Result<(), EngineError> {
        self.bank()
            .await?
            .put_operation_log(&log.into())
            .await
            .map_err(from_bank)
    }

    async fn verifications(&self) -> Result<Vec<super::verifications::Verification>, EngineError> {
        let (records, problems) = self
            .bank()
            .await?
            .verifications()
            .await
            .map_err(from_bank)?;
        for p in problems {
            tracing::warn!("{}: {}", p.subject, p.reason);
        }
        let mut out = Vec::new();
        for r in records {
            match super::verifications::Verification::try_from(r) {
                Ok(v) => out.push(v),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn save_verification(
        &self,
        v: &super::verifications::Verification,
    ) -> Result<(), EngineError> {
        self.bank()
            .await?
            .put_verification(&v.into())
            .await
            .map_err(from_bank)
    }

    async fn bank_stats(&self) -> Result<Stats, EngineError> {
        self.bank().await?.stats().await.map_err(from_bank)
    }

    async fn readiness(&self) -> Vec<ReadinessCheck> {
        let check = |name: &str, result: Result<String, String>| ReadinessCheck {
            name: name.into(),
            ok: result.is_ok(),
            message: Some(result.unwrap_or_else(|e| e)),
        };
        let etcd = match self.etcd().await {
            Ok(etcd) => etcd
                .current_revision()
                .await
                .map(|rev| format!("revision {rev}"))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let bank = match self.bank().await {
            Ok(bank) => bank
                .backend()
                .list(Kind::Lock)
                .await
                .map(|_| bank.location())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        vec![check("etcd", etcd), check("bank", bank)]
    }
}
