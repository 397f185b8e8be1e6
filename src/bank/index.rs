//! The in-memory index: which object sits where, loaded from every `index/` file.
//!
//! One vector of (id, pack number, offset, lengths) sorted by id, and one name per pack:
//! 56 bytes per object, so a bank holding 100 000 pods with their claims, volumes and
//! tables (~240 000 objects) takes ~14 MB. Lookups are binary searches. Adding index files
//! appends and re-sorts once per call; an id indexed twice (two writers stored the same
//! object) keeps the location added first.

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
}

/// A location with the pack as its number in [`Index::packs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    offset: u64,
    pack: u32,
    length: u32,
    plain_length: u32,
}

/// What the index knows of a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackInfo {
    /// Its name (the hex sha256 of its bytes).
    pub name: Arc<str>,
    /// Stored size in bytes.
    pub size: u64,
}

/// Object id -> location, plus the packs and index files it came from.
#[derive(Debug, Default, Clone)]
pub struct Index {
    /// Sorted by id, one entry per id.
    objects: Vec<(ObjectId, Slot)>,
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

    /// Adds index files (one sort for all of them). Corrupt entries are returned as
    /// messages and skipped.
    pub fn add_files<'a>(
        &mut self,
        files: impl IntoIterator<Item = (&'a str, &'a pb::IndexFile)>,
    ) -> Vec<String> {
        let added_from = self.objects.len();
        let mut problems = Vec::new();
        for (name, file) in files {
            self.files.insert(name.to_string());
            for pack in &file.packs {
                self.push_pack(pack, &mut problems);
            }
        }
        self.settle(added_from);
        problems
    }

    fn push_pack(&mut self, pack: &pb::IndexPack, problems: &mut Vec<String>) {
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
            self.objects.push((
                id,
                Slot {
                    offset: entry.offset,
                    pack: number,
                    length: entry.length,
                    plain_length: entry.plain_length,
                },
            ));
        }
    }

    /// Sorts the entries pushed from `added_from` in among the others; of equal ids the
    /// one added first stays (stable sort, then dedup keeping the first).
    fn settle(&mut self, added_from: usize) {
        if added_from == self.objects.len() {
            return;
        }
        if let Some(new) = self.objects.get_mut(added_from..) {
            new.sort_by_key(|(id, _)| *id);
        }
        // Two sorted runs: the stable sort merges them in linear time.
        self.objects.sort_by_key(|(id, _)| *id);
        self.objects.dedup_by(|later, first| later.0 == first.0);
        self.objects.shrink_to_fit();
    }

    fn slot(&self, id: &ObjectId) -> Option<&Slot> {
        self.objects
            .binary_search_by(|(k, _)| k.cmp(id))
            .ok()
            .and_then(|i| self.objects.get(i))
            .map(|(_, slot)| slot)
    }

    fn location(&self, slot: &Slot) -> Option<Location> {
        self.packs.get(slot.pack as usize).map(|p| Location {
            pack: p.name.clone(),
            offset: slot.offset,
            length: slot.length,
            plain_length: slot.plain_length,
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
        self.objects.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
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

    /// Every object and its location, by id.
    pub fn objects(&self) -> impl Iterator<Item = (&ObjectId, Location)> + '_ {
        self.objects
            .iter()
            .filter_map(|(id, slot)| self.location(slot).map(|l| (id, l)))
    }

    /// Sum of plain lengths of all distinct objects.
    pub fn plain_bytes(&self) -> u64 {
        self.objects
            .iter()
            .map(|(_, s)| u64::from(s.plain_length))
            .sum()
    }
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
