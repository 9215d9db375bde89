//! `dbwm`: the command-line tool. `main` parses the flags, hands each
//! command to the module of the same name and turns its outcome into an
//! exit code (0 done, 1 internal error, 2 bad input, 3 nothing found).

/// `eprintln!` that never panics: a closed or full standard error loses
/// the message, not the work.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` for a command's results: a closed or full standard output
/// returns an internal failure (exit 1) from the enclosing function instead
/// of panicking.
macro_rules! outln {
    () => {
        $crate::output::out(format_args!(""))?
    };
    ($($arg:tt)*) => {
        $crate::output::out(format_args!($($arg)*))?
    };
}

mod args;
mod demo;
mod dsc;
mod embed;
mod eval;
mod extract;
mod output;
mod plan;
mod serve;
mod tables;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Watermark a file (CSV, TSV, NDJSON, Arrow IPC, Parquet) into a new file.
    ///
    /// The key comes from --key-file, else --key, else the DBWM_KEY
    /// environment variable; prefer the file or the environment.
    Embed(Box<embed::EmbedArgs>),
    /// Show what `embed` would do to a file, column by column, without
    /// writing anything: each column's kind (measure, category, calendar,
    /// code, free text...), how it carries marks, the cells an embed would
    /// change (measured on the first rows) and why.
    Plan(plan::PlanArgs),
    /// Evaluate robustness and distortion: every attack at several strengths
    /// over random keys and contents, on a generated table or your own.
    /// Writes results.csv, results.json and recovery.svg to --out; the last
    /// line is `eval: N/M scenarios met target`, exit 0 only if all did.
    Eval(eval::EvalArgs),
    /// Find the watermarks in one or more files; prints JSON. Exit 0 when a
    /// watermark is found or a candidate identified, 3 when none is, 2 on
    /// bad input.
    Extract(extract::ExtractArgs),
    /// Huawei DSC-compatible requests: read a DSC request body, write the
    /// response body. Exit 0 on success; on a caller error the DSC error body
    /// (DSC.00000004) goes to standard output, a message to standard error,
    /// exit 2; on an internal error DSC.00000002, exit 1.
    Dsc {
        #[command(subcommand)]
        op: dsc::DscOp,
    },
    /// Serve Huawei DSC's database-watermark API (embed, extract) and batch
    /// extraction tasks over HTTP, with Huawei AK/SK request signing. Prints
    /// `listening on HOST:PORT` on standard error once it accepts
    /// connections; stops on Ctrl-C or SIGTERM.
    Serve(serve::ServeArgs),
    /// Watermark two partner copies of a generated table, leak one, and find
    /// out from the leak which copy it was.
    Demo(demo::DemoArgs),
}

/// On Ctrl-C, SIGTERM or SIGHUP: remove the temporary outputs being written
/// and exit 130, so an interrupted command leaves nothing behind. (`serve`
/// handles its own signals, to finish its tasks gracefully.)
fn remove_temporaries_on_signal() {
    let installed = ctrlc::set_handler(|| {
        dbwatermark::files::remove_temporaries();
        say!("dbwm: interrupted; no output written");
        std::process::exit(130);
    });
    if let Err(e) = installed {
        say!(
            "dbwm: warning: cannot handle interruptions ({e}); an interrupted run may leave a temporary file"
        );
    }
}

fn main() -> ExitCode {
    let command = Cli::parse().command;
    if !matches!(command, Command::Serve(_)) {
        remove_temporaries_on_signal();
    }
    let outcome = match command {
        Command::Embed(args) => embed::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Extract(args) => extract::run(&args),
        Command::Dsc { op } => Ok(dsc::run(op)),
        Command::Serve(args) => serve::run(args),
        Command::Demo(args) => demo::run(&args),
    };
    outcome.unwrap_or_else(output::Failure::report)
}
