//! The forecasting and intent endpoints over gRPC, against the demo served in this
//! process, in one run: sequential `Forecast` calls per series for the neural forecaster
//! (`demand`) and the ETS bundle (`demand_ets`), one `ForecastBatch` of 10,000 series
//! for each (the demo's 200 series, repeated), and sequential `Intent/Classify` calls.
//! The floor is `ServerLive` on the same server and connection: a call that does nothing.
//! Prints per-call and per-series times and their ratios to the floor.
//!
//!     cargo run --release -p mercator-benches --bin forecast_load -- --calls 2000

use std::time::{Duration, Instant};

use clap::Parser;
use mercator_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mercator_proto::inference::{ModelReadyRequest, ServerLiveRequest};
use mercator_proto::v1::forecasting_client::ForecastingClient;
use mercator_proto::v1::intent_client::IntentClient;
use mercator_proto::v1::{ClassifyRequest, ForecastBatchRequest, ForecastRequest, SeriesId};
use tonic::transport::Channel;

/// Command-line options.
#[derive(Debug, Parser)]
struct Args {
    /// Sequential calls per single-call scenario.
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// Series in each ForecastBatch.
    #[arg(long, default_value_t = 10_000)]
    batch_series: usize,
    /// ForecastBatch calls per model (the median is reported).
    #[arg(long, default_value_t = 5)]
    batches: usize,
}

/// The demo's series, from `examples/demand/history.csv`.
fn demo_series() -> anyhow::Result<Vec<SeriesId>> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demand/history.csv");
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .skip(1)
        .map(|l| {
            let mut cells = l.split(',');
            match (cells.next(), cells.next()) {
                (Some(sku), Some(loc)) => Ok(SeriesId {
                    sku_id: sku.into(),
                    location_id: loc.into(),
                }),
                _ => anyhow::bail!("bad row: {l}"),
            }
        })
        .collect()
}

/// Median seconds per call of `calls` sequential runs of `call` (after 50 warm-ups).
async fn per_call<F, Fut>(calls: usize, mut call: F) -> anyhow::Result<f64>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for i in 0..50 {
        call(i).await?;
    }
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls {
        let t = Instant::now();
        call(i).await?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let mut config = mercator_server::Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.grpc.addr = "127.0.0.1:0".parse()?;
    config.metrics.addr = "127.0.0.1:0".parse()?;
    let app = mercator_server::App::build(config).await?;
    mercator_server::demo::register_demo_models(app.registry(), None).await?;
    mercator_server::demo::load_demo_features(std::sync::Arc::clone(app.features())).await?;
    let addr = app.grpc_addr()?;
    tokio::spawn(app.run(std::future::pending()));
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut v2 = GrpcInferenceServiceClient::new(channel.clone());
    for model in ["demand", "demand_ets", "intent"] {
        while !v2
            .model_ready(ModelReadyRequest {
                name: model.into(),
                version: String::new(),
            })
            .await?
            .into_inner()
            .ready
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let series = demo_series()?;
    let forecasting = ForecastingClient::new(channel.clone()).max_decoding_message_size(1 << 30);
    let intent = IntentClient::new(channel);

    let floor = per_call(args.calls, |_| {
        let mut v2 = v2.clone();
        async move {
            v2.server_live(ServerLiveRequest {}).await?;
            Ok(())
        }
    })
    .await?;
    println!("floor (ServerLive): {:.1} µs per call", floor * 1e6);

    let texts = [
        "where is my parcel, it was due yesterday",
        "I want to cancel my order please",
        "the promo code SAVE10 does not work",
        "can I talk to a real person",
    ];
    let classify = per_call(args.calls, |i| {
        let mut c = intent.clone();
        async move {
            c.classify(ClassifyRequest {
                text: texts[i % texts.len()].as_bytes().to_vec(),
                ..Default::default()
            })
            .await?;
            Ok(())
        }
    })
    .await?;
    println!(
        "Intent/Classify: {:.1} µs per text ({:.2}x the floor)",
        classify * 1e6,
        classify / floor
    );

    for model in ["demand", "demand_ets"] {
        let single = per_call(args.calls, |i| {
            let mut c = forecasting.clone();
            let s = series[i % series.len()].clone();
            async move {
                c.forecast(ForecastRequest {
                    model_name: model.into(),
                    series: Some(s),
                    horizon_days: 28,
                    ..Default::default()
                })
                .await?;
                Ok(())
            }
        })
        .await?;
        let ids: Vec<SeriesId> = series
            .iter()
            .cycle()
            .take(args.batch_series)
            .cloned()
            .collect();
        let mut times = Vec::new();
        for _ in 0..args.batches.max(1) {
            let t = Instant::now();
            let mut stream = forecasting
                .clone()
                .forecast_batch(ForecastBatchRequest {
                    model_name: model.into(),
                    series: ids.clone(),
                    horizon_days: 28,
                    ..Default::default()
                })
                .await?
                .into_inner();
            let mut n = 0;
            while let Some(m) = stream.message().await? {
                n += m.forecasts.iter().filter(|f| f.code == 0).count();
            }
            anyhow::ensure!(n == ids.len(), "{model}: {n} of {} forecast", ids.len());
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let batch = times[times.len() / 2];
        let per_series = batch / ids.len() as f64;
        println!(
            "{model}: Forecast {:.1} µs per call ({:.2}x the floor); ForecastBatch of {} series \
             {:.1} ms = {:.1} µs per series, {:.0} series/s ({:.1}x faster per series than \
             single calls)",
            single * 1e6,
            single / floor,
            ids.len(),
            batch * 1e3,
            per_series * 1e6,
            1.0 / per_series,
            single / per_series
        );
    }
    Ok(())
}
