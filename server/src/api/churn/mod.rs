//! Churn scoring by customer id: the model's bound features are read from the feature
//! store, customers the store knows are scored in one batch, and each probability gets
//! the risk band the manifest's thresholds give it. A customer without features gets a
//! status of their own rather than failing the call. On request, each score comes with
//! its reasons (`reasons`).

pub mod experiment;
mod reasons;
mod types;
mod uplift;

use std::sync::Arc;

use mercator_runtime::manifest::OutputValue;
use mercator_runtime::{TensorData, manifest::RiskBand};

pub use types::{
    CustomerScore, CustomerStatus, Intervention, Reason, ScoreAnswer, ScoreRequest, Source,
};

use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::serving::{CallContext, Method, Serving, ShadowPolicy, Target};

/// Model scored when a request names none.
pub const DEFAULT_MODEL: &str = "churn";
/// The `method` label of `Churn/Score`.
pub const SCORE: &str = "Churn.Score";

/// How a model is scored by customer id, checked per request against the loaded version.
struct Plan<'a> {
    input: &'a mercator_runtime::manifest::InputManifest,
    probability_output: usize,
    bands: &'a [RiskBand],
}

fn plan(loaded: &LoadedModel) -> Result<Plan<'_>, ServeError> {
    let m = &loaded.manifest;
    let unfit = |why: &str| {
        ServeError::FailedPrecondition(format!(
            "model '{}' version {} cannot score customers by id: {why}",
            loaded.name, loaded.version
        ))
    };
    let [input] = m.inputs.as_slice() else {
        return Err(unfit("it must have exactly one input"));
    };
    if input.features.is_empty() {
        return Err(unfit("its input is not bound to feature store fields"));
    }
    let probability_output = m
        .outputs
        .iter()
        .position(|o| o.value == OutputValue::Prediction && o.shape == [-1])
        .ok_or_else(|| unfit("it has no [-1] prediction output"))?;
    // Checked at registration and load; the request only reads them.
    let bands = &loaded.sections.risk_bands;
    Ok(Plan {
        input,
        probability_output,
        bands,
    })
}

/// The band whose threshold is the highest not above `p` ("" below every threshold).
fn band(bands: &[RiskBand], p: f64) -> String {
    bands
        .iter()
        .rev()
        .find(|b| p >= b.threshold)
        .map(|b| b.name.clone())
        .unwrap_or_default()
}

/// `Churn/Score` as the envelope runs it: at most `max_customers` per call. A request
/// here is the customers of one route.
#[derive(Debug, Clone, Copy)]
pub struct Score {
    /// `limits.max_score_customers`.
    pub max_customers: usize,
}

impl Method for Score {
    type Request = ScoreRequest;
    type Answer = Scores;
    const NAME: &'static str = SCORE;
    const SHADOWS: ShadowPolicy = ShadowPolicy::Mirror;

    fn limits(&self, req: &ScoreRequest) -> Result<(), ServeError> {
        super::cap(
            "customer_ids",
            req.customer_ids.len(),
            "limits.max_score_customers",
            self.max_customers,
            "customers",
        )
    }

    fn validate(&self, req: &ScoreRequest) -> Result<(), ServeError> {
        if req.customer_ids.is_empty() {
            return Err(ServeError::invalid(
                "customer_ids",
                "give at least one customer id",
            ));
        }
        if let Some(i) = req.customer_ids.iter().position(|id| id.trim().is_empty()) {
            return Err(ServeError::invalid(
                format!("customer_ids[{i}]"),
                "a customer id must not be empty",
            ));
        }
        for (i, id) in req.customer_ids.iter().enumerate() {
            crate::serving::lookup::check_key(format!("customer_ids[{i}]"), id)?;
        }
        Ok(())
    }

    fn instances(&self, answer: &Scores) -> Vec<crate::predlog::Instance> {
        answer
            .scores
            .iter()
            .enumerate()
            .map(|(row, s)| crate::predlog::Instance {
                entity: Some(s.customer_id.clone()),
                version: Some(s.model_version.clone()),
                outputs: crate::predlog::Outputs {
                    probability: (s.status == CustomerStatus::Scored).then_some(s.probability),
                    band: (s.status == CustomerStatus::Scored).then(|| s.risk_band.clone()),
                    action: s.intervention.as_ref().map(|i| i.action.clone()),
                    rule: s.intervention.as_ref().map(|i| i.rule.clone()),
                    control: s.intervention.as_ref().map(|i| i.control),
                    experiment: s
                        .intervention
                        .as_ref()
                        .filter(|i| !i.experiment.is_empty())
                        .map(|i| i.experiment.clone()),
                    uplift: s.uplift,
                    ..Default::default()
                },
                seen: Some(crate::predlog::Seen::row(&answer.seen, row)),
            })
            .collect()
    }

