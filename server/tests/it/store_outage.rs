//! The online store going away and coming back: with its Redis stopped, feature lookups
//! fail fast with UNAVAILABLE naming the store (never a hang, never a wrong score), and
//! serving recovers by itself when Redis returns. The test runs its own `redis-server`, so
//! stopping it disturbs no other test.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mercator_proto::v1 as pb;
use mercator_proto::v1::feature_store_client::FeatureStoreClient;
use tonic::Code;

use crate::churn::{FEATURES_TOML, FIELDS, customer, score};
use crate::harness::TestServer;

/// A `redis-server` of the test's own, without persistence.
struct OwnRedis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl OwnRedis {
    /// Starts one on `port`, or `None` where the machine has no `redis-server`.
    fn start(port: u16, dir: tempfile::TempDir) -> Option<OwnRedis> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(OwnRedis { child, port, dir });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not listen on {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops it (SIGKILL), keeping its port and folder for a restart.
    fn stop(mut self) -> (u16, tempfile::TempDir) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.port;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        (port, dir)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_redis_fails_lookups_fast_and_serving_recovers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let Some(redis) = OwnRedis::start(port, tempfile::tempdir().expect("tempdir")) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have redis-server (scripts/redis.sh installs it)"
        );
        eprintln!("no redis-server: skipped");
        return;
    };
    let online = redis.url();
    let server = TestServer::builder()
        .churn()
        .config(move |c| c.features.online_store = online)
        .start()
        .await;
    let mut features = FeatureStoreClient::new(server.channel().await);
    features
        .apply_definitions(pb::ApplyDefinitionsRequest {
            toml: FEATURES_TOML.into(),
            dry_run: false,
            allow_removals: false,
        })
        .await
        .expect("apply");
    let values: Vec<(&str, f32)> = FIELDS.iter().map(|f| (*f, 1.0)).collect();
    let push = |id: &str| pb::PushRequest {
        view: "customer_churn".into(),
        rows: vec![customer(id, &values, chrono::Utc::now().timestamp())],
    };
    features.push(push("R1")).await.expect("push");
    assert!(score(&server, &["R1"]).await.is_ok());

    // Redis goes away: every lookup is refused as UNAVAILABLE, naming the store.
    let (port, dir) = redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let err = score(&server, &["R1"])
            .await
            .expect_err("no score without the store");
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(
            err.message().contains("online store") && err.message().contains("redis"),
            "{err:?}"
        );
        eprintln!(
            "store outage: Churn/Score refused in {} ms: {}",
            started.elapsed().as_millis(),
            err.message()
        );
        let err = features.push(push("R2")).await.expect_err("no push");
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    }

    // It comes back (empty: it had no persistence); serving resumes by itself.
    let redis = OwnRedis::start(port, dir).expect("redis-server restarts");
    let mut recovered = false;
    for _ in 0..200 {
        if features.push(push("R1")).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "pushes succeed again once Redis is back");
    let got = score(&server, &["R1"]).await.expect("scores again");
    assert_eq!(got.scores[0].status(), pb::customer_score::Status::Scored);
    server.stop().await;
    drop(redis);
}
