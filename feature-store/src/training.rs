//! Training sets: an entity dataframe in (CSV or Parquet: the entity's join key columns
//! and `event_timestamp`), point-in-time features out, as a Parquet file with the keys,
//! the timestamp and one column per feature named `view__field` (Feast's full names).

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field as ArrowField, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::columns;
use crate::definitions::Definitions;
use crate::historical::EntityRow;
use crate::ingest::{EVENT_TIMESTAMP, is_parquet, locate};
use crate::online::Feature;
use crate::value::FieldType;
use crate::{FeatureError, Result};

fn bad(location: &str, message: impl std::fmt::Display) -> FeatureError {
    FeatureError::InvalidRequest {
        field: format!("entities '{location}'"),
        message: message.to_string(),
    }
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

/// Reads an entity dataframe from a path or URL.
pub async fn read_entity_rows(location: &str, join_keys: &[String]) -> Result<Vec<EntityRow>> {
    let (store, path) = locate(location)?;
    let bytes = store
        .get(&path)
        .await
        .map_err(|e| bad(location, e))?
        .bytes()
        .await
        .map_err(|e| bad(location, e))?;
    if is_parquet(location) {
        entity_rows_from_parquet(location, bytes, join_keys)
    } else {
        entity_rows_from_csv(location, &bytes, join_keys)
    }
}

fn entity_rows_from_csv(
    location: &str,
    bytes: &[u8],
    join_keys: &[String],
) -> Result<Vec<EntityRow>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().map_err(|e| bad(location, e))?.clone();
    let position = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(location, format!("no '{name}' column")))
    };
    let keys = join_keys
        .iter()
        .map(|k| position(k))
        .collect::<Result<Vec<_>>>()?;
    let time = position(EVENT_TIMESTAMP)?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| bad(location, e))?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |i: usize| record.get(i).unwrap_or_default();
        let timestamp_micros = crate::ingest::parse_time(cell(time))
            .map_err(|m| bad(location, format!("line {line}: {m}")))?;
        rows.push(EntityRow {
            key: keys.iter().map(|&k| cell(k).to_string()).collect(),
            timestamp_micros,
        });
    }
    Ok(rows)
}

fn entity_rows_from_parquet(
    location: &str,
    bytes: bytes::Bytes,
    join_keys: &[String],
) -> Result<Vec<EntityRow>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| bad(location, format!("not a readable Parquet file: {e}")))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(location, e))?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| bad(location, format!("no '{name}' column")))
        };
        let cast_err = |name: &str, e: columns::CastError| {
            bad(
                location,
                format!(
                    "column '{name}'{}: {}",
                    e.row
                        .map(|r| format!(", row {}", rows.len() + r + 1))
                        .unwrap_or_default(),
                    e.message
                ),
            )
        };
        let keys = join_keys
            .iter()
            .map(|k| columns::cast_key(&column(k)?).map_err(|e| cast_err(k, e)))
            .collect::<Result<Vec<_>>>()?;
        let time = columns::cast_to_micros(&column(EVENT_TIMESTAMP)?)
            .map_err(|e| cast_err(EVENT_TIMESTAMP, e))?;
        for i in 0..batch.num_rows() {
            let timestamp_micros = columns::micros_at(time.as_ref(), i).ok_or_else(|| {
                bad(
                    location,
                    format!("row {}: the event_timestamp is null", rows.len() + 1),
                )
            })?;
            rows.push(EntityRow {
                key: keys
                    .iter()
                    .map(|k| columns::key_at(k.as_ref(), i).unwrap_or_default())
                    .collect(),
                timestamp_micros,
            });
        }
    }
    Ok(rows)
}

/// Writes a training set as Parquet to a path or URL; returns the rows written.
pub async fn write_training_set(
    location: &str,
    defs: &Definitions,
    join_keys: &[String],
    features: &[String],
    rows: &[EntityRow],
    results: &[Vec<Feature>],
) -> Result<usize> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (k, name) in join_keys.iter().enumerate() {
        fields.push(ArrowField::new(name, DataType::Utf8, false));
        arrays.push(Arc::new(arrow_array::StringArray::from_iter_values(
            rows.iter().map(|r| r.key.get(k).map_or("", String::as_str)),
        )));
    }
    fields.push(ArrowField::new(
        EVENT_TIMESTAMP,
        columns::timestamp_type(),
        false,
    ));
    arrays.push(columns::timestamp_column(
        rows.iter().map(|r| r.timestamp_micros),
    ));
    for (i, f) in features.iter().enumerate() {
        let field_type = field_type(defs, f)?;
        fields.push(ArrowField::new(
            f.replacen(':', "__", 1),
            columns::arrow_type(field_type),
            true,
        ));
        arrays.push(columns::build_column(
            field_type,
            results
                .iter()
                .map(|r| r.get(i).and_then(|(v, _)| v.as_ref())),
        ));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| FeatureError::Corrupt(format!("building the training set: {e}")))?;
    let mut buffer = Vec::new();
    let failed = |e: parquet::errors::ParquetError| {
        FeatureError::Corrupt(format!("writing the training set: {e}"))
    };
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), None).map_err(failed)?;
    writer.write(&batch).map_err(failed)?;
    writer.close().map_err(failed)?;
    let (store, path) = crate::ingest::locate_for_write(location)?;
    store.put(&path, buffer.into()).await.map_err(|e| {
        FeatureError::Unavailable(format!("training set store, writing '{location}': {e}"))
    })?;
    Ok(rows.len())
}

fn field_type(defs: &Definitions, feature: &str) -> Result<FieldType> {
    let (view, field) = feature.split_once(':').unwrap_or((feature, ""));
    defs.views
        .get(view)
        .and_then(|v| v.fields.iter().find(|f| f.name == field))
        .map(|f| f.field_type)
        .ok_or_else(|| FeatureError::InvalidRequest {
            field: "features".into(),
            message: format!("'{feature}' is not a defined field"),
        })
}
