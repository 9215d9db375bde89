//! The core against its floor: one HMAC-SHA256 per row.
//!
//! `cargo bench --bench core`. Data: 1,000,000 rows, an Int64 key and three
//! Int64 columns, fixed seed. Every benchmark uses the same rayon pool (all
//! cores), so the ratios compare like with like.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dbwatermark::eval::sample::Rng;
use dbwatermark::{ColumnMut, ColumnRef, Config, KeyPart, Tally, WatermarkKey, Watermarker};
use std::hint::black_box;

#[path = "common/floor.rs"]
mod floor;
use floor::hash_floor;

const ROWS: usize = 1_000_000;

struct Data {
    ids: Vec<i64>,
    columns: [Vec<i64>; 3],
}

fn data() -> Data {
    let mut rng = Rng::new(2026);
    let ids: Vec<i64> = (0..ROWS as i64).map(|i| i * 13 + 100_000).collect();
    let mut col = |m: u64| (0..ROWS).map(|_| rng.below(m) as i64).collect::<Vec<_>>();
    Data {
        columns: [col(1_000), col(1_000_000), col(u64::MAX >> 8)],
        ids,
    }
}

fn bench(c: &mut Criterion) {
    let d = data();
    let wm = Watermarker::new(WatermarkKey::new("bench key").unwrap(), Config::default());
    let payload = wm.payload("acme->partner-42").unwrap();
    let density = wm.density_for(Some(ROWS), &payload);
    let select = || {
        wm.select(ROWS, |row, key| {
            key.push(KeyPart::Int(d.ids[row].into()));
            true
        })
    };

    let mut group = c.benchmark_group("core");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));

    group.bench_function("hmac_floor/1M_rows", |b| {
        b.iter(|| black_box(hash_floor(&d.ids)))
    });

    group.bench_function("select/1M_rows", |b| b.iter(|| black_box(select())));

    group.bench_function("embed/1M_rows_3_int64", |b| {
        b.iter_batched(
            || d.columns.clone(),
            |mut columns| {
                let selection = select();
                for col in &mut columns {
                    wm.embed_column(&selection, &payload, density, ColumnMut::Int64(col), None)
                        .unwrap();
                }
                columns
            },
            BatchSize::LargeInput,
        )
    });

    // A marked copy to extract from.
    let selection = select();
    let mut marked = d.columns.clone();
    for col in &mut marked {
        wm.embed_column(&selection, &payload, density, ColumnMut::Int64(col), None)
            .unwrap();
    }
    let tallies = |selection: &dbwatermark::Selection, columns: &[Vec<i64>]| -> Vec<Tally> {
        columns
            .iter()
            .map(|col| {
                let mut t = Tally::new();
                wm.tally_column(selection, ColumnRef::Int64(col), None, &mut t)
                    .unwrap();
                t
            })
            .collect()
    };
    group.bench_function("extract/1M_rows_3_int64", |b| {
        b.iter(|| {
            let found = wm.decode(&tallies(&select(), &marked));
            assert_eq!(found[0].content, "acme->partner-42");
            found
        })
    });

    // Decoding alone, on unmarked data: the cost of a negative answer.
    let unmarked = tallies(&selection, &d.columns);
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_nothing/3_columns", |b| {
        b.iter(|| assert!(wm.decode(&unmarked).is_empty()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
