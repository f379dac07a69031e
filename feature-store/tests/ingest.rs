//! CSV loads through object_store: types, nulls, event times, unknown columns, errors that
//! name line and column, and the demo's customers file.

use std::sync::Arc;

use mercator_features::ingest::{LoadOptions, load_url};
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

async fn store(dir: &std::path::Path) -> Arc<FeatureStore> {
    let s = FeatureStore::open(dir).expect("open");
    s.apply(DEFS, false).await.expect("apply");
    Arc::new(s)
}

/// A request's several lookups (each its features of its own entities) in one call give
/// what each gives alone; one bad lookup refuses them all.
#[tokio::test]
async fn several_lookups_in_one_call_equal_each_alone() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir.path().join("fs")).await;
    let csv = dir.path().join("rows.csv");
    std::fs::write(
        &csv,
        "customer_id,event_timestamp,orders_90d,segment,vip,weekly\n\
         c1,2026-01-01T00:00:00Z,3.5,gold,true,\n\
         c2,2026-01-01T00:00:00Z,1,silver,false,\n",
    )
    .unwrap();
    load_url(
        &s,
        "activity",
        &csv.display().to_string(),
        LoadOptions::default(),
    )
    .await
    .unwrap();
    let f1: Vec<String> = vec!["activity:orders_90d".into(), "activity:vip".into()];
    let f2: Vec<String> = vec!["activity:segment".into()];
    let k1 = [vec!["c1".to_string()], vec!["c2".to_string()]];
    let k2 = [vec!["c2".to_string()], vec!["c3".to_string()]];
    let both = s
        .get_online_sets(&[(&f1, &k1), (&f2, &k2)], 0)
        .await
        .unwrap();
    assert_eq!(
        both,
        vec![
            s.get_online(&f1, &k1, 0).await.unwrap(),
            s.get_online(&f2, &k2, 0).await.unwrap()
        ]
    );
    assert_eq!(both[1][0][0].0, Some(Value::String("silver".into())));
    assert_eq!(both[1][1][0].1, Status::Missing);
    let bad: Vec<String> = vec!["activity:nope".into()];
    assert!(matches!(
        s.get_online_sets(&[(&f1, &k1), (&bad, &k2)], 0).await,
        Err(FeatureError::InvalidRequest { .. })
    ));
}

#[tokio::test]
async fn loads_typed_values_nulls_and_event_times() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir.path().join("fs")).await;
    let csv = dir.path().join("rows.csv");
    std::fs::write(
        &csv,
        "customer_id,event_timestamp,orders_90d,segment,vip,weekly\n\
         c1,2026-01-01T00:00:00Z,3.5,gold,true,\"[1,2,3]\"\n\
         c2,1767225600,,silver,0,\n\
         c1,2025-12-01T00:00:00Z,9,old,false,\n",
    )
    .unwrap();
    let report = load_url(
        &s,
        "activity",
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
    let again = load_url(&s, "activity", &file_url, LoadOptions::default())
        .await
        .unwrap();
    assert_eq!(again.rows, 3, "file:// URLs work too");
}

