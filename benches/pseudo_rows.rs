//! Adding pseudo-rows (one per 100 real rows) to one 32,768-row batch of
//! generated customers, on a dense key (ids 1..N, every key inside the
//! range taken, so that new keys go above it) and on a key with gaps (every
//! third id, new keys found inside the range).
//!
//! `cargo bench --bench pseudo_rows --features arrow,eval`. A dense key once
//! scanned its whole neighbourhood for every key weighed, 32 times per
//! place; this bench shows such a regression as a jump of the dense case
//! against the gapped one.

use std::hint::black_box;

use arrow_array::{Array, Int64Array, RecordBatch};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dbwatermark::arrow::{BatchPlan, PseudoRows, table_to_batch};
use dbwatermark::eval::sample::customers;
use dbwatermark::{Config, WatermarkKey, Watermarker};

const ROWS: usize = 32_768;
const SPACING: u32 = 100;

/// The generated customers with their ids replaced by `id(row)`.
fn with_ids(id: impl Fn(usize) -> i64) -> RecordBatch {
    let batch = table_to_batch(&customers(ROWS, 1, 17)).unwrap();
    let ids = Int64Array::from_iter_values((0..ROWS).map(id));
    let mut columns = batch.columns().to_vec();
    assert_eq!(columns[0].len(), ids.len());
    columns[0] = std::sync::Arc::new(ids);
    RecordBatch::try_new(batch.schema(), columns).unwrap()
}

fn pseudo_rows(c: &mut Criterion) {
    let wm = Watermarker::new(
        WatermarkKey::new("bench-pseudo-rows").unwrap(),
        Config::default(),
    );
    let payload = wm.payload("partner-7").unwrap();
    let mut group = c.benchmark_group("pseudo_rows");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    for (name, batch) in [
        ("dense_key", with_ids(|i| i as i64 + 1)),
        ("key_with_gaps", with_ids(|i| 3 * i as i64 + 1)),
    ] {
        let plan = BatchPlan::new(&batch.schema(), &["customer_id"], None).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut rows = PseudoRows::new(&plan, SPACING).unwrap();
                rows.observe(&batch, &plan).unwrap();
                let copy = wm
                    .add_pseudo_rows(&batch, &plan, &payload, &mut rows)
                    .unwrap();
                black_box((copy.num_rows(), rows.report().added))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, pseudo_rows);
criterion_main!(benches);
