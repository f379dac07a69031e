//! Parsing a load's input: cells by field type, CSV rows and Arrow batches into push
//! rows, columns checked against the view; errors name the line and column.

use std::io::Read;

use crate::FeatureError;
use crate::online::PushRow;
use crate::value::{FieldType, Value};

pub use crate::columns::EVENT_TIMESTAMP;

/// Told the rows read so far after each batch a load writes (a CLI's progress bar).
#[derive(Clone, Default)]
pub struct RowsDone(pub Option<std::sync::Arc<dyn Fn(usize) + Send + Sync>>);

impl std::fmt::Debug for RowsDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "RowsDone(..)"
        } else {
            "RowsDone(none)"
        })
    }
}

impl RowsDone {
    /// Reports `rows` read so far.
    pub fn report(&self, rows: usize) {
        if let Some(f) = &self.0 {
            f(rows);
        }
    }
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
    /// Told the rows read after each batch.
    pub progress: RowsDone,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            default_event_time_micros: None,
            ignore_unknown_columns: false,
            batch_rows: 10_000,
            progress: RowsDone::default(),
        }
    }
}

pub(super) enum Column {
    Key(usize),
    EventTime,
    Field(String, FieldType),
    Ignored,
}

/// How a file names its rows in errors: CSV by line, Parquet by row.
#[derive(Debug, Clone, Copy, Default)]
pub(super) enum Unit {
    #[default]
    Line,
    Row,
}

pub(super) fn bad_at(
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
/// `,` or spaces, optionally in brackets); the error says what the cell is not, without
/// quoting it: a file's contents never reach an error message (the caller names the line
/// and column).
pub fn parse_value(t: FieldType, cell: &str) -> std::result::Result<Value, String> {
    let err = || format!("not a {}", t.as_str());
    Ok(match t {
        FieldType::Float32 => Value::Float32(cell.parse().map_err(|_| err())?),
        FieldType::Float64 => Value::Float64(cell.parse().map_err(|_| err())?),
        FieldType::Int64 => Value::Int64(cell.parse().map_err(|_| err())?),
        FieldType::Bool => Value::Bool(parse_bool(cell).ok_or("not a bool (true, false, 1 or 0)")?),
        FieldType::String => Value::String(cell.to_string()),
        FieldType::Date if crate::value::is_date(cell.trim()) => Value::String(cell.trim().into()),
        FieldType::Date => return Err("not a YYYY-MM-DD date".into()),
        FieldType::Float32List => Value::Float32List(
            cell.trim_matches(|c| c == '[' || c == ']')
                .split([',', ';', ' '])
                .filter(|s| !s.is_empty())
                .enumerate()
                .map(|(i, s)| {
                    s.parse()
                        .map_err(|_| format!("item {} of the list is not a float32", i + 1))
                })
                .collect::<std::result::Result<_, _>>()?,
        ),
    })
}

/// A CSV cell as a bool: `true`/`false` in any case (pandas writes `True`), `1`/`0`. The
/// one rule for every reader of a table: `features load` and the training profile.
pub fn parse_bool(cell: &str) -> Option<bool> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

pub(crate) fn parse_time(cell: &str) -> std::result::Result<i64, String> {
    if let Ok(secs) = cell.parse::<f64>() {
        return Ok((secs * 1e6) as i64);
    }
    chrono::DateTime::parse_from_rfc3339(cell)
        .map(|t| t.timestamp_micros())
        .map_err(|e| format!("neither RFC 3339 nor seconds since the epoch: {e}"))
}

/// A problem in the file, before the loaded-rows count is known.
pub(super) struct ParseError {
    pub(super) line: u64,
    pub(super) column: String,
    pub(super) message: String,
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
pub(super) struct Batch {
    pub(super) rows: Vec<PushRow>,
    pub(super) lines: Vec<u64>,
    pub(super) unit: Unit,
}

pub(super) type BatchSender = tokio::sync::mpsc::Sender<std::result::Result<Batch, ParseError>>;

/// Parses CSV into batches of rows for `view`, sending each; stops early if the
/// receiver is gone.
pub(super) fn parse_csv(
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
        columns.push(column(view, columns.len(), name, options)?);
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
pub(super) fn column(
    view: &crate::FeatureView,
    index: usize,
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
            // An unknown header is the file's text: named only when it has the shape of a
            // field name (what a user mistyped), else by position.
            let shaped = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            let column = if shaped {
                name.to_string()
            } else {
                format!("#{}", index + 1)
            };
            return Err(ParseError::new(
                1,
                &column,
                format!(
                    "view '{}' has no field of that name (ignore such columns explicitly)",
                    view.name
                ),
            ));
        },
    )
}

/// Every join key has a column, and event times come from a column or the options.
pub(super) fn check_columns(
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

/// Push rows from one Arrow batch; an error carries the batch row index.
pub(super) fn rows_from_arrow(
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
