//! The false-positive bound is proved in `dbwatermark::Payload`; these tests
//! check it empirically: unmarked tables and wrong keys report nothing.

use dbwatermark::eval::sample::{self, Rng};

use crate::support::{self, watermarker};

fn trials(count: u64) -> u64 {
    let mut reported = 0;
    for t in 0..count {
        let mut rng = Rng::new(t);
        let secret = rng.string(&['a', 'b', 'c', 'd'], 10);
        let wm = watermarker(&secret);
        // Unmarked data.
        let unmarked = support::table(t, 2000, 4, t % 2 == 0);
        reported += wm.extract_table(&unmarked).unwrap().len() as u64;
        // Marked data, wrong key.
        let mut marked = sample::customers(2000, 1, t);
        wm.embed_table(&mut marked, "the real watermark").unwrap();
        let wrong = watermarker(&format!("{secret}-wrong"));
        reported += wrong.extract_table(&marked).unwrap().len() as u64;
    }
    reported
}

#[test]
fn unmarked_tables_and_wrong_keys_report_nothing() {
    assert_eq!(trials(100), 0);
}

/// 10,000 trials each of unmarked data and of a wrong key, as the design
/// asks; slow, run with `cargo test --release -- --ignored`.
#[test]
#[ignore = "slow: 20,000 extractions"]
fn ten_thousand_trials_report_nothing() {
    assert_eq!(trials(10_000), 0);
}
