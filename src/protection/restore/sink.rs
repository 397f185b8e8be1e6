//! Where a restore goes: the [`RestoreSink`] trait and its two implementations, the
//! cluster ([`ClusterSink`]: Cinder for volumes, the API server for objects, the bank for
//! the restore record) and an export folder ([`ExportSink`]: a dry run that writes every
//! object it would create, and the plan, into a folder). A dry run is a sink, not a branch:
//! the executor does the same steps whatever sink it holds.
//!
//! Contract, relied upon by the executor:
//! * `existing` answers for a name what the target holds; a sink that does not know the
//!   target (an export) answers [`Existing::Absent`].
//! * `start_volume` returns a new volume's id as soon as it exists (before it is ready);
//!   `wait_volume` returns once it can be used. The executor records the id in between, so
//!   that a run killed while the volume is being made leaves no volume the record does not
//!   name.
//! * `create` makes the object from its edited bytes, or records what it would make; it
//!   returns the uid (empty when there is none) and the outcome (`restored`, `planned`).
//! * `save` persists the restore record (a dry run keeps none); `resume` finds an earlier,
//!   unfinished run of the same request; `finish` is called once, at the end.
//! * `settle` watches what was made for a while and returns what the target deleted (the
//!   garbage collector, a controller); a dry run has nothing to watch.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, TryStreamExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::error::RestoreError;
use super::execute::Made;
use super::plan::{Existing, Key, ObjectStep, ANNOTATION_RESTORE};
use crate::apiserver::{ApiError, ApiServer, Event, Throttling};
use crate::bank::Bank;
use crate::cinder::Cinder;
use crate::model::{
    BackupId, Checkpoint, Encoding, JournalBatch, ObjectRef, Outcome, ResourceType, RestoreId,
    RestoreRecord, RestoreStatus, VolumeId,
};
use crate::protection::volumes::VolumeBackups;

/// What a sink made of a created object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The uid the target gave it (empty in a dry run).
    pub uid: String,
    /// `restored`, or `planned` in a dry run.
    pub outcome: Outcome,
}

/// A new volume, as a sink made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVolume {
    /// Its id (a placeholder in a dry run).
    pub id: VolumeId,
    /// `restoring`, or `planned` in a dry run.
    pub outcome: Outcome,
    /// What a dry run would do.
    pub note: String,
}

/// Where a restore goes. See the module doc for the contract.
#[async_trait]
pub trait RestoreSink: Send + Sync {
    /// Whether this is a dry run: nothing is made, and the target is not looked at (what it
    /// holds is unknown, not empty).
    fn dry_run(&self) -> bool {
        false
    }

    /// What the target holds at `name` (of `kind`); `restore` tells ours from others'.
    async fn existing(
        &self,
        kind: crate::codec::ResourceKind,
        name: &ObjectRef,
        restore: &RestoreId,
    ) -> Result<Existing, RestoreError>;

    /// What the target holds at each of `keys`. The default asks [`Self::existing`] for
    /// each, [`LOOKUPS_IN_FLIGHT`] at a time.
    async fn existing_all(
        &self,
        keys: Vec<Key>,
        restore: &RestoreId,
    ) -> Result<BTreeMap<Key, Existing>, RestoreError> {
        Ok(look_up_each(self, keys, restore)
            .await?
            .into_iter()
            .collect())
    }

    /// Whether the target's `name` (of `kind`, not this restore's) holds other content than
    /// `stored` (its plain stored bytes). The default: a sink that does not know the target
    /// sees no difference.
    async fn differs(
        &self,
        kind: crate::codec::ResourceKind,
        name: &ObjectRef,
        stored: Vec<u8>,
    ) -> Result<bool, RestoreError> {
        let _ = (kind, name, stored);
        Ok(false)
    }

    /// Starts a new volume from `backup`, named `name`.
    async fn start_volume(&self, backup: &BackupId, name: &str) -> Result<NewVolume, RestoreError>;

    /// Waits until the volume can be used.
    async fn wait_volume(&self, volume: &VolumeId, backup: &BackupId) -> Result<(), RestoreError>;

