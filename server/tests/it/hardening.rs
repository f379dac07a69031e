//! What an outside attack on the listeners found (issue 28), each reproduced and refused:
//! a shape claiming 2^40 rows, credential-less uploads holding the memory keyed callers
//! need, idle and half-sent connections taking every descriptor, a split serving an
//! unapproved version, expired certificates, duplicate credentials, megabyte entity keys,
//! and the defaults that left metrics and reflection open.

use std::net::SocketAddr;
use std::time::Duration;

use mercator_proto::inference as v2;
use mercator_registry::NewVersion;
use mercator_registry::model::TrafficRoute;
use mercator_server::auth::Scope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::auth::key;
use crate::harness::{TestServer, bearer};

/// A raw HTTP/1.1 request and the status line's code and the body.
pub(crate) async fn http(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write");
    // The server may answer (and close) before taking the whole body.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await;
    let raw = String::from_utf8_lossy(&raw).to_string();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw)
}

fn post(addr: SocketAddr, path: &str, token: Option<&str>, length: usize) -> String {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )
}

const BOMB: &str = r#"{"inputs":[{"name":"features","shape":[1099511627776,12],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0]}]}"#;

async fn secured(
    tweak: impl FnOnce(&mut mercator_server::config::Config) + Send + 'static,
) -> TestServer {
    TestServer::builder()
        .churn()
        .config(|c| {
            c.auth.mode = "required".into();
            c.auth.key_cache_secs = 0.0;
            tweak(c);
        })
        .start()
        .await
}

#[tokio::test]
async fn a_shape_claiming_two_to_the_forty_rows_is_refused_and_the_server_lives() {
    let server = secured(|_| {}).await;
    let infer = key(&server, "infer", &[Scope::Infer]).await;
    let path = "/v2/models/churn/infer";
    // No credential: refused from the headers, before the body is read.
    let (status, raw) = http(
        server.metrics,
        &post(server.metrics, path, None, BOMB.len()),
        BOMB.as_bytes(),
    )
    .await;
    assert_eq!(status, 401, "{raw}");
    // With one: the shape is checked against the data actually sent, field named.
    let (status, raw) = http(
        server.metrics,
        &post(server.metrics, path, Some(&infer), BOMB.len()),
        BOMB.as_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{raw}");
    assert!(raw.contains("inputs[features].data"), "{raw}");
    assert!(raw.contains("holds 12 elements"), "{raw}");
    // Over gRPC, the same claim with 48 bytes of raw contents.
    let request = v2::ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![v2::model_infer_request::InferInputTensor {
            name: "features".into(),
            datatype: "FP32".into(),
            shape: vec![1 << 40, 12],
            ..Default::default()
        }],
        raw_input_contents: vec![vec![0u8; 48]],
        ..Default::default()
    };
    let mut client = server.v2().await;
    let err = client
        .model_infer(bearer(request.clone(), &infer))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = client
        .model_infer(tonic::Request::new(request))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // Nested, oversized, or mistyped data: each named, none aborts.
    for (body, words) in [
        (
            r#"{"inputs":[{"name":"features","shape":[1,12],"datatype":"FP32","data":[[[[0]]]]}]}"#,
            "holds 1 elements",
        ),
        (
            r#"{"inputs":[{"name":"features","shape":[1,2],"datatype":"FP32","data":[0,0,0]}]}"#,
            "holds more than the 2 elements",
        ),
        (
            r#"{"inputs":[{"name":"features","shape":[1,1],"datatype":"FP32","data":["x"]}]}"#,
            "is not a FP32 value",
        ),
        (
            r#"{"inputs":[{"name":"features","shape":[1,1],"datatype":"FP32","data":7}]}"#,
            "must be an array",
        ),
        (
            r#"{"inputs":[{"name":"features","shape":[1,1],"datatype":"FP32","data":[1],"parameters":{"p":[1,2,3]}}]}"#,
            "inputs[features].parameters.p",
        ),
    ] {
        let (status, raw) = http(
            server.metrics,
            &post(server.metrics, path, Some(&infer), body.len()),
            body.as_bytes(),
        )
        .await;
        assert_eq!(status, 400, "{body}: {raw}");
        assert!(raw.contains(words), "{body}: {raw}");
    }
    let live = server
        .v2()
        .await
        .server_live(v2::ServerLiveRequest {})
        .await;
    assert!(live.expect("alive").into_inner().live);
    server.stop().await;
}

