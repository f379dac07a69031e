//! Hash partitions spilled to local disk: rows are routed to one of `P` partitions and
//! buffered per partition; a partition's buffer is written out as its own Arrow IPC
//! file (LZ4-compressed) once it holds `flush_bytes`, so memory is bounded by `P ×
//! flush_bytes` whatever the input size. Each flush is a separate file, so no file
//! descriptor stays open and a partition is read back in the order it was written.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_ipc::CompressionType;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::SchemaRef;

use crate::{FeatureError, Result};

fn io(what: &str, e: impl std::fmt::Display) -> FeatureError {
    FeatureError::Unavailable(format!("spill ({what}): {e}"))
}

/// One set of partitions being written (the entity rows, or one view's history).
pub(super) struct SpillWriter {
    dir: PathBuf,
    schema: SchemaRef,
    pending: Vec<Vec<RecordBatch>>,
    pending_bytes: Vec<usize>,
    files: Vec<u32>,
    flush_bytes: usize,
    written_bytes: u64,
}

impl SpillWriter {
    /// Partitions `0..partitions` under `dir` (created), each flushed at `flush_bytes`.
    pub(super) fn new(
        dir: PathBuf,
        schema: SchemaRef,
        partitions: usize,
        flush_bytes: usize,
    ) -> Result<SpillWriter> {
        std::fs::create_dir_all(&dir).map_err(|e| io("creating a folder", e))?;
        Ok(SpillWriter {
            dir,
            schema,
            pending: vec![Vec::new(); partitions],
            pending_bytes: vec![0; partitions],
            files: vec![0; partitions],
            flush_bytes,
            written_bytes: 0,
        })
    }

    /// Adds rows (of this writer's schema) to partition `p`.
    pub(super) fn push(&mut self, p: usize, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.pending_bytes[p] += batch.get_array_memory_size();
        self.pending[p].push(batch);
        if self.pending_bytes[p] >= self.flush_bytes {
            self.flush(p)?;
        }
        Ok(())
    }

    fn flush(&mut self, p: usize) -> Result<()> {
        let batches = std::mem::take(&mut self.pending[p]);
        self.pending_bytes[p] = 0;
        if batches.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(format!("{p:05}-{:06}.arrow", self.files[p]));
        self.files[p] += 1;
        let mut file = StreamFile::create(&path, &self.schema)?;
        for b in &batches {
            file.write(b)?;
        }
        self.written_bytes += file.finish()?;
        Ok(())
    }

    /// Writes `batch` to partition `p` at once, as files of `chunk_rows` rows each (after
    /// anything pending), so the partition can be read back a chunk at a time.
    pub(super) fn write_chunks(
        &mut self,
        p: usize,
        batch: &RecordBatch,
        chunk_rows: usize,
    ) -> Result<()> {
        self.flush(p)?;
        let mut from = 0;
        while from < batch.num_rows() {
            let n = chunk_rows.max(1).min(batch.num_rows() - from);
            self.pending[p].push(batch.slice(from, n));
            self.flush(p)?;
            from += n;
        }
        Ok(())
    }

    /// Writes out every partition's remainder; returns the bytes written to disk.
    pub(super) fn finish(mut self) -> Result<SpilledSet> {
        for p in 0..self.pending.len() {
            self.flush(p)?;
        }
        Ok(SpilledSet {
            dir: self.dir,
            files: self.files,
            bytes: self.written_bytes,
        })
    }
}

/// Partitions on disk, ready to be read back one at a time.
#[derive(Debug)]
pub(super) struct SpilledSet {
    dir: PathBuf,
    files: Vec<u32>,
    /// Bytes on disk.
    pub(super) bytes: u64,
}

impl SpilledSet {
    /// Every batch of partition `p`, in the order pushed.
    pub(super) fn read(&self, p: usize) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for f in 0..self.files[p] {
            out.extend(self.read_file(p, f)?);
        }
        Ok(out)
    }

    /// Files of partition `p`.
    pub(super) fn files(&self, p: usize) -> u32 {
        self.files[p]
    }

    /// The batches of file `f` of partition `p`.
    pub(super) fn read_file(&self, p: usize, f: u32) -> Result<Vec<RecordBatch>> {
        open(&self.dir.join(format!("{p:05}-{f:06}.arrow")))?
            .map(|b| b.map_err(|e| io("reading", e)))
            .collect()
    }

    /// Deletes partition `p`'s files (read and no longer needed).
    pub(super) fn remove(&self, p: usize) {
        for f in 0..self.files[p] {
            let _ = std::fs::remove_file(self.dir.join(format!("{p:05}-{f:06}.arrow")));
        }
    }
}

/// A reader over one spill file.
pub(super) fn open(path: &Path) -> Result<StreamReader<BufReader<File>>> {
    let file = File::open(path).map_err(|e| io("opening", e))?;
    StreamReader::try_new(BufReader::new(file), None).map_err(|e| io("reading", e))
}

/// A single file written batch by batch (a partition's joined rows), LZ4-compressed.
pub(super) struct StreamFile {
    writer: StreamWriter<BufWriter<File>>,
}

impl StreamFile {
    /// Creates `path` for rows of `schema`.
    pub(super) fn create(path: &Path, schema: &SchemaRef) -> Result<StreamFile> {
        let file = File::create(path).map_err(|e| io("creating a file", e))?;
        let options = IpcWriteOptions::default()
            .try_with_compression(Some(CompressionType::LZ4_FRAME))
            .map_err(|e| io("compression", e))?;
        let writer = StreamWriter::try_new_with_options(BufWriter::new(file), schema, options)
            .map_err(|e| io("writing", e))?;
        Ok(StreamFile { writer })
    }

    /// Appends rows.
    pub(super) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(|e| io("writing", e))
    }

    /// Ends the file; returns its size.
    pub(super) fn finish(mut self) -> Result<u64> {
        self.writer.finish().map_err(|e| io("writing", e))?;
        let inner = self.writer.into_inner().map_err(|e| io("writing", e))?;
        let file = inner.into_inner().map_err(|e| io("writing", e.error()))?;
        Ok(file.metadata().map(|m| m.len()).unwrap_or(0))
    }
}
