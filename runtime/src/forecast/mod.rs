//! Forecasters: models that turn a daily series' recent history into a forecast of the
//! next days, with a point forecast (the mean) and quantiles.
//!
//! Every forecasting kind (a single ETS model, a bundle of ETS models keyed by series, a
//! global neural forecaster) implements [`Forecaster`]. The typed forecasting endpoint
//! calls it directly; [`ForecastModel`] wraps it in the [`Model`] trait so that KServe V2
//! clients get the same numbers from `ModelInfer`. Both finish a forecast the same way
//! ([`finish`]): quantiles never cross, and sales are never negative.

use chrono::{Days, NaiveDate};

mod total;
pub use total::DailyTotals;
#[cfg(test)]
pub(crate) use total::error_response;

use crate::{DType, Model, Result, RuntimeError, Tensor, TensorData, TensorSpec};

/// The V2 input that carries each row's last history date (`YYYY-MM-DD`).
pub const LAST_DATE_INPUT: &str = "last_date";

/// One series to forecast: its key (for forecasters that keep per-series state), its
/// daily history (oldest first, one value a day, no gaps) and the date of the last value.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// Key parts, e.g. `["SKU000", "berlin"]`; empty for global forecasters called
    /// without one.
    pub key: &'a [String],
    /// Daily values, oldest first.
    pub values: &'a [f64],
    /// The date of the last value, when known.
    pub last_date: Option<NaiveDate>,
}

/// A forecast for `horizon` days after the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// The point forecast (mean) for each day.
    pub mean: Vec<f64>,
    /// For each requested quantile, in the order asked, its value for each day.
    pub quantiles: Vec<Vec<f64>>,
}

/// Something that forecasts daily series.
pub trait Forecaster: Send + Sync + std::fmt::Debug {
    /// How many key parts identify a series (0: the forecaster needs no key).
    fn key_parts(&self) -> usize {
        0
    }

    /// Whether a series must say the date of its last value.
    fn needs_last_date(&self) -> bool {
        false
    }

    /// The longest horizon it can forecast, if it has one.
    fn max_horizon(&self) -> Option<usize> {
        None
    }

    /// The quantile levels it can give, inclusive; `None` for any level in (0, 1).
    fn quantile_range(&self) -> Option<(f64, f64)> {
        None
    }

    /// Whether one forecast takes long enough (milliseconds: simulated intervals) that
    /// it belongs on the blocking pool rather than inline on the reactor.
    fn runs_long(&self) -> bool {
        false
    }

    /// Runs once before the model serves, so the first request pays for nothing lazy.
    fn warm_up(&self) -> Result<()> {
        Ok(())
    }

    /// Forecasts one series. Quantiles have been checked with [`check_quantiles`].
    fn forecast(&self, series: &Series<'_>, horizon: usize, quantiles: &[f64]) -> Result<Forecast>;

    /// The distribution of the series' total demand over the next `days` days, for
    /// replenishment (not the sum of daily quantiles: daily errors are correlated).
    /// State-space forecasters derive it from their model; by default it is approximated
    /// from the daily forecast's spread (`replenish::approx`).
    fn total_demand(&self, series: &Series<'_>, days: usize) -> Result<crate::replenish::Demand> {
        total::approximate(self, series, days)
    }

    /// Totals over any number of days up to `longest`, for a policy that asks for several
    /// (one per possible lead time): each [`Forecaster::total_demand`]'s by default.
    /// Forecasters whose totals come from one daily forecast override it to forecast
    /// once, at `longest`, and read shorter totals from its first days
    /// ([`DailyTotals`]), with the same numbers.
    fn total_demands<'a>(
        &'a self,
        series: &'a Series<'a>,
        longest: usize,
    ) -> Box<dyn FnMut(usize) -> Result<crate::replenish::Demand> + 'a> {
        let _ = longest;
        Box::new(move |days| self.total_demand(series, days))
    }

    /// Forecasts many series; one result per series, in order. Forecasters that gain from
    /// batching (a neural net runs one matrix product for all) override it.
    fn forecast_batch(
        &self,
        series: &[Series<'_>],
        horizon: usize,
        quantiles: &[f64],
    ) -> Vec<Result<Forecast>> {
        series
            .iter()
            .map(|s| self.forecast(s, horizon, quantiles))
            .collect()
    }
}

/// Checks requested quantile levels: each in (0, 1) and in the forecaster's range. The
/// error names the offending entry, `quantiles[i]`.
pub fn check_quantiles(forecaster: &dyn Forecaster, quantiles: &[f64]) -> Result<()> {
    for (i, &q) in quantiles.iter().enumerate() {
        let field = format!("quantiles[{i}]");
        if !(q > 0.0 && q < 1.0) {
            return Err(RuntimeError::input(field, format!("{q} is not in (0, 1)")));
        }
        if let Some((lo, hi)) = forecaster.quantile_range()
            && !(lo..=hi).contains(&q)
        {
            return Err(RuntimeError::input(
                field,
                format!("{q} is outside the levels this model forecasts, [{lo}, {hi}]"),
            ));
        }
    }
    Ok(())
}

