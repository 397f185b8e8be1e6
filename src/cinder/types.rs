//! Cinder's volumes and backups as podbank sees them, and the JSON shapes of the API.
//!
//! No I/O here: the wire structs are lenient (every field optional, unknown fields ignored)
//! and are turned into the public types with defaults, so that a field Cinder leaves out or
//! sends as `null` never fails a whole listing.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::model::{BackupId, GroupId, GroupSnapshotId, SnapshotId, VolumeId};

/// A backup's status. Cinder's statuses are plain strings; the ones podbank acts on are named.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum BackupStatus {
    /// Being written by cinder-backup.
    Creating,
    /// Done and usable: can be restored, deleted, or be the parent of an incremental backup.
    Available,
    /// Being read back into a volume.
    Restoring,
    /// Being deleted.
    Deleting,
    /// Deleted (seen only in listings that include deleted backups).
    Deleted,
    /// Failed; `fail_reason` says why.
    Error,
    /// Any other status Cinder may report.
    Other(String),
}

impl BackupStatus {
    /// Cinder's name for the status.
    pub fn as_str(&self) -> &str {
        match self {
            BackupStatus::Creating => "creating",
            BackupStatus::Available => "available",
            BackupStatus::Restoring => "restoring",
            BackupStatus::Deleting => "deleting",
            BackupStatus::Deleted => "deleted",
            BackupStatus::Error => "error",
            BackupStatus::Other(s) => s,
        }
    }
}

impl From<String> for BackupStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "creating" => BackupStatus::Creating,
            "available" => BackupStatus::Available,
            "restoring" => BackupStatus::Restoring,
            "deleting" => BackupStatus::Deleting,
            "deleted" => BackupStatus::Deleted,
            "error" => BackupStatus::Error,
            _ => BackupStatus::Other(s),
        }
    }
}

impl From<BackupStatus> for String {
    fn from(s: BackupStatus) -> String {
        s.as_str().to_string()
    }
}

impl fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Cinder backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// Its id.
    pub id: BackupId,
    /// The volume it was taken of.
    pub volume_id: VolumeId,
    /// Its name (empty when Cinder has none).
    pub name: String,
    /// Its status.
    pub status: BackupStatus,
    /// Why it failed, when `status` is `error`.
    pub fail_reason: Option<String>,
    /// Size of the source volume in GiB (0 while Cinder has not recorded it).
    pub size_gib: u64,
    /// Whether it is an incremental backup (its parent is the volume's previous backup).
    pub is_incremental: bool,
    /// Whether incremental backups depend on it (then Cinder refuses to delete it).
    pub has_dependent_backups: bool,
    /// Creation time as Cinder reports it (ISO 8601, UTC, no zone suffix).
    pub created_at: Option<String>,
    /// Its metadata (microversion 3.43 and later).
    pub metadata: BTreeMap<String, String>,
    /// The snapshot it was made from (`None`: from the live volume).
    pub snapshot_id: Option<SnapshotId>,
}

/// A Cinder volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Its id.
    pub id: VolumeId,
    /// Its name (empty when Cinder has none).
    pub name: String,
    /// Its status: `creating`, `available`, `in-use`, `restoring-backup`, `error`, ...
    pub status: String,
    /// Size in GiB.
    pub size_gib: u64,
    /// Volume type name.
    pub volume_type: Option<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// Its metadata.
    pub metadata: BTreeMap<String, String>,
    /// The group it is in (microversion 3.13 and later), if any.
    pub group_id: Option<GroupId>,
}

