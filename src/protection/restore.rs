//! `restore`: Cinder volumes from a checkpoint's backups, then PV, PVC and pod through the
//! API server, losing no field.
//!
//! Per pod, in order: each Cinder backup is restored to a new volume (waited until
//! `available`) → the PV is created under a fresh name with the new volume id and a
//! `claimRef` to the new claim → the PVC, bound to it (`spec.volumeName`) → the pod, with
//! claim names (and inline Cinder volume ids) swapped. Objects are written from their
//! stored bytes, edited at the protobuf wire level only where something must change
//! ([`crate::codec::edit_object`]), and sent as protobuf (JSON-stored objects as JSON), so
//! fields newer than podbank's compiled schema survive.
//!
//! The restore record (`in_progress` → `success` | `fail`) is saved after every step, with
//! the old → new id map. Running the same restore again resumes it: volumes and objects
//! already made are reused, never duplicated.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use super::protect::{CLAIM_TYPE, PV_TYPE};
use super::schema::RestoreParams;
use super::volumes::VolumeBackups;
use super::ProtectionError;
use crate::apiserver::{ApiError, ApiServer};
use crate::bank::format::now_ms;
use crate::bank::{pb, Bank, CheckpointId, ObjectId};
use crate::cinder::{BackupId, VolumeId};
use crate::codec::{edit_object, Encoding, ObjectEdits, ResourceKind};
use crate::resources::POD_TYPE;

/// Annotation: the checkpoint a restored object came from.
pub const ANNOTATION_CHECKPOINT: &str = "podbank.io/checkpoint";
/// Annotation: the restore that created the object.
pub const ANNOTATION_RESTORE: &str = "podbank.io/restore";
/// Annotation: Karbor's `restore_description`.
pub const ANNOTATION_DESCRIPTION: &str = "podbank.io/restore-description";

/// What to do when an object to create already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ConflictPolicy {
    /// The pod's restore fails with the API server's message.
    #[default]
    Fail,
    /// The pod is skipped (nothing of it is created).
    Skip,
    /// The new objects get a suffix (`-<restore id>`).
    Rename,
}

/// What to restore, and how.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The checkpoint.
    pub checkpoint: CheckpointId,
    /// Validated parameters.
    pub params: RestoreParams,
    /// Only these pods (`(namespace, name)`); empty: every pod of the checkpoint.
    pub pods: Vec<(String, String)>,
    /// Namespace renames, old -> new.
    pub namespace_map: BTreeMap<String, String>,
    /// Conflict policy.
    pub conflict: ConflictPolicy,
    /// Keep `spec.nodeName` (default: cleared, the scheduler places the pod).
    pub keep_node: bool,
    /// How long to wait for one restored volume.
    pub volume_timeout: Duration,
}

/// Where the objects go.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Create them through the API server.
    Api(&'a ApiServer),
    /// Restore nothing; write the objects and the plan into a folder (`--dry-run` /
    /// `--export`).
    Export(&'a Path),
}

/// One object of the plan.
#[derive(Debug, Clone, Serialize)]
struct PlannedObject {
    kind: &'static str,
    namespace: String,
    name: String,
    source: String,
    file: String,
    encoding: &'static str,
    bytes: usize,
    changes: Vec<String>,
}

/// Stable text of a request, to recognise "the same restore" when it is run again.
fn fingerprint(req: &RestoreRequest) -> String {
    serde_json::json!({
        "checkpoint": req.checkpoint.as_str(),
        "restore_name": req.params.restore_name,
        "restore_description": req.params.restore_description,
        "pods": req.pods,
        "namespace_map": req.namespace_map,
        "conflict": req.conflict,
        "keep_node": req.keep_node,
    })
    .to_string()
}

fn qualified(ns: &str, name: &str) -> String {
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

/// Kubernetes names are at most 253 characters.
fn with_suffix(name: &str, suffix: &str) -> String {
    let keep = 253usize.saturating_sub(suffix.len() + 1);
    let base: String = name.chars().take(keep).collect();
    format!("{}-{suffix}", base.trim_end_matches(['-', '.']))
}

/// One object to create.
struct NewObject<'b> {
    kind: ResourceKind,
    ns: &'b str,
    name: &'b str,
    source: String,
    stored: &'b [u8],
    edits: &'b ObjectEdits,
    changes: Vec<String>,
    reused: bool,
}

struct Run<'a> {
    bank: &'a Bank,
    target: Target<'a>,
    backups: &'a VolumeBackups<'a>,
    req: &'a RestoreRequest,
    record: pb::Restore,
    suffix: String,
    planned: Vec<PlannedObject>,
}

