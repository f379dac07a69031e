//! `TestServer`: a server on 127.0.0.1:0 with its own data directory, typed clients, and
//! a clean stop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use mercator_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mercator_proto::inference::{self as pb};
use mercator_proto::v1::registry_client::RegistryClient;
use mercator_registry::{NewVersion, Registry};
use mercator_server::{App, Config};
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub const CHURN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/churn");
pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../runtime/tests/fixtures/xgboost"
);

pub struct TestServer {
    pub grpc: SocketAddr,
    pub metrics: SocketAddr,
    pub registry: Registry,
    pub data_dir: tempfile::TempDir,
    /// How `channel` connects, when the server speaks TLS.
    tls: Option<tonic::transport::ClientTlsConfig>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

type ConfigTweak = Box<dyn FnOnce(&mut Config) + Send>;

/// Builder: which models to register before the server starts, and config tweaks.
#[derive(Default)]
pub struct TestServerBuilder {
    models: Vec<(String, BTreeMap<String, Bytes>)>,
    tweak: Option<ConfigTweak>,
    data_dir: Option<tempfile::TempDir>,
    demo: bool,
    /// The demo intent model's encoder files (`demo_encoder`).
    encoder: Option<std::path::PathBuf>,
    tls: Option<tonic::transport::ClientTlsConfig>,
}

impl TestServerBuilder {
    /// Registers `files` as `name` with the champion alias.
    pub fn model(mut self, name: &str, files: BTreeMap<String, Bytes>) -> Self {
        self.models.push((name.to_string(), files));
        self
    }

    /// The demo churn model.
    pub fn churn(self) -> Self {
        let files = read_dir_files(Path::new(CHURN_DIR), &["mercator.json", "model.json"]);
        self.model("churn", files)
    }

    /// Connects over TLS with `tls` (for a server configured with `[tls]`).
    pub fn tls(mut self, tls: tonic::transport::ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn config(mut self, f: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.tweak = Some(Box::new(f));
        self
    }

    /// Sets up the demo as `mercator serve --demo` does: model, features and customers.
    pub fn demo(mut self) -> Self {
        self.demo = true;
        self
    }

    /// The demo with its intent model on all-MiniLM-L6-v2, as `mercator serve --demo`
    /// serves it where the encoder could be fetched (`MERCATOR_MINILM_DIR`, set by
    /// scripts/test.sh); `None` where it was not (never on CI).
    pub fn demo_encoder(mut self) -> Option<Self> {
        let dir = crate::intent_encoder::minilm()?;
        self.demo = true;
        self.encoder = Some(dir);
        Some(self)
    }

    /// Reuses a data directory (e.g. one a stopped server left), as a restart would.
    pub fn data_dir(mut self, dir: tempfile::TempDir) -> Self {
        self.data_dir = Some(dir);
        self
    }

    pub async fn start(self) -> TestServer {
        let data_dir = match self.data_dir {
            Some(d) => d,
            None => tempfile::tempdir().expect("tempdir"),
        };
        let mut config = Config::default();
        config.server.data_dir = data_dir.path().to_path_buf();
        config.server.shutdown_grace_secs = 5.0;
        config.grpc.addr = "127.0.0.1:0".parse().expect("addr");
        config.metrics.addr = "127.0.0.1:0".parse().expect("addr");
        config.registry.poll_interval_secs = 0.2;
        // Tests read metrics and use reflection without a credential unless they test
        // protection (whose defaults `hardening.rs` checks).
        config.metrics.protect = false;
        config.auth.protect_reflection = false;
        // Tests start servers whose models fail to load on purpose, and wait for
        // readiness as the end of the initial loads; `hardening.rs` tests strictness.
        config.models.strict_readiness = false;
        if let Some(tweak) = self.tweak {
            tweak(&mut config);
        }
        let app = App::build(config).await.expect("build app");
        for (name, files) in self.models {
            app.registry()
                .register(NewVersion {
                    model: name,
                    files,
                    alias: Some("champion".into()),
                    actor: "test".into(),
                    ..NewVersion::default()
                })
                .await
                .expect("register model");
        }
        if self.demo {
            mercator_server::demo::register_demo_models(app.registry(), self.encoder.as_deref())
                .await
                .expect("demo model");
            mercator_server::demo::load_demo_features(app.features().clone())
                .await
                .expect("demo features");
        }
        let grpc = app.grpc_addr().expect("grpc addr");
        let metrics = app.metrics_addr().expect("metrics addr");
        let registry = app.registry().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async move {
            let _ = rx.await;
        }));
        let server = TestServer {
            grpc,
            metrics,
            registry,
            data_dir,
            tls: self.tls,
            stop: Some(tx),
            task: Some(task),
        };
        server.wait_ready().await;
        server
    }
}

