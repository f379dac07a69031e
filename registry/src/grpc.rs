//! The registry's wire edge: conversions between `mercator.v1` messages and domain types,
//! and the one mapping from [`RegistryError`] to `tonic::Status`.

use std::collections::BTreeMap;

use mercator_proto::v1 as pb;

use crate::RegistryError;
use crate::model::{
    Alias, AliasMove, AuditEntry, LoadReport, ModelSummary, ModelVersion, NewVersion, TrafficRoute,
    VersionStatus,
};

impl RegistryError {
    /// The gRPC code the error is answered with (the server's metrics read it too).
    pub fn code(&self) -> tonic::Code {
        match self {
            RegistryError::NotFound(_) => tonic::Code::NotFound,
            RegistryError::InvalidArgument { .. } => tonic::Code::InvalidArgument,
            RegistryError::FailedPrecondition(_) => tonic::Code::FailedPrecondition,
            RegistryError::PermissionDenied(_) => tonic::Code::PermissionDenied,
            RegistryError::Integrity(_) => tonic::Code::DataLoss,
            RegistryError::Database(_)
            | RegistryError::Migration(_)
            | RegistryError::Storage(_) => tonic::Code::Unavailable,
            RegistryError::Config(_) => tonic::Code::Internal,
        }
    }
}

