//! The bank's edge: its protobuf records (`proto/bank.proto`) to and from the domain model
//! ([`crate::model`]). Nothing above the bank sees a protobuf record; nothing below this
//! file's conversions sees a model type's invariants bent (a malformed id in a record is
//! counted or dropped here, never passed on as text).
//!
//! Strings are moved, not copied, where a record is consumed: a 100k-pod protect converts
//! every resource record once on its way into a table.

use super::brief::CheckpointBrief;
use std::time::Duration;

use super::format::pb;
use crate::model::{
    ms_of, time_of_ms, BackupId, BackupLink, Checkpoint, CheckpointId, CheckpointStatus,
    CheckpointSummary, ClusterRecord, Edge, Encoding, EtcdKey, GroupSnapshotId, HookOnError,
    HookOutcome, HookPhase, HookRecord, InvalidPlanId, InvalidScheduledOperationId,
    InvalidTriggerId, JournalBatch, ObjectId, ObjectRef, OperationType, Outcome, PlanResource,
    PlanStatus, Relation, ResourceRecord, ResourceStatus, ResourceType, RestoreId, RestoreRecord,
    RestoreStats, RestoreStatus, RestoredResource, Revision, SelectionRecord, SnapshotId, Source,
    StoredOperation, StoredPlan, StoredTrigger, TableRefs, TakenBy, TimeFormat, TriggerType, Uid,
    VolumeDriver, VolumeId, VolumeRecord, VolumeStatus, WriteStats,
};

