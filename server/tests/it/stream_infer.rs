//! `ModelStreamInfer` as a long-lived stream: it is not held to the buffered-bytes budget
//! of everything it ever sent (only the message in flight counts), and each message
//! after the first takes its own token from the caller's rate limit. Ordering and
//! per-message errors are exercised with tritonclient (`tritonclient.rs`).

use mercator_proto::inference as pb;
use mercator_server::auth::Scope;

use crate::auth::key;
use crate::harness::{TestServer, churn_expected, f32_bytes, input};

/// A churn request of `rows` rows of the first expected customer, with id `id`.
fn request(rows: usize, id: &str) -> pb::ModelInferRequest {
    let exp = churn_expected();
    let width = exp.inputs.len() / exp.rows;
    let row = &exp.inputs[..width];
    let data: Vec<f32> = row.iter().copied().cycle().take(rows * width).collect();
    pb::ModelInferRequest {
        model_name: "churn".into(),
        id: id.into(),
        inputs: vec![input("features", "FP32", vec![rows as i64, width as i64])],
        raw_input_contents: vec![f32_bytes(&data)],
        ..Default::default()
    }
}

async fn answers(
    server: &TestServer,
    requests: Vec<pb::ModelInferRequest>,
    token: Option<&str>,
) -> Vec<pb::ModelStreamInferResponse> {
    let mut call = tonic::Request::new(tokio_stream::iter(requests));
    if let Some(token) = token {
        call.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    let mut inbound = server
        .v2()
        .await
        .model_stream_infer(call)
        .await
        .expect("stream opened")
        .into_inner();
    let mut out = Vec::new();
    while let Some(answer) = inbound.message().await.expect("stream answer") {
        out.push(answer);
    }
    out
}

#[tokio::test]
async fn a_long_stream_holds_only_the_message_in_flight_against_the_budget() {
    // 64 KiB per connection; the stream sends 50 messages of ~10 KiB (500 KiB in all).
    let server = TestServer::builder()
        .churn()
        .config(|c| c.grpc.max_buffered_request_bytes_per_connection = 64 * 1024)
        .start()
        .await;
    let requests: Vec<_> = (0..50).map(|i| request(213, &format!("m{i}"))).collect();
    let got = answers(&server, requests, None).await;
    assert_eq!(got.len(), 50);
    for (i, answer) in got.iter().enumerate() {
        assert_eq!(answer.error_message, "", "message {i}");
        let response = answer.infer_response.as_ref().expect("a response");
        assert_eq!(response.id, format!("m{i}"), "answers in request order");
        assert_eq!(response.outputs[0].shape, vec![213]);
    }
    // One message bigger than the connection's budget is still refused.
    let mut call = server.v2().await;
    let refused = call
        .model_stream_infer(tokio_stream::iter(vec![request(2000, "big")]))
        .await;
    let status = match refused {
        Err(status) => status,
        Ok(stream) => {
            let mut inbound = stream.into_inner();
            inbound.message().await.expect_err("over the budget")
        }
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("max_buffered_request_bytes_per_connection"),
        "{status:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn each_stream_message_takes_its_own_rate_token() {
    let server = TestServer::builder()
        .churn()
        .config(|c| {
            c.auth.mode = "required".into();
            c.auth.rate_limits = vec!["infer=0.01/3".into()];
        })
        .start()
        .await;
    let token = key(&server, "streamer", &[Scope::Infer]).await;
    let requests: Vec<_> = (0..5).map(|i| request(1, &format!("r{i}"))).collect();
    let got = answers(&server, requests, Some(&token)).await;
    assert_eq!(got.len(), 5, "a refused message does not end the stream");
    for answer in &got[..3] {
        assert_eq!(answer.error_message, "");
    }
    for (i, answer) in got[3..].iter().enumerate() {
        assert!(answer.error_message.contains("over its rate"), "{answer:?}");
        let echo = answer.infer_response.as_ref().expect("the request's id");
        assert_eq!(echo.id, format!("r{}", i + 3));
    }
    server.stop().await;
}
