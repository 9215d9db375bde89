//! `dbwatermark._native`: the engine for Python. The public API is the
//! Python package `dbwatermark` (python/dbwatermark/), which wraps these
//! classes; this module does the work, without the GIL, on Arrow data
//! received through the Arrow C stream interface (no copy of the columns).

use std::fmt::Display;

use arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow_pyarrow::{FromPyArrow, IntoPyArrow};
use arrow_schema::{ArrowError, SchemaRef};
use dbwatermark::arrow::{
    self as adapter, BatchJoiner, BatchPlan, LeakTally, PROFILE_ROWS, PSEUDO_ROW_BATCH, PseudoRows,
};
use dbwatermark::pipeline::EmbedSummary;
use dbwatermark::registry::{Issued, Record};
use dbwatermark::report::{ExtractReport, SharedPlan, SharedPlanError};
use dbwatermark::{
    ColumnReport, ColumnRules, Config, Density, Payload, PseudoFormat, TableTally, TallyError,
    WatermarkKey, Watermarker, pipeline,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};

type Reader = Box<dyn RecordBatchReader + Send>;

/// An exception of `dbwatermark._errors` (`class`), with `message`.
fn error(py: Python<'_>, class: &str, message: impl Display) -> PyErr {
    let ty = py
        .import("dbwatermark._errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match ty {
        Ok(ty) => PyErr::from_type(ty, message.to_string()),
        Err(e) => e,
    }
}

fn invalid(py: Python<'_>, message: impl Display) -> PyErr {
    error(py, "InvalidInputError", message)
}

fn adapter_error(py: Python<'_>, e: adapter::Error) -> PyErr {
    match e {
        adapter::Error::NothingToMark(_) => error(py, "NothingToMarkError", e),
        other => invalid(py, other),
    }
}

fn tally_error(py: Python<'_>, e: TallyError) -> PyErr {
    match e {
        TallyError::KeyMismatch { .. } => error(py, "KeyMismatchError", e),
        other => error(py, "TallyFormatError", other),
    }
}

fn plan_error(py: Python<'_>, e: SharedPlanError) -> PyErr {
    match e {
        SharedPlanError::Columns(e) => adapter_error(py, e),
        other => error(py, "PlanError", other),
    }
}

/// The input as a stream of batches: anything with `__arrow_c_stream__`
/// (pyarrow tables and readers, Polars and pandas frames), else
/// `__arrow_c_array__` (a record batch).
fn reader(data: &Bound<'_, PyAny>) -> PyResult<Reader> {
    if data.hasattr("__arrow_c_stream__")? {
        let stream = arrow_array::ffi_stream::RecordBatchStreamReader::from_pyarrow_bound(data)?;
        return Ok(Box::new(stream));
    }
    if data.hasattr("__arrow_c_array__")? {
        let batch = RecordBatch::from_pyarrow_bound(data)?;
        let schema = batch.schema();
        return Ok(Box::new(RecordBatchIterator::new([Ok(batch)], schema)));
    }
    Err(PyTypeError::new_err(format!(
        "expected Arrow data (an object with __arrow_c_stream__ or __arrow_c_array__, \
         such as a pyarrow Table, RecordBatch or RecordBatchReader, or a Polars or pandas \
         DataFrame), got {}",
        data.get_type().name()?
    )))
}

/// The owner's rules from `(column, setting, value)` triples.
fn rules(py: Python<'_>, triples: &[(String, String, String)]) -> PyResult<ColumnRules> {
    let mut rules = ColumnRules::new();
    for (column, setting, value) in triples {
        rules
            .entry(column)
            .set(setting, value)
            .map_err(|e| invalid(py, e.in_column(column)))?;
    }
    Ok(rules)
}

/// Which columns a call uses: the key, the columns to mark or read
/// (`None`: as the plan finds), and the owner's rules.
#[pyclass(module = "dbwatermark._native", frozen)]
struct Columns {
    key: Vec<String>,
    marked: Option<Vec<String>>,
    rules: ColumnRules,
    virtual_key: bool,
}

