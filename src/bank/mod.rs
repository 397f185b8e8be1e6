//! The bank: content-addressed, packed, zstd-compressed store of checkpoints.
pub mod backend;
