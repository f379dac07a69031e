//! At least once, on the real binary (issue 35): a server SIGKILLed while it consumes a
//! source loses no event the broker acknowledged, and what its restart delivers again
//! changes nothing: the online features and every point-in-time answer equal those of a
//! server that consumed the same topic without being killed.

use std::process::{Child, Command};

use mercator_proto::v1::feature_store_client::FeatureStoreClient;
use tonic::transport::Channel;

use crate::cli::ok;
use crate::harness::free_port;
use crate::kafka::{Kafka, broker, eventually, topic};
use crate::streams::{DEFS, event, history, late_days};

const CUSTOMERS: usize = 300;
const EVENTS_EACH: i64 = 10;

struct Served {
    child: Child,
    grpc: String,
    metrics: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mercator serve` on `data` with `config` (its `[streams]`).
async fn serve(data: &std::path::Path, config: &std::path::Path) -> Served {
    let (grpc, metrics) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_mercator"))
        .args(["serve", "--data-dir"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(["--grpc-addr", &grpc, "--metrics-addr", &metrics])
        .env_remove("MERCATOR_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mercator serve");
    let served = Served {
        child,
        grpc: format!("http://{grpc}"),
        metrics,
    };
    eventually(60, "the server to listen", || async {
        Channel::from_shared(served.grpc.clone())
            .expect("url")
            .connect()
            .await
            .is_ok()
    })
    .await;
    served
}

/// Messages written so far, as the server counts them.
async fn written(metrics: &str) -> f64 {
    let text = crate::prediction_log_crash::scrape(&format!("http://{metrics}/metrics")).await;
    crate::harness::metric_value(
        &text,
        r#"mercator_stream_messages_total{outcome="written",source="deliveries"}"#,
    )
    .unwrap_or(0.0)
}

/// Online values of every customer and the answer as of every event's time.
async fn state(
    served: &Served,
    ids: &[String],
    at: &[(String, i64)],
) -> (Vec<Option<i64>>, Vec<Option<i64>>) {
    let channel = Channel::from_shared(served.grpc.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut c = FeatureStoreClient::new(channel);
    (late_days(&mut c, ids).await, history(&mut c, at).await)
}

/// Waits until every customer's last event is online.
async fn caught_up(served: &Served, ids: &[String]) {
    let last = vec![Some(EVENTS_EACH - 1); ids.len()];
    eventually(120, "every event consumed", || async {
        let Ok(channel) = Channel::from_shared(served.grpc.clone())
            .expect("url")
            .connect()
            .await
        else {
            return false;
        };
        late_days(&mut FeatureStoreClient::new(channel), ids).await == last
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_consuming_loses_nothing_and_replay_changes_nothing() {
    let Some(broker) = broker() else { return };
    let kafka = Kafka::connect(&broker).await;
    let source = topic("crash");
    kafka.create(&source, 2).await;
    let ids: Vec<String> = (0..CUSTOMERS).map(|i| format!("K{i:04}")).collect();
    let base = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
    // Each customer's events in order, a second apart, in its partition.
    let mut at = Vec::new();
    for k in 0..EVENTS_EACH {
        for (i, id) in ids.iter().enumerate() {
            let time = base + k * 1_000_000 + i as i64;
            kafka
                .produce(&source, (i % 2) as i32, id, &event(id, time, k))
                .await;
            at.push((id.clone(), time));
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("mercator.toml");
    // Small fetches, so the kill lands between many commits.
    std::fs::write(
        &config,
        format!(
            "[streams]\nbrokers = [\"{broker}\"]\nfetch_max_bytes = 2048\nfetch_max_wait_ms = 100\n\n\
             [[streams.sources]]\nname = \"deliveries\"\ntopic = \"{source}\"\nview = \"deliveries\"\n"
        ),
    )
    .expect("config");
    let defs = dir.path().join("defs.toml");
    std::fs::write(&defs, DEFS).expect("defs");
    let (killed, calm) = (dir.path().join("killed"), dir.path().join("calm"));
    for data in [&killed, &calm] {
        let data = data.display().to_string();
        ok(&[
            "features",
            "--data-dir",
            &data,
            "apply",
            &defs.display().to_string(),
        ]);
    }

    // Killed mid-way, then restarted on the same data.
    let total = (CUSTOMERS as i64 * EVENTS_EACH) as f64;
    let mut first = serve(&killed, &config).await;
    eventually(120, "some messages written", || async {
        written(&first.metrics).await >= total / 4.0
    })
    .await;
    let before = written(&first.metrics).await;
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("wait");
    assert!(
        before < total,
        "killed before the end ({before} of {total} written)"
    );
    drop(first);
    let again = serve(&killed, &config).await;
    caught_up(&again, &ids).await;
    let after_kill = state(&again, &ids, &at).await;

    // The same topic, consumed without a kill.
    let undisturbed = serve(&calm, &config).await;
    caught_up(&undisturbed, &ids).await;
    let without_kill = state(&undisturbed, &ids, &at).await;

    let want: Vec<Option<i64>> = (0..EVENTS_EACH)
        .flat_map(|k| std::iter::repeat_n(Some(k), CUSTOMERS))
        .collect();
    assert_eq!(
        after_kill.1, want,
        "every acknowledged event is in the history, as of its time"
    );
    assert_eq!(after_kill, without_kill, "replay changed nothing");
}
