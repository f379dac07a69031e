//! A manifest (`mercator.json`) from anyone who may register a version: parsing it and
//! its typed sections must refuse bad input with an error, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((manifest, _sections)) = mercator_runtime::Manifest::parse_with_sections(data) {
        let _ = manifest.quantiles();
        let _ = manifest.non_negative();
    }
});
