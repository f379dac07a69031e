//! Where model work runs besides [`Serving::compute`]'s tensors: explanations (exact
//! TreeSHAP contributions, about as costly per row as the model's own `pred_contribs`)
//! always on the blocking pool, timed on the version's `explain` histogram.

use std::sync::Arc;

use mercator_runtime::Tensor;

use super::Serving;
use crate::error::ServeError;
use crate::models::LoadedModel;

impl Serving {
    /// The contributions of each row of `batch` to `loaded`'s margin (the model's
    /// explainer's output), on the blocking pool; `None` when the version cannot explain.
    pub async fn explain(
        &self,
        loaded: &Arc<LoadedModel>,
        batch: Tensor,
    ) -> Result<Option<Tensor>, ServeError> {
        let model = Arc::clone(&loaded.model);
        let started = std::time::Instant::now();
        let out = tokio::task::spawn_blocking(move || {
            model
                .explainer()
                .map(|e| e.contributions(std::slice::from_ref(&batch)))
        })
        .await
        .map_err(|e| ServeError::Internal(format!("explaining scores: {e}")))?
        .transpose()
        .map_err(|e| ServeError::Internal(format!("explaining scores: {e}")))?;
        loaded
            .metrics
            .explain
            .observe(started.elapsed().as_secs_f64());
        Ok(out)
    }
}
