//! A global neural demand forecaster: one candle net for every series, over a scaled
//! window of recent daily sales and calendar features, giving for each of the next days
//! the mean and a fixed set of quantile levels (trained with the pinball loss).
//!
//! The manifest is a `candle` net's plus a `forecaster` section that says how a history
//! becomes the net's input and how its output becomes a forecast:
//!
//! ```json
//! "forecaster": {"window": 56, "horizon": 28, "levels": [0.05, 0.1, 0.5, 0.9, 0.95],
//!                "features": ["scaled_window", "day_of_week", "log_scale"]}
//! ```
//!
//! With `scale` the mean of the last `window` days (at least 1, so a dead series does not
//! divide by zero), the input row is the `features` blocks in the order listed:
//! `scaled_window` the last `window` days divided by `scale`, oldest first;
//! `day_of_week` a one-hot of the first forecast day's weekday, Monday first;
//! `log_scale` `ln(1 + scale)`. The net's output is `horizon × (1 + levels)` values, day
//! by day: the mean, then each level, in units of `scale`. A forecast multiplies by the
//! scale, sorts each day's levels (a monotone rearrangement, so quantiles never cross)
//! and interpolates requested levels linearly between the trained ones; levels outside
//! the trained range are refused rather than extrapolated.
//! `examples/demand/train_nn.py` trains one and holds the Python reference.

use chrono::Datelike;
use serde::Deserialize;

use crate::forecast::{DailyTotals, Forecast, Forecaster, Series, add_days};
use crate::kinds::candle::{CandleModel, LayerSpec};
use crate::{DType, Model, Result, RuntimeError, Tensor, TensorData, TensorSpec};

/// A block of the net's input row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureBlock {
    /// The last `window` days over the scale.
    ScaledWindow,
    /// One-hot weekday of the first forecast day, Monday first (7 values).
    DayOfWeek,
    /// `ln(1 + scale)`.
    LogScale,
}

/// The manifest's `forecaster` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecasterSpec {
    /// Days of history the net reads.
    pub window: usize,
    /// Days it forecasts.
    pub horizon: usize,
    /// Quantile levels it outputs, increasing.
    pub levels: Vec<f64>,
    /// Input blocks, in order.
    pub features: Vec<FeatureBlock>,
}

impl ForecasterSpec {
    /// Reads and checks the manifest's `forecaster` section, if it has one.
    pub fn from_manifest(
        extra: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<Option<ForecasterSpec>> {
        let Some(value) = extra.get("forecaster") else {
            return Ok(None);
        };
        let sig = |m: String| RuntimeError::Signature(format!("forecaster: {m}"));
        let spec: ForecasterSpec =
            serde_json::from_value(value.clone()).map_err(|e| sig(e.to_string()))?;
        if spec.window == 0 || spec.horizon == 0 {
            return Err(sig("window and horizon must be at least 1".into()));
        }
        if spec.levels.len() < 2
            || spec.levels.iter().any(|q| !(*q > 0.0 && *q < 1.0))
            || spec.levels.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(sig(
                "levels must be at least two increasing quantile levels in (0, 1)".into(),
            ));
        }
        if !spec.features.contains(&FeatureBlock::ScaledWindow) {
            return Err(sig("features must include scaled_window".into()));
        }
        let mut seen = spec.features.clone();
        seen.sort_by_key(|f| *f as u8);
        seen.dedup();
        if seen.len() != spec.features.len() {
            return Err(sig("features lists a block twice".into()));
        }
        Ok(Some(spec))
    }

    fn width(&self) -> usize {
        self.features
            .iter()
            .map(|f| match f {
                FeatureBlock::ScaledWindow => self.window,
                FeatureBlock::DayOfWeek => 7,
                FeatureBlock::LogScale => 1,
            })
            .sum()
    }
}

/// The net and how to feed it.
#[derive(Debug)]
pub struct NeuralForecaster {
    net: CandleModel,
    spec: ForecasterSpec,
    width: usize,
}

impl NeuralForecaster {
    /// Loads the net; its input and output widths follow from `spec`.
    pub fn load(
        weights: &[u8],
        layers: &[LayerSpec],
        spec: ForecasterSpec,
    ) -> Result<NeuralForecaster> {
        let width = spec.width();
        let outputs = spec.horizon * (1 + spec.levels.len());
        let tensor = |name: &str, w: usize| TensorSpec {
            name: name.into(),
            datatype: DType::F32,
            shape: vec![-1, w as i64],
            allow_nan: false,
        };
        let net = CandleModel::load(
            weights,
            layers,
            vec![tensor("x", width)],
            vec![tensor("y", outputs)],
        )
        .map_err(|e| {
            let why =
                format!("(the forecaster section makes the net {width} wide in, {outputs} out)");
            match e {
                RuntimeError::Signature(m) => RuntimeError::Signature(format!("{m} {why}")),
                RuntimeError::InvalidArtifact(m) => {
                    RuntimeError::InvalidArtifact(format!("{m} {why}"))
                }
                other => other,
            }
        })?;
        Ok(NeuralForecaster { net, spec, width })
    }