#[pymethods]
impl Columns {
    #[new]
    #[pyo3(signature = (pk, columns, rules, virtual_key = false))]
    fn new(
        py: Python<'_>,
        pk: Vec<String>,
        columns: Option<Vec<String>>,
        rules: Vec<(String, String, String)>,
        virtual_key: bool,
    ) -> PyResult<Self> {
        Ok(Self {
            key: pk,
            marked: columns,
            rules: self::rules(py, &rules)?,
            virtual_key,
        })
    }
}

/// A stream whose first batches were read to make a plan, then put back.
struct Planned {
    schema: SchemaRef,
    head: std::vec::IntoIter<RecordBatch>,
    rest: Reader,
    plan: BatchPlan,
}

impl Iterator for Planned {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.head.next().map(Ok).or_else(|| self.rest.next())
    }
}

/// What went wrong while planning, before Python can be told.
enum Failure {
    Input(ArrowError),
    Columns(adapter::Error),
    Plan(SharedPlanError),
}

impl Failure {
    /// As a stream's error.
    fn into_arrow(self) -> ArrowError {
        match self {
            Self::Input(e) => e,
            Self::Columns(e) => ArrowError::ExternalError(Box::new(e)),
            Self::Plan(e) => ArrowError::ExternalError(Box::new(e)),
        }
    }

    fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            Self::Input(e) => invalid(py, format!("cannot read the input: {e}")),
            Self::Columns(e) => adapter_error(py, e),
            Self::Plan(e) => plan_error(py, e),
        }
    }
}

/// Plans `input`: with `shared`, its plan; else the profile of the first
/// [`PROFILE_ROWS`] rows, exactly as `dbwm embed` and `dbwm extract` plan
/// a file.
fn plan(
    mut input: Reader,
    columns: &Columns,
    shared: Option<&SharedPlan>,
    need_marked: bool,
) -> Result<Planned, Failure> {
    let schema = input.schema();
    let mut head = Vec::new();
    let plan = match shared {
        // Marking or not, checked below.
        Some(shared) => shared
            .batch_plan_for_reading(&schema)
            .map_err(Failure::Plan)?,
        None => {
            let mut rows = 0;
            while rows < PROFILE_ROWS {
                match input.next() {
                    Some(batch) => {
                        let batch = batch.map_err(Failure::Input)?;
                        rows += batch.num_rows();
                        head.push(batch);
                    }
                    None => break,
                }
            }
            let key: Vec<&str> = columns.key.iter().map(String::as_str).collect();
            let marked: Option<Vec<&str>> = columns
                .marked
                .as_ref()
                .map(|c| c.iter().map(String::as_str).collect());
            let mut plan = BatchPlan::profiled_or_unmarked(
                &schema,
                &key,
                marked.as_deref(),
                &columns.rules,
                &head,
            )
            .map_err(Failure::Columns)?;
            if columns.virtual_key {
                plan.use_virtual_key();
            }
            plan
        }
    };
    if need_marked {
        plan.require_marked().map_err(Failure::Columns)?;
    }
    Ok(Planned {
        schema,
        head: head.into_iter(),
        rest: input,
        plan,
    })
}

/// A stream that marks each batch as it is read.
struct Marking {
    wm: Watermarker,
    input: Planned,
    payload: Payload,
    density: Density,
    /// Per marked column, what was marked so far.
    reports: Vec<ColumnReport>,
}

impl Marking {
    /// The next batch, marked.
    fn next_marked(&mut self) -> Option<Result<RecordBatch, Failure>> {
        let batch = match self.input.next()? {
            Ok(batch) => batch,
            Err(e) => return Some(Err(Failure::Input(e))),
        };
        let marked = self
            .wm
            .embed_batch(&batch, &self.input.plan, &self.payload, self.density);
        Some(marked.map_err(Failure::Columns).map(|(batch, reports)| {
            for (all, one) in self.reports.iter_mut().zip(&reports) {
                all.merge(one);
            }
            batch
        }))
    }
}

impl Marking {
    fn new(wm: &Watermarker, input: Planned, payload: Payload, density: Density) -> Self {
        let marked = input.plan.marked_names().len();
        Self {
            wm: wm.for_columns(marked),
            input,
            payload,
            density,
            reports: vec![ColumnReport::default(); marked],
        }
    }
}

