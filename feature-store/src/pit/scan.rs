//! A view's history as the join reads it: the files (and row groups) that can hold a
//! row the entity rows may see, chosen from the date partitions and the Parquet footers'
//! min/max event times before anything is read; then their rows, streamed in batches
//! in one normalised shape (`key`, `event`, `created`, `seq`, then the view's current
//! fields, cast to their types; a field a file predates is null).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field as ArrowField, Schema, SchemaRef};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::ParquetObjectReader;
use parquet::file::statistics::Statistics;

use crate::columns::{self, EVENT_TIMESTAMP};
use crate::definitions::FeatureView;
use crate::offline::{CREATED_TIMESTAMP, OfflineStore, live, partition_date};
use crate::{FeatureError, Result};

/// Footers read at once (object stores answer many small reads in parallel).
const FOOTER_READS: usize = 32;

/// One history file and what its footer says.
pub(super) struct HistoryFile {
    path: Path,
    meta: ArrowReaderMetadata,
    /// Row groups, each with its rows and event-time range.
    groups: Vec<Group>,
}

#[derive(Debug, Clone, Copy)]
struct Group {
    rows: u64,
    /// Event-time range, when the footer has statistics.
    range: Option<(i64, i64)>,
}

impl HistoryFile {
    /// Row groups that may hold an event in `[from, until]`.
    fn groups_within(&self, from: i64, until: i64) -> Vec<usize> {
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.range.is_none_or(|(lo, hi)| hi >= from && lo <= until))
            .map(|(i, _)| i)
            .collect()
    }
}

/// A view's history files, in writing order, with their footers.
pub(super) struct History {
    view: FeatureView,
    files: Vec<HistoryFile>,
    store: Arc<dyn object_store::ObjectStore>,
}

/// What a scan would read.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Extent {
    /// Files listed.
    pub(super) files: usize,
    /// Files with at least one row group to read.
    pub(super) files_read: usize,
    /// Rows in the row groups to read.
    pub(super) rows: u64,
}

fn corrupt(file: &Path, e: impl std::fmt::Display) -> FeatureError {
    FeatureError::Corrupt(format!("{file}: {e}"))
}

impl History {
    /// Lists a view's files and reads their footers.
    pub(super) async fn open(offline: &OfflineStore, view: &FeatureView) -> Result<History> {
        let store = Arc::clone(offline.object_store());
        let paths = offline.files(&view.name).await?;
        let mut files: Vec<HistoryFile> = futures::stream::iter(paths)
            .map(|path| footer(Arc::clone(&store), path))
            .buffered(FOOTER_READS)
            .try_collect()
            .await?;
        // A compacted file and the files it replaces may both still exist: one counts.
        let listed: Vec<live::Listed> = files
            .iter()
            .map(|f| live::Listed {
                path: f.path.clone(),
                replaces: crate::offline::replaces_in(
                    &f.path,
                    f.meta.metadata().file_metadata().key_value_metadata(),
                ),
            })
            .collect();
        let keep: std::collections::HashSet<usize> =
            live::judge(&listed).live.into_iter().collect();
        let mut i = 0;
        files.retain(|_| {
            i += 1;
            keep.contains(&(i - 1))
        });
        Ok(History {
            view: view.clone(),
            files,
            store,
        })
    }

    /// Bytes a normalised row takes in memory while its partition is joined: key,
    /// three times, the fields, and its sort index.
    pub(super) fn row_bytes(&self) -> u64 {
        super::KEY_BYTES
            + 24
            + 4
            + self
                .view
                .fields
                .iter()
                .map(|f| field_bytes(f.field_type))
                .sum::<u64>()
    }

    /// The normalised schema of [`History::scan`]'s batches.
    pub(super) fn schema(&self) -> SchemaRef {
        schema(&self.view)
    }

    /// What a scan of the events in `[from, until]` would read.
    pub(super) fn extent(&self, from: i64, until: i64) -> Extent {
        let mut e = Extent {
            files: self.files.len(),
            ..Extent::default()
        };
        for f in self
            .files
            .iter()
            .filter(|f| date_may_hold(&f.path, from, until))
        {
            let groups = f.groups_within(from, until);
            e.files_read += usize::from(!groups.is_empty());
            for g in groups {
                e.rows += f.groups[g].rows;
            }
        }
        e
    }

    /// Every row that may hold an event in `[from, until]` (others may come along with
    /// them), in writing order, normalised; `seq` numbers rows in that order.
    pub(super) fn scan(
        &self,
        from: i64,
        until: i64,
        batch_rows: usize,
    ) -> impl futures::Stream<Item = Result<RecordBatch>> + '_ {
        let schema = self.schema();
        let files = self
            .files
            .iter()
            .filter(move |f| date_may_hold(&f.path, from, until))
            .map(move |f| (f, f.groups_within(from, until)))
            .filter(|(_, groups)| !groups.is_empty());
        let mut seq = 0u64;
        futures::stream::iter(files)
            .then(move |(file, groups)| {
                let reader = ParquetObjectReader::new(Arc::clone(&self.store), file.path.clone());
                async move {
                    ParquetRecordBatchStreamBuilder::new_with_metadata(reader, file.meta.clone())
                        .with_row_groups(groups)
                        .with_batch_size(batch_rows.max(1))
                        .build()
                        .map(|s| {
                            s.map(move |b| b.map(|b| (file, b)).map_err(|e| corrupt(&file.path, e)))
                        })
                        .map_err(|e| corrupt(&file.path, e))
                }
            })
            .try_flatten()
            .map(move |item| {
                let (file, batch) = item?;
                let out =
                    normalise(&self.view, &schema, &batch, seq).map_err(|e| corrupt(&file.path, e));
                seq += batch.num_rows() as u64;
                out
            })
    }
}

