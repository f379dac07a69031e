//! Training sets: an entity dataframe in (CSV or Parquet: the entity's join key columns,
//! `event_timestamp`, and anything else, such as a label), point-in-time features out,
//! as a Parquet file with every column of the entity dataframe, in its order and types,
//! then one column per feature named `view__field` (Feast's full names).

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field as ArrowField, Schema, SchemaRef};
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

/// An entity dataframe as read: the rows to join (keys and time, in file order) and
/// every column of the file, typed, to be written back beside the features (Feast keeps
/// the whole entity dataframe: labels, weights, anything the caller put there).
#[derive(Debug)]
pub struct EntityFrame {
    /// The rows to look up, in the file's order.
    pub rows: Vec<EntityRow>,
    /// The file's columns, in its order.
    pub schema: SchemaRef,
    /// The file's data, as consecutive batches of `rows`.
    pub batches: Vec<RecordBatch>,
}

/// Reads an entity dataframe from a path or URL. Parquet columns keep their types;
/// CSV columns are typed as pandas would read them (int64, float64, bool, else string),
/// except that join keys stay strings (a key `00123` is not the number 123) and
/// `event_timestamp` becomes a UTC timestamp.
pub async fn read_entities(location: &str, join_keys: &[String]) -> Result<EntityFrame> {
    let (store, path) = locate(location)?;
    let bytes = store
        .get(&path)
        .await
        .map_err(|e| bad(location, e))?
        .bytes()
        .await
        .map_err(|e| bad(location, e))?;
    if is_parquet(location) {
        entities_from_parquet(location, bytes, join_keys)
    } else {
        entities_from_csv(location, &bytes, join_keys)
    }
}

fn entities_from_csv(location: &str, bytes: &[u8], join_keys: &[String]) -> Result<EntityFrame> {
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
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
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
        for (column, value) in cells.iter_mut().zip(record.iter()) {
            column.push(value.to_string());
        }
    }
    let mut fields = Vec::with_capacity(headers.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(headers.len());
    for (i, (name, column)) in headers.iter().zip(cells).enumerate() {
        let array: ArrayRef = if i == time {
            columns::timestamp_column(rows.iter().map(|r| r.timestamp_micros))
        } else if keys.contains(&i) {
            Arc::new(arrow_array::StringArray::from(column))
        } else {
            csv_column(&column)
        };
        fields.push(ArrowField::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(|e| bad(location, e))?;
    Ok(EntityFrame {
        rows,
        schema,
        batches: vec![batch],
    })
}

/// A CSV column typed as pandas' `read_csv` would: int64 when every cell is an integer,
/// float64 when every cell is a number (NaN and inf included), bool when every cell is
/// true/false (any case), else string; empty cells are nulls (an int column with gaps
/// stays int64, nullable, where pandas would widen it to float64).
fn csv_column(cells: &[String]) -> ArrayRef {
    let present = || cells.iter().map(|c| c.trim()).filter(|c| !c.is_empty());
    fn each(c: &str) -> Option<&str> {
        Some(c.trim()).filter(|c| !c.is_empty())
    }
    if present().all(|c| c.parse::<i64>().is_ok()) && present().next().is_some() {
        return Arc::new(arrow_array::Int64Array::from_iter(
            cells.iter().map(|c| each(c).and_then(|c| c.parse().ok())),
        ));
    }
    let float = |c: &str| c.parse::<f64>().ok();
    if present().all(|c| float(c).is_some()) && present().next().is_some() {
        return Arc::new(arrow_array::Float64Array::from_iter(
            cells.iter().map(|c| each(c).and_then(float)),
        ));
    }
    let word = |c: &str| match c.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    if present().all(|c| word(c).is_some()) && present().next().is_some() {
        return Arc::new(arrow_array::BooleanArray::from_iter(
            cells.iter().map(|c| each(c).and_then(word)),
        ));
    }
    Arc::new(arrow_array::StringArray::from_iter(
        cells.iter().map(|c| each(c).map(|_| c.as_str())),
    ))
}

fn entities_from_parquet(
    location: &str,
    bytes: bytes::Bytes,
    join_keys: &[String],
) -> Result<EntityFrame> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| bad(location, format!("not a readable Parquet file: {e}")))?;
    let schema = Arc::clone(builder.schema());
    let reader = builder
        .build()
        .map_err(|e| bad(location, format!("not a readable Parquet file: {e}")))?;
    let mut rows = Vec::new();
    let mut batches = Vec::new();
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
        batches.push(batch);
    }
    Ok(EntityFrame {
        rows,
        schema,
        batches,
    })
}

/// Writes a training set as Parquet to a path or URL: every column of the entity
/// dataframe, in its order and types, then one column per feature (`view__field`, of
/// the field's defined type; null where nothing was known in time). Returns the rows.
pub async fn write_training_set(
    location: &str,
    defs: &Definitions,
    features: &[String],
    entities: &EntityFrame,
    results: &[Vec<Feature>],
) -> Result<usize> {
    let types = features
        .iter()
        .map(|f| field_type(defs, f))
        .collect::<Result<Vec<_>>>()?;
    let mut fields: Vec<ArrowField> = entities
        .schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    for (i, (feature, &field_type)) in features.iter().zip(&types).enumerate() {
        let name = feature.replacen(':', "__", 1);
        if fields.iter().any(|f| *f.name() == name) {
            return Err(FeatureError::InvalidRequest {
                field: format!("features[{i}]"),
                message: format!(
                    "the entity dataframe already has a column '{name}', the name of this feature's column"
                ),
            });
        }
        fields.push(ArrowField::new(name, columns::arrow_type(field_type), true));
    }
    let schema = Arc::new(Schema::new(fields));
    let failed = |e: parquet::errors::ParquetError| {
        FeatureError::Corrupt(format!("writing the training set: {e}"))
    };
    let mut buffer = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut buffer, Arc::clone(&schema), None).map_err(failed)?;
    let mut offset = 0;
    for batch in &entities.batches {
        let n = batch.num_rows();
        let done = results.get(offset..offset + n).unwrap_or_default();
        offset += n;
        let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
        for (i, &field_type) in types.iter().enumerate() {
            arrays.push(columns::build_column(
                field_type,
                done.iter().map(|r| r.get(i).and_then(|(v, _)| v.as_ref())),
            ));
        }
        let out = RecordBatch::try_new(Arc::clone(&schema), arrays)
            .map_err(|e| FeatureError::Corrupt(format!("building the training set: {e}")))?;
        writer.write(&out).map_err(failed)?;
    }
    writer.close().map_err(failed)?;
    let (store, path) = crate::ingest::locate_for_write(location)?;
    store.put(&path, buffer.into()).await.map_err(|e| {
        FeatureError::Unavailable(format!("training set store, writing '{location}': {e}"))
    })?;
    Ok(entities.rows.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(cells: &[&str]) -> String {
        let cells: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
        csv_column(&cells).data_type().to_string()
    }

    #[test]
    fn csv_columns_are_typed_as_pandas_reads_them() {
        assert_eq!(typed(&["1", "0", "", "-3"]), "Int64");
        assert_eq!(typed(&["1", "0.5", "NaN", "1e3"]), "Float64");
        assert_eq!(typed(&["True", "false", "", "TRUE"]), "Boolean");
        // 1/0 are integers, as pandas reads them; a mix is text.
        assert_eq!(typed(&["1", "0"]), "Int64");
        assert_eq!(typed(&["True", "1"]), "Utf8");
        assert_eq!(typed(&["a", "", "2"]), "Utf8");
        assert_eq!(typed(&["", ""]), "Utf8");
    }
}
