//! `mercator.v1.FeatureStore`: thin handlers over the feature store (which keeps its own
//! blocking work, such as fsync, off the reactor).

use std::sync::Arc;

use mercator_features::FeatureStore;
use mercator_features::grpc::{definitions_to_pb, feature_vector, push_rows_from_pb};
use mercator_proto::v1::{self as pb, feature_store_server::FeatureStore as FeatureStoreApi};
use tonic::{Request, Response, Status};

use crate::monitor::Metrics;

/// The feature store service.
#[derive(Debug, Clone)]
pub struct FeatureStoreService {
    store: Arc<FeatureStore>,
    metrics: Metrics,
    /// Where `LoadFile` may read.
    roots: mercator_features::ingest::Roots,
    /// `limits.max_push_rows`.
    max_push_rows: usize,
    /// `limits.max_upload_bytes`.
    max_upload_bytes: u64,
    /// Where uploaded Parquet files wait while they load (`<data_dir>/tmp/uploads`).
    spool: std::path::PathBuf,
}

impl FeatureStoreService {
    /// A service over `store`, loading files only from inside `roots`, taking pushes
    /// of up to `max_push_rows` and uploads of up to `max_upload_bytes` (Parquet ones
    /// spooled in `spool`, which is emptied of a previous run's leftovers here).
    pub fn new(
        store: Arc<FeatureStore>,
        metrics: Metrics,
        roots: mercator_features::ingest::Roots,
        max_push_rows: usize,
        max_upload_bytes: u64,
        spool: std::path::PathBuf,
    ) -> FeatureStoreService {
        mercator_features::ingest::sweep(&spool);
        FeatureStoreService {
            store,
            metrics,
            roots,
            max_push_rows,
            max_upload_bytes,
            spool,
        }
    }
}

impl FeatureStoreService {
    /// A load the server reads itself: the view, the location resolved inside the load
    /// roots (refused outside them), and the options.
    fn server_side(
        &self,
        req: pb::LoadFileRequest,
    ) -> Result<(String, String, mercator_features::ingest::LoadOptions), Status> {
        let pb::LoadFileRequest {
            view,
            url,
            default_event_time,
            ignore_unknown_columns,
        } = req;
        let url = self.roots.resolve("url", &url)?;
        let options =
            mercator_features::grpc::load_options(default_event_time, ignore_unknown_columns)?;
        Ok((view, url, options))
    }
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Entity rows per streamed chunk of historical features.
const HISTORICAL_CHUNK_ROWS: usize = 1024;

#[tonic::async_trait]
impl FeatureStoreApi for FeatureStoreService {
    type GetHistoricalFeaturesStream =
        futures::stream::BoxStream<'static, Result<pb::GetHistoricalFeaturesResponse, Status>>;