    /// Creates the object of `step` from `body` (its edited stored bytes).
    async fn create(&self, step: &ObjectStep, body: Vec<u8>) -> Result<Created, RestoreError>;

    /// How many units may run at once into this sink. The default sets no bound of its
    /// own.
    fn concurrency(&self) -> usize {
        usize::MAX
    }

    /// Persists the restore record whole (and drops the journal batches it holds). The
    /// default keeps none.
    async fn save(&self, record: &RestoreRecord) -> Result<(), RestoreError> {
        let _ = record;
        Ok(())
    }

    /// Appends a batch to the restore's journal. The default keeps none.
    async fn append(&self, restore: &RestoreId, batch: &JournalBatch) -> Result<(), RestoreError> {
        let _ = (restore, batch);
        Ok(())
    }

    /// How often the target asked to retry later so far. The default: never.
    fn throttling(&self) -> Throttling {
        Throttling::default()
    }

    /// An earlier run of the same request that did not succeed, to resume. The default
    /// knows none.
    async fn resume(&self, fingerprint: &str) -> Result<Option<RestoreRecord>, RestoreError> {
        let _ = fingerprint;
        Ok(None)
    }

    /// Watches `made` for `period`; returns each object the target deleted meanwhile, with
    /// the error that says so. The default watches nothing.
    async fn settle(
        &self,
        made: &[Made],
        period: Duration,
    ) -> Result<Vec<(Made, RestoreError)>, RestoreError> {
        let _ = (made, period);
        Ok(Vec::new())
    }

    /// The restore is done. The default does nothing.
    async fn finish(
        &self,
        checkpoint: &Checkpoint,
        record: &RestoreRecord,
    ) -> Result<(), RestoreError> {
        let _ = (checkpoint, record);
        Ok(())
    }
}

/// How many existence lookups are in flight at once.
pub const LOOKUPS_IN_FLIGHT: usize = 16;

/// From how many names of one kind in one namespace a LIST answers them, not GETs.
const LIST_FROM: usize = 16;

/// Asks `sink` what it holds at each of `keys`, [`LOOKUPS_IN_FLIGHT`] at a time.
async fn look_up_each<S: RestoreSink + ?Sized>(
    sink: &S,
    keys: Vec<Key>,
    restore: &RestoreId,
) -> Result<Vec<(Key, Existing)>, RestoreError> {
    futures::stream::iter(keys)
        .map(|key| async move {
            let found = sink.existing(key.0, &key.1, restore).await?;
            Ok::<_, RestoreError>((key, found))
        })
        .buffer_unordered(LOOKUPS_IN_FLIGHT)
        .try_collect()
        .await
}

/// Ours if the restore annotation names `restore`.
fn ours_or_foreign(annotation: Option<&str>, restore: &RestoreId) -> Existing {
    if annotation == Some(restore.as_str()) {
        Existing::Ours
    } else {
        Existing::Foreign
    }
}

/// The cluster: Cinder makes volumes, the API server objects, the bank keeps the record.
pub struct ClusterSink<'a> {
    /// The API server.
    pub api: &'a ApiServer,
    /// Cinder, or why there is none.
    pub volumes: &'a VolumeBackups<'a>,
    /// Where the record is kept.
    pub bank: &'a Bank,
    /// How long to wait for one volume.
    pub volume_timeout: Duration,
}

impl ClusterSink<'_> {
    fn cinder(&self, volume: &str) -> Result<&Cinder, RestoreError> {
        match self.volumes {
            VolumeBackups::Cinder(c) => Ok(c),
            VolumeBackups::Skip(reason) => Err(RestoreError::NoCinder {
                volume: VolumeId::new(volume),
                reason: reason.clone(),
            }),
        }
    }
}

