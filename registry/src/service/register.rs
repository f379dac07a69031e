//! Registering a version: names checked, files proven by the [`VersionCheck`], written
//! through a staging area, then recorded (with its alias, if asked) in one transaction.

use crate::artifacts::{ArtifactStore, sha256_hex};
use crate::check::MANIFEST_FILE;
use crate::model::{
    ArtifactFile, ModelVersion, NewVersion, VersionStatus, check_file_path, check_name,
};
use crate::store;
use crate::{RegistryError, Result};

use super::aliases::move_and_audit;
use super::{Registry, actor_or_default};

/// How old a staged upload must be before it is taken for dead.
const STALE_UPLOAD: std::time::Duration = std::time::Duration::from_secs(3600);

impl Registry {
    /// Removes staged uploads older than `older_than` (left by registrations that died);
    /// returns how many.
    pub async fn collect_garbage(&self, older_than: std::time::Duration) -> Result<usize> {
        self.artifacts.remove_stale_staging(older_than).await
    }

    /// Registers a new version: checks the manifest and that the model builds from the
    /// files, writes the files through a staging area, then records the version (and the
    /// alias, if asked) in one transaction. Nothing is visible unless all of it succeeds.
    pub async fn register(&self, new: NewVersion) -> Result<ModelVersion> {
        check_name("model", &new.model)?;
        if let Some(alias) = &new.alias {
            check_name("alias", alias)?;
            if self.governance().gates(alias) {
                return Err(RegistryError::FailedPrecondition(format!(
                    "alias '{alias}' is protected and needs an approved version: register \
                     without it, have another principal approve the version, then promote"
                )));
            }
            if self.governance().require_approval
                && self.takes_live_traffic(&new.model, alias).await?
            {
                return Err(RegistryError::FailedPrecondition(format!(
                    "alias '{alias}' takes a live share of model '{}''s traffic split and \
                     needs an approved version: register without it, have another principal \
                     approve the version, then move the alias",
                    new.model
                )));
            }
        }
        let manifest_description = validate_files(self, &new)?;
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
            manifest_description
        } else {
            new.description.clone()
        };
        let actor = actor_or_default(&new.actor);

        // Uploads of registrations that died are swept by the next one.
        if let Err(e) = self.collect_garbage(STALE_UPLOAD).await {
            tracing::warn!(error = %e, "could not remove stale staged uploads");
        }
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
}

/// Checks the upload: safe paths and a manifest, then what the injected check proves (a
/// model that builds from the files, a profile that fits it); returns the manifest's
/// description.
fn validate_files(registry: &Registry, new: &NewVersion) -> Result<String> {
    if new.files.is_empty() {
        return Err(RegistryError::invalid("files", "no files given"));
    }
    for path in new.files.keys() {
        check_file_path(&format!("files[{path}]"), path)?;
    }
    if !new.files.contains_key(MANIFEST_FILE) {
        return Err(RegistryError::invalid(
            "files",
            format!("the manifest '{MANIFEST_FILE}' is missing"),
        ));
    }
    Ok(registry.check.check(&new.files)?.description)
}
