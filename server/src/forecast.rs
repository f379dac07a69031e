//! Demand forecasting for the inventory planner: a SKU at a location in, one point per
//! day (date, mean, quantiles) out, from any model whose runtime kind is a forecaster.
//!
//! The recent daily sales come inline or from the feature store: the manifest's
//! `history` section names a list field (the daily values, oldest first) and a string
//! field (the date of the last value) of one view, whose entity is keyed by the SKU then
//! the location. `ForecastBatch` reads and forecasts many series in chunks: one store
//! round trip per chunk, chunks computed on the blocking pool a few at a time (so the
//! cores share the work and the reactor stays free), streamed back in order.

use std::sync::Arc;

use chrono::NaiveDate;
use futures::StreamExt;
use mercator_features::{Status as FeatureStatus, Value};
use mercator_proto::v1 as pb;
use mercator_runtime::RuntimeError;
use mercator_runtime::forecast::{self, Forecast, Forecaster, Series};
use serde::Deserialize;

use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::serving::{Admitted, Observation, Serving};

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
}

/// The manifest's `history` section: where the feature store keeps a series' sales.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryBinding {
    /// `view:field` of the daily values (a `float32_list`, oldest first).
    values: String,
    /// `view:field` of the last value's date (a `string`, `YYYY-MM-DD`).
    last_date: String,
}

impl HistoryBinding {
    /// Parses the section, if the manifest has one; both fields must be of one view.
    pub fn from_manifest(manifest: &mercator_runtime::Manifest) -> Result<Option<Self>, String> {
        let Some(v) = manifest.extra.get("history") else {
            return Ok(None);
        };
        let b: HistoryBinding =
            serde_json::from_value(v.clone()).map_err(|e| format!("history: {e}"))?;
        match (b.values.split_once(':'), b.last_date.split_once(':')) {
            (Some((v1, f1)), Some((v2, f2)))
                if v1 == v2 && !v1.is_empty() && !f1.is_empty() && !f2.is_empty() =>
            {
                Ok(Some(b))
            }
            _ => Err("history: values and last_date must be view:field of one view".into()),
        }
    }

    fn view(&self) -> &str {
        self.values.split_once(':').map_or("", |(v, _)| v)
    }

    /// The field holding the daily values.
    pub fn values_field(&self) -> &str {
        self.values.split_once(':').map_or("", |(_, f)| f)
    }

    /// The field holding the last value's date.
    pub fn last_date_field(&self) -> &str {
        self.last_date.split_once(':').map_or("", |(_, f)| f)
    }
}

