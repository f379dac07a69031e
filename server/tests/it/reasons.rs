//! Churn reasons (issue 18): a tree model's per-feature contributions (exact TreeSHAP,
//! parity with xgboost in `runtime/tests/xgboost_shap.rs`) served over V2 by a version
//! whose manifest declares a `contributions` output, and `Churn/Score`'s `top_reasons`.

use std::path::Path;

use bytes::Bytes;
use mercator_proto::inference as pb;
use mercator_proto::v1;
use v1::reason::{Direction, Source};

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

async fn score(
    server: &TestServer,
    model: &str,
    ids: &[String],
    top_reasons: u32,
) -> Result<v1::ScoreResponse, tonic::Status> {
    v1::churn_client::ChurnClient::new(server.channel().await)
        .score(v1::ScoreRequest {
            model_name: model.into(),
            customer_ids: ids.to_vec(),
            top_reasons,
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// `Churn/Score` with `top_reasons` on the demo: the largest contributions first, the
/// same numbers as the V2 contributions output for the same customer, the value the model
/// saw (NaN and MISSING where the demo left NPS empty), and all of a customer's
/// contributions plus one constant (the model's average log-odds) giving their log-odds.
#[tokio::test]
async fn scores_come_with_their_largest_contributions() {
    let server = TestServer::builder().demo().start().await;
    let mut registry = server.registry_client().await;
    let mut upload = crate::lifecycle::upload_files("churn_explained", churn_with_reasons());
    upload.alias = "champion".into();
    registry.register_version(upload).await.expect("register");
    server.wait_for_ready("churn_explained").await;
    let expected = churn_expected();
    let ids = expected.customer_ids[..40].to_vec();

    let top3 = score(&server, "churn", &ids, 3).await.expect("score");
    let all = score(&server, "churn", &ids, 100).await.expect("score");
    let plain = score(&server, "churn", &ids, 0).await.expect("score");
    let v2 = server
        .v2()
        .await
        .model_infer(pb::ModelInferRequest {
            model_name: "churn_explained".into(),
            inputs: vec![input("features", "FP32", vec![40, 12])],
            raw_input_contents: vec![f32_bytes(&expected.inputs[..40 * 12])],
            outputs: vec![pb::model_infer_request::InferRequestedOutputTensor {
                name: "reasons".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("v2")
        .into_inner();
    let v2 = f32_from(&v2.raw_output_contents[0]);
    let mut base = None;
    for (i, ((s3, s), p)) in top3
        .scores
        .iter()
        .zip(&all.scores)
        .zip(&plain.scores)
        .enumerate()
    {
        assert!(p.reasons.is_empty(), "no reasons unless asked");
        assert_eq!(
            s3.probability, p.probability,
            "asking why does not change the score"
        );
        assert_eq!(s3.reasons.len(), 3);
        assert_eq!(
            s3.reasons[..],
            s.reasons[..3],
            "the top 3 are the first 3 of all"
        );
        let sizes: Vec<f64> = s.reasons.iter().map(|r| r.contribution.abs()).collect();
        assert!(
            sizes.windows(2).all(|w| w[0] >= w[1]),
            "largest first: {sizes:?}"
        );
        let row = &v2[i * 13..(i + 1) * 13];
        let mut sum = 0.0;
        for r in &s.reasons {
            let c = super::churn::FIELDS
                .iter()
                .position(|f| r.feature == format!("customer_churn:{f}"))
                .expect("a bound feature");
            assert!(
                (r.contribution - f64::from(row[c])).abs() < 1e-6,
                "{}: {}",
                s.customer_id,
                r.feature
            );
            let x = expected.inputs[i * 12 + c];
            if x.is_nan() {
                assert!(
                    r.value.is_nan() && r.source() == Source::Missing,
                    "{}",
                    r.feature
                );
            } else {
                // The store's float32 and the file's decimal differ in the last digits.
                assert!(
                    (r.value - f64::from(x)).abs() <= 1e-5 * (1.0 + r.value.abs()),
                    "{}",
                    r.feature
                );
                assert_eq!(r.source(), Source::Present);
            }
            let way = if r.contribution > 0.0 {
                Direction::RaisesRisk
            } else {
                Direction::LowersRisk
            };
            assert_eq!(r.direction(), way);
            sum += r.contribution;
        }
        let rest = logit(s.probability) - sum;
        let base = *base.get_or_insert(rest);
        assert!(
            (rest - base).abs() < 1e-4,
            "{}: log-odds less contributions {rest} vs {base}",
            s.customer_id
        );
    }
    server.stop().await;
}

/// A model saved without node covers still scores, but cannot give reasons: asking is a
/// FAILED_PRECONDITION naming it, and an unknown customer gets no reasons either way.
#[tokio::test]
async fn a_model_that_cannot_explain_says_so() {
    let mut files = read_dir_files(Path::new(CHURN_DIR), &["mercator.json", "model.json"]);
    let mut doc: serde_json::Value = serde_json::from_slice(&files["model.json"]).expect("json");
    for tree in doc["learner"]["gradient_booster"]["model"]["trees"]
        .as_array_mut()
        .expect("trees")
    {
        tree.as_object_mut().expect("tree").remove("sum_hessian");
    }
    files.insert("model.json".into(), Bytes::from(doc.to_string()));
    let server = TestServer::builder().demo().start().await;
    let mut registry = server.registry_client().await;
    let mut upload = crate::lifecycle::upload_files("churn_plain", files);
    upload.alias = "champion".into();
    registry.register_version(upload).await.expect("register");
    server.wait_for_ready("churn_plain").await;
    let ids = vec![
        churn_expected().customer_ids[0].clone(),
        "C999999".to_string(),
    ];
    let scored = score(&server, "churn_plain", &ids, 0)
        .await
        .expect("scores");
    assert_eq!(
        scored.scores[0].status(),
        v1::customer_score::Status::Scored
    );
    let err = score(&server, "churn_plain", &ids, 3)
        .await
        .expect_err("no covers");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(
        err.message().contains("churn_plain") && err.message().contains("top_reasons"),
        "{}",
        err.message()
    );
    let unknown = score(&server, "churn", &ids[1..], 3).await.expect("score");
    assert!(unknown.scores[0].reasons.is_empty());
    server.stop().await;
}

/// The demo's runbook over a real socket (late deliveries among a high-risk customer's
/// two largest drivers, then an NPS below 7, then a medium band): every scored customer
/// of 400 gets the action of the first rule that holds for them (checked here from their band, all their reasons and
/// their NPS), each of the three rules chooses someone, and asking for reasons or not
/// gives the same actions.
#[tokio::test]
async fn the_demo_runbook_recommends_an_action_and_names_the_rule() {
    let server = TestServer::builder().demo().start().await;
    let ids: Vec<String> = (100_000..100_400).map(|i| format!("C{i}")).collect();
    let explained = score(&server, "churn", &ids, 100).await.expect("score");
    let plain = score(&server, "churn", &ids, 0).await.expect("score");
    let mut chosen = std::collections::BTreeMap::new();
    for (s, p) in explained.scores.iter().zip(&plain.scores) {
        assert_eq!(
            s.intervention, p.intervention,
            "{}: reasons asked or not",
            s.customer_id
        );
        let raises: Vec<&v1::Reason> = s
            .reasons
            .iter()
            .filter(|r| r.direction() == Direction::RaisesRisk)
            .collect();
        let nps = s
            .reasons
            .iter()
            .find(|r| r.feature == "customer_churn:last_nps")
            .filter(|r| r.source() == Source::Present)
            .map(|r| r.value);
        let want = match s.risk_band.as_str() {
            "high"
                if raises
                    .iter()
                    .take(2)
                    .any(|r| r.feature == "customer_churn:late_deliveries_90d") =>
            {
                Some(("apology_voucher", "late_deliveries"))
            }
            // A customer whose NPS has no share at all is not listed; none such here.
            "high" if nps.is_some_and(|v| v < 7.0) => {
                Some(("callback_from_care", "unhappy_customer"))
            }
            "medium" => Some(("loyalty_reminder", "medium_risk")),
            _ => None,
        };
        let got = s
            .intervention
            .as_ref()
            .map(|i| (i.action.as_str(), i.rule.as_str()));
        assert_eq!(
            got, want,
            "{} ({}, {:?})",
            s.customer_id, s.risk_band, s.reasons
        );
        if let Some((action, _)) = got {
            *chosen.entry(action.to_string()).or_insert(0) += 1;
        }
    }
    assert_eq!(chosen.len(), 3, "each rule chose someone: {chosen:?}");
    // Both calls counted, by action; the contributions' time is the explain phase.
    for (action, n) in &chosen {
        let series = format!(
            r#"mercator_churn_interventions_total{{action="{action}",model="churn",version="1"}}"#
        );
        let (count, _) = server.wait_for_metric(&series).await;
        assert_eq!(count, f64::from(2 * n), "{series}");
    }
    server
        .wait_for_metric(
            r#"mercator_request_phase_duration_seconds_count{model="churn",phase="explain",version="1"}"#,
        )
        .await;
    server.stop().await;
}

/// A runbook naming a band or a feature the model does not have refuses the version at
/// registration, naming the rule and the field.
#[tokio::test]
async fn a_bad_runbook_is_refused_at_registration() {
    let server = TestServer::builder().demo().start().await;
    let mut registry = server.registry_client().await;
    for (rule, says) in [
        (
            serde_json::json!({"rule": "r", "band": "severe", "action": "x"}),
            "runbook[0].band: 'severe'",
        ),
        (
            serde_json::json!({"rule": "r", "top_reason": "shoe_size", "action": "x"}),
            "runbook[0].top_reason: the input has no feature 'shoe_size'",
        ),
    ] {
        let mut files = read_dir_files(Path::new(CHURN_DIR), &["mercator.json", "model.json"]);
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&files["mercator.json"]).expect("manifest");
        manifest["runbook"] = serde_json::json!([rule]);
        files.insert("mercator.json".into(), Bytes::from(manifest.to_string()));
        let err = registry
            .register_version(crate::lifecycle::upload_files("churn", files))
            .await
            .expect_err("refused");
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "{}",
            err.message()
        );
        assert!(
            err.message().contains(says),
            "{} should say {says}",
            err.message()
        );
    }
    server.stop().await;
}
