//! `inference.GRPCInferenceService`: the KServe V2 / Open Inference Protocol, plus
//! Triton's `ModelConfig` and `ModelStatistics`. Thin: convert, call, convert.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mercator_proto::inference::{self as pb, grpc_inference_service_server::GrpcInferenceService};
use mercator_runtime::{DType, TensorSpec};
use tonic::{Request, Response, Status, Streaming};

use super::stream_infer::{AnswerStream, StreamLimits};
use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::serving::Serving;
use crate::v2::signature::{self, AdvertisedInput};

/// The V2 service.
#[derive(Debug, Clone)]
pub struct InferenceV2 {
    serving: Arc<Serving>,
    manager: Arc<crate::models::ModelManager>,
    stream: StreamLimits,
}

impl InferenceV2 {
    /// A V2 service over the serving path; the manager answers the repository extension;
    /// each message of an inference stream is held to `stream`.
    pub fn new(
        serving: Arc<Serving>,
        manager: Arc<crate::models::ModelManager>,
        stream: StreamLimits,
    ) -> InferenceV2 {
        InferenceV2 {
            serving,
            manager,
            stream,
        }
    }
}

fn tensor_metadata(specs: &[TensorSpec]) -> Vec<pb::model_metadata_response::TensorMetadata> {
    specs
        .iter()
        .map(|s| pb::model_metadata_response::TensorMetadata {
            name: s.name.clone(),
            datatype: s.datatype.as_str().to_string(),
            shape: s.shape.clone(),
            parameters: Default::default(),
        })
        .collect()
}

/// The inputs as clients are told about them ([`crate::v2::signature`]).
fn input_metadata(inputs: &[AdvertisedInput]) -> Vec<pb::model_metadata_response::TensorMetadata> {
    inputs
        .iter()
        .map(|a| pb::model_metadata_response::TensorMetadata {
            name: a.name.clone(),
            datatype: a.datatype.as_str().to_string(),
            shape: a.shape.clone(),
            parameters: a
                .parameters
                .iter()
                .map(|(k, v)| {
                    let choice = pb::infer_parameter::ParameterChoice::StringParam(v.clone());
                    (
                        (*k).to_string(),
                        pb::InferParameter {
                            parameter_choice: Some(choice),
                        },
                    )
                })
                .collect(),
        })
        .collect()
}

fn data_type(d: DType) -> pb::DataType {
    match d {
        DType::Bool => pb::DataType::TypeBool,
        DType::U8 => pb::DataType::TypeUint8,
        DType::U16 => pb::DataType::TypeUint16,
        DType::U32 => pb::DataType::TypeUint32,
        DType::U64 => pb::DataType::TypeUint64,
        DType::I8 => pb::DataType::TypeInt8,
        DType::I16 => pb::DataType::TypeInt16,
        DType::I32 => pb::DataType::TypeInt32,
        DType::I64 => pb::DataType::TypeInt64,
        DType::F16 => pb::DataType::TypeFp16,
        DType::BF16 => pb::DataType::TypeBf16,
        DType::F32 => pb::DataType::TypeFp32,
        DType::F64 => pb::DataType::TypeFp64,
        DType::Bytes => pb::DataType::TypeString,
    }
}

/// Triton's convention: with batching on, `dims` leave out the batch dimension.
fn dims_without_batch(shape: &[i64]) -> Vec<i64> {
    shape.get(1..).unwrap_or_default().to_vec()
}

fn platform(model: &LoadedModel) -> String {
    format!("mercator_{}", model.model.kind())
}

fn duration(t: &crate::models::table::Tally) -> Option<pb::StatisticDuration> {
    let (count, ns) = t.get();
    Some(pb::StatisticDuration { count, ns })
}

