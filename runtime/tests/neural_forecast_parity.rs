//! The demo's global neural forecaster (`examples/demand/train_nn.py`, PyTorch) gives
//! the Python reference's forecasts to 1e-5: scaling, weekday, net, rearranged and
//! interpolated quantiles, clamping; directly and through V2 `infer`.

mod common;

use common::{close, numbers};

use mercator_runtime::forecast::{Series, finish, parse_date};
use mercator_runtime::{Manifest, Tensor, TensorData};

fn read(name: &str) -> Vec<u8> {
    common::read("../examples/demand/net", name)
}

fn model() -> Box<dyn mercator_runtime::Model> {
    Manifest::parse(&read("mercator.json"))
        .expect("manifest")
        .build(&read("model.safetensors"))
        .expect("model")
}

#[test]
fn forecasts_match_pytorch_and_the_reference_postprocessing() {
    let model = model();
    let forecaster = model.forecaster().expect("a forecaster");
    assert_eq!(forecaster.max_horizon(), Some(28));
    let expected: serde_json::Value =
        serde_json::from_slice(&read("expected.json")).expect("expected");
    let cases = expected["series"].as_array().expect("series");
    assert!(cases.len() >= 10);
    let histories: Vec<Vec<f64>> = cases.iter().map(|c| numbers(&c["history"])).collect();
    let series: Vec<Series<'_>> = cases
        .iter()
        .zip(&histories)
        .map(|(c, h)| Series {
            key: &[],
            values: h,
            last_date: parse_date(c["last_date"].as_str().expect("date")),
        })
        .collect();
    let asked = numbers(&cases[0]["quantiles"]);
    // One by one, and as one batch: the same numbers.
    let batch = forecaster.forecast_batch(&series, 28, &asked);
    for ((case, s), batched) in cases.iter().zip(&series).zip(batch) {
        let mut f = forecaster.forecast(s, 28, &asked).expect("forecast");
        assert_eq!(&f, batched.as_ref().expect("batched"));
        finish(&mut f, &asked, true).expect("a finite forecast");
        let what = format!("{}", case["key"]);
        close(
            &f.mean,
            &numbers(&case["mean"]),
            1e-5,
            &format!("{what} mean"),
        );
        for (j, want) in case["values"]
            .as_array()
            .expect("values")
            .iter()
            .enumerate()
        {
            close(
                &f.quantiles[j],
                &numbers(want),
                1e-5,
                &format!("{what} q{}", asked[j]),
            );
        }
    }
}

#[test]
fn v2_infer_gives_the_same_forecasts() {
    let model = model();
    let expected: serde_json::Value =
        serde_json::from_slice(&read("expected.json")).expect("expected");
    let case = &expected["series"][0];
    let history: Vec<f32> = numbers(&case["history"])
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let n = history.len();
    // Two rows: the second padded with leading NaNs, which are skipped.
    let mut padded = vec![f32::NAN; 5];
    padded.extend(&history[5..]);
    let rows = [history.clone(), padded].concat();
    let date = case["last_date"]
        .as_str()
        .expect("date")
        .as_bytes()
        .to_vec();
    let out = model
        .infer(
            &[
                Tensor::new(vec![2, n], TensorData::F32(rows)).expect("history"),
                Tensor::new(vec![2], TensorData::Bytes(vec![date.clone(), date])).expect("date"),
            ],
            &[0, 1],
        )
        .expect("infer");
    assert_eq!(out[0].shape, [2, 28]);
    assert_eq!(out[1].shape, [2, 28, 3]);
    let TensorData::F32(mean) = &out[0].data else {
        panic!("FP32 mean")
    };
    let TensorData::F32(quantiles) = &out[1].data else {
        panic!("FP32 quantiles")
    };
    let mean: Vec<f64> = mean.iter().map(|&v| f64::from(v)).collect();
    close(&mean[..28], &numbers(&case["mean"]), 1e-5, "mean");
    close(&mean[28..], &numbers(&case["mean"]), 1e-5, "padded mean");
    let values = case["values"].as_array().expect("values");
    for (j, want) in values.iter().take(3).enumerate() {
        let got: Vec<f64> = (0..28).map(|h| f64::from(quantiles[h * 3 + j])).collect();
        close(&got, &numbers(want), 1e-5, &format!("quantile {j}"));
    }
}

#[test]
fn refuses_what_it_cannot_forecast() {
    let model = model();
    let f = model.forecaster().expect("a forecaster");
    let history = vec![5.0; 60];
    let last = parse_date("2026-10-03");
    let s = |values: &'static [f64]| Series {
        key: &[],
        values,
        last_date: last,
    };
    let short: &'static [f64] = &[1.0; 10];
    let err = f.forecast(&s(short), 7, &[0.5]).expect_err("too short");
    assert!(err.to_string().contains("the last 56"), "{err}");
    let err = f
        .forecast(
            &Series {
                key: &[],
                values: &history,
                last_date: None,
            },
            7,
            &[0.5],
        )
        .expect_err("no date");
    assert!(err.to_string().contains("last date"), "{err}");
    let err = f
        .forecast(
            &Series {
                key: &[],
                values: &history,
                last_date: last,
            },
            29,
            &[0.5],
        )
        .expect_err("too far");
    assert!(err.to_string().contains("at most 28"), "{err}");
    let err = mercator_runtime::forecast::check_quantiles(f, &[0.5, 0.99]).expect_err("level");
    assert!(err.to_string().contains("quantiles[1]"), "{err}");
    let mut gap = history.clone();
    gap[59] = f64::NAN;
    assert!(
        f.forecast(
            &Series {
                key: &[],
                values: &gap,
                last_date: last
            },
            7,
            &[0.5]
        )
        .is_err()
    );
    // A dead series (all zeros) has scale 1, not a division by zero.
    let zeros = vec![0.0; 56];
    let z = f
        .forecast(
            &Series {
                key: &[],
                values: &zeros,
                last_date: last,
            },
            7,
            &[0.5],
        )
        .expect("zeros");
    assert!(z.mean.iter().all(|v| v.is_finite()));
}

#[test]
fn bad_forecaster_sections_are_refused() {
    let good: serde_json::Value = serde_json::from_slice(&read("mercator.json")).expect("json");
    for (patch, needle) in [
        (serde_json::json!({"window": 0}), "at least 1"),
        (serde_json::json!({"levels": [0.5]}), "levels"),
        (serde_json::json!({"levels": [0.5, 0.1]}), "levels"),
        (
            serde_json::json!({"features": ["day_of_week"]}),
            "scaled_window",
        ),
        (
            serde_json::json!({"features": ["scaled_window", "scaled_window"]}),
            "twice",
        ),
        (
            serde_json::json!({"features": ["moon_phase"]}),
            "moon_phase",
        ),
        (serde_json::json!({"window": 30}), "38 wide in, 224 out"),
    ] {
        let mut m = good.clone();
        for (k, v) in patch.as_object().expect("patch") {
            m["forecaster"][k] = v.clone();
        }
        let bytes = m.to_string();
        let err = Manifest::parse(bytes.as_bytes())
            .and_then(|m| m.build(&read("model.safetensors")))
            .expect_err(needle);
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
}
