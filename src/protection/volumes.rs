//! The Cinder side of protection: backing up a checkpoint's volumes and deleting its
//! backups in dependency order. (Restoring a backup to a new volume is done by
//! [`super::restore`], which records the new volume before it waits for it.)
//!
//! Rule kept throughout: a Cinder backup id is written into the bank (the writer's lock,
//! then the manifest) as soon as Cinder returns it, and stays listed until Cinder has
//! deleted it — so no backup is ever left that no checkpoint lists.

use super::progress::{Progress, Stage};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::hooks::{self, Bracket};
use super::protect::ProtectHooks;
use super::schema::ProtectParams;
use crate::bank::CheckpointWriter;
use crate::cinder::{
    BackupId, BackupStatus, Cinder, CinderError, GroupId, GroupSnapshotId, NewBackup, NewSnapshot,
    SnapshotId, VolumeId,
};
use crate::model::{Checkpoint, CheckpointId, CheckpointStatus, HookPhase, TakenBy, VolumeStatus};

/// How protection reaches Cinder.
#[derive(Debug, Clone)]
pub enum VolumeBackups<'a> {
    /// No Cinder (`--no-volume-backups`, or no credentials): volumes are recorded as not
    /// protected with this reason; deleting or restoring a checkpoint with backups fails
    /// with it.
    Skip(String),
    /// A connected Cinder client.
    Cinder(&'a Cinder),
}

/// Metadata key naming the checkpoint on every backup podbank makes.
pub const CHECKPOINT_METADATA: &str = "podbank-checkpoint";

/// The latest available backup of `volume_id` among `previous` checkpoints (newest last),
/// as (checkpoint id, backup id).
fn latest_backup(
    previous: &[Checkpoint],
    volume_id: &VolumeId,
) -> Option<(CheckpointId, BackupId)> {
    previous
        .iter()
        .rev()
        .filter(|c| {
            matches!(
                c.status,
                CheckpointStatus::Available | CheckpointStatus::Error
            )
        })
        .find_map(|c| {
            c.volume(volume_id)
                .filter(|v| v.is_backed_up())
                .and_then(|v| v.backup_id.clone())
                .map(|b| (c.id.clone(), b))
        })
}

/// Whether the next backup on a chain whose newest backup has depth `parent_depth` must be
/// full: `full_every` N bounds a chain to N backups (depths 0 to N - 1).
pub fn full_due(full_every: Option<u32>, parent_depth: u32) -> bool {
    full_every.is_some_and(|n| parent_depth.saturating_add(1) >= n)
}

/// The chain depth of `volume_id`'s backup in checkpoint `holder` (0: a full backup): the
/// recorded depth, or, for a record written before depths were recorded, counted by
/// following the parent links through `previous`. A link to a checkpoint the bank no
/// longer holds ends the count there.
pub fn chain_depth(previous: &[Checkpoint], holder: &CheckpointId, volume_id: &VolumeId) -> u32 {
    let mut steps: u32 = 0;
    let mut at = holder.clone();
    loop {
        let Some(v) = previous
            .iter()
            .find(|c| c.id == at)
            .and_then(|c| c.volume(volume_id))
        else {
            return steps;
        };
        if !v.incremental {
            return steps;
        }
        if v.chain_depth > 0 {
            return steps.saturating_add(v.chain_depth);
        }
        match &v.parent_checkpoint {
            // A cycle cannot be written; the bound only keeps a damaged bank from looping.
            Some(parent) if (steps as usize) < previous.len() => {
                steps += 1;
                at = parent.clone();
            }
            _ => return steps.saturating_add(1),
        }
    }
}

