//! `dbwm demo`: watermark two partner copies of a generated table, leak
//! one, and name the leaker from the leak.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use dbwatermark::eval::{attack, sample};
use dbwatermark::{Config, WatermarkKey, Watermarker, files, pipeline, registry};

use crate::output::{Failure, Outcome};
use crate::tables::{read_table, write_table};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Rows in the generated table.
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Folder for everything the demo writes.
    #[arg(long, default_value = "dbwm-demo")]
    pub out: PathBuf,
}

/// Runs the demo into `--out`; exit 0 when the leaker was named, 3 when
/// not, 1 on any failure.
pub fn run(args: &DemoArgs) -> Outcome {
    demo(args.rows, &args.out).map_err(Failure::Internal)
}

fn demo(rows: usize, dir: &Path) -> Result<ExitCode, String> {
    outln!(
        "dbwatermark demo: who leaked the customer table?  (files in {}/)\n",
        dir.display()
    );
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let original = dir.join("customers.parquet");
    let table = sample::customers(rows, 1, 2026);
    write_table(&table, &original)?;
    outln!(
        "1. Generated {}: {} customers, key `customer_id`, columns {}.",
        original.display(),
        table.rows(),
        table
            .columns
            .iter()
            .map(|c| format!("`{}`", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // One secret key for the data owner; one watermark per partner copy.
    let wm = Watermarker::new(
        WatermarkKey::new("demo key: keep me secret").map_err(|e| e.to_string())?,
        Config::default(),
    );
    let columns = pipeline::Columns::with_key(["customer_id"]);
    let read = files::ReadOptions::default();
    // The registry of issued copies, started afresh.
    let registry_path = dir.join("issued.jsonl");
    let _ = std::fs::remove_file(&registry_path);
    let mut registry = registry::Appender::open(&registry_path).map_err(|e| e.to_string())?;
    for partner in ["A", "B"] {
        let copy = dir.join(format!("partner-{partner}.parquet"));
        let content = format!("acme->partner-{partner}");
        let start = Instant::now();
        let job = pipeline::EmbedJob {
            input: &original,
            output: &copy,
            content: &content,
            columns: &columns,
            read: &read,
            write: &Default::default(),
        };
        let summary = pipeline::embed_file(&wm, &job, &mut |_, _| {}).map_err(|e| e.to_string())?;
        let cells = summary.rows * summary.columns.len();
        let changed: usize = summary.columns.iter().map(|(_, r)| r.changed).sum();
        let max_steps = summary
            .columns
            .iter()
            .map(|(_, r)| r.max_abs_steps)
            .max()
            .unwrap_or(0);
        outln!(
            "2. Wrote {} carrying \"{content}\" in {:.2} s: {} of the rows carry marks, \
             {changed} of {cells} cells changed ({:.1}%), each number by at most {max_steps} step(s) \
             of its last digit.",
            copy.display(),
            start.elapsed().as_secs_f64(),
            summary.density,
            100.0 * changed as f64 / cells.max(1) as f64,
        );
        let record = registry::Record::issued(
            &wm,
            &content,
            Some(&format!("Partner {partner}")),
            summary.rows as u64,
            &copy,
        );
        registry.append(&record).map_err(|e| e.to_string())?;
    }

    // Partner B leaks a fifth of its copy, shuffled, with some cells edited,
    // exported to CSV.
    let leak_path = dir.join("leak.csv");
    let copy_b = read_table(&dir.join("partner-B.parquet"), &["customer_id".to_owned()])?;
    let leak = attack::replace_cells(&attack::delete_rows(&copy_b, 0.8, 7), 0.05, 8);
    write_table(&leak, &leak_path)?;
    outln!(
        "3. A leak turns up: {} with {} rows (20% of partner B's copy), shuffled, 5% of cells edited.",
        leak_path.display(),
        leak.rows()
    );

    let start = Instant::now();
    let summary = pipeline::extract_files(
        &wm,
        std::slice::from_ref(&leak_path),
        &columns,
        &read,
        &mut |_, _| {},
    )
    .map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    for extra in summary.found.iter().skip(1) {
        outln!("   (also found: \"{}\")", extra.content);
    }
    let Some(f) = summary.found.first() else {
        outln!("4. No watermark found in {secs:.2} s.");
        return Ok(ExitCode::from(3));
    };
    outln!(
        "4. Extracted from the CSV in {secs:.2} s: the leak carries \"{}\" (columns {}).\n   Evidence: {} of {} votes agree; \
         probability that a table without this watermark reports one: below {:.1e}.",
        f.content,
        f.columns.join(", "),
        f.evidence.agree,
        f.evidence.agree + f.evidence.disagree,
        f.evidence.false_positive_probability,
    );
    let clean = pipeline::extract_files(&wm, &[original], &columns, &read, &mut |_, _| {})
        .map_err(|e| e.to_string())?;
    outln!(
        "5. The same extraction on the unmarked original finds {} watermark(s).",
        clean.found.len()
    );

    // A much smaller leak: too few rows to decode a watermark, enough to
    // test the copies that were issued.
    let small_path = dir.join("leak-small.csv");
    let small = attack::delete_rows(&copy_b, 1.0 - 1500.0 / copy_b.rows().max(1) as f64, 9);
    write_table(&small, &small_path)?;
    let issued = registry::read(&registry_path).map_err(|e| e.to_string())?;
    let candidates = wm
        .candidates(issued.iter().map(|r| r.content.as_str()))
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let traced = pipeline::extract_files_against(
        &wm,
        std::slice::from_ref(&small_path),
        &columns,
        &read,
        Some(&candidates),
        &mut |_, _| {},
    )
    .map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    let named = traced
        .identification
        .as_ref()
        .and_then(|i| i.identified.first());
    match named {
        Some(s) => outln!(
            "6. A smaller leak, {} ({} rows): free decoding finds {} watermark(s), but testing \
             the {} issued copies in {} names \"{}\" ({}) in {secs:.2} s:\n   {} of {} code \
             positions agree; probability of that by chance: {:.1e}.",
            small_path.display(),
            small.rows(),
            traced.found.len(),
            issued.len(),
            registry_path.display(),
            s.content,
            issued[s.candidate].recipient.as_deref().unwrap_or("?"),
            s.agree,
            s.total,
            s.p_value,
        ),
        None => {
            outln!("6. No issued copy named in {}.", small_path.display());
            return Ok(ExitCode::from(3));
        }
    }
    Ok(ExitCode::SUCCESS)
}
