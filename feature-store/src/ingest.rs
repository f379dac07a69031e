//! Batch loads: a CSV file of rows for one view, read through `object_store` (local
//! path, `file://`, `s3://`, `gs://`, `az://`) and streamed, so a file larger than memory
//! loads in constant memory.
//!
//! The header names the entity's join keys, optionally `event_timestamp` (RFC 3339, or
//! seconds since the epoch), and any of the view's fields; an empty cell is null. Rows are
//! written in batches; each batch is all-or-nothing, and an error names the line and
//! column, saying how many rows were already loaded.

use std::io::Read;
use std::sync::Arc;

use futures::TryStreamExt;

use crate::online::PushRow;
use crate::value::{FieldType, Value};
use crate::{FeatureError, FeatureStore, Result};

/// Name of the optional event-time column.
pub const EVENT_TIMESTAMP: &str = "event_timestamp";

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

/// Options of a load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Event time for rows when the file has no `event_timestamp` column, in microseconds.
    pub default_event_time_micros: Option<i64>,
    /// Skip columns that are neither keys, event time nor fields (e.g. a label).
    pub ignore_unknown_columns: bool,
    /// Rows per write call.
    pub batch_rows: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            default_event_time_micros: None,
            ignore_unknown_columns: false,
            batch_rows: 10_000,
        }
    }
}

enum Column {
    Key(usize),
    EventTime,
    Field(String, FieldType),
    Ignored,
}

/// How a file names its rows in errors: CSV by line, Parquet by row.
#[derive(Debug, Clone, Copy, Default)]
enum Unit {
    #[default]
    Line,
    Row,
}

fn bad_at(
    unit: Unit,
    n: u64,
    column: &str,
    message: impl Into<String>,
    loaded: usize,
) -> FeatureError {
    let unit = match unit {
        Unit::Line => "line",
        Unit::Row => "row",
    };
    FeatureError::InvalidRequest {
        field: format!("{unit} {n}, column '{column}'"),
        message: format!("{} ({loaded} rows were loaded before it)", message.into()),
    }
}

/// One CSV cell as a value of type `t` (a `float32_list` is numbers separated by `;`,
/// `,` or spaces, optionally in brackets); the error says what the cell is not.
pub fn parse_value(t: FieldType, cell: &str) -> std::result::Result<Value, String> {
    let err = || format!("'{cell}' is not a {}", t.as_str());
    Ok(match t {
        FieldType::Float32 => Value::Float32(cell.parse().map_err(|_| err())?),
        FieldType::Float64 => Value::Float64(cell.parse().map_err(|_| err())?),
        FieldType::Int64 => Value::Int64(cell.parse().map_err(|_| err())?),
        FieldType::Bool => Value::Bool(match cell.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(format!("'{cell}' is not a bool")),
        }),
        FieldType::String => Value::String(cell.to_string()),
        FieldType::Float32List => Value::Float32List(
            cell.trim_matches(|c| c == '[' || c == ']')
                .split([',', ';', ' '])
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .map_err(|_| format!("'{s}' in '{cell}' is not a float32"))
                })
                .collect::<std::result::Result<_, _>>()?,
        ),
    })
}

pub(crate) fn parse_time(cell: &str) -> std::result::Result<i64, String> {
    if let Ok(secs) = cell.parse::<f64>() {
        return Ok((secs * 1e6) as i64);
    }
    chrono::DateTime::parse_from_rfc3339(cell)
        .map(|t| t.timestamp_micros())
        .map_err(|e| format!("'{cell}' is neither RFC 3339 nor seconds since the epoch: {e}"))
}

/// A problem in the file, before the loaded-rows count is known.
struct ParseError {
    line: u64,
    column: String,
    message: String,
}

impl ParseError {
    fn new(line: u64, column: &str, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            column: column.to_string(),
            message: message.into(),
        }
    }
}

/// Parsed rows with the file line (or row) each came from.
#[derive(Default)]
struct Batch {
    rows: Vec<PushRow>,
    lines: Vec<u64>,
    unit: Unit,
}