/// Backs up every `pending` volume of the writer's checkpoint; returns one reason per
/// volume that failed (empty when all went well). Volume records are updated in place.
///
/// # Arguments
/// * `writer` - the checkpoint being written (its volume records are the work list).
/// * `backups` - Cinder, or the reason there is none.
/// * `params` - `incremental`, `force`, per-volume timeout, concurrency.
/// * `previous` - the bank's checkpoints, to find each volume's parent backup.
/// * `progress` - told of each volume done.
/// * `hooks` - test seams ([`ProtectHooks::snapshots_ready`] is called between the snapshot
///   burst and the backups); `None` outside tests.
/// * `bracket` - the pods' exec hooks: the pre-hooks run before the snapshot burst, the
///   post-hooks right after it (before the backups, which read the snapshots and may take
///   hours), and always once the pre-hooks ran. Without Cinder they run all the same, where
///   the burst would be, so that a plan's hooks do the same with and without volumes. A
///   pre-hook failing with `on-error: Fail` leaves every volume untaken (a volume that was
///   not frozen is not what was asked for); the post-hooks still run.
/// * `revision_read` - when etcd revision R was read: each volume's skew is measured from it.
#[allow(clippy::too_many_arguments)] // the protect's state, passed down once, read-only
pub async fn back_up_all(
    writer: &mut CheckpointWriter,
    backups: &VolumeBackups<'_>,
    params: &ProtectParams,
    previous: &[Checkpoint],
    progress: &dyn Progress,
    hooks: Option<&dyn ProtectHooks>,
    bracket: Option<Bracket<'_>>,
    revision_read: Instant,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(b) = bracket {
        let pre = hooks::run_phase(b.api, b.pods, HookPhase::Pre).await;
        let failed = hooks::problems(&pre);
        writer.checkpoint_mut().hooks.extend(pre);
        if !failed.is_empty() {
            not_taken(
                writer,
                "not taken: a pre-hook with on-error Fail failed (see the checkpoint's hooks)",
            );
            reasons.extend(failed);
            reasons.extend(post_hooks(writer, bracket).await);
            return reasons;
        }
    }
    let cinder = match backups {
        VolumeBackups::Skip(reason) => {
            not_taken(writer, reason);
            reasons.extend(post_hooks(writer, bracket).await);
            return reasons;
        }
        VolumeBackups::Cinder(c) => *c,
    };
    let checkpoint_id = writer.id().clone();
    let pending: Vec<usize> = writer
        .checkpoint()
        .volumes
        .iter()
        .enumerate()
        .filter(|(_, v)| v.status == VolumeStatus::Pending)
        .map(|(i, _)| i)
        .collect();
    progress.start(Stage::Volumes, Some(pending.len() as u64));
    // 1. The snapshot burst: every volume's snapshot requested at once, as close to the
    //    revision as Cinder allows, then waited for; a volume Cinder will not snapshot is
    //    backed up directly, with Cinder's reason recorded.
    snapshot_burst(writer, cinder, params, &pending, revision_read).await;
    // The snapshots are taken (or Cinder would not take them): what was frozen is thawed
    // now, not after the backups.
    reasons.extend(post_hooks(writer, bracket).await);
    if let Some(hooks) = hooks {
        let records: Vec<_> = pending
            .iter()
            .map(|&i| writer.checkpoint().volumes[i].clone())
            .collect();
        hooks.snapshots_ready(&records).await;
    }
    // 2. Create the backups one by one (from the snapshot where there is one), recording
    //    each id at once.
    for i in pending {
        let volume_id = writer.checkpoint().volumes[i].volume_id.clone();
        let snapshot_id = match &writer.checkpoint().volumes[i] {
            v if v.taken_by == TakenBy::Snapshot => v.snapshot_id.clone(),
            _ => None,
        };
        let parent = latest_backup(previous, &volume_id);
        let parent_depth = parent
            .as_ref()
            .map(|(cp, _)| chain_depth(previous, cp, &volume_id));
        let incremental = match params.incremental {
            Some(false) => false,
            // Cinder makes the first backup of a volume full whatever is asked; asking for
            // incremental without a parent would fail, so ask only when one exists.
            Some(true) | None => parent_depth.is_some_and(|d| !full_due(params.full_every, d)),
        };
        if let (Some(d), false, Some(n)) = (parent_depth, incremental, params.full_every) {
            tracing::info!(volume = %volume_id, "full backup: the chain has depth {d}, full_every is {n}");
        }
        let request = NewBackup {
            volume_id: volume_id.clone(),
            name: Some(format!("podbank-{checkpoint_id}-{}", volume_id.short())),
            description: Some(format!(
                "podbank checkpoint {checkpoint_id} ({})",
                writer.checkpoint().backup_name
            )),
            incremental,
            force: params.force,
            snapshot_id: snapshot_id.clone(),
            metadata: BTreeMap::from([(
                CHECKPOINT_METADATA.to_string(),
                checkpoint_id.to_string(),
            )]),
        };
        let sent = Instant::now();
        let result = cinder.create_backup(&request).await;
        let v = &mut writer.checkpoint_mut().volumes[i];
        if v.taken_by == TakenBy::Direct {
            v.skew_ms = millis(sent.saturating_duration_since(revision_read));
        }
        match result {
            Ok(backup) => {
                v.backup_id = Some(backup.id.clone());
                v.status = VolumeStatus::BackingUp;
                v.incremental = incremental;
                v.chain_depth = 0;
                if let (true, Some((cp, b)), Some(d)) = (incremental, parent, parent_depth) {
                    v.parent_checkpoint = Some(cp);
                    v.parent_backup_id = Some(b);
                    v.chain_depth = d.saturating_add(1);
                }
            }
            Err(e) => {
                v.status = VolumeStatus::Error;
                v.reason = format!("backup not created: {e}");
                reasons.push(format!("volume {volume_id}: {}", v.reason));
                progress.advance(Stage::Volumes, 1);
                // A group snapshot's member goes with its group snapshot, after the backups.
                if let (Some(snapshot), None) = (snapshot_id, &v.group_snapshot_id) {
                    remove_snapshot(cinder, &snapshot, params.volume_timeout()).await;
                }
            }
        }
        if let Err(e) = writer.save_progress().await {
            tracing::warn!("cannot record progress in the bank lock: {e}");
        }
    }
    // 2. Wait for all of them, a few at a time.
    let timeout = params.volume_timeout();
    // A group snapshot's member cannot be deleted alone: it goes with its group snapshot
    // once every member's backup is done or failed (below).
    let waiting: Vec<(usize, BackupId, Option<SnapshotId>)> = writer
        .checkpoint()
        .volumes
        .iter()
        .enumerate()
        .filter(|(_, v)| v.status == VolumeStatus::BackingUp)
        .filter_map(|(i, v)| {
            let own_snapshot = v
                .snapshot_id
                .clone()
                .filter(|_| v.group_snapshot_id.is_none());
            v.backup_id.clone().map(|b| (i, b, own_snapshot))
        })
        .collect();
    let results: Vec<(usize, Result<crate::cinder::Backup, CinderError>, f64)> =
        futures::stream::iter(waiting)
            .map(|(i, id, snapshot)| async move {
                let started = Instant::now();
                let r = cinder.wait_backup(&id, timeout).await;
                // The snapshot has served once its backup is done or failed; one whose
                // backup is still being written (timeout) is left to `delete` and `bank gc`.
                if let (Some(snapshot), false) =
                    (snapshot, matches!(r, Err(CinderError::Timeout { .. })))
                {
                    remove_snapshot(cinder, &snapshot, timeout).await;
                }
                progress.advance(Stage::Volumes, 1);
                (i, r, started.elapsed().as_secs_f64())
            })
            .buffer_unordered(params.concurrency.max(1))
            .collect()
            .await;
    progress.finish(Stage::Volumes);
    // The group snapshots have served once none of their members' backups is still being
    // written; one that is (timeout) is left to `delete` and `bank gc`.
    let mut group_snapshots: BTreeMap<GroupSnapshotId, bool> = BTreeMap::new();
    for v in &writer.checkpoint().volumes {
        if let Some(g) = &v.group_snapshot_id {
            group_snapshots.insert(g.clone(), true);
        }
    }
    for (i, result, _) in &results {
        if let (Some(g), Err(CinderError::Timeout { .. })) =
            (&writer.checkpoint().volumes[*i].group_snapshot_id, result)
        {
            group_snapshots.insert(g.clone(), false);
        }
    }
    for (g, done) in group_snapshots {
        if done {
            remove_group_snapshot(cinder, &g, timeout).await;
        }
    }
    for (i, result, seconds) in results {
        let v = &mut writer.checkpoint_mut().volumes[i];
        v.backup_seconds = seconds as u64;
        match result {
            Ok(backup) if backup.status == BackupStatus::Available => {
                v.status = VolumeStatus::Available;
                v.size_gib = backup.size_gib;
                v.incremental = backup.is_incremental;
                if !backup.is_incremental {
                    // Cinder made it full whatever was asked: a chain starts here.
                    v.chain_depth = 0;
                    v.parent_backup_id = None;
                    v.parent_checkpoint = None;
                }
            }
            Ok(backup) => {
                v.status = VolumeStatus::Error;
                v.reason = format!(
                    "backup {} is {}: {}",
                    backup.id,
                    backup.status.as_str(),
                    backup.fail_reason.unwrap_or_default()
                );
            }
            Err(e) => {
                v.status = VolumeStatus::Error;
                let backup = v.backup_id.clone().unwrap_or_default();
                v.reason = match e {
                    CinderError::Timeout { .. } => format!(
                        "backup {backup} did not become available within {}s; it stays listed \
                         here so that delete removes it",
                        timeout.as_secs()
                    ),
                    other => format!("backup {backup}: {other}"),
                };
            }
        }
        if v.status == VolumeStatus::Error {
            reasons.push(format!("volume {}: {}", v.volume_id, v.reason));
        }
    }
    reasons
}

