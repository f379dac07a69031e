//! The manifest's `dynamic_batching` section: whether the server may merge requests from
//! different callers into one model execution, and how. Named as Triton's model
//! configuration names them, so a Triton user reads it without a glossary:
//!
//! ```json
//! "dynamic_batching": {
//!   "max_batch_size": 64,
//!   "max_queue_delay_microseconds": 200,
//!   "preferred_batch_size": [32, 64],
//!   "max_queue_size": 1024
//! }
//! ```
//!
//! Merging is only sound when every input and output is batch-major (first dimension
//! `-1`, one row per request row): the section is refused on any other signature.

use serde::{Deserialize, Serialize};

use super::Manifest;
use crate::{Result, RuntimeError};

/// Rows in one merged execution when neither the section nor the manifest says.
pub const DEFAULT_MAX_BATCH: u32 = 64;

/// Requests waiting at once when the section does not say.
pub const DEFAULT_MAX_QUEUE: u32 = 1024;

/// How requests to one model version are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicBatching {
    /// Most rows in one merged execution (a single request larger than this runs alone).
    /// 0: the manifest's `max_batch_size`, or 64.
    #[serde(default)]
    pub max_batch_size: u32,
    /// How long the oldest waiting request may wait for others to join it. 0 (the
    /// default, as in Triton) adds no wait: a batch takes what queued while the previous
    /// one ran.
    #[serde(default)]
    pub max_queue_delay_microseconds: u64,
    /// Batch sizes the model runs best at: a batch that reaches one runs at once rather
    /// than waiting out the delay. At most 8.
    #[serde(default)]
    pub preferred_batch_size: PreferredSizes,
    /// Most requests waiting at once; one more is refused (RESOURCE_EXHAUSTED).
    #[serde(default = "default_queue")]
    pub max_queue_size: u32,
}

/// Up to eight preferred sizes, kept `Copy` so the settings travel by value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PreferredSizes {
    sizes: [u32; 8],
    len: u8,
}

impl PreferredSizes {
    /// The sizes, as given.
    pub fn as_slice(&self) -> &[u32] {
        &self.sizes[..usize::from(self.len)]
    }

    /// From a list of at most eight sizes.
    pub fn new(sizes: &[u32]) -> Option<PreferredSizes> {
        let mut out = PreferredSizes::default();
        if sizes.len() > out.sizes.len() {
            return None;
        }
        out.sizes[..sizes.len()].copy_from_slice(sizes);
        out.len = sizes.len() as u8;
        Some(out)
    }
}

impl Serialize for PreferredSizes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for PreferredSizes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let sizes = Vec::<u32>::deserialize(d)?;
        PreferredSizes::new(&sizes).ok_or_else(|| {
            serde::de::Error::custom(format!("at most 8 preferred sizes, got {}", sizes.len()))
        })
    }
}

fn default_queue() -> u32 {
    DEFAULT_MAX_QUEUE
}

impl Default for DynamicBatching {
    fn default() -> DynamicBatching {
        DynamicBatching {
            max_batch_size: 0,
            max_queue_delay_microseconds: 0,
            preferred_batch_size: PreferredSizes::default(),
            max_queue_size: DEFAULT_MAX_QUEUE,
        }
    }
}

impl DynamicBatching {
    /// The section of `manifest`, if it has one, checked against its signature.
    pub fn of(manifest: &Manifest) -> Result<Option<DynamicBatching>> {
        let Some(v) = manifest.extra.get("dynamic_batching") else {
            return Ok(None);
        };
        let fail = |m: String| RuntimeError::Signature(format!("dynamic_batching: {m}"));
        let b: DynamicBatching =
            serde_json::from_value(v.clone()).map_err(|e| fail(e.to_string()))?;
        b.fitted(manifest).map(Some).map_err(fail)
    }

    /// These settings for a version of `manifest`: an unset `max_batch_size` takes the
    /// manifest's, then the whole is checked against its signature (see [`check`]).
    ///
    /// [`check`]: DynamicBatching::check
    pub fn fitted(mut self, manifest: &Manifest) -> std::result::Result<Self, String> {
        if self.max_batch_size == 0 {
            self.max_batch_size = manifest.max_batch_size;
        }
        self.check(manifest)?;
        Ok(self)
    }

