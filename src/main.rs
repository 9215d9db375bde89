//! `dbwm`: the command-line tool. Parses flags, calls the library, turns the
//! result into an exit code.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use dbwatermark::attack;
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

/// Where the watermark key comes from. Prefer a file or the environment:
/// a key on the command line is visible to other users in the process list
/// and kept in shell history.
#[derive(clap::Args, Clone)]
struct KeyArgs {
    /// File whose first line is the watermark key (preferred).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The watermark key itself (visible in the process list; prefer
    /// --key-file or the DBWM_KEY environment variable).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
}

impl KeyArgs {
    fn watermarker(&self) -> Result<Watermarker, String> {
        let secret = match (&self.key_file, &self.key) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read key file `{}`: {e}", path.display()))?;
                text.lines().next().unwrap_or_default().to_owned()
            }
            (None, Some(k)) => k.clone(),
            (None, None) => std::env::var("DBWM_KEY").map_err(|_| {
                "no watermark key: use --key-file FILE, set DBWM_KEY, or --key KEY".to_owned()
            })?,
        };
        let key = WatermarkKey::new(&secret).map_err(|e| e.to_string())?;
        Ok(Watermarker::new(key, Config::default()))
    }
}

/// Reading options shared by `embed` and `extract`.
#[derive(clap::Args, Clone)]
struct ReadArgs {
    /// Primary-key column(s), comma-separated, in key order.
    #[arg(long, value_delimiter = ',', required = true)]
    pk: Vec<String>,
    /// Columns to mark or read, comma-separated (default: every non-key
    /// column of a markable type; dates only when named).
    #[arg(long, value_delimiter = ',')]
    columns: Option<Vec<String>>,
    /// Input format, if the extension does not say: csv, tsv, ndjson, arrow, arrows, parquet.
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// CSV field delimiter (default `,`, tab for .tsv).
    #[arg(long)]
    delimiter: Option<char>,
    /// CSV input has no header line.
    #[arg(long)]
    no_header: bool,
    /// Rows per batch.
    #[arg(long, default_value_t = dbwatermark::files::DEFAULT_BATCH_ROWS)]
    batch_rows: usize,
}

impl ReadArgs {
    fn columns(&self) -> dbwatermark::pipeline::Columns {
        dbwatermark::pipeline::Columns {
            key: self.pk.clone(),
            marked: self.columns.clone(),
        }
    }

    fn options(&self) -> Result<dbwatermark::files::ReadOptions, String> {
        Ok(dbwatermark::files::ReadOptions {
            format: parse_format(self.format.as_deref())?,
            batch_rows: self.batch_rows,
            delimiter: delimiter(self.delimiter)?,
            header: !self.no_header,
            ..Default::default()
        })
    }
}

fn parse_format(name: Option<&str>) -> Result<Option<dbwatermark::files::Format>, String> {
    name.map(|n| {
        dbwatermark::files::Format::parse(n).ok_or_else(|| format!("unknown format `{n}`"))
    })
    .transpose()
}

fn delimiter(c: Option<char>) -> Result<Option<u8>, String> {
    c.map(|c| u8::try_from(c).map_err(|_| format!("delimiter `{c}` is not a single byte")))
        .transpose()
}

