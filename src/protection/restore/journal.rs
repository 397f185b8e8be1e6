//! Where a restore's record is kept: the [`RestoreJournal`] trait, the bank
//! ([`BankJournal`]: the record whole, then journal batches appended to it, compacted at
//! the end) and none ([`NoJournal`]: a dry run or an export keeps no record). Where the
//! objects go is the [`super::target`]'s business, not the journal's.
//!
//! Contract, relied upon by the restore and its executor:
//! * `save` persists the record whole (and drops the journal batches it holds);
//! * `append` adds a batch (the outcomes since the last one) to the record's journal;
//! * `resume` finds an earlier, unfinished run of the same request (by its fingerprint),
//!   to carry on from.

use async_trait::async_trait;

use super::error::RestoreError;
use crate::bank::Bank;
use crate::model::{JournalBatch, RestoreId, RestoreRecord, RestoreStatus};

/// Where a restore's record is kept. See the module doc for the contract.
#[async_trait]
pub trait RestoreJournal: Send + Sync {
    /// Persists the restore record whole (and drops the journal batches it holds).
    async fn save(&self, record: &RestoreRecord) -> Result<(), RestoreError>;

    /// Appends a batch to the restore's journal.
    async fn append(&self, restore: &RestoreId, batch: &JournalBatch) -> Result<(), RestoreError>;

    /// An earlier run of the same request that did not succeed, to resume.
    async fn resume(&self, fingerprint: &str) -> Result<Option<RestoreRecord>, RestoreError>;
}

/// The record kept in the bank.
pub struct BankJournal<'a> {
    /// The bank the record is kept in.
    pub bank: &'a Bank,
}

#[async_trait]
impl RestoreJournal for BankJournal<'_> {
    async fn save(&self, record: &RestoreRecord) -> Result<(), RestoreError> {
        Ok(self.bank.put_restore(record).await?)
    }

    async fn append(&self, restore: &RestoreId, batch: &JournalBatch) -> Result<(), RestoreError> {
        Ok(self.bank.append_restore(restore, batch).await?)
    }

    /// The latest run with the same fingerprint that did not succeed.
    async fn resume(&self, fingerprint: &str) -> Result<Option<RestoreRecord>, RestoreError> {
        Ok(self
            .bank
            .restores()
            .await?
            .into_iter()
            .rev()
            .find(|r| r.parameters_json == fingerprint && r.status != RestoreStatus::Success))
    }
}

/// No record is kept (a dry run, an export): every write is dropped, and there is never
/// anything to resume.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJournal;

#[async_trait]
impl RestoreJournal for NoJournal {
    async fn save(&self, record: &RestoreRecord) -> Result<(), RestoreError> {
        let _ = record;
        Ok(())
    }

    async fn append(&self, restore: &RestoreId, batch: &JournalBatch) -> Result<(), RestoreError> {
        let _ = (restore, batch);
        Ok(())
    }

    async fn resume(&self, fingerprint: &str) -> Result<Option<RestoreRecord>, RestoreError> {
        let _ = fingerprint;
        Ok(None)
    }
}
