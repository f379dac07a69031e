//! The feature store's wire edge: `mercator.v1` conversions and the one mapping from
//! [`FeatureError`] to `tonic::Status`.

use mercator_proto::v1 as pb;

use crate::FeatureError;
use crate::definitions::Definitions;
use crate::online::{Feature, PushRow};
use crate::value::{Status, Value};

impl From<FeatureError> for tonic::Status {
    fn from(e: FeatureError) -> tonic::Status {
        let message = e.to_string();
        match e {
            FeatureError::InvalidDefinition { .. }
            | FeatureError::InvalidRow { .. }
            | FeatureError::InvalidRequest { .. } => tonic::Status::invalid_argument(message),
            FeatureError::Incompatible(_) => tonic::Status::failed_precondition(message),
            FeatureError::UnknownView(_) => tonic::Status::not_found(message),
            FeatureError::Io(_) | FeatureError::Unavailable(_) => {
                tonic::Status::unavailable(message)
            }
            FeatureError::Corrupt(_) => tonic::Status::data_loss(message),
        }
    }
}

/// A wire value as a domain value (`None` for null).
pub fn value_from_pb(v: pb::FeatureValue) -> Option<Value> {
    use pb::feature_value::Kind;
    Some(match v.kind? {
        Kind::Float32(x) => Value::Float32(x),
        Kind::Float64(x) => Value::Float64(x),
        Kind::Int64(x) => Value::Int64(x),
        Kind::String(s) => Value::String(s),
        Kind::Bool(b) => Value::Bool(b),
        Kind::Float32List(l) => Value::Float32List(l.values),
    })
}

/// A domain value on the wire.
pub fn value_to_pb(v: Option<Value>) -> pb::FeatureValue {
    use pb::feature_value::Kind;
    pb::FeatureValue {
        kind: v.map(|v| match v {
            Value::Float32(x) => Kind::Float32(x),
            Value::Float64(x) => Kind::Float64(x),
            Value::Int64(x) => Kind::Int64(x),
            Value::String(s) => Kind::String(s),
            Value::Bool(b) => Kind::Bool(b),
            Value::Float32List(values) => Kind::Float32List(pb::FloatList { values }),
        }),
    }
}

/// A wire timestamp in microseconds since the epoch; `None` when out of range.
pub fn timestamp_micros(t: &prost_types::Timestamp) -> Option<i64> {
    t.seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(t.nanos) / 1000)
}

/// The options of a `LoadFile` request (shared by the service and the local CLI).
pub fn load_options(
    default_event_time: Option<prost_types::Timestamp>,
    ignore_unknown_columns: bool,
) -> Result<crate::ingest::LoadOptions, FeatureError> {
    let default_event_time_micros = default_event_time
        .map(|t| {
            timestamp_micros(&t).ok_or_else(|| FeatureError::InvalidRequest {
                field: "default_event_time".into(),
                message: "out of range".into(),
            })
        })
        .transpose()?;
    Ok(crate::ingest::LoadOptions {
        default_event_time_micros,
        ignore_unknown_columns,
        ..Default::default()
    })
}

/// Pushed rows, checked for an event time; the schema check happens in the store.
pub fn push_rows_from_pb(rows: Vec<pb::PushRow>) -> Result<Vec<PushRow>, FeatureError> {
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let pb::PushRow {
                entity_key,
                event_time,
                values,
            } = r;
            let t = event_time.ok_or_else(|| FeatureError::InvalidRow {
                row: i,
                field: "event_time".into(),
                message: "an event time is required".into(),
            })?;
            let micros = timestamp_micros(&t).ok_or_else(|| FeatureError::InvalidRow {
                row: i,
                field: "event_time".into(),
                message: "out of range".into(),
            })?;
            Ok(PushRow {
                key: entity_key,
                event_time_micros: micros,
                values: values
                    .into_iter()
                    .map(|(k, v)| (k, value_from_pb(v)))
                    .collect(),
            })
        })
        .collect()
}

/// Features read back, on the wire.
pub fn feature_vector(values: Vec<Feature>) -> pb::FeatureVector {
    let mut out = pb::FeatureVector::default();
    for (value, status) in values {
        out.values.push(value_to_pb(value));
        out.statuses.push(match status {
            Status::Present => pb::FeatureStatus::Present,
            Status::Missing => pb::FeatureStatus::Missing,
            Status::Expired => pb::FeatureStatus::Expired,
        } as i32);
    }
    out
}

/// Definitions on the wire.
pub fn definitions_to_pb(defs: &Definitions, toml: String) -> pb::ListDefinitionsResponse {
    pb::ListDefinitionsResponse {
        entities: defs
            .entities
            .values()
            .map(|e| pb::EntityDefinition {
                name: e.name.clone(),
                join_keys: e.join_keys.clone(),
            })
            .collect(),
        feature_views: defs
            .views
            .values()
            .map(|v| pb::FeatureViewDefinition {
                name: v.name.clone(),
                entity: v.entity.name.clone(),
                fields: v
                    .fields
                    .iter()
                    .map(|f| pb::FieldDefinition {
                        name: f.name.clone(),
                        r#type: f.field_type.as_str().into(),
                    })
                    .collect(),
                ttl_seconds: v.ttl.map_or(0, |t| t.as_secs()),
            })
            .collect(),
        toml,
    }
}