impl TestServer {
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("https://{}", self.grpc),
            None => format!("http://{}", self.grpc),
        }
    }

    pub async fn channel(&self) -> Channel {
        let mut endpoint = Channel::from_shared(self.url()).expect("url");
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).expect("tls");
        }
        endpoint.connect().await.expect("connect")
    }

    pub async fn v2(&self) -> GrpcInferenceServiceClient<Channel> {
        GrpcInferenceServiceClient::new(self.channel().await)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20)
    }

    pub async fn registry_client(&self) -> RegistryClient<Channel> {
        RegistryClient::new(self.channel().await)
    }

    async fn wait_ready(&self) {
        let mut client = self.v2().await;
        for _ in 0..200 {
            let ready = client
                .server_ready(pb::ServerReadyRequest {})
                .await
                .expect("ready")
                .into_inner()
                .ready;
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server never became ready");
    }

    /// Waits until requests without a version (the champion) are answered by `version`.
    pub async fn wait_for_champion(&self, model: &str, version: &str) {
        let mut last = None;
        for _ in 0..400 {
            last = self.champion_version(model).await;
            if last.as_deref() == Some(version) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{model} never served version {version} as champion (last: {last:?})");
    }

    /// Waits until the model's champion is loaded (for models that zeros cannot call).
    pub async fn wait_for_ready(&self, model: &str) {
        let mut client = self.v2().await;
        for _ in 0..400 {
            let ready = client
                .model_ready(pb::ModelReadyRequest {
                    name: model.into(),
                    version: String::new(),
                })
                .await
                .is_ok_and(|r| r.into_inner().ready);
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{model} never became ready");
    }

    /// The version that answers a one-row request of zeros sent without a version.
    pub async fn champion_version(&self, model: &str) -> Option<String> {
        let mut client = self.v2().await;
        let meta = client
            .model_metadata(pb::ModelMetadataRequest {
                name: model.into(),
                version: String::new(),
            })
            .await
            .ok()?
            .into_inner();
        let mut req = pb::ModelInferRequest {
            model_name: model.into(),
            ..Default::default()
        };
        // The entity keys that may replace bound inputs are left out, as a client
        // sending the features does.
        for t in meta
            .inputs
            .iter()
            .filter(|t| !t.parameters.contains_key("replaces"))
        {
            let shape: Vec<i64> = t.shape.iter().map(|&d| if d < 0 { 1 } else { d }).collect();
            let count: i64 = shape.iter().product();
            let size = mercator_runtime::DType::parse(&t.datatype)?.size_bytes()?;
            req.inputs.push(input(&t.name, &t.datatype, shape));
            req.raw_input_contents
                .push(vec![0u8; count as usize * size]);
        }
        Some(
            client
                .model_infer(req)
                .await
                .ok()?
                .into_inner()
                .model_version,
        )
    }

    /// Polls `/metrics` until `series` (its name and labels, as printed) appears; its
    /// value and the text it was found in.
    pub async fn wait_for_metric(&self, series: &str) -> (f64, String) {
        self.wait_for_metric_where(series, |_| true).await
    }

    /// Polls `/metrics` (for up to 10 s) until `series` has a value that `ok` accepts.
    pub async fn wait_for_metric_where(
        &self,
        series: &str,
        ok: impl Fn(f64) -> bool,
    ) -> (f64, String) {
        let mut text = String::new();
        for _ in 0..200 {
            text = self.metrics_text().await;
            if let Some(v) = metric_value(&text, series).filter(|v| ok(*v)) {
                return (v, text);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{series} never took the value wanted in\n{text}");
    }

    /// Fetches `/metrics` as text.
    pub async fn metrics_text(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics)
            .await
            .expect("connect metrics");
        stream
            .write_all(
                format!(
                    "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.metrics
                )
                .as_bytes(),
            )
            .await
            .expect("write");
        let mut body = String::new();
        stream.read_to_string(&mut body).await.expect("read");
        let (head, rest) = body.split_once("\r\n\r\n").expect("http response");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        }
    }

    pub async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Stops the server and hands back its data directory.
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("server ran cleanly");
        }
        self.data_dir
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

pub fn read_dir_files(dir: &Path, names: &[&str]) -> BTreeMap<String, Bytes> {
    names
        .iter()
        .map(|n| {
            (
                n.to_string(),
                Bytes::from(std::fs::read(dir.join(n)).expect("read file")),
            )
        })
        .collect()
}

/// Files for a model built from an XGBoost fixture with the given manifest JSON.
pub fn fixture_model(fixture: &str, manifest: serde_json::Value) -> BTreeMap<String, Bytes> {
    let model = std::fs::read(PathBuf::from(FIXTURES).join(format!("{fixture}.model.json")))
        .expect("fixture");
    BTreeMap::from([
        (
            "mercator.json".to_string(),
            Bytes::from(manifest.to_string()),
        ),
        ("model.json".to_string(), Bytes::from(model)),
    ])
}

/// The demo's held-out rows and xgboost's predictions for them.
pub struct ChurnExpected {
    pub customer_ids: Vec<String>,
    pub inputs: Vec<f32>,
    pub rows: usize,
    pub probability: Vec<f64>,
    pub margin: Vec<f64>,
}

pub fn churn_expected() -> ChurnExpected {
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(CHURN_DIR).join("expected.json")).expect("expected"),
    )
    .expect("json");
    let rows = v["inputs"].as_array().expect("inputs");
    let inputs = rows
        .iter()
        .flat_map(|r| {
            r.as_array()
                .expect("row")
                .iter()
                .map(|x| x.as_f64().map_or(f32::NAN, |f| f as f32))
        })
        .collect();
    let nums = |key: &str| {
        v[key]
            .as_array()
            .expect(key)
            .iter()
            .map(|x| x.as_f64().expect("num"))
            .collect()
    };
    ChurnExpected {
        customer_ids: v["customer_ids"]
            .as_array()
            .expect("customer_ids")
            .iter()
            .map(|x| x.as_str().expect("id").to_string())
            .collect(),
        inputs,
        rows: rows.len(),
        probability: nums("churn_probability"),
        margin: nums("churn_margin"),
    }
}

