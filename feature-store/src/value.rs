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
        }
    }
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
