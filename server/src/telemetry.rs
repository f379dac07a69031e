//! Logging: `tracing` to stderr, as text or JSON, filtered by `RUST_LOG`. The server logs
//! at `info` by default; a CLI command at `warn`, so its output (on stdout) is not mixed
//! with progress chatter. Colour codes only when stderr is a terminal, so files and log
//! collectors get plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber for the server. Calling it twice (as tests may) is
/// harmless.
pub fn init(format: &str) {
    install(format, "info");
}

/// Installs the global subscriber for a CLI command: warnings and errors only, unless
/// `RUST_LOG` says otherwise.
pub fn init_command() {
    install("text", "warn");
}

fn install(format: &str, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}
