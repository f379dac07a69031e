//! The prediction log's writer: rows gathered until `flush_rows` of them wait or
//! `flush_every` has passed since the first, then one Parquet file per model and day,
//! `model=<name>/date=<YYYY-MM-DD>/<instance>-<sequence>.parquet`, put whole (a reader
//! never sees half a file). A failed put is retried with backoff three times, then its
//! rows are counted as dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::{Float64Builder, ListBuilder};
use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use object_store::ObjectStore;
use object_store::path::Path;
use prometheus::IntCounterVec;
use tokio::sync::mpsc;

use super::{Call, Instance, Message};

/// How the writer batches.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    /// Names this server in file names.
    pub(super) instance: String,
    /// Rows that make a flush.
    pub(super) flush_rows: usize,
    /// The longest a row waits.
    pub(super) flush_every: Duration,
}

/// `name` with anything but letters, digits, `-`, `_` and `.` replaced by `_`.
pub fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The store and folder rows go to: `url` (a local folder, `file://`, `s3://`, …), or
/// `<data_dir>/predictions` when empty.
pub fn open(url: &str, data_dir: &std::path::Path) -> Result<Arc<dyn ObjectStore>, String> {
    let is_url = url::Url::parse(url).is_ok_and(|u| u.scheme().len() > 1 && u.scheme() != "file");
    if is_url {
        let parsed = url::Url::parse(url).map_err(|e| format!("prediction_log.url: {e}"))?;
        let (store, root) =
            object_store::parse_url_opts(&parsed, mercator_features::object_env::from_env())
                .map_err(|e| format!("prediction_log.url: '{url}': {e}"))?;
        return Ok(Arc::new(object_store::prefix::PrefixStore::new(
            store, root,
        )));
    }
    let dir = match url.strip_prefix("file://") {
        Some(path) => std::path::PathBuf::from(path),
        None if url.is_empty() => data_dir.join("predictions"),
        None => std::path::PathBuf::from(url),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("prediction_log.url: '{}': {e}", dir.display()))?;
    let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
        .map_err(|e| format!("prediction_log.url: '{}': {e}", dir.display()))?;
    Ok(Arc::new(store))
}

/// How often the writer drains its queue. It polls rather than waits on each message,
/// so a call's send never wakes a task (the cost that dominated logging at one row a
/// call); a row waits at most this long beyond `flush_secs`, and a flush asked for at
/// shutdown at most this long.
const DRAIN_EVERY: Duration = Duration::from_millis(20);

