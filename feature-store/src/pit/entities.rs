//! The entity dataframe, streamed: a CSV or Parquet file read in batches, twice if need
//! be (once to route rows to partitions, once to write them out beside their features),
//! never whole. A file in object storage is copied to the scratch folder first.
//!
//! Parquet columns keep their types. CSV columns are typed as pandas' `read_csv` would
//! (int64, float64, bool, else string), decided by a first pass over the whole file, so
//! the typing does not depend on the batch; join keys stay strings (a key `00123` is not
//! the number 123) and `event_timestamp` becomes a UTC timestamp.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{Field as ArrowField, Schema, SchemaRef};
use futures::TryStreamExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::columns::{self, EVENT_TIMESTAMP};
use crate::ingest::{is_parquet, locate};
use crate::{FeatureError, Result};

fn bad(location: &str, message: impl std::fmt::Display) -> FeatureError {
    FeatureError::InvalidRequest {
        field: format!("entities '{location}'"),
        message: message.to_string(),
    }
}

/// A batch of entity rows: the file's columns, and the join key and time of each row.
pub struct EntityBatch {
    /// The file's columns (CSV ones typed), in its order.
    pub batch: RecordBatch,
    /// Each row's entity key, parts joined by U+001F.
    pub keys: StringArray,
    /// The join key columns as text, in the entity's order.
    pub parts: Vec<ArrayRef>,
    /// Each row's time, microseconds since the epoch.
    pub times: Vec<i64>,
}

/// How a CSV column is typed, decided over the whole file.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CsvType {
    Int,
    Float,
    Bool,
    Text,
}

/// What a pass over one CSV column has seen so far.
#[derive(Debug, Clone, Copy)]
struct CsvSeen {
    any: bool,
    int: bool,
    float: bool,
    bool: bool,
}

impl CsvSeen {
    fn new() -> CsvSeen {
        CsvSeen {
            any: false,
            int: true,
            float: true,
            bool: true,
        }
    }

    fn see(&mut self, cell: &str) {
        let c = cell.trim();
        if c.is_empty() {
            return;
        }
        self.any = true;
        self.int = self.int && c.parse::<i64>().is_ok();
        self.float = self.float && c.parse::<f64>().is_ok();
        self.bool = self.bool && word(c).is_some();
    }

    fn decide(self) -> CsvType {
        match self {
            CsvSeen { any: false, .. } => CsvType::Text,
            CsvSeen { int: true, .. } => CsvType::Int,
            CsvSeen { float: true, .. } => CsvType::Float,
            CsvSeen { bool: true, .. } => CsvType::Bool,
            _ => CsvType::Text,
        }
    }
}

