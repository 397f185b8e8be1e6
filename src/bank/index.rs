//! The in-memory index: which object sits where, loaded from every `index/` file.
//!
//! Vectors of (id, pack number, offset, lengths) sorted by id, and one name per pack:
//! 56 bytes per object, so a bank holding 100 000 pods with their claims, volumes and
//! tables (~240 000 objects) takes ~14 MB. A fan-out table on the ids' first bits (ids are
//! sha256, so evenly spread) narrows a lookup to a few neighbouring entries, where a binary
//! search over the whole vector would miss the cache at nearly every step. An id indexed
//! twice (two writers stored the same object) keeps the location added first.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::format::pb;
use super::ObjectId;

/// Where an object is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The pack's name.
    pub pack: Arc<str>,
    /// Offset of the zstd frame in the pack.
    pub offset: u64,
    /// Stored (compressed) length.
    pub length: u32,
    /// Plain length.
    pub plain_length: u32,
    /// Where the object starts in its frame's plain bytes.
    pub offset_in_frame: u32,
}

/// A location with the pack as its number in [`Index::packs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    offset: u64,
    pack: u32,
    length: u32,
    plain_length: u32,
    in_frame: u32,
}

/// What the index knows of a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackInfo {
    /// Its name (the hex sha256 of its bytes).
    pub name: Arc<str>,
    /// Stored size in bytes.
    pub size: u64,
}

/// Entries sorted by id, one per id, with a fan-out table over the ids' first bits.
#[derive(Debug, Default, Clone)]
struct Run {
    entries: Vec<(ObjectId, Slot)>,
    /// `fanout[p]..fanout[p + 1]`: the entries whose id starts with the `bits`-bit prefix `p`.
    fanout: Vec<u32>,
    bits: u32,
}

impl Run {
    /// Sorts `entries` and indexes them. Of equal ids the one in the pack added first stays
    /// (packs are numbered as they are added), at its lowest offset. The sort is in place:
    /// no scratch as large as the run.
    fn new(mut entries: Vec<(ObjectId, Slot)>) -> Self {
        entries.sort_unstable_by_key(|(id, slot)| (*id, slot.pack, slot.offset));
        entries.dedup_by(|later, first| later.0 == first.0);
        entries.shrink_to_fit();
        // About four entries per prefix, at most 2^16 prefixes.
        let bits = (usize::BITS - entries.len().leading_zeros())
            .saturating_sub(2)
            .min(16);
        let mut fanout = vec![0u32; (1usize << bits) + 1];
        for (id, _) in &entries {
            fanout[prefix(id, bits) + 1] += 1;
        }
        for p in 1..fanout.len() {
            fanout[p] += fanout[p - 1];
        }
        Self {
            entries,
            fanout,
            bits,
        }
    }

    fn find(&self, id: &ObjectId) -> Option<&Slot> {
        let p = prefix(id, self.bits);
        let range = match (self.fanout.get(p), self.fanout.get(p + 1)) {
            (Some(&start), Some(&end)) => start as usize..end as usize,
            _ => 0..self.entries.len(),
        };
        let bucket = self.entries.get(range)?;
        bucket
            .binary_search_by(|(k, _)| k.cmp(id))
            .ok()
            .and_then(|i| bucket.get(i))
            .map(|(_, slot)| slot)
    }
}

/// Runs added one by one before they are merged into the base (each lookup checks them all).
const MAX_RUNS: usize = 8;

/// Object id -> location, plus the packs and index files it came from.
///
/// A whole index loaded at once is one sorted run (the base). Files added later, one at a
/// time (a writer names its packs as it goes), become runs of their own, each of exactly
/// its size: the base is never copied to grow it, and a lookup checks the base, then the
/// runs in the order they came. Past [`MAX_RUNS`] runs everything is merged into the base.
#[derive(Debug, Default, Clone)]
pub struct Index {
    base: Run,
    runs: Vec<Run>,
    /// Packs, by the number a [`Slot`] holds.
    packs: Vec<PackInfo>,
    numbers: HashMap<Arc<str>, u32>,
    files: HashSet<String>,
}

impl Index {
    /// Adds one index file's content. Corrupt entries (ids of the wrong length) are
    /// returned as messages and skipped.
    pub fn add_file(&mut self, name: &str, file: &pb::IndexFile) -> Vec<String> {
        self.add_files([(name, file)])
    }

