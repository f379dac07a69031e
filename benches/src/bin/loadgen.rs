//! Load generator: many concurrent calls over a few HTTP/2 connections for a fixed time,
//! against the demo churn model served by Mercator and, in the same run, against a no-op
//! V2 handler (the gRPC floor on this machine). Scenarios per batch size: V2 `ModelInfer`
//! with the feature tensor; V2 `ModelInfer` with customer ids (features read from the
//! embedded store); and `Churn/Score` with the same ids. Then, for one row, the same calls
//! under a 90/10 traffic split over two versions, and with a shadow copying all traffic.
//! Prints throughput, p50/p99 latency and the ratio of each scenario to the floor and to
//! the tensor call (the split scenarios: to the same call without a split).
//!
//!     cargo run --release -p mercator-benches --bin loadgen -- --duration-secs 10

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use mercator_benches::noop::NoopV2;
use mercator_benches::{CHURN_FEATURES, churn_rows};
use mercator_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mercator_proto::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
use mercator_proto::inference::{self as pb};
use mercator_proto::v1::ScoreRequest;
use mercator_proto::v1::churn_client::ChurnClient;
use tonic::transport::{Channel, Server};

/// Command-line options.
#[derive(Debug, Parser)]
struct Args {
    /// Seconds to measure each scenario (after a one-second warm-up).
    #[arg(long, default_value_t = 5.0)]
    duration_secs: f64,
    /// Concurrent requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the requests share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Batches with at least this many rows run on the blocking pool (server config key).
    #[arg(long, default_value_t = mercator_server::Config::default().serving.offload_min_rows)]
    offload_min_rows: usize,
    /// Rows per request, comma-separated.
    #[arg(long, default_value = "1,64", value_delimiter = ',')]
    rows: Vec<usize>,
}

struct Outcome {
    requests: usize,
    errors: usize,
    seconds: f64,
    latencies_us: Vec<u32>,
}

impl Outcome {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[i])
    }
}

/// One kind of call, repeated by every task.
#[derive(Debug, Clone)]
enum Call {
    Infer(pb::ModelInferRequest),
    Score(ScoreRequest),
}

async fn run_load(addr: SocketAddr, request: Call, args: &Args) -> anyhow::Result<Outcome> {
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(
            Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?,
        );
    }
    let request = Arc::new(request);
    let measure = Duration::from_secs_f64(args.duration_secs);
    let start = Instant::now();
    let warm_until = start + Duration::from_secs(1);
    let stop_at = warm_until + measure;
    let mut tasks = Vec::new();
    for i in 0..args.concurrency.max(1) {
        let channel = channels[i % channels.len()].clone();
        let mut client = GrpcInferenceServiceClient::new(channel.clone());
        let mut churn = ChurnClient::new(channel);
        let request = Arc::clone(&request);
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            loop {
                let sent = Instant::now();
                if sent >= stop_at {
                    break;
                }
                let ok = match &*request {
                    Call::Infer(r) => client.model_infer(r.clone()).await.is_ok(),
                    Call::Score(r) => churn
                        .score(r.clone())
                        .await
                        .is_ok_and(|s| s.get_ref().scores.iter().all(|c| c.status == 1)),
                };
                if sent >= warm_until {
                    if ok {
                        latencies
                            .push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        latencies_us.extend(l);
        errors += e;
    }
    latencies_us.sort_unstable();
    Ok(Outcome {
        requests: latencies_us.len(),
        errors,
        seconds: measure.as_secs_f64(),
        latencies_us,
    })
}

fn churn_request(rows: usize, data: &[f32]) -> pb::ModelInferRequest {
    pb::ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "features".into(),
            datatype: "FP32".into(),
            shape: vec![rows as i64, CHURN_FEATURES as i64],
            ..Default::default()
        }],
        raw_input_contents: vec![
            data[..rows * CHURN_FEATURES]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ],
        ..Default::default()
    }
}

/// The first `n` demo customer ids (the rows `churn_rows` reads).
fn churn_ids(n: usize) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(mercator_benches::churn_dir().join("customers.csv"))?;
    let ids: Vec<String> = text
        .lines()
        .skip(1)
        .take(n)
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect();
    anyhow::ensure!(ids.len() == n, "customers.csv has fewer than {n} rows");
    Ok(ids)
}