impl Iterator for Marking {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_marked()?.map_err(Failure::into_arrow))
    }
}

impl RecordBatchReader for Marking {
    fn schema(&self) -> SchemaRef {
        self.input.schema.clone()
    }
}

/// What an embed did, for Python as the JSON of a dict: the rows written,
/// the density and plan fingerprint (as the registry records them), per
/// marked column the cells marked and changed, the columns left alone, and
/// what a lossless mode added.
fn summary_json(summary: &EmbedSummary) -> String {
    let columns: Vec<serde_json::Value> = (summary.columns.iter())
        .map(|(name, r)| {
            serde_json::json!({
                "name": name,
                "cells_marked": r.marked,
                "cells_changed": r.changed,
                "max_abs_change": r.max_abs_change,
            })
        })
        .collect();
    let mut report = serde_json::json!({
        "rows": summary.rows,
        "density": summary.density.to_string(),
        "plan_fingerprint": summary.plan_fingerprint,
        "columns": columns,
        "skipped": summary.skipped,
        "real_cells_changed": summary.columns.iter().map(|(_, r)| r.changed).sum::<usize>(),
    });
    if let Some(r) = &summary.pseudo_rows {
        report["pseudo_rows"] = serde_json::json!({
            "spacing": r.spacing,
            "real_rows": r.real_rows,
            "added": r.added,
            "skipped_places": r.skipped,
            "outside_range": r.outside_range,
            "values": r.cells,
            "carrying": r.carrying,
        });
        if let Some(warning) = r.warning() {
            report["warning"] = serde_json::json!(warning);
        }
    }
    if let Some(name) = &summary.pseudo_column {
        report["pseudo_column"] = serde_json::json!(name);
    }
    report.to_string()
}

/// An embed's batches, their schema and its report.
type Made = (Vec<RecordBatch>, SchemaRef, EmbedSummary);

/// `(pyarrow.Table, report JSON)` for Python, or the error that stopped
/// the embed.
fn table_and_report(py: Python<'_>, made: Result<Made, Failure>) -> PyResult<Bound<'_, PyAny>> {
    let (batches, schema, summary) = made.map_err(|f| f.into_py(py))?;
    let table = arrow_pyarrow::Table::try_new(batches, schema)
        .map_err(|e| invalid(py, e))?
        .into_pyarrow(py)?;
    (table, summary_json(&summary))
        .into_pyobject(py)
        .map(Bound::into_any)
}

/// The pseudo-column format named `name`.
fn pseudo_format(py: Python<'_>, name: &str) -> PyResult<PseudoFormat> {
    PseudoFormat::parse(name).ok_or_else(|| {
        let known: Vec<&str> = PseudoFormat::ALL.iter().map(|(n, _)| *n).collect();
        invalid(
            py,
            format!("unknown pseudo-column format `{name}`; known: {known:?}"),
        )
    })
}

/// A stream that adds the pseudo-column to each batch as it is read.
struct PseudoColumnStream {
    wm: Watermarker,
    input: Planned,
    payload: Payload,
    format: PseudoFormat,
    /// The input's schema with the pseudo-column added.
    schema: SchemaRef,
    /// The rows the added column carries.
    report: ColumnReport,
}

impl PseudoColumnStream {
    fn next_batch(&mut self) -> Option<Result<RecordBatch, Failure>> {
        let batch = match self.input.next()? {
            Ok(batch) => batch,
            Err(e) => return Some(Err(Failure::Input(e))),
        };
        let out = self.wm.with_pseudo_column(
            &batch,
            &self.input.plan,
            &self.payload,
            self.format,
            &self.schema,
            &mut self.report,
        );
        Some(out.map_err(Failure::Columns))
    }
}

impl Iterator for PseudoColumnStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_batch()?.map_err(Failure::into_arrow))
    }
}

impl RecordBatchReader for PseudoColumnStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// The prepared key and settings. Its `repr` shows the key's public
/// fingerprint, never the key.
#[pyclass(module = "dbwatermark._native", frozen)]
struct Engine {
    wm: Watermarker,
}

