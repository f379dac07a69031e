//! What an outside probe found, each refused now: a client naming files outside the
//! folders the server loads from, and error messages that quoted a file's contents.

use mercator_proto::v1::feature_store_client::FeatureStoreClient;
use mercator_proto::v1::{self as pb};
use tonic::Code;

use crate::harness::TestServer;

const DEFS: &str = r#"
[[entities]]
name = "customer"
join_keys = ["customer_id"]

[[feature_views]]
name = "activity"
entity = "customer"
ttl = "30d"
fields = [{ name = "orders_90d", type = "float32" }]
"#;

#[tokio::test]
async fn load_file_reads_only_inside_its_roots_and_never_echoes_contents() {
    let outside = tempfile::tempdir().expect("tempdir");
    let secret = outside.path().join("secret.csv");
    std::fs::write(&secret, "root:x:0:0:root:/root:/bin/bash\nhunter2\n").expect("write");
    let server = TestServer::builder().start().await;
    let mut c = FeatureStoreClient::new(server.channel().await);
    c.apply_definitions(pb::ApplyDefinitionsRequest {
        toml: DEFS.into(),
        dry_run: false,
    })
    .await
    .expect("apply");
    let load = |url: String| pb::LoadFileRequest {
        view: "activity".into(),
        url,
        default_event_time: None,
        ignore_unknown_columns: false,
    };
    let imports = server.data_dir.path().join("features").join("imports");
    std::fs::create_dir_all(&imports).expect("imports");
    let escape = format!("{}/../../../{}", imports.display(), secret.display());
    for url in [
        "/etc/passwd".to_string(),
        "file:///etc/passwd".to_string(),
        secret.display().to_string(),
        escape,
        "/no/such/file.csv".to_string(),
        format!("{}\u{1b}[31m{}", "x".repeat(5000), "y"),
    ] {
        let err = c.load_file(load(url.clone())).await.expect_err(&url);
        assert_eq!(err.code(), Code::InvalidArgument, "{url}: {err:?}");
        let message = err.message();
        assert!(message.contains("features.load_roots"), "{message}");
        assert!(
            !message.contains("root:x") && !message.contains("hunter2"),
            "{message}"
        );
        assert!(message.len() < 600, "long names are cut: {}", message.len());
        assert!(
            !message.contains('\u{1b}'),
            "control characters are escaped"
        );
    }

    // Inside the data folder: loaded; a bad header or cell is named, never quoted.
    let good = imports.join("good.csv");
    std::fs::write(&good, "customer_id,event_timestamp,orders_90d\nc1,0,3\n").expect("write");
    let loaded = c
        .load_file(load(good.display().to_string()))
        .await
        .expect("inside the root")
        .into_inner();
    assert_eq!(loaded.rows, 1);
    let header = imports.join("header.csv");
    std::fs::write(&header, "customer_id,event_timestamp,root:x:0:0\nc1,0,3\n").expect("write");
    let err = c
        .load_file(load(header.display().to_string()))
        .await
        .expect_err("unknown column");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("column '#3'"), "{err:?}");
    assert!(!err.message().contains("root:x"), "{err:?}");
    let cell = imports.join("cell.csv");
    std::fs::write(
        &cell,
        "customer_id,event_timestamp,orders_90d\nc1,0,hunter2\n",
    )
    .expect("write");
    let err = c
        .load_file(load(cell.display().to_string()))
        .await
        .expect_err("bad cell");
    assert!(
        err.message().contains("line 2, column 'orders_90d'"),
        "{err:?}"
    );
    assert!(!err.message().contains("hunter2"), "{err:?}");
    server.stop().await;
}

/// Opens a raw HTTP/2 connection and starts a unary call to `path` whose body claims
/// 4 KiB and sends 3 bytes, then stalls; returns the `grpc-status` the server answers
/// with (from the headers of a trailers-only answer, or the trailers) and the
/// connection's advertised stream limit.
async fn stalled_upload(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: Option<&str>,
) -> (String, String, usize) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let mut req = tonic::codegen::http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(t) = timeout {
        req = req.header("grpc-timeout", t);
    }
    let req = req.body(()).expect("request");
    let (response, mut body) = client.send_request(req, false).expect("send");
    body.send_data(
        bytes::Bytes::from_static(&[0, 0, 0, 0x10, 0, 1, 2, 3]),
        false,
    )
    .expect("partial body");
    // A guard so that a server which never answers fails the test instead of hanging it.
    let response = tokio::time::timeout(std::time::Duration::from_secs(120), response)
        .await
        .expect("the server answers a stalled upload")
        .expect("an answer");
    let limit = client.current_max_send_streams();
    let header = |h: &tonic::codegen::http::HeaderMap, name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (status, message) = match header(response.headers(), "grpc-status") {
        Some(s) => (
            s,
            header(response.headers(), "grpc-message").unwrap_or_default(),
        ),
        None => {
            let mut stream = response.into_body();
            let trailers = stream
                .trailers()
                .await
                .expect("trailers")
                .unwrap_or_default();
            (
                header(&trailers, "grpc-status").unwrap_or_default(),
                header(&trailers, "grpc-message").unwrap_or_default(),
            )
        }
    };
    (status, message, limit)
}

#[tokio::test]
async fn a_stalled_upload_is_dropped_at_its_deadline() {
    let server = TestServer::builder()
        .config(|c| {
            c.grpc.request_timeout_secs = 1.0;
            c.grpc.max_concurrent_streams = 16;
        })
        .start()
        .await;
    let push = "/mercator.v1.FeatureStore/Push";
    let (status, message, limit) = stalled_upload(server.grpc, push, None).await;
    assert_eq!(status, "4", "DEADLINE_EXCEEDED: {message}");
    assert!(message.contains("deadline"), "{message}");
    assert_eq!(limit, 16, "MAX_CONCURRENT_STREAMS is advertised");
    // A caller's own, shorter deadline is honoured; a longer one is capped.
    let (status, _, _) = stalled_upload(server.grpc, push, Some("200m")).await;
    assert_eq!(status, "4");
    let (status, _, _) = stalled_upload(server.grpc, push, Some("1H")).await;
    assert_eq!(status, "4");
    server.stop().await;
}
