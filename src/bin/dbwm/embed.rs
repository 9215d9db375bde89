//! `dbwm embed`: watermark a file into a new file, and register the copy.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use dbwatermark::{files, pipeline, registry};

use crate::args::{DensityArgs, KeyArgs, Place, ReadArgs, delimiter, parse_format};
use crate::output::{Failure, Outcome, Progress, caller};

#[derive(clap::Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// The watermark to embed, 1 to 64 bytes (e.g. "acme->partner-42").
    #[arg(long)]
    pub content: String,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Output file; its extension (or --output-format) sets the format.
    /// Replaced only once completely written. Or a database URL
    /// (`postgresql://...`, `sqlite://PATH`) with --output-table.
    #[arg(short, long)]
    pub output: PathBuf,
    /// The table to create when the output is a database URL (refused if
    /// it exists, unless --replace); it gets the source's column types,
    /// NULL constraints and primary key, and appears only when complete.
    #[arg(long, value_name = "NAME")]
    pub output_table: Option<String>,
    /// Replace an existing --output-table (in the same transaction).
    #[arg(long, requires = "output_table")]
    pub replace: bool,
    /// Output format, if the extension does not say.
    #[arg(long, value_name = "FORMAT")]
    pub output_format: Option<String>,
    /// Compress an Arrow IPC output (`.arrow`, `.arrows`): lz4 or zstd.
    #[arg(long, value_name = "CODEC", value_parser = ["lz4", "zstd"])]
    pub ipc_compression: Option<String>,
    /// Append a record of this copy (content, recipient, date, key
    /// fingerprint, rows, file; never the key) to this registry of
    /// issued copies, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    pub register: Option<PathBuf>,
    #[command(flatten)]
    pub density: DensityArgs,
    /// Who receives this copy, for the registry record.
    #[arg(long, value_name = "LABEL", requires = "register")]
    pub recipient: Option<String>,
    /// Where the mark goes: `cells` (real cells, as planned),
    /// `pseudo-rows` (fabricated rows added, about one per --row-spacing
    /// real rows; no real cell changes) or `pseudo-column` (one added
    /// column, --pseudo-column NAME; no real cell changes, and deleting
    /// the column deletes the mark).
    #[arg(long, value_parser = ["cells", "pseudo-rows", "pseudo-column"], default_value = "cells")]
    pub mode: String,
    /// About one fabricated row per N real rows in --mode pseudo-rows
    /// (default 100); implies that mode.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub row_spacing: Option<u32>,
    /// The name of the column --mode pseudo-column adds (not one of the
    /// table's); implies that mode.
    #[arg(long, value_name = "NAME")]
    pub pseudo_column: Option<String>,
    /// How the pseudo-column's values look: `code` (8-digit integers, as a
    /// reference number) or `token` (8 characters of base 32).
    #[arg(long, value_name = "FORMAT", value_parser = ["code", "token"], default_value = "code")]
    pub pseudo_column_format: String,
    /// The input file.
    pub input: PathBuf,
}

