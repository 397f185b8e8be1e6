//! Cinder: the block-storage API podbank backs volumes up with, and restores them from.
//!
//! This module owns every call to Cinder: the service-catalog types it is found under
//! (`volumev3` / `block-storage`), the `OpenStack-API-Version: volume 3.x` header (3.60, or
//! the server's maximum, never below 3.47), the request timeout, which requests may be
//! retried (a POST only when Cinder surely did not get it), and the meaning of Cinder's
//! answers. Credentials, the Keystone session, the catalog lookup, the retry policy and
//! error text are [`crate::openstack`]'s. It knows volumes and backups by id and nothing of
//! Kubernetes, etcd or the bank: [`crate::protection`] decides what to back up and records
//! the ids.
//!
//! What callers may rely on:
//! * every method is one logical operation; transient failures (5xx, connection errors) are
//!   retried inside it, a POST only when Cinder surely did not receive it;
//! * "not found" is an answer, not an error, where the method says so (`get_*` give `None`,
//!   `delete_*` succeed);
//! * `create_backup` returns the new backup's id even when the follow-up read fails, so a
//!   backup Cinder accepted is never lost to the caller;
//! * the `wait_*` methods poll with backoff until a final state or their deadline.

mod config;
mod error;
mod session;
mod types;

pub use config::CinderSettings;
pub use error::{CinderError, ResourceKind};
pub use session::{Microversion, MINIMUM_MICROVERSION, PREFERRED_MICROVERSION};
pub use types::{
    Backup, BackupId, BackupStatus, Group, GroupId, GroupSnapshot, GroupSnapshotId, GroupType,
    NewBackup, NewSnapshot, NewVolume, Snapshot, SnapshotId, UserMessage, Volume, VolumeId,
};

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::json;

use session::{Reply, Session};
use types::{
    BackupRoot, BackupsPage, CreatedRoot, GroupRoot, GroupSnapshotRoot, GroupTypeRoot,
    MessagesPage, RestoreRoot, SnapshotRoot, SnapshotsPage, VolumeRoot,
};

/// A connected Cinder client. Cheap to clone (the session is shared); `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Cinder {
    session: Arc<Session>,
    poll_max: Duration,
    page: usize,
}

impl Cinder {
    /// Authenticate with Keystone, find Cinder in the catalog, pick the microversion, and check
    /// that the project may list backups.
    ///
    /// Wrong credentials give [`CinderError::Auth`] naming the user (or application
    /// credential), the Keystone URL and where the settings came from.
    pub async fn connect(settings: &CinderSettings) -> Result<Cinder, CinderError> {
        let session = Session::open(settings).await?;
        let reply = session
            .get(&["backups"], &[("limit", "1".to_string())])
            .await?;
        match reply.status {
            s if s.is_success() => {}
            StatusCode::FORBIDDEN => {
                return Err(CinderError::Auth(format!(
                    "{} is authenticated, but Cinder's policy forbids listing backups: {}",
                    session.identity(),
                    reply.message()
                )))
            }
            StatusCode::NOT_FOUND => {
                return Err(CinderError::Catalog(format!(
                    "the catalog's block-storage endpoint {} answers 404 to GET backups: {}",
                    session.endpoint(),
                    reply.message()
                )))
            }
            _ => return Err(api_error("GET", &session.url(&["backups"], &[]), &reply)),
        }
        tracing::debug!(endpoint = %session.endpoint(), microversion = %session.microversion(), "connected to Cinder");
        Ok(Cinder {
            session: Arc::new(session),
            poll_max: settings.poll_interval_max.max(Duration::from_millis(100)),
            page: settings.page_size.max(1),
        })
    }

    /// The block-storage endpoint in use.
    pub fn endpoint(&self) -> &str {
        self.session.endpoint().as_str()
    }

    /// The microversion sent with every request.
    pub fn microversion(&self) -> Microversion {
        self.session.microversion()
    }

