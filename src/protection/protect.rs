//! `protect`: one checkpoint of the selected pods, their claims and volumes (read at one
//! etcd revision and stored in the bank), plus a Cinder backup of every Cinder volume
//! they mount.
//!
//! Order, and why:
//! 1. The parameters were validated (JSON Schema) and Cinder reached by the caller: a bad
//!    request or wrong credentials fail before anything is written.
//! 2. The bank writer is opened (a lock that also records the checkpoint in progress).
//! 3. The consistent scan streams every selected object into the bank page by page; the
//!    etcd read of the next page overlaps the hashing and compression of this one.
//! 4. The pods' exec hooks (Velero's annotations, [`super::hooks`]) were read with the pods:
//!    one that does not parse, or hooks with no API server to run them (unless
//!    `skip_hooks`), fail the protect here, before anything outside the bank is made.
//! 5. The volumes are resolved from the inventory (one volume shared by pods is backed up
//!    once) and backed up ([`super::volumes`]); each backup id is saved into the writer's
//!    lock as soon as Cinder returns it, so a crash never leaves a backup that no
//!    checkpoint lists.
//!    The pre-hooks run before the snapshot burst, the post-hooks right after it (always,
//!    once the pre-hooks ran), each recorded in the checkpoint.
//! 6. The manifest is written: `available`, or `error` with a reason per volume or hook.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use super::hooks::{Bracket, HookError, HookExec, PlanHooks, PodHooks};
use super::inventory::{
    read_inventory, Missing, ObjectHandler, PodEntry, SelectedObject, Selection,
};
use super::progress::{Progress, Stage};
use super::schema::ProtectParams;
use super::volumes::{self, VolumeBackups};
use super::ProtectionError;
use crate::bank::{Bank, CheckpointDraft, CheckpointWriter, WriterOptions};
use crate::codec::{resource_prefix, Decoder, ResourceKind};
use crate::etcd::{Etcd, Revision, ScanOptions};
use crate::model::{
    Checkpoint, CheckpointId, CheckpointStatus, ClusterRecord, EtcdKey, ObjectRef, ResourceRecord,
    ResourceStatus, SelectionRecord, Uid, VolumeId, VolumeRecord, VolumeStatus,
};
use crate::resources::{
    Catalog, ClaimStep, Dependent, DependentStatus, PodAlone, VolumeSourceKind,
};

/// What to protect, and how.
#[derive(Debug, Clone)]
pub struct ProtectRequest {
    /// The checkpoint's id, if the caller chose it (one not in the bank).
    pub id: Option<CheckpointId>,
    /// Validated parameters (`backup_name`, `description`, extensions).
    pub params: ProtectParams,
    /// Which pods.
    pub selection: Selection,
    /// The agent plan asking, if any.
    pub plan: String,
    /// The Karbor project asking (empty: none, the cluster admin's).
    pub project_id: String,
    /// etcd scan tuning.
    pub scan: ScanOptions,
    /// Bank writer tuning.
    pub writer: WriterOptions,
    /// Whether the pods' Secrets may be stored.
    pub secrets: SecretPolicy,
    /// Do not run the pods' exec hooks (recorded in the checkpoint): for a protect with no
    /// API server that knowingly takes crash-consistent volumes.
    pub skip_hooks: bool,
    /// The plan's exec hooks (its `hooks:` in the config file), for the pods they select
    /// that do not declare a hook of the same phase themselves.
    pub plan_hooks: PlanHooks,
}

/// Whether Secrets go into the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretPolicy {
    /// Only into an encrypted bank (the default): in a plain bank each Secret is recorded
    /// as skipped.
    #[default]
    EncryptedBankOnly,
    /// Into any bank: the operator opted in (`--secrets-in-plain-bank`, or
    /// `bank.secrets_in_plain_bank` in the config file).
    AnyBank,
}

/// Why a Secret was not stored.
pub const SECRET_SKIPPED: &str = "the bank is not encrypted: Secrets are stored in an encrypted \
bank only, or with --secrets-in-plain-bank / bank.secrets_in_plain_bank";

/// What protect talks to.
#[derive(Debug, Clone, Copy)]
pub struct Services<'a> {
    /// etcd, connected.
    pub etcd: &'a Etcd,
    /// The storage-format decoder (with the cluster's encryption config, if any).
    pub decoder: &'a Decoder,
    /// The bank, open.
    pub bank: &'a Arc<Bank>,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
    /// Where the pods' exec hooks run (the API server), or why nowhere.
    pub exec: HookExec<'a>,
    /// Test seams called at fixed points of the work; `None` outside tests.
    pub hooks: Option<&'a dyn ProtectHooks>,
}

