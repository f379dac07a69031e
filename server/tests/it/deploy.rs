//! The SRE's files in `deploy/`: the alert rules pass `promtool check rules` and their
//! unit tests (`promtool test rules`), and the dashboard and the rules only use metrics
//! the server really exports (checked against a server's `/metrics` in
//! `traffic::shadow_traffic_is_measured_and_never_changes_an_answer`, see
//! [`check_names_against`]).

use std::path::Path;
use std::process::Command;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy");

/// Families only exported in a failure state, which the calling test does not provoke,
/// only with TLS on (`tls.rs` reads that one from a TLS server's `/metrics`), only once
/// outcomes were judged (`quality.rs` and `experiments.rs` read those from such a
/// server), or once the prediction log wrote or dropped a row (`prediction_log.rs` reads
/// it).
const FAILURE_ONLY: &[&str] = &[
    "mercator_model_load_failing",
    "mercator_tls_certificate_expiry_seconds",
    "mercator_model_quality",
    "mercator_prediction_log_rows_total",
    "mercator_intervention_uplift",
    "mercator_intervention_uplift_lower",
    "mercator_intervention_uplift_upper",
];

/// Exported only by a server with `[streams]` sources (`streams.rs` checks them there).
pub const STREAMS_ONLY: &[&str] = &[
    "mercator_stream_lag",
    "mercator_stream_messages_total",
    "mercator_stream_errors_total",
    "mercator_stream_triggers_total",
];

fn promtool() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("promtool"))
        .find(|p| p.is_file())
}

/// The chart carries its own copies of the rules and the dashboard (so `helm/` can be
/// vendored or packaged alone, without links into `deploy/`); they must be the same files.
#[test]
fn the_charts_copies_of_the_rules_and_dashboard_are_deploys() {
    for (chart, source) in [
        ("files/alerts.yml", "prometheus/alerts.yml"),
        ("files/dashboard.json", "grafana/mercator.json"),
    ] {
        let chart_path = format!("{DEPLOY}/../helm/mercator/{chart}");
        let meta = std::fs::symlink_metadata(&chart_path).expect("the chart's copy");
        assert!(
            meta.is_file(),
            "helm/mercator/{chart} must be a file, not a link"
        );
        let copy = std::fs::read(&chart_path).expect("read the chart's copy");
        let original = std::fs::read(format!("{DEPLOY}/{source}")).expect("read deploy/");
        assert!(
            copy == original,
            "helm/mercator/{chart} differs from deploy/{source}: \
             cp deploy/{source} helm/mercator/{chart}"
        );
    }
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let Some(promtool) = promtool() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install promtool (Debian package prometheus)"
        );
        eprintln!("promtool not installed: rules not checked");
        return;
    };
    let dir = format!("{DEPLOY}/prometheus");
    for args in [
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts_test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every `mercator_…` metric the dashboard and the alert rules name, as families.
fn referenced() -> std::collections::BTreeSet<String> {
    let dashboard =
        std::fs::read_to_string(format!("{DEPLOY}/grafana/mercator.json")).expect("dashboard");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard json");
    assert!(
        parsed["panels"].as_array().is_some_and(|p| p.len() >= 8),
        "panels"
    );
    let rules = std::fs::read_to_string(format!("{DEPLOY}/prometheus/alerts.yml")).expect("rules");
    let mut names = std::collections::BTreeSet::new();
    for text in [dashboard, rules] {
        for (i, _) in text.match_indices("mercator_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name)
                .to_string();
            names.insert(family);
        }
    }
    names
}

/// Asserts that every metric the dashboard and rules use is a family in `exposition`.
pub fn check_names_against(exposition: &str) {
    let exported: std::collections::BTreeSet<&str> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for name in referenced() {
        assert!(
            exported.contains(name.as_str())
                || FAILURE_ONLY.contains(&name.as_str())
                || STREAMS_ONLY.contains(&name.as_str()),
            "deploy/ uses {name}, which the server does not export:\n{exposition}"
        );
    }
}
