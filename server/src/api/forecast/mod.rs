//! Demand forecasting for the inventory planner: a SKU at a location in, one point per
//! day (date, mean, quantiles) out, from any model whose runtime kind is a forecaster.
//!
//! The recent daily sales come inline or from the feature store: the manifest's
//! `history` section names a list field (the daily values, oldest first) and a string
//! field (the date of the last value) of one view, whose entity is keyed by the SKU then
//! the location. `ForecastBatch` reads and forecasts many series in chunks: one store
//! round trip per chunk, chunks computed on the blocking pool a few at a time (so the
//! cores share the work and the reactor stays free), streamed back in order.
//! `Inventory/Recommend` turns a series' demand over the protection interval into a
//! replenishment order (`recommend`).

mod batch;
mod dates;
mod history;
mod recommend;
mod recommend_batch;
pub mod types;

use std::sync::Arc;

use mercator_runtime::RuntimeError;
use mercator_runtime::forecast::{self, Forecaster};

pub use batch::{BatchStream, forecast_batch};
use dates::{DateLabels, points};
use history::{history_error, inline_history, read_histories, store_keys};
pub use recommend::{RECOMMEND, RECOMMEND_BATCH, Recommend, RecommendSettings, recommend};
pub use recommend_batch::{RecommendStream, recommend_batch};

use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::serving::{CallContext, Method, Serving, ShadowPolicy, Target};

/// Model forecast with when a request names none.
pub const DEFAULT_MODEL: &str = "demand";
/// The `method` label of `Forecasting/Forecast`.
pub const FORECAST: &str = "Forecasting.Forecast";
/// The `method` label of `Forecasting/ForecastBatch`.
pub const FORECAST_BATCH: &str = "Forecasting.ForecastBatch";
/// Levels forecast when a request asks for none.
pub const DEFAULT_QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];
/// Series per streamed message, per feature lookup and per compute task.
const CHUNK: usize = 256;

/// Limits on forecasting requests, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ForecastLimits {
    /// Longest horizon any model may be asked for, in days.
    pub max_horizon_days: usize,
    /// Most series in one `ForecastBatch`.
    pub max_batch_series: usize,
    /// Most days in an inline history.
    pub max_history_days: usize,
}

/// What a request asks of a loaded forecaster, checked.
struct Plan {
    loaded: Arc<LoadedModel>,
    horizon: usize,
    quantiles: Vec<f64>,
}

impl Plan {
    fn forecaster(&self) -> Result<&dyn Forecaster, ServeError> {
        forecaster_of(&self.loaded)
    }
}

fn forecaster_of(loaded: &LoadedModel) -> Result<&dyn Forecaster, ServeError> {
    loaded.model.forecaster().ok_or_else(|| {
        ServeError::FailedPrecondition(format!(
            "model '{}' version {} is a {} model, not a forecaster",
            loaded.name,
            loaded.version,
            loaded.model.kind()
        ))
    })
}

/// The model a request names, or [`DEFAULT_MODEL`].
fn model_or_default(model_name: &str) -> String {
    if model_name.is_empty() {
        DEFAULT_MODEL.to_string()
    } else {
        model_name.to_string()
    }
}

/// Checks the horizon and levels against the version that answers.
fn plan(
    loaded: Arc<LoadedModel>,
    limits: ForecastLimits,
    horizon_days: u32,
    quantiles: Vec<f64>,
) -> Result<Plan, ServeError> {
    let f = forecaster_of(&loaded)?;
    let horizon = horizon_days as usize;
    forecast::check_horizon(f, horizon, limits.max_horizon_days)
        .map_err(|e| request_error(e, "horizon_days"))?;
    let quantiles = if quantiles.is_empty() {
        DEFAULT_QUANTILES.to_vec()
    } else {
        quantiles
    };
    if quantiles.len() > 99 {
        return Err(ServeError::invalid("quantiles", "at most 99 levels"));
    }
    forecast::check_quantiles(f, &quantiles).map_err(|e| request_error(e, "quantiles"))?;
    Ok(Plan {
        loaded,
        horizon,
        quantiles,
    })
}

