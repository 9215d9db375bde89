//! Watermarking and tracing files end to end (feature `files`): what `dbwm
//! embed` and `dbwm extract` do, as library calls.

use std::path::{Path, PathBuf};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, Schema, SchemaRef};

use crate::arrow::{self as adapter, BatchPlan};
use crate::files::{self, Input, Output, ReadOptions, WriteOptions};
use crate::{
    Candidates, ColumnPlan, ColumnReport, ColumnRules, Density, Evidence, Identification,
    TableTally, Watermarker,
};

/// Errors of a file job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input file is missing, unreadable or not in its format.
    #[error(transparent)]
    Input(files::Error),
    /// The columns do not fit the request (missing key column, unknown
    /// column, unsupported type), or a batch does not fit the first.
    #[error("{path}: {source}")]
    Columns {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: adapter::Error,
    },
    /// A bad setting such as a content of the wrong length.
    #[error(transparent)]
    Setting(#[from] crate::Error),
    /// The output could not be written.
    #[error(transparent)]
    Output(files::Error),
    /// A database source or target failed.
    #[cfg(feature = "db")]
    #[error(transparent)]
    Database(crate::db::Error),
    /// The job's columns or places do not fit together (no primary key, a
    /// table named for a file).
    #[error("{0}")]
    Job(String),
    /// The job was asked to stop ([`embed_until`]) before it finished;
    /// nothing was written.
    #[error("stopped before the copy was complete; nothing was written")]
    Stopped,
}

impl Error {
    /// Whether the caller can fix it (bad input or settings) rather than it
    /// being a failure to write.
    pub fn is_caller_error(&self) -> bool {
        match self {
            Self::Output(_) | Self::Stopped => false,
            #[cfg(feature = "db")]
            Self::Database(e) => e.is_caller_error(),
            _ => true,
        }
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What [`embed_file`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmbedSummary {
    /// Rows written.
    pub rows: usize,
    /// The marking density.
    pub density: Density,
    /// One report per marked column.
    pub columns: Vec<(String, ColumnReport)>,
    /// Non-key columns left unmarked (see `plans` for why).
    pub skipped: Vec<String>,
    /// Every non-key column's plan: what it is, how it carries marks, why.
    pub plans: Vec<ColumnPlan>,
    /// The plan's fingerprint ([`BatchPlan::fingerprint`]).
    pub plan_fingerprint: String,
    /// The added column that carries the mark, in
    /// [`EmbedMode::PseudoColumn`] (then no real cell changed).
    pub pseudo_column: Option<String>,
    /// What [`EmbedMode::PseudoRows`] added (then no real cell changed).
    pub pseudo_rows: Option<crate::PseudoRowsReport>,
}

impl EmbedSummary {
    /// The summary of `rows` rows marked in cells under `plan` at
    /// `density`, with one report per marked column.
    pub fn cells(
        plan: &BatchPlan,
        density: Density,
        reports: Vec<ColumnReport>,
        rows: usize,
    ) -> Self {
        Self {
            rows,
            density,
            columns: plan.marked_names().into_iter().zip(reports).collect(),
            skipped: plan.skipped_names().to_vec(),
            plans: plan.column_plans().to_vec(),
            plan_fingerprint: plan.fingerprint(),
            pseudo_column: None,
            pseudo_rows: None,
        }
    }

    /// The summary of a copy in which no real cell changed: every column
    /// skipped, under the mode's own plan fingerprint (no rows yet).
    pub fn lossless(plan: &BatchPlan, plan_fingerprint: String) -> Self {
        let mut skipped = plan.marked_names();
        skipped.extend(plan.skipped_names().iter().cloned());
        Self {
            rows: 0,
            density: Density::ALL,
            columns: Vec::new(),
            skipped,
            plans: plan.column_plans().to_vec(),
            plan_fingerprint,
            pseudo_column: None,
            pseudo_rows: None,
        }
    }
}

fn columns_error(path: &Path) -> impl FnOnce(adapter::Error) -> Error + '_ {
    move |source| Error::Columns {
        path: path.to_owned(),
        source,
    }
}

fn input_error(path: &Path, source: arrow_schema::ArrowError) -> Error {
    #[cfg(feature = "db")]
    let source = match source {
        ArrowError::ExternalError(e) => match e.downcast::<crate::db::Error>() {
            Ok(e) => return Error::Database(*e),
            Err(e) => ArrowError::ExternalError(e),
        },
        other => other,
    };
    Error::Input(files::Error::Format {
        path: path.to_owned(),
        source,
    })
}

/// The batches of `reader`, each read error naming `label`, and
/// [`Error::Stopped`] in place of a batch once `stop` says so (callers stop
/// at the first error).
fn batches<'a>(
    reader: Box<dyn RecordBatchReader + Send>,
    label: &'a Path,
    stop: &'a dyn Fn() -> bool,
) -> impl Iterator<Item = Result<RecordBatch>> + 'a {
    reader.map(move |batch| {
        if stop() {
            Err(Error::Stopped)
        } else {
            batch.map_err(|e| input_error(label, e))
        }
    })
}

