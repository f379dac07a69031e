//! Approvals of versions (the four-eyes rule): recorded once per approver, read per version.

use sqlx::{AnyConnection, Row};

use super::{now, parse_ts, to_i64, ts};
use crate::Result;
use crate::governance::Approval;

/// Records `approved_by`'s approval of a version; approving twice keeps the first.
pub(crate) async fn insert_approval(
    conn: &mut AnyConnection,
    model_id: i64,
    version: u64,
    approved_by: &str,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO version_approvals (model_id, version, approved_by, approved_at, reason) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(model_id)
    .bind(to_i64("version", version)?)
    .bind(approved_by)
    .bind(ts(now()))
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A version's approvals, oldest first.
pub(crate) async fn approvals(
    conn: &mut AnyConnection,
    model_id: i64,
    model: &str,
    version: u64,
) -> Result<Vec<Approval>> {
    sqlx::query(
        "SELECT approved_by, approved_at, reason FROM version_approvals \
         WHERE model_id = $1 AND version = $2 ORDER BY approved_at, approved_by",
    )
    .bind(model_id)
    .bind(to_i64("version", version)?)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Approval {
            model: model.to_string(),
            version,
            approved_by: r.try_get("approved_by")?,
            approved_at: parse_ts(&r.try_get::<String, _>("approved_at")?)?,
            reason: r.try_get("reason")?,
        })
    })
    .collect()
}
