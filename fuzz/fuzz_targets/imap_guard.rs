#![no_main]
//! `mailvault::fuzzing::imap_guard`: see that function for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailvault::fuzzing::imap_guard(data));
