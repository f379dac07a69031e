//! The embedded online store: every entity's latest row in memory, every acknowledged
//! write in a local write-ahead log, replayed on open.
//!
//! Reads take a shard's read lock and do no I/O. Rows are kept encoded, one allocation
//! per entity (see `rows`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::definitions::FeatureView;
use crate::online::codec::{Reader, put_str, put_value};
use crate::online::layout::Layout;
use crate::online::rows::{self, SHARDS, Shard};
use crate::online::wal::Wal;
use crate::online::{Feature, PushRow, WriteOutcome, join_key, validate};
use crate::value::Status;
use crate::{FeatureError, Result};

#[derive(Debug)]
struct ViewTable {
    /// The layout rows are written in. Every shard holds its rows in this one, except
    /// while a write is relaying them out (see [`ViewTable::relayout`]).
    layout: RwLock<Arc<Layout>>,
    shards: Vec<RwLock<Shard>>,
    /// The newest event time of any row applied (`i64::MIN` before the first). Kept
    /// across compaction, since the snapshot keeps each entity's newest row.
    newest_event_micros: AtomicI64,
}

impl ViewTable {
    fn new() -> ViewTable {
        let layout = Arc::new(Layout::default());
        ViewTable {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(Shard::new(Arc::clone(&layout))))
                .collect(),
            layout: RwLock::new(layout),
            newest_event_micros: AtomicI64::new(i64::MIN),
        }
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        &self.shards[rows::shard_of(hash)]
    }

    fn layout(&self) -> Result<Arc<Layout>> {
        Ok(Arc::clone(&*read(&self.layout)?))
    }

    fn has_rows(&self) -> Result<bool> {
        for shard in &self.shards {
            if read(shard)?.len() > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Moves every shard to `layout`, rewriting its rows unless they read the same.
    /// Called by writers only (under the log lock); readers meanwhile see each shard
    /// whole, in its old layout or its new one.
    fn relayout(&self, layout: Layout) -> Result<Arc<Layout>> {
        let layout = Arc::new(layout);
        let started = std::time::Instant::now();
        let mut rewritten = 0usize;
        for shard in &self.shards {
            let same = read(shard)?.layout().rows_read_same_under(&layout);
            if same {
                write(shard)?.set_layout(Arc::clone(&layout));
            } else {
                let relaid = read(shard)?.relaid(Arc::clone(&layout))?;
                rewritten += relaid.len();
                *write(shard)? = relaid;
            }
        }
        *write(&self.layout)? = Arc::clone(&layout);
        // Housekeeping a newcomer cannot act on (every demo start relays its views once).
        if rewritten > 0 {
            tracing::debug!(
                rows = rewritten,
                fields = layout.len(),
                seconds = started.elapsed().as_secs_f64(),
                "online store: a view's rows were relaid out for a new field, type or null"
            );
        }
        Ok(layout)
    }
}

fn read<T>(l: &RwLock<T>) -> Result<std::sync::RwLockReadGuard<'_, T>> {
    l.read()
        .map_err(|_| FeatureError::Corrupt("a writer panicked while holding the store".into()))
}

fn write<T>(l: &RwLock<T>) -> Result<std::sync::RwLockWriteGuard<'_, T>> {
    l.write()
        .map_err(|_| FeatureError::Corrupt("a writer panicked while holding the store".into()))
}

/// The embedded online store. Cloning shares it.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    states: Arc<super::state::States>,
}

#[derive(Debug)]
struct Inner {
    views: RwLock<HashMap<String, Arc<ViewTable>>>,
    log: Mutex<Log>,
}

/// The log and when to compact it.
#[derive(Debug)]
struct Log {
    wal: Wal,
    /// Compact once the log is larger than this.
    compact_at: u64,
    min_bytes: u64,
}

impl Log {
    fn after_compaction(&mut self) {
        self.compact_at = self.min_bytes.max(self.wal.len().saturating_mul(2));
    }
}

/// Logs smaller than this are never compacted.
pub const COMPACT_MIN_BYTES: u64 = 64 << 20;
/// Rows per snapshot record.
const SNAPSHOT_ROWS: usize = 4096;

