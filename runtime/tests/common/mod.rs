//! What the forecaster parity tests share: reading committed artifacts and comparing
//! numbers with a relative tolerance.
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
