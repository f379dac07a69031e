//! Uplift models over the wire (issue 32): the demo's voucher campaign, a churn model
//! whose runbook targets by the uplift of `churn_uplift` (a T-learner exported by the
//! Python package). Each score's uplift equals the difference of the two boosters'
//! `predict_proba` in xgboost; the rule with `uplift_above` picks exactly the customers
//! above it; the experiment report's Qini equals scikit-uplift's; and a runbook that
//! targets by uplift without a model to read it from is refused, at registration or on
//! the call.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use mercator_proto::v1 as pb;
use mercator_server::api::churn::experiment::in_control;

use crate::harness::{CHURN_DIR, TestServer, read_dir_files};

fn uplift_model() -> BTreeMap<String, Bytes> {
    read_dir_files(
        &Path::new(CHURN_DIR).join("uplift"),
        &["mercator.json", "uplift.json"],
    )
}

/// The demo churn model with the campaign's runbook (`examples/churn/campaign.json`),
/// edited by `f`.
fn campaign(f: impl FnOnce(&mut serde_json::Value)) -> BTreeMap<String, Bytes> {
    let mut files = read_dir_files(Path::new(CHURN_DIR), &["model.json"]);
    let mut manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(CHURN_DIR).join("campaign.json")).expect("campaign.json"),
    )
    .expect("manifest");
    f(&mut manifest);
    files.insert("mercator.json".into(), Bytes::from(manifest.to_string()));
    files
}