/// Finishes `sink` (its output appears complete) unless `stop` says the job
/// was stopped, in which case nothing appears.
fn finish_unless_stopped(sink: Sink, stop: &dyn Fn() -> bool) -> Result<()> {
    if stop() {
        return Err(Error::Stopped);
    }
    sink.finish()
}

/// Where a job reads its rows.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum SourceRef<'a> {
    /// A file (CSV, NDJSON, Arrow IPC, Parquet).
    File(&'a Path),
    /// A database table or query.
    #[cfg(feature = "db")]
    Database {
        /// The database.
        url: &'a crate::db::DbUrl,
        /// What to read.
        relation: &'a crate::db::Relation,
    },
}

/// Where a job writes the marked copy.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum SinkRef<'a> {
    /// A file, replaced only once complete.
    File(&'a Path),
    /// A new database table, created inside one transaction.
    #[cfg(feature = "db")]
    Database {
        /// The database.
        url: &'a crate::db::DbUrl,
        /// The table to create.
        table: &'a str,
        /// Replace a table of that name.
        replace: bool,
    },
}

impl SourceRef<'_> {
    /// How messages and reports name it (a URL with its password
    /// redacted).
    pub fn label(&self) -> PathBuf {
        match self {
            Self::File(p) => p.to_path_buf(),
            #[cfg(feature = "db")]
            Self::Database { url, relation } => {
                PathBuf::from(format!("{url} ({})", relation.label()))
            }
        }
    }

    fn path(&self) -> Option<&Path> {
        match self {
            Self::File(p) => Some(p),
            #[cfg(feature = "db")]
            Self::Database { .. } => None,
        }
    }
}

impl SinkRef<'_> {
    /// How messages, the registry and reports name it (a URL with its
    /// password redacted).
    pub fn label(&self) -> PathBuf {
        match self {
            Self::File(p) => p.to_path_buf(),
            #[cfg(feature = "db")]
            Self::Database { url, table, .. } => PathBuf::from(format!("{url} (table {table})")),
        }
    }
}

/// What a job knows of its source beyond the batches.
#[derive(Debug, Default)]
struct Opened {
    /// The primary key declared by a database table.
    primary_key: Vec<String>,
    /// A database source's columns.
    #[cfg(feature = "db")]
    columns: Option<(crate::db::Scheme, Vec<crate::db::DbColumn>)>,
}

/// Opens `source` as batches.
fn open_source(source: &SourceRef<'_>, read: &ReadOptions) -> Result<(Input, Opened)> {
    match source {
        SourceRef::File(path) => Ok((
            files::open(path, read).map_err(Error::Input)?,
            Opened::default(),
        )),
        #[cfg(feature = "db")]
        SourceRef::Database { url, relation } => {
            let db = crate::db::open(url, relation, read.batch_rows).map_err(Error::Database)?;
            let opened = Opened {
                primary_key: db.primary_key.clone(),
                columns: Some((db.scheme, db.columns)),
            };
            Ok((
                Input {
                    reader: db.reader,
                    format: files::Format::IpcStream,
                    rows: db.rows,
                    #[cfg(feature = "parquet")]
                    parquet_compression: None,
                },
                opened,
            ))
        }
    }
}

/// The job's columns made whole from what the source says: the table's
/// primary key when none was given, and columns of types the engine does
/// not map (uuid, json, ...) left alone.
fn resolve_columns(
    columns: &Columns,
    opened: &Opened,
    schema: &Schema,
    label: &Path,
) -> Result<Columns> {
    let mut out = columns.clone();
    if out.key.is_empty() {
        out.key = opened.primary_key.clone();
    }
    if let Some(fallback) = &columns.virtual_key_fallback
        && !columns.virtual_key
        && (out.key.is_empty() || out.key.iter().any(|k| schema.index_of(k).is_err()))
    {
        out.key = fallback.clone();
        out.virtual_key = true;
    }
    if out.key.is_empty() {
        return Err(Error::Job(format!(
            "{}: no primary key: name the key column(s) with --pk{}",
            label.display(),
            if opened.primary_key.is_empty() && label.to_string_lossy().contains("://") {
                " (the table declares none)"
            } else {
                ""
            }
        )));
    }
    Ok(out)
}

