//! Where model work runs besides [`Serving::compute`]'s tensors, and what it records:
//!
//! - explanations (exact TreeSHAP contributions, about as costly per row as the model's
//!   own `pred_contribs`) always on the blocking pool, timed on the version's `explain`
//!   histogram;
//! - one series' forecast through the version's batcher when it has one (merged with
//!   other callers' series), else inline (most forecasts take microseconds) or on the
//!   blocking pool (simulated intervals take milliseconds); finished and recorded in the
//!   drift window;
//! - many series at once ([`forecast_many`], inside work already placed), recorded in the
//!   drift window in one go;
//! - other model work (a recommendation, a chunk of a batch) inline or on the blocking
//!   pool, as its caller judges its cost ([`Serving::place`]).

use std::sync::Arc;

use mercator_runtime::forecast::{self, Forecast, Series};
use mercator_runtime::{RuntimeError, Tensor};

use super::Serving;
use crate::batching::SeriesJob;
use crate::error::ServeError;
use crate::models::LoadedModel;

/// Forecasts `series` on `loaded` in one batch call and finishes each (levels ordered,
/// clipped at zero), recording the successes in the version's drift window at once (one
/// try of its lock, not one per series). Synchronous: for work already placed.
pub fn forecast_many(
    loaded: &LoadedModel,
    series: &[Series<'_>],
    horizon: usize,
    quantiles: &[f64],
) -> Vec<mercator_runtime::Result<Forecast>> {
    let Some(f) = loaded.model.forecaster() else {
        return series
            .iter()
            .map(|_| Err(not_a_forecaster(loaded)))
            .collect();
    };
    let mut out = f.forecast_batch(series, horizon, quantiles);
    for r in &mut out {
        if let Ok(forecast) = r
            && let Err(e) = forecast::finish(forecast, quantiles, true)
        {
            *r = Err(e);
        }
    }
    if let Some(drift) = &loaded.drift {
        let rows: Vec<(&[f64], &[f64])> = series
            .iter()
            .zip(&out)
            .filter_map(|(s, r)| r.as_ref().ok().map(|f| (s.values, f.mean.as_slice())))
            .collect();
        drift.observe_forecasts(&rows);
    }
    out
}

fn not_a_forecaster(loaded: &LoadedModel) -> RuntimeError {
    RuntimeError::Signature(format!(
        "model '{}' version {} is not a forecaster",
        loaded.name, loaded.version
    ))
}

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

    /// One series' forecast on `loaded`, placed as the module's doc says, finished and
    /// recorded in the drift window. The outer error is the serving path's (a full
    /// queue, a lost task); the inner one the forecaster's, for the caller to name.
    pub async fn forecast(
        &self,
        loaded: &Arc<LoadedModel>,
        job: SeriesJob,
    ) -> Result<mercator_runtime::Result<Forecast>, ServeError> {
        let quantiles = job.quantiles.clone();
        let values = job.values.clone();
        let mut result = if let Some(batcher) = &loaded.batcher {
            batcher.forecast(job).await?
        } else {
            let model = Arc::clone(loaded);
            let run = move || {
                let f = model
                    .model
                    .forecaster()
                    .ok_or_else(|| not_a_forecaster(&model))?;
                f.forecast(
                    &Series {
                        key: &job.key,
                        values: &job.values,
                        last_date: job.last_date,
                    },
                    job.horizon,
                    &job.quantiles,
                )
            };
            let long = loaded.model.forecaster().is_some_and(|f| f.runs_long());
            self.place(long, run).await?
        };
        if let Ok(forecast) = &mut result
            && let Err(e) = forecast::finish(forecast, &quantiles, true)
        {
            result = Err(e);
        }
        if let (Ok(forecast), Some(drift)) = (&result, &loaded.drift) {
            drift.observe_forecasts(&[(&values, &forecast.mean)]);
        }
        Ok(result)
    }

    /// Runs model work that is not a tensor call on the blocking pool when `long` (it
    /// would hold the reactor), inline otherwise.
    pub async fn place<T: Send + 'static>(
        &self,
        long: bool,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ServeError> {
        if !long {
            return Ok(work());
        }
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ServeError::Internal(format!("a model task failed: {e}")))
    }
}
