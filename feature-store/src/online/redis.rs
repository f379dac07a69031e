//! The Redis online store, for many server replicas sharing one store.
//!
//! One hash per entity and view, at `{prefix}:{view}:{key}` (a composite key's parts
//! joined by U+001F): field `_t` holds the event time in microseconds, and each non-null
//! feature its value in the same encoding as the embedded store's log (field names start
//! with a letter, so `_t` cannot clash). A whole call is one Lua script, which Redis runs
//! atomically: each row compares its event time with the stored `_t` and, unless older,
//! replaces the hash, and `{prefix}:_newest:{view}` keeps the newest event time written
//! to the view. Reads are one pipelined round trip of `HMGET`s.

use redis::aio::ConnectionManager;

use crate::definitions::FeatureView;
use crate::online::codec::{Reader, put_value};
use crate::online::{Feature, OnlineStore, PushRow, ViewRead, WriteOutcome, join_key, validate};
use crate::{FeatureError, Result};

/// Event time field of an entity's hash.
const EVENT_TIME: &str = "_t";

/// Writes rows newest-event-wins and raises the view's newest event time. KEYS: the
/// view's newest-event key, then one per row. ARGV per row: event time, number of
/// non-null fields n, then n (field, encoded value) pairs. Returns rows written.
const WRITE_ROWS: &str = r"
local written = 0
local newest = nil
local a = 1
for i = 2, #KEYS do
  local key = KEYS[i]
  local t = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  if not newest or tonumber(t) > tonumber(newest) then newest = t end
  local stored = redis.call('HGET', key, '_t')
  if not stored or tonumber(stored) <= tonumber(t) then
    redis.call('DEL', key)
    local args = {'_t', t}
    for j = 0, n - 1 do
      args[#args + 1] = ARGV[a + 2 + 2 * j]
      args[#args + 1] = ARGV[a + 3 + 2 * j]
    end
    redis.call('HSET', key, unpack(args))
    written = written + 1
  end
  a = a + 2 + 2 * n
end
if newest then
  local before = redis.call('GET', KEYS[1])
  if not before or tonumber(before) < tonumber(newest) then
    redis.call('SET', KEYS[1], newest)
  end
end
return written
";

/// The Redis online store. Cloning shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    write_rows: std::sync::Arc<redis::Script>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> FeatureError {
    FeatureError::Unavailable(format!("online store (redis): {e}"))
}

impl RedisStore {
    /// Connects to `url` (`redis://[user:password@]host:port/db`, or `rediss://` for
    /// TLS), keys under `mercator`.
    pub async fn connect(url: &str) -> Result<RedisStore> {
        RedisStore::connect_with_prefix(url, "mercator").await
    }

    /// Connects to `url` with keys under `prefix` (so deployments can share a server).
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<RedisStore> {
        let client = super::redis_url::client(url)?;
        // While Redis is away, a lookup must fail fast (UNAVAILABLE) rather than wait out
        // a reconnection schedule: each call that finds the connection broken makes one
        // attempt, bounded by the connection timeout, and the first call after Redis is
        // back reconnects. (Three retries backing off held every call ~8 s.)
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(std::time::Duration::from_secs(1))
            .set_response_timeout(std::time::Duration::from_secs(5))
            .set_number_of_retries(0);
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        Ok(RedisStore {
            conn,
            prefix: prefix.to_string(),
            write_rows: std::sync::Arc::new(redis::Script::new(WRITE_ROWS)),
        })
    }

    fn key(&self, view: &str, key: &[String]) -> String {
        format!("{}:{view}:{}", self.prefix, join_key(key))
    }

    /// The key of a state (`_state` is no view's name: views start with a letter).
    fn state_key(&self, key: &str) -> String {
        format!("{}:_state:{key}", self.prefix)
    }

    /// The key holding a view's newest event time (view names start with a letter, so
    /// `_newest` is no view's name).
    fn newest_key(&self, view: &str) -> String {
        format!("{}:_newest:{view}", self.prefix)
    }
}

#[async_trait::async_trait]
impl OnlineStore for RedisStore {
    async fn write(&self, view: &FeatureView, rows: &[PushRow]) -> Result<WriteOutcome> {
        validate(view, rows)?;
        if rows.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let mut invocation = self.write_rows.prepare_invoke();
        invocation.key(self.newest_key(&view.name));
        let mut encoded = Vec::new();
        for row in rows {
            invocation.key(self.key(&view.name, &row.key));
            let present: Vec<_> = row
                .values
                .iter()
                .filter_map(|(name, v)| v.as_ref().map(|v| (name, v)))
                .collect();
            invocation.arg(row.event_time_micros).arg(present.len());
            for (name, value) in present {
                encoded.clear();
                put_value(&mut encoded, Some(value));
                invocation.arg(name.as_str()).arg(encoded.as_slice());
            }
        }
        let written: usize = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(WriteOutcome {
            written,
            ignored_older: rows.len().saturating_sub(written),
        })
    }

    async fn read(
        &self,
        view: &FeatureView,
        keys: &[Vec<String>],
        fields: &[&str],
        now_micros: i64,
    ) -> Result<Vec<Vec<Feature>>> {
        let read = ViewRead { view, fields, keys };
        let mut got = self.read_views(&[read], now_micros).await?;
        Ok(got.pop().unwrap_or_default())
    }

    /// Every read's rows in one pipeline: one round trip however many views and
    /// entities a request touches.
    async fn read_views(
        &self,
        reads: &[ViewRead<'_>],
        now_micros: i64,
    ) -> Result<Vec<Vec<Vec<Feature>>>> {
        for r in reads {
            super::check_fields(r.view, r.fields)?;
        }
        let total: usize = reads.iter().map(|r| r.keys.len()).sum();
        if total == 0 {
            return Ok(reads.iter().map(|_| Vec::new()).collect());
        }
        let mut pipe = redis::pipe();
        for r in reads {
            for key in r.keys {
                pipe.cmd("HMGET")
                    .arg(self.key(&r.view.name, key))
                    .arg(EVENT_TIME)
                    .arg(r.fields);
            }
        }
        let replies: Vec<Vec<Option<Vec<u8>>>> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        if replies.len() != total {
            return Err(FeatureError::Corrupt(format!(
                "Redis answered {} of {total} reads",
                replies.len()
            )));
        }
        let mut replies = replies.into_iter();
        reads
            .iter()
            .map(|r| {
                let ttl = super::ttl_micros(r.view);
                replies
                    .by_ref()
                    .take(r.keys.len())
                    .map(|reply| row_of(reply, ttl, now_micros))
                    .collect()
            })
            .collect()
    }

    async fn newest_event_micros(&self, view: &FeatureView) -> Result<Option<i64>> {
        let stored: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.newest_key(&view.name))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        stored.map(|t| parse_time(&t)).transpose()
    }

    async fn put_state(&self, key: &str, value: &[u8], ttl: std::time::Duration) -> Result<()> {
        super::state::check(key, value)?;
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.state_key(key))
            .arg(value)
            .arg("PX")
            .arg(millis)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>> {
        super::state::check(key, &[])?;
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(self.state_key(key))
            .query_async::<Option<Vec<u8>>>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn claim_state(&self, key: &str, value: &[u8], ttl: std::time::Duration) -> Result<bool> {
        super::state::check(key, value)?;
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.state_key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }

    async fn delete_state(&self, key: &str) -> Result<()> {
        super::state::check(key, &[])?;
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.state_key(key))
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

/// One `HMGET` reply (the event time, then the fields) as values with their status.
fn row_of(reply: Vec<Option<Vec<u8>>>, ttl: Option<i64>, now_micros: i64) -> Result<Vec<Feature>> {
    let mut reply = reply.into_iter();
    let event_time = match reply.next().flatten() {
        Some(t) => Some(parse_time(&t)?),
        None => None,
    };
    let expired = event_time.is_some_and(|t| super::is_expired(ttl, t, now_micros));
    reply
        .map(|bytes| {
            let value = match bytes {
                Some(b) => Reader::new(&b).value()?,
                None => None,
            };
            Ok(super::as_read(value, expired))
        })
        .collect()
}

fn parse_time(bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| FeatureError::Corrupt("a Redis row's event time is not an integer".into()))
}
