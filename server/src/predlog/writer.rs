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

use super::{Message, Row};

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
pub(super) fn file_safe(name: &str) -> String {
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
pub(super) fn open(url: &str, data_dir: &std::path::Path) -> Result<Arc<dyn ObjectStore>, String> {
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

/// The writer's loop; it ends when every handle is gone, after writing what it holds.
pub(super) async fn run(
    store: Arc<dyn ObjectStore>,
    mut rx: mpsc::Receiver<Message>,
    settings: Settings,
    counted: IntCounterVec,
) {
    let mut rows: Vec<Row> = Vec::new();
    let mut sequence: u64 = 0;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let message = match deadline {
            Some(at) => tokio::select! {
                m = rx.recv() => m,
                () = tokio::time::sleep_until(at) => {
                    write(&store, &settings, std::mem::take(&mut rows), &mut sequence, &counted).await;
                    deadline = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match message {
            Some(Message::Row(row)) => {
                if rows.is_empty() {
                    deadline = Some(tokio::time::Instant::now() + settings.flush_every);
                }
                rows.push(row);
                if rows.len() >= settings.flush_rows {
                    write(
                        &store,
                        &settings,
                        std::mem::take(&mut rows),
                        &mut sequence,
                        &counted,
                    )
                    .await;
                    deadline = None;
                }
            }
            Some(Message::Flush(done)) => {
                write(
                    &store,
                    &settings,
                    std::mem::take(&mut rows),
                    &mut sequence,
                    &counted,
                )
                .await;
                deadline = None;
                let _ = done.send(());
            }
            None => {
                write(&store, &settings, rows, &mut sequence, &counted).await;
                return;
            }
        }
    }
}

/// Writes `rows`, one file per model and day.
async fn write(
    store: &Arc<dyn ObjectStore>,
    settings: &Settings,
    rows: Vec<Row>,
    sequence: &mut u64,
    counted: &IntCounterVec,
) {
    let mut groups: BTreeMap<(String, String), Vec<Row>> = BTreeMap::new();
    for row in rows {
        let day = chrono::DateTime::from_timestamp_micros(row.time_micros)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string();
        groups
            .entry((row.model.clone(), day))
            .or_default()
            .push(row);
    }
    for ((model, day), rows) in groups {
        *sequence += 1;
        let path = Path::from(format!(
            "model={}/date={day}/{}-{:020}-{:06}.parquet",
            file_safe(&model),
            settings.instance,
            chrono::Utc::now().timestamp_micros(),
            sequence
        ));
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

/// The rows as one Parquet file.
fn encode(rows: &[Row]) -> Result<bytes::Bytes, String> {
    let text = |f: &dyn Fn(&Row) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("request_id", DataType::Utf8, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("model", DataType::Utf8, false),
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
        Field::new("handoff", DataType::Boolean, true),
        Field::new("date", DataType::Utf8, true),
        Field::new("mean", DataType::Float64, true),
        Field::new(
            "quantiles",
            DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
            true,
        ),
        Field::new("order_quantity", DataType::Float64, true),
        Field::new("reorder_point", DataType::Float64, true),
    ]));
    let number = |f: &dyn Fn(&Row) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from_iter(rows.iter().map(f)))
    };
    let maybe_text = |f: &dyn Fn(&Row) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from_iter(rows.iter().map(f)))
    };
    let mut quantiles = ListBuilder::new(Float64Builder::new());
    for r in rows {
        match &r.outputs.quantiles {
            Some(q) => {
                quantiles.values().append_slice(q);
                quantiles.append(true);
            }
            None => quantiles.append(false),
        }
    }
    let columns: Vec<ArrayRef> = vec![
        text(&|r| &r.request_id),
        Arc::new(
            arrow_array::TimestampMicrosecondArray::from_iter_values(
                rows.iter().map(|r| r.time_micros),
            )
            .with_timezone("UTC"),
        ),
        text(&|r| &r.model),
        text(&|r| &r.version),
        text(&|r| &r.route),
        text(&|r| r.api),
        text(&|r| &r.principal),
        text(&|r| &r.entity),
        text(&|r| r.code),
        text(&|r| &r.error),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.latency_micros),
        )),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.sampling_fraction),
        )),
        number(&|r| r.outputs.probability),
        maybe_text(&|r| r.outputs.band.as_deref()),
        maybe_text(&|r| r.outputs.intent.as_deref()),
        maybe_text(&|r| r.outputs.action.as_deref()),
        maybe_text(&|r| r.outputs.rule.as_deref()),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|r| r.outputs.handoff),
        )),
        maybe_text(&|r| r.outputs.date.as_deref()),
        number(&|r| r.outputs.mean),
        Arc::new(quantiles.finish()),
        number(&|r| r.outputs.order_quantity),
        number(&|r| r.outputs.reorder_point),
    ];
    let batch = RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())?;
    let mut buffer = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, batch.schema(), None)
        .map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(bytes::Bytes::from(buffer))
}
