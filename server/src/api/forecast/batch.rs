//! `Forecasting/ForecastBatch`: many series read and forecast in chunks (one store round
//! trip each, computed on the blocking pool a few at a time) and streamed back in order.

use std::sync::Arc;

use futures::StreamExt;
use mercator_runtime::forecast::Series;

use super::dates::{DateLabels, points};
use super::history::{History, history_error, read_histories, store_keys};
use super::types;
use super::{CHUNK, ForecastLimits, Plan, key_of, model_or_default, plan, series_label};
use crate::error::ServeError;
use crate::serving::{Ending, Opened, Serving, ShadowPolicy, Target};

/// Streamed batches are not copied to shadow versions: a copy of a batch of up to
/// `limits.max_batch_series` series would double the largest load the server takes on,
/// and a candidate is judged on per-series traffic (`Forecast`, V2) already.
pub(super) const BATCH_SHADOWS: ShadowPolicy = ShadowPolicy::Off(
    "a batch copy would double the largest load; shadows are judged on per-series calls",
);

/// The stream `ForecastBatch` answers with: chunks in order, or the error that ends it.
pub type BatchStream =
    tokio_stream::wrappers::ReceiverStream<Result<types::ForecastBatchResponse, ServeError>>;

/// Answers `Forecasting/ForecastBatch`: opens its envelope, checks the request, then
/// streams the forecasts from a task that holds the admission until the last chunk is
/// sent (or the caller goes away). The envelope closes when the stream ends.
pub async fn forecast_batch(
    serving: Arc<Serving>,
    ctx: &crate::serving::CallContext,
    limits: ForecastLimits,
    req: types::ForecastBatchRequest,
) -> Result<BatchStream, ServeError> {
    let types::ForecastBatchRequest {
        model_name,
        model_version,
        series,
        horizon_days,
        quantiles,
    } = req;
    let model = model_or_default(&model_name);
    // A batch has no one entity: it goes whole to a route drawn at random.
    let target = Target {
        model: &model,
        version: &model_version,
        entity: None,
    };
    let opened = serving.open(ctx, super::FORECAST_BATCH, BATCH_SHADOWS, target)?;
    let started = (|| {
        let plan = plan(
            Arc::clone(&opened.routed.live),
            limits,
            horizon_days,
            quantiles,
        )?;
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
        Ok((plan, keys))
    })();
    let (plan, keys) = match started {
        Ok(s) => s,
        Err(e) => {
            opened.close(&serving, Ending::failed(&e));
            return Err(e);
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(stream_batch(serving, opened, plan, series, keys, tx));
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

async fn stream_batch(
    serving: Arc<Serving>,
    opened: Opened,
    plan: Plan,
    series: Vec<types::SeriesId>,
    keys: Vec<Vec<String>>,
    tx: tokio::sync::mpsc::Sender<Result<types::ForecastBatchResponse, ServeError>>,
) {
    let plan = Arc::new(plan);
    let chunks: Vec<(Vec<types::SeriesId>, Vec<Vec<String>>)> = series
        .chunks(CHUNK)
        .zip(keys.chunks(CHUNK))
        .map(|(s, k)| (s.to_vec(), k.to_vec()))
        .collect();
    let (serving_ref, opened_ref) = (&serving, &opened);
    let answers = chunks.into_iter().map(|(chunk, keys)| {
        let plan = Arc::clone(&plan);
        async move {
            let answer = forecast_chunk(Arc::clone(serving_ref), plan, chunk, keys).await;
            if let Ok(answer) = &answer {
                opened_ref.log(serving_ref, || {
                    answer
                        .forecasts
                        .iter()
                        .filter(|f| f.error.is_none())
                        .flat_map(|f| {
                            let entity = super::log_entity(f.series.as_ref());
                            super::day_instances(entity, &f.points, &answer.quantiles)
                        })
                        .collect()
                });
            }
            answer
        }
    });
    let ending = send_in_order(answers, &tx).await;
    opened.close(&serving, ending);
}

/// Runs the chunks' futures a few at a time (one per core) and sends their answers in
/// order, until the last, the first that fails (which ends the stream with its error)
/// or the caller going away; how the stream ended.
pub(super) async fn send_in_order<T>(
    chunks: impl IntoIterator<Item = impl Future<Output = Result<T, ServeError>>>,
    tx: &tokio::sync::mpsc::Sender<Result<T, ServeError>>,
) -> Ending {
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut answers = futures::stream::iter(chunks).buffered(parallel);
    while let Some(answer) = answers.next().await {
        let failed = answer.as_ref().err().map(Ending::failed);
        if tx.send(answer).await.is_err() {
            return Ending::Cancelled;
        }
        if let Some(ending) = failed {
            return ending;
        }
    }
    Ending::Done
}

/// Reads and forecasts one chunk (on the blocking pool: a chunk is hundreds of series);
/// a failure of the whole chunk (the store down) ends the stream with its error.
async fn forecast_chunk(
    serving: Arc<Serving>,
    plan: Arc<Plan>,
    chunk: Vec<types::SeriesId>,
    keys: Vec<Vec<String>>,
) -> Result<types::ForecastBatchResponse, ServeError> {
    let histories = read_histories(&serving, &plan.loaded, &keys).await?;
    let work = Arc::clone(&plan);
    let forecasts = serving
        .place(true, move || compute_chunk(&work, chunk, histories))
        .await??;
    let n = forecasts.iter().filter(|f| f.error.is_none()).count();
    plan.loaded.metrics.rows.inc_by(n as u64);
    Ok(types::ForecastBatchResponse {
        model_name: plan.loaded.name.clone(),
        model_version: plan.loaded.version_label.clone(),
        quantiles: plan.quantiles.clone(),
        forecasts,
    })
}

/// Forecasts the series whose histories were read, in one batch call.
fn compute_chunk(
    plan: &Plan,
    chunk: Vec<types::SeriesId>,
    histories: Vec<Result<History, ServeError>>,
) -> Result<Vec<types::SeriesForecast>, ServeError> {
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
    let mut results =
        crate::serving::place::forecast_many(&plan.loaded, &ready, plan.horizon, &plan.quantiles)
            .into_iter();
    let failed = |series: types::SeriesId, e: ServeError| types::SeriesForecast {
        series: Some(series),
        error: Some(e),
        history_last_date: String::new(),
        points: Vec::new(),
    };
    let mut out = Vec::with_capacity(chunk.len());
    let mut labels = DateLabels::default();
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
            Some(Ok(forecast)) => out.push(types::SeriesForecast {
                points: points(&forecast, h.last_date, &mut labels)?,
                history_last_date: h.last_date.format("%Y-%m-%d").to_string(),
                series: Some(series),
                error: None,
            }),
            Some(Err(e)) => out.push(failed(series, history_error(e, &label, false))),
            None => return Err(ServeError::Internal("a forecast went missing".into())),
        }
    }
    Ok(out)
}
