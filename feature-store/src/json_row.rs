//! A feature row from a JSON object: how an event from a stream (a Kafka message) becomes
//! a [`PushRow`] of a view. The object's fields name the view's join keys, its fields and
//! `event_timestamp`; a field map renames them where the producer's names differ. Fields
//! the view does not have are ignored (an event carries more than one view needs); a
//! field of the view that is absent or `null` is written as null, as `Push` does. Every
//! refusal names the message's field, so a dead-letter record says what to fix.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::definitions::FeatureView;
use crate::online::PushRow;
use crate::value::{FieldType, Value};

/// The name of the event time in a message, unless the field map renames it.
pub const EVENT_TIMESTAMP: &str = "event_timestamp";

/// How a number in `event_timestamp` counts time since the Unix epoch (an RFC 3339 text
/// is read whatever this says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EpochUnit {
    /// Seconds (may have a fraction), as Unix time and pandas' `unit="s"`.
    #[default]
    Seconds,
    /// Milliseconds, as JavaScript's `Date.now()` and Kafka's record timestamps.
    Millis,
    /// Microseconds.
    Micros,
}

/// A message's field that cannot become the row, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BadField {
    /// The field's name in the message.
    pub field: String,
    /// What was expected.
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> BadField {
    BadField {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Reads a row of `view` from `object`. `names` maps a name of the view (a join key, a
/// field or `event_timestamp`) to the message's name for it.
pub fn push_row(
    view: &FeatureView,
    object: &Map<String, Json>,
    names: &BTreeMap<String, String>,
    unit: EpochUnit,
) -> Result<PushRow, BadField> {
    let name_of = |n: &str| names.get(n).map_or(n, String::as_str).to_string();
    let mut key = Vec::with_capacity(view.entity.join_keys.len());
    for k in &view.entity.join_keys {
        let field = name_of(k);
        key.push(key_text(&field, object.get(&field))?);
    }
    let field = name_of(EVENT_TIMESTAMP);
    let event_time_micros = match object.get(&field) {
        None | Some(Json::Null) => return Err(bad(&field, "missing: every event needs its time")),
        Some(t) => timestamp_micros(&field, t, unit)?,
    };
    let mut values = Vec::with_capacity(view.fields.len());
    for f in &view.fields {
        let field = name_of(&f.name);
        let value = match object.get(&field) {
            None | Some(Json::Null) => None,
            Some(v) => Some(typed(&field, f.field_type, v)?),
        };
        values.push((f.name.clone(), value));
    }
    Ok(PushRow {
        key,
        event_time_micros,
        values,
    })
}

/// A join key's value: text, or an integer written as one (ids often are).
fn key_text(field: &str, v: Option<&Json>) -> Result<String, BadField> {
    match v {
        Some(Json::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Json::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        None | Some(Json::Null) => Err(bad(field, "missing: the entity's join key")),
        Some(_) => Err(bad(
            field,
            "a join key must be a non-empty string or an integer",
        )),
    }
}

fn timestamp_micros(field: &str, v: &Json, unit: EpochUnit) -> Result<i64, BadField> {
    time_micros(v, unit).map_err(|message| bad(field, message))
}

/// An event time: RFC 3339 text (`2026-12-07T10:00:00Z`), or a number of `unit`s since
/// the epoch; microseconds since the epoch, or what is wrong.
pub fn time_micros(v: &Json, unit: EpochUnit) -> Result<i64, String> {
    match v {
        Json::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_micros())
            .map_err(|e| format!("not an RFC 3339 time ({e})")),
        Json::Number(n) => {
            let scale = match unit {
                EpochUnit::Seconds => 1e6,
                EpochUnit::Millis => 1e3,
                EpochUnit::Micros => 1.0,
            };
            let micros = n
                .as_i64()
                .and_then(|i| i.checked_mul(scale as i64))
                .map(|m| m as f64)
                .or_else(|| n.as_f64().map(|f| (f * scale).round()))
                .filter(|m| m.is_finite() && m.abs() < 9.2e18)
                .ok_or("out of range")?;
            Ok(micros as i64)
        }
        _ => Err("an RFC 3339 text or a number since the epoch".into()),
    }
}

/// A field's value as its view types it; JSON's numbers become floats or integers (an
/// integer field takes only whole numbers).
fn typed(field: &str, ty: FieldType, v: &Json) -> Result<Value, BadField> {
    let expected = |what: &str| bad(field, format!("expected {what}"));
    Ok(match ty {
        FieldType::Float64 => Value::Float64(finite(field, v)?),
        FieldType::Float32 => Value::Float32(finite(field, v)? as f32),
        FieldType::Int64 => match v {
            Json::Number(n) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                        .map(|f| f as i64)
                })
                .map(Value::Int64)
                .ok_or_else(|| expected("a whole number (int64)"))?,
            _ => return Err(expected("a whole number (int64)")),
        },
        FieldType::String => match v {
            Json::String(s) => Value::String(s.clone()),
            _ => return Err(expected("a string")),
        },
        FieldType::Date => match v {
            Json::String(s) if crate::value::is_date(s) => Value::String(s.clone()),
            _ => return Err(expected("a YYYY-MM-DD date")),
        },
        FieldType::Bool => match v {
            Json::Bool(b) => Value::Bool(*b),
            _ => return Err(expected("true or false")),
        },
        FieldType::Float32List => match v {
            Json::Array(items) => Value::Float32List(
                items
                    .iter()
                    .map(|x| finite(field, x).map(|f| f as f32))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(expected("a list of numbers")),
        },
    })
}

fn finite(field: &str, v: &Json) -> Result<f64, BadField> {
    v.as_f64()
        .filter(|f| f.is_finite())
        .ok_or_else(|| bad(field, "expected a number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions::{Entity, Field};

    fn view() -> FeatureView {
        let field = |name: &str, field_type| Field {
            name: name.into(),
            field_type,
        };
        FeatureView {
            name: "orders".into(),
            entity: Entity {
                name: "customer".into(),
                join_keys: vec!["customer_id".into()],
            },
            fields: vec![
                field("late_days", FieldType::Int64),
                field("amount", FieldType::Float64),
                field("channel", FieldType::String),
                field("returned", FieldType::Bool),
            ],
            ttl: None,
        }
    }

    fn object(text: &str) -> Map<String, Json> {
        serde_json::from_str(text).expect("json")
    }

    #[test]
    fn a_message_becomes_a_typed_row_with_absent_fields_null() {
        let row = push_row(
            &view(),
            &object(
                r#"{"customer_id": 42, "event_timestamp": "2026-12-07T10:00:00Z",
                "late_days": 3, "amount": 19.5, "extra": "ignored"}"#,
            ),
            &BTreeMap::new(),
            EpochUnit::Seconds,
        )
        .expect("row");
        assert_eq!(row.key, ["42"]);
        assert_eq!(row.event_time_micros, 1_796_637_600_000_000);
        assert_eq!(row.values[0], ("late_days".into(), Some(Value::Int64(3))));
        assert_eq!(row.values[1], ("amount".into(), Some(Value::Float64(19.5))));
        assert_eq!(row.values[2], ("channel".into(), None));
    }

    #[test]
    fn the_field_map_renames_and_numbers_count_in_the_unit() {
        let names = BTreeMap::from([
            ("customer_id".to_string(), "cust".to_string()),
            (EVENT_TIMESTAMP.to_string(), "ts".to_string()),
        ]);
        let row = push_row(
            &view(),
            &object(r#"{"cust": "C1", "ts": 1796637600000}"#),
            &names,
            EpochUnit::Millis,
        )
        .expect("row");
        assert_eq!(row.key, ["C1"]);
        assert_eq!(row.event_time_micros, 1_796_637_600_000_000);
    }

    #[test]
    fn each_refusal_names_the_messages_field() {
        let refused = |text: &str| {
            push_row(&view(), &object(text), &BTreeMap::new(), EpochUnit::Seconds)
                .expect_err("refused")
                .field
        };
        assert_eq!(refused(r#"{"event_timestamp": 1}"#), "customer_id");
        assert_eq!(refused(r#"{"customer_id": "C"}"#), "event_timestamp");
        assert_eq!(
            refused(r#"{"customer_id": "C", "event_timestamp": "yesterday"}"#),
            "event_timestamp"
        );
        let typed = r#"{"customer_id": "C", "event_timestamp": 1, "late_days": "#;
        assert_eq!(refused(&format!("{typed}\"three\"}}")), "late_days");
        assert_eq!(refused(&format!("{typed}2.5}}")), "late_days");
        assert_eq!(
            refused(r#"{"customer_id": "C", "event_timestamp": 1, "returned": 1}"#),
            "returned"
        );
        assert_eq!(
            refused(r#"{"customer_id": [1], "event_timestamp": 1}"#),
            "customer_id"
        );
    }
}