impl Engine {
    /// The stream of `input`'s batches with the pseudo-column `name` added
    /// (planned now, from its first batches).
    fn pseudo_column_stream(
        &self,
        input: Reader,
        columns: &Columns,
        shared: Option<&SharedPlan>,
        payload: Payload,
        name: &str,
        format: PseudoFormat,
    ) -> Result<PseudoColumnStream, Failure> {
        let input = plan(input, columns, shared, false)?;
        let schema =
            adapter::pseudo_column_schema(&input.schema, name, format).map_err(Failure::Columns)?;
        Ok(PseudoColumnStream {
            wm: self.wm.clone(),
            input,
            payload,
            format,
            schema,
            report: ColumnReport::default(),
        })
    }

    fn payload(&self, py: Python<'_>, content: &str) -> PyResult<Payload> {
        self.wm.payload(content).map_err(|e| invalid(py, e))
    }

    fn density(
        &self,
        shared: Option<&SharedPlan>,
        rows: Option<usize>,
        payload: &Payload,
        plan: &BatchPlan,
    ) -> PyResult<Density> {
        match shared {
            Some(s) => s
                .density()
                .map_err(|e| PyErr::new::<PyTypeError, _>(e.to_string())),
            None => Ok(self
                .wm
                .density_for_columns(rows, payload, plan.marked_names().len())),
        }
    }
}

#[pymethods]
impl Engine {
    #[new]
    fn new(py: Python<'_>, secret: &str) -> PyResult<Self> {
        let key = WatermarkKey::new(secret).map_err(|e| invalid(py, e))?;
        Ok(Self {
            wm: Watermarker::new(key, Config::default()),
        })
    }

    /// The same key, with automatic densities made dense enough to trace
    /// a leak of `rows` rows (`None`: by the table's size only).
    #[pyo3(signature = (rows))]
    fn with_trace_rows(&self, py: Python<'_>, rows: Option<usize>) -> PyResult<Self> {
        let mut config = Config::builder();
        if let Some(rows) = rows {
            config = config.trace_rows(rows);
        }
        let config = config.build().map_err(|e| invalid(py, e))?;
        Ok(Self {
            wm: self.wm.with_config(config),
        })
    }

    /// The key's public fingerprint (16 hex digits).
    #[getter]
    fn key_fingerprint(&self) -> String {
        self.wm.key_fingerprint()
    }

    fn __repr__(&self) -> String {
        format!("Engine(key_fingerprint='{}')", self.wm.key_fingerprint())
    }

    /// The plan of `data` (read up to its first PROFILE_ROWS rows) and the
    /// density an embed of `content` into `rows` rows would use; with
    /// `need_marked` false, a plan that marks no column is no error (to
    /// read a leak whose mark is in a pseudo-column or pseudo-rows).
    #[pyo3(signature = (data, rows, content, columns, need_marked=true))]
    fn plan(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        rows: Option<usize>,
        content: &str,
        columns: &Columns,
        need_marked: bool,
    ) -> PyResult<Plan> {
        let input = reader(data)?;
        let payload = self.payload(py, content)?;
        let planned = py
            .detach(|| plan(input, columns, None, need_marked))
            .map_err(|f| f.into_py(py))?;
        let marked = planned.plan.marked_names().len();
        let density = self.wm.density_for_columns(rows, &payload, marked);
        Ok(Plan {
            shared: SharedPlan::new(&planned.plan, &columns.key, density),
        })
    }