/// A V2 request sending customer ids (BYTES) instead of the feature tensor.
fn keyed_request(ids: &[String]) -> pb::ModelInferRequest {
    pb::ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "customer_id".into(),
            datatype: "BYTES".into(),
            shape: vec![ids.len() as i64],
            ..Default::default()
        }],
        raw_input_contents: vec![
            ids.iter()
                .flat_map(|id| {
                    (id.len() as u32)
                        .to_le_bytes()
                        .into_iter()
                        .chain(id.bytes())
                })
                .collect(),
        ],
        ..Default::default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    mercator_server::telemetry::init("text");

    // Mercator with the demo model, on an ephemeral port, in this process.
    let dir = tempfile::tempdir()?;
    let mut config = mercator_server::Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.grpc.addr = "127.0.0.1:0".parse()?;
    config.metrics.addr = "127.0.0.1:0".parse()?;
    config.serving.offload_min_rows = args.offload_min_rows;
    config.registry.poll_interval_secs = 0.2;
    let app = mercator_server::App::build(config).await?;
    // The n-gram intent model, as the earlier runs measured.
    mercator_server::demo::register_demo_models(app.registry(), None).await?;
    mercator_server::demo::load_demo_features(Arc::clone(app.features())).await?;
    let mercator_addr = app.grpc_addr()?;
    let registry = app.registry().clone();
    tokio::spawn(app.run(std::future::pending()));

    // The floor: a V2 server whose ModelInfer does nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let noop_addr = listener.local_addr()?;
    tokio::spawn(
        Server::builder()
            .add_service(GrpcInferenceServiceServer::new(NoopV2))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );

    let mut ready = GrpcInferenceServiceClient::new(
        Channel::from_shared(format!("http://{mercator_addr}"))?
            .connect()
            .await?,
    );
    while !ready
        .model_ready(pb::ModelReadyRequest {
            name: "churn".into(),
            version: String::new(),
        })
        .await?
        .into_inner()
        .ready
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let max_rows = *args.rows.iter().max().unwrap_or(&1);
    let data = churn_rows(max_rows)?;
    let ids = churn_ids(max_rows)?;
    println!(
        "{} concurrent over {} connections, {:.0}s per scenario, {} cores",
        args.concurrency,
        args.connections,
        args.duration_secs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<28} {:>10} {:>9} {:>9} {:>7} {:>9} {:>9} {:>11}",
        "scenario", "req/s", "p50 us", "p99 us", "errors", "vs floor", "vs tensor", "rows/s"
    );
    for &rows in &args.rows {
        let tensor = Call::Infer(churn_request(rows, &data));
        let floor = run_load(noop_addr, tensor.clone(), &args).await?;
        let by_tensor = run_load(mercator_addr, tensor, &args).await?;
        let keyed = run_load(
            mercator_addr,
            Call::Infer(keyed_request(&ids[..rows])),
            &args,
        )
        .await?;
        let score = run_load(
            mercator_addr,
            Call::Score(ScoreRequest {
                customer_ids: ids[..rows].to_vec(),
                ..Default::default()
            }),
            &args,
        )
        .await?;
        for (name, o) in [
            (format!("noop, {rows} rows"), &floor),
            (format!("ModelInfer tensor, {rows} rows"), &by_tensor),
            (format!("ModelInfer ids, {rows} rows"), &keyed),
            (format!("Churn/Score, {rows} ids"), &score),
        ] {
            println!(
                "{:<28} {:>10.0} {:>9.0} {:>9.0} {:>7} {:>9.2} {:>9.2} {:>11.0}",
                name,
                o.throughput(),
                o.percentile(0.5),
                o.percentile(0.99),
                o.errors,
                o.throughput() / floor.throughput(),
                o.throughput() / by_tensor.throughput(),
                o.throughput() * rows as f64
            );
        }
    }
    traffic_scenarios(&registry, mercator_addr, &ids[..1], &args).await
}

/// One-row `ModelInfer` by id and `Churn/Score` without a split, under a 90/10 split,
/// and with a shadow taking a copy of everything; each compared with the first.
async fn traffic_scenarios(
    registry: &mercator_registry::Registry,
    addr: SocketAddr,
    ids: &[String],
    args: &Args,
) -> anyhow::Result<()> {
    use mercator_registry::model::TrafficRoute;
    let files = ["mercator.json", "model.json"]
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(mercator_benches::churn_dir().join(f))?;
            Ok((f.to_string(), bytes::Bytes::from(bytes)))
        })
        .collect::<anyhow::Result<_>>()?;
    registry
        .register(mercator_registry::NewVersion {
            model: "churn".into(),
            files,
            alias: Some("challenger".into()),
            actor: "loadgen".into(),
            ..Default::default()
        })
        .await?;
    let calls = || {
        [
            ("ModelInfer id", Call::Infer(keyed_request(ids))),
            (
                "Churn/Score",
                Call::Score(ScoreRequest {
                    customer_ids: ids.to_vec(),
                    ..Default::default()
                }),
            ),
        ]
    };
    let mut plain = Vec::new();
    for (_, call) in calls() {
        plain.push(run_load(addr, call, args).await?);
    }
    let route = |alias: &str, percent, shadow| TrafficRoute {
        alias: alias.into(),
        percent,
        shadow,
    };
    let setups = [
        (
            "split 90/10",
            vec![route("champion", 90, false), route("challenger", 10, false)],
        ),
        ("shadow 100%", vec![route("challenger", 100, true)]),
    ];
    println!(
        "{:<28} {:>10} {:>9} {:>9} {:>7} {:>15}",
        "scenario, 1 row", "req/s", "p50 us", "p99 us", "errors", "vs no split"
    );
    for ((name, _), o) in calls().iter().zip(&plain) {
        println!(
            "{:<28} {:>10.0} {:>9.0} {:>9.0} {:>7} {:>15.3}",
            name,
            o.throughput(),
            o.percentile(0.5),
            o.percentile(0.99),
            o.errors,
            1.0
        );
    }
    for (setup, routes) in setups {
        registry
            .set_traffic("churn", &routes, "loadgen", setup)
            .await?;
        // The server polls every 0.2 s.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for ((name, call), base) in calls().into_iter().zip(&plain) {
            let o = run_load(addr, call, args).await?;
            println!(
                "{:<28} {:>10.0} {:>9.0} {:>9.0} {:>7} {:>15.3}",
                format!("{name}, {setup}"),
                o.throughput(),
                o.percentile(0.5),
                o.percentile(0.99),
                o.errors,
                o.throughput() / base.throughput()
            );
        }
    }
    Ok(())
}
