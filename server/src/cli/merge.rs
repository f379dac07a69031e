//! `mercator features apply --merge`: the applied definitions with a file's entities and
//! feature views added or replaced by name, everything else kept, so that adding one view
//! does not mean copying every definition into one file (an apply takes the whole state).

use anyhow::{Context, bail};
use toml::{Table, Value};

/// The sections a definitions file holds, each an array of tables with a `name`.
const SECTIONS: [&str; 2] = ["entities", "feature_views"];

/// `current` (the applied TOML) with `file`'s entities and views added, or replacing
/// those of the same name; the result, as TOML, is what to apply.
pub(super) fn merge(current: &str, file: &str) -> anyhow::Result<String> {
    let mut merged: Table = toml::from_str(current).context("the applied definitions")?;
    let update: Table = toml::from_str(file).context("the definitions file")?;
    for (key, value) in update {
        if !SECTIONS.contains(&key.as_str()) {
            bail!("'{key}' is not a section of a definitions file (entities, feature_views)");
        }
        let Value::Array(items) = value else {
            bail!("'{key}' must be an array of tables ([[{key}]])");
        };
        let into = merged
            .entry(key.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(existing) = into else {
            bail!("the applied definitions' '{key}' is not an array");
        };
        for item in items {
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .with_context(|| format!("an entry of '{key}' has no name"))?
                .to_string();
            match existing
                .iter_mut()
                .find(|e| e.get("name").and_then(Value::as_str) == Some(name.as_str()))
            {
                Some(slot) => *slot = item,
                None => existing.push(item),
            }
        }
    }
    Ok(toml::to_string(&merged)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURRENT: &str = r#"
[[entities]]
name = "customer"
join_keys = ["customer_id"]

[[feature_views]]
name = "activity"
entity = "customer"
fields = [{ name = "orders_90d", type = "float32" }]
"#;

    #[test]
    fn a_file_with_one_view_adds_it_and_keeps_the_rest() {
        let file = r#"
[[feature_views]]
name = "support"
entity = "customer"
fields = [{ name = "tickets_90d", type = "int64" }]
"#;
        let merged = merge(CURRENT, file).expect("merge");
        let defs = mercator_features::definitions::Definitions::from_toml(&merged).expect("valid");
        assert!(defs.views.contains_key("activity") && defs.views.contains_key("support"));
        // The same name replaces.
        let replace = r#"
[[feature_views]]
name = "activity"
entity = "customer"
fields = [{ name = "orders_90d", type = "float32" }, { name = "spend_90d", type = "float32" }]
"#;
        let merged = merge(&merged, replace).expect("merge");
        let defs = mercator_features::definitions::Definitions::from_toml(&merged).expect("valid");
        assert_eq!(defs.views["activity"].fields.len(), 2);
        assert_eq!(defs.views.len(), 2);
        assert!(merge(CURRENT, "views = 1").is_err());
        assert!(merge(CURRENT, "[[feature_views]]\nentity = \"customer\"").is_err());
    }
}
