//! Our own JSON results (feature `report`): the one place where an
//! extraction, a candidate's score or an evaluation outcome becomes JSON.
//! `dbwm extract`, the server's task results and `dbwm eval`'s
//! `results.json` all serialize these types, so a field is named once.
//!
//! ```
//! use dbwatermark::eval::sample;
//! use dbwatermark::report::ExtractReport;
//! use dbwatermark::{Config, WatermarkKey, Watermarker, arrow, files, pipeline};
//!
//! let dir = std::env::temp_dir().join(format!("dbwm-report-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("copy.arrow");
//! let wm = Watermarker::new(WatermarkKey::new("secret")?, Config::default());
//! let mut table = sample::customers(5000, 1, 3);
//! wm.embed_table(&mut table, "partner-3")?;
//! let batch = arrow::table_to_batch(&table)?;
//! let mut out = files::Output::create(&path, &batch.schema(), &Default::default())?;
//! out.write(&batch)?;
//! out.finish()?;
//!
//! let files = vec![path];
//! let columns = pipeline::Columns::with_key(["customer_id"]);
//! let summary = pipeline::extract_files(&wm, &files, &columns, &Default::default(), &mut |_, _| {})?;
//! let json = serde_json::to_value(ExtractReport::new(&summary, &files, &[]))?;
//! assert_eq!(json["watermarks"][0]["content"], "partner-3");
//! assert_eq!(json["rows"], 5000);
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::Serialize;

use crate::pipeline::FilePlan;
use crate::pipeline::{ExtractSummary, FoundIn};
use crate::registry::Record;
use crate::{ColumnPlan, Score};

/// A watermark found: `{columns, content, density,
/// false_positive_probability, votes_agree, votes_disagree}`.
#[derive(Debug, Clone, Serialize)]
pub struct WatermarkReport<'a> {
    /// The columns that carry it.
    pub columns: &'a [String],
    /// The watermark content.
    pub content: &'a str,
    /// The density it was read at, as `1/N`.
    pub density: String,
    /// Bound on the chance that a table without it reports it.
    pub false_positive_probability: f64,
    /// Votes that agree with the decoded content.
    pub votes_agree: u64,
    /// Votes that disagree.
    pub votes_disagree: u64,
}

impl<'a> From<&'a FoundIn> for WatermarkReport<'a> {
    fn from(f: &'a FoundIn) -> Self {
        Self {
            columns: &f.columns,
            content: &f.content,
            density: f.evidence.density.to_string(),
            false_positive_probability: f.evidence.false_positive_probability,
            votes_agree: f.evidence.agree,
            votes_disagree: f.evidence.disagree,
        }
    }
}

/// Votes read in one column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnVotes<'a> {
    /// The column.
    pub name: &'a str,
    /// Votes read in it.
    pub votes: u64,
}

/// One candidate's score, with the fields of its registry record.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreReport<'a> {
    /// The registry record of the candidate.
    #[serde(flatten)]
    pub record: &'a Record,
    /// Code positions that agree with the candidate.
    pub agree: u64,
    /// Code positions read.
    pub total: u64,
    /// Corrected p-value of that much agreement by chance.
    pub p_value: f64,
    /// Its base-10 logarithm (finite where `p_value` underflows).
    pub log10_p_value: f64,
    /// Single marks that agree.
    pub marks_agree: u64,
    /// Single marks read.
    pub marks_total: u64,
    /// The density tested, as `1/N`.
    pub density: String,
    /// The round of the merged-leak test that named it (0: the first).
    pub round: u32,
}

impl<'a> ScoreReport<'a> {
    /// The report of `score`, whose candidate index points into `records`.
    pub fn new(score: &Score, records: &'a [Record]) -> Self {
        Self {
            record: &records[score.candidate],
            agree: score.agree,
            total: score.total,
            p_value: score.p_value,
            log10_p_value: score.log10_p_value,
            marks_agree: score.marks_agree,
            marks_total: score.marks_total,
            density: score.density.to_string(),
            round: score.round,
        }
    }
}

/// The test of a leak against the issued copies.
#[derive(Debug, Clone, Serialize)]
pub struct CandidatesReport<'a> {
    /// The best candidate that was not named, if any.
    pub best_other: Option<ScoreReport<'a>>,
    /// About how many more rows of the same leak would settle it.
    pub more_rows_needed: Option<u64>,
    /// Registry records set aside because another key issued them.
    pub other_keys: usize,
    /// Candidates tested.
    pub tested: usize,
    /// The p-value a candidate had to reach.
    pub threshold: f64,
}

/// What `dbwm extract` prints.
#[derive(Debug, Clone, Serialize)]
pub struct ExtractReport<'a> {
    /// The candidate test, when candidates were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<CandidatesReport<'a>>,
    /// Votes read per column.
    pub columns: Vec<ColumnVotes<'a>>,
    /// The files read.
    pub files: Vec<String>,
    /// The candidates named, best first.
    pub identified: Vec<ScoreReport<'a>>,
    /// Rows read over all files.
    pub rows: usize,
    /// Every watermark decoded, strongest evidence first.
    pub watermarks: Vec<WatermarkReport<'a>>,
}

