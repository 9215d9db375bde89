//! Candidate scoring against a plain extraction.
//!
//! `cargo bench --bench candidates`. Data: the evaluation's default table
//! (30,000 customers: an integer key, three numeric columns and a name),
//! watermarked with one of 100 issued contents. `extract` tallies the table
//! and decodes it; `extract + 100 candidates` does the same and also
//! prepares the 100 issued contents and tests the tallies against them. The
//! issue's target: at most 1.5× `extract`. Both are measured on the whole
//! copy and on a 600-row leak of it (98% deleted).

use criterion::{Criterion, criterion_group, criterion_main};
use dbwatermark::eval::{self, attack};
use dbwatermark::{Config, Table, Tally, WatermarkKey, Watermarker};
use std::hint::black_box;

fn tallies(wm: &Watermarker, t: &Table) -> Vec<Tally> {
    wm.tally_table(t)
        .unwrap()
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

fn bench(c: &mut Criterion) {
    let wm = Watermarker::new(WatermarkKey::new("bench key").unwrap(), Config::default());
    let issued: Vec<String> = (1..=100).map(|i| format!("acme/partner-{i:03}")).collect();
    let mut copy = eval::default_table();
    wm.embed_table(&mut copy, &issued[41]).unwrap();
    let leak = attack::delete_rows(&copy, 0.98, 1);
    for (name, table) in [("30,000 rows", &copy), ("600-row leak", &leak)] {
        let mut g = c.benchmark_group(format!("candidates/{name}"));
        g.sample_size(20);
        g.bench_function("extract", |b| {
            b.iter(|| black_box(wm.decode(&tallies(&wm, table))))
        });
        g.bench_function("extract + 100 candidates", |b| {
            b.iter(|| {
                let t = tallies(&wm, table);
                let found = wm.decode(&t);
                let candidates = wm.candidates(&issued).unwrap();
                black_box((found, wm.identify(&t, &candidates)))
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
