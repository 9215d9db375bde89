//! `dbwm`: the command-line tool. Parses flags, calls the library, turns the
//! result into an exit code.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use dbwatermark::dsc::{self, DscError};
use dbwatermark::sample;
use dbwatermark::{Config, WatermarkKey, Watermarker};

#[derive(Parser)]
#[command(
    name = "dbwm",
    version,
    about = "Invisible, keyed, robust watermarks for database tables"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Huawei DSC-compatible requests: read a DSC request body, write the
    /// response body. Exit 0 on success; on a caller error the DSC error body
    /// (DSC.00000004) goes to standard output, a message to standard error,
    /// exit 2; on an internal error DSC.00000002, exit 1.
    Dsc {
        #[command(subcommand)]
        op: DscOp,
    },
    /// Watermark two partner copies of a generated table, leak one, and find
    /// out from the leak which copy it was.
    Demo {
        /// Rows in the generated table.
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
    },
}

#[derive(Subcommand)]
enum DscOp {
    /// Embed: `{watermark_content, watermark_key, columns, data}` → `{marked_data}`.
    Embed(DscArgs),
    /// Extract: `{watermark_key, columns, data}` → `{watermarks}`.
    Extract(DscArgs),
}

#[derive(clap::Args)]
struct DscArgs {
    /// Request body file; standard input if absent or `-`.
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// Response body file, replaced only once complete; standard output if
    /// absent or `-`.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// `path` unless it is absent or `-` (standard input or output).
fn named(path: &Option<PathBuf>) -> Option<&Path> {
    path.as_deref().filter(|p| *p != Path::new("-"))
}

/// Writes `bytes` to `path` through a temporary file in the same folder, so
/// that `path` is only ever replaced by a complete file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A DSC request handler: request body in, response body out.
type Handler = fn(&[u8]) -> Result<Vec<u8>, DscError>;

fn run_dsc(op: DscOp) -> ExitCode {
    let (args, handler): (DscArgs, Handler) = match op {
        DscOp::Embed(a) => (a, dsc::embed_json),
        DscOp::Extract(a) => (a, dsc::extract_json),
    };
    let mut body = Vec::new();
    let read = match named(&args.input) {
        Some(p) => std::fs::read(p)
            .map(|b| body = b)
            .map_err(|e| format!("cannot read `{}`: {e}", p.display())),
        None => std::io::stdin()
            .read_to_end(&mut body)
            .map(drop)
            .map_err(|e| format!("cannot read standard input: {e}")),
    };
    let response = read
        .map_err(DscError::InvalidParameter)
        .and_then(|()| handler(&body));
    let written = match &response {
        Ok(bytes) => match named(&args.output) {
            Some(p) => write_atomically(p, bytes)
                .map_err(|e| format!("cannot write `{}`: {e}", p.display())),
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)
                    .and_then(|()| out.write_all(b"\n"))
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("cannot write standard output: {e}"))
            }
        },
        Err(_) => Ok(()),
    };
    let error = match (response, written) {
        (Ok(_), Ok(())) => return ExitCode::SUCCESS,
        (Err(e), _) => e,
        (Ok(_), Err(msg)) => DscError::Internal(msg),
    };
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(&error.body_json())
        .and_then(|()| out.write_all(b"\n"));
    eprintln!("dbwm dsc: {error}");
    match error {
        DscError::InvalidParameter(_) => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { rows } => demo(rows),
        Command::Dsc { op } => return run_dsc(op),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dbwm: {e}");
            ExitCode::from(2)
        }
    }
}

fn demo(rows: usize) -> Result<ExitCode, dbwatermark::Error> {
    println!("dbwatermark demo: who leaked the customer table?\n");
    let original = sample::customers(rows, 1, 2026);
    println!(
        "1. Generated a customer table: {} rows, key `customer_id`, columns {}.",
        original.rows(),
        original
            .columns
            .iter()
            .map(|c| format!("`{}`", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // One secret key for the data owner; one watermark per partner copy.
    let wm = Watermarker::new(
        WatermarkKey::new("demo key: keep me secret")?,
        Config::default(),
    );
    let mut copies = Vec::new();
    for partner in ["acme->partner-A", "acme->partner-B"] {
        let mut copy = original.clone();
        let start = Instant::now();
        let report = wm.embed_table(&mut copy, partner)?;
        let secs = start.elapsed().as_secs_f64();
        let changed: usize = report.columns.iter().map(|(_, r)| r.changed).sum();
        let max_steps = report
            .columns
            .iter()
            .map(|(_, r)| r.max_abs_steps)
            .max()
            .unwrap_or(0);
        println!(
            "2. Watermarked a copy with \"{partner}\" in {secs:.2} s: one row in {} carries marks, \
             {changed} of {} cells changed ({:.1}%), each number by at most {max_steps} step(s) \
             of its last digit.",
            report.density.rows_per_mark(),
            report.rows * report.columns.len(),
            100.0 * report.changed_fraction(),
        );
        copies.push(copy);
    }

    // Partner B leaks a fifth of its copy, shuffled, with some cells edited.
    let leak = sample::delete_rows(&copies[1], 0.8, 7);
    let leak = sample::replace_cells(&leak, 0.05, 8);
    println!(
        "3. A leak turns up: {} rows (20% of partner B's copy), shuffled, 5% of cells edited.",
        leak.rows()
    );

    let start = Instant::now();
    let found = wm.extract_table(&leak)?;
    let secs = start.elapsed().as_secs_f64();
    for extra in found.iter().skip(1) {
        println!("   (also found: \"{}\")", extra.content);
    }
    match found.first() {
        Some(f) => {
            println!(
                "4. Extracted in {secs:.2} s: the leak carries \"{}\".\n   Evidence: {} of {} votes agree; \
                 probability that a table without this watermark reports one: below {:.1e}.",
                f.content,
                f.evidence.agree,
                f.evidence.agree + f.evidence.disagree,
                f.evidence.false_positive_probability,
            );
            let other = wm.extract_table(&sample::delete_rows(&original, 0.8, 7))?;
            println!(
                "5. The same extraction on the unmarked original finds {} watermark(s).",
                other.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("4. No watermark found in {secs:.2} s.");
            Ok(ExitCode::from(3))
        }
    }
}
