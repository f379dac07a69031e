//! Parity with XGBoost itself: every fixture under `tests/fixtures/xgboost/` was trained
//! and predicted by xgboost (2.x and 3.x, see `make_fixtures.py`); the runtime must give
//! the same predictions and margins to 1e-6 absolute on every row.

use std::path::{Path, PathBuf};

use mercator_runtime::kinds::xgboost::{OutputValue, XgbModel};
use mercator_runtime::{DType, Model, Tensor, TensorData, TensorSpec};
use serde::Deserialize;

const TOLERANCE: f64 = 1e-6;

#[derive(Deserialize)]
struct Expected {
    xgboost_version: String,
    objective: String,
    inputs: Vec<Vec<Option<f32>>>,
    predictions: serde_json::Value,
    margins: serde_json::Value,
}

fn flatten(v: &serde_json::Value) -> Vec<f64> {
    match v {
        serde_json::Value::Array(items) => items.iter().flat_map(flatten).collect(),
        serde_json::Value::Number(n) => vec![n.as_f64().expect("number")],
        other => panic!("unexpected {other}"),
    }
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xgboost");
    let mut models: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".model.json"))
        .collect();
    models.sort();
    models
}

fn spec(name: &str, shape: Vec<i64>) -> TensorSpec {
    TensorSpec {
        name: name.into(),
        datatype: DType::F32,
        shape,
        allow_nan: true,
    }
}

#[test]
fn matches_xgboost_on_every_fixture() {
    let models = fixtures();
    assert!(
        models.len() >= 34,
        "expected fixtures from xgboost 2.x and 3.x, found {}",
        models.len()
    );
    let mut majors = std::collections::BTreeSet::new();
    for model_path in models {
        let expected_path = PathBuf::from(
            model_path
                .to_string_lossy()
                .replace(".model.json", ".expected.json"),
        );
        let expected: Expected =
            serde_json::from_slice(&std::fs::read(&expected_path).expect("expected file"))
                .expect("expected json");
        majors.insert(
            expected
                .xgboost_version
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string(),
        );
        let json = std::fs::read(&model_path).expect("model file");
        let summary = mercator_runtime::kinds::xgboost::summarize(&json).expect("summary");
        assert_eq!(summary.objective, expected.objective);

        let rows = expected.inputs.len();
        let width = summary.num_feature;
        let classes = summary.num_class.max(1) as i64;
        let pred_shape = if expected.objective == "multi:softprob" {
            vec![-1, classes]
        } else {
            vec![-1]
        };
        let margin_shape = if classes > 1 {
            vec![-1, classes]
        } else {
            vec![-1]
        };
        let model = XgbModel::load(
            &json,
            vec![spec("features", vec![-1, width as i64])],
            vec![spec("prediction", pred_shape), spec("margin", margin_shape)],
            vec![OutputValue::Prediction, OutputValue::Margin],
        )
        .unwrap_or_else(|e| panic!("{}: {e}", model_path.display()));

        let flat: Vec<f32> = expected
            .inputs
            .iter()
            .flatten()
            .map(|v| v.unwrap_or(f32::NAN))
            .collect();
        let input = Tensor::new(vec![rows, width], TensorData::F32(flat)).expect("tensor");
        let out = model.infer(&[input], &[0, 1]).expect("infer");
        for (tensor, (what, want)) in out.iter().zip([
            ("prediction", &expected.predictions),
            ("margin", &expected.margins),
        ]) {
            let want = flatten(want);
            let TensorData::F32(got) = &tensor.data else {
                panic!("f32 output")
            };
            assert_eq!(
                got.len(),
                want.len(),
                "{} {what}: length",
                model_path.display()
            );
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (f64::from(g) - w).abs() <= TOLERANCE,
                    "{} {what}[{i}]: got {g}, xgboost {w}",
                    model_path.display()
                );
            }
        }
    }
    assert!(
        majors.contains("2") && majors.contains("3"),
        "fixtures from both majors: {majors:?}"
    );
}

#[test]
fn inputs_of_several_datatypes_concatenate_into_one_row() {
    let path = fixtures()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("regression-v3"))
        .expect("fixture");
    let json = std::fs::read(&path).expect("model");
    let single = XgbModel::load(
        &json,
        vec![spec("x", vec![-1, 8])],
        vec![spec("y", vec![-1])],
        vec![OutputValue::Prediction],
    )
    .expect("load");
    let split = XgbModel::load(
        &json,
        vec![
            TensorSpec {
                name: "a".into(),
                datatype: DType::F64,
                shape: vec![-1, 5],
                allow_nan: true,
            },
            TensorSpec {
                name: "b".into(),
                datatype: DType::I32,
                shape: vec![-1, 3],
                allow_nan: true,
            },
        ],
        vec![TensorSpec {
            name: "y".into(),
            datatype: DType::F64,
            shape: vec![-1, 1],
            allow_nan: true,
        }],
        vec![OutputValue::Prediction],
    )
    .expect("load split");
    let row_a = [1.5f64, -2.0, 0.25, 3.0, -1.0];
    let row_b = [2i32, -1, 4];
    let full: Vec<f32> = row_a
        .iter()
        .map(|&v| v as f32)
        .chain(row_b.iter().map(|&v| v as f32))
        .collect();
    let want = single
        .infer(
            &[Tensor::new(vec![1, 8], TensorData::F32(full)).expect("t")],
            &[0],
        )
        .expect("infer");
    let got = split
        .infer(
            &[
                Tensor::new(vec![1, 5], TensorData::F64(row_a.to_vec())).expect("a"),
                Tensor::new(vec![1, 3], TensorData::I32(row_b.to_vec())).expect("b"),
            ],
            &[0],
        )
        .expect("infer split");
    let (TensorData::F32(w), TensorData::F64(g)) = (&want[0].data, &got[0].data) else {
        panic!("types")
    };
    assert_eq!(got[0].shape, vec![1, 1]);
    assert_eq!(g[0], f64::from(w[0]));
}

#[test]
fn signature_mismatches_are_refused() {
    let path = fixtures()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("binary_deep-v3"))
        .expect("fixture");
    let json = std::fs::read(&path).expect("model");
    let err = XgbModel::load(
        &json,
        vec![spec("x", vec![-1, 7])],
        vec![spec("p", vec![-1])],
        vec![OutputValue::Prediction],
    )
    .expect_err("width");
    assert!(err.to_string().contains("7 features"), "{err}");
    let err = XgbModel::load(
        &json,
        vec![spec("x", vec![-1, 8])],
        vec![spec("p", vec![-1, 3])],
        vec![OutputValue::Prediction],
    )
    .expect_err("output shape");
    assert!(err.to_string().contains("output 'p'"), "{err}");
    let mut corrupted = String::from_utf8(json).expect("utf8");
    corrupted = corrupted.replacen("\"left_children\":[1,", "\"left_children\":[0,", 1);
    let err = XgbModel::load(
        corrupted.as_bytes(),
        vec![spec("x", vec![-1, 8])],
        vec![spec("p", vec![-1])],
        vec![OutputValue::Prediction],
    )
    .expect_err("cycle");
    assert!(err.to_string().contains("bad child"), "{err}");
}
