//! Batch loads: a CSV file of rows for one view, read through `object_store` (local
//! path, `file://`, `s3://`, `gs://`, `az://`) and streamed, so a file larger than memory
//! loads in constant memory.
//!
//! The header names the entity's join keys, optionally `event_timestamp` (RFC 3339, or
//! seconds since the epoch), and any of the view's fields; an empty cell is null. Rows are
//! written in batches; each batch is all-or-nothing, and an error names the line and
//! column, saying how many rows were already loaded.

//!
//! - [`parse`]: cells and rows from CSV and Arrow, checked against the view (no I/O);
//! - [`location`]: where a URL or path points, through `object_store`;
//! - [`roots`]: where a client may point a load;
//! - [`upload`]: a file a client streams rather than names;
//! - here: streaming a file through them into the store, batch by batch.

mod location;
mod parse;
mod roots;
mod upload;

use std::io::Read;
use std::sync::Arc;

use futures::TryStreamExt;

pub use location::is_parquet;
pub(crate) use location::{locate, locate_for_write};
pub(crate) use parse::parse_time;
use parse::{Batch, ParseError, Unit, bad_at, check_columns, column, parse_csv, rows_from_arrow};
pub use parse::{EVENT_TIMESTAMP, LoadOptions, RowsDone, parse_bool, parse_value};
pub use roots::{Roots, shown};
pub use upload::{load_stream, sweep};

use crate::{FeatureError, FeatureStore, Result};

/// How a load went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Data rows read.
    pub rows: usize,
    /// Rows that became an entity's latest row.
    pub written: usize,
    /// Rows older than what was stored.
    pub ignored_older: usize,
}

/// Loads CSV from a reader into `view`. The reader is parsed on the blocking pool (it may
/// block on I/O) while batches are written here, one batch in flight at a time.
pub async fn load_csv(
    store: &FeatureStore,
    view_name: &str,
    input: impl Read + Send + 'static,
    options: &LoadOptions,
) -> Result<LoadReport> {
    let (defs, _) = store.definitions();
    let view = defs
        .views
        .get(view_name)
        .ok_or_else(|| FeatureError::UnknownView(view_name.to_string()))?
        .clone();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let parse_options = options.clone();
    let parser = tokio::task::spawn_blocking(move || {
        if let Err(e) = parse_csv(&view, input, &parse_options, &tx) {
            // The receiver may be gone already (a write failed): nothing to tell then.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let report = write_batches(store, view_name, rx, &options.progress).await;
    // The parser stops at its next send once the receiver is dropped.
    parser
        .await
        .map_err(|e| FeatureError::Io(std::io::Error::other(e)))?;
    report
}

/// Writes batches as they arrive, naming the file line of a bad row.
async fn write_batches(
    store: &FeatureStore,
    view_name: &str,
    mut rx: tokio::sync::mpsc::Receiver<std::result::Result<Batch, ParseError>>,
    progress: &RowsDone,
) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    while let Some(batch) = rx.recv().await {
        let batch =
            batch.map_err(|e| bad_at(Unit::Line, e.line, &e.column, e.message, report.written))?;
        write_batch(store, view_name, batch, &mut report).await?;
        progress.report(report.rows);
    }
    Ok(report)
}

/// Writes one batch, naming the file line or row of a bad row.
async fn write_batch(
    store: &FeatureStore,
    view_name: &str,
    batch: Batch,
    report: &mut LoadReport,
) -> Result<()> {
    report.rows += batch.rows.len();
    let outcome = store
        .push(view_name, &batch.rows)
        .await
        .map_err(|e| match e {
            FeatureError::InvalidRow {
                row,
                field,
                message,
            } => bad_at(
                batch.unit,
                batch.lines.get(row).copied().unwrap_or(0),
                &field,
                message,
                report.written,
            ),
            other => other,
        })?;
    report.written += outcome.written;
    report.ignored_older += outcome.ignored_older;
    Ok(())
}

/// Loads a CSV or Parquet file (by extension) named by URL or local path, streaming it
/// from object storage.
pub async fn load_url(
    store: &FeatureStore,
    view: &str,
    location: &str,
    options: LoadOptions,
) -> Result<LoadReport> {
    let (object_store, path) = locate(location)?;
    if is_parquet(location) {
        return load_parquet(store, view, object_store, path, &options).await;
    }
    let stream = object_store
        .get(&path)
        .await
        .map_err(|e| FeatureError::InvalidRequest {
            field: "url".into(),
            message: format!("'{location}': {e}"),
        })?
        .into_stream()
        .map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    let bridge = tokio_util::io::SyncIoBridge::new(reader);
    load_csv(store, view, bridge, &options).await
}

/// Loads a Parquet file row group by row group (so files larger than memory load).
/// Columns are cast to the fields' types; `event_timestamp` may be any timestamp type.
async fn load_parquet(
    store: &FeatureStore,
    view_name: &str,
    object_store: Arc<dyn object_store::ObjectStore>,
    path: object_store::path::Path,
    options: &LoadOptions,
) -> Result<LoadReport> {
    use futures::StreamExt;
    use parquet::arrow::ParquetRecordBatchStreamBuilder;
    use parquet::arrow::async_reader::ParquetObjectReader;

    let (defs, _) = store.definitions();
    let view = defs
        .views
        .get(view_name)
        .ok_or_else(|| FeatureError::UnknownView(view_name.to_string()))?
        .clone();
    let not_parquet = |e: parquet::errors::ParquetError| FeatureError::InvalidRequest {
        field: "url".into(),
        message: format!("not a readable Parquet file: {e}"),
    };
    let reader = ParquetObjectReader::new(object_store, path);
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(not_parquet)?
        .with_batch_size(options.batch_rows.max(1));
    let schema = builder.schema().clone();
    let header = |e: ParseError| bad_at(Unit::Row, 0, &e.column, e.message, 0);
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| column(&view, i, f.name(), options))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(header)?;
    check_columns(&view, &columns, options).map_err(header)?;
    let mut stream = builder.build().map_err(not_parquet)?;
    let mut report = LoadReport::default();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(not_parquet)?;
        let first = report.rows as u64 + 1;
        let rows =
            rows_from_arrow(&view, &columns, &schema, &batch, options).map_err(|(i, e)| {
                bad_at(
                    Unit::Row,
                    first + i as u64,
                    &e.column,
                    e.message,
                    report.written,
                )
            })?;
        let lines = (0..rows.len() as u64).map(|i| first + i).collect();
        write_batch(
            store,
            view_name,
            Batch {
                rows,
                lines,
                unit: Unit::Row,
            },
            &mut report,
        )
        .await?;
        options.progress.report(report.rows);
    }
    Ok(report)
}
