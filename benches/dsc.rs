//! DSC requests end to end (parse, mark, serialize) against serde_json
//! alone parsing and re-serializing the same document.
//!
//! `cargo bench --bench dsc`. Data: 30,000 rows, 5 columns (BIGINT key, INT,
//! DECIMAL(12,2), VARCHAR, TIMESTAMP), fixed seed.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dbwatermark::dsc;
use dbwatermark::eval::sample::Rng;
use std::fmt::Write as _;
use std::hint::black_box;

const ROWS: usize = 30_000;

fn request() -> String {
    let mut rng = Rng::new(30_000);
    let mut s = String::from(
        r#"{"watermark_content":"acme->partner-42","watermark_key":"bench key","columns":[
        {"name":"id","type":"BIGINT","primary_key":true},{"name":"qty","type":"INT","primary_key":false},
        {"name":"amount","type":"DECIMAL(12,2)","primary_key":false},{"name":"name","type":"VARCHAR(64)","primary_key":false},
        {"name":"updated","type":"TIMESTAMP","primary_key":false}],"data":["#,
    );
    for i in 0..ROWS {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            r#"{{"id":{},"qty":{},"amount":{}.{:02},"name":"customer {}","updated":"2025-{:02}-{:02} {:02}:{:02}:{:02}"}}"#,
            1_000_000 + i,
            rng.below(10_000),
            rng.below(100_000),
            rng.below(100),
            rng.below(1_000_000),
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            rng.below(60),
        );
    }
    s.push_str("]}");
    s
}

fn bench(c: &mut Criterion) {
    let body = request();
    let marked: serde_json::Value =
        serde_json::from_slice(&dsc::embed_json(body.as_bytes()).unwrap()).unwrap();
    let mut extract: serde_json::Value = serde_json::from_str(&body).unwrap();
    extract["data"] = marked["marked_data"].clone();
    let extract = serde_json::to_vec(&extract).unwrap();

    let mut group = c.benchmark_group("dsc");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("serde_json_parse_and_write/30k_rows", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(body.as_bytes()).unwrap();
            black_box(serde_json::to_vec(&v).unwrap())
        })
    });
    group.bench_function("embed/30k_rows", |b| {
        b.iter(|| black_box(dsc::embed_json(body.as_bytes()).unwrap()))
    });
    group.bench_function("extract/30k_rows", |b| {
        b.iter(|| {
            let out = dsc::extract_json(&extract).unwrap();
            assert!(out.starts_with(br#"{"watermarks":["acme->partner-42"]"#));
            out
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
