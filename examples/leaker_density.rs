//! Naming the leaker against marking density: the share of trials in which
//! the right one of 100 issued copies of the default evaluation table is
//! named (p ≤ 1e-9), with no wrong copy, after deleting a share of the rows,
//! at several densities; and the share of all non-key cells each density
//! changes. Copies are marked and leaks read as `dbwm embed` and `dbwm
//! extract` do (each column profiled and planned); `--typed` marks every
//! column by its type instead.
//!
//! `cargo run --release --example leaker_density [keys] [--typed]`

use dbwatermark::eval::{self, attack};
use dbwatermark::{Config, Density, WatermarkKey, Watermarker};

fn main() {
    let keys: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let marking = if std::env::args().any(|a| a == "--typed") {
        eval::Marking::Typed
    } else {
        eval::Marking::Planned
    };
    let table = eval::default_table();
    let alphabet: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    println!("density  cells changed  deleted  named (of {keys})  wrong");
    for level in [6u8, 8, 10] {
        let density = Density::from_level(level).unwrap();
        for fraction in [0.95, 0.98, 0.99] {
            let (mut named, mut wrong, mut changed) = (0, 0, 0.0);
            for k in 0..keys {
                let mut rng = dbwatermark::eval::sample::Rng::new(7000 + k);
                let config = Config::builder().density(density).build().unwrap();
                let wm = Watermarker::new(
                    WatermarkKey::new(&rng.string(&alphabet, 24)).unwrap(),
                    config,
                );
                let org = rng.string(&alphabet, 4);
                let issued: Vec<String> =
                    (1..=100).map(|i| format!("{org}/partner-{i:03}")).collect();
                let leaker = rng.below(100) as usize;
                let mut copy = table.clone();
                let report = marking.embed(&wm, &mut copy, &issued[leaker]);
                let cells: usize = report.columns.iter().map(|(_, r)| r.changed).sum();
                changed += cells as f64 / (table.rows() * table.columns.len()) as f64;
                let leak = attack::delete_rows(&copy, fraction, rng.next_u64());
                let tallies = marking.tallies(&wm, &leak);
                let result = wm.identify(&tallies, &wm.candidates(&issued).unwrap());
                named += u64::from(
                    result.identified.len() == 1 && result.identified[0].candidate == leaker,
                );
                wrong += result
                    .identified
                    .iter()
                    .filter(|s| s.candidate != leaker)
                    .count();
            }
            println!(
                "{:>7}  {:>12.1}%  {:>6.0}%  {:>15}  {wrong:>5}",
                density.to_string(),
                100.0 * changed / keys as f64,
                100.0 * fraction,
                named
            );
        }
    }
}