/// Checks a horizon against the forecaster's maximum (and `limit`, the server's).
pub fn check_horizon(forecaster: &dyn Forecaster, horizon: usize, limit: usize) -> Result<()> {
    let max = forecaster.max_horizon().map_or(limit, |m| m.min(limit));
    if horizon == 0 {
        return Err(RuntimeError::input("horizon", "must be at least 1 day"));
    }
    if horizon > max {
        return Err(RuntimeError::input(
            "horizon",
            format!("{horizon} days is over the maximum of {max} for this model"),
        ));
    }
    Ok(())
}

/// Makes a forecast usable for planning: at each day the quantiles are put in the order of
/// their levels (a monotone rearrangement, which only reorders values a model gave), and
/// with `non_negative` every value below zero becomes zero (sales cannot be negative).
/// A forecast with an infinite or NaN value is refused, naming the history: values near
/// the float range (1e308) overflow any model's sums, and a planner must not get `inf`.
pub fn finish(forecast: &mut Forecast, levels: &[f64], non_negative: bool) -> Result<()> {
    let finite = forecast
        .mean
        .iter()
        .chain(forecast.quantiles.iter().flatten())
        .all(|v| v.is_finite());
    if !finite {
        return Err(RuntimeError::input(
            "history",
            "the forecast is not finite: the history's values are too large (or not numbers)",
        ));
    }
    let mut order: Vec<usize> = (0..levels.len()).collect();
    order.sort_by(|&a, &b| levels[a].total_cmp(&levels[b]));
    let days = forecast.mean.len();
    let mut column = Vec::with_capacity(levels.len());
    for h in 0..days {
        column.clear();
        column.extend(forecast.quantiles.iter().map(|q| q[h]));
        column.sort_by(f64::total_cmp);
        for (&j, &v) in order.iter().zip(&column) {
            forecast.quantiles[j][h] = v;
        }
    }
    if non_negative {
        let clamp = |v: &mut f64| *v = v.max(0.0);
        forecast.mean.iter_mut().for_each(clamp);
        forecast
            .quantiles
            .iter_mut()
            .for_each(|q| q.iter_mut().for_each(clamp));
    }
    Ok(())
}

