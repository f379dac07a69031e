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
            FeatureError::Conflict(_) => tonic::Status::aborted(message),
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
    // A protobuf Timestamp's nanos are 0..=999,999,999, whatever the sign of the seconds.
    if !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
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

/// Entity rows of a historical request, each with its timestamp.
pub fn entity_rows_from_pb(
    rows: Vec<pb::EntityRow>,
) -> Result<Vec<crate::historical::EntityRow>, FeatureError> {
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let field = || format!("entity_rows[{i}].timestamp");
            let t = r.timestamp.ok_or_else(|| FeatureError::InvalidRequest {
                field: field(),
                message: "a timestamp is required".into(),
            })?;
            let timestamp_micros =
                timestamp_micros(&t).ok_or_else(|| FeatureError::InvalidRequest {
                    field: field(),
                    message: "out of range".into(),
                })?;
            Ok(crate::historical::EntityRow {
                key: r.values,
                timestamp_micros,
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

/// Features read back, from the wire.
pub fn feature_vector_from_pb(v: pb::FeatureVector) -> Vec<Feature> {
    let statuses = v.statuses;
    v.values
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let status = match statuses.get(i).copied().map(pb::FeatureStatus::try_from) {
                Some(Ok(pb::FeatureStatus::Present)) => Status::Present,
                Some(Ok(pb::FeatureStatus::Expired)) => Status::Expired,
                _ => Status::Missing,
            };
            (value_from_pb(value), status)
        })
        .collect()
}

/// Entity rows of a historical request, on the wire.
pub fn entity_rows_to_pb(rows: &[crate::historical::EntityRow]) -> Vec<pb::EntityRow> {
    rows.iter()
        .map(|r| pb::EntityRow {
            values: r.key.clone(),
            timestamp: Some(prost_types::Timestamp {
                seconds: r.timestamp_micros.div_euclid(1_000_000),
                nanos: (r.timestamp_micros.rem_euclid(1_000_000) * 1000) as i32,
            }),
        })
        .collect()
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