/// Whether a file's date partition (if it has one) can hold an event in `[from, until]`.
fn date_may_hold(path: &Path, from: i64, until: i64) -> bool {
    match partition_date(path) {
        Some(date) => {
            // A bound past what a date can say (i64::MIN/MAX micros) bounds nothing.
            let day = |t: i64| {
                chrono::DateTime::from_timestamp_micros(t).map(|_| crate::offline::event_date(t))
            };
            day(from).is_none_or(|first| first.as_str() <= date.as_str())
                && day(until).is_none_or(|last| date.as_str() <= last.as_str())
        }
        None => true,
    }
}

async fn footer(store: Arc<dyn object_store::ObjectStore>, path: Path) -> Result<HistoryFile> {
    let mut reader = ParquetObjectReader::new(store, path.clone());
    let meta = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
        .await
        .map_err(|e| corrupt(&path, e))?;
    let event = meta
        .parquet_schema()
        .columns()
        .iter()
        .position(|c| c.name() == EVENT_TIMESTAMP);
    let groups = meta
        .metadata()
        .row_groups()
        .iter()
        .map(|g| Group {
            rows: g.num_rows().max(0) as u64,
            range: event
                .and_then(|i| g.column(i).statistics())
                .and_then(|s| match s {
                    Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
                    _ => None,
                })
                // The footer counts in the column's own unit; only microseconds (what
                // the store writes) are trusted, other files are always read.
                .filter(|_| micros(&meta)),
        })
        .collect();
    Ok(HistoryFile { path, meta, groups })
}

/// Whether a file's event times are stored in microseconds.
fn micros(meta: &ArrowReaderMetadata) -> bool {
    meta.schema()
        .field_with_name(EVENT_TIMESTAMP)
        .is_ok_and(|f| {
            matches!(
                f.data_type(),
                DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, _)
            )
        })
}

/// The normalised schema: key, event, created, seq, then the view's fields.
pub(super) fn schema(view: &FeatureView) -> SchemaRef {
    let mut fields = vec![
        ArrowField::new("key", DataType::Utf8, false),
        ArrowField::new("event", DataType::Int64, false),
        ArrowField::new("created", DataType::Int64, false),
        ArrowField::new("seq", DataType::UInt64, false),
    ];
    fields.extend(
        view.fields
            .iter()
            .map(|f| ArrowField::new(&f.name, columns::arrow_type(f.field_type), true)),
    );
    Arc::new(Schema::new(fields))
}

/// Event and write times as plain microseconds; a null time reads as the earliest.
fn micros_column(column: &ArrayRef) -> Result<Int64Array> {
    let cast = columns::cast_to_micros(column)?;
    let t = cast.as_primitive::<TimestampMicrosecondType>();
    Ok(Int64Array::from_iter_values(
        t.iter().map(|v| v.unwrap_or(i64::MIN)),
    ))
}

fn normalise(
    view: &FeatureView,
    schema: &SchemaRef,
    batch: &RecordBatch,
    first_seq: u64,
) -> Result<RecordBatch> {
    let column = |name: &str| -> Result<ArrayRef> {
        batch
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| FeatureError::Corrupt(format!("no column '{name}'")))
    };
    let parts = view
        .entity
        .join_keys
        .iter()
        .map(|k| Ok(columns::cast_key(&column(k)?)?))
        .collect::<Result<Vec<_>>>()?;
    let rows = batch.num_rows();
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(super::entities::joined_keys(&parts, rows)),
        Arc::new(micros_column(&column(EVENT_TIMESTAMP)?)?),
        Arc::new(micros_column(&column(CREATED_TIMESTAMP)?)?),
        Arc::new(UInt64Array::from_iter_values(
            first_seq..first_seq + rows as u64,
        )),
    ];
    for f in &view.fields {
        arrays.push(match batch.column_by_name(&f.name) {
            Some(c) => columns::cast_to(c, f.field_type)?,
            None => arrow_array::new_null_array(&columns::arrow_type(f.field_type), rows),
        });
    }
    RecordBatch::try_new(Arc::clone(schema), arrays)
        .map_err(|e| FeatureError::Corrupt(format!("normalising history: {e}")))
}

/// Bytes a value of `t` takes in an Arrow column (text and lists: a typical size).
pub(super) fn field_bytes(t: crate::FieldType) -> u64 {
    use crate::FieldType as T;
    match t {
        T::Bool => 1,
        T::Float32 => 4,
        T::Float64 | T::Int64 => 8,
        T::String | T::Date => 24,
        T::Float32List => 64,
    }
}
