//! What the forecaster parity tests share: reading committed artifacts, comparing
//! numbers with a relative tolerance, and a seeded generator for simulations.
#![allow(dead_code, reason = "each test binary uses the helpers it needs")]

use std::path::PathBuf;

/// A file of `dir` (relative to the runtime crate).
pub(crate) fn read(dir: &str, name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A JSON array of numbers.
pub(crate) fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// Each `got` within `rel` of `want`, relative to `want` (absolute below 1).
pub(crate) fn close(got: &[f64], want: &[f64], rel: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rel * w.abs().max(1.0),
            "{what}[{i}]: {g} vs the training library's {w}"
        );
    }
}

/// SplitMix64 with Box-Muller normals: small, seeded, repeatable draws for simulations.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// 53 random bits in (0, 1].
    pub(crate) fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (((z ^ (z >> 31)) >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// A standard normal draw.
    pub(crate) fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}
