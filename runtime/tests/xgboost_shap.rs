//! TreeSHAP parity with xgboost itself: for every parity model under
//! `tests/fixtures/xgboost/` (trained by xgboost 2.x and 3.x: NaNs with default
//! directions, deep trees, multi-class, a non-default `base_score`, dart, a random
//! forest), `make_contribs.py` recorded xgboost's `pred_contribs=True` on 100 held-out
//! rows; the runtime must give every contribution to 1e-5, and each row's contributions
//! must sum to its margin.

use std::path::{Path, PathBuf};

use mercator_runtime::kinds::xgboost::{OutputValue, XgbModel};
use mercator_runtime::{DType, TensorSpec};
use serde::Deserialize;

const TOLERANCE: f64 = 1e-5;

#[derive(Deserialize)]
struct Inputs {
    inputs: Vec<Vec<Option<f32>>>,
}

#[derive(Deserialize)]
struct Contribs {
    xgboost_version: String,
    contributions: serde_json::Value,
    margins: serde_json::Value,
}

fn flatten(v: &serde_json::Value) -> Vec<f64> {
    match v {
        serde_json::Value::Array(items) => items.iter().flat_map(flatten).collect(),
        serde_json::Value::Number(n) => vec![n.as_f64().expect("number")],
        other => panic!("unexpected {other}"),
    }
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xgboost");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".contribs.json"))
        .collect();
    cases.sort();
    cases
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(path.to_string_lossy().replace(".contribs.json", suffix))
}

