//! Uplift beside the churn score: when a churn model's runbook names an uplift model
//! (`"uplift_model"`, a version of the `uplift` kind), every customer the churn model
//! scored is also scored by that model's champion, and its `uplift` output (how much the
//! action raises the favourable outcome's probability) goes to the runbook's
//! `uplift_above` rules, the answer and the prediction log. The uplift model reads its own
//! bound features; when they are the churn model's, the rows already read are reused.

use std::sync::Arc;

use mercator_runtime::TensorData;

use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::serving::Serving;
use crate::serving::lookup::EntityRows;

/// What the churn model read, to be reused when the uplift model reads the same.
pub(super) struct ChurnRows<'a> {
    /// The churn model.
    pub(super) loaded: &'a LoadedModel,
    /// Its rows, one per customer.
    pub(super) found: &'a EntityRows,
    /// Which customers it scored.
    pub(super) scored: &'a [bool],
}

/// Each customer's uplift from `model`, in order; `None` for a customer the churn model
/// did not score or the uplift model knows no feature of.
pub(super) async fn uplifts(
    serving: &Arc<Serving>,
    model: &str,
    customer_ids: &[String],
    churn: ChurnRows<'_>,
) -> Result<Vec<Option<f64>>, ServeError> {
    let unfit = |why: String| {
        ServeError::FailedPrecondition(format!(
            "model '{}' targets by uplift (its runbook's uplift_model) from '{model}', which {why}",
            churn.loaded.name
        ))
    };
    let loaded = serving
        .models
        .resolve(model, "")
        .map_err(|e| unfit(format!("is not served here: {e}")))?;
    let [input] = loaded.manifest.inputs.as_slice() else {
        return Err(unfit("must have exactly one input".into()));
    };
    if input.features.is_empty() {
        return Err(unfit("has no input bound to feature store fields".into()));
    }
    let output = loaded
        .manifest
        .outputs
        .iter()
        .position(|o| o.name == "uplift")
        .filter(|_| loaded.model.kind() == "uplift")
        .ok_or_else(|| unfit("is not an uplift model with an 'uplift' output".into()))?;
    let same_features = churn
        .loaded
        .manifest
        .inputs
        .first()
        .is_some_and(|c| c.features == input.features && c.datatype == input.datatype);
    let read;
    let (found, wanted): (&EntityRows, Vec<bool>) = if same_features {
        (churn.found, churn.scored.to_vec())
    } else {
        let join_keys = crate::serving::lookup::join_keys(&serving.features, input)?;
        if join_keys.len() != 1 {
            return Err(unfit(format!(
                "reads an entity keyed by {join_keys:?}, not by one customer id"
            )));
        }
        let keys: Vec<Vec<String>> = customer_ids.iter().map(|id| vec![id.clone()]).collect();
        let now = chrono::Utc::now().timestamp_micros();
        read = crate::serving::lookup::read_rows(
            &serving.features,
            &serving.metrics,
            &loaded,
            input,
            &keys,
            now,
        )
        .await?;
        let wanted = (0..customer_ids.len())
            .map(|i| churn.scored.get(i).copied().unwrap_or(false) && read.rows[i].any_present)
            .collect();
        (&read, wanted)
    };
    let batch = found.tensor(input.datatype, |i| wanted[i])?;
    let n = batch.shape[0];
    if n == 0 {
        return Ok(vec![None; customer_ids.len()]);
    }
    let mut out = serving
        .compute(&loaded, vec![batch], vec![output], n)
        .await?;
    let values: Vec<f64> = match out.pop().map(|t| t.data) {
        Some(TensorData::F32(v)) => v.into_iter().map(f64::from).collect(),
        Some(TensorData::F64(v)) => v,
        _ => return Err(ServeError::Internal("uplift is not floating point".into())),
    };
    loaded.metrics.rows.inc_by(n as u64);
    let mut next = values.into_iter();
    Ok(wanted
        .iter()
        .map(|&w| if w { next.next() } else { None })
        .collect())
}
