//! A registry on a real PostgreSQL. Going away (behind a TCP proxy the test can cut) does
//! not stop serving: the server keeps its model table and its feature definitions and
//! answers (refusing only definition changes, as UNAVAILABLE naming the registry), reports the registry
//! service NOT_SERVING in health checks (the server as a whole stays SERVING) and
//! `mercator_registry_up 0`; when the registry comes back, so does everything else. And a
//! change committed anywhere reaches every server at once (LISTEN/NOTIFY), not at its
//! next poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mercator_proto::inference as pb;
use tokio::net::{TcpListener, TcpStream};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use mercator_proto::v1;
use mercator_proto::v1::feature_store_client::FeatureStoreClient;

use crate::churn::{FEATURES_TOML, FIELDS, customer, score};
use crate::harness::{TestServer, f32_bytes, input};

/// Forwards connections to `target` until cut; while cut, every connection (open or
/// new) is closed.
struct Proxy {
    addr: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let cut = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cut);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(mut outbound) = TcpStream::connect(&target).await else {
                    continue;
                };
                let flag = Arc::clone(&flag);
                tokio::spawn(async move {
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    tokio::pin!(copy);
                    loop {
                        tokio::select! {
                            _ = &mut copy => return,
                            () = tokio::time::sleep(Duration::from_millis(20)) => {
                                if flag.load(Ordering::SeqCst) {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Proxy { addr, cut }
    }
}

/// A new database on the test PostgreSQL (`MERCATOR_TEST_POSTGRES_URL`); `None`, and the
/// test skips, without one (never under CI, which must provide it).
async fn fresh_database() -> Option<String> {
    use sqlx::Connection;
    let Ok(admin) = std::env::var("MERCATOR_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide MERCATOR_TEST_POSTGRES_URL"
        );
        eprintln!("no PostgreSQL (set MERCATOR_TEST_POSTGRES_URL): skipped");
        return None;
    };
    sqlx::any::install_default_drivers();
    let name = format!("mercator_outage_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("connect to postgres");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (base, _) = admin.rsplit_once('/').expect("postgres url has a database");
    Some(format!("{base}/{name}"))
}

async fn status(health: &mut HealthClient<tonic::transport::Channel>, service: &str) -> i32 {
    health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health")
        .into_inner()
        .status
}

async fn registry_up(server: &TestServer) -> Option<String> {
    server
        .metrics_text()
        .await
        .lines()
        .find(|l| l.starts_with("mercator_registry_up "))
        .map(|l| l["mercator_registry_up ".len()..].to_string())
}

#[tokio::test]
async fn serving_survives_the_registry_going_away() {
    let Some(db) = fresh_database().await else {
        return;
    };
    // postgres://user@HOST:PORT/db → the same through the proxy.
    let (scheme_user, rest) = db.split_once('@').expect("user@host");
    let (host_port, path) = rest.split_once('/').expect("host/db");
    let proxy = Proxy::start(host_port.to_string()).await;
    let proxied = format!("{scheme_user}@{}/{path}", proxy.addr);
    let server = TestServer::builder()
        .churn()
        .config(move |c| {
            c.registry.url = proxied;
            c.registry.poll_interval_secs = 0.1;
        })
        .start()
        .await;
    let mut health = HealthClient::new(server.channel().await);
    let serving = ServingStatus::Serving as i32;
    let not_serving = ServingStatus::NotServing as i32;
    assert_eq!(status(&mut health, "").await, serving);
    assert_eq!(registry_up(&server).await.as_deref(), Some("1"));
    // Feature definitions live in the registry; a customer's row in the online store.
    let mut features = FeatureStoreClient::new(server.channel().await);
    let apply = || v1::ApplyDefinitionsRequest {
        toml: FEATURES_TOML.into(),
        dry_run: false,
        allow_removals: false,
    };
    features.apply_definitions(apply()).await.expect("apply");
    let values: Vec<(&str, f32)> = FIELDS.iter().map(|f| (*f, 1.0)).collect();
    features
        .push(v1::PushRequest {
            view: "customer_churn".into(),
            rows: vec![customer("R1", &values, chrono::Utc::now().timestamp())],
        })
        .await
        .expect("push");

    proxy.cut.store(true, Ordering::SeqCst);
    let mut seen_down = false;
    for _ in 0..400 {
        if status(&mut health, mercator_server::app::REGISTRY_SERVICE).await == not_serving {
            seen_down = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(seen_down, "the registry service never reported NOT_SERVING");
    assert_eq!(registry_up(&server).await.as_deref(), Some("0"));
    let errors = server.metrics_text().await;
    assert!(
        errors
            .lines()
            .any(|l| l.starts_with(r#"mercator_registry_errors_total{operation="reconcile"}"#)),
        "failed reads are counted:\n{errors}"
    );
    assert_eq!(
        status(&mut health, "").await,
        serving,
        "the server still serves"
    );
    let mut v2 = server.v2().await;
    for _ in 0..20 {
        let r = v2
            .model_infer(pb::ModelInferRequest {
                model_name: "churn".into(),
                inputs: vec![input("features", "FP32", vec![1, 12])],
                raw_input_contents: vec![f32_bytes(&[0.5; 12])],
                ..Default::default()
            })
            .await
            .expect("served from the table it has")
            .into_inner();
        assert_eq!(r.model_version, "1");
    }
    // Customers are still scored from the definitions the server holds; changing the
    // definitions is refused at once as UNAVAILABLE, naming the registry.
    let scored = score(&server, &["R1"])
        .await
        .expect("scored without the registry");
    assert_eq!(
        scored.scores[0].status(),
        v1::customer_score::Status::Scored
    );
    let started = std::time::Instant::now();
    let err = features
        .apply_definitions(apply())
        .await
        .expect_err("no apply without the registry");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains("registry"), "{err:?}");
    eprintln!(
        "registry outage: ApplyDefinitions refused in {} ms: {}",
        started.elapsed().as_millis(),
        err.message()
    );

    proxy.cut.store(false, Ordering::SeqCst);
    let mut back = false;
    for _ in 0..400 {
        if status(&mut health, mercator_server::app::REGISTRY_SERVICE).await == serving {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(back, "the registry service never came back");
    assert_eq!(registry_up(&server).await.as_deref(), Some("1"));
    features
        .apply_definitions(apply())
        .await
        .expect("definitions can be applied again");
    server.stop().await;
}

#[tokio::test]
async fn alias_moves_reach_other_servers_without_waiting_for_a_poll() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let shared = tempfile::tempdir().expect("shared artifacts");
    let artifacts = shared.path().join("artifacts").display().to_string();
    let (db_a, art_a) = (db.clone(), artifacts.clone());
    let a = TestServer::builder()
        .churn()
        .config(move |c| {
            c.registry.url = db_a;
            c.artifacts.url = art_a;
        })
        .start()
        .await;
    // B polls once a minute: only a notification can bring it the move in time.
    let b = TestServer::builder()
        .config(move |c| {
            c.registry.url = db;
            c.artifacts.url = artifacts;
            c.registry.poll_interval_secs = 60.0;
        })
        .start()
        .await;
    assert_eq!(b.champion_version("churn").await.as_deref(), Some("1"));
    a.registry
        .register(mercator_registry::NewVersion {
            model: "churn".into(),
            files: crate::harness::read_dir_files(
                std::path::Path::new(crate::harness::CHURN_DIR),
                &["mercator.json", "model.json"],
            ),
            actor: "test".into(),
            ..Default::default()
        })
        .await
        .expect("v2");
    // Straight to the database, through neither server.
    a.registry
        .promote("churn", 2, "test", "notify")
        .await
        .expect("promote");
    b.wait_for_champion("churn", "2").await;
    a.wait_for_champion("churn", "2").await;
    a.stop().await;
    b.stop().await;
}
