//! The SQL side of the registry, one implementation for SQLite and PostgreSQL through
//! sqlx's `Any` driver: the queries use only SQL both accept (`$n` placeholders,
//! `ON CONFLICT`, `RETURNING`), and each backend has its own migrations.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::model::{
    Alias, AliasMove, ArtifactFile, AuditEntry, LoadReport, ModelSummary, ModelVersion,
    TrafficRoute, VersionStatus,
};
use crate::{RegistryError, Result};

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend of a `sqlite:` or `postgres:` URL.
    pub fn of_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(RegistryError::Config(format!(
                "registry URL '{url}' must start with sqlite: or postgres:"
            )))
        }
    }
}

/// Opens the pool and brings the schema up to date.
pub(crate) async fn connect(url: &str) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of_url(url)?;
    if backend == Backend::Sqlite {
        create_sqlite_parent(url)?;
    }
    let options = AnyConnectOptions::from_str(url)?;
    let pool = AnyPoolOptions::new()
        .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the one writer; busy_timeout makes a second
                    // writer wait instead of failing; FULL sync makes a commit durable.
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA busy_timeout = 10000",
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA synchronous = FULL",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
        Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
    }
    Ok(pool)
}

/// Creates the directory of a `sqlite://path?…` database file.
fn create_sqlite_parent(url: &str) -> Result<()> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            RegistryError::Config(format!("cannot create {}: {e}", parent.display()))
        })?;
    }
    Ok(())
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| RegistryError::Integrity(format!("bad timestamp '{s}' in the database: {e}")))
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

pub(crate) fn to_i64(field: &str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| RegistryError::invalid(field, format!("{v} is too large")))
}

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

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s)
        .map_err(|e| RegistryError::Integrity(format!("bad {what} JSON in the database: {e}")))
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

/// The PostgreSQL channel on which every committed registry change (a registration, an
/// alias move, an archive) is announced, with the model's name as the payload.
pub(crate) const CHANGES_CHANNEL: &str = "mercator_registry_changes";

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

async fn aliases_of(conn: &mut AnyConnection, model_id: i64) -> Result<Vec<Alias>> {
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

/// A model's traffic routes: live ones first, then shadows, each by alias.
pub(crate) async fn traffic_of(
    conn: &mut AnyConnection,
    model_id: i64,
) -> Result<Vec<TrafficRoute>> {
    sqlx::query(
        "SELECT alias, percent, shadow FROM traffic_routes WHERE model_id = $1 ORDER BY shadow, alias",
    )
    .bind(model_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(TrafficRoute {
            alias: r.try_get("alias")?,
            percent: u32::try_from(r.try_get::<i64, _>("percent")?).map_err(|_| {
                RegistryError::Integrity("a traffic percent out of range in the database".into())
            })?,
            shadow: r.try_get::<i64, _>("shadow")? != 0,
        })
    })
    .collect()
}

/// Replaces a model's traffic routes.
pub(crate) async fn replace_traffic(
    conn: &mut AnyConnection,
    model_id: i64,
    routes: &[TrafficRoute],
) -> Result<()> {
    sqlx::query("DELETE FROM traffic_routes WHERE model_id = $1")
        .bind(model_id)
        .execute(&mut *conn)
        .await?;
    for r in routes {
        sqlx::query(
            "INSERT INTO traffic_routes (model_id, alias, percent, shadow) VALUES ($1, $2, $3, $4)",
        )
        .bind(model_id)
        .bind(&r.alias)
        .bind(i64::from(r.percent))
        .bind(i64::from(r.shadow))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn summary_row(conn: &mut AnyConnection, r: &AnyRow) -> Result<ModelSummary> {
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

/// Records an instance's latest load attempt of a version, replacing the one before.
pub(crate) async fn report_load(conn: &mut AnyConnection, r: &LoadReport) -> Result<()> {
    sqlx::query(
        "INSERT INTO load_reports (model, version, instance, loaded, reason, message, attempts, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (model, version, instance) DO UPDATE SET loaded = $4, reason = $5,
           message = $6, attempts = $7, at = $8",
    )
    .bind(&r.model)
    .bind(to_i64("version", r.version)?)
    .bind(&r.instance)
    .bind(i64::from(r.loaded))
    .bind(&r.reason)
    .bind(&r.message)
    .bind(i64::from(r.attempts))
    .bind(ts(r.at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every instance's latest load attempt of the model's versions, by version then instance.
pub(crate) async fn load_reports(conn: &mut AnyConnection, model: &str) -> Result<Vec<LoadReport>> {
    sqlx::query(
        "SELECT model, version, instance, loaded, reason, message, attempts, at FROM load_reports
         WHERE model = $1 ORDER BY version, instance",
    )
    .bind(model)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(LoadReport {
            model: r.try_get("model")?,
            version: to_u64(r.try_get("version")?),
            instance: r.try_get("instance")?,
            loaded: r.try_get::<i64, _>("loaded")? != 0,
            reason: r.try_get("reason")?,
            message: r.try_get("message")?,
            attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
            at: parse_ts(&r.try_get::<String, _>("at")?)?,
        })
    })
    .collect()
}
