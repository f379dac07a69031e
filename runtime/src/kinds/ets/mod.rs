//! Exponential smoothing (ETS, Holt-Winters in state-space form) with additive errors:
//! trend none, additive or damped; seasonality none, additive or multiplicative. The
//! smoothing parameters and initial states are fitted at training time (statsmodels'
//! `ETSModel`) and stored in the artifact (`ets.json`); here the model runs the filter
//! over a series' history to reach its current state and forecasts from there.
//!
//! Recursions (Hyndman et al., *Forecasting with Exponential Smoothing*, 2008), with
//! `base = l + φb` (φ = 1 without damping) and `s` the season's state m steps back:
//! `ŷ = base (+ s | × s)`, `e = y − ŷ`, `l = base + αe (/ s)`, `b = φb + βe (/ s)`,
//! `s' = s + γe (/ base)`, the divisions for multiplicative seasonality.
//!
//! Prediction intervals: for additive seasonality (or none) the exact forecast variance
//! `σ² v(h)` with σ² the in-sample mean squared one-step error and `v` the class-1 formulas
//! (as statsmodels computes them), so quantiles are `ŷ + z_q σ √v(h)`. Multiplicative
//! seasonality has no closed form: quantiles are those of simulated sample paths (normal
//! errors with the same σ; a fixed seed, so answers are repeatable).

mod bundle;
mod cumulative;

use serde::Deserialize;

pub use bundle::EtsBundle;

use crate::forecast::Forecast;
pub use crate::normal::normal_quantile;
use crate::{Result, RuntimeError};

/// Trend of an ETS model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// No trend.
    None,
    /// Additive (linear) trend.
    Add,
    /// Additive trend damped by φ.
    Damped,
}

/// Seasonality of an ETS model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seasonal {
    /// No seasonality.
    None,
    /// Additive seasonal states.
    Add,
    /// Multiplicative seasonal states.
    Mul,
}

/// The artifact: specification, fitted parameters and initial states.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtsSpec {
    /// Only `add` (additive errors).
    pub error: String,
    /// Trend.
    pub trend: Trend,
    /// Seasonality.
    pub seasonal: Seasonal,
    /// Level smoothing.
    pub alpha: f64,
    /// Trend smoothing.
    #[serde(default)]
    pub beta: f64,
    /// Seasonal smoothing.
    #[serde(default)]
    pub gamma: f64,
    /// Damping (1 without).
    #[serde(default = "one")]
    pub phi: f64,
    /// Level before the first observation.
    pub initial_level: f64,
    /// Trend before the first observation.
    #[serde(default)]
    pub initial_trend: f64,
    /// Seasonal states before the first observation, oldest first (the first
    /// observation uses the first).
    #[serde(default)]
    pub initial_seasonal: Vec<f64>,
    /// Season length (7 for daily data with a weekly cycle).
    #[serde(default)]
    pub seasonal_periods: usize,
}

fn one() -> f64 {
    1.0
}

/// Sample paths simulated for multiplicative-seasonality quantiles.
const PATHS: usize = 4000;

/// A fitted ETS model.
#[derive(Debug, Clone)]
pub struct Ets {
    spec: EtsSpec,
}

/// The state after filtering a history.
#[derive(Debug, Clone)]
struct State {
    level: f64,
    slope: f64,
    /// Seasonal states, the next step's first.
    season: std::collections::VecDeque<f64>,
}

