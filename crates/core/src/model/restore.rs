//! A restore: its request as recorded, and what became of every resource.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use std::fmt;

use super::{
    CheckpointId, ObjectRef, Outcome, ResourceKind, ResourceType, RestoreId, RestoreStatus,
    VolumeId,
};

/// What a restored resource was in the checkpoint, as a restore record names it:
/// `<short>:<ns>/<name>` (`pod:shop/web-0`, `pvc:shop/data`), `<short>:<name>` for a
/// cluster-scoped object (`pv:pv-1`, `namespace:shop`), or a Cinder volume id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// An object of a known kind, written `<short>:<object>` (the kind table's `short`).
    Object {
        /// Its kind.
        kind: ResourceKind,
        /// Its namespace and name.
        object: ObjectRef,
    },
    /// A Cinder volume, written as its id.
    Volume(VolumeId),
    /// Any other text, kept as recorded (an owner of a kind podbank does not know,
    /// `<kind>:<ns>/<name>`; a record of another podbank).
    Text(String),
}

impl Source {
    /// An object of `kind`.
    pub fn object(kind: ResourceKind, object: ObjectRef) -> Self {
        Source::Object { kind, object }
    }

    /// Reads the text a record of type `kind` holds: a volume id for a Cinder volume,
    /// `<short>:<object>` for a known kind, else the text itself. Lossless: the value is
    /// written back as `text`.
    pub fn parse(kind: &ResourceType, text: &str) -> Self {
        if *kind == ResourceType::CinderVolume {
            return Source::Volume(VolumeId::new(text));
        }
        let object = text.split_once(':').and_then(|(short, rest)| {
            let kind = ResourceKind::from_short(short)?;
            let object = Source::object(kind, ObjectRef::parse_lenient(rest));
            (object.to_string() == text).then_some(object)
        });
        object.unwrap_or_else(|| Source::Text(text.to_string()))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Object { kind, object } => write!(f, "{}:{object}", kind.api().short),
            Source::Volume(id) => f.write_str(id.as_str()),
            Source::Text(text) => f.write_str(text),
        }
    }
}

impl serde::Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What became of one resource in a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredResource {
    /// Karbor-style type.
    pub kind: ResourceType,
    /// What it was in the checkpoint: `pod:<ns>/<name>`, `pvc:<ns>/<name>`, `pv:<name>`,
    /// or a Cinder volume id.
    pub source: Source,
    /// What was created (`<ns>/<name>`, a name, or the new volume id).
    pub target: String,
    /// The uid of the created object, or the new volume id.
    pub new_id: String,
    /// What happened.
    pub outcome: Outcome,
    /// Why (for skips and errors).
    pub reason: String,
}

/// A restore record.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreRecord {
    /// Its id.
    pub id: RestoreId,
    /// The checkpoint restored from.
    pub checkpoint: CheckpointId,
    /// Its state.
    pub status: RestoreStatus,
    /// Karbor's `restore_name`.
    pub restore_name: String,
    /// Karbor's `restore_description`.
    pub restore_description: String,
    /// When it started.
    pub created: DateTime<Utc>,
    /// When it ended.
    pub finished: Option<DateTime<Utc>>,
    /// Per-resource outcomes.
    pub resources: Vec<RestoredResource>,
    /// Old id -> new id (Karbor's `new_resources`).
    pub new_resources: BTreeMap<String, String>,
    /// The request as given, to recognise the same restore when it runs again.
    pub parameters_json: String,
    /// Why it failed.
    pub reason: String,
    /// How many journal batches the record already holds (the bank's journal: see
    /// [`JournalBatch`]).
    pub journal_seq: u64,
    /// How it went, in numbers.
    pub stats: RestoreStats,
    /// The Karbor project that asked (empty: none, the cluster admin's).
    pub project_id: String,
}

/// How a restore went, in numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Writes of the record and its journal.
    pub record_writes: u64,
    /// The time spent in them.
    pub record_write_time: std::time::Duration,
    /// API-server answers "retry later" (429) that were honoured.
    pub throttled: u64,
    /// The time waited as they asked.
    pub throttle_wait: std::time::Duration,
    /// The wall time of the (last) run.
    pub run_time: std::time::Duration,
    /// Whole-object reads (GETs) the bank made during the run.
    pub bank_gets: u64,
    /// Ranged reads the bank made during the run.
    pub bank_range_gets: u64,
    /// Of those reads, the ones of packs.
    pub bank_pack_gets: u64,
    /// The bytes they read, as stored.
    pub bank_bytes_read: u64,
}

