#![no_main]
//! `mailvault::fuzzing::local_sources`: see that function for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailvault::fuzzing::local_sources(data));
