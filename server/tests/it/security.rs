//! What an outside probe found, each refused now: a client naming files outside the
//! folders the server loads from, and error messages that quoted a file's contents.

use mercator_proto::v1::feature_store_client::FeatureStoreClient;
use mercator_proto::v1::{self as pb};
use tonic::Code;

use crate::harness::{TestServer, bearer};

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
        allow_removals: false,
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
        format!("/{}\u{1b}[31m{}", "x".repeat(5000), "y"),
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
    // A relative path is read inside the first root (`<data_dir>/features`), and a
    // refusal names the folders the server reads from.
    let relative = c
        .load_file(load("imports/good.csv".into()))
        .await
        .expect("a relative path inside the root")
        .into_inner();
    assert_eq!(relative.rows, 1);
    let err = c
        .load_file(load("/etc/passwd".into()))
        .await
        .expect_err("outside");
    let roots = std::fs::canonicalize(server.data_dir.path().join("features")).expect("root");
    assert!(
        err.message().contains(&roots.display().to_string()),
        "the refusal names the roots: {err:?}"
    );
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

/// Whether a call that sent `grpc-timeout` ended at that deadline: DEADLINE_EXCEEDED from
/// the server's deadline layer, or CANCELLED "Timeout expired" from tonic's own handling
/// of the header, which fires at the same instant (whichever is polled first answers).
fn ended_at_callers_deadline(status: &str, message: &str) -> bool {
    status == "4" || (status == "1" && message.contains("Timeout%20expired"))
}

/// [`stalled_upload_of`] sending 3 bytes of a message that claims 4 KiB.
async fn stalled_upload(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: Option<&str>,
) -> (String, String, usize) {
    stalled_upload_of(addr, path, timeout, 3).await
}

/// Opens a raw HTTP/2 connection and starts a unary call on it ([`stall_on`]).
async fn stalled_upload_of(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: Option<&str>,
    sent: usize,
) -> (String, String, usize) {
    stall_on(raw_connection(addr).await, addr, path, timeout, sent).await
}

/// A raw HTTP/2 connection, whose streams a test can open one by one.
async fn raw_connection(addr: std::net::SocketAddr) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("handshake");
    tokio::spawn(connection);
    client
}