#[test]
fn contributions_match_xgboost_and_sum_to_the_margin() {
    let cases = cases();
    assert!(
        cases.len() >= 34,
        "contributions from xgboost 2.x and 3.x, found {}",
        cases.len()
    );
    let mut majors = std::collections::BTreeSet::new();
    for case in cases {
        let name = case.display().to_string();
        let want: Contribs =
            serde_json::from_slice(&std::fs::read(&case).expect("contribs")).expect("json");
        majors.insert(
            want.xgboost_version
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string(),
        );
        let inputs: Inputs = serde_json::from_slice(
            &std::fs::read(with_suffix(&case, ".expected.json")).expect("inputs"),
        )
        .expect("json");
        let json = std::fs::read(with_suffix(&case, ".model.json")).expect("model");
        let summary = mercator_runtime::kinds::xgboost::summarize(&json).expect("summary");
        let width = summary.num_feature;
        let groups = summary.num_class.max(1);
        let margin_shape = if groups > 1 {
            vec![-1, groups as i64]
        } else {
            vec![-1]
        };
        let model = XgbModel::load(
            &json,
            vec![TensorSpec {
                name: "features".into(),
                datatype: DType::F32,
                shape: vec![-1, width as i64],
                allow_nan: true,
            }],
            vec![TensorSpec {
                name: "margin".into(),
                datatype: DType::F32,
                shape: margin_shape,
                allow_nan: false,
            }],
            vec![OutputValue::Margin],
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let rows = flatten(&want.margins).len() / groups;
        let x: Vec<f32> = inputs.inputs[..rows]
            .iter()
            .flatten()
            .map(|v| v.unwrap_or(f32::NAN))
            .collect();
        let got = model
            .contributions(&x)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = flatten(&want.contributions);
        assert_eq!(
            got.len(),
            expected.len(),
            "{name}: [rows][groups][features + 1]"
        );
        for (i, (&g, &w)) in got.iter().zip(&expected).enumerate() {
            assert!(
                (f64::from(g) - w).abs() <= TOLERANCE,
                "{name}: contribution {i} (row {}, column {}): got {g}, xgboost {w}",
                i / (groups * (width + 1)),
                i % (width + 1)
            );
        }
        // Every row, every group: the bias and the contributions add up to the margin.
        let mut margins = vec![0f32; rows * groups];
        model.margins(&x, &mut margins);
        for (k, (phi, &margin)) in got.chunks_exact(width + 1).zip(&margins).enumerate() {
            let sum: f64 = phi.iter().map(|&p| f64::from(p)).sum();
            assert!(
                (sum - f64::from(margin)).abs() <= 1e-4 * (1.0 + f64::from(margin).abs()),
                "{name}: row {} group {}: contributions sum to {sum}, margin {margin}",
                k / groups,
                k % groups
            );
        }
    }
    assert!(
        majors.contains("2") && majors.contains("3"),
        "both majors: {majors:?}"
    );
}

fn fixture(name: &str) -> (Vec<u8>, usize, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/xgboost")
        .join(name);
    let json = std::fs::read(path).expect("model");
    let summary = mercator_runtime::kinds::xgboost::summarize(&json).expect("summary");
    (json, summary.num_feature, summary.num_class.max(1))
}

fn f32_spec(name: &str, shape: Vec<i64>) -> TensorSpec {
    TensorSpec {
        name: name.into(),
        datatype: DType::F32,
        shape,
        allow_nan: true,
    }
}

/// A manifest may declare a `contributions` output; V2 inference then returns it beside
/// the margin, `[N, classes, F + 1]` for a multi-class model, equal to `contributions`.
#[test]
fn a_contributions_output_is_served_beside_the_margin() {
    use mercator_runtime::{Model, Tensor, TensorData};
    for (file, shape) in [
        ("binary_shallow_nan-v3.model.json", vec![-1, 9]),
        ("multiclass_softprob-v2.model.json", vec![-1, 4, 9]),
    ] {
        let (json, width, groups) = fixture(file);
        let margin = if groups > 1 {
            vec![-1, groups as i64]
        } else {
            vec![-1]
        };
        let model = XgbModel::load(
            &json,
            vec![f32_spec("x", vec![-1, width as i64])],
            vec![f32_spec("margin", margin), f32_spec("why", shape.clone())],
            vec![OutputValue::Margin, OutputValue::Contributions],
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        let x: Vec<f32> = (0..3 * width)
            .map(|i| (i as f32 * 0.37).sin() * 4.0)
            .collect();
        let input = Tensor::new(vec![3, width], TensorData::F32(x.clone())).expect("tensor");
        let out = model.infer(&[input], &[1, 0]).expect("infer");
        let mut want_shape = vec![3usize];
        want_shape.extend(shape[1..].iter().map(|&d| d as usize));
        assert_eq!(out[0].shape, want_shape, "{file}");
        let TensorData::F32(got) = &out[0].data else {
            panic!("f32")
        };
        assert_eq!(
            got,
            &model.contributions(&x).expect("contributions"),
            "{file}"
        );

        // The wrong shape is refused at load, naming the output and the shape it needs.
        let err = XgbModel::load(
            &json,
            vec![f32_spec("x", vec![-1, width as i64])],
            vec![f32_spec("why", vec![-1, width as i64])],
            vec![OutputValue::Contributions],
        )
        .expect_err("a contributions output without the bias column");
        assert!(
            err.to_string().contains("'why'")
                && err.to_string().contains(&format!("{}]", width + 1)),
            "{err}"
        );
    }
}

/// A model saved without node covers still predicts, but cannot declare contributions.
#[test]
fn a_model_without_covers_predicts_but_cannot_explain() {
    let (json, width, _) = fixture("regression-v3.model.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&json).expect("json");
    let trees = doc["learner"]["gradient_booster"]["model"]["trees"]
        .as_array_mut()
        .expect("trees");
    for tree in trees {
        tree.as_object_mut().expect("tree").remove("sum_hessian");
    }
    let json = serde_json::to_vec(&doc).expect("json");
    let load = |values: Vec<OutputValue>, shape: Vec<i64>| {
        XgbModel::load(
            &json,
            vec![f32_spec("x", vec![-1, width as i64])],
            vec![f32_spec("out", shape)],
            values,
        )
    };
    let model = load(vec![OutputValue::Margin], vec![-1]).expect("predicts");
    assert!(model.contributions(&vec![0.0; width]).is_err());
    let err = load(vec![OutputValue::Contributions], vec![-1, width as i64 + 1])
        .expect_err("no covers, no contributions");
    assert!(err.to_string().contains("sum_hessian"), "{err}");
}
