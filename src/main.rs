//! The `podbank` binary: a thin shell over [`podbank::cli`].
fn main() -> std::process::ExitCode {
    podbank::cli::main()
}
