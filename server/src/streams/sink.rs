//! Where a source's messages go: a feature view, through the feature store's `Push` path
//! (history first, then the online store: TTL, types and the future-skew guard apply), or
//! a model's outcomes, through the judge's store. Both writes are idempotent per (entity,
//! event time), which is what makes re-delivery after a crash harmless. And where each
//! partition's offset is kept: the registry database.

use std::collections::BTreeMap;
use std::sync::Arc;

use mercator_features::json_row::{self, EpochUnit};
use mercator_features::online::PushRow;
use mercator_streams::{Record, Rejection, SourceConfig};
use serde_json::{Map, Value as Json};

use super::trigger::{EventRow, Trigger};
use crate::quality::{Judge, Outcome};

/// A message's value as a JSON object, or why not.
fn object(record: &Record) -> Result<Map<String, Json>, Rejection> {
    let value = record.value.as_deref().unwrap_or_default();
    match serde_json::from_slice::<Json>(value) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(_) => Err(reject("value", "not a JSON object")),
        Err(e) => Err(reject("value", &format!("not JSON: {e}"))),
    }
}

fn reject(field: &str, message: &str) -> Rejection {
    Rejection {
        field: field.to_string(),
        message: message.to_string(),
    }
}

fn unit(source: &SourceConfig) -> EpochUnit {
    match source.timestamp_unit.as_str() {
        "ms" => EpochUnit::Millis,
        "us" => EpochUnit::Micros,
        _ => EpochUnit::Seconds,
    }
}

/// Rows of a feature view.
pub struct FeatureSink {
    pub(super) features: Arc<mercator_features::FeatureStore>,
    pub(super) view: String,
    pub(super) names: BTreeMap<String, String>,
    pub(super) unit: EpochUnit,
    pub(super) triggers: Vec<Arc<Trigger>>,
}

impl FeatureSink {
    /// A sink for `source`, firing `triggers` after each write.
    pub fn new(
        features: Arc<mercator_features::FeatureStore>,
        source: &SourceConfig,
        triggers: Vec<Arc<Trigger>>,
    ) -> FeatureSink {
        FeatureSink {
            features,
            view: source.view.clone(),
            names: source.fields.clone(),
            unit: unit(source),
            triggers,
        }
    }
}

#[async_trait::async_trait]
impl mercator_streams::Sink for FeatureSink {
    type Row = EventRow;

    fn ready(&self) -> Result<(), String> {
        self.features
            .view(&self.view)
            .map(|_| ())
            .map_err(|_| format!("no view '{}' is applied yet", self.view))
    }

    fn decode(&self, record: &Record) -> Result<EventRow, Rejection> {
        let event = object(record)?;
        // One look-up of the view per message, for the reading and the check alike.
        let view = self
            .features
            .view(&self.view)
            .map_err(|_| reject("view", &format!("no view '{}' is applied", self.view)))?;
        let row =
            json_row::push_row(&view, &event, &self.names, self.unit).map_err(|e| Rejection {
                field: e.field,
                message: e.message,
            })?;
        // What the write would refuse (an event time too far ahead, before 1970) is the
        // message's fault too: refused here, so the rest of the fetch is written.
        self.features
            .check_rows(&view, std::slice::from_ref(&row))
            .map_err(|e| match e {
                mercator_features::FeatureError::InvalidRow { field, message, .. } => {
                    let field = match field.as_str() {
                        "event_time" => json_row::EVENT_TIMESTAMP,
                        other => other,
                    };
                    reject(
                        self.names.get(field).map_or(field, String::as_str),
                        &message,
                    )
                }
                other => reject("value", &other.to_string()),
            })?;
        Ok(EventRow { row, event })
    }

    async fn write(&self, rows: &[EventRow]) -> Result<(), String> {
        let push: Vec<PushRow> = rows.iter().map(|r| r.row.clone()).collect();
        self.features
            .push(&self.view, &push)
            .await
            .map_err(|e| format!("view {}: {e}", self.view))?;
        for trigger in &self.triggers {
            trigger.fire(rows).await?;
        }
        Ok(())
    }
}