/// A series' recent sales.
#[derive(Debug, Clone)]
struct History {
    values: Vec<f64>,
    last_date: NaiveDate,
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

/// Routes the request (by `entity_key`, see [`Serving::route`]).
fn routed(
    serving: &Serving,
    model_name: &str,
    model_version: &str,
    entity_key: Option<&str>,
    obs: &mut Observation,
) -> Result<crate::models::Routed, ServeError> {
    let name = if model_name.is_empty() {
        DEFAULT_MODEL
    } else {
        model_name
    };
    let routed = serving.route(name, model_version, entity_key)?;
    obs.resolved(&routed.live);
    Ok(routed)
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
fn key_of(series: &pb::SeriesId, parts: usize, field: &str) -> Result<Vec<String>, ServeError> {
    let pb::SeriesId {
        sku_id,
        location_id,
    } = series;
    if parts == 0 {
        return Ok(Vec::new());
    }
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

fn series_label(series: &pb::SeriesId) -> String {
    if series.location_id.is_empty() {
        series.sku_id.clone()
    } else {
        format!("{}/{}", series.sku_id, series.location_id)
    }
}

/// The version's history binding, parsed once and kept with it.
fn binding(loaded: &LoadedModel) -> Result<&HistoryBinding, ServeError> {
    let parsed = loaded
        .history
        .get_or_init(|| HistoryBinding::from_manifest(&loaded.manifest));
    match parsed {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(ServeError::FailedPrecondition(format!(
            "model '{}' version {} has no 'history' section naming a feature view: send the \
             history inline",
            loaded.name, loaded.version
        ))),
        Err(why) => Err(ServeError::FailedPrecondition(format!(
            "model '{}' version {}: {why}",
            loaded.name, loaded.version
        ))),
    }
}

/// The store keys of `series`, checked against the history view's entity; errors name
/// `series` (one) or `series[i]` (a batch).
fn store_keys(
    serving: &Serving,
    loaded: &LoadedModel,
    series: &[pb::SeriesId],
    batch: bool,
) -> Result<Vec<Vec<String>>, ServeError> {
    let parts = crate::lookup::entity_keys(&serving.features, binding(loaded)?.view())?.len();
    series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let field = if batch {
                format!("series[{i}]")
            } else {
                "series".to_string()
            };
            key_of(s, parts, &field)
        })
        .collect()
}

/// Reads the histories of the series with these store keys: one result per key, in order.
async fn read_histories(
    serving: &Serving,
    loaded: &LoadedModel,
    keys: &[Vec<String>],
) -> Result<Vec<Result<History, ServeError>>, ServeError> {
    let b = binding(loaded)?;
    let refs = [b.values.clone(), b.last_date.clone()];
    let got = crate::lookup::read_features(
        &serving.features,
        &serving.metrics,
        loaded,
        "history",
        &refs,
        keys,
        chrono::Utc::now().timestamp_micros(),
    )
    .await?;
    Ok(got
        .into_iter()
        .zip(keys)
        .map(|(mut row, key)| {
            let label = key.join("/");
            let last = row.pop();
            let values = row.pop();
            match (values, last) {
                (
                    Some((Some(Value::Float32List(v)), FeatureStatus::Present)),
                    Some((Some(Value::String(d)), FeatureStatus::Present)),
                ) => {
                    let last_date = forecast::parse_date(&d).ok_or_else(|| {
                        ServeError::FailedPrecondition(format!(
                            "series {label}: {} is '{d}', not a YYYY-MM-DD date",
                            b.last_date
                        ))
                    })?;
                    Ok(History {
                        values: v.into_iter().map(f64::from).collect(),
                        last_date,
                    })
                }
                (Some((_, FeatureStatus::Missing)), _) | (_, Some((_, FeatureStatus::Missing))) => {
                    Err(ServeError::NotFound(format!(
                        "series {label} has no sales history in view '{}'",
                        b.view()
                    )))
                }
                (Some((_, FeatureStatus::Expired)), _) | (_, Some((_, FeatureStatus::Expired))) => {
                    Err(ServeError::FailedPrecondition(format!(
                        "series {label}: its sales history in view '{}' is older than the \
                         view's TTL",
                        b.view()
                    )))
                }
                _ => Err(ServeError::FailedPrecondition(format!(
                    "series {label}: {} must be a float32_list and {} a string",
                    b.values, b.last_date
                ))),
            }
        })
        .collect())
}

/// An inline history, checked: values finite, a date.
fn inline_history(h: pb::History) -> Result<History, ServeError> {
    let pb::History { values, last_date } = h;
    if values.is_empty() {
        return Err(ServeError::invalid(
            "history.values",
            "give at least one day",
        ));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(ServeError::invalid(
            format!("history.values[{i}]"),
            "must be a finite number (a day without sales is 0)",
        ));
    }
    let last_date = forecast::parse_date(&last_date).ok_or_else(|| {
        ServeError::invalid(
            "history.last_date",
            format!("'{last_date}' is not a YYYY-MM-DD date"),
        )
    })?;
    Ok(History { values, last_date })
}

/// A forecaster's refusal of a series' history. Inline histories are the caller's
/// (INVALID_ARGUMENT); stored ones are the deployment's (FAILED_PRECONDITION).
fn history_error(e: RuntimeError, label: &str, inline: bool) -> ServeError {
    match e {
        RuntimeError::InvalidInput { input, message } if inline => {
            let field = if input == forecast::LAST_DATE_INPUT {
                "history.last_date"
            } else {
                "history.values"
            };
            ServeError::invalid(field, message)
        }
        RuntimeError::InvalidInput { message, .. } => ServeError::FailedPrecondition(format!(
            "series {label}: the stored history cannot be forecast: {message}"
        )),
        other => other.into(),
    }
}

/// The dates of the days after `last`, as text: formatted once per history end date
/// and shared by every series of a chunk that ends on it (most do), since formatting
/// costs more than the forecast arithmetic of a day.
#[derive(Debug, Default)]
struct DateLabels {
    by_last_date: Vec<(NaiveDate, Vec<String>)>,
}

impl DateLabels {
    fn after(&mut self, last: NaiveDate, days: usize) -> Result<&[String], ServeError> {
        let at = match self
            .by_last_date
            .iter()
            .position(|(d, l)| *d == last && l.len() >= days)
        {
            Some(i) => i,
            None => {
                let labels = (1..=days as u64)
                    .map(|h| {
                        forecast::add_days(last, h)
                            .map(|d| d.format("%Y-%m-%d").to_string())
                            .map_err(|_| {
                                ServeError::invalid("history.last_date", "too far in the future")
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.by_last_date.push((last, labels));
                self.by_last_date.len() - 1
            }
        };
        Ok(&self.by_last_date[at].1[..days])
    }
}

/// The response points: one a day from the day after the history.
fn points(
    f: &Forecast,
    last: NaiveDate,
    labels: &mut DateLabels,
) -> Result<Vec<pb::ForecastPoint>, ServeError> {
    let dates = labels.after(last, f.mean.len())?;
    Ok(dates
        .iter()
        .enumerate()
        .map(|(h, date)| pb::ForecastPoint {
            date: date.clone(),
            mean: f.mean[h],
            quantiles: f.quantiles.iter().map(|q| q[h]).collect(),
        })
        .collect())
}

/// Answers `Forecasting/Forecast`. A call that names no version follows the model's
/// traffic split, placed by its series (a series always reaches the same route).
pub async fn forecast(
    serving: &Arc<Serving>,
    limits: ForecastLimits,
    req: pb::ForecastRequest,
    obs: &mut Observation,
) -> Result<pb::ForecastResponse, ServeError> {
    let _admitted = serving.admit()?;
    let key = req.series.as_ref().map(|s| {
        format!(
            "{}{}{}",
            s.sku_id,
            crate::models::routing::KEY_SEPARATOR,
            s.location_id
        )
    });
    let routed = routed(
        serving,
        &req.model_name,
        &req.model_version,
        key.as_deref(),
        obs,
    )?;
    let copy = (!routed.shadows.is_empty()).then(|| req.clone());
    let answer = forecast_on(serving, limits, Arc::clone(&routed.live), req).await?;
    if let Some(copy) = copy {
        serving.shadow(
            FORECAST,
            &routed.shadows,
            copy,
            &answer,
            move |serving, shadow, req| async move {
                forecast_on(&serving, limits, shadow, req).await
            },
        );
    }
    Ok(answer)
}

impl crate::shadow::Predicts for pb::ForecastResponse {
    /// The mean of every forecast day.
    fn predictions(&self) -> crate::shadow::Predictions {
        crate::shadow::Predictions {
            values: self.points.iter().map(|p| p.mean).collect(),
            labels: Vec::new(),
        }
    }
}

/// Forecasts on `loaded`.
async fn forecast_on(
    serving: &Serving,
    limits: ForecastLimits,
    loaded: Arc<LoadedModel>,
    req: pb::ForecastRequest,
) -> Result<pb::ForecastResponse, ServeError> {
    let pb::ForecastRequest {
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
        Some(h) => inline_history(h)?,
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
    let run = {
        let (loaded, horizon, quantiles) = (
            Arc::clone(&plan.loaded),
            plan.horizon,
            plan.quantiles.clone(),
        );
        let values = history.values;
        let last_date = Some(history.last_date);
        move || {
            forecaster_of(&loaded)?
                .forecast(
                    &Series {
                        key: &key,
                        values: &values,
                        last_date,
                    },
                    horizon,
                    &quantiles,
                )
                .map(|f| (f, values))
                .map_err(|e| history_error(e, &label, inline))
        }
    };
    // Most forecasts take microseconds and run inline; simulated intervals take
    // milliseconds and go to the blocking pool.
    let (mut result, values) = if f.runs_long() {
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|e| ServeError::Internal(format!("forecast task failed: {e}")))??
    } else {
        run()?
    };
    forecast::finish(&mut result, &plan.quantiles, true);
    if let Some(drift) = &plan.loaded.drift {
        drift.observe_forecasts(&[(&values, &result.mean)]);
    }
    plan.loaded.metrics.rows.inc();
    Ok(pb::ForecastResponse {
        model_name: plan.loaded.name.clone(),
        model_version: plan.loaded.version_label.clone(),
        series: Some(series),
        points: points(&result, last_date, &mut DateLabels::default())?,
        quantiles: plan.quantiles,
        history_last_date: last_date.format("%Y-%m-%d").to_string(),
    })
}

/// The stream `ForecastBatch` answers with.
pub type BatchStream =
    tokio_stream::wrappers::ReceiverStream<Result<pb::ForecastBatchResponse, tonic::Status>>;

/// Answers `Forecasting/ForecastBatch`: checks the request, then streams the forecasts
/// from a task that holds the admission until the last chunk is sent (or the caller
/// goes away). The observation is finished when the stream ends.
pub async fn forecast_batch(
    serving: Arc<Serving>,
    limits: ForecastLimits,
    req: pb::ForecastBatchRequest,
    mut obs: Observation,
) -> Result<BatchStream, tonic::Status> {
    let started = (|| {
        let admitted = serving.admit()?;
        let pb::ForecastBatchRequest {
            model_name,
            model_version,
            series,
            horizon_days,
            quantiles,
        } = req;
        // A batch has no one entity: it goes whole to a route drawn at random.
        let routed = routed(&serving, &model_name, &model_version, None, &mut obs)?;
        let plan = plan(routed.live, limits, horizon_days, quantiles)?;
        if series.is_empty() {
            return Err(ServeError::invalid("series", "give at least one series"));
        }
        if series.len() > limits.max_batch_series {
            return Err(ServeError::invalid(
                "series",
                format!(
                    "{} series exceed the maximum of {} per call",
                    series.len(),
                    limits.max_batch_series
                ),
            ));
        }
        let keys = store_keys(&serving, &plan.loaded, &series, true)?;
        Ok((admitted, plan, series, keys))
    })();
    let (admitted, plan, series, keys) = match started {
        Ok(s) => s,
        Err(e) => {
            let status = tonic::Status::from(e);
            obs.finish(&serving.metrics, status.code());
            return Err(status);
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(stream_batch(serving, admitted, plan, series, keys, obs, tx));
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

async fn stream_batch(
    serving: Arc<Serving>,
    _admitted: Admitted,
    plan: Plan,
    series: Vec<pb::SeriesId>,
    keys: Vec<Vec<String>>,
    obs: Observation,
    tx: tokio::sync::mpsc::Sender<Result<pb::ForecastBatchResponse, tonic::Status>>,
) {
    let plan = Arc::new(plan);
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<(Vec<pb::SeriesId>, Vec<Vec<String>>)> = series
        .chunks(CHUNK)
        .zip(keys.chunks(CHUNK))
        .map(|(s, k)| (s.to_vec(), k.to_vec()))
        .collect();
    let mut answers = futures::stream::iter(chunks)
        .map(|(chunk, keys)| forecast_chunk(Arc::clone(&serving), Arc::clone(&plan), chunk, keys))
        .buffered(parallel);
    let mut code = tonic::Code::Ok;
    while let Some(answer) = answers.next().await {
        let failed = answer.as_ref().err().map(tonic::Status::code);
        if tx.send(answer).await.is_err() {
            code = tonic::Code::Cancelled;
            break;
        }
        if let Some(c) = failed {
            code = c;
            break;
        }
    }
    obs.finish(&serving.metrics, code);
}

/// Reads and forecasts one chunk; a failure of the whole chunk (the store down) ends the
/// stream with its status.
async fn forecast_chunk(
    serving: Arc<Serving>,
    plan: Arc<Plan>,
    chunk: Vec<pb::SeriesId>,
    keys: Vec<Vec<String>>,
) -> Result<pb::ForecastBatchResponse, tonic::Status> {
    let histories = read_histories(&serving, &plan.loaded, &keys).await?;
    let work = Arc::clone(&plan);
    let forecasts = tokio::task::spawn_blocking(move || compute_chunk(&work, chunk, histories))
        .await
        .map_err(|e| tonic::Status::internal(format!("forecast task failed: {e}")))??;
    let n = forecasts.iter().filter(|f| f.code == 0).count();
    plan.loaded.metrics.rows.inc_by(n as u64);
    Ok(pb::ForecastBatchResponse {
        model_name: plan.loaded.name.clone(),
        model_version: plan.loaded.version_label.clone(),
        quantiles: plan.quantiles.clone(),
        forecasts,
    })
}

/// Forecasts the series whose histories were read, in one batch call.
fn compute_chunk(
    plan: &Plan,
    chunk: Vec<pb::SeriesId>,
    histories: Vec<Result<History, ServeError>>,
) -> Result<Vec<pb::SeriesForecast>, ServeError> {
    let f = plan.forecaster()?;
    let keys: Vec<Result<Vec<String>, ServeError>> = chunk
        .iter()
        .map(|s| key_of(s, f.key_parts(), "series"))
        .collect();
    let mut ready = Vec::with_capacity(chunk.len());
    for (key, history) in keys.iter().zip(&histories) {
        if let (Ok(key), Ok(h)) = (key, history) {
            ready.push(Series {
                key,
                values: &h.values,
                last_date: Some(h.last_date),
            });
        }
    }
    let mut results = f
        .forecast_batch(&ready, plan.horizon, &plan.quantiles)
        .into_iter();
    let failed = |series: pb::SeriesId, e: ServeError| {
        let status = tonic::Status::from(e);
        pb::SeriesForecast {
            series: Some(series),
            code: status.code() as i32,
            error: status.message().to_string(),
            ..Default::default()
        }
    };
    let mut out = Vec::with_capacity(chunk.len());
    let mut labels = DateLabels::default();
    let mut observed = Vec::new();
    for ((series, key), history) in chunk.into_iter().zip(keys).zip(histories) {
        let label = series_label(&series);
        let (h, result) = match (key, history) {
            (Err(e), _) | (_, Err(e)) => {
                out.push(failed(series, e));
                continue;
            }
            (Ok(_), Ok(h)) => (h, results.next()),
        };
        match result {
            Some(Ok(mut forecast)) => {
                forecast::finish(&mut forecast, &plan.quantiles, true);
                out.push(pb::SeriesForecast {
                    points: points(&forecast, h.last_date, &mut labels)?,
                    history_last_date: h.last_date.format("%Y-%m-%d").to_string(),
                    series: Some(series),
                    code: 0,
                    error: String::new(),
                });
                if plan.loaded.drift.is_some() {
                    observed.push((h.values, forecast.mean));
                }
            }
            Some(Err(e)) => out.push(failed(series, history_error(e, &label, false))),
            None => return Err(ServeError::Internal("a forecast went missing".into())),
        }
    }
    // The chunk's rows go into the drift window at once: one try of its lock, not one
    // per series.
    if let Some(drift) = &plan.loaded.drift {
        let rows: Vec<(&[f64], &[f64])> = observed
            .iter()
            .map(|(h, m)| (h.as_slice(), m.as_slice()))
            .collect();
        drift.observe_forecasts(&rows);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(sku: &str, loc: &str) -> pb::SeriesId {
        pb::SeriesId {
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
