//! Outcomes and live quality: ground truth pushed or loaded after the fact
//! ([`outcomes`]), joined point in time with the prediction log ([`logged`], [`judge`]),
//! and the kind's statistics ([`stats`]) per version and route, exported as
//! `mercator_model_quality{model,version,route,metric}` on a schedule and answered on
//! demand (`Monitoring/GetQuality`).
//!
//! How a model is judged comes from `[prediction_log.quality.<model>]`, else the
//! champion's manifest `quality` section; a model with neither is not judged.

pub mod experiments;
pub mod judge;
pub mod logged;
pub mod outcomes;
pub mod stats;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use mercator_runtime::manifest::OutputValue;
use mercator_runtime::manifest::quality::Quality;
use object_store::ObjectStore;

use crate::error::ServeError;
use crate::models::Models;
use crate::predlog::PredictionLogConfig;
pub use judge::Group;
pub use outcomes::{Outcome, OutcomeStore};

/// Refusal of a quality call while the prediction log is off (`why`: what that leaves).
pub fn log_off(why: &str) -> ServeError {
    ServeError::FailedPrecondition(format!(
        "the prediction log is off ([prediction_log] enabled = false): {why}"
    ))
}

/// Starts the prediction log and live quality as `config` sets them (locations resolved
/// against `data_dir`, files named after `instance`); both `None` when the log is off.
pub fn start(
    config: &PredictionLogConfig,
    data_dir: &std::path::Path,
    instance: &str,
    models: Arc<Models>,
    metrics: &crate::monitor::Metrics,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(Option<crate::predlog::PredictionLog>, Option<Arc<Judge>>), String> {
    if !config.enabled {
        return Ok((None, None));
    }
    let log = crate::predlog::PredictionLog::start(
        config,
        data_dir,
        instance,
        metrics.prediction_log_rows.clone(),
    )?;
    let judge = Judge::start(config, data_dir, instance, models, metrics, stop)?;
    Ok((Some(log), Some(judge)))
}

/// A model's live quality at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The model.
    pub model: String,
    /// How it was judged.
    pub spec: Quality,
    /// When, microseconds since the epoch.
    pub evaluated_at_micros: i64,
    /// Per version and route.
    pub groups: Vec<Group>,
}

/// The live quality of every model: the log and outcome stores, and the gauges.
#[derive(Debug)]
pub struct Judge {
    log: Arc<dyn ObjectStore>,
    outcomes: OutcomeStore,
    config: PredictionLogConfig,
    models: Arc<Models>,
    gauge: prometheus::GaugeVec,
    uplift: [prometheus::GaugeVec; 3],
    /// The label sets each model last exported, so a version gone from the window
    /// leaves the exposition.
    exported: Mutex<Exported>,
}

/// What judging reads: how the model is judged, its log rows over the window, its
/// outcomes, and the moment they were read.
struct Window {
    spec: Quality,
    rows: Vec<logged::Logged>,
    outcomes: Vec<Outcome>,
    now: i64,
}

/// By model, the (version, route, metric) series exported.
type Exported = HashMap<String, BTreeSet<(String, String, String)>>;

impl Judge {
    /// Judges the log in `log` against `outcomes`, models as `models` serves them.
    pub fn new(
        log: Arc<dyn ObjectStore>,
        outcomes: OutcomeStore,
        config: PredictionLogConfig,
        models: Arc<Models>,
        metrics: &crate::monitor::Metrics,
    ) -> Judge {
        Judge {
            log,
            outcomes,
            config,
            models,
            gauge: metrics.model_quality.clone(),
            uplift: metrics.uplift.clone(),
            exported: Mutex::new(HashMap::new()),
        }
    }