    /// Marks every batch of `data`; returns the marked batches as a
    /// `pyarrow.Table` of the input's schema.
    #[pyo3(signature = (data, rows, content, columns, plan))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        rows: Option<usize>,
        content: &str,
        columns: &Columns,
        plan: Option<&Plan>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = reader(data)?;
        let payload = self.payload(py, content)?;
        let shared = plan.map(|p| &p.shared);
        let planned = py
            .detach(|| self::plan(input, columns, shared, true))
            .map_err(|f| f.into_py(py))?;
        let density = self.density(shared, rows, &payload, &planned.plan)?;
        let marked = py.detach(move || -> Result<Made, Failure> {
            let mut marking = Marking::new(&self.wm, planned, payload, density);
            let mut out = Vec::new();
            while let Some(batch) = marking.next_marked() {
                out.push(batch?);
            }
            let rows = out.iter().map(RecordBatch::num_rows).sum();
            let summary = EmbedSummary::cells(&marking.input.plan, density, marking.reports, rows);
            Ok((out, marking.input.schema, summary))
        });
        table_and_report(py, marked)
    }

    /// `data` with fabricated rows added, about one per `spacing` real
    /// rows (no real cell changes), read twice: first for its keys.
    #[pyo3(signature = (data, content, columns, plan, spacing))]
    fn embed_pseudo_rows<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        content: &str,
        columns: &Columns,
        plan: Option<&Plan>,
        spacing: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = reader(data)?;
        let payload = self.payload(py, content)?;
        let shared = plan.map(|p| &p.shared);
        let made = py.detach(move || -> Result<_, Failure> {
            let planned = self::plan(input, columns, shared, false)?;
            let plan = planned.plan.clone();
            let schema = planned.schema.clone();
            // Both passes need every batch: the input is held (its buffers
            // are shared with Python's, not copied).
            let input = planned
                .collect::<Result<Vec<_>, _>>()
                .map_err(Failure::Input)?;
            let mut rows = PseudoRows::new(&plan, spacing).map_err(Failure::Columns)?;
            for batch in &input {
                rows.observe(batch, &plan).map_err(Failure::Columns)?;
            }
            let mut joiner = BatchJoiner::new(PSEUDO_ROW_BATCH);
            let mut out = Vec::new();
            let ends = input.into_iter().map(Some).chain([None]);
            for next in ends {
                let joined = match next {
                    Some(batch) => joiner.push(batch),
                    None => joiner.flush().map(|rest| rest.into_iter().collect()),
                };
                for batch in joined.map_err(Failure::Input)? {
                    out.push(
                        self.wm
                            .add_pseudo_rows(&batch, &plan, &payload, &mut rows)
                            .map_err(Failure::Columns)?,
                    );
                }
            }
            let added = rows.report();
            let mut summary =
                EmbedSummary::lossless(&plan, dbwatermark::pseudo_rows_fingerprint(spacing));
            summary.rows = added.real_rows + added.added;
            summary.pseudo_rows = Some(added);
            Ok((out, schema, summary))
        });
        table_and_report(py, made)
    }

    /// `data` with the column `name` added, whose values (`format`: `code`
    /// or `token`) carry the mark (no real cell changes).
    #[pyo3(signature = (data, content, columns, plan, name, format))]
    #[allow(clippy::too_many_arguments)]
    fn embed_pseudo_column<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        content: &str,
        columns: &Columns,
        plan: Option<&Plan>,
        name: &str,
        format: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let format = pseudo_format(py, format)?;
        let input = reader(data)?;
        let payload = self.payload(py, content)?;
        let shared = plan.map(|p| &p.shared);
        let made = py.detach(move || -> Result<Made, Failure> {
            let mut stream =
                self.pseudo_column_stream(input, columns, shared, payload, name, format)?;
            let mut out = Vec::new();
            while let Some(batch) = stream.next_batch() {
                out.push(batch?);
            }
            let mut summary = EmbedSummary::lossless(
                &stream.input.plan,
                dbwatermark::pseudo_column_fingerprint(name, format),
            );
            summary.rows = stream.report.rows;
            summary.columns = vec![(name.to_owned(), stream.report)];
            summary.pseudo_column = Some(name.to_owned());
            Ok((out, stream.schema, summary))
        });
        table_and_report(py, made)
    }

    /// A `pyarrow.RecordBatchReader` of `data`'s batches, each with the
    /// column `name` added as it is read.
    #[pyo3(signature = (data, content, columns, plan, name, format))]
    #[allow(clippy::too_many_arguments)]
    fn embed_pseudo_column_batches<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        content: &str,
        columns: &Columns,
        plan: Option<&Plan>,
        name: &str,
        format: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let format = pseudo_format(py, format)?;
        let input = reader(data)?;
        let payload = self.payload(py, content)?;
        let shared = plan.map(|p| &p.shared);
        let stream = py
            .detach(|| self.pseudo_column_stream(input, columns, shared, payload, name, format))
            .map_err(|f| f.into_py(py))?;
        let stream: Reader = Box::new(stream);
        stream.into_pyarrow(py)
    }

    /// A `pyarrow.RecordBatchReader` that marks each batch of `data` as it
    /// is read (the plan is made now, from the first batches).
    #[pyo3(signature = (data, rows, content, columns, plan))]
    fn embed_batches<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        rows: Option<usize>,
        content: &str,
        columns: &Columns,
        plan: Option<&Plan>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = reader(data)?;
        let payload = self.payload(py, content)?;
        let shared = plan.map(|p| &p.shared);
        let planned = py
            .detach(|| self::plan(input, columns, shared, true))
            .map_err(|f| f.into_py(py))?;
        let density = self.density(shared, rows, &payload, &planned.plan)?;
        let marking: Reader = Box::new(Marking::new(&self.wm, planned, payload, density));
        marking.into_pyarrow(py)
    }

    /// The tally of `data`'s marked columns: with `plan`, read as it says;
    /// else planned from `data`'s own first rows.
    #[pyo3(signature = (data, columns, plan))]
    fn tally(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        columns: &Columns,
        plan: Option<&Plan>,
    ) -> PyResult<Tally> {
        let input = reader(data)?;
        let shared = plan.map(|p| &p.shared);
        let tally = py.detach(|| -> Result<_, Failure> {
            let planned = self::plan(input, columns, shared, false)?;
            let plan = planned.plan.clone();
            let mut leak = LeakTally::new(&self.wm, &plan);
            for batch in planned {
                leak.add(&batch.map_err(Failure::Input)?)
                    .map_err(Failure::Columns)?;
            }
            leak.require_found().map_err(Failure::Columns)?;
            let mut all = TableTally::new(&self.wm);
            // This part's pseudo-rows count only when they are more than
            // chance gives in it (a part of a few hundred rows may hold too
            // few to tell).
            let (found, votes) = leak.finish(&mut all);
            if found.is_present() {
                all.add(dbwatermark::PSEUDO_ROWS, votes);
            }
            Ok(all)
        });
        Ok(Tally {
            inner: std::sync::Mutex::new(tally.map_err(|f| f.into_py(py))?),
        })
    }

    /// The JSON of `dbwm extract` for `tally`, tested against `candidates`
    /// (contents) or the registry at `registry`.
    #[pyo3(signature = (tally, candidates, registry, threshold))]
    fn decode(
        &self,
        py: Python<'_>,
        tally: &Tally,
        candidates: Option<Vec<String>>,
        registry: Option<std::path::PathBuf>,
        threshold: f64,
    ) -> PyResult<String> {
        let issued = match (candidates, registry) {
            (Some(contents), _) => Some(Issued::from_records(
                &self.wm,
                contents.into_iter().map(Record::new).collect(),
                threshold,
                "candidates",
            )),
            (None, Some(path)) => Some(Issued::read(&self.wm, &path, threshold)),
            (None, None) => None,
        }
        .transpose()
        .map_err(|e| invalid(py, e))?;
        let tally = tally.lock().clone();
        let summary = py
            .detach(|| {
                pipeline::summarize(&self.wm, &tally, issued.as_ref().map(|i| &i.candidates))
            })
            .map_err(|e| tally_error(py, e))?;
        let report = ExtractReport::tested(&summary, &[], issued.as_ref());
        serde_json::to_string(&report).map_err(|e| invalid(py, e))
    }

    /// The warnings the candidates gave (a content issued twice).
    #[pyo3(signature = (candidates, registry))]
    fn candidate_warnings(
        &self,
        py: Python<'_>,
        candidates: Option<Vec<String>>,
        registry: Option<std::path::PathBuf>,
    ) -> PyResult<Vec<String>> {
        let issued = match (candidates, registry) {
            (Some(contents), _) => Issued::from_records(
                &self.wm,
                contents.into_iter().map(Record::new).collect(),
                dbwatermark::DEFAULT_THRESHOLD,
                "candidates",
            ),
            (None, Some(path)) => Issued::read(&self.wm, &path, dbwatermark::DEFAULT_THRESHOLD),
            (None, None) => return Ok(Vec::new()),
        };
        Ok(issued.map_err(|e| invalid(py, e))?.warnings)
    }
}