/// A runtime refusal of the request's own fields: INVALID_ARGUMENT naming the field
/// (`fallback` when the runtime names none of the request's).
fn request_error(e: RuntimeError, fallback: &str) -> ServeError {
    match e {
        RuntimeError::InvalidInput { input, message } => {
            let field = if input.starts_with("quantiles") {
                input
            } else {
                fallback.to_string()
            };
            ServeError::invalid(field, message)
        }
        other => other.into(),
    }
}

/// The key parts of `series` (`field` names it in errors): the SKU, then the location
/// when `parts` is 2; a one-part key takes no location.
fn key_of(series: &types::SeriesId, parts: usize, field: &str) -> Result<Vec<String>, ServeError> {
    let types::SeriesId {
        sku_id,
        location_id,
    } = series;
    if parts == 0 {
        return Ok(Vec::new());
    }
    crate::serving::lookup::check_key(format!("{field}.sku_id"), sku_id)?;
    crate::serving::lookup::check_key(format!("{field}.location_id"), location_id)?;
    if sku_id.trim().is_empty() {
        return Err(ServeError::invalid(
            format!("{field}.sku_id"),
            "a series needs a SKU id",
        ));
    }
    match parts {
        1 if location_id.is_empty() => Ok(vec![sku_id.clone()]),
        1 => Err(ServeError::invalid(
            format!("{field}.location_id"),
            "this model's series are keyed by the SKU alone: leave the location empty",
        )),
        2 if !location_id.trim().is_empty() => Ok(vec![sku_id.clone(), location_id.clone()]),
        2 => Err(ServeError::invalid(
            format!("{field}.location_id"),
            "a series needs a location id",
        )),
        n => Err(ServeError::FailedPrecondition(format!(
            "series keyed by {n} parts cannot be named by a SKU and a location"
        ))),
    }
}

/// The key a series is placed on a traffic split by (a series always reaches the same
/// route).
fn route_key(series: Option<&types::SeriesId>) -> Option<String> {
    series.map(|s| {
        format!(
            "{}{}{}",
            s.sku_id,
            crate::models::routing::KEY_SEPARATOR,
            s.location_id
        )
    })
}

fn series_label(series: &types::SeriesId) -> String {
    if series.location_id.is_empty() {
        series.sku_id.clone()
    } else {
        format!("{}/{}", series.sku_id, series.location_id)
    }
}

/// A series as the prediction log's entity (and the outcomes' of a forecaster):
/// `sku|location`, or the SKU alone.
fn log_entity(series: Option<&types::SeriesId>) -> Option<String> {
    series.map(|s| {
        if s.location_id.is_empty() {
            s.sku_id.clone()
        } else {
            format!("{}|{}", s.sku_id, s.location_id)
        }
    })
}

