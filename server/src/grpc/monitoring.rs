//! `mercator.v1.Monitoring`: thin handlers over `crate::monitor::drift::report` and
//! `crate::quality::Judge::evaluate`.

use std::sync::Arc;

use mercator_proto::v1::{self as pb, monitoring_server::Monitoring};
use tonic::{Request, Response, Status};

use crate::error::ServeError;
use crate::models::Models;
use crate::monitor::Metrics;
use crate::monitor::drift::{Latest, VersionReport};

/// The `method` label of `Monitoring/GetDrift`.
pub const GET_DRIFT: &str = "Monitoring.GetDrift";
/// The `method` label of `Monitoring/GetQuality`.
pub const GET_QUALITY: &str = "Monitoring.GetQuality";
/// The `method` label of `Monitoring/GetExperiments`.
pub const GET_EXPERIMENTS: &str = "Monitoring.GetExperiments";

/// What the monitoring service reports on: the latest drift evaluations, and live
/// quality (none when the prediction log is off).
#[derive(Debug, Clone)]
pub struct Watchers {
    /// The latest drift evaluations.
    pub drift: Arc<Latest>,
    /// Live quality.
    pub judge: Option<Arc<crate::quality::Judge>>,
}

/// The monitoring service.
#[derive(Debug, Clone)]
pub struct MonitoringService {
    models: Arc<Models>,
    latest: Arc<Latest>,
    judge: Option<Arc<crate::quality::Judge>>,
    metrics: Metrics,
    min_samples: usize,
}

impl MonitoringService {
    /// A monitoring service over the latest drift evaluations.
    pub fn new(
        models: Arc<Models>,
        watchers: Watchers,
        metrics: Metrics,
        min_samples: usize,
    ) -> MonitoringService {
        MonitoringService {
            models,
            latest: watchers.drift,
            judge: watchers.judge,
            metrics,
            min_samples,
        }
    }
}

impl MonitoringService {
    /// The judge of live quality for a request about `model` (named, and the log on).
    fn judge_of(&self, model: &str) -> Result<&crate::quality::Judge, ServeError> {
        if model.is_empty() {
            return Err(ServeError::invalid("model_name", "name the model"));
        }
        self.judge
            .as_deref()
            .ok_or_else(|| crate::quality::log_off("there is nothing to judge"))
    }

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

fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

fn quality_to_pb(r: crate::quality::Report) -> pb::GetQualityResponse {
    pb::GetQualityResponse {
        model_name: r.model,
        kind: r.spec.kind.as_str().to_string(),
        window: r.spec.window,
        evaluated_at: Some(timestamp(r.evaluated_at_micros)),
        versions: r
            .groups
            .into_iter()
            .map(|g| pb::VersionQuality {
                model_version: g.version,
                route: g.route,
                judged: g.judged,
                pending: g.pending,
                metrics: g.metrics.into_iter().collect(),
                calibration: g
                    .calibration
                    .into_iter()
                    .map(|b| pb::CalibrationBin {
                        lower: b.lower,
                        upper: b.upper,
                        count: b.count,
                        mean_predicted: b.mean_predicted,
                        observed: b.observed,
                    })
                    .collect(),
                days: g
                    .days
                    .into_iter()
                    .map(|(date, judged, metrics)| pb::DayQuality {
                        date,
                        judged,
                        metrics: metrics.into_iter().collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn experiment_to_pb(e: crate::quality::experiments::Experiment) -> pb::ExperimentReport {
    let d = e.difference;
    pb::ExperimentReport {
        experiment: e.experiment,
        rule: e.rule,
        action: e.action,
        treated: e.treated,
        treated_outcomes: e.treated_outcomes,
        control: e.control,
        control_outcomes: e.control_outcomes,
        pending: e.pending,
        uplift: d.map(|d| d.difference),
        lower: d.map(|d| d.lower),
        upper: d.map(|d| d.upper),
        z: d.and_then(|d| d.z),
        p_value: d.and_then(|d| d.p_value),
        cost: e.cost,
        cost_per_retained: e.cost_per_retained,
        qini_uplift: e.qini_uplift,
        qini_risk: e.qini_risk,
    }
}

#[tonic::async_trait]
impl Monitoring for MonitoringService {
    async fn get_experiments(
        &self,
        req: Request<pb::GetExperimentsRequest>,
    ) -> Result<Response<pb::GetExperimentsResponse>, Status> {
        let pb::GetExperimentsRequest {
            model_name,
            window_days,
        } = req.into_inner();
        let result = match self.judge_of(&model_name) {
            Err(e) => Err(e),
            Ok(judge) => judge
                .experiments(&model_name, window_days)
                .await
                .map(|(spec, report)| {
                    let answer = pb::GetExperimentsResponse {
                        model_name: model_name.clone(),
                        window: spec.window,
                        experiments: report.into_iter().map(experiment_to_pb).collect(),
                    };
                    (None, answer)
                }),
        };
        super::observed::observed(&self.metrics, GET_EXPERIMENTS, result)
    }

    async fn get_quality(
        &self,
        req: Request<pb::GetQualityRequest>,
    ) -> Result<Response<pb::GetQualityResponse>, Status> {
        let pb::GetQualityRequest {
            model_name,
            window_days,
        } = req.into_inner();
        let result = match self.judge_of(&model_name) {
            Err(e) => Err(e),
            Ok(judge) => judge
                .evaluate(&model_name, window_days)
                .await
                .map(|r| (None, quality_to_pb(r))),
        };
        super::observed::observed(&self.metrics, GET_QUALITY, result)
    }

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
