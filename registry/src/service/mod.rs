//! Registry operations: register, alias, roll back, archive, read. Each write runs in one
//! transaction together with its audit entry, so the log and the state never disagree.
//!
//! - [`register`]: a new version, proven by the injected [`VersionCheck`] and staged;
//! - [`aliases`]: alias moves, promotion, roll-back, traffic splits, archiving;
//! - here: opening, reads, feature definitions, load reports and the audit log.

mod aliases;
mod approvals;
mod keys;
mod register;

use std::sync::Arc;

use sqlx::AnyPool;

use crate::artifacts::ArtifactStore;
use crate::check::VersionCheck;
use bytes::Bytes;

use crate::model::{
    AliasMove, AuditEntry, ModelSummary, ModelVersion, VersionSelector, check_name,
};
use crate::store::{self, Backend};
use crate::{RegistryError, Result};

/// The model registry: SQL metadata plus artifacts in object storage.
#[derive(Clone, Debug)]
pub struct Registry {
    pool: AnyPool,
    artifacts: ArtifactStore,
    backend: Backend,
    url: String,
    check: Arc<dyn VersionCheck>,
    /// Rules on moving protected aliases (none until `with_governance`).
    governance: Arc<crate::governance::Governance>,
}

impl Registry {
    /// Connects to the database at `db_url` (`sqlite://…` or `postgres://…`), migrating
    /// it, and to the artifact store; `check` proves every new version's files.
    pub async fn open(
        db_url: &str,
        artifacts: ArtifactStore,
        check: Arc<dyn VersionCheck>,
    ) -> Result<Registry> {
        let backend = Backend::of_url(db_url)?;
        let pool = store::connect(db_url).await?;
        Ok(Registry {
            pool,
            artifacts,
            backend,
            url: db_url.to_string(),
            check,
            governance: Arc::default(),
        })
    }

