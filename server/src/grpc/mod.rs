//! The gRPC surface: one file per service, assembled into one layered service here with
//! the cross-cutting parts added once: call metrics, authentication and scopes, message
//! size limits, gzip, a tracing span per request, health checking and reflection. The
//! same layered service answers the gRPC listener and, in process, V2 over HTTP
//! (`rest/`), so both protocols pass the same checks and are counted the same way.

pub mod budget;
pub mod calls;
pub mod churn;
pub mod connection;
pub mod deadline;
pub mod feature_load;
pub mod feature_store;
pub mod forecasting;
pub mod inference_v2;
pub mod intent;
pub mod inventory;
pub mod monitoring;
mod observed;
pub mod outcomes;
pub mod registry;
pub mod request_id;
pub mod status_text;
pub mod stream_infer;

use std::sync::Arc;

use mercator_proto::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
use mercator_proto::v1::churn_server::ChurnServer;
use mercator_proto::v1::feature_store_server::FeatureStoreServer;
use mercator_proto::v1::forecasting_server::ForecastingServer;
use mercator_proto::v1::intent_server::IntentServer;
use mercator_proto::v1::inventory_server::InventoryServer;
use mercator_proto::v1::monitoring_server::MonitoringServer;
use mercator_proto::v1::outcomes_server::OutcomesServer;
use mercator_proto::v1::registry_server::RegistryServer;
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;

use budget::{Budget, BudgetLayer};
use connection::{Connection, ConnectionLayer};
use deadline::{Deadline, DeadlineLayer};
use status_text::{StatusText, StatusTextLayer};

use crate::auth::layer::Auth;
use crate::auth::{AuthLayer, Verifier};
use crate::config::Config;
use crate::models::ModelManager;
use crate::serving::Serving;

/// Applies the same size limits and compression to a generated service.
macro_rules! with_limits {
    ($service:expr, $config:expr) => {
        $service
            .max_decoding_message_size($config.limits.max_message_bytes)
            .max_encoding_message_size($config.limits.max_message_bytes)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
    };
}

/// Every service behind its layers: each call handed its connection's values by
/// [`ConnectionLayer`], given its request id by [`request_id::RequestIdLayer`] (echoed
/// in the response, refusals too), counted by [`calls::CallLayer`] (refusals too), its error text
/// bounded by [`StatusTextLayer`], checked by [`AuthLayer`], given its deadline by
/// [`DeadlineLayer`], and its body put on the buffered-bytes budgets by [`BudgetLayer`].
pub type GrpcService =
    Connection<request_id::RequestIds<calls::Calls<StatusText<Auth<Deadline<Budget<Routes>>>>>>>;

/// What [`router`] builds: the transport's settings, the layered service, and the health
/// service's reporter.
#[derive(Debug)]
pub struct Grpc {
    /// HTTP/2 settings for the gRPC listener (`listen::serve_grpc`).
    pub server: Server,
    /// The services behind their layers; cheap to clone.
    pub service: GrpcService,
    /// Sets each service's health.
    pub health: HealthReporter,
    /// The buffered-bytes budgets the layers charge, which REST bodies share.
    pub budget: BudgetLayer,
}

/// The per-principal rate limits of `[auth] rate_limits`, when any are set.
fn rate_limits(config: &Config) -> anyhow::Result<Option<Arc<crate::auth::rate::RateLimits>>> {
    let rates = config.auth.rates().map_err(anyhow::Error::msg)?;
    Ok((!rates.is_empty()).then(|| Arc::new(crate::auth::rate::RateLimits::new(rates))))
}

/// Builds every service behind the layers, and the gRPC listener's settings.
pub fn router(
    config: &Config,
    serving: Arc<Serving>,
    registry: mercator_registry::Registry,
    manager: Arc<ModelManager>,
    features: Arc<mercator_features::FeatureStore>,
    watchers: monitoring::Watchers,
    verifier: Option<Arc<Verifier>>,
) -> anyhow::Result<Grpc> {
    let metrics = serving.metrics.clone();
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mercator_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mercator_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let grpc = &config.grpc;
    let rates = rate_limits(config)?;
    let mut server = Server::builder();
    if let Some(age) = grpc.max_connection_age() {
        server = server
            .max_connection_age(age)
            .max_connection_age_grace(grpc.request_timeout());
    }
    let server = server
        .max_concurrent_streams(grpc.max_concurrent_streams)
        .http2_max_header_list_size(grpc.max_header_list_bytes)
        .http2_keepalive_interval(grpc.keepalive_interval())
        .http2_keepalive_timeout(Some(grpc.keepalive_timeout()))
        .trace_fn(|req| tracing::info_span!("grpc", path = %req.uri().path()));
    let budget = BudgetLayer::new(
        grpc.max_buffered_request_bytes,
        config.limits.max_unauthenticated_body_bytes,
    );
    let layers = tower::ServiceBuilder::new()
        .layer(ConnectionLayer)
        .layer(request_id::RequestIdLayer)
        .layer(calls::CallLayer::new(metrics.calls.clone()))
        .layer(StatusTextLayer)
        .layer(AuthLayer::new(
            verifier,
            config.auth.protect_reflection,
            rates.clone(),
        ))
        .layer(DeadlineLayer::new(grpc.request_timeout()))
        .layer(budget.clone());
    let routes = Routes::new(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(with_limits!(
            GrpcInferenceServiceServer::new(inference_v2::InferenceV2::new(
                Arc::clone(&serving),
                Arc::clone(&manager),
                stream_infer::StreamLimits {
                    rates,
                    message_timeout: grpc.request_timeout(),
                },
            )),
            config
        ))
        .add_service(with_limits!(
            ChurnServer::new(churn::ChurnService::new(
                Arc::clone(&serving),
                config.limits.max_score_customers
            )),
            config
        ))
        .add_service(with_limits!(
            ForecastingServer::new(forecasting::ForecastingService::new(
                Arc::clone(&serving),
                config.limits.forecast()
            )),
            config
        ))
        .add_service(with_limits!(
            InventoryServer::new(inventory::InventoryService::new(
                Arc::clone(&serving),
                crate::api::forecast::RecommendSettings {
                    limits: config.limits.forecast(),
                    approval_order_value: (config.serving.approval_order_value > 0.0)
                        .then_some(config.serving.approval_order_value),
                }
            )),
            config
        ))
        .add_service(with_limits!(
            MonitoringServer::new(monitoring::MonitoringService::new(
                Arc::clone(&serving.models),
                watchers.clone(),
                metrics.clone(),
                config.drift.min_samples,
            )),
            config
        ))
        .add_service(with_limits!(
            OutcomesServer::new(outcomes::OutcomesService::new(
                watchers.judge,
                metrics.clone()
            )),
            config
        ))
        .add_service(with_limits!(
            IntentServer::new(intent::IntentService::new(
                serving,
                config.limits.max_text_bytes
            )),
            config
        ))
        .add_service(with_limits!(
            RegistryServer::new(registry::RegistryService::new(
                registry,
                Some(manager),
                Some(metrics.object_store_errors.clone()),
            )),
            config
        ))
        .add_service(with_limits!(
            FeatureStoreServer::new(feature_store::FeatureStoreService::new(
                features,
                metrics,
                mercator_features::ingest::Roots::new(config.load_roots())?,
                config.limits.max_push_rows,
                config.limits.max_upload_bytes,
                config.server.data_dir.join("tmp").join("uploads"),
            )),
            config
        ))
        .prepare();
    Ok(Grpc {
        server,
        service: layers.service(routes),
        health: health_reporter,
        budget,
    })
}
