//! Point-in-time retrieval, as Feast defines it: for an entity row at time `t`, a view's
//! values are those of the entity's latest event at or before `t`; if that event is older
//! than the view's TTL at `t` the values are expired (null), and events after `t` are never
//! seen, so a training set carries no leakage from the future. Equal event times are
//! decided by when the rows were written (the later write wins, as in the online store).
//! This is event-time semantics: a late-arriving event counts from its event time.

use std::collections::HashMap;

use crate::offline::HistoryRow;
use crate::online::Feature;
use crate::value::Status;

/// One row of an entity dataframe: whose features, as of when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRow {
    /// One value per join key of the entity.
    pub key: Vec<String>,
    /// The time the features are wanted at, in microseconds since the epoch.
    pub timestamp_micros: i64,
}

/// A view's history indexed by entity, each entity's events in order.
#[derive(Debug, Default)]
pub struct Timeline {
    by_key: HashMap<String, Vec<HistoryRow>>,
}

impl Timeline {
    /// Indexes rows read from the offline store.
    pub fn new(rows: Vec<HistoryRow>) -> Timeline {
        let mut by_key: HashMap<String, Vec<HistoryRow>> = HashMap::new();
        for r in rows {
            by_key.entry(r.key.clone()).or_default().push(r);
        }
        for events in by_key.values_mut() {
            events.sort_by(|a, b| {
                (a.event_time_micros, a.created_micros, a.seq).cmp(&(
                    b.event_time_micros,
                    b.created_micros,
                    b.seq,
                ))
            });
        }
        Timeline { by_key }
    }

    /// The values of `fields` (indexes into the view's fields) for the entity `key` as of
    /// `at`, given the view's TTL in microseconds.
    pub fn as_of(&self, key: &str, at: i64, ttl: Option<i64>, fields: &[usize]) -> Vec<Feature> {
        let missing = || fields.iter().map(|_| (None, Status::Missing)).collect();
        let Some(events) = self.by_key.get(key) else {
            return missing();
        };
        // Events are sorted by (event time, write order): the last one at or before `at`.
        let upto = events.partition_point(|e| e.event_time_micros <= at);
        let Some(latest) = upto.checked_sub(1).map(|i| &events[i]) else {
            return missing();
        };
        let expired = crate::online::is_expired(ttl, latest.event_time_micros, at);
        fields
            .iter()
            .map(|&f| crate::online::as_read(latest.values.get(f).cloned().flatten(), expired))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn event(key: &str, t: i64, created: i64, v: f32) -> HistoryRow {
        HistoryRow {
            key: key.into(),
            event_time_micros: t,
            created_micros: created,
            seq: 0,
            values: vec![Some(Value::Float32(v))],
        }
    }

    #[test]
    fn latest_at_or_before_within_ttl() {
        let t = Timeline::new(vec![
            event("a", 30, 1, 3.0),
            event("a", 10, 2, 1.0),
            event("a", 20, 3, 2.0),
            event("a", 20, 0, 9.0), // same event time, written earlier: loses
        ]);
        let at = |when, ttl| t.as_of("a", when, ttl, &[0])[0].clone();
        assert_eq!(
            at(5, None),
            (None, Status::Missing),
            "before the first event"
        );
        assert_eq!(
            at(10, None).0,
            Some(Value::Float32(1.0)),
            "at an event: included"
        );
        assert_eq!(at(25, None).0, Some(Value::Float32(2.0)));
        assert_eq!(at(1000, None).0, Some(Value::Float32(3.0)));
        assert_eq!(at(35, Some(5)).0, Some(Value::Float32(3.0)), "age 5, ttl 5");
        assert_eq!(at(36, Some(5)), (None, Status::Expired), "age 6, ttl 5");
        assert_eq!(t.as_of("b", 100, None, &[0])[0].1, Status::Missing);
    }
}