/// Marks every `pending` volume of the checkpoint as not protected, for `reason`.
fn not_taken(writer: &mut CheckpointWriter, reason: &str) {
    for v in &mut writer.checkpoint_mut().volumes {
        if v.status == VolumeStatus::Pending {
            v.status = VolumeStatus::NotProtected;
            v.reason = reason.to_string();
        }
    }
}

/// Runs the post-hooks of `bracket` (if any) and records them; returns the checkpoint's
/// problems among them.
async fn post_hooks(writer: &mut CheckpointWriter, bracket: Option<Bracket<'_>>) -> Vec<String> {
    let Some(b) = bracket else {
        return Vec::new();
    };
    let post = hooks::run_phase(b.api, b.pods, HookPhase::Post).await;
    let failed = hooks::problems(&post);
    writer.checkpoint_mut().hooks.extend(post);
    failed
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn unix_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// Takes a snapshot of each volume `pending` names, all requests in flight at once, and
/// waits for them to be `available`. Each volume's record gets its snapshot (id, when
/// requested, when available, skew from `revision_read`) and `taken_by: snapshot`; a volume
/// Cinder would not snapshot (refused, or the snapshot failed) gets `taken_by: direct` with
/// Cinder's message, and is backed up from the live volume. The snapshot ids are saved into
/// the writer's lock as soon as Cinder has answered the burst, before any is waited for.
async fn snapshot_burst(
    writer: &mut CheckpointWriter,
    cinder: &Cinder,
    params: &ProtectParams,
    pending: &[usize],
    revision_read: Instant,
) {
    if pending.is_empty() {
        return;
    }
    let (singles, groups) = group_plan(writer, cinder, pending).await;
    let fallback = burst(writer, cinder, params, &singles, &groups, revision_read).await;
    if !fallback.is_empty() {
        // A group snapshot Cinder refused or failed: its members get snapshots of their own.
        let again: Vec<usize> = fallback.iter().map(|(i, _)| *i).collect();
        for (i, note) in fallback {
            writer.checkpoint_mut().volumes[i].taken_reason = note;
        }
        burst(writer, cinder, params, &again, &[], revision_read).await;
    }
}

/// The volumes of a checkpoint that share one Cinder group.
struct GroupUnit {
    group: GroupId,
    /// Indexes of the group's volumes in the checkpoint (two or more).
    members: Vec<usize>,
}

/// Splits `pending` into volumes snapshotted one by one and groups snapshotted as one: two
/// or more volumes in one Cinder group whose group type has
/// `consistent_group_snapshot_enabled`. A volume in a group whose type lacks it gets a
/// snapshot of its own, and its record says why (`taken_reason`). Groups that cannot be
/// read are logged and their volumes snapshotted one by one.
async fn group_plan(
    writer: &mut CheckpointWriter,
    cinder: &Cinder,
    pending: &[usize],
) -> (Vec<usize>, Vec<GroupUnit>) {
    let volumes = futures::future::join_all(pending.iter().map(|&i| {
        let id = writer.checkpoint().volumes[i].volume_id.clone();
        async move { (i, cinder.get_volume(&id).await) }
    }))
    .await;
    let mut singles = Vec::new();
    let mut by_group: BTreeMap<GroupId, Vec<usize>> = BTreeMap::new();
    for (i, volume) in volumes {
        match volume {
            Ok(Some(v)) => match v.group_id {
                Some(g) => by_group.entry(g).or_default().push(i),
                None => singles.push(i),
            },
            Ok(None) => singles.push(i),
            Err(e) => {
                tracing::warn!(volume = %writer.checkpoint().volumes[i].volume_id, "cannot read the volume's group: {e}");
                singles.push(i);
            }
        }
    }
    let mut groups = Vec::new();
    for (group, members) in by_group {
        let consistent = match cinder.get_group(&group).await {
            Ok(Some(g)) => match cinder.get_group_type(&g.group_type).await {
                Ok(Some(t)) if t.consistent_snapshots() => Ok(()),
                Ok(Some(t)) => Err(format!(
                    "group {group}'s type {} has no consistent group snapshots",
                    t.name
                )),
                Ok(None) => Err(format!(
                    "group {group}'s type {} is not found",
                    g.group_type
                )),
                Err(e) => Err(format!("group {group}'s type cannot be read: {e}")),
            },
            Ok(None) => Err(format!("group {group} is not found")),
            Err(e) => Err(format!("group {group} cannot be read: {e}")),
        };
        match consistent {
            Ok(()) if members.len() >= 2 => groups.push(GroupUnit { group, members }),
            Ok(()) => singles.extend(members),
            Err(note) => {
                tracing::info!("per-volume snapshots: {note}");
                for &i in &members {
                    writer.checkpoint_mut().volumes[i].taken_reason = note.clone();
                }
                singles.extend(members);
            }
        }
    }
    (singles, groups)
}

/// One burst: a snapshot of each volume `singles` names and a group snapshot of each of
/// `groups`, all requests in flight at once, then waited for. Returns the group members
/// whose group snapshot Cinder refused or failed, each with a note saying so (their group
/// snapshot is deleted), for a burst of their own.
async fn burst(
    writer: &mut CheckpointWriter,
    cinder: &Cinder,
    params: &ProtectParams,
    pending: &[usize],
    groups: &[GroupUnit],
    revision_read: Instant,
) -> Vec<(usize, String)> {
    let checkpoint_id = writer.id().clone();
    let requests: Vec<(usize, NewSnapshot)> = pending
        .iter()
        .map(|&i| {
            let volume_id = writer.checkpoint().volumes[i].volume_id.clone();
            let request = NewSnapshot {
                name: Some(format!("podbank-{checkpoint_id}-{}", volume_id.short())),
                description: Some(format!(
                    "podbank checkpoint {checkpoint_id}: the backup is made from it, then it is deleted"
                )),
                volume_id,
                force: params.force,
                metadata: BTreeMap::from([(
                    CHECKPOINT_METADATA.to_string(),
                    checkpoint_id.to_string(),
                )]),
            };
            (i, request)
        })
        .collect();
    let group_name = format!("podbank-{checkpoint_id}");
    let group_description = format!(
        "podbank checkpoint {checkpoint_id}: the backups are made from it, then it is deleted"
    );
    let (created, groups_created) = futures::join!(
        futures::future::join_all(requests.iter().map(|(i, request)| async move {
            let sent = unix_ms();
            (*i, sent, cinder.create_snapshot(request).await)
        })),
        futures::future::join_all(groups.iter().map(|unit| {
            let (name, description) = (&group_name, &group_description);
            async move {
                let sent = unix_ms();
                let r = cinder
                    .create_group_snapshot(&unit.group, name, description)
                    .await;
                (unit, sent, r)
            }
        }))
    );
    let mut fallback = Vec::new();
    let mut group_waiting = Vec::new();
    for (unit, sent, result) in groups_created {
        match result {
            Ok(gs) => {
                for &i in &unit.members {
                    let v = &mut writer.checkpoint_mut().volumes[i];
                    v.snapshot_sent_unix_ms = sent;
                    v.group_snapshot_id = Some(gs.id.clone());
                    v.taken_by = TakenBy::Snapshot;
                    v.taken_reason = format!(
                        "member of group snapshot {} of Cinder group {}",
                        gs.id, unit.group
                    );
                }
                group_waiting.push((unit, gs.id));
            }
            Err(e) => {
                tracing::warn!(group = %unit.group, "no group snapshot, per-volume snapshots: {e}");
                let note = format!(
                    "Cinder refused the group snapshot of group {}: {e}; per-volume snapshot",
                    unit.group
                );
                fallback.extend(unit.members.iter().map(|&i| (i, note.clone())));
            }
        }
    }
    let mut waiting = Vec::new();
    for (i, sent, result) in created {
        let v = &mut writer.checkpoint_mut().volumes[i];
        v.snapshot_sent_unix_ms = sent;
        match result {
            Ok(snapshot) => {
                v.snapshot_id = Some(snapshot.id.clone());
                v.taken_by = TakenBy::Snapshot;
                waiting.push((i, snapshot.id));
            }
            Err(e) => {
                tracing::warn!(volume = %v.volume_id, "no snapshot, backing up directly: {e}");
                v.taken_by = TakenBy::Direct;
                v.taken_reason = format!("Cinder refused the snapshot: {e}");
            }
        }
    }
    if let Err(e) = writer.save_progress().await {
        tracing::warn!("cannot record the snapshots in the bank lock: {e}");
    }
    let timeout = params.volume_timeout();
    let (ready, groups_ready) = futures::join!(
        futures::future::join_all(waiting.into_iter().map(|(i, id)| async move {
            let r = cinder.wait_snapshot(&id, timeout).await;
            (i, id, r, Instant::now(), unix_ms())
        })),
        futures::future::join_all(group_waiting.into_iter().map(|(unit, id)| async move {
            let r = match cinder.wait_group_snapshot(&id, timeout).await {
                Ok(_) => cinder.group_snapshot_members(&id).await,
                Err(e) => Err(e),
            };
            (unit, id, r, Instant::now(), unix_ms())
        }))
    );
    for (unit, id, result, at, at_ms) in groups_ready {
        match result {
            Ok(members) => {
                for &i in &unit.members {
                    let v = &mut writer.checkpoint_mut().volumes[i];
                    match members.iter().find(|s| s.volume_id == v.volume_id) {
                        Some(member) => {
                            v.snapshot_id = Some(member.id.clone());
                            v.snapshot_available_unix_ms = at_ms;
                            v.skew_ms = millis(at.saturating_duration_since(revision_read));
                        }
                        None => {
                            v.taken_by = TakenBy::Direct;
                            v.taken_reason =
                                format!("group snapshot {id} has no member snapshot of the volume");
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(group_snapshot = %id, "group snapshot not available, per-volume snapshots: {e}");
                let removed = remove_group_snapshot(cinder, &id, timeout).await;
                let note = format!(
                    "group snapshot {id} of group {} did not become available: {e}; per-volume snapshot",
                    unit.group
                );
                for &i in &unit.members {
                    let v = &mut writer.checkpoint_mut().volumes[i];
                    if removed {
                        v.group_snapshot_id = None;
                    }
                    fallback.push((i, note.clone()));
                }
            }
        }
    }
    for (i, id, result, at, at_ms) in ready {
        match result {
            Ok(_) => {
                let v = &mut writer.checkpoint_mut().volumes[i];
                v.snapshot_available_unix_ms = at_ms;
                v.skew_ms = millis(at.saturating_duration_since(revision_read));
            }
            Err(e) => {
                tracing::warn!(snapshot = %id, "snapshot not available, backing up directly: {e}");
                // A snapshot the driver refused goes to `error`; why is in Cinder's user
                // messages, not on the snapshot.
                let said = match &e {
                    CinderError::SnapshotFailed { .. } => cinder_says(cinder, &id).await,
                    _ => None,
                };
                let removed = remove_snapshot(cinder, &id, timeout).await;
                let v = &mut writer.checkpoint_mut().volumes[i];
                v.taken_by = TakenBy::Direct;
                v.taken_reason = match said {
                    Some(message) => format!("{e}; Cinder says: {message}"),
                    None => format!("snapshot {id} did not become available: {e}"),
                };
                if removed {
                    v.snapshot_id = None;
                }
            }
        }
    }
    if !fallback.is_empty() {
        if let Err(e) = writer.save_progress().await {
            tracing::warn!("cannot record the group snapshots in the bank lock: {e}");
        }
    }
    fallback
}

/// How long to wait for Cinder to write the user message about a failed snapshot (it
/// does so a moment after it sets the snapshot's `error` status).
const MESSAGE_WAIT: Duration = Duration::from_secs(10);

/// Cinder's user messages about snapshot `id` (`; `-joined), or `None` when it gave none
/// (or they cannot be read: logged).
async fn cinder_says(cinder: &Cinder, id: &SnapshotId) -> Option<String> {
    match cinder.wait_messages_about(id.as_str(), MESSAGE_WAIT).await {
        Ok(messages) if !messages.is_empty() => Some(
            messages
                .into_iter()
                .map(|m| m.user_message)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(snapshot = %id, "cannot read Cinder's messages about the snapshot: {e}");
            None
        }
    }
}

/// Deletes a snapshot and waits until it is gone; a failure is logged (the snapshot stays
/// listed in the checkpoint, so that `delete` and `bank gc` try again).
async fn remove_snapshot(cinder: &Cinder, id: &SnapshotId, timeout: Duration) -> bool {
    let r = match cinder.delete_snapshot(id).await {
        Ok(()) => cinder.wait_snapshot_deleted(id, timeout).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(snapshot = %id, "cannot delete the snapshot: {e}");
            false
        }
    }
}

/// Deletes a group snapshot (its member snapshots with it) and waits until it is gone; a
/// failure is logged (it stays listed in the checkpoint, so that `delete` and `bank gc` try
/// again).
async fn remove_group_snapshot(cinder: &Cinder, id: &GroupSnapshotId, timeout: Duration) -> bool {
    match delete_group_snapshot(cinder, id, timeout).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(group_snapshot = %id, "cannot delete the group snapshot: {e}");
            false
        }
    }
}

/// Deletes a group snapshot that may be left over (a missing one counts as deleted), and
/// with it its member snapshots, and waits until it is gone.
pub async fn delete_group_snapshot(
    cinder: &Cinder,
    id: &GroupSnapshotId,
    timeout: Duration,
) -> Result<(), CinderError> {
    if cinder.get_group_snapshot(id).await?.is_none() {
        return Ok(());
    }
    cinder.delete_group_snapshot(id).await?;
    cinder.wait_group_snapshot_deleted(id, timeout).await
}

/// Why some of a checkpoint's backups could not be deleted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupDeleteError {
    /// There is no Cinder to delete them with.
    #[error("its Cinder backups {} cannot be deleted: {reason}", list(backups))]
    NoCinder {
        /// The backups.
        backups: Vec<BackupId>,
        /// Why there is no Cinder.
        reason: String,
    },
    /// Cinder failed to delete some of the checkpoint's leftover snapshots.
    #[error("{}", failures.iter().map(|(s, e)| format!("snapshot {s}: {e}")).collect::<Vec<_>>().join("; "))]
    SnapshotsFailed {
        /// Each snapshot that could not be deleted, and Cinder's error.
        failures: Vec<(SnapshotId, CinderError)>,
    },
    /// Cinder failed to delete some of the checkpoint's leftover group snapshots.
    #[error("{}", failures.iter().map(|(s, e)| format!("group snapshot {s}: {e}")).collect::<Vec<_>>().join("; "))]
    GroupSnapshotsFailed {
        /// Each group snapshot that could not be deleted, and Cinder's error.
        failures: Vec<(GroupSnapshotId, CinderError)>,
    },
    /// Cinder failed on some of them (the others were deleted).
    #[error("{}", failures.iter().map(|(b, e)| format!("backup {b}: {e}")).collect::<Vec<_>>().join("; "))]
    Failed {
        /// Each backup that could not be deleted, and Cinder's error.
        failures: Vec<(BackupId, CinderError)>,
    },
}

