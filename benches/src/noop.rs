//! The gRPC floor: a V2 service that answers every call at once without looking at it,
//! for the benchmarks to measure Mercator against in the same run.

use mercator_proto::inference::grpc_inference_service_server::GrpcInferenceService;
use mercator_proto::inference::{self as pb};
use tonic::{Request, Response, Status};

/// A V2 service that answers every call at once without looking at it.
#[derive(Debug, Clone, Copy)]
pub struct NoopV2;

#[tonic::async_trait]
impl GrpcInferenceService for NoopV2 {
    async fn server_live(
        &self,
        _: Request<pb::ServerLiveRequest>,
    ) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }
    async fn server_ready(
        &self,
        _: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        Ok(Response::new(pb::ServerReadyResponse { ready: true }))
    }
    async fn model_ready(
        &self,
        _: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        Ok(Response::new(pb::ModelReadyResponse { ready: true }))
    }
    async fn server_metadata(
        &self,
        _: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        Ok(Response::new(pb::ServerMetadataResponse::default()))
    }
    async fn model_metadata(
        &self,
        _: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        Ok(Response::new(pb::ModelMetadataResponse::default()))
    }
    async fn model_infer(
        &self,
        req: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        Ok(Response::new(pb::ModelInferResponse {
            model_name: req.into_inner().model_name,
            ..Default::default()
        }))
    }
    type ModelStreamInferStream = std::pin::Pin<
        Box<
            dyn futures::Stream<Item = Result<pb::ModelStreamInferResponse, Status>>
                + Send
                + 'static,
        >,
    >;
    async fn model_stream_infer(
        &self,
        req: Request<tonic::Streaming<pb::ModelInferRequest>>,
    ) -> Result<Response<Self::ModelStreamInferStream>, Status> {
        use futures::StreamExt;
        let answers = req.into_inner().map(|m| {
            m.map(|m| pb::ModelStreamInferResponse {
                error_message: String::new(),
                infer_response: Some(pb::ModelInferResponse {
                    model_name: m.model_name,
                    ..Default::default()
                }),
            })
        });
        Ok(Response::new(Box::pin(answers)))
    }
    async fn model_config(
        &self,
        _: Request<pb::ModelConfigRequest>,
    ) -> Result<Response<pb::ModelConfigResponse>, Status> {
        Ok(Response::new(pb::ModelConfigResponse::default()))
    }
    async fn model_statistics(
        &self,
        _: Request<pb::ModelStatisticsRequest>,
    ) -> Result<Response<pb::ModelStatisticsResponse>, Status> {
        Ok(Response::new(pb::ModelStatisticsResponse::default()))
    }
    async fn repository_index(
        &self,
        _: Request<pb::RepositoryIndexRequest>,
    ) -> Result<Response<pb::RepositoryIndexResponse>, Status> {
        Ok(Response::new(pb::RepositoryIndexResponse::default()))
    }
    async fn repository_model_load(
        &self,
        _: Request<pb::RepositoryModelLoadRequest>,
    ) -> Result<Response<pb::RepositoryModelLoadResponse>, Status> {
        Ok(Response::new(pb::RepositoryModelLoadResponse {}))
    }
    async fn repository_model_unload(
        &self,
        _: Request<pb::RepositoryModelUnloadRequest>,
    ) -> Result<Response<pb::RepositoryModelUnloadResponse>, Status> {
        Ok(Response::new(pb::RepositoryModelUnloadResponse {}))
    }
}