    /// On PostgreSQL, a listener for the changes any registry handle commits to this
    /// database (its payloads are model names), so servers need not wait for their next
    /// poll; `None` on SQLite, which has no notifications.
    pub async fn listen_for_changes(&self) -> Result<Option<sqlx::postgres::PgListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(store::CHANGES_CHANNEL).await?;
        Ok(Some(listener))
    }

    /// A transaction that will write. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first and writes later cannot wait
    /// for a concurrent writer (busy_timeout does not apply to that upgrade) and fails
    /// with "database is locked" instead.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// The artifact store.
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }

    /// Which database backs the registry.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Every model with its aliases.
    pub async fn list_models(&self) -> Result<Vec<ModelSummary>> {
        let mut conn = self.pool.acquire().await?;
        store::list_models(&mut conn).await
    }

    /// A model and all its versions, oldest first.
    pub async fn get_model(&self, model: &str) -> Result<(ModelSummary, Vec<ModelVersion>)> {
        check_name("model", model)?;
        let mut conn = self.pool.acquire().await?;
        let (id, summary) = store::model_summary(&mut conn, model).await?;
        let versions = store::versions(&mut conn, id, model, None).await?;
        Ok((summary, versions))
    }

    /// One version, by number or alias.
    pub async fn get_version(
        &self,
        model: &str,
        selector: &VersionSelector,
    ) -> Result<ModelVersion> {
        check_name("model", model)?;
        let mut conn = self.pool.acquire().await?;
        let id = store::model_id(&mut conn, model).await?;
        let number =
            match selector {
                VersionSelector::Number(n) => *n,
                VersionSelector::Alias(a) => store::alias_target(&mut conn, id, a)
                    .await?
                    .ok_or_else(|| {
                        RegistryError::NotFound(format!("alias '{a}' of model '{model}'"))
                    })?,
            };
        store::versions(&mut conn, id, model, Some(number))
            .await?
            .pop()
            .ok_or_else(|| RegistryError::NotFound(format!("version {number} of model '{model}'")))
    }

    /// The history of a model's aliases (one alias, or all), oldest first.
    pub async fn alias_history(&self, model: &str, alias: Option<&str>) -> Result<Vec<AliasMove>> {
        check_name("model", model)?;
        let mut conn = self.pool.acquire().await?;
        let id = store::model_id(&mut conn, model).await?;
        store::alias_history(&mut conn, id, model, alias).await
    }

    /// The current feature store definitions (the TOML last applied) and their revision,
    /// if any were applied.
    pub async fn feature_definitions(&self) -> Result<Option<(u64, String)>> {
        let mut conn = self.pool.acquire().await?;
        store::latest_feature_definitions(&mut conn).await
    }

    /// Records a new revision of the feature store definitions, provided the current
    /// revision is still `expected` (`None`: none yet). When another apply got there
    /// first, nothing is written and the error is `FailedPrecondition`: read, re-check and
    /// try again. Returns the new revision. The apply and its `changes` are audited.
    pub async fn save_feature_definitions(
        &self,
        expected: Option<u64>,
        toml: &str,
        actor: &str,
        changes: &[String],
    ) -> Result<u64> {
        let raced = || {
            RegistryError::FailedPrecondition(
                "the feature definitions changed while this apply was checked; apply again".into(),
            )
        };
        let mut tx = self.begin_write().await?;
        let current = store::latest_feature_definitions(&mut tx)
            .await?
            .map(|(r, _)| r);
        if current != expected {
            return Err(raced());
        }
        let revision = expected.unwrap_or(0) + 1;
        match store::insert_feature_definitions(&mut tx, revision, toml, actor).await {
            Err(RegistryError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                return Err(raced());
            }
            other => other?,
        }
        let detail = serde_json::json!({ "revision": revision, "changes": changes });
        store::audit(&mut tx, actor, "apply_definitions", "", None, detail).await?;
        tx.commit().await?;
        Ok(revision)
    }

    /// Records what a serving instance saw when it loaded a version (see [`crate::model::LoadReport`]).
    pub async fn report_load(&self, report: &crate::model::LoadReport) -> Result<()> {
        check_name("model", &report.model)?;
        let mut conn = self.pool.acquire().await?;
        store::report_load(&mut conn, report).await
    }

    /// An instance's heartbeat: all its load reports were seen alive now.
    pub async fn heartbeat(&self, instance: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        store::heartbeat(&mut conn, instance, store::now()).await
    }

    /// The offset of the next message stream `source` consumes from `partition` of
    /// `topic`, if it committed one.
    pub async fn stream_offset(
        &self,
        source: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>> {
        let mut conn = self.pool.acquire().await?;
        store::stream_offset(&mut conn, source, topic, partition).await
    }

    /// Commits `source`'s progress through `partition` of `topic` (never backwards).
    pub async fn commit_stream_offset(
        &self,
        source: &str,
        topic: &str,
        partition: i32,
        next_offset: i64,
        instance: &str,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        store::commit_stream_offset(&mut conn, source, topic, partition, next_offset, instance)
            .await
    }

    /// Every instance's latest load attempt of the model's versions.
    pub async fn load_reports(&self, model: &str) -> Result<Vec<crate::model::LoadReport>> {
        check_name("model", model)?;
        let mut conn = self.pool.acquire().await?;
        store::load_reports(&mut conn, model).await
    }

    /// The newest audit entries, newest first.
    pub async fn audit_log(&self, model: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>> {
        let mut conn = self.pool.acquire().await?;
        store::audit_log(&mut conn, model, limit.clamp(1, 10_000)).await
    }

    /// Reads a version's files from object storage, each verified against its sha256.
    pub async fn fetch_artifacts(
        &self,
        version: &ModelVersion,
    ) -> Result<std::collections::BTreeMap<String, Bytes>> {
        self.artifacts.fetch_version(version).await
    }
}

fn actor_or_default(actor: &str) -> String {
    if actor.trim().is_empty() {
        "unknown".to_string()
    } else {
        actor.trim().to_string()
    }
}
