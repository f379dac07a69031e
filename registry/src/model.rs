//! The registry's domain types: validated names, versions, aliases, history and audit.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{RegistryError, Result};

/// The alias served by default.
pub const CHAMPION: &str = "champion";

/// The alias `promote` leaves on the version the champion pointed at before.
pub const PREVIOUS: &str = "previous";

/// Checks a model or alias name: 1–64 characters of lower-case ASCII letters, digits,
/// `-`, `_` and `.`, starting with a letter or digit. Names become object-storage path
/// segments and metrics labels, so they are kept tame.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(RegistryError::invalid(
            field,
            format!(
                "'{}' is not a valid name: use 1-64 of a-z, 0-9, '-', '_', '.' (never '..'), starting with a letter or digit",
                shown(name)
            ),
        ))
    }
}

/// A client's text as an error may echo it: at most 80 characters, control characters
/// escaped, so a 10 KB or terminal-rewriting name comes back harmless.
fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(80)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// Checks a file path inside a version's folder: relative, `/`-separated, no empty,
/// `.` or `..` segments, no backslashes.
pub fn check_file_path(field: &str, path: &str) -> Result<()> {
    let ok = !path.is_empty()
        && path.len() <= 255
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if ok {
        Ok(())
    } else {
        Err(RegistryError::invalid(
            field,
            format!(
                "'{}' is not a relative path inside the version folder",
                shown(path)
            ),
        ))
    }
}

/// Lifecycle of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// Registered and servable.
    Ready,
    /// Kept for the record; not servable, cannot be aliased.
    Archived,
}

impl VersionStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Ready => "ready",
            VersionStatus::Archived => "archived",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<VersionStatus> {
        match s {
            "ready" => Ok(VersionStatus::Ready),
            "archived" => Ok(VersionStatus::Archived),
            other => Err(RegistryError::Integrity(format!(
                "unknown version status '{other}' in the database"
            ))),
        }
    }
}

/// One file of a version, as recorded at registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactFile {
    /// Path relative to the version's folder.
    pub path: String,
    /// Lower-case hex sha256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// A registered, immutable model version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    /// Model name.
    pub model: String,
    /// Version number, 1, 2, 3… per model.
    pub version: u64,
    /// Lifecycle status.
    pub status: VersionStatus,
    /// The manifest, as JSON text exactly as registered.
    pub manifest_json: String,
    /// The files with their checksums.
    pub files: Vec<ArtifactFile>,
    /// Free-form tags.
    pub tags: BTreeMap<String, String>,
    /// Free-form metrics (e.g. validation AUC).
    pub metrics: BTreeMap<String, f64>,
    /// Free text.
    pub description: String,
    /// Who registered it.
    pub registered_by: String,
    /// When it was registered.
    pub registered_at: DateTime<Utc>,
    /// Aliases currently pointing at it.
    pub aliases: Vec<String>,
    /// Object-storage prefix of its files, e.g. `models/churn/3`.
    pub artifact_prefix: String,
}

/// What one serving instance last saw when it loaded a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    /// Model name.
    pub model: String,
    /// Version number.
    pub version: u64,
    /// The instance that loaded it (its host name, or the configured `instance_name`).
    pub instance: String,
    /// Whether the version loaded and serves there.
    pub loaded: bool,
    /// A stable tag of why it failed (`checksum`, `manifest`, `build`, `warm_up`…); empty
    /// when loaded.
    pub reason: String,
    /// Why, in words; empty when loaded.
    pub message: String,
    /// Failed attempts in a row (0 when loaded).
    pub attempts: u32,
    /// When the instance last tried.
    pub at: DateTime<Utc>,
    /// When the instance last said it is alive (its heartbeat); a report whose instance
    /// has been silent longer than `registry.instance_ttl_secs` is from a replica that
    /// went away, and does not count as serving.
    pub seen_at: DateTime<Utc>,
}

/// An alias and the version it points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alias {
    /// Alias name.
    pub name: String,
    /// Version it points at.
    pub version: u64,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
}

/// A share of a model's default traffic (requests that name no version) given to an
/// alias. Live routes split the traffic; a shadow route gets a copy of `percent` of it and
/// its answers are discarded (only measured).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficRoute {
    /// The alias the share goes to.
    pub alias: String,
    /// 1–100: the share of the traffic, in percent.
    pub percent: u32,
    /// Whether the alias only shadows (gets a copy) rather than answers.
    pub shadow: bool,
}

impl TrafficRoute {
    /// Parses `ALIAS=PERCENT`, the form the CLI takes.
    pub fn parse(text: &str, shadow: bool) -> Result<TrafficRoute> {
        let field = if shadow { "shadow" } else { "route" };
        let (alias, percent) = text.split_once('=').ok_or_else(|| {
            RegistryError::invalid(field, format!("'{text}' is not ALIAS=PERCENT"))
        })?;
        let percent = percent.trim().parse::<u32>().map_err(|_| {
            RegistryError::invalid(
                field,
                format!("'{percent}' in '{text}' is not a whole percent"),
            )
        })?;
        Ok(TrafficRoute {
            alias: alias.trim().to_string(),
            percent,
            shadow,
        })
    }
}