    fn shadow_copy(&self, req: &ScoreRequest) -> ScoreRequest {
        // Shadows are compared by score; they are not asked why.
        ScoreRequest {
            top_reasons: 0,
            ..req.clone()
        }
    }

    async fn run(
        &self,
        serving: &Arc<Serving>,
        loaded: Arc<LoadedModel>,
        req: ScoreRequest,
    ) -> Result<Scores, ServeError> {
        let top_reasons = usize::try_from(req.top_reasons).unwrap_or(usize::MAX);
        score_on(serving, &loaded, req.customer_ids, top_reasons).await
    }
}

/// Answers `Churn/Score`. A call that names no version follows the model's traffic
/// split customer by customer: each is placed by a stable hash of their id, the customers
/// of each route are scored together, and each score names the version that gave it.
pub async fn score(
    serving: &Arc<Serving>,
    ctx: &CallContext,
    method: &Score,
    req: ScoreRequest,
) -> Result<ScoreAnswer, ServeError> {
    let name = if req.model.is_empty() {
        DEFAULT_MODEL.to_string()
    } else {
        req.model.clone()
    };
    let version = req.version.clone();
    let target = Target {
        model: &name,
        version: &version,
        entity: None,
    };
    let part = |members: &[usize]| ScoreRequest {
        customer_ids: members
            .iter()
            .map(|&i| req.customer_ids[i].clone())
            .collect(),
        ..req.clone()
    };
    let routes = serving
        .call_split(ctx, method, target, &req, &req.customer_ids, part)
        .await?;
    let version = match routes.as_slice() {
        [(only, _, _)] => only.version_label.clone(),
        _ => String::new(),
    };
    let mut scores: Vec<Option<CustomerScore>> = vec![None; req.customer_ids.len()];
    for (_, members, answer) in routes {
        for (i, s) in members.into_iter().zip(answer.scores) {
            scores[i] = Some(s);
        }
    }
    Ok(ScoreAnswer {
        model: name,
        version,
        scores: scores.into_iter().flatten().collect(),
    })
}

/// The scores of one call's customers on one version, in order, and the features each
/// was scored on (for the prediction log).
#[derive(Debug)]
pub struct Scores {
    scores: Vec<CustomerScore>,
    seen: Arc<[crate::predlog::Source]>,
}

impl crate::serving::shadow::Predicts for Scores {
    /// Probabilities and risk bands of the customers scored.
    fn predictions(&self) -> crate::serving::shadow::Predictions {
        let scored = || {
            self.scores
                .iter()
                .filter(|s| s.status == CustomerStatus::Scored)
        };
        crate::serving::shadow::Predictions {
            values: scored().map(|s| s.probability).collect(),
            labels: scored().map(|s| s.risk_band.clone()).collect(),
        }
    }
}

