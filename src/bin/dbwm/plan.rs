//! `dbwm plan`: what `dbwm embed` would do to a file, column by column,
//! without writing anything.

use std::path::PathBuf;
use std::process::ExitCode;

use dbwatermark::pipeline;
use dbwatermark::report::PlanReport;

use crate::args::{DensityArgs, KeyArgs, Place, ReadArgs};
use crate::output::{Failure, Outcome};

#[derive(clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub density: DensityArgs,
    /// The content you will embed: its length sets the density (default: a
    /// 16-byte placeholder).
    #[arg(long, default_value = "0123456789abcdef")]
    pub content: String,
    /// Print the plan as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The input file, or a database URL with --table or --query.
    pub input: PathBuf,
}

/// Prints the plan; exit 0, or 2 on bad input (and when nothing can be
/// marked, naming why for each column).
pub fn run(args: &PlanArgs) -> Outcome {
    let config = args.density.config().map_err(Failure::Caller)?;
    let wm = args.key.watermarker(config).map_err(Failure::Caller)?;
    let read = args.read.options().map_err(Failure::Caller)?;
    let place = Place::parse(&args.input).map_err(Failure::Caller)?;
    let relation = args.read.relation(&place).map_err(Failure::Caller)?;
    let source = match (&place, &relation) {
        (Place::Database(url), Some(relation)) => pipeline::SourceRef::Database { url, relation },
        _ => pipeline::SourceRef::File(&args.input),
    };
    let plan = pipeline::plan_source(
        &wm,
        &source,
        &args.content,
        &args.read.columns().map_err(Failure::Caller)?,
        &read,
    )?;
    let report = PlanReport::new(&plan, &source.label());
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rows = report
        .rows
        .map_or_else(|| "?".to_owned(), |r| r.to_string());
    let marked_rows = args.density.trace_rows as f64 * plan.density.fraction();
    outln!(
        "{}: {rows} rows; 1 row in {} carries marks (--trace-rows {}: such a leak holds about {:.0} marked rows, {:.0} code positions); measured on the first {} rows",
        report.file,
        report.density.trim_start_matches("1/"),
        args.density.trace_rows,
        marked_rows,
        marked_rows
            * wm.config()
                .positions()
                .per_row(plan.plan.marked_names().len()),
        report.sample_rows,
    );
    outln!("plan {}", report.fingerprint);
    outln!(
        "{:<18} {:<11} {:<10} {:>9}  reason",
        "column",
        "kind",
        "carrier",
        "changes"
    );
    for c in &report.columns {
        let changes = c
            .expected_changes
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        outln!(
            "{:<18} {:<11} {:<10} {:>9}  {}",
            c.name,
            c.kind,
            c.carrier,
            changes,
            c.reason
        );
    }
    match &report.virtual_key {
        Some(v) => outln!(
            "virtual key for leaks without the key column: {} ({:.1}% of the sampled rows told apart); --virtual-key {}",
            v.columns.join(","),
            100.0 * v.unique_share,
            v.columns.join(",")
        ),
        None => outln!("virtual key: no unmarked columns tell the rows apart"),
    }
    Ok(ExitCode::SUCCESS)
}
