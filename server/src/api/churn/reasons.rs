//! Reasons for churn scores, and what to do about them: each scored customer's largest
//! contributions to the churn log-odds (exact TreeSHAP through `runtime`'s `Explainer`),
//! with the value the model saw and where it came from, and the action the manifest's
//! runbook chooses. Contributions are computed only for customers whose reasons were
//! asked for (`top_reasons`) or whose band has a rule that reads them: they cost about
//! as much per customer as xgboost's own `pred_contribs`.

use std::sync::Arc;

use mercator_runtime::manifest::InputManifest;
use mercator_runtime::manifest::runbook::{Case, Runbook};
use mercator_runtime::{Tensor, TensorData};

use super::types::{Intervention, Reason, Source};
use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::serving::Serving;
use crate::serving::lookup::RowFeatures;

/// Each row's contributions, `columns + 1` values per row (the bias last), placed by the
/// serving core (`Serving::explain`).
pub(super) async fn contributions(
    serving: &Serving,
    loaded: &Arc<LoadedModel>,
    batch: Tensor,
) -> Result<Vec<f32>, ServeError> {
    let rows = batch.shape.first().copied().unwrap_or(0);
    let unable = || {
        ServeError::FailedPrecondition(format!(
            "model '{}' version {} ({}) cannot explain its scores: top_reasons needs a tree model saved with node covers",
            loaded.name,
            loaded.version,
            loaded.model.kind()
        ))
    };
    if loaded.model.explainer().is_none() {
        return Err(unable());
    }
    let out = serving.explain(loaded, batch).await?.ok_or_else(unable)?;
    match (out.shape.as_slice(), out.data) {
        ([r, _], TensorData::F32(v)) if *r == rows => Ok(v),
        _ => Err(ServeError::FailedPrecondition(format!(
            "model '{}' version {} has several margins: reasons need one",
            loaded.name, loaded.version
        ))),
    }
}

/// The `k` largest contributions of one customer, largest first (by size, either way;
/// ties keep the manifest's order), leaving out features with no share at all.
/// `contributions` holds the row's columns then the bias; `values` what the model saw.
pub(super) fn top(
    k: usize,
    input: &InputManifest,
    contributions: &[f32],
    values: &[f64],
    found: &RowFeatures,
) -> Vec<Reason> {
    let columns = input
        .features
        .len()
        .min(contributions.len().saturating_sub(1));
    let mut order: Vec<usize> = (0..columns).filter(|&c| contributions[c] != 0.0).collect();
    order.sort_by(|&a, &b| contributions[b].abs().total_cmp(&contributions[a].abs()));
    order
        .into_iter()
        .take(k)
        .map(|c| {
            let contribution = f64::from(contributions[c]);
            let source = if found.missing.contains(&c) {
                Source::Missing
            } else if found.expired.contains(&c) {
                Source::Expired
            } else {
                Source::Present
            };
            Reason {
                feature: input.features[c].feature.clone(),
                value: values.get(c).copied().unwrap_or(f64::NAN),
                source,
                contribution,
                raises_risk: contribution > 0.0,
            }
        })
        .collect()
}

/// Who a runbook rule is chosen for.
pub(super) struct Scored<'a> {
    /// The model (its experiments are its own).
    pub(super) model: &'a str,
    /// The customer.
    pub(super) customer: &'a str,
    /// Their risk band.
    pub(super) band: &'a str,
    /// Their uplift, when the runbook's uplift model scored them.
    pub(super) uplift: Option<f64>,
}

/// The runbook's action for a scored customer: `contributions` (the row's columns then
/// the bias) when computed, `values` as the model saw them.
pub(super) fn intervention(
    runbook: &Runbook,
    scored: &Scored<'_>,
    contributions: Option<&[f32]>,
    values: &[f64],
    found: &RowFeatures,
) -> Option<Intervention> {
    let served: Vec<bool> = (0..values.len())
        .map(|c| !found.missing.contains(&c) && !found.expired.contains(&c))
        .collect();
    let columns = contributions.map_or(&[][..], |c| &c[..c.len().saturating_sub(1)]);
    let rule = runbook.choose(&Case {
        band: scored.band,
        contributions: columns,
        values,
        served: &served,
        uplift: scored.uplift,
    })?;
    let control = super::experiment::in_control(
        scored.model,
        &rule.experiment,
        scored.customer,
        rule.control,
    );
    Some(Intervention {
        action: rule.action.clone(),
        rule: rule.rule.clone(),
        control,
        experiment: rule.experiment.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_shares_either_way_come_first_and_zeros_stay_out() {
        let input: InputManifest = serde_json::from_value(serde_json::json!({
            "name": "x", "datatype": "FP32", "shape": [-1, 4],
            "features": [{"feature": "v:a"}, {"feature": "v:b"}, {"feature": "v:c"}, {"feature": "v:d"}]
        }))
        .expect("input");
        let found = RowFeatures {
            any_present: true,
            missing: vec![1],
            expired: vec![2],
        };
        let got = top(
            3,
            &input,
            &[0.5, -2.0, 0.0, 1.0, -0.3],
            &[1.0, 9.0, 2.0, 3.0],
            &found,
        );
        let names: Vec<&str> = got.iter().map(|r| r.feature.as_str()).collect();
        assert_eq!(names, ["v:b", "v:d", "v:a"]);
        assert!(!got[0].raises_risk);
        assert_eq!(got[0].source, Source::Missing);
        assert_eq!((got[0].value, got[0].contribution), (9.0, -2.0));
        assert!(got[1].raises_risk);
        assert_eq!(got[1].source, Source::Present);
        assert_eq!(
            top(10, &input, &[0.5, -2.0, 0.0, 1.0, -0.3], &[0.0; 4], &found).len(),
            3
        );
        assert!(top(0, &input, &[1.0, 1.0, 1.0, 1.0, 0.0], &[0.0; 4], &found).is_empty());
    }
}
