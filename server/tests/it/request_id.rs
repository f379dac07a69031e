//! A request id on every call (issue 31): the caller's `x-request-id` is echoed, over
//! gRPC (unary, refused and streamed calls) and REST; a call without one, or with one
//! that is not a sane header value, gets a UUIDv7; REST hands its id to the gRPC call
//! it makes, so both answers carry the same.

use mercator_proto::inference as v2;
use tonic::metadata::MetadataValue;

use crate::harness::TestServer;
use crate::rest::http;

fn id_of<T>(response: &tonic::Response<T>) -> String {
    response
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("an x-request-id")
        .to_string()
}

fn is_uuid_v7(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok_and(|u| u.get_version_num() == 7)
}

fn with_id<T>(message: T, id: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert(
        "x-request-id",
        MetadataValue::try_from(id).expect("metadata"),
    );
    req
}

#[tokio::test]
async fn every_call_carries_a_request_id_back() {
    let server = TestServer::builder().churn().start().await;
    let mut client = server.v2().await;
    let ready = |name: &str| v2::ModelReadyRequest {
        name: name.into(),
        version: String::new(),
    };
    // The caller's id comes back.
    let answer = client
        .model_ready(with_id(ready("churn"), "order-42/retry-1"))
        .await
        .expect("ready");
    assert_eq!(id_of(&answer), "order-42/retry-1");
    // None, or one too long: a fresh UUIDv7, different each call.
    let first = id_of(&client.model_ready(ready("churn")).await.expect("ready"));
    let second = id_of(
        &client
            .model_ready(with_id(ready("churn"), &"x".repeat(200)))
            .await
            .expect("ready"),
    );
    assert!(
        is_uuid_v7(&first) && is_uuid_v7(&second),
        "{first} {second}"
    );
    assert_ne!(first, second);
    // A refused call carries it too (in its metadata).
    let status = client
        .model_metadata(with_id(
            v2::ModelMetadataRequest {
                name: "nope".into(),
                version: String::new(),
            },
            "lost-1",
        ))
        .await
        .expect_err("unknown model");
    assert_eq!(
        status
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("lost-1")
    );
    // A stream's answers.
    let stream = client
        .model_stream_infer(with_id(
            futures::stream::iter(Vec::<v2::ModelInferRequest>::new()),
            "stream-7",
        ))
        .await
        .expect("stream");
    assert_eq!(id_of(&stream), "stream-7");

    // REST: echoed, or made.
    let rest = http(server.metrics, "GET", "/v2/models/churn/ready", None, "").await;
    let made = rest
        .head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("an x-request-id header")
        .trim()
        .to_string();
    assert!(is_uuid_v7(&made), "{made}");
    let echoed = raw_get(server.metrics, "/v2/models/nope", "rest-9").await;
    assert!(echoed.starts_with("HTTP/1.1 404"), "{echoed}");
    assert!(
        echoed
            .to_ascii_lowercase()
            .contains("x-request-id: rest-9\r\n"),
        "{echoed}"
    );
    server.stop().await;
}

/// A GET with an `x-request-id`, answered on its own connection: the answer's head.
async fn raw_get(addr: std::net::SocketAddr, path: &str, id: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nx-request-id: {id}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    raw.split("\r\n\r\n").next().unwrap_or_default().to_string() + "\r\n"
}