/// The columns a database source passes through unmarked, with why (unless
/// the owner's rules speak of them).
fn passed_through(opened: &Opened, columns: &Columns) -> Vec<(String, String)> {
    #[cfg(feature = "db")]
    if let Some((_, db_columns)) = &opened.columns {
        return db_columns
            .iter()
            .filter(|c| c.passed_through && columns.rules.get(&c.name).is_none())
            .map(|c| {
                (
                    c.name.clone(),
                    format!(
                        "type {} is passed through as it is (a mark would not survive it or would break it)",
                        c.sql_type
                    ),
                )
            })
            .collect();
    }
    let _ = (opened, columns);
    Vec::new()
}

/// A source opened and planned: its plan, its batches (the profiled ones
/// put back in front), what the source told of itself and the job's
/// columns made whole from it.
struct Planned {
    plan: BatchPlan,
    input: Input,
    opened: Opened,
    columns: Columns,
}

/// Opens `source` and plans it from its first rows, as every job does.
fn open_planned(source: &SourceRef<'_>, read: &ReadOptions, columns: &Columns) -> Result<Planned> {
    open_planned_for(source, read, columns, true)
}

/// [`open_planned`]; with `need_marked` false a plan that marks no column
/// is no error (a pseudo-column carries the mark instead).
fn open_planned_for(
    source: &SourceRef<'_>,
    read: &ReadOptions,
    columns: &Columns,
    need_marked: bool,
) -> Result<Planned> {
    let label = source.label();
    let (input, opened) = open_source(source, read)?;
    let columns = resolve_columns(columns, &opened, &input.reader.schema(), &label)?;
    let (plan, input) = plan(input, &label, &columns, &opened, need_marked)?;
    Ok(Planned {
        plan,
        input,
        opened,
        columns,
    })
}

/// The output of an embed.
enum Sink {
    File(Box<Output>),
    #[cfg(feature = "db")]
    Database(crate::db::Target),
}

impl Sink {
    fn create(
        sink: &SinkRef<'_>,
        schema: &SchemaRef,
        write: &WriteOptions,
        _key: &[String],
        _opened: &Opened,
    ) -> Result<Self> {
        match sink {
            SinkRef::File(path) => Ok(Self::File(Box::new(
                Output::create(path, &schema.as_ref().clone(), write).map_err(Error::Output)?,
            ))),
            #[cfg(feature = "db")]
            SinkRef::Database {
                url,
                table,
                replace,
            } => {
                let options = crate::db::TargetOptions {
                    replace: *replace,
                    // The source's own types when it is the same kind of
                    // database; else types from the Arrow schema.
                    columns: _opened
                        .columns
                        .as_ref()
                        .filter(|(scheme, _)| *scheme == url.scheme())
                        .map(|(_, c)| c.clone()),
                    primary_key: _key.to_vec(),
                };
                crate::db::Target::create(url, table, schema, &options)
                    .map(Self::Database)
                    .map_err(Error::Database)
            }
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Self::File(out) => out.write(batch).map_err(Error::Output),
            #[cfg(feature = "db")]
            Self::Database(t) => t.write(batch).map_err(Error::Database),
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            Self::File(out) => out.finish().map_err(Error::Output),
            #[cfg(feature = "db")]
            Self::Database(t) => t.finish().map(|_| ()).map_err(Error::Database),
        }
    }
}

/// Which columns a file job uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    /// The primary-key columns, in key order.
    pub key: Vec<String>,
    /// The columns to mark or read; `None` for every non-key column of a
    /// markable type except dates.
    pub marked: Option<Vec<String>>,
    /// The owner's rules for columns; extraction must use the embed's.
    pub rules: ColumnRules,
    /// Whether `key` is a virtual key: attributes that a leak without the
    /// real key column still has, hashed normalised
    /// ([`BatchPlan::use_virtual_key`]); extraction must use the embed's.
    pub virtual_key: bool,
    /// Whether dates and times in the key are hashed as builds before
    /// December 2026 hashed them ([`BatchPlan::use_legacy_time_keys`]):
    /// only to read a copy made then.
    pub legacy_time_keys: bool,
    /// A virtual key to read a source from when it lacks one of `key`'s
    /// columns (or no key is named and the source declares none): a leak
    /// that dropped the key column, read against a registry whose copies
    /// were marked from this virtual key. Meant for extraction; ignored
    /// when `virtual_key` is already set. [`ExtractSummary::virtual_key_sources`]
    /// names the sources read this way.
    pub virtual_key_fallback: Option<Vec<String>>,
}

impl Columns {
    /// Key columns `key`, default marked columns.
    pub fn with_key<S: Into<String>>(key: impl IntoIterator<Item = S>) -> Self {
        Self {
            key: key.into_iter().map(Into::into).collect(),
            marked: None,
            rules: ColumnRules::new(),
            virtual_key: false,
            legacy_time_keys: false,
            virtual_key_fallback: None,
        }
    }