impl EmbeddedStore {
    /// Opens the store in `dir`, replaying its log.
    pub fn open(dir: &Path) -> Result<EmbeddedStore> {
        EmbeddedStore::open_with(dir, COMPACT_MIN_BYTES)
    }

    /// Opens the store, compacting its log (rewriting it as a snapshot of the current
    /// rows) whenever it has grown past `compact_min_bytes` and twice its size after the
    /// last compaction, and at open when most of what it replays was superseded.
    pub fn open_with(dir: &Path, compact_min_bytes: u64) -> Result<EmbeddedStore> {
        std::fs::create_dir_all(dir)?;
        let views = RwLock::new(HashMap::new());
        let mut replayed = 0usize;
        let wal = Wal::open(&dir.join("online.wal"), |payload| {
            let o = apply_record(&views, payload)?;
            replayed += o.written + o.ignored_older;
            Ok(())
        })?;
        let mut log = Log {
            wal,
            compact_at: 0,
            min_bytes: compact_min_bytes,
        };
        log.after_compaction();
        let inner = Inner {
            views,
            log: Mutex::new(log),
        };
        let live: usize = read(&inner.views)?
            .values()
            .map(|t| {
                t.shards
                    .iter()
                    .map(|s| read(s).map_or(0, |m| m.len()))
                    .sum::<usize>()
            })
            .sum();
        if replayed > live.saturating_mul(2) {
            let mut log = lock(&inner.log)?;
            if log.wal.len() > compact_min_bytes {
                inner.compact(&mut log)?;
            }
        }
        Ok(EmbeddedStore {
            inner: Arc::new(inner),
            states: Arc::default(),
        })
    }

    /// Bytes in the log now.
    pub fn log_bytes(&self) -> Result<u64> {
        Ok(lock(&self.inner.log)?.wal.len())
    }

    /// Rewrites the log as a snapshot of the current rows now.
    pub fn compact(&self) -> Result<()> {
        let mut log = lock(&self.inner.log)?;
        self.inner.compact(&mut log)
    }

    /// Writes rows to a view: all are checked against the view's schema first (a bad row
    /// fails the whole call, naming the row and field), then logged and synced, then
    /// applied. A row whose event time is older than the stored row's is ignored.
    pub fn write(&self, view: &FeatureView, rows: &[PushRow]) -> Result<WriteOutcome> {
        validate(view, rows)?;
        self.inner.log_and_apply(&encode_record(view, rows))
    }

    /// Reads `fields` of each entity in `keys`, with a status per value: expired when the
    /// row's event time is older than the view's TTL at `now_micros`.
    pub fn read(
        &self,
        view: &FeatureView,
        keys: &[Vec<String>],
        fields: &[&str],
        now_micros: i64,
    ) -> Result<Vec<Vec<Feature>>> {
        super::check_fields(view, fields)?;
        let missing = || {
            fields
                .iter()
                .map(|_| (None, Status::Missing))
                .collect::<Vec<_>>()
        };
        let Some(table) = read(&self.inner.views)?.get(&view.name).cloned() else {
            return Ok(keys.iter().map(|_| missing()).collect());
        };
        // Requested names → field ids, once per call (again for a shard caught in a
        // relayout, whose layout differs from the table's).
        let layout = table.layout()?;
        let wanted = layout.ids(fields);
        let ttl = super::ttl_micros(view);
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let hash = rows::hash_key_parts(key);
            let shard = read(table.shard(hash))?;
            let Some(row) = shard.get(hash, key) else {
                out.push(missing());
                continue;
            };
            let expired = super::is_expired(ttl, row.event_time_micros(), now_micros);
            let here = shard.layout();
            let relaid;
            let wanted = if Arc::ptr_eq(here, &layout) {
                &wanted
            } else {
                relaid = here.ids(fields);
                &relaid
            };
            let mut values = Vec::with_capacity(fields.len());
            here.read_into(row.fixed, row.side, wanted, expired, &mut values)?;
            out.push(values);
        }
        Ok(out)
    }

    /// The newest event time of any row in a view, if it has rows.
    pub fn newest_event_micros(&self, view: &str) -> Result<Option<i64>> {
        Ok(read(&self.inner.views)?
            .get(view)
            .map(|t| t.newest_event_micros.load(Ordering::Relaxed))
            .filter(|&t| t != i64::MIN))
    }

    /// Bytes the rows of every view take in memory (pages, hash tables, text), as the
    /// store counts them: what the process' resident size grows by, give or take the
    /// allocator's own overhead.
    pub fn memory_bytes(&self) -> Result<usize> {
        let mut total = 0;
        for table in read(&self.inner.views)?.values() {
            for shard in &table.shards {
                total += read(shard)?.bytes();
            }
        }
        Ok(total)
    }

    /// Number of entities stored for a view.
    pub fn len(&self, view: &str) -> Result<usize> {
        let Some(table) = read(&self.inner.views)?.get(view).cloned() else {
            return Ok(0);
        };
        table.shards.iter().map(|s| read(s).map(|m| m.len())).sum()
    }
}