    /// A volume, or `None` when it does not exist.
    pub async fn get_volume(&self, id: &VolumeId) -> Result<Option<Volume>, CinderError> {
        let root: Option<VolumeRoot> = self.get_one(&["volumes", id.as_str()]).await?;
        Ok(root.map(|r| r.volume.into()))
    }

    /// Create a volume (from a backup when `backup_id` is set). Returns at once, usually in
    /// status `creating`; see [`Cinder::wait_volume`].
    pub async fn create_volume(&self, req: &NewVolume) -> Result<Volume, CinderError> {
        let mut volume = serde_json::Map::new();
        volume.insert("size".into(), json!(req.size_gib));
        insert_opt(&mut volume, "name", req.name.as_deref());
        insert_opt(&mut volume, "description", req.description.as_deref());
        insert_opt(
            &mut volume,
            "backup_id",
            req.backup_id.as_ref().map(BackupId::as_str),
        );
        insert_opt(&mut volume, "volume_type", req.volume_type.as_deref());
        insert_opt(
            &mut volume,
            "availability_zone",
            req.availability_zone.as_deref(),
        );
        if !req.metadata.is_empty() {
            volume.insert("metadata".into(), json!(req.metadata));
        }
        let path = ["volumes"];
        let reply = self
            .session
            .post(&path, json!({ "volume": volume }))
            .await?;
        match (reply.status, &req.backup_id) {
            (s, _) if s.is_success() => {
                let root: VolumeRoot = self.parse(&path, &reply)?;
                Ok(root.volume.into())
            }
            (StatusCode::NOT_FOUND, Some(backup)) => Err(CinderError::NotFound {
                kind: ResourceKind::Backup,
                id: backup.to_string(),
            }),
            _ => Err(self.api_error("POST", &path, &reply)),
        }
    }