fn statistics(m: &LoadedModel) -> pb::ModelStatistics {
    let s = &m.stats;
    pb::ModelStatistics {
        name: m.name.clone(),
        version: m.version_label.clone(),
        last_inference: s.last_inference_ms.load(Ordering::Relaxed),
        inference_count: s.inference_count.load(Ordering::Relaxed),
        execution_count: s.execution_count.load(Ordering::Relaxed),
        inference_stats: Some(pb::InferStatistics {
            success: duration(&s.success),
            fail: duration(&s.fail),
            queue: duration(&s.queue),
            compute_input: duration(&s.compute_input),
            compute_infer: duration(&s.compute_infer),
            compute_output: duration(&s.compute_output),
            cache_hit: None,
            cache_miss: None,
        }),
        batch_stats: s
            .batches
            .seen()
            .into_iter()
            .map(|(batch_size, [input, infer, output])| {
                let d = |(count, ns)| Some(pb::StatisticDuration { count, ns });
                pb::InferBatchStatistics {
                    batch_size,
                    compute_input: d(input),
                    compute_infer: d(infer),
                    compute_output: d(output),
                }
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for InferenceV2 {
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
        Ok(Response::new(pb::ServerReadyResponse {
            ready: self.serving.models.is_ready(),
        }))
    }

    async fn model_ready(
        &self,
        req: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        let pb::ModelReadyRequest { name, version } = req.into_inner();
        let ready = self.serving.models.resolve(&name, &version).is_ok();
        Ok(Response::new(pb::ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        Ok(Response::new(pb::ServerMetadataResponse {
            name: "mercator".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            // Only what works: no shared memory, no classification, no sequences.
            extensions: vec![
                "model_configuration".into(),
                "statistics".into(),
                "model_repository".into(),
                "binary_tensor_data".into(),
                "parameters".into(),
            ],
        }))
    }

    async fn model_metadata(
        &self,
        req: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        let pb::ModelMetadataRequest { name, version } = req.into_inner();
        let table = self.serving.models.snapshot();
        let result = table.resolve(&name, &version).map(|m| {
            let versions = table
                .models
                .get(&name)
                .map(|e| e.versions.keys().map(u64::to_string).collect())
                .unwrap_or_default();
            let response = pb::ModelMetadataResponse {
                name: m.name.clone(),
                versions,
                platform: platform(&m),
                inputs: input_metadata(&signature::inputs(&m, &self.serving.features)),
                outputs: tensor_metadata(m.model.outputs()),
            };
            (m, response)
        });
        super::observed::observed(
            &self.serving.metrics,
            "ModelMetadata",
            result.map(|(m, r)| (Some(m), r)),
        )
    }

    async fn model_infer(
        &self,
        req: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        let ctx = super::request_id::context(&req);
        let answer = crate::v2::infer(&self.serving, &ctx, req.into_inner()).await?;
        Ok(Response::new(answer))
    }

    type ModelStreamInferStream = AnswerStream;

    async fn model_stream_infer(
        &self,
        req: Request<Streaming<pb::ModelInferRequest>>,
    ) -> Result<Response<AnswerStream>, Status> {
        Ok(Response::new(super::stream_infer::answer(
            Arc::clone(&self.serving),
            self.stream.clone(),
            req,
        )))
    }

    async fn model_config(
        &self,
        req: Request<pb::ModelConfigRequest>,
    ) -> Result<Response<pb::ModelConfigResponse>, Status> {
        let pb::ModelConfigRequest { name, version } = req.into_inner();
        let result = self.serving.models.resolve(&name, &version).map(|m| {
            let config = pb::ModelConfig {
                name: m.name.clone(),
                platform: platform(&m),
                backend: "mercator".into(),
                max_batch_size: i32::try_from(m.max_batch_size).unwrap_or(i32::MAX),
                input: signature::inputs(&m, &self.serving.features)
                    .into_iter()
                    .map(|a| pb::ModelInput {
                        name: a.name,
                        data_type: data_type(a.datatype) as i32,
                        format: pb::model_input::Format::None as i32,
                        dims: dims_without_batch(&a.shape),
                        optional: a.optional,
                    })
                    .collect(),
                output: m
                    .model
                    .outputs()
                    .iter()
                    .map(|s| pb::ModelOutput {
                        name: s.name.clone(),
                        data_type: data_type(s.datatype) as i32,
                        dims: dims_without_batch(&s.shape),
                        label_filename: String::new(),
                    })
                    .collect(),
                dynamic_batching: m.batcher.as_ref().map(|b| {
                    let s = b.settings();
                    pb::ModelDynamicBatching {
                        preferred_batch_size: s
                            .preferred
                            .as_slice()
                            .iter()
                            .map(|&p| i32::try_from(p).unwrap_or(i32::MAX))
                            .collect(),
                        max_queue_delay_microseconds: s.delay.as_micros() as u64,
                        preserve_ordering: true,
                        default_queue_policy: Some(pb::ModelQueuePolicy {
                            max_queue_size: u32::try_from(s.max_queue).unwrap_or(u32::MAX),
                            ..Default::default()
                        }),
                    }
                }),
            };
            (
                m,
                pb::ModelConfigResponse {
                    config: Some(config),
                },
            )
        });
        super::observed::observed(
            &self.serving.metrics,
            "ModelConfig",
            result.map(|(m, r)| (Some(m), r)),
        )
    }

    async fn model_statistics(
        &self,
        req: Request<pb::ModelStatisticsRequest>,
    ) -> Result<Response<pb::ModelStatisticsResponse>, Status> {
        let pb::ModelStatisticsRequest { name, version } = req.into_inner();
        let table = self.serving.models.snapshot();
        let model_stats = if name.is_empty() {
            table.all().map(|m| statistics(m)).collect()
        } else if version.is_empty() {
            let entry = table
                .models
                .get(&name)
                .ok_or_else(|| Status::from(ServeError::ModelNotFound(name.clone())))?;
            entry.versions.values().map(|m| statistics(m)).collect()
        } else {
            vec![statistics(
                table
                    .resolve(&name, &version)
                    .map_err(Status::from)?
                    .as_ref(),
            )]
        };
        Ok(Response::new(pb::ModelStatisticsResponse { model_stats }))
    }

    async fn repository_index(
        &self,
        req: Request<pb::RepositoryIndexRequest>,
    ) -> Result<Response<pb::RepositoryIndexResponse>, Status> {
        let pb::RepositoryIndexRequest {
            repository_name,
            ready,
        } = req.into_inner();
        one_repository(&repository_name)?;
        let models = self
            .manager
            .index()
            .await?
            .into_iter()
            .filter(|e| e.ready || !ready)
            .map(|e| pb::repository_index_response::ModelIndex {
                name: e.name,
                version: e.version,
                state: if e.ready { "READY" } else { "UNAVAILABLE" }.into(),
                reason: e.reason,
            })
            .collect();
        Ok(Response::new(pb::RepositoryIndexResponse { models }))
    }

    async fn repository_model_load(
        &self,
        req: Request<pb::RepositoryModelLoadRequest>,
    ) -> Result<Response<pb::RepositoryModelLoadResponse>, Status> {
        let pb::RepositoryModelLoadRequest {
            repository_name,
            model_name,
            parameters,
        } = req.into_inner();
        one_repository(&repository_name)?;
        no_overrides(&parameters)?;
        self.manager.load_model(&model_name).await?;
        Ok(Response::new(pb::RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        req: Request<pb::RepositoryModelUnloadRequest>,
    ) -> Result<Response<pb::RepositoryModelUnloadResponse>, Status> {
        let pb::RepositoryModelUnloadRequest {
            repository_name,
            model_name,
            parameters,
        } = req.into_inner();
        one_repository(&repository_name)?;
        // `unload_dependents` only matters to ensembles, which Mercator has none of.
        let _ = parameters;
        self.manager.unload_model(&model_name).await?;
        Ok(Response::new(pb::RepositoryModelUnloadResponse {}))
    }
}

/// Mercator has one repository, the registry: an empty name or `registry` is it.
fn one_repository(name: &str) -> Result<(), Status> {
    if name.is_empty() || name == "registry" {
        Ok(())
    } else {
        Err(ServeError::invalid(
            "repository_name",
            format!(
                "unknown repository '{name}': Mercator serves one, the registry (leave it empty)"
            ),
        )
        .into())
    }
}

/// Triton lets a load override a model's config or files; Mercator's versions are
/// immutable registry entries, so a load takes no overrides.
fn no_overrides(
    parameters: &std::collections::HashMap<String, pb::ModelRepositoryParameter>,
) -> Result<(), Status> {
    match parameters.keys().next() {
        None => Ok(()),
        Some(key) => Err(ServeError::invalid(
            format!("parameters[{key}]"),
            "loads take no overrides: register a new version instead",
        )
        .into()),
    }
}
