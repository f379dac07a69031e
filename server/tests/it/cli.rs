//! The `mercator models` CLI, run as the real binary against a running server
//! (`--server`) and against the storage directly (`--data-dir`).

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::{CHURN_DIR, FIXTURES, TestServer};

pub fn mercator(args: &[&str]) -> Output {
    mercator_with(args, &[])
}

/// The CLI with extra environment variables (e.g. `MERCATOR_REGISTRY__URL`).
pub fn mercator_with(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mercator"))
        .args(args)
        .env("USER", "cli-test")
        .env_remove("MERCATOR_SERVER")
        .env_remove("MERCATOR_CONFIG")
        .envs(env.iter().cloned())
        .output()
        .expect("run mercator")
}

pub fn ok(args: &[&str]) -> String {
    ok_with(args, &[])
}

/// [`ok`] with extra environment variables.
pub fn ok_with(args: &[&str], env: &[(String, String)]) -> String {
    let out = mercator_with(args, env);
    assert!(
        out.status.success(),
        "mercator {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn fails(args: &[&str], needle: &str) {
    let out = mercator(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "mercator {args:?} should fail");
    assert!(
        stderr.contains(needle),
        "mercator {args:?}: stderr lacks {needle:?}:\n{stderr}"
    );
}

// The CLI runs as a blocking child process: keep a second worker free for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_list_show_alias_over_grpc_and_locally() {
    let server = TestServer::builder().start().await;
    let url = server.url();
    let out = ok(&[
        "models", "--server", &url, "register", "churn", CHURN_DIR, "--alias", "champion", "--tag",
        "team=crm", "--metric", "auc=0.81",
    ]);
    assert!(out.contains("registered churn@1"), "{out}");
    let bare = format!("{FIXTURES}/binary_deep-v3.model.json");
    ok(&[
        "models", "register", "--server", &url, "risk", &bare, "--alias", "champion",
    ]);

    let shown: serde_json::Value = serde_json::from_str(&ok(&[
        "models",
        "show",
        "risk@champion",
        "--json",
        "--server",
        &url,
    ]))
    .expect("json");
    let manifest: serde_json::Value =
        serde_json::from_str(shown["manifest_json"].as_str().expect("manifest"))
            .expect("manifest json");
    assert_eq!(
        manifest["inputs"][0]["shape"],
        serde_json::json!([-1, 8]),
        "width inferred from the model"
    );
    assert_eq!(
        manifest["outputs"][0]["name"], "probability",
        "output named for binary:logistic"
    );
    assert_eq!(shown["registered_by"], "cli-test");

    let churn: serde_json::Value = serde_json::from_str(&ok(&[
        "models", "--server", &url, "--json", "show", "churn@1",
    ]))
    .expect("json");
    assert_eq!(churn["tags"]["team"], "crm");
    assert_eq!(churn["metrics"]["auc"], 0.81);

    let listed: serde_json::Value =
        serde_json::from_str(&ok(&["models", "list", "--json", "--server", &url])).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    let table = ok(&["models", "list", "--server", &url]);
    assert!(
        table.lines().next().is_some_and(|h| h.starts_with("MODEL")),
        "{table}"
    );

    server.wait_for_champion("churn", "1").await;
    server.wait_for_champion("risk", "1").await;

    // Straight to the storage while the server runs (SQLite in WAL mode allows it).
    let data_dir = server.data_dir.path().display().to_string();
    ok(&[
        "models",
        "--data-dir",
        &data_dir,
        "register",
        "churn",
        CHURN_DIR,
    ]);
    let moved = ok(&[
        "models",
        "--data-dir",
        &data_dir,
        "alias",
        "churn",
        "champion",
        "2",
        "--reason",
        "retrained",
    ]);
    assert!(moved.contains("churn champion: 1 -> 2"), "{moved}");
    server.wait_for_champion("churn", "2").await;
    let history = ok(&["models", "--data-dir", &data_dir, "history", "churn"]);
    assert!(history.contains("retrained"), "{history}");
    ok(&["models", "--server", &url, "rollback", "churn"]);
    server.wait_for_champion("churn", "1").await;
    let archived = ok(&["models", "--server", &url, "archive", "churn", "2"]);
    assert!(archived.contains("archived churn@2"), "{archived}");
    let audit = ok(&["models", "--server", &url, "audit", "churn"]);
    assert!(
        audit.contains("archive") && audit.contains("register"),
        "{audit}"
    );

    fails(
        &[
            "models",
            "--server",
            &url,
            "register",
            "churn",
            "/no/such/path",
        ],
        "/no/such/path",
    );
    fails(
        &[
            "models", "--server", &url, "register", "Bad Name", CHURN_DIR,
        ],
        "not a valid name",
    );
    fails(
        &[
            "models", "--server", &url, "register", "churn", CHURN_DIR, "--tag", "novalue",
        ],
        "KEY=VALUE",
    );
    fails(
        &[
            "models",
            "--server",
            &url,
            "register",
            "churn",
            &format!("{CHURN_DIR}/train_churn.py"),
        ],
        "neither a folder",
    );
    fails(
        &[
            "models", "--server", &url, "alias", "churn", "champion", "99",
        ],
        "NOT_FOUND",
    );
    fails(&["models", "--server", &url, "show", "nope"], "NOT_FOUND");
    fails(
        &["models", "--server", "http://127.0.0.1:1", "list"],
        "cannot reach",
    );
    assert!(Path::new(CHURN_DIR).exists());
    server.stop().await;
}

