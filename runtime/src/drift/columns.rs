//! Which columns of a model's inputs and outputs are profiled for drift, and under which
//! names: read from the manifest alone, so the profile builder and the live monitor
//! always agree, and so metric labels come from the manifest, never from requests.
//!
//! - A numeric input of fixed width (`[-1]` or `[-1, k]`) gives one numeric column per
//!   feature, named by its `feature_names`, else by its bound fields, else `input[j]`.
//!   Inputs of variable width (a forecaster's history) are summarized, see below.
//! - A BYTES input of one value per row is a categorical column, except free text (the
//!   input of a `text` model) and a forecaster's series keys and dates, which are ids.
//! - A numeric output `[-1]` is one numeric prediction column; `[-1, k]` gives one per
//!   position, named by the manifest's `labels` when it has k of them (each class's
//!   probability), plus a categorical `output:top` (the predicted class) when labelled.
//!   A BYTES output `[-1]` is categorical. Outputs of three dimensions are not profiled.
//! - A forecaster (a model with a numeric history input of variable width) is profiled
//!   on two summaries instead, the same whatever horizon a request asks for:
//!   [`HISTORY_COLUMN`], the mean of the last [`SUMMARY_DAYS`] days of each history, and
//!   [`FORECAST_COLUMN`], the mean of the first [`SUMMARY_DAYS`] days of its mean forecast.

use crate::{DType, Manifest};

/// Days a forecaster's history and forecast are summarized over: one week, so weekly
/// seasonality averages out.
pub const SUMMARY_DAYS: usize = 7;
/// A forecaster's input column: the mean of the last week of its history.
pub const HISTORY_COLUMN: &str = "history_last_7d_mean";
/// A forecaster's prediction column: the mean of the first week of its mean forecast.
pub const FORECAST_COLUMN: &str = "forecast_next_7d_mean";

/// Numeric or categorical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Binned on quantile edges; PSI, KS and the null rate.
    Numeric,
    /// Category shares; PSI, Jensen–Shannon distance and the null rate.
    Categorical,
}

/// Where a column's values come from in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Position `column` of input number `input`, whose rows are `width` wide.
    Input {
        /// Index into the manifest's inputs.
        input: usize,
        /// Position within a row.
        column: usize,
        /// Row width.
        width: usize,
    },
    /// Position `column` of output number `output`, rows `width` wide.
    Output {
        /// Index into the manifest's outputs.
        output: usize,
        /// Position within a row.
        column: usize,
        /// Row width.
        width: usize,
    },
    /// The mean of the last `days` finite values of each row of input number `input`
    /// (rows as wide as the request's tensor).
    InputTailMean {
        /// Index into the manifest's inputs.
        input: usize,
        /// Values averaged.
        days: usize,
    },
    /// The mean of the first `days` finite values of each row of output number `output`.
    OutputHeadMean {
        /// Index into the manifest's outputs.
        output: usize,
        /// Values averaged.
        days: usize,
    },
    /// The label of the largest value of each row of output number `output`.
    TopLabel {
        /// Index into the manifest's outputs.
        output: usize,
        /// The labels, by position.
        labels: Vec<String>,
    },
}

/// One profiled column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name in the profile and in metric labels.
    pub name: String,
    /// Numeric or categorical.
    pub kind: Kind,
    /// Where it comes from.
    pub source: Source,
}

/// The profiled input columns and prediction columns of a model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    /// From the inputs (after the feature store filled them in).
    pub features: Vec<Column>,
    /// From the outputs.
    pub predictions: Vec<Column>,
}

/// The fixed row width of a `[-1]` or `[-1, k]` shape.
fn width(shape: &[i64]) -> Option<usize> {
    match shape {
        [-1] => Some(1),
        [-1, k] if *k > 0 => usize::try_from(*k).ok(),
        _ => None,
    }
}

/// The mean of the finite values of `values` (NaN when there are none): a history or
/// forecast summary, computed alike by the profile builder and the live windows.
pub fn finite_mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

