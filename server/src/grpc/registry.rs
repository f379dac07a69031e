//! `mercator.v1.Registry`: thin handlers over the registry. Every write wakes the model
//! manager so the server serves an alias move without waiting for the next poll. The
//! `mercator models` CLI runs this same service in-process when it has no server.

use std::sync::Arc;

use mercator_proto::v1::{self as pb, registry_server::Registry as RegistryApi};
use mercator_registry::{NewVersion, Registry, VersionSelector};
use tonic::{Request, Response, Status};

use crate::models::ModelManager;

/// The registry service.
#[derive(Debug, Clone)]
pub struct RegistryService {
    registry: Registry,
    /// The server's manager, woken after every change (none in a CLI process).
    manager: Option<Arc<ModelManager>>,
    /// `mercator_object_store_errors_total`, for registrations that storage fails.
    object_store_errors: Option<prometheus::IntCounterVec>,
}

impl RegistryService {
    /// A service over `registry` that wakes `manager` after changes and counts storage
    /// failures of registrations on `object_store_errors`.
    pub fn new(
        registry: Registry,
        manager: Option<Arc<ModelManager>>,
        object_store_errors: Option<prometheus::IntCounterVec>,
    ) -> RegistryService {
        RegistryService {
            registry,
            manager,
            object_store_errors,
        }
    }

    /// After a change: the manager reconciles now rather than at its next poll.
    fn changed(&self) {
        if let Some(m) = &self.manager {
            m.wake();
        }
    }
}

#[tonic::async_trait]
impl RegistryApi for RegistryService {
    async fn register_version(
        &self,
        req: Request<pb::RegisterVersionRequest>,
    ) -> Result<Response<pb::RegisterVersionResponse>, Status> {
        let actor = crate::auth::actor(&req, &req.get_ref().actor);
        let alias = &req.get_ref().alias;
        if self.registry.governance().protects(alias)
            && let Some(principal) = req.extensions().get::<crate::auth::Principal>()
            && !principal.allows(crate::auth::Scope::ModelsPromote)
        {
            return Err(Status::permission_denied(format!(
                "registering with the protected alias '{alias}' needs the scope `models:promote`"
            )));
        }
        let new = NewVersion {
            actor,
            ..NewVersion::try_from(req.into_inner())?
        };
        let version = self.registry.register(new).await.inspect_err(|e| {
            if let (mercator_registry::RegistryError::Storage(_), Some(errors)) =
                (e, &self.object_store_errors)
            {
                errors.with_label_values(&["register"]).inc();
            }
        })?;
        self.changed();
        Ok(Response::new(pb::RegisterVersionResponse {
            version: Some(version.into()),
        }))
    }

