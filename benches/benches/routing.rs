//! What a traffic split adds to a request: routing a request through the model table with
//! no split, with a 90/10 split placed by customer id (two XxHash64 of the id), and placed
//! at random; next to one row of the demo churn model, the work it routes to.

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use mercator_benches::{CHURN_FEATURES, churn_dir, churn_rows};
use mercator_registry::model::TrafficRoute;
use mercator_runtime::{Manifest, Tensor, TensorData};
use mercator_server::models::routing::Routes;
use mercator_server::models::table::{LoadedModel, ModelEntry, Stats};
use mercator_server::models::{ModelTable, Placement};
use mercator_server::monitor::{Metrics, VersionMetrics};

fn loaded(metrics: &Metrics, version: u64) -> Arc<LoadedModel> {
    let manifest =
        Manifest::parse(&std::fs::read(churn_dir().join("mercator.json")).expect("manifest"))
            .expect("parse");
    let weights = std::fs::read(churn_dir().join("model.json")).expect("weights");
    let model = manifest.build(&weights).expect("build");
    let sections = manifest.sections().expect("sections");
    Arc::new(LoadedModel {
        name: "churn".into(),
        version,
        version_label: version.to_string(),
        logged_features: LoadedModel::logged_features_of(&manifest),
        manifest,
        model: model.into(),
        max_batch_size: 4096,
        stats: Stats::new(4096),
        metrics: VersionMetrics::new(metrics, "churn", &version.to_string()),
        sections,
        drift: None,
        batcher: None,
    })
}

fn table(split: bool, metrics: &Metrics) -> ModelTable {
    let mut entry = ModelEntry::default();
    for v in [1, 2] {
        entry.versions.insert(v, loaded(metrics, v));
    }
    entry.aliases = BTreeMap::from([("champion".into(), 1), ("challenger".into(), 2)]);
    if split {
        let route = |alias: &str, percent| TrafficRoute {
            alias: alias.into(),
            percent,
            shadow: false,
        };
        entry.routes = Routes::resolve(
            &[route("champion", 90), route("challenger", 10)],
            |a| entry.aliases.get(a).copied(),
            Some(1),
        );
    }
    let mut t = ModelTable::default();
    t.models.insert("churn".into(), entry);
    t
}

fn bench(c: &mut Criterion) {
    let metrics = Metrics::register(&prometheus::Registry::new()).expect("metrics");
    let (plain, split) = (table(false, &metrics), table(true, &metrics));
    let mut group = c.benchmark_group("routing");
    group.bench_function("no_split", |b| {
        b.iter(|| {
            plain
                .route("churn", "", |_| Placement::of_entity("churn", "C100042"))
                .expect("route")
        })
    });
    group.bench_function("split_by_customer", |b| {
        b.iter(|| {
            split
                .route("churn", "", |_| Placement::of_entity("churn", "C100042"))
                .expect("route")
        })
    });
    group.bench_function("split_at_random", |b| {
        b.iter(|| {
            split
                .route("churn", "", |_| Placement::random())
                .expect("route")
        })
    });
    let row = churn_rows(1).expect("row");
    let input = vec![Tensor::new(vec![1, CHURN_FEATURES], TensorData::F32(row)).expect("tensor")];
    let model = loaded(&metrics, 3);
    group.bench_function("churn_infer_1_row", |b| {
        b.iter(|| model.model.infer(&input, &[0]).expect("infer"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