/// Opens `n` REST uploads of `size` bytes that send all but the last byte and stall.
async fn stalled_rest_uploads(
    addr: SocketAddr,
    n: usize,
    size: usize,
    token: Option<String>,
) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::new();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..n {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = post(addr, "/v2/models/churn/infer", token.as_deref(), size);
        if stream.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        let mut left = size - 1;
        while left > 0 {
            let n = left.min(chunk.len());
            match tokio::time::timeout(Duration::from_millis(500), stream.write_all(&chunk[..n]))
                .await
            {
                Ok(Ok(())) => left -= n,
                // Refused (closed), or the server stopped reading: what we want to see.
                _ => break,
            }
        }
        held.push(stream);
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_less_uploads_hold_no_budget_and_keyed_calls_go_on() {
    // A global budget a single keyed 8 MB call fits in, but four 60 MB uploads would not.
    let server = secured(|c| {
        c.grpc.max_buffered_request_bytes = 16 << 20;
        c.grpc.request_timeout_secs = 60.0;
    })
    .await;
    let infer = key(&server, "infer", &[Scope::Infer]).await;
    // Over REST: 32 stalled 60 MB uploads without a credential are answered 401 from
    // their headers and never buffered.
    let held = stalled_rest_uploads(server.metrics, 32, 60 << 20, None).await;
    assert_eq!(held.len(), 32);
    // Over gRPC: credential-less uploads to the open health method get only a small
    // allowance of their own.
    let exp = crate::harness::churn_expected();
    let width = exp.inputs.len() / exp.rows;
    let rows = (8 << 20) / (width * 4);
    let data: Vec<f32> = exp
        .inputs
        .iter()
        .copied()
        .cycle()
        .take(rows * width)
        .collect();
    let request = v2::ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![crate::harness::input(
            "features",
            "FP32",
            vec![rows as i64, width as i64],
        )],
        raw_input_contents: vec![crate::harness::f32_bytes(&data)],
        ..Default::default()
    };
    // The model's batch limit answers this one; what matters is that the body was taken
    // (not RESOURCE_EXHAUSTED).
    let answer = server.v2().await.model_infer(bearer(request, &infer)).await;
    if let Err(status) = &answer {
        assert_ne!(status.code(), Code::ResourceExhausted, "{status:?}");
    }
    // An open gRPC method's body past the unauthenticated allowance is refused.
    let big = vec![0u8; 256 * 1024];
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.expect("ready");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
    let codec = crate::hardening::RawCodec;
    let refused = grpc
        .unary(tonic::Request::new(big), path, codec)
        .await
        .expect_err("over the allowance");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("max_unauthenticated_body_bytes"),
        "{refused:?}"
    );
    drop(held);
    server.stop().await;
}

/// Sends bytes as they are: a gRPC message of any content.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        let mut out = vec![0u8; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

