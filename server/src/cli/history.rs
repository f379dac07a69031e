//! The commands over the offline history that run against the store itself (no
//! `--server`): `features history`, the point-in-time join of `mercator_features::pit`
//! within `[features] history_memory_mb`, spilling to `<data_dir>/tmp/history`, with a
//! progress line on a terminal and a JSON summary on request; and `features compact`.

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
struct Line {
    bar: Progress,
}

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
        self.bar.set_message(message);
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
    let line = Line {
        bar: Progress::spinner("building the training set"),
    };
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
    line.bar.finish();
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

/// `mercator features compact`: every view, or one, compacted; a line (or JSON) each.
pub(super) async fn compact(
    store: &FeatureStore,
    view: Option<&str>,
    target_mb: u64,
    grace: &str,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=1 << 14).contains(&target_mb),
        "--target-mb must be between 1 and 16384"
    );
    let grace =
        humantime::parse_duration(grace).map_err(|e| anyhow::anyhow!("--grace '{grace}': {e}"))?;
    let defs = store.current();
    let views: Vec<_> = match view {
        Some(v) => vec![
            defs.views
                .get(v)
                .ok_or_else(|| anyhow::anyhow!("no feature view '{v}'"))?
                .clone(),
        ],
        None => defs.views.values().cloned().collect(),
    };
    let options = mercator_features::offline::CompactOptions {
        target_bytes: target_mb << 20,
        grace,
    };
    let mut reports = Vec::new();
    for v in &views {
        reports.push(store.offline().compact(v, &options).await?);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    for r in reports {
        println!(
            "{}: {} partitions, {} files merged into {} ({} rows), {} replaced files deleted",
            r.view, r.partitions, r.files_merged, r.files_written, r.rows, r.files_deleted
        );
    }
    Ok(())
}