    /// Whether these settings can merge requests to a model of this signature, and are
    /// in range. The message says what is wrong, for the section or a config override.
    pub fn check(&self, manifest: &Manifest) -> std::result::Result<(), String> {
        if let Some(name) = manifest
            .inputs
            .iter()
            .filter(|i| i.shape.first() != Some(&-1))
            .map(|i| &i.name)
            .chain(
                manifest
                    .outputs
                    .iter()
                    .filter(|o| o.shape.first() != Some(&-1))
                    .map(|o| &o.name),
            )
            .next()
        {
            return Err(format!(
                "tensor '{name}' has no batch dimension (its shape must start with -1)"
            ));
        }
        if manifest.max_batch_size > 0 && self.max_batch_size > manifest.max_batch_size {
            return Err(format!(
                "max_batch_size {} is above the manifest's max_batch_size {}",
                self.max_batch_size, manifest.max_batch_size
            ));
        }
        self.check_values()
    }

    /// The checks that need no signature: a queue of at least one, a delay of at most
    /// 10 s, preferred sizes between 1 and the batch cap.
    pub fn check_values(&self) -> std::result::Result<(), String> {
        if self.max_queue_size == 0 {
            return Err("max_queue_size must be at least 1".into());
        }
        if self.max_queue_delay_microseconds > 10_000_000 {
            return Err("max_queue_delay_microseconds must be at most 10 s".into());
        }
        let max = self.batch_cap(0);
        if let Some(p) = self
            .preferred_batch_size
            .as_slice()
            .iter()
            .find(|&&p| p == 0 || p as usize > max)
        {
            return Err(format!(
                "preferred_batch_size {p} is not between 1 and max_batch_size {max}"
            ));
        }
        Ok(())
    }

    /// Most rows in one merged execution: the section's (which defaults to the
    /// manifest's `max_batch_size`), else `fallback`, else 64.
    pub fn batch_cap(&self, fallback: usize) -> usize {
        match (self.max_batch_size, fallback) {
            (0, 0) => DEFAULT_MAX_BATCH as usize,
            (0, f) => f,
            (m, _) => m as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(batching: serde_json::Value, output_shape: serde_json::Value) -> Manifest {
        serde_json::from_value(serde_json::json!({
            "kind": "candle", "weights": "w", "max_batch_size": 256,
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 8]}],
            "outputs": [{"name": "p", "datatype": "FP32", "shape": output_shape}],
            "dynamic_batching": batching,
        }))
        .expect("manifest")
    }

    #[test]
    fn the_section_is_read_with_defaults() {
        let b = DynamicBatching::of(&manifest(
            serde_json::json!({"max_queue_delay_microseconds": 300, "preferred_batch_size": [16, 32]}),
            serde_json::json!([-1, 3]),
        ))
        .expect("ok")
        .expect("present");
        assert_eq!(b.max_batch_size, 256, "the manifest's max_batch_size");
        assert_eq!(b.max_queue_size, DEFAULT_MAX_QUEUE);
        assert_eq!(b.preferred_batch_size.as_slice(), [16, 32]);
        assert_eq!(b.max_queue_delay_microseconds, 300);
    }

    #[test]
    fn bad_sections_name_what_is_wrong() {
        for (section, shape, needle) in [
            (serde_json::json!({}), serde_json::json!([3]), "tensor 'p'"),
            (
                serde_json::json!({"max_batch_size": 512}),
                serde_json::json!([-1, 3]),
                "above the manifest's",
            ),
            (
                serde_json::json!({"preferred_batch_size": [0]}),
                serde_json::json!([-1, 3]),
                "preferred_batch_size 0",
            ),
            (
                serde_json::json!({"preferred_batch_size": [1, 2, 3, 4, 5, 6, 7, 8, 9]}),
                serde_json::json!([-1, 3]),
                "at most 8",
            ),
            (
                serde_json::json!({"max_queue_size": 0}),
                serde_json::json!([-1, 3]),
                "max_queue_size",
            ),
            (
                serde_json::json!({"max_delay": 1}),
                serde_json::json!([-1, 3]),
                "unknown field",
            ),
        ] {
            let err = DynamicBatching::of(&manifest(section, shape))
                .expect_err(needle)
                .to_string();
            assert!(
                err.contains(needle) && err.contains("dynamic_batching"),
                "{err}"
            );
        }
    }
}