/// Restores pods of a checkpoint: see the module doc.
///
/// Returns the restore record (for an export: a record that was not saved, describing the
/// plan). `Err` only when nothing could start (checkpoint missing, bad request).
pub async fn restore(
    bank: &Bank,
    target: Target<'_>,
    backups: &VolumeBackups<'_>,
    req: &RestoreRequest,
) -> Result<pb::Restore, ProtectionError> {
    let checkpoint = bank.checkpoint(&req.checkpoint).await?;
    if !matches!(
        checkpoint.status(),
        pb::CheckpointStatus::Available | pb::CheckpointStatus::Error
    ) {
        return Err(ProtectionError::Incomplete(format!(
            "checkpoint {} is {}: only available (or error) checkpoints can be restored",
            checkpoint.id,
            checkpoint.status().label()
        )));
    }
    let resources = bank.resources(&checkpoint).await?;
    let pods: Vec<&pb::Resource> = resources
        .iter()
        .filter(|r| r.r#type == POD_TYPE)
        .filter(|r| {
            req.pods.is_empty()
                || req
                    .pods
                    .iter()
                    .any(|(ns, name)| *ns == r.namespace && *name == r.name)
        })
        .collect();
    for (ns, name) in &req.pods {
        if !pods.iter().any(|p| p.namespace == *ns && p.name == *name) {
            return Err(ProtectionError::Incomplete(format!(
                "pod {ns}/{name} is not in checkpoint {}",
                checkpoint.id
            )));
        }
    }
    if req.params.restore_name.is_some() && pods.len() != 1 {
        return Err(ProtectionError::Incomplete(format!(
            "restore_name names one pod, but {} pods are selected; pick one with --pod",
            pods.len()
        )));
    }

    // Resume an unfinished run of the same restore, or start a new one.
    let print = fingerprint(req);
    let existing = match target {
        Target::Api(_) => bank
            .restores()
            .await?
            .into_iter()
            .rev()
            .find(|r| r.parameters_json == print && r.status() != pb::RestoreStatus::Success),
        Target::Export(_) => None,
    };
    let record = existing.unwrap_or_else(|| pb::Restore {
        id: format!(
            "r-{}-{:08x}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            rand::random::<u32>()
        ),
        checkpoint_id: checkpoint.id.clone(),
        restore_name: req.params.restore_name.clone().unwrap_or_default(),
        restore_description: req.params.restore_description.clone().unwrap_or_default(),
        created_unix_ms: now_ms(),
        parameters_json: print.clone(),
        ..Default::default()
    });
    let suffix = record
        .id
        .rsplit('-')
        .next()
        .unwrap_or("restored")
        .to_string();
    let mut run = Run {
        bank,
        target,
        backups,
        req,
        record,
        suffix,
        planned: Vec::new(),
    };
    run.record.status = pb::RestoreStatus::InProgress as i32;
    run.record.reason.clear();
    run.save().await?;

    let mut failures = Vec::new();
    for pod in pods {
        if let Err(reason) = run.restore_pod(&checkpoint, &resources, pod).await {
            failures.push(format!("pod {}/{}: {reason}", pod.namespace, pod.name));
        }
    }
    if let Target::Export(dir) = target {
        run.write_plan(dir, &checkpoint)?;
    }
    run.record.finished_unix_ms = now_ms();
    if failures.is_empty() {
        run.record.status = pb::RestoreStatus::Success as i32;
    } else {
        run.record.status = pb::RestoreStatus::Fail as i32;
        run.record.reason = failures.join("; ");
    }
    run.save().await?;
    Ok(run.record)
}

impl Run<'_> {
    async fn save(&self) -> Result<(), ProtectionError> {
        if let Target::Api(_) = self.target {
            self.bank.put_restore(&self.record).await?;
        }
        Ok(())
    }

    fn outcome(
        &mut self,
        kind: &str,
        source: String,
        target: String,
        new_id: String,
        status: &str,
        reason: String,
    ) {
        if let Some(existing) = self
            .record
            .resources
            .iter_mut()
            .find(|r| r.r#type == kind && r.source == source)
        {
            existing.target = target;
            existing.new_id = new_id;
            existing.status = status.to_string();
            existing.reason = reason;
        } else {
            self.record.resources.push(pb::RestoredResource {
                r#type: kind.to_string(),
                source,
                target,
                new_id,
                status: status.to_string(),
                reason,
            });
        }
    }

    /// Records a volume that got no new volume (error, skipped), with the reason.
    fn volume_outcome(&mut self, volume_id: &str, status: &str, reason: String) {
        self.outcome(
            crate::resources::VOLUME_TYPE,
            volume_id.to_string(),
            String::new(),
            String::new(),
            status,
            reason,
        );
    }

    fn annotations(&self) -> Vec<(String, String)> {
        let mut a = vec![
            (
                ANNOTATION_CHECKPOINT.to_string(),
                self.record.checkpoint_id.clone(),
            ),
            (ANNOTATION_RESTORE.to_string(), self.record.id.clone()),
        ];
        if !self.record.restore_description.is_empty() {
            a.push((
                ANNOTATION_DESCRIPTION.to_string(),
                self.record.restore_description.clone(),
            ));
        }
        a
    }

    async fn stored(&self, r: &pb::Resource) -> Result<Bytes, String> {
        let id = ObjectId::from_slice(&r.object_id).ok_or_else(|| {
            format!(
                "{} {}: malformed object id in the checkpoint",
                r.r#type, r.name
            )
        })?;
        self.bank
            .read_object(&id, &self.record.checkpoint_id)
            .await
            .map_err(|e| e.to_string())
    }

    /// Whether (kind, ns, name) exists; `Some(true)` if it was made by this restore.
    async fn existing(
        &self,
        kind: ResourceKind,
        ns: &str,
        name: &str,
    ) -> Result<Option<bool>, String> {
        let Target::Api(api) = self.target else {
            return Ok(None);
        };
        let found = api
            .get(kind, (!ns.is_empty()).then_some(ns), name)
            .await
            .map_err(|e| e.to_string())?;
        Ok(found.map(|obj| {
            obj.pointer("/metadata/annotations")
                .and_then(|a| a.get(ANNOTATION_RESTORE))
                .and_then(|v| v.as_str())
                == Some(self.record.id.as_str())
        }))
    }

    /// Picks the name to create under, following the conflict policy. `Ok(None)`: skip.
    async fn choose_name(
        &self,
        kind: ResourceKind,
        ns: &str,
        name: &str,
    ) -> Result<Option<(String, bool)>, String> {
        match self.existing(kind, ns, name).await? {
            None => Ok(Some((name.to_string(), false))),
            Some(true) => Ok(Some((name.to_string(), true))),
            Some(false) => match self.req.conflict {
                ConflictPolicy::Fail => Err(format!(
                    "{} {} already exists (use --conflict skip or rename)",
                    kind.kind(),
                    qualified(ns, name)
                )),
                ConflictPolicy::Skip => Ok(None),
                ConflictPolicy::Rename => {
                    let renamed = with_suffix(name, &self.suffix);
                    match self.existing(kind, ns, &renamed).await? {
                        None => Ok(Some((renamed, false))),
                        Some(true) => Ok(Some((renamed, true))),
                        Some(false) => Err(format!(
                            "{} {} and {} both exist",
                            kind.kind(),
                            qualified(ns, name),
                            renamed
                        )),
                    }
                }
            },
        }
    }

    async fn create(&mut self, obj: NewObject<'_>) -> Result<String, String> {
        let NewObject {
            kind,
            ns,
            name,
            source,
            stored,
            edits,
            changes,
            reused,
        } = obj;
        let body = edit_object(kind, stored, edits).map_err(|e| e.to_string())?;
        let encoding = if body.first() == Some(&b'{') {
            Encoding::Json
        } else {
            Encoding::Protobuf
        };
        let target_name = qualified(ns, name);
        let type_name = match kind {
            ResourceKind::Pod => POD_TYPE,
            ResourceKind::PersistentVolumeClaim => CLAIM_TYPE,
            ResourceKind::PersistentVolume => PV_TYPE,
        };
        match self.target {
            Target::Export(_) => {
                let n = self.planned.len() + 1;
                let ext = if encoding == Encoding::Json {
                    "json"
                } else {
                    "pb"
                };
                let file = format!(
                    "{n:02}-{}-{}.{ext}",
                    kind.resource(),
                    target_name.replace('/', "_")
                );
                self.planned.push(PlannedObject {
                    kind: kind.kind(),
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    source: source.clone(),
                    file: file.clone(),
                    encoding: if encoding == Encoding::Json {
                        "json"
                    } else {
                        "protobuf"
                    },
                    bytes: body.len(),
                    changes,
                });
                if let Target::Export(dir) = self.target {
                    std::fs::write(dir.join(&file), &body)
                        .map_err(|e| format!("cannot write {}: {e}", dir.join(&file).display()))?;
                }
                self.outcome(
                    type_name,
                    source,
                    target_name.clone(),
                    String::new(),
                    "planned",
                    String::new(),
                );
                Ok(target_name)
            }
            Target::Api(api) => {
                if reused {
                    self.outcome(
                        type_name,
                        source,
                        target_name.clone(),
                        String::new(),
                        "reused",
                        String::new(),
                    );
                    return Ok(target_name);
                }
                let ns_opt = (!ns.is_empty()).then_some(ns);
                match api.create(kind, ns_opt, name, encoding, body).await {
                    Ok(created) => {
                        let uid = created
                            .pointer("/metadata/uid")
                            .and_then(|u| u.as_str())
                            .unwrap_or_default()
                            .to_string();
                        self.record
                            .new_resources
                            .insert(source.clone(), uid.clone());
                        self.outcome(
                            type_name,
                            source,
                            target_name.clone(),
                            uid,
                            "restored",
                            String::new(),
                        );
                        self.save().await.map_err(|e| e.to_string())?;
                        Ok(target_name)
                    }
                    Err(e) => {
                        let reason = match &e {
                            ApiError::AlreadyExists { .. } => {
                                format!("{e} (created meanwhile by someone else?)")
                            }
                            _ => e.to_string(),
                        };
                        self.outcome(
                            type_name,
                            source,
                            target_name,
                            String::new(),
                            "error",
                            reason.clone(),
                        );
                        self.save().await.map_err(|e| e.to_string())?;
                        Err(reason)
                    }
                }
            }
        }
    }

    /// A new volume from `v`'s backup. Its id enters the restore record as soon as Cinder
    /// returns it, before the wait: a run killed while Cinder writes the volume leaves no
    /// volume the record does not name, and the next run waits for that volume and reuses it.
    async fn restore_volume(&mut self, v: &pb::Volume) -> Result<String, String> {
        let key = format!("volume:{}", v.volume_id);
        if let Target::Export(_) = self.target {
            let placeholder = format!("restored-from-backup-{}", v.backup_id);
            self.outcome(
                crate::resources::VOLUME_TYPE,
                v.volume_id.clone(),
                placeholder.clone(),
                String::new(),
                "planned",
                format!("new volume from backup {}", v.backup_id),
            );
            return Ok(placeholder);
        }
        let cinder = match self.backups {
            VolumeBackups::Cinder(c) => *c,
            VolumeBackups::Skip(reason) => {
                return Err(format!(
                    "volume {} cannot be restored: {reason}",
                    v.volume_id
                ));
            }
        };
        let (new, reused) = match self.record.new_resources.get(&key).cloned() {
            Some(new) => (new, true),
            None => {
                let name = format!(
                    "podbank-{}-{}",
                    self.record.id,
                    v.volume_id.get(..8).unwrap_or(&v.volume_id)
                );
                let backup = BackupId::new(v.backup_id.clone());
                match cinder.restore_backup(&backup, None, Some(&name)).await {
                    Ok(id) => {
                        let new = id.to_string();
                        self.record.new_resources.insert(key, new.clone());
                        self.outcome(
                            crate::resources::VOLUME_TYPE,
                            v.volume_id.clone(),
                            new.clone(),
                            new.clone(),
                            "restoring",
                            String::new(),
                        );
                        self.save().await.map_err(|e| e.to_string())?;
                        (new, false)
                    }
                    Err(e) => {
                        let reason = format!("restore of backup {} failed: {e}", v.backup_id);
                        self.volume_outcome(&v.volume_id, "error", reason.clone());
                        self.save().await.map_err(|e| e.to_string())?;
                        return Err(reason);
                    }
                }
            }
        };
        let waited = cinder
            .wait_volume(&VolumeId::new(new.clone()), self.req.volume_timeout)
            .await;
        let (status, reason) = match &waited {
            Ok(_) if reused => ("reused", String::new()),
            Ok(_) => ("restored", String::new()),
            Err(e) => (
                "error",
                format!(
                    "volume {new} (restored from backup {}) is not available: {e}",
                    v.backup_id
                ),
            ),
        };
        self.outcome(
            crate::resources::VOLUME_TYPE,
            v.volume_id.clone(),
            new.clone(),
            new.clone(),
            status,
            reason.clone(),
        );
        self.save().await.map_err(|e| e.to_string())?;
        match waited {
            Ok(_) => Ok(new),
            Err(_) => Err(reason),
        }
    }

    async fn restore_pod(
        &mut self,
        checkpoint: &pb::Checkpoint,
        resources: &[pb::Resource],
        pod: &pb::Resource,
    ) -> Result<(), String> {
        let pod_q = qualified(&pod.namespace, &pod.name);
        let ns = self
            .req
            .namespace_map
            .get(&pod.namespace)
            .cloned()
            .unwrap_or_else(|| pod.namespace.clone());
        let find = |t: &str, q: &str| {
            resources
                .iter()
                .find(|r| r.r#type == t && qualified(&r.namespace, &r.name) == q)
        };
        let vols: Vec<&pb::Volume> = checkpoint
            .volumes
            .iter()
            .filter(|v| v.pods.contains(&pod_q) && !v.volume_id.is_empty())
            .collect();
        // Names first (conflicts decide before anything is created).
        let pod_name = self
            .req
            .params
            .restore_name
            .clone()
            .unwrap_or_else(|| pod.name.clone());
        let Some((pod_name, pod_reused)) =
            self.choose_name(ResourceKind::Pod, &ns, &pod_name).await?
        else {
            self.outcome(
                POD_TYPE,
                pod_q.clone(),
                qualified(&ns, &pod_name),
                String::new(),
                "skipped",
                "exists (--conflict skip)".into(),
            );
            return Ok(());
        };
        // Every volume must have a backup before anything is made: a pod that cannot be
        // restored whole leaves no volume, PV or claim behind.
        for v in &vols {
            if v.status() != pb::VolumeStatus::VolumeAvailable || v.backup_id.is_empty() {
                let reason = format!(
                    "volume {} has no available backup in this checkpoint ({}{})",
                    v.volume_id,
                    v.status().label(),
                    if v.reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", v.reason)
                    }
                );
                self.volume_outcome(&v.volume_id, "error", reason.clone());
                return Err(reason);
            }
        }
        let mut claim_renames = BTreeMap::new();
        let mut inline = BTreeMap::new();
        for v in &vols {
            if v.driver == "inline-cinder" {
                let new = self.restore_volume(v).await?;
                inline.insert(v.volume_id.clone(), new);
                continue;
            }
            // `<ns>/<name>`; checkpoints written before that held the bare claim name.
            let claim_q = if v.claim.contains('/') {
                v.claim.clone()
            } else {
                qualified(&pod.namespace, &v.claim)
            };
            let (Some(claim), Some(pv)) = (
                find(CLAIM_TYPE, &claim_q),
                find(PV_TYPE, &v.persistent_volume),
            ) else {
                let reason = format!(
                    "claim {} or volume {} is missing from the checkpoint",
                    v.claim, v.persistent_volume
                );
                self.volume_outcome(&v.volume_id, "error", reason.clone());
                return Err(reason);
            };
            // Generic ephemeral volumes: the claim belongs to the pod's ephemeral controller.
            if v.ephemeral {
                let reason = "generic ephemeral volume: Kubernetes re-creates its claim from the pod's template, empty".to_string();
                self.volume_outcome(&v.volume_id, "skipped", reason);
                continue;
            }
            let new_volume = self.restore_volume(v).await?;
            // PV under a fresh name.
            let pv_source = format!("pv:{}", pv.name);
            let pv_name = with_suffix(&pv.name, &self.suffix);
            let claim_name_wanted = claim.name.clone();
            let Some((claim_name, claim_reused)) = self
                .choose_name(ResourceKind::PersistentVolumeClaim, &ns, &claim_name_wanted)
                .await?
            else {
                self.outcome(
                    CLAIM_TYPE,
                    qualified(&claim.namespace, &claim.name),
                    qualified(&ns, &claim_name_wanted),
                    String::new(),
                    "skipped",
                    "exists (--conflict skip)".into(),
                );
                self.outcome(
                    POD_TYPE,
                    pod_q.clone(),
                    qualified(&ns, &pod_name),
                    String::new(),
                    "skipped",
                    format!("its claim {claim_name_wanted} exists (--conflict skip)"),
                );
                return Ok(());
            };
            let pv_reused = self
                .existing(ResourceKind::PersistentVolume, "", &pv_name)
                .await?
                == Some(true);
            let mut pv_edits = ObjectEdits {
                name: Some(pv_name.clone()),
                drop_server_fields: true,
                set_annotations: self.annotations(),
                pv_claim_ref: Some((ns.clone(), claim_name.clone())),
                ..Default::default()
            };
            if v.driver == "cinder-in-tree" {
                pv_edits.pv_cinder_volume_id = Some(new_volume.clone());
            } else {
                pv_edits.pv_volume_handle = Some(new_volume.clone());
            }
            let pv_bytes = self.stored(pv).await?;
            self.create(NewObject {
                kind: ResourceKind::PersistentVolume,
                ns: "",
                name: &pv_name,
                source: pv_source,
                stored: &pv_bytes,
                edits: &pv_edits,
                changes: vec![
                    format!("name {} -> {pv_name}", pv.name),
                    format!("volume {} -> {new_volume}", v.volume_id),
                    format!("claimRef -> {ns}/{claim_name}"),
                ],
                reused: pv_reused,
            })
            .await?;
            // PVC bound to it.
            let claim_edits = ObjectEdits {
                name: Some(claim_name.clone()),
                namespace: Some(ns.clone()),
                drop_server_fields: true,
                set_annotations: self.annotations(),
                pvc_volume_name: Some(pv_name.clone()),
                ..Default::default()
            };
            let claim_bytes = self.stored(claim).await?;
            self.create(NewObject {
                kind: ResourceKind::PersistentVolumeClaim,
                ns: &ns,
                name: &claim_name,
                source: format!("pvc:{}", qualified(&claim.namespace, &claim.name)),
                stored: &claim_bytes,
                edits: &claim_edits,
                changes: vec![format!("volumeName -> {pv_name}")],
                reused: claim_reused,
            })
            .await?;
            if claim_name != claim.name {
                claim_renames.insert(claim.name.clone(), claim_name);
            }
        }
        let mut changes = vec![];
        if !self.req.keep_node {
            changes.push("spec.nodeName cleared".to_string());
        }
        for (old, new) in &claim_renames {
            changes.push(format!("claim {old} -> {new}"));
        }
        for (old, new) in &inline {
            changes.push(format!("cinder volume {old} -> {new}"));
        }
        let pod_edits = ObjectEdits {
            name: Some(pod_name.clone()),
            namespace: Some(ns.clone()),
            drop_server_fields: true,
            set_annotations: self.annotations(),
            pod_claim_renames: claim_renames,
            pod_cinder_volume_ids: inline,
            pod_clear_node_name: !self.req.keep_node,
            ..Default::default()
        };
        let pod_bytes = self.stored(pod).await?;
        self.create(NewObject {
            kind: ResourceKind::Pod,
            ns: &ns,
            name: &pod_name,
            source: format!("pod:{pod_q}"),
            stored: &pod_bytes,
            edits: &pod_edits,
            changes,
            reused: pod_reused,
        })
        .await?;
        Ok(())
    }

    fn write_plan(&self, dir: &Path, checkpoint: &pb::Checkpoint) -> Result<(), ProtectionError> {
        #[derive(Serialize)]
        struct Plan<'a> {
            checkpoint: &'a str,
            restore_name: &'a str,
            restore_description: &'a str,
            note: &'static str,
            objects: &'a [PlannedObject],
            volumes: Vec<BTreeMap<&'static str, String>>,
        }
        let volumes = self
            .record
            .resources
            .iter()
            .filter(|r| r.r#type == crate::resources::VOLUME_TYPE)
            .map(|r| {
                BTreeMap::from([
                    ("volume", r.source.clone()),
                    ("status", r.status.clone()),
                    (
                        "action",
                        if r.reason.is_empty() {
                            r.target.clone()
                        } else {
                            r.reason.clone()
                        },
                    ),
                ])
            })
            .collect();
        let plan = Plan {
            checkpoint: &checkpoint.id,
            restore_name: &self.record.restore_name,
            restore_description: &self.record.restore_description,
            note: "dry run: nothing was restored; volume ids read restored-from-backup-<id> until a real restore makes the volumes",
            objects: &self.planned,
            volumes,
        };
        let path: PathBuf = dir.join("plan.yaml");
        let text =
            serde_yaml::to_string(&plan).map_err(|e| ProtectionError::Incomplete(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| {
            ProtectionError::Incomplete(format!("cannot write {}: {e}", path.display()))
        })
    }
}
