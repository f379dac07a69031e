//! The training profile (`profile.json` in a version's files): the reference
//! distribution of each profiled input column and prediction, which live traffic is
//! compared with. Built by `mercator profile build` from the training data and the model's
//! own predictions on it; the numbers follow [`super::stats`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::columns::{Columns, Kind};
use super::stats;

/// The file a version's profile is registered as.
pub const PROFILE_FILE: &str = "profile.json";

/// The format this code writes and reads.
pub const FORMAT: u32 = 1;

/// Bins of a numeric column by default: deciles.
pub const DEFAULT_BINS: usize = 10;

/// Floor of a bin's share in PSI, so an empty bin does not make it infinite.
pub const DEFAULT_EPSILON: f64 = 1e-4;

/// Largest reference sample kept per numeric column, for the KS statistic.
pub const SAMPLE_SIZE: usize = 1000;

/// Most categories kept per categorical column; the rest share the `other` bucket.
pub const MAX_CATEGORIES: usize = 20;

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{PROFILE_FILE}: {0}")]
pub struct ProfileError(pub String);

/// A model version's training profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// [`FORMAT`].
    pub format: u32,
    /// Rows it was built from.
    pub rows: u64,
    /// Floor of a share in PSI.
    pub epsilon: f64,
    /// The input columns.
    pub features: Vec<Reference>,
    /// The prediction columns.
    pub predictions: Vec<Reference>,
}

/// The reference distribution of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// The column's name (see [`super::columns`]).
    pub name: String,
    /// Share of rows without a value.
    pub null_rate: f64,
    /// Its distribution over the rows with a value.
    #[serde(flatten)]
    pub distribution: Distribution,
}

/// A column's distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Distribution {
    /// Quantile bins.
    Numeric {
        /// Strictly increasing bin edges (bins are right-closed, see [`super::stats`]).
        edges: Vec<f64>,
        /// Share of rows in each of the `edges.len() + 1` bins.
        shares: Vec<f64>,
        /// Sorted reference values for KS: every value, or [`SAMPLE_SIZE`] order
        /// statistics evenly spread over the ranks.
        sample: Vec<f64>,
    },
    /// Category shares.
    Categorical {
        /// The most frequent categories (at most [`MAX_CATEGORIES`]).
        categories: Vec<String>,
        /// Share of each category, then of all the others together.
        shares: Vec<f64>,
    },
}

/// One column's values over some rows: NaN (numeric) or `None` (categorical) is null.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Numbers.
    Numeric(Vec<f64>),
    /// Categories.
    Categorical(Vec<Option<String>>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Numeric(v) => v.len(),
            Values::Categorical(v) => v.len(),
        }
    }
}

/// How one column of a window compares with its reference. `None` for a statistic that
/// does not apply (KS to categories, JS to numbers) or has no values to compare.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    /// Rows in the window.
    pub samples: u64,
    /// Population stability index over the reference's bins or categories.
    pub psi: Option<f64>,
    /// Live null rate minus the reference's.
    pub null_rate_shift: f64,
    /// Kolmogorov–Smirnov statistic (numeric columns).
    pub ks: Option<f64>,
    /// Jensen–Shannon distance (categorical columns).
    pub js: Option<f64>,
}

impl Reference {
    /// Builds a column's reference from its training values.
    pub fn build(name: &str, values: &Values, bins: usize) -> Reference {
        let rows = values.len().max(1) as f64;
        match values {
            Values::Numeric(v) => {
                let mut present: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
                present.sort_by(f64::total_cmp);
                let (edges, shares, sample) = if present.is_empty() {
                    (Vec::new(), vec![0.0], Vec::new())
                } else {
                    let edges = stats::edges(&present, bins);
                    let mut counts = vec![0u64; edges.len() + 1];
                    for &x in &present {
                        counts[stats::bin_of(&edges, x)] += 1;
                    }
                    (edges, stats::shares(&counts), sample_of(&present))
                };
                Reference {
                    name: name.to_string(),
                    null_rate: (v.len() - present.len()) as f64 / rows,
                    distribution: Distribution::Numeric {
                        edges,
                        shares,
                        sample,
                    },
                }
            }
            Values::Categorical(v) => {
                let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
                for c in v.iter().flatten() {
                    *counts.entry(c.as_str()).or_default() += 1;
                }
                // Most frequent first; equal counts by name, so the choice is stable.
                let mut ranked: Vec<(&str, u64)> = counts.into_iter().collect();
                ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                let kept = ranked.len().min(MAX_CATEGORIES);
                let other: u64 = ranked[kept..].iter().map(|(_, n)| n).sum();
                let mut bucket_counts: Vec<u64> = ranked[..kept].iter().map(|(_, n)| *n).collect();
                bucket_counts.push(other);
                let present: u64 = bucket_counts.iter().sum();
                Reference {
                    name: name.to_string(),
                    null_rate: (v.len() as u64 - present) as f64 / rows,
                    distribution: Distribution::Categorical {
                        categories: ranked[..kept].iter().map(|(c, _)| c.to_string()).collect(),
                        shares: stats::shares(&bucket_counts),
                    },
                }
            }
        }
    }

