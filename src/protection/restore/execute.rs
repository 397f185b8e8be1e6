//! The restore executor: carries a plan out into a [`RestoreTarget`], step by step, and
//! keeps the restore record (every outcome, the old -> new id map) in a [`RestoreJournal`]
//! as it goes.
//!
//! What the roots need (namespaces, referenced objects) is made first, in order; then the
//! units run, up to a bound at once (independent pods in parallel). A unit's steps run in
//! order (its volumes, PVs and claims before its root); the first that fails ends that unit
//! (its outcome says why). A new volume's id is saved into the record as soon as Cinder
//! gives it; other outcomes are saved a few times a second at most (and at the end), so the
//! record's writes grow with the objects restored, not with their square. Running the same
//! restore again resumes it: volumes and objects already made are reused (an object made
//! since the last save is found by its restore annotation), never made twice.
//! Owner references are rewritten as the owners are made: each object's references point at
//! the new uids of owners this restore made, and references to anything else are removed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::error::RestoreError;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::{watch, Mutex};

use super::journal::RestoreJournal;
use super::plan::{ObjectStep, Plan, Step, UnitPlan};
use super::target::{Created, Made, RestoreTarget};
use crate::bank::{Bank, ObjectId};
use crate::codec::{edit_object, OwnerEdit, ResourceKind};
use crate::model::{
    Checkpoint, JournalBatch, Outcome, OutcomeIndex, ResourceType, RestoreRecord, RestoredResource,
    Source, VolumeDriver, VolumeId, VolumeRecord,
};
use crate::protection::progress::{Progress, Stage};

/// Plain bytes of stored objects read together, by pack ([`Bank::read_objects`]), while
/// the units before them run: the window after the running one is read ahead, and a window
/// goes on past this (up to twice it) only while its units share a pack ([`windows`]). A
/// restore so makes about one bank read per pack per window instead of one per object,
/// while what a window holds is bounded by bytes, not by units (a unit's objects are a PV
/// and a claim of a few KiB, or a workload whose template is larger): at most two windows'
/// objects, each dropped as its object is created, are held at once.
const PREFETCH_BYTES: u64 = 4 << 20;

/// The stored objects a unit creates (those a window reads ahead).
fn prefetched_ids(unit: &UnitPlan) -> impl Iterator<Item = ObjectId> + '_ {
    let steps: &[Step] = match unit {
        UnitPlan::Restore { steps, .. } => steps,
        _ => &[],
    };
    steps.iter().filter_map(|step| match step {
        Step::Object(o) if !o.reused && o.generated.is_none() => o.object_id,
        _ => None,
    })
}

/// The units cut into prefetch windows of at least [`PREFETCH_BYTES`] plain bytes of
/// stored objects (the last one may be smaller), each ending where a pack does: a window
/// goes on, up to twice [`PREFETCH_BYTES`], while the next unit's objects share a pack with
/// the last unit's, so that a pack's frames are read by one window, not by two (a boundary
/// inside a pack costs a read of that pack per window). Memory: at most two windows of up
/// to `2 * PREFETCH_BYTES` (plus one unit) are held.
fn windows(units: Vec<UnitPlan>, index: &crate::bank::Index) -> Vec<Vec<UnitPlan>> {
    let mut out = Vec::new();
    let mut window: Vec<UnitPlan> = Vec::new();
    let mut bytes = 0u64;
    let mut last = std::collections::HashSet::new();
    for unit in units {
        let mut these = std::collections::HashSet::new();
        let mut size = 0u64;
        for location in prefetched_ids(&unit).filter_map(|id| index.get(&id)) {
            size += u64::from(location.plain_length);
            these.insert(location.pack);
        }
        let full = bytes >= PREFETCH_BYTES;
        if full && (bytes >= 2 * PREFETCH_BYTES || last.is_disjoint(&these)) {
            out.push(std::mem::take(&mut window));
            bytes = 0;
        }
        window.push(unit);
        bytes += size;
        last = these;
    }
    if !window.is_empty() {
        out.push(window);
    }
    out
}

/// The stored objects read ahead for a window of units; each is handed out once.
#[derive(Debug, Default)]
struct Prefetched(std::sync::Mutex<HashMap<ObjectId, Bytes>>);

