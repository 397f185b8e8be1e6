//! Reading many objects at once: grouped by pack and by frame, each pack's needed frames
//! fetched in as few ranged reads as the layout allows, each frame decompressed once.
//!
//! On an object store every request is a round trip; [`Bank::read_object`] makes one per
//! object, and a frame shared by ~40 small objects is fetched and decompressed 40 times.
//! [`Bank::read_objects`] makes about one request per pack touched.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

use super::backend::{BackendError, Kind};
use super::format;
use super::index::Location;
use super::objects::{checked, ObjectError};
use super::{Bank, BankError, ObjectId};

/// Packs read at once by one [`Bank::read_objects`].
pub const PACKS_AT_ONCE: usize = 4;

/// Frames of a pack less than this far apart are fetched in one ranged read: the bytes
/// between cost less than another round trip.
pub const MERGE_GAP: u64 = 64 << 10;

/// One frame of a pack and the wanted objects in it.
#[derive(Debug)]
struct Frame {
    offset: u64,
    length: u32,
    /// (id, offset in frame, plain length)
    objects: Vec<(ObjectId, u32, u32)>,
}

/// One ranged read of a pack: `offset..end`, covering `frames`.
#[derive(Debug)]
struct Span {
    offset: u64,
    end: u64,
    frames: Vec<Frame>,
}

/// What one [`Bank::read_objects`] gives per object.
pub type ObjectRead = (ObjectId, Result<Bytes, BankError>);

impl Bank {
    /// Reads many objects: every id once (duplicates are read once), in no particular
    /// order, each with its bytes (checked against its id) or the error
    /// [`Bank::read_object`] would have given for it (missing object, missing pack,
    /// damaged frame naming the object and the pack).
    ///
    /// The objects are grouped by pack and by frame; a pack's needed frames are fetched in
    /// one ranged read each run of frames less than [`MERGE_GAP`] apart (one read of the
    /// whole needed span when at least half the pack is needed), and each frame is
    /// decompressed once.
    ///
    /// Bounds: [`PACKS_AT_ONCE`] packs are read at once. A pack being read holds its
    /// fetched ranges (at most the pack, a few MiB) until it is done, one decompressed
    /// frame at a time (at most [`format::FRAME_TARGET`] for shared frames, or one large
    /// object), and copies of its wanted objects; a frame is dropped as soon as its objects
    /// are copied out. So memory is at most about `PACKS_AT_ONCE + 1` × (pack size + the
    /// plain bytes of the objects wanted from one pack), plus what the caller keeps of the
    /// stream.
    ///
    /// # Arguments
    /// * `ids` - the objects.
    /// * `needed_by` - what needs them (a checkpoint id), for the error messages.
    pub async fn read_objects(
        &self,
        ids: impl IntoIterator<Item = ObjectId>,
        needed_by: impl std::fmt::Display,
    ) -> BoxStream<'_, ObjectRead> {
        let needed_by = needed_by.to_string();
        let index = self.index().await;
        let mut missing = Vec::new();
        // pack -> frame offset -> frame
        let mut packs: BTreeMap<Arc<str>, BTreeMap<u64, Frame>> = BTreeMap::new();
        let mut seen = HashSet::new();
        for id in ids {
            if !seen.insert(id) {
                continue;
            }
            let Some(Location {
                pack,
                offset,
                length,
                plain_length,
                offset_in_frame,
            }) = index.get(&id)
            else {
                missing.push((
                    id,
                    Err(BankError::ObjectMissing {
                        location: self.location(),
                        id: id.to_hex(),
                        needed_by: needed_by.clone(),
                    }),
                ));
                continue;
            };
            packs
                .entry(pack)
                .or_default()
                .entry(offset)
                .or_insert_with(|| Frame {
                    offset,
                    length,
                    objects: Vec::new(),
                })
                .objects
                .push((id, offset_in_frame, plain_length));
        }
        drop(seen);
        let sized: Vec<(Arc<str>, u64, Vec<Span>)> = packs
            .into_iter()
            .map(|(pack, frames)| {
                let size = index.pack(&pack).map_or(0, |p| p.size);
                let spans = spans(frames.into_values(), size);
                (pack, size, spans)
            })
            .collect();
        drop(index);
        let needed_by = Arc::new(needed_by);
        let reads = stream::iter(sized)
            .map(move |(pack, _, spans)| {
                let needed_by = needed_by.clone();
                async move { self.read_pack(&pack, spans, &needed_by).await }
            })
            .buffer_unordered(PACKS_AT_ONCE)
            .flat_map(stream::iter);
        stream::iter(missing).chain(reads).boxed()
    }

    /// The objects of `ids` that [`Bank::read_objects`] read whole and sound, by id. What
    /// is missing from the answer failed: [`Bank::read_object`] of it says why (the caller
    /// reads it again that way, so that its error is exactly the one-object one).
    pub(crate) async fn read_found(
        &self,
        ids: impl IntoIterator<Item = ObjectId>,
        needed_by: impl std::fmt::Display,
    ) -> HashMap<ObjectId, Bytes> {
        self.read_objects(ids, needed_by)
            .await
            .filter_map(|(id, read)| async move { read.ok().map(|bytes| (id, bytes)) })
            .collect()
            .await
    }

    /// Reads the wanted objects of one pack, span by span. A span that does not come back
    /// whole (the pack is shorter than the index says, or the read failed) is read again
    /// frame by frame, as [`Bank::read_object`] would read each: a pack truncated after
    /// some frames, or one bad frame, costs only the objects that reading alone would lose.
    async fn read_pack(&self, pack: &str, spans: Vec<Span>, needed_by: &str) -> Vec<ObjectRead> {
        let mut out = Vec::new();
        for span in spans {
            let length = span.end - span.offset;
            let fetched = self
                .backend
                .get_range(Kind::Pack, pack, span.offset, length)
                .await;
            match fetched {
                Ok(data) if data.len() as u64 == length => {
                    for frame in span.frames {
                        self.open_frame(pack, &data, span.offset, frame, needed_by, &mut out);
                    }
                }
                // One frame: reading it again alone would ask the same range.
                Err(e) if span.frames.len() == 1 || matches!(e, BackendError::NotFound { .. }) => {
                    for frame in span.frames {
                        for (id, _, _) in frame.objects {
                            out.push((id, Err(self.unreadable(&id, pack, &needed_by, &e))));
                        }
                    }
                }
                _ => {
                    for frame in span.frames {
                        self.read_frame(pack, frame, needed_by, &mut out).await;
                    }
                }
            }
        }
        out
    }

    /// Reads one frame alone (one ranged read of exactly its bytes) and hands out its
    /// objects into `out`.
    async fn read_frame(
        &self,
        pack: &str,
        frame: Frame,
        needed_by: &str,
        out: &mut Vec<ObjectRead>,
    ) {
        let fetched = self
            .backend
            .get_range(Kind::Pack, pack, frame.offset, u64::from(frame.length))
            .await;
        match fetched {
            Ok(data) => self.open_frame(pack, &data, frame.offset, frame, needed_by, out),
            Err(e) => {
                for (id, _, _) in frame.objects {
                    out.push((id, Err(self.unreadable(&id, pack, &needed_by, &e))));
                }
            }
        }
    }

    /// Decompresses one frame out of `data` (the pack's bytes from `base`) and hands out
    /// its objects into `out`; the frame is dropped on return. An object that does not
    /// come out of the shared decompression is opened again alone from the frame's bytes,
    /// exactly as [`Bank::read_object`] opens it, so that its result is that one.
    fn open_frame(
        &self,
        pack: &str,
        data: &Bytes,
        base: u64,
        frame: Frame,
        needed_by: &str,
        out: &mut Vec<ObjectRead>,
    ) {
        let start = usize::try_from(frame.offset - base).unwrap_or(usize::MAX);
        let end = start.saturating_add(frame.length as usize);
        let bytes = data.get(start..end);
        let at_least = frame
            .objects
            .iter()
            .map(|(_, at, len)| (*at as usize).saturating_add(*len as usize))
            .max()
            .unwrap_or(0);
        let plain = bytes.map(|bytes| format::decompress_frame(bytes, at_least));
        for (id, at, len) in frame.objects {
            let shared = match &plain {
                Some(Ok(plain)) => format::object_in_frame(plain, at, len)
                    .map_err(ObjectError::from)
                    .and_then(|object| {
                        // A copy, unless it is the whole frame: a slice would keep the frame.
                        let object = if object.len() == plain.len() {
                            object
                        } else {
                            Bytes::copy_from_slice(&object)
                        };
                        checked(&id, object)
                    }),
                _ => Err(ObjectError::NoFrame),
            };
            let object = match (shared, bytes) {
                (Ok(object), _) => Ok(object),
                (Err(_), Some(bytes)) => format::open_frame(bytes, at, len)
                    .map_err(ObjectError::from)
                    .and_then(|object| checked(&id, object)),
                (Err(_), None) => Err(ObjectError::PastPackEnd {
                    pack_length: usize::try_from(base)
                        .unwrap_or(usize::MAX)
                        .saturating_add(data.len()),
                }),
            };
            out.push((
                id,
                object.map_err(|reason| self.damaged(&id, pack, &needed_by, &reason)),
            ));
        }
    }
}

