//! The online store: each entity's latest feature values, for serving.
//!
//! Two backends behind one trait: `embedded` (memory plus a local write-ahead log, one
//! process) and `redis` (shared by many server replicas). Both keep the newest event per
//! entity, refuse a whole call when one row is bad, and report TTL expiry per value.

mod codec;
pub mod embedded;
mod layout;
pub mod redis;
mod redis_url;
mod rows;
pub mod state;
mod wal;

use std::time::Duration;

use crate::definitions::FeatureView;
use crate::value::{Status, Value};
use crate::{FeatureError, Result};

pub use embedded::EmbeddedStore;
pub use redis::RedisStore;

/// Longest key value accepted, in bytes (the embedded store keeps a whole key in 16 bits).
pub const MAX_KEY_BYTES: usize = 1024;

/// Separates the parts of a composite entity key (ASCII unit separator): in the online
/// store's keys, and wherever the server joins a key's parts (placing an entity on a
/// traffic split).
pub const KEY_SEPARATOR: char = '\u{1f}';

/// Latest values per entity and field.
#[async_trait::async_trait]
pub trait OnlineStore: std::fmt::Debug + Send + Sync {
    /// Writes rows to a view: all are checked against the view's schema first (a bad row
    /// fails the whole call, naming the row and field, and nothing is written), then
    /// applied. A row whose event time is older than the stored row's is ignored; a row
    /// replaces the entity's whole row (fields it does not give become null).
    async fn write(&self, view: &FeatureView, rows: &[PushRow]) -> Result<WriteOutcome>;

    /// Reads `fields` of each entity in `keys`, in order, with a status per value:
    /// expired when the row's event time is older than the view's TTL at `now_micros`.
    /// Unknown fields are refused.
    async fn read(
        &self,
        view: &FeatureView,
        keys: &[Vec<String>],
        fields: &[&str],
        now_micros: i64,
    ) -> Result<Vec<Vec<Feature>>>;

    /// Several [`OnlineStore::read`]s, each of its own view, fields and entities: one
    /// result per read, in order. A networked backend answers them all in one round
    /// trip; the default reads each in turn.
    async fn read_views(
        &self,
        reads: &[ViewRead<'_>],
        now_micros: i64,
    ) -> Result<Vec<Vec<Vec<Feature>>>> {
        let mut out = Vec::with_capacity(reads.len());
        for r in reads {
            out.push(self.read(r.view, r.keys, r.fields, now_micros).await?);
        }
        Ok(out)
    }

    /// The newest event time of any row written to the view, if any was: how fresh the
    /// view is (a stalled ingestion job shows as this falling behind the clock).
    async fn newest_event_micros(&self, view: &FeatureView) -> Result<Option<i64>>;

    /// Which backend, for logs and metrics.
    fn backend(&self) -> &'static str;

    /// Keeps short-lived state (a conversation's) under `key` for `ttl`, replacing what
    /// was there and restarting its clock ([`state`]).
    async fn put_state(&self, key: &str, value: &[u8], ttl: std::time::Duration) -> Result<()>;

    /// The state under `key`, unless its time ran out.
    async fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Keeps `value` under `key` for `ttl` only if no live state is there: true when this
    /// call took it. Atomic across every process sharing the store (Redis `SET NX`), so
    /// replicas racing for one key see exactly one winner (a trigger's cooldown).
    async fn claim_state(&self, key: &str, value: &[u8], ttl: std::time::Duration) -> Result<bool>;

    /// Forgets the state under `key` (a claim whose work failed, to be tried again).
    async fn delete_state(&self, key: &str) -> Result<()>;
}

/// The backends a configuration may name, in words (for its error messages).
pub const BACKENDS: &str = "embedded or a redis:// URL";

/// Whether `spec` names an online-store backend: `embedded`, or a `redis://`
/// (`rediss://`) URL. Decided here, where the backends are, so a configuration checks a
/// name without knowing the list.
pub fn is_backend(spec: &str) -> bool {
    spec == "embedded" || is_redis_url(spec)
}

fn is_redis_url(spec: &str) -> bool {
    spec.starts_with("redis://") || spec.starts_with("rediss://")
}

/// Opens the online store a config names: `embedded` (in `dir`) or a `redis://` URL.
pub async fn open(spec: &str, dir: &std::path::Path) -> Result<std::sync::Arc<dyn OnlineStore>> {
    match spec {
        "" | "embedded" => {
            let dir = dir.to_path_buf();
            let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir))
                .await
                .map_err(|e| FeatureError::Io(std::io::Error::other(e)))??;
            Ok(std::sync::Arc::new(store))
        }
        url if is_redis_url(url) => Ok(std::sync::Arc::new(RedisStore::connect(url).await?)),
        other => Err(FeatureError::InvalidRequest {
            field: "online_store".into(),
            message: format!("'{other}' is not {BACKENDS}"),
        }),
    }
}

