//! Shadow traffic: a copy of a live request runs on a shadow version after the caller has
//! been answered, off the caller's path. Its answer is discarded; its latency, its errors
//! and how its predictions differ from the live answer's go to metrics, so a candidate
//! can be judged on real traffic before it takes any.
//!
//! Shadow runs are bounded by their own limit: when that many are running, further
//! copies are dropped (and counted) rather than queued, so a slow shadow never slows or
//! overloads live serving.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::error::{ServeError, code_name};
use crate::models::LoadedModel;
pub use crate::monitor::shadow::Predictions;
use crate::monitor::shadow::ShadowMetrics;

/// An answer whose predictions a shadow's can be compared with.
pub trait Predicts {
    /// Its predictions.
    fn predictions(&self) -> Predictions;
}

/// Sends copies of live requests to shadow versions, at most `max_in_flight` at once.
#[derive(Debug)]
pub struct Shadows {
    slots: Arc<Semaphore>,
    metrics: ShadowMetrics,
}

impl Shadows {
    /// At most `max_in_flight` shadow runs at once, recorded on `metrics`.
    pub fn new(max_in_flight: usize, metrics: ShadowMetrics) -> Shadows {
        Shadows {
            slots: Arc::new(Semaphore::new(max_in_flight)),
            metrics,
        }
    }

    /// Sends a copy of `request`, which `live` answered, to each of `shadows`: `run`
    /// answers it on one shadow version, in a task of its own, after the caller has had
    /// the live answer. Never fails and never waits: copies past the limit are dropped.
    pub fn send<Req, Resp, F, Fut>(
        &self,
        method: &'static str,
        shadows: &[Arc<LoadedModel>],
        request: Req,
        live: &Resp,
        run: F,
    ) where
        Req: Clone + Send + 'static,
        Resp: Predicts,
        F: Fn(Arc<LoadedModel>, Req) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<Resp, ServeError>> + Send,
    {
        if shadows.is_empty() {
            return;
        }
        let live = Arc::new(live.predictions());
        for shadow in shadows {
            let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
                self.metrics
                    .dropped
                    .with_label_values(&[&shadow.name, &shadow.version_label])
                    .inc();
                continue;
            };
            let (metrics, shadow, request, live, run) = (
                self.metrics.clone(),
                Arc::clone(shadow),
                request.clone(),
                Arc::clone(&live),
                run.clone(),
            );
            tokio::spawn(async move {
                let _permit = permit;
                let started = Instant::now();
                let result = run(Arc::clone(&shadow), request).await;
                let labels = [shadow.name.as_str(), shadow.version_label.as_str(), method];
                metrics
                    .duration
                    .with_label_values(&labels)
                    .observe(started.elapsed().as_secs_f64());
                let code = match result {
                    Ok(answer) => {
                        metrics.compare(labels[0], labels[1], &live, &answer.predictions());
                        tonic::Code::Ok
                    }
                    Err(e) => {
                        let status = tonic::Status::from(e);
                        tracing::debug!(
                            model = %shadow.name,
                            version = shadow.version,
                            error = %status.message(),
                            "shadow run failed"
                        );
                        status.code()
                    }
                };
                metrics
                    .requests
                    .with_label_values(&[labels[0], labels[1], method, code_name(code)])
                    .inc();
            });
        }
    }
}
