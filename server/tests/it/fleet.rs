//! A fleet on this machine: three `mercator serve` processes (the real binary) sharing one
//! PostgreSQL registry, one Redis online store and one S3 bucket for artifacts and feature
//! history, as a Helm release with three replicas runs them. It shows that they behave as
//! one service: a version registered through replica a and a `champion` move made with
//! the CLI straight against PostgreSQL are served by every replica under load, with no
//! failed request; a feature pushed through a is read by b, online and from history on
//! S3; a traffic split places each customer on the same version on every replica; and
//! with a killed by SIGKILL, b and c answer everything.
//!
//! Needs `MERCATOR_TEST_POSTGRES_URL`, `MERCATOR_TEST_REDIS_URL`, and a real S3 server
//! with a bucket (`MERCATOR_TEST_FLEET_S3_ENDPOINT`, `MERCATOR_TEST_FLEET_S3_BUCKET`:
//! s3s-fs, which `scripts/test.sh` builds once and starts); prints what it measured
//! (`fleet:` lines).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mercator_proto::inference as v2;
use mercator_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mercator_proto::v1 as pb;
use mercator_proto::v1::feature_store_client::FeatureStoreClient;
use tonic::transport::{Channel, Endpoint};

use crate::harness::{CHURN_DIR, f32_bytes, free_port, input};

const FEATURES_TOML: &str = include_str!("../../../examples/churn/features.toml");
const FIELDS: usize = 12;
/// The Redis database that is this test's alone (the churn test has 1).
const REDIS_DB: u32 = 2;
/// Clients calling through one channel balanced over every replica's address.
const BALANCED_CLIENTS: usize = 4;

/// What every process of the fleet (servers and CLI) is configured with.
struct Shared {
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Shared {
    async fn new() -> Option<Shared> {
        let vars = [
            "MERCATOR_TEST_POSTGRES_URL",
            "MERCATOR_TEST_REDIS_URL",
            "MERCATOR_TEST_FLEET_S3_ENDPOINT",
            "MERCATOR_TEST_FLEET_S3_BUCKET",
        ];
        let Ok([pg, redis_url, s3, bucket]) = vars
            .map(std::env::var)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map(|v| <[String; 4]>::try_from(v).expect("four"))
        else {
            assert!(
                std::env::var("CI").is_err(),
                "CI must set {vars:?} so the fleet is tested"
            );
            eprintln!("{vars:?} not all set: the fleet test is skipped");
            return None;
        };
        let registry = crate::registry_records::fresh_postgres(&pg).await;
        let online = crate::harness::empty_redis_db(&redis_url, REDIS_DB).await;
        // A folder of the bucket that is this run's alone.
        let root = format!("{bucket}/{}", uuid::Uuid::new_v4().simple());
        let env = [
            ("MERCATOR_REGISTRY__URL", registry),
            // Only a notification can bring an alias move within the test's time.
            ("MERCATOR_REGISTRY__POLL_INTERVAL_SECS", "600".into()),
            // A replica silent for 2 s is gone (heartbeats every 0.5 s).
            ("MERCATOR_REGISTRY__INSTANCE_TTL_SECS", "2".into()),
            ("MERCATOR_ARTIFACTS__URL", format!("s3://{root}/artifacts")),
            ("MERCATOR_FEATURES__ONLINE_STORE", online),
            (
                "MERCATOR_FEATURES__OFFLINE_STORE",
                format!("s3://{root}/history"),
            ),
            ("AWS_ENDPOINT", s3),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec();
        Some(Shared {
            env,
            _dir: tempfile::tempdir().expect("tempdir"),
        })
    }

    /// Runs the CLI with the fleet's configuration (straight against the registry).
    fn cli(&self, args: &[&str]) -> String {
        crate::cli::ok_with(args, &self.env)
    }
}

/// One `mercator serve` process.
struct Replica {
    name: &'static str,
    child: Child,
    url: String,
    metrics_port: u16,
    data: tempfile::TempDir,
}

impl Replica {
    fn start(shared: &Shared, name: &'static str) -> Replica {
        let data = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let metrics_port = free_port();
        let log = std::fs::File::create(data.path().join("serve.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_mercator"))
            .args([
                "serve",
                "--data-dir",
                &data.path().display().to_string(),
                "--grpc-addr",
                &format!("127.0.0.1:{port}"),
                "--metrics-addr",
                &format!("127.0.0.1:{metrics_port}"),
            ])
            .envs(shared.env.iter().cloned())
            .env("MERCATOR_SERVER__INSTANCE_NAME", name)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mercator serve");
        Replica {
            name,
            child,
            url: format!("http://127.0.0.1:{port}"),
            metrics_port,
            data,
        }
    }

    /// Requests this replica answered for churn version `version`, by its own /metrics.
    async fn answered(&self, version: &str) -> f64 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port))
            .await
            .expect("connect to /metrics");
        conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
            .await
            .expect("scrape");
        let mut text = String::new();
        conn.read_to_string(&mut text).await.expect("read /metrics");
        let series = format!(
            r#"mercator_requests_total{{code="OK",method="ModelInfer",model="churn",version="{version}"}}"#
        );
        crate::harness::metric_value(&text, &series).unwrap_or(0.0)
    }

    async fn channel(&self) -> Channel {
        for _ in 0..600 {
            if let Ok(c) = Endpoint::from_shared(self.url.clone())
                .expect("url")
                .connect()
                .await
            {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} never listened:\n{}", self.name, self.log());
    }

    /// Waits until the replica answers churn with `version`.
    async fn wait_serving(&self, version: &str) {
        let mut client = GrpcInferenceServiceClient::new(self.channel().await);
        for _ in 0..1200 {
            if let Ok(r) = client.model_infer(churn_request(None)).await
                && r.get_ref().model_version == version
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} never served churn {version}:\n{}",
            self.name,
            self.log()
        );
    }

    /// What the server logged (for a failure's message).
    fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("serve.log")).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One churn row over V2, placed by `entity` when given.
