//! The cluster as a restore target ([`ClusterTarget`]): Cinder makes the volumes, the API
//! server the objects; the settle watch follows what was made through the API server. The
//! restore record is not kept here (see [`crate::protection::restore::journal`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;

use super::{look_up_each, Created, Made, NewVolume, RestoreTarget};
use crate::apiserver::{ApiError, ApiServer, Event, Listed, Throttling};
use crate::cinder::Cinder;
use crate::codec::ResourceKind;
use crate::model::{BackupId, Encoding, ObjectRef, Outcome, RestoreId, VolumeId};
use crate::protection::restore::error::RestoreError;
use crate::protection::restore::plan::{Existing, Key, ObjectStep, ANNOTATION_RESTORE};
use crate::protection::volumes::VolumeBackups;

/// From how many names of one kind in one namespace a LIST answers them, not GETs.
const LIST_FROM: usize = 16;

/// Ours if the restore annotation names `restore`.
fn ours_or_foreign(annotation: Option<&str>, restore: &RestoreId) -> Existing {
    if annotation == Some(restore.as_str()) {
        Existing::Ours
    } else {
        Existing::Foreign
    }
}

/// The cluster: Cinder makes volumes, the API server objects.
pub struct ClusterTarget<'a> {
    /// The API server.
    pub api: &'a ApiServer,
    /// Cinder, or why there is none.
    pub volumes: &'a VolumeBackups<'a>,
    /// How long to wait for one volume.
    pub volume_timeout: Duration,
}

impl ClusterTarget<'_> {
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
impl RestoreTarget for ClusterTarget<'_> {
    async fn existing(
        &self,
        kind: ResourceKind,
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
        let mut groups: BTreeMap<(ResourceKind, String), Vec<Key>> = BTreeMap::new();
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
            let by_name: HashMap<&str, &Listed> =
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
        kind: ResourceKind,
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
    let mut watching: BTreeMap<(ResourceKind, &str), Vec<&Made>> = BTreeMap::new();
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
