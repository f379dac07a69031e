//! `mercator features load` through a server. A file this machine has is uploaded
//! (`LoadUpload`, streamed in 1 MiB chunks, so it need not be inside the server's load
//! roots, nor on its machine); a URL, or a path this machine does not have, is read by
//! the server (`LoadFileProgress`, inside its roots). Either way the rows loaded so far
//! are counted on a terminal as the server writes them.

use std::path::Path;

use anyhow::Context;
use futures::StreamExt;
use mercator_proto::v1::{self as pb, feature_store_client::FeatureStoreClient};

use super::progress::Progress;
use super::remote::Transport;

/// Bytes per upload message: well inside any `limits.max_message_bytes`.
const CHUNK_BYTES: usize = 1024 * 1024;

/// Whether `location` names a file here (not a URL).
fn local_file(location: &str) -> bool {
    let is_url = url::Url::parse(location).is_ok_and(|u| u.scheme().len() > 1);
    !is_url && Path::new(location).is_file()
}

/// Loads `req` through the server, uploading the file when this machine has it.
pub(super) async fn remote(
    mut client: FeatureStoreClient<Transport>,
    req: pb::LoadFileRequest,
) -> anyhow::Result<pb::LoadFileResponse> {
    let status = super::models::status;
    let (progress, answers, read_error) = if local_file(&req.url) {
        let path = req.url.clone();
        let file = tokio::fs::File::open(&path)
            .await
            .with_context(|| format!("cannot read {path}"))?;
        let name = Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.clone());
        let progress = Progress::counter(format!("uploading {path} into {}", req.view), "rows");
        let first = pb::LoadChunk {
            request: Some(pb::LoadFileRequest { url: name, ..req }),
            data: Vec::new(),
        };
        // A read error must not end the upload as if the file ended there (a CSV cut at
        // a line would load short): it is handed to the loop below, which drops the
        // call, and the server's load fails on the cancelled stream.
        let (failed, read_error) = tokio::sync::oneshot::channel::<std::io::Error>();
        let mut failed = Some(failed);
        let data = tokio_util::io::ReaderStream::with_capacity(file, CHUNK_BYTES).filter_map(
            move |chunk| {
                let message = match chunk {
                    Ok(data) => Some(pb::LoadChunk {
                        request: None,
                        data: data.to_vec(),
                    }),
                    Err(e) => {
                        if let Some(tx) = failed.take() {
                            let _ = tx.send(e);
                        }
                        None
                    }
                };
                async move {
                    match message {
                        Some(m) => Some(m),
                        None => futures::future::pending().await,
                    }
                }
            },
        );
        let messages = futures::stream::once(async { first }).chain(data);
        let answers = client.load_upload(messages).await.map_err(status)?;
        (progress, answers.into_inner(), Some(read_error))
    } else {
        let progress = Progress::counter(
            format!("the server is loading {} into {}", req.url, req.view),
            "rows",
        );
        let answers = client.load_file_progress(req).await.map_err(status)?;
        (progress, answers.into_inner(), None)
    };
    let set = progress.setter();
    let mut answers = answers;
    let read_error = async {
        match read_error {
            Some(rx) => rx.await.ok(),
            None => None,
        }
    };
    tokio::pin!(read_error);
    let mut reading = true;
    loop {
        let answer = tokio::select! {
            answer = answers.next() => answer,
            e = &mut read_error, if reading => match e {
                Some(e) => return Err(anyhow::Error::new(e).context("reading the file to upload")),
                None => { reading = false; continue; }
            },
        };
        let Some(answer) = answer else { break };
        let p = answer.map_err(status)?;
        set(usize::try_from(p.rows).unwrap_or(usize::MAX));
        if p.done {
            progress.finish();
            return Ok(pb::LoadFileResponse {
                rows: p.rows,
                written: p.written,
                ignored_older: p.ignored_older,
            });
        }
    }
    anyhow::bail!("the server ended the load without saying how it went")
}
