//! Checking, cleaning and mending the bank: [`Bank::verify`] (`verify.rs`), [`Bank::gc`]
//! (`gc.rs`), [`Bank::repair`] (`repair.rs`) and [`Bank::stats`]; here what they share:
//! the [`Problem`] they report and which checkpoints need which object.

mod gc;
mod repair;
mod verify;

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use gc::GcReport;
pub use repair::RepairReport;
pub use verify::VerifyReport;

use super::backend::Kind;
use super::{Bank, BankError, BankFile, ObjectId};
use crate::model::Checkpoint;

/// One thing wrong in the bank.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// What is damaged, in words: "pack ab12..", "object 3f.. in pack ab12..", "manifest of
    /// checkpoint X".
    pub subject: String,
    /// The file that is damaged or missing, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<BankFile>,
    /// How.
    pub reason: String,
    /// The checkpoints that need it.
    pub checkpoints: Vec<String>,
}

impl Problem {
    /// A problem of one file.
    pub fn file(file: BankFile, reason: impl Into<String>, checkpoints: Vec<String>) -> Self {
        Self {
            subject: file.describe(),
            file: Some(file),
            reason: reason.into(),
            checkpoints,
        }
    }

    /// A problem of something that is not one file (an object, a table).
    pub fn of(
        subject: impl Into<String>,
        reason: impl Into<String>,
        checkpoints: Vec<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            file: None,
            reason: reason.into(),
            checkpoints,
        }
    }
}

/// `bank stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Bank location.
    pub location: String,
    /// Whether the bank is encrypted.
    pub encrypted: bool,
    /// Checkpoints.
    pub checkpoints: usize,
    /// Distinct objects stored.
    pub objects: usize,
    /// Packs.
    pub packs: usize,
    /// ON DISK: bytes of all packs as stored (compressed, sealed).
    pub stored_bytes: u64,
    /// DISTINCT: plain bytes of each distinct object once. Includes the checkpoints' own
    /// record tables and objects of deleted checkpoints not yet collected by `bank gc`, so
    /// on a small or freshly pruned bank it can exceed `logical_bytes`.
    pub unique_bytes: u64,
    /// BACKED UP: plain bytes of the resources of every checkpoint, each counted as often
    /// as it was backed up (what a bank without dedup and compression would hold).
    pub logical_bytes: u64,
    /// DEDUP: logical / unique (below 1.0 while record tables outweigh repeated data).
    pub dedup_ratio: f64,
    /// DEDUP+COMPRESSION: logical / stored, the overall saving.
    pub total_ratio: f64,
}

/// Which checkpoints need each object.
type References = HashMap<ObjectId, Vec<String>>;

/// Whether `name` can be a pack's name (the hex sha256 of its bytes).
fn is_pack_name(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Bank {
    /// Which checkpoints need each object (resource tables included). Checkpoints whose
    /// manifest or tables cannot be read are returned as problems.
    async fn references(&self) -> Result<(References, Vec<Checkpoint>, Vec<Problem>), BankError> {
        let (checkpoints, mut problems) = self.checkpoints().await?;
        let tables = self.read_resource_tables(&checkpoints).await;
        let mut refs = References::new();
        for cp in &checkpoints {
            self.add_references(cp, &tables, &mut refs, &mut problems)
                .await;
        }
        Ok((refs, checkpoints, problems))
    }

    /// The resource tables of `checkpoints` that read whole and sound, by id: read by pack
    /// ([`Bank::read_found`]), each table once however many checkpoints share it. What is
    /// missing from the answer [`Bank::add_references`] reads alone, for its error.
    async fn read_resource_tables<'a>(
        &self,
        checkpoints: impl IntoIterator<Item = &'a Checkpoint>,
    ) -> HashMap<ObjectId, Bytes> {
        let ids: Vec<ObjectId> = checkpoints
            .into_iter()
            .flat_map(|cp| cp.tables.resources.iter().copied())
            .collect();
        self.read_found(ids, "the checkpoints' resource tables")
            .await
    }

    /// Adds what `cp` needs (its resource tables and their objects, its volume tables) to
    /// `refs`. A table that cannot be read is a problem; the other tables are still
    /// followed, so that verify checks every object it can reach.
    ///
    /// # Arguments
    /// * `cp` - the checkpoint.
    /// * `tables` - resource tables already read ([`Bank::read_resource_tables`]); the
    ///   others of `cp` are read one by one.
    /// * `refs`, `problems` - what is added to.
    async fn add_references(
        &self,
        cp: &Checkpoint,
        tables: &HashMap<ObjectId, Bytes>,
        refs: &mut References,
        problems: &mut Vec<Problem>,
    ) {
        let id = cp.id.to_string();
        let mut add = |object: ObjectId| {
            let v = refs.entry(object).or_default();
            if v.last() != Some(&id) {
                v.push(id.clone());
            }
        };
        if cp.tables.malformed > 0 {
            problems.push(Problem::file(
                BankFile::new(Kind::Checkpoint, id.clone()),
                format!("{} table id(s) are not 32 bytes", cp.tables.malformed),
                vec![id.clone()],
            ));
        }
        for table in &cp.tables.volumes {
            add(*table);
        }
        for table in &cp.tables.resources {
            add(*table);
            match self.resource_table(cp, table, tables.get(table)).await {
                Ok(resources) => resources
                    .iter()
                    .filter_map(|r| r.object_id)
                    .for_each(&mut add),
                Err(e) => problems.push(Problem::of(
                    format!("resource list of checkpoint {id}"),
                    e.to_string(),
                    vec![id.clone()],
                )),
            }
        }
    }

    /// Counts of the bank.
    pub async fn stats(&self) -> Result<Stats, BankError> {
        self.reload_index().await?;
        let index = self.index().await;
        let (checkpoints, _) = self.checkpoints().await?;
        let logical: u64 = checkpoints.iter().map(|c| c.stats.bytes_plain).sum();
        let stored: u64 = index.packs().iter().map(|p| p.size).sum();
        let unique = index.plain_bytes();
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Ok(Stats {
            location: self.location(),
            encrypted: self.config.encrypted,
            checkpoints: checkpoints.len(),
            objects: index.len(),
            packs: index.packs().len(),
            stored_bytes: stored,
            unique_bytes: unique,
            logical_bytes: logical,
            dedup_ratio: ratio(logical, unique),
            total_ratio: ratio(logical, stored),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_names_are_lower_case_sha256_hex() {
        assert!(is_pack_name(&ObjectId::of(b"x").to_hex()));
        assert!(!is_pack_name("README"));
        assert!(!is_pack_name(&ObjectId::of(b"x").to_hex().to_uppercase()));
        assert!(!is_pack_name(&ObjectId::of(b"x").to_hex()[1..]));
    }
}
