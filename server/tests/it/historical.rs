//! Point-in-time retrieval over gRPC (streamed in chunks) and through the CLI (entity rows
//! from CSV or Parquet, through the server or straight from storage), which
//! writes a training set as Parquet; the values match what the store held at each time.

use mercator_proto::v1::feature_store_client::FeatureStoreClient;
use mercator_proto::v1::{self as pb, FeatureStatus};

use crate::cli::ok;
use crate::harness::TestServer;

const DEFS: &str = r#"
[[entities]]
name = "customer"
join_keys = ["customer_id"]

[[feature_views]]
name = "activity"
entity = "customer"
ttl = "1h"
fields = [{ name = "orders", type = "float32" }]
"#;

const T0: i64 = 1_700_000_000;

fn ts(minutes: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: T0 + minutes * 60,
        nanos: 0,
    }
}

fn push_row(id: &str, minute: i64, orders: f32) -> pb::PushRow {
    pb::PushRow {
        entity_key: vec![id.into()],
        event_time: Some(ts(minute)),
        values: [(
            "orders".to_string(),
            pb::FeatureValue {
                kind: Some(pb::feature_value::Kind::Float32(orders)),
            },
        )]
        .into(),
    }
}

fn orders(v: &pb::FeatureVector) -> (Option<f32>, FeatureStatus) {
    let value = match v.values[0].kind {
        Some(pb::feature_value::Kind::Float32(x)) => Some(x),
        _ => None,
    };
    (value, v.statuses[0].try_into().expect("status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn historical_features_stream_and_land_in_parquet() {
    let server = TestServer::builder().start().await;
    let mut c = FeatureStoreClient::new(server.channel().await);
    c.apply_definitions(pb::ApplyDefinitionsRequest {
        toml: DEFS.into(),
        dry_run: false,
        allow_removals: false,
    })
    .await
    .expect("apply");
    // c1: 1.0 at 10', 3.0 at 30', then a late 2.0 at 20'.
    for rows in [
        vec![push_row("c1", 10, 1.0), push_row("c2", 10, 7.0)],
        vec![push_row("c1", 30, 3.0)],
        vec![push_row("c1", 20, 2.0)],
    ] {
        c.push(pb::PushRequest {
            view: "activity".into(),
            rows,
        })
        .await
        .expect("push");
    }
    // 3,000 entity rows (three chunks): c1 at minute 0..3000 cycling over 0..100.
    let minutes: Vec<i64> = (0..3000).map(|i| i % 100).collect();
    let entity_rows = minutes
        .iter()
        .map(|&m| pb::EntityRow {
            values: vec!["c1".into()],
            timestamp: Some(ts(m)),
        })
        .collect();
    let mut stream = c
        .get_historical_features(pb::GetHistoricalFeaturesRequest {
            features: vec!["activity:orders".into()],
            entity_rows,
        })
        .await
        .expect("historical")
        .into_inner();
    let mut got = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.message().await.expect("chunk") {
        assert_eq!(chunk.first_row as usize, got.len(), "chunks in order");
        if chunks == 0 {
            assert_eq!(chunk.features, ["activity:orders"]);
        }
        chunks += 1;
        got.extend(chunk.results.iter().map(orders));
    }
    assert!(chunks >= 3, "{chunks} chunks");
    assert_eq!(got.len(), minutes.len());
    for (m, value) in minutes.iter().zip(&got) {
        let want = match m {
            0..=9 => (None, FeatureStatus::Missing),
            10..=19 => (Some(1.0), FeatureStatus::Present),
            20..=29 => (Some(2.0), FeatureStatus::Present),
            30..=90 => (Some(3.0), FeatureStatus::Present),
            _ => (None, FeatureStatus::Expired),
        };
        assert_eq!(value, &want, "minute {m}");
    }
    // A bad request is named.
    let status = c
        .get_historical_features(pb::GetHistoricalFeaturesRequest {
            features: vec!["activity:orders".into()],
            entity_rows: vec![pb::EntityRow {
                values: vec!["c1".into()],
                timestamp: None,
            }],
        })
        .await
        .expect_err("no timestamp");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("entity_rows[0].timestamp"));

    // The CLI: an entity CSV in, a Parquet training set out.
    let dir = tempfile::tempdir().expect("tempdir");
    let entities = dir.path().join("entities.csv");
    std::fs::write(
        &entities,
        format!(
            "customer_id,event_timestamp,label,weight,vip,note\n\
             c1,{},1,0.5,True,a\nc1,{},0,1,False,\nc2,{},1,2.25,True,b\nc9,{},,1e3,False,c\n",
            T0 + 25 * 60,
            T0 + 5 * 60,
            T0 + 15 * 60,
            T0 + 15 * 60
        ),
    )
    .expect("entities");
    let output = dir.path().join("train.parquet");
    let out = ok(&[
        "features",
        "history",
        "--server",
        &server.url(),
        "--features",
        "activity:orders",
        "--entities",
        &entities.display().to_string(),
        "--output",
        &output.display().to_string(),
    ]);
    assert!(out.contains("wrote 4 rows"), "{out}");
    let bytes = bytes::Bytes::from(std::fs::read(&output).expect("output"));
    let batches: Vec<_> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("parquet")
            .build()
            .expect("reader")
            .collect::<Result<_, _>>()
            .expect("batches");
    let batch = &batches[0];
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    // Every column of the entity file, in order, typed as pandas reads them (an int
    // column with a gap stays int64), then the features (issue 29, item 4).
    assert_eq!(
        names,
        [
            "customer_id",
            "event_timestamp",
            "label",
            "weight",
            "vip",
            "note",
            "activity__orders"
        ]
    );
    let types: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "Utf8",
            "Timestamp(µs, \"UTC\")",
            "Int64",
            "Float64",
            "Boolean",
            "Utf8",
            "Float32"
        ]
    );
    let label = batch
        .column_by_name("label")
        .expect("label")
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .expect("int64")
        .iter()
        .collect::<Vec<_>>();
    assert_eq!(label, [Some(1), Some(0), Some(1), None]);
    let note = batch
        .column_by_name("note")
        .expect("note")
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .expect("utf8")
        .iter()
        .collect::<Vec<_>>();
    assert_eq!(note, [Some("a"), None, Some("b"), Some("c")]);
    let column = batch
        .column_by_name("activity__orders")
        .expect("column")
        .as_any()
        .downcast_ref::<arrow_array::Float32Array>()
        .expect("float32")
        .clone();
    let values: Vec<Option<f32>> = column.iter().collect();
    assert_eq!(values, [Some(2.0), None, Some(7.0), None]);

    // The same entity rows as Parquet (integer-free keys, a nanosecond timestamp column,
    // as pandas writes it), straight from storage without the server: the same values.
    let entities_pq = dir.path().join("entities.parquet");
    {
        use arrow_array::{ArrayRef, StringArray, TimestampNanosecondArray};
        let seconds = [T0 + 25 * 60, T0 + 5 * 60, T0 + 15 * 60, T0 + 15 * 60];
        let batch = arrow_array::RecordBatch::try_from_iter([
            (
                "customer_id",
                std::sync::Arc::new(StringArray::from(vec!["c1", "c1", "c2", "c9"])) as ArrayRef,
            ),
            (
                "event_timestamp",
                std::sync::Arc::new(
                    TimestampNanosecondArray::from(
                        seconds
                            .iter()
                            .map(|s| s * 1_000_000_000)
                            .collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ),
            ),
            (
                "label",
                std::sync::Arc::new(arrow_array::Int8Array::from(vec![1, 0, 1, 0])) as ArrayRef,
            ),
        ])
        .expect("batch");
        let file = std::fs::File::create(&entities_pq).expect("create");
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("w");
        w.write(&batch).expect("write");
        w.close().expect("close");
    }
    let output_pq = dir.path().join("train2.parquet");
    let kept = server.stop_keeping_data().await;
    let data_dir = kept.path().display().to_string();
    let out = ok(&[
        "features",
        "history",
        "--data-dir",
        &data_dir,
        "--features",
        "activity:orders",
        "--entities",
        &entities_pq.display().to_string(),
        "--output",
        &output_pq.display().to_string(),
    ]);
    assert!(out.contains("wrote 4 rows"), "{out}");
    let batch = first_batch(&output_pq);
    assert_eq!(orders_column(&batch), [Some(2.0), None, Some(7.0), None]);
    // A Parquet entity file's columns keep their exact types.
    let label = batch.column_by_name("label").expect("label kept");
    assert_eq!(label.data_type().to_string(), "Int8");

    // Compacting the history (replaced files deleted at once) changes no answer; the
    // JSON summary of the join says what it read.
    let out = ok(&[
        "features",
        "compact",
        "--data-dir",
        &data_dir,
        "--grace",
        "0s",
        "--json",
    ]);
    let reports: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(
        reports[0]["files_merged"].as_u64().expect("merged") >= 2,
        "{out}"
    );
    let out = ok(&[
        "features",
        "history",
        "--data-dir",
        &data_dir,
        "--features",
        "activity:orders",
        "--entities",
        &entities_pq.display().to_string(),
        "--output",
        &output_pq.display().to_string(),
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(summary["rows"], 4, "{out}");
    assert_eq!(summary["views"][0]["files_read"], 1, "{out}");
    assert_eq!(
        orders_column(&first_batch(&output_pq)),
        [Some(2.0), None, Some(7.0), None]
    );
}

/// The first batch of a Parquet training set.
fn first_batch(path: &std::path::Path) -> arrow_array::RecordBatch {
    let bytes = bytes::Bytes::from(std::fs::read(path).expect("output"));
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .expect("parquet")
        .build()
        .expect("reader")
        .next()
        .expect("a batch")
        .expect("batch")
}

/// A training set's `activity__orders` column.
fn orders_column(batch: &arrow_array::RecordBatch) -> Vec<Option<f32>> {
    batch
        .column_by_name("activity__orders")
        .expect("column")
        .as_any()
        .downcast_ref::<arrow_array::Float32Array>()
        .expect("float32")
        .iter()
        .collect()
}