/// Embeds, prints the summary on standard error and appends the registry
/// record. Bad flags or input exit 2; the registry is opened before any
/// work, so an unwritable one fails first.
pub fn run(args: &EmbedArgs) -> Outcome {
    let config = args.density.config().map_err(Failure::Caller)?;
    let wm = args.key.watermarker(config).map_err(Failure::Caller)?;
    let write = files::WriteOptions {
        format: parse_format(args.output_format.as_deref()).map_err(Failure::Caller)?,
        delimiter: delimiter(args.read.delimiter).map_err(Failure::Caller)?,
        ipc_compression: args.ipc_compression.as_deref().map(|c| match c {
            "zstd" => files::IpcCompression::ZSTD,
            _ => files::IpcCompression::LZ4_FRAME,
        }),
        ..Default::default()
    };
    let mut registry = args
        .register
        .as_deref()
        .map(registry::Appender::open)
        .transpose()
        .map_err(caller)?;
    let read = args.read.options().map_err(Failure::Caller)?;
    let start = Instant::now();
    let progress = Progress::new("embedding");
    let mut columns = args.read.columns().map_err(Failure::Caller)?;
    if columns.virtual_key {
        // The real key stays as it is in a copy marked from a virtual key.
        for pk in args.read.pk.iter().filter(|c| !columns.key.contains(c)) {
            columns.rules.entry(pk).mark.get_or_insert(false);
        }
    }
    let input = Place::parse(&args.input).map_err(Failure::Caller)?;
    let relation = args.read.relation(&input).map_err(Failure::Caller)?;
    let source = match (&input, &relation) {
        (Place::Database(url), Some(relation)) => pipeline::SourceRef::Database { url, relation },
        _ => pipeline::SourceRef::File(&args.input),
    };
    let output = Place::parse(&args.output).map_err(Failure::Caller)?;
    let sink = match (&output, &args.output_table) {
        (Place::Database(url), Some(table)) => pipeline::SinkRef::Database {
            url,
            table,
            replace: args.replace,
        },
        (Place::Database(url), None) => {
            return Err(Failure::Caller(format!(
                "{url}: name the table to create with --output-table NAME"
            )));
        }
        (Place::File(p), Some(_)) => {
            return Err(Failure::Caller(format!(
                "{}: --output-table names a table of a database URL output, not a file",
                p.display()
            )));
        }
        (Place::File(p), None) => pipeline::SinkRef::File(p),
    };
    let written = sink.label();
    let mode = match (args.mode.as_str(), &args.pseudo_column) {
        (_, Some(_)) if args.row_spacing.is_some() || args.mode == "pseudo-rows" => {
            return Err(Failure::Caller(
                "--pseudo-column and --row-spacing are two modes: give one (--mode pseudo-column or pseudo-rows)".into(),
            ));
        }
        ("cells" | "pseudo-rows", None)
            if args.row_spacing.is_some() || args.mode == "pseudo-rows" =>
        {
            pipeline::EmbedMode::PseudoRows {
                spacing: args.row_spacing.unwrap_or(dbwatermark::DEFAULT_ROW_SPACING),
            }
        }
        ("pseudo-column", None) if args.row_spacing.is_some() => {
            return Err(Failure::Caller(
                "--row-spacing is for --mode pseudo-rows, not pseudo-column".into(),
            ));
        }
        (_, Some(name)) => pipeline::EmbedMode::PseudoColumn {
            name,
            format: dbwatermark::PseudoFormat::parse(&args.pseudo_column_format)
                .unwrap_or(dbwatermark::PseudoFormat::Code),
        },
        ("pseudo-column", None) => {
            return Err(Failure::Caller(
                "--mode pseudo-column: name the added column with --pseudo-column NAME".into(),
            ));
        }
        _ => pipeline::EmbedMode::Cells,
    };
    let job = pipeline::Job {
        mode,
        source,
        sink,
        content: &args.content,
        columns: &columns,
        read: &read,
        write: &write,
    };
    let result = pipeline::embed(&wm, &job, &mut |done, total| progress.update(done, total));
    drop(progress);
    let summary = result?;
    // Registered before anything is printed: a closed standard error must
    // not leave a written copy unregistered.
    if let Some(registry) = &mut registry {
        let mut record = registry::Record::issued(
            &wm,
            &args.content,
            args.recipient.as_deref(),
            summary.rows as u64,
            &written,
        );
        record.plan_fingerprint = Some(summary.plan_fingerprint.clone());
        record.virtual_key = columns.virtual_key.then(|| columns.key.clone());
        if let Some(name) = &args.pseudo_column {
            record.set_pseudo_column(name);
        }
        if let Some(report) = &summary.pseudo_rows {
            record.set_pseudo_rows(report.spacing, report.added as u64);
        }
        registry.append(&record).map_err(|e| {
            Failure::Internal(format!("the copy was written, but not registered: {e}"))
        })?;
    }
    print_summary(&summary, &written, start.elapsed().as_secs_f64());
    if columns.virtual_key {
        say!(
            "  marks placed from the virtual key {}: read a leak with --virtual-key {}",
            columns.key.join(","),
            columns.key.join(",")
        );
    }
    if let Some(path) = &args.register {
        say!("  registered in {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(summary: &pipeline::EmbedSummary, output: &Path, seconds: f64) {
    if let Some(r) = &summary.pseudo_rows {
        say!(
            "dbwm: wrote {} rows to {} in {seconds:.2} s: the {} real rows unchanged and {} fabricated rows (about 1 per {}) that carry the mark in {} of their {} values; no real cell changed",
            summary.rows,
            output.display(),
            r.real_rows,
            r.added,
            r.spacing,
            r.carrying,
            r.cells,
        );
        if r.skipped > 0 {
            say!(
                "  {} places skipped: no new key near the real row, or no row of the table's values that carries there",
                r.skipped
            );
        }
        if r.outside_range > 0 {
            say!(
                "  {} fabricated rows have keys above the table's largest (the keys around them were all taken): a leaker who sorts by key can find them",
                r.outside_range
            );
        }
        if let Some(warning) = r.warning() {
            say!("dbwm: warning: {warning}");
        }
        say!("  plan {}", summary.plan_fingerprint);
        return;
    }
    if let Some(name) = &summary.pseudo_column {
        let carried: usize = summary.columns.iter().map(|(_, r)| r.marked).sum();
        say!(
            "dbwm: wrote {} rows to {} in {seconds:.2} s; no real cell changed; the added column {name} carries the mark in {carried} rows",
            summary.rows,
            output.display(),
        );
        say!("  plan {}", summary.plan_fingerprint);
        return;
    }
    let cells = summary.rows * summary.columns.len();
    let changed: usize = summary.columns.iter().map(|(_, r)| r.changed).sum();
    say!(
        "dbwm: wrote {} rows to {} in {seconds:.2} s; {} of the rows carry marks; {changed} of {cells} cells changed ({:.1}%)",
        summary.rows,
        output.display(),
        summary.density,
        if cells == 0 {
            0.0
        } else {
            100.0 * changed as f64 / cells as f64
        },
    );
    say!("  plan {}", summary.plan_fingerprint);
    for (name, r) in &summary.columns {
        say!(
            "  {name}: {} changed, {} nulls and {} unmarkable skipped, mean change {:.3}, max {:.3}",
            r.changed,
            r.nulls,
            r.unmarkable,
            r.mean_abs_change(),
            r.max_abs_change
        );
    }
    for p in summary.plans.iter().filter(|p| !p.marks()) {
        say!("  {}: not marked, {}", p.name, p.reason);
    }
}