    /// The net's input row for a series, and its scale.
    fn input_row(&self, series: &Series<'_>, row: &mut Vec<f32>) -> Result<f64> {
        let w = self.spec.window;
        let n = series.values.len();
        if n < w {
            return Err(RuntimeError::input(
                "history",
                format!("{n} days are too few: the model reads the last {w}"),
            ));
        }
        let window = &series.values[n - w..];
        if let Some(i) = window.iter().position(|v| !v.is_finite()) {
            return Err(RuntimeError::input(
                "history",
                format!("value {} is not a finite number", n - w + i),
            ));
        }
        let last = series.last_date.ok_or_else(|| {
            RuntimeError::input(
                crate::forecast::LAST_DATE_INPUT,
                "the history's last date is needed (the model reads the weekday)",
            )
        })?;
        let first_day = add_days(last, 1)?;
        let scale = (window.iter().sum::<f64>() / w as f64).max(1.0);
        for block in &self.spec.features {
            match block {
                FeatureBlock::ScaledWindow => {
                    row.extend(window.iter().map(|v| (v / scale) as f32));
                }
                FeatureBlock::DayOfWeek => {
                    let day = first_day.weekday().num_days_from_monday() as usize;
                    row.extend((0..7).map(|d| if d == day { 1.0 } else { 0.0 }));
                }
                FeatureBlock::LogScale => row.push(scale.ln_1p() as f32),
            }
        }
        Ok(scale)
    }

    /// A forecast from the net's output for one series.
    fn decode(&self, out: &[f32], scale: f64, horizon: usize, quantiles: &[f64]) -> Forecast {
        let levels = &self.spec.levels;
        let stride = 1 + levels.len();
        let mut mean = Vec::with_capacity(horizon);
        let mut values: Vec<Vec<f64>> = vec![Vec::with_capacity(horizon); quantiles.len()];
        let mut day = Vec::with_capacity(levels.len());
        for h in 0..horizon {
            let step = &out[h * stride..(h + 1) * stride];
            mean.push(f64::from(step[0]) * scale);
            day.clear();
            day.extend(step[1..].iter().map(|&v| f64::from(v) * scale));
            day.sort_by(f64::total_cmp);
            for (j, &q) in quantiles.iter().enumerate() {
                // The trained levels around q (the last pair at the top end).
                let i = levels
                    .partition_point(|&l| l <= q)
                    .saturating_sub(1)
                    .min(levels.len() - 2);
                let (lo, hi) = (levels[i], levels[i + 1]);
                let w = (q - lo) / (hi - lo);
                values[j].push(day[i] + w * (day[i + 1] - day[i]));
            }
        }
        Forecast {
            mean,
            quantiles: values,
        }
    }
}

impl Forecaster for NeuralForecaster {
    fn needs_last_date(&self) -> bool {
        true
    }

    fn max_horizon(&self) -> Option<usize> {
        Some(self.spec.horizon)
    }

    /// A flat series of the window's length through the whole net.
    fn warm_up(&self) -> Result<()> {
        let values = vec![1.0; self.spec.window];
        let series = Series {
            key: &[],
            values: &values,
            last_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
        };
        self.forecast(&series, self.spec.horizon, &[self.spec.levels[0]])
            .map(|_| ())
    }

    fn quantile_range(&self) -> Option<(f64, f64)> {
        Some((
            self.spec.levels[0],
            self.spec.levels[self.spec.levels.len() - 1],
        ))
    }

    /// One daily forecast, at the longest total asked for, serves every shorter one.
    fn total_demands<'a>(
        &'a self,
        series: &'a Series<'a>,
        longest: usize,
    ) -> Box<dyn FnMut(usize) -> Result<crate::replenish::Demand> + 'a> {
        let mut shared: Option<DailyTotals> = None;
        Box::new(move |days| {
            let totals = match &mut shared {
                Some(t) => t,
                none => none.insert(DailyTotals::new(self, series, longest.max(days))?),
            };
            totals.over(days)
        })
    }

    fn forecast(&self, series: &Series<'_>, horizon: usize, quantiles: &[f64]) -> Result<Forecast> {
        self.forecast_batch(std::slice::from_ref(series), horizon, quantiles)
            .pop()
            .unwrap_or_else(|| Err(RuntimeError::Signature("no forecast".into())))
    }

    /// One matrix product for every series whose history fits.
    fn forecast_batch(
        &self,
        series: &[Series<'_>],
        horizon: usize,
        quantiles: &[f64],
    ) -> Vec<Result<Forecast>> {
        if horizon > self.spec.horizon {
            let err = || {
                RuntimeError::input(
                    "horizon",
                    format!("the model forecasts at most {} days", self.spec.horizon),
                )
            };
            return series.iter().map(|_| Err(err())).collect();
        }
        let mut x = Vec::with_capacity(series.len() * self.width);
        let mut scales = Vec::with_capacity(series.len());
        let mut fits = Vec::with_capacity(series.len());
        for s in series {
            let before = x.len();
            match self.input_row(s, &mut x) {
                Ok(scale) => {
                    scales.push(scale);
                    fits.push(Ok(()));
                }
                Err(e) => {
                    x.truncate(before);
                    fits.push(Err(e));
                }
            }
        }
        let rows = scales.len();
        let out = Tensor::new(vec![rows, self.width], TensorData::F32(x))
            .and_then(|t| self.net.infer(&[t], &[0]));
        let out = match out.map(|mut o| o.pop().map(|t| t.data)) {
            Ok(Some(TensorData::F32(v))) => v,
            Ok(_) => {
                return series
                    .iter()
                    .map(|_| {
                        Err(RuntimeError::Signature(
                            "the net gave no FP32 output".into(),
                        ))
                    })
                    .collect();
            }
            Err(e) => {
                let message = e.to_string();
                return series
                    .iter()
                    .map(|_| Err(RuntimeError::Signature(message.clone())))
                    .collect();
            }
        };
        let stride = self.spec.horizon * (1 + self.spec.levels.len());
        let mut next = 0;
        fits.into_iter()
            .map(|fit| {
                fit.map(|()| {
                    let row = &out[next * stride..(next + 1) * stride];
                    let f = self.decode(row, scales[next], horizon, quantiles);
                    next += 1;
                    f
                })
            })
            .collect()
    }
}
