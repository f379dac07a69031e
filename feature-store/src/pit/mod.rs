//! Training sets at scale: the point-in-time join of [`crate::historical`], streamed
//! through local disk so memory is bounded by a setting rather than by the data.
//!
//! 1. The entity rows are read in batches and routed by a hash of their key to `P`
//!    partitions spilled to disk (row number, key, time).
//! 2. Each view's history is scanned — only the date partitions and row groups whose
//!    event times can matter: after the earliest entity time less the view's TTL, up to
//!    the latest entity time — and routed the same way.
//! 3. Each partition is joined alone in memory (`join`): sort by key and time, one walk.
//!    Its answers are spilled in row order.
//! 4. The entity file is read again and written out beside its features, each row's
//!    answer taken from its partition's stream (`output`).
//!
//! `P` is chosen from the footers' row counts and sizes so a partition fits in half
//! the budget; buffers waiting to be spilled hold a quarter. A single key with more
//! history than a partition's share is not split further.

pub mod entities;
mod join;
mod output;
mod partition;
mod scan;
mod spill;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field as ArrowField, Schema, SchemaRef};
use futures::TryStreamExt;

use crate::definitions::{Definitions, FeatureView};
use crate::offline::OfflineStore;
use crate::{FeatureError, Result};
use entities::EntityFile;
pub use output::schema as training_set_schema;
use scan::History;
use spill::{SpillWriter, SpilledSet};

/// How much memory and where to spill.
#[derive(Debug, Clone)]
pub struct Options {
    /// The budget for the join's working memory, in bytes.
    pub memory_bytes: usize,
    /// Where spill files go (a folder made inside, removed at the end).
    pub scratch_dir: PathBuf,
}

/// What the join is doing, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Routing entity rows to partitions.
    Entities,
    /// Routing history rows to partitions.
    History,
    /// Joining partitions.
    Joining,
    /// Writing the training set.
    Writing,
}

/// Counters so far.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Snapshot {
    /// The current phase.
    pub phase: Phase,
    /// Entity rows in the file.
    pub entity_rows: u64,
    /// History rows read so far, over all views.
    pub history_rows_read: u64,
    /// History rows to read, from the footers.
    pub history_rows_to_read: u64,
    /// Entity rows joined (per view, so up to entity rows × views).
    pub rows_joined: u64,
    /// Rows of the training set written.
    pub rows_written: u64,
    /// Bytes spilled to disk so far.
    pub spill_bytes: u64,
    /// Seconds since the start.
    pub seconds: f64,
}

/// Where progress goes (the CLI prints a line; `()` discards it).
pub trait Progress: Send + Sync {
    /// Called after each batch.
    fn update(&self, snapshot: &Snapshot);
}

impl Progress for () {
    fn update(&self, _: &Snapshot) {}
}

/// One view's part in a join.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ViewSummary {
    /// The view.
    pub view: String,
    /// Its history files.
    pub files: usize,
    /// Files read (the others skipped by date or by their footers' event times).
    pub files_read: usize,
    /// History rows read.
    pub rows_read: u64,
}

/// What a join did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Where the training set went.
    pub output: String,
    /// Its rows (the entity rows).
    pub rows: u64,
    /// Feature columns added.
    pub features: usize,
    /// Per view.
    pub views: Vec<ViewSummary>,
    /// Hash partitions.
    pub partitions: usize,
    /// Bytes spilled to disk in all.
    pub spill_bytes: u64,
    /// The memory budget, bytes.
    pub memory_limit_bytes: usize,
    /// Wall time.
    pub seconds: f64,
    /// History rows read and entity rows written, per second.
    pub rows_per_second: f64,
}

/// The join keys of the entity that `features` (each `view:field`) describe; they must
/// all be of one entity.
pub fn join_keys(defs: &Definitions, features: &[String]) -> Result<Vec<String>> {
    let mut keys: Option<&Vec<String>> = None;
    for (i, f) in features.iter().enumerate() {
        let view = f.split_once(':').map(|(v, _)| v).unwrap_or(f);
        let v = defs
            .views
            .get(view)
            .ok_or_else(|| FeatureError::UnknownView(view.to_string()))?;
        match keys {
            Some(k) if *k != v.entity.join_keys => {
                return Err(FeatureError::InvalidRequest {
                    field: format!("features[{i}]"),
                    message: format!(
                        "'{f}' is keyed by {:?}, earlier features by {k:?}",
                        v.entity.join_keys
                    ),
                });
            }
            _ => keys = Some(&v.entity.join_keys),
        }
    }
    keys.cloned().ok_or_else(|| FeatureError::InvalidRequest {
        field: "features".into(),
        message: "name at least one feature".into(),
    })
}

