//! Progress for the CLI's long commands — uploads, loads, profile builds — drawn on
//! stderr while stdout is a terminal, and nothing at all otherwise (a script or a pipe
//! reads only the command's answer).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner or a counter; a no-op off a terminal. Cleared when dropped.
#[derive(Debug)]
pub struct Progress(Option<ProgressBar>);

fn on_terminal() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

impl Progress {
    /// A spinner saying `message` with the time elapsed: for one call whose progress
    /// cannot be counted (an upload, a load the server makes).
    pub fn spinner(message: impl Into<String>) -> Progress {
        if !on_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::new_spinner().with_message(message.into());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress(Some(bar))
    }

    /// A counter of `unit`s (rows) done, with the rate, saying `message`.
    pub fn counter(message: impl Into<String>, unit: &str) -> Progress {
        if !on_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::new_spinner().with_message(message.into());
        let template = format!("{{spinner}} {{msg}}: {{human_pos}} {unit} ({{elapsed}})");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress(Some(bar))
    }

    /// A function that sets the count done, for code that reports as it goes (a
    /// load's batches); it outlives nothing: the bar is cleared when `self` drops.
    pub fn setter(&self) -> impl Fn(usize) + Send + Sync + 'static {
        let bar = self.0.clone();
        move |done| {
            if let Some(bar) = &bar {
                bar.set_position(done as u64);
            }
        }
    }

    /// Replaces the message (a command reporting several counters at once).
    pub fn set_message(&self, message: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
        }
    }

    /// Removes it from the terminal, before the command prints its answer.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // An error path leaves no spinner behind.
        self.finish();
    }
}
