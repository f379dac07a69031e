//! Traffic splits and shadows on the demo churn model, with a second version (the same
//! trees, another base score, so its probabilities differ) behind `challenger`:
//! - a 90/10 split lands within statistical tolerance over 10,000 requests, both for
//!   requests without an entity (placed at random) and for 10,000 customers by id;
//! - each customer sticks to one version, whatever the batch and whichever protocol
//!   (Churn/Score or V2 by entity key) asks;
//! - a request that names a version gets exactly it;
//! - a shadow route gets a copy of the traffic, its latency and predictions land in the
//!   metrics, and the callers' answers stay exactly the champion's.

use std::collections::BTreeMap;
use std::time::Duration;

use mercator_proto::inference as v2;
use mercator_proto::v1::churn_client::ChurnClient;
use mercator_proto::v1::{self as pb};

use crate::harness::{TestServer, bytes_raw, f32_bytes, input};

/// Requests in each measurement.
const REQUESTS: usize = 10_000;

/// 10% of 10,000 within 5 standard deviations (σ = √(10,000 · 0.1 · 0.9) = 30): a
/// correct split fails this about once in two million runs.
const TOLERANCE: std::ops::RangeInclusive<usize> = 850..=1_150;

/// The demo server plus churn version 2 (base score moved) under `challenger`.
async fn server_with_challenger() -> TestServer {
    server_with_challenger_and(|_| {}).await
}

/// [`server_with_challenger`] with a configuration tweak.
async fn server_with_challenger_and(
    tweak: impl FnOnce(&mut mercator_server::Config) + Send + 'static,
) -> TestServer {
    let server = TestServer::builder().demo().config(tweak).start().await;
    let mut upload = crate::lifecycle::upload("churn");
    for f in &mut upload.files {
        if f.path == "model.json" {
            let text = String::from_utf8(f.content.clone()).expect("utf-8 model");
            assert!(text.contains(r#""base_score":"[3.434375E-1]""#));
            f.content = text
                .replace(
                    r#""base_score":"[3.434375E-1]""#,
                    r#""base_score":"[5E-1]""#,
                )
                .into_bytes();
        }
    }
    upload.alias = "challenger".into();
    server
        .registry_client()
        .await
        .register_version(upload)
        .await
        .expect("register version 2");
    server
}

/// `(alias, percent, shadow)` triples as wire routes.
fn routes(routes: &[(&str, u32, bool)]) -> Vec<pb::TrafficRoute> {
    routes
        .iter()
        .map(|&(alias, percent, shadow)| pb::TrafficRoute {
            alias: alias.into(),
            percent,
            shadow,
        })
        .collect()
}

async fn set_traffic(server: &TestServer, split: &[(&str, u32, bool)]) -> Vec<pb::TrafficRoute> {
    server
        .registry_client()
        .await
        .set_traffic(pb::SetTrafficRequest {
            model: "churn".into(),
            routes: routes(split),
            reason: "test".into(),
            actor: "test".into(),
        })
        .await
        .expect("set traffic")
        .into_inner()
        .routes
}

async fn score(
    client: &mut ChurnClient<tonic::transport::Channel>,
    ids: &[String],
    version: &str,
) -> pb::ScoreResponse {
    client
        .score(pb::ScoreRequest {
            model_name: "churn".into(),
            model_version: version.into(),
            customer_ids: ids.to_vec(),
            top_reasons: 0,
        })
        .await
        .expect("score")
        .into_inner()
}

fn raw_request() -> v2::ModelInferRequest {
    v2::ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![input("features", "FP32", vec![1, 12])],
        raw_input_contents: vec![f32_bytes(&[
            30.0, 2.0, 120.0, 60.0, 0.1, 0.0, 1.0, 8.0, 0.1, 400.0, 5.0, 0.3,
        ])],
        ..Default::default()
    }
}

fn customers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("C{}", 100_000 + i)).collect()
}

