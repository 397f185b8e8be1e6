//! Packs being filled: objects compressed into zstd frames (small ones sharing a frame),
//! frames appended to a pack, a full pack sealed with its trailer and named by its hash.
//! No I/O: the writer puts what comes out.

use bytes::Bytes;

use crate::bank::backend::Kind;
use crate::bank::format::{self, pb};
use crate::bank::lock::LockGuard;
use crate::bank::{Bank, BankError, ObjectId};

/// Pack being filled, and what this writer has added so far.
pub(super) struct PackState {
    buf: Vec<u8>,
    entries: Vec<pb::IndexEntry>,
    target: usize,
    /// One compression context for the whole checkpoint (creating one per frame costs
    /// more than compressing a pod).
    compressor: zstd::bulk::Compressor<'static>,
    /// Small objects waiting to share a frame: their plain bytes back to back...
    group: Vec<u8>,
    /// ...and each one's id, start in `group` and length.
    members: Vec<(ObjectId, u32, u32)>,
}

impl std::fmt::Debug for PackState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackState")
            .field("buffered", &self.buf.len())
            .field("entries", &self.entries.len())
            .field("grouped", &self.members.len())
            .finish_non_exhaustive()
    }
}

/// A full pack, ready to be put.
#[derive(Debug)]
pub(super) struct SealedPack {
    pub(super) name: String,
    pub(super) data: Bytes,
    pub(super) entry: pb::IndexPack,
}

/// What compressing a batch gave: compressed bytes added, and the packs that filled up.
pub(super) type Compressed = (u64, Vec<SealedPack>);

impl PackState {
    pub(super) fn new(target: usize) -> Result<Self, BankError> {
        Ok(Self {
            buf: Vec::with_capacity(target + (256 << 10)),
            entries: Vec::new(),
            target,
            compressor: zstd::bulk::Compressor::new(format::ZSTD_LEVEL)
                .map_err(|e| BankError::Task(format!("cannot start zstd: {e}")))?,
            group: Vec::with_capacity(format::FRAME_TARGET),
            members: Vec::new(),
        })
    }

    /// Compresses new objects into the pack: small ones gather into shared frames (see
    /// [`format::FRAME_TARGET`]), a large one gets a frame of its own. Objects still waiting
    /// for their frame go out with the next batch or at [`PackState::finish`].
    pub(super) fn compress(
        &mut self,
        objects: Vec<(ObjectId, Bytes)>,
    ) -> Result<Compressed, BankError> {
        let mut out = (0, Vec::new());
        for (id, plain) in objects {
            let len = u32::try_from(plain.len())
                .map_err(|_| BankError::Task(format!("object {id} is larger than 4 GiB")))?;
            if plain.len() >= format::FRAME_TARGET {
                self.frame_group(&mut out)?;
                self.frame(&plain, &[(id, 0, len)], &mut out)?;
                continue;
            }
            if self.group.len() + plain.len() > format::FRAME_TARGET {
                self.frame_group(&mut out)?;
            }
            let start = u32::try_from(self.group.len()).unwrap_or(u32::MAX);
            self.members.push((id, start, len));
            self.group.extend_from_slice(&plain);
        }
        Ok(out)
    }

    /// Puts the waiting objects into a frame, and seals the last pack.
    pub(super) fn finish(&mut self) -> Result<Compressed, BankError> {
        let mut out = (0, Vec::new());
        self.frame_group(&mut out)?;
        out.1.extend(self.seal()?);
        Ok(out)
    }

    fn frame_group(&mut self, out: &mut Compressed) -> Result<(), BankError> {
        if self.members.is_empty() {
            return Ok(());
        }
        let group = std::mem::take(&mut self.group);
        let members = std::mem::take(&mut self.members);
        let framed = self.frame(&group, &members, out);
        // The buffers are kept for the next group.
        self.group = group;
        self.group.clear();
        self.members = members;
        self.members.clear();
        framed
    }

    /// Compresses `plain` (the objects `members`: id, start, length) into one frame of the
    /// pack, and seals the pack if it is full.
    fn frame(
        &mut self,
        plain: &[u8],
        members: &[(ObjectId, u32, u32)],
        out: &mut Compressed,
    ) -> Result<(), BankError> {
        let frame = self
            .compressor
            .compress(plain)
            .map_err(|e| BankError::Task(format!("zstd failed on {} bytes: {e}", plain.len())))?;
        let length = u32::try_from(frame.len())
            .map_err(|_| BankError::Task("a compressed frame is larger than 4 GiB".into()))?;
        let offset = self.buf.len() as u64;
        for &(id, start, plain_length) in members {
            self.entries.push(pb::IndexEntry {
                id: id.to_bytes(),
                offset,
                length,
                plain_length,
                offset_in_frame: start,
            });
        }
        self.buf.extend_from_slice(&frame);
        out.0 += frame.len() as u64;
        if self.buf.len() >= self.target {
            out.1.extend(self.seal()?);
        }
        Ok(())
    }

    /// Ends the pack with its trailer (what it holds) and names it by its hash.
    fn seal(&mut self) -> Result<Option<SealedPack>, BankError> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        let mut data =
            std::mem::replace(&mut self.buf, Vec::with_capacity(self.target + (256 << 10)));
        data.extend_from_slice(&format::pack_trailer(&self.entries)?);
        let name = ObjectId::of(&data).to_hex();
        let entry = pb::IndexPack {
            pack: name.clone(),
            size: data.len() as u64,
            entries: std::mem::take(&mut self.entries),
        };
        Ok(Some(SealedPack {
            name,
            data: Bytes::from(data),
            entry,
        }))
    }
}

impl Bank {
    /// The pack size target of new packs.
    pub(super) fn pack_target(&self) -> usize {
        usize::try_from(self.config.pack_target_bytes.max(64 << 10)).unwrap_or(4 << 20)
    }

    /// Writes `objects` into new packs (outside any checkpoint: `bank repair` salvaging
    /// what a damaged pack still holds) and returns the index entries of those packs. The
    /// caller holds the exclusive lock and writes the index.
    pub(in crate::bank) async fn write_packs(
        &self,
        objects: Vec<(ObjectId, Bytes)>,
        lock: &LockGuard,
    ) -> Result<Vec<pb::IndexPack>, BankError> {
        // Packs are written in this podbank's format: an older one must refuse the bank.
        self.upgrade_format().await?;
        let mut state = PackState::new(self.pack_target())?;
        let (_, mut sealed) = state.compress(objects)?;
        sealed.extend(state.finish()?.1);
        let mut out = Vec::with_capacity(sealed.len());
        for pack in sealed {
            lock.ensure_held()?;
            self.backend.put(Kind::Pack, &pack.name, pack.data).await?;
            out.push(pack.entry);
        }
        Ok(out)
    }
}
