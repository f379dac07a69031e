//! The CLI's one path to the registry: the `mercator.v1.Registry` service, a server's or
//! the same service in this process.

use mercator_proto::v1::registry_server::RegistryServer;
use mercator_proto::v1::{self as pb, registry_client::RegistryClient};
use mercator_registry::model::{AliasMove, AuditEntry, LoadReport, ModelSummary, TrafficRoute};
use mercator_registry::{ModelVersion, NewVersion, VersionSelector};

use anyhow::Context;

use super::ModelsArgs;
use crate::cli::remote::{self, Credential, Transport};

/// The registry, over the `mercator.v1.Registry` service: a running server's
/// (`--server URL`) or, without one, the same service the server runs, in this process
/// over the storage the configuration names. Every command takes the one gRPC path.
pub(super) struct Client(RegistryClient<Transport>);

/// The Registry service: the server's at `server`, or this process's own over the storage
/// `config` names, called as `actor`.
pub(crate) async fn registry_transport(
    server: Option<&str>,
    config: &crate::cli::ConfigArgs,
    credential: &Credential,
    actor: &str,
) -> anyhow::Result<Transport> {
    if let Some(url) = server {
        return remote::connect(url, credential).await;
    }
    let config = config.load()?;
    let registry = crate::definitions::open_registry(&config).await?;
    // No model manager to wake and no metrics to count: a CLI process.
    let service = crate::grpc::registry::RegistryService::new(registry, None, None);
    let server = RegistryServer::new(service)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    Ok(remote::in_process(server, actor))
}

/// A gRPC status as a CLI error: `CODE: message`.
pub(crate) fn status(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", crate::error::code_name(e.code()), e.message())
}

impl Client {
    pub(super) async fn connect(args: &ModelsArgs, actor: &str) -> anyhow::Result<Client> {
        let transport = registry_transport(
            args.server.as_deref(),
            &args.config,
            &args.credential,
            actor,
        )
        .await?;
        Ok(Client(
            RegistryClient::new(transport)
                .max_encoding_message_size(usize::MAX)
                .max_decoding_message_size(usize::MAX),
        ))
    }

    pub(super) async fn register(&mut self, new: NewVersion) -> anyhow::Result<ModelVersion> {
        let c = &mut self.0;
        let req = pb::RegisterVersionRequest {
            model: new.model,
            files: new
                .files
                .into_iter()
                .map(|(path, content)| pb::UploadFile {
                    path,
                    content: content.to_vec(),
                })
                .collect(),
            tags: new.tags.into_iter().collect(),
            metrics: new.metrics.into_iter().collect(),
            description: new.description,
            alias: new.alias.unwrap_or_default(),
            actor: new.actor,
        };
        let v = c
            .register_version(req)
            .await
            .map_err(status)?
            .into_inner()
            .version
            .context("empty response")?;
        Ok(v.try_into()?)
    }

    pub(super) async fn list(&mut self) -> anyhow::Result<Vec<ModelSummary>> {
        let c = &mut self.0;
        c.list_models(pb::ListModelsRequest {})
            .await
            .map_err(status)?
            .into_inner()
            .models
            .into_iter()
            .map(|m| Ok(m.try_into()?))
            .collect()
    }

    /// A model, its versions, and what the serving instances saw loading them.
    pub(super) async fn model(
        &mut self,
        name: &str,
    ) -> anyhow::Result<(ModelSummary, Vec<ModelVersion>, Vec<LoadReport>)> {
        let c = &mut self.0;
        let resp = c
            .get_model(pb::GetModelRequest { model: name.into() })
            .await
            .map_err(status)?
            .into_inner();
        let summary = resp.model.context("empty response")?.try_into()?;
        let versions = resp
            .versions
            .into_iter()
            .map(ModelVersion::try_from)
            .collect::<Result<_, _>>()?;
        let reports = resp
            .load_reports
            .into_iter()
            .map(LoadReport::try_from)
            .collect::<Result<_, _>>()?;
        Ok((summary, versions, reports))
    }

    pub(super) async fn version(
        &mut self,
        name: &str,
        selector: VersionSelector,
    ) -> anyhow::Result<ModelVersion> {
        let c = &mut self.0;
        let selector = match selector {
            VersionSelector::Number(n) => pb::get_version_request::Selector::Version(n),
            VersionSelector::Alias(a) => pb::get_version_request::Selector::Alias(a),
        };
        let req = pb::GetVersionRequest {
            model: name.into(),
            selector: Some(selector),
        };
        let v = c
            .get_version(req)
            .await
            .map_err(status)?
            .into_inner()
            .version
            .context("empty response")?;
        Ok(v.try_into()?)
    }

