#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| drop(dbwatermark::dsc::extract_json(data)));
