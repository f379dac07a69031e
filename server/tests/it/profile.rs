//! Training profiles: `mercator profile build` profiles a registered version on its
//! training data (CSV or Parquet) and reproduces the profiles the demo models ship; a
//! registration whose `profile.json` does not fit the model is refused by name; data that
//! lacks a column or has a bad cell (a forecaster's history or date) gets a clear error.

use crate::cli::{fails, mercator, ok};
use crate::harness::CHURN_DIR;

const INTENT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/intent");
const DEMAND_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demand");

fn registered(models: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().to_str().expect("utf-8");
    for (name, folder) in models {
        ok(&[
            "models",
            "--data-dir",
            data,
            "register",
            name,
            folder,
            "--alias",
            "champion",
        ]);
    }
    dir
}

#[test]
fn the_shipped_profiles_are_what_profile_build_makes() {
    let net = format!("{DEMAND_DIR}/net");
    let ets = format!("{DEMAND_DIR}/ets");
    let dir = registered(&[
        ("churn", CHURN_DIR),
        ("intent", INTENT_DIR),
        ("demand", &net),
        ("demand_ets", &ets),
    ]);
    let data = dir.path().to_str().expect("utf-8");
    // Forecasters are profiled on the sales histories the feature store is loaded with.
    let history = format!("{DEMAND_DIR}/history.csv");
    for (model, folder, table) in [
        ("churn", CHURN_DIR, format!("{CHURN_DIR}/customers.csv")),
        ("intent", INTENT_DIR, format!("{INTENT_DIR}/train.csv")),
        ("demand", net.as_str(), history.clone()),
        ("demand_ets", ets.as_str(), history),
    ] {
        let out = dir.path().join(format!("{model}.json"));
        let printed = ok(&[
            "profile",
            "--data-dir",
            data,
            "build",
            &table,
            "--model",
            model,
            "--output",
            out.to_str().expect("utf-8"),
        ]);
        assert!(
            printed.contains(&format!("predictions of {model}@1")),
            "{printed}"
        );
        let built = std::fs::read(&out).expect("built");
        let shipped = std::fs::read(format!("{folder}/profile.json")).expect("shipped");
        assert!(
            built == shipped,
            "{folder}/profile.json is stale: rebuild it with `mercator profile build`"
        );
    }
}

#[test]
fn parquet_data_gives_the_same_profile_as_csv() {
    use std::sync::Arc;
    let dir = registered(&[("churn", CHURN_DIR)]);
    let data = dir.path().to_str().expect("utf-8");
    // customers.csv as Parquet: FP32 columns, empty cells as nulls.
    let text = std::fs::read_to_string(format!("{CHURN_DIR}/customers.csv")).expect("csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let columns: Vec<(&str, arrow_array::ArrayRef)> = header
        .iter()
        .enumerate()
        .skip(1)
        .map(|(j, name)| {
            let values: Vec<Option<f32>> = rows.iter().map(|r| r[j].parse::<f32>().ok()).collect();
            (
                *name,
                Arc::new(arrow_array::Float32Array::from(values)) as arrow_array::ArrayRef,
            )
        })
        .collect();
    let batch = arrow_array::RecordBatch::try_from_iter(columns).expect("batch");
    let path = dir.path().join("customers.parquet");
    let file = std::fs::File::create(&path).expect("create");
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    let out = dir.path().join("from-parquet.json");
    ok(&[
        "profile",
        "--data-dir",
        data,
        "build",
        path.to_str().expect("utf-8"),
        "--model",
        "churn",
        "--output",
        out.to_str().expect("utf-8"),
    ]);
    let built = std::fs::read(&out).expect("built");
    let shipped = std::fs::read(format!("{CHURN_DIR}/profile.json")).expect("shipped");
    assert!(built == shipped, "Parquet and CSV profiles differ");
}

#[test]
fn bad_data_and_unprofilable_models_are_named() {
    let dir = registered(&[("churn", CHURN_DIR)]);
    let data = dir.path().to_str().expect("utf-8");
    let csv = dir.path().join("short.csv");
    std::fs::write(&csv, "days_since_last_order,orders_90d\n1,2\n").expect("write");
    let csv = csv.to_str().expect("utf-8");
    let build = |model: &'static str| {
        [
            "profile",
            "--data-dir",
            data,
            "build",
            csv,
            "--model",
            model,
        ]
    };
    fails(&build("churn"), "no column 'spend_90d'");
    fails(&build("nope"), "'nope'");
    let demand = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demand/net");
    ok(&[
        "models",
        "--data-dir",
        data,
        "register",
        "demand",
        demand,
        "--alias",
        "champion",
    ]);
    fails(&build("demand"), "no column 'units'");
    // A forecaster's table: each bad cell named by row, series and column.
    let ets = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demand/ets");
    ok(&[
        "models",
        "--data-dir",
        data,
        "register",
        "demand_ets",
        ets,
        "--alias",
        "champion",
    ]);
    let histories = dir.path().join("histories.csv");
    for (row, needle) in [
        (
            "SKU000,berlin,1;x;3,2026-10-31",
            "row 1 (series SKU000/berlin): column 'units': 'x'",
        ),
        (
            "SKU000,berlin,1;2;3,2026-13-01",
            "'2026-13-01' is not a YYYY-MM-DD date",
        ),
        (
            ",berlin,1;2;3,2026-10-31",
            "row 1: column 'sku_id' is empty",
        ),
    ] {
        std::fs::write(
            &histories,
            format!("sku_id,location_id,units,last_date\n{row}\n"),
        )
        .expect("write");
        fails(
            &[
                "profile",
                "--data-dir",
                data,
                "build",
                histories.to_str().expect("utf-8"),
                "--model",
                "demand_ets",
            ],
            needle,
        );
    }
}