    /// Virtual-key columns `key` ([`Columns::virtual_key`]), default
    /// marked columns.
    pub fn with_virtual_key<S: Into<String>>(key: impl IntoIterator<Item = S>) -> Self {
        Self {
            virtual_key: true,
            ..Self::with_key(key)
        }
    }
}

/// A reader that first replays the batches a plan was profiled from, then
/// goes on with the rest of the input.
struct Replay {
    schema: SchemaRef,
    head: std::vec::IntoIter<RecordBatch>,
    rest: Box<dyn RecordBatchReader + Send>,
}

impl Iterator for Replay {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.head.next().map(Ok).or_else(|| self.rest.next())
    }
}

impl RecordBatchReader for Replay {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// The plan of `input`'s columns, from the profile of its first batches (up
/// to [`adapter::PROFILE_ROWS`] rows, read once and put back in front of the
/// rest); the same for embedding and extraction, so that a leak is read in
/// the columns its copy was marked in.
fn plan(
    mut input: Input,
    path: &Path,
    columns: &Columns,
    opened: &Opened,
    need_marked: bool,
) -> Result<(BatchPlan, Input)> {
    let key: Vec<&str> = columns.key.iter().map(String::as_str).collect();
    let marked: Option<Vec<&str>> = columns
        .marked
        .as_ref()
        .map(|c| c.iter().map(String::as_str).collect());
    let schema = input.reader.schema();
    let mut head = Vec::new();
    let mut rows = 0;
    while rows < adapter::PROFILE_ROWS {
        match input.reader.next() {
            Some(batch) => {
                let batch = batch.map_err(|e| input_error(path, e))?;
                rows += batch.num_rows();
                head.push(batch);
            }
            None => break,
        }
    }
    let mut plan =
        BatchPlan::profiled_or_unmarked(&schema, &key, marked.as_deref(), &columns.rules, &head)
            .map_err(columns_error(path))?;
    for (name, reason) in passed_through(opened, columns) {
        plan.leave_alone(&name, &reason);
    }
    if columns.virtual_key {
        plan.use_virtual_key();
    }
    if columns.legacy_time_keys {
        plan.use_legacy_time_keys();
    }
    if need_marked {
        plan.require_marked().map_err(columns_error(path))?;
    }
    input.reader = Box::new(Replay {
        schema,
        head: head.into_iter(),
        rest: input.reader,
    });
    Ok((plan, input))
}

/// Whether `path` (in format `named`, else by its extension) is CSV.
fn is_csv(path: &Path, named: Option<files::Format>) -> bool {
    files::Format::of(path, named).ok() == Some(files::Format::Csv)
}

/// What embedding a file would do, measured on its first batches without
/// writing anything: see [`plan_file`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FilePlan {
    /// The plan of the file's columns.
    pub plan: BatchPlan,
    /// Rows of the file, when its format records them or a quick count
    /// found them.
    pub rows: Option<usize>,
    /// The density the embed would use.
    pub density: Density,
    /// Rows the plan was measured on.
    pub sample_rows: usize,
    /// What marking those rows did, per marked column.
    pub sample: Vec<(String, ColumnReport)>,
    /// A virtual key for leaks without the key column, from those rows
    /// ([`BatchPlan::suggest_virtual_key`]).
    pub virtual_key: Option<adapter::VirtualKeySuggestion>,
}

impl FilePlan {
    /// Cells of `column` an embed of the whole file would change: the
    /// changes measured on the sample, scaled to the file's rows.
    pub fn expected_changes(&self, report: &ColumnReport) -> f64 {
        let rows = self.rows.unwrap_or(self.sample_rows) as f64;
        report.changed as f64 * rows / self.sample_rows.max(1) as f64
    }
}

/// The plan `dbwm embed` would follow for the file at `path` written in
/// its own format (a CSV read as exact text, as a CSV-to-CSV embed reads
/// it), with the changes marking `content` makes in its first batches (the
/// rows the plan was profiled from); nothing is written.
///
/// # Errors
///
/// [`Error::Input`] or [`Error::Columns`] naming the file.
pub fn plan_file(
    wm: &Watermarker,
    path: &Path,
    content: &str,
    columns: &Columns,
    read: &ReadOptions,
) -> Result<FilePlan> {
    plan_source(wm, &SourceRef::File(path), content, columns, read)
}

