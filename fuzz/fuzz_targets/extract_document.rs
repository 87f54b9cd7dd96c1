#![no_main]
//! `mailvault::fuzzing::extract_document`: see that function for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailvault::fuzzing::extract_document(data));
