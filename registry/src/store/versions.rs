//! Models and their numbered versions: rows, statuses and summaries.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::aliases::aliases_of;
use super::traffic::traffic_of;
use super::{json_text, now, parse_json, parse_ts, to_i64, to_u64, ts};
use crate::model::{ArtifactFile, ModelSummary, ModelVersion, VersionStatus};
use crate::{RegistryError, Result};

/// Returns the model's id, creating the model row if needed.
pub(crate) async fn ensure_model(
    conn: &mut AnyConnection,
    name: &str,
    description: &str,
) -> Result<i64> {
    sqlx::query("INSERT INTO models (name, description, next_version, created_at) VALUES ($1, $2, 1, $3) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(description)
        .bind(ts(now()))
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query("SELECT id FROM models WHERE name = $1")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?)
}

/// The model's id, or NOT_FOUND.
pub(crate) async fn model_id(conn: &mut AnyConnection, name: &str) -> Result<i64> {
    sqlx::query("SELECT id FROM models WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .ok_or_else(|| RegistryError::NotFound(format!("model '{name}'")))
}

/// Takes the next version number. The UPDATE locks the model row (PostgreSQL) or the
/// database (SQLite) until the transaction ends, so two registrations never share a number.
pub(crate) async fn allocate_version(conn: &mut AnyConnection, model_id: i64) -> Result<u64> {
    let row = sqlx::query(
        "UPDATE models SET next_version = next_version + 1 WHERE id = $1 RETURNING next_version",
    )
    .bind(model_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(to_u64(row.try_get::<i64, _>(0)? - 1))
}

pub(crate) async fn insert_version(
    conn: &mut AnyConnection,
    model_id: i64,
    v: &ModelVersion,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO model_versions (model_id, version, status, manifest, description, tags, metrics, registered_by, registered_at, artifact_prefix)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(model_id)
    .bind(to_i64("version", v.version)?)
    .bind(v.status.as_str())
    .bind(&v.manifest_json)
    .bind(&v.description)
    .bind(json_text(&v.tags))
    .bind(json_text(&v.metrics))
    .bind(&v.registered_by)
    .bind(ts(v.registered_at))
    .bind(&v.artifact_prefix)
    .execute(&mut *conn)
    .await?;
    for f in &v.files {
        sqlx::query("INSERT INTO artifact_files (model_id, version, path, sha256, size_bytes) VALUES ($1, $2, $3, $4, $5)")
            .bind(model_id)
            .bind(to_i64("version", v.version)?)
            .bind(&f.path)
            .bind(&f.sha256)
            .bind(to_i64("size_bytes", f.size_bytes)?)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("UPDATE models SET description = $1 WHERE id = $2")
        .bind(&v.description)
        .bind(model_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Status of a version, or NOT_FOUND.
pub(crate) async fn version_status(
    conn: &mut AnyConnection,
    model_id: i64,
    model: &str,
    version: u64,
) -> Result<VersionStatus> {
    let row = sqlx::query("SELECT status FROM model_versions WHERE model_id = $1 AND version = $2")
        .bind(model_id)
        .bind(to_i64("version", version)?)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| RegistryError::NotFound(format!("version {version} of model '{model}'")))?;
    VersionStatus::parse(&row.try_get::<String, _>(0)?)
}

pub(crate) async fn set_status(
    conn: &mut AnyConnection,
    model_id: i64,
    version: u64,
    status: VersionStatus,
) -> Result<()> {
    sqlx::query("UPDATE model_versions SET status = $1 WHERE model_id = $2 AND version = $3")
        .bind(status.as_str())
        .bind(model_id)
        .bind(to_i64("version", version)?)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn summary_row(conn: &mut AnyConnection, r: &AnyRow) -> Result<ModelSummary> {
    let id: i64 = r.try_get("id")?;
    Ok(ModelSummary {
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        latest_version: to_u64(r.try_get::<i64, _>("next_version")? - 1),
        aliases: aliases_of(conn, id).await?,
        traffic: traffic_of(conn, id).await?,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
    })
}

/// Every model that has at least one version, by name.
pub(crate) async fn list_models(conn: &mut AnyConnection) -> Result<Vec<ModelSummary>> {
    let rows = sqlx::query(
        "SELECT id, name, description, next_version, created_at FROM models m
         WHERE EXISTS (SELECT 1 FROM model_versions v WHERE v.model_id = m.id) ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(summary_row(conn, &r).await?);
    }
    Ok(out)
}

/// One model's summary.
pub(crate) async fn model_summary(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<(i64, ModelSummary)> {
    let row = sqlx::query(
        "SELECT id, name, description, next_version, created_at FROM models WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| RegistryError::NotFound(format!("model '{name}'")))?;
    let id: i64 = row.try_get("id")?;
    Ok((id, summary_row(conn, &row).await?))
}

/// Versions of a model (all, or only `version`), oldest first, with files and aliases.
pub(crate) async fn versions(
    conn: &mut AnyConnection,
    model_id: i64,
    model: &str,
    only: Option<u64>,
) -> Result<Vec<ModelVersion>> {
    let only = only.map(|v| to_i64("version", v)).transpose()?;
    let rows = sqlx::query(
        "SELECT version, status, manifest, description, tags, metrics, registered_by, registered_at, artifact_prefix
         FROM model_versions WHERE model_id = $1 AND ($2 IS NULL OR version = $2) ORDER BY version",
    )
    .bind(model_id)
    .bind(only)
    .fetch_all(&mut *conn)
    .await?;
    let files = sqlx::query(
        "SELECT version, path, sha256, size_bytes FROM artifact_files WHERE model_id = $1 AND ($2 IS NULL OR version = $2) ORDER BY version, path",
    )
    .bind(model_id)
    .bind(only)
    .fetch_all(&mut *conn)
    .await?;
    let mut files_by_version: BTreeMap<i64, Vec<ArtifactFile>> = BTreeMap::new();
    for f in files {
        files_by_version
            .entry(f.try_get("version")?)
            .or_default()
            .push(ArtifactFile {
                path: f.try_get("path")?,
                sha256: f.try_get("sha256")?,
                size_bytes: to_u64(f.try_get("size_bytes")?),
            });
    }
    let aliases = aliases_of(conn, model_id).await?;
    rows.iter()
        .map(|r| {
            let version: i64 = r.try_get("version")?;
            Ok(ModelVersion {
                model: model.into(),
                version: to_u64(version),
                status: VersionStatus::parse(&r.try_get::<String, _>("status")?)?,
                manifest_json: r.try_get("manifest")?,
                files: files_by_version.remove(&version).unwrap_or_default(),
                tags: parse_json("tags", &r.try_get::<String, _>("tags")?)?,
                metrics: parse_json("metrics", &r.try_get::<String, _>("metrics")?)?,
                description: r.try_get("description")?,
                registered_by: r.try_get("registered_by")?,
                registered_at: parse_ts(&r.try_get::<String, _>("registered_at")?)?,
                aliases: aliases
                    .iter()
                    .filter(|a| a.version == to_u64(version))
                    .map(|a| a.name.clone())
                    .collect(),
                artifact_prefix: r.try_get("artifact_prefix")?,
            })
        })
        .collect()
}
