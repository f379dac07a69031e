//! The `uplift` kind against the Python libraries that made it: the demo's T-learner
//! (`examples/churn/train_uplift.py`: two `XGBClassifier`s exported together by
//! `mercator.export.export_uplift`) must give each booster's `predict_proba` and their
//! difference to 1e-6 on held-out rows; boosters saved by other xgboost versions pair up
//! too; and what is not a pair of probability boosters is refused, named.

use std::path::Path;

use mercator_runtime::manifest::Manifest;
use mercator_runtime::{DType, Tensor, TensorData};
use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    inputs: Vec<Vec<Option<f32>>>,
    p_treated: Vec<f64>,
    p_control: Vec<f64>,
    uplift: Vec<f64>,
}

fn demo() -> (Manifest, Vec<u8>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/churn/uplift");
    let manifest = Manifest::parse(&std::fs::read(dir.join("mercator.json")).expect("manifest"))
        .expect("valid manifest");
    let weights = std::fs::read(dir.join(&manifest.weights)).expect("weights");
    (manifest, weights)
}

fn rows(inputs: &[Vec<Option<f32>>]) -> Tensor {
    let width = inputs[0].len();
    let data: Vec<f32> = inputs
        .iter()
        .flat_map(|r| r.iter().map(|v| v.unwrap_or(f32::NAN)))
        .collect();
    Tensor::new(vec![inputs.len(), width], TensorData::F32(data)).expect("tensor")
}

fn values(t: &Tensor) -> Vec<f64> {
    match &t.data {
        TensorData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        TensorData::F64(v) => v.clone(),
        other => panic!("not floating point: {other:?}"),
    }
}

#[test]
fn the_demo_t_learner_equals_its_classifiers_predict_proba() {
    let (manifest, weights) = demo();
    assert_eq!(manifest.kind, "uplift");
    let model = manifest.build(&weights).expect("builds");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/churn/uplift");
    let expected: Expected =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("expected"))
            .expect("expected.json");
    let names: Vec<&str> = manifest.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["p_treated", "p_control", "uplift"]);
    let out = model
        .infer(&[rows(&expected.inputs)], &[0, 1, 2])
        .expect("infers");
    for (got, want, what) in [
        (values(&out[0]), &expected.p_treated, "p_treated"),
        (values(&out[1]), &expected.p_control, "p_control"),
        (values(&out[2]), &expected.uplift, "uplift"),
    ] {
        assert_eq!(got.len(), want.len(), "{what}");
        for (row, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-6, "{what} row {row}: {g} vs {w}");
        }
    }
    // Churn is the outcome the voucher should make less likely: uplift = control − treated.
    let (t, c, u) = (values(&out[0]), values(&out[1]), values(&out[2]));
    assert!(
        (0..u.len()).all(|i| (u[i] - (c[i] - t[i])).abs() < 1e-6),
        "the fall in churn"
    );
    assert!(u.iter().any(|&v| v > 0.05), "some customers are helped");
}

/// A bundle of two fixtures trained and saved by xgboost itself.
fn bundle(treated: &str, control: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xgboost");
    let read = |name: &str| {
        String::from_utf8(std::fs::read(dir.join(format!("{name}.model.json"))).expect("fixture"))
            .expect("utf-8")
    };
    format!(
        r#"{{"format": "mercator-uplift", "treated": {}, "control": {}}}"#,
        read(treated),
        read(control)
    )
    .into_bytes()
}

fn manifest(favourable: u8, width: usize) -> Manifest {
    Manifest::parse(
        serde_json::json!({
            "kind": "uplift", "weights": "uplift.json", "favourable_outcome": favourable,
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, width]}],
            "outputs": [{"name": "uplift", "datatype": "FP64", "shape": [-1, 1]},
                        {"name": "p_treated", "datatype": "FP32", "shape": [-1]}],
        })
        .to_string()
        .as_bytes(),
    )
    .expect("valid manifest")
}

#[test]
fn boosters_from_xgboost_2_and_3_pair_up_with_their_own_numbers() {
    #[derive(Deserialize)]
    struct Fixture {
        inputs: Vec<Vec<Option<f32>>>,
        predictions: Vec<f64>,
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xgboost");
    let fixture: Fixture = serde_json::from_slice(
        &std::fs::read(dir.join("binary_deep-v2.expected.json")).expect("expected"),
    )
    .expect("fixture");
    let control = mercator_runtime::kinds::xgboost::XgbModel::load(
        &std::fs::read(dir.join("binary_stumps_base_score-v3.model.json")).expect("fixture"),
        manifest(1, 8).input_specs(),
        vec![mercator_runtime::TensorSpec {
            name: "p".into(),
            datatype: DType::F32,
            shape: vec![-1],
            allow_nan: true,
        }],
        vec![mercator_runtime::manifest::OutputValue::Prediction],
    )
    .expect("control alone");
    let x = rows(&fixture.inputs);
    let TensorData::F32(flat) = &x.data else {
        panic!("f32")
    };
    let p_control = control.predict(flat);
    for favourable in [1u8, 0] {
        let m = manifest(favourable, 8);
        let model = m
            .build(&bundle("binary_deep-v2", "binary_stumps_base_score-v3"))
            .expect("a v2 and a v3 booster");
        let out = model
            .infer(std::slice::from_ref(&x), &[0, 1])
            .expect("infers");
        assert_eq!(out[0].shape, [fixture.inputs.len(), 1]);
        let (uplift, treated) = (values(&out[0]), values(&out[1]));
        for row in 0..treated.len() {
            assert!((treated[row] - fixture.predictions[row]).abs() <= 1e-6);
            let diff = treated[row] - f64::from(p_control[row]);
            let want = if favourable == 1 { diff } else { -diff };
            assert!((uplift[row] - want).abs() <= 1e-6, "row {row}");
        }
    }
}

#[test]
fn what_is_not_a_pair_of_probability_boosters_is_refused_by_name() {
    let refused = |weights: Vec<u8>, m: &Manifest, says: &str| {
        let err = m.build(&weights).expect_err(says).to_string();
        assert!(err.contains(says), "{err} should say {says}");
    };
    refused(
        bundle("binary_deep-v2", "absolute_error-v2"),
        &manifest(1, 8),
        "the control booster's objective is 'reg:absoluteerror'",
    );
    refused(
        bundle("binary_deep-v2", "binary_deep-v3"),
        &manifest(1, 5),
        "the treated booster",
    );
    refused(b"[]".to_vec(), &manifest(1, 8), "mercator-uplift");
    let mut bad = manifest(1, 8);
    bad.outputs[0].name = "lift".into();
    refused(
        bundle("binary_deep-v2", "binary_deep-v3"),
        &bad,
        "output 'lift'",
    );
    let err = Manifest::parse(
        serde_json::json!({
            "kind": "uplift", "weights": "uplift.json", "favourable_outcome": "churn",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 8]}],
            "outputs": [{"name": "uplift", "datatype": "FP32", "shape": [-1]}],
        })
        .to_string()
        .as_bytes(),
    )
    .expect_err("a bad favourable outcome");
    assert!(err.to_string().contains("favourable_outcome"), "{err}");
}
