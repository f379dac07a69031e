//! The audit log: who did what to which model, appended in the same transaction.

use sqlx::{AnyConnection, Row};

use super::{CHANGES_CHANNEL, now, parse_json, parse_ts, to_i64, to_u64, ts};
use crate::Result;
use crate::model::AuditEntry;

/// Appends to the audit log.
pub(crate) async fn audit(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    model: &str,
    version: Option<u64>,
    detail: serde_json::Value,
) -> Result<()> {
    sqlx::query("INSERT INTO audit_log (actor, action, model, version, detail, at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(actor)
        .bind(action)
        .bind(model)
        .bind(version.map(|v| to_i64("version", v)).transpose()?)
        .bind(detail.to_string())
        .bind(ts(now()))
        .execute(&mut *conn)
        .await?;
    // Every change is audited, so this is where listeners hear of it. Inside the caller's
    // transaction the notification goes out at commit, and not at all on rollback. The
    // model name was checked (a-z, 0-9, '-', '_', '.'), so it is safe inside the quotes.
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query(&format!("NOTIFY {CHANGES_CHANNEL}, '{model}'"))
            .persistent(false)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The newest audit entries (of one model, or all), newest first.
pub(crate) async fn audit_log(
    conn: &mut AnyConnection,
    model: Option<&str>,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    sqlx::query(
        "SELECT id, actor, action, model, version, detail, at FROM audit_log
         WHERE ($1 IS NULL OR model = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(model)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(AuditEntry {
            id: to_u64(r.try_get("id")?),
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            model: r.try_get("model")?,
            version: r.try_get::<Option<i64>, _>("version")?.map(to_u64),
            detail: parse_json("audit detail", &r.try_get::<String, _>("detail")?)?,
            at: parse_ts(&r.try_get::<String, _>("at")?)?,
        })
    })
    .collect()
}