#[async_trait]
impl RestoreSink for ClusterSink<'_> {
    async fn existing(
        &self,
        kind: crate::codec::ResourceKind,
        name: &ObjectRef,
        restore: &RestoreId,
    ) -> Result<Existing, RestoreError> {
        let ns = (!name.namespace().is_empty()).then_some(name.namespace());
        let found = self
            .api
            .get(kind, ns, name.name())
            .await
            .map_err(RestoreError::Api)?;
        Ok(match found {
            None => Existing::Absent,
            Some(obj) => ours_or_foreign(
                obj.pointer("/metadata/annotations")
                    .and_then(|a| a.get(ANNOTATION_RESTORE))
                    .and_then(|v| v.as_str()),
                restore,
            ),
        })
    }

    /// Many names of one kind in one namespace are answered by one LIST of it, the others
    /// by GETs, several at a time.
    async fn existing_all(
        &self,
        keys: Vec<Key>,
        restore: &RestoreId,
    ) -> Result<BTreeMap<Key, Existing>, RestoreError> {
        let mut groups: BTreeMap<(crate::codec::ResourceKind, String), Vec<Key>> = BTreeMap::new();
        for key in keys {
            groups
                .entry((key.0, key.1.namespace().to_string()))
                .or_default()
                .push(key);
        }
        let mut out = BTreeMap::new();
        let mut single = Vec::new();
        for ((kind, ns), keys) in groups {
            if keys.len() < LIST_FROM {
                single.extend(keys);
                continue;
            }
            let listed = self
                .api
                .list(kind, (!ns.is_empty()).then_some(ns.as_str()))
                .await
                .map_err(RestoreError::Api)?;
            let by_name: HashMap<&str, &crate::apiserver::Listed> =
                listed.iter().map(|l| (l.name.as_str(), l)).collect();
            for key in keys {
                let found = match by_name.get(key.1.name()) {
                    None => Existing::Absent,
                    Some(l) => ours_or_foreign(
                        l.annotations.get(ANNOTATION_RESTORE).map(String::as_str),
                        restore,
                    ),
                };
                out.insert(key, found);
            }
        }
        out.extend(look_up_each(self, single, restore).await?);
        Ok(out)
    }

    async fn differs(
        &self,
        kind: crate::codec::ResourceKind,
        name: &ObjectRef,
        stored: Vec<u8>,
    ) -> Result<bool, RestoreError> {
        let ns = (!name.namespace().is_empty()).then_some(name.namespace());
        let Some(live) = self
            .api
            .get(kind, ns, name.name())
            .await
            .map_err(RestoreError::Api)?
        else {
            return Ok(false);
        };
        Ok(crate::codec::same_content(kind, stored, &live)? == Some(false))
    }

    async fn start_volume(&self, backup: &BackupId, name: &str) -> Result<NewVolume, RestoreError> {
        let cinder = self.cinder(name)?;
        let id = cinder
            .restore_backup(backup, None, Some(name))
            .await
            .map_err(|source| RestoreError::VolumeRestore {
                backup: backup.clone(),
                source: Box::new(source),
            })?;
        Ok(NewVolume {
            id,
            outcome: Outcome::Restoring,
            note: String::new(),
        })
    }

    async fn wait_volume(&self, volume: &VolumeId, backup: &BackupId) -> Result<(), RestoreError> {
        let cinder = self.cinder(volume.as_str())?;
        cinder
            .wait_volume(volume, self.volume_timeout)
            .await
            .map(|_| ())
            .map_err(|source| RestoreError::VolumeNotAvailable {
                volume: volume.clone(),
                backup: backup.clone(),
                source: Box::new(source),
            })
    }

    async fn create(&self, step: &ObjectStep, body: Vec<u8>) -> Result<Created, RestoreError> {
        let encoding = if body.first() == Some(&b'{') {
            Encoding::Json
        } else {
            Encoding::Protobuf
        };
        let ns = (!step.target.namespace().is_empty()).then_some(step.target.namespace());
        match self
            .api
            .create(step.kind, ns, step.target.name(), encoding, body)
            .await
        {
            Ok(created) => Ok(Created {
                uid: created
                    .pointer("/metadata/uid")
                    .and_then(|u| u.as_str())
                    .unwrap_or_default()
                    .to_string(),
                outcome: Outcome::Restored,
            }),
            Err(e @ ApiError::AlreadyExists { .. }) => Err(RestoreError::CreatedMeanwhile(e)),
            Err(e) => Err(RestoreError::Api(e)),
        }
    }

    async fn save(&self, record: &RestoreRecord) -> Result<(), RestoreError> {
        Ok(self.bank.put_restore(record).await?)
    }

    async fn append(&self, restore: &RestoreId, batch: &JournalBatch) -> Result<(), RestoreError> {
        Ok(self.bank.append_restore(restore, batch).await?)
    }

    fn throttling(&self) -> Throttling {
        self.api.throttling()
    }

    async fn settle(
        &self,
        made: &[Made],
        period: Duration,
    ) -> Result<Vec<(Made, RestoreError)>, RestoreError> {
        settle(self.api, made, period).await
    }

    async fn resume(&self, fingerprint: &str) -> Result<Option<RestoreRecord>, RestoreError> {
        Ok(self
            .bank
            .restores()
            .await?
            .into_iter()
            .rev()
            .find(|r| r.parameters_json == fingerprint && r.status != RestoreStatus::Success))
    }
}

