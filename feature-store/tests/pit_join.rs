//! The streamed point-in-time join (`pit`) gives, row for row, what the in-memory
//! retrieval gives (`FeatureStore::get_historical`, the one checked against a hand
//! table and pandas `merge_asof`): over two views (one with a TTL), late and duplicate
//! events, missing fields, unknown entities, Parquet and CSV entity files, with one
//! partition and with a memory bound small enough to force many. Also: the files a
//! join cannot need are not read, and bad inputs are named.

use std::sync::Arc;

use arrow_array::RecordBatch;
use mercator_features::historical::EntityRow;
use mercator_features::online::PushRow;
use mercator_features::pit::{self, Options, Summary};
use mercator_features::{FeatureError, FeatureStore, FieldType, Value};

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
  { name = "score", type = "float64" },
]

[[feature_views]]
name = "profile"
entity = "customer"
fields = [
  { name = "age", type = "int64" },
  { name = "vip", type = "bool" },
]
"#;

const T0: i64 = 1_700_000_000_000_000;
const MIN: i64 = 60_000_000;

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn features() -> Vec<String> {
    [
        "activity:orders",
        "profile:age",
        "activity:segment",
        "profile:vip",
        "activity:score",
    ]
    .map(String::from)
    .to_vec()
}

async fn populated(dir: &std::path::Path, rng: &mut Rng) -> FeatureStore {
    let store = FeatureStore::open(dir).expect("store");
    store.apply(DEFS, false).await.expect("apply");
    // 40 pushes per view of 50 rows: 200 customers over three days, at whole minutes
    // (so equal event times across pushes happen), some fields left out.
    for push in 0..40 {
        let mut activity = Vec::new();
        let mut profile = Vec::new();
        for _ in 0..50 {
            let key = vec![format!("c{}", rng.below(200))];
            let minute = rng.below(3 * 24 * 60) as i64;
            let mut values = vec![(
                "orders".to_string(),
                Some(Value::Float32(rng.below(1000) as f32 / 4.0)),
            )];
            if rng.below(3) > 0 {
                values.push(("segment".into(), Some(Value::String(format!("s{push}")))));
            }
            values.push((
                "score".into(),
                Some(Value::Float64(rng.below(10_000) as f64 / 7.0)),
            ));
            activity.push(PushRow {
                key: key.clone(),
                event_time_micros: T0 + minute * MIN,
                values,
            });
            profile.push(PushRow {
                key,
                event_time_micros: T0 + (minute / 60) * 60 * MIN,
                values: vec![
                    ("age".into(), Some(Value::Int64(18 + rng.below(60) as i64))),
                    ("vip".into(), Some(Value::Bool(rng.below(2) == 1))),
                ],
            });
        }
        store.push("activity", &activity).await.expect("push");
        store.push("profile", &profile).await.expect("push");
    }
    store
}

fn entity_rows(rng: &mut Rng, n: usize, days: u64) -> Vec<EntityRow> {
    (0..n)
        .map(|_| EntityRow {
            // Some customers never pushed.
            key: vec![format!("c{}", rng.below(230))],
            timestamp_micros: T0 + rng.below(days * 24 * 60) as i64 * MIN + rng.below(3) as i64,
        })
        .collect()
}

fn write_parquet(path: &std::path::Path, rows: &[EntityRow]) {
    write_parquet_with(path, rows, parquet::basic::Compression::UNCOMPRESSED);
}

fn write_parquet_with(
    path: &std::path::Path,
    rows: &[EntityRow],
    compression: parquet::basic::Compression,
) {
    use arrow_array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
    let batch = RecordBatch::try_from_iter([
        (
            "customer_id",
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.key[0].clone()),
            )) as ArrayRef,
        ),
        (
            "event_timestamp",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    rows.iter().map(|r| r.timestamp_micros),
                )
                .with_timezone("UTC"),
            ),
        ),
        (
            "label",
            Arc::new(Int64Array::from_iter_values(
                (0..rows.len() as i64).map(|i| i % 2),
            )),
        ),
    ])
    .expect("batch");
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(compression)
        .build();
    let file = std::fs::File::create(path).expect("create");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