/// The date `days` after `date`, or an error naming the input when it overflows.
pub fn add_days(date: NaiveDate, days: u64) -> Result<NaiveDate> {
    date.checked_add_days(Days::new(days))
        .ok_or_else(|| RuntimeError::input(LAST_DATE_INPUT, format!("{date} + {days} days")))
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A forecaster served over V2 `ModelInfer`.
///
/// Signature (from the manifest): one numeric input `[-1, n]`, the history, one row per
/// series, oldest first (leading NaNs are padding, so series of different lengths can
/// share a tensor); a BYTES `[-1]` input per key part, in order, for forecasters keyed by
/// series; a BYTES `[-1]` input named `last_date` (`YYYY-MM-DD`) where the forecaster
/// needs dates. Outputs: `[-1, h]` the mean and `[-1, h, q]` the manifest's `quantiles`,
/// FP32 or FP64.
#[derive(Debug)]
pub struct ForecastModel {
    kind: &'static str,
    forecaster: Box<dyn Forecaster>,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    horizon: usize,
    quantiles: Vec<f64>,
    non_negative: bool,
    history: usize,
    keys: Vec<usize>,
    last_date: Option<usize>,
}

impl ForecastModel {
    /// Wraps `forecaster` with the manifest's signature, `quantiles` and `non_negative`.
    pub fn new(
        kind: &'static str,
        forecaster: Box<dyn Forecaster>,
        inputs: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
        quantiles: Vec<f64>,
        non_negative: bool,
    ) -> Result<ForecastModel> {
        let sig = |m: String| RuntimeError::Signature(m);
        let mut history = None;
        let mut keys = Vec::new();
        let mut last_date = None;
        for (i, spec) in inputs.iter().enumerate() {
            match (spec.datatype, spec.shape.as_slice()) {
                (DType::Bytes, [_]) if spec.name == LAST_DATE_INPUT => last_date = Some(i),
                (DType::Bytes, [_]) => keys.push(i),
                (d, [_, _]) if d.is_numeric() && history.is_none() => history = Some(i),
                _ => {
                    return Err(sig(format!(
                        "input '{}' must be the history (numeric [-1, n], one only), a key \
                         part or '{LAST_DATE_INPUT}' (BYTES [-1])",
                        spec.name
                    )));
                }
            }
        }
        let history = history.ok_or_else(|| {
            sig("a forecaster takes the history as a numeric [-1, n] input".into())
        })?;
        if keys.len() != forecaster.key_parts() {
            return Err(sig(format!(
                "the model's series are keyed by {} parts; the manifest gives {} BYTES key inputs",
                forecaster.key_parts(),
                keys.len()
            )));
        }
        if forecaster.needs_last_date() && last_date.is_none() {
            return Err(sig(format!(
                "this forecaster needs a BYTES [-1] input '{LAST_DATE_INPUT}'"
            )));
        }
        let mut horizon = None;
        for o in &outputs {
            let h = match o.shape.as_slice() {
                [_, h] => *h,
                [_, h, q] if *q == quantiles.len() as i64 => *h,
                _ => {
                    return Err(sig(format!(
                        "output '{}' must be [-1, h] (mean) or [-1, h, {}] (quantiles)",
                        o.name,
                        quantiles.len()
                    )));
                }
            };
            if h <= 0 || horizon.is_some_and(|x| x != h) {
                return Err(sig("every output must have the same horizon h > 0".into()));
            }
            horizon = Some(h);
            if !matches!(o.datatype, DType::F32 | DType::F64) {
                return Err(sig(format!("output '{}' must be FP32 or FP64", o.name)));
            }
        }
        let horizon = horizon.ok_or_else(|| sig("a forecaster needs an output".into()))? as usize;
        check_quantiles(forecaster.as_ref(), &quantiles)
            .map_err(|e| sig(format!("manifest quantiles: {e}")))?;
        check_horizon(forecaster.as_ref(), horizon, usize::MAX)
            .map_err(|e| sig(format!("output horizon: {e}")))?;
        Ok(ForecastModel {
            kind,
            forecaster,
            inputs,
            outputs,
            horizon,
            quantiles,
            non_negative,
            history,
            keys,
            last_date,
        })
    }

    /// The forecaster inside.
    pub fn forecaster(&self) -> &dyn Forecaster {
        self.forecaster.as_ref()
    }

    /// Each row's text from a BYTES input.
    fn texts<'t>(&self, inputs: &'t [Tensor], slot: usize) -> Result<Vec<&'t str>> {
        let name = &self.inputs[slot].name;
        let TensorData::Bytes(items) = &inputs[slot].data else {
            return Err(RuntimeError::input(name, "must be BYTES"));
        };
        items
            .iter()
            .enumerate()
            .map(|(r, b)| {
                std::str::from_utf8(b)
                    .map_err(|_| RuntimeError::input(name, format!("row {r} is not UTF-8")))
            })
            .collect()
    }
}

impl Model for ForecastModel {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    fn forecaster(&self) -> Option<&dyn Forecaster> {
        Some(self.forecaster.as_ref())
    }

