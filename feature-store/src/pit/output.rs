//! The last pass: the entity file read again in order and written out as Parquet, each
//! row beside its answers. Every partition's answers are in row order, so the writer
//! keeps one cursor per partition and takes the next answer from the partition of the
//! row's key — no sort, one chunk per partition in memory.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{Field as ArrowField, Schema, SchemaRef};
use parquet::arrow::AsyncArrowWriter;
use parquet::arrow::async_writer::ParquetObjectWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::entities::EntityFile;
use super::spill::SpilledSet;
use super::{Sizing, Snapshot, partition};
use crate::definitions::Definitions;
use crate::{FeatureError, Result, columns};

/// The training set's columns: the entity file's, then one per feature (`view__field`,
/// of the field's type).
pub fn schema(defs: &Definitions, entities: &SchemaRef, features: &[String]) -> Result<SchemaRef> {
    let mut fields: Vec<ArrowField> = entities
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    for (i, feature) in features.iter().enumerate() {
        let (view, field) = feature.split_once(':').unwrap_or((feature, ""));
        let t = defs
            .views
            .get(view)
            .and_then(|v| v.fields.iter().find(|f| f.name == field))
            .map(|f| f.field_type)
            .ok_or_else(|| FeatureError::InvalidRequest {
                field: format!("features[{i}]"),
                message: format!("no field '{feature}'"),
            })?;
        let name = feature.replacen(':', "__", 1);
        if fields.iter().any(|f| *f.name() == name) {
            return Err(FeatureError::InvalidRequest {
                field: format!("features[{i}]"),
                message: format!(
                    "the entity dataframe already has a column '{name}', the name of this feature's column"
                ),
            });
        }
        fields.push(ArrowField::new(name, columns::arrow_type(t), true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// A partition's answers, a chunk at a time.
#[derive(Default)]
struct Cursor {
    next_file: u32,
    chunk: VecDeque<RecordBatch>,
    pos: usize,
    /// The current chunk's place among the sources of the batch being written.
    source: Option<usize>,
}

impl Cursor {
    /// The current answers batch, loading the next chunk when this one is used up.
    fn current(&mut self, results: &SpilledSet, p: usize) -> Result<&RecordBatch> {
        while self.chunk.front().is_none_or(|b| self.pos >= b.num_rows()) {
            if self.chunk.pop_front().is_some() {
                self.pos = 0;
                self.source = None;
                continue;
            }
            if self.next_file >= results.files(p) {
                return Err(FeatureError::Corrupt(format!(
                    "partition {p} ran out of answers before the entity rows did"
                )));
            }
            self.chunk = results.read_file(p, self.next_file)?.into();
            self.next_file += 1;
        }
        self.chunk
            .front()
            .ok_or_else(|| FeatureError::Corrupt("no answers".into()))
    }
}

fn failed(e: impl std::fmt::Display) -> FeatureError {
    FeatureError::Corrupt(format!("writing the training set: {e}"))
}

/// Writes the training set; returns its rows.
pub(super) async fn write(
    file: &EntityFile,
    results: &SpilledSet,
    schema: &SchemaRef,
    output: &str,
    sizing: &Sizing,
    snap: &mut Snapshot,
    tick: &dyn Fn(&mut Snapshot),
) -> Result<u64> {
    let (store, path) = crate::ingest::locate_for_write(output)?;
    // Row groups of about an eighth of the budget's worth of rows, as Parquet readers
    // like them (the writer holds one in memory).
    let row_bytes = 16 * schema.fields().len() as u64;
    let group_rows = ((sizing.flush_bytes as u64 * sizing.partitions as u64 / 2) / row_bytes)
        .clamp(8_192, 1 << 20) as usize;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_size(group_rows)
        .build();
    let mut writer = AsyncArrowWriter::try_new(
        ParquetObjectWriter::new(store, path),
        Arc::clone(schema),
        Some(props),
    )
    .map_err(failed)?;
    let entity_columns = file.schema().fields().len();
    let features = schema.fields().len() - entity_columns;
    let mut cursors: Vec<Cursor> = (0..sizing.partitions).map(|_| Cursor::default()).collect();
    let mut row = 0u64;
    for batch in file.batches(sizing.batch_rows)? {
        let batch = batch?;
        let parts = partition::each(&batch.keys, sizing.partitions);
        let mut sources: Vec<RecordBatch> = Vec::new();
        let mut touched: Vec<usize> = Vec::new();
        let mut indices: Vec<(usize, usize)> = Vec::with_capacity(parts.len());
        for &p in &parts {
            let p = p as usize;
            let cursor = &mut cursors[p];
            // Loads the next chunk when this one is used up (which forgets its source).
            cursor.current(results, p)?;
            let source = match cursor.source {
                Some(s) => s,
                None => {
                    sources.push(cursor.current(results, p)?.clone());
                    touched.push(p);
                    cursor.source = Some(sources.len() - 1);
                    sources.len() - 1
                }
            };
            let id = sources[source]
                .column(0)
                .as_primitive::<UInt64Type>()
                .value(cursor.pos);
            if id != row {
                return Err(FeatureError::Corrupt(format!(
                    "partition {p} answered row {id} where row {row} was due"
                )));
            }
            indices.push((source, cursor.pos));
            cursor.pos += 1;
            row += 1;
        }
        for p in touched {
            cursors[p].source = None;
        }
        let mut arrays: Vec<ArrayRef> = batch.batch.columns().to_vec();
        for f in 0..features {
            let from: Vec<&dyn Array> = sources.iter().map(|b| b.column(1 + f).as_ref()).collect();
            arrays.push(arrow_select::interleave::interleave(&from, &indices).map_err(failed)?);
        }
        let out = RecordBatch::try_new(Arc::clone(schema), arrays).map_err(failed)?;
        writer.write(&out).await.map_err(failed)?;
        snap.rows_written = row;
        tick(snap);
    }
    writer.close().await.map_err(failed)?;
    Ok(row)
}
