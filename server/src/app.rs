//! Wiring: open the registry, bind the listeners, start the model manager, serve gRPC
//! and metrics, and drain on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use mercator_registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::ServingStatus;

use crate::auth::Verifier;
use crate::config::Config;
use crate::listen::tls::Tls;
use crate::models::{ModelManager, Models};
use crate::monitor::{self, Metrics};
use crate::serving::Serving;

/// The health-checking name of the registry service, reported NOT_SERVING while the
/// registry cannot be read.
pub const REGISTRY_SERVICE: &str = "mercator.v1.Registry";

/// A server whose listeners are bound but which is not serving yet.
#[derive(Debug)]
pub struct App {
    config: Config,
    registry: Registry,
    features: Arc<mercator_features::FeatureStore>,
    prometheus: prometheus::Registry,
    metrics: Metrics,
    models: Arc<Models>,
    grpc: TcpListener,
    http: TcpListener,
    /// `None`: auth is off.
    verifier: Option<Arc<Verifier>>,
    /// `None`: plain TCP.
    tls: Option<Tls>,
}

impl App {
    /// Opens storage and binds both listeners (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let registry = crate::definitions::open_registry(&config).await?;
        let features = crate::definitions::open_feature_store(&config, &registry, "server")
            .await
            .context("opening the feature store")?;
        tracing::info!(
            online_store = features.online_backend(),
            "feature store open"
        );
        let prometheus = prometheus::Registry::new();
        let metrics = Metrics::register(&prometheus)?;
        let verifier = crate::definitions::open_verifier(&config, &registry)?;
        let tls = match crate::listen::tls::TlsSettings::of(&config.tls) {
            Some(settings) => {
                // Only with TLS: a zero would read as a certificate long expired.
                prometheus.register(Box::new(metrics.tls_expiry.clone()))?;
                Some(
                    Tls::start(&settings, metrics.tls_expiry.clone())
                        .map_err(anyhow::Error::msg)?,
                )
            }
            None => None,
        };
        for (key, addr) in [
            ("grpc.addr", config.grpc.addr),
            ("metrics.addr", config.metrics.addr),
        ] {
            if tls.is_none() && !addr.ip().is_loopback() {
                tracing::warn!(
                    key,
                    %addr,
                    "listening on a network address without TLS: credentials and data \
                     cross the network in clear text (set [tls] cert_file and key_file)"
                );
            }
        }
        let grpc = TcpListener::bind(config.grpc.addr)
            .await
            .with_context(|| format!("binding gRPC on {}", config.grpc.addr))?;
        let http = TcpListener::bind(config.metrics.addr)
            .await
            .with_context(|| format!("binding metrics on {}", config.metrics.addr))?;
        let models = Models::default();
        models.set_strict_readiness(config.models.strict_readiness);
        Ok(App {
            config,
            registry,
            features,
            prometheus,
            metrics,
            models: Arc::new(models),
            grpc,
            http,
            verifier,
            tls,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    /// The bound metrics address.
    pub fn metrics_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// The feature store the server reads.
    pub fn features(&self) -> &Arc<mercator_features::FeatureStore> {
        &self.features
    }

    /// The registry the server reads.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests
    /// finish (up to the grace period) and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let App {
            config,
            registry,
            features,
            prometheus,
            metrics,
            models,
            grpc,
            http,
            verifier,
            tls,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };

        let manager = Arc::new(ModelManager::new(
            registry.clone(),
            Arc::clone(&models),
            metrics.clone(),
            crate::models::manager::ManagerSettings {
                aliases: config.models.serve_aliases.clone(),
                default_max_batch: config.limits.max_batch_size,
                poll_interval: config.registry.poll_interval(),
                instance: config.server.instance(),
                policy: crate::models::manager::VersionPolicy {
                    keep_newest: config.models.keep_versions,
                    pinned: config.models.pinned()?,
                },
                drift: config.drift.settings(),
                batching: crate::models::manager::Batching {
                    overrides: config.serving.batching.clone(),
                },
            },
        ));
        let manager_task = tokio::spawn(Arc::clone(&manager).run(stopped(stop_rx.clone())));
        let definitions_changed = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(follow_registry_changes(
            registry.clone(),
            Arc::clone(&manager),
            Arc::clone(&definitions_changed),
            config.registry.poll_interval(),
            stopped(stop_rx.clone()),
        ));
        tokio::spawn(heartbeat(
            registry.clone(),
            config.server.instance(),
            config.registry.instance_ttl() / 4,
            stopped(stop_rx.clone()),
        ));
        let drift_latest = Arc::new(crate::monitor::drift::Latest::default());
        let watched = Arc::clone(&models);
        tokio::spawn(crate::monitor::drift::run(
            move || watched.snapshot().watched(),
            metrics.drift.clone(),
            config.drift.settings(),
            Arc::clone(&drift_latest),
            stopped(stop_rx.clone()),
        ));
        tokio::spawn(crate::monitor::freshness::run(
            Arc::clone(&features),
            metrics.freshness.clone(),
            config.registry.poll_interval(),
            stopped(stop_rx.clone()),
        ));
        let definitions_task = tokio::spawn(follow_definitions(
            Arc::clone(&features),
            definitions_changed,
            config.registry.poll_interval(),
            stopped(stop_rx.clone()),
        ));

        let rest_refused = metrics.http_refused.clone();
        // Every prediction logged, and judged against outcomes (both off together).
        let (prediction_log, judge) = crate::quality::start(
            &config.prediction_log,
            &config.server.data_dir,
            &config.server.instance(),
            Arc::clone(&models),
            &metrics,
            stopped(stop_rx.clone()),
        )
        .map_err(anyhow::Error::msg)?;
        let mut serving = Serving::new(
            Arc::clone(&models),
            metrics,
            Arc::clone(&features),
            crate::serving::Limits {
                max_in_flight: config.limits.max_in_flight,
                offload_min_rows: config.serving.offload_min_rows,
                max_shadow_in_flight: config.serving.max_shadow_in_flight,
            },
        );
        serving.log = prediction_log.clone();
        let serving = Arc::new(serving);
        crate::streams::start(
            &config.streams,
            crate::streams::Wiring {
                serving: Arc::clone(&serving),
                registry: registry.clone(),
                judge: judge.clone(),
                instance: config.server.instance(),
            },
            stop_rx.clone(),
        );
        let crate::grpc::Grpc {
            server: grpc_server,
            service,
            health: reporter,
            budget,
        } = crate::grpc::router(
            &config,
            serving,
            registry,
            manager,
            features,
            crate::grpc::monitoring::Watchers {
                drift: drift_latest,
                judge,
            },
            verifier.clone(),
        )?;
        reporter
            .set_service_status(HEALTH_SERVICE, ServingStatus::Serving)
            .await;
        set_health(&reporter, ServingStatus::NotServing).await;
        let ready_reporter = reporter.clone();
        let ready_models = Arc::clone(&models);
        tokio::spawn(async move {
            ready_models.wait_ready().await;
            // Then follows readiness: NOT_SERVING while a served alias has no version
            // that loads (and from shutdown on).
            let mut watch = ready_models.watch_readiness();
            loop {
                let status = if ready_models.is_ready() {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                set_health(&ready_reporter, status).await;
                if !watch.changed().await {
                    return;
                }
            }
        });

        // The registry's own service reports NOT_SERVING while the registry cannot be read;
        // the server as a whole ("") stays SERVING: it keeps answering with the models it
        // has, so probes must not restart it for that.
        let registry_reporter = reporter.clone();
        let mut reachable = models.registry_reachable();
        tokio::spawn(async move {
            loop {
                let status = if *reachable.borrow_and_update() {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                registry_reporter
                    .set_service_status(REGISTRY_SERVICE, status)
                    .await;
                if reachable.changed().await.is_err() {
                    return;
                }
            }
        });

        let http_addr = http.local_addr()?;
        let protect = config.metrics.protect.then(|| verifier.clone()).flatten();
        let rest = crate::rest::routes(
            crate::rest::gateway::Gateway::new(service.clone()),
            crate::rest::guard::Guard {
                verifier: verifier.clone(),
                budget,
                max_body: config.limits.max_message_bytes,
                timeout: config.grpc.request_timeout(),
                refused: rest_refused,
            },
        );
        let descriptors = crate::listen::limit::descriptor_limit();
        let cap = config
            .server
            .max_connections()
            .unwrap_or_else(|| crate::listen::limit::default_cap(descriptors));
        let idle = config.server.idle_timeout();
        tracing::info!(
            descriptors,
            per_listener = cap,
            "connections limited ([server] max_connections_per_listener)"
        );
        let http_task = tokio::spawn(crate::listen::serve_http(
            http,
            tls.clone(),
            protect,
            move || monitor::render(&prometheus),
            rest,
            crate::listen::limit::Connections::new("http", cap, idle),
            crate::listen::http::HttpSettings {
                per_connection: config.grpc.max_buffered_request_bytes_per_connection,
                header_read_timeout: config.server.header_read_timeout(),
            },
            stopped(stop_rx.clone()),
        ));
        tracing::info!(
            grpc = %grpc.local_addr()?,
            metrics = %http_addr,
            tls = tls.is_some(),
            "mercator serving"
        );
        let grpc_stop = stopped(stop_rx.clone());
        let per_connection = config.grpc.max_buffered_request_bytes_per_connection;
        let grpc_connections = crate::listen::limit::Connections::new("grpc", cap, idle);
        let grpc_task = tokio::spawn(async move {
            crate::listen::serve_grpc(
                (grpc_server, service),
                grpc,
                tls.as_ref(),
                grpc_connections,
                per_connection,
                grpc_stop,
            )
            .await
        });

        shutdown.await;
        tracing::info!("shutting down: refusing new requests, draining in-flight ones");
        set_health(&reporter, ServingStatus::NotServing).await;
        // V2 ServerReady (gRPC and /v2/health/ready) says the same as the health service.
        models.set_ready(false);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(config.server.shutdown_grace(), async {
            let grpc = grpc_task.await;
            let _ = http_task.await;
            let _ = manager_task.await;
            let _ = definitions_task.await;
            grpc
        })
        .await;
        // Every prediction accepted is in the log: what is queued is written now.
        if let Some(log) = &prediction_log {
            let _ = tokio::time::timeout(config.server.shutdown_grace(), log.flush()).await;
        }
        match drained {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(e.into()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                tracing::warn!(
                    grace_secs = config.server.shutdown_grace_secs,
                    "grace period over with requests still in flight"
                );
                Ok(())
            }
        }
    }
}

/// On PostgreSQL, wakes the model manager as soon as any replica (or the CLI) commits a
/// registry change, instead of at its next poll, and the definitions follower when the
/// change names no model (an apply of feature definitions; key changes too, which cost it
/// one cheap read); polling stays as the fallback, and a lost listener is reopened after a
/// poll interval. Each time the listener opens, both look once: a change committed before
/// it listened (while the server started, or while it was lost) is not notified to it.
async fn follow_registry_changes(
    registry: Registry,
    manager: Arc<ModelManager>,
    definitions_changed: Arc<tokio::sync::Notify>,
    every: std::time::Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        match registry.listen_for_changes().await {
            Ok(None) => return,
            Ok(Some(mut listener)) => {
                // A change committed before the LISTEN took effect (at start, or while the
                // listener was lost) sends no notification to this listener: look once now.
                manager.wake();
                definitions_changed.notify_one();
                loop {
                    tokio::select! {
                        () = &mut stop => return,
                        note = listener.recv() => match note {
                            Ok(n) => {
                                tracing::debug!(model = n.payload(), "registry change notified");
                                if n.payload().is_empty() {
                                    definitions_changed.notify_one();
                                } else {
                                    manager.wake();
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "registry change listener lost; polling");
                                break;
                            }
                        },
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for registry changes; polling"),
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Sets the health of the server as a whole (`""`) and of every service it serves (so a
/// probe may name any of them) but the registry's, which follows the registry itself, and
/// the health service, which always answers.
async fn set_health(reporter: &tonic_health::server::HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for service in crate::descriptors::services() {
        if service != REGISTRY_SERVICE && service != HEALTH_SERVICE {
            reporter.set_service_status(&service, status).await;
        }
    }
}

/// The health service's own name: it is SERVING as long as it answers.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// Tells the registry this instance is alive, every quarter of `registry.instance_ttl_secs`,
/// so its load reports keep counting as serving; a replica that dies stops, and ages out.
async fn heartbeat(
    registry: Registry,
    instance: String,
    every: std::time::Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        if let Err(e) = registry.heartbeat(&instance).await {
            tracing::debug!(error = %e, "heartbeat not recorded; the next one will try again");
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Picks up feature definitions applied through another replica (or the CLI): when told
/// of an apply (PostgreSQL's notification), else at each poll of the registry.
async fn follow_definitions(
    features: Arc<mercator_features::FeatureStore>,
    changed: Arc<tokio::sync::Notify>,
    every: std::time::Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {}
            () = changed.notified() => {}
        }
        match features.refresh().await {
            Ok(true) => tracing::info!("feature definitions changed; now serving the new ones"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot refresh the feature definitions"),
        }
    }
}
