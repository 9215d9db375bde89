#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dbwatermark::sample::fuzz_extract(data));