type BatchSender = tokio::sync::mpsc::Sender<std::result::Result<Batch, ParseError>>;

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
    let report = write_batches(store, view_name, rx).await;
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
) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    while let Some(batch) = rx.recv().await {
        let batch =
            batch.map_err(|e| bad_at(Unit::Line, e.line, &e.column, e.message, report.written))?;
        write_batch(store, view_name, batch, &mut report).await?;
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

/// Parses CSV into batches of rows for `view`, sending each; stops early if the
/// receiver is gone.
fn parse_csv(
    view: &crate::FeatureView,
    input: impl Read,
    options: &LoadOptions,
    tx: &BatchSender,
) -> std::result::Result<(), ParseError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| ParseError::new(1, "", e.to_string()))?
        .clone();
    let mut columns = Vec::with_capacity(headers.len());
    for name in &headers {
        columns.push(column(view, name, options)?);
    }
    check_columns(view, &columns, options)?;
    let batch_rows = options.batch_rows.max(1);
    let mut batch = Batch::default();
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader.read_record(&mut record).map_err(|e| {
            ParseError::new(record.position().map_or(0, |p| p.line()), "", e.to_string())
        })?;
        if more {
            let line = record.position().map_or(0, |p| p.line());
            let mut row = PushRow {
                key: vec![String::new(); view.entity.join_keys.len()],
                event_time_micros: options.default_event_time_micros.unwrap_or(0),
                values: Vec::new(),
            };
            for ((column, cell), name) in columns.iter().zip(record.iter()).zip(headers.iter()) {
                match column {
                    Column::Key(k) => row.key[*k] = cell.to_string(),
                    Column::EventTime => {
                        row.event_time_micros =
                            parse_time(cell).map_err(|m| ParseError::new(line, name, m))?
                    }
                    Column::Field(f, t) => {
                        let value = if cell.is_empty() {
                            None
                        } else {
                            Some(
                                parse_value(*t, cell)
                                    .map_err(|m| ParseError::new(line, name, m))?,
                            )
                        };
                        row.values.push((f.clone(), value));
                    }
                    Column::Ignored => {}
                }
            }
            batch.rows.push(row);
            batch.lines.push(line);
        }
        let full = batch.rows.len() >= batch_rows || (!more && !batch.rows.is_empty());
        if full && tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
            return Ok(());
        }
        if !more {
            return Ok(());
        }
    }
}

/// What a file column is for `view`.
fn column(
    view: &crate::FeatureView,
    name: &str,
    options: &LoadOptions,
) -> std::result::Result<Column, ParseError> {
    Ok(
        if let Some(k) = view.entity.join_keys.iter().position(|k| k == name) {
            Column::Key(k)
        } else if name == EVENT_TIMESTAMP {
            Column::EventTime
        } else if let Some(f) = view.fields.iter().find(|f| f.name == name) {
            Column::Field(f.name.clone(), f.field_type)
        } else if options.ignore_unknown_columns {
            Column::Ignored
        } else {
            return Err(ParseError::new(
                1,
                name,
                format!(
                    "view '{}' has no field '{name}' (ignore such columns explicitly)",
                    view.name
                ),
            ));
        },
    )
}

/// Every join key has a column, and event times come from a column or the options.
fn check_columns(
    view: &crate::FeatureView,
    columns: &[Column],
    options: &LoadOptions,
) -> std::result::Result<(), ParseError> {
    for (k, key) in view.entity.join_keys.iter().enumerate() {
        if !columns
            .iter()
            .any(|c| matches!(c, Column::Key(i) if *i == k))
        {
            return Err(ParseError::new(1, key, "the join key column is missing"));
        }
    }
    let has_time = columns.iter().any(|c| matches!(c, Column::EventTime));
    if !has_time && options.default_event_time_micros.is_none() {
        return Err(ParseError::new(
            1,
            EVENT_TIMESTAMP,
            "no event_timestamp column and no default event time given",
        ));
    }
    Ok(())
}

/// Resolves a URL or local path to an object store and a path in it.
pub(crate) fn locate(
    location: &str,
) -> Result<(Arc<dyn object_store::ObjectStore>, object_store::path::Path)> {
    let url = match url::Url::parse(location) {
        Ok(u) if u.scheme().len() > 1 => u,
        _ => {
            let abs =
                std::fs::canonicalize(location).map_err(|e| FeatureError::InvalidRequest {
                    field: "url".into(),
                    message: format!("cannot read '{location}': {e}"),
                })?;
            url::Url::from_file_path(&abs).map_err(|()| FeatureError::InvalidRequest {
                field: "url".into(),
                message: format!("'{location}' is not a usable path"),
            })?
        }
    };
    let (store, path) = object_store::parse_url_opts(&url, std::env::vars()).map_err(|e| {
        FeatureError::InvalidRequest {
            field: "url".into(),
            message: format!("'{location}': {e}"),
        }
    })?;
    Ok((Arc::from(store), path))
}