#[test]
fn a_profile_that_does_not_fit_the_model_is_refused_at_registration() {
    let dir = tempfile::tempdir().expect("dir");
    let version = dir.path().join("churn");
    std::fs::create_dir(&version).expect("mkdir");
    for f in ["mercator.json", "model.json"] {
        std::fs::copy(format!("{CHURN_DIR}/{f}"), version.join(f)).expect("copy");
    }
    let profile = std::fs::read_to_string(format!("{CHURN_DIR}/profile.json"))
        .expect("profile")
        .replace("\"return_rate\"", "\"refund_rate\"");
    std::fs::write(version.join("profile.json"), profile).expect("write");
    let out = mercator(&[
        "models",
        "--data-dir",
        dir.path().to_str().expect("utf-8"),
        "register",
        "churn",
        version.to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("profile.json") && stderr.contains("no column 'refund_rate'"),
        "{stderr}"
    );
}

/// One-step registration: `models register … --profile-data TRAIN.csv` builds the drift
/// profile for the version before it is registered and stores both together; the stored
/// profile is the one `profile build` makes (the demo's shipped one). A version that
/// already has a profile is refused rather than overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_with_profile_data_stores_the_profile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("churn");
    std::fs::create_dir(&folder).expect("mkdir");
    for f in ["mercator.json", "model.json"] {
        std::fs::copy(format!("{CHURN_DIR}/{f}"), folder.join(f)).expect("copy");
    }
    let data = dir.path().join("data");
    let data_s = data.display().to_string();
    let csv = format!("{CHURN_DIR}/customers.csv");
    let folder_s = folder.display().to_string();
    let register = [
        "models",
        "--data-dir",
        &data_s,
        "register",
        "churn",
        &folder_s,
        "--profile-data",
        &csv,
    ];
    let out = ok(&register);
    assert!(out.contains("registered churn@1 (3 files)"), "{out}");

    let registry = mercator_registry::Registry::open(
        &format!("sqlite://{}/registry.db", data.display()),
        mercator_registry::ArtifactStore::open(&data.join("artifacts").display().to_string())
            .expect("artifacts"),
        std::sync::Arc::new(mercator_server::models::BuildCheck),
    )
    .await
    .expect("the CLI's registry");
    let record = registry
        .get_version("churn", &mercator_registry::VersionSelector::Number(1))
        .await
        .expect("churn@1");
    let files = registry.fetch_artifacts(&record).await.expect("files");
    let stored = files
        .get("profile.json")
        .expect("the profile was registered");
    let shipped = std::fs::read(format!("{CHURN_DIR}/profile.json")).expect("shipped");
    assert!(
        stored.as_ref() == shipped.as_slice(),
        "the profile profile build makes"
    );

    std::fs::copy(
        format!("{CHURN_DIR}/profile.json"),
        folder.join("profile.json"),
    )
    .expect("copy");
    fails(&register, "already has a profile.json");
}
