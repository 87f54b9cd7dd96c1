#![no_main]
//! `mailvault::fuzzing::imap_lines`: see that function for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailvault::fuzzing::imap_lines(data));
