//! Loads through a server (issue 29, items 6 and 9): a file in the user's own folder,
//! outside the server's load roots, is uploaded by the CLI and loaded (CSV and Parquet);
//! an upload is held to `limits.max_upload_bytes`; a server-side load tells its
//! progress as it goes, and the CLI counts rows at a terminal for either.

use std::process::Command;

use futures::StreamExt;
use mercator_proto::v1::feature_store_client::FeatureStoreClient;
use mercator_proto::v1::{self as pb};
use tonic::Code;

use crate::churn::FEATURES_TOML;
use crate::cli::ok;
use crate::harness::{CHURN_DIR, TestServer};

fn customers_csv() -> String {
    format!("{CHURN_DIR}/customers.csv")
}

fn load_args<'a>(url: &'a str, path: &'a str) -> Vec<&'a str> {
    vec![
        "features",
        "--server",
        url,
        "load",
        "customer_churn",
        path,
        "--ignore-unknown-columns",
        "--event-time",
        "2026-12-01T00:00:00Z",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_outside_the_roots_is_uploaded_and_loads_show_progress() {
    let server = TestServer::builder()
        .config(|c| c.limits.max_upload_bytes = 4 * 1024 * 1024)
        .start()
        .await;
    let url = server.url();
    let mine = tempfile::tempdir().expect("tempdir");
    let defs = mine.path().join("features.toml");
    std::fs::write(&defs, FEATURES_TOML).expect("write");
    ok(&[
        "features",
        "--server",
        &url,
        "apply",
        &defs.display().to_string(),
    ]);

    // A newcomer's CSV in their own folder (not a load root): uploaded, loaded.
    let csv = mine.path().join("customers.csv");
    std::fs::copy(customers_csv(), &csv).expect("copy");
    let out = ok(&load_args(&url, &csv.display().to_string()));
    assert!(out.starts_with("loaded 12000 rows: 12000 written"), "{out}");

    // The same rows as Parquet (pandas' layout), uploaded and spooled.
    let parquet = mine.path().join("customers.parquet");
    let python = crate::tritonclient::python();
    if let Some(python) = python {
        let written = Command::new(&python)
            .args([
                "-c",
                "import sys, pandas as pd; pd.read_csv(sys.argv[1]).to_parquet(sys.argv[2])",
            ])
            .arg(&csv)
            .arg(&parquet)
            .output()
            .expect("run python");
        assert!(written.status.success(), "{written:?}");
        let out = ok(&load_args(&url, &parquet.display().to_string()));
        assert!(out.starts_with("loaded 12000 rows"), "{out}");
        let spool = server.data_dir.path().join("tmp").join("uploads");
        let left = std::fs::read_dir(&spool).map_or(0, |d| d.count());
        assert_eq!(left, 0, "the spooled upload is removed");
    }

    let mut c = FeatureStoreClient::new(server.channel().await);
    let request = |url: &str| pb::LoadFileRequest {
        view: "customer_churn".into(),
        url: url.into(),
        default_event_time: Some(prost_types::Timestamp {
            seconds: 1_764_547_200,
            nanos: 0,
        }),
        ignore_unknown_columns: true,
    };
    // Over the limit: refused, naming it.
    let big = vec![b'x'; 3 * 1024 * 1024];
    let chunks = vec![
        pb::LoadChunk {
            request: Some(request("big.csv")),
            data: Vec::new(),
        },
        pb::LoadChunk {
            request: None,
            data: big.clone(),
        },
        pb::LoadChunk {
            request: None,
            data: big,
        },
    ];
    let mut answers = c
        .load_upload(futures::stream::iter(chunks))
        .await
        .expect("upload call")
        .into_inner();
    let mut refused = None;
    while let Some(answer) = answers.next().await {
        if let Err(status) = answer {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("an upload over the limit is refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("limits.max_upload_bytes"),
        "{status:?}"
    );
    // No request first, a bad line: named.
    let answer = c
        .load_upload(futures::stream::iter(vec![pb::LoadChunk {
            request: None,
            data: b"customer_id\n".to_vec(),
        }]))
        .await;
    let status = match answer {
        Err(s) => s,
        Ok(r) => r
            .into_inner()
            .next()
            .await
            .and_then(Result::err)
            .expect("refused"),
    };
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("request"), "{status:?}");
    let bad = b"customer_id,event_timestamp,orders_90d\nc1,0,lots\n".to_vec();
    let mut answers = c
        .load_upload(futures::stream::iter(vec![pb::LoadChunk {
            request: Some(request("bad.csv")),
            data: bad,
        }]))
        .await
        .expect("upload call")
        .into_inner();
    let status = answers
        .next()
        .await
        .and_then(Result::err)
        .expect("a bad cell is refused");
    assert!(
        status.message().contains("line 2, column 'orders_90d'"),
        "{status:?}"
    );

    // A server-side load tells its progress: 12,000 rows are two batches of 10,000.
    let inside = server
        .data_dir
        .path()
        .join("features")
        .join("customers.csv");
    std::fs::copy(customers_csv(), &inside).expect("copy");
    let answers: Vec<pb::LoadProgress> = c
        .load_file_progress(request("customers.csv"))
        .await
        .expect("load")
        .into_inner()
        .map(|a| a.expect("progress"))
        .collect()
        .await;
    let last = answers.last().expect("answers");
    assert!(last.done && last.rows == 12000, "{answers:?}");
    assert!(
        answers.len() >= 2 && answers[0].rows == 10000 && !answers[0].done,
        "{answers:?}"
    );
    // And keeps to the roots.
    let err = c
        .load_file_progress(request("/etc/passwd"))
        .await
        .expect_err("outside the roots");
    assert!(err.message().contains("features.load_roots"), "{err:?}");

    // At a terminal the CLI counts the rows of an upload.
    let mut command = vec![env!("CARGO_BIN_EXE_mercator").to_string()];
    let csv_path = csv.display().to_string();
    command.extend(load_args(&url, &csv_path).into_iter().map(String::from));
    let line = command
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .expect("run script (util-linux)");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("uploading"), "{shown}");
    assert!(shown.contains("loaded 12000 rows"), "{shown}");
    server.stop().await;
}
