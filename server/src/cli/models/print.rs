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
pub(super) fn print_loads(loads: &[LoadReport], ttl: std::time::Duration) {
    if loads.is_empty() {
        return;
    }
    println!();
    println!("Loads reported by serving instances:");
    let now = chrono::Utc::now();
    let rows: Vec<Vec<String>> = loads
        .iter()
        .map(|l| {
            // An instance silent past the TTL went away: its report no longer counts.
            let silent = now
                .signed_duration_since(l.seen_at)
                .to_std()
                .is_ok_and(|quiet| quiet > ttl);
            vec![
                l.version.to_string(),
                l.instance.clone(),
                match (silent, l.loaded) {
                    (true, _) => format!("gone (last seen {})", l.seen_at.format("%H:%M:%S")),
                    (false, true) => "serving".into(),
                    (false, false) => format!("FAILED ({})", l.reason),
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
