//! The four-eyes rule ([`crate::governance`]): approving versions, and the gate every
//! move of a protected alias passes.

use crate::governance::{Approval, Governance};
use crate::model::check_name;
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

    /// Refuses (and audits the refusal of) moving `alias` to `version` when the alias is
    /// gated and no principal but the registrant has approved the version. Approvals are
    /// never withdrawn, so reading before the move's own transaction is safe.
    pub(super) async fn ensure_approved(
        &self,
        model: &str,
        alias: &str,
        version: u64,
        actor: &str,
    ) -> Result<()> {
        if !self.governance.gates(alias) {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        let id = store::model_id(&mut conn, model).await?;
        let registrant = registrant(&mut conn, id, model, version).await?;
        let approvals = store::approvals(&mut conn, id, model, version).await?;
        drop(conn);
        if approvals.iter().any(|a| a.approved_by != registrant) {
            return Ok(());
        }
        let why = format!(
            "alias '{alias}' of model '{model}' is protected: version {version} needs an \
             approval by a principal other than '{registrant}', who registered it \
             (`mercator models approve {model} {version}`)"
        );
        self.audit_refusal(model, version, actor, &format!("move {alias}"), &why)
            .await;
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
