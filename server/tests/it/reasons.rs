//! Churn reasons (issue 18): a tree model's per-feature contributions (exact TreeSHAP,
//! parity with xgboost in `runtime/tests/xgboost_shap.rs`) served over V2 by a version
//! whose manifest declares a `contributions` output.

use std::path::Path;

use bytes::Bytes;
use mercator_proto::inference as pb;

use crate::harness::{
    CHURN_DIR, TestServer, churn_expected, f32_bytes, f32_from, input, read_dir_files,
};

/// The demo churn model with a `reasons` output: 12 contributions and the bias.
fn churn_with_reasons() -> std::collections::BTreeMap<String, Bytes> {
    let mut files = read_dir_files(Path::new(CHURN_DIR), &["mercator.json", "model.json"]);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&files["mercator.json"]).expect("manifest");
    manifest["outputs"]
        .as_array_mut()
        .expect("outputs")
        .push(serde_json::json!({
            "name": "reasons", "datatype": "FP32", "shape": [-1, 13], "value": "contributions"
        }));
    files.insert("mercator.json".into(), Bytes::from(manifest.to_string()));
    files
}

#[tokio::test]
async fn contributions_are_served_over_v2_and_sum_to_the_margin() {
    let server = TestServer::builder()
        .model("churn", churn_with_reasons())
        .start()
        .await;
    let expected = churn_expected();
    let rows = expected.rows;
    let wanted = |name: &str| pb::model_infer_request::InferRequestedOutputTensor {
        name: name.into(),
        ..Default::default()
    };
    let answer = server
        .v2()
        .await
        .model_infer(pb::ModelInferRequest {
            model_name: "churn".into(),
            inputs: vec![input("features", "FP32", vec![rows as i64, 12])],
            raw_input_contents: vec![f32_bytes(&expected.inputs)],
            outputs: vec![wanted("reasons"), wanted("churn_margin")],
            ..Default::default()
        })
        .await
        .expect("infer")
        .into_inner();
    assert_eq!(answer.outputs[0].name, "reasons");
    assert_eq!(answer.outputs[0].shape, vec![rows as i64, 13]);
    let reasons = f32_from(&answer.raw_output_contents[0]);
    let margins = f32_from(&answer.raw_output_contents[1]);
    let bias = reasons[12];
    for (i, row) in reasons.chunks_exact(13).enumerate() {
        let sum: f64 = row.iter().map(|&v| f64::from(v)).sum();
        assert!(
            (sum - expected.margin[i]).abs() < 1e-4,
            "row {i}: contributions sum to {sum}, xgboost's margin is {}",
            expected.margin[i]
        );
        assert!((f64::from(margins[i]) - sum).abs() < 1e-4);
        // Path-dependent TreeSHAP's bias is the model's expected margin: one for all rows.
        assert_eq!(row[12], bias, "row {i}");
        // A missing value (NaN: the demo leaves some NPS empty) still gets its share.
        assert!(row.iter().all(|v| v.is_finite()), "row {i}: {row:?}");
    }
    server.stop().await;
}