#[test]
fn bad_config_exits_64() {
    let out = Command::new(env!("CARGO_BIN_EXE_mercator"))
        .args(["serve", "--grpc-addr", "not-an-address"])
        .output()
        .expect("run mercator");
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn config_show_names_each_source_and_old_names_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mercator.toml");
    std::fs::write(
        &file,
        "max_in_flight = 9\n[grpc]\naddr = \"127.0.0.1:9301\"\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_mercator"))
        .args(["config", "show", "--json", "--data-dir", "/srv/mercator"])
        .env("MERCATOR_CONFIG", &file)
        .env("MERCATOR_LIMITS__MAX_BATCH_SIZE", "12")
        .env("MERCATOR_REGISTRY__URL", "postgres://m:hunter2@db/registry")
        .output()
        .expect("run mercator");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(
        stderr.contains("`max_in_flight` is deprecated; use `max_in_flight` under [limits]"),
        "{stderr}"
    );
    let settings: Vec<serde_json::Value> = serde_json::from_str(&stdout).expect("json");
    let find = |section: &str, key: &str| {
        settings
            .iter()
            .find(|s| s["section"] == section && s["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("{section}.{key} not shown"))
    };
    let in_file = format!("file {}", file.display());
    assert_eq!(find("grpc", "addr")["value"], "127.0.0.1:9301");
    assert_eq!(find("grpc", "addr")["source"], in_file.as_str());
    assert_eq!(find("limits", "max_in_flight")["value"], 9);
    assert_eq!(
        find("limits", "max_batch_size")["source"],
        "env MERCATOR_LIMITS__MAX_BATCH_SIZE"
    );
    assert_eq!(find("server", "data_dir")["source"], "flag --data-dir");
    assert_eq!(find("metrics", "addr")["source"], "default");

    let bad = Command::new(env!("CARGO_BIN_EXE_mercator"))
        .args(["config", "show"])
        .env_remove("MERCATOR_CONFIG")
        .env("MERCATOR_LIMITS__MAX_IN_FLIGHT", "lots")
        .output()
        .expect("run mercator");
    assert_eq!(bad.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("limits.max_in_flight")
            && stderr.contains("MERCATOR_LIMITS__MAX_IN_FLIGHT"),
        "{stderr}"
    );
}

/// Registers `folder` as churn into the registry under `data`: its stdout and stderr.
fn register_churn(data: &str, folder: &str) -> (String, String) {
    let out = mercator(&["models", "--data-dir", data, "register", "churn", folder]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    (stdout, stderr)
}

/// Registering a folder warns about the files no model reads (the demo churn folder holds
/// its training data and scripts), and `.mercatorignore` leaves files out.
#[test]
fn registration_warns_of_unreferenced_files_and_honours_mercatorignore() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data").display().to_string();
    let (_, stderr) = register_churn(&data, CHURN_DIR);
    assert!(
        stderr.contains("that the manifest does not reference")
            && stderr.contains("customers.csv (")
            && stderr.contains(".mercatorignore"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("model.json ("),
        "the weights are referenced: {stderr}"
    );

    // The same folder with a .mercatorignore: only the version's own files go up.
    let folder = dir.path().join("churn");
    std::fs::create_dir(&folder).expect("mkdir");
    // Its files (the voucher campaign's models in sub-folders stay behind).
    for f in std::fs::read_dir(CHURN_DIR).expect("ls") {
        let f = f.expect("entry").path();
        if f.is_file() {
            std::fs::copy(&f, folder.join(f.file_name().expect("name"))).expect("copy");
        }
    }
    std::fs::write(
        folder.join(".mercatorignore"),
        "# training leftovers\n*.csv\n*.py\nexpected.json\nfeatures.toml\ncampaign.json\n",
    )
    .expect("ignore file");
    let (stdout, stderr) = register_churn(&data, &folder.display().to_string());
    assert!(stdout.contains("registered churn@2 (3 files)"), "{stdout}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

/// The commands that call models, against the demo: the README's first calls without
/// grpcurl, as tables and as JSON, each naming the version that answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_classify_and_forecast_call_the_demo_models() {
    let server = TestServer::builder().demo().start().await;
    let url = server.url();

    let table = ok(&["score", "churn", "C109604", "nobody", "--server", &url]);
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no row for {id}:\n{table}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("C109604")[1..5],
        ["SCORED", "0.984", "high", "1"],
        "{table}"
    );
    assert_eq!(row("nobody")[1], "NO_FEATURES", "{table}");
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "score", "churn", "C100042", "--server", &url, "--json",
    ]))
    .expect("score --json");
    assert_eq!(json["scores"][0]["status"], "SCORED");
    assert_eq!(json["scores"][0]["model_version"], "1");

    let said = ok(&[
        "classify",
        "intent",
        "my coupon code is not working",
        "--server",
        &url,
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&said).expect("classify --json");
    assert_eq!(json["intents"][0]["intent"], "discount_code", "{said}");
    assert_eq!(json["version"], "1");
    let table = ok(&[
        "classify",
        "intent",
        "I want to talk to a human",
        "--server",
        &url,
    ]);
    assert!(table.contains("hand off to a human"), "{table}");

    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "forecast",
        "demand",
        "SKU000",
        "berlin",
        "--horizon",
        "7",
        "--server",
        &url,
        "--json",
    ]))
    .expect("forecast --json");
    assert_eq!(json["version"], "1");
    assert_eq!(json["points"].as_array().map(Vec::len), Some(7));
    assert_eq!(json["points"][0]["date"], "2026-11-01");
    let table = ok(&["forecast", "demand", "SKU000", "berlin", "--server", &url]);
    assert!(
        table.contains("DATE") && table.contains("2026-11-07"),
        "{table}"
    );

    fails(
        &["score", "basket", "C1", "--server", &url],
        "mercator models alias basket champion VERSION",
    );

    // Any model, with a V2 request written as JSON: the same numbers as `score`.
    let dir = tempfile::tempdir().expect("tempdir");
    let request = dir.path().join("request.json");
    std::fs::write(
        &request,
        r#"{"inputs": [{"name": "customer_id", "shape": [2], "datatype": "BYTES",
                        "data": ["C109604", "nobody"]}]}"#,
    )
    .expect("request");
    let request = request.display().to_string();
    let table = ok(&["infer", "churn", "--input", &request, "--server", &url]);
    assert!(table.starts_with("churn@1:"), "{table}");
    assert!(table.contains("churn_probability FP32 [2]"), "{table}");
    assert!(table.contains("0.98"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "infer", "churn", "-i", &request, "--server", &url, "--json",
    ]))
    .expect("infer --json");
    assert_eq!(json["model_version"], "1");
    let p = json["outputs"][0]["data"][0].as_f64().expect("probability");
    assert!((p - 0.984).abs() < 5e-4, "{json}");
    assert_eq!(json["parameters"]["entities_without_features"], "1");
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"inputs": [{"name": "features"}]}"#,
    )
    .expect("bad request");
    fails(
        &[
            "infer",
            "churn",
            "-i",
            &dir.path().join("bad.json").display().to_string(),
            "--server",
            &url,
        ],
        "missing field `shape`",
    );
    server.stop().await;
}

