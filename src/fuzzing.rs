//! Entry points for the fuzz targets in `fuzz/` and the tests that run
//! them on random bytes. Hidden from the documentation: not an API.

use crate::{Column, Config, Table, Values, WatermarkKey, Watermarker};

/// Fuzzing entry point: builds a table from arbitrary bytes (text keys that
/// may or may not read as numbers, integer, float and text columns) and
/// embeds into and extracts from it. Must never panic.
pub fn extract_table(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.split([',', '\n']).collect();
    let rows = parts.len();
    let ints: Vec<i64> = data
        .chunks(8)
        .map(|c| c.iter().fold(0i64, |a, &b| a << 8 | i64::from(b)))
        .collect();
    let cell = |i: usize| ints.get(i % ints.len().max(1)).copied().unwrap_or(0);
    let table = Table {
        key: vec![Column::new(
            "k",
            Values::Text(parts.iter().map(|s| s.to_string()).collect()),
        )],
        columns: vec![
            Column::new("i", Values::Int64((0..rows).map(cell).collect())),
            Column::new(
                "f",
                Values::Float64((0..rows).map(|i| f64::from_bits(cell(i) as u64)).collect()),
            ),
            Column::new(
                "t",
                Values::Text(parts.iter().rev().map(|s| s.to_string()).collect()),
            ),
        ],
    };
    let wm = Watermarker::new(
        WatermarkKey::new("fuzz").expect("non-empty"),
        Config::default(),
    );
    let mut marked = table.clone();
    if let Ok(content) = std::str::from_utf8(data.get(..data.len().min(64)).unwrap_or_default()) {
        let _ = wm.embed_table(&mut marked, content);
    }
    let _ = wm.extract_table(&marked);
}

/// Fuzzing entry point: reads arbitrary bytes as a
/// [`TableTally`](crate::TableTally); whatever reads must read back the same from its own
/// bytes and merge with itself. Must never panic.
pub fn tally_bytes(data: &[u8]) {
    let Ok(tally) = crate::TableTally::from_bytes(data) else {
        return;
    };
    let again = crate::TableTally::from_bytes(&tally.to_bytes()).expect("written tallies read");
    assert_eq!(again, tally);
    let mut doubled = tally.clone();
    doubled.merge(&tally).expect("the same key merges");
}

/// Fuzzing entry point: a DSC embed request body. Must never panic.
#[cfg(feature = "dsc")]
pub fn dsc_embed(data: &[u8]) {
    let _ = crate::dsc::embed_json(data);
}

/// Fuzzing entry point: a DSC extract request body. Must never panic.
#[cfg(feature = "dsc")]
pub fn dsc_extract(data: &[u8]) {
    let _ = crate::dsc::extract_json(data);
}

/// Fuzzing entry point: a registry of issued copies. Must never panic.
#[cfg(feature = "registry")]
pub fn registry(data: &[u8]) {
    let _ = crate::registry::parse(&String::from_utf8_lossy(data));
}

/// Fuzzing entry point: an `Authorization` header of a signed request.
/// Must never panic.
#[cfg(feature = "server")]
pub fn authorization(data: &[u8]) {
    let _ = crate::server::signing::Authorization::parse(&String::from_utf8_lossy(data));
}

/// Fuzzing entry point: `data` as a file of `format`, read to its end and,
/// when it reads, extracted with the key column `id`; a file must read or
/// fail with an error naming it, never panic. The bytes go through a
/// temporary file (the readers take paths).
#[cfg(feature = "files")]
pub fn file(format: crate::files::Format, data: &[u8]) {
    let Ok(mut tmp) = tempfile::NamedTempFile::new() else {
        return;
    };
    if std::io::Write::write_all(&mut tmp, data).is_err() {
        return;
    }
    let options = crate::files::ReadOptions {
        format: Some(format),
        ..Default::default()
    };
    if let Ok(input) = crate::files::open(tmp.path(), &options) {
        for batch in input.reader {
            if batch.is_err() {
                return;
            }
        }
    }
    let wm = Watermarker::new(
        WatermarkKey::new("fuzz").expect("non-empty"),
        Config::default(),
    );
    let _ = crate::pipeline::extract_files(
        &wm,
        &[tmp.path().to_path_buf()],
        &crate::pipeline::Columns::with_key(["id"]),
        &options,
        &mut |_, _| {},
    );
}

/// Fuzzing entry point: a task submission to `dbwm serve`, checked as the
/// server checks it. Must never panic.
#[cfg(feature = "server")]
pub fn task_submission(data: &[u8]) {
    crate::server::api::fuzz_submission(data);
}
