//! `mercator features history` against the store itself (no `--server`): the
//! point-in-time join of `mercator_features::pit`, within `[features]
//! history_memory_mb`, spilling to `<data_dir>/tmp/history`, with a progress line on a
//! terminal and a JSON summary on request.

use std::path::PathBuf;

use mercator_features::FeatureStore;
use mercator_features::pit::{self, Phase, Snapshot};

use super::progress::Progress;
use crate::config::Config;

/// The options `features history` takes besides its inputs.
#[derive(Debug, Clone)]
pub(super) struct HistoryOptions {
    /// Overrides `[features] history_memory_mb`.
    pub(super) memory_mb: Option<u64>,
    /// Overrides `<data_dir>/tmp/history`.
    pub(super) spill_dir: Option<PathBuf>,
    /// Print the summary as JSON.
    pub(super) json: bool,
}

/// The terminal line: rows read, joined and written, bytes spilled, and an estimate of
/// the time left while history is read (the longest phase; later ones are not timed).
struct Line(Progress);

impl pit::Progress for Line {
    fn update(&self, s: &Snapshot) {
        let m = |n: u64| format!("{:.1}M", n as f64 / 1e6);
        let spill = format!("{:.2} GB spilled", s.spill_bytes as f64 / 1e9);
        let message = match s.phase {
            Phase::Entities => format!("reading entity rows of {}", m(s.entity_rows)),
            Phase::History => {
                let rate = s.history_rows_read as f64 / s.seconds.max(1e-3);
                let left = s.history_rows_to_read.saturating_sub(s.history_rows_read) as f64
                    / rate.max(1.0);
                format!(
                    "history rows read {}/{}, {spill}, ETA {:.0}s for the reading",
                    m(s.history_rows_read),
                    m(s.history_rows_to_read),
                    left
                )
            }
            Phase::Joining => format!("rows joined {}, {spill}", m(s.rows_joined)),
            Phase::Writing => format!("rows written {}/{}", m(s.rows_written), m(s.entity_rows)),
        };
        self.0.set_message(message);
    }
}

/// Builds the training set and prints what was done.
pub(super) async fn run(
    store: &FeatureStore,
    config: &Config,
    features: &[String],
    entities: &str,
    output: &str,
    options: HistoryOptions,
) -> anyhow::Result<()> {
    let memory_mb = options
        .memory_mb
        .unwrap_or(config.features.history_memory_mb);
    anyhow::ensure!(
        (16..=1 << 20).contains(&memory_mb),
        "--memory-mb must be between 16 and 1048576"
    );
    let scratch_dir = options
        .spill_dir
        .unwrap_or_else(|| config.server.data_dir.join("tmp").join("history"));
    let pit_options = pit::Options {
        memory_bytes: usize::try_from(memory_mb << 20).unwrap_or(usize::MAX),
        scratch_dir,
    };
    let line = Line(Progress::spinner("building the training set"));
    let summary = pit::build_training_set(
        &store.current(),
        store.offline(),
        features,
        entities,
        output,
        &pit_options,
        &line,
    )
    .await?;
    line.0.finish();
    if options.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "wrote {} rows with {} features to {output}",
        summary.rows, summary.features
    );
    for v in &summary.views {
        println!(
            "  {}: {} history rows read from {} of {} files",
            v.view, v.rows_read, v.files_read, v.files
        );
    }
    println!(
        "  {:.1}s, {:.0} rows/s, {} partitions, {:.1} MB spilled, memory limit {} MiB",
        summary.seconds,
        summary.rows_per_second,
        summary.partitions,
        summary.spill_bytes as f64 / 1e6,
        memory_mb
    );
    Ok(())
}