impl<'a> ExtractReport<'a> {
    /// The report of `summary` over `files`; candidate scores index
    /// `records`.
    pub fn new(
        summary: &'a ExtractSummary,
        files: &[std::path::PathBuf],
        records: &'a [Record],
    ) -> Self {
        Self {
            candidates: None,
            columns: summary
                .votes
                .iter()
                .map(|(name, votes)| ColumnVotes {
                    name,
                    votes: *votes,
                })
                .collect(),
            files: files.iter().map(|f| f.display().to_string()).collect(),
            identified: summary
                .identification
                .iter()
                .flat_map(|i| &i.identified)
                .map(|s| ScoreReport::new(s, records))
                .collect(),
            rows: summary.rows,
            watermarks: summary.found.iter().map(WatermarkReport::from).collect(),
        }
    }
}

/// The evidence of one file of a server task: `{rows, watermarks}`.
#[derive(Debug, Clone, Serialize)]
pub struct FileEvidence<'a> {
    /// Rows read.
    pub rows: usize,
    /// Every watermark decoded.
    pub watermarks: Vec<WatermarkReport<'a>>,
}

impl<'a> From<&'a ExtractSummary> for FileEvidence<'a> {
    fn from(summary: &'a ExtractSummary) -> Self {
        Self {
            rows: summary.rows,
            watermarks: summary.found.iter().map(WatermarkReport::from).collect(),
        }
    }
}

/// One line of an evaluation's `results.json`.
#[cfg(feature = "eval")]
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeReport<'a> {
    /// Largest share of non-key cells changed.
    pub cells_changed: f64,
    /// Mean absolute change of the changed cells.
    pub mean_abs_change: f64,
    /// Median log10 p-value of the named copies.
    pub median_log10_p: Option<f64>,
    /// Trials in which the content was recovered.
    pub recovered: usize,
    /// Their share.
    pub recovery: f64,
    /// The scenario.
    pub scenario: &'a str,
    /// Seconds the scenario took.
    pub seconds: f64,
    /// The attack's strength.
    pub strength: f64,
    /// Whether the scenario's target was met (`null`: no target).
    pub target: Option<bool>,
    /// Trials run.
    pub trials: usize,
    /// Trials that reported a wrong content.
    pub wrong: usize,
}

#[cfg(feature = "eval")]
impl<'a> From<&'a crate::eval::Outcome> for OutcomeReport<'a> {
    fn from(o: &'a crate::eval::Outcome) -> Self {
        Self {
            cells_changed: o.cells_changed,
            mean_abs_change: o.mean_abs_change,
            median_log10_p: o.median_log10_p,
            recovered: o.recovered,
            recovery: o.recovery(),
            scenario: &o.scenario,
            seconds: o.seconds,
            strength: o.strength,
            target: o.target_met,
            trials: o.trials,
            wrong: o.wrong,
        }
    }
}

/// One column of `dbwm plan --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnPlanReport<'a> {
    /// The column.
    pub name: &'a str,
    /// What it is: `measure`, `category`, `calendar`, `free-text`, `code`,
    /// `identifier`, `constant`, `empty` or `unsupported`.
    pub kind: &'static str,
    /// How it carries marks: `low digit`, `text mark` or `none`.
    pub carrier: &'static str,
    /// Smallest value a changed cell may take (marked numbers only).
    pub min: Option<f64>,
    /// Largest value a changed cell may take (marked numbers only).
    pub max: Option<f64>,
    /// Floats: the decimal place marks move in.
    pub float_decimals: Option<i32>,
    /// Largest change of one value, when the owner's rules set one.
    pub max_change: Option<f64>,
    /// Why.
    pub reason: &'a str,
    /// Cells an embed of the whole file would change (from the sample).
    pub expected_changes: Option<u64>,
}

/// What `dbwm plan --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport<'a> {
    /// The file.
    pub file: String,
    /// Its rows, when known.
    pub rows: Option<usize>,
    /// The density an embed would use, as `1/N`.
    pub density: String,
    /// Rows the plan was measured on.
    pub sample_rows: usize,
    /// The plan's fingerprint, as the embed summary and the registry record
    /// will carry it.
    pub fingerprint: String,
    /// Every non-key column.
    pub columns: Vec<ColumnPlanReport<'a>>,
}

impl<'a> PlanReport<'a> {
    /// The report of `plan`, made for `file`.
    pub fn new(plan: &'a FilePlan, file: &std::path::Path) -> Self {
        let column = |p: &'a ColumnPlan| {
            let numeric = p.marks() && p.limits.min.is_finite();
            ColumnPlanReport {
                name: &p.name,
                kind: p.kind.as_str(),
                carrier: p.carrier.as_str(),
                min: numeric.then_some(p.limits.min),
                max: numeric.then_some(p.limits.max),
                float_decimals: p.limits.float_decimals,
                max_change: p
                    .limits
                    .max_change
                    .is_finite()
                    .then_some(p.limits.max_change),
                reason: &p.reason,
                expected_changes: plan
                    .sample
                    .iter()
                    .find(|(n, _)| *n == p.name)
                    .map(|(_, r)| plan.expected_changes(r).round() as u64),
            }
        };
        Self {
            file: file.display().to_string(),
            rows: plan.rows,
            density: plan.density.to_string(),
            sample_rows: plan.sample_rows,
            fingerprint: plan.plan.fingerprint(),
            columns: plan.plan.column_plans().iter().map(column).collect(),
        }
    }
}
