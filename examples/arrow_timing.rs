//! The Rust library's time to embed into and extract from an Arrow table
//! held in memory, as the Python package does it: plan from the first rows,
//! mark every batch, then tally and decode. `scripts/python_bench.py` runs it on the
//! same data it times from Python.
//!
//! ```sh
//! cargo run --release --example arrow_timing -- TABLE.arrow PK CONTENT [REPEATS]
//! ```
//!
//! Prints one JSON line: `{"rows", "embed_s", "extract_s"}` (best of
//! REPEATS, default 5). The key is `DBWM_KEY`.

use std::path::PathBuf;
use std::time::Instant;

use dbwatermark::arrow::{BatchPlan, PROFILE_ROWS};
use dbwatermark::{ColumnRules, Config, TableTally, WatermarkKey, Watermarker, files, pipeline};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, pk, content, rest @ ..] = args.as_slice() else {
        return Err("usage: arrow_timing TABLE.arrow PK CONTENT [REPEATS]".into());
    };
    let repeats: usize = rest.first().map_or(Ok(5), |r| r.parse())?;
    let secret = std::env::var("DBWM_KEY").map_err(|_| "set DBWM_KEY")?;
    let wm = Watermarker::new(
        WatermarkKey::new(&secret)?,
        Config::builder().trace_rows(1000).build()?,
    );
    let input = files::open(&PathBuf::from(path), &Default::default())?;
    let schema = input.reader.schema();
    let batches = input.reader.collect::<Result<Vec<_>, _>>()?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let head = |batches: &[arrow_array::RecordBatch]| {
        let mut n = 0;
        batches
            .iter()
            .take_while(|b| {
                let more = n < PROFILE_ROWS;
                n += b.num_rows();
                more
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let rules = ColumnRules::new();
    let payload = wm.payload(content)?;
    let mut marked = Vec::new();
    let mut embed_s = f64::INFINITY;
    for _ in 0..repeats {
        let start = Instant::now();
        let plan = BatchPlan::profiled_with(&schema, &[pk], None, &rules, &head(&batches))?;
        let density = wm.density_for(Some(rows), &payload);
        marked = batches
            .iter()
            .map(|b| wm.embed_batch(b, &plan, &payload, density).map(|(b, _)| b))
            .collect::<Result<Vec<_>, _>>()?;
        embed_s = embed_s.min(start.elapsed().as_secs_f64());
    }
    let mut extract_s = f64::INFINITY;
    let mut found = String::new();
    for _ in 0..repeats {
        let start = Instant::now();
        let plan = BatchPlan::profiled_with(&schema, &[pk], None, &rules, &head(&marked))?;
        let mut tallies = plan.new_tallies();
        for b in &marked {
            wm.tally_batch(b, &plan, &mut tallies)?;
        }
        let mut all = TableTally::new(&wm);
        for (name, t) in plan.marked_names().iter().zip(tallies) {
            all.add(name, t);
        }
        all.add_rows(rows as u64);
        let summary = pipeline::summarize(&wm, &all, None)?;
        extract_s = extract_s.min(start.elapsed().as_secs_f64());
        found = summary
            .found
            .first()
            .map(|f| f.content.clone())
            .unwrap_or_default();
    }
    assert_eq!(found, *content, "the content reads back");
    println!("{{\"rows\": {rows}, \"embed_s\": {embed_s:.4}, \"extract_s\": {extract_s:.4}}}");
    Ok(())
}
