//! Feature value types, values, and the status of a value read back.

use serde::{Deserialize, Serialize};

/// The type of a feature field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Single-precision float.
    Float32,
    /// Double-precision float.
    Float64,
    /// 64-bit signed integer.
    Int64,
    /// UTF-8 text.
    String,
    /// Boolean.
    Bool,
    /// A list of single-precision floats (e.g. a daily sales series).
    Float32List,
    /// A calendar day, `YYYY-MM-DD` (a series' last day): stored and served as text,
    /// checked when written, so a bad one is refused at push or load rather than met
    /// at forecast time.
    Date,
}

impl FieldType {
    /// The name used in definition files.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Float32 => "float32",
            FieldType::Float64 => "float64",
            FieldType::Int64 => "int64",
            FieldType::String => "string",
            FieldType::Bool => "bool",
            FieldType::Float32List => "float32_list",
            FieldType::Date => "date",
        }
    }

    /// Why `value` cannot be written to a field of this type, if it cannot. Never
    /// quotes the value: it may come from a file the caller should not see.
    pub fn refuses(self, value: &Value) -> Option<String> {
        match (self, value) {
            (FieldType::Date, Value::String(s)) => {
                (!is_date(s)).then(|| "not a YYYY-MM-DD date".to_string())
            }
            (t, v) if v.field_type() == t => None,
            (t, v) => Some(format!(
                "{} given, the field is {}",
                v.field_type().as_str(),
                t.as_str()
            )),
        }
    }
}

/// Whether `s` is a `YYYY-MM-DD` calendar day.
pub fn is_date(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// One feature value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A float32 value.
    Float32(f32),
    /// A float64 value.
    Float64(f64),
    /// An int64 value.
    Int64(i64),
    /// A string value.
    String(String),
    /// A bool value.
    Bool(bool),
    /// A float32 list.
    Float32List(Vec<f32>),
}

impl Value {
    /// The field type this value belongs to.
    pub fn field_type(&self) -> FieldType {
        match self {
            Value::Float32(_) => FieldType::Float32,
            Value::Float64(_) => FieldType::Float64,
            Value::Int64(_) => FieldType::Int64,
            Value::String(_) => FieldType::String,
            Value::Bool(_) => FieldType::Bool,
            Value::Float32List(_) => FieldType::Float32List,
        }
    }
}

/// How a value read from the online store stands, as Feast reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A value within the view's TTL.
    Present,
    /// No value was ever written (or the entity is unknown).
    Missing,
    /// The latest value is older than the view's TTL.
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_field_takes_calendar_days_only_and_never_quotes_the_value() {
        let date = FieldType::Date;
        assert_eq!(date.refuses(&Value::String("2026-10-03".into())), None);
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "03/10/2026",
            "2026-1-3",
            "",
            "secret\n",
        ] {
            let why = date
                .refuses(&Value::String(bad.into()))
                .unwrap_or_else(|| panic!("{bad:?} taken"));
            assert!(
                !bad.is_empty() && !why.contains(bad) || bad.is_empty(),
                "{why}"
            );
        }
        assert_eq!(
            date.refuses(&Value::Float32(1.0)).as_deref(),
            Some("float32 given, the field is date")
        );
        assert_eq!(FieldType::String.refuses(&Value::String("x".into())), None);
        assert_eq!(
            crate::ingest::parse_value(date, " 2026-10-03 "),
            Ok(Value::String("2026-10-03".into()))
        );
        assert!(crate::ingest::parse_value(date, "garbage").is_err());
    }
}