/// Seams for tests: protect calls each at one fixed point of its work and waits for it.
///
/// Only tests implement it; the fronts (CLI, agent, engine) pass `None`. A test that must act
/// at one moment of a protect (overwrite a volume after its snapshot is available and before
/// its backup reads it) acts here, on a condition protect itself guarantees, instead of
/// sleeping and hoping the timing holds. What the caller may rely on:
/// * protect awaits each call before it goes on, so a hook that never returns stalls the
///   protect (and nothing else: no lock of the bank's is held beyond the writer's own);
/// * a hook cannot fail the protect or change its records: it gets them read-only, and
///   protect does not look at what the hook did outside it;
/// * every method has a default that does nothing, so a test implements only its own.
#[async_trait]
pub trait ProtectHooks: Send + Sync + std::fmt::Debug {
    /// After the snapshot burst, before the first backup is requested: every snapshot
    /// Cinder made is `available` (its record has `taken_by: snapshot` and the snapshot id);
    /// a volume Cinder would not snapshot is recorded `taken_by: direct`.
    ///
    /// # Arguments
    /// * `volumes` - the checkpoint's Cinder volume records that are to be backed up.
    async fn snapshots_ready(&self, volumes: &[VolumeRecord]) {
        let _ = volumes;
    }
}

/// Hands each page of selected objects to the bank writer, and turns each selected pod's
/// volumes into volume records as far as the pod alone decides them.
struct BankHandler<'a> {
    writer: &'a mut CheckpointWriter,
    volumes: VolumeRecords,
    /// Secrets are stored (encrypted bank, or opted in).
    store_secrets: bool,
    progress: &'a dyn Progress,
    /// When the scan pinned its revision (the last time, after restarts).
    revision_read: Option<Instant>,
    /// The plan's hooks, given to the pods they select.
    plan_hooks: &'a PlanHooks,
    /// The selected pods that have exec hooks (their own, or the plan's).
    hooks: Vec<PodHooks>,
    /// Hook annotations (or plan hooks) that cannot run in their pod as written.
    hook_errors: Vec<HookError>,
}

/// A pod volume that uses a claim: resolved once claims and volumes are read.
#[derive(Debug)]
struct ClaimUse {
    /// The pod.
    pod: ObjectRef,
    /// The volume's name in the pod.
    pod_volume: String,
    /// The claim, in the pod's namespace.
    claim: String,
    /// The persistent volume the claim is bound to, once claims are read.
    volume: Option<String>,
    /// A generic ephemeral volume's claim.
    ephemeral: bool,
}

/// The checkpoint's volume records being made. Of each pod, only what its records still
/// need is kept: a volume that is no Cinder volume is recorded (in the writer's volume
/// tables) while the pods stream past, an inline Cinder volume joins its record, and a
/// volume through a claim waits, as a [`ClaimUse`], for the claims and volumes.
#[derive(Debug, Default)]
struct VolumeRecords {
    /// One record per pod use of a Cinder volume, in the order met; [`Self::into_cinder`]
    /// makes it one per volume.
    cinder: Vec<VolumeRecord>,
    claim_uses: Vec<ClaimUse>,
}

impl VolumeRecords {
    /// Records `dep`, a volume of `pod`: a Cinder volume joins its record; any other goes
    /// to the writer's volume tables.
    fn add(
        &mut self,
        writer: &mut CheckpointWriter,
        pod: &ObjectRef,
        dep: Dependent,
        ephemeral: bool,
    ) {
        let claim = dep.claim.as_deref().map(|c| pod.in_namespace_named(c));
        match (dep.status, dep.volume_id) {
            (DependentStatus::Protectable, Some(volume_id)) => self.cinder.push(VolumeRecord {
                volume_id: VolumeId::new(volume_id),
                status: VolumeStatus::Pending,
                claim,
                persistent_volume: dep.persistent_volume,
                driver: dep.driver,
                pod_volume: dep.pod_volume,
                ephemeral,
                pods: vec![pod.clone()],
                ..Default::default()
            }),
            (DependentStatus::NotProtectable(reason), _) => {
                writer.add_volume_record(VolumeRecord {
                    status: VolumeStatus::NotProtected,
                    reason,
                    pods: vec![pod.clone()],
                    claim,
                    persistent_volume: dep.persistent_volume,
                    pod_volume: dep.pod_volume,
                    ..Default::default()
                });
            }
            (DependentStatus::Protectable, None) => {}
        }
    }

