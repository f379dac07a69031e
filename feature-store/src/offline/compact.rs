//! Compaction: each write call leaves one small file per event date, which is slow to
//! scan by the thousand; this merges a date partition's small files into files of about
//! a target size, row groups of [`GROUP_ROWS`] with event-time statistics.
//!
//! Safe beside writers and other compactors (any replica may run it): writers only add
//! files; a compacted file names its inputs in its footer and is written whole
//! (object stores put atomically) before anything is deleted, and readers count each
//! row once whichever files exist (`live`). Inputs are deleted only after `grace`, so a
//! join that listed them before the compaction can still read them.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Field as ArrowField, Schema, SchemaRef};
use futures::TryStreamExt;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::live::{self, Listed, REPLACES};
use super::{OfflineStore, partition_date, storage};
use crate::definitions::FeatureView;
use crate::{FeatureError, Result};

/// Rows per row group in a compacted file: small enough that a scan holds little,
/// large enough that its statistics prune well.
const GROUP_ROWS: usize = 131_072;

/// How to compact.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Files of at least half this size are left alone; merged files are about this size.
    pub target_bytes: u64,
    /// Replaced files are deleted this long after their replacement was written.
    pub grace: std::time::Duration,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CompactReport {
    /// The view.
    pub view: String,
    /// Date partitions looked at.
    pub partitions: usize,
    /// Small files merged.
    pub files_merged: usize,
    /// Files written.
    pub files_written: usize,
    /// Rows in the files written.
    pub rows: u64,
    /// Replaced files deleted (their grace over).
    pub files_deleted: usize,
}

/// One file of a partition as the compactor sees it.
struct Entry {
    listed: Listed,
    size: u64,
}