    /// Adds index files (one sorted run for all of them). Corrupt entries are returned as
    /// messages and skipped.
    pub fn add_files<'a>(
        &mut self,
        files: impl IntoIterator<Item = (&'a str, &'a pb::IndexFile)>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let files: Vec<(&str, &pb::IndexFile)> = files.into_iter().collect();
        let mut entries = Vec::with_capacity(
            files
                .iter()
                .flat_map(|(_, f)| &f.packs)
                .map(|p| p.entries.len())
                .sum(),
        );
        for (name, file) in files {
            self.files.insert(name.to_string());
            for pack in &file.packs {
                self.push_pack(pack, &mut entries, &mut problems);
            }
        }
        if entries.is_empty() {
            return problems;
        }
        let run = Run::new(entries);
        if self.base.entries.is_empty() && self.runs.is_empty() {
            self.base = run;
        } else {
            self.runs.push(run);
            if self.runs.len() > MAX_RUNS {
                self.compact();
            }
        }
        problems
    }

    /// Merges the runs into the base.
    fn compact(&mut self) {
        let mut all = Vec::with_capacity(
            self.base.entries.len() + self.runs.iter().map(|r| r.entries.len()).sum::<usize>(),
        );
        all.append(&mut self.base.entries);
        for mut run in self.runs.drain(..) {
            all.append(&mut run.entries);
        }
        self.base = Run::new(all);
    }

    fn push_pack(
        &mut self,
        pack: &pb::IndexPack,
        entries: &mut Vec<(ObjectId, Slot)>,
        problems: &mut Vec<String>,
    ) {
        let name: Arc<str> = pack.pack.as_str().into();
        let number = match self.numbers.get(&name) {
            Some(&n) => {
                if let Some(info) = self.packs.get_mut(n as usize) {
                    info.size = pack.size;
                }
                n
            }
            None => {
                let Ok(n) = u32::try_from(self.packs.len()) else {
                    problems.push(format!(
                        "pack {}: more packs than the index can hold",
                        pack.pack
                    ));
                    return;
                };
                self.packs.push(PackInfo {
                    name: name.clone(),
                    size: pack.size,
                });
                self.numbers.insert(name, n);
                n
            }
        };
        for entry in &pack.entries {
            let Some(id) = ObjectId::from_slice(&entry.id) else {
                problems.push(format!("pack {}: an entry has a malformed id", pack.pack));
                continue;
            };
            entries.push((
                id,
                Slot {
                    offset: entry.offset,
                    pack: number,
                    length: entry.length,
                    plain_length: entry.plain_length,
                    in_frame: entry.offset_in_frame,
                },
            ));
        }
    }

    /// The location added first for `id`.
    fn slot(&self, id: &ObjectId) -> Option<&Slot> {
        self.base
            .find(id)
            .or_else(|| self.runs.iter().find_map(|r| r.find(id)))
    }

    /// Every entry that is the location of its id (a later run's copy of an id is not).
    fn entries(&self) -> impl Iterator<Item = &(ObjectId, Slot)> + '_ {
        let later = self.runs.iter().enumerate().flat_map(move |(i, run)| {
            run.entries.iter().filter(move |(id, _)| {
                self.base.find(id).is_none() && self.runs[..i].iter().all(|r| r.find(id).is_none())
            })
        });
        self.base.entries.iter().chain(later)
    }

    fn location(&self, slot: &Slot) -> Option<Location> {
        self.packs.get(slot.pack as usize).map(|p| Location {
            pack: p.name.clone(),
            offset: slot.offset,
            length: slot.length,
            plain_length: slot.plain_length,
            offset_in_frame: slot.in_frame,
        })
    }

    /// Where `id` is, if anywhere.
    pub fn get(&self, id: &ObjectId) -> Option<Location> {
        self.slot(id).and_then(|s| self.location(s))
    }

    /// Whether the bank holds `id`.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.slot(id).is_some()
    }

    /// Number of distinct objects.
    pub fn len(&self) -> usize {
        if self.runs.is_empty() {
            self.base.entries.len()
        } else {
            self.entries().count()
        }
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.base.entries.is_empty() && self.runs.iter().all(|r| r.entries.is_empty())
    }

    /// Every pack the index names.
    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    /// The pack named `name`, if the index names it.
    pub fn pack(&self, name: &str) -> Option<&PackInfo> {
        self.numbers
            .get(name)
            .and_then(|&n| self.packs.get(n as usize))
    }

    /// The index files loaded.
    pub fn files(&self) -> &HashSet<String> {
        &self.files
    }

    /// Every object and its location (by id, when no runs are waiting to be merged).
    pub fn objects(&self) -> impl Iterator<Item = (&ObjectId, Location)> + '_ {
        self.entries()
            .filter_map(|(id, slot)| self.location(slot).map(|l| (id, l)))
    }

    /// Sum of plain lengths of all distinct objects.
    pub fn plain_bytes(&self) -> u64 {
        self.entries().map(|(_, s)| u64::from(s.plain_length)).sum()
    }
}

