//! V2 over HTTP/REST: KServe's REST protocol (health, server and model metadata, model
//! readiness, inference with JSON tensors) with Triton's extensions (binary tensor data,
//! model configuration, statistics, the repository index, load and unload), served on the
//! HTTP listener beside `/metrics`. Each route turns its request into the V2 gRPC message
//! and calls the gRPC method in process ([`gateway`]), so it is checked, counted and
//! answered exactly as over gRPC; errors come back as JSON `{"error": …}` ([`error`]).

pub mod error;
pub mod gateway;
pub mod guard;
pub mod infer;
pub mod meta;
pub mod nonfinite;
pub mod tensors;

use std::io::Read;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use mercator_proto::inference as pb;
use serde_json::Value;
use tracing::Instrument;

use crate::grpc::budget::Charge;
use crate::grpc::connection::ConnectionValues;
use error::RestError;
use gateway::{Caller, Gateway};

/// The V2 gRPC service's method paths.
mod paths {
    pub(super) const SERVER_LIVE: &str = "/inference.GRPCInferenceService/ServerLive";
    pub(super) const SERVER_READY: &str = "/inference.GRPCInferenceService/ServerReady";
    pub(super) const SERVER_METADATA: &str = "/inference.GRPCInferenceService/ServerMetadata";
    pub(super) const MODEL_READY: &str = "/inference.GRPCInferenceService/ModelReady";
    pub(super) const MODEL_METADATA: &str = "/inference.GRPCInferenceService/ModelMetadata";
    pub(super) const MODEL_CONFIG: &str = "/inference.GRPCInferenceService/ModelConfig";
    pub(super) const MODEL_STATISTICS: &str = "/inference.GRPCInferenceService/ModelStatistics";
    pub(super) const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";
    pub(super) const REPOSITORY_INDEX: &str = "/inference.GRPCInferenceService/RepositoryIndex";
    pub(super) const MODEL_LOAD: &str = "/inference.GRPCInferenceService/RepositoryModelLoad";
    pub(super) const MODEL_UNLOAD: &str = "/inference.GRPCInferenceService/RepositoryModelUnload";
}

/// What the routes share.
#[derive(Debug, Clone)]
struct Rest {
    gateway: Gateway,
    /// The largest body taken, compressed or not (`[limits] max_message_bytes`).
    max_body: usize,
}

/// The V2 REST routes over `gateway`, each request first through `guard` (credential,
/// body size, deadline and budgets: [`guard`]).
pub fn routes(gateway: Gateway, guard: guard::Guard) -> axum::Router {
    let max_body = guard.max_body;
    let rest = Rest { gateway, max_body };
    axum::Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/stats", get(all_statistics))
        .route("/v2/models/{name}", get(metadata))
        .route("/v2/models/{name}/versions/{version}", get(metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_ready),
        )
        .route("/v2/models/{name}/config", get(config))
        .route("/v2/models/{name}/versions/{version}/config", get(config))
        .route("/v2/models/{name}/stats", get(statistics))
        .route(
            "/v2/models/{name}/versions/{version}/stats",
            get(statistics),
        )
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer))
        .route("/v2/repository/index", post(index))
        .route("/v2/repository/models/{name}/load", post(load))
        .route("/v2/repository/models/{name}/unload", post(unload))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(guard, guard::guard))
        .layer(axum::middleware::from_fn(traced))
        .with_state(rest)
}