    /// One record per Cinder volume, by volume id: a volume several pods mount is recorded
    /// once, as the first pod met uses it, with every pod that mounts it.
    fn into_cinder(self) -> Vec<VolumeRecord> {
        let mut uses = self.cinder;
        // Stable: of one volume's uses, the first met comes first.
        uses.sort_by(|a, b| a.volume_id.cmp(&b.volume_id));
        let mut out: Vec<VolumeRecord> = Vec::with_capacity(uses.len());
        for v in uses {
            match out.last_mut() {
                Some(last) if last.volume_id == v.volume_id => last.pods.extend(v.pods),
                _ => out.push(v),
            }
        }
        out
    }

    /// Every claim is read: each use learns its claim's volume, or is recorded now if the
    /// claim settles it (not found, not bound). Then the claims need not be kept.
    fn claims_read(&mut self, writer: &mut CheckpointWriter, catalog: &Catalog) {
        let mut waiting = Vec::with_capacity(self.claim_uses.len());
        for mut u in std::mem::take(&mut self.claim_uses) {
            match catalog.claim_step(u.pod.namespace(), &u.pod_volume, &u.claim) {
                ClaimStep::BoundTo(pv) => {
                    u.volume = Some(pv);
                    waiting.push(u);
                }
                ClaimStep::Resolved(dep) => self.add(writer, &u.pod, dep, u.ephemeral),
            }
        }
        self.claim_uses = waiting;
    }

    /// Resolves the volumes that wait for claims, against what the read found.
    fn resolve_claims(&mut self, writer: &mut CheckpointWriter, catalog: &Catalog) {
        // At most one Cinder record per use: no doubling of the records while they grow.
        self.cinder.reserve_exact(self.claim_uses.len());
        for u in std::mem::take(&mut self.claim_uses) {
            let dep = match &u.volume {
                Some(pv) => catalog.through_volume(&u.pod_volume, &u.claim, pv),
                None => catalog.through_claim(u.pod.namespace(), &u.pod_volume, &u.claim),
            };
            self.add(writer, &u.pod, dep, u.ephemeral);
        }
    }
}

#[async_trait]
impl ObjectHandler for BankHandler<'_> {
    fn pod(&mut self, pod: PodEntry) -> Option<PodEntry> {
        let info = pod.info;
        match self.plan_hooks.hooks_of(&info) {
            Ok(Some(hooks)) => self.hooks.push(hooks),
            Ok(None) => {}
            Err(e) => self.hook_errors.push(e),
        }
        let name = ObjectRef::new(info.namespace.clone(), info.name.clone());
        for v in info.volumes {
            let ephemeral = v.source == VolumeSourceKind::Ephemeral;
            match Dependent::without_claim(&v, &info.name) {
                PodAlone::Resolved(dep) => self.volumes.add(self.writer, &name, dep, ephemeral),
                PodAlone::ThroughClaim(claim) => self.volumes.claim_uses.push(ClaimUse {
                    pod: name.clone(),
                    pod_volume: v.name,
                    claim,
                    volume: None,
                    ephemeral,
                }),
            }
        }
        None
    }

    fn claims_read(&mut self, catalog: &mut Catalog) {
        self.volumes.claims_read(self.writer, catalog);
        catalog.forget_claims();
    }

    async fn restart(&mut self, revision: Revision) -> Result<(), ProtectionError> {
        self.revision_read = Some(Instant::now());
        self.volumes = VolumeRecords::default();
        self.hooks.clear();
        self.hook_errors.clear();
        self.writer.reset_records();
        self.writer.checkpoint_mut().revision = revision;
        Ok(())
    }

    async fn objects(&mut self, objects: Vec<SelectedObject<'_>>) -> Result<(), ProtectionError> {
        let (stored, skipped): (Vec<_>, Vec<_>) = objects
            .into_iter()
            .partition(|o| self.store_secrets || o.kind != ResourceKind::Secret);
        let plains: Vec<Bytes> = stored.iter().map(|o| o.object.plain_bytes()).collect();
        let ids = self.writer.add_objects(plains).await?;
        // Stored objects only: the skipped Secrets are records without an object, so this
        // is the count `checkpoints verify` gives as resources.
        self.progress.advance(Stage::Objects, ids.len() as u64);
        for (o, id) in stored.into_iter().zip(ids) {
            self.writer.add_resource(ResourceRecord {
                object_id: Some(id),
                size: o.object.plain().len() as u64,
                status: ResourceStatus::Protected,
                ..record_of(o)
            });
        }
        for o in skipped {
            self.writer.add_resource(ResourceRecord {
                status: ResourceStatus::Skipped,
                reason: SECRET_SKIPPED.to_string(),
                ..record_of(o)
            });
        }
        Ok(())
    }
}

