//! Registry over gRPC and the server following it: a new champion is served without a
//! restart, rollback returns to the previous one, and a corrupted artifact is refused
//! while the old version keeps serving.

use mercator_proto::inference as pb;
use mercator_proto::v1 as reg;
use mercator_registry::VersionSelector;

use crate::harness::{CHURN_DIR, TestServer, f32_bytes, input, read_dir_files};

pub fn upload(name: &str) -> reg::RegisterVersionRequest {
    let files = read_dir_files(
        std::path::Path::new(CHURN_DIR),
        &["mercator.json", "model.json"],
    );
    upload_files(name, files)
}

/// A registration of `files` as a new version of `name`.
pub fn upload_files(
    name: &str,
    files: std::collections::BTreeMap<String, bytes::Bytes>,
) -> reg::RegisterVersionRequest {
    reg::RegisterVersionRequest {
        model: name.into(),
        files: files
            .into_iter()
            .map(|(path, content)| reg::UploadFile {
                path,
                content: content.to_vec(),
            })
            .collect(),
        tags: [("team".to_string(), "crm".to_string())].into(),
        actor: "alice".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn alias_moves_are_served_and_rolled_back() {
    let server = TestServer::builder().churn().start().await;
    let mut registry = server.registry_client().await;
    let v2 = registry
        .register_version(upload("churn"))
        .await
        .expect("register")
        .into_inner()
        .version
        .expect("version");
    assert_eq!(v2.version, 2);
    assert_eq!(v2.tags.get("team").map(String::as_str), Some("crm"));
    assert_eq!(server.champion_version("churn").await.as_deref(), Some("1"));

    let moved = registry
        .set_alias(reg::SetAliasRequest {
            model: "churn".into(),
            alias: "champion".into(),
            version: 2,
            reason: "retrained".into(),
            actor: "bob".into(),
        })
        .await
        .expect("promote")
        .into_inner()
        .r#move
        .expect("move");
    assert_eq!((moved.from_version, moved.to_version), (1, 2));
    server.wait_for_champion("churn", "2").await;

    registry
        .rollback_alias(reg::RollbackAliasRequest {
            model: "churn".into(),
            alias: "champion".into(),
            reason: "bad canary".into(),
            actor: "bob".into(),
        })
        .await
        .expect("rollback");
    server.wait_for_champion("churn", "1").await;

    let history = registry
        .alias_history(reg::AliasHistoryRequest {
            model: "churn".into(),
            alias: "champion".into(),
        })
        .await
        .expect("history")
        .into_inner()
        .moves;
    assert_eq!(
        history.iter().map(|m| m.to_version).collect::<Vec<_>>(),
        vec![1, 2, 1]
    );
    let audit = registry
        .audit_log(reg::AuditLogRequest {
            model: "churn".into(),
            limit: 10,
        })
        .await
        .expect("audit")
        .into_inner();
    assert_eq!(
        audit.entries.first().map(|e| e.action.as_str()),
        Some("rollback_alias")
    );

    for (status, code) in [
        (
            registry
                .get_model(reg::GetModelRequest {
                    model: "nope".into(),
                })
                .await
                .map(|_| ()),
            tonic::Code::NotFound,
        ),
        (
            registry
                .register_version(reg::RegisterVersionRequest {
                    model: "churn".into(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            tonic::Code::InvalidArgument,
        ),
        (
            registry
                .set_alias(reg::SetAliasRequest {
                    model: "churn".into(),
                    alias: "champion".into(),
                    version: 99,
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            tonic::Code::NotFound,
        ),
        (
            registry
                .archive_version(reg::ArchiveVersionRequest {
                    model: "churn".into(),
                    version: 1,
                    actor: "x".into(),
                })
                .await
                .map(|_| ()),
            tonic::Code::FailedPrecondition,
        ),
    ] {
        assert_eq!(
            status.map(|_| tonic::Code::Ok).unwrap_or_else(|s| s.code()),
            code
        );
    }
    server.stop().await;
}

/// Registers the churn files again as version 2 (not served until an alias moves to it).
async fn register_v2(server: &TestServer) -> mercator_registry::ModelVersion {
    server
        .registry_client()
        .await
        .register_version(upload("churn"))
        .await
        .expect("register v2");
    server
        .registry
        .get_version("churn", &VersionSelector::Number(2))
        .await
        .expect("v2")
}

/// Moves churn's champion alias to version 2.
/// Registers version 2, then flips one bit of its model file in object storage.
async fn register_corrupted_v2(server: &TestServer) -> mercator_registry::ModelVersion {
    let v2 = register_v2(server).await;
    let mut model =
        std::fs::read(std::path::Path::new(CHURN_DIR).join("model.json")).expect("model");
    model[200] ^= 0x01;
    server
        .registry
        .artifacts()
        .overwrite_for_test(&v2, "model.json", model.into())
        .await
        .expect("corrupt");
    v2
}

async fn champion_to_v2(
    registry: &mut mercator_proto::v1::registry_client::RegistryClient<tonic::transport::Channel>,
) {
    registry
        .set_alias(reg::SetAliasRequest {
            model: "churn".into(),
            alias: "champion".into(),
            version: 2,
            ..Default::default()
        })
        .await
        .expect("move champion to version 2");
}

// The CLI runs as a blocking child process: keep a second worker free for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_version_is_refused_and_the_old_one_keeps_serving() {
    let server = TestServer::builder()
        .churn()
        .config(|c| c.server.instance_name = "replica-a".into())
        .start()
        .await;
    let mut registry = server.registry_client().await;
    let v2 = register_corrupted_v2(&server).await;

    champion_to_v2(&mut registry).await;
    let metric = r#"mercator_model_loads_total{model="churn",result="integrity"}"#;
    let mut seen = false;
    for _ in 0..200 {
        if server
            .metrics_text()
            .await
            .lines()
            .any(|l| l.starts_with(metric))
        {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(seen, "the failed load is counted with its reason");
    let failing = r#"mercator_model_load_failing{model="churn",reason="integrity",version="2"} 1"#;
    assert!(
        server.metrics_text().await.lines().any(|l| l == failing),
        "the failing version is a gauge"
    );
    // `models show` tells which instance failed to load which version and why, through
    // the server and straight from the registry alike.
    let url = server.url();
    for args in [
        vec!["models", "--server", url.as_str(), "show", "churn"],
        vec![
            "models",
            "--data-dir",
            server.data_dir.path().to_str().expect("utf-8"),
            "show",
            "churn",
        ],
    ] {
        let out = crate::cli::ok(&args);
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with('2') && l.contains("replica-a"))
            .unwrap_or_else(|| panic!("no load report for version 2:\n{out}"));
        assert!(line.contains("FAILED (integrity)"), "{line}");
        assert!(line.contains("sha256"), "{line}");
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with('1') && l.contains("serving")),
            "version 1 serves:\n{out}"
        );
    }

    let mut client = server.v2().await;
    let resp = client
        .model_infer(pb::ModelInferRequest {
            model_name: "churn".into(),
            inputs: vec![input("features", "FP32", vec![1, 12])],
            raw_input_contents: vec![f32_bytes(&[0.0; 12])],
            ..Default::default()
        })
        .await
        .expect("still serving")
        .into_inner();
    assert_eq!(resp.model_version, "1");

    // The same bytes would fail the same way: no new attempt while they stay as they are
    // (several poll intervals; a blind backoff would have retried by now).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let attempts = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(metric))
            .map(|v| v.trim().to_string())
    };
    assert_eq!(
        attempts(&server.metrics_text().await).as_deref(),
        Some("1"),
        "retried unchanged files"
    );
    // Once the files are fixed in object storage, the version loads and serves.
    let good = std::fs::read(std::path::Path::new(CHURN_DIR).join("model.json")).expect("model");
    server
        .registry
        .artifacts()
        .overwrite_for_test(&v2, "model.json", good.into())
        .await
        .expect("repair");
    server.wait_for_champion("churn", "2").await;
    assert!(
        !server
            .metrics_text()
            .await
            .contains("mercator_model_load_failing{"),
        "the failure is cleared once it loads"
    );
    server.stop().await;
}

// The CLI runs as a blocking child process: keep a second worker free for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_and_rollback_from_the_cli_are_served() {
    let server = TestServer::builder().churn().start().await;
    let url = server.url();
    crate::cli::ok(&["models", "--server", &url, "register", "churn", CHURN_DIR]);
    let out = crate::cli::ok(&[
        "models",
        "--server",
        &url,
        "promote",
        "churn",
        "2",
        "--reason",
        "retrained",
    ]);
    assert!(out.contains("churn previous: (new) -> 1"), "{out}");
    assert!(out.contains("churn champion: 1 -> 2"), "{out}");
    server.wait_for_champion("churn", "2").await;
    let out = crate::cli::ok(&["models", "--server", &url, "rollback", "churn"]);
    assert!(out.contains("churn champion: 2 -> 1"), "{out}");
    server.wait_for_champion("churn", "1").await;
    server.stop().await;
}

/// The demo demand forecasters' files, with the manifest patched by `edit`.
fn demand_version(
    dir: &str,
    weights: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> std::collections::BTreeMap<String, bytes::Bytes> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demand");
    let mut files = read_dir_files(&root.join(dir), &["mercator.json", weights]);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&files["mercator.json"]).expect("manifest");
    edit(&mut manifest);
    files.insert(
        "mercator.json".into(),
        bytes::Bytes::from(manifest.to_string()),
    );
    files
}

#[tokio::test]
async fn warm_up_samples_run_before_a_version_serves() {
    let history: Vec<f64> = (0..56).map(|d| 10.0 + f64::from(d % 7)).collect();
    let net = demand_version("net", "model.safetensors", |m| {
        m["warmup"] = serde_json::json!([{"history": [history], "last_date": ["2026-10-31"]}]);
    });
    // A sample the ETS bundle cannot answer (no such series): the version must not serve.
    let ets = demand_version("ets", "ets.json", |m| {
        m["warmup"] = serde_json::json!([{"sku_id": ["SKU999"], "location_id": ["nowhere"],
            "history": [[1.0]], "last_date": ["2026-10-31"]}]);
    });
    let server = TestServer::builder()
        .model("net", net)
        .model("ets", ets)
        .start()
        .await;
    server.wait_for_ready("net").await;
    let mut client = server.v2().await;
    let ready = client
        .model_ready(pb::ModelReadyRequest {
            name: "ets".into(),
            version: String::new(),
        })
        .await
        .map(|r| r.into_inner().ready)
        .unwrap_or(false);
    assert!(!ready, "a version whose warm-up fails is not served");
    let metrics = server.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with(r#"mercator_model_loads_total{model="ets",result="warm_up"}"#)),
        "the warm-up failure is counted"
    );
    // A malformed sample is refused when the version is registered.
    let bad = demand_version("net", "model.safetensors", |m| {
        m["warmup"] = serde_json::json!([{"history": [[1.0, 2.0], [3.0]]}]);
    });
    let err = server
        .registry
        .register(mercator_registry::NewVersion {
            model: "net".into(),
            files: bad,
            actor: "test".into(),
            ..Default::default()
        })
        .await
        .expect_err("ragged warm-up sample");
    assert!(err.to_string().contains("warmup[0]"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn the_version_policy_keeps_newest_and_pinned_versions_loaded() {
    let server = TestServer::builder()
        .churn()
        .config(|c| {
            c.models.keep_versions = 1;
            c.models.pinned_versions = vec!["churn@2".into()];
        })
        .start()
        .await;
    let files = || {
        read_dir_files(
            std::path::Path::new(CHURN_DIR),
            &["mercator.json", "model.json"],
        )
    };
    for _ in 0..3 {
        server
            .registry
            .register(mercator_registry::NewVersion {
                model: "churn".into(),
                files: files(),
                actor: "test".into(),
                ..Default::default()
            })
            .await
            .expect("register");
    }
    // Versions 1 (champion), 2 (pinned) and 4 (newest) load; 3 does not.
    let mut client = server.v2().await;
    let ready = |v: &str| {
        let mut client = client.clone();
        let v = v.to_string();
        async move {
            client
                .model_ready(pb::ModelReadyRequest {
                    name: "churn".into(),
                    version: v,
                })
                .await
                .map(|r| r.into_inner().ready)
                .unwrap_or(false)
        }
    };
    let mut settled = false;
    for _ in 0..200 {
        if ready("2").await && ready("4").await {
            settled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(settled, "pinned and newest versions never loaded");
    assert!(ready("1").await, "the champion");
    assert!(!ready("3").await, "neither aliased, pinned nor newest");
    let answered = client
        .model_infer(pb::ModelInferRequest {
            model_name: "churn".into(),
            model_version: "2".into(),
            inputs: vec![input("features", "FP32", vec![1, 12])],
            raw_input_contents: vec![f32_bytes(&[0.5; 12])],
            ..Default::default()
        })
        .await
        .expect("a pinned version answers by number")
        .into_inner();
    assert_eq!(answered.model_version, "2");
    server.stop().await;
}

#[tokio::test]
async fn object_store_failures_are_counted_by_operation() {
    let server = TestServer::builder().churn().start().await;
    let mut registry = server.registry_client().await;
    let v2 = register_v2(&server).await;
    // A symlink to itself: opening or statting it fails with ELOOP, an I/O error of the
    // store (a missing file would be the version's integrity failure instead).
    let artifacts = server.data_dir.path().join("artifacts");
    let model = artifacts.join(&v2.artifact_prefix).join("model.json");
    std::fs::remove_file(&model).expect("remove");
    std::os::unix::fs::symlink(&model, &model).expect("symlink loop");
    champion_to_v2(&mut registry).await;
    server
        .wait_for_metric(r#"mercator_model_loads_total{model="churn",result="storage"}"#)
        .await;
    let text = server.metrics_text().await;
    for operation in ["head", "fetch"] {
        let series = format!(r#"mercator_object_store_errors_total{{operation="{operation}"}}"#);
        assert!(
            crate::harness::metric_value(&text, &series).is_some_and(|n| n >= 1.0),
            "{series} not counted:\n{text}"
        );
    }
    crate::metrics::promtool_check(&text);

    // Registration that cannot write its files is UNAVAILABLE, and counted.
    let staging = artifacts.join("staging");
    let _ = std::fs::remove_dir_all(&staging);
    std::os::unix::fs::symlink(&staging, &staging).expect("symlink loop");
    let err = registry
        .register_version(upload("churn"))
        .await
        .expect_err("storage fails");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{}", err.message());
    let (n, _) = server
        .wait_for_metric(r#"mercator_object_store_errors_total{operation="register"}"#)
        .await;
    assert_eq!(n, 1.0);
    server.stop().await;
}

// The CLI runs as a blocking child process: keep a second worker free for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_a_corrupted_champion_falls_back_to_the_newest_earlier_version() {
    let server = TestServer::builder().churn().start().await;
    let mut registry = server.registry_client().await;
    register_corrupted_v2(&server).await;
    champion_to_v2(&mut registry).await;
    server
        .wait_for_metric(r#"mercator_model_loads_total{model="churn",result="integrity"}"#)
        .await;
    let dir = server.stop_keeping_data().await;

    // A fresh process: nothing served before, the champion's files fail verification.
    let server = TestServer::builder()
        .data_dir(dir)
        .config(|c| c.server.instance_name = "restarted".into())
        .start()
        .await;
    server.wait_for_champion("churn", "1").await;
    let failing = r#"mercator_model_load_failing{model="churn",reason="integrity",version="2"}"#;
    server.wait_for_metric_where(failing, |v| v == 1.0).await;
    let out = crate::cli::ok(&["models", "--server", &server.url(), "show", "churn"]);
    let line = |version: char| {
        out.lines()
            .find(|l| l.trim_start().starts_with(version) && l.contains("restarted"))
            .unwrap_or_else(|| panic!("no load report of version {version}:\n{out}"))
            .to_string()
    };
    assert!(line('2').contains("FAILED (integrity)"), "{out}");
    assert!(line('1').contains("serving"), "{out}");
    server.stop().await;
}