#[tokio::test]
async fn bad_files_are_refused_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir.path().join("fs")).await;
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let unknown = write(
        "unknown.csv",
        "customer_id,event_timestamp,colour\nc1,0,red\n",
    );
    let err = load_url(&s, "activity", &unknown, LoadOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("column 'colour'"), "{err}");
    let ok = load_url(
        &s,
        "activity",
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
    match load_url(&s, "activity", &bad_cell, options).await {
        Err(FeatureError::InvalidRequest { field, message }) => {
            assert_eq!(field, "line 5, column 'orders_90d'");
            assert!(
                message.contains("not a float32")
                    && !message.contains("lots")
                    && message.contains("2 rows were loaded"),
                "{message}"
            );
        }
        other => panic!("expected a line/column error, got {other:?}"),
    }
    let no_time = write("no_time.csv", "customer_id,orders_90d\na,1\n");
    let err = load_url(&s, "activity", &no_time, LoadOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("event_timestamp"), "{err}");
    let no_key = write("no_key.csv", "event_timestamp,orders_90d\n0,1\n");
    assert!(
        load_url(&s, "activity", &no_key, LoadOptions::default())
            .await
            .is_err()
    );
    let missing = load_url(&s, "activity", "/no/such/file.csv", LoadOptions::default()).await;
    assert!(missing.is_err());
    assert!(matches!(
        load_url(&s, "nope", &no_time, LoadOptions::default()).await,
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
    fs.apply(&defs, false).await.unwrap();
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
    let report = load_url(&fs, "customer_churn", csv, options).await.unwrap();
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

/// Writes one Arrow batch as a Parquet file.
fn write_parquet(path: &std::path::Path, columns: Vec<(&str, arrow_array::ArrayRef)>) {
    let batch = arrow_array::RecordBatch::try_from_iter(columns).expect("batch");
    let file = std::fs::File::create(path).expect("create");
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

#[tokio::test]
async fn loads_parquet_as_pandas_writes_it() {
    use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(&dir.path().join("fs")).await;
    let path = dir.path().join("rows.parquet");
    // pandas' defaults: integer ids, float64 numbers, nanosecond UTC timestamps.
    let ns = |iso: &str| {
        chrono::DateTime::parse_from_rfc3339(iso)
            .expect("time")
            .timestamp_nanos_opt()
            .expect("ns")
    };
    let times = arrow_array::TimestampNanosecondArray::from(vec![
        ns("2026-01-01T00:00:00Z"),
        ns("2026-01-02T00:00:00Z"),
        ns("2025-12-01T00:00:00Z"),
    ])
    .with_timezone("UTC");
    write_parquet(
        &path,
        vec![
            (
                "customer_id",
                Arc::new(Int64Array::from(vec![1, 2, 1])) as ArrayRef,
            ),
            ("event_timestamp", Arc::new(times)),
            (
                "orders_90d",
                Arc::new(Float64Array::from(vec![Some(3.5), None, Some(9.0)])),
            ),
            (
                "segment",
                Arc::new(StringArray::from(vec!["gold", "silver", "old"])),
            ),
            (
                "vip",
                Arc::new(BooleanArray::from(vec![true, false, false])),
            ),
            ("churned", Arc::new(Int64Array::from(vec![0, 1, 0]))),
        ],
    );
    let options = LoadOptions {
        ignore_unknown_columns: true,
        batch_rows: 2, // two batches: the second row group boundary is crossed
        ..Default::default()
    };
    let report = load_url(&s, "activity", &path.display().to_string(), options)
        .await
        .expect("load");
    assert_eq!(
        (report.rows, report.written, report.ignored_older),
        (3, 2, 1)
    );
    let got = s
        .get_online(
            &["activity:orders_90d".into(), "activity:segment".into()],
            &[vec!["1".into()], vec!["2".into()]],
            0,
        )
        .await
        .expect("read");
    assert_eq!(got[0][0].0, Some(Value::Float32(3.5)));
    assert_eq!(got[0][1].0, Some(Value::String("gold".into())));
    assert_eq!(got[1][0], (None, Status::Missing), "a null is missing");

    // Errors name the row and column.
    let bad = dir.path().join("bad.parquet");
    write_parquet(
        &bad,
        vec![
            (
                "customer_id",
                Arc::new(StringArray::from(vec!["c1", "c2"])) as ArrayRef,
            ),
            (
                "orders_90d",
                Arc::new(StringArray::from(vec!["1.5", "many"])),
            ),
        ],
    );
    let options = LoadOptions {
        default_event_time_micros: Some(0),
        ..Default::default()
    };
    let err = load_url(&s, "activity", &bad.display().to_string(), options.clone())
        .await
        .expect_err("a text cell that is not a number");
    let message = err.to_string();
    for needle in ["row 2", "orders_90d", "is not a float32"] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
    assert!(
        !message.contains("many"),
        "the cell is not quoted: {message}"
    );
    let no_key = dir.path().join("nokey.parquet");
    write_parquet(
        &no_key,
        vec![(
            "orders_90d",
            Arc::new(Float64Array::from(vec![1.0])) as ArrayRef,
        )],
    );
    let err = load_url(
        &s,
        "activity",
        &no_key.display().to_string(),
        options.clone(),
    )
    .await
    .expect_err("no key column");
    assert!(err.to_string().contains("customer_id"), "{err}");
    let not_parquet = dir.path().join("text.parquet");
    std::fs::write(&not_parquet, "customer_id\nc1\n").expect("write");
    let err = load_url(&s, "activity", &not_parquet.display().to_string(), options)
        .await
        .expect_err("not parquet");
    assert!(err.to_string().contains("Parquet"), "{err}");
}
