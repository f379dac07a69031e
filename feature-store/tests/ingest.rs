//! CSV loads through object_store: types, nulls, event times, unknown columns, errors that
//! name line and column, and the demo's customers file.

use std::sync::Arc;

use mercator_features::ingest::{LoadOptions, load_csv_url};
use mercator_features::{FeatureError, FeatureStore, Status, Value};

const DEFS: &str = r#"
[[entities]]
name = "customer"
join_keys = ["customer_id"]

[[feature_views]]
name = "activity"
entity = "customer"
fields = [
  { name = "orders_90d", type = "float32" },
  { name = "segment", type = "string" },
  { name = "vip", type = "bool" },
  { name = "weekly", type = "float32_list" },
]
"#;

fn store(dir: &std::path::Path) -> Arc<FeatureStore> {
    let s = FeatureStore::open(dir).expect("open");
    s.apply(DEFS, false).expect("apply");
    Arc::new(s)
}

#[tokio::test]
async fn loads_typed_values_nulls_and_event_times() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir.path().join("fs"));
    let csv = dir.path().join("rows.csv");
    std::fs::write(
        &csv,
        "customer_id,event_timestamp,orders_90d,segment,vip,weekly\n\
         c1,2026-01-01T00:00:00Z,3.5,gold,true,\"[1,2,3]\"\n\
         c2,1767225600,,silver,0,\n\
         c1,2025-12-01T00:00:00Z,9,old,false,\n",
    )
    .unwrap();
    let report = load_csv_url(
        Arc::clone(&s),
        "activity".into(),
        &csv.display().to_string(),
        LoadOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        (report.rows, report.written, report.ignored_older),
        (3, 2, 1)
    );
    let got = s
        .get_online(
            &[
                "activity:orders_90d".into(),
                "activity:segment".into(),
                "activity:vip".into(),
                "activity:weekly".into(),
            ],
            &[vec!["c1".into()], vec!["c2".into()]],
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        got[0][0].0,
        Some(Value::Float32(3.5)),
        "the older row for c1 did not win"
    );
    assert_eq!(got[0][2].0, Some(Value::Bool(true)));
    assert_eq!(got[0][3].0, Some(Value::Float32List(vec![1.0, 2.0, 3.0])));
    assert_eq!(got[1][0], (None, Status::Missing), "an empty cell is null");
    assert_eq!(got[1][1].0, Some(Value::String("silver".into())));
    let file_url = format!("file://{}", csv.display());
    let again = load_csv_url(
        Arc::clone(&s),
        "activity".into(),
        &file_url,
        LoadOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(again.rows, 3, "file:// URLs work too");
}

#[tokio::test]
async fn bad_files_are_refused_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir.path().join("fs"));
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let unknown = write(
        "unknown.csv",
        "customer_id,event_timestamp,colour\nc1,0,red\n",
    );
    let err = load_csv_url(
        Arc::clone(&s),
        "activity".into(),
        &unknown,
        LoadOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("column 'colour'"), "{err}");
    let ok = load_csv_url(
        Arc::clone(&s),
        "activity".into(),
        &unknown,
        LoadOptions {
            ignore_unknown_columns: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(ok.rows, 1);

    let bad_cell = write(
        "bad.csv",
        "customer_id,event_timestamp,orders_90d\na,0,1\nb,0,2\nc,0,3\nd,0,lots\n",
    );
    let options = LoadOptions {
        batch_rows: 2,
        ..Default::default()
    };
    match load_csv_url(Arc::clone(&s), "activity".into(), &bad_cell, options).await {
        Err(FeatureError::InvalidRequest { field, message }) => {
            assert_eq!(field, "line 5, column 'orders_90d'");
            assert!(
                message.contains("'lots' is not a float32")
                    && message.contains("2 rows were loaded"),
                "{message}"
            );
        }
        other => panic!("expected a line/column error, got {other:?}"),
    }
    let no_time = write("no_time.csv", "customer_id,orders_90d\na,1\n");
    let err = load_csv_url(
        Arc::clone(&s),
        "activity".into(),
        &no_time,
        LoadOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("event_timestamp"), "{err}");
    let no_key = write("no_key.csv", "event_timestamp,orders_90d\n0,1\n");
    assert!(
        load_csv_url(
            Arc::clone(&s),
            "activity".into(),
            &no_key,
            LoadOptions::default()
        )
        .await
        .is_err()
    );
    let missing = load_csv_url(
        Arc::clone(&s),
        "activity".into(),
        "/no/such/file.csv",
        LoadOptions::default(),
    )
    .await;
    assert!(missing.is_err());
    assert!(matches!(
        load_csv_url(
            Arc::clone(&s),
            "nope".into(),
            &no_time,
            LoadOptions::default()
        )
        .await,
        Err(FeatureError::UnknownView(_))
    ));
}

#[tokio::test]
async fn the_demo_customers_load() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FeatureStore::open(dir.path()).unwrap();
    let fields = [
        "days_since_last_order",
        "orders_90d",
        "spend_90d",
        "avg_order_value",
        "return_rate",
        "late_deliveries_90d",
        "support_tickets_90d",
        "last_nps",
        "discount_share",
        "tenure_days",
        "app_sessions_30d",
        "email_open_rate",
    ];
    let defs = format!(
        "[[entities]]\nname = \"customer\"\njoin_keys = [\"customer_id\"]\n[[feature_views]]\nname = \"customer_churn\"\nentity = \"customer\"\nfields = [{}]\n",
        fields
            .iter()
            .map(|f| format!("{{ name = \"{f}\", type = \"float32\" }}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    fs.apply(&defs, false).unwrap();
    let fs = Arc::new(fs);
    let csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/churn/customers.csv"
    );
    let options = LoadOptions {
        default_event_time_micros: Some(0),
        ignore_unknown_columns: true,
        ..Default::default()
    };
    let report = load_csv_url(Arc::clone(&fs), "customer_churn".into(), csv, options)
        .await
        .unwrap();
    assert_eq!(report.rows, 12_000);
    let got = fs
        .get_online(
            &[
                "customer_churn:orders_90d".into(),
                "customer_churn:last_nps".into(),
            ],
            &[vec!["C100000".into()]],
            0,
        )
        .await
        .unwrap();
    let first = std::fs::read_to_string(csv)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(got[0][0].0, Some(Value::Float32(first[2].parse().unwrap())));
    let nps = if first[8].is_empty() {
        None
    } else {
        Some(Value::Float32(first[8].parse().unwrap()))
    };
    assert_eq!(got[0][1].0, nps);
}

#[test]
fn a_second_process_cannot_open_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let _first = FeatureStore::open(dir.path()).unwrap();
    let err = FeatureStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
}