/// Like [`locate`], for a file that may not exist yet (its directory must).
pub(crate) fn locate_for_write(
    location: &str,
) -> Result<(Arc<dyn object_store::ObjectStore>, object_store::path::Path)> {
    match url::Url::parse(location) {
        Ok(u) if u.scheme().len() > 1 => locate(location),
        _ => {
            let path = std::path::Path::new(location);
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => std::path::Path::new("."),
            };
            let name = path
                .file_name()
                .ok_or_else(|| FeatureError::InvalidRequest {
                    field: "output".into(),
                    message: format!("'{location}' names no file"),
                })?;
            let dir = std::fs::canonicalize(dir).map_err(|e| FeatureError::InvalidRequest {
                field: "output".into(),
                message: format!("'{}': {e}", dir.display()),
            })?;
            let url = url::Url::from_file_path(dir.join(name)).map_err(|()| {
                FeatureError::InvalidRequest {
                    field: "output".into(),
                    message: format!("'{location}' is not a usable path"),
                }
            })?;
            let (store, path) =
                object_store::parse_url(&url).map_err(|e| FeatureError::InvalidRequest {
                    field: "output".into(),
                    message: e.to_string(),
                })?;
            Ok((Arc::from(store), path))
        }
    }
}

/// Whether a location names a Parquet file (by extension), rather than CSV.
pub fn is_parquet(location: &str) -> bool {
    let lower = location.to_ascii_lowercase();
    lower.ends_with(".parquet") || lower.ends_with(".pq")
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
        .map(|f| column(&view, f.name(), options))
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
    }
    Ok(report)
}

/// Push rows from one Arrow batch; an error carries the batch row index.
fn rows_from_arrow(
    view: &crate::FeatureView,
    columns: &[Column],
    schema: &arrow_schema::Schema,
    batch: &arrow_array::RecordBatch,
    options: &LoadOptions,
) -> std::result::Result<Vec<PushRow>, (usize, ParseError)> {
    let whole = |e: crate::columns::CastError, name: &str| {
        (e.row.unwrap_or(0), ParseError::new(0, name, e.message))
    };
    enum Cast {
        Key(usize, arrow_array::ArrayRef),
        Time(arrow_array::ArrayRef),
        Field(String, FieldType, arrow_array::ArrayRef),
    }
    let mut casts = Vec::new();
    for ((c, field), array) in columns.iter().zip(schema.fields()).zip(batch.columns()) {
        let name = field.name();
        casts.push(match c {
            Column::Key(k) => Cast::Key(
                *k,
                crate::columns::cast_key(array).map_err(|e| whole(e, name))?,
            ),
            Column::EventTime => {
                Cast::Time(crate::columns::cast_to_micros(array).map_err(|e| whole(e, name))?)
            }
            Column::Field(f, t) => Cast::Field(
                f.clone(),
                *t,
                crate::columns::cast_to(array, *t).map_err(|e| whole(e, name))?,
            ),
            Column::Ignored => continue,
        });
    }
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let mut row = PushRow {
            key: vec![String::new(); view.entity.join_keys.len()],
            event_time_micros: options.default_event_time_micros.unwrap_or(0),
            values: Vec::new(),
        };
        for c in &casts {
            match c {
                Cast::Key(k, a) => {
                    row.key[*k] = crate::columns::key_at(a.as_ref(), i).ok_or_else(|| {
                        (
                            i,
                            ParseError::new(0, &view.entity.join_keys[*k], "the key is null"),
                        )
                    })?
                }
                Cast::Time(a) => {
                    row.event_time_micros =
                        crate::columns::micros_at(a.as_ref(), i).ok_or_else(|| {
                            (
                                i,
                                ParseError::new(0, EVENT_TIMESTAMP, "the event time is null"),
                            )
                        })?
                }
                Cast::Field(name, t, a) => row
                    .values
                    .push((name.clone(), crate::columns::value_at(a.as_ref(), *t, i))),
            }
        }
        rows.push(row);
    }
    Ok(rows)
}
