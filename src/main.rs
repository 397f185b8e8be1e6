//! The `podbank` binary: a thin shell over [`podbank::cli`].

/// mimalloc: a checkpoint allocates and frees millions of small buffers (keys, names,
/// decoded fields) across threads; glibc's malloc spent a quarter of the scan thread's time
/// consolidating and unlinking chunks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    podbank::cli::main()
}
