//! Load reports: each instance's latest attempt to load each version.

use sqlx::{AnyConnection, Row};

use super::{parse_ts, to_i64, to_u64, ts};
use crate::Result;
use crate::model::LoadReport;

/// Records an instance's latest load attempt of a version, replacing the one before.
pub(crate) async fn report_load(conn: &mut AnyConnection, r: &LoadReport) -> Result<()> {
    sqlx::query(
        "INSERT INTO load_reports
           (model, version, instance, loaded, reason, message, attempts, at, seen_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (model, version, instance) DO UPDATE SET loaded = $4, reason = $5,
           message = $6, attempts = $7, at = $8, seen_at = $9",
    )
    .bind(&r.model)
    .bind(to_i64("version", r.version)?)
    .bind(&r.instance)
    .bind(i64::from(r.loaded))
    .bind(&r.reason)
    .bind(&r.message)
    .bind(i64::from(r.attempts))
    .bind(ts(r.at))
    .bind(ts(r.seen_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An instance's heartbeat: every report of `instance` was seen alive at `now`.
pub(crate) async fn heartbeat(
    conn: &mut AnyConnection,
    instance: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    sqlx::query("UPDATE load_reports SET seen_at = $1 WHERE instance = $2")
        .bind(ts(now))
        .bind(instance)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Every instance's latest load attempt of the model's versions, by version then instance.
pub(crate) async fn load_reports(conn: &mut AnyConnection, model: &str) -> Result<Vec<LoadReport>> {
    sqlx::query(
        "SELECT model, version, instance, loaded, reason, message, attempts, at, seen_at
         FROM load_reports WHERE model = $1 ORDER BY version, instance",
    )
    .bind(model)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        let at = parse_ts(&r.try_get::<String, _>("at")?)?;
        let seen_at = match r.try_get::<String, _>("seen_at")?.as_str() {
            "" => at,
            seen => parse_ts(seen)?,
        };
        Ok(LoadReport {
            model: r.try_get("model")?,
            version: to_u64(r.try_get("version")?),
            instance: r.try_get("instance")?,
            loaded: r.try_get::<i64, _>("loaded")? != 0,
            reason: r.try_get("reason")?,
            message: r.try_get("message")?,
            attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
            at,
            seen_at,
        })
    })
    .collect()
}