impl Prefetched {
    /// Reads the stored objects that `units` create, by pack. What fails here is read
    /// again alone when its step comes, and fails there with its own error.
    async fn read(bank: &Bank, checkpoint: &Checkpoint, units: &[UnitPlan]) -> Self {
        let ids = units.iter().flat_map(prefetched_ids).collect::<Vec<_>>();
        if ids.is_empty() {
            return Self::default();
        }
        Self(std::sync::Mutex::new(
            bank.read_found(ids, checkpoint.id.as_str()).await,
        ))
    }

    /// The object `id`, if it was read ahead and not handed out yet.
    fn take(&self, id: &ObjectId) -> Option<Bytes> {
        self.0.lock().ok().and_then(|mut map| map.remove(id))
    }
}

/// What the executor works with.
pub struct Executor<'a> {
    /// Where the stored objects are.
    pub bank: &'a Bank,
    /// The checkpoint restored.
    pub checkpoint: &'a Checkpoint,
    /// Where it goes.
    pub target: &'a dyn RestoreTarget,
    /// Where the record is kept.
    pub journal: &'a dyn RestoreJournal,
    /// How many units run at once.
    pub concurrency: usize,
    /// How many volumes are restored at once.
    pub volume_concurrency: usize,
    /// The record and what was made, shared by the units running.
    pub state: Mutex<State>,
    /// Where each step done is counted.
    pub progress: &'a dyn Progress,
    /// The stage objects count in: [`Stage::Creates`], or [`Stage::Planned`] in a dry run.
    pub creates: Stage,
}

/// What the units of a restore share.
#[derive(Debug)]
pub struct State {
    /// The record kept.
    pub record: RestoreRecord,
    /// Every object made (or reused), to watch while the restore settles.
    pub made: Vec<Made>,
    /// Where each outcome is in the record.
    index: OutcomeIndex,
    /// What was recorded since the last journal batch.
    pending: JournalBatch,
    /// When the last journal batch was written.
    saved: Option<Instant>,
}

impl State {
    /// The state of a restore starting (or resuming) with `record`.
    pub fn new(record: RestoreRecord) -> Self {
        Self {
            index: OutcomeIndex::of(&record),
            record,
            made: Vec::new(),
            pending: JournalBatch::default(),
            saved: None,
        }
    }

    /// Records one outcome, in the record and in the next journal batch.
    fn record(&mut self, outcome: RestoredResource) {
        self.pending.resources.push(outcome.clone());
        self.index.record(&mut self.record, outcome);
    }

    /// Records a new id for `old`.
    fn new_id(&mut self, old: String, new: String) {
        self.pending.new_resources.insert(old.clone(), new.clone());
        self.record.new_resources.insert(old, new);
    }
}

/// The most often a journal batch is written (but a new volume's id is written at once).
const SAVE_EVERY: Duration = Duration::from_millis(250);

/// Writes the record whole into `journal`, counting the write in its stats.
pub(super) async fn save_whole(
    journal: &dyn RestoreJournal,
    record: &mut RestoreRecord,
) -> Result<(), RestoreError> {
    let started = Instant::now();
    record.stats.record_writes += 1;
    let result = journal.save(record).await;
    record.stats.record_write_time += started.elapsed();
    result
}

/// A volume being restored for the units: its new id once it is ready, or why not.
type VolumeReady = watch::Receiver<Option<Result<VolumeId, String>>>;

/// One unit (a bare pod or a top owner) that could not be restored, or one object the
/// settle watch saw go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `<unit>: <what went wrong>`.
    pub message: String,
    /// What the caller can do about it, when a request option is the answer.
    pub remedy: Option<&'static str>,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            message,
            remedy: None,
        }
    }
}

/// The reason of a failed restore: the failures, summarised when there are many (the count,
/// the first [`crate::protection::NAMED`]), then each remedy once.
pub fn summarise(failures: &[Failure]) -> String {
    let messages: Vec<&str> = failures.iter().map(|f| f.message.as_str()).collect();
    let mut reason = crate::protection::summarise_list(
        &messages,
        "pods or workloads could not be restored",
        "each one is in the restore record's outcomes: `podbank restores show <id>`, or -v",
    );
    let mut remedies: Vec<&str> = failures.iter().filter_map(|f| f.remedy).collect();
    remedies.sort_unstable();
    remedies.dedup();
    for r in remedies {
        reason.push_str("; ");
        reason.push_str(r);
    }
    reason
}