    /// Opens the log and the outcomes as `config` places them (resolved against
    /// `data_dir`; files named after `instance`) and judges every model on its schedule
    /// until `stop`.
    pub fn start(
        config: &PredictionLogConfig,
        data_dir: &std::path::Path,
        instance: &str,
        models: Arc<Models>,
        metrics: &crate::monitor::Metrics,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<Arc<Judge>, String> {
        let log = crate::predlog::open(&config.url, data_dir)?;
        let outcomes = crate::predlog::open(&config.outcomes_location(data_dir)?, data_dir)?;
        let judge = Arc::new(Judge::new(
            log,
            OutcomeStore::new(outcomes, instance),
            config.clone(),
            models,
            metrics,
        ));
        let running = Arc::clone(&judge);
        tokio::spawn(async move {
            tokio::select! {
                () = running.run() => {}
                () = stop => {}
            }
        });
        Ok(judge)
    }

    /// Stores outcomes of `model` (checked: the name, and each outcome by field).
    pub async fn push(&self, model: &str, outcomes: &[Outcome]) -> Result<u64, ServeError> {
        mercator_registry::model::check_name("model_name", model).map_err(|_| {
            ServeError::invalid(
                "model_name",
                "not a model name: 1-64 of a-z, 0-9, '-', '_', '.'",
            )
        })?;
        outcomes::check(outcomes, "outcomes")?;
        if !self.models.snapshot().models.contains_key(model) {
            return Err(ServeError::ModelNotFound(model.to_string()));
        }
        // A binary model's outcomes are 1 or 0: anything else would be judged as a 0.
        if let Ok((spec, _)) = self.spec(model)
            && spec.kind == mercator_runtime::manifest::quality::QualityKind::Binary
            && let Some(i) = outcomes
                .iter()
                .position(|o| !matches!(o.value, Some(v) if v == 0.0 || v == 1.0))
        {
            return Err(ServeError::invalid(
                format!("outcomes[{i}].value"),
                format!("model '{model}' is judged as binary: an outcome is 1 or 0"),
            ));
        }
        self.outcomes.write(model, outcomes).await
    }

    /// How `model` is judged, and the V2 output that stands for its probability.
    fn spec(&self, model: &str) -> Result<(Quality, Option<String>), ServeError> {
        let table = self.models.snapshot();
        let champion = table.models.get(model).and_then(|e| {
            e.aliases
                .get(mercator_registry::CHAMPION)
                .and_then(|v| e.versions.get(v))
        });
        let output = champion.and_then(|c| {
            c.manifest
                .outputs
                .iter()
                .find(|o| o.value == OutputValue::Prediction)
                .map(|o| o.name.clone())
        });
        let spec = self
            .config
            .quality
            .get(model)
            .cloned()
            .or_else(|| champion.and_then(|c| c.sections.quality.clone()));
        match spec {
            Some(spec) => Ok((spec, output)),
            None if champion.is_none() && !table.models.contains_key(model) => {
                Err(ServeError::ModelNotFound(model.to_string()))
            }
            None => Err(ServeError::FailedPrecondition(format!(
                "model '{model}' says nothing of how to judge it: give its manifest a \
                 quality section ({{\"kind\": \"binary\", \"window\": \"90d\"}}) or set \
                 [prediction_log.quality.{model}]"
            ))),
        }
    }

    /// Judges `model` over the last `window_days` (0: the configured window) and exports
    /// the result.
    pub async fn evaluate(&self, model: &str, window_days: f64) -> Result<Report, ServeError> {
        let Window {
            spec,
            rows,
            outcomes,
            now,
        } = self.read_window(model, window_days, |_| Ok(())).await?;
        let spec_for_judging = spec.clone();
        let groups = tokio::task::spawn_blocking(move || {
            judge::judge(&spec_for_judging, &rows, &outcomes, now)
        })
        .await
        .map_err(|e| ServeError::Internal(e.to_string()))?;
        let report = Report {
            model: model.to_string(),
            spec,
            evaluated_at_micros: now,
            groups,
        };
        self.export(&report);
        Ok(report)
    }

    /// How `model` is judged (refused unless `accept` takes it), its log rows over the last
    /// `window_days` (0: the configured window) and its outcomes, read now.
    async fn read_window(
        &self,
        model: &str,
        window_days: f64,
        accept: impl Fn(&Quality) -> Result<(), ServeError>,
    ) -> Result<Window, ServeError> {
        if !(0.0..=3660.0).contains(&window_days) {
            return Err(ServeError::invalid(
                "window_days",
                "must be between 0 (the configured window) and 3660 days",
            ));
        }
        let (spec, output) = self.spec(model)?;
        accept(&spec)?;
        let days = if window_days > 0.0 {
            window_days
        } else {
            self.config.quality_window_days
        };
        let now = chrono::Utc::now().timestamp_micros();
        let from = now - (days * 86_400e6) as i64;
        let rows = logged::read(&self.log, model, from, now, output.as_deref()).await?;
        let outcomes = self.outcomes.read(model).await?;
        Ok(Window {
            spec,
            rows,
            outcomes,
            now,
        })
    }

    /// The experiments of `model`'s runbook over the last `window_days` (0: the
    /// configured window), judged as its binary quality says; their uplift exported.
    pub async fn experiments(
        &self,
        model: &str,
        window_days: f64,
    ) -> Result<(Quality, Vec<experiments::Experiment>), ServeError> {
        let binary = |spec: &Quality| {
            if spec.kind == mercator_runtime::manifest::quality::QualityKind::Binary {
                return Ok(());
            }
            Err(ServeError::FailedPrecondition(format!(
                "model '{model}' is judged as {}: experiments need a binary outcome \
                 (quality kind \"binary\" with its window)",
                spec.kind.as_str()
            )))
        };
        let Window {
            spec,
            rows,
            outcomes,
            now,
        } = self.read_window(model, window_days, binary).await?;
        let window = spec.window_micros();
        let report =
            tokio::task::spawn_blocking(move || experiments::report(&rows, &outcomes, window, now))
                .await
                .map_err(|e| ServeError::Internal(e.to_string()))?;
        // Priced by the champion's runbook.
        let costs = self
            .models
            .snapshot()
            .models
            .get(model)
            .and_then(|e| {
                let v = e.aliases.get(mercator_registry::CHAMPION)?;
                let runbook = e.versions.get(v)?.sections.runbook.as_ref()?;
                Some(runbook.costs.clone())
            })
            .unwrap_or_default();
        let report: Vec<experiments::Experiment> = report
            .into_iter()
            .map(|e| {
                let cost = costs.get(&e.action).copied();
                e.priced(cost)
            })
            .collect();
        for e in &report {
            let labels = [model, e.rule.as_str(), e.action.as_str()];
            match e.difference {
                Some(d) => {
                    for (gauge, value) in self.uplift.iter().zip([d.difference, d.lower, d.upper]) {
                        gauge.with_label_values(&labels).set(value);
                    }
                }
                None => {
                    for gauge in &self.uplift {
                        let _ = gauge.remove_label_values(&labels);
                    }
                }
            }
        }
        Ok((spec, report))
    }

    /// Sets the gauges of `report`'s model, removing the series it no longer has.
    fn export(&self, report: &Report) {
        let mut now = BTreeSet::new();
        for g in &report.groups {
            let counts = [("judged", g.judged as f64), ("pending", g.pending as f64)];
            for (metric, value) in g
                .metrics
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .chain(counts)
            {
                self.gauge
                    .with_label_values(&[&report.model, &g.version, &g.route, metric])
                    .set(value);
                now.insert((g.version.clone(), g.route.clone(), metric.to_string()));
            }
        }
        let mut exported = self
            .exported
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = exported.insert(report.model.clone(), now.clone());
        for (version, route, metric) in before.unwrap_or_default().difference(&now) {
            let _ = self
                .gauge
                .remove_label_values(&[&report.model, version, route, metric]);
        }
    }

    /// Judges every served model that says how, every `quality_every_secs`, until the
    /// process ends.
    pub async fn run(self: Arc<Self>) {
        let every = self.config.quality_every_secs;
        if every <= 0.0 {
            return;
        }
        let mut tick = tokio::time::interval(std::time::Duration::from_secs_f64(every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let names: Vec<String> = self.models.snapshot().models.keys().cloned().collect();
            for name in names {
                match self.evaluate(&name, 0.0).await {
                    Ok(_) | Err(ServeError::FailedPrecondition(_)) => {}
                    Err(e) => {
                        tracing::warn!(model = %name, error = %e, "live quality not evaluated")
                    }
                }
            }
        }
    }
}
