//! A version's live drift window: a ring of a few numbers per row, written from the
//! request path under a `try_lock` (rows are skipped, never waited for, when another
//! request holds it) and read by the evaluator.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use mercator_runtime::drift::columns::{Source, finite_mean};
use mercator_runtime::drift::profile::{Distribution, Reference, Scores};
use mercator_runtime::drift::{Columns, Profile, Values};
use mercator_runtime::{Tensor, TensorData};

/// Stored for a prediction column whose output the request did not ask for: not a
/// value, and not a null either.
const NOT_OBSERVED: f64 = f64::NEG_INFINITY;

/// How drift windows are kept and judged (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct DriftSettings {
    /// Most rows a window holds (the oldest go first).
    pub window_samples: usize,
    /// Oldest row a window holds.
    pub window_age: Duration,
    /// Fewest values a column needs before its scores are exported.
    pub min_samples: usize,
    /// How often the windows are evaluated.
    pub interval: Duration,
}

/// One profiled column and how to read it from a request.
#[derive(Debug, Clone)]
struct Tracked {
    reference: Reference,
    source: Source,
    prediction: bool,
}

/// A version's drift monitor.
#[derive(Debug)]
pub struct Monitor {
    tracked: Vec<Tracked>,
    epsilon: f64,
    window: Mutex<Window>,
    started: Instant,
    skipped: prometheus::IntCounter,
}

#[derive(Debug)]
struct Window {
    /// `capacity` rows of one value per tracked column.
    values: Vec<f64>,
    /// When each row came, in ms since the monitor started.
    at: Vec<u64>,
    next: usize,
    len: usize,
}

/// A copy of a window's rows, newest age first, for evaluation.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub(super) columns: usize,
    pub(super) values: Vec<f64>,
}

impl Monitor {
    /// A monitor for a version with `profile`; only the profile's columns that the
    /// manifest also names are tracked.
    pub fn new(
        columns: &Columns,
        profile: &Profile,
        settings: &DriftSettings,
        skipped: prometheus::IntCounter,
    ) -> Monitor {
        let mut tracked = Vec::new();
        for (refs, cols, prediction) in [
            (&profile.features, &columns.features, false),
            (&profile.predictions, &columns.predictions, true),
        ] {
            for r in refs {
                if let Some(c) = cols.iter().find(|c| c.name == r.name) {
                    tracked.push(Tracked {
                        reference: r.clone(),
                        source: c.source.clone(),
                        prediction,
                    });
                }
            }
        }
        let capacity = settings.window_samples.max(1);
        Monitor {
            window: Mutex::new(Window {
                values: vec![0.0; capacity * tracked.len()],
                at: vec![0; capacity],
                next: 0,
                len: 0,
            }),
            tracked,
            epsilon: profile.epsilon,
            started: Instant::now(),
            skipped,
        }
    }

    /// Adds the rows of one inference: `inputs` as the model got them, and `outputs`,
    /// which are the model's outputs numbered `wanted`.
    pub fn observe(&self, inputs: &[Tensor], wanted: &[usize], outputs: &[Tensor], rows: usize) {
        let output = |o: usize| wanted.iter().position(|&k| k == o).map(|k| &outputs[k]);
        self.push(rows, |r, t| match &t.source {
            Source::Input {
                input,
                column,
                width,
            } => inputs.get(*input).map_or(NOT_OBSERVED, |x| {
                value(&t.reference, &x.data, r * width + column)
            }),
            Source::Output {
                output: o,
                column,
                width,
            } => output(*o).map_or(NOT_OBSERVED, |x| {
                value(&t.reference, &x.data, r * width + column)
            }),
            Source::TopLabel { output: o, labels } => output(*o).map_or(NOT_OBSERVED, |x| {
                top_category(&t.reference, &x.data, r, labels)
            }),
            Source::InputTailMean { input, days } => inputs
                .get(*input)
                .map_or(NOT_OBSERVED, |x| row_mean(x, r, *days, true)),
            Source::OutputHeadMean { output: o, days } => {
                output(*o).map_or(NOT_OBSERVED, |x| row_mean(x, r, *days, false))
            }
        });
    }

    /// Adds forecasts of the `Forecasting` service, one row each: a series' history and
    /// its mean forecast, summarized as the profile summarized them.
    pub fn observe_forecasts(&self, forecasts: &[(&[f64], &[f64])]) {
        self.push(forecasts.len(), |r, t| {
            let (history, mean) = forecasts[r];
            match &t.source {
                Source::InputTailMean { days, .. } => finite_mean(
                    history[history.len().saturating_sub(*days)..]
                        .iter()
                        .copied(),
                ),
                Source::OutputHeadMean { days, .. } => {
                    finite_mean(mean.iter().take(*days).copied())
                }
                _ => NOT_OBSERVED,
            }
        });
    }

    /// Writes `rows` rows into the ring, `value(row, column)` each, unless another request
    /// holds it (then they are counted as skipped).
    fn push(&self, rows: usize, value: impl Fn(usize, &Tracked) -> f64) {
        let Ok(mut w) = self.window.try_lock() else {
            self.skipped.inc_by(rows as u64);
            return;
        };
        let now = self.started.elapsed().as_millis() as u64;
        let columns = self.tracked.len();
        let capacity = w.at.len();
        for r in 0..rows {
            let slot = w.next;
            for (c, t) in self.tracked.iter().enumerate() {
                w.values[slot * columns + c] = value(r, t);
            }
            w.at[slot] = now;
            w.next = (slot + 1) % capacity;
            w.len = (w.len + 1).min(capacity);
        }
    }