    /// Delete a volume. A volume that does not exist counts as deleted. Returns when Cinder
    /// accepted the request; see [`Cinder::wait_volume_deleted`].
    pub async fn delete_volume(&self, id: &VolumeId) -> Result<(), CinderError> {
        let path = ["volumes", id.as_str()];
        let reply = self.session.delete(&path).await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(()),
            s if s.is_success() => Ok(()),
            _ => Err(self.api_error("DELETE", &path, &reply)),
        }
    }

    /// Start a backup of a volume. Returns the backup (usually `creating`); see
    /// [`Cinder::wait_backup`].
    ///
    /// A volume that does not exist gives [`CinderError::NotFound`]. If Cinder accepted the
    /// backup but reading it back fails, the backup is still returned (id, volume, name, status
    /// `creating`) so that the caller can record and track it.
    pub async fn create_backup(&self, req: &NewBackup) -> Result<Backup, CinderError> {
        let mut backup = serde_json::Map::new();
        backup.insert("volume_id".into(), json!(req.volume_id.as_str()));
        insert_opt(&mut backup, "name", req.name.as_deref());
        insert_opt(&mut backup, "description", req.description.as_deref());
        backup.insert("incremental".into(), json!(req.incremental));
        backup.insert("force".into(), json!(req.force));
        insert_opt(
            &mut backup,
            "snapshot_id",
            req.snapshot_id.as_ref().map(SnapshotId::as_str),
        );
        if !req.metadata.is_empty() {
            backup.insert("metadata".into(), json!(req.metadata));
        }
        let path = ["backups"];
        let reply = self
            .session
            .post(&path, json!({ "backup": backup }))
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(CinderError::NotFound {
                kind: ResourceKind::Volume,
                id: req.volume_id.to_string(),
            });
        }
        if !reply.status.is_success() {
            return Err(self.api_error("POST", &path, &reply));
        }
        let created: CreatedRoot = self.parse(&path, &reply)?;
        let id = BackupId::new(created.backup.id);
        match self.get_backup(&id).await {
            Ok(Some(backup)) => Ok(backup),
            other => {
                if let Err(e) = other {
                    tracing::warn!(backup = %id, error = %e, "backup created, but reading it back failed");
                }
                Ok(Backup {
                    id,
                    volume_id: req.volume_id.clone(),
                    name: req.name.clone().unwrap_or_default(),
                    status: BackupStatus::Creating,
                    fail_reason: None,
                    size_gib: 0,
                    is_incremental: req.incremental,
                    has_dependent_backups: false,
                    created_at: None,
                    metadata: req.metadata.clone(),
                    snapshot_id: req.snapshot_id.clone(),
                })
            }
        }
    }

    /// A backup, or `None` when it does not exist.
    pub async fn get_backup(&self, id: &BackupId) -> Result<Option<Backup>, CinderError> {
        let root: Option<BackupRoot> = self.get_one(&["backups", id.as_str()]).await?;
        Ok(root.map(|r| r.backup.into()))
    }

    /// Every backup of the project (with details, all pages), or those whose name starts with
    /// `name_prefix`.
    ///
    /// The prefix is also sent to Cinder as a `name~` (LIKE) filter to shorten the listing;
    /// a deployment that does not allow that filter is listed in full and filtered here.
    pub async fn list_backups(
        &self,
        name_prefix: Option<&str>,
    ) -> Result<Vec<Backup>, CinderError> {
        match self.list_backups_filtered(name_prefix, true).await {
            Err(CinderError::Api { status: 400, .. }) if name_prefix.is_some() => {
                self.list_backups_filtered(name_prefix, false).await
            }
            other => other,
        }
    }

    async fn list_backups_filtered(
        &self,
        name_prefix: Option<&str>,
        server_filter: bool,
    ) -> Result<Vec<Backup>, CinderError> {
        let path = ["backups", "detail"];
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut query = vec![("limit", self.page.to_string())];
            if let Some(m) = &marker {
                query.push(("marker", m.clone()));
            }
            if let (Some(prefix), true) = (name_prefix, server_filter) {
                query.push(("name~", prefix.to_string()));
            }
            let reply = self.session.get(&path, &query).await?;
            if !reply.status.is_success() {
                return Err(self.api_error("GET", &path, &reply));
            }
            let page: BackupsPage = self.parse(&path, &reply)?;
            let has_next = page.backups_links.iter().any(|l| l.rel == "next");
            let count = page.backups.len();
            let last = page.backups.last().map(|b| b.id.clone());
            out.extend(
                page.backups
                    .into_iter()
                    .map(Backup::from)
                    .filter(|b| name_prefix.is_none_or(|p| b.name.starts_with(p))),
            );
            match last {
                Some(last) if has_next || count >= self.page => {
                    if marker.as_deref() == Some(last.as_str()) {
                        break; // a server that repeats its last page: stop, do not loop
                    }
                    marker = Some(last);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Delete a backup. A backup that does not exist counts as deleted. A backup with
    /// dependent incremental backups gives [`CinderError::HasDependents`]. Returns when Cinder
    /// accepted the request; see [`Cinder::wait_backup_deleted`].
    pub async fn delete_backup(&self, id: &BackupId) -> Result<(), CinderError> {
        let path = ["backups", id.as_str()];
        let reply = self.session.delete(&path).await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(()),
            s if s.is_success() => Ok(()),
            StatusCode::BAD_REQUEST if reply.message().contains("Incremental backups exist") => {
                Err(CinderError::HasDependents {
                    id: id.clone(),
                    message: reply.message(),
                })
            }
            _ => Err(self.api_error("DELETE", &path, &reply)),
        }
    }

    /// Restore a backup (`POST /backups/{id}/restore`) into `volume` (overwritten), or into a
    /// new volume named `name`. Returns the target volume's id; see [`Cinder::wait_volume`].
    pub async fn restore_backup(
        &self,
        id: &BackupId,
        volume: Option<&VolumeId>,
        name: Option<&str>,
    ) -> Result<VolumeId, CinderError> {
        let mut restore = serde_json::Map::new();
        insert_opt(&mut restore, "volume_id", volume.map(VolumeId::as_str));
        insert_opt(&mut restore, "name", name);
        let path = ["backups", id.as_str(), "restore"];
        let reply = self
            .session
            .post(&path, json!({ "restore": restore }))
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            let message = reply.message();
            return Err(match volume {
                Some(v) if message.to_lowercase().starts_with("volume") => CinderError::NotFound {
                    kind: ResourceKind::Volume,
                    id: v.to_string(),
                },
                _ => CinderError::NotFound {
                    kind: ResourceKind::Backup,
                    id: id.to_string(),
                },
            });
        }
        if !reply.status.is_success() {
            return Err(self.api_error("POST", &path, &reply));
        }
        let root: RestoreRoot = self.parse(&path, &reply)?;
        Ok(VolumeId::new(root.restore.volume_id))
    }

    /// Poll a backup until it is `available` (returned) or `error`
    /// ([`CinderError::BackupFailed`] with Cinder's `fail_reason`). A backup that disappears
    /// gives [`CinderError::NotFound`]; the deadline gives [`CinderError::Timeout`].
    pub async fn wait_backup(
        &self,
        id: &BackupId,
        timeout: Duration,
    ) -> Result<Backup, CinderError> {
        let mut poll = Poller::new(timeout, self.poll_max);
        loop {
            let backup = self
                .get_backup(id)
                .await?
                .ok_or_else(|| CinderError::NotFound {
                    kind: ResourceKind::Backup,
                    id: id.to_string(),
                })?;
            match backup.status {
                BackupStatus::Available => return Ok(backup),
                BackupStatus::Error => {
                    return Err(CinderError::BackupFailed {
                        id: id.clone(),
                        fail_reason: backup
                            .fail_reason
                            .unwrap_or_else(|| "Cinder gave no fail_reason".to_string()),
                    })
                }
                ref status => {
                    if !poll.pause().await {
                        return Err(poll
                            .timeout(format!("backup {id} to become available"), status.as_str()));
                    }
                }
            }
        }
    }

    /// Poll a volume until it is `available` or `in-use` (returned). An `error*` status gives
    /// [`CinderError::VolumeFailed`]; a volume that disappears, [`CinderError::NotFound`]; the
    /// deadline, [`CinderError::Timeout`].
    pub async fn wait_volume(
        &self,
        id: &VolumeId,
        timeout: Duration,
    ) -> Result<Volume, CinderError> {
        let mut poll = Poller::new(timeout, self.poll_max);
        loop {
            let volume = self
                .get_volume(id)
                .await?
                .ok_or_else(|| CinderError::NotFound {
                    kind: ResourceKind::Volume,
                    id: id.to_string(),
                })?;
            match volume.status.as_str() {
                "available" | "in-use" => return Ok(volume),
                s if s.starts_with("error") => {
                    return Err(CinderError::VolumeFailed {
                        id: id.clone(),
                        status: volume.status,
                    })
                }
                s => {
                    if !poll.pause().await {
                        return Err(poll.timeout(format!("volume {id} to become available"), s));
                    }
                }
            }
        }
    }

    /// Poll until a backup no longer exists. A backup that ends in `error` instead gives
    /// [`CinderError::DeleteFailed`]; the deadline, [`CinderError::Timeout`].
    pub async fn wait_backup_deleted(
        &self,
        id: &BackupId,
        timeout: Duration,
    ) -> Result<(), CinderError> {
        let mut poll = Poller::new(timeout, self.poll_max);
        loop {
            let Some(backup) = self.get_backup(id).await? else {
                return Ok(());
            };
            match backup.status {
                BackupStatus::Deleted => return Ok(()),
                BackupStatus::Error => {
                    return Err(CinderError::DeleteFailed {
                        kind: ResourceKind::Backup,
                        id: id.to_string(),
                        status: backup.status.to_string(),
                        reason: backup.fail_reason,
                    })
                }
                ref status => {
                    if !poll.pause().await {
                        return Err(
                            poll.timeout(format!("backup {id} to be deleted"), status.as_str())
                        );
                    }
                }
            }
        }
    }

    /// Poll until a volume no longer exists. A volume that ends in `error_deleting` gives
    /// [`CinderError::DeleteFailed`]; the deadline, [`CinderError::Timeout`].
    pub async fn wait_volume_deleted(
        &self,
        id: &VolumeId,
        timeout: Duration,
    ) -> Result<(), CinderError> {
        let mut poll = Poller::new(timeout, self.poll_max);
        loop {
            let Some(volume) = self.get_volume(id).await? else {
                return Ok(());
            };
            match volume.status.as_str() {
                "deleted" => return Ok(()),
                "error_deleting" => {
                    return Err(CinderError::DeleteFailed {
                        kind: ResourceKind::Volume,
                        id: id.to_string(),
                        status: volume.status,
                        reason: None,
                    })
                }
                s => {
                    if !poll.pause().await {
                        return Err(poll.timeout(format!("volume {id} to be deleted"), s));
                    }
                }
            }
        }
    }

    /// Start a snapshot of a volume (`POST /snapshots`, `force` for an `in-use` volume).
    /// Returns the snapshot as Cinder answered (usually `creating`); see
    /// [`Cinder::wait_snapshot`].
    ///
    /// A volume that does not exist gives [`CinderError::NotFound`]; a refusal (a driver
    /// without snapshots, a volume in a state that cannot be snapshotted) gives
    /// [`CinderError::Api`] with Cinder's message. The POST is never retried once Cinder
    /// may have received it.
    pub async fn create_snapshot(&self, req: &NewSnapshot) -> Result<Snapshot, CinderError> {
        let mut snapshot = serde_json::Map::new();
        snapshot.insert("volume_id".into(), json!(req.volume_id.as_str()));
        insert_opt(&mut snapshot, "name", req.name.as_deref());
        insert_opt(&mut snapshot, "description", req.description.as_deref());
        snapshot.insert("force".into(), json!(req.force));
        if !req.metadata.is_empty() {
            snapshot.insert("metadata".into(), json!(req.metadata));
        }
        let path = ["snapshots"];
        let reply = self
            .session
            .post(&path, json!({ "snapshot": snapshot }))
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(CinderError::NotFound {
                kind: ResourceKind::Volume,
                id: req.volume_id.to_string(),
            });
        }
        if !reply.status.is_success() {
            return Err(self.api_error("POST", &path, &reply));
        }
        let root: SnapshotRoot = self.parse(&path, &reply)?;
        Ok(root.snapshot.into())
    }

    /// A snapshot, or `None` when it does not exist.
    pub async fn get_snapshot(&self, id: &SnapshotId) -> Result<Option<Snapshot>, CinderError> {
        let root: Option<SnapshotRoot> = self.get_one(&["snapshots", id.as_str()]).await?;
        Ok(root.map(|r| r.snapshot.into()))
    }

    /// Every snapshot of the project (with details, all pages) whose name starts with
    /// `name_prefix` (all of them without one); filtered here.
    pub async fn list_snapshots(
        &self,
        name_prefix: Option<&str>,
    ) -> Result<Vec<Snapshot>, CinderError> {
        let path = ["snapshots", "detail"];
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut query = vec![("limit", self.page.to_string())];
            if let Some(m) = &marker {
                query.push(("marker", m.clone()));
            }
            let reply = self.session.get(&path, &query).await?;
            if !reply.status.is_success() {
                return Err(self.api_error("GET", &path, &reply));
            }
            let page: SnapshotsPage = self.parse(&path, &reply)?;
            let has_next = page.snapshots_links.iter().any(|l| l.rel == "next");
            let count = page.snapshots.len();
            let last = page.snapshots.last().map(|s| s.id.clone());
            out.extend(
                page.snapshots
                    .into_iter()
                    .map(Snapshot::from)
                    .filter(|s| name_prefix.is_none_or(|p| s.name.starts_with(p))),
            );
            match last {
                Some(last) if has_next || count >= self.page => {
                    if marker.as_deref() == Some(last.as_str()) {
                        break;
                    }
                    marker = Some(last);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Delete a snapshot. A snapshot that does not exist counts as deleted. Returns when
    /// Cinder accepted the request; see [`Cinder::wait_snapshot_deleted`].
    pub async fn delete_snapshot(&self, id: &SnapshotId) -> Result<(), CinderError> {
        let path = ["snapshots", id.as_str()];
        let reply = self.session.delete(&path).await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(()),
            s if s.is_success() => Ok(()),
            _ => Err(self.api_error("DELETE", &path, &reply)),
        }
    }

    /// Poll a snapshot until it is `available` (returned). An `error*` status gives
    /// [`CinderError::SnapshotFailed`]; a snapshot that disappears, [`CinderError::NotFound`];
    /// the deadline, [`CinderError::Timeout`].
    pub async fn wait_snapshot(
        &self,
        id: &SnapshotId,
        timeout: Duration,
    ) -> Result<Snapshot, CinderError> {
        self.wait_available(
            ResourceKind::Snapshot,
            id.as_str(),
            timeout,
            || self.get_snapshot(id),
            |s: &Snapshot| &s.status,
            |status| CinderError::SnapshotFailed {
                id: id.clone(),
                status,
            },
        )
        .await
    }

    /// Poll until a snapshot no longer exists. `error_deleting` gives
    /// [`CinderError::DeleteFailed`]; the deadline, [`CinderError::Timeout`].
    pub async fn wait_snapshot_deleted(
        &self,
        id: &SnapshotId,
        timeout: Duration,
    ) -> Result<(), CinderError> {
        self.wait_gone(
            ResourceKind::Snapshot,
            id.as_str(),
            timeout,
            || self.get_snapshot(id),
            |s: &Snapshot| &s.status,
        )
        .await
    }

    /// A volume group, or `None` when it does not exist.
    pub async fn get_group(&self, id: &GroupId) -> Result<Option<Group>, CinderError> {
        let root: Option<GroupRoot> = self.get_one(&["groups", id.as_str()]).await?;
        Ok(root.map(|r| r.group.into()))
    }

    /// A group type with its group specs, or `None` when it does not exist.
    pub async fn get_group_type(&self, id: &str) -> Result<Option<GroupType>, CinderError> {
        let root: Option<GroupTypeRoot> = self.get_one(&["group_types", id]).await?;
        Ok(root.map(|r| r.group_type.into()))
    }

    /// Start a snapshot of every volume of a group at one moment (`POST /group_snapshots`).
    /// Returns the group snapshot as Cinder answered (usually `creating`); see
    /// [`Cinder::wait_group_snapshot`] and [`Cinder::group_snapshot_members`].
    ///
    /// A group that does not exist gives [`CinderError::NotFound`]; a refusal (a group not
    /// `available`, a member in a state that cannot be snapshotted) gives
    /// [`CinderError::Api`] with Cinder's message. The POST is never retried once Cinder
    /// may have received it.
    pub async fn create_group_snapshot(
        &self,
        group: &GroupId,
        name: &str,
        description: &str,
    ) -> Result<GroupSnapshot, CinderError> {
        let path = ["group_snapshots"];
        let body = json!({ "group_snapshot": {
            "group_id": group.as_str(),
            "name": name,
            "description": description,
        }});
        let reply = self.session.post(&path, body).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(CinderError::NotFound {
                kind: ResourceKind::Group,
                id: group.to_string(),
            });
        }
        if !reply.status.is_success() {
            return Err(self.api_error("POST", &path, &reply));
        }
        let root: GroupSnapshotRoot = self.parse(&path, &reply)?;
        let mut created: GroupSnapshot = root.group_snapshot.into();
        if created.group_id.is_empty() {
            created.group_id = group.clone();
        }
        Ok(created)
    }

    /// A group snapshot, or `None` when it does not exist.
    pub async fn get_group_snapshot(
        &self,
        id: &GroupSnapshotId,
    ) -> Result<Option<GroupSnapshot>, CinderError> {
        let root: Option<GroupSnapshotRoot> =
            self.get_one(&["group_snapshots", id.as_str()]).await?;
        Ok(root.map(|r| r.group_snapshot.into()))
    }

    /// Poll a group snapshot until it is `available` (returned). An `error*` status gives
    /// [`CinderError::GroupSnapshotFailed`]; one that disappears, [`CinderError::NotFound`];
    /// the deadline, [`CinderError::Timeout`].
    pub async fn wait_group_snapshot(
        &self,
        id: &GroupSnapshotId,
        timeout: Duration,
    ) -> Result<GroupSnapshot, CinderError> {
        self.wait_available(
            ResourceKind::GroupSnapshot,
            id.as_str(),
            timeout,
            || self.get_group_snapshot(id),
            |s: &GroupSnapshot| &s.status,
            |status| CinderError::GroupSnapshotFailed {
                id: id.clone(),
                status,
            },
        )
        .await
    }

    /// The member snapshots of a group snapshot (one per volume of the group), read from
    /// the project's snapshot listing (`group_snapshot_id`, microversion 3.14 and later).
    pub async fn group_snapshot_members(
        &self,
        id: &GroupSnapshotId,
    ) -> Result<Vec<Snapshot>, CinderError> {
        Ok(self
            .list_snapshots(None)
            .await?
            .into_iter()
            .filter(|s| s.group_snapshot_id.as_ref() == Some(id))
            .collect())
    }

    /// Delete a group snapshot and with it its member snapshots (Cinder deletes a member
    /// only so). One that does not exist counts as deleted. Returns when Cinder accepted
    /// the request; see [`Cinder::wait_group_snapshot_deleted`].
    pub async fn delete_group_snapshot(&self, id: &GroupSnapshotId) -> Result<(), CinderError> {
        let path = ["group_snapshots", id.as_str()];
        let reply = self.session.delete(&path).await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(()),
            s if s.is_success() => Ok(()),
            _ => Err(self.api_error("DELETE", &path, &reply)),
        }
    }

    /// Poll until a group snapshot no longer exists. `error_deleting` gives
    /// [`CinderError::DeleteFailed`]; the deadline, [`CinderError::Timeout`].
    pub async fn wait_group_snapshot_deleted(
        &self,
        id: &GroupSnapshotId,
        timeout: Duration,
    ) -> Result<(), CinderError> {
        self.wait_gone(
            ResourceKind::GroupSnapshot,
            id.as_str(),
            timeout,
            || self.get_group_snapshot(id),
            |s: &GroupSnapshot| &s.status,
        )
        .await
    }

    /// The status wait shared by snapshots and group snapshots: polls `get` until the
    /// resource is `available` (returned). An `error*` status gives `failed(status)`; a
    /// resource that disappears, [`CinderError::NotFound`]; the deadline,
    /// [`CinderError::Timeout`].
    async fn wait_available<T, F, Fut>(
        &self,
        kind: ResourceKind,
        id: &str,
        timeout: Duration,
        get: F,
        status: fn(&T) -> &str,
        failed: impl Fn(String) -> CinderError,
    ) -> Result<T, CinderError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, CinderError>>,
    {
        let mut poll = Poller::new(timeout, self.poll_max);
        loop {
            let found = get().await?.ok_or_else(|| CinderError::NotFound {
                kind,
                id: id.to_string(),
            })?;
            match status(&found) {
                "available" => return Ok(found),
                s if s.starts_with("error") => return Err(failed(s.to_string())),
                s => {
                    if !poll.pause().await {
                        return Err(poll.timeout(format!("{kind} {id} to become available"), s));
                    }
                }
            }
        }
    }

    /// Polls `get` until the resource no longer exists (or reads `deleted`).
    /// `error_deleting` gives [`CinderError::DeleteFailed`]; the deadline,
    /// [`CinderError::Timeout`].
    async fn wait_gone<T, F, Fut>(
        &self,
        kind: ResourceKind,
        id: &str,
        timeout: Duration,
        get: F,
        status: fn(&T) -> &str,
    ) -> Result<(), CinderError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, CinderError>>,
    {
        let mut poll = Poller::new(timeout, self.poll_max);
        loop {
            let Some(found) = get().await? else {
                return Ok(());
            };
            match status(&found) {
                "deleted" => return Ok(()),
                "error_deleting" => {
                    return Err(CinderError::DeleteFailed {
                        kind,
                        id: id.to_string(),
                        status: "error_deleting".to_string(),
                        reason: None,
                    })
                }
                s => {
                    if !poll.pause().await {
                        return Err(poll.timeout(format!("{kind} {id} to be deleted"), s));
                    }
                }
            }
        }
    }

    /// Cinder's user messages about one resource (`GET /messages?resource_uuid=`), oldest
    /// first: the reason Cinder gives for an asynchronous failure (a snapshot or backup in
    /// `error`) that the resource itself does not carry. Empty when there are none.
    pub async fn messages_about(&self, resource: &str) -> Result<Vec<UserMessage>, CinderError> {
        let path = ["messages"];
        let reply = self
            .session
            .get(&path, &[("resource_uuid", resource.to_string())])
            .await?;
        if !reply.status.is_success() {
            return Err(self.api_error("GET", &path, &reply));
        }
        let page: MessagesPage = self.parse(&path, &reply)?;
        let mut out: Vec<UserMessage> = page
            .messages
            .into_iter()
            .map(UserMessage::from)
            // A server that ignores the filter answers with every message.
            .filter(|m| m.resource_uuid == resource)
            .collect();
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(out)
    }

    /// Polls [`Cinder::messages_about`] until Cinder has written a message about `resource`
    /// or `timeout` has passed (then the answer is empty): Cinder sets a resource's `error`
    /// status a moment before it writes the message that says why.
    pub async fn wait_messages_about(
        &self,
        resource: &str,
        timeout: Duration,
    ) -> Result<Vec<UserMessage>, CinderError> {
        let mut poll = Poller::new(timeout, self.poll_max);
        loop {
            let found = self.messages_about(resource).await?;
            if !found.is_empty() || !poll.pause().await {
                return Ok(found);
            }
        }
    }

    /// `GET path`, parsed; `None` when Cinder answers 404 (it does not exist).
    async fn get_one<T: DeserializeOwned>(&self, path: &[&str]) -> Result<Option<T>, CinderError> {
        let reply = self.session.get(path, &[]).await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => self.parse(path, &reply).map(Some),
            _ => Err(self.api_error("GET", path, &reply)),
        }
    }

    fn parse<T: DeserializeOwned>(&self, path: &[&str], reply: &Reply) -> Result<T, CinderError> {
        serde_json::from_slice(&reply.body).map_err(|e| CinderError::InvalidResponse {
            what: path.join("/"),
            message: e.to_string(),
        })
    }

    fn api_error(&self, method: &'static str, path: &[&str], reply: &Reply) -> CinderError {
        api_error(method, &self.session.url(path, &[]), reply)
    }
}

