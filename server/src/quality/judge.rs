//! The point-in-time join of predictions with outcomes, and the report it gives: per
//! version and route, the predictions judged, those not yet judgeable, the kind's
//! metrics, the calibration curve (binary) and the metrics per day of prediction.
//!
//! - binary: once `now` is past `t + window`, a prediction at `t` is 1 if an outcome ≥ 0.5
//!   of its entity falls in `(t, t + window]`, else 0; before that it is pending, even with
//!   an outcome already in: judging the early positives alone would bias every metric.
//! - forecast: the prediction for day `d` of `sku|location` is judged by the latest
//!   outcome of that entity dated `d` (UTC); pending until there is one.
//! - classification: by the outcome whose entity is the prediction's request id, else its
//!   entity (the latest label): right when the top intent is the confirmed label.

use std::collections::{BTreeMap, HashMap, HashSet};

use mercator_runtime::manifest::quality::{Quality, QualityKind};

use super::logged::Logged;
use super::outcomes::Outcome;
use super::stats::{self, Bin};

/// A version and route's quality.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// The version.
    pub version: String,
    /// The route.
    pub route: String,
    /// Predictions judged.
    pub judged: u64,
    /// Predictions not yet judgeable.
    pub pending: u64,
    /// The metrics, by name.
    pub metrics: BTreeMap<String, f64>,
    /// The calibration curve (binary).
    pub calibration: Vec<Bin>,
    /// Per day of prediction: the day, the judged count and the metrics.
    pub days: Vec<(String, u64, BTreeMap<String, f64>)>,
}

/// A judged prediction.
#[derive(Debug, Clone)]
struct Judged<'a> {
    row: &'a Logged,
    /// Binary: the outcome; forecast: the actual (as 0/1 or the value).
    truth: Truth<'a>,
}

#[derive(Debug, Clone)]
enum Truth<'a> {
    Binary(bool),
    Actual(f64),
    Label(&'a str),
}

/// Judges `rows` against `outcomes` at `now_micros`; one group per version and route,
/// in version then route order.
pub fn judge(spec: &Quality, rows: &[Logged], outcomes: &[Outcome], now_micros: i64) -> Vec<Group> {
    let mut by_entity: HashMap<&str, Vec<&Outcome>> = HashMap::new();
    for o in outcomes {
        by_entity.entry(o.entity.as_str()).or_default().push(o);
    }
    for list in by_entity.values_mut() {
        list.sort_by_key(|o| o.time_micros);
    }
    let window = spec.window_micros();
    let mut groups: BTreeMap<(String, String), (Vec<Judged<'_>>, u64)> = BTreeMap::new();
    for row in rows {
        let truth = match spec.kind {
            QualityKind::Binary => binary(row, &by_entity, window, now_micros),
            QualityKind::Forecast => actual(row, &by_entity),
            QualityKind::Classification => label(row, &by_entity),
        };
        let entry = groups
            .entry((row.version.clone(), row.route.clone()))
            .or_default();
        match truth {
            Some(truth) => entry.0.push(Judged { row, truth }),
            None => entry.1 += 1,
        }
    }
    // The keys every group judged: their metrics again, on those alone.
    let paired: Option<HashSet<String>> = (groups.len() > 1).then(|| {
        let mut sets = groups
            .values()
            .map(|(judged, _)| judged.iter().map(|j| pair_key(spec.kind, j.row)).collect());
        let first: HashSet<String> = sets.next().unwrap_or_default();
        sets.fold(first, |acc, s: HashSet<String>| {
            acc.intersection(&s).cloned().collect()
        })
    });
    groups
        .into_iter()
        .map(|((version, route), (judged, pending))| {
            let mut metrics = metrics_of(spec.kind, &judged);
            if let Some(keys) = &paired {
                let both: Vec<Judged<'_>> = judged
                    .iter()
                    .filter(|j| keys.contains(&pair_key(spec.kind, j.row)))
                    .cloned()
                    .collect();
                if !both.is_empty() {
                    for (name, value) in metrics_of(spec.kind, &both) {
                        metrics.insert(format!("paired_{name}"), value);
                    }
                }
            }
            let calibration = if spec.kind == QualityKind::Binary {
                let (p, y) = binary_columns(&judged);
                stats::calibration(&p, &y)
            } else {
                Vec::new()
            };
            let mut by_day: BTreeMap<String, Vec<Judged<'_>>> = BTreeMap::new();
            for j in &judged {
                let day = chrono::DateTime::from_timestamp_micros(j.row.time_micros)
                    .unwrap_or_default()
                    .format("%Y-%m-%d")
                    .to_string();
                by_day.entry(day).or_default().push(j.clone());
            }
            Group {
                version,
                route,
                judged: judged.len() as u64,
                pending,
                metrics,
                calibration,
                days: by_day
                    .into_iter()
                    .map(|(day, js)| (day, js.len() as u64, metrics_of(spec.kind, &js)))
                    .collect(),
            }
        })
        .collect()
}

fn pair_key(kind: QualityKind, row: &Logged) -> String {
    match kind {
        QualityKind::Binary => row.entity.clone(),
        QualityKind::Forecast => format!("{}@{}", row.entity, row.date.as_deref().unwrap_or("")),
        QualityKind::Classification => row.request_id.clone(),
    }
}

/// Whether `row`'s customer had the outcome within the window after it, once the window
/// has passed at `now` (`None` before: not yet judged).
pub(super) fn churned(
    row: &Logged,
    by_entity: &HashMap<&str, Vec<&Outcome>>,
    window: i64,
    now: i64,
) -> Option<bool> {
    match binary(row, by_entity, window, now)? {
        Truth::Binary(y) => Some(y),
        _ => None,
    }
}

fn binary<'a>(
    row: &Logged,
    by_entity: &HashMap<&str, Vec<&'a Outcome>>,
    window: i64,
    now: i64,
) -> Option<Truth<'a>> {
    row.probability?;
    let end = row.time_micros.saturating_add(window);
    if now <= end {
        return None;
    }
    let happened = by_entity.get(row.entity.as_str()).is_some_and(|list| {
        list.iter().any(|o| {
            o.time_micros > row.time_micros
                && o.time_micros <= end
                && o.value.is_some_and(|v| v >= 0.5)
        })
    });
    Some(Truth::Binary(happened))
}