fn list(ids: &[BackupId]) -> String {
    ids.iter()
        .map(BackupId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deletes the Cinder backups of `checkpoint` except those another backup depends on
/// (Cinder's `has_dependent_backups`). Returns (deleted, kept) backup ids. Volume records
/// are updated in place (`deleted`).
pub async fn delete_backups(
    checkpoint: &mut Checkpoint,
    backups: &VolumeBackups<'_>,
    timeout: Duration,
) -> Result<(Vec<BackupId>, Vec<BackupId>), BackupDeleteError> {
    let pending: Vec<usize> = checkpoint
        .volumes
        .iter()
        .enumerate()
        .filter(|(_, v)| v.backup_id.is_some() && v.status != VolumeStatus::Deleted)
        .map(|(i, _)| i)
        .collect();
    let snapshots: Vec<SnapshotId> = checkpoint
        .volumes
        .iter()
        .filter_map(|v| v.snapshot_id.clone())
        .collect();
    let mut group_snapshots: Vec<GroupSnapshotId> = checkpoint
        .volumes
        .iter()
        .filter_map(|v| v.group_snapshot_id.clone())
        .collect();
    group_snapshots.sort();
    group_snapshots.dedup();
    if pending.is_empty()
        && ((snapshots.is_empty() && group_snapshots.is_empty())
            || matches!(backups, VolumeBackups::Skip(_)))
    {
        // Snapshots of a checkpoint without Cinder: the protect that made them had Cinder,
        // and deleted them (or `bank gc` will, given Cinder).
        return Ok((Vec::new(), Vec::new()));
    }
    let cinder = match backups {
        VolumeBackups::Skip(reason) => {
            return Err(BackupDeleteError::NoCinder {
                backups: pending
                    .iter()
                    .filter_map(|i| checkpoint.volumes[*i].backup_id.clone())
                    .collect(),
                reason: reason.clone(),
            });
        }
        VolumeBackups::Cinder(c) => *c,
    };
    let (mut deleted, mut kept, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for i in pending {
        let Some(id) = checkpoint.volumes[i].backup_id.clone() else {
            continue;
        };
        let outcome = match settled(cinder, &id, timeout).await {
            Ok(None) => Ok(true),
            Ok(Some(b)) if b.status == BackupStatus::Deleting => cinder
                .wait_backup_deleted(&id, timeout)
                .await
                .map(|()| true),
            Ok(Some(b)) if b.has_dependent_backups => Ok(false),
            Ok(Some(_)) => match cinder.delete_backup(&id).await {
                Ok(()) => cinder
                    .wait_backup_deleted(&id, timeout)
                    .await
                    .map(|()| true),
                Err(CinderError::HasDependents { .. }) => Ok(false),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok(true) => {
                checkpoint.volumes[i].status = VolumeStatus::Deleted;
                deleted.push(id);
            }
            Ok(false) => kept.push(id),
            Err(e) => errors.push((id, e)),
        }
    }
    // The burst's snapshots are deleted by protect once their backups are done; one that
    // is left (a protect killed or timed out) goes now, after the backup made from it.
    // A group snapshot first: Cinder deletes its members only with it.
    let mut group_errors = Vec::new();
    for id in group_snapshots {
        if let Err(e) = delete_group_snapshot(cinder, &id, timeout).await {
            group_errors.push((id, e));
        }
    }
    let mut snapshot_errors = Vec::new();
    for id in snapshots {
        if let Err(e) = delete_snapshot(cinder, &id, timeout).await {
            snapshot_errors.push((id, e));
        }
    }
    if !errors.is_empty() {
        Err(BackupDeleteError::Failed { failures: errors })
    } else if !group_errors.is_empty() {
        Err(BackupDeleteError::GroupSnapshotsFailed {
            failures: group_errors,
        })
    } else if !snapshot_errors.is_empty() {
        Err(BackupDeleteError::SnapshotsFailed {
            failures: snapshot_errors,
        })
    } else {
        Ok((deleted, kept))
    }
}

/// Deletes a snapshot that may be left over (a missing one counts as deleted) and waits
/// until it is gone.
pub async fn delete_snapshot(
    cinder: &Cinder,
    id: &SnapshotId,
    timeout: Duration,
) -> Result<(), CinderError> {
    if cinder.get_snapshot(id).await?.is_none() {
        return Ok(());
    }
    cinder.delete_snapshot(id).await?;
    cinder.wait_snapshot_deleted(id, timeout).await
}

/// The backup once it has left `creating` / `restoring` (Cinder refuses to delete a backup
/// in those states with 400 "Backup status must be available or error"), or `None` when it
/// does not exist. A backup that was still being written when its protect gave up on it
/// (per-volume timeout) is waited for here, up to `timeout`.
async fn settled(
    cinder: &Cinder,
    id: &BackupId,
    timeout: Duration,
) -> Result<Option<crate::cinder::Backup>, CinderError> {
    let Some(backup) = cinder.get_backup(id).await? else {
        return Ok(None);
    };
    if !matches!(
        backup.status,
        BackupStatus::Creating | BackupStatus::Restoring
    ) {
        return Ok(Some(backup));
    }
    match cinder.wait_backup(id, timeout).await {
        Ok(_) | Err(CinderError::BackupFailed { .. }) => cinder.get_backup(id).await,
        Err(CinderError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VolumeRecord;

    /// A checkpoint holding one backup of `vol`: `parent` = the checkpoint it builds on,
    /// `depth` = the recorded chain depth (0 for a record written before depths were).
    fn cp(id: &str, parent: Option<&str>, depth: u32) -> Checkpoint {
        let id: CheckpointId = id.parse().expect("a checkpoint id");
        let mut c = Checkpoint::new(id.clone(), chrono::Utc::now());
        c.status = CheckpointStatus::Available;
        c.volumes.push(VolumeRecord {
            volume_id: VolumeId::new("vol"),
            backup_id: Some(BackupId::new(format!("b-{id}"))),
            status: VolumeStatus::Available,
            incremental: parent.is_some(),
            parent_checkpoint: parent.map(|p| p.parse().expect("a checkpoint id")),
            chain_depth: depth,
            ..Default::default()
        });
        c
    }

    const A: &str = "20260101T000000Z-0000000a";
    const B: &str = "20260101T000001Z-0000000b";
    const C: &str = "20260101T000002Z-0000000c";

    #[test]
    fn full_every_n_makes_every_nth_backup_full() {
        // full_every 3 over five backups: depths 0 1 2 0 1.
        let mut depth = None;
        let mut kinds = Vec::new();
        for _ in 0..5 {
            let next = match depth {
                Some(d) if !full_due(Some(3), d) => d + 1,
                _ => 0,
            };
            kinds.push(next);
            depth = Some(next);
        }
        assert_eq!(kinds, [0, 1, 2, 0, 1]);
        assert!(full_due(Some(1), 0), "1: always full");
        assert!(!full_due(None, 1000), "no bound");
    }

    #[test]
    fn chain_depth_is_recorded_or_counted_along_the_parent_links() {
        let vol = VolumeId::new("vol");
        let id = |s: &str| s.parse::<CheckpointId>().expect("id");
        // Recorded depths.
        let bank = [cp(A, None, 0), cp(B, Some(A), 1), cp(C, Some(B), 2)];
        assert_eq!(chain_depth(&bank, &id(A), &vol), 0);
        assert_eq!(chain_depth(&bank, &id(C), &vol), 2);
        // Records from before depths were recorded: counted.
        let old = [cp(A, None, 0), cp(B, Some(A), 0), cp(C, Some(B), 0)];
        assert_eq!(chain_depth(&old, &id(C), &vol), 2);
        // A parent the bank no longer holds ends the count there.
        let gone = [cp(B, Some(A), 0), cp(C, Some(B), 0)];
        assert_eq!(chain_depth(&gone, &id(C), &vol), 2);
        // A damaged bank with a cycle does not loop.
        let cycle = [cp(A, Some(B), 0), cp(B, Some(A), 0)];
        assert!(chain_depth(&cycle, &id(A), &vol) <= 3);
    }
}
