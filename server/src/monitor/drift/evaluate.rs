//! The evaluator: off the request path, every interval, each watched version's window is
//! compared with its profile and the scores exported; the latest evaluations are kept for
//! `Monitoring/GetDrift` and `mercator drift`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use mercator_runtime::drift::profile::Scores;
use serde::Serialize;

use super::{DriftMetrics, DriftSettings, Monitor};

/// One version's evaluation: its window size and each column's scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Model name.
    pub model: String,
    /// Version number.
    pub version: u64,
    /// Rows in the window.
    pub samples: u64,
    /// When, in seconds since the epoch.
    pub at: f64,
    /// Per column, ranked by PSI (highest first); only columns with enough values.
    pub columns: Vec<ColumnDrift>,
}

/// One column's scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnDrift {
    /// Feature or prediction name.
    pub name: String,
    /// Whether it is a prediction.
    pub prediction: bool,
    /// Its scores.
    pub scores: Scores,
}

/// A served version that keeps a drift window, as the evaluator sees it (the model
/// table lists them: see `ModelTable::watched`).
#[derive(Debug, Clone)]
pub struct Watched {
    /// Model name.
    pub model: String,
    /// Version number.
    pub version: u64,
    /// `version` as a label.
    pub version_label: String,
    /// Its window.
    pub monitor: Arc<Monitor>,
}

/// Evaluates every watched version and exports the gauges; `exported` holds the label
/// sets exported last time, so the series of versions no longer served are removed.
pub fn evaluate_all(
    watched: &[Watched],
    metrics: &DriftMetrics,
    settings: &DriftSettings,
    exported: &mut BTreeSet<[String; 4]>,
) -> Vec<Evaluation> {
    let mut now_exported = BTreeSet::new();
    let mut out = Vec::new();
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    for w in watched {
        let monitor = &w.monitor;
        let snapshot = monitor.snapshot(settings.window_age);
        let rows = snapshot.values.len() / snapshot.columns.max(1);
        let (model, version) = (w.model.as_str(), w.version_label.as_str());
        let mut columns = Vec::new();
        for (name, prediction, scores) in monitor.evaluate(&snapshot) {
            let role = if prediction { "prediction" } else { "input" };
            let labels = [model, version, role, name];
            let enough = scores.samples as usize >= settings.min_samples;
            for (gauge, value) in [
                (&metrics.psi, scores.psi),
                (&metrics.ks, scores.ks),
                (&metrics.js, scores.js),
                (&metrics.null_shift, Some(scores.null_rate_shift)),
            ] {
                match value.filter(|_| enough) {
                    Some(v) => gauge.with_label_values(&labels).set(v),
                    None => {
                        let _ = gauge.remove_label_values(&labels);
                    }
                }
            }
            now_exported.insert(labels.map(str::to_string));
            if enough {
                columns.push(ColumnDrift {
                    name: name.to_string(),
                    prediction,
                    scores,
                });
            }
        }
        // The window's size and time go last: a scrape that sees this window's size sees
        // its scores too (a scraper, or a test, waits on the size).
        metrics
            .samples
            .with_label_values(&[model, version])
            .set(rows as i64);
        metrics
            .evaluated
            .with_label_values(&[model, version])
            .set(at);
        columns.sort_by(|a, b| {
            b.scores
                .psi
                .unwrap_or(0.0)
                .total_cmp(&a.scores.psi.unwrap_or(0.0))
        });
        out.push(Evaluation {
            model: model.to_string(),
            version: w.version,
            samples: rows as u64,
            at,
            columns,
        });
    }
    for labels in exported.difference(&now_exported) {
        let [model, version, role, feature] = labels;
        for gauge in [&metrics.psi, &metrics.ks, &metrics.js, &metrics.null_shift] {
            let _ = gauge.remove_label_values(&[model, version, role, feature]);
        }
        let _ = metrics.samples.remove_label_values(&[model, version]);
        let _ = metrics.evaluated.remove_label_values(&[model, version]);
    }
    *exported = now_exported;
    out
}

/// The latest evaluations, shared with the gRPC service and the CLI.
#[derive(Debug, Default)]
pub struct Latest(Mutex<Vec<Evaluation>>);

impl Latest {
    /// The latest evaluation of each version.
    pub fn get(&self) -> Vec<Evaluation> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// Evaluates the windows every `settings.interval` until `shutdown` resolves, on the
/// blocking pool (an evaluation sorts the windows).
pub async fn run(
    watched: impl Fn() -> Vec<Watched> + Send + Sync + 'static,
    metrics: DriftMetrics,
    settings: DriftSettings,
    latest: Arc<Latest>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let exported = Arc::new(Mutex::new(BTreeSet::new()));
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(settings.interval) => {}
        }
        let (watched, metrics, exported, latest) = (
            watched(),
            metrics.clone(),
            Arc::clone(&exported),
            Arc::clone(&latest),
        );
        let _ = tokio::task::spawn_blocking(move || {
            let Ok(mut exported) = exported.lock() else {
                return;
            };
            let evaluations = evaluate_all(&watched, &metrics, &settings, &mut exported);
            if let Ok(mut l) = latest.0.lock() {
                *l = evaluations;
            }
        })
        .await;
    }
}

/// One loaded version and its latest evaluation (`None`: no profile, or not evaluated
/// yet).
#[derive(Debug, Clone)]
pub struct VersionReport {
    /// Version number.
    pub version: u64,
    /// Whether it has a training profile.
    pub profiled: bool,
    /// Its latest evaluation.
    pub evaluation: Option<Evaluation>,
}

/// The drift of the versions `chosen` as (version, whether it has a profile), as last
/// evaluated; the caller picks them (all of a model's loaded versions, or one).
pub fn report(
    latest: &Latest,
    model: &str,
    chosen: impl IntoIterator<Item = (u64, bool)>,
) -> Vec<VersionReport> {
    let evaluations = latest.get();
    chosen
        .into_iter()
        .map(|(version, profiled)| VersionReport {
            version,
            profiled,
            evaluation: evaluations
                .iter()
                .find(|e| e.model == model && e.version == version)
                .cloned(),
        })
        .collect()
}
