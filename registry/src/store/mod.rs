//! The SQL side of the registry, one implementation for SQLite and PostgreSQL through
//! sqlx's `Any` driver: the queries use only SQL both accept (`$n` placeholders,
//! `ON CONFLICT`, `RETURNING`), and each backend has its own migrations. Here: connecting
//! and the column conversions; one file per aggregate below.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use crate::{RegistryError, Result};

mod aliases;
mod approvals;
mod audit;
mod features;
mod keys;
mod load_reports;
mod migrations;
mod stream_offsets;
mod traffic;
mod versions;

pub(crate) use aliases::{alias_history, alias_target, move_alias};
pub(crate) use approvals::{approvals, insert_approval};
pub(crate) use audit::{audit, audit_log};
pub(crate) use features::{insert_feature_definitions, latest_feature_definitions};
pub(crate) use keys::{insert_key, key_by_hash, list_keys, revoke_key};
pub(crate) use load_reports::{heartbeat, load_reports, report_load};
pub(crate) use stream_offsets::{commit_stream_offset, stream_offset};
pub(crate) use traffic::{replace_traffic, traffic_of};
pub(crate) use versions::{
    allocate_version, ensure_model, insert_version, list_models, model_id, model_summary,
    set_status, version_status, versions,
};

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
            // Only the scheme is echoed: the rest of a URL may hold a password.
            let scheme = url.split_once(':').map_or("", |(s, _)| s);
            let scheme: String = scheme
                .chars()
                .take(16)
                .filter(char::is_ascii_alphanumeric)
                .collect();
            Err(RegistryError::Config(format!(
                "the registry URL must start with sqlite: or postgres:, not '{scheme}:'"
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
    migrations::migrator(backend).await?.run(&pool).await?;
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

pub(super) fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| RegistryError::Integrity(format!("bad timestamp '{s}' in the database: {e}")))
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

pub(crate) fn to_i64(field: &str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| RegistryError::invalid(field, format!("{v} is too large")))
}

pub(super) fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s)
        .map_err(|e| RegistryError::Integrity(format!("bad {what} JSON in the database: {e}")))
}

/// The PostgreSQL channel on which every committed registry change (a registration, an
/// alias move, an archive) is announced, with the model's name as the payload.
pub(crate) const CHANGES_CHANNEL: &str = "mercator_registry_changes";
