//! Entities and feature views, declared in TOML and applied idempotently.
//!
//! ```toml
//! [[entities]]
//! name = "customer"
//! join_keys = ["customer_id"]
//!
//! [[feature_views]]
//! name = "customer_activity"
//! entity = "customer"
//! ttl = "90d"                     # humantime; "0s" means values never expire
//! fields = [
//!   { name = "days_since_last_order", type = "float32" },
//!   { name = "last_nps", type = "float32" },
//! ]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use crate::value::FieldType;
use crate::{FeatureError, Result};

/// Something that owns feature rows, identified by its join keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// Entity name, e.g. `customer`.
    pub name: String,
    /// Key columns, e.g. `["customer_id"]` or `["sku_id", "location_id"]`.
    pub join_keys: Vec<String>,
}

/// A typed feature column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// Its type.
    pub field_type: FieldType,
}

/// A named group of fields about one entity, with a time to live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureView {
    /// View name.
    pub name: String,
    /// The entity its rows are keyed by.
    pub entity: Entity,
    /// Its fields, in declaration order.
    pub fields: Vec<Field>,
    /// Values older than this read as expired; `None` means never.
    pub ttl: Option<Duration>,
}

impl FeatureView {
    /// Index of a field by name.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// [`FeatureView::field_index`], trying `hint` first: callers walking a list of
    /// names that follows the view's order (a model's inputs usually do) pass the index
    /// after the last one found, and each name costs one comparison, not a scan.
    pub fn field_index_from(&self, name: &str, hint: usize) -> Option<usize> {
        match self.fields.get(hint) {
            Some(f) if f.name == name => Some(hint),
            _ => self.field_index(name),
        }
    }
}