fn word(c: &str) -> Option<bool> {
    match c.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Cells of one CSV column as an Arrow column of its decided type; empty cells are nulls
/// (an int column with gaps stays int64, nullable, where pandas would widen it).
fn csv_column(t: CsvType, cells: &[String]) -> ArrayRef {
    fn each(c: &str) -> Option<&str> {
        Some(c.trim()).filter(|c| !c.is_empty())
    }
    match t {
        CsvType::Int => Arc::new(arrow_array::Int64Array::from_iter(
            cells.iter().map(|c| each(c).and_then(|c| c.parse().ok())),
        )),
        CsvType::Float => Arc::new(arrow_array::Float64Array::from_iter(
            cells.iter().map(|c| each(c).and_then(|c| c.parse().ok())),
        )),
        CsvType::Bool => Arc::new(arrow_array::BooleanArray::from_iter(
            cells.iter().map(|c| each(c).and_then(word)),
        )),
        CsvType::Text => Arc::new(StringArray::from_iter(
            cells.iter().map(|c| each(c).map(|_| c.as_str())),
        )),
    }
}

enum Format {
    Parquet,
    Csv { types: Vec<CsvType> },
}

/// An entity file on local disk, its schema and row count known.
pub struct EntityFile {
    location: String,
    path: PathBuf,
    join_keys: Vec<String>,
    format: Format,
    schema: SchemaRef,
    rows: u64,
    /// A copy downloaded from object storage, deleted when this is dropped.
    _copy: Option<tempfile::TempPath>,
}

impl EntityFile {
    /// Opens `location` (a path or URL), copying an object-storage file into `scratch`,
    /// and checks it has the join keys and `event_timestamp`.
    pub async fn open(location: &str, join_keys: &[String], scratch: &Path) -> Result<EntityFile> {
        let (path, copy) = local(location, scratch).await?;
        let (format, schema, rows) = if is_parquet(location) {
            let file = File::open(&path).map_err(|e| bad(location, e))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| bad(location, format!("not a readable Parquet file: {e}")))?;
            let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
            (Format::Parquet, Arc::clone(builder.schema()), rows)
        } else {
            csv_schema(location, &path)?
        };
        for name in join_keys
            .iter()
            .map(String::as_str)
            .chain([EVENT_TIMESTAMP])
        {
            if schema.column_with_name(name).is_none() {
                return Err(bad(location, format!("no '{name}' column")));
            }
        }
        Ok(EntityFile {
            location: location.to_string(),
            path,
            join_keys: join_keys.to_vec(),
            format,
            schema,
            rows,
            _copy: copy,
        })
    }

    /// The file's columns (CSV ones as typed).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows in the file.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The rows from the start, `batch_rows` at a time.
    pub fn batches(
        &self,
        batch_rows: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<EntityBatch>> + '_>> {
        let batch_rows = batch_rows.max(1);
        let mut offset = 0usize;
        let raw: Box<dyn Iterator<Item = Result<RecordBatch>> + '_> = match &self.format {
            Format::Parquet => {
                let file = File::open(&self.path).map_err(|e| bad(&self.location, e))?;
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .and_then(|b| b.with_batch_size(batch_rows).build())
                    .map_err(|e| bad(&self.location, e))?;
                Box::new(reader.map(|b| b.map_err(|e| bad(&self.location, e))))
            }
            Format::Csv { types } => Box::new(self.csv_batches(types, batch_rows)?),
        };
        Ok(Box::new(raw.map(move |batch| {
            let batch = batch?;
            let out = self.keyed(batch, offset);
            offset += out.as_ref().map_or(0, |b| b.batch.num_rows());
            out
        })))
    }

    fn csv_batches<'a>(
        &'a self,
        types: &'a [CsvType],
        batch_rows: usize,
    ) -> Result<impl Iterator<Item = Result<RecordBatch>> + 'a> {
        let file = File::open(&self.path).map_err(|e| bad(&self.location, e))?;
        let mut records = csv::Reader::from_reader(std::io::BufReader::new(file)).into_records();
        let time = self.schema.index_of(EVENT_TIMESTAMP).unwrap_or(usize::MAX);
        let keys: Vec<usize> = self
            .join_keys
            .iter()
            .filter_map(|k| self.schema.index_of(k).ok())
            .collect();
        Ok(std::iter::from_fn(move || {
            let mut cells: Vec<Vec<String>> = vec![Vec::new(); types.len()];
            let mut times = Vec::new();
            for record in records.by_ref().take(batch_rows) {
                let record = match record {
                    Ok(r) => r,
                    Err(e) => return Some(Err(bad(&self.location, e))),
                };
                let line = record.position().map_or(0, |p| p.line());
                match crate::ingest::parse_time(record.get(time).unwrap_or_default()) {
                    Ok(t) => times.push(t),
                    Err(m) => return Some(Err(bad(&self.location, format!("line {line}: {m}")))),
                }
                for (i, column) in cells.iter_mut().enumerate() {
                    column.push(record.get(i).unwrap_or_default().to_string());
                }
            }
            if times.is_empty() {
                return None;
            }
            let arrays: Vec<ArrayRef> = cells
                .iter()
                .zip(types)
                .enumerate()
                .map(|(i, (column, &t))| {
                    if i == time {
                        columns::timestamp_column(times.iter().copied())
                    } else if keys.contains(&i) {
                        Arc::new(StringArray::from_iter_values(column.iter())) as ArrayRef
                    } else {
                        csv_column(t, column)
                    }
                })
                .collect();
            Some(
                RecordBatch::try_new(Arc::clone(&self.schema), arrays)
                    .map_err(|e| bad(&self.location, e)),
            )
        }))
    }

    /// The keys and times of a batch whose first row is row `offset` of the file.
    fn keyed(&self, batch: RecordBatch, offset: usize) -> Result<EntityBatch> {
        let location = &self.location;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| bad(location, format!("no '{name}' column")))
        };
        let cast_err = |name: &str, e: columns::CastError| {
            let at = e.row.map(|r| format!(", row {}", offset + r + 1));
            bad(
                location,
                format!("column '{name}'{}: {}", at.unwrap_or_default(), e.message),
            )
        };
        let parts = self
            .join_keys
            .iter()
            .map(|k| columns::cast_key(&column(k)?).map_err(|e| cast_err(k, e)))
            .collect::<Result<Vec<_>>>()?;
        let time = columns::cast_to_micros(&column(EVENT_TIMESTAMP)?)
            .map_err(|e| cast_err(EVENT_TIMESTAMP, e))?;
        let times = (0..batch.num_rows())
            .map(|i| {
                columns::micros_at(time.as_ref(), i).ok_or_else(|| {
                    bad(
                        location,
                        format!("row {}: the event_timestamp is null", offset + i + 1),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EntityBatch {
            keys: joined_keys(&parts, batch.num_rows()),
            parts,
            batch,
            times,
        })
    }
}

/// Key columns (already text) joined per row by U+001F, as the online store keys
/// entities; a null part is empty.
pub fn joined_keys(parts: &[ArrayRef], rows: usize) -> StringArray {
    use arrow_array::cast::AsArray;
    if let [one] = parts
        && one.null_count() == 0
    {
        return one.as_string::<i32>().clone();
    }
    StringArray::from_iter_values((0..rows).map(|i| {
        let parts: Vec<String> = parts
            .iter()
            .map(|p| columns::key_at(p.as_ref(), i).unwrap_or_default())
            .collect();
        crate::online::join_key(&parts)
    }))
}

/// The CSV's header and column types, from one pass over the file.
fn csv_schema(location: &str, path: &Path) -> Result<(Format, SchemaRef, u64)> {
    let file = File::open(path).map_err(|e| bad(location, e))?;
    let mut reader = csv::Reader::from_reader(std::io::BufReader::new(file));
    let headers = reader.headers().map_err(|e| bad(location, e))?.clone();
    let mut seen = vec![CsvSeen::new(); headers.len()];
    let mut rows = 0u64;
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| bad(location, e))?
    {
        rows += 1;
        for (s, cell) in seen.iter_mut().zip(record.iter()) {
            s.see(cell);
        }
    }
    let types: Vec<CsvType> = seen.into_iter().map(CsvSeen::decide).collect();
    let fields: Vec<ArrowField> = headers
        .iter()
        .zip(&types)
        .map(|(name, t)| {
            let data_type = if name == EVENT_TIMESTAMP {
                columns::timestamp_type()
            } else {
                match t {
                    CsvType::Int => arrow_schema::DataType::Int64,
                    CsvType::Float => arrow_schema::DataType::Float64,
                    CsvType::Bool => arrow_schema::DataType::Boolean,
                    CsvType::Text => arrow_schema::DataType::Utf8,
                }
            };
            ArrowField::new(name, data_type, true)
        })
        .collect();
    Ok((Format::Csv { types }, Arc::new(Schema::new(fields)), rows))
}

/// A local path for `location`: itself when on this machine, else a copy in `scratch`.
async fn local(location: &str, scratch: &Path) -> Result<(PathBuf, Option<tempfile::TempPath>)> {
    match url::Url::parse(location) {
        Ok(u) if u.scheme() == "file" => {
            let path = u
                .to_file_path()
                .map_err(|()| bad(location, "not a usable path"))?;
            return Ok((path, None));
        }
        Ok(u) if u.scheme().len() > 1 => {}
        _ => return Ok((PathBuf::from(location), None)),
    }
    let (store, path) = locate(location)?;
    let copy = tempfile::Builder::new()
        .prefix("entities-")
        .tempfile_in(scratch)
        .map_err(|e| bad(location, e))?;
    let (file, copy) = copy.into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut stream = store
        .get(&path)
        .await
        .map_err(|e| bad(location, e))?
        .into_stream();
    while let Some(chunk) = stream.try_next().await.map_err(|e| bad(location, e))? {
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
            .await
            .map_err(|e| bad(location, e))?;
    }
    Ok((copy.to_path_buf(), Some(copy)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(cells: &[&str]) -> String {
        let mut seen = CsvSeen::new();
        for c in cells {
            seen.see(c);
        }
        let cells: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
        csv_column(seen.decide(), &cells).data_type().to_string()
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
