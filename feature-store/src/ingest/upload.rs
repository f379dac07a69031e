//! Loading a file a client sends instead of naming (a newcomer's CSV in their own folder,
//! on a laptop the server cannot read): the bytes arrive as a stream of chunks. CSV goes
//! straight through the streaming load, in constant memory; Parquet, whose footer comes
//! last, is spooled to a temporary file first and loaded from there.

use std::path::Path;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::{LoadOptions, LoadReport, is_parquet, load_csv, load_url};
use crate::{FeatureError, FeatureStore, Result};

/// Removes a spooled upload however its load ends.
struct Spooled(std::path::PathBuf);

impl Drop for Spooled {
    fn drop(&mut self) {
        // Best effort: a file left behind (a crash) is in the spool folder, swept at start.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Loads into `view` the file `name` (its extension says the format: `.parquet`, else
/// CSV) whose bytes `chunks` yields. Parquet is spooled into `spool_dir`.
pub async fn load_stream<S>(
    store: &FeatureStore,
    view: &str,
    name: &str,
    chunks: S,
    spool_dir: &Path,
    options: LoadOptions,
) -> Result<LoadReport>
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
{
    if !is_parquet(name) {
        let reader = tokio_util::io::StreamReader::new(chunks);
        let bridge = tokio_util::io::SyncIoBridge::new(reader);
        return load_csv(store, view, bridge, &options).await;
    }
    tokio::fs::create_dir_all(spool_dir)
        .await
        .map_err(FeatureError::Io)?;
    let spooled = Spooled(spool_dir.join(format!("{}.parquet", uuid::Uuid::new_v4())));
    let mut file = tokio::fs::File::create(&spooled.0)
        .await
        .map_err(FeatureError::Io)?;
    let mut chunks = chunks;
    while let Some(chunk) = chunks.next().await {
        file.write_all(&chunk.map_err(FeatureError::Io)?)
            .await
            .map_err(FeatureError::Io)?;
    }
    file.flush().await.map_err(FeatureError::Io)?;
    drop(file);
    let location = spooled.0.display().to_string();
    load_url(store, view, &location, options)
        .await
        .map_err(|e| match e {
            // The spool file's name means nothing to the client: name its file.
            FeatureError::InvalidRequest { field, message } if field == "url" => {
                FeatureError::InvalidRequest {
                    field: "upload".into(),
                    message: message.replace(&location, name),
                }
            }
            other => other,
        })
}

/// Removes uploads a crashed server left in `spool_dir`.
pub fn sweep(spool_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(spool_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
}
