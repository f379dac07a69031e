//! The distribution of an ETS model's total demand over the next `days` days, which a
//! replenishment decision needs (the sum of daily quantiles is not the quantile of the
//! sum: daily errors carry over through the states).
//!
//! Additive models (no seasonality or additive seasonality) are linear in their errors:
//! `y_{T+h} = ŷ_h + ε_{T+h} + Σ_{j<h} c_j ε_{T+h−j}`, where `c_j` is how much a unit error
//! today moves the mean `j` days later. The total is then exactly normal, with mean
//! `Σ ŷ_h` and variance `σ² Σ_k (1 + c_1 + … + c_{H−k})²`. The `c_j` are read off the
//! model itself: one filter step with an error of 1 against one with an error of 0 (the
//! same class-1 formulas as the daily intervals, whose `v(h) = 1 + Σ c_j²`). A
//! multiplicative season has no closed form: the totals of seeded simulated paths.

use super::{Ets, PATHS, Seasonal, SplitMix, State, mean_square};
use crate::Result;
use crate::replenish::Demand;

impl Ets {
    /// Total demand over the `days` days after `history` (0 days: none).
    pub fn cumulative(&self, history: &[f64], days: usize) -> Result<Demand> {
        let (state, sse) = self.filter(history)?;
        Ok(self.cumulative_from(&state, mean_square(sse, history.len()), days))
    }

    pub(super) fn cumulative_from(&self, state: &State, mse: f64, days: usize) -> Demand {
        if days == 0 {
            return Demand::normal(0.0, 0.0);
        }
        let mean: f64 = self.means(state, days).iter().sum();
        if self.spec.seasonal == Seasonal::Mul {
            return self.simulated_totals(state, mse, days);
        }
        let c = self.impulse_response(state, days);
        // Error k days ahead moves the total by 1 + c_1 + … + c_{days−k}.
        let mut prefix = vec![0.0; days];
        for j in 1..days {
            prefix[j] = prefix[j - 1] + c[j - 1];
        }
        let weight: f64 = (1..=days).map(|k| (1.0 + prefix[days - k]).powi(2)).sum();
        Demand::normal(mean, (mse * weight).sqrt())
    }

    /// `c_1 … c_{days−1}`: the means' response to a unit error one step ahead.
    fn impulse_response(&self, state: &State, days: usize) -> Vec<f64> {
        let yhat = self.predict(state).0;
        let (mut hit, mut calm) = (state.clone(), state.clone());
        self.step(&mut hit, yhat + 1.0);
        self.step(&mut calm, yhat);
        let (a, b) = (self.means(&hit, days - 1), self.means(&calm, days - 1));
        a.iter().zip(&b).map(|(x, y)| x - y).collect()
    }

    /// Totals of simulated paths (normal errors with the in-sample σ, a fixed seed).
    fn simulated_totals(&self, state: &State, mse: f64, days: usize) -> Demand {
        let sigma = mse.sqrt();
        let mut rng = SplitMix(0x0005_eed0_fe75);
        let totals = (0..PATHS)
            .map(|_| {
                let mut s = state.clone();
                (0..days)
                    .map(|_| {
                        let y = self.predict(&s).0 + sigma * rng.normal();
                        self.step(&mut s, y);
                        y
                    })
                    .sum()
            })
            .collect();
        Demand::samples(totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(trend: &str, seasonal: &str) -> Ets {
        let json = serde_json::json!({
            "error": "add", "trend": trend, "seasonal": seasonal,
            "alpha": 0.3, "beta": 0.05, "gamma": 0.1, "phi": 0.9,
            "seasonal_periods": 7,
            "initial_level": 50.0, "initial_trend": 0.4,
            "initial_seasonal": [1.1, 0.9, 1.0, 1.2, 0.8, 1.05, 0.95],
        });
        let mut j = json;
        if seasonal == "none" {
            j.as_object_mut().map(|o| o.remove("initial_seasonal"));
            j["seasonal_periods"] = serde_json::json!(1);
        }
        if seasonal == "add" {
            j["initial_seasonal"] = serde_json::json!([5.0, -3.0, 0.0, 4.0, -6.0, 2.0, -2.0]);
        }
        if trend == "none" {
            j.as_object_mut().map(|o| o.remove("initial_trend"));
        }
        Ets::from_json(j.to_string().as_bytes()).expect("model")
    }

    fn history(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                50.0 + 0.3 * i as f64 + 6.0 * ((i % 7) as f64 - 3.0) / 3.0 + ((i * 37) % 11) as f64
                    - 5.0
            })
            .collect()
    }

