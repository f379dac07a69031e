//! The streamed loads of `mercator.v1.FeatureStore`: `LoadFileProgress` (a file the
//! server reads, with its progress told as it goes) and `LoadUpload` (a file the client
//! sends, chunk by chunk, within `limits.max_upload_bytes`). The load runs in its own
//! task; progress goes back at most once per written batch, never holding the load up
//! (a message the client is slow to take is skipped: the next one counts further).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use mercator_features::FeatureStore;
use mercator_features::ingest::{LoadReport, RowsDone};
use mercator_proto::v1 as pb;
use tonic::{Status, Streaming};

/// Progress messages, the last one `done` (or the load's error).
pub type ProgressStream = BoxStream<'static, Result<pb::LoadProgress, Status>>;

/// Runs `load` in its own task, handing it the progress reporter, and streams its
/// progress; `bytes` counts what an upload has received so far.
pub fn with_progress<F, Fut>(bytes: Arc<AtomicU64>, load: F) -> ProgressStream
where
    F: FnOnce(RowsDone) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<LoadReport, Status>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let progress = tx.clone();
    let received = Arc::clone(&bytes);
    let rows_done = RowsDone(Some(Arc::new(move |rows: usize| {
        // Full means the client is behind: skip this one, a later one says more.
        let _ = progress.try_send(Ok(pb::LoadProgress {
            rows: rows as u64,
            bytes: received.load(Ordering::Relaxed),
            ..Default::default()
        }));
    })));
    tokio::spawn(async move {
        let last = load(rows_done).await.map(|r| pb::LoadProgress {
            rows: r.rows as u64,
            bytes: bytes.load(Ordering::Relaxed),
            done: true,
            written: r.written as u64,
            ignored_older: r.ignored_older as u64,
        });
        // The client may have gone: nothing to tell then.
        let _ = tx.send(last).await;
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) }).boxed()
}

fn invalid(field: &str, message: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {message}"))
}

/// `LoadUpload`: the request from the first message, then the file's bytes.
pub async fn upload(
    store: Arc<FeatureStore>,
    spool: PathBuf,
    max_bytes: u64,
    mut messages: Streaming<pb::LoadChunk>,
) -> Result<ProgressStream, Status> {
    let first = messages.message().await?.ok_or_else(|| {
        invalid(
            "request",
            "the stream is empty; its first message holds the request",
        )
    })?;
    let pb::LoadFileRequest {
        view,
        url: name,
        default_event_time,
        ignore_unknown_columns,
    } = first
        .request
        .ok_or_else(|| invalid("request", "the first message must hold the request"))?;
    if name.is_empty() || name.len() > 1024 {
        return Err(invalid(
            "request.url",
            "name the file (1 to 1024 bytes; its extension says CSV or Parquet)",
        ));
    }
    let mut options =
        mercator_features::grpc::load_options(default_event_time, ignore_unknown_columns)?;
    let bytes = Arc::new(AtomicU64::new(0));
    let over = Arc::new(AtomicBool::new(false));
    let (counted, too_big) = (Arc::clone(&bytes), Arc::clone(&over));
    let chunks = futures::stream::once(async move { Ok(first.data) })
        .chain(
            messages
                .map_ok(|m| m.data)
                .map_err(|s| s.message().to_string()),
        )
        .map(move |chunk| {
            let data = chunk.map_err(std::io::Error::other)?;
            let total = counted.fetch_add(data.len() as u64, Ordering::Relaxed) + data.len() as u64;
            if total > max_bytes {
                too_big.store(true, Ordering::Relaxed);
                return Err(std::io::Error::other(format!(
                    "the upload is over limits.max_upload_bytes = {max_bytes}"
                )));
            }
            Ok(Bytes::from(data))
        })
        .boxed();
    Ok(with_progress(bytes, move |rows_done| async move {
        options.progress = rows_done;
        let shown = mercator_features::ingest::shown(&name);
        mercator_features::ingest::load_stream(&store, &view, &shown, chunks, &spool, options)
            .await
            .map_err(|e| {
                if over.load(Ordering::Relaxed) {
                    Status::resource_exhausted(format!(
                        "upload: '{shown}' is over limits.max_upload_bytes = {max_bytes} bytes"
                    ))
                } else {
                    Status::from(e)
                }
            })
    }))
}
