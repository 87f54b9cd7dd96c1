#![no_main]
//! `mailvault::fuzzing::pop3_proto`: see that function for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailvault::fuzzing::pop3_proto(data));
