//! What `mercator models` prints: versions, alias moves, load reports, traffic splits.

use mercator_registry::ModelVersion;
use mercator_registry::model::{AliasMove, LoadReport, TrafficRoute};

use crate::cli::table;

pub(super) fn aliases_note(aliases: &[String]) -> String {
    if aliases.is_empty() {
        String::new()
    } else {
        format!(", aliased {}", aliases.join(", "))
    }
}

pub(super) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(super) fn print_move(m: &AliasMove, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(m);
    }
    let from = m
        .from_version
        .map_or("(new)".to_string(), |v| v.to_string());
    println!("{} {}: {} -> {}", m.model, m.alias, from, m.to_version);
    Ok(())
}

pub(super) fn print_version(v: &ModelVersion) {
    println!("model:        {}", v.model);
    println!("version:      {}", v.version);
    println!("status:       {}", v.status.as_str());
    println!("aliases:      {}", v.aliases.join(", "));
    println!(
        "registered:   {} by {}",
        v.registered_at.format("%Y-%m-%d %H:%M:%S UTC"),
        v.registered_by
    );
    println!("description:  {}", v.description);
    println!("artifacts:    {}", v.artifact_prefix);
    for f in &v.files {
        println!(
            "  {:<24} {:>10} bytes  sha256 {}",
            f.path, f.size_bytes, f.sha256
        );
    }
    for (k, val) in &v.tags {
        println!("tag:          {k}={val}");
    }
    for (k, val) in &v.metrics {
        println!("metric:       {k}={val}");
    }
    println!(
        "manifest:     {}",
        v.manifest_json.replace('\n', "\n              ")
    );
}

/// What the serving instances saw loading the versions: a version an alias points at but
/// that failed to load is not being served, and says why here.
pub(super) fn print_loads(loads: &[LoadReport]) {
    if loads.is_empty() {
        return;
    }
    println!();
    println!("Loads reported by serving instances:");
    let rows: Vec<Vec<String>> = loads
        .iter()
        .map(|l| {
            vec![
                l.version.to_string(),
                l.instance.clone(),
                if l.loaded {
                    "serving".into()
                } else {
                    format!("FAILED ({})", l.reason)
                },
                l.attempts.to_string(),
                l.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                l.message.clone(),
            ]
        })
        .collect();
    table::print(
        &["VERSION", "INSTANCE", "LOAD", "ATTEMPTS", "AT", "WHY"],
        &rows,
    );
}

/// A traffic split in one line, e.g. `champion 90%, challenger 10%, shadow candidate 100%`.
pub(super) fn describe_traffic(routes: &[TrafficRoute]) -> String {
    let mut parts: Vec<String> = routes
        .iter()
        .map(|r| {
            let role = if r.shadow { "shadow " } else { "" };
            format!("{role}{} {}%", r.alias, r.percent)
        })
        .collect();
    if !routes.iter().any(|r| !r.shadow) {
        parts.insert(0, format!("{} 100%", mercator_registry::CHAMPION));
    }
    parts.join(", ")
}
