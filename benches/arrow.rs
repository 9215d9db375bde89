//! The Arrow path against its floor, on one thread and on all.
//!
//! `cargo bench --bench arrow`. Data: 10,000,000 rows in batches of 65,536:
//! an Int64 key, an Int64, a Decimal128(12,2) and a Utf8 column, fixed seed.

use std::hint::black_box;
use std::sync::Arc;

use arrow_array::{Decimal128Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dbwatermark::arrow::BatchPlan;
use dbwatermark::eval::sample::Rng;
use dbwatermark::{Config, WatermarkKey, Watermarker};

#[path = "common/floor.rs"]
mod floor;
use floor::hash_floor;

const ROWS: usize = 10_000_000;
const BATCH: usize = 65_536;

fn batches() -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("qty", DataType::Int64, false),
        Field::new("amount", DataType::Decimal128(12, 2), false),
        Field::new("name", DataType::Utf8, false),
    ]));
    let mut rng = Rng::new(10);
    (0..ROWS)
        .step_by(BATCH)
        .map(|start| {
            let n = BATCH.min(ROWS - start);
            let ids = Int64Array::from_iter_values((start..start + n).map(|i| i as i64));
            let qty = Int64Array::from_iter_values((0..n).map(|_| rng.below(10_000) as i64));
            let amount =
                Decimal128Array::from_iter_values((0..n).map(|_| rng.below(10_000_000) as i128))
                    .with_precision_and_scale(12, 2)
                    .unwrap();
            let name = StringArray::from_iter_values(
                (0..n).map(|_| format!("customer {}", rng.below(1_000_000))),
            );
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(ids),
                    Arc::new(qty),
                    Arc::new(amount),
                    Arc::new(name),
                ],
            )
            .unwrap()
        })
        .collect()
}

/// The floor over every batch's key column.
fn floor(batches: &[RecordBatch]) -> u8 {
    batches
        .iter()
        .map(|b| {
            hash_floor(
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values(),
            )
        })
        .fold(0, |a, b| a ^ b)
}

fn bench(c: &mut Criterion) {
    let data = batches();
    let wm = Watermarker::new(WatermarkKey::new("bench key").unwrap(), Config::default());
    let plan = BatchPlan::new(&data[0].schema(), &["id"], None).unwrap();
    let payload = wm.payload("acme->partner-42").unwrap();
    let density = wm.density_for(Some(ROWS), &payload);
    let marked: Vec<RecordBatch> = data
        .iter()
        .map(|b| wm.embed_batch(b, &plan, &payload, density).unwrap().0)
        .collect();

    let mut group = c.benchmark_group("arrow");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        group.bench_function(format!("hmac_floor/10M_rows/{threads}_threads"), |b| {
            b.iter(|| pool.install(|| black_box(floor(&data))))
        });
        group.bench_function(
            format!("embed/10M_rows_int_decimal_utf8/{threads}_threads"),
            |b| {
                b.iter(|| {
                    pool.install(|| {
                        for batch in &data {
                            black_box(wm.embed_batch(batch, &plan, &payload, density).unwrap());
                        }
                    })
                })
            },
        );
        group.bench_function(
            format!("extract/10M_rows_int_decimal_utf8/{threads}_threads"),
            |b| {
                b.iter(|| {
                    pool.install(|| {
                        let mut tallies = plan.new_tallies();
                        for batch in &marked {
                            wm.tally_batch(batch, &plan, &mut tallies).unwrap();
                        }
                        let found = wm.decode(&tallies);
                        assert_eq!(found[0].content, "acme->partner-42");
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