/// How often the settle watch looks.
const SETTLE_TICK: Duration = Duration::from_millis(250);

/// Watches `made` through the API server until `period` has passed: an object whose uid is
/// gone from its collection, or that is being deleted, is lost; the namespace's Events say
/// why.
async fn settle(
    api: &ApiServer,
    made: &[Made],
    period: Duration,
) -> Result<Vec<(Made, RestoreError)>, RestoreError> {
    let start = tokio::time::Instant::now();
    // What is watched, by collection: one LIST per collection and tick.
    let mut watching: BTreeMap<(crate::codec::ResourceKind, &str), Vec<&Made>> = BTreeMap::new();
    for m in made {
        watching
            .entry((m.kind, m.target.namespace()))
            .or_default()
            .push(m);
    }
    let mut lost = Vec::new();
    let mut tick = tokio::time::interval(SETTLE_TICK);
    while !watching.is_empty() {
        tick.tick().await;
        let mut gone: Vec<&Made> = Vec::new();
        for ((kind, ns), objects) in watching.iter_mut() {
            let listed = api
                .list(*kind, (!ns.is_empty()).then_some(*ns))
                .await
                .map_err(RestoreError::Api)?;
            let alive: HashMap<&str, bool> = listed
                .iter()
                .map(|l| (l.uid.as_str(), !l.deleting))
                .collect();
            objects.retain(|m| {
                let kept = alive.get(m.uid.as_str()).copied().unwrap_or(false);
                if !kept {
                    gone.push(m);
                }
                kept
            });
        }
        watching.retain(|_, objects| !objects.is_empty());
        // The Events of each namespace that lost something, read once.
        let mut events: HashMap<&str, Vec<Event>> = HashMap::new();
        for m in gone {
            let ns = event_namespace(m);
            if !events.contains_key(ns) {
                events.insert(ns, api.events(ns).await.unwrap_or_default());
            }
            let reason = events
                .get(ns)
                .map(|e| event_reason(e, m))
                .unwrap_or_default();
            lost.push((
                m.clone(),
                RestoreError::Lost {
                    kind: m.kind.kind(),
                    name: m.target.clone(),
                    after: format!("{:.1} s", start.elapsed().as_secs_f64()),
                    reason,
                },
            ));
        }
        if start.elapsed() >= period {
            break;
        }
    }
    Ok(lost)
}

/// Where the Events about `m` are.
fn event_namespace(m: &Made) -> &str {
    if m.kind.namespaced() {
        m.target.namespace()
    } else {
        "default"
    }
}

/// The reason (and message) of the latest of `events` about `m`, if any.
fn event_reason(events: &[Event], m: &Made) -> String {
    events
        .iter()
        .rev()
        .find(|e| {
            e.involved_object.uid == m.uid
                || (e.involved_object.name == m.target.name()
                    && e.involved_object.kind == m.kind.kind())
        })
        .map(|e| format!("{}: {}", e.reason, e.message))
        .unwrap_or_default()
}

/// One object of an export, as `plan.yaml` lists it.
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

/// A dry run: every object it would create is written into a folder (`NN-<resource>-<ns>_<name>.pb|json`),
/// with `plan.yaml` listing them, their order and their edits. Nothing is restored, and
/// the target is taken as empty.
pub struct ExportSink {
    dir: PathBuf,
    planned: Mutex<Vec<PlannedObject>>,
}

