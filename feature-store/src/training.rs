//! Training sets: an entity dataframe in (CSV or Parquet: the entity's join key columns,
//! `event_timestamp`, and anything else, such as a label), point-in-time features out,
//! as a Parquet file with every column of the entity dataframe, in its order and types,
//! then one column per feature named `view__field` (Feast's full names).

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;

use crate::columns;
use crate::definitions::Definitions;
use crate::historical::EntityRow;
use crate::online::Feature;
use crate::pit::entities::EntityFile;
use crate::value::FieldType;
use crate::{FeatureError, Result};

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

/// Reads a whole entity dataframe from a path or URL (for a request to a server;
/// [`crate::pit`] streams it instead). Parquet columns keep their types; CSV columns
/// are typed as pandas would read them (see [`crate::pit::entities`]).
pub async fn read_entities(location: &str, join_keys: &[String]) -> Result<EntityFrame> {
    let scratch = tempfile::tempdir()?;
    let file = EntityFile::open(location, join_keys, scratch.path()).await?;
    let mut rows = Vec::with_capacity(usize::try_from(file.rows()).unwrap_or(0));
    let mut batches = Vec::new();
    for batch in file.batches(65_536)? {
        let batch = batch?;
        for (i, &timestamp_micros) in batch.times.iter().enumerate() {
            rows.push(EntityRow {
                key: batch
                    .parts
                    .iter()
                    .map(|k| columns::key_at(k.as_ref(), i).unwrap_or_default())
                    .collect(),
                timestamp_micros,
            });
        }
        batches.push(batch.batch);
    }
    Ok(EntityFrame {
        rows,
        schema: Arc::clone(file.schema()),
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
    let schema = crate::pit::training_set_schema(defs, &entities.schema, features)?;
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
