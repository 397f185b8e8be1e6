//! The command-line front: parses arguments, resolves configuration once, calls the
//! library, renders results. No business logic lives here.

pub mod output;

use std::process::ExitCode;

/// Entry point of the `podbank` binary.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
