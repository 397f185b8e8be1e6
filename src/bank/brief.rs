//! A checkpoint's manifest as listings read it: the same field numbers as
//! `pb::Checkpoint` in `proto/bank.proto`, with each volume record reduced to its volume id,
//! status and backup chain. prost skips the fields not named here without allocating them, so listing a
//! bank whose checkpoints hold hundreds of thousands of volume records stays cheap.

use prost::Message;

use super::format::pb;

/// A volume record as listings read it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VolumeBrief {
    /// The Cinder volume (empty for a pod volume that is not a Cinder volume).
    #[prost(string, tag = "1")]
    pub volume_id: String,
    /// Its backup (empty: none).
    #[prost(string, tag = "2")]
    pub backup_id: String,
    /// An incremental backup.
    #[prost(bool, tag = "4")]
    pub incremental: bool,
    /// The backup it builds on (empty: none).
    #[prost(string, tag = "5")]
    pub parent_backup_id: String,
    /// The checkpoint that holds that parent (empty: none).
    #[prost(string, tag = "6")]
    pub parent_checkpoint: String,
    /// Its status.
    #[prost(enumeration = "pb::VolumeStatus", tag = "7")]
    pub status: i32,
}

/// `pb::Checkpoint` without the cluster, the resource table ids, the options and the
/// volume records' details.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckpointBrief {
    /// Id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Status.
    #[prost(enumeration = "pb::CheckpointStatus", tag = "2")]
    pub status: i32,
    /// Karbor's backup_name.
    #[prost(string, tag = "3")]
    pub backup_name: String,
    /// Karbor's description.
    #[prost(string, tag = "4")]
    pub description: String,
    /// When it started.
    #[prost(uint64, tag = "5")]
    pub created_unix_ms: u64,
    /// When it ended.
    #[prost(uint64, tag = "6")]
    pub finished_unix_ms: u64,
    /// The etcd revision read.
    #[prost(int64, tag = "7")]
    pub etcd_revision: i64,
    /// The selection asked for.
    #[prost(message, optional, tag = "9")]
    pub selection: Option<pb::Selection>,
    /// Resources stored.
    #[prost(uint64, tag = "11")]
    pub resource_count: u64,
    /// Volume records, reduced.
    #[prost(message, repeated, tag = "12")]
    pub volumes: Vec<VolumeBrief>,
    /// Why it is `error`.
    #[prost(string, tag = "13")]
    pub reason: String,
    /// The plan that made it.
    #[prost(string, tag = "14")]
    pub plan: String,
    /// Write statistics.
    #[prost(message, optional, tag = "15")]
    pub stats: Option<pb::Stats>,
    /// Pods protected.
    #[prost(uint32, tag = "17")]
    pub pods: u32,
    /// The Karbor project that made it.
    #[prost(string, tag = "30")]
    pub project_id: String,
}

/// A record [`super::Bank::manifests`] can list: the full manifest or its brief.
pub trait Manifest: Message + Default + Sized {
    /// What it becomes above the bank.
    type Model;
    /// Converts it at the bank's edge.
    fn into_model(self) -> Self::Model;
    /// The checkpoint's id.
    fn id(&self) -> &str;
    /// When it started (the list's order).
    fn created_unix_ms(&self) -> u64;
    /// The record of a checkpoint still being written (from a writer's lock).
    fn from_partial(partial: &pb::Checkpoint) -> Self;
}

impl Manifest for pb::Checkpoint {
    type Model = crate::model::Checkpoint;
    fn into_model(self) -> Self::Model {
        self.into()
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn created_unix_ms(&self) -> u64 {
        self.created_unix_ms
    }
    fn from_partial(partial: &pb::Checkpoint) -> Self {
        partial.clone()
    }
}

impl Manifest for CheckpointBrief {
    type Model = crate::model::CheckpointSummary;
    fn into_model(self) -> Self::Model {
        self.into()
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn created_unix_ms(&self) -> u64 {
        self.created_unix_ms
    }
    fn from_partial(partial: &pb::Checkpoint) -> Self {
        // Same field numbers: the brief reads the full record's bytes.
        CheckpointBrief::decode(partial.encode_to_vec().as_slice()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_brief_reads_what_the_full_manifest_wrote() {
        let cp = pb::Checkpoint {
            id: "20260101T000000Z-00000001".into(),
            status: pb::CheckpointStatus::Error as i32,
            backup_name: "b".into(),
            description: "d".into(),
            created_unix_ms: 5,
            finished_unix_ms: 6,
            etcd_revision: 7,
            selection: Some(pb::Selection {
                namespaces: vec!["ns".into()],
                ..Default::default()
            }),
            resource_tables: vec![vec![1u8; 32].into()],
            resource_count: 11,
            volumes: vec![
                pb::Volume {
                    volume_id: "v1".into(),
                    backup_id: "b1".into(),
                    status: pb::VolumeStatus::VolumeAvailable as i32,
                    reason: "r".into(),
                    pods: vec!["ns/p".into()],
                    ..Default::default()
                },
                pb::Volume {
                    status: pb::VolumeStatus::VolumeNotProtected as i32,
                    pod_volume: "scratch".into(),
                    ..Default::default()
                },
            ],
            reason: "why".into(),
            plan: "nightly".into(),
            stats: Some(pb::Stats {
                objects: 3,
                ..Default::default()
            }),
            options_json: "{}".into(),
            pods: 17,
            ..Default::default()
        };
        let b = CheckpointBrief::from_partial(&cp);
        assert_eq!(b.id, cp.id);
        assert_eq!(b.status(), pb::CheckpointStatus::Error);
        assert_eq!(
            (b.created_unix_ms, b.finished_unix_ms, b.etcd_revision),
            (5, 6, 7)
        );
        assert_eq!(b.selection, cp.selection);
        assert_eq!((b.resource_count, b.pods), (11, 17));
        assert_eq!((b.reason.as_str(), b.plan.as_str()), ("why", "nightly"));
        assert_eq!(b.stats, cp.stats);
        assert_eq!(b.volumes.len(), 2);
        assert_eq!(b.volumes[0].volume_id, "v1");
        assert_eq!(b.volumes[0].status(), pb::VolumeStatus::VolumeAvailable);
        assert_eq!(b.volumes[1].status(), pb::VolumeStatus::VolumeNotProtected);
    }
}
