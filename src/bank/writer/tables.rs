//! Records kept outside the manifest, in table objects: resource records and the volume
//! records of pod volumes with no Cinder volume, grouped into tables at key-defined
//! boundaries so that a changed record rewrites only its own table.

use std::borrow::Cow;

use bytes::Bytes;
use prost::Message;

use crate::bank::format::pb;
use crate::bank::{ObjectId, RESOURCES_PER_TABLE};

/// Whether a table ends after the record with this key: key-defined boundaries (see
/// `ResourceTable` in `proto/bank.proto`), so that a changed record rewrites only its own
/// table, and at most [`RESOURCES_PER_TABLE`] records per table.
fn ends_table(key: &[u8], len: usize) -> bool {
    ObjectId::of(key).as_bytes()[31] & 7 == 0 || len >= RESOURCES_PER_TABLE
}

/// A record kept in table objects outside the manifest.
pub(super) trait TableRecord: Sized {
    /// The key its table boundaries depend on.
    fn table_key(&self) -> Cow<'_, [u8]>;
    /// One table of these records, encoded.
    fn encode_table(records: Vec<Self>) -> Bytes;
}

impl TableRecord for pb::Resource {
    fn table_key(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.key.as_bytes())
    }
    fn encode_table(resources: Vec<Self>) -> Bytes {
        Bytes::from(pb::ResourceTable { resources }.encode_to_vec())
    }
}

impl TableRecord for pb::Volume {
    fn table_key(&self) -> Cow<'_, [u8]> {
        let pod = self.pods.first().map(String::as_str).unwrap_or_default();
        Cow::Owned(format!("{pod}/{}", self.pod_volume).into_bytes())
    }
    fn encode_table(volumes: Vec<Self>) -> Bytes {
        Bytes::from(pb::VolumeTable { volumes }.encode_to_vec())
    }
}

/// Records grouped into tables as they come; a full table waits to be stored with the
/// next objects (or at commit).
#[derive(Debug)]
pub(super) struct Tables<T> {
    /// The table being filled.
    filling: Vec<T>,
    /// Full tables, encoded, not stored yet.
    pub(super) ready: Vec<Bytes>,
    /// Ids of the tables stored, in order.
    pub(super) ids: Vec<ObjectId>,
    /// Records in all of them.
    pub(super) count: u64,
}

impl<T: TableRecord> Tables<T> {
    pub(super) fn new() -> Self {
        Self {
            filling: Vec::new(),
            ready: Vec::new(),
            ids: Vec::new(),
            count: 0,
        }
    }

    pub(super) fn push(&mut self, record: T) {
        self.count += 1;
        let end = ends_table(&record.table_key(), self.filling.len() + 1);
        self.filling.push(record);
        if end {
            self.close();
        }
    }

    /// Ends the table being filled (at commit).
    pub(super) fn close(&mut self) {
        if !self.filling.is_empty() {
            self.ready
                .push(T::encode_table(std::mem::take(&mut self.filling)));
        }
    }

    pub(super) fn clear(&mut self) {
        *self = Self::new();
    }
}
