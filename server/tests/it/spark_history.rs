//! The training set's other engines against the embedded one, on the same store (two
//! views, one with a TTL, six loads shuffled in time, rows only past the TTL, customers
//! never seen): `features history --engine spark` gives its rows on Spark in local mode
//! and on a standalone master and worker (`scripts/spark.sh`,
//! `MERCATOR_TEST_SPARK_MASTER`); DuckDB's ASOF JOIN, the reference, gives them with
//! the TTL applied per row, and differs on purpose with the TTL as one global range.
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

/// A data directory whose history two views hold, an entity CSV, and the embedded
/// engine's answers for it.
struct Prepared {
    dir: tempfile::TempDir,
    data_dir: String,
    entities: String,
    want: Vec<Vec<Option<String>>>,
}

const FEATURES: &str = "activity:orders,profile:age,activity:segment";

/// `MERCATOR_PYTHON` if it can import `module` (CI must have it).
fn python_with(module: &str) -> Option<String> {
    let python = std::env::var("MERCATOR_PYTHON").unwrap_or_default();
    let has = !python.is_empty()
        && std::process::Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|s| s.success());
    if !has {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide {module} in MERCATOR_PYTHON"
        );
        eprintln!("skipped: no {module} in MERCATOR_PYTHON");
        return None;
    }
    Some(python)
}

fn prepare() -> Prepared {
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
            // Unique times, shuffled across loads (late events), over two days.
            let t = T0 + ((load * 60 + r) * 7919 % 360) * 480 + next(60) as i64;
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
    let embedded = dir.path().join("embedded.parquet");
    let entities_arg = entities_csv.display().to_string();
    ok(&[
        "features",
        "history",
        "--data-dir",
        &data_dir,
        "--features",
        FEATURES,
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

    Prepared {
        dir,
        data_dir,
        entities: entities_arg,
        want,
    }
}

#[test]
fn spark_gives_the_embedded_engines_rows() {
    let Some(python) = python_with("pyspark") else {
        return;
    };
    let Prepared {
        dir,
        data_dir,
        entities: entities_arg,
        want,
    } = prepare();
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
            FEATURES,
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

/// DuckDB's ASOF JOIN over the same offline files (the reference engine), with the
/// activity view's 2 h TTL applied per row (`per_row`) or, as Feast's offline stores do,
/// as one global range before the join (`global`): rows as JSON `[id, orders, age,
/// segment]`, in the entity file's order.
const DUCKDB: &str = r#"
import duckdb, json, sys
offline, entities, mode = sys.argv[1:4]
con = duckdb.connect()
con.execute(f"""CREATE TABLE e AS SELECT row_number() OVER () AS r, customer_id,
    CAST(event_timestamp AS TIMESTAMPTZ) AS t FROM read_csv('{entities}', all_varchar = true)""")
def view(name):
    return (f"read_parquet('{offline}/view={name}/*/*.parquet', hive_partitioning = false, "
            "union_by_name = true)")
fresh = "a.event_timestamp >= e.t - INTERVAL 7200 SECOND" if mode == "per_row" else "TRUE"
activity = view("activity") if mode == "per_row" else (
    f"(SELECT * FROM {view('activity')} "
    "WHERE event_timestamp >= (SELECT min(t) FROM e) - INTERVAL 7200 SECOND)")
rows = con.execute(f"""
SELECT e.customer_id, CASE WHEN {fresh} THEN a.orders END, p.age, CASE WHEN {fresh} THEN a.segment END
FROM e
ASOF LEFT JOIN {activity} a ON e.customer_id = a.customer_id AND e.t >= a.event_timestamp
ASOF LEFT JOIN {view('profile')} p ON e.customer_id = p.customer_id AND e.t >= p.event_timestamp
ORDER BY e.r""").fetchall()
print(json.dumps([list(r) for r in rows]))
"#;

fn duckdb_rows(
    python: &str,
    data_dir: &str,
    entities: &str,
    mode: &str,
) -> Vec<Vec<Option<String>>> {
    let offline = format!("{data_dir}/features/offline");
    let out = std::process::Command::new(python)
        .args(["-c", DUCKDB, &offline, entities, mode])
        .output()
        .expect("run duckdb");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<serde_json::Value>> = serde_json::from_slice(&out.stdout).expect("json");
    rows.into_iter()
        .map(|r| {
            let text = |v: &serde_json::Value| v.as_str().map(|s| format!("String({s:?})"));
            vec![
                text(&r[0]),
                r[1].as_f64().map(|x| format!("Float32({:?})", x as f32)),
                r[2].as_i64().map(|x| format!("Int64({x})")),
                text(&r[3]),
            ]
        })
        .collect()
}

#[test]
fn duckdb_agrees_with_the_ttl_per_row_and_a_global_range_does_not() {
    let Some(python) = python_with("duckdb") else {
        return;
    };
    let p = prepare();
    let per_row = duckdb_rows(&python, &p.data_dir, &p.entities, "per_row");
    assert_eq!(per_row.len(), p.want.len());
    for (i, (got, want)) in per_row.iter().zip(&p.want).enumerate() {
        assert_eq!(got, want, "row {i}");
    }
    // The same join with the TTL as one global range gives stale values to exactly the
    // rows whose latest activity is older than 2 h at their own time, which Mercator
    // withholds: the difference is on purpose.
    let global = duckdb_rows(&python, &p.data_dir, &p.entities, "global");
    let differ: Vec<usize> = (0..global.len())
        .filter(|&i| global[i] != p.want[i])
        .collect();
    assert!(differ.len() > 10, "{} rows differ", differ.len());
    for &i in &differ {
        assert!(p.want[i][1].is_none() && global[i][1].is_some(), "row {i}");
        assert_eq!(
            global[i][2], p.want[i][2],
            "row {i}: the view without a TTL agrees"
        );
    }
    drop(p.dir);
}
