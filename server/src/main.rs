//! `mercator`: the allocator, and the command line handed to `mercator_server::entry`
//! (config → tracing → build (bind) → serve → drain on a signal, or a command).

use std::process::ExitCode;

use clap::Parser;
use mercator_server::cli::{Cli, Command};

/// mimalloc rather than the system allocator: the serving path allocates a few small
/// buffers per call, and glibc's malloc and free were about 8% of the server's time under
/// load (docs/BENCHMARKS.md has the comparison). Only the binary: tests and embedders keep
/// their own.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A training-set join against the store frees memory partition after partition faster
/// than mimalloc hands it back (it waits 10 ms before purging, and commits arenas
/// eagerly): its peak RSS was twice the join's bound. Such a run is made again in a
/// child with purging at once; mimalloc reads its options only at start (`None`: run
/// here). The serving path keeps the defaults, which are faster.
#[cfg(feature = "mimalloc")]
fn rerun_for_bounded_memory(cli: &Cli) -> Option<ExitCode> {
    use mercator_server::cli::features::FeaturesCommand;
    let Command::Features(args) = &cli.command else {
        return None;
    };
    let history = matches!(args.command, FeaturesCommand::History { .. });
    if !history || args.server.is_some() || std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("MIMALLOC_PURGE_DELAY", "0")
        .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
        .status()
        .ok()?;
    Some(ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(1),
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(feature = "mimalloc")]
    if let Some(code) = rerun_for_bounded_memory(&cli) {
        return code;
    }
    mercator_server::entry::run(cli)
}
