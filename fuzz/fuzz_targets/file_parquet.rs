#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dbwatermark::fuzzing::file(dbwatermark::files::Format::Parquet, data)
});
