//! V2 over HTTP/REST on the HTTP listener, called as curl would call it (a raw HTTP/1.1
//! request): the same credentials and scopes, rate limits and metrics as over gRPC. The
//! protocol itself (JSON and binary tensors, every route) is exercised by tritonclient's
//! and KServe's HTTP clients (`tritonclient.rs`).

use std::net::SocketAddr;

use mercator_server::auth::Scope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::key;
use crate::harness::{TestServer, churn_expected, metric_value};

/// An HTTP answer: status, lower-cased head, body.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: serde_json::Value,
}

/// One request on its own connection, as curl sends it.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let (head, rest) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = serde_json::from_str(rest).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        head: head.to_ascii_lowercase(),
        body,
    }
}

/// A JSON inference body of the first expected churn row with no missing value (JSON has
/// no NaN), and the probability xgboost gave it.
fn infer_body() -> (String, f64) {
    let exp = churn_expected();
    let width = exp.inputs.len() / exp.rows;
    let (at, row) = exp
        .inputs
        .chunks(width)
        .enumerate()
        .find(|(_, r)| r.iter().all(|v| v.is_finite()))
        .expect("a complete row");
    let body = serde_json::json!({"inputs": [{"name": "features", "shape": [1, width],
                                   "datatype": "FP32", "data": row}]});
    (body.to_string(), exp.probability[at])
}

#[tokio::test]
async fn rest_calls_need_the_same_credentials_and_scopes_as_grpc() {
    let server = TestServer::builder()
        .churn()
        .config(|c| {
            c.auth.mode = "required".into();
            c.auth.key_cache_secs = 0.0;
        })
        .start()
        .await;
    let infer = key(&server, "infer", &[Scope::Infer]).await;
    let reader = key(&server, "reader", &[Scope::FeaturesRead]).await;
    let (body, want) = infer_body();
    let addr = server.metrics;

    let none = http(addr, "POST", "/v2/models/churn/infer", None, &body).await;
    assert_eq!(none.status, 401, "{:?}", none.body);
    assert!(
        none.head.contains("www-authenticate: bearer"),
        "{}",
        none.head
    );
    assert!(none.body["error"].as_str().is_some(), "{:?}", none.body);

    let wrong = http(addr, "POST", "/v2/models/churn/infer", Some(&reader), &body).await;
    assert_eq!(wrong.status, 403, "{:?}", wrong.body);
    assert!(
        wrong.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("`infer`"),
        "{:?}",
        wrong.body
    );

    let right = http(addr, "POST", "/v2/models/churn/infer", Some(&infer), &body).await;
    assert_eq!(right.status, 200, "{:?}", right.body);
    assert_eq!(right.body["model_version"], "1");
    let p = right.body["outputs"][0]["data"][0]
        .as_f64()
        .expect("a probability");
    assert!((p - want).abs() < 1e-6, "{p} against xgboost's {want}");

    // Unloading a model needs more than `infer`, over REST as over gRPC.
    let unload = http(
        addr,
        "POST",
        "/v2/repository/models/churn/unload",
        Some(&infer),
        "",
    )
    .await;
    assert_eq!(unload.status, 403, "{:?}", unload.body);
    // Health stays open, for probes.
    let live = http(addr, "GET", "/v2/health/live", None, "").await;
    assert_eq!(
        (live.status, live.body["live"].as_bool()),
        (200, Some(true))
    );

    // A REST call is counted as the gRPC method it stands for, by its outcome.
    let text = server.metrics_text().await;
    let series = |code: &str| {
        format!(
            r#"mercator_grpc_requests_total{{code="{code}",method="ModelInfer",service="inference.GRPCInferenceService"}}"#
        )
    };
    assert_eq!(metric_value(&text, &series("OK")), Some(1.0), "{text}");
    // Refused from its headers, before its body was read: never a gRPC call.
    assert_eq!(
        metric_value(&text, &series("UNAUTHENTICATED")),
        None,
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"mercator_http_refused_total{reason="unauthenticated"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric_value(&text, &series("PERMISSION_DENIED")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"mercator_requests_total{code="OK",method="ModelInfer",model="churn",version="1"}"#
        ),
        Some(1.0),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_rest_caller_over_its_rate_is_told_when_to_retry() {
    let server = TestServer::builder()
        .churn()
        .config(|c| {
            c.auth.mode = "required".into();
            c.auth.rate_limits = vec!["infer=0.01/1".into()];
        })
        .start()
        .await;
    let token = key(&server, "client", &[Scope::Infer]).await;
    let (body, _) = infer_body();
    let first = http(
        server.metrics,
        "POST",
        "/v2/models/churn/infer",
        Some(&token),
        &body,
    )
    .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let second = http(
        server.metrics,
        "POST",
        "/v2/models/churn/infer",
        Some(&token),
        &body,
    )
    .await;
    assert_eq!(second.status, 429, "{:?}", second.body);
    assert!(second.head.contains("retry-after: "), "{}", second.head);
    assert!(
        second.body["error"].as_str().unwrap_or("").contains("rate"),
        "{:?}",
        second.body
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_http_errors() {
    let server = TestServer::builder().churn().start().await;
    let missing = http(server.metrics, "GET", "/v2/nothing/here", None, "").await;
    assert_eq!(missing.status, 404);
    let wrong_method = http(server.metrics, "GET", "/v2/models/churn/infer", None, "").await;
    assert_eq!(wrong_method.status, 405);
    let not_ready = http(server.metrics, "GET", "/v2/models/nope/ready", None, "").await;
    assert_eq!(
        (not_ready.status, not_ready.body["ready"].as_bool()),
        (503, Some(false))
    );
    let overrides = http(
        server.metrics,
        "POST",
        "/v2/repository/models/churn/load",
        None,
        r#"{"parameters": {"config": "{}"}}"#,
    )
    .await;
    assert_eq!(overrides.status, 400, "{:?}", overrides.body);
    server.stop().await;
}
