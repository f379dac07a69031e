//! The offline store: every row ever pushed to a view, kept for point-in-time retrieval
//! of training data. Each write call becomes one immutable Parquet file per event date
//! in object storage, partitioned Hive-style so a scan reads only the days it needs
//! (`<root>/view=<view>/date=<YYYY-MM-DD>/<created µs, 20 digits>-<uuid>.parquet`, the
//! partition values only in the path), so many server replicas can append to one
//! bucket without coordination, and pandas, Spark or DuckDB read the folder as it is.
//! Stores written before the partitioning (`<root>/<view>/….parquet`) are still read.
//!
//! Columns: the entity's join keys (text), `event_timestamp` and `created_timestamp`
//! (microseconds, UTC), then every field of the view as it was defined at write time.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field as ArrowField, Schema};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

mod compact;
pub mod live;

pub(crate) use compact::replaces_in;
pub use compact::{CompactOptions, CompactReport};

use crate::columns::{self, EVENT_TIMESTAMP};
use crate::definitions::FeatureView;
use crate::online::{PushRow, join_key};
use crate::value::Value;
use crate::{FeatureError, Result};

/// Column holding when a row was written.
pub const CREATED_TIMESTAMP: &str = "created_timestamp";

/// One historical row of a view.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The entity key, parts joined by U+001F.
    pub key: String,
    /// When the values were true.
    pub event_time_micros: i64,
    /// When the row was written; with `seq`, breaks ties between equal event times.
    pub created_micros: i64,
    /// Order of writing among rows with the same `created_micros`.
    pub seq: u64,
    /// Values in the view's current field order (null when not given, or when the field
    /// did not exist yet).
    pub values: Vec<Option<Value>>,
}

/// Parquet history in object storage.
#[derive(Debug, Clone)]
pub struct OfflineStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
}

pub(crate) fn storage(e: impl std::fmt::Display) -> FeatureError {
    FeatureError::Unavailable(format!("offline store: {e}"))
}

impl OfflineStore {
    /// Opens the store at a local directory, `file://`, `s3://`, `gs://` or `az://` URL
    /// (credentials from the usual environment variables).
    pub fn open(location: &str) -> Result<OfflineStore> {
        OfflineStore::open_with(location, crate::object_env::from_env())
    }

    /// Opens the store with explicit object-store options (e.g. `aws_endpoint`).
    pub fn open_with(
        location: &str,
        options: impl IntoIterator<Item = (String, String)>,
    ) -> Result<OfflineStore> {
        let url = match url::Url::parse(location) {
            Ok(u) if u.scheme().len() > 1 => u,
            _ => {
                std::fs::create_dir_all(location)?;
                let abs = std::fs::canonicalize(location)?;
                url::Url::from_directory_path(&abs).map_err(|()| FeatureError::InvalidRequest {
                    field: "offline_store".into(),
                    message: format!("'{location}' is not a usable directory"),
                })?
            }
        };
        if url.scheme() == "file"
            && let Ok(p) = url.to_file_path()
        {
            std::fs::create_dir_all(p)?;
        }
        let (store, root) = object_store::parse_url_opts(&url, options).map_err(|e| {
            FeatureError::InvalidRequest {
                field: "offline_store".into(),
                message: format!("'{location}': {e}"),
            }
        })?;
        Ok(OfflineStore {
            store: Arc::from(store),
            root,
        })
    }

    /// An offline store over any object store, under `root` (tests inject faults here).
    pub fn with_store(store: Arc<dyn ObjectStore>, root: Path) -> OfflineStore {
        OfflineStore { store, root }
    }

    /// The folder of a view's files before the partitioning.
    fn old_view_dir(&self, view: &str) -> Path {
        self.root.child(view)
    }

    /// The folder of a view's date partitions.
    fn view_dir(&self, view: &str) -> Path {
        self.root.child(format!("view={view}"))
    }