/// A complete set of definitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Definitions {
    /// Entities by name.
    pub entities: BTreeMap<String, Entity>,
    /// Feature views by name.
    pub views: BTreeMap<String, FeatureView>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    entities: Vec<EntityDoc>,
    #[serde(default)]
    feature_views: Vec<ViewDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityDoc {
    name: String,
    join_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewDoc {
    name: String,
    entity: String,
    #[serde(default)]
    ttl: Option<String>,
    fields: Vec<FieldDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldDoc {
    name: String,
    #[serde(rename = "type")]
    field_type: FieldType,
}

/// Names of entities, views, keys and fields: 1–64 of `a-z`, `0-9`, `_`, starting with a
/// letter, so they are safe as Redis key parts, SQL identifiers and metric labels.
fn check_name(field: &str, name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(FeatureError::definition(
            field,
            format!(
                "'{name}' is not a valid name: use 1-64 of a-z, 0-9, '_', starting with a letter"
            ),
        ))
    }
}

impl Definitions {
    /// Parses and checks a definitions file.
    pub fn from_toml(text: &str) -> Result<Definitions> {
        let doc: FileDoc = toml::from_str(text)
            .map_err(|e| FeatureError::definition("definitions", e.to_string()))?;
        let mut defs = Definitions::default();
        for (i, e) in doc.entities.into_iter().enumerate() {
            let at = format!("entities[{i}]");
            check_name(&format!("{at}.name"), &e.name)?;
            if e.join_keys.is_empty() {
                return Err(FeatureError::definition(
                    format!("{at}.join_keys"),
                    "at least one join key is needed",
                ));
            }
            let mut seen = BTreeSet::new();
            for k in &e.join_keys {
                check_name(&format!("{at}.join_keys"), k)?;
                if !seen.insert(k) {
                    return Err(FeatureError::definition(
                        format!("{at}.join_keys"),
                        format!("'{k}' appears twice"),
                    ));
                }
            }
            let name = e.name.clone();
            if defs
                .entities
                .insert(
                    name.clone(),
                    Entity {
                        name: e.name,
                        join_keys: e.join_keys,
                    },
                )
                .is_some()
            {
                return Err(FeatureError::definition(
                    at,
                    format!("entity '{name}' is declared twice"),
                ));
            }
        }
        for (i, v) in doc.feature_views.into_iter().enumerate() {
            let at = format!("feature_views[{i}]");
            check_name(&format!("{at}.name"), &v.name)?;
            let entity = defs.entities.get(&v.entity).cloned().ok_or_else(|| {
                FeatureError::definition(
                    format!("{at}.entity"),
                    format!("entity '{}' is not declared", v.entity),
                )
            })?;
            let ttl = match v.ttl.as_deref() {
                None => None,
                Some(text) => {
                    let d = humantime::parse_duration(text).map_err(|e| {
                        FeatureError::definition(format!("{at}.ttl"), format!("'{text}': {e}"))
                    })?;
                    Some(d).filter(|d| !d.is_zero())
                }
            };
            if v.fields.is_empty() {
                return Err(FeatureError::definition(
                    format!("{at}.fields"),
                    "at least one field is needed",
                ));
            }
            let mut seen = BTreeSet::new();
            for (j, f) in v.fields.iter().enumerate() {
                check_name(&format!("{at}.fields[{j}].name"), &f.name)?;
                if entity.join_keys.contains(&f.name) {
                    return Err(FeatureError::definition(
                        format!("{at}.fields[{j}].name"),
                        format!("'{}' is a join key of '{}'", f.name, entity.name),
                    ));
                }
                if !seen.insert(&f.name) {
                    return Err(FeatureError::definition(
                        format!("{at}.fields[{j}].name"),
                        format!("'{}' appears twice", f.name),
                    ));
                }
            }
            let fields = v
                .fields
                .into_iter()
                .map(|f| Field {
                    name: f.name,
                    field_type: f.field_type,
                })
                .collect();
            let name = v.name.clone();
            if defs
                .views
                .insert(
                    name.clone(),
                    FeatureView {
                        name: v.name,
                        entity,
                        fields,
                        ttl,
                    },
                )
                .is_some()
            {
                return Err(FeatureError::definition(
                    at,
                    format!("feature view '{name}' is declared twice"),
                ));
            }
        }
        Ok(defs)
    }

    /// Checks that replacing `self` (what is stored) by `next` keeps stored data readable:
    /// an entity keeps its join keys, and a view keeps its entity and the type of every
    /// field it keeps. Adding entities, views and fields, dropping fields, views and
    /// entities, and changing TTLs are allowed (a removed view's stored rows are left
    /// alone, unread). Returns what would change, in words, for the operator.
    pub fn plan_apply(&self, next: &Definitions) -> Result<Vec<String>> {
        let mut changes = Vec::new();
        for (name, e) in &next.entities {
            match self.entities.get(name) {
                None => changes.push(format!("add entity {name}")),
                Some(old) if old.join_keys != e.join_keys => {
                    return Err(FeatureError::Incompatible(format!(
                        "entity '{name}' has join keys {:?}; changing them to {:?} would orphan its stored rows",
                        old.join_keys, e.join_keys
                    )));
                }
                Some(_) => {}
            }
        }
        for (name, v) in &next.views {
            let Some(old) = self.views.get(name) else {
                changes.push(format!("add feature view {name}"));
                continue;
            };
            if old.entity.name != v.entity.name {
                return Err(FeatureError::Incompatible(format!(
                    "feature view '{name}' is keyed by '{}'; it cannot move to '{}'",
                    old.entity.name, v.entity.name
                )));
            }
            for f in &v.fields {
                match old.fields.iter().find(|o| o.name == f.name) {
                    None => changes.push(format!("add field {name}.{}", f.name)),
                    Some(o) if o.field_type != f.field_type => {
                        return Err(FeatureError::Incompatible(format!(
                            "field {name}.{} is {}; changing it to {} would break stored values (add a new field instead)",
                            f.name,
                            o.field_type.as_str(),
                            f.field_type.as_str()
                        )));
                    }
                    Some(_) => {}
                }
            }
            for o in &old.fields {
                if v.field_index(&o.name).is_none() {
                    changes.push(format!("drop field {name}.{}", o.name));
                }
            }
            if old.ttl != v.ttl {
                changes.push(format!("change ttl of {name}"));
            }
        }
        // Removals are changes too: without them, an apply that only removes would be
        // taken for a no-op and silently not saved.
        for name in self.views.keys().filter(|n| !next.views.contains_key(*n)) {
            changes.push(format!("remove feature view {name}"));
        }
        for name in self
            .entities
            .keys()
            .filter(|n| !next.entities.contains_key(*n))
        {
            changes.push(format!("remove entity {name}"));
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [[entities]]
        name = "customer"
        join_keys = ["customer_id"]

        [[entities]]
        name = "sku_location"
        join_keys = ["sku_id", "location_id"]

        [[feature_views]]
        name = "customer_activity"
        entity = "customer"
        ttl = "90d"
        fields = [
          { name = "orders_90d", type = "float32" },
          { name = "segment", type = "string" },
        ]

        [[feature_views]]
        name = "daily_sales"
        entity = "sku_location"
        fields = [{ name = "units", type = "float32_list" }]
    "#;

    #[test]
    fn parses_entities_views_and_ttl() {
        let d = Definitions::from_toml(GOOD).unwrap();
        let v = &d.views["customer_activity"];
        assert_eq!(v.entity.join_keys, vec!["customer_id"]);
        assert_eq!(v.ttl, Some(Duration::from_secs(90 * 86400)));
        assert_eq!(v.fields[1].field_type, FieldType::String);
        assert_eq!(d.views["daily_sales"].ttl, None);
        assert_eq!(d.views["daily_sales"].entity.join_keys.len(), 2);
    }

    #[test]
    fn refuses_bad_definitions_naming_the_place() {
        for (bad, needle) in [
            (
                GOOD.replace("\"orders_90d\"", "\"Orders\""),
                "feature_views[0].fields[0].name",
            ),
            (GOOD.replace("float32_list", "tensor"), "unknown variant"),
            (
                GOOD.replace("entity = \"customer\"", "entity = \"shopper\""),
                "entity 'shopper' is not declared",
            ),
            (GOOD.replace("\"90d\"", "\"soon\""), "feature_views[0].ttl"),
            (
                GOOD.replace("{ name = \"segment\"", "{ name = \"orders_90d\""),
                "appears twice",
            ),
            (
                GOOD.replace("{ name = \"segment\"", "{ name = \"customer_id\""),
                "join key",
            ),
            (
                GOOD.replace("join_keys = [\"customer_id\"]", "join_keys = []"),
                "at least one join key",
            ),
            (
                GOOD.replace("ttl = \"90d\"", "ttl = \"90d\"\ncolour = \"red\""),
                "colour",
            ),
        ] {
            let err = Definitions::from_toml(&bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn apply_allows_additions_and_refuses_breaking_changes() {
        let old = Definitions::from_toml(GOOD).unwrap();
        assert!(old.plan_apply(&old).unwrap().is_empty(), "idempotent");
        let grown = Definitions::from_toml(&GOOD.replace(
            "{ name = \"segment\", type = \"string\" },",
            "{ name = \"segment\", type = \"string\" },\n{ name = \"nps\", type = \"float64\" },",
        ))
        .unwrap();
        assert_eq!(
            old.plan_apply(&grown).unwrap(),
            vec!["add field customer_activity.nps"]
        );
        let retyped = Definitions::from_toml(&GOOD.replace(
            "\"orders_90d\", type = \"float32\"",
            "\"orders_90d\", type = \"int64\"",
        ))
        .unwrap();
        let err = old.plan_apply(&retyped).unwrap_err().to_string();
        assert!(
            err.contains("customer_activity.orders_90d is float32"),
            "{err}"
        );
        let rekeyed =
            Definitions::from_toml(&GOOD.replace("[\"customer_id\"]", "[\"customer_key\"]"))
                .unwrap();
        assert!(old.plan_apply(&rekeyed).is_err());
    }

    #[test]
    fn removing_views_and_entities_is_a_change() {
        let old = Definitions::from_toml(GOOD).unwrap();
        let only_customers = GOOD.split("[[feature_views]]").take(2).collect::<Vec<_>>();
        let without_sales = Definitions::from_toml(
            &only_customers
                .join("[[feature_views]]")
                .replace("[[entities]]\n        name = \"sku_location\"\n        join_keys = [\"sku_id\", \"location_id\"]", ""),
        )
        .unwrap();
        assert_eq!(
            old.plan_apply(&without_sales).unwrap(),
            vec![
                "remove feature view daily_sales",
                "remove entity sku_location"
            ]
        );
    }
}
