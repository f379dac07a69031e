//! The point-in-time join of one partition, in memory: the entity rows and one view's
//! history rows of the same keys, each sorted by (key, time), walked together once. For
//! each entity row the answer is the latest history row of its key at or before its
//! time (equal event times decided by the later write, as the online store does), unless
//! that row is older than the view's TTL at the entity row's time; then, and when there
//! is none, the features are null. The same rule as [`crate::historical`], per row.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Field as ArrowField, Schema, SchemaRef};

use super::spill::{SpillWriter, SpilledSet};
use super::{Sizing, Snapshot, ViewPlan, scan};

use crate::{FeatureError, Result};

/// The entity key column of entity rows and of normalised history.
pub(super) const KEY: usize = 1;
/// The time column of entity rows.
pub(super) const ENTITY_TIME: usize = 2;
/// Normalised history: key, event, created, seq, then fields (see `scan`).
const HISTORY_KEY: usize = 0;
const EVENT: usize = 1;
const CREATED: usize = 2;
const SEQ: usize = 3;
/// Where the view's fields start in normalised history.
pub(super) const FIELDS: usize = 4;

/// For each entity row (in the batch's order), the history row it sees, if any.
pub(super) fn answers(
    entities: &RecordBatch,
    history: &RecordBatch,
    ttl: Option<i64>,
) -> Vec<Option<u32>> {
    let ekeys = entities.column(KEY).as_string::<i32>();
    let etimes = entities
        .column(ENTITY_TIME)
        .as_primitive::<Int64Type>()
        .values();
    let hkeys = history.column(HISTORY_KEY).as_string::<i32>();
    let event = history.column(EVENT).as_primitive::<Int64Type>().values();
    let created = history.column(CREATED).as_primitive::<Int64Type>().values();
    let seq = history.column(SEQ).as_primitive::<UInt64Type>().values();

    let mut h: Vec<u32> = (0..history.num_rows() as u32).collect();
    h.sort_unstable_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        hkeys
            .value(a)
            .cmp(hkeys.value(b))
            .then((event[a], created[a], seq[a]).cmp(&(event[b], created[b], seq[b])))
    });
    let mut e: Vec<u32> = (0..entities.num_rows() as u32).collect();
    e.sort_unstable_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        ekeys
            .value(a)
            .cmp(ekeys.value(b))
            .then(etimes[a].cmp(&etimes[b]))
    });

    let mut out = vec![None; entities.num_rows()];
    let mut j = 0usize;
    let mut current: Option<&str> = None;
    let mut latest: Option<usize> = None;
    for &row in &e {
        let row = row as usize;
        let (key, at) = (ekeys.value(row), etimes[row]);
        if current != Some(key) {
            while j < h.len() && hkeys.value(h[j] as usize) < key {
                j += 1;
            }
            current = Some(key);
            latest = None;
        }
        // Entity rows of a key come in time order, so the walk never goes back.
        while j < h.len() && hkeys.value(h[j] as usize) == key && event[h[j] as usize] <= at {
            latest = Some(h[j] as usize);
            j += 1;
        }
        out[row] = latest
            .filter(|&l| !crate::online::is_expired(ttl, event[l], at))
            .map(|l| l as u32);
    }
    out
}

/// The columns of `fields` (indexes into the view's fields) taken at the answers.
pub(super) fn take_fields(
    history: &RecordBatch,
    answers: &[Option<u32>],
    fields: &[usize],
) -> Result<Vec<ArrayRef>> {
    let indices = UInt32Array::from(answers.to_vec());
    fields
        .iter()
        .map(|&f| {
            arrow_select::take::take(history.column(FIELDS + f).as_ref(), &indices, None)
                .map_err(|e| FeatureError::Corrupt(format!("joining a partition: {e}")))
        })
        .collect()
}

fn concat(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    arrow_select::concat::concat_batches(schema, &batches)
        .map_err(|e| FeatureError::Corrupt(format!("reading a partition back: {e}")))
}

