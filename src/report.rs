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

/// A watermark found: `{columns, content, density, scheme,
/// false_positive_probability, votes_agree, votes_disagree}`.
#[derive(Debug, Clone, Serialize)]
pub struct WatermarkReport<'a> {
    /// The columns that carry it.
    pub columns: &'a [String],
    /// The watermark content.
    pub content: &'a str,
    /// The density it was read at, as `1/N`.
    pub density: String,
    /// The position scheme it was read under
    /// ([`Positions::scheme`](crate::Positions::scheme): 1, a position per
    /// marked row, as copies made before cell positions; 2, a position per
    /// marked cell).
    pub scheme: u32,
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
            scheme: f.evidence.positions.scheme(),
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
    /// The position scheme tested (see [`WatermarkReport::scheme`]).
    pub scheme: u32,
    /// The round of the merged-leak test that named it (1: the first).
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
            scheme: score.positions.scheme(),
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

impl<'a> ExtractReport<'a> {
    /// [`ExtractReport::new`] with the test against the `issued` copies
    /// the summary's identification was made with, as `dbwm extract
    /// --candidates` prints it.
    pub fn tested(
        summary: &'a ExtractSummary,
        files: &[std::path::PathBuf],
        issued: Option<&'a crate::registry::Issued>,
    ) -> Self {
        let records = issued.map_or(&[][..], |t| t.records.as_slice());
        let mut report = Self::new(summary, files, records);
        if let (Some(i), Some(t)) = (&summary.identification, issued) {
            report.candidates = Some(CandidatesReport {
                best_other: i.best_other.as_ref().map(|s| ScoreReport::new(s, records)),
                more_rows_needed: i
                    .rows_factor_needed
                    .map(|f| ((f - 1.0) * summary.rows as f64).ceil() as u64),
                other_keys: t.other_keys,
                tested: t.candidates.len(),
                threshold: i.threshold,
            });
        }
        report
    }
}

/// The evidence of one file or table of a server task: `{rows,
/// watermarks}`, and when the server keeps a registry, `{identified,
/// candidates}` as `dbwm extract --candidates` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct FileEvidence<'a> {
    /// Rows read.
    pub rows: usize,
    /// Every watermark decoded.
    pub watermarks: Vec<WatermarkReport<'a>>,
    /// The issued copies named, best first (only with a registry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identified: Option<Vec<ScoreReport<'a>>>,
    /// The test against the registry (only with a registry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<CandidatesReport<'a>>,
}

impl<'a> FileEvidence<'a> {
    /// The evidence of `summary`, tested against the `issued` copies its
    /// identification was made with, if any.
    pub fn tested(
        summary: &'a ExtractSummary,
        issued: Option<&'a crate::registry::Issued>,
    ) -> Self {
        let report = ExtractReport::tested(summary, &[], issued);
        Self {
            rows: report.rows,
            watermarks: report.watermarks,
            identified: issued.map(|_| report.identified),
            candidates: report.candidates,
        }
    }
}

impl<'a> From<&'a ExtractSummary> for FileEvidence<'a> {
    fn from(summary: &'a ExtractSummary) -> Self {
        Self::tested(summary, None)
    }
}

/// What an embedding job did, as a server task's `result`: `{rows,
/// target, density, plan_fingerprint, columns, skipped, registered}`.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedJobReport<'a> {
    /// Rows written.
    pub rows: usize,
    /// Where the copy was written.
    pub target: &'a str,
    /// The density, as `1/N`.
    pub density: String,
    /// The plan's fingerprint (also in the registry record).
    pub plan_fingerprint: &'a str,
    /// What pseudo-rows mode added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pseudo_rows: Option<PseudoRowsJobReport>,
    /// Per marked column: cells marked and changed.
    pub columns: Vec<EmbedJobColumnReport<'a>>,
    /// Columns left unmarked.
    pub skipped: &'a [String],
    /// Whether the copy was recorded in the registry.
    pub registered: bool,
}