/// Scores `customer_ids` on `loaded`, each with its `top_reasons` largest contributions.
async fn score_on(
    serving: &Arc<Serving>,
    loaded: &Arc<LoadedModel>,
    customer_ids: Vec<String>,
    top_reasons: usize,
) -> Result<Scores, ServeError> {
    let name = loaded.name.as_str();
    if customer_ids.len() > loaded.max_batch_size {
        return Err(ServeError::invalid(
            "customer_ids",
            format!(
                "{} customers exceed the maximum of {} per call for model '{name}'",
                customer_ids.len(),
                loaded.max_batch_size
            ),
        ));
    }
    let plan = plan(loaded)?;
    let join_keys = crate::serving::lookup::join_keys(&serving.features, plan.input)?;
    if join_keys.len() != 1 {
        return Err(ServeError::FailedPrecondition(format!(
            "model '{name}' reads an entity keyed by {join_keys:?}, not by one customer id"
        )));
    }
    let keys: Vec<Vec<String>> = customer_ids.iter().map(|id| vec![id.clone()]).collect();
    let now = chrono::Utc::now().timestamp_micros();
    let found = crate::serving::lookup::read_rows(
        &serving.features,
        &serving.metrics,
        loaded,
        plan.input,
        &keys,
        now,
    )
    .await?;
    let known = |i: usize| found.rows[i].any_present;
    let batch = found.tensor(plan.input.datatype, known)?;
    let n = batch.shape[0];
    let probabilities: Vec<f64> = if n == 0 {
        Vec::new()
    } else {
        let mut out = serving
            .compute(loaded, vec![batch], vec![plan.probability_output], n)
            .await?;
        match out.pop().map(|t| t.data) {
            Some(TensorData::F32(v)) => v.into_iter().map(f64::from).collect(),
            Some(TensorData::F64(v)) => v,
            _ => {
                return Err(ServeError::Internal(
                    "the probability output is not floating point".into(),
                ));
            }
        }
    };
    loaded.metrics.rows.inc_by(n as u64);
    // Each customer's probability and band; only known customers were scored, in order.
    let mut next = probabilities.into_iter();
    let scored: Vec<Option<(f64, String)>> = found
        .rows
        .iter()
        .map(|row| {
            let p = row.any_present.then(|| next.next()).flatten()?;
            Some((p, band(plan.bands, p)))
        })
        .collect();
    let runbook = loaded.sections.runbook.as_ref();
    let uplift = match runbook.and_then(|r| r.uplift_model.as_deref()) {
        Some(model) => {
            let scored: Vec<bool> = scored.iter().map(Option::is_some).collect();
            let churn = uplift::ChurnRows {
                loaded,
                found: &found,
                scored: &scored,
            };
            uplift::uplifts(serving, model, &customer_ids, churn).await?
        }
        None => vec![None; customer_ids.len()],
    };
    // Contributions for the customers whose reasons were asked for or whose band has a
    // runbook rule that reads reasons.
    let explain: Vec<bool> = scored
        .iter()
        .map(|s| {
            s.as_ref().is_some_and(|(_, band)| {
                top_reasons > 0 || runbook.is_some_and(|r| r.needs_reasons(band))
            })
        })
        .collect();
    let contributions = if explain.contains(&true) {
        let batch = found.tensor(plan.input.datatype, |i| explain[i])?;
        reasons::contributions(serving, loaded, batch).await?
    } else {
        Vec::new()
    };
    let mut explained = contributions.chunks_exact(plan.input.features.len() + 1);
    let names = |cols: &[usize]| -> Vec<String> {
        cols.iter()
            .map(|&c| plan.input.features[c].feature.clone())
            .collect()
    };
    let scores = customer_ids
        .into_iter()
        .zip(&found.rows)
        .zip(scored)
        .enumerate()
        .map(|(i, ((customer_id, row), scored))| {
            let mut s = CustomerScore {
                customer_id,
                status: CustomerStatus::NoFeatures,
                probability: 0.0,
                risk_band: String::new(),
                missing_features: names(&row.missing),
                expired_features: names(&row.expired),
                model_version: loaded.version_label.clone(),
                reasons: Vec::new(),
                intervention: None,
                uplift: None,
            };
            let Some((p, band)) = scored else {
                return s;
            };
            s.status = CustomerStatus::Scored;
            s.probability = p;
            s.uplift = uplift[i];
            let c = if explain[i] { explained.next() } else { None };
            let values = found.values(i);
            if let Some(c) = c.filter(|_| top_reasons > 0) {
                s.reasons = reasons::top(top_reasons, plan.input, c, values, row);
            }
            if let Some(runbook) = runbook {
                let case = reasons::Scored {
                    model: name,
                    customer: &s.customer_id,
                    band: &band,
                    uplift: s.uplift,
                };
                s.intervention = reasons::intervention(runbook, &case, c, values, row);
                if let Some(i) = &s.intervention {
                    let counter = if i.control {
                        &serving.metrics.intervention_controls
                    } else {
                        &serving.metrics.interventions
                    };
                    counter
                        .with_label_values(&[name, &loaded.version_label, &i.action])
                        .inc();
                }
            }
            s.risk_band = band;
            s
        })
        .collect();
    Ok(Scores {
        scores,
        // Copied for the log only when there is one (as V2 and Classify do).
        seen: match (&serving.log, loaded.logged_features.first()) {
            (Some(_), Some(names)) => Arc::from(vec![found.logged(names)]),
            _ => Arc::from(Vec::new()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_take_the_highest_threshold_not_above() {
        let bands = vec![
            RiskBand {
                name: "low".into(),
                threshold: 0.0,
            },
            RiskBand {
                name: "medium".into(),
                threshold: 0.3,
            },
            RiskBand {
                name: "high".into(),
                threshold: 0.6,
            },
        ];
        assert_eq!(band(&bands, 0.0), "low");
        assert_eq!(band(&bands, 0.29), "low");
        assert_eq!(band(&bands, 0.3), "medium");
        assert_eq!(band(&bands, 0.99), "high");
        assert_eq!(band(&bands[1..], 0.1), "");
        assert_eq!(band(&[], 0.5), "");
    }
}
