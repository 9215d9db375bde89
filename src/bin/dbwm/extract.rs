//! `dbwm extract`: find the watermarks of one or more files, and test them
//! against the issued copies.

use std::path::PathBuf;
use std::process::ExitCode;

use dbwatermark::registry::Issued;
use dbwatermark::report::ExtractReport;
use dbwatermark::{Config, Identification, pipeline};

use crate::args::{KeyArgs, Place, ReadArgs};
use crate::output::{Failure, Outcome, Progress};

#[derive(clap::Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Test the leak against these issued copies (a registry written by
    /// `embed --register`, or one content per line); the JSON gains
    /// `identified`, the candidates named, best first. The virtual key a
    /// registry records is used for a leak that lacks a --pk column, or
    /// when no key is named.
    #[arg(long, value_name = "FILE")]
    pub candidates: Option<PathBuf>,
    /// Largest corrected p-value at which a candidate is named.
    #[arg(long, default_value_t = dbwatermark::DEFAULT_THRESHOLD, requires = "candidates")]
    pub threshold: f64,
    /// Hash dates and times in the key as builds before December 2026 did
    /// (a typed one by the count of its unit, text by its text): only to
    /// read a copy made then whose key holds a date or a time.
    #[arg(long)]
    pub legacy_time_keys: bool,
    /// The files (or database URLs, with --table or --query); their votes
    /// are pooled.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Prints the JSON report; exit 0 when a watermark is found or a candidate
/// named, 3 when none is, 2 on bad input.
pub fn run(args: &ExtractArgs) -> Outcome {
    let wm = args
        .key
        .watermarker(Config::default())
        .map_err(Failure::Caller)?;
    let tested = args
        .candidates
        .as_deref()
        .map(|path| Issued::read(&wm, path, args.threshold))
        .transpose()
        .map_err(Failure::Caller)?;
    for warning in tested.iter().flat_map(|t| &t.warnings) {
        say!("dbwm: warning: {warning}");
    }
    let read = args.read.options().map_err(Failure::Caller)?;
    let places = args
        .files
        .iter()
        .map(|f| Place::parse(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::Caller)?;
    let relations = places
        .iter()
        .map(|p| args.read.relation(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::Caller)?;
    let sources: Vec<pipeline::SourceRef<'_>> = places
        .iter()
        .zip(&relations)
        .zip(&args.files)
        .map(|((place, relation), file)| match (place, relation) {
            (Place::Database(url), Some(relation)) => {
                pipeline::SourceRef::Database { url, relation }
            }
            _ => pipeline::SourceRef::File(file),
        })
        .collect();
    let labels: Vec<PathBuf> = sources.iter().map(|s| s.label()).collect();
    let mut columns = args.read.columns().map_err(Failure::Caller)?;
    columns.legacy_time_keys = args.legacy_time_keys;
    if !columns.virtual_key
        && let Some(tested) = &tested
        && let Some(key) = recorded_virtual_key(tested)
    {
        let named = key.join(",");
        let notice = if columns.key.is_empty() {
            Some(format!(
                "no key given: reading with the virtual key {named} the registry records"
            ))
        } else {
            (tested.records.iter())
                .all(|r| r.virtual_key.as_ref() == Some(&key))
                .then(|| {
                    format!(
                        "every copy in the registry was marked from the virtual key {named}: reading with it rather than --pk {}",
                        columns.key.join(",")
                    )
                })
        };
        if let Some(notice) = notice {
            say!("dbwm: {notice}");
            columns.key = key;
            columns.virtual_key = true;
        } else {
            // Some copies were marked from the key: a leak that kept it is
            // read with it, one that dropped it with the virtual key.
            columns.virtual_key_fallback = Some(key);
        }
    }
    let progress = Progress::new("extracting");
    let result = pipeline::extract_against(
        &wm,
        &sources,
        &columns,
        &read,
        tested.as_ref().map(|t| &t.candidates),
        &mut |done, total| progress.update(done, total),
    );
    drop(progress);
    let summary = result.map_err(|e| key_missing_hint(e, &columns))?;
    if let Some(key) = &columns.virtual_key_fallback {
        for source in &summary.virtual_key_sources {
            say!(
                "dbwm: {} has no key column {}: read with the virtual key {} the registry records",
                source.display(),
                columns.key.join(","),
                key.join(",")
            );
        }
    }
    let report = ExtractReport::tested(&summary, &labels, tested.as_ref());
    if let (Some(i), Some(c)) = (&summary.identification, &report.candidates) {
        report_identification(i, c.more_rows_needed);
    }
    if report.watermarks.is_empty()
        && report.identified.is_empty()
        && !summary.time_keys.is_empty()
        && !args.legacy_time_keys
        && !columns.virtual_key
    {
        say!(
            "dbwm: the key's {} holds dates or times, which copies made before December 2026 hashed otherwise; for such a copy, try again with --legacy-time-keys",
            summary.time_keys.join(", ")
        );
    }
    outln!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    Ok(
        if report.watermarks.is_empty() && report.identified.is_empty() {
            ExitCode::from(3)
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// One line per copy named on standard error, or what the best evidence
/// was.
fn report_identification(i: &Identification, rows_needed: Option<u64>) {
    for s in &i.identified {
        // The p-value is a corrected bound; when every position read
        // agrees, it is the smallest the code can show for that many.
        let all = if s.agree == s.total {
            " (every position read agrees)"
        } else {
            ""
        };
        say!(
            "dbwm: identified {:?}: {} of {} code positions agree, p ≤ {:.1e}{all}",
            s.content,
            s.agree,
            s.total,
            s.p_value
        );
    }
    if i.identified.is_empty() {
        match (&i.best_other, rows_needed) {
            (Some(s), Some(0)) => say!(
                "dbwm: no candidate reached p ≤ {:.0e}, but {:?} is close: {} of {} positions agree, p ≤ {:.1e}; a few more rows of the same leak would settle it",
                i.threshold,
                s.content,
                s.agree,
                s.total,
                s.p_value
            ),
            (Some(s), Some(more)) => say!(
                "dbwm: no candidate reached p ≤ {:.0e}; best {:?}: {} of {} positions agree, p ≤ {:.1e}; about {more} more rows of the same leak would settle it",
                i.threshold,
                s.content,
                s.agree,
                s.total,
                s.p_value
            ),
            (Some(s), None) => say!(
                "dbwm: no candidate shows any agreement beyond chance (best {:?}: {} of {} positions, p = {:.2}); more rows would not change that unless the leak carries a mark",
                s.content,
                s.agree,
                s.total,
                s.p_value
            ),
            (None, _) => say!("dbwm: no candidate to test"),
        }
    }
}

/// A leak that lacks a key column says how one is read: from the
/// virtual key its copy was marked from.
fn key_missing_hint(e: pipeline::Error, columns: &pipeline::Columns) -> Failure {
    match &e {
        pipeline::Error::Columns {
            source: dbwatermark::arrow::Error::MissingColumn(name),
            ..
        } if columns.key.contains(name) && !columns.virtual_key => Failure::Caller(format!(
            "{e}: a leak without its key column is read with --virtual-key COL,COL... (the columns its copy was marked from), or with --candidates naming a registry that records them"
        )),
        _ => e.into(),
    }
}

/// The virtual key the issued copies were marked from, when they all
/// record the same one.
fn recorded_virtual_key(issued: &Issued) -> Option<Vec<String>> {
    let mut keys = issued.records.iter().filter_map(|r| r.virtual_key.clone());
    let first = keys.next()?;
    keys.all(|k| k == first).then_some(first)
}
