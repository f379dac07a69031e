//! Feature definitions: revisioned documents, the newest one wins.

use sqlx::{AnyConnection, Row};

use super::{now, to_i64, to_u64, ts};
use crate::Result;

pub(crate) async fn latest_feature_definitions(
    conn: &mut AnyConnection,
) -> Result<Option<(u64, String)>> {
    let row = sqlx::query(
        "SELECT revision, toml FROM feature_definitions ORDER BY revision DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| Ok((to_u64(r.try_get("revision")?), r.try_get("toml")?)))
        .transpose()
}

pub(crate) async fn insert_feature_definitions(
    conn: &mut AnyConnection,
    revision: u64,
    toml: &str,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO feature_definitions (revision, toml, applied_by, applied_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(to_i64("revision", revision)?)
    .bind(toml)
    .bind(actor)
    .bind(ts(now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