/// A plan made once and followed by every partition.
#[pyclass(module = "dbwatermark._native", frozen)]
struct Plan {
    shared: SharedPlan,
}

#[pymethods]
impl Plan {
    /// The plan as JSON (to send to every partition).
    fn to_json(&self) -> String {
        self.shared.to_json()
    }

    /// Reads the JSON of `Plan.to_json`.
    #[staticmethod]
    fn from_json(py: Python<'_>, json: &str) -> PyResult<Self> {
        Ok(Self {
            shared: SharedPlan::from_json(json).map_err(|e| plan_error(py, e))?,
        })
    }

    #[getter]
    fn fingerprint(&self) -> String {
        self.shared.fingerprint.clone()
    }

    #[getter]
    fn density(&self) -> String {
        self.shared.density.clone()
    }

    #[getter]
    fn key(&self) -> Vec<String> {
        self.shared.key.clone()
    }

    /// Every non-key column's plan, as the JSON of `Plan.to_json` has it.
    #[getter]
    fn columns_json(&self) -> String {
        serde_json::to_string(&self.shared.columns).unwrap_or_default()
    }

    fn __eq__(&self, other: &Plan) -> bool {
        self.shared == other.shared
    }

    fn __repr__(&self) -> String {
        let marked: Vec<&str> = self
            .shared
            .columns
            .iter()
            .filter(|c| c.carrier != "none")
            .map(|c| c.name.as_str())
            .collect();
        format!(
            "Plan(density='{}', marked={marked:?}, fingerprint='{}')",
            self.shared.density, self.shared.fingerprint
        )
    }
}

