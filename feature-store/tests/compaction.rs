//! Compaction beside writers and another compactor: no row lost, none doubled, at any
//! moment a reader looks, and after the replaced files are deleted; the streamed join
//! reads a half-compacted store as the in-memory retrieval does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mercator_features::historical::EntityRow;
use mercator_features::offline::CompactOptions;
use mercator_features::online::PushRow;
use mercator_features::{FeatureStore, Value};

const DEFS: &str = r#"
[[entities]]
name = "customer"
join_keys = ["customer_id"]

[[feature_views]]
name = "activity"
entity = "customer"
fields = [{ name = "orders", type = "float32" }]
"#;

const T0: i64 = 1_700_000_000_000_000;
const HOUR: i64 = 3_600_000_000;
const WRITERS: u32 = 4;
const CALLS: u32 = 40;
const ROWS: u32 = 15;

/// Row `id`'s event: ids are unique, so each stored row is recognisable.
fn push_row(id: u32) -> PushRow {
    PushRow {
        key: vec![format!("c{}", id % 50)],
        // Three days of events: every call writes into several date partitions.
        event_time_micros: T0 + i64::from(id % 72) * HOUR + i64::from(id),
        values: vec![("orders".into(), Some(Value::Float32(id as f32)))],
    }
}

async fn stored_ids(store: &FeatureStore) -> Vec<u32> {
    let view = store
        .current()
        .views
        .get("activity")
        .cloned()
        .expect("view");
    store
        .offline()
        .read(&view, |_| true)
        .await
        .expect("read")
        .into_iter()
        .map(|r| match r.values[0] {
            Some(Value::Float32(v)) => v as u32,
            ref other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn options(grace: Duration) -> CompactOptions {
    CompactOptions {
        target_bytes: 64 << 20,
        grace,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_beside_writers_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(FeatureStore::open(dir.path()).expect("store"));
    store.apply(DEFS, false).await.expect("apply");
    let view = store
        .current()
        .views
        .get("activity")
        .cloned()
        .expect("view");
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (store, acknowledged) = (Arc::clone(&store), Arc::clone(&acknowledged));
        writers.push(tokio::spawn(async move {
            for call in 0..CALLS {
                let ids: Vec<u32> = (0..ROWS).map(|r| (w * CALLS + call) * ROWS + r).collect();
                let rows: Vec<PushRow> = ids.iter().map(|&id| push_row(id)).collect();
                store.push("activity", &rows).await.expect("push");
                acknowledged.lock().expect("lock").extend(ids);
            }
        }));
    }
    // Two compactors racing each other and the writers; replaced files kept (a long
    // grace), so readers see compacted files beside their inputs.
    let mut compactors = Vec::new();
    for _ in 0..2 {
        let (store, view, done) = (Arc::clone(&store), view.clone(), Arc::clone(&done));
        compactors.push(tokio::spawn(async move {
            let mut merged = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let r = store
                    .offline()
                    .compact(&view, &options(Duration::from_secs(3600)))
                    .await
                    .expect("compact");
                merged += r.files_merged;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            merged
        }));
    }
    // A reader looking while all of that goes on.
    let mut looks = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        let before: HashSet<u32> = acknowledged.lock().expect("lock").clone();
        let ids = stored_ids(&store).await;
        let unique: HashSet<u32> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "a row counted twice");
        assert!(before.is_subset(&unique), "an acknowledged row missing");
        looks += 1;
    }
    for w in writers {
        w.await.expect("writer");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut merged = 0;
    for c in compactors {
        merged += c.await.expect("compactor");
    }
    assert!(merged > 0, "the compactors merged files");
    assert!(
        looks > 1,
        "the reader looked while writing went on ({looks})"
    );
    let all: HashSet<u32> = (0..WRITERS * CALLS * ROWS).collect();

    // Compacted files beside their inputs: the streamed join counts each row once too.
    let report = store
        .offline()
        .compact(&view, &options(Duration::from_secs(3600)))
        .await
        .expect("compact");
    assert_eq!(
        report.files_deleted, 0,
        "within the grace nothing is deleted"
    );
    let rows: Vec<EntityRow> = (0..200)
        .map(|i| EntityRow {
            key: vec![format!("c{}", i % 50)],
            timestamp_micros: T0 + i64::from(i % 80) * HOUR,
        })
        .collect();
    let features = vec!["activity:orders".to_string()];
    let want = store
        .get_historical(&features, &rows)
        .await
        .expect("history");
    let entities = dir.path().join("entities.csv");
    let mut csv = String::from("customer_id,event_timestamp\n");
    for r in &rows {
        let t = chrono::DateTime::from_timestamp_micros(r.timestamp_micros).expect("time");
        csv.push_str(&format!("{},{}\n", r.key[0], t.to_rfc3339()));
    }
    std::fs::write(&entities, csv).expect("entities");
    let output = dir.path().join("train.parquet");
    mercator_features::pit::build_training_set(
        &store.current(),
        store.offline(),
        &features,
        &entities.display().to_string(),
        &output.display().to_string(),
        &mercator_features::pit::Options {
            memory_bytes: 1 << 20,
            scratch_dir: dir.path().join("spill"),
        },
        &(),
    )
    .await
    .expect("join");
    let file = std::fs::File::open(&output).expect("output");
    let batch = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader")
        .next()
        .expect("batch")
        .expect("batch");
    let got = batch.column_by_name("activity__orders").expect("column");
    for (i, w) in want.iter().enumerate() {
        let v = mercator_features::columns::value_at(
            got.as_ref(),
            mercator_features::FieldType::Float32,
            i,
        );
        assert_eq!(v, w[0].0, "row {i}");
    }

    // The grace over: replaced files deleted, each row still there once.
    let before = std::fs::read_dir(dir.path().join("offline/view=activity"))
        .expect("view dir")
        .map(|d| {
            std::fs::read_dir(d.expect("date").path())
                .expect("date dir")
                .count()
        })
        .sum::<usize>();
    let report = store
        .offline()
        .compact(&view, &options(Duration::ZERO))
        .await
        .expect("compact");
    assert!(report.files_deleted > 0);
    let ids = stored_ids(&store).await;
    assert_eq!(ids.len(), all.len(), "each row once");
    assert_eq!(ids.into_iter().collect::<HashSet<u32>>(), all);
    let after = std::fs::read_dir(dir.path().join("offline/view=activity"))
        .expect("view dir")
        .map(|d| {
            std::fs::read_dir(d.expect("date").path())
                .expect("date dir")
                .count()
        })
        .sum::<usize>();
    let dates = std::fs::read_dir(dir.path().join("offline/view=activity"))
        .expect("view dir")
        .count();
    assert!(after < before, "{after} files after, {before} before");
    assert!(after <= 2 * dates, "{after} files over {dates} dates");
}
