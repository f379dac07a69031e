//! Registry operations: register, alias, roll back, archive, read. Each write runs in one
//! transaction together with its audit entry, so the log and the state never disagree.

use bytes::Bytes;
use mercator_runtime::drift::{Columns, PROFILE_FILE, Profile};
use mercator_runtime::manifest::{MANIFEST_FILE, Manifest};
use sqlx::AnyPool;

use crate::artifacts::{ArtifactStore, sha256_hex};
use crate::model::{
    AliasMove, ArtifactFile, AuditEntry, ModelSummary, ModelVersion, NewVersion, TrafficRoute,
    VersionSelector, VersionStatus, check_file_path, check_name, check_traffic,
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
}

impl Registry {
    /// Connects to the database at `db_url` (`sqlite://…` or `postgres://…`), migrating
    /// it, and to the artifact store.
    pub async fn open(db_url: &str, artifacts: ArtifactStore) -> Result<Registry> {
        let backend = Backend::of_url(db_url)?;
        let pool = store::connect(db_url).await?;
        Ok(Registry {
            pool,
            artifacts,
            backend,
            url: db_url.to_string(),
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

    /// Registers a new version: checks the manifest and that the model builds from the
    /// files, writes the files through a staging area, then records the version (and the
    /// alias, if asked) in one transaction. Nothing is visible unless all of it succeeds.
    pub async fn register(&self, new: NewVersion) -> Result<ModelVersion> {
        check_name("model", &new.model)?;
        if let Some(alias) = &new.alias {
            check_name("alias", alias)?;
        }
        let manifest = validate_files(&new)?;
        let files: Vec<ArtifactFile> = new
            .files
            .iter()
            .map(|(path, content)| ArtifactFile {
                path: path.clone(),
                sha256: sha256_hex(content),
                size_bytes: content.len() as u64,
            })
            .collect();
        let description = if new.description.is_empty() {
            manifest.description.clone()
        } else {
            new.description.clone()
        };
        let actor = actor_or_default(&new.actor);

        let staging = self.artifacts.stage(&new.files).await?;
        let result = self
            .commit_version(&new, files, description, &actor, &staging)
            .await;
        if let Err(e) = self.artifacts.delete_prefix(&staging).await {
            tracing::warn!(error = %e, staging, "could not clean up staged artifacts");
        }
        result
    }

    async fn commit_version(
        &self,
        new: &NewVersion,
        files: Vec<ArtifactFile>,
        description: String,
        actor: &str,
        staging: &str,
    ) -> Result<ModelVersion> {
        let mut tx = self.begin_write().await?;
        let model_id = store::ensure_model(&mut tx, &new.model, &description).await?;
        let number = store::allocate_version(&mut tx, model_id).await?;
        let prefix = ArtifactStore::version_prefix(&new.model, number);
        // Files land in the version folder before the row commits; if anything below
        // fails the row never appears and the next registration reuses the number and
        // overwrites these files.
        self.artifacts.publish(staging, &new.files, &prefix).await?;
        let manifest_json = String::from_utf8_lossy(&new.files[MANIFEST_FILE]).into_owned();
        let mut version = ModelVersion {
            model: new.model.clone(),
            version: number,
            status: VersionStatus::Ready,
            manifest_json,
            files,
            tags: new.tags.clone(),
            metrics: new.metrics.clone(),
            description,
            registered_by: actor.to_string(),
            registered_at: store::now(),
            aliases: vec![],
            artifact_prefix: prefix,
        };
        store::insert_version(&mut tx, model_id, &version).await?;
        store::audit(
            &mut tx,
            actor,
            "register",
            &new.model,
            Some(number),
            serde_json::json!({"files": version.files, "tags": version.tags}),
        )
        .await?;
        if let Some(alias) = &new.alias {
            move_and_audit(
                &mut tx,
                model_id,
                &new.model,
                alias,
                number,
                actor,
                "registered with alias",
                "set_alias",
            )
            .await?;
            version.aliases.push(alias.clone());
        }
        tx.commit().await?;
        tracing::info!(model = %new.model, version = number, "registered model version");
        Ok(version)
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

    /// Points `alias` at `version`, recording the move and why.
    pub async fn set_alias(
        &self,
        model: &str,
        alias: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> Result<AliasMove> {
        check_name("model", model)?;
        check_name("alias", alias)?;
        let actor = actor_or_default(actor);
        let mut tx = self.begin_write().await?;
        let id = store::model_id(&mut tx, model).await?;
        ensure_aliasable(&mut tx, id, model, version).await?;
        let mv = move_and_audit(
            &mut tx,
            id,
            model,
            alias,
            version,
            &actor,
            reason,
            "set_alias",
        )
        .await?;
        tx.commit().await?;
        Ok(mv)
    }

    /// Promotes a version: `champion` points at it and, in the same transaction,
    /// `previous` at the version the champion pointed at before (so a rollback has
    /// somewhere to go, and people can see where). Returns both moves; the second is
    /// `None` when there was no champion yet. Promoting the champion again is refused.
    pub async fn promote(
        &self,
        model: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> Result<(AliasMove, Option<AliasMove>)> {
        use crate::model::{CHAMPION, PREVIOUS};
        check_name("model", model)?;
        let actor = actor_or_default(actor);
        let mut tx = self.begin_write().await?;
        let id = store::model_id(&mut tx, model).await?;
        ensure_aliasable(&mut tx, id, model, version).await?;
        let current = store::alias_target(&mut tx, id, CHAMPION).await?;
        if current == Some(version) {
            return Err(RegistryError::FailedPrecondition(format!(
                "version {version} of model '{model}' is already the champion"
            )));
        }
        let previous = match current {
            Some(old) => Some(
                move_and_audit(&mut tx, id, model, PREVIOUS, old, &actor, reason, "promote")
                    .await?,
            ),
            None => None,
        };
        let champion = move_and_audit(
            &mut tx, id, model, CHAMPION, version, &actor, reason, "promote",
        )
        .await?;
        tx.commit().await?;
        Ok((champion, previous))
    }

    /// Moves `alias` back to the version it pointed at before its last move.
    pub async fn rollback_alias(
        &self,
        model: &str,
        alias: &str,
        actor: &str,
        reason: &str,
    ) -> Result<AliasMove> {
        check_name("model", model)?;
        check_name("alias", alias)?;
        let actor = actor_or_default(actor);
        let mut tx = self.begin_write().await?;
        let id = store::model_id(&mut tx, model).await?;
        let last = store::alias_history(&mut tx, id, model, Some(alias))
            .await?
            .pop()
            .ok_or_else(|| {
                RegistryError::NotFound(format!("alias '{alias}' of model '{model}'"))
            })?;
        let previous = last.from_version.ok_or_else(|| {
            RegistryError::FailedPrecondition(format!(
                "alias '{alias}' of model '{model}' has no earlier version to roll back to"
            ))
        })?;
        ensure_aliasable(&mut tx, id, model, previous).await?;
        let reason = if reason.is_empty() {
            "rollback"
        } else {
            reason
        };
        let mv = move_and_audit(
            &mut tx,
            id,
            model,
            alias,
            previous,
            &actor,
            reason,
            "rollback_alias",
        )
        .await?;
        tx.commit().await?;
        Ok(mv)
    }

    /// Replaces how a model's default traffic is shared over its aliases (see
    /// [`TrafficRoute`]); an empty list gives it all back to the champion. Every alias
    /// named must exist. Returns the routes as stored.
    pub async fn set_traffic(
        &self,
        model: &str,
        routes: &[TrafficRoute],
        actor: &str,
        reason: &str,
    ) -> Result<Vec<TrafficRoute>> {
        check_name("model", model)?;
        check_traffic(routes)?;
        let actor = actor_or_default(actor);
        let mut tx = self.begin_write().await?;
        let id = store::model_id(&mut tx, model).await?;
        for (i, r) in routes.iter().enumerate() {
            if store::alias_target(&mut tx, id, &r.alias).await?.is_none() {
                return Err(RegistryError::invalid(
                    format!("routes[{i}].alias"),
                    format!(
                        "model '{model}' has no alias '{}' (point it at a version first)",
                        r.alias
                    ),
                ));
            }
        }
        store::replace_traffic(&mut tx, id, routes).await?;
        let detail = serde_json::json!({"traffic": routes, "reason": reason});
        store::audit(&mut tx, &actor, "set_traffic", model, None, detail).await?;
        let stored = store::traffic_of(&mut tx, id).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// The history of a model's aliases (one alias, or all), oldest first.
    pub async fn alias_history(&self, model: &str, alias: Option<&str>) -> Result<Vec<AliasMove>> {
        check_name("model", model)?;
        let mut conn = self.pool.acquire().await?;
        let id = store::model_id(&mut conn, model).await?;
        store::alias_history(&mut conn, id, model, alias).await
    }

    /// Archives a version. A version an alias points at must be un-aliased first, so that
    /// archiving never silently stops serving.
    pub async fn archive(&self, model: &str, version: u64, actor: &str) -> Result<ModelVersion> {
        check_name("model", model)?;
        let actor = actor_or_default(actor);
        let mut tx = self.begin_write().await?;
        let id = store::model_id(&mut tx, model).await?;
        store::version_status(&mut tx, id, model, version).await?;
        let current = store::versions(&mut tx, id, model, Some(version)).await?;
        if let Some(v) = current.first().filter(|v| !v.aliases.is_empty()) {
            return Err(RegistryError::FailedPrecondition(format!(
                "version {version} of model '{model}' is aliased as {}; move those aliases first",
                v.aliases.join(", ")
            )));
        }
        store::set_status(&mut tx, id, version, VersionStatus::Archived).await?;
        store::audit(
            &mut tx,
            &actor,
            "archive",
            model,
            Some(version),
            serde_json::json!({}),
        )
        .await?;
        let out = store::versions(&mut tx, id, model, Some(version))
            .await?
            .pop()
            .ok_or_else(|| {
                RegistryError::NotFound(format!("version {version} of model '{model}'"))
            })?;
        tx.commit().await?;
        Ok(out)
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
    /// try again. Returns the new revision.
    pub async fn save_feature_definitions(
        &self,
        expected: Option<u64>,
        toml: &str,
        actor: &str,
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
        tx.commit().await?;
        Ok(revision)
    }

    /// Records what a serving instance saw when it loaded a version (see [`crate::model::LoadReport`]).
    pub async fn report_load(&self, report: &crate::model::LoadReport) -> Result<()> {
        check_name("model", &report.model)?;
        let mut conn = self.pool.acquire().await?;
        store::report_load(&mut conn, report).await
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

/// Moves an alias and records the move in the audit log, inside the caller's transaction.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per alias-moving operation, all fields distinct"
)]
async fn move_and_audit(
    conn: &mut sqlx::AnyConnection,
    model_id: i64,
    model: &str,
    alias: &str,
    to: u64,
    actor: &str,
    reason: &str,
    action: &str,
) -> Result<AliasMove> {
    let mv = store::move_alias(conn, model_id, model, alias, to, actor, reason).await?;
    let detail = serde_json::json!({"alias": alias, "from": mv.from_version, "reason": reason});
    store::audit(conn, actor, action, model, Some(to), detail).await?;
    Ok(mv)
}

async fn ensure_aliasable(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    model: &str,
    version: u64,
) -> Result<()> {
    match store::version_status(conn, id, model, version).await? {
        VersionStatus::Ready => Ok(()),
        VersionStatus::Archived => Err(RegistryError::FailedPrecondition(format!(
            "version {version} of model '{model}' is archived and cannot be aliased"
        ))),
    }
}

fn actor_or_default(actor: &str) -> String {
    if actor.trim().is_empty() {
        "unknown".to_string()
    } else {
        actor.trim().to_string()
    }
}

/// Checks the upload: safe paths, a manifest that describes inputs and outputs, its
/// weights file present, a model that actually builds from them, and a `profile.json`
/// (if any) that fits the model.
fn validate_files(new: &NewVersion) -> Result<Manifest> {
    if new.files.is_empty() {
        return Err(RegistryError::invalid("files", "no files given"));
    }
    for path in new.files.keys() {
        check_file_path(&format!("files[{path}]"), path)?;
    }
    let manifest_bytes = new.files.get(MANIFEST_FILE).ok_or_else(|| {
        RegistryError::invalid(
            "files",
            format!("the manifest '{MANIFEST_FILE}' is missing"),
        )
    })?;
    let manifest = Manifest::parse(manifest_bytes)
        .map_err(|e| RegistryError::invalid(MANIFEST_FILE, e.to_string()))?;
    let weights = new.files.get(&manifest.weights).ok_or_else(|| {
        RegistryError::invalid(
            MANIFEST_FILE,
            format!("weights file '{}' is not among the files", manifest.weights),
        )
    })?;
    manifest
        .build(weights)
        .map_err(|e| RegistryError::invalid(MANIFEST_FILE, e.to_string()))?;
    // A training profile, when one comes along, must describe this model's columns.
    if let Some(profile) = new.files.get(PROFILE_FILE) {
        Profile::parse(profile, &Columns::of(&manifest))
            .map_err(|e| RegistryError::invalid(PROFILE_FILE, e.to_string()))?;
    }
    Ok(manifest)
}