/// A series' forecast days as the prediction log's instances.
fn day_instances<'a>(
    entity: Option<String>,
    points: &'a [types::ForecastPoint],
    levels: &'a [f64],
) -> impl Iterator<Item = crate::predlog::Instance> + 'a {
    points.iter().map(move |p| crate::predlog::Instance {
        entity: entity.clone(),
        outputs: crate::predlog::Outputs {
            date: Some(p.date.clone()),
            mean: Some(p.mean),
            quantiles: Some(p.quantiles.clone()),
            quantile_levels: Some(levels.to_vec()),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// `Forecasting/Forecast` as the envelope runs it.
#[derive(Debug, Clone, Copy)]
pub struct Forecast {
    /// The configured limits.
    pub limits: ForecastLimits,
}

impl Method for Forecast {
    type Request = types::ForecastRequest;
    type Answer = types::ForecastResponse;
    const NAME: &'static str = FORECAST;
    const SHADOWS: ShadowPolicy = ShadowPolicy::Mirror;

    /// One instance per forecast day.
    fn instances(&self, answer: &types::ForecastResponse) -> Vec<crate::predlog::Instance> {
        let entity = log_entity(answer.series.as_ref());
        day_instances(entity, &answer.points, &answer.quantiles).collect()
    }

    async fn run(
        &self,
        serving: &Arc<Serving>,
        loaded: Arc<LoadedModel>,
        req: types::ForecastRequest,
    ) -> Result<types::ForecastResponse, ServeError> {
        forecast_on(serving, self.limits, loaded, req).await
    }
}

/// Answers `Forecasting/Forecast`. A call that names no version follows the model's
/// traffic split, placed by its series (a series always reaches the same route).
pub async fn forecast(
    serving: &Arc<Serving>,
    ctx: &CallContext,
    method: &Forecast,
    req: types::ForecastRequest,
) -> Result<types::ForecastResponse, ServeError> {
    let key = route_key(req.series.as_ref());
    let (model, version) = (model_or_default(&req.model_name), req.model_version.clone());
    let target = Target {
        model: &model,
        version: &version,
        entity: key.as_deref(),
    };
    serving.call(ctx, method, target, req).await
}

impl crate::serving::shadow::Predicts for types::ForecastResponse {
    /// The mean of every forecast day.
    fn predictions(&self) -> crate::serving::shadow::Predictions {
        crate::serving::shadow::Predictions {
            values: self.points.iter().map(|p| p.mean).collect(),
            labels: Vec::new(),
        }
    }
}

/// Forecasts on `loaded`.
async fn forecast_on(
    serving: &Arc<Serving>,
    limits: ForecastLimits,
    loaded: Arc<LoadedModel>,
    req: types::ForecastRequest,
) -> Result<types::ForecastResponse, ServeError> {
    let types::ForecastRequest {
        model_name: _,
        model_version: _,
        series,
        horizon_days,
        quantiles,
        history,
    } = req;
    let plan = plan(loaded, limits, horizon_days, quantiles)?;
    let series = series.unwrap_or_default();
    let inline = history.is_some();
    let history = match history {
        Some(h) => inline_history(h, limits.max_history_days)?,
        None => {
            let keys = store_keys(serving, &plan.loaded, std::slice::from_ref(&series), false)?;
            read_histories(serving, &plan.loaded, &keys)
                .await?
                .pop()
                .ok_or_else(|| ServeError::Internal("no history read".into()))??
        }
    };
    let f = plan.forecaster()?;
    let key = key_of(&series, f.key_parts(), "series")?;
    let label = series_label(&series);
    let last_date = history.last_date;
    let job = crate::batching::SeriesJob {
        key,
        values: history.values,
        last_date: Some(history.last_date),
        horizon: plan.horizon,
        quantiles: plan.quantiles.clone(),
    };
    let result = serving
        .forecast(&plan.loaded, job)
        .await?
        .map_err(|e| history_error(e, &label, inline))?;
    plan.loaded.metrics.rows.inc();
    Ok(types::ForecastResponse {
        model_name: plan.loaded.name.clone(),
        model_version: plan.loaded.version_label.clone(),
        series: Some(series),
        points: points(&result, last_date, &mut DateLabels::default())?,
        quantiles: plan.quantiles,
        history_last_date: last_date.format("%Y-%m-%d").to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(sku: &str, loc: &str) -> types::SeriesId {
        types::SeriesId {
            sku_id: sku.into(),
            location_id: loc.into(),
        }
    }

    #[test]
    fn series_keys_follow_the_entity() {
        assert_eq!(key_of(&id("S", "L"), 2, "series").expect("2"), ["S", "L"]);
        assert_eq!(key_of(&id("S", ""), 1, "series").expect("1"), ["S"]);
        assert!(key_of(&id("", ""), 0, "series").expect("0").is_empty());
        for (s, parts, field) in [
            (id("", "L"), 2, "series.sku_id"),
            (id(" ", "L"), 1, "series.sku_id"),
            (id("S", ""), 2, "series.location_id"),
            (id("S", "L"), 1, "series.location_id"),
        ] {
            match key_of(&s, parts, "series") {
                Err(ServeError::InvalidArgument { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