fn churn_request(entity: Option<&str>) -> v2::ModelInferRequest {
    let mut parameters = std::collections::HashMap::new();
    if let Some(e) = entity {
        parameters.insert(
            "entity_key".to_string(),
            v2::InferParameter {
                parameter_choice: Some(v2::infer_parameter::ParameterChoice::StringParam(e.into())),
            },
        );
    }
    v2::ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![input("features", "FP32", vec![1, FIELDS as i64])],
        raw_input_contents: vec![f32_bytes(&[0.5; FIELDS])],
        parameters,
        ..Default::default()
    }
}

/// Whether a vector of `orders_90d` and `return_rate` holds what the test pushed.
fn is_pushed(vector: &pb::FeatureVector) -> bool {
    let kinds: Vec<_> = vector.values.iter().map(|v| v.kind.clone()).collect();
    kinds
        == [
            Some(pb::feature_value::Kind::Float32(7.0)),
            Some(pb::feature_value::Kind::Float32(0.25)),
        ]
}

/// Clients calling every replica in a loop until stopped: the versions each saw over
/// time, and every failure.
struct Load {
    going: Arc<AtomicBool>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(Instant, String)>>>,
}

impl Load {
    async fn start(replicas: &[&Replica]) -> Load {
        let going = Arc::new(AtomicBool::new(true));
        let failed = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for replica in replicas {
            let mut client = GrpcInferenceServiceClient::new(replica.channel().await);
            let (going, failed, name) = (Arc::clone(&going), Arc::clone(&failed), replica.name);
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                while going.load(Ordering::Relaxed) {
                    match client.model_infer(churn_request(None)).await {
                        Ok(r) => seen.push((Instant::now(), r.into_inner().model_version)),
                        Err(status) => {
                            eprintln!("fleet: {name} failed a request: {status}");
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                seen
            }));
        }
        Load {
            going,
            failed,
            tasks,
        }
    }