fn write_csv(path: &std::path::Path, rows: &[EntityRow]) {
    let mut text = String::from("customer_id,event_timestamp,label\n");
    for (i, r) in rows.iter().enumerate() {
        let t = chrono::DateTime::from_timestamp_micros(r.timestamp_micros).expect("time");
        text.push_str(&format!("{},{},{}\n", r.key[0], t.to_rfc3339(), i % 2));
    }
    std::fs::write(path, text).expect("csv");
}

fn read_output(path: &std::path::Path) -> RecordBatch {
    let file = std::fs::File::open(path).expect("output");
    let batches: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader")
            .collect::<Result<_, _>>()
            .expect("batches");
    let schema = batches[0].schema();
    arrow_select_concat(&schema, &batches)
}

fn arrow_select_concat(schema: &arrow_schema::SchemaRef, batches: &[RecordBatch]) -> RecordBatch {
    // One batch, however the writer grouped rows.
    let columns = (0..schema.fields().len())
        .map(|i| {
            let parts: Vec<&dyn arrow_array::Array> =
                batches.iter().map(|b| b.column(i).as_ref()).collect();
            arrow_select::concat::concat(&parts).expect("concat")
        })
        .collect();
    RecordBatch::try_new(Arc::clone(schema), columns).expect("batch")
}

async fn join(
    store: &FeatureStore,
    entities: &std::path::Path,
    output: &std::path::Path,
    memory_bytes: usize,
) -> Result<Summary, FeatureError> {
    let options = Options {
        memory_bytes,
        scratch_dir: output.parent().expect("dir").join("spill"),
    };
    pit::build_training_set(
        &store.current(),
        store.offline(),
        &features(),
        &entities.display().to_string(),
        &output.display().to_string(),
        &options,
        &(),
    )
    .await
}

/// Checks a training set against the in-memory retrieval, cell by cell.
async fn assert_same(store: &FeatureStore, rows: &[EntityRow], out: &RecordBatch) {
    let want = store
        .get_historical(&features(), rows)
        .await
        .expect("history");
    assert_eq!(out.num_rows(), rows.len());
    let types = [
        FieldType::Float32,
        FieldType::Int64,
        FieldType::String,
        FieldType::Bool,
        FieldType::Float64,
    ];
    let mut present = 0;
    for (f, (name, t)) in features().iter().zip(types).enumerate() {
        let column = out
            .column_by_name(&name.replacen(':', "__", 1))
            .expect("feature column");
        for (i, expected) in want.iter().enumerate() {
            let got = mercator_features::columns::value_at(column.as_ref(), t, i);
            assert_eq!(got, expected[f].0, "row {i}, {name}");
            present += usize::from(got.is_some());
        }
    }
    assert!(present > rows.len(), "the data is not all nulls: {present}");
}

#[tokio::test]
async fn the_streamed_join_equals_the_in_memory_retrieval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let store = populated(&dir.path().join("store"), &mut rng).await;
    let rows = entity_rows(&mut rng, 3000, 4);
    let parquet_in = dir.path().join("entities.parquet");
    write_parquet(&parquet_in, &rows);
    let csv_in = dir.path().join("entities.csv");
    write_csv(&csv_in, &rows);

    // Everything in one partition; then a bound that forces many.
    let mut partitions = Vec::new();
    for (input, memory) in [
        (&parquet_in, 1 << 30),
        (&parquet_in, 96 << 10),
        (&csv_in, 96 << 10),
    ] {
        let output = dir.path().join("train.parquet");
        let summary = join(&store, input, &output, memory).await.expect("join");
        assert_eq!(summary.rows, rows.len() as u64);
        let out = read_output(&output);
        // The entity file's columns first, in order and type.
        assert_eq!(out.schema().field(0).name(), "customer_id");
        assert_eq!(out.schema().field(2).name(), "label");
        assert_eq!(out.schema().field(2).data_type().to_string(), "Int64");
        assert_same(&store, &rows, &out).await;
        partitions.push(summary.partitions);
        assert!(
            !std::fs::read_dir(dir.path().join("spill"))
                .expect("spill root")
                .any(|_| true),
            "spill files are removed"
        );
    }
    assert_eq!(partitions[0], 1);
    assert!(partitions[1] > 8, "{partitions:?}");
}

