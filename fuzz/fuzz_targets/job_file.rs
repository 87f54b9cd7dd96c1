#![no_main]
//! `mailvault::fuzzing::job_file`: see that function for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mailvault::fuzzing::job_file(data));
