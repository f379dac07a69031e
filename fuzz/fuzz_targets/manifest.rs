//! libFuzzer's entry to [`mercator_fuzz::manifest`] (its doc says what it fuzzes).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mercator_fuzz::manifest(data));