#[tokio::test]
async fn two_credentials_are_refused_and_metrics_and_reflection_are_protected_by_default() {
    let defaults = mercator_server::config::Config::default();
    assert!(
        defaults.metrics.protect,
        "metrics protected by default with auth on"
    );
    assert!(
        defaults.auth.protect_reflection,
        "reflection protected by default with auth on"
    );
    let server = secured(|c| {
        c.metrics.protect = mercator_server::config::Config::default().metrics.protect;
    })
    .await;
    let infer = key(&server, "infer", &[Scope::Infer]).await;
    let addr = server.metrics;
    let scrape = |auth: &str| {
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
    };
    let (status, _) = http(addr, &scrape(""), b"").await;
    assert_eq!(status, 401);
    let (status, raw) = http(
        addr,
        &scrape(&format!("Authorization: Bearer {infer}\r\n")),
        b"",
    )
    .await;
    assert_eq!(status, 200, "{raw}");
    let twice = format!("Authorization: Bearer {infer}\r\nAuthorization: Bearer garbage\r\n");
    let (status, raw) = http(addr, &scrape(&twice), b"").await;
    assert_eq!(status, 401, "{raw}");
    let body = r#"{"inputs":[]}"#;
    let head = post(addr, "/v2/models/churn/infer", None, body.len()).replace(
        "Connection: close\r\n",
        &format!("{twice}Connection: close\r\n"),
    );
    let (status, raw) = http(addr, &head, body.as_bytes()).await;
    assert_eq!(status, 401, "{raw}");
    assert!(raw.contains("more than once"), "{raw}");
    // Over gRPC too.
    let mut req = tonic::Request::new(v2::ServerMetadataRequest {});
    for token in [infer.as_str(), "garbage"] {
        req.metadata_mut().append(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    let err = server
        .v2()
        .await
        .server_metadata(req)
        .await
        .expect_err("two credentials");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("more than once"), "{err:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_megabyte_customer_id_is_refused_naming_it() {
    let server = TestServer::builder().demo().start().await;
    let mut churn = mercator_proto::v1::churn_client::ChurnClient::new(server.channel().await);
    let err = churn
        .score(mercator_proto::v1::ScoreRequest {
            model_name: "churn".into(),
            customer_ids: vec!["C100042".into(), "x".repeat(1 << 20)],
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("customer_ids[1]"), "{err:?}");
    assert!(err.message().len() < 600, "not echoed back");
    // The same key over V2 (an entity key input) and the feature store's reads.
    let huge = "x".repeat(1 << 20);
    let request = v2::ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![v2::model_infer_request::InferInputTensor {
            name: "customer_id".into(),
            datatype: "BYTES".into(),
            shape: vec![1],
            contents: Some(v2::InferTensorContents {
                bytes_contents: vec![huge.clone().into_bytes()],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let err = server
        .v2()
        .await
        .model_infer(request)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("inputs[customer_id][0]"), "{err:?}");
    let mut store =
        mercator_proto::v1::feature_store_client::FeatureStoreClient::new(server.channel().await);
    let err = store
        .get_online_features(mercator_proto::v1::GetOnlineFeaturesRequest {
            features: vec!["customer_churn:orders_90d".into()],
            entities: vec![mercator_proto::v1::EntityKey { values: vec![huge] }],
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("entities[0].values[0]"), "{err:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_cannot_send_live_traffic_to_an_unapproved_version() {
    let server = TestServer::builder()
        .config(|c| c.models.require_approval = true)
        .start()
        .await;
    let registry = &server.registry;
    let files = crate::harness::read_dir_files(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/churn")),
        &["mercator.json", "model.json"],
    );
    let register = |alias: Option<&str>| NewVersion {
        model: "churn".into(),
        files: files.clone(),
        alias: alias.map(str::to_string),
        actor: "alice".into(),
        ..NewVersion::default()
    };
    let v1 = registry.register(register(None)).await.expect("v1").version;
    registry
        .approve("churn", v1, "bob", "ok")
        .await
        .expect("approve");
    registry
        .set_alias("churn", "champion", v1, "alice", "")
        .await
        .expect("champion");
    let v2 = registry
        .register(register(Some("challenger")))
        .await
        .expect("v2")
        .version;
    let live = |percent| TrafficRoute {
        alias: "challenger".into(),
        percent,
        shadow: false,
    };
    let champion = TrafficRoute {
        alias: "champion".into(),
        percent: 90,
        shadow: false,
    };
    let err = registry
        .set_traffic("churn", &[live(100)], "alice", "")
        .await
        .expect_err("unapproved");
    assert!(err.to_string().contains("needs an approval"), "{err}");
    // A shadow's answers reach nobody: allowed.
    let shadow = TrafficRoute {
        alias: "challenger".into(),
        percent: 10,
        shadow: true,
    };
    registry
        .set_traffic("churn", &[shadow], "alice", "")
        .await
        .expect("shadow");
    registry
        .approve("churn", v2, "bob", "ok")
        .await
        .expect("approve v2");
    registry
        .set_traffic("churn", &[champion, live(10)], "alice", "")
        .await
        .expect("approved: the split is allowed");
    // Once challenger carries live traffic, moving it is gated like a protected alias,
    // and so is registering onto it.
    let v3 = registry.register(register(None)).await.expect("v3").version;
    let err = registry
        .set_alias("churn", "challenger", v3, "alice", "")
        .await
        .expect_err("challenger carries traffic");
    assert!(err.to_string().contains("live share"), "{err}");
    let err = registry
        .register(register(Some("challenger")))
        .await
        .expect_err("registering onto it too");
    assert!(err.to_string().contains("live share"), "{err}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_alias_without_a_loadable_version_makes_the_server_unready() {
    // Polling off: only the explicit load below reconciles.
    assert!(
        mercator_server::config::Config::default()
            .models
            .strict_readiness
    );
    let server = TestServer::builder()
        .config(|c| {
            c.registry.poll_interval_secs = 3600.0;
            c.models.strict_readiness = true;
        })
        .start()
        .await;
    let files = crate::harness::read_dir_files(
        std::path::Path::new(crate::harness::CHURN_DIR),
        &["mercator.json", "model.json"],
    );
    let new = |files: std::collections::BTreeMap<String, bytes::Bytes>| NewVersion {
        model: "churn".into(),
        files,
        alias: Some("champion".into()),
        actor: "test".into(),
        ..NewVersion::default()
    };
    let v1 = server
        .registry
        .register(new(files.clone()))
        .await
        .expect("v1");
    let mut model = files["model.json"].to_vec();
    model[200] ^= 0x01;
    server
        .registry
        .artifacts()
        .overwrite_for_test(&v1, "model.json", model.into())
        .await
        .expect("corrupt");
    let mut v2client = server.v2().await;
    let load = v2::RepositoryModelLoadRequest {
        model_name: "churn".into(),
        ..Default::default()
    };
    let err = v2client
        .repository_model_load(load.clone())
        .await
        .expect_err("the only version is corrupt");
    assert!(err.message().contains("integrity"), "{err:?}");
    let ready = v2client
        .server_ready(v2::ServerReadyRequest {})
        .await
        .expect("ready");
    assert!(
        !ready.into_inner().ready,
        "unready while churn@champion has no version"
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let mut status = 0;
    for _ in 0..100 {
        status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health")
            .into_inner()
            .status;
        if status == tonic_health::pb::health_check_response::ServingStatus::NotServing as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );
    let (code, _) = http(
        server.metrics,
        "GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    assert_eq!(code, 503);
    // A good version behind the alias: ready again.
    server.registry.register(new(files)).await.expect("v2");
    v2client.repository_model_load(load).await.expect("loads");
    let ready = v2client
        .server_ready(v2::ServerReadyRequest {})
        .await
        .expect("ready");
    assert!(ready.into_inner().ready);
    server.stop().await;
}
