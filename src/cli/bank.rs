//! `podbank bank gc | repair | stats | init | keygen`, and the bank flags every bank command
//! shares.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use super::output::{print, Tabular};
use super::Context;
use crate::bank::{self, Bank, BankKey, OpenOptions};
use crate::engine::{from_bank, Engine, EngineError};

/// Where the bank is; flags override `PODBANK_*` variables, which override the config
/// file's `bank:` section.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BankArgs {
    /// The bank: a directory, file://, s3://bucket/prefix or swift://container/prefix
    /// [default: /var/lib/podbank/bank].
    #[arg(long, env = "PODBANK_BANK", global = true)]
    pub bank: Option<String>,
    /// Key file of an encrypted bank (32 raw bytes, 64 hex digits or base64).
    #[arg(long, env = "PODBANK_BANK_KEY_FILE", global = true)]
    pub bank_key_file: Option<PathBuf>,
}

/// The config file's `bank:` section.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBank {
    url: Option<String>,
    key_file: Option<PathBuf>,
    #[serde(default)]
    secrets_in_plain_bank: bool,
}

/// Default bank location.
pub const DEFAULT_BANK: &str = "/var/lib/podbank/bank";

impl BankArgs {
    /// The bank's settings, flags over the config file's `bank:` section (`section`), and
    /// whether that section lets protect store Secrets in a plain bank
    /// (`bank.secrets_in_plain_bank: true`).
    pub fn resolve(&self, section: &serde_yaml::Value) -> anyhow::Result<(BankSettings, bool)> {
        let file: FileBank = if section.is_null() {
            FileBank::default()
        } else {
            serde_yaml::from_value(section.clone()).context(
                "config file: invalid `bank` section (keys: url, key_file, secrets_in_plain_bank)",
            )?
        };
        let location = self
            .bank
            .clone()
            .or(file.url)
            .unwrap_or_else(|| DEFAULT_BANK.to_string());
        let settings = BankSettings {
            location,
            key_file: self.bank_key_file.clone().or(file.key_file),
        };
        Ok((settings, file.secrets_in_plain_bank))
    }
}

/// Where the bank is, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankSettings {
    /// A directory, file://, s3://bucket/prefix or swift://container/prefix.
    pub location: String,
    /// Key file of an encrypted bank.
    pub key_file: Option<PathBuf>,
}

impl BankSettings {
    /// How to open the bank (nothing is opened yet; the key file is read); `create` makes
    /// a new one if there is none (protect does).
    pub fn opener(&self, create: bool) -> Result<BankOpener, EngineError> {
        let key = self
            .key_file
            .as_deref()
            .map(BankKey::from_file)
            .transpose()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        Ok(BankOpener {
            location: self.location.clone(),
            key,
            create,
        })
    }

    /// Opens the bank now.
    pub async fn open(&self, create: bool) -> Result<Arc<Bank>, EngineError> {
        self.opener(create)?.open().await
    }
}

/// Where the bank is and how to open it.
#[derive(Debug, Clone)]
pub struct BankOpener {
    location: String,
    key: Option<BankKey>,
    create: bool,
}

impl BankOpener {
    /// Opens (or creates) the bank.
    pub async fn open(&self) -> Result<Arc<Bank>, EngineError> {
        let backend =
            bank::backend::open(&self.location).map_err(|e| EngineError::Invalid(e.to_string()))?;
        Bank::open(
            backend,
            OpenOptions {
                key: self.key.clone(),
                create: self.create,
                pack_target_bytes: None,
            },
        )
        .await
        .map_err(|e| match e {
            e @ (bank::BankError::Key { .. } | bank::BankError::BadConfig { .. }) => {
                EngineError::Invalid(e.to_string())
            }
            other => from_bank(other),
        })
    }
}

/// The bank subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BankCommand {
    /// Remove data no checkpoint needs (waits for checkpoints being written).
    Gc {
        /// How long to wait for checkpoints being written, in seconds.
        #[arg(long, default_value_t = 300)]
        wait: u64,
    },
    /// After damage: move what cannot be read into quarantine/, rebuild the index from the
    /// packs, save what damaged packs still hold, and mark checkpoints that lost data as
    /// error (waits for checkpoints being written).
    Repair {
        /// How long to wait for checkpoints being written, in seconds.
        #[arg(long, default_value_t = 300)]
        wait: u64,
    },
    /// Objects, packs, stored and logical bytes, dedup ratio.
    Stats,
    /// Create an empty bank (protect also creates one on first use).
    Init,
    /// Write a new random bank key to a file (mode 0600); use it with --bank-key-file.
    Keygen {
        /// The key file to create (refuses to overwrite).
        path: PathBuf,
    },
}

#[derive(Serialize)]
struct GcOut(bank::GcReport);

