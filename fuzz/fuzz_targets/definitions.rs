//! Feature definitions (TOML) as `ApplyDefinitions` receives them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mercator_features::definitions::Definitions::from_toml(text);
    }
});
