//! How the CLI shows protect's and restore's progress: bars on a terminal (indicatif:
//! done / total, rate, ETA), a plain line every few seconds when stderr is not a terminal,
//! nothing when the output is JSON or YAML (stdout is for the document, stderr stays quiet).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::output::OutputFormat;
use crate::protection::{Progress, SharedProgress, Stage};

/// The progress display for `output`.
pub fn for_output(output: OutputFormat) -> SharedProgress {
    match output {
        OutputFormat::Table if std::io::stderr().is_terminal() => Arc::new(Bars::default()),
        OutputFormat::Table => Arc::new(Lines::default()),
        _ => crate::protection::progress::silent(),
    }
}

/// indicatif bars, one per stage, on stderr.
#[derive(Debug)]
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Stage, ProgressBar>>,
}

impl Default for Bars {
    fn default() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::default(),
        }
    }
}

impl Bars {
    fn bar(&self, stage: Stage) -> Option<ProgressBar> {
        self.bars.lock().ok()?.get(&stage).cloned()
    }
}

impl Progress for Bars {
    fn start(&self, stage: Stage, total: Option<u64>) {
        if total == Some(0) {
            return;
        }
        let (bar, template) = match total {
            Some(n) => (
                ProgressBar::new(n),
                "{prefix:>16} [{bar:30}] {pos}/{len} {rate} ETA {eta}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{prefix:>16} {spinner} {pos} {rate} {elapsed}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(
                style
                    .with_key(
                        "rate",
                        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.0}/s", state.per_sec());
                        },
                    )
                    .progress_chars("=> "),
            );
        }
        bar.set_prefix(stage.name());
        bar.enable_steady_tick(Duration::from_millis(200));
        let bar = self.multi.add(bar);
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(stage, bar);
        }
    }

    fn advance(&self, stage: Stage, n: u64) {
        if let Some(bar) = self.bar(stage) {
            bar.inc(n);
        }
    }

    fn finish(&self, stage: Stage) {
        if let Some(bar) = self.bars.lock().ok().and_then(|mut b| b.remove(&stage)) {
            bar.finish_and_clear();
        }
    }
}

/// Plain lines on stderr, at most one per stage every [`LINE_EVERY`], and one at the end.
#[derive(Debug, Default)]
struct Lines {
    stages: Mutex<HashMap<Stage, Counted>>,
}

#[derive(Debug)]
struct Counted {
    total: Option<u64>,
    done: u64,
    started: Instant,
    printed: Instant,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

fn line(stage: Stage, c: &Counted) -> String {
    let seconds = c.started.elapsed().as_secs_f64();
    let rate = if seconds > 0.0 {
        c.done as f64 / seconds
    } else {
        0.0
    };
    match c.total {
        Some(total) => format!(
            "{}: {}/{total} in {seconds:.1} s ({rate:.0}/s)",
            stage.name(),
            c.done
        ),
        None => format!(
            "{}: {} in {seconds:.1} s ({rate:.0}/s)",
            stage.name(),
            c.done
        ),
    }
}

impl Progress for Lines {
    fn start(&self, stage: Stage, total: Option<u64>) {
        if total == Some(0) {
            return;
        }
        let now = Instant::now();
        if let Ok(mut stages) = self.stages.lock() {
            stages.insert(
                stage,
                Counted {
                    total,
                    done: 0,
                    started: now,
                    printed: now,
                },
            );
        }
    }

    fn advance(&self, stage: Stage, n: u64) {
        let Ok(mut stages) = self.stages.lock() else {
            return;
        };
        if let Some(c) = stages.get_mut(&stage) {
            c.done += n;
            if c.printed.elapsed() >= LINE_EVERY {
                c.printed = Instant::now();
                eprintln!("{}", line(stage, c));
            }
        }
    }

    fn finish(&self, stage: Stage) {
        let removed = self.stages.lock().ok().and_then(|mut s| s.remove(&stage));
        if let Some(c) = removed {
            eprintln!("{}", line(stage, &c));
        }
    }
}