/// `models init` starts a version folder from an XGBoost JSON model: the model and an
/// inferred manifest, which registers as it is; it never overwrites a manifest.
#[test]
fn models_init_writes_a_folder_that_registers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("risk");
    let folder_s = folder.display().to_string();
    let model = format!("{FIXTURES}/binary_deep-v3.model.json");
    let said = ok(&["models", "init", &folder_s, "--from", &model]);
    assert!(said.contains("mercator.json"), "{said}");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(folder.join("mercator.json")).expect("manifest written"),
    )
    .expect("manifest json");
    assert_eq!(manifest["kind"], "xgboost");
    assert_eq!(manifest["inputs"][0]["shape"], serde_json::json!([-1, 8]));
    assert_eq!(
        std::fs::read(folder.join("model.json")).expect("model copied"),
        std::fs::read(&model).expect("fixture")
    );
    let data = dir.path().join("data").display().to_string();
    let out = ok(&["models", "--data-dir", &data, "register", "risk", &folder_s]);
    assert!(out.contains("registered risk@1 (2 files)"), "{out}");
    fails(
        &["models", "init", &folder_s, "--from", &model],
        "mercator.json exists",
    );
    fails(
        &[
            "models",
            "init",
            &dir.path().join("x").display().to_string(),
            "--from",
            CHURN_DIR,
        ],
        "cannot read",
    );
}

