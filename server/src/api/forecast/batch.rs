//! `Forecasting/ForecastBatch`: many series read and forecast in chunks (one store round
//! trip each, computed on the blocking pool a few at a time) and streamed back in order.

use std::sync::Arc;

use futures::StreamExt;
use mercator_proto::v1 as pb;
use mercator_runtime::forecast::{self, Series};

use super::dates::{DateLabels, points};
use super::history::{History, history_error, read_histories, store_keys};
use super::{CHUNK, ForecastLimits, Plan, key_of, plan, routed, series_label};
use crate::error::ServeError;
use crate::serving::{Admitted, Observation, Serving};

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
    let chunks: Vec<(Vec<pb::SeriesId>, Vec<Vec<String>>)> = series
        .chunks(CHUNK)
        .zip(keys.chunks(CHUNK))
        .map(|(s, k)| (s.to_vec(), k.to_vec()))
        .collect();
    let answers = chunks
        .into_iter()
        .map(|(chunk, keys)| forecast_chunk(Arc::clone(&serving), Arc::clone(&plan), chunk, keys));
    let code = send_in_order(answers, &tx).await;
    obs.finish(&serving.metrics, code);
}

/// Runs the chunks' futures a few at a time (one per core) and sends their answers in
/// order, until the last, the first that fails (which ends the stream with its status)
/// or the caller going away; the call's code.
pub(super) async fn send_in_order<T>(
    chunks: impl IntoIterator<Item = impl Future<Output = Result<T, tonic::Status>>>,
    tx: &tokio::sync::mpsc::Sender<Result<T, tonic::Status>>,
) -> tonic::Code {
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut answers = futures::stream::iter(chunks).buffered(parallel);
    while let Some(answer) = answers.next().await {
        let failed = answer.as_ref().err().map(tonic::Status::code);
        if tx.send(answer).await.is_err() {
            return tonic::Code::Cancelled;
        }
        if let Some(c) = failed {
            return c;
        }
    }
    tonic::Code::Ok
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

/// An item's failure in a streamed batch: its gRPC code and message.
pub(super) fn item_status(e: ServeError) -> (i32, String) {
    let status = tonic::Status::from(e);
    (status.code() as i32, status.message().to_string())
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
        let (code, error) = item_status(e);
        pb::SeriesForecast {
            series: Some(series),
            code,
            error,
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
                if let Err(e) = forecast::finish(&mut forecast, &plan.quantiles, true) {
                    out.push(failed(series, history_error(e, &label, false)));
                    continue;
                }
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