/// Checks a traffic split: known names, each alias once, percents of 1–100, live routes
/// summing to 100 (when there are any), and no alias both live and shadow.
pub fn check_traffic(routes: &[TrafficRoute]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in routes.iter().enumerate() {
        check_name(&format!("routes[{i}].alias"), &r.alias)?;
        if !seen.insert(r.alias.as_str()) {
            return Err(RegistryError::invalid(
                format!("routes[{i}].alias"),
                format!("alias '{}' is given twice", r.alias),
            ));
        }
        if !(1..=100).contains(&r.percent) {
            return Err(RegistryError::invalid(
                format!("routes[{i}].percent"),
                format!(
                    "{} is not a share of 1-100 percent (drop the route instead)",
                    r.percent
                ),
            ));
        }
    }
    let live: u32 = routes.iter().filter(|r| !r.shadow).map(|r| r.percent).sum();
    if live != 0 && live != 100 {
        return Err(RegistryError::invalid(
            "routes",
            format!("the live routes add up to {live} percent, not 100"),
        ));
    }
    Ok(())
}

/// A model and its aliases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// Model name.
    pub name: String,
    /// Description of the latest version, for listings.
    pub description: String,
    /// Highest registered version number (0 when none).
    pub latest_version: u64,
    /// Its aliases.
    pub aliases: Vec<Alias>,
    /// How its default traffic is shared over the aliases (empty: all to the champion).
    pub traffic: Vec<TrafficRoute>,
    /// When the model was first registered.
    pub created_at: DateTime<Utc>,
}

/// One move of an alias, kept forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AliasMove {
    /// Model name.
    pub model: String,
    /// Alias name.
    pub alias: String,
    /// Version before the move; `None` when the alias was created.
    pub from_version: Option<u64>,
    /// Version after the move.
    pub to_version: u64,
    /// Who moved it.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When.
    pub moved_at: DateTime<Utc>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: u64,
    /// Who acted.
    pub actor: String,
    /// What was done: `register`, `set_alias`, `rollback_alias`, `archive`.
    pub action: String,
    /// The model acted on.
    pub model: String,
    /// The version acted on, if one.
    pub version: Option<u64>,
    /// Details as JSON.
    pub detail: serde_json::Value,
    /// When.
    pub at: DateTime<Utc>,
}

/// Which version of a model to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    /// A version number.
    Number(u64),
    /// The version an alias points at.
    Alias(String),
}

impl VersionSelector {
    /// Parses `NAME`, `NAME@3` or `NAME@alias`; a bare name means the champion.
    pub fn parse_reference(reference: &str) -> Result<(String, VersionSelector)> {
        let (name, sel) = match reference.split_once('@') {
            None => (reference, VersionSelector::Alias(CHAMPION.into())),
            Some((name, v)) => match v.parse::<u64>() {
                Ok(n) => (name, VersionSelector::Number(n)),
                Err(_) => (name, VersionSelector::Alias(v.into())),
            },
        };
        check_name("model", name)?;
        Ok((name.to_string(), sel))
    }
}

/// A new version to register.
#[derive(Debug, Clone, Default)]
pub struct NewVersion {
    /// Model name (created on first registration).
    pub model: String,
    /// Files by relative path; must include `mercator.json`.
    pub files: BTreeMap<String, bytes::Bytes>,
    /// Free-form tags.
    pub tags: BTreeMap<String, String>,
    /// Free-form metrics.
    pub metrics: BTreeMap<String, f64>,
    /// Free text; defaults to the manifest's description.
    pub description: String,
    /// Alias to point at the new version, if any.
    pub alias: Option<String>,
    /// Who registers it.
    pub actor: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        for good in ["churn", "churn-v2", "a", "x.y_z"] {
            check_name("model", good).unwrap();
        }
        for bad in [
            "",
            "Churn",
            "-x",
            "a/b",
            "a b",
            "a..b",
            "a\nb",
            "/abs",
            &"x".repeat(65),
        ] {
            assert!(check_name("model", bad).is_err(), "{bad}");
        }
        for good in ["model.json", "sub/dir/w.bin"] {
            check_file_path("p", good).unwrap();
        }
        for bad in [
            "",
            "/abs",
            "../up",
            "a/..",
            "a//b",
            "a/./b",
            "a\\b",
            "a\u{7}b",
            "x\ny",
            &"p/".repeat(200),
        ] {
            assert!(check_file_path("p", bad).is_err(), "{bad}");
        }
        let long = check_name("model", &format!("{}\u{1b}[2J", "X".repeat(10_000)))
            .expect_err("bad")
            .to_string();
        assert!(long.len() < 300 && !long.contains('\u{1b}'), "{long}");
    }

    #[test]
    fn references() {
        assert_eq!(
            VersionSelector::parse_reference("churn").unwrap().1,
            VersionSelector::Alias("champion".into())
        );
        assert_eq!(
            VersionSelector::parse_reference("churn@3").unwrap().1,
            VersionSelector::Number(3)
        );
        assert_eq!(
            VersionSelector::parse_reference("churn@challenger")
                .unwrap()
                .1,
            VersionSelector::Alias("challenger".into())
        );
        assert!(VersionSelector::parse_reference("Bad@1").is_err());
    }
}
