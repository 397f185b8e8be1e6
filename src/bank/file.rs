//! The name of one file of the bank, as messages and reports give it: `<folder>/<name>`
//! (`config`, `index/3fa2…`, `data/91bc…`, `checkpoints/<id>`, …), so that an operator can
//! find it in the bank's directory or bucket.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::backend::Kind;

/// One file of the bank.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BankFile {
    /// Its kind (folder).
    pub kind: Kind,
    /// Its name in that folder.
    pub name: String,
}

impl BankFile {
    /// The file `name` of `kind`.
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl BankFile {
    /// What the file is, in words: `manifest of checkpoint X`, `index file Y`, `pack Z`.
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::Config => "the bank's config".to_string(),
            Kind::Pack => format!("pack {}", self.name),
            Kind::Index => format!("index file {}", self.name),
            Kind::Checkpoint => format!("manifest of checkpoint {}", self.name),
            Kind::Restore => format!("restore record {}", self.name),
            Kind::Journal => format!("restore journal batch {}", self.name),
            Kind::Plan => format!("plan {}", self.name),
            Kind::Trigger => format!("trigger {}", self.name),
            Kind::ScheduledOperation => format!("scheduled operation {}", self.name),
            Kind::OperationLog => format!("operation log {}", self.name),
            Kind::Verification => format!("verification {}", self.name),
            Kind::Lock => format!("lock {}", self.name),
            Kind::Quarantine => format!("quarantined file {}", self.name),
        }
    }
}

impl fmt::Display for BankFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind.folder() {
            "" => f.write_str(&self.name),
            folder => write!(f, "{folder}/{}", self.name),
        }
    }
}

impl Serialize for BankFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BankFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let (kind, name) = match text.split_once('/') {
            Some((folder, name)) => (
                Kind::ALL
                    .into_iter()
                    .find(|k| k.folder() == folder)
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!("no bank folder {folder:?}"))
                    })?,
                name.to_string(),
            ),
            None => (Kind::Config, text),
        };
        Ok(Self { kind, name })
    }
}

/// A file the bank found but cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DamagedFile {
    /// The file.
    pub file: BankFile,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for DamagedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.reason)
    }
}