impl From<RegistryError> for tonic::Status {
    fn from(e: RegistryError) -> tonic::Status {
        tonic::Status::new(e.code(), e.to_string())
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

impl TryFrom<pb::RegisterVersionRequest> for NewVersion {
    type Error = RegistryError;

    fn try_from(req: pb::RegisterVersionRequest) -> Result<NewVersion, RegistryError> {
        let pb::RegisterVersionRequest {
            model,
            files,
            tags,
            metrics,
            description,
            alias,
            actor,
        } = req;
        let mut by_path = BTreeMap::new();
        for (i, f) in files.into_iter().enumerate() {
            let pb::UploadFile { path, content } = f;
            if by_path
                .insert(path.clone(), bytes::Bytes::from(content))
                .is_some()
            {
                return Err(RegistryError::invalid(
                    format!("files[{i}].path"),
                    format!("'{path}' is given twice"),
                ));
            }
        }
        Ok(NewVersion {
            model,
            files: by_path,
            tags: tags.into_iter().collect(),
            metrics: metrics.into_iter().collect(),
            description,
            alias: Some(alias).filter(|a| !a.is_empty()),
            actor,
        })
    }
}

impl From<ModelVersion> for pb::ModelVersion {
    fn from(v: ModelVersion) -> pb::ModelVersion {
        let ModelVersion {
            model,
            version,
            status,
            manifest_json,
            files,
            tags,
            metrics,
            description,
            registered_by,
            registered_at,
            aliases,
            artifact_prefix,
        } = v;
        pb::ModelVersion {
            model,
            version,
            status: match status {
                VersionStatus::Ready => pb::VersionStatus::Ready,
                VersionStatus::Archived => pb::VersionStatus::Archived,
            } as i32,
            manifest_json,
            files: files
                .into_iter()
                .map(|f| pb::ArtifactFile {
                    path: f.path,
                    sha256: f.sha256,
                    size_bytes: f.size_bytes,
                })
                .collect(),
            tags: tags.into_iter().collect(),
            metrics: metrics.into_iter().collect(),
            description,
            registered_by,
            registered_at: Some(timestamp(registered_at)),
            aliases,
            artifact_prefix,
        }
    }
}

impl From<Alias> for pb::Alias {
    fn from(a: Alias) -> pb::Alias {
        pb::Alias {
            name: a.name,
            version: a.version,
            updated_at: Some(timestamp(a.updated_at)),
        }
    }
}

impl From<ModelSummary> for pb::ModelSummary {
    fn from(m: ModelSummary) -> pb::ModelSummary {
        let ModelSummary {
            name,
            description,
            latest_version,
            aliases,
            traffic,
            created_at,
        } = m;
        pb::ModelSummary {
            name,
            description,
            latest_version,
            aliases: aliases.into_iter().map(Into::into).collect(),
            created_at: Some(timestamp(created_at)),
            traffic: traffic.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<TrafficRoute> for pb::TrafficRoute {
    fn from(r: TrafficRoute) -> pb::TrafficRoute {
        let TrafficRoute {
            alias,
            percent,
            shadow,
        } = r;
        pb::TrafficRoute {
            alias,
            percent,
            shadow,
        }
    }
}

impl From<pb::TrafficRoute> for TrafficRoute {
    fn from(r: pb::TrafficRoute) -> TrafficRoute {
        let pb::TrafficRoute {
            alias,
            percent,
            shadow,
        } = r;
        TrafficRoute {
            alias,
            percent,
            shadow,
        }
    }
}

impl From<AliasMove> for pb::AliasMove {
    fn from(m: AliasMove) -> pb::AliasMove {
        let AliasMove {
            model,
            alias,
            from_version,
            to_version,
            actor,
            reason,
            moved_at,
        } = m;
        pb::AliasMove {
            model,
            alias,
            from_version: from_version.unwrap_or(0),
            to_version,
            actor,
            reason,
            moved_at: Some(timestamp(moved_at)),
        }
    }
}

impl From<AuditEntry> for pb::AuditEntry {
    fn from(e: AuditEntry) -> pb::AuditEntry {
        let AuditEntry {
            id,
            actor,
            action,
            model,
            version,
            detail,
            at,
        } = e;
        pb::AuditEntry {
            id,
            actor,
            action,
            model,
            version: version.unwrap_or(0),
            detail_json: detail.to_string(),
            at: Some(timestamp(at)),
        }
    }
}

impl From<LoadReport> for pb::LoadReport {
    fn from(r: LoadReport) -> pb::LoadReport {
        let LoadReport {
            model,
            version,
            instance,
            loaded,
            reason,
            message,
            attempts,
            at,
            seen_at,
        } = r;
        pb::LoadReport {
            model,
            version,
            instance,
            loaded,
            reason,
            message,
            attempts,
            at: Some(timestamp(at)),
            seen_at: Some(timestamp(seen_at)),
        }
    }
}

impl TryFrom<pb::LoadReport> for LoadReport {
    type Error = RegistryError;

    fn try_from(r: pb::LoadReport) -> Result<LoadReport, RegistryError> {
        let pb::LoadReport {
            model,
            version,
            instance,
            loaded,
            reason,
            message,
            attempts,
            at,
            seen_at,
        } = r;
        let at = from_timestamp("load_reports.at", at)?;
        Ok(LoadReport {
            model,
            version,
            instance,
            loaded,
            reason,
            message,
            attempts,
            at,
            // A server of the release before heartbeats sends none: seen when it tried.
            seen_at: seen_at.map_or(Ok(at), |t| from_timestamp("load_reports.seen_at", Some(t)))?,
        })
    }
}

// ---- the other way, for clients (the CLI) that read these messages ----

fn from_timestamp(
    field: &str,
    t: Option<prost_types::Timestamp>,
) -> Result<chrono::DateTime<chrono::Utc>, RegistryError> {
    let t = t.ok_or_else(|| RegistryError::invalid(field, "timestamp missing"))?;
    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
        .ok_or_else(|| RegistryError::invalid(field, "timestamp out of range"))
}

impl TryFrom<pb::ModelVersion> for ModelVersion {
    type Error = RegistryError;

    fn try_from(v: pb::ModelVersion) -> Result<ModelVersion, RegistryError> {
        let pb::ModelVersion {
            model,
            version,
            status,
            manifest_json,
            files,
            tags,
            metrics,
            description,
            registered_by,
            registered_at,
            aliases,
            artifact_prefix,
        } = v;
        Ok(ModelVersion {
            model,
            version,
            status: if status == pb::VersionStatus::Archived as i32 {
                VersionStatus::Archived
            } else {
                VersionStatus::Ready
            },
            manifest_json,
            files: files
                .into_iter()
                .map(|f| crate::model::ArtifactFile {
                    path: f.path,
                    sha256: f.sha256,
                    size_bytes: f.size_bytes,
                })
                .collect(),
            tags: tags.into_iter().collect(),
            metrics: metrics.into_iter().collect(),
            description,
            registered_by,
            registered_at: from_timestamp("registered_at", registered_at)?,
            aliases,
            artifact_prefix,
        })
    }
}

impl TryFrom<pb::ModelSummary> for ModelSummary {
    type Error = RegistryError;

    fn try_from(m: pb::ModelSummary) -> Result<ModelSummary, RegistryError> {
        let pb::ModelSummary {
            name,
            description,
            latest_version,
            aliases,
            created_at,
            traffic,
        } = m;
        Ok(ModelSummary {
            traffic: traffic.into_iter().map(Into::into).collect(),
            name,
            description,
            latest_version,
            aliases: aliases
                .into_iter()
                .map(|a| {
                    Ok(Alias {
                        name: a.name,
                        version: a.version,
                        updated_at: from_timestamp("updated_at", a.updated_at)?,
                    })
                })
                .collect::<Result<_, RegistryError>>()?,
            created_at: from_timestamp("created_at", created_at)?,
        })
    }
}

impl TryFrom<pb::AliasMove> for AliasMove {
    type Error = RegistryError;

    fn try_from(m: pb::AliasMove) -> Result<AliasMove, RegistryError> {
        let pb::AliasMove {
            model,
            alias,
            from_version,
            to_version,
            actor,
            reason,
            moved_at,
        } = m;
        Ok(AliasMove {
            model,
            alias,
            from_version: Some(from_version).filter(|v| *v > 0),
            to_version,
            actor,
            reason,
            moved_at: from_timestamp("moved_at", moved_at)?,
        })
    }
}

impl TryFrom<pb::AuditEntry> for AuditEntry {
    type Error = RegistryError;

    fn try_from(e: pb::AuditEntry) -> Result<AuditEntry, RegistryError> {
        let pb::AuditEntry {
            id,
            actor,
            action,
            model,
            version,
            detail_json,
            at,
        } = e;
        Ok(AuditEntry {
            id,
            actor,
            action,
            model,
            version: Some(version).filter(|v| *v > 0),
            detail: serde_json::from_str(&detail_json)
                .unwrap_or(serde_json::Value::String(detail_json)),
            at: from_timestamp("at", at)?,
        })
    }
}

impl From<crate::governance::Approval> for pb::Approval {
    fn from(a: crate::governance::Approval) -> pb::Approval {
        pb::Approval {
            model: a.model,
            version: a.version,
            approved_by: a.approved_by,
            approved_at: Some(timestamp(a.approved_at)),
            reason: a.reason,
        }
    }
}

impl From<crate::keys::ApiKey> for pb::ApiKey {
    fn from(k: crate::keys::ApiKey) -> pb::ApiKey {
        pb::ApiKey {
            name: k.name,
            scopes: k.scopes,
            created_by: k.created_by,
            created_at: Some(timestamp(k.created_at)),
            expires_at: k.expires_at.map(timestamp),
            revoked_at: k.revoked_at.map(timestamp),
        }
    }
}

/// A request's timestamp as a time, naming `field` when it is out of range.
pub fn time_of(
    field: &str,
    t: &prost_types::Timestamp,
) -> Result<chrono::DateTime<chrono::Utc>, RegistryError> {
    u32::try_from(t.nanos)
        .ok()
        .and_then(|nanos| chrono::DateTime::from_timestamp(t.seconds, nanos))
        .ok_or_else(|| RegistryError::invalid(field, "not a valid timestamp"))
}