/// A view and the requested features it answers: (position in the request, field index).
struct ViewPlan {
    view: FeatureView,
    fields: Vec<(usize, usize)>,
}

fn plan(defs: &Definitions, features: &[String]) -> Result<Vec<ViewPlan>> {
    let mut out: Vec<ViewPlan> = Vec::new();
    for (i, reference) in features.iter().enumerate() {
        let bad = |message: String| FeatureError::InvalidRequest {
            field: format!("features[{i}]"),
            message,
        };
        let (view, field) = reference
            .split_once(':')
            .ok_or_else(|| bad(format!("'{reference}' must be view:field")))?;
        let v = defs
            .views
            .get(view)
            .ok_or_else(|| FeatureError::UnknownView(view.to_string()))?;
        let index = v
            .field_index(field)
            .ok_or_else(|| bad(format!("view '{view}' has no field '{field}'")))?;
        match out.iter_mut().find(|p| p.view.name == view) {
            Some(p) => p.fields.push((i, index)),
            None => out.push(ViewPlan {
                view: v.clone(),
                fields: vec![(i, index)],
            }),
        }
    }
    Ok(out)
}

/// How the budget is shared out.
#[derive(Debug, Clone, Copy)]
struct Sizing {
    partitions: usize,
    flush_bytes: usize,
    batch_rows: usize,
}

/// Partitions past this many would make spill buffers and output cursors, not the
/// partitions, the larger share of memory.
const MAX_PARTITIONS: usize = 4096;
/// Bytes guessed per entity key (the footers do not say).
const KEY_BYTES: u64 = 24;

impl Sizing {
    fn new(memory: usize, entity_rows: u64, history: u64, feature_bytes: u64) -> Sizing {
        // Arrow bytes per row in memory while a partition is joined: the spilled row
        // (number, key, time), its sort index and answer, and its features.
        let entities = entity_rows * (8 + KEY_BYTES + 8 + 4 + 8 + feature_bytes);
        // Twice: reading a partition back concatenates its pieces.
        let need = 2 * (entities + history);
        let share = (memory as u64 / 2).max(1);
        let partitions = need.div_ceil(share).clamp(1, MAX_PARTITIONS as u64) as usize;
        Sizing {
            partitions,
            flush_bytes: (memory / 4 / partitions).clamp(64 << 10, 8 << 20),
            batch_rows: 65_536,
        }
    }
}