/// The pseudo-rows of an [`EmbedJobReport`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PseudoRowsJobReport {
    /// About one fabricated row per this many real rows.
    pub spacing: u32,
    /// Real rows, written unchanged.
    pub real_rows: usize,
    /// Fabricated rows added.
    pub added: usize,
}

/// One marked column of an [`EmbedJobReport`].
#[derive(Debug, Clone, Serialize)]
pub struct EmbedJobColumnReport<'a> {
    /// The column.
    pub name: &'a str,
    /// Cells that carry a mark.
    pub cells_marked: usize,
    /// Cells whose value changed.
    pub cells_changed: usize,
    /// Largest change of one cell, in the column's unit.
    pub max_abs_change: f64,
}

impl<'a> EmbedJobReport<'a> {
    /// The report of `summary`, written to `target`.
    pub fn new(
        summary: &'a crate::pipeline::EmbedSummary,
        target: &'a str,
        registered: bool,
    ) -> Self {
        Self {
            rows: summary.rows,
            target,
            density: summary.density.to_string(),
            plan_fingerprint: &summary.plan_fingerprint,
            pseudo_rows: summary.pseudo_rows.map(|r| PseudoRowsJobReport {
                spacing: r.spacing,
                real_rows: r.real_rows,
                added: r.added,
            }),
            columns: summary
                .columns
                .iter()
                .map(|(name, r)| EmbedJobColumnReport {
                    name,
                    cells_marked: r.marked,
                    cells_changed: r.changed,
                    max_abs_change: r.max_abs_change,
                })
                .collect(),
            skipped: &summary.skipped,
            registered,
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
    /// A virtual key for leaks without the key column: `{columns,
    /// unique_share}`, or `null`.
    pub virtual_key: Option<VirtualKeyReport<'a>>,
}

/// A suggested virtual key in a [`PlanReport`].
#[derive(Debug, Clone, Serialize)]
pub struct VirtualKeyReport<'a> {
    /// Its columns.
    pub columns: &'a [String],
    /// The share of the sampled rows it tells apart.
    pub unique_share: f64,
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
            virtual_key: plan.virtual_key.as_ref().map(|v| VirtualKeyReport {
                columns: &v.columns,
                unique_share: v.unique_share,
            }),
        }
    }
}

/// A plan made once and followed by every partition of a table: the key
/// columns, the density and every non-key column's plan, as JSON. A Spark
/// driver or a database coordinator makes it from the whole table (or a
/// sample), sends it to the workers, and each worker marks its rows
/// exactly as one embed of the whole table would.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Float64Array, Int64Array, RecordBatch};
/// use arrow_schema::{DataType, Field, Schema};
/// use dbwatermark::arrow::BatchPlan;
/// use dbwatermark::report::SharedPlan;
/// use dbwatermark::Density;
///
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("id", DataType::Int64, false),
///     Field::new("price", DataType::Float64, false),
/// ]));
/// let batch = RecordBatch::try_new(schema.clone(), vec![
///     Arc::new(Int64Array::from_iter_values(0..2000)),
///     Arc::new(Float64Array::from_iter_values((0..2000).map(|i| 10.0 + (i * 37 % 500) as f64 / 100.0))),
/// ])?;
/// let plan = BatchPlan::profiled(&schema, &["id"], None, &[batch])?;
/// let shared = SharedPlan::new(&plan, &["id".to_owned()], Density::from_level(3)?);
/// let json = shared.to_json();
/// let back = SharedPlan::from_json(&json)?;
/// assert_eq!(back.density()?, Density::from_level(3)?);
/// assert_eq!(back.batch_plan(&schema)?.fingerprint(), plan.fingerprint());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedPlan {
    /// Always `dbwatermark-plan`.
    pub format: String,
    /// The form's version, [`SharedPlan::VERSION`].
    pub version: u32,
    /// The primary-key columns, in key order.
    pub key: Vec<String>,
    /// The density's level ([`Density::level`](crate::Density::level)).
    pub density_level: u8,
    /// The density, as `1/N` (for people; `density_level` is read).
    pub density: String,
    /// The plan's fingerprint
    /// ([`BatchPlan::fingerprint`](crate::arrow::BatchPlan::fingerprint));
    /// checked when read.
    pub fingerprint: String,
    /// Every non-key column's plan.
    pub columns: Vec<SharedColumnPlan>,
    /// Whether `key` is a virtual key
    /// ([`BatchPlan::use_virtual_key`](crate::arrow::BatchPlan::use_virtual_key));
    /// left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub virtual_key: bool,
}

