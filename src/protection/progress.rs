//! What protect and restore report as they go, for a front to show: a [`Progress`] the
//! engine is given, told of each [`Stage`]'s total once it is known and of every item done.
//! The engine never draws anything; the CLI draws bars on a terminal, plain lines elsewhere.

use std::sync::Arc;

/// A part of an operation, counted on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Objects read from etcd and stored (protect); no total is known before the end.
    Objects,
    /// Cinder volumes backed up (protect) or restored (restore).
    Volumes,
    /// Objects created through the API server (restore).
    Creates,
    /// Objects a dry run would create (restore `--dry-run`): written to a folder, not made.
    Planned,
}

impl Stage {
    /// Its name, for people.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Objects => "objects stored",
            Stage::Volumes => "volumes",
            Stage::Creates => "objects created",
            Stage::Planned => "objects planned",
        }
    }
}

/// Where progress goes. Calls are cheap and may come from several tasks at once.
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// `stage` starts, with `total` items when known.
    fn start(&self, stage: Stage, total: Option<u64>);
    /// `n` more items of `stage` are done.
    fn advance(&self, stage: Stage, n: u64);
    /// `stage` is over.
    fn finish(&self, stage: Stage);
}

/// Progress nobody watches.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: Stage, _: Option<u64>) {}
    fn advance(&self, _: Stage, _: u64) {}
    fn finish(&self, _: Stage) {}
}

/// A shared [`Progress`].
pub type SharedProgress = Arc<dyn Progress>;

/// The progress of nobody.
pub fn silent() -> SharedProgress {
    Arc::new(Silent)
}
