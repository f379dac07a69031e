//! libFuzzer's entry to [`mercator_fuzz::rest_binary`] (its doc says what it fuzzes).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mercator_fuzz::rest_binary(data));