/// Starts a unary call to `path` on `client` whose body claims more than `sent` bytes
/// and sends `sent`, then stalls; returns the `grpc-status` the server answers with
/// (from the headers of a trailers-only answer, or the trailers), its message, and the
/// connection's advertised stream limit.
async fn stall_on(
    client: h2::client::SendRequest<bytes::Bytes>,
    addr: std::net::SocketAddr,
    path: &str,
    timeout: Option<&str>,
    sent: usize,
) -> (String, String, usize) {
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
    let claimed = u32::try_from(sent.max(4096) + 1).expect("small");
    let mut frame = vec![0u8];
    frame.extend_from_slice(&claimed.to_be_bytes());
    frame.extend((0..sent).map(|i| i as u8));
    body.send_data(bytes::Bytes::from(frame), false)
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
    let (status, message, _) = stalled_upload(server.grpc, push, Some("200m")).await;
    assert!(
        ended_at_callers_deadline(&status, &message),
        "{status} {message}"
    );
    let (status, _, _) = stalled_upload(server.grpc, push, Some("1H")).await;
    assert_eq!(status, "4");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_cannot_buffer_past_the_global_budget() {
    let server = TestServer::builder()
        .config(|c| {
            c.grpc.max_buffered_request_bytes = 48 * 1024;
            c.grpc.request_timeout_secs = 3.0;
        })
        .start()
        .await;
    let push = "/mercator.v1.FeatureStore/Push";
    let addr = server.grpc;
    // The first stalled upload holds 32 KiB of the 48 until its deadline…
    let first = tokio::spawn(async move { stalled_upload_of(addr, push, None, 32 * 1024).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // …so a second one that would hold 32 KiB more is refused at once, not buffered.
    let (status, message, _) = stalled_upload_of(addr, push, None, 32 * 1024).await;
    assert_eq!(status, "8", "RESOURCE_EXHAUSTED: {message}");
    assert!(
        message.contains("grpc.max_buffered_request_bytes"),
        "{message}"
    );
    let (status, _, _) = first.await.expect("first");
    assert_eq!(status, "4", "the first one ends at its deadline");
    // With the budget given back, a call that fits is served.
    let (status, message, _) = stalled_upload_of(addr, push, Some("300m"), 8 * 1024).await;
    assert!(
        ended_at_callers_deadline(&status, &message),
        "accepted, then dropped at its own deadline: {status} {message}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_cannot_buffer_past_its_own_budget() {
    let server = TestServer::builder()
        .config(|c| {
            c.grpc.max_buffered_request_bytes_per_connection = 48 * 1024;
            c.grpc.request_timeout_secs = 3.0;
        })
        .start()
        .await;
    let push = "/mercator.v1.FeatureStore/Push";
    let addr = server.grpc;
    let greedy = raw_connection(addr).await;
    // One stream of the connection holds 32 KiB of its 48 until its deadline…
    let first = tokio::spawn(stall_on(greedy.clone(), addr, push, None, 32 * 1024));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // …so a second stream of the same connection that would hold 32 KiB more is refused…
    let (status, message, _) = stall_on(greedy, addr, push, None, 32 * 1024).await;
    assert_eq!(status, "8", "RESOURCE_EXHAUSTED: {message}");
    assert!(
        message.contains("grpc.max_buffered_request_bytes_per_connection")
            && message.contains("49152"),
        "{message}"
    );
    // …while another connection's upload of the same size is taken (and then dropped at
    // its own deadline, since it stalls).
    let (status, message, _) = stalled_upload_of(addr, push, None, 32 * 1024).await;
    assert_eq!(status, "4", "DEADLINE_EXCEEDED, not refused: {message}");
    let (status, _, _) = first.await.expect("first");
    assert_eq!(status, "4", "the first one ends at its deadline");
    server.stop().await;
}

/// A connection that opens and says nothing does not live forever: past
/// `grpc.max_connection_age_secs` the server sends GOAWAY and closes it.
#[tokio::test]
async fn a_silent_connection_is_closed_at_its_max_age() {
    let server = TestServer::builder()
        .config(|c| {
            c.grpc.max_connection_age_secs = 1.0;
            c.grpc.request_timeout_secs = 1.0;
        })
        .start()
        .await;
    let tcp = tokio::net::TcpStream::connect(server.grpc)
        .await
        .expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("handshake");
    // The client keeps its handle: only the server can end this connection. A guard
    // fails the test instead of hanging it if the server never does.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(60), connection).await;
    assert!(closed.is_ok(), "the server closes the aged connection");
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn removing_definitions_needs_allow_removals_and_is_audited() {
    let server = TestServer::builder()
        .config(|c| c.auth.mode = "required".into())
        .start()
        .await;
    let writer = server
        .registry
        .create_key("feature-bot", &["features:write".into()], None, "test")
        .await
        .expect("key")
        .1;
    let mut c = FeatureStoreClient::new(server.channel().await);
    let apply = |toml: &str, dry_run: bool, allow_removals: bool| {
        bearer(
            pb::ApplyDefinitionsRequest {
                toml: toml.into(),
                dry_run,
                allow_removals,
            },
            &writer,
        )
    };
    c.apply_definitions(apply(DEFS, false, false))
        .await
        .expect("apply");
    let entity_only = "[[entities]]\nname = \"customer\"\njoin_keys = [\"customer_id\"]\n";
    let err = c
        .apply_definitions(apply(entity_only, false, false))
        .await
        .expect_err("a removal without allow_removals");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("remove feature view activity")
            && err.message().contains("allow_removals"),
        "{err:?}"
    );
    // A dry run fails exactly when the apply would; with allow_removals it shows the plan.
    let err = c
        .apply_definitions(apply(entity_only, true, false))
        .await
        .expect_err("a dry run of a refused apply is refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("remove feature view activity"),
        "{err:?}"
    );
    let planned = c
        .apply_definitions(apply(entity_only, true, true))
        .await
        .expect("a dry run shows it")
        .into_inner()
        .changes;
    assert_eq!(planned, ["remove feature view activity"]);
    let listed = c
        .list_definitions(bearer(pb::ListDefinitionsRequest {}, &writer))
        .await
        .expect_err("features:write does not read");
    assert_eq!(listed.code(), Code::PermissionDenied);
    let done = c
        .apply_definitions(apply(entity_only, false, true))
        .await
        .expect("allowed")
        .into_inner()
        .changes;
    assert_eq!(done, ["remove feature view activity"]);
    let audit = server.registry.audit_log(None, 10).await.expect("audit");
    let applies: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "apply_definitions")
        .collect();
    assert_eq!(applies.len(), 2, "{audit:?}");
    assert!(
        applies.iter().all(|e| e.actor == "feature-bot"),
        "{applies:?}"
    );
    assert_eq!(
        applies[0].detail["changes"],
        serde_json::json!(["remove feature view activity"])
    );
    server.stop().await;
}

#[tokio::test]
async fn event_times_are_bounded() {
    let server = TestServer::builder().start().await;
    let mut c = FeatureStoreClient::new(server.channel().await);
    c.apply_definitions(pb::ApplyDefinitionsRequest {
        toml: DEFS.into(),
        dry_run: false,
        allow_removals: false,
    })
    .await
    .expect("apply");
    let push = |seconds: i64, nanos: i32| pb::PushRequest {
        view: "activity".into(),
        rows: vec![pb::PushRow {
            entity_key: vec!["c1".into()],
            event_time: Some(prost_types::Timestamp { seconds, nanos }),
            values: [(
                "orders_90d".to_string(),
                pb::FeatureValue {
                    kind: Some(pb::feature_value::Kind::Float32(1.0)),
                },
            )]
            .into(),
        }],
    };
    let now = chrono::Utc::now().timestamp();
    for (what, seconds, nanos) in [
        ("year 9999", 253_402_300_000, 0),
        ("two days ahead", now + 2 * 86_400, 0),
        ("before 1970", -1, 0),
        ("negative nanos", now, -5),
        ("nanos past a second", now, 1_000_000_000),
    ] {
        let err = c.push(push(seconds, nanos)).await.expect_err(what);
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        assert!(err.message().contains("event_time"), "{what}: {err:?}");
    }
    c.push(push(now + 3600, 0))
        .await
        .expect("an hour of clock skew is fine");
    c.push(push(now, 0)).await.expect("now");
    server.stop().await;
}

/// Bytes that are not a `ModelInferRequest`: field 1 (a string there) as a varint.
#[derive(Clone, PartialEq, prost::Message)]
struct NotARequest {
    #[prost(uint64, tag = "1")]
    model_name: u64,
}

#[tokio::test]
async fn malformed_messages_are_invalid_arguments_and_echoes_are_bounded() {
    let server = TestServer::builder().start().await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.expect("ready");
    let codec = tonic_prost::ProstCodec::<NotARequest, ()>::default();
    let path = "/inference.GRPCInferenceService/ModelInfer"
        .parse()
        .expect("path");
    let err = grpc
        .unary(
            tonic::Request::new(NotARequest { model_name: 7 }),
            path,
            codec,
        )
        .await
        .expect_err("not a request");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let mut v2 = server.v2().await;
    let name = format!("{}\u{1b}[2J", "m".repeat(10_000));
    let err = v2
        .model_metadata(mercator_proto::inference::ModelMetadataRequest {
            name,
            version: String::new(),
        })
        .await
        .expect_err("no such model");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(
        err.message().chars().count() <= 513,
        "{}",
        err.message().len()
    );
    assert!(!err.message().contains('\u{1b}'), "{err:?}");
    server.stop().await;
}

/// A file in an upload folder of the artifact store's staging area, aged `age`.
fn staged(
    artifacts: &std::path::Path,
    upload: &str,
    age: std::time::Duration,
) -> std::path::PathBuf {
    let dir = artifacts.join("staging").join(upload);
    std::fs::create_dir_all(&dir).expect("staging");
    // A finished file, and one a write killed half-way left (object_store writes
    // `name#N` and renames it; its listing never shows such files).
    for name in ["model.json", "weights.bin#1"] {
        let file = dir.join(name);
        std::fs::write(&file, vec![0u8; 1024]).expect("write");
        let then = std::time::SystemTime::now() - age;
        std::fs::File::options()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_modified(then))
            .expect("age it");
    }
    dir
}

// The CLI runs as a blocking child process: keep a second worker free for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_of_dead_registrations_are_swept() {
    let server = TestServer::builder().churn().start().await;
    let artifacts = server.data_dir.path().join("artifacts");
    let hour = std::time::Duration::from_secs(3600);
    let dead = staged(&artifacts, "dead-upload", 2 * hour);
    let recent = staged(
        &artifacts,
        "recent-upload",
        std::time::Duration::from_secs(120),
    );
    server
        .registry_client()
        .await
        .register_version(crate::lifecycle::upload("churn"))
        .await
        .expect("register");
    assert!(!dead.exists(), "a registration sweeps dead uploads");
    assert!(recent.exists(), "a recent upload may be live");
    let left: Vec<_> = std::fs::read_dir(artifacts.join("staging"))
        .expect("staging")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        left,
        ["recent-upload"],
        "a registration leaves nothing of its own"
    );

    let out = crate::cli::ok(&[
        "models",
        "--server",
        &server.url(),
        "gc",
        "--older-than-secs",
        "60",
    ]);
    assert!(out.contains("removed 1"), "{out}");
    assert!(!recent.exists());
    let err = server
        .registry_client()
        .await
        .collect_garbage(pb::CollectGarbageRequest {
            older_than_secs: -1.0,
        })
        .await
        .expect_err("a negative age");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("older_than_secs"), "{err:?}");
    server.stop().await;
}