/// What one unit's steps know: the new ids of its volumes and owners.
#[derive(Debug, Default)]
struct UnitState {
    volumes: BTreeMap<VolumeId, VolumeId>,
    /// Owners made so far: uid in the checkpoint -> uid in the target.
    owners: BTreeMap<String, String>,
}

impl Executor<'_> {
    /// Runs the plan: what the roots need first, in order; then every unit's volumes start
    /// at once (up to `volume_concurrency` restoring), while the units run, up to
    /// `concurrency` at once, each going on as soon as its own volumes are ready. Returns one
    /// [`Failure`] per unit that failed.
    pub async fn run(&self, plan: Plan) -> Result<Vec<Failure>, RestoreError> {
        let mut failures = Vec::new();
        let none = HashMap::new();
        let first = Prefetched::read(self.bank, self.checkpoint, &plan.first).await;
        for unit in plan.first {
            failures.extend(self.run_unit(unit, &none, &first).await?);
        }
        drop(first);
        let mut volumes = Vec::new();
        let mut ready = HashMap::new();
        for unit in &plan.units {
            if let UnitPlan::Restore { steps, .. } = unit {
                for step in steps {
                    if let Step::Volume(v) = step {
                        if !ready.contains_key(&v.volume_id) {
                            let (tx, rx) = watch::channel(None);
                            ready.insert(v.volume_id.clone(), rx);
                            volumes.push((v.clone(), tx));
                        }
                    }
                }
            }
        }
        let restoring = stream::iter(volumes)
            .map(|(v, tx)| async move {
                let made = self.volume(&v).await;
                self.progress.advance(Stage::Volumes, 1);
                let made = match made {
                    Ok(id) => Ok(id),
                    // A bank failure: the record cannot be kept; the next run resumes.
                    Err(e @ RestoreError::Bank(_)) => return Err(e),
                    Err(e) => Err(e.to_string()),
                };
                // Nobody waiting is no error: a unit that failed before needs it no more.
                let _ = tx.send(Some(made));
                Ok(())
            })
            .buffer_unordered(self.volume_concurrency.max(1))
            .try_collect::<Vec<()>>();
        let ready = &ready;
        let windows = windows(plan.units, &*self.bank.index().await);
        // One window is read at a time: the read ahead of the next starts when the one
        // before it has its objects, so that two windows' pack reads (each up to
        // PACKS_AT_ONCE packs fetched) are never in memory together.
        let reading = &Mutex::new(());
        let units = stream::iter(windows)
            .map(|window| async move {
                let read = {
                    let _one = reading.lock().await;
                    Prefetched::read(self.bank, self.checkpoint, &window).await
                };
                let read = Arc::new(read);
                stream::iter(window.into_iter().map(move |unit| (unit, read.clone())))
            })
            .buffered(2)
            .flatten()
            .map(|(unit, read)| async move { self.run_unit(unit, ready, &read).await })
            .buffered(self.concurrency.max(1))
            .collect::<Vec<Result<Option<Failure>, RestoreError>>>();
        let (restored, results) = futures::join!(restoring, units);
        restored?;
        for r in results {
            failures.extend(r?);
        }
        Ok(failures)
    }

    /// Runs one unit; `Ok(Some(failure))` when it failed. Its volumes are those restoring in
    /// `ready`.
    async fn run_unit(
        &self,
        plan: UnitPlan,
        ready: &HashMap<VolumeId, VolumeReady>,
        read: &Prefetched,
    ) -> Result<Option<Failure>, RestoreError> {
        match plan {
            UnitPlan::Skip { notes, .. } => {
                self.notes(notes).await?;
                Ok(None)
            }
            UnitPlan::Fail { unit, error, notes } => {
                self.notes(notes).await?;
                Ok(Some(Failure {
                    message: format!("{unit}: {error}"),
                    remedy: error.remedy(),
                }))
            }
            UnitPlan::Restore { unit, steps, notes } => {
                self.notes(notes).await?;
                let mut state = UnitState::default();
                for step in steps {
                    let done = match step {
                        // Every unit's volumes are restoring (`run`); the first units have none.
                        Step::Volume(v) => {
                            let made = match ready.get(&v.volume_id).cloned() {
                                Some(mut rx) => rx
                                    .wait_for(Option::is_some)
                                    .await
                                    .ok()
                                    .and_then(|made| made.clone()),
                                None => None,
                            };
                            match made {
                                Some(Ok(new)) => {
                                    state.volumes.insert(v.volume_id.clone(), new);
                                    Ok(())
                                }
                                Some(Err(message)) => {
                                    return Ok(Some(format!("{unit}: {message}").into()))
                                }
                                None => {
                                    return Ok(Some(
                                        format!(
                                            "{unit}: the restore of volume {} stopped",
                                            v.volume_id
                                        )
                                        .into(),
                                    ))
                                }
                            }
                        }
                        Step::Object(o) => {
                            let made = self.object(o, &mut state, read).await;
                            self.progress.advance(self.creates, 1);
                            made
                        }
                    };
                    match done {
                        Ok(()) => {}
                        Err(e @ RestoreError::Bank(_)) => return Err(e),
                        Err(e) => {
                            return Ok(Some(Failure {
                                message: format!("{unit}: {e}"),
                                remedy: e.remedy(),
                            }))
                        }
                    }
                }
                Ok(None)
            }
        }
    }

    async fn notes(&self, notes: Vec<RestoredResource>) -> Result<(), RestoreError> {
        if notes.is_empty() {
            return Ok(());
        }
        let mut state = self.state.lock().await;
        for n in notes {
            state.record(n);
        }
        self.save_soon(&mut state).await
    }

    /// Records one outcome.
    fn outcome(
        state: &mut State,
        kind: ResourceType,
        source: Source,
        target: String,
        new_id: String,
        outcome: Outcome,
        reason: String,
    ) {
        state.record(RestoredResource {
            kind,
            source,
            target,
            new_id,
            outcome,
            reason,
        });
    }

    /// A new volume from `v`'s backup. Its id enters the record as soon as the target returns
    /// it, before the wait.
    async fn volume(&self, v: &VolumeRecord) -> Result<VolumeId, RestoreError> {
        let backup = v.backup_id.clone().unwrap_or_default();
        let key = format!("volume:{}", v.volume_id);
        let source = Source::Volume(v.volume_id.clone());
        let (known, restore_id) = {
            let state = self.state.lock().await;
            (
                state.record.new_resources.get(&key).cloned(),
                state.record.id.clone(),
            )
        };
        let (id, reused) = match known {
            Some(id) => (VolumeId::new(id), true),
            None => {
                let name = format!("podbank-{restore_id}-{}", v.volume_id.short());
                let started = self.target.start_volume(&backup, &name).await;
                let mut state = self.state.lock().await;
                match started {
                    Ok(new) if new.outcome == Outcome::Planned => {
                        let target = new.id.to_string();
                        Self::outcome(
                            &mut state,
                            ResourceType::CinderVolume,
                            source,
                            target,
                            String::new(),
                            Outcome::Planned,
                            new.note,
                        );
                        return Ok(new.id);
                    }
                    Ok(new) => {
                        state.new_id(key, new.id.to_string());
                        let id = new.id.to_string();
                        Self::outcome(
                            &mut state,
                            ResourceType::CinderVolume,
                            source.clone(),
                            id.clone(),
                            id,
                            new.outcome,
                            String::new(),
                        );
                        self.append(&mut state).await?;
                        (new.id, false)
                    }
                    Err(e) => {
                        Self::outcome(
                            &mut state,
                            ResourceType::CinderVolume,
                            source,
                            String::new(),
                            String::new(),
                            Outcome::Error,
                            e.to_string(),
                        );
                        self.save_soon(&mut state).await?;
                        return Err(e);
                    }
                }
            }
        };
        let waited = self.target.wait_volume(&id, &backup).await;
        let (outcome, reason) = match &waited {
            Ok(()) if reused => (Outcome::Reused, String::new()),
            Ok(()) => (Outcome::Restored, String::new()),
            Err(e) => (Outcome::Error, e.to_string()),
        };
        let new_id = id.to_string();
        let mut state = self.state.lock().await;
        Self::outcome(
            &mut state,
            ResourceType::CinderVolume,
            source,
            new_id.clone(),
            new_id,
            outcome,
            reason,
        );
        self.save_soon(&mut state).await?;
        waited.map(|()| id)
    }

    /// Creates one object, with the new volume ids and owner uids put in.
    async fn object(
        &self,
        mut step: ObjectStep,
        unit: &mut UnitState,
        read: &Prefetched,
    ) -> Result<(), RestoreError> {
        let kind = step.kind.resource_type();
        let target = step.target.to_string();
        if step.reused {
            let mut state = self.state.lock().await;
            if let Some(uid) = state
                .record
                .new_resources
                .get(&step.source.to_string())
                .cloned()
            {
                Self::made(&mut state, unit, &step, &uid);
            }
            Self::outcome(
                &mut state,
                kind,
                step.source,
                target,
                String::new(),
                Outcome::Reused,
                String::new(),
            );
            return Ok(());
        }
        resolve_volumes(&mut step, &unit.volumes);
        if step.edits.owners == OwnerEdit::Keep {
            step.edits.owners = OwnerEdit::Map(unit.owners.clone());
        }
        let result = self.create(&step, read).await;
        let source = step.source.clone();
        let mut state = self.state.lock().await;
        match result {
            Ok(created) => {
                if created.outcome != Outcome::Planned {
                    state.new_id(source.to_string(), created.uid.clone());
                    Self::made(&mut state, unit, &step, &created.uid);
                }
                Self::outcome(
                    &mut state,
                    kind,
                    source,
                    target,
                    created.uid,
                    created.outcome,
                    String::new(),
                );
                self.save_soon(&mut state).await?;
                Ok(())
            }
            Err(e) => {
                Self::outcome(
                    &mut state,
                    kind,
                    source,
                    target,
                    String::new(),
                    Outcome::Error,
                    e.to_string(),
                );
                self.save_soon(&mut state).await?;
                Err(e)
            }
        }
    }

    /// Writes a journal batch if none was written for [`SAVE_EVERY`].
    async fn save_soon(&self, state: &mut State) -> Result<(), RestoreError> {
        if state.saved.is_some_and(|t| t.elapsed() < SAVE_EVERY) {
            return Ok(());
        }
        self.append(state).await
    }

    /// Writes what was recorded since the last batch as the next journal batch.
    async fn append(&self, state: &mut State) -> Result<(), RestoreError> {
        state.saved = Some(Instant::now());
        if state.pending.is_empty() {
            return Ok(());
        }
        let mut batch = std::mem::take(&mut state.pending);
        batch.seq = state.record.journal_seq + 1;
        let started = Instant::now();
        self.journal.append(&state.record.id, &batch).await?;
        state.record.journal_seq = batch.seq;
        state.record.stats.record_writes += 1;
        state.record.stats.record_write_time += started.elapsed();
        Ok(())
    }

    /// Notes an object made: an owner's new uid, and what the settle watch follows.
    fn made(state: &mut State, unit: &mut UnitState, step: &ObjectStep, uid: &str) {
        if uid.is_empty() {
            return;
        }
        if step.kind.is_owner() && !step.source_uid.is_empty() {
            unit.owners
                .insert(step.source_uid.to_string(), uid.to_string());
        }
        state.made.push(Made {
            kind: step.kind,
            target: step.target.clone(),
            uid: uid.to_string(),
            source: step.source.clone(),
        });
    }

    async fn create(&self, step: &ObjectStep, read: &Prefetched) -> Result<Created, RestoreError> {
        if let Some(body) = &step.generated {
            return self.target.create(step, body.clone()).await;
        }
        let id = step.object_id.ok_or_else(|| RestoreError::NotStored {
            object: step.source.to_string(),
        })?;
        let stored = match read.take(&id) {
            Some(stored) => stored,
            None => {
                self.bank
                    .read_object(&id, self.checkpoint.id.as_str())
                    .await?
            }
        };
        let body = edit_object(step.kind, &stored, &step.edits)?;
        self.target.create(step, body).await
    }
}

/// Puts the new ids of restored volumes into a PV's source and a pod's inline volumes.
fn resolve_volumes(step: &mut ObjectStep, volumes: &BTreeMap<VolumeId, VolumeId>) {
    if let Some((old, driver)) = &step.pv_volume {
        if let Some(new) = volumes.get(old) {
            if *driver == Some(VolumeDriver::CinderInTree) {
                step.edits.pv_cinder_volume_id = Some(new.to_string());
            } else {
                step.edits.pv_volume_handle = Some(new.to_string());
            }
            step.changes
                .insert(1.min(step.changes.len()), format!("volume {old} -> {new}"));
        }
    }
    if step.kind == ResourceKind::Pod {
        for old in &step.pod_inline {
            if let Some(new) = volumes.get(old) {
                step.edits
                    .pod_cinder_volume_ids
                    .insert(old.to_string(), new.to_string());
                step.changes.push(format!("cinder volume {old} -> {new}"));
            }
        }
    }
}
