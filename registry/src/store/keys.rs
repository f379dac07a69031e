//! API keys: created, listed, revoked, found by their hash.

use sqlx::{AnyConnection, Row};

use super::{now, parse_ts, ts};
use crate::keys::ApiKey;
use crate::{RegistryError, Result};

const COLUMNS: &str = "name, scopes, created_by, created_at, expires_at, revoked_at";

/// Inserts a key; a name already taken is a precondition failure.
pub(crate) async fn insert_key(conn: &mut AnyConnection, key: &ApiKey, hash: &str) -> Result<()> {
    let taken = sqlx::query("SELECT 1 FROM api_keys WHERE name = $1")
        .bind(&key.name)
        .fetch_optional(&mut *conn)
        .await?;
    if taken.is_some() {
        return Err(RegistryError::FailedPrecondition(format!(
            "a key named '{}' exists already (revoked keys keep their names)",
            key.name
        )));
    }
    sqlx::query(
        "INSERT INTO api_keys (name, hash, scopes, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.name)
    .bind(hash)
    .bind(key.scopes.join(" "))
    .bind(&key.created_by)
    .bind(ts(key.created_at))
    .bind(key.expires_at.map(ts))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every key, by name.
pub(crate) async fn list_keys(conn: &mut AnyConnection) -> Result<Vec<ApiKey>> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY name"))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(row_to_key)
        .collect()
}

/// The key with this hash, if any.
pub(crate) async fn key_by_hash(conn: &mut AnyConnection, hash: &str) -> Result<Option<ApiKey>> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE hash = $1"))
        .bind(hash)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(row_to_key)
        .transpose()
}

/// Marks a key revoked (once: revoking again keeps the first time).
pub(crate) async fn revoke_key(conn: &mut AnyConnection, name: &str) -> Result<ApiKey> {
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
        .bind(ts(now()))
        .bind(name)
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE name = $1"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(row_to_key)
        .transpose()?
        .ok_or_else(|| RegistryError::NotFound(format!("key '{name}'")))
}

fn row_to_key(r: &sqlx::any::AnyRow) -> Result<ApiKey> {
    let optional_ts = |column: &str| -> Result<_> {
        r.try_get::<Option<String>, _>(column)?
            .map(|s| parse_ts(&s))
            .transpose()
    };
    Ok(ApiKey {
        name: r.try_get("name")?,
        scopes: r
            .try_get::<String, _>("scopes")?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        created_by: r.try_get("created_by")?,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
        expires_at: optional_ts("expires_at")?,
        revoked_at: optional_ts("revoked_at")?,
    })
}
