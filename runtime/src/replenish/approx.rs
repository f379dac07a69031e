//! Total demand over several days from a forecaster that only gives each day's quantiles
//! (the neural forecaster): an approximation, since how the days move together is not in
//! its output.
//!
//! It is what the forecaster would give if it were linear in its inputs: a day that comes
//! in `e` above its mean moves the later days' forecasts by `ψ_k·e` (`k` days later), the
//! forecaster's **response** to an error, measured by forecasting from the history with
//! day 1 appended a spread above and a spread below its mean (`forecast/total.rs`), and
//! taken to be the same from every later day. Then the total is `Σ_j e_j (1 + Σ_{k ≤ H−1−j} ψ_k)` over days `j` with independent
//! innovations `e_j`, whose variances are each day's own (its quantiles' spread over the
//! normal's, between the levels nearest 0.1 and 0.9) less what earlier errors carry into
//! it, `σ_j² / (1 + Σ_{k ≤ j} ψ_k²)`. For a linear model with additive errors (ETS) this is
//! its exact variance; the mean is the sum of the daily means.
//!
//! The total's shape is a gamma with that mean and variance: never negative, skewed to
//! the right as count demand is, and close to the normal when the spread is small beside
//! the mean.
//!
//! How good it is (`approx` tests and `runtime/tests/neural_totals.rs`): against the exact
//! totals of ETS models whose daily quantiles it is given, and against totals simulated
//! from the demo's neural forecaster itself (each day drawn from its forecast and
//! appended to the history before the next day is forecast), in spread and in how often
//! held-out totals fall below its quantiles.

use super::Demand;
use crate::normal::normal_quantile;

/// A day's standard deviation read from its quantiles at levels `lo` (`q_lo`) and `hi`
/// (`q_hi`): their spread over the standard normal's between the same levels.
pub fn daily_spread(q_lo: f64, q_hi: f64, lo: f64, hi: f64) -> f64 {
    (q_hi - q_lo).max(0.0) / (normal_quantile(hi) - normal_quantile(lo))
}

/// The total of a daily forecast's days, from its means, its quantiles at levels `lo`
/// (`q_lo`, one per day) and `hi` (`q_hi`), and `response[k − 1]`: how much a day's
/// forecast moves per unit of error `k` days earlier (missing entries: 0).
pub fn total_from_daily(
    means: &[f64],
    q_lo: &[f64],
    q_hi: &[f64],
    lo: f64,
    hi: f64,
    response: &[f64],
) -> Demand {
    let days = means.len();
    let mean: f64 = means.iter().sum();
    let var: Vec<f64> = q_lo
        .iter()
        .zip(q_hi)
        .map(|(a, b)| daily_spread(*a, *b, lo, hi).powi(2))
        .collect();
    let psi = |k: usize| response.get(k - 1).copied().unwrap_or(0.0);
    let total: f64 = (0..days)
        .map(|j| {
            // Day j's error reaches every later day of the total.
            let c = 1.0 + (1..days - j).map(psi).sum::<f64>();
            let growth = 1.0 + (1..=j).map(|k| psi(k).powi(2)).sum::<f64>();
            var[j] / growth * c * c
        })
        .sum();
    Demand::gamma(mean, total.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::ets::Ets;

    fn ets(trend: &str, seasonal: &str, alpha: f64) -> Ets {
        let mut j = serde_json::json!({
            "error": "add", "trend": trend, "seasonal": seasonal,
            "alpha": alpha, "beta": 0.03, "gamma": 0.1, "phi": 0.9, "seasonal_periods": 7,
            "initial_level": 40.0, "initial_trend": 0.2,
            "initial_seasonal": [5.0, -3.0, 0.0, 4.0, -6.0, 2.0, -2.0],
        });
        let o = j.as_object_mut().expect("object");
        if seasonal == "none" {
            o.remove("initial_seasonal");
            o.insert("seasonal_periods".into(), serde_json::json!(1));
        }
        if trend == "none" {
            o.remove("initial_trend");
        }
        Ets::from_json(j.to_string().as_bytes()).expect("model")
    }

    /// ETS models are linear with additive errors: the total's variance is exact, so
    /// its spread matches the exact total's, and its 95% quantile differs only by the
    /// gamma's skew (the exact total is normal).
    #[test]
    fn the_exact_spread_of_ets_totals() {
        use crate::forecast::{Forecaster, Series, error_response};
        let history: Vec<f64> = (0..90)
            .map(|i| 40.0 + ((i * 31) % 13) as f64 - 6.0)
            .collect();
        let series = Series {
            key: &[],
            values: &history,
            last_date: None,
        };
        for (trend, seasonal, alpha) in [
            ("none", "none", 0.3),
            ("none", "none", 0.05),
            ("add", "none", 0.3),
            ("damped", "add", 0.2),
            ("none", "add", 0.1),
        ] {
            let m = ets(trend, seasonal, alpha);
            let daily = Forecaster::forecast(&m, &series, 14, &[0.1, 0.9]).expect("forecast");
            let (q_lo, q_hi) = (&daily.quantiles[0], &daily.quantiles[1]);
            let spread = daily_spread(q_lo[0], q_hi[0], 0.1, 0.9);
            let response = error_response(&m, &series, &daily, spread).expect("response");
            let approx = total_from_daily(&daily.mean, q_lo, q_hi, 0.1, 0.9, &response);
            let exact = m.cumulative(&history, 14).expect("exact");
            let what = format!("{trend}/{seasonal} α={alpha}");
            assert!(
                (approx.mean() - exact.mean()).abs() < 1e-9 * exact.mean(),
                "{what}"
            );
            assert!(
                (approx.sd() / exact.sd() - 1.0).abs() < 1e-6,
                "{what}: spread"
            );
            let off = (approx.quantile(0.95) - exact.quantile(0.95)).abs() / exact.sd();
            assert!(
                off < 0.1,
                "{what}: 95% quantile off by {off:.4} of the spread"
            );
            // Without the response, the persistent errors are missed.
            let independent = total_from_daily(&daily.mean, q_lo, q_hi, 0.1, 0.9, &[]);
            assert!(
                independent.sd() < 0.8 * exact.sd(),
                "{what}: {}",
                independent.sd()
            );
        }
    }
}