impl Inner {
    /// Logs and syncs a record, then applies it to memory; compacts the log when due
    /// (the write is already durable, so a failed compaction only logs a warning).
    fn log_and_apply(&self, payload: &[u8]) -> Result<WriteOutcome> {
        let mut log = lock(&self.log)?;
        log.wal.append(payload)?;
        // Applying under the log lock keeps memory in log order, as replay will see it.
        let outcome = apply_record(&self.views, payload)?;
        if log.wal.len() > log.compact_at
            && let Err(e) = self.compact(&mut log)
        {
            tracing::warn!(error = %e, "online store log compaction failed; will retry later");
            log.compact_at = log.wal.len().saturating_mul(2);
        }
        Ok(outcome)
    }

    /// Rewrites the log as a snapshot of memory. Holding the log lock keeps writers out;
    /// readers go on.
    fn compact(&self, log: &mut Log) -> Result<()> {
        let before = log.wal.len();
        let started = std::time::Instant::now();
        log.wal.rewrite(|emit| snapshot(&self.views, emit))?;
        log.after_compaction();
        tracing::info!(
            before_bytes = before,
            after_bytes = log.wal.len(),
            seconds = started.elapsed().as_secs_f64(),
            "compacted the online store log"
        );
        Ok(())
    }
}

#[async_trait::async_trait]
impl super::OnlineStore for EmbeddedStore {
    async fn write(&self, view: &FeatureView, rows: &[PushRow]) -> Result<WriteOutcome> {
        validate(view, rows)?;
        let payload = encode_record(view, rows);
        // The log is synced to disk: off the reactor.
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.log_and_apply(&payload))
            .await
            .map_err(|e| FeatureError::Io(std::io::Error::other(e)))?
    }

    async fn read(
        &self,
        view: &FeatureView,
        keys: &[Vec<String>],
        fields: &[&str],
        now_micros: i64,
    ) -> Result<Vec<Vec<Feature>>> {
        EmbeddedStore::read(self, view, keys, fields, now_micros)
    }

    async fn newest_event_micros(&self, view: &FeatureView) -> Result<Option<i64>> {
        EmbeddedStore::newest_event_micros(self, &view.name)
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn put_state(&self, key: &str, value: &[u8], ttl: std::time::Duration) -> Result<()> {
        self.states.put(key, value, ttl)
    }

    async fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.states.get(key)
    }

    async fn claim_state(&self, key: &str, value: &[u8], ttl: std::time::Duration) -> Result<bool> {
        self.states.claim(key, value, ttl)
    }

    async fn delete_state(&self, key: &str) -> Result<()> {
        self.states.delete(key)
    }
}

fn lock(l: &Mutex<Log>) -> Result<std::sync::MutexGuard<'_, Log>> {
    l.lock()
        .map_err(|_| FeatureError::Corrupt("the log writer panicked".into()))
}

