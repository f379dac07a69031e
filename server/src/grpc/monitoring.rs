//! `mercator.v1.Monitoring`: thin handler over `crate::drift::report`.

use std::sync::Arc;

use mercator_proto::v1::{self as pb, monitoring_server::Monitoring};
use tonic::{Request, Response, Status};

use crate::drift::{Latest, VersionReport};
use crate::models::Models;

/// The `method` label of `Monitoring/GetDrift`.
pub const GET_DRIFT: &str = "Monitoring.GetDrift";

/// The monitoring service.
#[derive(Debug, Clone)]
pub struct MonitoringService {
    models: Arc<Models>,
    latest: Arc<Latest>,
    metrics: crate::metrics::Metrics,
    min_samples: usize,
}

impl MonitoringService {
    /// A monitoring service over the latest drift evaluations.
    pub fn new(
        models: Arc<Models>,
        latest: Arc<Latest>,
        metrics: crate::metrics::Metrics,
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
        super::observed(&self.metrics, GET_DRIFT, async |_| {
            let reports =
                crate::drift::report(&self.models, &self.latest, &model_name, &model_version)?;
            Ok(pb::GetDriftResponse {
                versions: reports
                    .into_iter()
                    .map(|r| to_pb(&model_name, r, self.min_samples))
                    .collect(),
            })
        })
        .await
    }
}
