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
    manifest["action_costs"] = serde_json::json!({"loyalty_reminder": 2.0});
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

/// statsmodels' interval and test for treated `x1` of `n1` against control `x0` of `n0`.
fn statsmodels(python: &std::path::Path, x1: u64, n1: u64, x0: u64, n0: u64) -> [f64; 4] {
    let script = format!(
        "from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest\n\
         lo, hi = confint_proportions_2indep({x1}, {n1}, {x0}, {n0}, method='newcomb', compare='diff')\n\
         z, p = proportions_ztest([{x1}, {x0}], [{n1}, {n0}])\n\
         print(repr(float(lo)), repr(float(hi)), repr(float(z)), repr(float(p)))"
    );
    let out = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let numbers: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|t| t.parse().expect("number"))
        .collect();
    [numbers[0], numbers[1], numbers[2], numbers[3]]
}

// The reference and the CLI run as child processes: keep a worker for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_equals_statsmodels_once_the_window_has_passed() {
    let Some(python) = crate::tritonclient::python() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide MERCATOR_PYTHON"
        );
        return;
    };
    let server = TestServer::builder()
        .demo()
        .model("churn_ab", churn_ab())
        .config(|c| {
            c.prediction_log.flush_secs = 0.05;
            c.prediction_log.quality.insert(
                "churn_ab".into(),
                mercator_runtime::manifest::quality::Quality {
                    kind: mercator_runtime::manifest::quality::QualityKind::Binary,
                    window: "2s".into(),
                },
            );
        })
        .start()
        .await;
    server.wait_for_ready("churn_ab").await;
    let ids = customers();
    let assigned = assignments(&server, &ids).await;
    let scored_at = chrono::Utc::now().timestamp_micros();
    // Held-out customers churn two in three; treated ones one in three.
    let (mut x1, mut n1, mut x0, mut n0) = (0, 0, 0, 0);
    let mut outcomes = Vec::new();
    for (k, (customer, i)) in assigned
        .iter()
        .filter(|(_, i)| i.rule == "medium_risk")
        .enumerate()
    {
        let churns = if i.control { k % 3 != 0 } else { k % 3 == 0 };
        if i.control {
            (n0, x0) = (n0 + 1, x0 + u64::from(churns));
        } else {
            (n1, x1) = (n1 + 1, x1 + u64::from(churns));
        }
        if churns {
            let at = scored_at + 500_000;
            outcomes.push(pb::Outcome {
                entity: customer.clone(),
                time: Some(prost_types::Timestamp {
                    seconds: at.div_euclid(1_000_000),
                    nanos: (at.rem_euclid(1_000_000) * 1000) as i32,
                }),
                value: 1.0,
                label: String::new(),
            });
        }
    }
    pb::outcomes_client::OutcomesClient::new(server.channel().await)
        .push(pb::PushOutcomesRequest {
            model_name: "churn_ab".into(),
            outcomes,
        })
        .await
        .expect("push");
    let want = statsmodels(&python, x1, n1, x0, n0);
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    let mut monitoring = pb::monitoring_client::MonitoringClient::new(server.channel().await);
    let report = monitoring
        .get_experiments(pb::GetExperimentsRequest {
            model_name: "churn_ab".into(),
            window_days: 0.0,
        })
        .await
        .expect("report")
        .into_inner();
    let [e] = report.experiments.as_slice() else {
        panic!("one experiment: {report:?}");
    };
    assert_eq!(
        (
            e.treated,
            e.treated_outcomes,
            e.control,
            e.control_outcomes,
            e.pending
        ),
        (n1, x1, n0, x0, 0)
    );
    let close = |got: Option<f64>, want: f64, what: &str| {
        let got = got.unwrap_or_else(|| panic!("{what} missing"));
        assert!((got - want).abs() <= 1e-9, "{what}: {got} vs {want}");
    };
    close(
        e.uplift,
        x1 as f64 / n1 as f64 - x0 as f64 / n0 as f64,
        "uplift",
    );
    for (got, want, what) in [
        (e.lower, want[0], "lower"),
        (e.upper, want[1], "upper"),
        (e.z, want[2], "z"),
        (e.p_value, want[3], "p"),
    ] {
        close(got, want, what);
    }
    // Priced: a reminder costs 2, so each customer kept cost 2 over the fall in the rate.
    assert_eq!(e.cost, Some(2.0), "{e:?}");
    let fall = x0 as f64 / n0 as f64 - x1 as f64 / n1 as f64;
    close(
        e.cost_per_retained,
        2.0 / fall,
        "cost per customer retained",
    );
    let text = server.metrics_text().await;
    for family in ["", "_lower", "_upper"] {
        let line = format!("# TYPE mercator_intervention_uplift{family} gauge");
        assert!(text.contains(&line), "the dashboard reads {line}");
    }
    let gauge = metric_value(
        &text,
        r#"mercator_intervention_uplift_lower{action="loyalty_reminder",model="churn_ab",rule="medium_risk"}"#,
    );
    close(gauge, want[0], "the exported lower bound");
    let url = server.url();
    let dir = tempfile::tempdir().expect("dir");
    let png = dir.path().join("uplift.png");
    let plot = png.display().to_string();
    let json = tokio::task::spawn_blocking(move || {
        crate::cli::ok(&[
            "experiments",
            "report",
            "churn_ab",
            "--json",
            "--plot",
            &plot,
            "--server",
            &url,
        ])
    })
    .await
    .expect("cli");
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    close(
        json["experiments"][0]["p_value"].as_f64(),
        want[3],
        "the CLI's p-value",
    );
    let drawn = std::fs::read(&png).expect("png");
    assert!(
        drawn.starts_with(b"\x89PNG") && drawn.len() > 10_000,
        "a picture"
    );
    // A model judged otherwise has no experiments to report.
    let refused = monitoring
        .get_experiments(pb::GetExperimentsRequest {
            model_name: "demand".into(),
            window_days: 0.0,
        })
        .await
        .expect_err("a forecaster");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    server.stop().await;
}