/// A table's tallies under one key.
#[pyclass(module = "dbwatermark._native")]
struct Tally {
    inner: std::sync::Mutex<TableTally>,
}

impl Tally {
    fn lock(&self) -> std::sync::MutexGuard<'_, TableTally> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl Tally {
    /// The compact binary form (versioned; carries the scheme and the
    /// key's fingerprint, never the key).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.lock().to_bytes())
    }

    /// Reads the bytes of `Tally.to_bytes`.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let inner = TableTally::from_bytes(data).map_err(|e| tally_error(py, e))?;
        Ok(Self {
            inner: std::sync::Mutex::new(inner),
        })
    }

    /// Adds `other`'s votes (in place).
    fn merge(&self, py: Python<'_>, other: &Tally) -> PyResult<()> {
        let theirs = other.lock().clone();
        self.lock()
            .merge(&theirs)
            .map(|_| ())
            .map_err(|e| tally_error(py, e))
    }

    #[getter]
    fn rows(&self) -> u64 {
        self.lock().rows()
    }

    #[getter]
    fn key_fingerprint(&self) -> String {
        self.lock().key_fingerprint()
    }

    /// Votes read per column, in order.
    #[getter]
    fn votes(&self) -> Vec<(String, u64)> {
        self.lock()
            .columns()
            .iter()
            .map(|(n, t)| (n.clone(), t.votes()))
            .collect()
    }

    fn __eq__(&self, other: &Tally) -> bool {
        if std::ptr::eq(self, other) {
            return true;
        }
        *self.lock() == *other.lock()
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Columns>()?;
    m.add_class::<Engine>()?;
    m.add_class::<Plan>()?;
    m.add_class::<Tally>()?;
    m.add("PROFILE_ROWS", PROFILE_ROWS)?;
    m.add("DEFAULT_THRESHOLD", dbwatermark::DEFAULT_THRESHOLD)?;
    m.add("TALLY_FORMAT_VERSION", dbwatermark::TALLY_FORMAT_VERSION)?;
    m.add("SCHEME_VERSION", dbwatermark::SCHEME_VERSION)?;
    Ok(())
}
