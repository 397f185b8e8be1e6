//! Objects in the bank: the index (loaded from every index file, damaged ones named and
//! left out), reading one object out of its pack, and checking that it is what its id
//! names.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use super::backend::{self, Kind};
use super::format::{self, pb, FormatError};
use super::{
    is_sealing_error, Bank, BankError, BankFile, DamagedFile, Index, LoadedIndex, ObjectId,
};

/// Why an object's bytes cannot be had: the frame does not open, or what it holds is not
/// the object its id names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ObjectError {
    /// The frame or the object's place in it is damaged.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The bytes hash to another id.
    #[error("content hash mismatch (content hashes to {})", .actual.short())]
    HashMismatch {
        /// What they hash to.
        actual: ObjectId,
    },
    /// The index places the object past the end of its pack.
    #[error("past the end of the pack ({pack_length} bytes)")]
    PastPackEnd {
        /// The pack's length.
        pack_length: usize,
    },
    /// No frame was read for the object.
    #[error("no frame")]
    NoFrame,
}

impl Bank {
    /// The current index.
    pub async fn index(&self) -> Arc<Index> {
        self.index.read().await.index.clone()
    }

    /// The index files that could not be read at the last load: their objects are missing
    /// from [`Bank::index`] until `bank repair` rebuilds them from the packs.
    pub async fn damaged_index_files(&self) -> Arc<Vec<DamagedFile>> {
        self.index.read().await.damaged.clone()
    }

    /// Reloads every index file from the backend. An index file that cannot be read is
    /// left out with a warning naming it (and kept in [`Bank::damaged_index_files`]): reads
    /// and writes go on (a writer stores again what it names), while gc refuses to run
    /// until `bank repair` has rebuilt it.
    pub async fn reload_index(&self) -> Result<(), BankError> {
        let names = self.backend.list(Kind::Index).await?;
        let backend = self.backend.clone();
        let files = futures::stream::iter(names)
            .map(|info| {
                let backend = backend.clone();
                async move {
                    let data = backend.get(Kind::Index, &info.name).await;
                    (info.name, data)
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        let mut decoded = Vec::with_capacity(files.len());
        let mut damaged = Vec::new();
        for (name, data) in files {
            let reason = match data {
                Ok(data) => match format::decode::<pb::IndexFile>(&data) {
                    Ok(file) => {
                        decoded.push((name, file));
                        continue;
                    }
                    Err(e) => e.to_string(),
                },
                Err(backend::BackendError::NotFound { .. }) => continue, // removed by gc meanwhile
                Err(e @ backend::BackendError::Io { .. }) if is_sealing_error(&e) => e.to_string(),
                Err(e) => return Err(e.into()),
            };
            let file = DamagedFile {
                file: BankFile::new(Kind::Index, name),
                reason,
            };
            tracing::warn!(
                "bank {}: {file}; its objects are left out (`podbank bank repair` rebuilds it from the packs)",
                self.location()
            );
            damaged.push(file);
        }
        damaged.sort_by(|a, b| a.file.cmp(&b.file));
        // Of an object stored twice (two writers at once each packed it), the copy in the
        // pack added first is the one the index gives: add the files in name order, not
        // in the order their reads happened to finish, so that every load of the same
        // files (verify's, gc's, repair's) picks the same copy.
        decoded.sort_by(|a, b| a.0.cmp(&b.0));
        // Every index file counts (formats 1 and 2 wrote `supersedes`; see bank.proto).
        let mut index = Index::default();
        for problem in index.add_files(decoded.iter().map(|(name, file)| (name.as_str(), file))) {
            tracing::warn!("{problem}");
        }
        drop(decoded);
        *self.index.write().await = LoadedIndex {
            index: Arc::new(index),
            damaged: Arc::new(damaged),
        };
        Ok(())
    }

    /// Adds a just-written index file to the in-memory index: in place, unless a reader
    /// still holds the current one (then it keeps its copy and the bank gets a new one).
    pub(super) async fn merge_index(&self, name: &str, file: &pb::IndexFile) {
        let mut guard = self.index.write().await;
        Arc::make_mut(&mut guard.index).add_file(name, file);
    }

    /// Reads one object: fetches its frame, decompresses it and checks its hash.
    ///
    /// # Arguments
    /// * `id` - the object.
    /// * `needed_by` - what needs it (a checkpoint id), for the error message.
    pub async fn read_object(
        &self,
        id: &ObjectId,
        needed_by: impl std::fmt::Display,
    ) -> Result<Bytes, BankError> {
        let location = self
            .index()
            .await
            .get(id)
            .ok_or_else(|| BankError::ObjectMissing {
                location: self.location(),
                id: id.to_hex(),
                needed_by: needed_by.to_string(),
            })?;
        let frame = self
            .backend
            .get_range(
                Kind::Pack,
                &location.pack,
                location.offset,
                u64::from(location.length),
            )
            .await
            .map_err(|e| self.unreadable(id, &location.pack, &needed_by, &e))?;
        format::open_frame(&frame, location.offset_in_frame, location.plain_length)
            .map_err(ObjectError::from)
            .and_then(|object| checked(id, object))
            .map_err(|reason| self.damaged(id, &location.pack, &needed_by, &reason))
    }

    /// The error of an object whose frame could not be fetched from `pack`: the pack is
    /// missing, or the read failed. One wording for [`Bank::read_object`] and
    /// [`Bank::read_objects`].
    pub(crate) fn unreadable(
        &self,
        id: &ObjectId,
        pack: &str,
        needed_by: &dyn std::fmt::Display,
        e: &backend::BackendError,
    ) -> BankError {
        let reason = match e {
            backend::BackendError::NotFound { .. } => format!("its pack data/{pack} is missing"),
            other => format!("cannot read it from pack data/{pack}: {other}"),
        };
        BankError::Corrupt {
            location: self.location(),
            subject: format!("object {id} (needed by {needed_by})"),
            reason,
        }
    }

    /// The error of an object whose frame was fetched from `pack` but does not give it.
    pub(crate) fn damaged(
        &self,
        id: &ObjectId,
        pack: &str,
        needed_by: &dyn std::fmt::Display,
        reason: &ObjectError,
    ) -> BankError {
        BankError::Corrupt {
            location: self.location(),
            subject: format!("object {id} in pack data/{pack} (needed by {needed_by})"),
            reason: reason.to_string(),
        }
    }
}

/// Checks that `object` is the object `id` names.
pub(crate) fn checked(id: &ObjectId, object: Bytes) -> Result<Bytes, ObjectError> {
    let actual = ObjectId::of(&object);
    if &actual != id {
        return Err(ObjectError::HashMismatch { actual });
    }
    Ok(object)
}
