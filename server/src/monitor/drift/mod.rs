//! Live drift: each served version with a training profile keeps a rolling window of the
//! inputs it was given (after the feature store filled them in) and of its predictions;
//! an evaluator off the request path compares the window with the profile
//! ([`mercator_runtime::drift`]) and exports the scores as gauges.
//!
//! The request path only copies a few numbers per row into a preallocated ring, under a
//! `try_lock`: when another request holds the window, the rows are skipped (and counted)
//! rather than waited for, so drift never slows inference down. The window is bounded
//! both by count (`drift_window_samples`) and by age (`drift_window_secs`); no score is
//! exported before a column holds `drift_min_samples` values, so small windows do not
//! flap.

mod evaluate;
mod metrics;
mod window;

pub use evaluate::{
    ColumnDrift, Evaluation, Latest, VersionReport, Watched, evaluate_all, report, run,
};
pub use metrics::DriftMetrics;
pub use window::{DriftSettings, Monitor, Snapshot};