impl Ets {
    /// Parses and checks an `ets.json` artifact.
    pub fn from_json(bytes: &[u8]) -> Result<Ets> {
        let spec: EtsSpec = serde_json::from_slice(bytes)
            .map_err(|e| RuntimeError::InvalidArtifact(format!("ets: {e}")))?;
        let bad = |m: String| Err(RuntimeError::InvalidArtifact(format!("ets: {m}")));
        if spec.error != "add" {
            return bad(format!(
                "error '{}' is not supported (only 'add')",
                spec.error
            ));
        }
        for (name, v) in [
            ("alpha", spec.alpha),
            ("beta", spec.beta),
            ("gamma", spec.gamma),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} {v} is outside [0, 1]"));
            }
        }
        if !(spec.phi > 0.0 && spec.phi <= 1.0) {
            return bad(format!("phi {} is outside (0, 1]", spec.phi));
        }
        if spec.seasonal == Seasonal::None {
            if !spec.initial_seasonal.is_empty() {
                return bad("initial_seasonal given without seasonality".into());
            }
        } else if spec.seasonal_periods < 2 || spec.initial_seasonal.len() != spec.seasonal_periods
        {
            return bad(format!(
                "seasonal_periods {} needs as many initial_seasonal values ({} given)",
                spec.seasonal_periods,
                spec.initial_seasonal.len()
            ));
        }
        if spec.seasonal == Seasonal::Mul && spec.initial_seasonal.iter().any(|s| *s <= 0.0) {
            return bad("multiplicative seasonal states must be positive".into());
        }
        let finite = [
            spec.alpha,
            spec.beta,
            spec.gamma,
            spec.phi,
            spec.initial_level,
            spec.initial_trend,
        ]
        .into_iter()
        .chain(spec.initial_seasonal.iter().copied())
        .all(f64::is_finite);
        if !finite {
            return bad("every parameter and state must be finite".into());
        }
        Ok(Ets { spec })
    }

    fn phi(&self) -> f64 {
        match self.spec.trend {
            Trend::Damped => self.spec.phi,
            _ => 1.0,
        }
    }

    /// The one-step prediction from `state`, with the base and the season it used.
    fn predict(&self, state: &State) -> (f64, f64, f64) {
        let trended = self.spec.trend != Trend::None;
        let base = state.level
            + if trended {
                self.phi() * state.slope
            } else {
                0.0
            };
        let season = state.season.front().copied().unwrap_or(0.0);
        let yhat = match self.spec.seasonal {
            Seasonal::None => base,
            Seasonal::Add => base + season,
            Seasonal::Mul => base * season,
        };
        (yhat, base, season)
    }

    /// One step: the prediction from `state`, then the state updated with `y`.
    fn step(&self, state: &mut State, y: f64) -> f64 {
        let s = &self.spec;
        let (yhat, base, season) = self.predict(state);
        state.season.pop_front();
        let scale = if s.seasonal == Seasonal::Mul {
            season
        } else {
            1.0
        };
        let e = y - yhat;
        state.level = base + s.alpha * e / scale;
        if s.trend != Trend::None {
            state.slope = self.phi() * state.slope + s.beta * e / scale;
        }
        match s.seasonal {
            Seasonal::None => {}
            Seasonal::Add => state.season.push_back(season + s.gamma * e),
            Seasonal::Mul => state.season.push_back(season + s.gamma * e / base),
        }
        yhat
    }

    /// Runs the filter over `history` (from the fitted initial states): the state after
    /// it and the sum of squared one-step errors.
    fn filter(&self, history: &[f64]) -> Result<(State, f64)> {
        if let Some(i) = history.iter().position(|v| !v.is_finite()) {
            return Err(RuntimeError::input(
                "history",
                format!("value {i} is not a finite number; ETS needs a complete series"),
            ));
        }
        let mut state = State {
            level: self.spec.initial_level,
            slope: self.spec.initial_trend,
            season: self.spec.initial_seasonal.iter().copied().collect(),
        };
        let mut sse = 0.0;
        for &y in history {
            let yhat = self.step(&mut state, y);
            sse += (y - yhat) * (y - yhat);
        }
        Ok((state, sse))
    }

    /// In-sample one-step predictions over `history`.
    pub fn fitted(&self, history: &[f64]) -> Result<Vec<f64>> {
        let mut state = self.filter(&[])?.0;
        Ok(history.iter().map(|&y| self.step(&mut state, y)).collect())
    }

    /// Point forecasts for `horizon` steps from a state.
    fn means(&self, state: &State, horizon: usize) -> Vec<f64> {
        let phi = self.phi();
        let trended = self.spec.trend != Trend::None;
        let m = state.season.len().max(1);
        let mut damp = 0.0;
        let mut power = 1.0;
        (1..=horizon)
            .map(|h| {
                power *= phi;
                damp += power;
                let base = state.level + if trended { damp * state.slope } else { 0.0 };
                let season = state.season.get((h - 1) % m).copied().unwrap_or(0.0);
                match self.spec.seasonal {
                    Seasonal::None => base,
                    Seasonal::Add => base + season,
                    Seasonal::Mul => base * season,
                }
            })
            .collect()
    }

    /// The relative forecast-error variance `v(h)` for additive models (class 1).
    fn relative_variance(&self, h: f64) -> f64 {
        let s = &self.spec;
        let (a, b, g) = (s.alpha, s.beta, s.gamma);
        let m = s.seasonal_periods.max(1) as f64;
        let k = ((h - 1.0) / m).floor();
        let seasonal = s.seasonal == Seasonal::Add;
        let season_term = if seasonal { g * k * (2.0 * a + g) } else { 0.0 };
        match s.trend {
            Trend::None => 1.0 + a * a * (h - 1.0) + season_term,
            Trend::Add => {
                1.0 + (h - 1.0) * (a * a + a * b * h + b * b / 6.0 * h * (2.0 * h - 1.0))
                    + if seasonal {
                        g * k * (2.0 * a + g + b * m * (k + 1.0))
                    } else {
                        0.0
                    }
            }
            Trend::Damped => {
                let phi = s.phi;
                let mut v = 1.0
                    + a * a * (h - 1.0)
                    + season_term
                    + (b * phi * h) / (1.0 - phi).powi(2) * (2.0 * a * (1.0 - phi) + b * phi)
                    - (b * phi * (1.0 - phi.powf(h))) / ((1.0 - phi).powi(2) * (1.0 - phi * phi))
                        * (2.0 * a * (1.0 - phi * phi) + b * phi * (1.0 + 2.0 * phi - phi.powf(h)));
                if seasonal {
                    v += (2.0 * b * g * phi) / ((1.0 - phi) * (1.0 - phi.powf(m)))
                        * (k * (1.0 - phi.powf(m)) - phi.powf(m) * (1.0 - phi.powf(m * k)));
                }
                v
            }
        }
    }

    /// Forecasts `horizon` steps after `history` (the whole series since the fitted
    /// initial states) with the given quantiles (each in (0, 1)); σ² is the in-sample
    /// mean squared one-step error over `history`, as statsmodels takes it.
    pub fn forecast(&self, history: &[f64], horizon: usize, quantiles: &[f64]) -> Result<Forecast> {
        let (state, sse) = self.filter(history)?;
        self.forecast_from(&state, mean_square(sse, history.len()), horizon, quantiles)
    }

    /// The in-sample mean squared one-step error over `history` (σ² of the intervals).
    pub fn mse(&self, history: &[f64]) -> Result<f64> {
        let (_, sse) = self.filter(history)?;
        Ok(mean_square(sse, history.len()))
    }

    /// Forecasts from a filtered state with error variance `mse`.
    fn forecast_from(
        &self,
        state: &State,
        mse: f64,
        horizon: usize,
        quantiles: &[f64],
    ) -> Result<Forecast> {
        if let Some(q) = quantiles.iter().find(|q| !(**q > 0.0 && **q < 1.0)) {
            return Err(RuntimeError::input(
                "quantiles",
                format!("{q} is not in (0, 1)"),
            ));
        }
        let mean = self.means(state, horizon);
        let quantiles = if self.spec.seasonal == Seasonal::Mul {
            self.simulated_quantiles(state, mse, horizon, quantiles)
        } else {
            quantiles
                .iter()
                .map(|&q| {
                    let z = normal_quantile(q);
                    mean.iter()
                        .enumerate()
                        .map(|(i, m)| m + z * (mse * self.relative_variance((i + 1) as f64)).sqrt())
                        .collect()
                })
                .collect()
        };
        Ok(Forecast { mean, quantiles })
    }

    /// Quantiles of simulated paths: each step draws e ~ N(0, mse) and updates the state.
    fn simulated_quantiles(
        &self,
        state: &State,
        mse: f64,
        horizon: usize,
        quantiles: &[f64],
    ) -> Vec<Vec<f64>> {
        let sigma = mse.sqrt();
        let mut rng = SplitMix(0x0005_eed0_fe75);
        let mut paths = vec![Vec::with_capacity(PATHS); horizon];
        for _ in 0..PATHS {
            let mut s = state.clone();
            for step in paths.iter_mut() {
                let y = self.predict(&s).0 + sigma * rng.normal();
                self.step(&mut s, y);
                step.push(y);
            }
        }
        quantiles
            .iter()
            .map(|&q| {
                paths
                    .iter_mut()
                    .map(|values| {
                        values.sort_by(f64::total_cmp);
                        // Linear interpolation between order statistics, as numpy does.
                        let pos = q * (values.len() - 1) as f64;
                        let lo = pos.floor() as usize;
                        let hi = (lo + 1).min(values.len() - 1);
                        values[lo] + (pos - lo as f64) * (values[hi] - values[lo])
                    })
                    .collect()
            })
            .collect()
    }
}

fn mean_square(sse: f64, n: usize) -> f64 {
    if n == 0 { 0.0 } else { sse / n as f64 }
}

/// SplitMix64 with Box-Muller normals: small, seeded, repeatable.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        // 53 random bits in (0, 1].
        ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

impl crate::forecast::Forecaster for Ets {
    fn runs_long(&self) -> bool {
        self.spec.seasonal == Seasonal::Mul
    }

    /// A single model's history runs from the start it was fitted on.
    fn forecast(
        &self,
        series: &crate::forecast::Series<'_>,
        horizon: usize,
        quantiles: &[f64],
    ) -> Result<Forecast> {
        Ets::forecast(self, series.values, horizon, quantiles)
    }

    fn total_demand(
        &self,
        series: &crate::forecast::Series<'_>,
        days: usize,
    ) -> Result<crate::replenish::Demand> {
        self.cumulative(series.values, days)
    }
}