/// Waits until a batch of customers reaches both versions (the split is in the table).
async fn wait_for_split(server: &TestServer) {
    let mut client = ChurnClient::new(server.channel().await);
    let probe: Vec<String> = (0..200).map(|i| format!("probe-{i}")).collect();
    for _ in 0..200 {
        let r = score(&mut client, &probe, "").await;
        if r.scores.iter().any(|s| s.model_version == "2") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the split never reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_90_10_split_holds_over_10000_requests_and_sticks_per_customer() {
    let server = server_with_challenger().await;
    let stored = set_traffic(
        &server,
        &[("champion", 90, false), ("challenger", 10, false)],
    )
    .await;
    assert_eq!(stored.len(), 2);
    wait_for_split(&server).await;

    // Without an entity key (raw feature rows): placed at random, four clients at once.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut client = server.v2().await;
        tasks.push(tokio::spawn(async move {
            let mut versions = BTreeMap::<String, usize>::new();
            for _ in 0..REQUESTS / 4 {
                let r = client.model_infer(raw_request()).await.expect("infer");
                *versions.entry(r.into_inner().model_version).or_default() += 1;
            }
            versions
        }));
    }
    let mut random = BTreeMap::<String, usize>::new();
    for t in tasks {
        for (v, n) in t.await.expect("client") {
            *random.entry(v).or_default() += n;
        }
    }
    assert_eq!(random.values().sum::<usize>(), REQUESTS);
    let challenger = random.get("2").copied().unwrap_or(0);
    assert!(TOLERANCE.contains(&challenger), "random split: {random:?}");

    // 10,000 customers by id, in calls of 100: each score names its version.
    let ids = customers(REQUESTS);
    let mut client = ChurnClient::new(server.channel().await);
    let mut first = BTreeMap::<String, String>::new();
    for chunk in ids.chunks(100) {
        let r = score(&mut client, chunk, "").await;
        let versions: std::collections::BTreeSet<&str> =
            r.scores.iter().map(|s| s.model_version.as_str()).collect();
        // The call's version is set only when one version answered all of it.
        if versions.len() == 1 {
            assert_eq!(Some(r.model_version.as_str()), versions.first().copied());
        } else {
            assert_eq!(r.model_version, "");
        }
        for (id, s) in chunk.iter().zip(&r.scores) {
            assert_eq!(&s.customer_id, id, "the response keeps the request's order");
            first.insert(id.clone(), s.model_version.clone());
        }
    }
    let by_id = first.values().filter(|v| *v == "2").count();
    assert!(
        TOLERANCE.contains(&by_id),
        "by customer: {by_id} of {REQUESTS}"
    );
    assert!(first.values().all(|v| v == "1" || v == "2"));

    // Sticky: the same customers in other batches (reversed, in calls of 37)...
    let reversed: Vec<String> = ids.iter().rev().cloned().collect();
    for chunk in reversed.chunks(37) {
        let r = score(&mut client, chunk, "").await;
        for s in &r.scores {
            assert_eq!(
                first[&s.customer_id], s.model_version,
                "{} moved",
                s.customer_id
            );
        }
    }
    // ...one at a time through V2 by entity key, with their features read by the server...
    let mut v2c = server.v2().await;
    for id in ids.iter().step_by(25) {
        let r = v2c
            .model_infer(v2::ModelInferRequest {
                model_name: "churn".into(),
                inputs: vec![input("customer_id", "BYTES", vec![1])],
                raw_input_contents: vec![bytes_raw(&[id.as_bytes()])],
                ..Default::default()
            })
            .await
            .expect("infer by id")
            .into_inner();
        assert_eq!(first[id], r.model_version, "{id} moved under V2");
    }
    // ...and through V2 with raw features and the `entity_key` parameter.
    for id in ids.iter().step_by(50) {
        let mut req = raw_request();
        req.parameters.insert(
            "entity_key".into(),
            v2::InferParameter {
                parameter_choice: Some(v2::infer_parameter::ParameterChoice::StringParam(
                    id.clone(),
                )),
            },
        );
        let r = v2c.model_infer(req).await.expect("infer").into_inner();
        assert_eq!(first[id], r.model_version, "{id} moved with entity_key");
    }

    // A request that names a version gets it, split or not.
    let pinned = score(&mut client, &ids[..500], "1").await;
    assert!(pinned.scores.iter().all(|s| s.model_version == "1"));
    assert_eq!(pinned.model_version, "1");
    let pinned = score(&mut client, &ids[..500], "challenger").await;
    assert!(pinned.scores.iter().all(|s| s.model_version == "2"));

    // Clearing the split gives everything back to the champion.
    assert!(set_traffic(&server, &[]).await.is_empty());
    let mut all_champion = false;
    for _ in 0..200 {
        let r = score(&mut client, &ids[..500], "").await;
        if r.model_version == "1" {
            all_champion = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        all_champion,
        "the cleared split still routes to the challenger"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_traffic_is_measured_and_never_changes_an_answer() {
    let server = server_with_challenger_and(|c| {
        // Drift evaluated quickly, so that its series are in the exposition checked below.
        c.drift.min_samples = 1;
        c.drift.interval_secs = 0.1;
    })
    .await;
    let ids = customers(200);
    let mut client = ChurnClient::new(server.channel().await);
    // What the champion answers, asked by number before any shadow exists.
    let expected = score(&mut client, &ids, "1").await;
    let expected_v2 = server
        .v2()
        .await
        .model_infer(raw_request())
        .await
        .expect("infer")
        .into_inner();
    // The shadow route alone makes the server load the challenger.
    set_traffic(&server, &[("challenger", 100, true)]).await;
    // Until the shadow shows in the metrics, the table may not have it yet.
    let mut calls = 0;
    let mut v2c = server.v2().await;
    let shadowed = loop {
        for chunk in ids.chunks(20) {
            let r = score(&mut client, chunk, "").await;
            calls += 1;
            assert_eq!(r.model_version, "1");
            for s in &r.scores {
                let want = expected
                    .scores
                    .iter()
                    .find(|e| e.customer_id == s.customer_id)
                    .expect("known id");
                assert_eq!(s, want, "a shadow changed {}'s answer", s.customer_id);
            }
            let r = v2c.model_infer(raw_request()).await.expect("infer");
            assert_eq!(r.into_inner(), expected_v2, "a shadow changed a V2 answer");
        }
        let text = server.metrics_text().await;
        let ok = metric(
            &text,
            r#"mercator_shadow_requests_total{code="OK",method="Churn.Score",model="churn",version="2"}"#,
        );
        if ok >= 10.0 || calls > 2_000 {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let challenger = score(&mut client, &ids, "2").await;
    assert_ne!(
        expected.scores[0].probability, challenger.scores[0].probability,
        "the two versions must differ for the comparison to mean anything"
    );
    crate::metrics::promtool_check(&shadowed);
    // Feature freshness is sampled every poll interval: the names the deploy files use
    // are checked against this text and one that has it.
    let (_, fresh) = server
        .wait_for_metric(r#"mercator_feature_view_age_seconds{view="customer_churn"}"#)
        .await;
    crate::deploy::check_names_against(&format!("{shadowed}{fresh}"));
    let v2_ok = metric(
        &shadowed,
        r#"mercator_shadow_requests_total{code="OK",method="ModelInfer",model="churn",version="2"}"#,
    );
    assert!(v2_ok >= 1.0, "no V2 shadow run recorded:\n{shadowed}");
    for series in [
        r#"mercator_shadow_request_duration_seconds_count{method="Churn.Score",model="churn",version="2"}"#,
        r#"mercator_shadow_prediction_abs_difference_count{model="churn",version="2"}"#,
        r#"mercator_shadow_prediction_value_count{model="churn",role="live",version="2"}"#,
        r#"mercator_shadow_prediction_value_count{model="churn",role="shadow",version="2"}"#,
    ] {
        assert!(
            metric(&shadowed, series) > 0.0,
            "{series} missing:\n{shadowed}"
        );
    }
    // The base score moved every probability: no comparison came out equal.
    let small = metric(
        &shadowed,
        r#"mercator_shadow_prediction_abs_difference_bucket{model="churn",version="2",le="0.000001"}"#,
    );
    assert_eq!(small, 0.0);
    // No caller had asked version 2 for anything yet (the metrics were read before).
    assert_eq!(
        metric(
            &shadowed,
            r#"mercator_requests_total{code="OK",method="Churn.Score",model="churn",version="2"}"#
        ),
        0.0,
        "shadow runs are not requests to version 2"
    );
    // Each shadow run is in the prediction log, route `shadow`, beside the live rows of
    // the same request id, with the challenger's version and its own probabilities.
    let data = server.stop_keeping_data().await;
    let rows = crate::prediction_log::read_rows(&data.path().join("predictions"));
    let shadow: Vec<_> = rows
        .iter()
        .filter(|(_, r)| r["route"] == "shadow" && r["api"] == "Churn.Score")
        .collect();
    assert!(!shadow.is_empty(), "no shadow rows");
    for (_, r) in &shadow {
        assert_eq!(r["version"], "2", "{r:?}");
        let live = rows
            .iter()
            .find(|(_, l)| {
                l["request_id"] == r["request_id"]
                    && l["route"] != "shadow"
                    && l["entity"] == r["entity"]
            })
            .unwrap_or_else(|| panic!("no live row beside {r:?}"));
        assert_eq!(live.1["version"], "1");
        assert_ne!(live.1["probability"], r["probability"]);
        assert_eq!(
            live.1["customer_churn:last_nps"], r["customer_churn:last_nps"],
            "both read the same features"
        );
    }
    assert!(
        rows.iter()
            .any(|(_, r)| r["route"] == "shadow" && r["api"] == "ModelInfer"),
        "no V2 shadow rows"
    );
}

#[tokio::test]
async fn bad_splits_are_refused_by_field() {
    let server = server_with_challenger().await;
    let mut registry = server.registry_client().await;
    type Case<'a> = (&'a str, Vec<(&'a str, u32, bool)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "sum",
            vec![("champion", 80, false), ("challenger", 10, false)],
            "90 percent",
        ),
        (
            "zero",
            vec![("champion", 100, false), ("challenger", 0, true)],
            "routes[1].percent",
        ),
        (
            "unknown alias",
            vec![("champion", 90, false), ("nobody", 10, false)],
            "routes[1].alias",
        ),
        (
            "twice",
            vec![("champion", 100, false), ("champion", 50, true)],
            "given twice",
        ),
        (
            "bad name",
            vec![("Champion!", 100, false)],
            "routes[0].alias",
        ),
    ];
    for (what, split, named) in cases {
        let status = registry
            .set_traffic(pb::SetTrafficRequest {
                model: "churn".into(),
                routes: routes(&split),
                ..Default::default()
            })
            .await
            .expect_err(what);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status:?}"
        );
        assert!(
            status.message().contains(named),
            "{what}: {}",
            status.message()
        );
    }
    let status = registry
        .set_traffic(pb::SetTrafficRequest {
            model: "nope".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown model");
    assert_eq!(status.code(), tonic::Code::NotFound);
    server.stop().await;
}

/// The value of the series `series` in a metrics text (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    crate::harness::metric_value(text, series).unwrap_or(0.0)
}

// The CLI runs as a blocking child process: keep a second worker free for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_shows_and_clears_a_split() {
    let server = server_with_challenger().await;
    let url = server.url();
    // An alias that does not exist is refused by name, and nothing changes.
    let traffic = |routes: &[&'static str]| {
        let mut args = vec!["models", "--server", url.as_str(), "traffic", "churn"];
        args.extend_from_slice(routes);
        args
    };
    crate::cli::fails(
        &traffic(&["champion=80", "challenger=20", "--shadow", "previous=50"]),
        "no alias 'previous'",
    );
    crate::cli::fails(&traffic(&["champion=80", "challenger=10"]), "90 percent");
    let out = crate::cli::ok(&["models", "--server", &url, "show", "churn"]);
    assert!(out.contains("traffic: champion 100%"), "{out}");
    let out = crate::cli::ok(&[
        "models",
        "--server",
        &url,
        "traffic",
        "churn",
        "champion=80",
        "challenger=20",
    ]);
    assert!(out.contains("churn: challenger 20%, champion 80%"), "{out}");
    let out = crate::cli::ok(&["models", "--server", &url, "show", "churn"]);
    assert!(
        out.contains("traffic: challenger 20%, champion 80%"),
        "{out}"
    );
    let out = crate::cli::ok(&["models", "--server", &url, "traffic", "churn", "--clear"]);
    assert!(out.contains("churn: champion 100%"), "{out}");
    server.stop().await;
}