    fn infer(&self, inputs: &[Tensor], wanted: &[usize]) -> Result<Vec<Tensor>> {
        let history_name = &self.inputs[self.history].name;
        let history = &inputs[self.history];
        let [rows, width] = history.shape.as_slice() else {
            return Err(RuntimeError::input(history_name, "must be [rows, n]"));
        };
        let (rows, width) = (*rows, *width);
        let values: Vec<f64> = match &history.data {
            // f32 transport loses digits; FP64 histories are read exactly.
            TensorData::F64(v) => v.clone(),
            data => {
                let mut v = vec![0.0f32; rows * width];
                data.copy_into_f32(width, &mut v, width, 0)
                    .ok_or_else(|| RuntimeError::input(history_name, "must be numeric"))?;
                v.into_iter().map(f64::from).collect()
            }
        };
        for &slot in self.keys.iter().chain(&self.last_date) {
            if inputs[slot].shape.first() != Some(&rows) {
                return Err(RuntimeError::input(
                    &self.inputs[slot].name,
                    format!("must have one entry per history row ({rows})"),
                ));
            }
        }
        let key_texts = self
            .keys
            .iter()
            .map(|&slot| self.texts(inputs, slot))
            .collect::<Result<Vec<_>>>()?;
        let keys: Vec<Vec<String>> = (0..rows)
            .map(|r| key_texts.iter().map(|k| k[r].to_string()).collect())
            .collect();
        let dates = match self.last_date {
            Some(slot) => self
                .texts(inputs, slot)?
                .into_iter()
                .enumerate()
                .map(|(r, t)| {
                    parse_date(t).map(Some).ok_or_else(|| {
                        RuntimeError::input(
                            LAST_DATE_INPUT,
                            format!("row {r}: '{t}' is not a YYYY-MM-DD date"),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            None => vec![None; rows],
        };
        let series: Vec<Series<'_>> = (0..rows)
            .map(|r| {
                let row = &values[r * width..(r + 1) * width];
                let start = row.iter().position(|v| !v.is_nan()).unwrap_or(row.len());
                Series {
                    key: &keys[r],
                    values: &row[start..],
                    last_date: dates[r],
                }
            })
            .collect();
        let mut forecasts = Vec::with_capacity(rows);
        for (r, result) in self
            .forecaster
            .forecast_batch(&series, self.horizon, &self.quantiles)
            .into_iter()
            .enumerate()
        {
            let mut f = result.map_err(|e| match e {
                RuntimeError::InvalidInput { input, message } => {
                    let input = if input == "history" {
                        history_name.clone()
                    } else {
                        input
                    };
                    RuntimeError::input(input, format!("row {r}: {message}"))
                }
                RuntimeError::UnknownSeries(key) => RuntimeError::UnknownSeries(key),
                other => other,
            })?;
            finish(&mut f, &self.quantiles, self.non_negative).map_err(|e| match e {
                RuntimeError::InvalidInput { message, .. } => {
                    RuntimeError::input(history_name.clone(), format!("row {r}: {message}"))
                }
                other => other,
            })?;
            forecasts.push(f);
        }
        wanted
            .iter()
            .map(|&k| {
                let spec = crate::tensor::output_spec(&self.outputs, k)?;
                let q = self.quantiles.len();
                let (shape, data): (Vec<usize>, Vec<f64>) = if spec.shape.len() == 2 {
                    (
                        vec![rows, self.horizon],
                        forecasts.iter().flat_map(|f| f.mean.clone()).collect(),
                    )
                } else {
                    (
                        vec![rows, self.horizon, q],
                        forecasts
                            .iter()
                            .flat_map(|f| {
                                (0..self.horizon)
                                    .flat_map(move |h| (0..q).map(move |j| f.quantiles[j][h]))
                            })
                            .collect(),
                    )
                };
                let data = match spec.datatype {
                    DType::F64 => TensorData::F64(data),
                    _ => TensorData::F32(data.into_iter().map(|x| x as f32).collect()),
                };
                Tensor::new(shape, data)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finishing_uncrosses_and_clamps() {
        // Levels asked out of order: 0.9, 0.1, 0.5.
        let mut f = Forecast {
            mean: vec![-1.0, 5.0],
            quantiles: vec![vec![1.0, 9.0], vec![3.0, 2.0], vec![-2.0, 5.0]],
        };
        finish(&mut f, &[0.9, 0.1, 0.5], true).expect("finite");
        assert_eq!(f.mean, [0.0, 5.0]);
        assert_eq!(
            f.quantiles,
            [vec![3.0, 9.0], vec![0.0, 2.0], vec![1.0, 5.0]]
        );
        let mut g = Forecast {
            mean: vec![-1.0],
            quantiles: vec![vec![-3.0]],
        };
        finish(&mut g, &[0.5], false).expect("finite");
        assert_eq!((g.mean[0], g.quantiles[0][0]), (-1.0, -3.0));
    }

    proptest::proptest! {
        /// Whatever a model gives, a finished forecast rises with the level at every
        /// day, keeps each day's values (only reordered), and is never negative.
        #[test]
        fn finished_forecasts_never_cross(
            levels in proptest::collection::vec(0.01f64..0.99, 1..6),
            days in 1usize..5,
            seed in proptest::collection::vec(-50.0f64..50.0, 30),
        ) {
            let mut f = Forecast {
                mean: (0..days).map(|h| seed[h]).collect(),
                quantiles: (0..levels.len())
                    .map(|j| (0..days).map(|h| seed[(j * 5 + h + 7) % seed.len()]).collect())
                    .collect(),
            };
            let before = f.clone();
            finish(&mut f, &levels, true).expect("finite");
            for h in 0..days {
                let mut by_level: Vec<(f64, f64)> =
                    levels.iter().zip(&f.quantiles).map(|(l, q)| (*l, q[h])).collect();
                by_level.sort_by(|a, b| a.0.total_cmp(&b.0));
                proptest::prop_assert!(by_level.windows(2).all(|w| w[0].1 <= w[1].1));
                let mut was: Vec<f64> =
                    before.quantiles.iter().map(|q| q[h].max(0.0)).collect();
                let mut now: Vec<f64> = f.quantiles.iter().map(|q| q[h]).collect();
                was.sort_by(f64::total_cmp);
                now.sort_by(f64::total_cmp);
                proptest::prop_assert_eq!(was, now);
                proptest::prop_assert!(f.mean[h] >= 0.0);
            }
        }
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(
            parse_date("2026-10-31"),
            NaiveDate::from_ymd_opt(2026, 10, 31)
        );
        for bad in ["2026-13-01", "31/10/2026", "", "2026-10-31T00:00:00"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