/// One part of [`OnlineStore::read_views`]: `fields` of `view` for each entity in `keys`.
#[derive(Debug, Clone, Copy)]
pub struct ViewRead<'a> {
    /// The view read.
    pub view: &'a FeatureView,
    /// Its fields, in the order the values come back.
    pub fields: &'a [&'a str],
    /// The entities, each its join-key values.
    pub keys: &'a [Vec<String>],
}

/// One row to write: the entity's key values (one per join key), when the values were
/// true (event time, microseconds since the epoch), and the value of every field given
/// by name; fields not given are stored as null.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRow {
    /// One value per join key of the view's entity, in order.
    pub key: Vec<String>,
    /// Event time in microseconds since the Unix epoch.
    pub event_time_micros: i64,
    /// Field values by name; `None` writes a null.
    pub values: Vec<(String, Option<Value>)>,
}

/// A value read back with its status (`None` unless present).
pub type Feature = (Option<Value>, Status);

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOutcome {
    /// Rows that replaced (or created) an entity's row.
    pub written: usize,
    /// Rows older than what was stored, so ignored.
    pub ignored_older: usize,
}

pub(crate) fn join_key(parts: &[String]) -> String {
    let mut key = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            key.push(KEY_SEPARATOR);
        }
        key.push_str(p);
    }
    key
}

pub(crate) fn validate(view: &FeatureView, rows: &[PushRow]) -> Result<()> {
    let keys = &view.entity.join_keys;
    for (i, row) in rows.iter().enumerate() {
        let bad = |field: &str, message: String| FeatureError::InvalidRow {
            row: i,
            field: field.to_string(),
            message,
        };
        if row.key.len() != keys.len() {
            return Err(bad(
                &keys.join(","),
                format!(
                    "{} key values given, entity '{}' has {} join keys {keys:?}",
                    row.key.len(),
                    view.entity.name,
                    keys.len()
                ),
            ));
        }
        for (k, v) in keys.iter().zip(&row.key) {
            if v.is_empty() || v.contains(KEY_SEPARATOR) {
                return Err(bad(
                    k,
                    "key values must be non-empty and free of control character U+001F".into(),
                ));
            }
            if v.len() > MAX_KEY_BYTES {
                return Err(bad(
                    k,
                    format!(
                        "{} bytes; a key value may have at most {MAX_KEY_BYTES}",
                        v.len()
                    ),
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (name, value) in &row.values {
            let field = view
                .fields
                .iter()
                .find(|f| &f.name == name)
                .ok_or_else(|| bad(name, format!("view '{}' has no field '{name}'", view.name)))?;
            if !seen.insert(name) {
                return Err(bad(name, "given twice".into()));
            }
            if let Some(v) = value
                && let Some(why) = field.field_type.refuses(v)
            {
                return Err(bad(name, why));
            }
        }
    }
    Ok(())
}

/// Refuses fields the view does not have.
pub(crate) fn check_fields(view: &FeatureView, fields: &[&str]) -> Result<()> {
    let mut next = 0;
    for (i, f) in fields.iter().enumerate() {
        next = 1 + view
            .field_index_from(f, next)
            .ok_or_else(|| FeatureError::InvalidRequest {
                field: format!("fields[{i}]"),
                message: format!("view '{}' has no field '{f}'", view.name),
            })?;
    }
    Ok(())
}

/// The view's TTL in microseconds, if it has one.
pub(crate) fn ttl_micros(view: &FeatureView) -> Option<i64> {
    view.ttl
        .map(|t: Duration| i64::try_from(t.as_micros()).unwrap_or(i64::MAX))
}

/// A stored value as read at `now`: expired values are withheld.
pub(crate) fn as_read(value: Option<Value>, expired: bool) -> Feature {
    match value {
        None => (None, Status::Missing),
        Some(_) if expired => (None, Status::Expired),
        Some(v) => (Some(v), Status::Present),
    }
}

/// Whether a row written at `event_time` is past the TTL at `now`.
pub(crate) fn is_expired(ttl: Option<i64>, event_time: i64, now: i64) -> bool {
    ttl.is_some_and(|ttl| now.saturating_sub(event_time) > ttl)
}