#[tokio::test]
async fn a_join_reads_only_the_days_its_rows_can_see() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(7);
    let store = populated(&dir.path().join("store"), &mut rng).await;
    // Entity rows on the first day only: activity (TTL 2h) needs no later day; profile
    // (no TTL) needs every day up to the latest row.
    let rows = entity_rows(&mut rng, 500, 1);
    let input = dir.path().join("entities.parquet");
    write_parquet(&input, &rows);
    let output = dir.path().join("train.parquet");
    let summary = join(&store, &input, &output, 1 << 30).await.expect("join");
    assert_same(&store, &rows, &read_output(&output)).await;
    for v in &summary.views {
        assert!(v.files_read < v.files, "{v:?}");
    }
}

#[tokio::test]
async fn bad_inputs_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FeatureStore::open(&dir.path().join("store")).expect("store");
    store.apply(DEFS, false).await.expect("apply");
    let input = dir.path().join("entities.csv");
    let output = dir.path().join("train.parquet");
    std::fs::write(&input, "id,event_timestamp\nc1,2024-01-01T00:00:00Z\n").expect("csv");
    let e = join(&store, &input, &output, 1 << 20)
        .await
        .expect_err("no key");
    assert!(e.to_string().contains("no 'customer_id' column"), "{e}");
    std::fs::write(&input, "customer_id,event_timestamp\nc1,yesterday\n").expect("csv");
    let e = join(&store, &input, &output, 1 << 20)
        .await
        .expect_err("bad time");
    assert!(e.to_string().contains("line 2"), "{e}");
    let missing = dir.path().join("nowhere.parquet");
    assert!(join(&store, &missing, &output, 1 << 20).await.is_err());
    // A file with the features' own column names.
    std::fs::write(
        &input,
        "customer_id,event_timestamp,activity__orders\nc1,2024-01-01T00:00:00Z,1\n",
    )
    .expect("csv");
    let e = join(&store, &input, &output, 1 << 20)
        .await
        .expect_err("clash");
    assert!(e.to_string().contains("features[0]"), "{e}");
    assert!(!output.exists(), "nothing written on a refusal");
}

#[tokio::test]
async fn an_old_layout_store_and_gzip_or_lz4_entity_files_are_read() {
    use parquet::basic::{Compression, GzipLevel};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(99);
    let store_dir = dir.path().join("store");
    let store = populated(&store_dir, &mut rng).await;
    let rows = entity_rows(&mut rng, 400, 4);
    // Entity files as Spark (gzip) and other writers (LZ4) leave them.
    for (name, compression) in [
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("lz4", Compression::LZ4_RAW),
    ] {
        let input = dir.path().join(format!("entities-{name}.parquet"));
        write_parquet_with(&input, &rows, compression);
        let output = dir.path().join(format!("train-{name}.parquet"));
        join(&store, &input, &output, 1 << 20).await.expect(name);
        assert_same(&store, &rows, &read_output(&output)).await;
    }
    // The history of a store written before the partitioning: flat under the view.
    let input = dir.path().join("entities.parquet");
    write_parquet(&input, &rows);
    let offline = store_dir.join("offline");
    for view in ["activity", "profile"] {
        let old = offline.join(view);
        std::fs::create_dir_all(&old).expect("old dir");
        for day in std::fs::read_dir(offline.join(format!("view={view}"))).expect("view") {
            for f in std::fs::read_dir(day.expect("day").path()).expect("files") {
                let f = f.expect("file").path();
                let name = f.file_name().expect("name").to_owned();
                std::fs::rename(&f, old.join(name)).expect("move");
            }
        }
        std::fs::remove_dir_all(offline.join(format!("view={view}"))).expect("clear");
    }
    let output = dir.path().join("train-old.parquet");
    join(&store, &input, &output, 96 << 10)
        .await
        .expect("old layout");
    assert_same(&store, &rows, &read_output(&output)).await;
}
