//! Stream offsets: where each stream source has read to, per partition of its topic.

use sqlx::{AnyConnection, Row};

use super::ts;
use crate::Result;

/// The offset of the next message `source` consumes from `partition` of `topic`, if it
/// committed one.
pub(crate) async fn stream_offset(
    conn: &mut AnyConnection,
    source: &str,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT next_offset FROM stream_offsets
         WHERE source = $1 AND topic = $2 AND partition_id = $3",
    )
    .bind(source)
    .bind(topic)
    .bind(i64::from(partition))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| r.try_get("next_offset")).transpose()?)
}

/// Records that `source` consumed `partition` of `topic` up to `next_offset` (exclusive).
/// An offset never moves back here: a replica that lost the partition and commits late
/// cannot undo the progress of the one that took it over.
pub(crate) async fn commit_stream_offset(
    conn: &mut AnyConnection,
    source: &str,
    topic: &str,
    partition: i32,
    next_offset: i64,
    instance: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO stream_offsets (source, topic, partition_id, next_offset, instance, at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (source, topic, partition_id) DO UPDATE SET next_offset = $4,
           instance = $5, at = $6
         WHERE stream_offsets.next_offset <= $4",
    )
    .bind(source)
    .bind(topic)
    .bind(i64::from(partition))
    .bind(next_offset)
    .bind(instance)
    .bind(ts(super::now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