    /// The rows of the window younger than `age`.
    pub fn snapshot(&self, age: Duration) -> Snapshot {
        let columns = self.tracked.len();
        let now = self.started.elapsed().as_millis() as u64;
        let oldest = now.saturating_sub(age.as_millis() as u64);
        let Ok(w) = self.window.lock() else {
            return Snapshot::default();
        };
        let capacity = w.at.len();
        let mut values = Vec::with_capacity(w.len * columns);
        for k in 0..w.len {
            let slot = (w.next + capacity - 1 - k) % capacity;
            if w.at[slot] < oldest {
                break;
            }
            values.extend_from_slice(&w.values[slot * columns..(slot + 1) * columns]);
        }
        Snapshot { columns, values }
    }

    /// Scores every tracked column on `snapshot`: (name, is a prediction, scores).
    pub fn evaluate(&self, snapshot: &Snapshot) -> Vec<(&str, bool, Scores)> {
        self.tracked
            .iter()
            .enumerate()
            .map(|(c, t)| {
                let column = snapshot
                    .values
                    .chunks_exact(snapshot.columns.max(1))
                    .map(|row| row[c])
                    .filter(|v| *v != NOT_OBSERVED);
                let values = match &t.reference.distribution {
                    Distribution::Numeric { .. } => Values::Numeric(column.collect()),
                    Distribution::Categorical { categories, .. } => Values::Categorical(
                        column
                            .map(|v| {
                                // NaN is null; an index past the categories is "other".
                                (!v.is_nan()).then(|| {
                                    categories
                                        .get(v as usize)
                                        .cloned()
                                        .unwrap_or_else(|| OTHER.to_string())
                                })
                            })
                            .collect(),
                    ),
                };
                (
                    t.reference.name.as_str(),
                    t.prediction,
                    t.reference.compare(&values, self.epsilon),
                )
            })
            .collect()
    }
}

/// A name no reference category can have (categories come from data, never control
/// characters at both ends): what an unknown category is stored as.
const OTHER: &str = "\u{0}other\u{0}";

/// Element `i` of `data` for `reference`: a number, or a category's index (the number
/// of categories for an unknown one), NaN for a null.
fn value(reference: &Reference, data: &TensorData, i: usize) -> f64 {
    match (&reference.distribution, data) {
        (Distribution::Categorical { categories, .. }, TensorData::Bytes(b)) => match b.get(i) {
            None => f64::NAN,
            Some(e) if e.is_empty() => f64::NAN,
            Some(e) => categories
                .iter()
                .position(|c| c.as_bytes() == e.as_slice())
                .unwrap_or(categories.len()) as f64,
        },
        _ => data.get_f64(i).unwrap_or(f64::NAN),
    }
}

/// The mean of the last (`tail`) or first `days` values of row `r` of a 2-D tensor.
fn row_mean(x: &Tensor, r: usize, days: usize, tail: bool) -> f64 {
    let width = x.shape.get(1).copied().unwrap_or(1);
    let take = days.min(width);
    let from = if tail { width - take } else { 0 };
    finite_mean((from..from + take).filter_map(|j| x.data.get_f64(r * width + j)))
}

/// The category index of row `r`'s largest value.
fn top_category(reference: &Reference, data: &TensorData, r: usize, labels: &[String]) -> f64 {
    let Distribution::Categorical { categories, .. } = &reference.distribution else {
        return f64::NAN;
    };
    let w = labels.len().max(1);
    let mut best: Option<(usize, f64)> = None;
    for j in 0..w {
        if let Some(v) = data.get_f64(r * w + j)
            && best.is_none_or(|(_, b)| v > b)
        {
            best = Some((j, v));
        }
    }
    match best.and_then(|(j, _)| labels.get(j)) {
        Some(label) => categories
            .iter()
            .position(|c| c == label)
            .unwrap_or(categories.len()) as f64,
        None => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forecaster_window_summarizes_v2_tensors_and_forecasts_alike() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demand/ets");
        let read = |f: &str| std::fs::read(dir.join(f)).expect("example file");
        let manifest = mercator_runtime::Manifest::parse(&read("mercator.json")).expect("manifest");
        let columns = Columns::of(&manifest);
        let profile = Profile::parse(&read("profile.json"), &columns).expect("profile");
        let settings = DriftSettings {
            window_samples: 10,
            window_age: Duration::from_secs(3600),
            min_samples: 1,
            interval: Duration::from_secs(1),
        };
        let skipped = prometheus::IntCounter::new("skipped", "skipped").expect("counter");
        let monitor = Monitor::new(&columns, &profile, &settings, skipped);
        // The last week of 1..=10 averages 7; the first week of the forecast 103.
        let history: Vec<f64> = (1..=10).map(f64::from).collect();
        let mean: Vec<f64> = (0..28).map(|d| 100.0 + f64::from(d)).collect();
        monitor.observe_forecasts(&[(&history, &mean)]);
        // The same series twice through V2: sku, location, history, last date in; mean out.
        let ids =
            |v: &str| Tensor::new(vec![2], TensorData::Bytes(vec![v.into(); 2])).expect("tensor");
        let inputs = [
            ids("SKU000"),
            ids("berlin"),
            Tensor::new(vec![2, 10], TensorData::F64(history.repeat(2))).expect("tensor"),
            ids("2026-10-31"),
        ];
        let outputs = [Tensor::new(vec![2, 28], TensorData::F64(mean.repeat(2))).expect("tensor")];
        monitor.observe(&inputs, &[0], &outputs, 2);
        let snapshot = monitor.snapshot(Duration::from_secs(3600));
        assert_eq!(snapshot.values, [7.0, 103.0].repeat(3));
        // A request that did not ask for the mean output observes the history only.
        monitor.observe(&inputs, &[1], &[], 2);
        let snapshot = monitor.snapshot(Duration::from_secs(3600));
        assert_eq!(&snapshot.values[..2], [7.0, NOT_OBSERVED]);
    }
}