/// Progress is drawn for a person at a terminal (here `script`'s pseudo-terminal) and
/// never for a script or a pipe, whose output is the answer alone.
#[test]
fn progress_shows_on_a_terminal_and_nowhere_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().display().to_string();
    let load: Vec<String> = vec![
        "features".to_string(),
        "--data-dir".into(),
        data.clone(),
        "load".into(),
        "customer_churn".into(),
        format!("{CHURN_DIR}/customers.csv"),
        "--ignore-unknown-columns".into(),
        "--event-time".into(),
        "2026-12-01T00:00:00Z".into(),
    ];
    ok(&[
        "features",
        "--data-dir",
        &data,
        "apply",
        &format!("{CHURN_DIR}/features.toml"),
    ]);
    let piped = mercator(&load.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(piped.status.success());
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        stderr.is_empty(),
        "nothing but the answer off a terminal: {stderr}"
    );
    assert!(String::from_utf8_lossy(&piped.stdout).starts_with("loaded 12000 rows"));

    // The same load at a terminal: the counter, then the answer.
    let mut command = vec![env!("CARGO_BIN_EXE_mercator").to_string()];
    command.extend(load);
    let line = command
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("MERCATOR_SERVER")
        .output()
        .expect("run script (util-linux)");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(" rows ("),
        "no progress at a terminal: {shown}"
    );
    assert!(shown.contains("loaded 12000 rows"), "{shown}");
}
