//! A version's batching settings: its manifest's `dynamic_batching` section, changed by
//! the configuration's `[serving.batching.<model>]` table when there is one.

use std::time::Duration;

use mercator_runtime::Manifest;
use mercator_runtime::manifest::batching::{DynamicBatching, PreferredSizes};
use serde::{Deserialize, Serialize};

/// A version's batching settings, resolved at load.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Most rows in one merged execution.
    pub max_rows: usize,
    /// How long the oldest waiting request may wait for others.
    pub delay: Duration,
    /// Sizes at which a batch runs at once.
    pub preferred: PreferredSizes,
    /// Most requests waiting.
    pub max_queue: usize,
}

impl Settings {
    /// From a manifest's (or the configuration's) section; `max_batch` is the version's
    /// largest request, which no merged batch exceeds either.
    pub fn of(b: &DynamicBatching, max_batch: usize) -> Settings {
        Settings {
            max_rows: b.batch_cap(0).min(max_batch.max(1)),
            delay: Duration::from_micros(b.max_queue_delay_microseconds),
            preferred: b.preferred_batch_size,
            max_queue: b.max_queue_size as usize,
        }
    }
}

/// `[serving.batching.<model>]`: turns a model's batching on or off, or changes any of
/// its manifest's settings, without registering a new version. Keys left out keep the
/// manifest's value (or the default, for a manifest without the section).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// `false` serves the model unbatched whatever its manifest says; `true` (or any
    /// other key) batches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// As the manifest's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_size: Option<u32>,
    /// As the manifest's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue_delay_microseconds: Option<u64>,
    /// As the manifest's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_batch_size: Option<Vec<u32>>,
    /// As the manifest's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue_size: Option<u32>,
}

impl Override {
    /// Refuses values no model could take (checked at start; the rest at load, against
    /// each version's signature).
    pub fn check(&self) -> Result<(), String> {
        let mut b = DynamicBatching::default();
        if let Some(n) = self.max_batch_size {
            if n == 0 {
                return Err("max_batch_size must be at least 1".into());
            }
            b.max_batch_size = n;
        }
        b.max_queue_delay_microseconds = self.max_queue_delay_microseconds.unwrap_or(0);
        if let Some(q) = self.max_queue_size {
            b.max_queue_size = q;
        }
        if let Some(p) = &self.preferred_batch_size {
            b.preferred_batch_size = PreferredSizes::new(p)
                .ok_or_else(|| format!("preferred_batch_size: at most 8, got {}", p.len()))?;
            if b.max_batch_size == 0 {
                // Without a cap here, the manifest's applies: only the lower bound is known.
                b.max_batch_size = u32::MAX;
            }
        }
        b.check_values()
    }

    /// The batching a version of `manifest` gets: its section (`section`), changed by
    /// `over`; `None` for unbatched. Settings that do not fit the signature are an error
    /// naming the key.
    pub fn resolve(
        over: Option<&Override>,
        manifest: &Manifest,
        section: Option<DynamicBatching>,
    ) -> Result<Option<DynamicBatching>, String> {
        let Some(o) = over else {
            return Ok(section);
        };
        if o.enabled == Some(false) {
            return Ok(None);
        }
        let mut b = section.unwrap_or_default();
        if let Some(n) = o.max_batch_size {
            b.max_batch_size = n;
        }
        if let Some(d) = o.max_queue_delay_microseconds {
            b.max_queue_delay_microseconds = d;
        }
        if let Some(p) = &o.preferred_batch_size {
            b.preferred_batch_size = PreferredSizes::new(p)
                .ok_or_else(|| format!("preferred_batch_size: at most 8, got {}", p.len()))?;
        }
        if let Some(q) = o.max_queue_size {
            b.max_queue_size = q;
        }
        b.fitted(manifest).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(section: Option<serde_json::Value>) -> Manifest {
        let mut m = serde_json::json!({
            "kind": "candle", "weights": "w",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 8]}],
            "outputs": [{"name": "p", "datatype": "FP32", "shape": [-1, 3]}],
        });
        if let (Some(s), Some(m)) = (section, m.as_object_mut()) {
            m.insert("dynamic_batching".into(), s);
        }
        serde_json::from_value(m).expect("manifest")
    }

    #[test]
    fn overrides_change_or_turn_off_the_manifest_settings() {
        let m = manifest(Some(
            serde_json::json!({"max_queue_delay_microseconds": 100}),
        ));
        let section = DynamicBatching::of(&m).expect("ok");
        assert_eq!(Override::resolve(None, &m, section), Ok(section));
        let off = Override {
            enabled: Some(false),
            ..Override::default()
        };
        assert_eq!(Override::resolve(Some(&off), &m, section), Ok(None));
        let longer = Override {
            max_queue_delay_microseconds: Some(900),
            preferred_batch_size: Some(vec![8]),
            ..Override::default()
        };
        let b = Override::resolve(Some(&longer), &m, section)
            .expect("ok")
            .expect("on");
        assert_eq!(b.max_queue_delay_microseconds, 900);
        assert_eq!(b.preferred_batch_size.as_slice(), [8]);
        // Turned on by the configuration for a manifest without the section.
        let plain = manifest(None);
        let on = Override {
            enabled: Some(true),
            ..Override::default()
        };
        assert!(
            Override::resolve(Some(&on), &plain, None)
                .expect("ok")
                .is_some()
        );
        let bad = Override {
            preferred_batch_size: Some(vec![100]),
            max_batch_size: Some(32),
            ..Override::default()
        };
        let err = Override::resolve(Some(&bad), &plain, None).expect_err("too big");
        assert!(err.contains("preferred_batch_size 100"), "{err}");
    }
}
