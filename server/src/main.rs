//! `mercator`: config → tracing → build (bind) → serve → drain on a signal.

use std::process::ExitCode;

use clap::Parser;
use mercator_server::cli::{Cli, Command, ServeArgs};
use mercator_server::{App, demo, telemetry};

/// mimalloc rather than the system allocator: the serving path allocates a few small
/// buffers per call, and glibc's malloc and free were about 8% of the server's time under
/// load (docs/BENCHMARKS.md has the comparison). Only the binary: tests and embedders keep
/// their own.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status for a configuration that cannot be used (sysexits' EX_USAGE).
const EXIT_CONFIG: u8 = 64;

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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Models(args) => {
                telemetry::init_command();
                report(mercator_server::cli::models::run(args).await)
            }
            Command::Features(args) => {
                telemetry::init_command();
                report(mercator_server::cli::features::run(args).await)
            }
            Command::Drift(args) => {
                telemetry::init_command();
                report(mercator_server::cli::drift::run(args).await)
            }
            Command::Profile(args) => {
                telemetry::init_command();
                report(mercator_server::cli::profile::run(args).await)
            }
            Command::Keys(args) => {
                telemetry::init_command();
                report(mercator_server::cli::keys::run(args).await)
            }
            Command::Score(args) => {
                telemetry::init_command();
                report(mercator_server::cli::call::score(args).await)
            }
            Command::Classify(args) => {
                telemetry::init_command();
                report(mercator_server::cli::call::classify(args).await)
            }
            Command::Recommend(args) => {
                telemetry::init_command();
                report(mercator_server::cli::recommend::recommend(args).await)
            }
            Command::Forecast(args) => {
                telemetry::init_command();
                report(mercator_server::cli::call::forecast(args).await)
            }
            Command::Infer(args) => {
                telemetry::init_command();
                report(mercator_server::cli::infer::run(args).await)
            }
            Command::Outcomes(args) => {
                telemetry::init_command();
                report(mercator_server::cli::outcomes::run(args).await)
            }
            Command::Kb(args) => {
                telemetry::init_command();
                report(mercator_server::cli::kb::run(args).await)
            }
            Command::Experiments(args) => {
                telemetry::init_command();
                report(mercator_server::cli::experiments::run(args).await)
            }
            Command::Quality(args) => {
                telemetry::init_command();
                report(mercator_server::cli::quality::run(args).await)
            }
            Command::Config(args) => {
                telemetry::init_command();
                match mercator_server::cli::config::run(args) {
                    Err(e) if e.is::<mercator_server::config::ConfigError>() => {
                        eprintln!("error: {e}");
                        ExitCode::from(EXIT_CONFIG)
                    }
                    result => report(result),
                }
            }
        }
    })
}

async fn serve(args: ServeArgs) -> ExitCode {
    let loaded = match args.config.layered(args.flags()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init(&loaded.config.server.log_format);
    loaded.warn();
    let config = loaded.config;
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => return report(Err(e)),
    };
    if args.demo {
        let encoder = demo::encoder_folder().await;
        if let Err(e) = demo::register_demo_models(app.registry(), encoder.as_deref()).await {
            return report(Err(e.into()));
        }
        if let Err(e) = demo::load_demo_features(app.features().clone()).await {
            return report(Err(e));
        }
    }
    report(app.run(shutdown_signal()).await)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