    pub(super) async fn set_alias(
        &mut self,
        name: &str,
        alias: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> anyhow::Result<AliasMove> {
        let c = &mut self.0;
        let req = pb::SetAliasRequest {
            model: name.into(),
            alias: alias.into(),
            version,
            reason: reason.into(),
            actor: actor.into(),
        };
        Ok(c.set_alias(req)
            .await
            .map_err(status)?
            .into_inner()
            .r#move
            .context("empty response")?
            .try_into()?)
    }

    pub(super) async fn promote(
        &mut self,
        name: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> anyhow::Result<(AliasMove, Option<AliasMove>)> {
        let c = &mut self.0;
        let resp = c
            .promote(pb::PromoteRequest {
                model: name.into(),
                version,
                reason: reason.into(),
                actor: actor.into(),
            })
            .await
            .map_err(status)?
            .into_inner();
        let champion = resp.champion.context("empty response")?.try_into()?;
        let previous = resp.previous.map(AliasMove::try_from).transpose()?;
        Ok((champion, previous))
    }

    /// Approves a version; every approver of it so far, oldest first.
    pub(super) async fn approve(
        &mut self,
        name: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> anyhow::Result<Vec<String>> {
        let resp = self
            .0
            .approve_version(pb::ApproveVersionRequest {
                model: name.into(),
                version,
                reason: reason.into(),
                actor: actor.into(),
            })
            .await
            .map_err(status)?
            .into_inner();
        Ok(resp.approvals.into_iter().map(|a| a.approved_by).collect())
    }

    pub(super) async fn rollback(
        &mut self,
        name: &str,
        alias: &str,
        actor: &str,
        reason: &str,
    ) -> anyhow::Result<AliasMove> {
        let c = &mut self.0;
        let req = pb::RollbackAliasRequest {
            model: name.into(),
            alias: alias.into(),
            reason: reason.into(),
            actor: actor.into(),
        };
        Ok(c.rollback_alias(req)
            .await
            .map_err(status)?
            .into_inner()
            .r#move
            .context("empty response")?
            .try_into()?)
    }

    pub(super) async fn set_traffic(
        &mut self,
        name: &str,
        routes: Vec<TrafficRoute>,
        actor: &str,
        reason: &str,
    ) -> anyhow::Result<Vec<TrafficRoute>> {
        let c = &mut self.0;
        let req = pb::SetTrafficRequest {
            model: name.into(),
            routes: routes.into_iter().map(Into::into).collect(),
            reason: reason.into(),
            actor: actor.into(),
        };
        Ok(c.set_traffic(req)
            .await
            .map_err(status)?
            .into_inner()
            .routes
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub(super) async fn history(
        &mut self,
        name: &str,
        alias: Option<&str>,
    ) -> anyhow::Result<Vec<AliasMove>> {
        let c = &mut self.0;
        let req = pb::AliasHistoryRequest {
            model: name.into(),
            alias: alias.unwrap_or_default().into(),
        };
        c.alias_history(req)
            .await
            .map_err(status)?
            .into_inner()
            .moves
            .into_iter()
            .map(|m| Ok(m.try_into()?))
            .collect()
    }

    pub(super) async fn archive(
        &mut self,
        name: &str,
        version: u64,
        actor: &str,
    ) -> anyhow::Result<ModelVersion> {
        let c = &mut self.0;
        let req = pb::ArchiveVersionRequest {
            model: name.into(),
            version,
            actor: actor.into(),
        };
        Ok(c.archive_version(req)
            .await
            .map_err(status)?
            .into_inner()
            .version
            .context("empty response")?
            .try_into()?)
    }

    pub(super) async fn collect_garbage(&mut self, older_than_secs: f64) -> anyhow::Result<u64> {
        let req = pb::CollectGarbageRequest { older_than_secs };
        Ok(self
            .0
            .collect_garbage(req)
            .await
            .map_err(status)?
            .into_inner()
            .removed_uploads)
    }

    pub(super) async fn audit(
        &mut self,
        name: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Vec<AuditEntry>> {
        let c = &mut self.0;
        let req = pb::AuditLogRequest {
            model: name.unwrap_or_default().into(),
            limit,
        };
        c.audit_log(req)
            .await
            .map_err(status)?
            .into_inner()
            .entries
            .into_iter()
            .map(|e| Ok(e.try_into()?))
            .collect()
    }
}
