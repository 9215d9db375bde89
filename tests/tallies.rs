//! Tallies that travel: the binary form of a table's tallies round-trips,
//! stays small for a partition, and merged partitions decode like the whole.

use dbwatermark::eval::sample;
use dbwatermark::{ColumnRules, Table, TableTally, TallyError, Watermarker};
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, RngSeed};

use crate::support::watermarker;

/// The table tally of `rows` of `table`, read with `plans`, shipped as bytes.
fn shipped(
    wm: &Watermarker,
    table: &Table,
    rows: &[usize],
    plans: &[dbwatermark::ColumnPlan],
) -> TableTally {
    let part = table.take_rows(rows);
    let mut t = TableTally::new(wm);
    for (name, tally) in wm.tally_table_planned(&part, plans).unwrap() {
        t.add(&name, tally);
    }
    TableTally::from_bytes(&t.to_bytes()).unwrap()
}

#[test]
fn merged_tallies_of_1_7_and_64_partitions_give_identical_evidence() {
    let wm = watermarker("partitioned");
    let mut table = sample::customers(40_000, 1, 11);
    let plans = table.plan(&ColumnRules::new()).unwrap();
    wm.embed_table_planned(&mut table, "partner-7", &plans)
        .unwrap();
    let leak_plans = table.plan(&ColumnRules::new()).unwrap();
    let candidates = wm
        .candidates(["partner-6", "partner-7", "partner-8"])
        .unwrap();
    let mut results = Vec::new();
    for parts in [1usize, 7, 64] {
        // Interleaved partitions: row i goes to partition i * 31 % parts.
        let mut merged = TableTally::new(&wm);
        for p in 0..parts {
            let rows: Vec<usize> = (0..table.rows()).filter(|i| i * 31 % parts == p).collect();
            merged
                .merge(&shipped(&wm, &table, &rows, &leak_plans))
                .unwrap();
        }
        let found = merged.decode(&wm).unwrap();
        let id = merged.identify(&wm, &candidates).unwrap();
        results.push((merged, found, format!("{id:?}")));
    }
    assert_eq!(results[0].1[0].content, "partner-7");
    for r in &results[1..] {
        assert_eq!(r.0, results[0].0, "the merged tally is the whole's");
        assert_eq!(r.1, results[0].1);
        assert_eq!(r.2, results[0].2);
    }
}

#[test]
fn a_ten_thousand_row_partition_ships_in_at_most_32_kb() {
    let wm = watermarker("small");
    let mut table = sample::customers(10_000, 1, 12);
    let plans = table.plan(&ColumnRules::new()).unwrap();
    wm.embed_table_planned(&mut table, "partner-1", &plans)
        .unwrap();
    let all: Vec<usize> = (0..table.rows()).collect();
    let t = shipped(&wm, &table, &all, &table.plan(&ColumnRules::new()).unwrap());
    let bytes = t.to_bytes().len();
    assert!(t.columns().len() >= 3, "{:?}", t);
    assert!(
        bytes <= 32 * 1024,
        "{bytes} bytes for {} columns",
        t.columns().len()
    );
}

#[test]
fn tallies_of_two_keys_refuse_to_merge_and_to_decode_under_the_other_key() {
    let (a, b) = (watermarker("key-a"), watermarker("key-b"));
    let mut ta = TableTally::new(&a);
    let tb = TableTally::new(&b);
    let err = ta.merge(&tb).unwrap_err();
    assert!(matches!(err, TallyError::KeyMismatch { .. }));
    assert!(err.to_string().contains(&a.key_fingerprint()), "{err}");
    assert!(tb.decode(&a).is_err());
}

proptest! {
    #![proptest_config(PropConfig {
        cases: 512,
        rng_seed: RngSeed::Fixed(0x7a11),
        failure_persistence: None,
        ..PropConfig::default()
    })]

    /// Arbitrary bytes, and valid tallies with bytes changed, cut or
    /// added, are read or refused without a panic.
    #[test]
    fn reading_arbitrary_bytes_never_panics(
        data in proptest::collection::vec(any::<u8>(), 0..256),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in any::<usize>(),
    ) {
        dbwatermark::fuzzing::tally_bytes(&data);
        let wm = watermarker("fuzz");
        let mut t = TableTally::new(&wm);
        let table = sample::customers(300, 1, 5);
        for (name, tally) in wm.tally_table(&table).unwrap() {
            t.add(&name, tally);
        }
        let mut bytes = t.to_bytes();
        for (at, b) in flips {
            let n = bytes.len();
            bytes[at % n] ^= b;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        dbwatermark::fuzzing::tally_bytes(&bytes);
        bytes.extend_from_slice(&data);
        dbwatermark::fuzzing::tally_bytes(&bytes);
    }
}