impl Columns {
    /// The columns of a model, from its manifest.
    pub fn of(manifest: &Manifest) -> Columns {
        if let Some(columns) = Columns::of_forecaster(manifest) {
            return columns;
        }
        let ids_only = manifest.kind == "text"
            || manifest.kind == "ets"
            || manifest.extra.contains_key("forecaster")
            || manifest.extra.contains_key("history");
        let mut features = Vec::new();
        for (i, input) in manifest.inputs.iter().enumerate() {
            let Some(w) = width(&input.shape) else {
                continue;
            };
            if input.datatype == DType::Bytes {
                if w == 1 && !ids_only {
                    features.push(Column {
                        name: input.name.clone(),
                        kind: Kind::Categorical,
                        source: Source::Input {
                            input: i,
                            column: 0,
                            width: 1,
                        },
                    });
                }
                continue;
            }
            for j in 0..w {
                let name = if input.feature_names.len() == w {
                    input.feature_names[j].clone()
                } else if input.features.len() == w {
                    input.features[j].view_field().1.to_string()
                } else if w == 1 {
                    input.name.clone()
                } else {
                    format!("{}[{j}]", input.name)
                };
                features.push(Column {
                    name,
                    kind: Kind::Numeric,
                    source: Source::Input {
                        input: i,
                        column: j,
                        width: w,
                    },
                });
            }
        }
        let labels: Vec<String> = manifest
            .extra
            .get("labels")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default();
        let mut predictions = Vec::new();
        for (o, output) in manifest.outputs.iter().enumerate() {
            let Some(w) = width(&output.shape) else {
                continue;
            };
            if output.datatype == DType::Bytes {
                if w == 1 {
                    predictions.push(Column {
                        name: output.name.clone(),
                        kind: Kind::Categorical,
                        source: Source::Output {
                            output: o,
                            column: 0,
                            width: 1,
                        },
                    });
                }
                continue;
            }
            let labelled = w > 1 && labels.len() == w;
            for j in 0..w {
                let name = match (w, labels.get(j).filter(|_| labelled)) {
                    (1, _) => output.name.clone(),
                    (_, Some(label)) => format!("{}[{label}]", output.name),
                    _ => format!("{}[{j}]", output.name),
                };
                predictions.push(Column {
                    name,
                    kind: Kind::Numeric,
                    source: Source::Output {
                        output: o,
                        column: j,
                        width: w,
                    },
                });
            }
            if labelled {
                predictions.push(Column {
                    name: format!("{}:top", output.name),
                    kind: Kind::Categorical,
                    source: Source::TopLabel {
                        output: o,
                        labels: labels.clone(),
                    },
                });
            }
        }
        Columns {
            features,
            predictions,
        }
    }

    /// A forecaster's two summaries: of its numeric `[-1, -1]` history input and of its
    /// first numeric `[-1, h]` output (the mean forecast). `None` for other models.
    fn of_forecaster(manifest: &Manifest) -> Option<Columns> {
        let history = manifest
            .inputs
            .iter()
            .position(|i| i.shape == [-1, -1] && i.datatype != DType::Bytes)?;
        let mean = manifest
            .outputs
            .iter()
            .position(|o| o.datatype != DType::Bytes && o.shape.len() == 2 && o.shape[0] == -1)?;
        Some(Columns {
            features: vec![Column {
                name: HISTORY_COLUMN.to_string(),
                kind: Kind::Numeric,
                source: Source::InputTailMean {
                    input: history,
                    days: SUMMARY_DAYS,
                },
            }],
            predictions: vec![Column {
                name: FORECAST_COLUMN.to_string(),
                kind: Kind::Numeric,
                source: Source::OutputHeadMean {
                    output: mean,
                    days: SUMMARY_DAYS,
                },
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(dir: &str) -> Manifest {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(dir)
            .join("mercator.json");
        Manifest::parse(&std::fs::read(path).expect("manifest")).expect("parse")
    }

    #[test]
    fn churn_profiles_its_twelve_features_and_its_probability() {
        let c = Columns::of(&manifest("churn"));
        assert_eq!(c.features.len(), 12);
        assert_eq!(c.features[4].name, "return_rate");
        assert!(c.features.iter().all(|f| f.kind == Kind::Numeric));
        let names: Vec<&str> = c.predictions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["churn_probability", "churn_margin"]);
    }

    #[test]
    fn intent_profiles_each_class_and_the_top_one_but_not_the_text() {
        let c = Columns::of(&manifest("intent"));
        assert!(c.features.is_empty());
        assert_eq!(c.predictions.len(), 13);
        let top = c.predictions.last().expect("top");
        assert_eq!(
            (top.name.as_str(), top.kind),
            ("probabilities:top", Kind::Categorical)
        );
        assert!(c.predictions[0].name.starts_with("probabilities["));
    }

    #[test]
    fn forecasters_profile_a_week_of_history_and_of_forecast_but_no_ids() {
        for (dir, history) in [("demand/ets", 2), ("demand/net", 0)] {
            let c = Columns::of(&manifest(dir));
            assert_eq!(
                c.features,
                [Column {
                    name: HISTORY_COLUMN.into(),
                    kind: Kind::Numeric,
                    source: Source::InputTailMean {
                        input: history,
                        days: 7
                    },
                }],
                "{dir}"
            );
            assert_eq!(
                c.predictions,
                [Column {
                    name: FORECAST_COLUMN.into(),
                    kind: Kind::Numeric,
                    source: Source::OutputHeadMean { output: 0, days: 7 },
                }],
                "{dir}"
            );
        }
    }

    #[test]
    fn summaries_skip_what_is_not_a_number() {
        assert_eq!(finite_mean([1.0, f64::NAN, 3.0, f64::INFINITY]), 2.0);
        assert!(finite_mean([]).is_nan());
    }
}
