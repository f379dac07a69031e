//! Outcomes: the ground truth that arrives after a prediction (a customer churned, a
//! day's actual sales, the intent a person confirmed), stored beside the prediction log
//! as Parquet under `model=<name>/<time>-<instance>-<seq>.parquet` (one file per push or
//! load, put whole). Reading keeps one outcome per (entity, time): the last written, so
//! pushing the same outcome twice changes nothing and a correction replaces its value.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::error::ServeError;

/// Outcomes one push or load may carry.
pub const MAX_OUTCOMES: usize = 1_000_000;

/// Longest label kept, in bytes.
pub const MAX_LABEL_BYTES: usize = 1024;

/// One outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// A customer id, `sku|location`, a session or a request id.
    pub entity: String,
    /// When it happened, microseconds since the epoch (UTC).
    pub time_micros: i64,
    /// 1 or 0, or an actual; `None` for a label.
    pub value: Option<f64>,
    /// A confirmed label, for a classifier.
    pub label: Option<String>,
}

/// Checks outcomes from a client: each with an entity (as long as a feature store key
/// may be), a value that is a finite number or a label of bounded length; the message
/// names the outcome.
pub fn check(outcomes: &[Outcome], field: &str) -> Result<(), ServeError> {
    if outcomes.is_empty() {
        return Err(ServeError::invalid(field, "give at least one outcome"));
    }
    if outcomes.len() > MAX_OUTCOMES {
        return Err(ServeError::invalid(
            field,
            format!(
                "{} outcomes exceed the maximum of {MAX_OUTCOMES} per call",
                outcomes.len()
            ),
        ));
    }
    for (i, o) in outcomes.iter().enumerate() {
        if o.entity.trim().is_empty() {
            return Err(ServeError::invalid(
                format!("{field}[{i}].entity"),
                "name what the outcome is about",
            ));
        }
        crate::serving::lookup::check_key(format!("{field}[{i}].entity"), &o.entity)?;
        if o.value.is_some_and(|v| !v.is_finite()) {
            return Err(ServeError::invalid(
                format!("{field}[{i}].value"),
                "must be a finite number",
            ));
        }
        if o.label.as_ref().is_some_and(|l| l.len() > MAX_LABEL_BYTES) {
            return Err(ServeError::invalid(
                format!("{field}[{i}].label"),
                format!("longer than {MAX_LABEL_BYTES} bytes"),
            ));
        }
        if o.value.is_none() && o.label.is_none() {
            return Err(ServeError::invalid(
                format!("{field}[{i}].value"),
                "give a value or a label",
            ));
        }
    }
    Ok(())
}

/// The outcomes' store: a folder or bucket prefix holding a folder per model.
#[derive(Debug, Clone)]
pub struct OutcomeStore {
    store: Arc<dyn ObjectStore>,
    instance: String,
    sequence: Arc<AtomicU64>,
}

impl OutcomeStore {
    /// Outcomes in `store`, files named with `instance`.
    pub fn new(store: Arc<dyn ObjectStore>, instance: &str) -> OutcomeStore {
        OutcomeStore {
            store,
            instance: crate::predlog::file_safe(instance),
            sequence: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Writes `outcomes` of `model` as one file; how many were written.
    pub async fn write(&self, model: &str, outcomes: &[Outcome]) -> Result<u64, ServeError> {
        let bytes = encode(outcomes).map_err(ServeError::Internal)?;
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let path = Path::from(format!(
            "model={}/{:020}-{}-{:06}.parquet",
            crate::predlog::file_safe(model),
            chrono::Utc::now().timestamp_micros(),
            self.instance,
            sequence
        ));
        self.store
            .put(&path, bytes.into())
            .await
            .map_err(|e| ServeError::Unavailable(format!("the outcome store: {e}")))?;
        Ok(outcomes.len() as u64)
    }

    /// Every outcome of `model`, one per (entity, time): the last written.
    pub async fn read(&self, model: &str) -> Result<Vec<Outcome>, ServeError> {
        let prefix = Path::from(format!("model={}", crate::predlog::file_safe(model)));
        let mut files: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|e| ServeError::Unavailable(format!("the outcome store: {e}")))?;
        files.retain(|p| p.as_ref().ends_with(".parquet"));
        // Named by the time they were written: in name order, a later file wins.
        files.sort();
        let mut latest: HashMap<(String, i64), Outcome> = HashMap::new();
        for path in files {
            let unavailable =
                |e: object_store::Error| ServeError::Unavailable(format!("the outcome store: {e}"));
            let got = self.store.get(&path).await.map_err(unavailable)?;
            let bytes = got.bytes().await.map_err(unavailable)?;
            for o in decode(bytes).map_err(|e| ServeError::Internal(format!("{path}: {e}")))? {
                latest.insert((o.entity.clone(), o.time_micros), o);
            }
        }
        let mut all: Vec<Outcome> = latest.into_values().collect();
        all.sort_by(|a, b| (&a.entity, a.time_micros).cmp(&(&b.entity, b.time_micros)));
        Ok(all)
    }
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("entity", DataType::Utf8, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("value", DataType::Float64, true),
        Field::new("label", DataType::Utf8, true),
    ]))
}