fn api_error(method: &'static str, url: &reqwest::Url, reply: &Reply) -> CinderError {
    CinderError::Api {
        status: reply.status.as_u16(),
        method,
        path: url.path().to_string(),
        message: reply.message(),
    }
}

fn insert_opt(
    map: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
    value: Option<&str>,
) {
    if let Some(v) = value {
        map.insert(key.to_string(), json!(v));
    }
}

/// Paces a wait: 0.5 s between polls at first, growing by half up to `max`, never past the
/// deadline.
struct Poller {
    start: Instant,
    deadline: Instant,
    delay: Duration,
    max: Duration,
}

impl Poller {
    fn new(timeout: Duration, max: Duration) -> Poller {
        let start = Instant::now();
        Poller {
            start,
            deadline: start + timeout,
            delay: Duration::from_millis(500).min(max),
            max,
        }
    }

    /// Sleep before the next poll; `false` when the deadline has passed (poll no more).
    async fn pause(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.delay.min(self.deadline - now)).await;
        self.delay = self.delay.mul_f64(1.5).min(self.max);
        true
    }

    fn timeout(&self, what: String, last_status: &str) -> CinderError {
        CinderError::Timeout {
            what,
            waited: self.start.elapsed(),
            last_status: last_status.to_string(),
        }
    }
}