/// [`plan_file`] for a file or a database table: what `dbwm embed` would
/// do with `source`, measured on its first rows; nothing is written.
///
/// # Errors
///
/// As [`plan_file`], and [`Error::Database`].
pub fn plan_source(
    wm: &Watermarker,
    source: &SourceRef<'_>,
    content: &str,
    columns: &Columns,
    read: &ReadOptions,
) -> Result<FilePlan> {
    let payload = wm.payload(content)?;
    let label = source.label();
    let path = label.as_path();
    // As an embed into the same format reads it: a CSV copy keeps every
    // cell's exact text, so numbers are planned as text.
    let read = &ReadOptions {
        exact_text: read.exact_text || source.path().is_some_and(|p| is_csv(p, read.format)),
        ..read.clone()
    };
    let Planned {
        plan, mut input, ..
    } = open_planned(source, read, columns)?;
    let rows = input.rows;
    let wm = &wm.for_columns(plan.marked_names().len());
    let density = wm.density_for_columns(rows, &payload, plan.marked_names().len());
    let mut sample = vec![ColumnReport::default(); plan.marked_names().len()];
    let mut sample_rows = 0;
    let mut head = Vec::new();
    while sample_rows < adapter::PROFILE_ROWS {
        let Some(batch) = input.reader.next() else {
            break;
        };
        let batch = batch.map_err(|e| input_error(path, e))?;
        let (_, reports) = wm
            .embed_batch(&batch, &plan, &payload, density)
            .map_err(columns_error(path))?;
        for (total, r) in sample.iter_mut().zip(&reports) {
            total.merge(r);
        }
        sample_rows += batch.num_rows();
        head.push(batch);
    }
    Ok(FilePlan {
        virtual_key: plan.suggest_virtual_key(&head),
        sample: plan.marked_names().into_iter().zip(sample).collect(),
        plan,
        rows,
        density,
        sample_rows,
    })
}

/// A file to watermark.
#[derive(Debug, Clone, Copy)]
pub struct EmbedJob<'a> {
    /// The input file.
    pub input: &'a Path,
    /// The output file; replaced only once complete.
    pub output: &'a Path,
    /// The watermark content, 1 to 64 bytes.
    pub content: &'a str,
    /// The key and marked columns.
    pub columns: &'a Columns,
    /// How to read the input.
    pub read: &'a ReadOptions,
    /// How to write the output.
    pub write: &'a WriteOptions,
}

/// Watermarks `job.input` into `job.output` with `job.content`, batch by
/// batch. `progress` is called with the rows done (and the total, when
/// known) after each batch. The output keeps the input's schema (and
/// Parquet compression); it replaces the target only once complete.
///
/// # Errors
///
/// [`Error::Input`], [`Error::Columns`], [`Error::Setting`] for caller
/// errors, [`Error::Output`] if writing fails.
pub fn embed_file(
    wm: &Watermarker,
    job: &EmbedJob<'_>,
    progress: &mut dyn FnMut(usize, Option<usize>),
) -> Result<EmbedSummary> {
    let job = Job {
        mode: EmbedMode::Cells,
        source: SourceRef::File(job.input),
        sink: SinkRef::File(job.output),
        content: job.content,
        columns: job.columns,
        read: job.read,
        write: job.write,
    };
    embed(wm, &job, progress)
}

/// Where a job puts the mark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmbedMode<'a> {
    /// In real cells, as planned (the default).
    #[default]
    Cells,
    /// In one added column, `name`, whose values look like `format` and
    /// are a keyed function of each row's key and a payload bit: no real
    /// cell changes. Deleting the column deletes the mark; it is meant for
    /// tables where no value may change.
    PseudoColumn {
        /// The added column's name (not one of the table's).
        name: &'a str,
        /// How its values look.
        format: crate::PseudoFormat,
    },
    /// In fabricated rows added to the copy, about one per `spacing` real
    /// rows, each after the real row it was drawn near: no real cell
    /// changes. The source is read twice (first for its keys, so that no
    /// fabricated row takes one). A leaker who can tell the fabricated
    /// rows from real ones can delete them.
    PseudoRows {
        /// About one fabricated row per this many real rows.
        spacing: u32,
    },
}

/// A watermarking job between files and database tables, in any
/// combination.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// Where the rows come from.
    pub source: SourceRef<'a>,
    /// Where the marked copy goes.
    pub sink: SinkRef<'a>,
    /// The watermark content, 1 to 64 bytes.
    pub content: &'a str,
    /// The key and marked columns; an empty key means the source table's
    /// primary key.
    pub columns: &'a Columns,
    /// How to read a file input (and the batch size of a database input).
    pub read: &'a ReadOptions,
    /// How to write a file output.
    pub write: &'a WriteOptions,
    /// Where the mark goes.
    pub mode: EmbedMode<'a>,
}

