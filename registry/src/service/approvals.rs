//! The four-eyes rule ([`crate::governance`]): approving versions, and the gate every
//! move of a protected alias passes.

use crate::governance::{Approval, Governance};
use crate::model::{TrafficRoute, check_name};
use crate::store;
use crate::{RegistryError, Result};

use super::{Registry, actor_or_default};

impl Registry {
    /// This registry with `governance`'s rules on alias moves.
    pub fn with_governance(mut self, governance: Governance) -> Registry {
        self.governance = std::sync::Arc::new(governance);
        self
    }

    /// The rules applied to alias moves.
    pub fn governance(&self) -> &Governance {
        &self.governance
    }

    /// Records `actor`'s approval of a version. Its registrant cannot approve it (the
    /// refusal is audited too); approving twice is harmless.
    pub async fn approve(
        &self,
        model: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> Result<Approval> {
        check_name("model", model)?;
        let actor = actor_or_default(actor);
        let mut tx = self.begin_write().await?;
        let id = store::model_id(&mut tx, model).await?;
        let registrant = registrant(&mut tx, id, model, version).await?;
        if registrant == actor {
            drop(tx);
            let why = format!(
                "'{actor}' registered version {version} of model '{model}' and cannot also \
                 approve it: another principal must (four-eyes rule)"
            );
            self.audit_refusal(model, version, &actor, "approve", &why)
                .await;
            return Err(RegistryError::PermissionDenied(why));
        }
        store::insert_approval(&mut tx, id, version, &actor, reason).await?;
        let detail = serde_json::json!({"registered_by": registrant, "reason": reason});
        store::audit(&mut tx, &actor, "approve", model, Some(version), detail).await?;
        let approval = store::approvals(&mut tx, id, model, version)
            .await?
            .into_iter()
            .find(|a| a.approved_by == actor)
            .ok_or_else(|| RegistryError::NotFound(format!("the approval of version {version}")))?;
        tx.commit().await?;
        Ok(approval)
    }

    /// A version's approvals, oldest first.
    pub async fn approvals(&self, model: &str, version: u64) -> Result<Vec<Approval>> {
        check_name("model", model)?;
        let mut conn = self.pool.acquire().await?;
        let id = store::model_id(&mut conn, model).await?;
        store::approvals(&mut conn, id, model, version).await
    }

    /// Refuses (and audits the refusal of) moving `alias` to `version` when the move is
    /// gated and no principal but the registrant has approved the version. A move is
    /// gated, with `require_approval`, when the alias is protected or when it takes a
    /// live (not shadow) share of the model's traffic split: otherwise an unprotected
    /// alias in a split would serve an unapproved version to callers. Approvals are never
    /// withdrawn, so reading before the move's own transaction is safe.
    pub(super) async fn ensure_approved(
        &self,
        model: &str,
        alias: &str,
        version: u64,
        actor: &str,
    ) -> Result<()> {
        if !self.governance.require_approval {
            return Ok(());
        }
        let why = if self.governance.protects(alias) {
            format!("alias '{alias}' of model '{model}' is protected")
        } else if self.takes_live_traffic(model, alias).await? {
            format!("alias '{alias}' of model '{model}' takes a live share of its traffic split")
        } else {
            return Ok(());
        };
        self.ensure_version_approved(model, version, actor, &format!("move {alias}"), &why)
            .await
    }

    /// Whether `alias` has a live (not shadow) share of `model`'s traffic split (false
    /// for a model not registered yet).
    pub(super) async fn takes_live_traffic(&self, model: &str, alias: &str) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        let id = match store::model_id(&mut conn, model).await {
            Ok(id) => id,
            Err(RegistryError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        Ok(store::traffic_of(&mut conn, id)
            .await?
            .iter()
            .any(|r| !r.shadow && r.alias == alias))
    }

    /// With `require_approval`, refuses (and audits) a traffic split that sends live
    /// traffic to an alias whose version nobody but its registrant has approved. Shadow
    /// routes are exempt: their answers are compared, never returned to a caller.
    /// Protected aliases are gated when they move, so they pass here.
    pub(super) async fn ensure_traffic_approved(
        &self,
        model: &str,
        routes: &[TrafficRoute],
        actor: &str,
    ) -> Result<()> {
        if !self.governance.require_approval {
            return Ok(());
        }
        for (i, route) in routes.iter().enumerate() {
            if route.shadow || self.governance.protects(&route.alias) {
                continue;
            }
            let mut conn = self.pool.acquire().await?;
            let id = store::model_id(&mut conn, model).await?;
            let Some(version) = store::alias_target(&mut conn, id, &route.alias).await? else {
                // set_traffic names the missing alias.
                continue;
            };
            drop(conn);
            let why = format!(
                "routes[{i}] sends {}% of model '{model}''s live traffic to alias '{}'",
                route.percent, route.alias
            );
            self.ensure_version_approved(model, version, actor, "set traffic", &why)
                .await?;
        }
        Ok(())
    }

    /// Refuses (and audits) `what` unless a principal other than its registrant has
    /// approved `version`; `why` says why the approval is needed.
    async fn ensure_version_approved(
        &self,
        model: &str,
        version: u64,
        actor: &str,
        what: &str,
        why: &str,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let id = store::model_id(&mut conn, model).await?;
        let registrant = registrant(&mut conn, id, model, version).await?;
        let approvals = store::approvals(&mut conn, id, model, version).await?;
        drop(conn);
        if approvals.iter().any(|a| a.approved_by != registrant) {
            return Ok(());
        }
        let why = format!(
            "{why}: version {version} needs an approval by a principal other than \
             '{registrant}', who registered it (`mercator models approve {model} {version}`)"
        );
        self.audit_refusal(model, version, actor, what, &why).await;
        Err(RegistryError::FailedPrecondition(why))
    }

    /// Appends a refusal to the audit log, in its own transaction (the refused change's
    /// was rolled back). A failure to record it is logged, not returned: the caller's
    /// answer is the refusal either way.
    async fn audit_refusal(&self, model: &str, version: u64, actor: &str, what: &str, why: &str) {
        let recorded = async {
            let mut tx = self.begin_write().await?;
            let detail = serde_json::json!({"refused": what, "why": why});
            store::audit(&mut tx, actor, "refused", model, Some(version), detail).await?;
            tx.commit().await?;
            Ok::<(), RegistryError>(())
        };
        if let Err(error) = recorded.await {
            tracing::warn!(%error, model, version, "could not audit a refusal");
        }
    }
}

/// Who registered a version (NOT_FOUND if it does not exist).
async fn registrant(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    model: &str,
    version: u64,
) -> Result<String> {
    store::versions(conn, id, model, Some(version))
        .await?
        .pop()
        .map(|v| v.registered_by)
        .ok_or_else(|| RegistryError::NotFound(format!("version {version} of model '{model}'")))
}
