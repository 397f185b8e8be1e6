//! `verify`: read back and re-hash everything a checkpoint (or the whole bank) needs, and
//! name every file that is damaged, missing or not podbank's, with the checkpoints it
//! affects.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{is_pack_name, Problem, References};
use crate::bank::backend::{BackendError, Kind, RequestCounts};
use crate::bank::format;
use crate::bank::index::Location;
use crate::bank::lock::{self, LockEntry};
use crate::bank::objects::ObjectError;
use crate::bank::{checked, Bank, BankError, BankFile, CheckpointId, ObjectId};

/// Packs verify holds at once: with the writer's 4 MiB target, about 32 MiB of pack bytes
/// (and their frames while they are checked).
const PACKS_AT_ONCE: usize = 8;

/// What `verify` checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// Objects read and re-hashed: the resources protect stored, plus the checkpoints' own
    /// record tables (counted in `tables`).
    pub objects: usize,
    /// Of `objects`, the checkpoints' record tables (resource and volume lists).
    pub tables: usize,
    /// Packs read.
    pub packs: usize,
    /// Packs no index names (crash leftovers; `bank gc` removes them).
    pub unindexed_packs: usize,
    /// Everything wrong.
    pub problems: Vec<Problem>,
    /// The requests verify made of the bank's backend, and the bytes they read.
    #[serde(default)]
    pub requests: RequestCounts,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Every checkpoint some problem affects, sorted.
    pub fn affected_checkpoints(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .problems
            .iter()
            .flat_map(|p| p.checkpoints.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Reads the objects `located` out of the bytes of one pack, each frame decompressed once;
/// returns every object with its plain bytes, or why it cannot be read.
pub(super) fn objects_in_pack(
    data: &[u8],
    mut located: Vec<(ObjectId, Location)>,
) -> Vec<(ObjectId, Location, Result<Bytes, ObjectError>)> {
    located.sort_by_key(|(_, loc)| (loc.offset, loc.offset_in_frame));
    let mut frame: Option<(u64, Result<Bytes, ObjectError>)> = None;
    let mut out = Vec::with_capacity(located.len());
    for (id, loc) in located {
        if frame.as_ref().map(|(at, _)| *at) != Some(loc.offset) {
            let start = usize::try_from(loc.offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(usize::try_from(loc.length).unwrap_or(usize::MAX));
            let plain = match data.get(start..end) {
                Some(bytes) => format::decompress_frame(bytes, 0).map_err(ObjectError::from),
                None => Err(ObjectError::PastPackEnd {
                    pack_length: data.len(),
                }),
            };
            frame = Some((loc.offset, plain));
        }
        let result = match frame.as_ref().map(|(_, plain)| plain) {
            Some(Ok(plain)) => {
                format::object_in_frame(plain, loc.offset_in_frame, loc.plain_length)
                    .map_err(ObjectError::from)
                    .and_then(|object| checked(&id, object))
            }
            Some(Err(reason)) => Err(reason.clone()),
            None => Err(ObjectError::NoFrame),
        };
        out.push((id, loc, result));
    }
    out
}

/// The checkpoints of `refs` that need any of `ids`, sorted.
fn needing(refs: &References, ids: &[ObjectId]) -> Vec<String> {
    let mut v: Vec<String> = ids
        .iter()
        .flat_map(|i| refs.get(i).cloned().unwrap_or_default())
        .collect();
    v.sort();
    v.dedup();
    v
}

impl Bank {
    /// Verifies one checkpoint (`Some`) or the whole bank (`None`): every object a
    /// checkpoint needs is read, decompressed and re-hashed; with `None`, every pack's own
    /// hash is checked too, unindexed packs are counted, and every file that cannot be read
    /// (index files, manifests, restore records, locks, foreign files) is named.
    ///
    /// Runs in a record cache scope ([`crate::bank::backend::scoped`]; the caller's, if it
    /// runs in one): an index file or manifest already read in the command is not read again.
    pub async fn verify(&self, only: Option<&CheckpointId>) -> Result<VerifyReport, BankError> {
        let requests = self.requests();
        let mut report = super::super::backend::scoped(self.verify_counted(only)).await?;
        report.requests = self.requests().since(&requests);
        Ok(report)
    }

    /// [`Bank::verify`] but for counting its requests.
    async fn verify_counted(&self, only: Option<&CheckpointId>) -> Result<VerifyReport, BankError> {
        self.reload_index().await?;
        let mut report = VerifyReport::default();
        let (refs, checkpoints, problems) = match only {
            Some(id) => {
                let cp = match self.checkpoint(id).await {
                    Ok(cp) => cp,
                    Err(BankError::Corrupt { reason, .. }) => {
                        report.problems.push(Problem::file(
                            BankFile::new(Kind::Checkpoint, id.to_string()),
                            reason,
                            vec![id.to_string()],
                        ));
                        return Ok(report);
                    }
                    Err(e) => return Err(e),
                };
                let mut refs = References::new();
                let mut problems = Vec::new();
                let tables = self.read_resource_tables([&cp]).await;
                self.add_references(&cp, &tables, &mut refs, &mut problems)
                    .await;
                (refs, vec![cp], problems)
            }
            None => self.references().await?,
        };
        report.checkpoints = checkpoints.len();
        report.tables = checkpoints
            .iter()
            .flat_map(|c| c.tables.volumes.iter().chain(&c.tables.resources))
            .collect::<std::collections::HashSet<_>>()
            .len();
        report.problems.extend(problems);
        let index = self.index().await;
        let damaged_indexes = self.damaged_index_files().await;
        // Objects by pack, so that each pack is read once.
        let mut by_pack: BTreeMap<Arc<str>, Vec<ObjectId>> = BTreeMap::new();
        let mut lost = Vec::new();
        for (id, who) in &refs {
            match index.get(id) {
                Some(loc) => by_pack.entry(loc.pack.clone()).or_default().push(*id),
                None => {
                    lost.push(*id);
                    let reason = if damaged_indexes.is_empty() {
                        "not in any index: the bank has lost it".to_string()
                    } else {
                        format!(
                            "not in any readable index ({} index file(s) cannot be read; \
                             `podbank bank repair` rebuilds them from the packs)",
                            damaged_indexes.len()
                        )
                    };
                    report
                        .problems
                        .push(Problem::of(format!("object {id}"), reason, who.clone()));
                }
            }
        }
        // A damaged index file affects the checkpoints whose objects are missing.
        let lost_to = needing(&refs, &lost);
        for d in damaged_indexes.iter() {
            report.problems.push(Problem::file(
                d.file.clone(),
                d.reason.clone(),
                lost_to.clone(),
            ));
        }
        if only.is_none() {
            for pack in index.packs() {
                by_pack.entry(pack.name.clone()).or_default();
            }
        }
        // The packs, and (whole bank) the files no checkpoint names, read side by side: a
        // far bank's round trips overlap.
        let packs = async {
            let backend = self.backend.clone();
            let mut reads = futures::stream::iter(by_pack)
                .map(|(pack, ids)| {
                    let backend = backend.clone();
                    async move {
                        let data = backend.get(Kind::Pack, &pack).await;
                        (pack, ids, data)
                    }
                })
                .buffer_unordered(PACKS_AT_ONCE);
            while let Some((pack, ids, data)) = reads.next().await {
                report.packs += 1;
                let file = BankFile::new(Kind::Pack, pack.to_string());
                let pack_problem = |reason: String, checkpoints: Vec<String>| {
                    Problem::file(file.clone(), reason, checkpoints)
                };
                let data = match data {
                    Ok(d) => d,
                    Err(BackendError::NotFound { .. }) => {
                        report.problems.push(pack_problem(
                            format!("missing ({} objects in it are lost)", ids.len()),
                            needing(&refs, &ids),
                        ));
                        continue;
                    }
                    Err(e) => {
                        report.problems.push(pack_problem(
                            format!("unreadable: {e}"),
                            needing(&refs, &ids),
                        ));
                        continue;
                    }
                };
                let expected_size = index.pack(&pack).map(|p| p.size).unwrap_or(0);
                if ObjectId::of(&data).to_hex() != *pack {
                    let reason = if (data.len() as u64) < expected_size {
                        format!("truncated: {} bytes of {expected_size}", data.len())
                    } else {
                        "content does not match its name (damaged)".to_string()
                    };
                    report
                        .problems
                        .push(pack_problem(reason, needing(&refs, &ids)));
                }
                let located: Vec<(ObjectId, Location)> = ids
                    .iter()
                    .filter_map(|id| index.get(id).map(|loc| (*id, loc)))
                    .collect();
                report.objects += located.len();
                for (id, _, result) in objects_in_pack(&data, located) {
                    if let Err(reason) = result {
                        report.problems.push(Problem {
                            subject: format!("object {id} in pack {pack}"),
                            file: Some(file.clone()),
                            reason: reason.to_string(),
                            checkpoints: needing(&refs, std::slice::from_ref(&id)),
                        });
                    }
                }
            }
        };
        let others = async {
            match only {
                None => self.other_files(&index).await.map(Some),
                Some(_) => Ok(None),
            }
        };
        let ((), others) = futures::join!(packs, others);
        if let Some(others) = others? {
            report.unindexed_packs += others.unindexed_packs;
            report.problems.extend(others.problems);
        }
        Ok(report)
    }

    /// The files of a whole-bank verify that no checkpoint names: packs nobody indexes or
    /// not podbank's, restore records and locks that cannot be read.
    async fn other_files(&self, index: &crate::bank::Index) -> Result<OtherFiles, BankError> {
        let packs = async {
            let mut out = OtherFiles::default();
            for p in self.backend.list(Kind::Pack).await? {
                if !is_pack_name(&p.name) {
                    out.problems.push(Problem::file(
                        BankFile::new(Kind::Pack, p.name),
                        "not a pack (its name is no sha256): a foreign file; `podbank bank repair` moves it aside",
                        Vec::new(),
                    ));
                } else if index.pack(&p.name).is_none() {
                    // A leftover of an interrupted write (gc removes it): still checked, so
                    // that damage anywhere in the bank is named.
                    out.unindexed_packs += 1;
                    match self.backend.get(Kind::Pack, &p.name).await {
                        Ok(data) if ObjectId::of(&data).to_hex() == p.name => {}
                        Ok(_) => out.problems.push(Problem::file(
                            BankFile::new(Kind::Pack, p.name),
                            "content does not match its name (damaged); no index names it: gc removes it",
                            Vec::new(),
                        )),
                        Err(BackendError::NotFound { .. }) => {}
                        Err(e) => out.problems.push(Problem::file(
                            BankFile::new(Kind::Pack, p.name),
                            format!("unreadable: {e}; no index names it: gc removes it"),
                            Vec::new(),
                        )),
                    }
                }
            }
            Ok::<_, BankError>(out)
        };
        let locks = async {
            let mut problems = Vec::new();
            for entry in lock::read_all(&self.backend).await? {
                if let LockEntry::Unreadable { name, reason, .. } = entry {
                    problems.push(Problem::file(
                        BankFile::new(Kind::Lock, name),
                        format!(
                            "not a readable lock ({reason}); `podbank bank repair` moves it aside"
                        ),
                        Vec::new(),
                    ));
                }
            }
            Ok::<_, BankError>(problems)
        };
        let (packs, restores, plans, locks) =
            futures::join!(packs, self.restore_records(), self.plans(), locks);
        let mut out = packs?;
        out.problems.extend(restores?.1);
        out.problems.extend(plans?.1);
        out.problems.extend(locks?);
        Ok(out)
    }
}

/// What [`Bank::other_files`] found.
#[derive(Debug, Default)]
struct OtherFiles {
    /// Packs no index names.
    unindexed_packs: usize,
    /// What is wrong.
    problems: Vec<Problem>,
}
