//! `Inventory/RecommendBatch`: many SKU-locations with one forecaster, in chunks (one
//! store round trip for the chunk's stored histories, computed on the blocking pool a few
//! chunks at a time) streamed back in order, each item with its own status.

use std::sync::Arc;

use super::batch::{BATCH_SHADOWS, send_in_order};
use super::history::{History, read_histories, store_keys};
use super::recommend::{Checked, RecommendSettings, check, compute};
use super::types;
use super::{CHUNK, forecaster_of, model_or_default};
use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::serving::{Ending, Opened, Serving, Target};

/// The stream `RecommendBatch` answers with: chunks in order, or the error that ends it.
pub type RecommendStream =
    tokio_stream::wrappers::ReceiverStream<Result<types::RecommendBatchResponse, ServeError>>;

/// Answers `Inventory/RecommendBatch`: opens its envelope, checks the request, then
/// streams from a task that holds the admission until the last chunk is sent. The
/// envelope closes with the stream.
pub async fn recommend_batch(
    serving: Arc<Serving>,
    ctx: &crate::serving::CallContext,
    settings: RecommendSettings,
    req: types::RecommendBatchRequest,
) -> Result<RecommendStream, ServeError> {
    let types::RecommendBatchRequest {
        model_name,
        model_version,
        items,
    } = req;
    let model = model_or_default(&model_name);
    // A batch has no one entity: it goes whole to a route drawn at random.
    let target = Target {
        model: &model,
        version: &model_version,
        entity: None,
    };
    let opened = serving.open(ctx, super::RECOMMEND_BATCH, BATCH_SHADOWS, target)?;
    let started = (|| {
        forecaster_of(&opened.routed.live)?;
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
        Ok(())
    })();
    if let Err(e) = started {
        opened.close(&serving, Ending::failed(&e));
        return Err(e);
    }
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let loaded = Arc::clone(&opened.routed.live);
    tokio::spawn(stream(serving, settings, opened, loaded, items, tx));
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

async fn stream(
    serving: Arc<Serving>,
    settings: RecommendSettings,
    opened: Opened,
    loaded: Arc<LoadedModel>,
    items: Vec<types::RecommendRequest>,
    tx: tokio::sync::mpsc::Sender<Result<types::RecommendBatchResponse, ServeError>>,
) {
    let chunks: Vec<(usize, Vec<types::RecommendRequest>)> = items
        .chunks(CHUNK)
        .enumerate()
        .map(|(c, chunk)| (c * CHUNK, chunk.to_vec()))
        .collect();
    let (serving_ref, opened_ref) = (&serving, &opened);
    let answers = chunks.into_iter().map(|(first, chunk)| {
        let loaded = Arc::clone(&loaded);
        async move {
            let answer =
                recommend_chunk(Arc::clone(serving_ref), settings, loaded, first, chunk).await;
            if let Ok(answer) = &answer {
                opened_ref.log(serving_ref, || {
                    answer
                        .recommendations
                        .iter()
                        .filter_map(|r| r.recommendation.as_ref())
                        .map(super::recommend::instance)
                        .collect()
                });
            }
            answer
        }
    });
    let ending = send_in_order(answers, &tx).await;
    opened.close(&serving, ending);
}

/// One chunk: items checked, the stored histories read in one call, the rest computed on
/// the blocking pool. A failure of the whole chunk (the store down) ends the stream.
async fn recommend_chunk(
    serving: Arc<Serving>,
    settings: RecommendSettings,
    loaded: Arc<LoadedModel>,
    first: usize,
    chunk: Vec<types::RecommendRequest>,
) -> Result<types::RecommendBatchResponse, ServeError> {
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
    let recommendations = serving
        .place(true, move || {
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
                        Ok(r) => types::ItemRecommendation {
                            index,
                            error: None,
                            recommendation: Some(r),
                        },
                        Err(e) => types::ItemRecommendation {
                            index,
                            error: Some(e),
                            recommendation: None,
                        },
                    }
                })
                .collect()
        })
        .await?;
    Ok(types::RecommendBatchResponse { recommendations })
}