    /// Totals of seeded simulated paths of any model, for checking the closed form.
    fn simulate(m: &Ets, h: &[f64], days: usize, paths: usize) -> Demand {
        let (state, sse) = m.filter(h).expect("filter");
        let sigma = mean_square(sse, h.len()).sqrt();
        let mut rng = SplitMix(42);
        Demand::samples(
            (0..paths)
                .map(|_| {
                    let mut s = state.clone();
                    (0..days)
                        .map(|_| {
                            let y = m.predict(&s).0 + sigma * rng.normal();
                            m.step(&mut s, y);
                            y
                        })
                        .sum()
                })
                .collect(),
        )
    }

    #[test]
    fn additive_totals_are_exact_and_match_simulation() {
        let h = history(120);
        for (trend, seasonal) in [
            ("none", "none"),
            ("add", "none"),
            ("damped", "add"),
            ("add", "add"),
        ] {
            let m = model(trend, seasonal);
            let (state, sse) = m.filter(&h).expect("filter");
            let mse = mean_square(sse, h.len());
            // One day is the daily forecast; the responses agree with the daily variance.
            let one = m.cumulative(&h, 1).expect("total");
            assert!((one.sd() - mse.sqrt()).abs() < 1e-9, "{trend}/{seasonal}");
            let c = m.impulse_response(&state, 20);
            for d in 1..=20usize {
                let v = 1.0 + c[..d - 1].iter().map(|x| x * x).sum::<f64>();
                assert!(
                    (v - m.relative_variance(d as f64)).abs() < 1e-9 * v,
                    "{trend}/{seasonal} v({d})"
                );
            }
            let exact = m.cumulative(&h, 14).expect("total");
            let sim = simulate(&m, &h, 14, 40_000);
            assert!(
                (exact.mean() - sim.mean()).abs() < 0.02 * exact.sd(),
                "{trend}/{seasonal} mean"
            );
            assert!(
                (exact.sd() / sim.sd() - 1.0).abs() < 0.02,
                "{trend}/{seasonal}: {} vs {}",
                exact.sd(),
                sim.sd()
            );
            for p in [0.5, 0.9, 0.95] {
                assert!(
                    (exact.quantile(p) - sim.quantile(p)).abs() < 0.05 * exact.sd(),
                    "{trend}/{seasonal} q{p}"
                );
            }
            // Not the sum of the daily quantiles, which treats the days' errors as moving
            // together: it overstates the total's spread unless they nearly do.
            let daily = m.forecast(&h, 14, &[0.95]).expect("forecast");
            let summed: f64 = daily.quantiles[0].iter().sum();
            assert!(summed > exact.quantile(0.95), "{trend}/{seasonal}");
            if trend == "none" {
                assert!(
                    summed > exact.quantile(0.95) + 0.5 * exact.sd(),
                    "{seasonal}"
                );
            }
        }
    }

    #[test]
    fn a_multiplicative_season_totals_simulated_paths() {
        let m = model("add", "mul");
        let h = history(120);
        let total = m.cumulative(&h, 10).expect("total");
        assert!(matches!(&total, Demand::Samples(v) if v.len() == PATHS));
        let again = m.cumulative(&h, 10).expect("total");
        assert_eq!(total, again, "seeded: the same answer every time");
        let sim = simulate(&m, &h, 10, 40_000);
        assert!((total.mean() / sim.mean() - 1.0).abs() < 0.01);
        assert!((total.sd() / sim.sd() - 1.0).abs() < 0.05);
        assert_eq!(m.cumulative(&h, 0).expect("none"), Demand::normal(0.0, 0.0));
    }
}