impl OfflineStore {
    /// Compacts every date partition of `view`.
    pub async fn compact(
        &self,
        view: &FeatureView,
        options: &CompactOptions,
    ) -> Result<CompactReport> {
        let mut report = CompactReport {
            view: view.name.clone(),
            ..CompactReport::default()
        };
        let listed: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&self.view_dir(&view.name)))
            .try_collect()
            .await
            .map_err(storage)?;
        let mut by_date: std::collections::BTreeMap<String, Vec<object_store::ObjectMeta>> =
            Default::default();
        for m in listed {
            if m.location
                .filename()
                .is_some_and(|f| f.ends_with(".parquet"))
                && let Some(date) = partition_date(&m.location)
            {
                by_date.entry(date).or_default().push(m);
            }
        }
        let now = chrono::Utc::now().timestamp_micros();
        let grace = i64::try_from(options.grace.as_micros()).unwrap_or(i64::MAX);
        for (date, mut metas) in by_date {
            report.partitions += 1;
            metas.sort_by(|a, b| a.location.cmp(&b.location));
            let mut entries = Vec::with_capacity(metas.len());
            for m in metas {
                // `None`: deleted since the listing by another compactor, nothing to do.
                if let Some(replaces) = self.footer_replaces(&m.location).await? {
                    entries.push(Entry {
                        listed: Listed {
                            path: m.location,
                            replaces,
                        },
                        size: m.size,
                    });
                }
            }
            let files: Vec<Listed> = entries.iter().map(|e| e.listed.clone()).collect();
            let verdict = live::judge(&files);
            for &(i, replaced_at) in &verdict.dead {
                if now.saturating_sub(replaced_at) >= grace {
                    match self.store.delete(&files[i].path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                            report.files_deleted += 1
                        }
                        Err(e) => return Err(storage(e)),
                    }
                }
            }
            let small: Vec<&Entry> = verdict
                .live
                .iter()
                .map(|&i| &entries[i])
                .filter(|e| e.size < options.target_bytes / 2)
                .collect();
            let mut group: Vec<&Entry> = Vec::new();
            let mut group_bytes = 0;
            for e in small {
                if !group.is_empty() && group_bytes + e.size > options.target_bytes {
                    self.merge(view, &date, &group, &mut report).await?;
                    group.clear();
                    group_bytes = 0;
                }
                group_bytes += e.size;
                group.push(e);
            }
            self.merge(view, &date, &group, &mut report).await?;
        }
        Ok(report)
    }

    /// The inputs a file's footer names, if it is a compacted file; `None` if the file
    /// is gone.
    async fn footer_replaces(&self, path: &Path) -> Result<Option<Option<Vec<Path>>>> {
        let mut reader = parquet::arrow::async_reader::ParquetObjectReader::new(
            Arc::clone(&self.store),
            path.clone(),
        );
        let options = parquet::arrow::arrow_reader::ArrowReaderOptions::new();
        match parquet::arrow::arrow_reader::ArrowReaderMetadata::load_async(&mut reader, options)
            .await
        {
            Ok(meta) => Ok(Some(replaces_in(
                path,
                meta.metadata().file_metadata().key_value_metadata(),
            ))),
            Err(e) => match self.store.head(path).await {
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                _ => Err(FeatureError::Corrupt(format!("{path}: {e}"))),
            },
        }
    }

    /// Writes one file holding the rows of `group` (two or more), in their order.
    async fn merge(
        &self,
        view: &FeatureView,
        date: &str,
        group: &[&Entry],
        report: &mut CompactReport,
    ) -> Result<()> {
        if group.len() < 2 {
            return Ok(());
        }
        let mut batches = Vec::new();
        for e in group {
            let bytes = match self.store.get(&e.listed.path).await {
                Ok(r) => r.bytes().await.map_err(storage)?,
                // Another compactor finished first and deleted it: leave this group.
                Err(object_store::Error::NotFound { .. }) => return Ok(()),
                Err(e) => return Err(storage(e)),
            };
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.build())
                .map_err(|err| FeatureError::Corrupt(format!("{}: {err}", e.listed.path)))?;
            for b in reader {
                batches.push(
                    b.map_err(|err| FeatureError::Corrupt(format!("{}: {err}", e.listed.path)))?,
                );
            }
        }
        let Some(schema) = union_schema(&batches) else {
            tracing::warn!(view = %view.name, date, "not compacted: a column changed type between files");
            return Ok(());
        };
        let names: Vec<&str> = group
            .iter()
            .filter_map(|e| e.listed.path.filename())
            .collect();
        let props = WriterProperties::builder()
            .set_max_row_group_size(GROUP_ROWS)
            .set_compression(parquet::basic::Compression::SNAPPY)
            .set_key_value_metadata(Some(vec![KeyValue::new(
                REPLACES.to_string(),
                names.join("\n"),
            )]))
            .build();
        let failed =
            |e: parquet::errors::ParquetError| FeatureError::Corrupt(format!("compacting: {e}"));
        let mut buffer = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut buffer, Arc::clone(&schema), Some(props)).map_err(failed)?;
        let mut rows = 0;
        for b in &batches {
            let b = conform(b, &schema)?;
            rows += b.num_rows() as u64;
            writer.write(&b).map_err(failed)?;
        }
        writer.close().map_err(failed)?;
        let created = chrono::Utc::now().timestamp_micros();
        let path = self
            .view_dir(&view.name)
            .child(format!("date={date}"))
            .child(format!(
                "{created:020}-{}.parquet",
                uuid::Uuid::new_v4().simple()
            ));
        self.store
            .put(&path, buffer.into())
            .await
            .map_err(storage)?;
        report.files_merged += group.len();
        report.files_written += 1;
        report.rows += rows;
        Ok(())
    }
}

/// The inputs named under [`REPLACES`] in a footer's key-value metadata.
pub(crate) fn replaces_in(path: &Path, kv: Option<&Vec<KeyValue>>) -> Option<Vec<Path>> {
    let value = kv?.iter().find(|k| k.key == REPLACES)?.value.as_deref();
    live::replaces_from(path, value)
}

/// Every column of the batches, in order of first appearance; `None` if one column
/// has two types.
fn union_schema(batches: &[RecordBatch]) -> Option<SchemaRef> {
    let mut fields: Vec<ArrowField> = Vec::new();
    for b in batches {
        for f in b.schema().fields() {
            match fields.iter().find(|g| g.name() == f.name()) {
                Some(g) if g.data_type() != f.data_type() => return None,
                Some(_) => {}
                None => fields.push(f.as_ref().clone().with_nullable(true)),
            }
        }
    }
    Some(Arc::new(Schema::new(fields)))
}

/// A batch in the union schema: its columns, nulls for those it lacks.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            batch
                .column_by_name(f.name())
                .cloned()
                .unwrap_or_else(|| arrow_array::new_null_array(f.data_type(), batch.num_rows()))
        })
        .collect();
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|e| FeatureError::Corrupt(format!("compacting: {e}")))
}