/// The first `bits` bits of `id` (at most 16).
fn prefix(id: &ObjectId, bits: u32) -> usize {
    let b = id.as_bytes();
    (usize::from(u16::from_be_bytes([b[0], b[1]])) >> (16 - bits.min(16))) & ((1 << bits) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(name: &str, entries: &[(u8, u64)]) -> pb::IndexPack {
        pb::IndexPack {
            pack: name.into(),
            size: 100,
            entries: entries
                .iter()
                .map(|&(b, offset)| pb::IndexEntry {
                    id: vec![b; 32].into(),
                    offset,
                    length: 10,
                    plain_length: 20,
                    offset_in_frame: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn finds_every_object_and_keeps_the_first_location_of_a_duplicate() {
        let mut index = Index::default();
        let first = pb::IndexFile {
            packs: vec![pack("p1", &[(3, 0), (1, 10)]), pack("p2", &[(2, 0)])],
            supersedes: vec![],
        };
        assert!(index.add_file("i1", &first).is_empty());
        let second = pb::IndexFile {
            packs: vec![pack("p3", &[(1, 50), (4, 0)])],
            supersedes: vec![],
        };
        assert!(index.add_file("i2", &second).is_empty());
        assert_eq!(index.len(), 4);
        let one = ObjectId::from_slice(&[1; 32]).expect("32 bytes");
        let loc = index.get(&one).expect("indexed");
        assert_eq!((&*loc.pack, loc.offset), ("p1", 10));
        let four = ObjectId::from_slice(&[4; 32]).expect("32 bytes");
        assert_eq!(index.get(&four).map(|l| l.pack), Some("p3".into()));
        assert!(!index.contains(&ObjectId::from_slice(&[9; 32]).expect("32 bytes")));
        assert_eq!(index.packs().len(), 3);
        assert_eq!(index.pack("p2").map(|p| p.size), Some(100));
        let ids: Vec<u8> = index.objects().map(|(id, _)| id.as_bytes()[0]).collect();
        assert_eq!(ids, vec![1, 2, 3, 4]);
        assert_eq!(index.plain_bytes(), 80);
    }

    #[test]
    fn lookups_through_the_fanout_find_every_object_of_a_large_index() {
        let mut index = Index::default();
        let ids: Vec<ObjectId> = (0..5000u32)
            .map(|i| ObjectId::of(&i.to_le_bytes()))
            .collect();
        for chunk in ids.chunks(1000) {
            let file = pb::IndexFile {
                packs: vec![pb::IndexPack {
                    pack: format!("p{}", chunk.len()),
                    size: 1,
                    entries: chunk
                        .iter()
                        .map(|id| pb::IndexEntry {
                            id: id.to_bytes(),
                            ..Default::default()
                        })
                        .collect(),
                }],
                supersedes: vec![],
            };
            assert!(index.add_file("i", &file).is_empty());
        }
        assert_eq!(index.len(), 5000);
        assert!(ids.iter().all(|id| index.contains(id)));
        assert!((5000..6000u32).all(|i| !index.contains(&ObjectId::of(&i.to_le_bytes()))));
        let edges = [[0u8; 32], [0xff; 32]];
        for e in edges {
            let id = ObjectId::from_slice(&e).expect("32 bytes");
            assert!(!index.contains(&id));
        }
    }

    #[test]
    fn files_added_one_by_one_keep_the_first_location_through_compaction() {
        let mut index = Index::default();
        // Twelve files, one at a time; id 7 is in every one of them, at its own offset.
        for f in 0..12u8 {
            let file = pb::IndexFile {
                packs: vec![pack(&format!("p{f}"), &[(7, u64::from(f)), (100 + f, 0)])],
                supersedes: vec![],
            };
            assert!(index.add_file(&format!("i{f}"), &file).is_empty());
            let seven = ObjectId::from_slice(&[7; 32]).expect("32 bytes");
            let loc = index.get(&seven).expect("indexed");
            assert_eq!((&*loc.pack, loc.offset), ("p0", 0), "after file {f}");
            assert_eq!(index.len(), usize::from(f) + 2);
            assert_eq!(index.objects().count(), usize::from(f) + 2);
        }
        assert!(index.runs.len() <= MAX_RUNS);
        for f in 0..12u8 {
            let id = ObjectId::from_slice(&[100 + f; 32]).expect("32 bytes");
            assert_eq!(
                index.get(&id).map(|l| l.pack.to_string()),
                Some(format!("p{f}"))
            );
        }
        assert_eq!(index.plain_bytes(), 13 * 20);
    }

    #[test]
    fn a_malformed_id_is_named_and_skipped() {
        let mut index = Index::default();
        let mut bad = pack("p1", &[(1, 0)]);
        bad.entries[0].id = vec![1, 2, 3].into();
        let problems = index.add_file(
            "i1",
            &pb::IndexFile {
                packs: vec![bad],
                supersedes: vec![],
            },
        );
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("p1"), "{problems:?}");
        assert!(index.is_empty());
    }
}
