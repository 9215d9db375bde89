//! `dbwm extract`: find the watermarks of one or more files, and test them
//! against the issued copies.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use dbwatermark::registry::{self, Record};
use dbwatermark::report::{CandidatesReport, ExtractReport, ScoreReport};
use dbwatermark::{Candidates, Config, Identification, Watermarker, pipeline};

use crate::args::{KeyArgs, ReadArgs};
use crate::output::{Failure, Outcome, Progress};

#[derive(clap::Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Test the leak against these issued copies (a registry written by
    /// `embed --register`, or one content per line); the JSON gains
    /// `identified`, the candidates named, best first.
    #[arg(long, value_name = "FILE")]
    pub candidates: Option<PathBuf>,
    /// Largest corrected p-value at which a candidate is named.
    #[arg(long, default_value_t = dbwatermark::DEFAULT_THRESHOLD, requires = "candidates")]
    pub threshold: f64,
    /// The files; their votes are pooled.
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
        .map(|path| load_candidates(&wm, path, args.threshold))
        .transpose()
        .map_err(Failure::Caller)?;
    let read = args.read.options().map_err(Failure::Caller)?;
    let progress = Progress::new("extracting");
    let result = pipeline::extract_files_against(
        &wm,
        &args.files,
        &args.read.columns().map_err(Failure::Caller)?,
        &read,
        tested.as_ref().map(|(c, _, _)| c),
        &mut |done, total| progress.update(done, total),
    );
    drop(progress);
    let summary = result?;
    let records = tested.as_ref().map_or(&[][..], |(_, r, _)| r.as_slice());
    let mut report = ExtractReport::new(&summary, &args.files, records);
    if let (Some(i), Some((c, _, other_keys))) = (&summary.identification, &tested) {
        let rows_needed = i
            .rows_factor_needed
            .map(|f| ((f - 1.0) * summary.rows as f64).ceil() as u64);
        report.candidates = Some(CandidatesReport {
            best_other: i.best_other.as_ref().map(|s| ScoreReport::new(s, records)),
            more_rows_needed: rows_needed,
            other_keys: *other_keys,
            tested: c.len(),
            threshold: i.threshold,
        });
        report_identification(i, rows_needed);
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

/// The registry records to test a leak against: those issued under `wm`'s
/// key (or with no fingerprint), each content once; and how many other
/// records were set aside.
fn load_candidates(
    wm: &Watermarker,
    path: &Path,
    threshold: f64,
) -> Result<(Candidates, Vec<Record>, usize), String> {
    let records = registry::read(path).map_err(|e| e.to_string())?;
    let total = records.len();
    let other_keys = records.iter().filter(|r| !r.matches_key(wm)).count();
    let mut kept: Vec<Record> = Vec::new();
    for r in records {
        if !r.matches_key(wm) {
            continue;
        }
        match kept.iter().find(|k| k.content == r.content) {
            // The same content issued twice cannot tell its copies apart.
            Some(k) if k.recipient != r.recipient => say!(
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
