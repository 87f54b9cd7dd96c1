#![no_main]
//! `mailvault::fuzzing::query_parse`: see that function for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailvault::fuzzing::query_parse(data));