/// Emits every stored row as log records (in the format of [`encode_record`]), view by
/// view and shard by shard, a few thousand rows per record.
fn snapshot(
    views: &RwLock<HashMap<String, Arc<ViewTable>>>,
    emit: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    for (name, table) in read(views)?.iter() {
        for shard in &table.shards {
            let shard = read(shard)?;
            let layout = shard.layout();
            let fields = layout.names();
            let n_fields = u16::try_from(fields.len())
                .map_err(|_| FeatureError::Corrupt("more than 65535 fields".into()))?;
            let stored: Vec<rows::RowRef<'_>> = shard.iter().collect();
            for chunk in stored.chunks(SNAPSHOT_ROWS) {
                let mut out = Vec::with_capacity(64 + chunk.len() * (24 + fields.len() * 5));
                put_str(&mut out, name);
                out.extend_from_slice(&n_fields.to_le_bytes());
                for f in fields {
                    put_str(&mut out, f);
                }
                out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
                let mut values = Vec::with_capacity(fields.len());
                for row in chunk {
                    let key = std::str::from_utf8(row.key)
                        .map_err(|_| FeatureError::Corrupt("a stored key is not UTF-8".into()))?;
                    put_str(&mut out, key);
                    out.extend_from_slice(&row.event_time_micros().to_le_bytes());
                    layout.decode(row.fixed, row.side, &mut values)?;
                    for v in &values {
                        put_value(&mut out, v.as_ref());
                    }
                }
                emit(&out)?;
            }
        }
    }
    Ok(())
}

/// Record payload: view name, the field names in view order, then each row's key, event
/// time, and one value per field (null for fields the row did not give).
fn encode_record(view: &FeatureView, rows: &[PushRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + rows.len() * (24 + view.fields.len() * 5));
    put_str(&mut out, &view.name);
    out.extend_from_slice(&(view.fields.len() as u16).to_le_bytes());
    for f in &view.fields {
        put_str(&mut out, &f.name);
    }
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for row in rows {
        put_str(&mut out, &join_key(&row.key));
        out.extend_from_slice(&row.event_time_micros.to_le_bytes());
        for f in &view.fields {
            let v = row
                .values
                .iter()
                .find(|(n, _)| n == &f.name)
                .and_then(|(_, v)| v.as_ref());
            put_value(&mut out, v);
        }
    }
    out
}

/// Applies a record to memory (at write time and at replay), newest event time winning.
fn apply_record(
    views: &RwLock<HashMap<String, Arc<ViewTable>>>,
    payload: &[u8],
) -> Result<WriteOutcome> {
    let mut r = Reader::new(payload);
    let view = r.str()?.to_string();
    let n_fields = usize::from(r.u16()?);
    let table = {
        let existing = read(views)?.get(&view).cloned();
        match existing {
            Some(t) => t,
            None => write(views)?
                .entry(view)
                .or_insert_with(|| Arc::new(ViewTable::new()))
                .clone(),
        }
    };
    let mut names = Vec::with_capacity(n_fields);
    for _ in 0..n_fields {
        names.push(r.str()?);
    }
    let mut layout = table.layout()?;
    let mut ids = layout.ids(&names);
    if ids.iter().any(Option::is_none) {
        layout = table.relayout(layout.with_fields(&names)?)?;
        ids = layout.ids(&names);
    }
    let ids: Vec<usize> = ids
        .into_iter()
        .map(|id| id.map(usize::from))
        .collect::<Option<_>>()
        .ok_or_else(|| FeatureError::Corrupt("a field its view's layout lacks".into()))?;
    let n_rows = r.u32()? as usize;
    let mut outcome = WriteOutcome::default();
    let mut values: Vec<Option<crate::value::Value>> = Vec::new();
    for _ in 0..n_rows {
        let key = r.str()?;
        let event_time_micros = r.i64()?;
        values.clear();
        values.resize(layout.len(), None);
        for &id in &ids {
            values[id] = r.value()?;
        }
        if !layout.fits(&values) {
            layout = table.relayout(layout.widened(&values, table.has_rows()?)?)?;
        }
        table
            .newest_event_micros
            .fetch_max(event_time_micros, Ordering::Relaxed);
        let hash = rows::hash_key(key.as_bytes());
        if write(table.shard(hash))?.put_if_not_older(hash, key, event_time_micros, &values)? {
            outcome.written += 1;
        } else {
            outcome.ignored_older += 1;
        }
    }
    if !r.is_empty() {
        return Err(FeatureError::Corrupt(
            "trailing bytes after the last row".into(),
        ));
    }
    Ok(outcome)
}
