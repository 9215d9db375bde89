#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| drop(dbwatermark::dsc::embed_json(data)));