fn encode(outcomes: &[Outcome]) -> Result<bytes::Bytes, String> {
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                outcomes.iter().map(|o| o.entity.as_str()),
            )),
            mercator_features::columns::timestamp_column(outcomes.iter().map(|o| o.time_micros)),
            Arc::new(Float64Array::from_iter(outcomes.iter().map(|o| o.value))),
            Arc::new(StringArray::from_iter(
                outcomes.iter().map(|o| o.label.as_deref()),
            )),
        ],
    )
    .map_err(|e| e.to_string())?;
    let mut buffer = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, batch.schema(), None)
        .map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(bytes::Bytes::from(buffer))
}

fn decode(bytes: bytes::Bytes) -> Result<Vec<Outcome>, String> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| format!("no column {name}"))
        };
        let entity = column("entity")?
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("entity is not text")?;
        let time = column("time")?
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or("time is not a timestamp")?;
        let value = column("value")?
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or("value is not float64")?;
        let label = column("label")?
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("label is not text")?;
        for r in 0..batch.num_rows() {
            out.push(Outcome {
                entity: entity.value(r).to_string(),
                time_micros: time.value(r),
                value: (!value.is_null(r)).then(|| value.value(r)),
                label: (!label.is_null(r)).then(|| label.value(r).to_string()),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(entity: &str, time: i64, value: f64) -> Outcome {
        Outcome {
            entity: entity.into(),
            time_micros: time,
            value: Some(value),
            label: None,
        }
    }

    #[tokio::test]
    async fn the_last_write_of_an_entity_and_time_wins_and_repeats_change_nothing() {
        let store = OutcomeStore::new(Arc::new(object_store::memory::InMemory::new()), "a");
        store
            .write("churn", &[outcome("c1", 10, 1.0), outcome("c2", 10, 0.0)])
            .await
            .expect("write");
        store
            .write("churn", &[outcome("c1", 10, 1.0)])
            .await
            .expect("again");
        store
            .write("churn", &[outcome("c2", 10, 1.0), outcome("c2", 20, 0.0)])
            .await
            .expect("a correction");
        store
            .write("other", &[outcome("c9", 1, 1.0)])
            .await
            .expect("another model");
        let read = store.read("churn").await.expect("read");
        assert_eq!(
            read,
            [
                outcome("c1", 10, 1.0),
                outcome("c2", 10, 1.0),
                outcome("c2", 20, 0.0)
            ]
        );
    }

    #[test]
    fn bad_outcomes_are_refused_by_field() {
        let good = outcome("c1", 1, 1.0);
        for (bad, field) in [
            (vec![], "outcomes"),
            (vec![outcome(" ", 1, 1.0)], "outcomes[0].entity"),
            (
                vec![good.clone(), outcome("c", 1, f64::NAN)],
                "outcomes[1].value",
            ),
            (
                vec![Outcome {
                    value: None,
                    ..good.clone()
                }],
                "outcomes[0].value",
            ),
            (
                vec![Outcome {
                    label: Some("x".repeat(2000)),
                    ..good.clone()
                }],
                "outcomes[0].label",
            ),
            (
                vec![outcome(&"k".repeat(5000), 1, 1.0)],
                "outcomes[0].entity",
            ),
        ] {
            let e = check(&bad, "outcomes").expect_err(field);
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
        assert!(check(&[good], "outcomes").is_ok());
    }
}