/// Watermarks `job.source` into `job.sink`, batch by batch, as
/// [`embed_file`] does for files. A database target is created inside one
/// transaction with the source's column types (or types from the Arrow
/// schema), NULL constraints and primary key, and appears only when
/// complete.
///
/// # Errors
///
/// As [`embed_file`], and [`Error::Database`] naming the table, column
/// and row.
pub fn embed(
    wm: &Watermarker,
    job: &Job<'_>,
    progress: &mut dyn FnMut(usize, Option<usize>),
) -> Result<EmbedSummary> {
    embed_until(wm, job, progress, &|| false)
}

/// [`embed`], asking `stop` before each batch: once it answers true the
/// job ends with [`Error::Stopped`] and nothing is written (a file output
/// is never moved into place, a table never committed). For a job that a
/// server may cancel or shut down.
///
/// # Errors
///
/// As [`embed`], and [`Error::Stopped`].
pub fn embed_until(
    wm: &Watermarker,
    job: &Job<'_>,
    progress: &mut dyn FnMut(usize, Option<usize>),
    stop: &dyn Fn() -> bool,
) -> Result<EmbedSummary> {
    let payload = wm.payload(job.content)?;
    let label = job.source.label();
    // CSV to CSV keeps every cell's exact text: numbers are read as text
    // and marked as numbers at the scale their text has.
    let csv_to_csv = match (job.source.path(), job.sink) {
        (Some(input), SinkRef::File(output)) => {
            is_csv(input, job.read.format) && is_csv(output, job.write.format)
        }
        _ => false,
    };
    let read = &ReadOptions {
        exact_text: job.read.exact_text || csv_to_csv,
        ..job.read.clone()
    };
    match job.mode {
        EmbedMode::PseudoColumn { name, format } => {
            return embed_pseudo_column(wm, job, read, &payload, name, format, progress, stop);
        }
        EmbedMode::PseudoRows { spacing } => {
            return embed_pseudo_rows(wm, job, read, &payload, spacing, progress, stop);
        }
        EmbedMode::Cells => {}
    }
    let Planned {
        plan,
        input: source,
        opened,
        columns,
    } = open_planned(&job.source, read, job.columns)?;
    let wm = &wm.for_columns(plan.marked_names().len());
    let density = wm.density_for_columns(source.rows, &payload, plan.marked_names().len());
    let write = write_options(job, &source);
    let total = source.rows;
    let mut sink = Sink::create(&job.sink, plan.schema(), &write, &columns.key, &opened)?;
    let mut rows = 0;
    // The stream marks a batch when it is asked for the next one, and the
    // batch is written before the following one is read.
    let mut stream = wm.embed_stream(source.reader, &plan, &payload, density);
    for marked in stream.by_ref() {
        if stop() {
            return Err(Error::Stopped);
        }
        let marked = marked.map_err(|e| match e {
            adapter::Error::Input(e) => input_error(&label, e),
            other => columns_error(&label)(other),
        })?;
        sink.write(&marked)?;
        rows += marked.num_rows();
        progress(rows, total);
    }
    let reports = stream.reports().to_vec();
    finish_unless_stopped(sink, stop)?;
    Ok(EmbedSummary::cells(&plan, density, reports, rows))
}

/// The job's write options; a Parquet output keeps a Parquet input's
/// compression unless the job names one.
fn write_options(job: &Job<'_>, source: &Input) -> WriteOptions {
    #[allow(unused_mut)]
    let mut write = job.write.clone();
    #[cfg(feature = "parquet")]
    if write.parquet_compression.is_none() {
        write.parquet_compression = source.parquet_compression;
    }
    let _ = source;
    write
}

/// [`embed_until`] in [`EmbedMode::PseudoColumn`]: every batch as it is,
/// plus the column `name`.
#[allow(clippy::too_many_arguments)]
fn embed_pseudo_column(
    wm: &Watermarker,
    job: &Job<'_>,
    read: &ReadOptions,
    payload: &crate::Payload,
    name: &str,
    format: crate::PseudoFormat,
    progress: &mut dyn FnMut(usize, Option<usize>),
    stop: &dyn Fn() -> bool,
) -> Result<EmbedSummary> {
    let label = job.source.label();
    let Planned {
        plan,
        input: source,
        opened,
        columns,
    } = open_planned_for(&job.source, read, job.columns, false)?;
    let out_schema = adapter::pseudo_column_schema(plan.schema(), name, format)
        .map_err(columns_error(&label))?;
    let write = write_options(job, &source);
    let total = source.rows;
    let mut sink = Sink::create(&job.sink, &out_schema, &write, &columns.key, &opened)?;
    let mut report = crate::ColumnReport::default();
    for batch in batches(source.reader, &label, stop) {
        let out = wm
            .with_pseudo_column(&batch?, &plan, payload, format, &out_schema, &mut report)
            .map_err(columns_error(&label))?;
        sink.write(&out)?;
        progress(report.rows, total);
    }
    finish_unless_stopped(sink, stop)?;
    Ok(EmbedSummary {
        rows: report.rows,
        columns: vec![(name.to_owned(), report)],
        pseudo_column: Some(name.to_owned()),
        ..EmbedSummary::lossless(&plan, crate::pseudo_column_fingerprint(name, format))
    })
}

