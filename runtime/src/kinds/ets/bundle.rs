//! Many ETS models in one artifact, one per series, each anchored at the last day it was
//! fitted on.

use serde::Deserialize;

use super::{Ets, Seasonal, State};
use crate::forecast::Forecast;
use crate::{Result, RuntimeError};

/// One series of a bundle: its fitted model, whose "initial" states are the states after
/// the last training day, and the fit's error statistics.
#[derive(Debug)]
struct Anchored {
    ets: Ets,
    last_date: chrono::NaiveDate,
    mse: f64,
    nobs: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleDoc {
    series: Vec<BundleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleEntry {
    key: Vec<String>,
    last_date: String,
    mse: f64,
    nobs: usize,
    ets: serde_json::Value,
}

/// Many ETS models, one per series (a SKU at a location), in one artifact:
///
/// ```json
/// {"series": [{"key": ["SKU000", "berlin"], "last_date": "2026-10-03", "mse": 17.9,
///              "nobs": 337, "ets": {"error": "add", "trend": "damped", ...,
///                                   "initial_level": 18.0, ...}}]}
/// ```
///
/// Each `ets` is a single model's artifact whose initial states are the states after
/// `last_date`, the last day it was fitted on. A forecast filters only the days after it
/// (the tail of the history it is sent) and forecasts from there, with σ² the fit's `mse`
/// pooled with the new days' errors over `nobs` + new days: the numbers statsmodels gives
/// when it smooths the longer series with the fitted parameters. Histories ending before
/// `last_date` are refused (the model has already moved past them).
#[derive(Debug)]
pub struct EtsBundle {
    series: std::collections::HashMap<Vec<String>, Anchored>,
    key_parts: usize,
    /// Whether any series simulates its intervals (multiplicative seasonality).
    runs_long: bool,
}

impl EtsBundle {
    /// Whether an `ets` artifact is a bundle (it has a `series` list).
    pub fn is_bundle(bytes: &[u8]) -> bool {
        #[derive(Deserialize)]
        struct Probe {
            series: Option<serde::de::IgnoredAny>,
        }
        serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| p.series.is_some())
    }

    /// Parses and checks a bundle: keys of one length, unique, each model valid.
    pub fn from_json(bytes: &[u8]) -> Result<EtsBundle> {
        let doc: BundleDoc = serde_json::from_slice(bytes)
            .map_err(|e| RuntimeError::artifact(format!("ets bundle: {e}")))?;
        let bad =
            |i: usize, m: String| RuntimeError::artifact(format!("ets bundle series[{i}]: {m}"));
        let key_parts = doc.series.first().map_or(0, |s| s.key.len());
        if key_parts == 0 {
            return Err(RuntimeError::artifact(
                "ets bundle: 'series' must list at least one series with a non-empty key",
            ));
        }
        let mut series = std::collections::HashMap::with_capacity(doc.series.len());
        for (i, entry) in doc.series.into_iter().enumerate() {
            if entry.key.len() != key_parts {
                return Err(bad(
                    i,
                    format!(
                        "key has {} parts, the first has {key_parts}",
                        entry.key.len()
                    ),
                ));
            }
            let last_date = crate::forecast::parse_date(&entry.last_date).ok_or_else(|| {
                bad(
                    i,
                    format!("last_date '{}' is not YYYY-MM-DD", entry.last_date),
                )
            })?;
            if !(entry.mse.is_finite() && entry.mse >= 0.0) || entry.nobs == 0 {
                return Err(bad(i, "mse must be finite and >= 0, nobs > 0".into()));
            }
            let ets = Ets::from_json(entry.ets.to_string().as_bytes())
                .map_err(|e| bad(i, e.to_string()))?;
            let anchored = Anchored {
                ets,
                last_date,
                mse: entry.mse,
                nobs: entry.nobs,
            };
            if series.insert(entry.key.clone(), anchored).is_some() {
                return Err(bad(i, format!("key {:?} is listed twice", entry.key)));
            }
        }
        let runs_long = series
            .values()
            .any(|a| a.ets.spec.seasonal == Seasonal::Mul);
        Ok(EtsBundle {
            series,
            key_parts,
            runs_long,
        })
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether it has no series (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

impl crate::forecast::Forecaster for EtsBundle {
    fn key_parts(&self) -> usize {
        self.key_parts
    }

    fn needs_last_date(&self) -> bool {
        true
    }

    fn runs_long(&self) -> bool {
        self.runs_long
    }

    fn forecast(
        &self,
        series: &crate::forecast::Series<'_>,
        horizon: usize,
        quantiles: &[f64],
    ) -> Result<Forecast> {
        let (model, state, mse) = self.anchor(series)?;
        model.ets.forecast_from(&state, mse, horizon, quantiles)
    }

    fn total_demand(
        &self,
        series: &crate::forecast::Series<'_>,
        days: usize,
    ) -> Result<crate::replenish::Demand> {
        let (model, state, mse) = self.anchor(series)?;
        Ok(model.ets.cumulative_from(&state, mse, days))
    }
}

impl EtsBundle {
    /// A series' model, its state after the history's days since the fit, and σ² pooled
    /// over the fit's days and those.
    fn anchor(&self, series: &crate::forecast::Series<'_>) -> Result<(&Anchored, State, f64)> {
        let model = self
            .series
            .get(series.key)
            .ok_or_else(|| RuntimeError::UnknownSeries(series.key.join("/")))?;
        let last = series.last_date.ok_or_else(|| {
            RuntimeError::input(
                crate::forecast::LAST_DATE_INPUT,
                "the history's last date is needed",
            )
        })?;
        let new_days = (last - model.last_date).num_days();
        let new_days = usize::try_from(new_days).map_err(|_| {
            RuntimeError::input(
                crate::forecast::LAST_DATE_INPUT,
                format!(
                    "the history ends on {last}, before {} when this model was fitted",
                    model.last_date
                ),
            )
        })?;
        if series.values.len() < new_days {
            return Err(RuntimeError::input(
                "history",
                format!(
                    "{} days up to {last} do not reach back to {}, the model's last day: \
                     {new_days} are needed",
                    series.values.len(),
                    model.last_date
                ),
            ));
        }
        let tail = &series.values[series.values.len() - new_days..];
        let (state, sse) = model.ets.filter(tail)?;
        let mse = (model.mse * model.nobs as f64 + sse) / (model.nobs + new_days) as f64;
        Ok((model, state, mse))
    }
}