/// What to create with [`super::Cinder::create_volume`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVolume {
    /// Size in GiB; with `backup_id`, at least the backup's size.
    pub size_gib: u64,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Restore this backup into the new volume (honoured from microversion 3.47, which podbank
    /// always sends or exceeds).
    pub backup_id: Option<BackupId>,
    /// Volume type (Cinder's default type when `None`).
    pub volume_type: Option<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

/// What to create with [`super::Cinder::create_backup`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBackup {
    /// The volume to back up.
    pub volume_id: VolumeId,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Incremental on the volume's latest available backup (the first backup must be full).
    pub incremental: bool,
    /// Back up an `in-use` volume too.
    pub force: bool,
    /// Back up this snapshot of the volume instead of the live volume.
    pub snapshot_id: Option<SnapshotId>,
    /// Metadata (microversion 3.43 and later).
    pub metadata: BTreeMap<String, String>,
}

/// A Cinder volume snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Its id.
    pub id: SnapshotId,
    /// The volume it was taken of.
    pub volume_id: VolumeId,
    /// Its name (empty when Cinder has none).
    pub name: String,
    /// Its status: `creating`, `available`, `deleting`, `error`, `error_deleting`, ...
    pub status: String,
    /// Its metadata.
    pub metadata: BTreeMap<String, String>,
    /// The group snapshot it is a member of (microversion 3.14 and later), if any.
    pub group_snapshot_id: Option<GroupSnapshotId>,
}

/// A Cinder volume group (microversion 3.13 and later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Its id.
    pub id: GroupId,
    /// Its name (empty when Cinder has none).
    pub name: String,
    /// Its status: `creating`, `available`, `error`, ...
    pub status: String,
    /// Its group type's id.
    pub group_type: String,
}

/// A Cinder group type (microversion 3.11 and later): its group specs say, among other
/// things, whether groups of it support consistent group snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupType {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its group specs.
    pub group_specs: BTreeMap<String, String>,
}

impl GroupType {
    /// Whether groups of this type take consistent group snapshots: the group spec
    /// `consistent_group_snapshot_enabled` is `<is> True` (or plain `True`).
    pub fn consistent_snapshots(&self) -> bool {
        self.group_specs
            .get("consistent_group_snapshot_enabled")
            .map(|v| v.trim().trim_start_matches("<is>").trim())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// A Cinder group snapshot (microversion 3.14 and later): one snapshot of every volume of
/// a group, taken at one moment; its member snapshots carry its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    /// Its id.
    pub id: GroupSnapshotId,
    /// The group it was taken of.
    pub group_id: GroupId,
    /// Its name (empty when Cinder has none).
    pub name: String,
    /// Its status: `creating`, `available`, `deleting`, `error`, `error_deleting`, ...
    pub status: String,
}

/// What to create with [`super::Cinder::create_snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSnapshot {
    /// The volume to snapshot.
    pub volume_id: VolumeId,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Snapshot an `in-use` volume too.
    pub force: bool,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

/// A Cinder user message (`GET /messages`, microversion 3.3 and later): what Cinder tells a
/// project about an asynchronous failure, such as a snapshot the driver refused, e.g.
/// `create snapshot:Snapshot failed to create.`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMessage {
    /// Its id.
    pub id: String,
    /// The resource it is about (a snapshot, volume or backup id).
    pub resource_uuid: String,
    /// Cinder's text: the action and what went wrong.
    pub user_message: String,
    /// Cinder's event id (`VOLUME_VOLUME_SNAPSHOT_009_013`, ...).
    pub event_id: String,
    /// When Cinder wrote it (as Cinder gives it).
    pub created_at: String,
}

// ---- wire shapes -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub(crate) struct WireBackup {
    pub id: String,
    #[serde(default)]
    pub volume_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub fail_reason: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub is_incremental: Option<bool>,
    #[serde(default)]
    pub has_dependent_backups: Option<bool>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub snapshot_id: Option<String>,
}

