//! What the drift window costs inference: one row and 256 rows of the demo churn model,
//! alone and with the rows (12 features, 2 predictions) added to its drift window; one
//! 28-day forecast of the demo ETS bundle, alone and with its two summaries added to its
//! window; and an evaluation of a full 10,000-row window, which runs off the request path.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mercator_benches::{CHURN_FEATURES, churn_dir, churn_rows};
use mercator_runtime::drift::{Columns, Profile};
use mercator_runtime::forecast::Series;
use mercator_runtime::{Manifest, Tensor, TensorData};
use mercator_server::monitor::drift::{DriftSettings, Monitor};

fn bench(c: &mut Criterion) {
    let read = |f: &str| std::fs::read(churn_dir().join(f)).expect("file");
    let manifest = Manifest::parse(&read("mercator.json")).expect("manifest");
    let model = manifest.build(&read("model.json")).expect("model");
    let columns = Columns::of(&manifest);
    let profile = Profile::parse(&read("profile.json"), &columns).expect("profile");
    let settings = DriftSettings {
        window_samples: 10_000,
        window_age: Duration::from_secs(3600),
        min_samples: 500,
        interval: Duration::from_secs(15),
    };
    let skipped = prometheus::IntCounter::new("skipped", "skipped").expect("counter");
    let monitor = Monitor::new(&columns, &profile, &settings, skipped);
    let wanted = [0, 1];
    let mut group = c.benchmark_group("drift");
    for rows in [1usize, 256] {
        let x = churn_rows(rows).expect("rows");
        let inputs =
            vec![Tensor::new(vec![rows, CHURN_FEATURES], TensorData::F32(x)).expect("tensor")];
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(format!("infer_{rows}_rows"), |b| {
            b.iter(|| model.infer(&inputs, &wanted).expect("infer"))
        });
        group.bench_function(format!("infer_{rows}_rows_with_drift"), |b| {
            b.iter(|| {
                let outputs = model.infer(&inputs, &wanted).expect("infer");
                monitor.observe(&inputs, &wanted, &outputs, rows);
                outputs
            })
        });
        // The window's part alone: on a machine this noisy, the difference of the two
        // above can hide it either way.
        let outputs = model.infer(&inputs, &wanted).expect("infer");
        group.bench_function(format!("window_{rows}_rows"), |b| {
            b.iter(|| monitor.observe(&inputs, &wanted, &outputs, rows))
        });
    }
    forecasts(&mut group, &settings);
    // Fill the window, then time one evaluation of it.
    let x = churn_rows(10_000).expect("rows");
    let inputs =
        vec![Tensor::new(vec![10_000, CHURN_FEATURES], TensorData::F32(x)).expect("tensor")];
    let outputs = model.infer(&inputs, &wanted).expect("infer");
    monitor.observe(&inputs, &wanted, &outputs, 10_000);
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("evaluate_10000_row_window", |b| {
        b.iter(|| monitor.evaluate(&monitor.snapshot(settings.window_age)))
    });
    group.finish();
}

/// One ETS forecast of the first demo series, with and without its window.
fn forecasts(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    settings: &DriftSettings,
) {
    let dir = mercator_benches::churn_dir().join("../demand");
    let read = |f: &str| std::fs::read(dir.join(f)).expect("file");
    let manifest = Manifest::parse(&read("ets/mercator.json")).expect("manifest");
    let model = manifest.build(&read("ets/ets.json")).expect("model");
    let forecaster = model.forecaster().expect("a forecaster");
    let columns = Columns::of(&manifest);
    let profile = Profile::parse(&read("ets/profile.json"), &columns).expect("profile");
    let skipped = prometheus::IntCounter::new("skipped", "skipped").expect("counter");
    let monitor = Monitor::new(&columns, &profile, settings, skipped);
    let history = String::from_utf8(read("history.csv")).expect("utf-8");
    let first: Vec<&str> = history
        .lines()
        .nth(1)
        .expect("a series")
        .split(',')
        .collect();
    let key = [first[0].to_string(), first[1].to_string()];
    let values: Vec<f64> = first[2]
        .split(';')
        .map(|v| v.parse().expect("number"))
        .collect();
    let last_date = mercator_runtime::forecast::parse_date(first[3]);
    let series = Series {
        key: &key,
        values: &values,
        last_date,
    };
    let quantiles = [0.1, 0.5, 0.9];
    group.throughput(Throughput::Elements(1));
    group.bench_function("ets_forecast_28d", |b| {
        b.iter(|| {
            forecaster
                .forecast(&series, 28, &quantiles)
                .expect("forecast")
        })
    });
    group.bench_function("ets_forecast_28d_with_drift", |b| {
        b.iter(|| {
            let f = forecaster
                .forecast(&series, 28, &quantiles)
                .expect("forecast");
            monitor.observe_forecasts(&[(&values, &f.mean)]);
            f
        })
    });
    let f = forecaster
        .forecast(&series, 28, &quantiles)
        .expect("forecast");
    group.bench_function("window_1_forecast", |b| {
        b.iter(|| monitor.observe_forecasts(&[(&values, &f.mean)]))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