    async fn list_models(
        &self,
        _: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let models = self.registry.list_models().await?;
        Ok(Response::new(pb::ListModelsResponse {
            models: models.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_model(
        &self,
        req: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::GetModelResponse>, Status> {
        let name = req.into_inner().model;
        let (summary, versions) = self.registry.get_model(&name).await?;
        let reports = self.registry.load_reports(&name).await?;
        Ok(Response::new(pb::GetModelResponse {
            model: Some(summary.into()),
            versions: versions.into_iter().map(Into::into).collect(),
            load_reports: reports.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_version(
        &self,
        req: Request<pb::GetVersionRequest>,
    ) -> Result<Response<pb::GetVersionResponse>, Status> {
        let pb::GetVersionRequest { model, selector } = req.into_inner();
        let selector = match selector {
            Some(pb::get_version_request::Selector::Version(v)) => VersionSelector::Number(v),
            Some(pb::get_version_request::Selector::Alias(a)) => VersionSelector::Alias(a),
            None => VersionSelector::Alias(mercator_registry::CHAMPION.into()),
        };
        let version = self.registry.get_version(&model, &selector).await?;
        Ok(Response::new(pb::GetVersionResponse {
            version: Some(version.into()),
        }))
    }

    async fn set_alias(
        &self,
        req: Request<pb::SetAliasRequest>,
    ) -> Result<Response<pb::SetAliasResponse>, Status> {
        let actor = crate::auth::actor(&req, &req.get_ref().actor);
        let pb::SetAliasRequest {
            model,
            alias,
            version,
            reason,
            actor: _,
        } = req.into_inner();
        let moved = self
            .registry
            .set_alias(&model, &alias, version, &actor, &reason)
            .await?;
        self.changed();
        Ok(Response::new(pb::SetAliasResponse {
            r#move: Some(moved.into()),
        }))
    }

    async fn promote(
        &self,
        req: Request<pb::PromoteRequest>,
    ) -> Result<Response<pb::PromoteResponse>, Status> {
        let actor = crate::auth::actor(&req, &req.get_ref().actor);
        let pb::PromoteRequest {
            model,
            version,
            reason,
            actor: _,
        } = req.into_inner();
        let (champion, previous) = self
            .registry
            .promote(&model, version, &actor, &reason)
            .await?;
        self.changed();
        Ok(Response::new(pb::PromoteResponse {
            champion: Some(champion.into()),
            previous: previous.map(Into::into),
        }))
    }

    async fn set_traffic(
        &self,
        req: Request<pb::SetTrafficRequest>,
    ) -> Result<Response<pb::SetTrafficResponse>, Status> {
        let actor = crate::auth::actor(&req, &req.get_ref().actor);
        let pb::SetTrafficRequest {
            model,
            routes,
            reason,
            actor: _,
        } = req.into_inner();
        let routes: Vec<_> = routes.into_iter().map(Into::into).collect();
        let stored = self
            .registry
            .set_traffic(&model, &routes, &actor, &reason)
            .await?;
        self.changed();
        Ok(Response::new(pb::SetTrafficResponse {
            routes: stored.into_iter().map(Into::into).collect(),
        }))
    }

    async fn approve_version(
        &self,
        req: Request<pb::ApproveVersionRequest>,
    ) -> Result<Response<pb::ApproveVersionResponse>, Status> {
        let actor = crate::auth::actor(&req, &req.get_ref().actor);
        let pb::ApproveVersionRequest {
            model,
            version,
            reason,
            actor: _,
        } = req.into_inner();
        let approval = self
            .registry
            .approve(&model, version, &actor, &reason)
            .await?;
        let approvals = self.registry.approvals(&model, version).await?;
        Ok(Response::new(pb::ApproveVersionResponse {
            approval: Some(approval.into()),
            approvals: approvals.into_iter().map(Into::into).collect(),
        }))
    }

    async fn rollback_alias(
        &self,
        req: Request<pb::RollbackAliasRequest>,
    ) -> Result<Response<pb::RollbackAliasResponse>, Status> {
        let actor = crate::auth::actor(&req, &req.get_ref().actor);
        let pb::RollbackAliasRequest {
            model,
            alias,
            reason,
            actor: _,
        } = req.into_inner();
        let moved = self
            .registry
            .rollback_alias(&model, &alias, &actor, &reason)
            .await?;
        self.changed();
        Ok(Response::new(pb::RollbackAliasResponse {
            r#move: Some(moved.into()),
        }))
    }

    async fn alias_history(
        &self,
        req: Request<pb::AliasHistoryRequest>,
    ) -> Result<Response<pb::AliasHistoryResponse>, Status> {
        let pb::AliasHistoryRequest { model, alias } = req.into_inner();
        let moves = self
            .registry
            .alias_history(&model, Some(alias.as_str()).filter(|a| !a.is_empty()))
            .await?;
        Ok(Response::new(pb::AliasHistoryResponse {
            moves: moves.into_iter().map(Into::into).collect(),
        }))
    }

    async fn archive_version(
        &self,
        req: Request<pb::ArchiveVersionRequest>,
    ) -> Result<Response<pb::ArchiveVersionResponse>, Status> {
        let actor = crate::auth::actor(&req, &req.get_ref().actor);
        let pb::ArchiveVersionRequest {
            model,
            version,
            actor: _,
        } = req.into_inner();
        let version = self.registry.archive(&model, version, &actor).await?;
        self.changed();
        Ok(Response::new(pb::ArchiveVersionResponse {
            version: Some(version.into()),
        }))
    }

    async fn audit_log(
        &self,
        req: Request<pb::AuditLogRequest>,
    ) -> Result<Response<pb::AuditLogResponse>, Status> {
        let pb::AuditLogRequest { model, limit } = req.into_inner();
        let limit = if limit == 0 { 100 } else { limit };
        let entries = self
            .registry
            .audit_log(Some(model.as_str()).filter(|m| !m.is_empty()), limit)
            .await?;
        Ok(Response::new(pb::AuditLogResponse {
            entries: entries.into_iter().map(Into::into).collect(),
        }))
    }

    async fn create_api_key(
        &self,
        req: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let actor = crate::auth::actor(&req, "");
        let pb::CreateApiKeyRequest {
            name,
            scopes,
            expires_at,
        } = req.into_inner();
        for (i, scope) in scopes.iter().enumerate() {
            if crate::auth::Scope::parse(scope).is_none() {
                let known: Vec<_> = crate::auth::Scope::ALL.iter().map(|s| s.name()).collect();
                return Err(Status::invalid_argument(format!(
                    "scopes[{i}]: unknown scope; use one of {}",
                    known.join(", ")
                )));
            }
        }
        let expires_at = expires_at
            .map(|t| mercator_registry::grpc::time_of("expires_at", &t))
            .transpose()?;
        let (key, secret) = self
            .registry
            .create_key(&name, &scopes, expires_at, &actor)
            .await?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            key: Some(key.into()),
            secret,
        }))
    }

    async fn list_api_keys(
        &self,
        _: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let keys = self.registry.list_keys().await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            keys: keys.into_iter().map(Into::into).collect(),
        }))
    }

    async fn revoke_api_key(
        &self,
        req: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let actor = crate::auth::actor(&req, "");
        let key = self
            .registry
            .revoke_key(&req.into_inner().name, &actor)
            .await?;
        Ok(Response::new(pb::RevokeApiKeyResponse {
            key: Some(key.into()),
        }))
    }

    async fn collect_garbage(
        &self,
        req: Request<pb::CollectGarbageRequest>,
    ) -> Result<Response<pb::CollectGarbageResponse>, Status> {
        let secs = req.into_inner().older_than_secs;
        let older_than = match secs {
            0.0 => std::time::Duration::from_secs(3600),
            s if s > 0.0 && s.is_finite() && s < 1e10 => std::time::Duration::from_secs_f64(s),
            _ => {
                return Err(Status::invalid_argument(
                    "older_than_secs: must be a positive number of seconds",
                ));
            }
        };
        let removed = self.registry.collect_garbage(older_than).await?;
        Ok(Response::new(pb::CollectGarbageResponse {
            removed_uploads: removed as u64,
        }))
    }
}