    /// Appends rows (already checked against the view): one new file per event date
    /// among them. A call that fails part-way may have written some dates; retrying it
    /// writes them again, which point-in-time reads do not mind.
    pub async fn append(&self, view: &FeatureView, rows: &[PushRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let created = chrono::Utc::now().timestamp_micros();
        let mut by_date: std::collections::BTreeMap<String, Vec<PushRow>> = Default::default();
        for r in rows {
            by_date
                .entry(event_date(r.event_time_micros))
                .or_default()
                .push(r.clone());
        }
        for (date, rows) in by_date {
            let bytes = encode(view, &rows, created)?;
            let name = format!("{created:020}-{}.parquet", uuid::Uuid::new_v4().simple());
            let path = self
                .view_dir(&view.name)
                .child(format!("date={date}"))
                .child(name);
            self.store.put(&path, bytes.into()).await.map_err(storage)?;
        }
        Ok(())
    }

    /// Every row of `view` whose joined key `wanted` accepts, in writing order.
    pub async fn read(
        &self,
        view: &FeatureView,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<HistoryRow>> {
        self.read_until(view, wanted, None).await
    }

    /// [`OfflineStore::read`], skipping the date partitions after `until_micros` (no row
    /// there can be as of an earlier time).
    pub async fn read_until(
        &self,
        view: &FeatureView,
        wanted: impl Fn(&str) -> bool,
        until_micros: Option<i64>,
    ) -> Result<Vec<HistoryRow>> {
        let last_date = until_micros.map(event_date);
        let mut files = self.files(&view.name).await?;
        files.retain(|p| match (&last_date, partition_date(p)) {
            (Some(last), Some(date)) => date.as_str() <= last.as_str(),
            _ => true,
        });
        let mut fetched = Vec::with_capacity(files.len());
        let mut listed = Vec::with_capacity(files.len());
        for file in files {
            let bytes = self
                .store
                .get(&file)
                .await
                .map_err(storage)?
                .bytes()
                .await
                .map_err(storage)?;
            let footer = parquet::file::metadata::ParquetMetaDataReader::new()
                .parse_and_finish(&bytes)
                .map_err(|e| FeatureError::Corrupt(format!("{file}: {e}")))?;
            let replaces = replaces_in(&file, footer.file_metadata().key_value_metadata());
            listed.push(live::Listed {
                path: file,
                replaces,
            });
            fetched.push(bytes);
        }
        // A compacted file and the files it replaces may both still exist: one counts.
        let mut out = Vec::new();
        for (file_no, i) in live::judge(&listed).live.into_iter().enumerate() {
            decode(view, fetched[i].clone(), file_no as u64, &wanted, &mut out)
                .map_err(|e| FeatureError::Corrupt(format!("{}: {e}", listed[i].path)))?;
        }
        Ok(out)
    }
}

impl OfflineStore {
    /// A view's history files in writing order: the old layout's first (all written
    /// before the partitioning), then the partitions by date, each day's files by the
    /// time they were written.
    pub(crate) async fn files(&self, view: &str) -> Result<Vec<Path>> {
        let list = |dir: Path| async move {
            self.store
                .list(Some(&dir))
                .map_ok(|m| m.location)
                .try_collect::<Vec<Path>>()
                .await
                .map_err(storage)
        };
        let mut files = list(self.old_view_dir(view)).await?;
        files.sort();
        let mut new = list(self.view_dir(view)).await?;
        new.sort();
        files.extend(new);
        files.retain(|p| p.filename().is_some_and(|f| f.ends_with(".parquet")));
        Ok(files)
    }

    /// The object store the history lives in.
    pub(crate) fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }
}

/// The UTC day of an event time, `YYYY-MM-DD` (the date partition).
pub(crate) fn event_date(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros).map_or_else(
        || "1970-01-01".to_string(),
        |t| t.format("%Y-%m-%d").to_string(),
    )
}

/// The `date=` partition a file sits in.
pub(crate) fn partition_date(path: &Path) -> Option<String> {
    path.parts()
        .find_map(|p| p.as_ref().strip_prefix("date=").map(String::from))
}