fn actual<'a>(row: &Logged, by_entity: &HashMap<&str, Vec<&'a Outcome>>) -> Option<Truth<'a>> {
    let (date, _) = (row.date.as_deref()?, row.mean?);
    by_entity
        .get(row.entity.as_str())?
        .iter()
        .rev()
        .find(|o| {
            chrono::DateTime::from_timestamp_micros(o.time_micros)
                .is_some_and(|t| t.format("%Y-%m-%d").to_string() == date)
        })
        .and_then(|o| o.value)
        .map(Truth::Actual)
}

fn label<'a>(row: &Logged, by_entity: &HashMap<&str, Vec<&'a Outcome>>) -> Option<Truth<'a>> {
    row.intent.as_ref()?;
    let latest = |key: &str| {
        by_entity
            .get(key)
            .and_then(|list| list.iter().rev().find_map(|o| o.label.as_deref()))
    };
    latest(&row.request_id)
        .or_else(|| {
            (!row.entity.is_empty())
                .then(|| latest(&row.entity))
                .flatten()
        })
        .map(Truth::Label)
}

fn binary_columns(judged: &[Judged<'_>]) -> (Vec<f64>, Vec<bool>) {
    judged
        .iter()
        .filter_map(|j| match j.truth {
            Truth::Binary(y) => j.row.probability.map(|p| (p, y)),
            _ => None,
        })
        .unzip()
}

/// The kind's metrics over `judged`.
fn metrics_of(kind: QualityKind, judged: &[Judged<'_>]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    match kind {
        QualityKind::Binary => {
            let (p, y) = binary_columns(judged);
            if p.is_empty() {
                return m;
            }
            if let Some(auc) = stats::auc(&p, &y) {
                m.insert("auc".into(), auc);
            }
            m.insert("brier".into(), stats::brier(&p, &y));
            m.insert("log_loss".into(), stats::log_loss(&p, &y));
            m.insert(
                "positive_rate".into(),
                stats::mean(y.iter().map(|&y| f64::from(u8::from(y)))),
            );
            m.insert("mean_predicted".into(), stats::mean(p.iter().copied()));
        }
        QualityKind::Forecast => {
            let rows: Vec<(&Logged, f64)> = judged
                .iter()
                .filter_map(|j| match j.truth {
                    Truth::Actual(a) => Some((j.row, a)),
                    _ => None,
                })
                .collect();
            if rows.is_empty() {
                return m;
            }
            let actual: Vec<f64> = rows.iter().map(|(_, a)| *a).collect();
            let mean: Vec<f64> = rows
                .iter()
                .map(|(r, _)| r.mean.unwrap_or(f64::NAN))
                .collect();
            if let Some(w) = stats::wape(&actual, &mean) {
                m.insert("wape".into(), w);
            }
            m.insert("mae".into(), stats::mae(&actual, &mean));
            // Pinball per level and coverage, over the rows with the first row's levels.
            let levels = rows[0].0.levels.clone();
            let same: Vec<&(&Logged, f64)> = rows
                .iter()
                .filter(|(r, _)| r.levels == levels && r.quantiles.len() == levels.len())
                .collect();
            if !levels.is_empty() && !same.is_empty() {
                let actual: Vec<f64> = same.iter().map(|(_, a)| *a).collect();
                for (k, level) in levels.iter().enumerate() {
                    let q: Vec<f64> = same.iter().map(|(r, _)| r.quantiles[k]).collect();
                    m.insert(
                        format!("pinball_{level}"),
                        stats::pinball(&actual, &q, *level),
                    );
                }
                let (lo, hi) = (0, levels.len() - 1);
                m.insert(
                    "coverage".into(),
                    stats::mean(same.iter().map(|(r, a)| {
                        f64::from(u8::from(*a >= r.quantiles[lo] && *a <= r.quantiles[hi]))
                    })),
                );
            }
        }
        QualityKind::Classification => {
            let rows: Vec<(bool, bool)> = judged
                .iter()
                .filter_map(|j| match j.truth {
                    Truth::Label(l) => Some((
                        j.row.intent.as_deref() == Some(l),
                        j.row.handoff.unwrap_or(false),
                    )),
                    _ => None,
                })
                .collect();
            if rows.is_empty() {
                return m;
            }
            m.insert(
                "accuracy".into(),
                stats::mean(rows.iter().map(|(right, _)| f64::from(u8::from(*right)))),
            );
            // A hand-off is right when the model was wrong: precision over hand-offs,
            // recall over the model's mistakes.
            let handed: Vec<bool> = rows.iter().filter(|(_, h)| *h).map(|(r, _)| !r).collect();
            if !handed.is_empty() {
                m.insert(
                    "handoff_precision".into(),
                    stats::mean(handed.iter().map(|&w| f64::from(u8::from(w)))),
                );
            }
            let wrong: Vec<bool> = rows.iter().filter(|(r, _)| !r).map(|(_, h)| *h).collect();
            if !wrong.is_empty() {
                m.insert(
                    "handoff_recall".into(),
                    stats::mean(wrong.iter().map(|&h| f64::from(u8::from(h)))),
                );
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    fn scored(entity: &str, time: i64, p: f64, version: &str) -> Logged {
        Logged {
            entity: entity.into(),
            time_micros: time,
            probability: Some(p),
            version: version.into(),
            route: "champion".into(),
            ..Default::default()
        }
    }

    fn churned(entity: &str, time: i64) -> Outcome {
        Outcome {
            entity: entity.into(),
            time_micros: time,
            value: Some(1.0),
            label: None,
        }
    }

    #[test]
    fn binary_labels_respect_the_window_and_maturity() {
        let spec = Quality {
            kind: QualityKind::Binary,
            window: "10d".into(),
        };
        let rows = [
            scored("a", 0, 0.9, "1"),        // churned on day 5: 1
            scored("b", 0, 0.2, "1"),        // churned on day 11, past the window: 0
            scored("c", 0, 0.3, "1"),        // never: 0 (matured)
            scored("d", 15 * DAY, 0.5, "1"), // young: pending
            scored("e", 12 * DAY, 0.9, "1"), // young, though churned on day 13: pending
            scored("a", 6 * DAY, 0.9, "1"),  // churned before it: the window starts after: 0
        ];
        let outcomes = [
            churned("a", 5 * DAY),
            churned("b", 11 * DAY),
            churned("e", 13 * DAY),
        ];
        let groups = judge(&spec, &rows, &outcomes, 20 * DAY);
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!((g.judged, g.pending), (4, 2));
        // p = [0.9, 0.2, 0.3, 0.9], y = [1, 0, 0, 0]
        assert!((g.metrics["positive_rate"] - 0.25).abs() < 1e-12);
        assert!(
            (g.metrics["auc"] - 2.5 / 3.0).abs() < 1e-12,
            "{:?}",
            g.metrics
        );
    }

    #[test]
    fn forecasts_meet_the_actual_of_their_day_and_versions_pair_on_shared_days() {
        let spec = Quality {
            kind: QualityKind::Forecast,
            window: String::new(),
        };
        let day = |entity: &str, date: &str, mean: f64, version: &str| Logged {
            entity: entity.into(),
            date: Some(date.into()),
            mean: Some(mean),
            quantiles: vec![mean - 1.0, mean + 1.0],
            levels: vec![0.1, 0.9],
            version: version.into(),
            ..Default::default()
        };
        let rows = [
            day("s|l", "1970-01-01", 10.0, "1"),
            day("s|l", "1970-01-02", 10.0, "1"),
            day("s|l", "1970-01-01", 12.0, "2"),
        ];
        let actual = |time: i64, v: f64| Outcome {
            entity: "s|l".into(),
            time_micros: time,
            value: Some(v),
            label: None,
        };
        let groups = judge(&spec, &rows, &[actual(3_600_000_000, 11.0)], 0);
        let one = &groups[0];
        assert_eq!((one.judged, one.pending), (1, 1));
        assert!((one.metrics["wape"] - 1.0 / 11.0).abs() < 1e-12);
        assert!((one.metrics["coverage"] - 1.0).abs() < 1e-12);
        assert!((one.metrics["paired_mae"] - 1.0).abs() < 1e-12);
        assert!((one.metrics["pinball_0.9"] - 0.1 * 0.0).abs() < 1e-12);
    }
}
