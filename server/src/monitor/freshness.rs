//! Feature freshness: how old the newest value of each feature view is, so that a stalled
//! ingestion or materialization job shows on a dashboard (and fires an alert) before the
//! values it should have refreshed expire and predictions fall back to defaults.
//!
//! The newest event time is kept by the online store itself on every write (both
//! backends), so replicas that share a Redis store report the same freshness whichever
//! of them, or which CLI job, wrote the rows. A task reads it every poll interval.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mercator_features::FeatureStore;
use prometheus::{GaugeVec, Opts, Registry};

/// `mercator_feature_view_*` gauges, labelled by view (views come from the applied
/// definitions, never from requests).
#[derive(Clone, Debug)]
pub struct FreshnessMetrics {
    newest: GaugeVec,
    age: GaugeVec,
    ttl: GaugeVec,
}

impl FreshnessMetrics {
    /// Creates the gauges and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<FreshnessMetrics> {
        let gauge = |name: &str, help: &str| GaugeVec::new(Opts::new(name, help), &["view"]);
        let m = FreshnessMetrics {
            newest: gauge(
                "mercator_feature_view_newest_event_timestamp_seconds",
                "Event time of the newest row in a feature view's online store, in seconds \
                 since the Unix epoch.",
            )?,
            age: gauge(
                "mercator_feature_view_age_seconds",
                "Age of the newest row in a feature view's online store at the last check, in \
                 seconds (0 for rows dated in the future).",
            )?,
            ttl: gauge(
                "mercator_feature_view_ttl_seconds",
                "A feature view's TTL, in seconds (views without one have no series): values \
                 older than this are served as expired.",
            )?,
        };
        registry.register(Box::new(m.newest.clone()))?;
        registry.register(Box::new(m.age.clone()))?;
        registry.register(Box::new(m.ttl.clone()))?;
        Ok(m)
    }
}

/// What was last read for each view: its newest event time (seconds since the epoch)
/// and its TTL (seconds).
#[derive(Debug, Default)]
pub struct Freshness {
    newest: BTreeMap<String, f64>,
    ttl: BTreeMap<String, f64>,
}

impl Freshness {
    /// Reads every view's newest event time and updates the gauges at `now` (seconds
    /// since the epoch). When the store cannot be read the last known times stay, so
    /// ages keep growing: the newest value known is at least that old.
    pub async fn sample(&mut self, features: &FeatureStore, metrics: &FreshnessMetrics, now: f64) {
        match features.newest_events().await {
            Ok(views) => {
                let mut newest = BTreeMap::new();
                let mut ttl = BTreeMap::new();
                for (view, t) in views {
                    if let Some(t) = t {
                        newest.insert(view.name.clone(), t as f64 / 1e6);
                    }
                    if let Some(d) = view.ttl {
                        ttl.insert(view.name.clone(), d.as_secs_f64());
                    }
                }
                forget_missing(&self.newest, &newest, &[&metrics.newest, &metrics.age]);
                forget_missing(&self.ttl, &ttl, &[&metrics.ttl]);
                self.newest = newest;
                self.ttl = ttl;
            }
            Err(e) => tracing::warn!(error = %e, "cannot read feature freshness"),
        }
        for (view, t) in &self.newest {
            metrics.newest.with_label_values(&[view]).set(*t);
            metrics
                .age
                .with_label_values(&[view])
                .set((now - t).max(0.0));
        }
        for (view, ttl) in &self.ttl {
            metrics.ttl.with_label_values(&[view]).set(*ttl);
        }
    }
}

/// Removes the series of views that were exported before and are not now.
fn forget_missing(
    before: &BTreeMap<String, f64>,
    now: &BTreeMap<String, f64>,
    gauges: &[&GaugeVec],
) {
    for view in before.keys().filter(|v| !now.contains_key(*v)) {
        for gauge in gauges {
            // Absent series are fine: there is nothing to remove.
            let _ = gauge.remove_label_values(&[view]);
        }
    }
}

/// Samples freshness every `every` until `stop`.
pub async fn run(
    features: Arc<FeatureStore>,
    metrics: FreshnessMetrics,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut freshness = Freshness::default();
    loop {
        let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
        freshness.sample(&features, &metrics, now).await;
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
