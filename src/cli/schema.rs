//! `podbank schema protect|restore`: print the JSON Schema parameters are validated with.

use crate::protection::schema::{protect_schema, restore_schema};

/// Which schema.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Which {
    /// OPTIONS_SCHEMA of protect: backup_name, description, ...
    Protect,
    /// RESTORE_SCHEMA of restore: restore_name, restore_description.
    Restore,
}

/// Print the schema (always JSON: it is a JSON Schema).
pub fn run(which: Which) -> anyhow::Result<()> {
    let schema = match which {
        Which::Protect => protect_schema(),
        Which::Restore => restore_schema(),
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &schema)?;
    writeln!(out)?;
    Ok(())
}
