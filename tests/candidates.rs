//! Who leaked it: candidate scoring against issued copies.

use dbwatermark::eval::attack;
use dbwatermark::eval::sample::{self, Rng};
use dbwatermark::{Positions, Table, Tally, Watermarker};

use crate::support::watermarker;

fn issued(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("acme->partner-{i:03}")).collect()
}

fn tallies(wm: &Watermarker, t: &Table) -> Vec<Tally> {
    wm.tally_table(t)
        .unwrap()
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

fn named(wm: &Watermarker, leak: &Table, contents: &[String]) -> Vec<String> {
    let candidates = wm.candidates(contents).unwrap();
    wm.identify(&tallies(wm, leak), &candidates)
        .identified
        .into_iter()
        .map(|s| s.content)
        .collect()
}

#[test]
fn the_right_copy_is_named_from_two_hundred_rows_of_one_in_a_hundred() {
    let table = sample::customers(20_000, 1, 5);
    let contents = issued(100);
    for k in 0..4u64 {
        let wm = watermarker(&format!("key-{k}"));
        let leaker = (17 * k as usize + 3) % 100;
        let mut copy = table.clone();
        wm.embed_table(&mut copy, &contents[leaker]).unwrap();
        // 200 rows of 20,000 (99% deleted): too few to decode the content.
        let leak = attack::delete_rows(&copy, 0.99, k);
        assert!(wm.extract_table(&leak).unwrap().is_empty(), "key {k}");
        let result = wm.identify(&tallies(&wm, &leak), &wm.candidates(&contents).unwrap());
        assert_eq!(result.identified.len(), 1, "key {k}: {result:?}");
        let best = &result.identified[0];
        assert_eq!(best.content, contents[leaker]);
        assert_eq!(best.candidate, leaker);
        assert!(
            best.p_value < 1e-9 && best.agree * 10 > best.total * 9,
            "{best:?}"
        );
        assert!(best.marks_agree <= best.marks_total && best.total <= best.marks_total);
    }
}

#[test]
fn a_never_issued_content_is_never_named_however_alike() {
    let table = sample::customers(8_000, 1, 6);
    let contents = issued(100);
    let mut rng = Rng::new(9);
    for k in 0..6u64 {
        let wm = watermarker(&format!("key-{k}"));
        // Differs from an issued content in one character.
        let mut copy = table.clone();
        wm.embed_table(&mut copy, "acme->partner-101").unwrap();
        let leak = attack::delete_rows(&copy, rng.unit() * 0.9, k);
        assert_eq!(
            named(&wm, &leak, &contents),
            Vec::<String>::new(),
            "key {k}"
        );
        // And a registry that lists it names it.
        let mut with_it = contents.clone();
        with_it.push("acme->partner-101".to_owned());
        assert_eq!(named(&wm, &leak, &with_it), vec!["acme->partner-101"]);
    }
}

#[test]
fn unmarked_data_and_wrong_keys_name_no_copy() {
    let table = sample::customers(5_000, 1, 7);
    let contents = issued(100);
    let owner = watermarker("owner");
    let mut marked = table.clone();
    owner.embed_table(&mut marked, &contents[4]).unwrap();
    for k in 0..20 {
        let wm = watermarker(&format!("stranger-{k}"));
        assert!(
            named(&wm, &table, &contents).is_empty(),
            "unmarked, key {k}"
        );
        assert!(named(&wm, &marked, &contents).is_empty(), "wrong key {k}");
        // Chance agreement gives no estimate of the rows needed.
        let r = wm.identify(&tallies(&wm, &table), &wm.candidates(&contents).unwrap());
        assert!(
            r.rows_factor_needed.is_none() || r.best_other.unwrap().p_value <= 0.01,
            "key {k}"
        );
    }
}

#[test]
fn a_merged_leak_names_both_copies() {
    let table = sample::customers(20_000, 1, 8);
    let contents = issued(50);
    for (k, share) in [(0u64, 0.5), (1, 0.7)] {
        let wm = watermarker(&format!("merge-{k}"));
        let (a, b) = (10 + k as usize, 30);
        let mut copy_a = table.clone();
        wm.embed_table(&mut copy_a, &contents[a]).unwrap();
        let mut copy_b = table.clone();
        wm.embed_table(&mut copy_b, &contents[b]).unwrap();
        let leak = attack::merge(&copy_a, &copy_b, share, k);
        let mut got = named(&wm, &leak, &contents);
        got.sort();
        assert_eq!(
            got,
            vec![contents[a].clone(), contents[b].clone()],
            "{share}"
        );
    }
}

#[test]
fn when_nothing_passes_the_best_evidence_and_the_rows_needed_are_reported() {
    let table = sample::customers(20_000, 1, 10);
    let contents = issued(100);
    let wm = watermarker("few-rows");
    let mut copy = table.clone();
    wm.embed_table(&mut copy, &contents[42]).unwrap();
    // 100 rows: too few marked rows to name it at p ≤ 1e-9.
    let leak = attack::delete_rows(&copy, 1.0 - 100.0 / 20_000.0, 3);
    let result = wm.identify(&tallies(&wm, &leak), &wm.candidates(&contents).unwrap());
    assert!(result.identified.is_empty(), "{result:?}");
    let best = result.best_other.expect("a best candidate");
    assert_eq!(best.content, contents[42]);
    assert!(best.p_value > 1e-9 && best.p_value < 1.0, "{best:?}");
    let factor = result.rows_factor_needed.expect("an estimate");
    assert!((1.0..20.0).contains(&factor), "{factor}");
}

#[test]
fn a_bad_candidate_or_threshold_is_named() {
    let wm = watermarker("k");
    let err = wm.candidates(["ok", "", "fine"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "candidate 1: watermark content must be 1 to 64 bytes of UTF-8, got 0 bytes"
    );
    let c = wm.candidates(["ok"]).unwrap();
    assert!(c.clone().with_threshold(0.0).is_err());
    assert!(c.clone().with_threshold(1.0).is_err());
    assert!(c.clone().with_threshold(f64::NAN).is_err());
    assert_eq!(c.with_threshold(1e-6).unwrap().threshold(), 1e-6);
}

#[test]
fn a_copy_made_under_row_positions_is_still_decoded_and_named() {
    // Copies made before cell positions carry one position per row.
    let table = sample::customers(20_000, 1, 11);
    let contents = issued(100);
    let old = dbwatermark::Config::builder()
        .positions(Positions::Row)
        .build()
        .unwrap();
    let wm = watermarker("old-copy").with_config(old);
    let mut copy = table.clone();
    wm.embed_table(&mut copy, &contents[7]).unwrap();
    // Read by today's default configuration, which writes cell positions.
    let reader = watermarker("old-copy");
    let found = reader.extract_table(&copy).unwrap();
    assert_eq!(found[0].content, contents[7]);
    assert_eq!(found[0].evidence.positions, Positions::Row);
    let leak = attack::delete_rows(&copy, 0.97, 1);
    let result = reader.identify(
        &tallies(&reader, &leak),
        &reader.candidates(&contents).unwrap(),
    );
    assert_eq!(named(&reader, &leak, &contents), vec![contents[7].clone()]);
    assert_eq!(result.identified[0].positions, Positions::Row);
}

#[test]
fn cell_positions_name_a_copy_from_fewer_rows_than_row_positions() {
    // Four marked columns give a marked row up to four positions instead
    // of one, and the automatic density, which counts them, is sparser.
    let table = sample::customers(20_000, 1, 12);
    let contents = issued(100);
    let (mut by_cell, mut by_row) = (0, 0);
    for k in 0..4u64 {
        for (positions, hits) in [
            (Positions::Cell, &mut by_cell),
            (Positions::Row, &mut by_row),
        ] {
            let config = dbwatermark::Config::builder()
                .positions(positions)
                .build()
                .unwrap();
            let wm = watermarker(&format!("fewer-{k}")).with_config(config);
            let mut copy = table.clone();
            wm.embed_table(&mut copy, &contents[k as usize]).unwrap();
            let leak = attack::delete_rows(&copy, 1.0 - 200.0 / 20_000.0, k);
            *hits += usize::from(named(&wm, &leak, &contents) == [contents[k as usize].clone()]);
        }
    }
    assert_eq!((by_cell, by_row), (4, 0));
}
