//! libFuzzer's entry to [`mercator_fuzz::rest_json`] (its doc says what it fuzzes).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mercator_fuzz::rest_json(data));