/// The ranged reads that fetch `frames` (in offset order) of a pack of `pack_size` bytes:
/// one for all of them when they make up at least half the pack, otherwise one per run of
/// frames less than [`MERGE_GAP`] apart.
fn spans(frames: impl IntoIterator<Item = Frame>, pack_size: u64) -> Vec<Span> {
    let frames: Vec<Frame> = frames.into_iter().collect();
    let needed: u64 = frames.iter().map(|f| u64::from(f.length)).sum();
    let whole = pack_size > 0 && needed.saturating_mul(2) >= pack_size;
    let mut spans: Vec<Span> = Vec::new();
    for frame in frames {
        let end = frame.offset + u64::from(frame.length);
        match spans.last_mut() {
            Some(span) if whole || frame.offset <= span.end.saturating_add(MERGE_GAP) => {
                span.end = span.end.max(end);
                span.frames.push(frame);
            }
            _ => spans.push(Span {
                offset: frame.offset,
                end,
                frames: vec![frame],
            }),
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(offset: u64, length: u32) -> Frame {
        Frame {
            offset,
            length,
            objects: Vec::new(),
        }
    }

    fn ranges(spans: &[Span]) -> Vec<(u64, u64, usize)> {
        spans
            .iter()
            .map(|s| (s.offset, s.end, s.frames.len()))
            .collect()
    }

    #[test]
    fn near_frames_are_read_together_far_ones_apart() {
        let mb = 1 << 20;
        let frames = vec![
            frame(0, 1000),
            frame(1000, 1000),
            frame(2000 + MERGE_GAP - 1, 10),
            frame(mb, 10),
        ];
        assert_eq!(
            ranges(&spans(frames, 4 * mb)),
            vec![(0, 2000 + MERGE_GAP + 9, 3), (mb, mb + 10, 1)]
        );
    }

    #[test]
    fn half_a_pack_needed_is_one_read() {
        let frames = vec![frame(0, 300_000), frame(900_000, 300_000)];
        assert_eq!(
            ranges(&spans(frames, 1_000_000 + 200_000)),
            vec![(0, 1_200_000, 2)]
        );
    }
}