    async fn get_historical_features(
        &self,
        req: Request<pb::GetHistoricalFeaturesRequest>,
    ) -> Result<Response<Self::GetHistoricalFeaturesStream>, Status> {
        let pb::GetHistoricalFeaturesRequest {
            features,
            entity_rows,
        } = req.into_inner();
        let rows = mercator_features::grpc::entity_rows_from_pb(entity_rows)?;
        let results = self.store.get_historical(&features, &rows).await?;
        let mut chunks = Vec::with_capacity(results.len() / HISTORICAL_CHUNK_ROWS + 1);
        let mut results = results.into_iter().peekable();
        let mut first_row = 0;
        // An empty request still gets one chunk naming the features.
        while first_row == 0 || results.peek().is_some() {
            let chunk: Vec<_> = results
                .by_ref()
                .take(HISTORICAL_CHUNK_ROWS)
                .map(feature_vector)
                .collect();
            let n = chunk.len();
            chunks.push(Ok(pb::GetHistoricalFeaturesResponse {
                features: if first_row == 0 {
                    features.clone()
                } else {
                    Vec::new()
                },
                first_row: first_row as u64,
                results: chunk,
            }));
            first_row += n.max(1);
        }
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    async fn apply_definitions(
        &self,
        req: Request<pb::ApplyDefinitionsRequest>,
    ) -> Result<Response<pb::ApplyDefinitionsResponse>, Status> {
        let actor = crate::auth::actor(&req, "");
        let pb::ApplyDefinitionsRequest {
            toml,
            dry_run,
            allow_removals,
        } = req.into_inner();
        let options = mercator_features::ApplyOptions {
            dry_run,
            allow_removals,
            actor,
        };
        let changes = self.store.apply_with(&toml, &options).await?;
        Ok(Response::new(pb::ApplyDefinitionsResponse { changes }))
    }

    async fn list_definitions(
        &self,
        _: Request<pb::ListDefinitionsRequest>,
    ) -> Result<Response<pb::ListDefinitionsResponse>, Status> {
        let (defs, toml) = self.store.definitions();
        Ok(Response::new(definitions_to_pb(&defs, toml)))
    }

    async fn push(
        &self,
        req: Request<pb::PushRequest>,
    ) -> Result<Response<pb::PushResponse>, Status> {
        let pb::PushRequest { view, rows } = req.into_inner();
        // Bigger loads go through LoadFile, or several pushes.
        crate::api::cap(
            "rows",
            rows.len(),
            "limits.max_push_rows",
            self.max_push_rows,
            "rows",
        )?;
        let rows = push_rows_from_pb(rows)?;
        let outcome = self.store.push(&view, &rows).await?;
        Ok(Response::new(pb::PushResponse {
            written: outcome.written as u64,
            ignored_older: outcome.ignored_older as u64,
        }))
    }

    async fn load_file(
        &self,
        req: Request<pb::LoadFileRequest>,
    ) -> Result<Response<pb::LoadFileResponse>, Status> {
        let (view, url, options) = self.server_side(req.into_inner())?;
        let report = mercator_features::ingest::load_url(&self.store, &view, &url, options).await?;
        Ok(Response::new(pb::LoadFileResponse {
            rows: report.rows as u64,
            written: report.written as u64,
            ignored_older: report.ignored_older as u64,
        }))
    }

    type LoadFileProgressStream = super::feature_load::ProgressStream;

    async fn load_file_progress(
        &self,
        req: Request<pb::LoadFileRequest>,
    ) -> Result<Response<Self::LoadFileProgressStream>, Status> {
        let (view, url, mut options) = self.server_side(req.into_inner())?;
        let store = Arc::clone(&self.store);
        let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        Ok(Response::new(super::feature_load::with_progress(
            bytes,
            move |rows_done| async move {
                options.progress = rows_done;
                Ok(mercator_features::ingest::load_url(&store, &view, &url, options).await?)
            },
        )))
    }

    type LoadUploadStream = super::feature_load::ProgressStream;

    async fn load_upload(
        &self,
        req: Request<tonic::Streaming<pb::LoadChunk>>,
    ) -> Result<Response<Self::LoadUploadStream>, Status> {
        let stream = super::feature_load::upload(
            Arc::clone(&self.store),
            self.spool.clone(),
            self.max_upload_bytes,
            req.into_inner(),
        )
        .await?;
        Ok(Response::new(stream))
    }

    async fn get_online_features(
        &self,
        req: Request<pb::GetOnlineFeaturesRequest>,
    ) -> Result<Response<pb::GetOnlineFeaturesResponse>, Status> {
        let pb::GetOnlineFeaturesRequest { features, entities } = req.into_inner();
        let keys: Vec<Vec<String>> = entities.into_iter().map(|e| e.values).collect();
        for (i, key) in keys.iter().enumerate() {
            for (j, value) in key.iter().enumerate() {
                crate::serving::lookup::check_key(format!("entities[{i}].values[{j}]"), value)
                    .map_err(Status::from)?;
            }
        }
        let started = std::time::Instant::now();
        let results = self
            .store
            .get_online(&features, &keys, now_micros())
            .await?;
        self.metrics
            .feature_lookup_duration
            .observe(started.elapsed().as_secs_f64());
        crate::serving::lookup::count_statuses(&self.metrics, &features, &results);
        Ok(Response::new(pb::GetOnlineFeaturesResponse {
            features,
            results: results.into_iter().map(feature_vector).collect(),
        }))
    }
}