/// [`embed_until`] in [`EmbedMode::PseudoRows`]: a first pass for the
/// keys, then the source's batches, cut to
/// [`PSEUDO_ROW_BATCH`](adapter::PSEUDO_ROW_BATCH) rows,
/// with fabricated rows among their rows.
#[allow(clippy::too_many_arguments)]
fn embed_pseudo_rows(
    wm: &Watermarker,
    job: &Job<'_>,
    read: &ReadOptions,
    payload: &crate::Payload,
    spacing: u32,
    progress: &mut dyn FnMut(usize, Option<usize>),
    stop: &dyn Fn() -> bool,
) -> Result<EmbedSummary> {
    let label = job.source.label();
    let Planned {
        plan,
        input: first,
        opened,
        columns,
    } = open_planned_for(&job.source, read, job.columns, false)?;
    let mut rows = crate::arrow::PseudoRows::new(&plan, spacing).map_err(columns_error(&label))?;
    let total = first.rows;
    let mut seen = 0;
    for batch in batches(first.reader, &label, stop) {
        let batch = batch?;
        rows.observe(&batch, &plan).map_err(columns_error(&label))?;
        seen += batch.num_rows();
    }
    // The second pass reads the source again, as the first did.
    let (source, _) = open_source(&job.source, read)?;
    if source.reader.schema().fields() != plan.schema().fields() {
        return Err(Error::Job(format!(
            "{}: the source's columns changed between the two passes of --mode pseudo-rows",
            label.display()
        )));
    }
    let write = write_options(job, &source);
    let mut sink = Sink::create(&job.sink, plan.schema(), &write, &columns.key, &opened)?;
    let mut done = 0;
    // Rows are drawn among PSEUDO_ROW_BATCH at a time, however they were read.
    let mut joiner = adapter::BatchJoiner::new(adapter::PSEUDO_ROW_BATCH);
    let input = batches(source.reader, &label, stop).map(Some);
    for next in input.chain(std::iter::once(None)) {
        let joined = match next {
            Some(batch) => joiner.push(batch?),
            None => joiner.flush().map(|rest| rest.into_iter().collect()),
        };
        for batch in joined.map_err(|e| input_error(&label, e))? {
            let out = wm
                .add_pseudo_rows(&batch, &plan, payload, &mut rows)
                .map_err(columns_error(&label))?;
            sink.write(&out)?;
            done += batch.num_rows();
            progress(done, total);
        }
    }
    if done != seen {
        return Err(Error::Job(format!(
            "{}: the source changed between the two passes of --mode pseudo-rows ({seen} rows, then {done})",
            label.display()
        )));
    }
    finish_unless_stopped(sink, stop)?;
    let report = rows.report();
    Ok(EmbedSummary {
        rows: report.real_rows + report.added,
        pseudo_rows: Some(report),
        ..EmbedSummary::lossless(&plan, crate::pseudo_rows_fingerprint(spacing))
    })
}

/// A watermark found in files.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FoundIn {
    /// The watermark content.
    pub content: String,
    /// The columns that carry it.
    pub columns: Vec<String>,
    /// The pooled evidence of those columns.
    pub evidence: Evidence,
}

/// What [`extract_files`] found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExtractSummary {
    /// Rows read, over all files.
    pub rows: usize,
    /// Every watermark found, strongest evidence first.
    pub found: Vec<FoundIn>,
    /// Votes read per column (by name, over all files).
    pub votes: Vec<(String, u64)>,
    /// The test against the candidates, when some were given.
    pub identification: Option<Identification>,
    /// The key columns that hold dates or times
    /// ([`BatchPlan::time_key_columns`](crate::arrow::BatchPlan::time_key_columns)),
    /// over all sources: where a copy made before December 2026 hashed its
    /// key otherwise ([`Columns::legacy_time_keys`]).
    pub time_keys: Vec<String>,
    /// The sources read from [`Columns::virtual_key_fallback`] because
    /// they lack a key column.
    pub virtual_key_sources: Vec<PathBuf>,
}