impl From<WireBackup> for Backup {
    fn from(w: WireBackup) -> Backup {
        Backup {
            id: BackupId::new(w.id),
            volume_id: VolumeId::new(w.volume_id.unwrap_or_default()),
            name: w.name.unwrap_or_default(),
            status: BackupStatus::from(w.status.unwrap_or_default()),
            fail_reason: w.fail_reason.filter(|r| !r.is_empty()),
            size_gib: w.size.unwrap_or(0),
            is_incremental: w.is_incremental.unwrap_or(false),
            has_dependent_backups: w.has_dependent_backups.unwrap_or(false),
            created_at: w.created_at,
            metadata: w.metadata.unwrap_or_default(),
            snapshot_id: w.snapshot_id.filter(|s| !s.is_empty()).map(SnapshotId::new),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireVolume {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub volume_type: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub group_id: Option<String>,
}

impl From<WireVolume> for Volume {
    fn from(w: WireVolume) -> Volume {
        Volume {
            id: VolumeId::new(w.id),
            name: w.name.unwrap_or_default(),
            status: w.status.unwrap_or_default(),
            size_gib: w.size.unwrap_or(0),
            volume_type: w.volume_type,
            availability_zone: w.availability_zone,
            metadata: w.metadata.unwrap_or_default(),
            group_id: w.group_id.filter(|g| !g.is_empty()).map(GroupId::new),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireSnapshot {
    pub id: String,
    #[serde(default)]
    pub volume_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub group_snapshot_id: Option<String>,
}

impl From<WireSnapshot> for Snapshot {
    fn from(w: WireSnapshot) -> Snapshot {
        Snapshot {
            id: SnapshotId::new(w.id),
            volume_id: VolumeId::new(w.volume_id.unwrap_or_default()),
            name: w.name.unwrap_or_default(),
            status: w.status.unwrap_or_default(),
            metadata: w.metadata.unwrap_or_default(),
            group_snapshot_id: w
                .group_snapshot_id
                .filter(|g| !g.is_empty())
                .map(GroupSnapshotId::new),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireGroup {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub group_type: Option<String>,
}

impl From<WireGroup> for Group {
    fn from(w: WireGroup) -> Group {
        Group {
            id: GroupId::new(w.id),
            name: w.name.unwrap_or_default(),
            status: w.status.unwrap_or_default(),
            group_type: w.group_type.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct GroupRoot {
    pub group: WireGroup,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireGroupType {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub group_specs: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GroupTypeRoot {
    pub group_type: WireGroupType,
}

impl From<WireGroupType> for GroupType {
    fn from(w: WireGroupType) -> GroupType {
        GroupType {
            id: w.id,
            name: w.name.unwrap_or_default(),
            group_specs: w.group_specs.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireGroupSnapshot {
    pub id: String,
    #[serde(default)]
    pub group_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

impl From<WireGroupSnapshot> for GroupSnapshot {
    fn from(w: WireGroupSnapshot) -> GroupSnapshot {
        GroupSnapshot {
            id: GroupSnapshotId::new(w.id),
            group_id: GroupId::new(w.group_id.unwrap_or_default()),
            name: w.name.unwrap_or_default(),
            status: w.status.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct GroupSnapshotRoot {
    pub group_snapshot: WireGroupSnapshot,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SnapshotRoot {
    pub snapshot: WireSnapshot,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SnapshotsPage {
    #[serde(default)]
    pub snapshots: Vec<WireSnapshot>,
    #[serde(default)]
    pub snapshots_links: Vec<Link>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireMessage {
    pub id: String,
    #[serde(default)]
    pub resource_uuid: Option<String>,
    #[serde(default)]
    pub user_message: Option<String>,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

impl From<WireMessage> for UserMessage {
    fn from(w: WireMessage) -> UserMessage {
        UserMessage {
            id: w.id,
            resource_uuid: w.resource_uuid.unwrap_or_default(),
            user_message: w.user_message.unwrap_or_default(),
            event_id: w.event_id.unwrap_or_default(),
            created_at: w.created_at.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct MessagesPage {
    #[serde(default)]
    pub messages: Vec<WireMessage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BackupRoot {
    pub backup: WireBackup,
}

/// `POST /backups` answers with only `id`, `name` and `links`.
#[derive(Debug, Deserialize)]
pub(crate) struct CreatedRoot {
    pub backup: CreatedBackup,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreatedBackup {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BackupsPage {
    #[serde(default)]
    pub backups: Vec<WireBackup>,
    #[serde(default)]
    pub backups_links: Vec<Link>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Link {
    #[serde(default)]
    pub rel: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct VolumeRoot {
    pub volume: WireVolume,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RestoreRoot {
    pub restore: RestoreReply,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RestoreReply {
    pub volume_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_with_nulls_and_unknown_fields_parses() {
        let json = r#"{"backup": {"id": "b1", "status": "error", "size": null, "name": null,
            "fail_reason": "boom", "volume_id": "v1", "object_count": 3, "container": null,
            "is_incremental": true, "has_dependent_backups": false, "metadata": {"k": "v"}}}"#;
        let root: BackupRoot = serde_json::from_str(json).expect("parses");
        let b = Backup::from(root.backup);
        assert_eq!(b.id.as_str(), "b1");
        assert_eq!(b.status, BackupStatus::Error);
        assert_eq!(b.fail_reason.as_deref(), Some("boom"));
        assert_eq!(b.size_gib, 0);
        assert_eq!(b.name, "");
        assert!(b.is_incremental);
        assert_eq!(b.metadata.get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn status_round_trips_including_unknown() {
        for s in [
            "creating",
            "available",
            "restoring",
            "deleting",
            "deleted",
            "error",
            "weird_new",
        ] {
            let st = BackupStatus::from(s.to_string());
            assert_eq!(st.as_str(), s);
            let json = serde_json::to_string(&st).expect("ser");
            assert_eq!(json, format!("\"{s}\""));
        }
        assert_eq!(
            BackupStatus::from("weird_new".to_string()),
            BackupStatus::Other("weird_new".into())
        );
    }

    #[test]
    fn ids_display_and_serialize_as_plain_strings() {
        let id = BackupId::new("abc");
        assert_eq!(id.to_string(), "abc");
        assert_eq!(serde_json::to_string(&id).expect("ser"), "\"abc\"");
        let v: VolumeId = serde_json::from_str("\"v-1\"").expect("de");
        assert_eq!(v.as_str(), "v-1");
    }

    fn group_type(spec: Option<&str>) -> GroupType {
        GroupType {
            id: "t".into(),
            name: "t".into(),
            group_specs: spec
                .map(|v| {
                    BTreeMap::from([(
                        "consistent_group_snapshot_enabled".to_string(),
                        v.to_string(),
                    )])
                })
                .unwrap_or_default(),
        }
    }

    #[test]
    fn a_group_type_has_consistent_snapshots_only_when_its_spec_says_true() {
        assert!(group_type(Some("<is> True")).consistent_snapshots());
        assert!(group_type(Some("True")).consistent_snapshots());
        assert!(group_type(Some("<is>  true ")).consistent_snapshots());
        assert!(!group_type(Some("<is> False")).consistent_snapshots());
        assert!(!group_type(None).consistent_snapshots());
    }

    #[test]
    fn a_volume_and_a_snapshot_read_their_group_fields() {
        let v: WireVolume =
            serde_json::from_str(r#"{"id": "v", "group_id": "g"}"#).expect("volume");
        assert_eq!(Volume::from(v).group_id, Some(GroupId::new("g")));
        let v: WireVolume =
            serde_json::from_str(r#"{"id": "v", "group_id": null}"#).expect("volume");
        assert_eq!(Volume::from(v).group_id, None);
        let s: WireSnapshot =
            serde_json::from_str(r#"{"id": "s", "group_snapshot_id": "gs"}"#).expect("snapshot");
        assert_eq!(
            Snapshot::from(s).group_snapshot_id,
            Some(GroupSnapshotId::new("gs"))
        );
    }
}