/// V2 raw BYTES contents: each element as a 4-byte little-endian length and its bytes.
pub fn bytes_raw(elements: &[&[u8]]) -> Vec<u8> {
    elements
        .iter()
        .flat_map(|e| {
            (e.len() as u32)
                .to_le_bytes()
                .into_iter()
                .chain(e.iter().copied())
        })
        .collect()
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn f32_from(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn input(
    name: &str,
    datatype: &str,
    shape: Vec<i64>,
) -> pb::model_infer_request::InferInputTensor {
    pb::model_infer_request::InferInputTensor {
        name: name.into(),
        datatype: datatype.into(),
        shape,
        ..Default::default()
    }
}

/// The value of `series` (a metric's name and labels, as printed) in a metrics text.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `msg` with `authorization: Bearer <token>`.
pub fn bearer<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    let value = format!("Bearer {token}").parse().expect("header");
    req.metadata_mut().insert("authorization", value);
    req
}

/// Database `db` of the Redis at `url`, emptied: a test that owns a database number
/// starts from nothing. Returns its URL.
pub async fn empty_redis_db(url: &str, db: u32) -> String {
    let url = format!("{}/{db}", url.trim_end_matches('/'));
    let client = redis::Client::open(url.as_str()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis");
    let _: () = redis::cmd("FLUSHDB")
        .query_async(&mut conn)
        .await
        .expect("flushdb");
    url
}

/// A port free on 127.0.0.1 now (for a real binary started on it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