/// Runs `script` with `input` on stdin and parses what it prints as JSON.
fn python_json(python: &Path, script: &str, input: &serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .current_dir(CHURN_DIR)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Each booster of the bundle, loaded by xgboost itself: the uplift of each customer.
const XGBOOST: &str = r#"
import json, os, sys, tempfile
import numpy as np, xgboost as xgb
from campaign import FEATURES, features
ids = json.load(sys.stdin)
bundle = json.load(open("uplift/uplift.json"))
x, _ = features("customers.csv", ids)
d = xgb.DMatrix(x.astype(np.float32), missing=np.nan, feature_names=FEATURES)
p = {}
for arm in ("treated", "control"):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.json")
        json.dump(bundle[arm], open(path, "w"))
        booster = xgb.Booster(model_file=path)
    p[arm] = booster.predict(d)
print(json.dumps([float(c) - float(t) for t, c in zip(p["treated"], p["control"])]))
"#;

/// scikit-uplift's Qini of each score over the same customers.
const SKLIFT: &str = r#"
import json, sys
from sklift.metrics import qini_auc_score
out = {}
for name, e in json.load(sys.stdin).items():
    out[name] = [qini_auc_score(e["retained"], e["uplift"], e["treated"]),
                 qini_auc_score(e["retained"], e["risk"], e["treated"])]
print(json.dumps(out))
"#;

fn python() -> Option<PathBuf> {
    let found = crate::tritonclient::python();
    assert!(
        found.is_some() || std::env::var("CI").is_err(),
        "CI must provide MERCATOR_PYTHON"
    );
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_targets_by_uplift_and_its_qini_equals_scikit_uplift() {
    let Some(python) = python() else { return };
    let server = TestServer::builder()
        .demo()
        .model("churn_uplift", uplift_model())
        .model(
            "voucher_campaign",
            campaign(|m| m["quality"]["window"] = "2s".into()),
        )
        .config(|c| c.prediction_log.flush_secs = 0.05)
        .start()
        .await;
    server.wait_for_ready("churn_uplift").await;
    server.wait_for_ready("voucher_campaign").await;
    let ids: Vec<String> = (108_000..108_600).map(|i| format!("C{i}")).collect();
    let scores = pb::churn_client::ChurnClient::new(server.channel().await)
        .score(pb::ScoreRequest {
            model_name: "voucher_campaign".into(),
            customer_ids: ids.clone(),
            ..Default::default()
        })
        .await
        .expect("score")
        .into_inner()
        .scores;
    let scored_at = chrono::Utc::now().timestamp_micros();
    let want = python_json(&python, XGBOOST, &serde_json::json!(ids));
    let mut targeted = 0;
    for (s, want) in scores.iter().zip(want.as_array().expect("list")) {
        let uplift = s.uplift.expect("every scored customer has an uplift");
        let want = want.as_f64().expect("number");
        assert!(
            (uplift - want).abs() <= 1e-6,
            "{}: {uplift} vs xgboost's {want}",
            s.customer_id
        );
        let i = s
            .intervention
            .as_ref()
            .expect("every customer matches a rule");
        let above = uplift > 0.05;
        targeted += usize::from(above);
        assert_eq!(
            i.rule == "voucher_where_it_works",
            above,
            "{}: uplift {uplift} and rule {}",
            s.customer_id,
            i.rule
        );
        assert_eq!(
            i.control,
            in_control("voucher_campaign", &i.experiment, &s.customer_id, 0.5)
        );
    }
    assert!(
        targeted > 50 && targeted < 500,
        "{targeted} customers are worth a voucher"
    );
    // Outcomes, deterministic: the treated churn less often where the voucher is aimed.
    let mut outcomes = Vec::new();
    let mut arms: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (k, s) in scores.iter().enumerate() {
        let i = s.intervention.as_ref().expect("a rule");
        let bar = match (i.rule.as_str(), i.control) {
            ("voucher_where_it_works", false) => 2,
            ("voucher_where_it_works", true) => 6,
            _ => 4,
        };
        let churns = (k * 7) % 10 < bar;
        if churns {
            let at = scored_at + 500_000;
            outcomes.push(pb::Outcome {
                entity: s.customer_id.clone(),
                time: Some(prost_types::Timestamp {
                    seconds: at.div_euclid(1_000_000),
                    nanos: (at.rem_euclid(1_000_000) * 1000) as i32,
                }),
                value: 1.0,
                label: String::new(),
            });
        }
        let arm = arms.entry(i.experiment.clone()).or_insert_with(
            || serde_json::json!({"retained": [], "uplift": [], "risk": [], "treated": []}),
        );
        for (key, v) in [
            ("retained", serde_json::json!(u8::from(!churns))),
            ("uplift", serde_json::json!(s.uplift)),
            ("risk", serde_json::json!(s.probability)),
            ("treated", serde_json::json!(u8::from(!i.control))),
        ] {
            arm[key].as_array_mut().expect("list").push(v);
        }
    }
    pb::outcomes_client::OutcomesClient::new(server.channel().await)
        .push(pb::PushOutcomesRequest {
            model_name: "voucher_campaign".into(),
            outcomes,
        })
        .await
        .expect("push");
    let reference = python_json(&python, SKLIFT, &serde_json::json!(arms));
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    let report = pb::monitoring_client::MonitoringClient::new(server.channel().await)
        .get_experiments(pb::GetExperimentsRequest {
            model_name: "voucher_campaign".into(),
            window_days: 0.0,
        })
        .await
        .expect("report")
        .into_inner();
    assert_eq!(report.experiments.len(), 2, "{report:?}");
    for e in &report.experiments {
        let want = &reference[&e.experiment];
        for (got, want, what) in [
            (e.qini_uplift, &want[0], "uplift"),
            (e.qini_risk, &want[1], "risk"),
        ] {
            let (got, want) = (
                got.unwrap_or_else(|| panic!("{}: no Qini of {what}", e.experiment)),
                want.as_f64().expect("number"),
            );
            assert!(
                (got - want).abs() <= 1e-9,
                "{} Qini of {what}: {got} vs scikit-uplift's {want}",
                e.experiment
            );
        }
        let n = arms[&e.experiment]["treated"]
            .as_array()
            .expect("list")
            .len() as u64;
        assert_eq!((e.treated + e.control, e.pending), (n, 0));
    }
    let targeted = report
        .experiments
        .iter()
        .find(|e| e.experiment == "voucher_targeted")
        .expect("the targeted experiment");
    assert!(
        targeted.uplift.expect("both arms") < 0.0,
        "fewer treated customers churned: {targeted:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targeting_by_uplift_without_a_model_to_read_is_refused() {
    let server = TestServer::builder()
        .demo()
        .model(
            "voucher_orphan",
            campaign(|m| m["uplift_model"] = "nobody_here".into()),
        )
        .start()
        .await;
    server.wait_for_ready("voucher_orphan").await;
    // Named at registration: uplift_above without an uplift_model.
    let files = campaign(|m| {
        m.as_object_mut().expect("object").remove("uplift_model");
    });
    let refused = server
        .registry_client()
        .await
        .register_version(crate::lifecycle::upload_files("voucher_bad", files))
        .await
        .expect_err("no uplift model");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("runbook[0].uplift_above"),
        "{}",
        refused.message()
    );
    // On the call: the named model is not served here.
    let err = pb::churn_client::ChurnClient::new(server.channel().await)
        .score(pb::ScoreRequest {
            model_name: "voucher_orphan".into(),
            customer_ids: vec!["C108000".into()],
            ..Default::default()
        })
        .await
        .expect_err("nothing to read uplift from");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("'nobody_here'"), "{}", err.message());
    server.stop().await;
}
