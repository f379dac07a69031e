//! Routing rows to hash partitions by entity key, so that every row of a key — entity
//! rows and history rows of every view — lands in the same partition, and a partition
//! can be joined alone.

use std::hash::BuildHasher;

use arrow_array::{RecordBatch, StringArray, UInt32Array};

use crate::{FeatureError, Result};

/// The partition of a key among `partitions` (stable within a run; nothing stores it).
pub(super) fn of(key: &str, partitions: usize) -> usize {
    let hasher =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
    (hasher.hash_one(key) % partitions as u64) as usize
}

/// The partition of each row.
pub(super) fn each(keys: &StringArray, partitions: usize) -> Vec<u32> {
    keys.iter()
        .map(|k| of(k.unwrap_or_default(), partitions) as u32)
        .collect()
}

/// `batch` split by partition, each part in its own buffers (a slice would keep the
/// whole batch alive while it waits to be spilled), rows in their order.
pub(super) fn split(
    batch: &RecordBatch,
    parts: &[u32],
    partitions: usize,
) -> Result<Vec<(usize, RecordBatch)>> {
    let mut counts = vec![0u32; partitions + 1];
    for &p in parts {
        counts[p as usize + 1] += 1;
    }
    for p in 0..partitions {
        counts[p + 1] += counts[p];
    }
    let starts = counts.clone();
    let mut order = vec![0u32; parts.len()];
    for (i, &p) in parts.iter().enumerate() {
        let at = &mut counts[p as usize];
        order[*at as usize] = i as u32;
        *at += 1;
    }
    (0..partitions)
        .filter(|&p| starts[p + 1] > starts[p])
        .map(|p| {
            let rows = &order[starts[p] as usize..starts[p + 1] as usize];
            let part =
                arrow_select::take::take_record_batch(batch, &UInt32Array::from(rows.to_vec()))
                    .map_err(|e| FeatureError::Corrupt(format!("partitioning rows: {e}")))?;
            Ok((p, part))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::types::UInt64Type;
    use arrow_array::{ArrayRef, UInt64Array};

    use super::*;

    #[test]
    fn every_row_lands_once_in_its_partition_in_order() {
        let keys = StringArray::from_iter_values((0..1000).map(|i| format!("k{}", i % 37)));
        let batch = RecordBatch::try_from_iter([
            ("key", Arc::new(keys.clone()) as ArrayRef),
            ("row", Arc::new(UInt64Array::from_iter_values(0..1000))),
        ])
        .expect("batch");
        let parts = each(&keys, 7);
        let mut seen = Vec::new();
        for (p, b) in split(&batch, &parts, 7).expect("split") {
            let rows = b.column(1).as_primitive::<UInt64Type>().values().to_vec();
            assert!(rows.windows(2).all(|w| w[0] < w[1]), "order kept");
            for (k, r) in b.column(0).as_string::<i32>().iter().zip(&rows) {
                assert_eq!(of(k.expect("key"), 7), p);
                seen.push(*r);
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<u64>>());
    }
}
