//! Intent classification for the support chatbot: one message through a `text` model,
//! the intents ranked by probability with the manifest's labels, the action mapped to the
//! top intent, and a hand-off decision from the manifest's threshold and hand-off intents.

use std::sync::Arc;

use mercator_proto::v1 as pb;
use mercator_runtime::manifest::sections::IntentSettings;
use mercator_runtime::{Tensor, TensorData};

use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::serving::{Observation, Serving};

/// Model classified with when a request names none.
pub const DEFAULT_MODEL: &str = "intent";
/// The `method` label of `Intent/Classify`.
pub const CLASSIFY: &str = "Intent.Classify";

/// The version's intent settings, parsed and checked at registration and load.
fn intent_settings(loaded: &LoadedModel) -> Result<&IntentSettings, ServeError> {
    loaded.sections.intent.as_ref().ok_or_else(|| {
        ServeError::FailedPrecondition(format!(
            "model '{}' version {} cannot classify intents: it is a {} model without \
             'labels' for its outputs",
            loaded.name,
            loaded.version,
            loaded.model.kind()
        ))
    })
}

/// Answers `Intent/Classify`. A call that names no version follows the model's traffic
/// split, placed by its `session_id` when it has one (a conversation stays on one
/// version), at random otherwise.
pub async fn classify(
    serving: &Arc<Serving>,
    req: pb::ClassifyRequest,
    max_text_bytes: usize,
    obs: &mut Observation,
) -> Result<pb::ClassifyResponse, ServeError> {
    super::cap(
        "text",
        req.text.len(),
        "limits.max_text_bytes",
        max_text_bytes,
        "bytes",
    )?;
    let _admitted = serving.admit()?;
    let name = if req.model_name.is_empty() {
        DEFAULT_MODEL
    } else {
        req.model_name.as_str()
    };
    let session = (!req.session_id.is_empty()).then_some(req.session_id.as_str());
    let routed = serving.route(name, &req.model_version, session)?;
    obs.resolved(&routed.live);
    let copy = (!routed.shadows.is_empty()).then(|| req.clone());
    let answer = classify_on(serving, &routed.live, req).await?;
    if let Some(copy) = copy {
        let owner = Arc::clone(serving);
        serving.shadows.send(
            CLASSIFY,
            &routed.shadows,
            copy,
            &answer,
            move |shadow, req| {
                let serving = Arc::clone(&owner);
                async move { classify_on(&serving, &shadow, req).await }
            },
        );
    }
    Ok(answer)
}

impl crate::serving::shadow::Predicts for pb::ClassifyResponse {
    /// The top intent and its probability.
    fn predictions(&self) -> crate::serving::shadow::Predictions {
        let top = self.intents.first();
        crate::serving::shadow::Predictions {
            values: top.map(|i| i.probability).into_iter().collect(),
            labels: top.map(|i| i.intent.clone()).into_iter().collect(),
        }
    }
}

/// Classifies on `loaded`.
async fn classify_on(
    serving: &Serving,
    loaded: &Arc<LoadedModel>,
    req: pb::ClassifyRequest,
) -> Result<pb::ClassifyResponse, ServeError> {
    let pb::ClassifyRequest {
        model_name: _,
        model_version: _,
        text,
        session_id,
        top_k,
    } = req;
    if std::str::from_utf8(&text).is_err() {
        return Err(ServeError::invalid("text", "the text is not valid UTF-8"));
    }
    let m = intent_settings(loaded)?;
    let input = Tensor::new(vec![1], TensorData::Bytes(vec![text]))
        .map_err(|e| ServeError::Internal(e.to_string()))?;
    let out = serving
        .compute(loaded, vec![input], vec![0], 1)
        .await
        .map_err(|e| match e {
            // The model names its input; the caller sent `text`.
            ServeError::InvalidArgument { message, .. } => ServeError::invalid("text", message),
            other => other,
        })?;
    let probabilities: Vec<f64> = match out.into_iter().next().map(|t| t.data) {
        Some(TensorData::F32(v)) => v.into_iter().map(f64::from).collect(),
        Some(TensorData::F64(v)) => v,
        _ => {
            return Err(ServeError::Internal(
                "the output is not floating point".into(),
            ));
        }
    };
    let mut ranked: Vec<(String, f64)> = m.labels.iter().cloned().zip(probabilities).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (top, top_p) = ranked
        .first()
        .cloned()
        .ok_or_else(|| ServeError::Internal("no intents".into()))?;
    let handoff_reason = if m.handoff_intents.contains(&top) {
        "requested"
    } else if top_p < m.handoff_threshold {
        "low_confidence"
    } else {
        ""
    };
    loaded.metrics.rows.inc();
    if top_k > 0 {
        ranked.truncate(top_k as usize);
    }
    Ok(pb::ClassifyResponse {
        model_name: loaded.name.clone(),
        model_version: loaded.version_label.clone(),
        action: m.actions.get(&top).cloned().unwrap_or_default(),
        handoff: !handoff_reason.is_empty(),
        handoff_reason: handoff_reason.into(),
        intents: ranked
            .into_iter()
            .map(|(intent, probability)| pb::IntentScore {
                intent,
                probability,
            })
            .collect(),
        session_id,
    })
}