/// A tracing span per REST request, as the gRPC server gives each call, and its request
/// id: the caller's `x-request-id`, or a new one, set on the request (so the gRPC call
/// the route makes carries the same) and echoed on the answer, refusals included.
async fn traced(mut request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use crate::grpc::request_id::{REQUEST_ID, RequestId};
    let id = RequestId::from_headers(request.headers());
    let value = id.header_value();
    if let Some(v) = &value {
        request.headers_mut().insert(REQUEST_ID, v.clone());
    }
    let span = tracing::info_span!("http", path = %request.uri().path(), request_id = %id);
    let mut response = next.run(request).instrument(span).await;
    if let Some(v) = value {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

/// The parts of a request every route hands to the gateway.
type Conn = ConnectInfo<ConnectionValues>;

/// A model route's parameters: `{name}`, and `{version}` on the `/versions/{version}`
/// form of the same route (absent: the champion, or the traffic split for inference).
/// One handler serves both forms.
#[derive(Debug, serde::Deserialize)]
struct ModelPath {
    name: String,
    #[serde(default)]
    version: String,
}

fn json(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn live(State(rest): State<Rest>, headers: HeaderMap, ConnectInfo(c): Conn) -> Response {
    let caller = Caller::new(&headers, c);
    let answer: Result<pb::ServerLiveResponse, _> = rest
        .gateway
        .call(paths::SERVER_LIVE, &pb::ServerLiveRequest {}, &caller)
        .await;
    match answer {
        Ok(r) => readiness(r.live, serde_json::json!({ "live": r.live })),
        Err(status) => RestError::from(status).into_response(),
    }
}

async fn ready(State(rest): State<Rest>, headers: HeaderMap, ConnectInfo(c): Conn) -> Response {
    let caller = Caller::new(&headers, c);
    let answer: Result<pb::ServerReadyResponse, _> = rest
        .gateway
        .call(paths::SERVER_READY, &pb::ServerReadyRequest {}, &caller)
        .await;
    match answer {
        Ok(r) => readiness(r.ready, serde_json::json!({ "ready": r.ready })),
        Err(status) => RestError::from(status).into_response(),
    }
}

/// A health answer: 200 when true, 503 when false (what probes and clients read), with
/// the JSON body KServe's clients read too.
fn readiness(yes: bool, body: Value) -> Response {
    let code = if yes {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, json(body)).into_response()
}

async fn server_metadata(
    State(rest): State<Rest>,
    headers: HeaderMap,
    ConnectInfo(c): Conn,
) -> Result<Response, RestError> {
    let caller = Caller::new(&headers, c);
    let m: pb::ServerMetadataResponse = rest
        .gateway
        .call(
            paths::SERVER_METADATA,
            &pb::ServerMetadataRequest {},
            &caller,
        )
        .await?;
    Ok(json(meta::server_metadata(&m)))
}

async fn metadata(
    State(rest): State<Rest>,
    Path(ModelPath { name, version }): Path<ModelPath>,
    headers: HeaderMap,
    ConnectInfo(c): Conn,
) -> Result<Response, RestError> {
    model_metadata(rest, name, version, Caller::new(&headers, c)).await
}

async fn model_metadata(
    rest: Rest,
    name: String,
    version: String,
    caller: Caller,
) -> Result<Response, RestError> {
    let m: pb::ModelMetadataResponse = rest
        .gateway
        .call(
            paths::MODEL_METADATA,
            &pb::ModelMetadataRequest { name, version },
            &caller,
        )
        .await?;
    Ok(json(meta::model_metadata(&m)))
}

async fn model_ready(
    State(rest): State<Rest>,
    Path(ModelPath { name, version }): Path<ModelPath>,
    headers: HeaderMap,
    ConnectInfo(c): Conn,
) -> Result<Response, RestError> {
    ready_model(rest, name, version, Caller::new(&headers, c)).await
}

async fn ready_model(
    rest: Rest,
    name: String,
    version: String,
    caller: Caller,
) -> Result<Response, RestError> {
    let request = pb::ModelReadyRequest {
        name: name.clone(),
        version,
    };
    let r: pb::ModelReadyResponse = rest
        .gateway
        .call(paths::MODEL_READY, &request, &caller)
        .await?;
    Ok(readiness(
        r.ready,
        serde_json::json!({ "name": name, "ready": r.ready }),
    ))
}

async fn config(
    State(rest): State<Rest>,
    Path(ModelPath { name, version }): Path<ModelPath>,
    headers: HeaderMap,
    ConnectInfo(c): Conn,
) -> Result<Response, RestError> {
    model_config(rest, name, version, Caller::new(&headers, c)).await
}

async fn model_config(
    rest: Rest,
    name: String,
    version: String,
    caller: Caller,
) -> Result<Response, RestError> {
    let r: pb::ModelConfigResponse = rest
        .gateway
        .call(
            paths::MODEL_CONFIG,
            &pb::ModelConfigRequest { name, version },
            &caller,
        )
        .await?;
    Ok(json(meta::model_config(&r.config.unwrap_or_default())))
}

async fn all_statistics(
    State(rest): State<Rest>,
    headers: HeaderMap,
    ConnectInfo(c): Conn,
) -> Result<Response, RestError> {
    model_statistics(rest, String::new(), String::new(), Caller::new(&headers, c)).await
}

async fn statistics(
    State(rest): State<Rest>,
    Path(ModelPath { name, version }): Path<ModelPath>,
    headers: HeaderMap,
    ConnectInfo(c): Conn,
) -> Result<Response, RestError> {
    model_statistics(rest, name, version, Caller::new(&headers, c)).await
}

async fn model_statistics(
    rest: Rest,
    name: String,
    version: String,
    caller: Caller,
) -> Result<Response, RestError> {
    let r: pb::ModelStatisticsResponse = rest
        .gateway
        .call(
            paths::MODEL_STATISTICS,
            &pb::ModelStatisticsRequest { name, version },
            &caller,
        )
        .await?;
    Ok(json(meta::statistics(&r)))
}

async fn infer(
    State(rest): State<Rest>,
    Path(ModelPath { name, version }): Path<ModelPath>,
    headers: HeaderMap,
    ConnectInfo(c): Conn,
    Extension(charge): Extension<Charge>,
    body: Bytes,
) -> Result<Response, RestError> {
    let body = decompressed(&headers, body, rest.max_body, &charge)?;
    model_infer(rest, name, version, headers, c, body).await
}

async fn model_infer(
    rest: Rest,
    name: String,
    version: String,
    headers: HeaderMap,
    values: ConnectionValues,
    body: Bytes,
) -> Result<Response, RestError> {
    let (request, binary) = infer::parse(&name, &version, &headers, &body)?;
    drop(body);
    let caller = Caller::new(&headers, values);
    let response: pb::ModelInferResponse = rest
        .gateway
        .call(paths::MODEL_INFER, &request, &caller)
        .await?;
    infer::respond(&response, &binary)
}

#[derive(Debug, Default, serde::Deserialize)]
struct IndexRequest {
    #[serde(default)]
    ready: bool,
    #[serde(default)]
    repository_name: String,
}

async fn index(
    State(rest): State<Rest>,
    headers: HeaderMap,
    ConnectInfo(c): Conn,
    body: Bytes,
) -> Result<Response, RestError> {
    let asked: IndexRequest = if body.iter().all(u8::is_ascii_whitespace) {
        IndexRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| RestError::invalid("request body", format!("not an index request: {e}")))?
    };
    let request = pb::RepositoryIndexRequest {
        repository_name: asked.repository_name,
        ready: asked.ready,
    };
    let r: pb::RepositoryIndexResponse = rest
        .gateway
        .call(paths::REPOSITORY_INDEX, &request, &Caller::new(&headers, c))
        .await?;
    Ok(json(meta::repository_index(&r)))
}

async fn load(
    State(rest): State<Rest>,
    Path(name): Path<String>,
    headers: HeaderMap,
    ConnectInfo(c): Conn,
    body: Bytes,
) -> Result<Response, RestError> {
    no_load_parameters(&body)?;
    let request = pb::RepositoryModelLoadRequest {
        model_name: name,
        ..Default::default()
    };
    let _: pb::RepositoryModelLoadResponse = rest
        .gateway
        .call(paths::MODEL_LOAD, &request, &Caller::new(&headers, c))
        .await?;
    Ok(json(serde_json::json!({})))
}

async fn unload(
    State(rest): State<Rest>,
    Path(name): Path<String>,
    headers: HeaderMap,
    ConnectInfo(c): Conn,
) -> Result<Response, RestError> {
    let request = pb::RepositoryModelUnloadRequest {
        model_name: name,
        ..Default::default()
    };
    let _: pb::RepositoryModelUnloadResponse = rest
        .gateway
        .call(paths::MODEL_UNLOAD, &request, &Caller::new(&headers, c))
        .await?;
    Ok(json(serde_json::json!({})))
}

/// A load body may be empty or `{}`; parameters (config or file overrides) are refused as
/// over gRPC: versions are immutable registry entries.
fn no_load_parameters(body: &Bytes) -> Result<(), RestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RestError::invalid("request body", format!("not JSON: {e}")))?;
    match value.get("parameters").and_then(Value::as_object) {
        Some(p) if !p.is_empty() => Err(RestError::invalid(
            "parameters",
            "loads take no overrides: register a new version instead",
        )),
        _ => Ok(()),
    }
}

/// The body, inflated when it came with `Content-Encoding: gzip` or `deflate` (as
/// tritonclient sends with `request_compression_algorithm`), never past `limit` bytes;
/// the inflated bytes are charged to the request's budgets too.
fn decompressed(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
    charge: &Charge,
) -> Result<Bytes, RestError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let reader: Box<dyn Read> = match encoding.as_deref() {
        None | Some("identity") => return Ok(body),
        Some("gzip") => Box::new(flate2::read::GzDecoder::new(&body[..])),
        Some("deflate") => Box::new(flate2::read::ZlibDecoder::new(&body[..])),
        Some(other) => {
            return Err(RestError::invalid(
                "Content-Encoding",
                format!("'{other}' is not supported: send gzip, deflate or identity"),
            ));
        }
    };
    let mut out = Vec::new();
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    reader
        .take(limit_u64.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| RestError::invalid("request body", format!("does not inflate: {e}")))?;
    if out.len() > limit {
        return Err(RestError::invalid(
            "request body",
            format!("inflates past {limit} bytes ([limits] max_message_bytes)"),
        ));
    }
    charge.take(out.len())?;
    Ok(Bytes::from(out))
}