/// Outcomes of a model: `entity`, `time`, and `value` (a number, or a boolean as 1/0)
/// or `label` (a confirmed intent), renamed by the source's field map.
pub struct OutcomeSink {
    pub(super) judge: Option<Arc<Judge>>,
    pub(super) model: String,
    pub(super) names: BTreeMap<String, String>,
    pub(super) unit: EpochUnit,
}

impl OutcomeSink {
    /// A sink for `source` (`judge` is none while the prediction log is off).
    pub fn new(judge: Option<Arc<Judge>>, source: &SourceConfig) -> OutcomeSink {
        OutcomeSink {
            judge,
            model: source.model.clone(),
            names: source.fields.clone(),
            unit: unit(source),
        }
    }

    fn field<'m>(&self, event: &'m Map<String, Json>, name: &str) -> (String, Option<&'m Json>) {
        let field = self.names.get(name).map_or(name, String::as_str);
        (field.to_string(), event.get(field).filter(|v| !v.is_null()))
    }
}

#[async_trait::async_trait]
impl mercator_streams::Sink for OutcomeSink {
    type Row = Outcome;

    fn decode(&self, record: &Record) -> Result<Outcome, Rejection> {
        let event = object(record)?;
        let (field, entity) = self.field(&event, "entity");
        let entity = match entity {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            Some(Json::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            _ => return Err(reject(&field, "give the entity as a string or an integer")),
        };
        let (field, time) = self.field(&event, "time");
        let time_micros = match time {
            Some(t) => {
                json_row::time_micros(t, self.unit).map_err(|message| reject(&field, &message))?
            }
            None => return Err(reject(&field, "missing: give the outcome's time")),
        };
        let (value_field, value) = self.field(&event, "value");
        let (label_field, label) = self.field(&event, "label");
        let (value, label) = match (value, label) {
            (Some(Json::Bool(b)), _) => (Some(f64::from(u8::from(*b))), None),
            (Some(v), _) => match v.as_f64().filter(|f| f.is_finite()) {
                Some(f) => (Some(f), None),
                None => return Err(reject(&value_field, "expected a finite number")),
            },
            (None, Some(Json::String(l))) => (None, Some(l.clone())),
            (None, Some(_)) => return Err(reject(&label_field, "expected a string")),
            (None, None) => return Err(reject(&value_field, "give a value or a label")),
        };
        let outcome = Outcome {
            entity,
            time_micros,
            value,
            label,
        };
        crate::quality::outcomes::check(std::slice::from_ref(&outcome), "outcome")
            .map_err(|e| reject(&value_field, &e.to_string()))?;
        Ok(outcome)
    }

    async fn write(&self, rows: &[Outcome]) -> Result<(), String> {
        let judge = self
            .judge
            .as_ref()
            .ok_or("outcomes need the prediction log ([prediction_log] enabled)")?;
        judge
            .push(&self.model, rows)
            .await
            .map(|_| ())
            .map_err(|e| format!("outcomes of {}: {e}", self.model))
    }
}

/// Offsets in the registry database, committed under this instance's name.
pub struct RegistryOffsets {
    pub(super) registry: mercator_registry::Registry,
    pub(super) instance: String,
}

#[async_trait::async_trait]
impl mercator_streams::Offsets for RegistryOffsets {
    async fn load(&self, source: &str, topic: &str, partition: i32) -> Result<Option<i64>, String> {
        self.registry
            .stream_offset(source, topic, partition)
            .await
            .map_err(|e| e.to_string())
    }

    async fn commit(
        &self,
        source: &str,
        topic: &str,
        partition: i32,
        next: i64,
    ) -> Result<(), String> {
        self.registry
            .commit_stream_offset(source, topic, partition, next, &self.instance)
            .await
            .map_err(|e| e.to_string())
    }
}