/// The writer's loop; it ends when every handle is gone, after writing what it holds.
pub(super) async fn run(
    store: Arc<dyn ObjectStore>,
    mut rx: mpsc::Receiver<Message>,
    settings: Settings,
    counted: IntCounterVec,
) {
    let mut rows: Vec<Call> = Vec::new();
    let mut waiting = 0;
    let mut sequence: u64 = 0;
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(DRAIN_EVERY.min(settings.flush_every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut flushed: Vec<tokio::sync::oneshot::Sender<()>> = Vec::new();
        let mut closed = false;
        loop {
            match rx.try_recv() {
                Ok(Message::Call(call)) => {
                    if rows.is_empty() {
                        deadline = Some(tokio::time::Instant::now() + settings.flush_every);
                    }
                    waiting += call.instances.len();
                    rows.push(call);
                    if waiting >= settings.flush_rows {
                        let calls = std::mem::take(&mut rows);
                        write(&store, &settings, calls, &mut sequence, &counted).await;
                        (waiting, deadline) = (0, None);
                    }
                }
                Ok(Message::Flush(done)) => flushed.push(done),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        let due = deadline.is_some_and(|at| tokio::time::Instant::now() >= at);
        if due || !flushed.is_empty() || closed {
            let calls = std::mem::take(&mut rows);
            write(&store, &settings, calls, &mut sequence, &counted).await;
            (waiting, deadline) = (0, None);
        }
        for done in flushed {
            let _ = done.send(());
        }
        if closed {
            return;
        }
    }
}

/// Writes the calls' rows, one file per model and day.
async fn write(
    store: &Arc<dyn ObjectStore>,
    settings: &Settings,
    calls: Vec<Call>,
    sequence: &mut u64,
    counted: &IntCounterVec,
) {
    // Grouped by model and day number (the day's name is written once per file).
    let mut groups: BTreeMap<(String, i64), Vec<Call>> = BTreeMap::new();
    for call in calls {
        let day = call.time_micros.div_euclid(86_400_000_000);
        groups
            .entry((call.model.clone(), day))
            .or_default()
            .push(call);
    }
    for ((model, day), calls) in groups {
        let day = chrono::DateTime::from_timestamp_micros(day * 86_400_000_000)
            .unwrap_or_default()
            .format("%Y-%m-%d");
        *sequence += 1;
        let path = Path::from(format!(
            "model={}/date={day}/{}-{:020}-{:06}.parquet",
            file_safe(&model),
            settings.instance,
            chrono::Utc::now().timestamp_micros(),
            sequence
        ));
        let rows: Vec<(&Call, &Instance)> = calls
            .iter()
            .flat_map(|c| c.instances.iter().map(move |i| (c, i)))
            .collect();
        let n = rows.len() as u64;
        let outcome = match encode(&rows) {
            Ok(bytes) => put(store, &path, bytes).await,
            Err(e) => {
                tracing::warn!(error = %e, "prediction log: a batch could not be encoded");
                false
            }
        };
        let label = if outcome {
            "written"
        } else {
            "dropped_store_error"
        };
        counted.with_label_values(&[&model, label]).inc_by(n);
    }
}

/// Puts a file, retrying with backoff (0.1 s, 0.4 s, 1.6 s); whether it landed.
async fn put(store: &Arc<dyn ObjectStore>, path: &Path, bytes: bytes::Bytes) -> bool {
    let mut wait = Duration::from_millis(100);
    for attempt in 0..4 {
        match store.put(path, bytes.clone().into()).await {
            Ok(_) => return true,
            Err(e) if attempt < 3 => {
                tracing::debug!(error = %e, %path, "prediction log: retrying a write");
                tokio::time::sleep(wait).await;
                wait *= 4;
            }
            Err(e) => tracing::warn!(error = %e, %path, "prediction log: a file was not written"),
        }
    }
    false
}

/// A text column from each row.
fn text<'a>(
    rows: &[(&'a Call, &'a Instance)],
    f: impl Fn(&'a Call, &'a Instance) -> &'a str,
) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        rows.iter().map(|(c, i)| f(c, i)),
    ))
}

/// A nullable text column from each row.
fn maybe_text<'a>(
    rows: &[(&'a Call, &'a Instance)],
    f: impl Fn(&'a Instance) -> Option<&'a str>,
) -> ArrayRef {
    Arc::new(StringArray::from_iter(rows.iter().map(|(_, i)| f(i))))
}

/// A nullable number column from each row's outputs.
fn number(rows: &[(&Call, &Instance)], f: impl Fn(&Instance) -> Option<f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(rows.iter().map(|(_, i)| f(i))))
}

