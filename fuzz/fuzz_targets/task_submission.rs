#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dbwatermark::fuzzing::task_submission(data));
