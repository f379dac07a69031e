//! Moving aliases (set, promote, roll back), traffic splits and archiving: each move
//! checked, applied and audited in one transaction.

use crate::model::{
    AliasMove, ModelVersion, TrafficRoute, VersionStatus, check_name, check_traffic,
};
use crate::store;
use crate::{RegistryError, Result};

use super::{Registry, actor_or_default};

impl Registry {
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
        self.ensure_approved(model, alias, version, &actor).await?;
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
        self.ensure_approved(model, CHAMPION, version, &actor)
            .await?;
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
        self.ensure_traffic_approved(model, routes, &actor).await?;
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
}

/// Moves an alias and records the move in the audit log, inside the caller's transaction.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per alias-moving operation, all fields distinct"
)]
pub(super) async fn move_and_audit(
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