/// The rows as one Parquet file.
fn encode(rows: &[(&Call, &Instance)]) -> Result<bytes::Bytes, String> {
    let mut fields = vec![
        Field::new("request_id", DataType::Utf8, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("version", DataType::Utf8, false),
        Field::new("route", DataType::Utf8, false),
        Field::new("api", DataType::Utf8, false),
        Field::new("principal", DataType::Utf8, false),
        Field::new("entity", DataType::Utf8, false),
        Field::new("code", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, false),
        Field::new("latency_us", DataType::Int64, false),
        Field::new("sampling_fraction", DataType::Float64, false),
        Field::new("probability", DataType::Float64, true),
        Field::new("band", DataType::Utf8, true),
        Field::new("intent", DataType::Utf8, true),
        Field::new("action", DataType::Utf8, true),
        Field::new("rule", DataType::Utf8, true),
        Field::new("control", DataType::Boolean, true),
        Field::new("experiment", DataType::Utf8, true),
        Field::new("uplift", DataType::Float64, true),
        Field::new("handoff", DataType::Boolean, true),
        Field::new("forecast_date", DataType::Utf8, true),
        Field::new("mean", DataType::Float64, true),
        Field::new(
            "quantiles",
            DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
            true,
        ),
        Field::new(
            "quantile_levels",
            DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
            true,
        ),
        Field::new("order_quantity", DataType::Float64, true),
        Field::new("reorder_point", DataType::Float64, true),
    ];
    let list = |f: &dyn Fn(&Instance) -> Option<&Vec<f64>>| -> ArrayRef {
        let mut built = ListBuilder::new(Float64Builder::new());
        for (_, i) in rows {
            match f(i) {
                Some(q) => {
                    built.values().append_slice(q);
                    built.append(true);
                }
                None => built.append(false),
            }
        }
        Arc::new(built.finish())
    };
    let mut columns: Vec<ArrayRef> = vec![
        text(rows, |c, _| &c.request_id),
        mercator_features::columns::timestamp_column(rows.iter().map(|(c, _)| c.time_micros)),
        text(rows, |c, i| i.version.as_deref().unwrap_or(&c.version)),
        text(rows, |c, _| &c.route),
        text(rows, |c, _| c.api),
        text(rows, |c, _| &c.principal),
        text(rows, |c, i| i.entity.as_deref().unwrap_or(&c.entity)),
        text(rows, |c, _| c.code),
        text(rows, |c, _| &c.error),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(c, _)| c.latency_micros),
        )),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|(c, _)| c.sampling_fraction),
        )),
        number(rows, |i| i.outputs.probability),
        maybe_text(rows, |i| i.outputs.band.as_deref()),
        maybe_text(rows, |i| i.outputs.intent.as_deref()),
        maybe_text(rows, |i| i.outputs.action.as_deref()),
        maybe_text(rows, |i| i.outputs.rule.as_deref()),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|(_, i)| i.outputs.control),
        )),
        maybe_text(rows, |i| i.outputs.experiment.as_deref()),
        number(rows, |i| i.outputs.uplift),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|(_, i)| i.outputs.handoff),
        )),
        maybe_text(rows, |i| i.outputs.date.as_deref()),
        number(rows, |i| i.outputs.mean),
        list(&|i| i.outputs.quantiles.as_ref()),
        list(&|i| i.outputs.quantile_levels.as_ref()),
        number(rows, |i| i.outputs.order_quantity),
        number(rows, |i| i.outputs.reorder_point),
    ];
    let mut model_columns = super::columns::Columns::default();
    for (_, i) in rows {
        model_columns.push(i.seen.as_ref());
    }
    for (field, array) in model_columns.finish() {
        if fields.iter().all(|f| f.name() != field.name()) {
            fields.push(field);
            columns.push(array);
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())?;
    let mut buffer = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut buffer, batch.schema(), Some(properties()))
            .map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(bytes::Bytes::from(buffer))
}

/// How the log's files are encoded, for the CPU they cost the server (measured: see
/// docs/BENCHMARKS.md): a dictionary only for the columns that repeat a few values (a
/// dictionary tried on every number and id is work thrown away); statistics only for
/// `time`, so a reader can still skip a file by time (min/max of every text column was a
/// tenth of the server's CPU at 64 rows a call); uncompressed (a compacting job can
/// recompress files at rest).
fn properties() -> parquet::file::properties::WriterProperties {
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    use parquet::schema::types::ColumnPath;
    let mut builder = WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_column_statistics_enabled(ColumnPath::from("time"), EnabledStatistics::Chunk);
    for column in [
        "version",
        "route",
        "api",
        "principal",
        "code",
        "error",
        "band",
        "intent",
        "action",
        "rule",
    ] {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), true);
    }
    builder.build()
}