    /// Stops the clients: per replica, what it answered over time, and the failures.
    async fn stop(self) -> (Vec<Vec<(Instant, String)>>, u64) {
        self.going.store(false, Ordering::Relaxed);
        let mut seen = Vec::new();
        for t in self.tasks {
            seen.push(t.await.expect("load task"));
        }
        (seen, self.failed.load(Ordering::Relaxed))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behave_as_one_service() {
    let Some(shared) = Shared::new().await else {
        return;
    };
    let mut a = Replica::start(&shared, "a");
    let b = Replica::start(&shared, "b");
    let c = Replica::start(&shared, "c");
    for r in [&a, &b, &c] {
        r.channel().await;
    }

    // A version registered through a reaches every replica.
    shared.cli(&[
        "models", "--server", &a.url, "register", "churn", CHURN_DIR, "--alias", "champion",
    ]);
    for r in [&a, &b, &c] {
        r.wait_serving("1").await;
    }

    // A champion move committed with the CLI straight against PostgreSQL, under load.
    shared.cli(&["models", "--server", &a.url, "register", "churn", CHURN_DIR]);
    let load = Load::start(&[&a, &b, &c]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let moved = Instant::now();
    shared.cli(&["models", "promote", "churn", "2"]);
    for r in [&a, &b, &c] {
        r.wait_serving("2").await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (seen, failed) = load.stop().await;
    assert_eq!(failed, 0, "no request fails while champion moves");
    for (r, answers) in [&a, &b, &c].iter().zip(&seen) {
        let first = answers
            .iter()
            .find(|(_, v)| v == "2")
            .map(|(t, _)| t.saturating_duration_since(moved))
            .expect("the replica served version 2 under load");
        eprintln!(
            "fleet: {} served the new champion {} ms after the move committed ({} requests)",
            r.name,
            first.as_millis(),
            answers.len()
        );
        assert!(
            answers
                .windows(2)
                .all(|w| !(w[0].1 == "2" && w[1].1 == "1")),
            "{}: once the new champion answers, the old one does not",
            r.name
        );
        // Each replica's /metrics counts what it answered (Prometheus tells them apart by
        // the scrape target: the pod).
        let own = answers.iter().filter(|(_, v)| v == "2").count() as f64;
        assert!(
            r.answered("2").await >= own,
            "{}'s /metrics counts its own {own} answers from version 2",
            r.name
        );
    }

    // A feature pushed through a is read by b, online and from the history on S3.
    let mut fa = FeatureStoreClient::new(a.channel().await);
    fa.apply_definitions(pb::ApplyDefinitionsRequest {
        toml: FEATURES_TOML.into(),
        dry_run: false,
        allow_removals: false,
    })
    .await
    .expect("apply definitions through a");
    let pushed_at = chrono::Utc::now().timestamp() - 60;
    fa.push(pb::PushRequest {
        view: "customer_churn".into(),
        rows: vec![pb::PushRow {
            entity_key: vec!["F1".into()],
            event_time: Some(prost_types::Timestamp {
                seconds: pushed_at,
                nanos: 0,
            }),
            values: BTreeMap::from([("orders_90d", 7.0f32), ("return_rate", 0.25)])
                .into_iter()
                .map(|(f, v)| {
                    (
                        f.to_string(),
                        pb::FeatureValue {
                            kind: Some(pb::feature_value::Kind::Float32(v)),
                        },
                    )
                })
                .collect(),
        }],
    })
    .await
    .expect("push through a");
    let mut fb = FeatureStoreClient::new(b.channel().await);
    let features = vec![
        "customer_churn:orders_90d".to_string(),
        "customer_churn:return_rate".to_string(),
    ];
    let mut online = None;
    for _ in 0..200 {
        // b learns the definitions a applied at its next poll or notification.
        match fb
            .get_online_features(pb::GetOnlineFeaturesRequest {
                features: features.clone(),
                entities: vec![pb::EntityKey {
                    values: vec!["F1".into()],
                }],
            })
            .await
        {
            Ok(r) => {
                online = Some(r.into_inner());
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let online = online.expect("b reads the view a defined");
    assert!(
        is_pushed(&online.results[0]),
        "b reads what a was pushed: {:?}",
        online.results[0]
    );
    let mut history = fb
        .get_historical_features(pb::GetHistoricalFeaturesRequest {
            features,
            entity_rows: vec![pb::EntityRow {
                values: vec!["F1".into()],
                timestamp: Some(prost_types::Timestamp {
                    seconds: pushed_at + 1,
                    nanos: 0,
                }),
            }],
        })
        .await
        .expect("historical features from b")
        .into_inner();
    let chunk = history
        .message()
        .await
        .expect("a chunk")
        .expect("one chunk");
    assert!(
        is_pushed(&chunk.results[0]),
        "b's point-in-time read sees the row a wrote to the history on S3: {:?}",
        chunk.results[0]
    );

    // A traffic split places each customer on the same version on every replica.
    shared.cli(&["models", "alias", "churn", "challenger", "1"]);
    shared.cli(&["models", "traffic", "churn", "champion=50", "challenger=50"]);
    let customers: Vec<String> = (0..60).map(|i| format!("C{:06}", 100_000 + i)).collect();
    let mut placements: Vec<Vec<String>> = Vec::new();
    for r in [&a, &b, &c] {
        let mut client = GrpcInferenceServiceClient::new(r.channel().await);
        let mut previous: Vec<String> = Vec::new();
        let mut placed: Vec<String> = Vec::new();
        for _ in 0..200 {
            placed = Vec::with_capacity(customers.len());
            for id in &customers {
                let answer = client
                    .model_infer(churn_request(Some(id)))
                    .await
                    .expect("infer under the split");
                placed.push(answer.into_inner().model_version);
            }
            // Until the replica has the split (both versions answer some customers) and
            // holds it (a second pass places everyone alike).
            let split = placed.iter().any(|v| v == "1") && placed.iter().any(|v| v == "2");
            if split && placed == previous {
                break;
            }
            previous = placed.clone();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        placements.push(placed);
    }
    assert!(
        placements[0].iter().any(|v| v == "1") && placements[0].iter().any(|v| v == "2"),
        "the split sends customers to both versions: {:?}",
        placements[0]
    );
    assert_eq!(
        placements[0], placements[1],
        "a and b place customers alike"
    );
    assert_eq!(
        placements[0], placements[2],
        "a and c place customers alike"
    );

    // With a killed (SIGKILL), b and c answer everything; clients that know all three
    // addresses (a balanced channel) lose only what they had sent to a.
    let load = Load::start(&[&b, &c]).await;
    let balanced = Channel::balance_list(
        [&a, &b, &c]
            .iter()
            .map(|r| Endpoint::from_shared(r.url.clone()).expect("url")),
    );
    let going = Arc::new(AtomicBool::new(true));
    let mut spread = Vec::new();
    for _ in 0..BALANCED_CLIENTS {
        let mut client = GrpcInferenceServiceClient::new(balanced.clone());
        let going = Arc::clone(&going);
        spread.push(tokio::spawn(async move {
            let (mut answered, mut resent, mut failed) = (0u64, 0u64, 0u64);
            let mut since_failure = 0u64;
            while going.load(Ordering::Relaxed) {
                match client.model_infer(churn_request(None)).await {
                    Ok(_) => answered += 1,
                    // Never left the client (the balancer picked a's address before it
                    // learnt a was gone): gRPC clients resend these transparently (gRFC
                    // A6), and so does this one.
                    Err(status)
                        if status.code() == tonic::Code::Unavailable
                            && status.message().contains("tcp connect error") =>
                    {
                        resent += 1;
                    }
                    // Sent to a and cut by its death (its connection reset, broken or
                    // closed under the call): in flight on a. Nothing else may fail.
                    Err(status) => {
                        let cut = format!("{status:?}");
                        assert!(
                            ["ConnectionReset", "BrokenPipe", "connection closed"]
                                .iter()
                                .any(|how| cut.contains(how)),
                            "a failure that is not a's connection dying: {status}"
                        );
                        failed += 1;
                        since_failure = 0;
                    }
                }
                if failed > 0 {
                    since_failure += 1;
                }
            }
            // After the last loss, the client went on being answered.
            (answered, resent, failed, failed == 0 || since_failure > 20)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.kill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (seen, failed) = load.stop().await;
    going.store(false, Ordering::Relaxed);
    let (mut answered, mut resent, mut lost) = (0, 0, 0);
    for t in spread {
        let (a, r, f, recovered) = t.await.expect("balanced client");
        assert!(
            recovered,
            "a balanced client is answered again after a dies"
        );
        answered += a;
        resent += r;
        lost += f;
    }
    assert_eq!(failed, 0, "b and c fail nothing when a dies");
    assert!(seen.iter().all(|s| !s.is_empty()));
    eprintln!(
        "fleet: with a killed, b and c answered {} direct requests, none failed; balanced \
         clients over a, b and c answered {answered}, resent {resent} that never left them, \
         and lost {lost}, each one sent to a and cut by its death",
        seen.iter().map(Vec::len).sum::<usize>()
    );

    // The load reports show each instance apart, and a stops counting as serving once
    // it has been silent for the instance TTL, while b and c keep serving.
    let mut shown = String::new();
    for _ in 0..200 {
        shown = shared.cli(&["models", "show", "churn"]);
        // Rows: VERSION INSTANCE LOAD …
        let row = |instance: &str, state: &str| {
            shown.lines().any(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.len() > 2 && cells[0] == "2" && cells[1] == instance && cells[2] == state
            })
        };
        if row("a", "gone") && row("b", "serving") && row("c", "serving") {
            eprintln!(
                "fleet: models show marked a gone {} ms after it was killed (TTL 2 s)",
                killed.elapsed().as_millis()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a was never shown gone, or b and c not serving:\n{shown}");
}
