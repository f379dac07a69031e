//! `mercator features history --engine spark` gives the embedded engine's rows: the same
//! store (two views, one with a TTL, several loads a day, late events, customers never
//! seen) joined by both, compared row by row; on Spark in local mode and on a standalone
//! master and worker (`scripts/spark.sh`, `MERCATOR_TEST_SPARK_MASTER`).

use std::path::Path;

use arrow_array::RecordBatch;
use mercator_features::FieldType;

use crate::cli::ok;

const DEFS: &str = r#"
[[entities]]
name = "customer"
join_keys = ["customer_id"]

[[feature_views]]
name = "activity"
entity = "customer"
ttl = "2h"
fields = [
  { name = "orders", type = "float32" },
  { name = "segment", type = "string" },
]

[[feature_views]]
name = "profile"
entity = "customer"
fields = [{ name = "age", type = "int64" }]
"#;

const T0: i64 = 1_700_000_000;

fn time(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .expect("time")
        .to_rfc3339()
}

/// Every batch of a Parquet file, or of a folder of part files in name order.
fn read_all(path: &Path) -> Vec<RecordBatch> {
    let mut files: Vec<_> = if path.is_dir() {
        std::fs::read_dir(path)
            .expect("output folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    files.sort();
    let mut batches = Vec::new();
    for f in files {
        let file = std::fs::File::open(&f).expect("open");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        batches.extend(reader.map(|b| b.expect("batch")));
    }
    batches
}

/// Each feature of each row, as the store's typed value.
fn cells(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
    batches.iter().flat_map(cells_of).collect()
}

fn cells_of(batch: &RecordBatch) -> Vec<Vec<Option<String>>> {
    let columns = [
        ("customer_id", FieldType::String),
        ("activity__orders", FieldType::Float32),
        ("profile__age", FieldType::Int64),
        ("activity__segment", FieldType::String),
    ];
    (0..batch.num_rows())
        .map(|i| {
            columns
                .iter()
                .map(|(name, t)| {
                    let column = batch.column_by_name(name).expect("column");
                    let column =
                        arrow_cast::cast(column, &mercator_features::columns::arrow_type(*t))
                            .expect("cast");
                    mercator_features::columns::value_at(column.as_ref(), *t, i)
                        .map(|v| format!("{v:?}"))
                })
                .collect()
        })
        .collect()
}

#[test]
fn spark_gives_the_embedded_engines_rows() {
    let python = std::env::var("MERCATOR_PYTHON").unwrap_or_default();
    let has_pyspark = !python.is_empty()
        && std::process::Command::new(&python)
            .args(["-c", "import pyspark"])
            .status()
            .is_ok_and(|s| s.success());
    if !has_pyspark {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide pyspark in MERCATOR_PYTHON"
        );
        eprintln!("skipped: no pyspark in MERCATOR_PYTHON");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_dir = data.display().to_string();
    let defs = dir.path().join("features.toml");
    std::fs::write(&defs, DEFS).expect("defs");
    ok(&[
        "features",
        "apply",
        &defs.display().to_string(),
        "--data-dir",
        &data_dir,
    ]);
    // Six loads per view, 40 customers, over two days; events unique per customer.
    let mut state = 12345u64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    for load in 0..6 {
        let mut activity = String::from("customer_id,event_timestamp,orders,segment\n");
        let mut profile = String::from("customer_id,event_timestamp,age\n");
        for r in 0..60 {
            let customer = next(40);
            let t = T0 + (next(2 * 24 * 60) as i64) * 60 + load * 7 + r;
            let segment = if next(3) == 0 {
                String::new()
            } else {
                format!("s{load}")
            };
            activity.push_str(&format!(
                "c{customer},{},{}.5,{segment}\n",
                time(t),
                next(100)
            ));
            profile.push_str(&format!(
                "c{customer},{},{}\n",
                time(t - 3600),
                18 + next(60)
            ));
        }
        for (view, text) in [("activity", activity), ("profile", profile)] {
            let file = dir.path().join(format!("{view}-{load}.csv"));
            std::fs::write(&file, text).expect("csv");
            ok(&[
                "features",
                "load",
                view,
                &file.display().to_string(),
                "--data-dir",
                &data_dir,
            ]);
        }
    }
    let mut entities = String::from("customer_id,event_timestamp\n");
    for _ in 0..300 {
        let t = T0 + (next(2 * 24 * 60 + 120) as i64) * 60 + 30;
        entities.push_str(&format!("c{},{}\n", next(45), time(t)));
    }
    let entities_csv = dir.path().join("entities.csv");
    std::fs::write(&entities_csv, entities).expect("entities");
    let features = "activity:orders,profile:age,activity:segment";
    let embedded = dir.path().join("embedded.parquet");
    let entities_arg = entities_csv.display().to_string();
    ok(&[
        "features",
        "history",
        "--data-dir",
        &data_dir,
        "--features",
        features,
        "--entities",
        &entities_arg,
        "--output",
        &embedded.display().to_string(),
    ]);
    let want = cells(&read_all(&embedded));
    assert_eq!(want.len(), 300);
    assert!(
        want.iter().filter(|r| r[1].is_some()).count() > 30,
        "some rows have values"
    );
    assert!(
        want.iter()
            .filter(|r| r[1].is_none() && r[2].is_some())
            .count()
            > 10,
        "some rows only past the TTL"
    );

    let mut masters = vec!["local[2]".to_string()];
    match std::env::var("MERCATOR_TEST_SPARK_MASTER") {
        Ok(m) if !m.is_empty() => masters.push(m),
        _ => assert!(
            std::env::var("CI").is_err(),
            "CI must set MERCATOR_TEST_SPARK_MASTER (scripts/spark.sh)"
        ),
    }
    for (n, master) in masters.iter().enumerate() {
        let output = dir.path().join(format!("spark-{n}.parquet"));
        let out = ok(&[
            "features",
            "history",
            "--data-dir",
            &data_dir,
            "--features",
            features,
            "--entities",
            &entities_arg,
            "--output",
            &output.display().to_string(),
            "--engine",
            "spark",
            "--spark-master",
            master,
            "--spark-python",
            &python,
            "--spark-conf",
            "spark.ui.enabled=false",
            "--json",
        ]);
        let summary: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(summary["rows"], 300, "{out}");
        let got = cells(&read_all(&output));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "row {i} on {master}");
        }
        assert_eq!(got.len(), want.len());
    }
}
