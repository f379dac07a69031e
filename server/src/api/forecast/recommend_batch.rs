//! `Inventory/RecommendBatch`: many SKU-locations with one forecaster, in chunks (one
//! store round trip for the chunk's stored histories, computed on the blocking pool a few
//! chunks at a time) streamed back in order, each item with its own status.

use std::sync::Arc;

use mercator_proto::v1 as pb;

use super::batch::{item_status, send_in_order};
use super::history::{History, read_histories, store_keys};
use super::recommend::{Checked, RecommendSettings, check, compute};
use super::{CHUNK, forecaster_of, routed};
use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::serving::{Admitted, Observation, Serving};

/// The stream `RecommendBatch` answers with.
pub type RecommendStream =
    tokio_stream::wrappers::ReceiverStream<Result<pb::RecommendBatchResponse, tonic::Status>>;

/// Answers `Inventory/RecommendBatch`: checks the request, then streams from a task that
/// holds the admission until the last chunk is sent. The observation ends with the stream.
pub async fn recommend_batch(
    serving: Arc<Serving>,
    settings: RecommendSettings,
    req: pb::RecommendBatchRequest,
    mut obs: Observation,
) -> Result<RecommendStream, tonic::Status> {
    let started = (|| {
        let admitted = serving.admit()?;
        let pb::RecommendBatchRequest {
            model_name,
            model_version,
            items,
        } = req;
        // A batch has no one entity: it goes whole to a route drawn at random.
        let routed = routed(&serving, &model_name, &model_version, None, &mut obs)?;
        forecaster_of(&routed.live)?;
        if items.is_empty() {
            return Err(ServeError::invalid("items", "give at least one item"));
        }
        crate::api::cap(
            "items",
            items.len(),
            "limits.max_batch_series",
            settings.limits.max_batch_series,
            "items",
        )?;
        if let Some(i) = items
            .iter()
            .position(|r| !r.model_name.is_empty() || !r.model_version.is_empty())
        {
            return Err(ServeError::invalid(
                format!("items[{i}].model_name"),
                "the batch names the forecaster: leave the items' model fields empty",
            ));
        }
        Ok((admitted, routed.live, items))
    })();
    let (admitted, loaded, items) = match started {
        Ok(s) => s,
        Err(e) => {
            let status = tonic::Status::from(e);
            obs.finish(&serving.metrics, status.code());
            return Err(status);
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(stream(serving, settings, admitted, loaded, items, obs, tx));
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

async fn stream(
    serving: Arc<Serving>,
    settings: RecommendSettings,
    _admitted: Admitted,
    loaded: Arc<LoadedModel>,
    items: Vec<pb::RecommendRequest>,
    obs: Observation,
    tx: tokio::sync::mpsc::Sender<Result<pb::RecommendBatchResponse, tonic::Status>>,
) {
    let chunks: Vec<(usize, Vec<pb::RecommendRequest>)> = items
        .chunks(CHUNK)
        .enumerate()
        .map(|(c, chunk)| (c * CHUNK, chunk.to_vec()))
        .collect();
    let answers = chunks.into_iter().map(|(first, chunk)| {
        recommend_chunk(
            Arc::clone(&serving),
            settings,
            Arc::clone(&loaded),
            first,
            chunk,
        )
    });
    let code = send_in_order(answers, &tx).await;
    obs.finish(&serving.metrics, code);
}

/// One chunk: items checked, the stored histories read in one call, the rest computed on
/// the blocking pool. A failure of the whole chunk (the store down) ends the stream.
async fn recommend_chunk(
    serving: Arc<Serving>,
    settings: RecommendSettings,
    loaded: Arc<LoadedModel>,
    first: usize,
    chunk: Vec<pb::RecommendRequest>,
) -> Result<pb::RecommendBatchResponse, tonic::Status> {
    let f = forecaster_of(&loaded)?;
    let checked: Vec<Result<Checked, ServeError>> = chunk
        .into_iter()
        .map(|r| check(f, settings.limits, r))
        .collect();
    // The stored histories of the checked items without an inline one, in one read.
    let mut wanted = Vec::new();
    let mut keys = Vec::new();
    let mut keyed: Vec<Option<Result<History, ServeError>>> = Vec::with_capacity(checked.len());
    for (i, c) in checked.iter().enumerate() {
        match c {
            Ok(c) if c.inline.is_none() => {
                match store_keys(&serving, &loaded, std::slice::from_ref(c.series()), false) {
                    Ok(mut k) => {
                        wanted.push(i);
                        keys.append(&mut k);
                        keyed.push(None);
                    }
                    Err(e) => keyed.push(Some(Err(e))),
                }
            }
            Ok(c) => keyed.push(c.inline.clone().map(Ok)),
            Err(_) => keyed.push(None),
        }
    }
    if !keys.is_empty() {
        let read = read_histories(&serving, &loaded, &keys).await?;
        for (i, h) in wanted.into_iter().zip(read) {
            keyed[i] = Some(h);
        }
    }
    let work = Arc::clone(&serving);
    let recommendations = tokio::task::spawn_blocking(move || {
        checked
            .into_iter()
            .zip(keyed)
            .enumerate()
            .map(|(i, (c, h))| {
                let result = match (c, h) {
                    (Err(e), _) => Err(e),
                    (Ok(_), None) => Err(ServeError::Internal("a history went missing".into())),
                    (Ok(_), Some(Err(e))) => Err(e),
                    (Ok(c), Some(Ok(h))) => compute(&work, settings, &loaded, c, h),
                };
                let index = u32::try_from(first + i).unwrap_or(u32::MAX);
                match result {
                    Ok(r) => pb::ItemRecommendation {
                        index,
                        recommendation: Some(r),
                        ..Default::default()
                    },
                    Err(e) => {
                        let (code, error) = item_status(e);
                        pb::ItemRecommendation {
                            index,
                            code,
                            error,
                            recommendation: None,
                        }
                    }
                }
            })
            .collect()
    })
    .await
    .map_err(|e| tonic::Status::internal(format!("recommendation task failed: {e}")))?;
    Ok(pb::RecommendBatchResponse { recommendations })
}