/// Builds a training set from `entities` (CSV or Parquet, path or URL) to `output`
/// (Parquet, path or URL): every column of the entity file, then each feature as
/// `view__field`, as of each row's `event_timestamp`.
pub async fn build_training_set(
    defs: &Definitions,
    offline: &OfflineStore,
    features: &[String],
    entities: &str,
    output: &str,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Summary> {
    let started = Instant::now();
    let keys = join_keys(defs, features)?;
    let plans = plan(defs, features)?;
    std::fs::create_dir_all(&options.scratch_dir)?;
    let scratch = tempfile::Builder::new()
        .prefix("mercator-history-")
        .tempdir_in(&options.scratch_dir)?;
    let file = EntityFile::open(entities, &keys, scratch.path()).await?;
    let out_schema = output::schema(defs, file.schema(), features)?;
    let mut histories = Vec::with_capacity(plans.len());
    for p in &plans {
        histories.push(History::open(offline, &p.view).await?);
    }
    // The views are joined one at a time: the largest sets the partitions.
    let largest = histories
        .iter()
        .map(|h| h.extent(i64::MIN, i64::MAX).rows * h.row_bytes())
        .max()
        .unwrap_or_default();
    let feature_bytes = plans
        .iter()
        .flat_map(|p| {
            p.fields
                .iter()
                .map(|&(_, f)| scan::field_bytes(p.view.fields[f].field_type))
        })
        .sum();
    let sizing = Sizing::new(options.memory_bytes, file.rows(), largest, feature_bytes);
    let mut snap = Snapshot {
        phase: Phase::Entities,
        entity_rows: file.rows(),
        history_rows_read: 0,
        history_rows_to_read: 0,
        rows_joined: 0,
        rows_written: 0,
        spill_bytes: 0,
        seconds: 0.0,
    };
    let tick = |snap: &mut Snapshot| {
        snap.seconds = started.elapsed().as_secs_f64();
        progress.update(snap);
    };

    // 1. Entity rows to partitions.
    let (spilled_entities, range) = spill_entities(
        &file,
        &sizing,
        scratch.path().join("entities"),
        &mut snap,
        &tick,
    )?;

    // 2. Each view's history to partitions, only what the entity rows can see.
    let mut views = Vec::new();
    let mut spilled_views = Vec::new();
    snap.phase = Phase::History;
    let windows: Vec<Option<(i64, i64)>> = plans
        .iter()
        .map(|p| {
            range.map(|(first, last)| {
                let from = crate::online::ttl_micros(&p.view)
                    .map_or(i64::MIN, |ttl| first.saturating_sub(ttl));
                (from, last)
            })
        })
        .collect();
    snap.history_rows_to_read = histories
        .iter()
        .zip(&windows)
        .filter_map(|(h, w)| w.map(|(from, until)| h.extent(from, until).rows))
        .sum();
    for (i, (history, window)) in histories.iter().zip(&windows).enumerate() {
        let dir = scratch.path().join(format!("view-{i}"));
        let mut writer =
            SpillWriter::new(dir, history.schema(), sizing.partitions, sizing.flush_bytes)?;
        let extent = window
            .map(|(f, u)| history.extent(f, u))
            .unwrap_or_default();
        let mut rows_read = 0;
        if let Some((from, until)) = *window {
            let mut stream = std::pin::pin!(history.scan(from, until, sizing.batch_rows));
            while let Some(batch) = stream.try_next().await? {
                rows_read += batch.num_rows() as u64;
                snap.history_rows_read += batch.num_rows() as u64;
                let keys = arrow_array::cast::AsArray::as_string::<i32>(batch.column(0));
                let parts = partition::each(keys, sizing.partitions);
                for (p, part) in partition::split(&batch, &parts, sizing.partitions)? {
                    writer.push(p, part)?;
                }
                tick(&mut snap);
            }
        }
        let set = writer.finish()?;
        snap.spill_bytes += set.bytes;
        spilled_views.push(set);
        views.push(ViewSummary {
            view: plans[i].view.name.clone(),
            files: history.extent(i64::MIN, i64::MAX).files,
            files_read: extent.files_read,
            rows_read,
        });
    }

    // 3. Join each partition; its answers spilled in row order.
    snap.phase = Phase::Joining;
    let results = join::partitions(
        &plans,
        &spilled_entities,
        &spilled_views,
        &out_schema,
        file.schema().fields().len(),
        &sizing,
        scratch.path().join("results"),
        &mut snap,
        &tick,
    )?;

    // 4. The entity file again, beside its features.
    snap.phase = Phase::Writing;
    let rows = output::write(
        &file,
        &results,
        &out_schema,
        output,
        &sizing,
        &mut snap,
        &tick,
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Summary {
        output: output.to_string(),
        rows,
        features: features.len(),
        partitions: sizing.partitions,
        spill_bytes: snap.spill_bytes,
        memory_limit_bytes: options.memory_bytes,
        rows_per_second: (snap.history_rows_read + rows) as f64 / seconds.max(1e-9),
        seconds,
        views,
    })
}

/// The schema of spilled entity rows.
fn entity_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        ArrowField::new("row", DataType::UInt64, false),
        ArrowField::new("key", DataType::Utf8, false),
        ArrowField::new("ts", DataType::Int64, false),
    ]))
}

/// Routes the entity rows to partitions; returns them and the earliest and latest time.
fn spill_entities(
    file: &EntityFile,
    sizing: &Sizing,
    dir: PathBuf,
    snap: &mut Snapshot,
    tick: &dyn Fn(&mut Snapshot),
) -> Result<(SpilledSet, Option<(i64, i64)>)> {
    let schema = entity_schema();
    let mut writer = SpillWriter::new(
        dir,
        Arc::clone(&schema),
        sizing.partitions,
        sizing.flush_bytes,
    )?;
    let mut range: Option<(i64, i64)> = None;
    let mut row = 0u64;
    for batch in file.batches(sizing.batch_rows)? {
        let batch = batch?;
        let n = batch.times.len() as u64;
        for &t in &batch.times {
            range = Some(range.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
        }
        let rows = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(UInt64Array::from_iter_values(row..row + n)) as ArrayRef,
                Arc::new(batch.keys.clone()),
                Arc::new(Int64Array::from(batch.times)),
            ],
        )
        .map_err(|e| FeatureError::Corrupt(format!("entity rows: {e}")))?;
        row += n;
        let parts = partition::each(&batch.keys, sizing.partitions);
        for (p, part) in partition::split(&rows, &parts, sizing.partitions)? {
            writer.push(p, part)?;
        }
        tick(snap);
    }
    let set = writer.finish()?;
    snap.spill_bytes += set.bytes;
    Ok((set, range))
}