/// Joins partition by partition; each partition's answers (row, then the features in
/// the request's order) are spilled in row order.
#[allow(clippy::too_many_arguments)]
pub(super) fn partitions(
    plans: &[ViewPlan],
    entities: &SpilledSet,
    views: &[SpilledSet],
    out_schema: &SchemaRef,
    entity_columns: usize,
    sizing: &Sizing,
    dir: PathBuf,
    snap: &mut Snapshot,
    tick: &dyn Fn(&mut Snapshot),
) -> Result<SpilledSet> {
    let mut fields = vec![ArrowField::new("row", DataType::UInt64, false)];
    fields.extend(
        out_schema.fields()[entity_columns..]
            .iter()
            .map(|f| f.as_ref().clone()),
    );
    let result_schema = Arc::new(Schema::new(fields));
    let features = out_schema.fields().len() - entity_columns;
    let mut writer = SpillWriter::new(
        dir,
        Arc::clone(&result_schema),
        sizing.partitions,
        sizing.flush_bytes,
    )?;
    let entity_schema = super::entity_schema();
    for p in 0..sizing.partitions {
        let ents = concat(&entity_schema, entities.read(p)?)?;
        entities.remove(p);
        let mut columns: Vec<Option<ArrayRef>> = vec![None; features];
        for (plan, spilled) in plans.iter().zip(views) {
            let schema = scan::schema(&plan.view);
            let history = concat(&schema, spilled.read(p)?)?;
            spilled.remove(p);
            let answers = answers(&ents, &history, crate::online::ttl_micros(&plan.view));
            let indexes: Vec<usize> = plan.fields.iter().map(|&(_, f)| f).collect();
            let taken = take_fields(&history, &answers, &indexes)?;
            for (&(slot, _), column) in plan.fields.iter().zip(taken) {
                columns[slot] = Some(column);
            }
            snap.rows_joined += ents.num_rows() as u64;
        }
        if ents.num_rows() == 0 {
            continue;
        }
        let mut arrays: Vec<ArrayRef> = vec![Arc::clone(ents.column(0))];
        for c in columns {
            arrays
                .push(c.ok_or_else(|| FeatureError::Corrupt("a feature no view answered".into()))?);
        }
        let answers = RecordBatch::try_new(Arc::clone(&result_schema), arrays)
            .map_err(|e| FeatureError::Corrupt(format!("joined rows: {e}")))?;
        // In chunks of about the flush size: the writing pass holds one chunk per
        // partition.
        let row_bytes = (answers.get_array_memory_size() / answers.num_rows()).max(1);
        writer.write_chunks(p, &answers, (sizing.flush_bytes / row_bytes).max(1))?;
        tick(snap);
    }
    let set = writer.finish()?;
    snap.spill_bytes += set.bytes;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float32Array, Int64Array, StringArray, UInt64Array};

    use super::*;

    fn entities(rows: &[(&str, i64)]) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "row",
                Arc::new(UInt64Array::from_iter_values(0..rows.len() as u64)) as ArrayRef,
            ),
            (
                "key",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            ),
            (
                "ts",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            ),
        ])
        .expect("batch")
    }

    /// (key, event, created, value).
    fn history(rows: &[(&str, i64, i64, f32)]) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "key",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
            ),
            (
                "event",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            ),
            (
                "created",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            ),
            (
                "seq",
                Arc::new(UInt64Array::from_iter_values(0..rows.len() as u64)),
            ),
            (
                "v",
                Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.3))),
            ),
        ])
        .expect("batch")
    }

    #[test]
    fn latest_at_or_before_within_ttl_per_row() {
        let h = history(&[
            ("a", 30, 1, 3.0),
            ("b", 5, 1, 50.0),
            ("a", 10, 2, 1.0),
            ("a", 20, 3, 2.0),
            ("a", 20, 0, 9.0), // same event time, written earlier: loses
        ]);
        let e = entities(&[
            ("a", 1000),
            ("a", 5),
            ("a", 10),
            ("c", 10),
            ("a", 25),
            ("b", 4),
            ("b", 6),
            ("a", 36),
        ]);
        let got = answers(&e, &h, None);
        let values = take_fields(&h, &got, &[0]).expect("take");
        let v: Vec<Option<f32>> = values[0]
            .as_primitive::<arrow_array::types::Float32Type>()
            .iter()
            .collect();
        assert_eq!(
            v,
            [
                Some(3.0),
                None,
                Some(1.0),
                None,
                Some(2.0),
                None,
                Some(50.0),
                Some(3.0)
            ]
        );
        // TTL 5: age 5 is kept, age 6 is not.
        let with_ttl = answers(&e, &h, Some(5));
        assert_eq!(with_ttl[4], Some(3), "a at 25: the row at 20, age 5");
        assert_eq!(with_ttl[7], None, "a at 36: the row at 30 is 6 old");
        assert_eq!(with_ttl[6], Some(1), "b at 6: age 1");
    }
}