impl ExportSink {
    /// An export into `dir` (which must exist).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            planned: Mutex::new(Vec::new()),
        }
    }

    fn write(&self, file: &str, data: &[u8]) -> Result<(), RestoreError> {
        let path = self.dir.join(file);
        std::fs::write(&path, data).map_err(|source| RestoreError::Export { path, source })
    }
}

#[async_trait]
impl RestoreSink for ExportSink {
    /// One at a time: the files are numbered in the order a restore makes the objects.
    fn concurrency(&self) -> usize {
        1
    }

    fn dry_run(&self) -> bool {
        true
    }

    async fn existing(
        &self,
        _kind: crate::codec::ResourceKind,
        _name: &ObjectRef,
        _restore: &RestoreId,
    ) -> Result<Existing, RestoreError> {
        Ok(Existing::Absent)
    }

    async fn start_volume(
        &self,
        backup: &BackupId,
        _name: &str,
    ) -> Result<NewVolume, RestoreError> {
        Ok(NewVolume {
            id: VolumeId::new(format!("restored-from-backup-{backup}")),
            outcome: Outcome::Planned,
            note: format!("new volume from backup {backup}"),
        })
    }

    async fn wait_volume(
        &self,
        _volume: &VolumeId,
        _backup: &BackupId,
    ) -> Result<(), RestoreError> {
        Ok(())
    }

    async fn create(&self, step: &ObjectStep, body: Vec<u8>) -> Result<Created, RestoreError> {
        let json = body.first() == Some(&b'{');
        let mut planned = self
            .planned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let file = format!(
            "{:02}-{}-{}.{}",
            planned.len() + 1,
            step.kind.resource(),
            step.target.to_string().replace('/', "_"),
            if json { "json" } else { "pb" }
        );
        self.write(&file, &body)?;
        planned.push(PlannedObject {
            kind: step.kind.kind(),
            namespace: step.target.namespace().to_string(),
            name: step.target.name().to_string(),
            source: step.source.clone(),
            file,
            encoding: if json { "json" } else { "protobuf" },
            bytes: body.len(),
            changes: step.changes.clone(),
        });
        Ok(Created {
            uid: String::new(),
            outcome: Outcome::Planned,
        })
    }

    async fn finish(
        &self,
        checkpoint: &Checkpoint,
        record: &RestoreRecord,
    ) -> Result<(), RestoreError> {
        #[derive(Serialize)]
        struct Plan<'a> {
            checkpoint: &'a str,
            restore_name: &'a str,
            restore_description: &'a str,
            note: &'static str,
            objects: &'a [PlannedObject],
            volumes: Vec<BTreeMap<&'static str, String>>,
            /// What is not created by podbank, and why: pods left to their controllers,
            /// skipped objects.
            not_created: Vec<BTreeMap<&'static str, String>>,
        }
        let not_created = record
            .resources
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::ByController | Outcome::Skipped))
            .filter(|r| r.kind != ResourceType::CinderVolume)
            .map(|r| {
                BTreeMap::from([
                    ("type", r.kind.to_string()),
                    ("source", r.source.clone()),
                    ("status", r.outcome.label().to_string()),
                    ("reason", r.reason.clone()),
                ])
            })
            .collect();
        let volumes = record
            .resources
            .iter()
            .filter(|r| r.kind == ResourceType::CinderVolume)
            .map(|r| {
                BTreeMap::from([
                    ("volume", r.source.clone()),
                    ("status", r.outcome.label().to_string()),
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
        let planned = self
            .planned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let plan = Plan {
            checkpoint: checkpoint.id.as_str(),
            restore_name: &record.restore_name,
            restore_description: &record.restore_description,
            note: "dry run: nothing was restored; volume ids read restored-from-backup-<id> until a real restore makes the volumes",
            objects: &planned,
            volumes,
            not_created,
        };
        let text = serde_yaml::to_string(&plan).unwrap_or_default();
        self.write("plan.yaml", text.as_bytes())
    }
}