fn ms(t: chrono::DateTime<chrono::Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

fn time_or_epoch(ms: u64) -> chrono::DateTime<chrono::Utc> {
    time_of_ms(ms).unwrap_or(chrono::DateTime::UNIX_EPOCH)
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A checkpoint id as a record holds it; a record written by hand or damaged may hold
/// anything, which then stands as it is (it was read from the bank, not from a user).
fn checkpoint_id(s: String) -> CheckpointId {
    s.parse().unwrap_or_else(|_| {
        // Always valid: only safe characters are kept, and it is never empty.
        let safe: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .collect();
        format!("unnamed-{safe}")
            .chars()
            .take(128)
            .collect::<String>()
            .parse()
            .unwrap_or_else(|_| CheckpointId::generate())
    })
}

impl From<pb::CheckpointStatus> for CheckpointStatus {
    fn from(s: pb::CheckpointStatus) -> Self {
        match s {
            pb::CheckpointStatus::Protecting => CheckpointStatus::Protecting,
            pb::CheckpointStatus::Available => CheckpointStatus::Available,
            pb::CheckpointStatus::Deleting => CheckpointStatus::Deleting,
            pb::CheckpointStatus::Deleted => CheckpointStatus::Deleted,
            pb::CheckpointStatus::ErrorDeleting => CheckpointStatus::ErrorDeleting,
            pb::CheckpointStatus::Error | pb::CheckpointStatus::Unspecified => {
                CheckpointStatus::Error
            }
        }
    }
}

impl From<CheckpointStatus> for pb::CheckpointStatus {
    fn from(s: CheckpointStatus) -> Self {
        match s {
            CheckpointStatus::Protecting => pb::CheckpointStatus::Protecting,
            CheckpointStatus::Available => pb::CheckpointStatus::Available,
            CheckpointStatus::Error => pb::CheckpointStatus::Error,
            CheckpointStatus::Deleting => pb::CheckpointStatus::Deleting,
            CheckpointStatus::Deleted => pb::CheckpointStatus::Deleted,
            CheckpointStatus::ErrorDeleting => pb::CheckpointStatus::ErrorDeleting,
        }
    }
}

impl From<pb::VolumeStatus> for VolumeStatus {
    fn from(s: pb::VolumeStatus) -> Self {
        match s {
            pb::VolumeStatus::VolumePending | pb::VolumeStatus::Unspecified => {
                VolumeStatus::Pending
            }
            pb::VolumeStatus::VolumeBackingUp => VolumeStatus::BackingUp,
            pb::VolumeStatus::VolumeAvailable => VolumeStatus::Available,
            pb::VolumeStatus::VolumeError => VolumeStatus::Error,
            pb::VolumeStatus::VolumeNotProtected => VolumeStatus::NotProtected,
            pb::VolumeStatus::VolumeDeleted => VolumeStatus::Deleted,
        }
    }
}

impl From<VolumeStatus> for pb::VolumeStatus {
    fn from(s: VolumeStatus) -> Self {
        match s {
            VolumeStatus::Pending => pb::VolumeStatus::VolumePending,
            VolumeStatus::BackingUp => pb::VolumeStatus::VolumeBackingUp,
            VolumeStatus::Available => pb::VolumeStatus::VolumeAvailable,
            VolumeStatus::Error => pb::VolumeStatus::VolumeError,
            VolumeStatus::NotProtected => pb::VolumeStatus::VolumeNotProtected,
            VolumeStatus::Deleted => pb::VolumeStatus::VolumeDeleted,
        }
    }
}

impl From<pb::ResourceStatus> for ResourceStatus {
    fn from(s: pb::ResourceStatus) -> Self {
        match s {
            pb::ResourceStatus::ResourceProtected | pb::ResourceStatus::Unspecified => {
                ResourceStatus::Protected
            }
            pb::ResourceStatus::ResourceNotProtected => ResourceStatus::NotProtected,
            pb::ResourceStatus::ResourceError => ResourceStatus::Error,
            pb::ResourceStatus::ResourceSkipped => ResourceStatus::Skipped,
            pb::ResourceStatus::ResourceMissing => ResourceStatus::Missing,
        }
    }
}

impl From<ResourceStatus> for pb::ResourceStatus {
    fn from(s: ResourceStatus) -> Self {
        match s {
            ResourceStatus::Protected => pb::ResourceStatus::ResourceProtected,
            ResourceStatus::NotProtected => pb::ResourceStatus::ResourceNotProtected,
            ResourceStatus::Error => pb::ResourceStatus::ResourceError,
            ResourceStatus::Skipped => pb::ResourceStatus::ResourceSkipped,
            ResourceStatus::Missing => pb::ResourceStatus::ResourceMissing,
        }
    }
}

impl From<pb::RestoreStatus> for RestoreStatus {
    fn from(s: pb::RestoreStatus) -> Self {
        match s {
            pb::RestoreStatus::InProgress => RestoreStatus::InProgress,
            pb::RestoreStatus::Success => RestoreStatus::Success,
            pb::RestoreStatus::Fail | pb::RestoreStatus::Unspecified => RestoreStatus::Fail,
        }
    }
}

impl From<RestoreStatus> for pb::RestoreStatus {
    fn from(s: RestoreStatus) -> Self {
        match s {
            RestoreStatus::InProgress => pb::RestoreStatus::InProgress,
            RestoreStatus::Success => pb::RestoreStatus::Success,
            RestoreStatus::Fail => pb::RestoreStatus::Fail,
        }
    }
}

impl From<pb::Selection> for SelectionRecord {
    fn from(s: pb::Selection) -> Self {
        Self {
            namespaces: s.namespaces,
            label_selector: s.label_selector,
            field_selector: s.field_selector,
            pods: s.pods.iter().map(|p| ObjectRef::parse_lenient(p)).collect(),
            uids: s.uids,
        }
    }
}

impl From<SelectionRecord> for pb::Selection {
    fn from(s: SelectionRecord) -> Self {
        Self {
            namespaces: s.namespaces,
            label_selector: s.label_selector,
            field_selector: s.field_selector,
            pods: s.pods.iter().map(ToString::to_string).collect(),
            uids: s.uids,
        }
    }
}

impl From<pb::Cluster> for ClusterRecord {
    fn from(c: pb::Cluster) -> Self {
        Self {
            etcd_endpoints: c.etcd_endpoints,
            etcd_prefix: c.etcd_prefix,
            etcd_cluster_id: c.etcd_cluster_id,
            name: c.name,
        }
    }
}

impl From<ClusterRecord> for pb::Cluster {
    fn from(c: ClusterRecord) -> Self {
        Self {
            etcd_endpoints: c.etcd_endpoints,
            etcd_prefix: c.etcd_prefix,
            etcd_cluster_id: c.etcd_cluster_id,
            name: c.name,
        }
    }
}

impl From<pb::Stats> for WriteStats {
    fn from(s: pb::Stats) -> Self {
        Self {
            objects: s.objects,
            objects_new: s.objects_new,
            bytes_plain: s.bytes_plain,
            bytes_new: s.bytes_new,
            packs_new: s.packs_new,
            seconds: s.seconds,
            etcd_requests: s.etcd_requests,
            etcd_restarts: s.etcd_restarts,
            tables_new: s.tables_new,
        }
    }
}

impl From<WriteStats> for pb::Stats {
    fn from(s: WriteStats) -> Self {
        Self {
            objects: s.objects,
            objects_new: s.objects_new,
            bytes_plain: s.bytes_plain,
            bytes_new: s.bytes_new,
            packs_new: s.packs_new,
            seconds: s.seconds,
            etcd_requests: s.etcd_requests,
            etcd_restarts: s.etcd_restarts,
            tables_new: s.tables_new,
        }
    }
}

impl From<pb::Volume> for VolumeRecord {
    fn from(v: pb::Volume) -> Self {
        let status = v.status().into();
        Self {
            volume_id: VolumeId::new(v.volume_id),
            backup_id: non_empty(v.backup_id).map(BackupId::new),
            size_gib: v.size_gib,
            incremental: v.incremental,
            parent_backup_id: non_empty(v.parent_backup_id).map(BackupId::new),
            parent_checkpoint: non_empty(v.parent_checkpoint).map(checkpoint_id),
            status,
            reason: v.reason,
            pods: v.pods.iter().map(|p| ObjectRef::parse_lenient(p)).collect(),
            claim: non_empty(v.claim).map(|c| ObjectRef::parse_lenient(&c)),
            persistent_volume: non_empty(v.persistent_volume),
            driver: VolumeDriver::from_label(&v.driver),
            pod_volume: v.pod_volume,
            backup_seconds: v.backup_seconds,
            ephemeral: v.ephemeral,
            taken_by: TakenBy::from_label(&v.taken_by),
            taken_reason: v.taken_reason,
            snapshot_id: non_empty(v.snapshot_id).map(SnapshotId::new),
            group_snapshot_id: non_empty(v.group_snapshot_id).map(GroupSnapshotId::new),
            snapshot_sent_unix_ms: v.snapshot_sent_unix_ms,
            snapshot_available_unix_ms: v.snapshot_available_unix_ms,
            skew_ms: v.skew_ms,
            chain_depth: v.chain_depth,
        }
    }
}

impl From<VolumeRecord> for pb::Volume {
    fn from(v: VolumeRecord) -> Self {
        Self {
            volume_id: v.volume_id.as_str().to_string(),
            backup_id: v
                .backup_id
                .map(|b| b.as_str().to_string())
                .unwrap_or_default(),
            size_gib: v.size_gib,
            incremental: v.incremental,
            parent_backup_id: v
                .parent_backup_id
                .map(|b| b.as_str().to_string())
                .unwrap_or_default(),
            parent_checkpoint: v
                .parent_checkpoint
                .map(|c| c.to_string())
                .unwrap_or_default(),
            status: pb::VolumeStatus::from(v.status) as i32,
            reason: v.reason,
            pods: v.pods.iter().map(ToString::to_string).collect(),
            claim: v.claim.map(|c| c.to_string()).unwrap_or_default(),
            persistent_volume: v.persistent_volume.unwrap_or_default(),
            driver: v.driver.map(|d| d.label().to_string()).unwrap_or_default(),
            pod_volume: v.pod_volume,
            backup_seconds: v.backup_seconds,
            ephemeral: v.ephemeral,
            taken_by: v.taken_by.label().to_string(),
            taken_reason: v.taken_reason,
            snapshot_id: v
                .snapshot_id
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            snapshot_sent_unix_ms: v.snapshot_sent_unix_ms,
            snapshot_available_unix_ms: v.snapshot_available_unix_ms,
            skew_ms: v.skew_ms,
            chain_depth: v.chain_depth,
            group_snapshot_id: v
                .group_snapshot_id
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        }
    }
}

impl From<pb::Resource> for ResourceRecord {
    fn from(r: pb::Resource) -> Self {
        let status = r.status().into();
        Self {
            kind: ResourceType::from_karbor(&r.r#type),
            key: EtcdKey::new(r.key),
            object: ObjectRef::new(r.namespace, r.name),
            uid: Uid::from(r.uid),
            resource_version: r.resource_version,
            mod_revision: Revision::new(r.mod_revision),
            object_id: ObjectId::from_slice(&r.object_id),
            size: r.size,
            encoding: if r.encoding == "json" {
                Encoding::Json
            } else {
                Encoding::Protobuf
            },
            status,
            reason: r.reason,
            parent: (!r.parent.is_empty()).then(|| ObjectRef::parse_lenient(&r.parent)),
            edges: r
                .edges
                .into_iter()
                .filter_map(|e| {
                    Some(Edge {
                        relation: Relation::from_label(&e.relation)?,
                        kind: ResourceType::from_karbor(&e.r#type),
                        target: ObjectRef::new(e.namespace, e.name),
                        uid: Uid::from(e.uid),
                        controller: e.controller,
                    })
                })
                .collect(),
        }
    }
}

impl From<ResourceRecord> for pb::Resource {
    fn from(r: ResourceRecord) -> Self {
        let (namespace, name) = (
            r.object.namespace().to_string(),
            r.object.name().to_string(),
        );
        Self {
            r#type: r.kind.karbor().to_string(),
            key: r.key.as_str().to_string(),
            namespace,
            name,
            uid: r.uid.into(),
            resource_version: r.resource_version,
            mod_revision: r.mod_revision.get(),
            object_id: r.object_id.map(|i| i.to_bytes()).unwrap_or_default(),
            size: r.size,
            encoding: r.encoding.label().to_string(),
            status: pb::ResourceStatus::from(r.status) as i32,
            reason: r.reason,
            parent: r.parent.map(|p| p.to_string()).unwrap_or_default(),
            edges: r
                .edges
                .into_iter()
                .map(|e| pb::Edge {
                    relation: e.relation.label().to_string(),
                    r#type: e.kind.karbor().to_string(),
                    namespace: e.target.namespace().to_string(),
                    name: e.target.name().to_string(),
                    uid: e.uid.into(),
                    controller: e.controller,
                })
                .collect(),
        }
    }
}

fn ids(raw: Vec<bytes::Bytes>, malformed: &mut usize) -> Vec<ObjectId> {
    raw.iter()
        .filter_map(|b| {
            let id = ObjectId::from_slice(b);
            if id.is_none() {
                *malformed += 1;
            }
            id
        })
        .collect()
}

impl From<pb::Checkpoint> for Checkpoint {
    fn from(c: pb::Checkpoint) -> Self {
        let status = c.status().into();
        let mut malformed = 0;
        let resources = ids(c.resource_tables, &mut malformed);
        let volumes = ids(c.volume_tables, &mut malformed);
        let lost = ids(c.lost_tables, &mut malformed);
        let tables = TableRefs {
            resources,
            volumes,
            lost,
            malformed,
        };
        Self {
            id: checkpoint_id(c.id),
            status,
            backup_name: c.backup_name,
            description: c.description,
            created: time_or_epoch(c.created_unix_ms),
            finished: time_of_ms(c.finished_unix_ms),
            revision: Revision::new(c.etcd_revision),
            cluster: c.cluster.unwrap_or_default().into(),
            selection: c.selection.unwrap_or_default().into(),
            tables,
            resource_count: c.resource_count,
            volumes: c.volumes.into_iter().map(Into::into).collect(),
            volume_table_count: c.volume_table_count,
            reason: c.reason,
            plan: c.plan,
            stats: c.stats.unwrap_or_default().into(),
            options_json: c.options_json,
            pods: c.pods,
            project_id: c.project_id,
            hooks: c.hooks.into_iter().map(Into::into).collect(),
            hooks_skipped: c
                .hooks_skipped
                .iter()
                .map(|p| ObjectRef::parse_lenient(p))
                .collect(),
        }
    }
}

impl From<pb::Hook> for HookRecord {
    fn from(h: pb::Hook) -> Self {
        Self {
            pod: ObjectRef::parse_lenient(&h.pod),
            container: h.container,
            command: h.command,
            // A record from a newer writer with a phase this one does not know reads as
            // a post-hook: shown, never taken for one that froze something.
            phase: HookPhase::parse(&h.phase).unwrap_or(HookPhase::Post),
            on_error: HookOnError::parse(&h.on_error).unwrap_or_default(),
            outcome: HookOutcome::parse(&h.outcome),
            exit_code: h.exited.then_some(h.exit_code),
            reason: h.reason,
            started: time_or_epoch(h.started_unix_ms),
            duration_ms: h.duration_ms,
            stdout: h.stdout,
            stderr: h.stderr,
            output_truncated: h.output_truncated,
        }
    }
}

impl From<&HookRecord> for pb::Hook {
    fn from(h: &HookRecord) -> Self {
        Self {
            pod: h.pod.to_string(),
            container: h.container.clone(),
            command: h.command.clone(),
            phase: h.phase.as_str().to_string(),
            on_error: h.on_error.as_str().to_string(),
            outcome: h.outcome.as_str().to_string(),
            exited: h.exit_code.is_some(),
            exit_code: h.exit_code.unwrap_or_default(),
            reason: h.reason.clone(),
            started_unix_ms: ms(h.started),
            duration_ms: h.duration_ms,
            stdout: h.stdout.clone(),
            stderr: h.stderr.clone(),
            output_truncated: h.output_truncated,
        }
    }
}

impl From<&Checkpoint> for pb::Checkpoint {
    fn from(c: &Checkpoint) -> Self {
        let bytes = |v: &[ObjectId]| v.iter().map(ObjectId::to_bytes).collect();
        Self {
            id: c.id.to_string(),
            status: pb::CheckpointStatus::from(c.status) as i32,
            backup_name: c.backup_name.clone(),
            description: c.description.clone(),
            created_unix_ms: ms(c.created),
            finished_unix_ms: c.finished.map(ms).unwrap_or(0),
            etcd_revision: c.revision.get(),
            cluster: Some(c.cluster.clone().into()),
            selection: Some(c.selection.clone().into()),
            resource_tables: bytes(&c.tables.resources),
            resource_count: c.resource_count,
            volumes: c.volumes.iter().cloned().map(Into::into).collect(),
            reason: c.reason.clone(),
            plan: c.plan.clone(),
            stats: Some(c.stats.into()),
            options_json: c.options_json.clone(),
            pods: c.pods,
            volume_tables: bytes(&c.tables.volumes),
            volume_table_count: c.volume_table_count,
            lost_tables: bytes(&c.tables.lost),
            project_id: c.project_id.clone(),
            hooks: c.hooks.iter().map(Into::into).collect(),
            hooks_skipped: c.hooks_skipped.iter().map(ToString::to_string).collect(),
        }
    }
}

impl From<CheckpointBrief> for CheckpointSummary {
    fn from(b: CheckpointBrief) -> Self {
        let status = b.status().into();
        let cinder_volumes = b.volumes.iter().filter(|v| !v.volume_id.is_empty()).count() as u64;
        let backed_up = b
            .volumes
            .iter()
            .filter(|v| v.status() == pb::VolumeStatus::VolumeAvailable)
            .count() as u64;
        let skipped = b
            .volumes
            .iter()
            .filter(|v| {
                !v.volume_id.is_empty() && v.status() == pb::VolumeStatus::VolumeNotProtected
            })
            .count() as u64;
        Self {
            id: checkpoint_id(b.id),
            status,
            backup_name: b.backup_name,
            description: b.description,
            created: time_or_epoch(b.created_unix_ms),
            finished: time_of_ms(b.finished_unix_ms),
            revision: Revision::new(b.etcd_revision),
            selection: b.selection.unwrap_or_default().into(),
            resource_count: b.resource_count,
            cinder_volumes,
            backed_up,
            skipped,
            reason: b.reason,
            plan: b.plan,
            project_id: b.project_id,
            stats: b.stats.unwrap_or_default().into(),
            pods: b.pods,
            backups: b
                .volumes
                .into_iter()
                .filter(|v| !v.backup_id.is_empty())
                .map(|v| BackupLink {
                    volume_id: VolumeId::new(v.volume_id),
                    backup_id: BackupId::new(v.backup_id),
                    incremental: v.incremental,
                    parent_backup_id: non_empty(v.parent_backup_id).map(BackupId::new),
                    parent_checkpoint_id: non_empty(v.parent_checkpoint).map(checkpoint_id),
                })
                .collect(),
        }
    }
}

impl From<pb::RestoredResource> for RestoredResource {
    fn from(r: pb::RestoredResource) -> Self {
        let kind = ResourceType::from_karbor(&r.r#type);
        Self {
            source: Source::parse(&kind, &r.source),
            kind,
            target: r.target,
            new_id: r.new_id,
            outcome: Outcome::from_label(&r.status).unwrap_or(Outcome::Error),
            reason: r.reason,
        }
    }
}

impl From<&RestoredResource> for pb::RestoredResource {
    fn from(r: &RestoredResource) -> Self {
        Self {
            r#type: r.kind.karbor().to_string(),
            source: r.source.to_string(),
            target: r.target.clone(),
            new_id: r.new_id.clone(),
            status: r.outcome.label().to_string(),
            reason: r.reason.clone(),
        }
    }
}

impl From<pb::Restore> for RestoreRecord {
    fn from(r: pb::Restore) -> Self {
        let status = r.status().into();
        Self {
            id: r.id.parse().unwrap_or_else(|_| RestoreId::generate()),
            checkpoint: checkpoint_id(r.checkpoint_id),
            status,
            restore_name: r.restore_name,
            restore_description: r.restore_description,
            created: time_or_epoch(r.created_unix_ms),
            finished: time_of_ms(r.finished_unix_ms),
            resources: r.resources.into_iter().map(Into::into).collect(),
            new_resources: r.new_resources.into_iter().collect(),
            parameters_json: r.parameters_json,
            reason: r.reason,
            journal_seq: r.journal_seq,
            stats: r.stats.map(Into::into).unwrap_or_default(),
            project_id: r.project_id,
        }
    }
}

impl From<pb::RestoreStats> for RestoreStats {
    fn from(s: pb::RestoreStats) -> Self {
        Self {
            record_writes: s.record_writes,
            record_write_time: Duration::from_millis(s.record_write_ms),
            throttled: s.throttled,
            throttle_wait: Duration::from_millis(s.throttle_wait_ms),
            run_time: Duration::from_millis(s.run_ms),
            bank_gets: s.bank_gets,
            bank_range_gets: s.bank_range_gets,
            bank_pack_gets: s.bank_pack_gets,
            bank_bytes_read: s.bank_bytes_read,
        }
    }
}

impl From<&RestoreStats> for pb::RestoreStats {
    fn from(s: &RestoreStats) -> Self {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            record_writes: s.record_writes,
            record_write_ms: ms(s.record_write_time),
            throttled: s.throttled,
            throttle_wait_ms: ms(s.throttle_wait),
            run_ms: ms(s.run_time),
            bank_gets: s.bank_gets,
            bank_range_gets: s.bank_range_gets,
            bank_pack_gets: s.bank_pack_gets,
            bank_bytes_read: s.bank_bytes_read,
        }
    }
}

impl From<pb::RestoreJournal> for JournalBatch {
    fn from(j: pb::RestoreJournal) -> Self {
        Self {
            seq: j.seq,
            resources: j.resources.into_iter().map(Into::into).collect(),
            new_resources: j.new_resources.into_iter().collect(),
        }
    }
}

impl pb::RestoreJournal {
    /// The batch `batch` of restore `restore`, as stored.
    pub fn of(restore: &RestoreId, batch: &JournalBatch) -> Self {
        Self {
            restore_id: restore.to_string(),
            seq: batch.seq,
            resources: batch.resources.iter().map(Into::into).collect(),
            new_resources: batch
                .new_resources
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

impl From<&RestoreRecord> for pb::Restore {
    fn from(r: &RestoreRecord) -> Self {
        Self {
            id: r.id.to_string(),
            checkpoint_id: r.checkpoint.to_string(),
            status: pb::RestoreStatus::from(r.status) as i32,
            restore_name: r.restore_name.clone(),
            restore_description: r.restore_description.clone(),
            created_unix_ms: ms(r.created),
            finished_unix_ms: r.finished.map(ms).unwrap_or(0),
            resources: r.resources.iter().map(Into::into).collect(),
            new_resources: r
                .new_resources
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            parameters_json: r.parameters_json.clone(),
            reason: r.reason.clone(),
            journal_seq: r.journal_seq,
            stats: Some((&r.stats).into()),
            project_id: r.project_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_stats_keep_the_bank_requests() {
        let stats = RestoreStats {
            record_writes: 3,
            run_time: Duration::from_millis(1_500),
            bank_gets: 7,
            bank_range_gets: 120,
            bank_pack_gets: 110,
            bank_bytes_read: 4 << 20,
            ..Default::default()
        };
        let stored = pb::RestoreStats::from(&stats);
        assert_eq!(stored.bank_range_gets, 120);
        assert_eq!(RestoreStats::from(stored), stats);
    }

    #[test]
    fn a_resource_record_survives_the_edge_both_ways() {
        let stored = pb::Resource {
            r#type: "OS::Kubernetes::Pod".into(),
            key: "/registry/pods/shop/web-0".into(),
            namespace: "shop".into(),
            name: "web-0".into(),
            uid: "u-web-0".into(),
            resource_version: "17".into(),
            mod_revision: 17,
            encoding: "protobuf".into(),
            status: pb::ResourceStatus::ResourceProtected as i32,
            edges: vec![pb::Edge {
                relation: "owner".into(),
                r#type: "OS::Kubernetes::ReplicaSet".into(),
                namespace: "shop".into(),
                name: "web-5d9c".into(),
                uid: "u-rs".into(),
                controller: true,
            }],
            ..Default::default()
        };
        let record = ResourceRecord::from(stored.clone());
        assert_eq!(record.uid.as_str(), "u-web-0");
        assert_eq!(record.mod_revision, Revision::new(17));
        assert_eq!(record.parent, None);
        assert_eq!(record.edges[0].uid.as_str(), "u-rs");
        assert_eq!(pb::Resource::from(record), stored);
        for parent in ["shop/web-0", "pv-1"] {
            let with_parent = pb::Resource {
                parent: parent.into(),
                ..stored.clone()
            };
            let record = ResourceRecord::from(with_parent.clone());
            assert_eq!(
                record.parent.as_ref().map(ToString::to_string).as_deref(),
                Some(parent)
            );
            assert_eq!(pb::Resource::from(record), with_parent);
        }
    }

    #[test]
    fn a_manifest_survives_the_edge_both_ways() {
        let pb_cp = pb::Checkpoint {
            id: "20260101T000000Z-00000001".into(),
            status: pb::CheckpointStatus::Available as i32,
            backup_name: "b".into(),
            created_unix_ms: 1_000,
            finished_unix_ms: 2_000,
            etcd_revision: 42,
            selection: Some(pb::Selection {
                namespaces: vec!["shop".into()],
                pods: vec!["shop/web-0".into()],
                ..Default::default()
            }),
            resource_tables: vec![ObjectId::of(b"t").to_bytes()],
            volumes: vec![pb::Volume {
                volume_id: "v1".into(),
                backup_id: "b1".into(),
                status: pb::VolumeStatus::VolumeAvailable as i32,
                pods: vec!["shop/web-0".into()],
                claim: "shop/data".into(),
                driver: "cinder-csi".into(),
                parent_checkpoint: "20251231T000000Z-00000001".into(),
                ..Default::default()
            }],
            stats: Some(pb::Stats {
                objects: 3,
                ..Default::default()
            }),
            pods: 1,
            ..Default::default()
        };
        let model: Checkpoint = pb_cp.clone().into();
        assert_eq!(model.revision.get(), 42);
        assert_eq!(model.status, CheckpointStatus::Available);
        assert_eq!(model.volumes[0].driver, Some(VolumeDriver::CinderCsi));
        assert_eq!(
            model.volumes[0].claim.as_ref().map(ToString::to_string),
            Some("shop/data".into())
        );
        let back = pb::Checkpoint::from(&model);
        assert_eq!(back.id, pb_cp.id);
        assert_eq!(back.volumes, pb_cp.volumes);
        assert_eq!(back.selection, pb_cp.selection);
        assert_eq!(back.resource_tables, pb_cp.resource_tables);
        assert_eq!(back.created_unix_ms, 1_000);
    }

    #[test]
    fn hook_records_survive_the_edge_both_ways() {
        let stored = pb::Hook {
            pod: "shop/db-0".into(),
            container: "db".into(),
            command: vec!["fsfreeze".into(), "-f".into(), "/data".into()],
            phase: "pre".into(),
            on_error: "Continue".into(),
            outcome: "failed".into(),
            exited: true,
            exit_code: 3,
            reason: "exit code 3".into(),
            started_unix_ms: 1_000,
            duration_ms: 250,
            stdout: "frozen\n".into(),
            stderr: "".into(),
            output_truncated: false,
        };
        let record = HookRecord::from(stored.clone());
        assert_eq!(record.pod.to_string(), "shop/db-0");
        assert_eq!(record.phase, HookPhase::Pre);
        assert_eq!(record.on_error, HookOnError::Continue);
        assert_eq!(record.outcome, HookOutcome::Failed);
        assert_eq!(record.exit_code, Some(3));
        assert_eq!(record.finished().timestamp_millis(), 1_250);
        assert_eq!(pb::Hook::from(&record), stored);
        // A timed-out hook has no exit code, and says so.
        let timed_out = pb::Hook {
            outcome: "timed-out".into(),
            exited: false,
            exit_code: 0,
            ..stored
        };
        let record = HookRecord::from(timed_out.clone());
        assert_eq!(record.outcome, HookOutcome::TimedOut);
        assert_eq!(record.exit_code, None);
        assert_eq!(pb::Hook::from(&record), timed_out);
        let cp = pb::Checkpoint {
            hooks: vec![timed_out.clone()],
            hooks_skipped: vec!["shop/web-1".into()],
            ..Default::default()
        };
        let model = Checkpoint::from(cp);
        let back = pb::Checkpoint::from(&model);
        assert_eq!(back.hooks, vec![timed_out]);
        assert_eq!(back.hooks_skipped, vec!["shop/web-1".to_string()]);
    }
}

/// A plan record that does not hold a plan.
#[derive(Debug, thiserror::Error)]
pub enum BadPlan {
    /// Its id is no UUID.
    #[error(transparent)]
    Id(#[from] InvalidPlanId),
    /// A JSON field does not parse.
    #[error("{field} is not a JSON object: {reason}")]
    Json {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

fn json_object(
    field: &'static str,
    s: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, BadPlan> {
    if s.is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str(s) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(BadPlan::Json {
            field,
            reason: "not an object".into(),
        }),
        Err(e) => Err(BadPlan::Json {
            field,
            reason: e.to_string(),
        }),
    }
}

impl TryFrom<pb::Plan> for StoredPlan {
    type Error = BadPlan;
    fn try_from(p: pb::Plan) -> Result<Self, BadPlan> {
        let resources = p
            .resources
            .into_iter()
            .map(|r| {
                let extra_info = if r.extra_info_json.is_empty() {
                    None
                } else {
                    Some(
                        serde_json::from_str(&r.extra_info_json).map_err(|e| BadPlan::Json {
                            field: "extra_info",
                            reason: e.to_string(),
                        })?,
                    )
                };
                Ok(PlanResource {
                    id: r.id,
                    kind: r.r#type,
                    name: r.name,
                    extra_info,
                })
            })
            .collect::<Result<Vec<_>, BadPlan>>()?;
        Ok(StoredPlan {
            id: p.id.parse()?,
            project_id: p.project_id,
            name: p.name,
            description: p.description,
            provider_id: p.provider_id,
            status: PlanStatus::from_label(&p.status).unwrap_or_default(),
            resources,
            parameters: json_object("parameters", &p.parameters_json)?,
            created: time_or_epoch(p.created_unix_ms),
        })
    }
}

impl From<&StoredPlan> for pb::Plan {
    fn from(p: &StoredPlan) -> Self {
        pb::Plan {
            id: p.id.to_string(),
            project_id: p.project_id.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            provider_id: p.provider_id.clone(),
            status: p.status.label().to_string(),
            resources: p
                .resources
                .iter()
                .map(|r| pb::PlanResource {
                    id: r.id.clone(),
                    r#type: r.kind.clone(),
                    name: r.name.clone(),
                    extra_info_json: r
                        .extra_info
                        .as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                })
                .collect(),
            parameters_json: serde_json::Value::Object(p.parameters.clone()).to_string(),
            created_unix_ms: ms_of(Some(p.created)),
        }
    }
}

/// A trigger record that does not hold a trigger.
#[derive(Debug, thiserror::Error)]
pub enum BadTrigger {
    /// Its id is no UUID.
    #[error(transparent)]
    Id(#[from] InvalidTriggerId),
    /// A field holds a word no trigger has.
    #[error("{field} {value:?} is not known")]
    Unknown {
        /// The field.
        field: &'static str,
        /// What it holds.
        value: String,
    },
}

impl TryFrom<pb::Trigger> for StoredTrigger {
    type Error = BadTrigger;
    fn try_from(t: pb::Trigger) -> Result<Self, BadTrigger> {
        let kind = TriggerType::from_label(&t.r#type).ok_or(BadTrigger::Unknown {
            field: "type",
            value: t.r#type.clone(),
        })?;
        let format = TimeFormat::from_label(&t.format).ok_or(BadTrigger::Unknown {
            field: "format",
            value: t.format.clone(),
        })?;
        Ok(StoredTrigger {
            id: t.id.parse()?,
            project_id: t.project_id,
            name: t.name,
            kind,
            format,
            pattern: t.pattern,
            start_time: time_or_epoch(t.start_unix_ms),
            end_time: time_of_ms(t.end_unix_ms),
            window_seconds: t.window_seconds,
            created: time_or_epoch(t.created_unix_ms),
        })
    }
}

impl From<&StoredTrigger> for pb::Trigger {
    fn from(t: &StoredTrigger) -> Self {
        pb::Trigger {
            id: t.id.to_string(),
            project_id: t.project_id.clone(),
            name: t.name.clone(),
            r#type: t.kind.label().to_string(),
            format: t.format.label().to_string(),
            pattern: t.pattern.clone(),
            start_unix_ms: ms_of(Some(t.start_time)),
            end_unix_ms: ms_of(t.end_time),
            window_seconds: t.window_seconds,
            created_unix_ms: ms_of(Some(t.created)),
        }
    }
}

/// A scheduled operation record that does not hold one.
#[derive(Debug, thiserror::Error)]
pub enum BadScheduledOperation {
    /// Its id is no UUID.
    #[error(transparent)]
    Id(#[from] InvalidScheduledOperationId),
    /// Its trigger id is no UUID.
    #[error(transparent)]
    Trigger(#[from] InvalidTriggerId),
    /// Its operation type is not known.
    #[error("operation_type {0:?} is not known")]
    Type(String),
}

impl TryFrom<pb::ScheduledOperation> for StoredOperation {
    type Error = BadScheduledOperation;
    fn try_from(o: pb::ScheduledOperation) -> Result<Self, BadScheduledOperation> {
        let operation_type = OperationType::from_label(&o.operation_type)
            .ok_or_else(|| BadScheduledOperation::Type(o.operation_type.clone()))?;
        Ok(StoredOperation {
            id: o.id.parse()?,
            project_id: o.project_id,
            name: o.name,
            description: o.description,
            operation_type,
            trigger_id: o.trigger_id.parse()?,
            plan_id: o.plan_id,
            provider_id: o.provider_id,
            max_backups: (o.max_backups > 0).then_some(o.max_backups),
            retention_days: (o.retention_days > 0).then_some(o.retention_days),
            enabled: o.enabled,
            created: time_or_epoch(o.created_unix_ms),
            last_fired: time_of_ms(o.last_fired_unix_ms),
        })
    }
}

impl From<&StoredOperation> for pb::ScheduledOperation {
    fn from(o: &StoredOperation) -> Self {
        pb::ScheduledOperation {
            id: o.id.to_string(),
            project_id: o.project_id.clone(),
            name: o.name.clone(),
            description: o.description.clone(),
            operation_type: o.operation_type.label().to_string(),
            trigger_id: o.trigger_id.to_string(),
            plan_id: o.plan_id.clone(),
            provider_id: o.provider_id.clone(),
            max_backups: o.max_backups.unwrap_or(0),
            retention_days: o.retention_days.unwrap_or(0),
            enabled: o.enabled,
            created_unix_ms: ms_of(Some(o.created)),
            last_fired_unix_ms: ms_of(o.last_fired),
        }
    }
}

#[cfg(test)]
mod trigger_tests {
    use super::*;

    #[test]
    fn a_trigger_survives_its_record() {
        let t = StoredTrigger {
            id: crate::model::TriggerId::generate(),
            project_id: "p1".into(),
            name: "hourly".into(),
            kind: TriggerType::Time,
            format: TimeFormat::Crontab,
            pattern: "0 * * * *".into(),
            start_time: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            end_time: None,
            window_seconds: 900,
            created: chrono::DateTime::from_timestamp(1_700_000_001, 0).unwrap(),
        };
        let back = StoredTrigger::try_from(pb::Trigger::from(&t)).unwrap();
        assert_eq!(back, t);
        let mut bad = pb::Trigger::from(&t);
        bad.format = "ical".into();
        assert!(StoredTrigger::try_from(bad).is_err());
    }

    #[test]
    fn a_scheduled_operation_survives_its_record() {
        let o = StoredOperation {
            id: crate::model::ScheduledOperationId::generate(),
            project_id: "p1".into(),
            name: "nightly".into(),
            description: "keep two".into(),
            operation_type: OperationType::RetentionProtect,
            trigger_id: crate::model::TriggerId::generate(),
            plan_id: "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a".into(),
            provider_id: "provider".into(),
            max_backups: Some(2),
            retention_days: None,
            enabled: true,
            created: chrono::DateTime::from_timestamp(1_700_000_001, 0).unwrap(),
            last_fired: chrono::DateTime::from_timestamp(1_700_003_600, 0),
        };
        let back = StoredOperation::try_from(pb::ScheduledOperation::from(&o)).unwrap();
        assert_eq!(back, o);
        let mut bad = pb::ScheduledOperation::from(&o);
        bad.operation_type = "copy".into();
        assert!(StoredOperation::try_from(bad).is_err());
    }
}