    /// Compares a window of live values with this reference.
    pub fn compare(&self, live: &Values, epsilon: f64) -> Scores {
        let samples = live.len() as u64;
        let rows = live.len().max(1) as f64;
        match (&self.distribution, live) {
            (
                Distribution::Numeric {
                    edges,
                    shares,
                    sample,
                },
                Values::Numeric(v),
            ) => {
                let mut present: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
                present.sort_by(f64::total_cmp);
                let mut counts = vec![0u64; edges.len() + 1];
                for &x in &present {
                    counts[stats::bin_of(edges, x)] += 1;
                }
                let some = !present.is_empty();
                Scores {
                    samples,
                    psi: some.then(|| stats::psi(shares, &stats::shares(&counts), epsilon)),
                    null_rate_shift: (v.len() - present.len()) as f64 / rows - self.null_rate,
                    ks: (some && !sample.is_empty()).then(|| stats::ks(&present, sample)),
                    js: None,
                }
            }
            (Distribution::Categorical { categories, shares }, Values::Categorical(v)) => {
                let mut counts = vec![0u64; categories.len() + 1];
                let mut present = 0usize;
                for c in v.iter().flatten() {
                    present += 1;
                    let i = categories
                        .iter()
                        .position(|k| k == c)
                        .unwrap_or(categories.len());
                    counts[i] += 1;
                }
                let live_shares = stats::shares(&counts);
                let some = present > 0;
                Scores {
                    samples,
                    psi: some.then(|| stats::psi(shares, &live_shares, epsilon)),
                    null_rate_shift: (v.len() - present) as f64 / rows - self.null_rate,
                    ks: None,
                    js: some.then(|| stats::js_distance(shares, &live_shares)),
                }
            }
            // A window of the other kind (the profile and the manifest disagree, which
            // registration refuses): nothing to compare.
            _ => Scores {
                samples,
                psi: None,
                null_rate_shift: 0.0,
                ks: None,
                js: None,
            },
        }
    }

    fn kind(&self) -> Kind {
        match self.distribution {
            Distribution::Numeric { .. } => Kind::Numeric,
            Distribution::Categorical { .. } => Kind::Categorical,
        }
    }

    fn check(&self, field: &str) -> Result<(), ProfileError> {
        let bad = |why: String| Err(ProfileError(format!("{field} ('{}'): {why}", self.name)));
        if !(0.0..=1.0).contains(&self.null_rate) {
            return bad(format!("null_rate {} is not within [0, 1]", self.null_rate));
        }
        let shares = match &self.distribution {
            Distribution::Numeric {
                edges,
                shares,
                sample,
            } => {
                if edges.iter().any(|e| !e.is_finite()) || edges.windows(2).any(|w| w[0] >= w[1]) {
                    return bad("edges must be finite and strictly increasing".into());
                }
                if shares.len() != edges.len() + 1 {
                    return bad(format!(
                        "{} edges need {} shares, not {}",
                        edges.len(),
                        edges.len() + 1,
                        shares.len()
                    ));
                }
                if sample.iter().any(|x| !x.is_finite()) || sample.windows(2).any(|w| w[0] > w[1]) {
                    return bad("sample must be finite and sorted".into());
                }
                shares
            }
            Distribution::Categorical { categories, shares } => {
                if shares.len() != categories.len() + 1 {
                    return bad(format!(
                        "{} categories need {} shares (the last for all others), not {}",
                        categories.len(),
                        categories.len() + 1,
                        shares.len()
                    ));
                }
                shares
            }
        };
        if shares.iter().any(|s| !(0.0..=1.0).contains(s)) {
            return bad("shares must be within [0, 1]".into());
        }
        let total: f64 = shares.iter().sum();
        if total != 0.0 && (total - 1.0).abs() > 1e-6 {
            return bad(format!("shares add up to {total}, not 1"));
        }
        Ok(())
    }
}

/// Every value when there are at most [`SAMPLE_SIZE`], else that many order statistics at
/// ranks ⌊i (n − 1) / (SAMPLE_SIZE − 1)⌋.
fn sample_of(sorted: &[f64]) -> Vec<f64> {
    let n = sorted.len();
    if n <= SAMPLE_SIZE {
        return sorted.to_vec();
    }
    (0..SAMPLE_SIZE)
        .map(|i| sorted[i * (n - 1) / (SAMPLE_SIZE - 1)])
        .collect()
}

impl Profile {
    /// Builds a profile from the training rows: `features` and `predictions` hold each
    /// of `columns`' values, in order.
    pub fn build(
        columns: &Columns,
        features: &[Values],
        predictions: &[Values],
        bins: usize,
    ) -> Profile {
        let refs = |cols: &[super::columns::Column], values: &[Values]| {
            cols.iter()
                .zip(values)
                .map(|(c, v)| Reference::build(&c.name, v, bins))
                .collect()
        };
        Profile {
            format: FORMAT,
            rows: features
                .first()
                .or(predictions.first())
                .map_or(0, |v| v.len() as u64),
            epsilon: DEFAULT_EPSILON,
            features: refs(&columns.features, features),
            predictions: refs(&columns.predictions, predictions),
        }
    }