#[derive(Subcommand)]
enum Command {
    /// Watermark a file (CSV, TSV, NDJSON, Arrow IPC, Parquet) into a new file.
    ///
    /// The key comes from --key-file, else --key, else the DBWM_KEY
    /// environment variable; prefer the file or the environment.
    Embed {
        #[command(flatten)]
        key: KeyArgs,
        /// The watermark to embed, 1 to 64 bytes (e.g. "acme->partner-42").
        #[arg(long)]
        content: String,
        #[command(flatten)]
        read: ReadArgs,
        /// Output file; its extension (or --output-format) sets the format.
        /// Replaced only once completely written.
        #[arg(short, long)]
        output: PathBuf,
        /// Output format, if the extension does not say.
        #[arg(long, value_name = "FORMAT")]
        output_format: Option<String>,
        /// Append a record of this copy (content, recipient, date, key
        /// fingerprint, rows, file; never the key) to this registry of
        /// issued copies, one JSON object per line.
        #[arg(long, value_name = "FILE")]
        register: Option<PathBuf>,
        /// Who receives this copy, for the registry record.
        #[arg(long, value_name = "LABEL", requires = "register")]
        recipient: Option<String>,
        /// The input file.
        input: PathBuf,
    },
    /// Evaluate robustness and distortion: every attack at several strengths
    /// over random keys and contents, on a generated table or your own.
    /// Writes results.csv, results.json and recovery.svg to --out; the last
    /// line is `eval: N/M scenarios met target`, exit 0 only if all did.
    Eval {
        /// Random keys and contents per scenario.
        #[arg(long, default_value_t = 100)]
        keys: usize,
        /// Extractions on unmarked data and with wrong keys (half each).
        #[arg(long, default_value_t = 10_000)]
        fp_trials: usize,
        /// Seed of everything random.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Your own table (any format `dbwm` reads) instead of the generated one.
        #[arg(long, requires = "pk")]
        input: Option<PathBuf>,
        /// Primary-key column(s) of --input.
        #[arg(long, value_delimiter = ',')]
        pk: Vec<String>,
        /// Folder for the results.
        #[arg(long, default_value = "dbwm-eval")]
        out: PathBuf,
    },
    /// Find the watermarks in one or more files; prints JSON. Exit 0 when a
    /// watermark is found or a candidate identified, 3 when none is, 2 on
    /// bad input.
    Extract {
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        read: ReadArgs,
        /// Test the leak against these issued copies (a registry written by
        /// `embed --register`, or one content per line); the JSON gains
        /// `identified`, the candidates named, best first.
        #[arg(long, value_name = "FILE")]
        candidates: Option<PathBuf>,
        /// Largest corrected p-value at which a candidate is named.
        #[arg(long, default_value_t = dbwatermark::candidates::DEFAULT_THRESHOLD, requires = "candidates")]
        threshold: f64,
        /// The files; their votes are pooled.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Huawei DSC-compatible requests: read a DSC request body, write the
    /// response body. Exit 0 on success; on a caller error the DSC error body
    /// (DSC.00000004) goes to standard output, a message to standard error,
    /// exit 2; on an internal error DSC.00000002, exit 1.
    Dsc {
        #[command(subcommand)]
        op: DscOp,
    },
    /// Serve Huawei DSC's database-watermark API (embed, extract) and batch
    /// extraction tasks over HTTP, with Huawei AK/SK request signing. Prints
    /// `listening on HOST:PORT` on standard error once it accepts
    /// connections; stops on Ctrl-C or SIGTERM.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free one).
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<std::net::SocketAddr>,
        /// Folder of the task database (default dbwm-data).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Credentials file: one `AK SK` pair per line, `#` starts a comment.
        #[arg(long, value_name = "FILE")]
        credentials: Option<PathBuf>,
        /// Configuration file (TOML; see the README).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Watermark two partner copies of a generated table, leak one, and find
    /// out from the leak which copy it was.
    Demo {
        /// Rows in the generated table.
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Folder for everything the demo writes.
        #[arg(long, default_value = "dbwm-demo")]
        out: PathBuf,
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
            Some(p) => dbwatermark::files::write_atomically(p, bytes)
                .map_err(|e| format!("cannot write {e}")),
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
        Command::Demo { rows, out } => demo(rows, &out),
        Command::Serve {
            listen,
            data_dir,
            credentials,
            config,
        } => serve(listen, data_dir, credentials, config.as_deref()),
        Command::Dsc { op } => return run_dsc(op),
        Command::Embed {
            key,
            content,
            read,
            output,
            output_format,
            register,
            recipient,
            input,
        } => {
            return run_embed(
                &key,
                &content,
                &read,
                (&output, output_format.as_deref()),
                (register.as_deref(), recipient.as_deref()),
                &input,
            );
        }
        Command::Extract {
            key,
            read,
            candidates,
            threshold,
            files,
        } => {
            return run_extract(
                &key,
                &read,
                candidates.as_deref().map(|c| (c, threshold)),
                &files,
            );
        }
        Command::Eval {
            keys,
            fp_trials,
            seed,
            input,
            pk,
            out,
        } => {
            let config = dbwatermark::eval::EvalConfig {
                keys,
                false_positive_trials: fp_trials,
                seed,
                ..Default::default()
            };
            return match run_eval(&config, input.as_deref(), &pk, &out) {
                Ok(code) => code,
                Err(e) => fail(&e, true),
            };
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => fail(&e, false),
    }
}

/// A progress bar on standard error when it is a terminal, otherwise nothing.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(what: &str) -> Self {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {human_pos}/{human_len} rows, {per_sec}, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        Self(Some(bar))
    }

