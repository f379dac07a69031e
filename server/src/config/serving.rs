//! `[serving]`: how requests are computed (inline or on the blocking pool, shadows,
//! dynamic batching by model).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `[serving]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServingConfig {
    /// Batches with at least this many rows run on the blocking pool instead of inline.
    /// On the demo churn model (200 trees) 1,024 rows take about 1.6 ms; smaller batches
    /// measured faster inline than with the hop to another thread (docs/BENCHMARKS.md).
    pub offload_min_rows: usize,
    /// Shadow runs (copies of live requests sent to a model's shadow routes) allowed at
    /// once; further copies are dropped and counted, never queued, so shadows cannot slow
    /// live serving down.
    pub max_shadow_in_flight: usize,
    /// Dynamic batching by model name, over what each version's manifest says:
    /// `[serving.batching.intent] max_queue_delay_microseconds = 200`, or
    /// `enabled = false` to serve a model unbatched.
    pub batching: BTreeMap<String, crate::batching::Override>,
    /// Replenishment orders worth more than this (`unit_cost` × quantity) are returned
    /// as needing a human's approval; 0, none are.
    pub approval_order_value: f64,
}

impl Default for ServingConfig {
    fn default() -> Self {
        ServingConfig {
            offload_min_rows: 1024,
            max_shadow_in_flight: 32,
            batching: BTreeMap::new(),
            approval_order_value: 0.0,
        }
    }
}
