//! Rendering of command results: `-o table` (default), `json` or `yaml`.

use std::io::Write;

use serde::Serialize;

/// The `-o/--output` choice shared by every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON, one document.
    Json,
    /// YAML, one document.
    Yaml,
}

/// A result that can be shown as a table as well as serialized.
pub trait Tabular {
    /// Column headers.
    fn headers(&self) -> Vec<&'static str>;
    /// One row of cells per item, in header order.
    fn rows(&self) -> Vec<Vec<String>>;
    /// Further tables printed after the first, each after a blank line and with its own
    /// headers (none by default).
    fn more_tables(&self) -> Vec<(Vec<&'static str>, Vec<Vec<String>>)> {
        Vec::new()
    }
}

/// Print `value` in the chosen format to stdout.
pub fn print<T: Serialize + Tabular>(format: OutputFormat, value: &T) -> anyhow::Result<()> {
    // Buffered: stdout is line-buffered, and a pretty JSON of 100 000 pods is millions of
    // lines (one write syscall each without this).
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, value)?;
            writeln!(out)?;
        }
        OutputFormat::Yaml => serde_yaml::to_writer(&mut out, value)?,
        OutputFormat::Table => {
            write_table(&mut out, &value.headers(), &value.rows())?;
            for (headers, rows) in value.more_tables() {
                writeln!(out)?;
                write_table(&mut out, &headers, &rows)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Write rows as space-aligned columns, kubectl style.
pub fn write_table(
    out: &mut impl Write,
    headers: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let pad = widths[i] + 3 - c.chars().count();
                s.push_str(c);
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
