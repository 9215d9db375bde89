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
