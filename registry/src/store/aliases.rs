//! Aliases: where each points, its moves, and their append-only history.

use sqlx::{AnyConnection, Row};

use super::{now, parse_ts, to_i64, to_u64, ts};
use crate::Result;
use crate::model::{Alias, AliasMove};

/// The version an alias points at, if the alias exists.
pub(crate) async fn alias_target(
    conn: &mut AnyConnection,
    model_id: i64,
    alias: &str,
) -> Result<Option<u64>> {
    Ok(
        sqlx::query("SELECT version FROM aliases WHERE model_id = $1 AND alias = $2")
            .bind(model_id)
            .bind(alias)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?
            .map(to_u64),
    )
}

/// Points an alias at a version and appends the move to the history.
pub(crate) async fn move_alias(
    conn: &mut AnyConnection,
    model_id: i64,
    model: &str,
    alias: &str,
    to: u64,
    actor: &str,
    reason: &str,
) -> Result<AliasMove> {
    let from = alias_target(conn, model_id, alias).await?;
    let at = now();
    sqlx::query(
        "INSERT INTO aliases (model_id, alias, version, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (model_id, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
    )
    .bind(model_id)
    .bind(alias)
    .bind(to_i64("version", to)?)
    .bind(ts(at))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO alias_history (model_id, alias, from_version, to_version, actor, reason, moved_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(model_id)
    .bind(alias)
    .bind(from.map(|f| to_i64("version", f)).transpose()?)
    .bind(to_i64("version", to)?)
    .bind(actor)
    .bind(reason)
    .bind(ts(at))
    .execute(&mut *conn)
    .await?;
    Ok(AliasMove {
        model: model.into(),
        alias: alias.into(),
        from_version: from,
        to_version: to,
        actor: actor.into(),
        reason: reason.into(),
        moved_at: at,
    })
}

pub(super) async fn aliases_of(conn: &mut AnyConnection, model_id: i64) -> Result<Vec<Alias>> {
    sqlx::query("SELECT alias, version, updated_at FROM aliases WHERE model_id = $1 ORDER BY alias")
        .bind(model_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(Alias {
                name: r.try_get("alias")?,
                version: to_u64(r.try_get("version")?),
                updated_at: parse_ts(&r.try_get::<String, _>("updated_at")?)?,
            })
        })
        .collect()
}

/// The alias history of a model (one alias, or all), oldest first.
pub(crate) async fn alias_history(
    conn: &mut AnyConnection,
    model_id: i64,
    model: &str,
    alias: Option<&str>,
) -> Result<Vec<AliasMove>> {
    sqlx::query(
        "SELECT alias, from_version, to_version, actor, reason, moved_at FROM alias_history
         WHERE model_id = $1 AND ($2 IS NULL OR alias = $2) ORDER BY id",
    )
    .bind(model_id)
    .bind(alias)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(AliasMove {
            model: model.into(),
            alias: r.try_get("alias")?,
            from_version: r.try_get::<Option<i64>, _>("from_version")?.map(to_u64),
            to_version: to_u64(r.try_get("to_version")?),
            actor: r.try_get("actor")?,
            reason: r.try_get("reason")?,
            moved_at: parse_ts(&r.try_get::<String, _>("moved_at")?)?,
        })
    })
    .collect()
}
