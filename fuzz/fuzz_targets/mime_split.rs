#![no_main]
//! `mailvault::fuzzing::mime_split`: see that function for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailvault::fuzzing::mime_split(data));
