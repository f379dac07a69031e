//! Model artifacts behind real manifests: XGBoost JSON, an ETS fit, a per-series ETS
//! bundle, and a neural forecaster's safetensors. The first byte picks the manifest, the
//! rest is the weights file; building the model must refuse bad bytes, never panic.
#![no_main]

use mercator_runtime::Manifest;

const MANIFESTS: [&[u8]; 3] = [
    include_bytes!("../../examples/churn/mercator.json"),
    include_bytes!("../../examples/demand/ets/mercator.json"),
    include_bytes!("../../examples/demand/net/mercator.json"),
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, weights)) = data.split_first() else {
        return;
    };
    let Ok(manifest) = Manifest::parse(MANIFESTS[usize::from(pick) % MANIFESTS.len()]) else {
        return;
    };
    let _ = manifest.build(weights);
});
