//! The binary's body: the async runtime, and each command run on it. Here rather than
//! in `main.rs` because the futures of every command are compiled in the crate that
//! polls them: in the library, once, where the release build compiles them alongside
//! the rest of the crate instead of in a last serial step for the binary.

use std::process::ExitCode;

use crate::cli::{Cli, Command, ServeArgs};
use crate::{App, demo, telemetry};

/// Exit status for a configuration that cannot be used (sysexits' EX_USAGE).
const EXIT_CONFIG: u8 = 64;

/// Runs a parsed command line to its exit status.
pub fn run(cli: Cli) -> ExitCode {
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
                report(crate::cli::models::run(args).await)
            }
            Command::Features(args) => {
                telemetry::init_command();
                report(crate::cli::features::run(args).await)
            }
            Command::Drift(args) => {
                telemetry::init_command();
                report(crate::cli::drift::run(args).await)
            }
            Command::Profile(args) => {
                telemetry::init_command();
                report(crate::cli::profile::run(args).await)
            }
            Command::Keys(args) => {
                telemetry::init_command();
                report(crate::cli::keys::run(args).await)
            }
            Command::Score(args) => {
                telemetry::init_command();
                report(crate::cli::call::score(args).await)
            }
            Command::Classify(args) => {
                telemetry::init_command();
                report(crate::cli::call::classify(args).await)
            }
            Command::Recommend(args) => {
                telemetry::init_command();
                report(crate::cli::recommend::recommend(args).await)
            }
            Command::Forecast(args) => {
                telemetry::init_command();
                report(crate::cli::call::forecast(args).await)
            }
            Command::Infer(args) => {
                telemetry::init_command();
                report(crate::cli::infer::run(args).await)
            }
            Command::Outcomes(args) => {
                telemetry::init_command();
                report(crate::cli::outcomes::run(args).await)
            }
            Command::Kb(args) => {
                telemetry::init_command();
                report(crate::cli::kb::run(args).await)
            }
            Command::Experiments(args) => {
                telemetry::init_command();
                report(crate::cli::experiments::run(args).await)
            }
            Command::Quality(args) => {
                telemetry::init_command();
                report(crate::cli::quality::run(args).await)
            }
            Command::Config(args) => {
                telemetry::init_command();
                match crate::cli::config::run(args) {
                    Err(e) if e.is::<crate::config::ConfigError>() => {
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
