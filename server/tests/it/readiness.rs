//! `ServerReady` stays false until the initial model loads finish: the artifact store is
//! held shut, the manager cannot finish loading, and readiness must wait for it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use mercator_registry::{ArtifactStore, NewVersion, Registry};
use mercator_server::models::{ModelManager, Models};
use mercator_server::monitor::Metrics;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use tokio::sync::watch;

use crate::harness::{CHURN_DIR, read_dir_files};

/// An in-memory store whose reads wait until the gate opens.
#[derive(Debug)]
struct GatedStore {
    inner: object_store::memory::InMemory,
    open: watch::Receiver<bool>,
}

impl fmt::Display for GatedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GatedStore")
    }
}

#[async_trait::async_trait]
impl ObjectStore for GatedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let _ = self.open.clone().wait_for(|open| *open).await;
        self.inner.get_opts(location, options).await
    }
    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.inner.delete(location).await
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy(from, to).await
    }
    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

#[tokio::test]
async fn not_ready_until_the_initial_loads_finish() {
    let (gate, open) = watch::channel(false);
    let store = Arc::new(GatedStore {
        inner: object_store::memory::InMemory::new(),
        open,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/registry.db?mode=rwc", dir.path().display());
    let registry = Registry::open(
        &url,
        ArtifactStore::from_store(store, "memory://gated"),
        std::sync::Arc::new(mercator_server::models::BuildCheck),
    )
    .await
    .expect("registry");
    let files = read_dir_files(
        std::path::Path::new(CHURN_DIR),
        &["mercator.json", "model.json"],
    );
    registry
        .register(NewVersion {
            model: "churn".into(),
            files,
            alias: Some("champion".into()),
            ..NewVersion::default()
        })
        .await
        .expect("register");

    let models = Arc::new(Models::default());
    let metrics = Metrics::register(&prometheus::Registry::new()).expect("metrics");
    let manager = Arc::new(ModelManager::new(
        registry,
        Arc::clone(&models),
        metrics,
        mercator_server::models::manager::ManagerSettings {
            aliases: vec!["champion".into()],
            default_max_batch: 4096,
            poll_interval: Duration::from_millis(50),
            instance: "test".into(),
            policy: Default::default(),
            drift: mercator_server::Config::default().drift.settings(),
            batching: Default::default(),
        },
    ));
    tokio::spawn(Arc::clone(&manager).run(std::future::pending()));

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !models.is_ready(),
        "ready before the champion could be read"
    );
    assert!(models.resolve("churn", "").is_err());

    gate.send_replace(true);
    tokio::time::timeout(Duration::from_secs(10), models.wait_ready())
        .await
        .expect("ready once loads finish");
    assert_eq!(models.resolve("churn", "").expect("served").version, 1);
}

/// Probes may name any service: once the models are loaded, the server (`""`) and every
/// service it serves answer SERVING (the registry's follows the registry; the health
/// service always answers); a service it does not serve is NOT_FOUND.
#[tokio::test]
async fn health_answers_for_every_service_served() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let server = crate::harness::TestServer::builder().churn().start().await;
    server.wait_for_ready("churn").await;
    let mut health = HealthClient::new(server.channel().await);
    let mut services = mercator_server::descriptors::services();
    services.push(String::new());
    assert!(
        services
            .iter()
            .any(|s| s == "inference.GRPCInferenceService")
    );
    assert!(services.iter().any(|s| s == "mercator.v1.Churn"));
    for service in services {
        // Readiness is published just after the loads finish: allow it a moment.
        let mut status = 0;
        for _ in 0..100 {
            status = health
                .check(HealthCheckRequest {
                    service: service.clone(),
                })
                .await
                .unwrap_or_else(|e| panic!("health of '{service}': {e}"))
                .into_inner()
                .status;
            if status == ServingStatus::Serving as i32 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            status,
            ServingStatus::Serving as i32,
            "'{service}' is SERVING"
        );
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("an unknown service");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    server.stop().await;
}
