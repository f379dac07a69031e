//! Control groups in the runbook (issue 32, first part): a rule with `"control": 0.5`
//! holds out half the customers it matches, by a draw that two servers (and a restart)
//! agree on; a held-out customer is told the action that would be taken and that they
//! are in control, is counted apart, and is logged as such.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use mercator_proto::v1 as pb;
use mercator_server::api::churn::experiment::in_control;

use crate::harness::{CHURN_DIR, TestServer, metric_value, read_dir_files};

/// The demo churn model as `churn_ab`, its medium-risk rule holding out half.
fn churn_ab() -> BTreeMap<String, Bytes> {
    let mut files = read_dir_files(Path::new(CHURN_DIR), &["mercator.json", "model.json"]);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&files["mercator.json"]).expect("manifest");
    for rule in manifest["runbook"].as_array_mut().expect("runbook") {
        if rule["rule"] == "medium_risk" {
            rule["control"] = 0.5.into();
        }
    }
    files.insert("mercator.json".into(), Bytes::from(manifest.to_string()));
    files
}

fn customers() -> Vec<String> {
    std::fs::read_to_string(Path::new(CHURN_DIR).join("customers.csv"))
        .expect("customers")
        .lines()
        .skip(1)
        .take(400)
        .filter_map(|l| l.split(',').next().map(String::from))
        .collect()
}

/// Each customer with an intervention: (action, rule, control, experiment).
async fn assignments(server: &TestServer, ids: &[String]) -> BTreeMap<String, pb::Intervention> {
    pb::churn_client::ChurnClient::new(server.channel().await)
        .score(pb::ScoreRequest {
            model_name: "churn_ab".into(),
            customer_ids: ids.to_vec(),
            ..Default::default()
        })
        .await
        .expect("score")
        .into_inner()
        .scores
        .into_iter()
        .filter_map(|s| Some((s.customer_id, s.intervention?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_holds_out_its_control_group_the_same_way_everywhere() {
    let start = || async {
        let server = TestServer::builder()
            .demo()
            .model("churn_ab", churn_ab())
            .config(|c| c.prediction_log.flush_secs = 0.05)
            .start()
            .await;
        server.wait_for_ready("churn_ab").await;
        server
    };
    let (a, b) = (start().await, start().await);
    let ids = customers();
    let first = assignments(&a, &ids).await;
    assert_eq!(first, assignments(&b, &ids).await, "two servers agree");
    assert_eq!(first, assignments(&a, &ids).await, "a repeat call agrees");
    let medium: Vec<(&String, &pb::Intervention)> = first
        .iter()
        .filter(|(_, i)| i.rule == "medium_risk")
        .collect();
    assert!(
        medium.len() > 40,
        "enough medium-risk customers: {}",
        medium.len()
    );
    let held = medium.iter().filter(|(_, i)| i.control).count();
    assert!(
        held > 0 && held < medium.len(),
        "{held} of {}",
        medium.len()
    );
    for (customer, i) in &medium {
        assert_eq!(
            i.action, "loyalty_reminder",
            "the action that would be taken"
        );
        assert_eq!(i.experiment, "medium_risk:loyalty_reminder:0.5");
        assert_eq!(
            i.control,
            in_control("churn_ab", &i.experiment, customer, 0.5),
            "{customer}: drawn by model, experiment and customer"
        );
    }
    // The other rules hold out no one.
    assert!(
        first
            .values()
            .filter(|i| i.rule != "medium_risk")
            .all(|i| !i.control && i.experiment.is_empty())
    );
    // Held-out customers are counted apart from those given the action.
    let text = a.metrics_text().await;
    let counted = |family: &str| {
        metric_value(
            &text,
            &format!(r#"{family}{{action="loyalty_reminder",model="churn_ab",version="1"}}"#),
        )
        .unwrap_or(0.0)
    };
    let calls = 2.0;
    assert_eq!(
        counted("mercator_churn_intervention_controls_total"),
        held as f64 * calls
    );
    assert_eq!(
        counted("mercator_churn_interventions_total"),
        (medium.len() - held) as f64 * calls
    );
    // The log keeps treated and control rows alike, each marked.
    b.stop().await;
    let data = a.stop_keeping_data().await;
    let rows = crate::prediction_log::read_rows(&data.path().join("predictions"));
    let logged: Vec<&BTreeMap<String, String>> = rows
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.get("rule").is_some_and(|x| x == "medium_risk"))
        .collect();
    assert_eq!(logged.len(), medium.len() * 2);
    for r in logged {
        let want = first[&r["entity"]].control;
        assert_eq!(r["control"], want.to_string(), "{r:?}");
        assert_eq!(r["experiment"], "medium_risk:loyalty_reminder:0.5");
    }
}
