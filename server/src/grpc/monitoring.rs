//! `mercator.v1.Monitoring`: thin handler over `crate::monitor::drift::report`.

use std::sync::Arc;

use mercator_proto::v1::{self as pb, monitoring_server::Monitoring};
use tonic::{Request, Response, Status};

use crate::error::ServeError;
use crate::models::Models;
use crate::monitor::Metrics;
use crate::monitor::drift::{Latest, VersionReport};

/// The `method` label of `Monitoring/GetDrift`.
pub const GET_DRIFT: &str = "Monitoring.GetDrift";

/// The monitoring service.
#[derive(Debug, Clone)]
pub struct MonitoringService {
    models: Arc<Models>,
    latest: Arc<Latest>,
    metrics: Metrics,
    min_samples: usize,
}

impl MonitoringService {
    /// A monitoring service over the latest drift evaluations.
    pub fn new(
        models: Arc<Models>,
        latest: Arc<Latest>,
        metrics: Metrics,
        min_samples: usize,
    ) -> MonitoringService {
        MonitoringService {
            models,
            latest,
            metrics,
            min_samples,
        }
    }
}

impl MonitoringService {
    /// The loaded versions of `model` a report covers, with whether each has a profile:
    /// all of them, or the one `version` names (a number or an alias).
    fn chosen(&self, model: &str, version: &str) -> Result<Vec<(u64, bool)>, ServeError> {
        if model.is_empty() {
            return Err(ServeError::invalid("model_name", "name the model"));
        }
        let table = self.models.snapshot();
        let entry = table
            .models
            .get(model)
            .ok_or_else(|| ServeError::ModelNotFound(model.to_string()))?;
        let chosen: Vec<_> = if version.is_empty() {
            entry.versions.values().cloned().collect()
        } else {
            vec![table.resolve(model, version)?]
        };
        Ok(chosen
            .iter()
            .map(|m| (m.version, m.drift.is_some()))
            .collect())
    }
}

fn to_pb(model: &str, r: VersionReport, min_samples: usize) -> pb::VersionDrift {
    let e = r.evaluation;
    pb::VersionDrift {
        model_name: model.to_string(),
        model_version: r.version.to_string(),
        profiled: r.profiled,
        samples: e.as_ref().map_or(0, |e| e.samples),
        evaluated_at: e.as_ref().map(|e| prost_types::Timestamp {
            seconds: e.at.floor() as i64,
            nanos: ((e.at - e.at.floor()) * 1e9) as i32,
        }),
        features: e
            .into_iter()
            .flat_map(|e| e.columns)
            .map(|c| pb::FeatureDrift {
                name: c.name,
                prediction: c.prediction,
                samples: c.scores.samples,
                psi: c.scores.psi,
                null_rate_shift: c.scores.null_rate_shift,
                ks: c.scores.ks,
                js_distance: c.scores.js,
            })
            .collect(),
        min_samples: min_samples as u64,
    }
}

#[tonic::async_trait]
impl Monitoring for MonitoringService {
    async fn get_drift(
        &self,
        req: Request<pb::GetDriftRequest>,
    ) -> Result<Response<pb::GetDriftResponse>, Status> {
        let pb::GetDriftRequest {
            model_name,
            model_version,
        } = req.into_inner();
        let result = self.chosen(&model_name, &model_version).map(|chosen| {
            let reports = crate::monitor::drift::report(&self.latest, &model_name, chosen);
            let answer = pb::GetDriftResponse {
                versions: reports
                    .into_iter()
                    .map(|r| to_pb(&model_name, r, self.min_samples))
                    .collect(),
            };
            (None, answer)
        });
        super::observed::observed(&self.metrics, GET_DRIFT, result)
    }
}