/// Extracts the watermarks of one or more files, merging the votes of
/// same-named columns across files; memory holds one batch and one tally per
/// column.
///
/// # Errors
///
/// [`Error::Input`] or [`Error::Columns`] naming the file.
pub fn extract_files(
    wm: &Watermarker,
    paths: &[PathBuf],
    columns: &Columns,
    read: &ReadOptions,
    progress: &mut dyn FnMut(usize, Option<usize>),
) -> Result<ExtractSummary> {
    extract_files_against(wm, paths, columns, read, None, progress)
}

/// [`extract_files`], and when `candidates` are given, the test of the
/// pooled votes against them ([`Watermarker::identify`]) in
/// [`ExtractSummary::identification`].
///
/// # Errors
///
/// As [`extract_files`].
pub fn extract_files_against(
    wm: &Watermarker,
    paths: &[PathBuf],
    columns: &Columns,
    read: &ReadOptions,
    candidates: Option<&Candidates>,
    progress: &mut dyn FnMut(usize, Option<usize>),
) -> Result<ExtractSummary> {
    let sources: Vec<SourceRef<'_>> = paths.iter().map(|p| SourceRef::File(p)).collect();
    extract_against(wm, &sources, columns, read, candidates, progress)
}

/// [`extract_files_against`] over files and database tables; an empty key
/// in `columns` means each table's primary key.
///
/// # Errors
///
/// As [`extract_files`], and [`Error::Database`].
pub fn extract_against(
    wm: &Watermarker,
    sources: &[SourceRef<'_>],
    columns: &Columns,
    read: &ReadOptions,
    candidates: Option<&Candidates>,
    progress: &mut dyn FnMut(usize, Option<usize>),
) -> Result<ExtractSummary> {
    let mut all = TableTally::new(wm);
    // Pseudo-rows are counted over every source: what was recognised, and
    // the votes of those rows.
    let mut pseudo_rows = (crate::arrow::PseudoRowMatch::default(), crate::Tally::new());
    let mut time_keys = Vec::new();
    let mut virtual_key_sources = Vec::new();
    for place in sources {
        let label = place.label();
        let path = label.as_path();
        let Planned {
            plan,
            input: source,
            columns: used,
            ..
        } = open_planned_for(place, read, columns, false)?;
        if used.virtual_key && !columns.virtual_key {
            virtual_key_sources.push(label.clone());
        }
        let total = source.rows;
        let done = all.rows() as usize;
        let mut leak = adapter::LeakTally::new(wm, &plan);
        for batch in source.reader {
            let batch = batch.map_err(|e| input_error(path, e))?;
            if leak.rows() == 0 {
                for name in plan.time_key_columns(&batch) {
                    if !time_keys.contains(&name) {
                        time_keys.push(name);
                    }
                }
            }
            leak.add(&batch).map_err(columns_error(path))?;
            progress(done + leak.rows(), total.map(|t| done + t));
        }
        leak.require_found().map_err(columns_error(path))?;
        let (found, votes) = leak.finish(&mut all);
        pseudo_rows.0.merge(&found);
        pseudo_rows.1.merge(&votes);
    }
    // Only when more rows were recognised than chance gives: else the
    // votes are those of real rows recognised by chance, fair coins.
    if pseudo_rows.0.is_present() {
        all.add(crate::PSEUDO_ROWS, pseudo_rows.1);
    }
    let mut summary = summarize(wm, &all, candidates).expect("tallied under wm's key");
    summary.time_keys = time_keys;
    summary.virtual_key_sources = virtual_key_sources;
    Ok(summary)
}

/// What a table's tally (merged from any partitioning of its rows) says:
/// the watermarks decoded, the votes per column and, when `candidates`
/// are given, the test against them; the same summary as
/// [`extract_files_against`] gives for the same rows.
///
/// # Errors
///
/// [`TallyError::KeyMismatch`](crate::TallyError::KeyMismatch) when the
/// tally was made with another key.
pub fn summarize(
    wm: &Watermarker,
    tally: &TableTally,
    candidates: Option<&Candidates>,
) -> std::result::Result<ExtractSummary, crate::TallyError> {
    let names: Vec<&str> = tally.columns().iter().map(|(n, _)| n.as_str()).collect();
    let found = tally
        .decode(wm)?
        .into_iter()
        .map(|f| FoundIn {
            content: f.content,
            columns: f.columns.iter().map(|&i| names[i].to_owned()).collect(),
            evidence: f.evidence,
        })
        .collect();
    let identification = candidates.map(|c| tally.identify(wm, c)).transpose()?;
    Ok(ExtractSummary {
        rows: tally.rows() as usize,
        found,
        votes: tally
            .columns()
            .iter()
            .map(|(n, t)| (n.clone(), t.votes()))
            .collect(),
        identification,
        time_keys: Vec::new(),
        virtual_key_sources: Vec::new(),
    })
}