impl Tabular for GcOut {
    fn headers(&self) -> Vec<&'static str> {
        vec![
            "CHECKPOINTS",
            "OBJECTS KEPT",
            "PACKS REMOVED",
            "BYTES REMOVED",
            "STALE LOCKS",
            "LEFTOVERS",
            "RECOVERED",
            "SNAPSHOTS DELETED",
        ]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        let r = &self.0;
        vec![vec![
            r.checkpoints.to_string(),
            r.referenced_objects.to_string(),
            r.packs_removed.to_string(),
            r.bytes_removed.to_string(),
            r.stale_locks_removed.to_string(),
            r.leftovers_removed.to_string(),
            r.checkpoints_recovered.join(","),
            r.snapshots_deleted.join(","),
        ]]
    }
}

#[derive(Serialize)]
struct RepairOut(bank::RepairReport);

impl Tabular for RepairOut {
    fn headers(&self) -> Vec<&'static str> {
        vec!["ACTION", "FILE", "DETAIL"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        let r = &self.0;
        let mut rows: Vec<Vec<String>> = r
            .quarantined
            .iter()
            .map(|q| {
                vec![
                    format!("moved to {}", q.moved_to),
                    q.file.to_string(),
                    q.reason.clone(),
                ]
            })
            .collect();
        if r.packs_reindexed > 0 {
            rows.push(vec![
                "reindexed".into(),
                format!("{} pack(s)", r.packs_reindexed),
                format!(
                    "{} object(s) indexed again from the packs",
                    r.objects_reindexed
                ),
            ]);
        }
        if r.packs_salvaged > 0 {
            rows.push(vec![
                "salvaged".into(),
                format!("{} damaged pack(s)", r.packs_salvaged),
                format!(
                    "{} object(s) saved into new packs, {} lost",
                    r.objects_salvaged, r.objects_lost
                ),
            ]);
        }
        for id in &r.checkpoints_marked_error {
            rows.push(vec![
                "marked error".into(),
                format!("checkpoints/{id}"),
                "it lost data; restore restores what remains".into(),
            ]);
        }
        if rows.is_empty() {
            rows.push(vec!["nothing to do".into(), String::new(), String::new()]);
        }
        rows
    }
}

#[derive(Serialize)]
struct StatsOut(bank::Stats);

impl Tabular for StatsOut {
    fn headers(&self) -> Vec<&'static str> {
        vec![
            "CHECKPOINTS",
            "OBJECTS",
            "PACKS",
            "BACKED UP",
            "DISTINCT",
            "ON DISK",
            "DEDUP",
            "DEDUP+COMPRESSION",
        ]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        let s = &self.0;
        vec![vec![
            s.checkpoints.to_string(),
            s.objects.to_string(),
            s.packs.to_string(),
            human_bytes(s.logical_bytes),
            human_bytes(s.unique_bytes),
            human_bytes(s.stored_bytes),
            format!("{:.1}x", s.dedup_ratio),
            format!("{:.1}x", s.total_ratio),
        ]]
    }
}

#[derive(Serialize)]
struct Message {
    message: String,
}

impl Tabular for Message {
    fn headers(&self) -> Vec<&'static str> {
        vec!["RESULT"]
    }
    fn rows(&self) -> Vec<Vec<String>> {
        vec![vec![self.message.clone()]]
    }
}

/// `1.5 MiB` style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Runs a bank subcommand.
pub async fn run(
    ctx: &Context,
    settings: &BankSettings,
    engine: &dyn Engine,
    cmd: BankCommand,
) -> anyhow::Result<()> {
    match cmd {
        BankCommand::Gc { wait } => {
            let report = engine.gc(Duration::from_secs(wait)).await?;
            print(ctx.output, &GcOut(report))
        }
        BankCommand::Repair { wait } => {
            let report = engine.repair(Duration::from_secs(wait)).await?;
            print(ctx.output, &RepairOut(report))
        }
        BankCommand::Stats => print(ctx.output, &StatsOut(engine.bank_stats().await?)),
        BankCommand::Init => {
            let bank = settings.open(true).await?;
            print(
                ctx.output,
                &Message {
                    message: format!(
                        "bank {} ready (id {}, {})",
                        bank.location(),
                        bank.config().bank_id,
                        if bank.config().encrypted {
                            "encrypted"
                        } else {
                            "not encrypted"
                        }
                    ),
                },
            )
        }
        BankCommand::Keygen { path } => {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let key = BankKey::generate();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot create key file {}", path.display()))?;
            writeln!(file, "{}", key.to_hex())
                .with_context(|| format!("cannot write key file {}", path.display()))?;
            print(
                ctx.output,
                &Message {
                    message: format!("new bank key written to {}", path.display()),
                },
            )
        }
    }
}
