//! ETS forecasts match statsmodels': models fitted by `ETSModel` on committed series
//! (`tests/fixtures/ets/make_fixtures.py`) give the same in-sample predictions and 28-day
//! forecasts to 1e-6 relative, and the same prediction intervals where statsmodels
//! computes them exactly (additive seasonality or none). Where it simulates
//! (multiplicative seasonality), both simulate: the intervals agree within sampling
//! error.

mod common;

use common::{close, numbers};

use mercator_runtime::kinds::ets::Ets;

fn read(name: &str) -> Vec<u8> {
    common::read("tests/fixtures/ets", name)
}

const MODELS: [&str; 8] = ["ann", "aan", "aadn", "ana", "aaa", "aada", "aam", "aadm"];

#[test]
fn forecasts_and_intervals_match_statsmodels() {
    for name in MODELS {
        let ets = Ets::from_json(&read(&format!("{name}.ets.json"))).expect(name);
        let want: serde_json::Value =
            serde_json::from_slice(&read(&format!("{name}.expected.json"))).expect("json");
        let history = numbers(&want["history"]);
        close(
            &ets.fitted(&history).expect("fitted"),
            &numbers(&want["fitted"]),
            1e-6,
            &format!("{name} fitted"),
        );
        let alphas = [0.2, 0.5, 0.8];
        let quantiles: Vec<f64> = alphas
            .iter()
            .flat_map(|a| [a / 2.0, 1.0 - a / 2.0])
            .collect();
        let forecast = ets.forecast(&history, 28, &quantiles).expect("forecast");
        close(
            &forecast.mean,
            &numbers(&want["forecast"]),
            1e-6,
            &format!("{name} forecast"),
        );
        let mse = ets.mse(&history).expect("mse");
        assert!((mse - want["mse"].as_f64().expect("mse")).abs() <= 1e-6 * mse);
        let exact = want["interval_method"] == "exact";
        for (i, alpha) in alphas.iter().enumerate() {
            let interval = &want["intervals"][alpha.to_string()];
            let (lower, upper) = (numbers(&interval["lower"]), numbers(&interval["upper"]));
            let (ours_lower, ours_upper) =
                (&forecast.quantiles[2 * i], &forecast.quantiles[2 * i + 1]);
            if exact {
                close(ours_lower, &lower, 1e-6, &format!("{name} lower {alpha}"));
                close(ours_upper, &upper, 1e-6, &format!("{name} upper {alpha}"));
            } else {
                // Two independent simulations (statsmodels draws 1,000 paths): agree
                // within a tenth of the 80% interval's width, about a quarter of σ_h,
                // several standard errors of a sampled quantile.
                let wide = &want["intervals"]["0.2"];
                let (wide_lower, wide_upper) = (numbers(&wide["lower"]), numbers(&wide["upper"]));
                for h in 0..28 {
                    let width = wide_upper[h] - wide_lower[h];
                    assert!(
                        (ours_lower[h] - lower[h]).abs() <= 0.1 * width
                            && (ours_upper[h] - upper[h]).abs() <= 0.1 * width,
                        "{name} {alpha} step {h}: [{}, {}] vs simulated [{}, {}]",
                        ours_lower[h],
                        ours_upper[h],
                        lower[h],
                        upper[h]
                    );
                }
            }
        }
    }
}

#[test]
fn quantiles_do_not_cross_and_repeat() {
    let ets = Ets::from_json(&read("aadm.ets.json")).expect("aadm");
    let want: serde_json::Value =
        serde_json::from_slice(&read("aadm.expected.json")).expect("json");
    let history = numbers(&want["history"]);
    let qs = [0.05, 0.1, 0.5, 0.9, 0.95];
    let a = ets.forecast(&history, 14, &qs).expect("forecast");
    let b = ets.forecast(&history, 14, &qs).expect("again");
    assert_eq!(a, b, "simulation is seeded: the same answer twice");
    for h in 0..14 {
        for pair in a.quantiles.windows(2) {
            assert!(pair[0][h] <= pair[1][h], "step {h}: quantiles cross");
        }
    }
}

#[test]
fn bad_artifacts_and_inputs_are_refused() {
    let good: serde_json::Value = serde_json::from_slice(&read("aada.ets.json")).expect("json");
    for (change, needle) in [
        (serde_json::json!({"alpha": 1.5}), "alpha"),
        (serde_json::json!({"phi": 0.0}), "phi"),
        (serde_json::json!({"error": "mul"}), "only 'add'"),
        (
            serde_json::json!({"initial_seasonal": [1.0, 2.0]}),
            "initial_seasonal",
        ),
        (serde_json::json!({"trend": "quadratic"}), "quadratic"),
        (serde_json::json!({"surprise": 1}), "surprise"),
    ] {
        let mut bad = good.clone();
        for (k, v) in change.as_object().expect("object") {
            bad[k] = v.clone();
        }
        let err = Ets::from_json(bad.to_string().as_bytes())
            .expect_err(needle)
            .to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let ets = Ets::from_json(good.to_string().as_bytes()).expect("good");
    assert!(ets.forecast(&[1.0, f64::NAN, 2.0], 3, &[0.5]).is_err());
    assert!(ets.forecast(&[1.0, 2.0], 3, &[1.0]).is_err());
    assert!(ets.forecast(&[1.0, 2.0], 3, &[0.0]).is_err());
}