/// The record of a selected object, before it is stored.
fn record_of(o: SelectedObject<'_>) -> ResourceRecord {
    ResourceRecord {
        kind: o.kind.resource_type(),
        key: EtcdKey::new(o.key),
        object: ObjectRef::new(o.namespace, o.name),
        uid: Uid::new(o.uid),
        resource_version: o.mod_revision.to_string(),
        mod_revision: Revision::new(o.mod_revision),
        object_id: None,
        size: 0,
        encoding: o.object.encoding(),
        status: ResourceStatus::Protected,
        reason: String::new(),
        parent: None,
        edges: o.edges,
    }
}

/// The record of a referenced object that etcd did not hold at the revision read.
fn missing_record(etcd_prefix: &str, m: Missing) -> ResourceRecord {
    let ns = (!m.name.namespace().is_empty()).then_some(m.name.namespace());
    ResourceRecord {
        kind: m.kind.resource_type(),
        key: EtcdKey::new(format!(
            "{}{}",
            resource_prefix(etcd_prefix, m.kind, ns),
            m.name.name()
        )),
        object: m.name,
        status: ResourceStatus::Missing,
        reason: m.reason,
        ..ResourceRecord::default()
    }
}

/// The selection as the checkpoint records it.
pub fn selection_record(selection: &Selection) -> SelectionRecord {
    SelectionRecord {
        namespaces: selection.namespaces.iter().map(|n| n.to_string()).collect(),
        label_selector: selection.labels.source().to_string(),
        field_selector: selection.fields.source().to_string(),
        pods: selection.pods.clone(),
        uids: selection.uids.clone(),
    }
}

/// What to do about the selected pods' exec hooks.
#[derive(Debug)]
enum HookPlan<'a> {
    /// No pod declares any.
    None,
    /// Run them through this API server.
    Run(&'a crate::apiserver::ApiServer),
    /// Do not run them (`skip_hooks`): these pods declare some.
    Skipped(Vec<ObjectRef>),
}

/// Decides [`HookPlan`]; an error when an annotation does not parse, or when hooks are
/// declared, there is no API server and `skip_hooks` is not set.
fn hook_plan<'a>(
    pods: &[PodHooks],
    errors: Vec<HookError>,
    exec: HookExec<'a>,
    skip_hooks: bool,
) -> Result<HookPlan<'a>, ProtectionError> {
    if !errors.is_empty() {
        for e in &errors {
            tracing::info!("exec hook: {e}");
        }
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let errors: Vec<&str> = errors.iter().map(String::as_str).collect();
        return Err(ProtectionError::InvalidRequest(format!(
            "exec hooks that cannot run as declared, nothing was taken: {}",
            super::summarise_list(&errors, "hook settings", "each is logged with -v")
        )));
    }
    if pods.is_empty() {
        return Ok(HookPlan::None);
    }
    if skip_hooks {
        return Ok(HookPlan::Skipped(
            pods.iter().map(|p| p.pod.clone()).collect(),
        ));
    }
    match exec {
        HookExec::Api(api) => Ok(HookPlan::Run(api)),
        HookExec::Unavailable(why) => {
            let names: Vec<String> = pods.iter().map(|p| p.pod.to_string()).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            Err(ProtectionError::InvalidRequest(format!(
                "pods {} declare exec hooks (pre/post.hook.backup.velero.io annotations, or the \
                 plan's hooks) and there is no Kubernetes API server to run them ({why}); \
                 nothing was taken. Give \
                 protect a kubeconfig (--kubeconfig/--context), or pass --skip-hooks to take \
                 the volumes without them (recorded in the checkpoint)",
                super::summarise_list(
                    &names,
                    "pods",
                    "the hooks are in their annotations or the plan"
                )
            )))
        }
    }
}