    fn update(&self, done: usize, total: Option<usize>) {
        if let Some(bar) = &self.0 {
            if let Some(t) = total {
                bar.set_length(t as u64);
            }
            bar.set_position(done as u64);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Prints a one-line error and returns exit status 2 (bad input) or 1.
fn fail(message: &str, caller: bool) -> ExitCode {
    eprintln!("dbwm: {message}");
    ExitCode::from(if caller { 2 } else { 1 })
}

fn run_embed(
    key: &KeyArgs,
    content: &str,
    read: &ReadArgs,
    (output, output_format): (&Path, Option<&str>),
    (register, recipient): (Option<&Path>, Option<&str>),
    input: &Path,
) -> ExitCode {
    let setup = key.watermarker().and_then(|wm| {
        let write = dbwatermark::files::WriteOptions {
            format: parse_format(output_format)?,
            delimiter: delimiter(read.delimiter)?,
            ..Default::default()
        };
        // Opened first, so an unwritable registry fails before any work.
        let registry = register
            .map(dbwatermark::registry::Appender::open)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok((wm, read.options()?, write, registry))
    });
    let (wm, read_options, write, mut registry) = match setup {
        Ok(s) => s,
        Err(e) => return fail(&e, true),
    };
    let start = Instant::now();
    let progress = Progress::new("embedding");
    let columns = read.columns();
    let job = dbwatermark::pipeline::EmbedJob {
        input,
        output,
        content,
        columns: &columns,
        read: &read_options,
        write: &write,
    };
    let result = dbwatermark::pipeline::embed_file(&wm, &job, &mut |done, total| {
        progress.update(done, total)
    });
    drop(progress);
    match result {
        Ok(summary) => {
            let cells = summary.rows * summary.columns.len();
            let changed: usize = summary.columns.iter().map(|(_, r)| r.changed).sum();
            eprintln!(
                "dbwm: wrote {} rows to {} in {:.2} s; {} of the rows carry marks; {changed} of {cells} cells changed ({:.1}%)",
                summary.rows,
                output.display(),
                start.elapsed().as_secs_f64(),
                summary.density,
                if cells == 0 {
                    0.0
                } else {
                    100.0 * changed as f64 / cells as f64
                },
            );
            for (name, r) in &summary.columns {
                eprintln!(
                    "  {name}: {} changed, {} nulls and {} unmarkable skipped, mean change {:.3}, max {:.3}",
                    r.changed,
                    r.nulls,
                    r.unmarkable,
                    r.mean_abs_change(),
                    r.max_abs_change
                );
            }
            if !summary.skipped.is_empty() {
                eprintln!("  not marked (type): {}", summary.skipped.join(", "));
            }
            if let Some(registry) = &mut registry {
                let record = dbwatermark::registry::Record::issued(
                    &wm,
                    content,
                    recipient,
                    summary.rows as u64,
                    output,
                );
                if let Err(e) = registry.append(&record) {
                    return fail(
                        &format!("the copy was written, but not registered: {e}"),
                        false,
                    );
                }
                eprintln!(
                    "  registered in {}",
                    register.unwrap_or(Path::new("")).display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string(), e.is_caller_error()),
    }
}

fn serve(
    listen: Option<std::net::SocketAddr>,
    data_dir: Option<PathBuf>,
    credentials: Option<PathBuf>,
    config: Option<&Path>,
) -> Result<ExitCode, String> {
    use dbwatermark::server;
    let mut settings = match config {
        Some(path) => server::ServerConfig::from_file(path).map_err(|e| e.to_string())?,
        None => server::ServerConfig::default(),
    };
    if let Some(l) = listen {
        settings.listen = l;
    }
    if let Some(d) = data_dir {
        settings.data_dir = d;
    }
    if let Some(c) = credentials {
        settings.credentials = Some(c);
    }
    let secrets = server::Secrets::load(&settings).map_err(|e| e.to_string())?;
    if secrets.credentials.is_empty() && secrets.tokens.is_empty() {
        eprintln!(
            "dbwm: warning: no credentials (--credentials FILE, DBWM_AK/DBWM_SK or tokens): every API call will get 401"
        );
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime
        .block_on(server::serve(
            settings,
            secrets,
            |addr| eprintln!("listening on {addr}"),
            server::shutdown_signal(),
        ))
        .map_err(|e| e.to_string())?;
    eprintln!("dbwm: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The registry records to test a leak against: those issued under `wm`'s
/// key (or with no fingerprint), each content once; and how many other
/// records were set aside.
fn load_candidates(
    wm: &Watermarker,
    path: &Path,
    threshold: f64,
) -> Result<
    (
        dbwatermark::Candidates,
        Vec<dbwatermark::registry::Record>,
        usize,
    ),
    String,
> {
    let records = dbwatermark::registry::read(path).map_err(|e| e.to_string())?;
    let total = records.len();
    let other_keys = records.iter().filter(|r| !r.matches_key(wm)).count();
    let mut kept: Vec<dbwatermark::registry::Record> = Vec::new();
    for r in records {
        if !r.matches_key(wm) {
            continue;
        }
        match kept.iter().find(|k| k.content == r.content) {
            // The same content issued twice cannot tell its copies apart.
            Some(k) if k.recipient != r.recipient => eprintln!(
                "dbwm: warning: {}: {:?} was issued to {:?} and to {:?}; a match names the first",
                path.display(),
                r.content,
                k.recipient.as_deref().unwrap_or("?"),
                r.recipient.as_deref().unwrap_or("?")
            ),
            Some(_) => {}
            None => kept.push(r),
        }
    }
    if kept.is_empty() {
        return Err(format!(
            "{}: no candidate issued under this key (fingerprint {}) among {total} records",
            path.display(),
            wm.key_fingerprint()
        ));
    }
    let candidates = wm
        .candidates(kept.iter().map(|r| r.content.as_str()))
        .and_then(|c| c.with_threshold(threshold))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((candidates, kept, other_keys))
}

/// The JSON of one candidate's score, with its registry fields.
fn score_json(
    s: &dbwatermark::Score,
    records: &[dbwatermark::registry::Record],
) -> serde_json::Value {
    let mut o = records[s.candidate].to_json();
    for (k, v) in [
        ("agree", serde_json::json!(s.agree)),
        ("total", serde_json::json!(s.total)),
        ("p_value", serde_json::json!(s.p_value)),
        ("log10_p_value", serde_json::json!(s.log10_p_value)),
        ("marks_agree", serde_json::json!(s.marks_agree)),
        ("marks_total", serde_json::json!(s.marks_total)),
        ("density", serde_json::json!(s.density.to_string())),
        ("round", serde_json::json!(s.round)),
    ] {
        o.insert(k.to_owned(), v);
    }
    serde_json::Value::Object(o)
}

fn run_extract(
    key: &KeyArgs,
    read: &ReadArgs,
    candidates: Option<(&Path, f64)>,
    files: &[PathBuf],
) -> ExitCode {
    let setup = key.watermarker().and_then(|wm| {
        let tested = candidates
            .map(|(path, threshold)| load_candidates(&wm, path, threshold))
            .transpose()?;
        Ok((wm, read.options()?, tested))
    });
    let (wm, read_options, tested) = match setup {
        Ok(s) => s,
        Err(e) => return fail(&e, true),
    };
    let progress = Progress::new("extracting");
    let result = dbwatermark::pipeline::extract_files_against(
        &wm,
        files,
        &read.columns(),
        &read_options,
        tested.as_ref().map(|(c, _, _)| c),
        &mut |done, total| progress.update(done, total),
    );
    drop(progress);
    let summary = match result {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string(), e.is_caller_error()),
    };
    let identification = summary.identification.as_ref();
    let records = tested.as_ref().map_or(&[][..], |(_, r, _)| r.as_slice());
    let identified: Vec<serde_json::Value> = identification
        .map(|i| {
            i.identified
                .iter()
                .map(|s| score_json(s, records))
                .collect()
        })
        .unwrap_or_default();
    let mut report = serde_json::json!({
        "identified": identified,
        "watermarks": summary.found.iter().map(dbwatermark::pipeline::FoundIn::to_json).collect::<Vec<_>>(),
        "rows": summary.rows,
        "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "columns": summary.votes.iter().map(|(name, votes)| serde_json::json!({"name": name, "votes": votes})).collect::<Vec<_>>(),
    });
    if let (Some(i), Some((c, _, other_keys))) = (identification, &tested) {
        let rows_needed = i
            .rows_factor_needed
            .map(|f| ((f - 1.0) * summary.rows as f64).ceil() as u64);
        report["candidates"] = serde_json::json!({
            "tested": c.len(),
            "other_keys": other_keys,
            "threshold": i.threshold,
            "best_other": i.best_other.as_ref().map(|s| score_json(s, records)),
            "more_rows_needed": rows_needed,
        });
        report_identification(i, rows_needed);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    if summary.found.is_empty() && identified.is_empty() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

/// One line per copy named on standard error, or what the best evidence
/// was.
fn report_identification(i: &dbwatermark::Identification, rows_needed: Option<u64>) {
    for s in &i.identified {
        eprintln!(
            "dbwm: identified {:?}: {} of {} code positions agree, p = {:.1e}",
            s.content, s.agree, s.total, s.p_value
        );
    }
    if i.identified.is_empty() {
        match (&i.best_other, rows_needed) {
            (Some(s), Some(more)) => eprintln!(
                "dbwm: no candidate reached p ≤ {:.0e}; best {:?}: {} of {} positions agree, p = {:.1e}; about {more} more rows would settle it",
                i.threshold, s.content, s.agree, s.total, s.p_value
            ),
            (Some(s), None) => eprintln!(
                "dbwm: no candidate reached p ≤ {:.0e}; none agrees beyond chance (best {:?}: {} of {} positions, p = {:.2})",
                i.threshold, s.content, s.agree, s.total, s.p_value
            ),
            (None, _) => eprintln!("dbwm: no candidate to test"),
        }
    }
}

fn run_eval(
    config: &dbwatermark::eval::EvalConfig,
    input: Option<&Path>,
    pk: &[String],
    out: &Path,
) -> Result<ExitCode, String> {
    use dbwatermark::eval;
    let table = match input {
        Some(path) => read_table(path, pk)?,
        None => eval::default_table(),
    };
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let progress = Progress::new("evaluating");
    let start = Instant::now();
    let mut outcomes = eval::run(&table, config, &mut |done, total| {
        progress.update(done, Some(total))
    });
    drop(progress);
    let progress = Progress::new("who leaked");
    outcomes.extend(eval::trace(&table, config, &mut |done, total| {
        progress.update(done, Some(total))
    }));
    drop(progress);
    if input.is_none() {
        outcomes.extend(eval::dsc_minimum(config));
    }
    eprintln!(
        "dbwm: {} rows, {} keys per scenario, {:.1} s",
        table.rows(),
        config.keys,
        start.elapsed().as_secs_f64()
    );
    println!(
        "{:<68} {:>8} {:>10} {:>6} {:>9} {:>11} {:>8} {:>8}  target",
        "scenario",
        "strength",
        "recovered",
        "wrong",
        "changed",
        "mean change",
        "log10 p",
        "seconds"
    );
    for o in &outcomes {
        println!(
            "{:<68} {:>8} {:>9.1}% {:>6} {:>8.1}% {:>11.2} {:>8} {:>8.2}  {}",
            o.scenario,
            o.strength,
            100.0 * o.recovery(),
            o.wrong,
            100.0 * o.cells_changed,
            o.mean_abs_change,
            o.median_log10_p
                .map_or_else(|| "-".to_owned(), |p| format!("{p:.1}")),
            o.seconds,
            match o.target_met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "-",
            }
        );
    }
    write_eval_files(&outcomes, out)?;
    let targeted: Vec<_> = outcomes.iter().filter_map(|o| o.target_met).collect();
    let met = targeted.iter().filter(|&&m| m).count();
    println!("results: {}", out.display());
    println!("eval: {met}/{} scenarios met target", targeted.len());
    Ok(if met == targeted.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write_eval_files(outcomes: &[dbwatermark::eval::Outcome], out: &Path) -> Result<(), String> {
    let mut csv = String::from(
        "scenario,strength,trials,recovered,recovery,wrong,cells_changed,mean_abs_change,median_log10_p,seconds,target\n",
    );
    let mut json = Vec::new();
    for o in outcomes {
        let target = match o.target_met {
            Some(true) => "met",
            Some(false) => "missed",
            None => "",
        };
        csv.push_str(&format!(
            "\"{}\",{},{},{},{:.4},{},{:.4},{:.3},{},{:.3},{target}\n",
            o.scenario,
            o.strength,
            o.trials,
            o.recovered,
            o.recovery(),
            o.wrong,
            o.cells_changed,
            o.mean_abs_change,
            o.median_log10_p
                .map_or_else(String::new, |p| format!("{p:.2}")),
            o.seconds
        ));
        json.push(serde_json::json!({
            "scenario": o.scenario, "strength": o.strength, "trials": o.trials,
            "recovered": o.recovered, "recovery": o.recovery(), "wrong": o.wrong,
            "cells_changed": o.cells_changed, "mean_abs_change": o.mean_abs_change,
            "median_log10_p": o.median_log10_p, "seconds": o.seconds, "target": o.target_met,
        }));
    }
    let write = |name: &str, bytes: &[u8]| {
        dbwatermark::files::write_atomically(&out.join(name), bytes).map_err(|e| e.to_string())
    };
    write("results.csv", csv.as_bytes())?;
    write(
        "results.json",
        serde_json::to_string_pretty(&json)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    write("recovery.svg", recovery_chart(outcomes)?.as_bytes())
}

/// Recovery against attack strength, one panel per attack with several
/// strengths, as SVG.
fn recovery_chart(outcomes: &[dbwatermark::eval::Outcome]) -> Result<String, String> {
    use plotters::prelude::*;
    let mut names: Vec<&str> = Vec::new();
    for o in outcomes {
        let n = outcomes.iter().filter(|p| p.scenario == o.scenario).count();
        if n > 1 && !names.contains(&o.scenario.as_str()) {
            names.push(&o.scenario);
        }
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1200, 800)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((2, names.len().div_ceil(2).max(1)));
        for (name, panel) in names.iter().zip(panels.iter()) {
            let points: Vec<(f64, f64)> = outcomes
                .iter()
                .filter(|o| o.scenario == *name)
                .map(|o| (o.strength, 100.0 * o.recovery()))
                .collect();
            let lo = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let hi = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
            let pad = ((hi - lo) * 0.1).max(0.05);
            let mut chart = ChartBuilder::on(panel)
                .caption(*name, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..105.0)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("strength")
                .y_desc("recovered %")
                .draw()
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Reads a whole (small) file into a core table.
fn read_table(path: &Path, key: &[String]) -> Result<dbwatermark::Table, String> {
    let key: Vec<&str> = key.iter().map(String::as_str).collect();
    let input = dbwatermark::files::open(path, &Default::default()).map_err(|e| e.to_string())?;
    let mut table: Option<dbwatermark::Table> = None;
    for batch in input.reader {
        let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
        let part = dbwatermark::arrow::batch_to_table(&batch, &key).map_err(|e| e.to_string())?;
        match &mut table {
            Some(t) => t.append(&part).map_err(|e| e.to_string())?,
            None => table = Some(part),
        }
    }
    table.ok_or_else(|| format!("{}: no rows", path.display()))
}

/// Writes a core table to a file of the format its extension names.
fn write_table(table: &dbwatermark::Table, path: &Path) -> Result<(), String> {
    let batch = dbwatermark::arrow::table_to_batch(table).map_err(|e| e.to_string())?;
    let mut out = dbwatermark::files::Output::create(path, &batch.schema(), &Default::default())
        .map_err(|e| e.to_string())?;
    out.write(&batch).map_err(|e| e.to_string())?;
    out.finish().map_err(|e| e.to_string())
}

fn demo(rows: usize, dir: &Path) -> Result<ExitCode, String> {
    use dbwatermark::pipeline;
    println!(
        "dbwatermark demo: who leaked the customer table?  (files in {}/)\n",
        dir.display()
    );
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let original = dir.join("customers.parquet");
    let table = sample::customers(rows, 1, 2026);
    write_table(&table, &original)?;
    println!(
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
    let read = dbwatermark::files::ReadOptions::default();
    // The registry of issued copies, started afresh.
    let registry_path = dir.join("issued.jsonl");
    let _ = std::fs::remove_file(&registry_path);
    let mut registry =
        dbwatermark::registry::Appender::open(&registry_path).map_err(|e| e.to_string())?;
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
        println!(
            "2. Wrote {} carrying \"{content}\" in {:.2} s: {} of the rows carry marks, \
             {changed} of {cells} cells changed ({:.1}%), each number by at most {max_steps} step(s) \
             of its last digit.",
            copy.display(),
            start.elapsed().as_secs_f64(),
            summary.density,
            100.0 * changed as f64 / cells.max(1) as f64,
        );
        let record = dbwatermark::registry::Record::issued(
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
    println!(
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
        println!("   (also found: \"{}\")", extra.content);
    }
    let Some(f) = summary.found.first() else {
        println!("4. No watermark found in {secs:.2} s.");
        return Ok(ExitCode::from(3));
    };
    println!(
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
    println!(
        "5. The same extraction on the unmarked original finds {} watermark(s).",
        clean.found.len()
    );

    // A much smaller leak: too few rows to decode a watermark, enough to
    // test the copies that were issued.
    let small_path = dir.join("leak-small.csv");
    let small = attack::delete_rows(&copy_b, 1.0 - 1500.0 / copy_b.rows().max(1) as f64, 9);
    write_table(&small, &small_path)?;
    let issued = dbwatermark::registry::read(&registry_path).map_err(|e| e.to_string())?;
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
        Some(s) => println!(
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
            println!("6. No issued copy named in {}.", small_path.display());
            return Ok(ExitCode::from(3));
        }
    }
    Ok(ExitCode::SUCCESS)
}