fn encode(view: &FeatureView, rows: &[PushRow], created: i64) -> Result<Vec<u8>> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (k, name) in view.entity.join_keys.iter().enumerate() {
        fields.push(ArrowField::new(name, arrow_schema::DataType::Utf8, false));
        arrays.push(Arc::new(arrow_array::StringArray::from_iter_values(
            rows.iter().map(|r| r.key[k].as_str()),
        )));
    }
    fields.push(ArrowField::new(
        EVENT_TIMESTAMP,
        columns::timestamp_type(),
        false,
    ));
    arrays.push(columns::timestamp_column(
        rows.iter().map(|r| r.event_time_micros),
    ));
    fields.push(ArrowField::new(
        CREATED_TIMESTAMP,
        columns::timestamp_type(),
        false,
    ));
    arrays.push(columns::timestamp_column(rows.iter().map(|_| created)));
    for f in &view.fields {
        fields.push(ArrowField::new(
            &f.name,
            columns::arrow_type(f.field_type),
            true,
        ));
        arrays.push(columns::build_column(
            f.field_type,
            rows.iter().map(|r| {
                r.values
                    .iter()
                    .find(|(n, _)| n == &f.name)
                    .and_then(|(_, v)| v.as_ref())
            }),
        ));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| FeatureError::Corrupt(format!("building a history batch: {e}")))?;
    let mut buffer = Vec::new();
    let parquet_err = |e: parquet::errors::ParquetError| {
        FeatureError::Corrupt(format!("writing a history file: {e}"))
    };
    let mut writer =
        ArrowWriter::try_new(&mut buffer, batch.schema(), None).map_err(parquet_err)?;
    writer.write(&batch).map_err(parquet_err)?;
    writer.close().map_err(parquet_err)?;
    Ok(buffer)
}

fn decode(
    view: &FeatureView,
    bytes: bytes::Bytes,
    file_no: u64,
    wanted: &impl Fn(&str) -> bool,
    out: &mut Vec<HistoryRow>,
) -> Result<()> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| FeatureError::Corrupt(e.to_string()))?;
    let mut seq = file_no << 32;
    for batch in reader {
        let batch = batch.map_err(|e| FeatureError::Corrupt(e.to_string()))?;
        let column = |name: &str| -> Result<ArrayRef> {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| FeatureError::Corrupt(format!("no column '{name}'")))
        };
        let keys = view
            .entity
            .join_keys
            .iter()
            .map(|k| Ok(columns::cast_key(&column(k)?)?))
            .collect::<Result<Vec<_>>>()?;
        let event = columns::cast_to_micros(&column(EVENT_TIMESTAMP)?)?;
        let created = columns::cast_to_micros(&column(CREATED_TIMESTAMP)?)?;
        // A field added after the file was written has no column: null.
        let fields = view
            .fields
            .iter()
            .map(|f| {
                batch
                    .column_by_name(&f.name)
                    .map(|c| columns::cast_to(c, f.field_type))
                    .transpose()
                    .map_err(FeatureError::from)
            })
            .collect::<Result<Vec<_>>>()?;
        for i in 0..batch.num_rows() {
            seq += 1;
            let parts: Vec<String> = keys
                .iter()
                .map(|k| columns::key_at(k.as_ref(), i).unwrap_or_default())
                .collect();
            let key = join_key(&parts);
            if !wanted(&key) {
                continue;
            }
            out.push(HistoryRow {
                key,
                event_time_micros: columns::micros_at(event.as_ref(), i).unwrap_or(i64::MIN),
                created_micros: columns::micros_at(created.as_ref(), i).unwrap_or(i64::MIN),
                seq,
                values: fields
                    .iter()
                    .zip(&view.fields)
                    .map(|(c, f)| {
                        c.as_ref()
                            .and_then(|c| columns::value_at(c.as_ref(), f.field_type, i))
                    })
                    .collect(),
            });
        }
    }
    Ok(())
}
