//! Feature values as Arrow columns and back, for Parquet files: the offline history the
//! store writes, files users load, and training sets the CLI writes.
//!
//! Reading casts a column to the field's type first (Arrow's cast kernels), so a float64
//! column written by pandas loads into a float32 field, and any timestamp unit or zone
//! becomes microseconds since the epoch.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float32Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field as ArrowField, TimeUnit};

use crate::FeatureError;
use crate::value::{FieldType, Value};

/// Name of the event-time column, in the files users load, the offline history and
/// training sets (optional in a load).
pub const EVENT_TIMESTAMP: &str = "event_timestamp";

/// The Arrow type a field is stored as.
pub fn arrow_type(t: FieldType) -> DataType {
    match t {
        FieldType::Float32 => DataType::Float32,
        FieldType::Float64 => DataType::Float64,
        FieldType::Int64 => DataType::Int64,
        FieldType::String | FieldType::Date => DataType::Utf8,
        FieldType::Bool => DataType::Boolean,
        FieldType::Float32List => {
            DataType::List(Arc::new(ArrowField::new("item", DataType::Float32, true)))
        }
    }
}

/// The Arrow type of event times: microseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// A column of `t` from values (null for `None`; a value of another type is a bug the
/// schema check prevents, written as null).
pub fn build_column<'a>(t: FieldType, values: impl Iterator<Item = Option<&'a Value>>) -> ArrayRef {
    match t {
        FieldType::Float32 => {
            let mut b = Float32Builder::new();
            for v in values {
                b.append_option(match v {
                    Some(Value::Float32(x)) => Some(*x),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        FieldType::Float64 => {
            let mut b = Float64Builder::new();
            for v in values {
                b.append_option(match v {
                    Some(Value::Float64(x)) => Some(*x),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        FieldType::Int64 => {
            let mut b = Int64Builder::new();
            for v in values {
                b.append_option(match v {
                    Some(Value::Int64(x)) => Some(*x),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        FieldType::String | FieldType::Date => {
            let mut b = StringBuilder::new();
            for v in values {
                b.append_option(match v {
                    Some(Value::String(s)) => Some(s.as_str()),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        FieldType::Bool => {
            let mut b = BooleanBuilder::new();
            for v in values {
                b.append_option(match v {
                    Some(Value::Bool(x)) => Some(*x),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        FieldType::Float32List => {
            let mut b = ListBuilder::new(Float32Builder::new());
            for v in values {
                match v {
                    Some(Value::Float32List(l)) => {
                        b.values().append_slice(l);
                        b.append(true);
                    }
                    _ => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
    }
}

/// A timestamp column in microseconds, UTC.
pub fn timestamp_column(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(values).with_timezone("UTC"))
}

/// Why a column could not be read: the whole column (`row` None) or one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CastError {
    /// The first row whose value could not be converted, if the column type could be.
    pub row: Option<usize>,
    /// What went wrong.
    pub message: String,
}

impl From<CastError> for FeatureError {
    fn from(e: CastError) -> FeatureError {
        FeatureError::Corrupt(match e.row {
            Some(r) => format!("row {r}: {}", e.message),
            None => e.message,
        })
    }
}

/// Casts with Arrow's kernels, then refuses the first cell that was a value but became
/// null (Arrow's safe casts turn unconvertible cells into nulls silently).
fn checked_cast(column: &ArrayRef, to: &DataType, what: &str) -> Result<ArrayRef, CastError> {
    let cast = arrow_cast::cast(column, to).map_err(|e| CastError {
        row: None,
        message: format!("cannot read {} as {what}: {e}", column.data_type()),
    })?;
    if let Some(row) = (0..column.len()).find(|&i| column.is_valid(i) && cast.is_null(i)) {
        // The cell itself is not quoted: a file's contents never reach an error message.
        return Err(CastError {
            row: Some(row),
            message: format!("a {} value is not a {what}", column.data_type()),
        });
    }
    Ok(cast)
}

/// A column cast to a field's type, ready for [`value_at`].
pub fn cast_to(column: &ArrayRef, t: FieldType) -> Result<ArrayRef, CastError> {
    checked_cast(column, &arrow_type(t), t.as_str())
}

/// A column cast to event times (microseconds since the epoch).
pub fn cast_to_micros(column: &ArrayRef) -> Result<ArrayRef, CastError> {
    checked_cast(
        column,
        &DataType::Timestamp(TimeUnit::Microsecond, None),
        "timestamp",
    )
}

/// Row `i` of a column already cast with [`cast_to`].
pub fn value_at(column: &dyn Array, t: FieldType, i: usize) -> Option<Value> {
    if column.is_null(i) {
        return None;
    }
    Some(match t {
        FieldType::Float32 => Value::Float32(column.as_primitive::<Float32Type>().value(i)),
        FieldType::Float64 => Value::Float64(column.as_primitive::<Float64Type>().value(i)),
        FieldType::Int64 => Value::Int64(column.as_primitive::<Int64Type>().value(i)),
        FieldType::String | FieldType::Date => {
            Value::String(column.as_string::<i32>().value(i).to_string())
        }
        FieldType::Bool => Value::Bool(column.as_boolean().value(i)),
        FieldType::Float32List => {
            let list = column.as_list::<i32>().value(i);
            Value::Float32List(list.as_primitive::<Float32Type>().values().to_vec())
        }
    })
}

/// Row `i` of a column already cast with [`cast_to_micros`]; `None` when null.
pub fn micros_at(column: &dyn Array, i: usize) -> Option<i64> {
    (!column.is_null(i)).then(|| column.as_primitive::<TimestampMicrosecondType>().value(i))
}

/// Row `i` of a key column cast to text; `None` when null.
pub fn key_at(column: &dyn Array, i: usize) -> Option<String> {
    (!column.is_null(i)).then(|| column.as_string::<i32>().value(i).to_string())
}

/// A key column cast to text (so integer ids load too).
pub fn cast_key(column: &ArrayRef) -> Result<ArrayRef, CastError> {
    checked_cast(column, &DataType::Utf8, "key")
}
