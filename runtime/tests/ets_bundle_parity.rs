//! The demo's ETS bundle (one model per SKU-location, `examples/demand/train_ets.py`)
//! forecasts as statsmodels does: from the end of training, and from the end of the full
//! series after filtering the 28 days the models never saw (statsmodels smoothing the
//! whole series with the fitted parameters), means and 80% intervals to 1e-6 relative.

mod common;

use common::{close, numbers};

use mercator_runtime::RuntimeError;
use mercator_runtime::forecast::{Forecaster, Series, parse_date};
use mercator_runtime::kinds::ets::EtsBundle;

fn read(name: &str) -> Vec<u8> {
    common::read("../examples/demand/ets", name)
}

fn key(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("key")
        .iter()
        .map(|p| p.as_str().expect("part").to_string())
        .collect()
}

#[test]
fn bundle_forecasts_match_statsmodels_from_both_origins() {
    let bundle = EtsBundle::from_json(&read("ets.json")).expect("bundle");
    assert_eq!(bundle.len(), 200);
    assert_eq!(bundle.key_parts(), 2);
    let expected: serde_json::Value =
        serde_json::from_slice(&read("expected.json")).expect("expected");
    let cases = expected["series"].as_array().expect("series");
    assert!(cases.len() >= 10);
    for case in cases {
        let key = key(&case["key"]);
        let history = numbers(&case["history"]);
        for (origin, len, date) in [
            ("from_train_end", history.len() - 28, "train_last_date"),
            ("from_full", history.len(), "full_last_date"),
        ] {
            let series = Series {
                key: &key,
                values: &history[..len],
                last_date: parse_date(case[date].as_str().expect("date")),
            };
            let f = bundle.forecast(&series, 28, &[0.1, 0.9]).expect("forecast");
            let want = &case[origin];
            let what = format!("{key:?} {origin}");
            close(
                &f.mean,
                &numbers(&want["mean"]),
                1e-6,
                &format!("{what} mean"),
            );
            close(
                &f.quantiles[0],
                &numbers(&want["q0.1"]),
                1e-6,
                &format!("{what} q0.1"),
            );
            close(
                &f.quantiles[1],
                &numbers(&want["q0.9"]),
                1e-6,
                &format!("{what} q0.9"),
            );
        }
    }
}

#[test]
fn bundle_refuses_what_it_cannot_forecast() {
    let bundle = EtsBundle::from_json(&read("ets.json")).expect("bundle");
    let key = vec!["SKU000".to_string(), "berlin".to_string()];
    let history = vec![10.0; 40];
    let at = |d: &str| parse_date(d);
    let call = |key: &[String], values: &[f64], last| {
        bundle.forecast(
            &Series {
                key,
                values,
                last_date: last,
            },
            7,
            &[0.5],
        )
    };
    let unknown = vec!["SKU999".to_string(), "berlin".to_string()];
    assert!(matches!(
        call(&unknown, &history, at("2026-10-31")),
        Err(RuntimeError::UnknownSeries(k)) if k == "SKU999/berlin"
    ));
    // Ends before the fit's last day (2026-10-03).
    let err = call(&key, &history, at("2026-09-30")).expect_err("before the fit");
    assert!(err.to_string().contains("before 2026-10-03"), "{err}");
    // 40 days cannot cover the 58 days since the fit.
    let err = call(&key, &history, at("2026-11-30")).expect_err("too short");
    assert!(err.to_string().contains("58 are needed"), "{err}");
    let err = call(&key, &history, None).expect_err("no date");
    assert!(err.to_string().contains("last_date"), "{err}");
    let mut gap = history.clone();
    gap[39] = f64::NAN;
    assert!(call(&key, &gap, at("2026-10-31")).is_err());
    // The fit's own last day: nothing to filter, any history length.
    assert!(call(&key, &[], at("2026-10-03")).is_ok());
}

#[test]
fn bad_bundles_are_refused_at_load() {
    let good = String::from_utf8(read("ets.json")).expect("utf-8");
    let doc: serde_json::Value = serde_json::from_str(&good).expect("json");
    let first = doc["series"][0].clone();
    for (bad, needle) in [
        (serde_json::json!({"series": []}), "at least one series"),
        (
            serde_json::json!({"series": [first, first]}),
            "listed twice",
        ),
        (
            serde_json::json!({"series": [first, {"key": ["x"], "last_date": "2026-10-03",
                "mse": 1.0, "nobs": 3, "ets": first["ets"]}]}),
            "1 parts",
        ),
        (
            serde_json::json!({"series": [{"key": ["x"], "last_date": "03/10/2026",
                "mse": 1.0, "nobs": 3, "ets": first["ets"]}]}),
            "YYYY-MM-DD",
        ),
        (
            serde_json::json!({"series": [{"key": ["x"], "last_date": "2026-10-03",
                "mse": -1.0, "nobs": 3, "ets": first["ets"]}]}),
            "mse",
        ),
        (
            serde_json::json!({"series": [{"key": ["x"], "last_date": "2026-10-03",
                "mse": 1.0, "nobs": 3, "ets": {"error": "mul"}}]}),
            "series[0]",
        ),
    ] {
        let err = EtsBundle::from_json(bad.to_string().as_bytes()).expect_err(needle);
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    assert!(EtsBundle::is_bundle(good.as_bytes()));
    assert!(!EtsBundle::is_bundle(br#"{"error": "add"}"#));
}

/// Total demand over several days from a bundle's series: its one-day total is the
/// one-day forecast (mean, and the 90% quantile statsmodels gives), its mean over 14
/// days the sum of the daily means, and its spread below the sum of daily spreads
/// unless the days' errors move together.
#[test]
fn bundle_totals_start_from_the_daily_forecast() {
    let bundle = EtsBundle::from_json(&read("ets.json")).expect("bundle");
    let expected: serde_json::Value =
        serde_json::from_slice(&read("expected.json")).expect("expected");
    for case in expected["series"].as_array().expect("series") {
        let key = key(&case["key"]);
        let history = numbers(&case["history"]);
        let series = Series {
            key: &key,
            values: &history,
            last_date: parse_date(case["full_last_date"].as_str().expect("date")),
        };
        let daily = bundle.forecast(&series, 14, &[0.9]).expect("forecast");
        let one = bundle.total_demand(&series, 1).expect("total");
        assert!((one.mean() - daily.mean[0]).abs() < 1e-9 * (1.0 + one.mean().abs()));
        assert!(
            (one.quantile(0.9) - daily.quantiles[0][0]).abs() < 1e-6 * (1.0 + one.mean().abs()),
            "{key:?}"
        );
        let two_weeks = bundle.total_demand(&series, 14).expect("total");
        let sum: f64 = daily.mean.iter().sum();
        assert!(
            (two_weeks.mean() - sum).abs() < 1e-9 * (1.0 + sum.abs()),
            "{key:?}"
        );
        let spreads: f64 = daily.quantiles[0]
            .iter()
            .zip(&daily.mean)
            .map(|(q, m)| q - m)
            .sum();
        assert!(
            two_weeks.quantile(0.9) - two_weeks.mean() <= spreads + 1e-9,
            "{key:?}"
        );
        assert!(two_weeks.sd() > one.sd(), "{key:?}");
    }
}