/// Protects the selected pods: see the module doc for the order of work.
///
/// # Arguments
/// * `services` - etcd, decoder and bank.
/// * `request` - parameters and selection (already validated).
/// * `backups` - how volumes are backed up (Cinder, or not at all).
///
/// Returns the manifest written (`available` or `error`). An `Err` means no checkpoint was
/// written (nothing outside the bank had been created yet), except for bank write failures
/// after Cinder backups exist, which are reported with the backup ids in the message.
pub async fn protect(
    services: Services<'_>,
    request: &ProtectRequest,
    backups: &VolumeBackups<'_>,
) -> Result<Checkpoint, ProtectionError> {
    let etcd = services.etcd;
    let draft = CheckpointDraft {
        id: request.id.clone(),
        backup_name: request.params.backup_name.clone(),
        description: request.params.description.clone(),
        selection: selection_record(&request.selection),
        cluster: ClusterRecord {
            etcd_endpoints: etcd.config().servers.clone(),
            etcd_prefix: etcd.config().prefix().to_string(),
            etcd_cluster_id: 0,
            name: String::new(),
        },
        plan: request.plan.clone(),
        options_json: request.params.given.to_string(),
        project_id: request.project_id.clone(),
    };
    let mut writer = services
        .bank
        .begin_checkpoint(draft, request.writer.clone())
        .await?;
    let store_secrets = request.secrets == SecretPolicy::AnyBank || services.bank.encrypted();
    let mut handler = BankHandler {
        writer: &mut writer,
        volumes: VolumeRecords::default(),
        store_secrets,
        progress: services.progress,
        revision_read: None,
        plan_hooks: &request.plan_hooks,
        hooks: Vec::new(),
        hook_errors: Vec::new(),
    };
    services.progress.start(Stage::Objects, None);
    let inventory = read_inventory(
        etcd,
        services.decoder,
        &request.selection,
        &request.scan,
        &mut handler,
    )
    .await;
    services.progress.finish(Stage::Objects);
    let mut records = std::mem::take(&mut handler.volumes);
    let revision_read = handler.revision_read.unwrap_or_else(Instant::now);
    let pod_hooks = std::mem::take(&mut handler.hooks);
    let hook_errors = std::mem::take(&mut handler.hook_errors);
    let mut inventory = match inventory {
        Ok(inventory) => inventory,
        Err(e) => {
            // Nothing outside the bank exists yet: no checkpoint, the packs go at gc.
            writer.abandon().await?;
            return Err(e);
        }
    };
    // Hooks that cannot run as declared stop the protect while nothing outside the bank
    // exists: a database the operator meant to freeze is not snapshotted unfrozen.
    let bracket = match hook_plan(&pod_hooks, hook_errors, services.exec, request.skip_hooks) {
        Ok(HookPlan::None) => None,
        Ok(HookPlan::Run(api)) => Some(Bracket {
            api,
            pods: &pod_hooks,
        }),
        Ok(HookPlan::Skipped(pods)) => {
            writer.checkpoint_mut().hooks_skipped = pods;
            None
        }
        Err(e) => {
            writer.abandon().await?;
            return Err(e);
        }
    };
    // The volumes through claims, now that the claims and volumes are read; then the
    // read's summaries are not needed any more.
    records.resolve_claims(&mut writer, &inventory.catalog);
    for m in std::mem::take(&mut inventory.missing) {
        writer.add_resource(missing_record(etcd.config().prefix(), m));
    }
    {
        let cp = writer.checkpoint_mut();
        cp.revision = inventory.revision;
        cp.pods = u32::try_from(inventory.pod_count).unwrap_or(u32::MAX);
        if let Some(scan) = inventory.scan.as_ref() {
            cp.stats.etcd_requests = scan.requests;
            cp.stats.etcd_restarts = u64::from(scan.restarts);
        }
    }
    // Problems (undecodable values) of selected keys are errors of the checkpoint.
    let mut reasons: Vec<String> = inventory
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.key, p.reason))
        .collect();
    drop(inventory);
    writer.checkpoint_mut().volumes = records.into_cinder();
    let previous = match backups {
        VolumeBackups::Cinder(_) => services.bank.checkpoints().await?.0,
        VolumeBackups::Skip(_) => Vec::new(),
    };
    let volume_errors = volumes::back_up_all(
        &mut writer,
        backups,
        &request.params,
        &previous,
        services.progress,
        services.hooks,
        bracket,
        revision_read,
    )
    .await;
    reasons.extend(volume_errors);

    let (status, reason) = if reasons.is_empty() {
        (CheckpointStatus::Available, String::new())
    } else {
        for r in &reasons {
            tracing::info!("checkpoint problem: {r}");
        }
        let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
        (
            CheckpointStatus::Error,
            super::summarise_list(
                &reasons,
                "problems",
                "each one is logged with -v; the volumes' are in `podbank checkpoints show <id>`",
            ),
        )
    };
    let backups: Vec<String> = writer
        .checkpoint()
        .backups()
        .map(ToString::to_string)
        .collect();
    writer.commit(status, reason).await.map_err(|e| {
        if backups.is_empty() {
            ProtectionError::Bank(e)
        } else {
            ProtectionError::BackupsOrphaned { source: e, backups }
        }
    })
}
