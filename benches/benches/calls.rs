//! What counting every gRPC call costs: a trivial service called directly, and the same
//! service behind `CallLayer` (path lookup, a boxed future, one counter and one
//! histogram). The service answers trailers-only (the status in the headers); a status
//! in the body's trailers adds one match per body frame.

use std::convert::Infallible;

use criterion::{Criterion, criterion_group, criterion_main};
use mercator_server::grpc::calls::CallLayer;
use mercator_server::monitor::calls::CallMetrics;
use tonic::codegen::http;
use tower::{Layer, Service, ServiceExt};

type Response = http::Response<tonic::body::Body>;

fn trailers_only(_: http::Request<()>) -> std::future::Ready<Result<Response, Infallible>> {
    let mut r = http::Response::new(tonic::body::Body::empty());
    r.headers_mut()
        .insert("grpc-status", http::HeaderValue::from_static("0"));
    std::future::ready(Ok(r))
}

fn request() -> http::Request<()> {
    let mut r = http::Request::new(());
    *r.uri_mut() = http::Uri::from_static("/inference.GRPCInferenceService/ModelInfer");
    r
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let registry = prometheus::Registry::new();
    let layer = CallLayer::new(CallMetrics::register(&registry).expect("metrics"));
    let mut group = c.benchmark_group("grpc_call_accounting");
    let mut bare = tower::service_fn(trailers_only);
    group.bench_function("bare service", |b| {
        b.iter(|| rt.block_on(async { bare.ready().await.expect("ready").call(request()).await }))
    });
    let mut counted = layer.layer(tower::service_fn(trailers_only));
    group.bench_function("behind CallLayer", |b| {
        b.iter(|| {
            rt.block_on(async { counted.ready().await.expect("ready").call(request()).await })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