/// One column of a [`SharedPlan`].
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedColumnPlan {
    /// The column.
    pub name: String,
    /// [`Kind::as_str`](crate::Kind::as_str).
    pub kind: String,
    /// [`Carrier::as_str`](crate::Carrier::as_str).
    pub carrier: String,
    /// Smallest value a changed cell may take (`null`: unbounded).
    pub min: Option<f64>,
    /// Largest value a changed cell may take (`null`: unbounded).
    pub max: Option<f64>,
    /// Floats: the decimal place marks move in.
    pub float_decimals: Option<i32>,
    /// Largest change of one value (`null`: unbounded).
    pub max_change: Option<f64>,
    /// Why.
    pub reason: String,
}

/// What is wrong with a [`SharedPlan`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedPlanError {
    /// Not the JSON of a plan.
    #[error("not a dbwatermark plan: {0}")]
    Json(#[from] serde_json::Error),
    /// A field holds something a plan cannot.
    #[error("invalid plan: {0}")]
    Field(String),
    /// The plan does not fit the table's schema.
    #[error("the plan does not fit the table: {0}")]
    Columns(#[from] crate::arrow::Error),
}

impl SharedPlan {
    /// The version of the form this build writes and reads.
    pub const VERSION: u32 = 1;
    const FORMAT: &'static str = "dbwatermark-plan";

    /// The shared form of `plan` (made by
    /// [`BatchPlan::profiled`](crate::arrow::BatchPlan::profiled) or
    /// [`BatchPlan::profiled_with`](crate::arrow::BatchPlan::profiled_with)),
    /// with its `key` names and `density`.
    pub fn new(plan: &crate::arrow::BatchPlan, key: &[String], density: crate::Density) -> Self {
        let finite = |v: f64| v.is_finite().then_some(v);
        Self {
            format: Self::FORMAT.to_owned(),
            version: Self::VERSION,
            key: key.to_vec(),
            density_level: density.level(),
            density: density.to_string(),
            fingerprint: plan.fingerprint(),
            columns: plan
                .column_plans()
                .iter()
                .map(|p| SharedColumnPlan {
                    name: p.name.clone(),
                    kind: p.kind.as_str().to_owned(),
                    carrier: p.carrier.as_str().to_owned(),
                    min: finite(p.limits.min),
                    max: finite(p.limits.max),
                    float_decimals: p.limits.float_decimals,
                    max_change: finite(p.limits.max_change),
                    reason: p.reason.clone(),
                })
                .collect(),
            virtual_key: plan.has_virtual_key(),
        }
    }

    /// The JSON form (one line).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a plan serializes")
    }

    /// Reads the JSON form.
    ///
    /// # Errors
    ///
    /// [`SharedPlanError`] naming what is not a plan, or a version this
    /// build does not read.
    pub fn from_json(json: &str) -> Result<Self, SharedPlanError> {
        let plan: Self = serde_json::from_str(json)?;
        if plan.format != Self::FORMAT {
            return Err(SharedPlanError::Field(format!(
                "`format` is `{}`, expected `{}`",
                plan.format,
                Self::FORMAT
            )));
        }
        if plan.version != Self::VERSION {
            return Err(SharedPlanError::Field(format!(
                "`version` {} (this build reads version {})",
                plan.version,
                Self::VERSION
            )));
        }
        plan.density()?;
        plan.column_plans()?;
        Ok(plan)
    }

    /// The density.
    ///
    /// # Errors
    ///
    /// [`SharedPlanError::Field`] for a level past [`crate::MAX_LEVEL`].
    pub fn density(&self) -> Result<crate::Density, SharedPlanError> {
        crate::Density::from_level(self.density_level)
            .map_err(|e| SharedPlanError::Field(format!("`density_level`: {e}")))
    }

    /// The column plans.
    ///
    /// # Errors
    ///
    /// [`SharedPlanError::Field`] naming the column with an unknown kind or
    /// carrier, or a bound that is not a number.
    pub fn column_plans(&self) -> Result<Vec<ColumnPlan>, SharedPlanError> {
        self.columns
            .iter()
            .map(|c| {
                let bad =
                    |what: &str| SharedPlanError::Field(format!("column `{}`: {what}", c.name));
                let kind = crate::Kind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == c.kind)
                    .ok_or_else(|| bad(&format!("unknown kind `{}`", c.kind)))?;
                let carrier = crate::Carrier::ALL
                    .into_iter()
                    .find(|k| k.as_str() == c.carrier)
                    .ok_or_else(|| bad(&format!("unknown carrier `{}`", c.carrier)))?;
                let limits = crate::Limits {
                    min: c.min.unwrap_or(f64::NEG_INFINITY),
                    max: c.max.unwrap_or(f64::INFINITY),
                    float_decimals: c.float_decimals,
                    max_change: c.max_change.unwrap_or(f64::INFINITY),
                };
                if limits.min > limits.max || limits.max_change.is_nan() {
                    return Err(bad("`min` is above `max`"));
                }
                if limits
                    .float_decimals
                    .is_some_and(|d| !(-30..=30).contains(&d))
                {
                    return Err(bad("`float_decimals` outside -30..=30"));
                }
                let mut plan = ColumnPlan::unsupported(&c.name, "");
                plan.kind = kind;
                plan.carrier = carrier;
                plan.limits = limits;
                plan.reason = c.reason.clone();
                Ok(plan)
            })
            .collect()
    }

    /// The [`BatchPlan`](crate::arrow::BatchPlan) for a partition whose
    /// batches have `schema`.
    ///
    /// # Errors
    ///
    /// [`SharedPlanError::Columns`] when the schema lacks a planned column
    /// or its type cannot carry the planned marks; [`SharedPlanError::Field`]
    /// when the rebuilt plan's fingerprint is not the one recorded (the
    /// plan was edited).
    pub fn batch_plan(
        &self,
        schema: &arrow_schema::Schema,
    ) -> Result<crate::arrow::BatchPlan, SharedPlanError> {
        let plan = self.batch_plan_for_reading(schema)?;
        plan.require_marked()?;
        Ok(plan)
    }

    /// As [`SharedPlan::batch_plan`], but a plan that marks no column is
    /// no error ([`BatchPlan::from_column_plans_for_reading`](crate::arrow::BatchPlan::from_column_plans_for_reading)):
    /// for partitions that read a leak whose mark is in a pseudo-column or
    /// in pseudo-rows only.
    ///
    /// # Errors
    ///
    /// As [`SharedPlan::batch_plan`], but for a plan that marks nothing.
    pub fn batch_plan_for_reading(
        &self,
        schema: &arrow_schema::Schema,
    ) -> Result<crate::arrow::BatchPlan, SharedPlanError> {
        let key: Vec<&str> = self.key.iter().map(String::as_str).collect();
        let mut plan = crate::arrow::BatchPlan::from_column_plans_for_reading(
            schema,
            &key,
            &self.column_plans()?,
        )?;
        if self.virtual_key {
            plan.use_virtual_key();
        }
        if plan.fingerprint() != self.fingerprint {
            return Err(SharedPlanError::Field(format!(
                "its columns give fingerprint {}, not the {} it records",
                plan.fingerprint(),
                self.fingerprint
            )));
        }
        Ok(plan)
    }
}