/// The outcomes a restore recorded since its last journal batch: appended to the bank as
/// they come (a few times a second), folded into the record when the restore ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalBatch {
    /// Its number: 1, 2, ... in the order written.
    pub seq: u64,
    /// Outcomes, each replacing an earlier one of the same (`kind`, `source`).
    pub resources: Vec<RestoredResource>,
    /// Old id -> new id entries added.
    pub new_resources: BTreeMap<String, String>,
}

impl JournalBatch {
    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.new_resources.is_empty()
    }
}

impl RestoreRecord {
    /// A new restore of `checkpoint`, in progress.
    pub fn new(id: RestoreId, checkpoint: CheckpointId, created: DateTime<Utc>) -> Self {
        Self {
            id,
            checkpoint,
            status: RestoreStatus::InProgress,
            restore_name: String::new(),
            restore_description: String::new(),
            created,
            finished: None,
            resources: Vec::new(),
            new_resources: BTreeMap::new(),
            parameters_json: String::new(),
            reason: String::new(),
            journal_seq: 0,
            stats: RestoreStats::default(),
            project_id: String::new(),
        }
    }

    /// Records the outcome of (`kind`, `source`), replacing an earlier one. A search of
    /// the outcomes: for many, use an [`OutcomeIndex`].
    pub fn record(&mut self, outcome: RestoredResource) {
        match self
            .resources
            .iter_mut()
            .find(|r| r.kind == outcome.kind && r.source == outcome.source)
        {
            Some(existing) => *existing = outcome,
            None => self.resources.push(outcome),
        }
    }

    /// Folds journal batches (in order) into the record; batches it already holds
    /// (`seq <= journal_seq`) are passed over.
    pub fn apply(&mut self, batches: impl IntoIterator<Item = JournalBatch>) {
        let mut index = OutcomeIndex::of(self);
        for batch in batches {
            if batch.seq <= self.journal_seq {
                continue;
            }
            for r in batch.resources {
                index.record(self, r);
            }
            self.new_resources.extend(batch.new_resources);
            self.journal_seq = batch.seq;
        }
    }
}

/// Where each (`kind`, `source`) is among a record's outcomes, so that recording many
/// outcomes costs one lookup each.
#[derive(Debug, Default)]
pub struct OutcomeIndex(std::collections::HashMap<(ResourceType, Source), usize>);

impl OutcomeIndex {
    /// The index of `record`'s outcomes.
    pub fn of(record: &RestoreRecord) -> Self {
        Self(
            record
                .resources
                .iter()
                .enumerate()
                .map(|(i, r)| ((r.kind.clone(), r.source.clone()), i))
                .collect(),
        )
    }

    /// Records `outcome` into `record`, replacing an earlier one of the same (`kind`,
    /// `source`). `record` must be the one the index was made of.
    pub fn record(&mut self, record: &mut RestoreRecord, outcome: RestoredResource) {
        let key = (outcome.kind.clone(), outcome.source.clone());
        match self.0.get(&key) {
            Some(&i) if i < record.resources.len() => record.resources[i] = outcome,
            _ => {
                self.0.insert(key, record.resources.len());
                record.resources.push(outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_read_back_as_written() {
        let pvc = ResourceType::Kube(ResourceKind::PersistentVolumeClaim);
        for (kind, text) in [
            (pvc.clone(), "pvc:shop/data-0"),
            (
                ResourceType::Kube(ResourceKind::PersistentVolume),
                "pv:pv-1",
            ),
            (
                ResourceType::Kube(ResourceKind::Namespace),
                "namespace:shop",
            ),
            (ResourceType::Kube(ResourceKind::Pod), "pod:shop/web-0"),
            (ResourceType::Kube(ResourceKind::Pod), "shop/web-0"),
            (
                ResourceType::Other("OS::Kubernetes::Widget".into()),
                "widget:shop/w",
            ),
            (ResourceType::CinderVolume, "0b4c-11"),
            (pvc, "pvc:/odd"),
        ] {
            assert_eq!(Source::parse(&kind, text).to_string(), text);
        }
        assert_eq!(
            Source::parse(
                &ResourceType::Kube(ResourceKind::Deployment),
                "deployment:shop/web"
            ),
            Source::object(ResourceKind::Deployment, ObjectRef::new("shop", "web"))
        );
    }
}