    /// Parses and checks a profile, and that it describes `columns` (each of its columns
    /// is one of the model's, of the same kind; the model may have more).
    pub fn parse(bytes: &[u8], columns: &Columns) -> Result<Profile, ProfileError> {
        let profile: Profile =
            serde_json::from_slice(bytes).map_err(|e| ProfileError(e.to_string()))?;
        if profile.format != FORMAT {
            return Err(ProfileError(format!(
                "format {} is not the supported {FORMAT}",
                profile.format
            )));
        }
        if !(profile.epsilon > 0.0 && profile.epsilon < 0.1) {
            return Err(ProfileError(format!(
                "epsilon {} is not within (0, 0.1)",
                profile.epsilon
            )));
        }
        for (field, refs, cols) in [
            ("features", &profile.features, &columns.features),
            ("predictions", &profile.predictions, &columns.predictions),
        ] {
            for (i, r) in refs.iter().enumerate() {
                let field = format!("{field}[{i}]");
                r.check(&field)?;
                match cols.iter().find(|c| c.name == r.name) {
                    Some(c) if c.kind == r.kind() => {}
                    Some(_) => {
                        return Err(ProfileError(format!(
                            "{field}: '{}' has the wrong type for the model's column",
                            r.name
                        )));
                    }
                    None => {
                        return Err(ProfileError(format!(
                            "{field}: the model has no column '{}' (it has {:?})",
                            r.name,
                            cols.iter().map(|c| c.name.as_str()).collect::<Vec<_>>()
                        )));
                    }
                }
            }
        }
        Ok(profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numeric_reference_has_deciles_shares_and_its_null_rate() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        v.extend([f64::NAN; 25]);
        let r = Reference::build("x", &Values::Numeric(v.clone()), 10);
        assert_eq!(r.null_rate, 0.2);
        let Distribution::Numeric {
            edges,
            shares,
            sample,
        } = &r.distribution
        else {
            panic!("numeric")
        };
        assert_eq!(edges.len(), 9);
        assert!((edges[0] - 10.9).abs() < 1e-12, "{edges:?}");
        assert!(shares.iter().all(|s| (s - 0.1).abs() < 1e-12), "{shares:?}");
        assert_eq!(sample.len(), 100);
        // The training data against itself: no drift.
        let s = r.compare(&Values::Numeric(v), DEFAULT_EPSILON);
        assert_eq!(
            (s.psi, s.ks, s.null_rate_shift, s.samples),
            (Some(0.0), Some(0.0), 0.0, 125)
        );
    }

    #[test]
    fn categories_keep_the_most_frequent_and_pool_the_rest() {
        let mut v: Vec<Option<String>> = Vec::new();
        for i in 0..30 {
            for _ in 0..(30 - i) {
                v.push(Some(format!("c{i:02}")));
            }
        }
        v.push(None);
        let r = Reference::build("segment", &Values::Categorical(v.clone()), 10);
        let Distribution::Categorical { categories, shares } = &r.distribution else {
            panic!("categorical")
        };
        assert_eq!(categories.len(), MAX_CATEGORIES);
        assert_eq!(categories[0], "c00");
        // c20..c29 have 10 + 9 + … + 1 = 55 of the 465 present rows.
        assert!((shares[MAX_CATEGORIES] - 55.0 / 465.0).abs() < 1e-12);
        let s = r.compare(&Values::Categorical(v), DEFAULT_EPSILON);
        assert_eq!((s.psi, s.js), (Some(0.0), Some(0.0)));
        let unseen = Values::Categorical(vec![Some("new".into()); 10]);
        let s = r.compare(&unseen, DEFAULT_EPSILON);
        assert!(s.js.is_some_and(|j| j > 0.5), "{s:?}");
    }

    #[test]
    fn bad_profiles_are_refused_by_field() {
        let columns = Columns::of(
            &crate::Manifest::parse(
                &std::fs::read(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../examples/churn/mercator.json"),
                )
                .expect("manifest"),
            )
            .expect("parse"),
        );
        let good = Profile::build(&columns, &[Values::Numeric(vec![1.0, 2.0, 3.0])], &[], 10);
        let text = serde_json::to_string(&good).expect("json");
        assert!(Profile::parse(text.as_bytes(), &columns).is_ok());
        for (edit, named) in [
            (text.replace("\"format\":1", "\"format\":7"), "format 7"),
            (
                text.replace("days_since_last_order", "nope"),
                "no column 'nope'",
            ),
            (
                text.replace("\"null_rate\":0.0", "\"null_rate\":2.0"),
                "features[0]",
            ),
            (
                text.replace("\"type\":\"numeric\"", "\"type\":\"categorical\""),
                "missing field `categories`",
            ),
            ("{".to_string(), "profile.json"),
        ] {
            let err = Profile::parse(edit.as_bytes(), &columns).expect_err(named);
            assert!(err.to_string().contains(named), "{named}: {err}");
        }
    }
}
