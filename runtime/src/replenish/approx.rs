//! Total demand over several days from a forecaster that only gives each day's quantiles
//! (the neural forecaster): an approximation, since the days' errors are correlated and
//! their correlation is not in the output.
//!
//! The daily spreads are read as those of a local-level model (ETS(A,N,N), simple
//! exponential smoothing), the simplest model whose errors persist: there the variance of
//! day `h` is `σ²(1 + α²(h − 1))`, and the total over `H` days is normal with variance
//! `σ² Σ_k (1 + α(H − k))²`. Each day's σ is its quantiles' spread over the normal's
//! (`(q_hi − q_lo)/(z_hi − z_lo)`); σ² is day 1's, α² the least-squares fit of the growth
//! of the others'. The mean is the sum of the daily means.
//!
//! How good it is (`approx` tests, against exact totals of ETS models whose daily
//! quantiles it is given): exact for a local level; for trended and seasonal models the
//! 95% quantile of a 14-day total is within a few percent of the total's spread.

use super::Demand;
use crate::normal::normal_quantile;

/// The total of a daily forecast's days, from its means and its quantiles at levels `lo`
/// (`q_lo`, one per day) and `hi` (`q_hi`).
pub fn total_from_daily(means: &[f64], q_lo: &[f64], q_hi: &[f64], lo: f64, hi: f64) -> Demand {
    let days = means.len();
    let mean: f64 = means.iter().sum();
    let width = normal_quantile(hi) - normal_quantile(lo);
    let var: Vec<f64> = q_lo
        .iter()
        .zip(q_hi)
        .map(|(a, b)| ((b - a).max(0.0) / width).powi(2))
        .collect();
    let Some(&first) = var.first().filter(|v| **v > 0.0) else {
        return Demand::normal(mean, 0.0);
    };
    // α² by least squares through the origin: var_h / σ² − 1 = α² (h − 1).
    let (num, den) = var
        .iter()
        .enumerate()
        .skip(1)
        .fold((0.0, 0.0), |(n, d), (i, v)| {
            let x = i as f64;
            (n + x * (v / first - 1.0), d + x * x)
        });
    let alpha = if den > 0.0 {
        (num / den).max(0.0).sqrt()
    } else {
        0.0
    };
    let weight: f64 = (1..=days)
        .map(|k| (1.0 + alpha * (days - k) as f64).powi(2))
        .sum();
    Demand::normal(mean, (first * weight).sqrt())
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

    #[test]
    fn exact_for_a_local_level_and_close_for_the_others() {
        let history: Vec<f64> = (0..90)
            .map(|i| 40.0 + ((i * 31) % 13) as f64 - 6.0)
            .collect();
        for (trend, seasonal, alpha, tolerance) in [
            ("none", "none", 0.3, 1e-9),
            ("none", "none", 0.05, 1e-9),
            ("add", "none", 0.3, 0.05),
            ("damped", "add", 0.2, 0.05),
            ("none", "add", 0.1, 0.05),
        ] {
            let m = ets(trend, seasonal, alpha);
            let daily = m.forecast(&history, 14, &[0.1, 0.9]).expect("forecast");
            let approx = total_from_daily(
                &daily.mean,
                &daily.quantiles[0],
                &daily.quantiles[1],
                0.1,
                0.9,
            );
            let exact = m.cumulative(&history, 14).expect("exact");
            assert!((approx.mean() - exact.mean()).abs() < 1e-9 * exact.mean().abs());
            let off = (approx.quantile(0.95) - exact.quantile(0.95)).abs() / exact.sd();
            assert!(
                off <= tolerance,
                "{trend}/{seasonal} α={alpha}: off by {off:.4} of the spread"
            );
        }
    }
}
