//! Huawei DSC-compatible request/response model (feature `dsc`).
//!
//! Teams using DSC's data-watermark API switch to this crate with the same
//! JSON bodies:
//!
//! ```text
//! embed   {"watermark_content": "...", "watermark_key": "...",
//!          "columns": [{"name": "id", "type": "INTEGER", "primary_key": true}, ...],
//!          "data": [{"id": 0, "price": 3}, ...]}
//!      →  {"marked_data": [{"id": 0, "price": 3}, ...]}
//! extract {"watermark_key": "...", "columns": [...], "data": [...]}
//!      →  {"watermarks": ["..."]}
//! error   {"error_code": "DSC.00000004", "error_msg": "Invalid parameter: <reason>"}
//! ```
//!
//! # Wire format and guarantees
//!
//! * Limits follow DSC: at most 100 `columns`, at least one with
//!   `"primary_key": true` and one with `false`, names of 1 to 256
//!   characters and unique, known types only (see [`ColumnType::parse`]),
//!   field values of at most 2,000 characters, at most 50,000 rows per embed
//!   and 30,000 per extract, a non-empty `watermark_key`, a
//!   `watermark_content` of 1 to 64 bytes. Each violation is an
//!   `Invalid parameter` error naming the field, row or limit. Unknown
//!   top-level fields are ignored.
//! * An embed row without a usable primary-key value (missing, null, not a
//!   number or string) is an error naming the row; an extract row without
//!   one is skipped.
//! * `marked_data` has the rows in order with their fields in order. A cell
//!   that was not marked is written back byte for byte as it arrived (`1.50`,
//!   `1e3`, string escapes); numbers stay numbers and strings stay strings;
//!   fields not named in `columns` and values that cannot be marked (null,
//!   booleans, objects, arrays) pass through untouched. How each type is
//!   marked is described in [`cell`].
//! * Every `primary_key: false` column is profiled over the request's rows
//!   and planned as a column named by the caller ([`ColumnProfile::plan`]):
//!   categories and codes (few distinct values, repeated), calendar fields
//!   by name, times on whole minutes and constants are left byte for byte
//!   as they arrived, and marked values stay within the column's observed
//!   range. Extraction plans the leak's rows the same way. A request where
//!   no column can carry a mark is an `Invalid parameter` error naming each
//!   column and why.
//! * `watermarks` lists every distinct watermark found (at most 100),
//!   strongest evidence first.
//! * The key never appears in an error message or in `Debug` output.
//!
//! ```
//! use dbwatermark::dsc;
//! let request = br#"{"watermark_content": "test12345678test", "watermark_key": "keyword",
//!     "columns": [{"name": "item1", "type": "INTEGER", "primary_key": true},
//!                 {"name": "item2", "type": "INTEGER", "primary_key": false}],
//!     "data": [{"item1": 0, "item2": 3}, {"item1": 1, "item2": 4}]}"#;
//! let response = dsc::embed_json(request)?;
//! let body: serde_json::Value = serde_json::from_slice(&response)?;
//! assert_eq!(body["marked_data"].as_array().unwrap().len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cell;
mod types;
mod wire;

use rayon::prelude::*;
use serde_json::value::RawValue;

use crate::{
    Cell, ColumnMut, ColumnPlan, ColumnProfile, ColumnRef, Config, KeyEncoder, KeyPart, Logical,
    Tally, WatermarkKey, Watermarker,
};
use cell::{Form, MAX_FIELD_CHARS};
pub use types::ColumnType;
pub use wire::{
    ColumnSpec, EmbedRequest, EmbedResponse, ErrorBody, ExtractRequest, ExtractResponse, Row,
    SecretKey,
};

/// Most entries in `columns`.
pub const MAX_COLUMNS: usize = 100;
/// Longest column name, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Most rows in an embed request.
pub const MAX_EMBED_ROWS: usize = 50_000;
/// Most rows in an extract request.
pub const MAX_EXTRACT_ROWS: usize = 30_000;
/// Most watermarks in an extract response.
pub const MAX_WATERMARKS: usize = 100;

/// Error code for a caller error.
pub const INVALID_PARAMETER: &str = "DSC.00000004";
/// Error code for an internal error.
pub const INTERNAL_ERROR: &str = "DSC.00000002";

/// A failed request, mapping onto DSC's error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DscError {
    /// The caller's request is invalid (`DSC.00000004`, HTTP 400); the
    /// reason names the field, row or limit.
    #[error("Invalid parameter: {0}")]
    InvalidParameter(String),
    /// Something failed on our side (`DSC.00000002`, HTTP 500).
    #[error("Internal error: {0}")]
    Internal(String),
}

impl DscError {
    fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidParameter(reason.into())
    }

    /// The DSC error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidParameter(_) => INVALID_PARAMETER,
            Self::Internal(_) => INTERNAL_ERROR,
        }
    }

    /// The error body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error_code: self.code().to_owned(),
            error_msg: self.to_string(),
        }
    }

    /// The error body as JSON text.
    pub fn body_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body()).unwrap_or_else(|_| {
            format!("{{\"error_code\":\"{}\",\"error_msg\":\"\"}}", self.code()).into_bytes()
        })
    }
}

impl From<crate::Error> for DscError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::EmptyKey => Self::invalid("watermark_key: must not be empty"),
            crate::Error::ContentLength { len } => Self::invalid(format!(
                "watermark_content: must be 1 to 64 bytes of UTF-8, got {len} bytes"
            )),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// The checked columns of a request.
struct Plan<'a> {
    keys: Vec<&'a str>,
    marked: Vec<(&'a str, ColumnType)>,
}

fn check_columns(columns: &[ColumnSpec]) -> Result<Plan<'_>, DscError> {
    if columns.len() > MAX_COLUMNS {
        return Err(DscError::invalid(format!(
            "columns: {} entries, at most {MAX_COLUMNS} allowed",
            columns.len()
        )));
    }
    let mut plan = Plan {
        keys: Vec::new(),
        marked: Vec::new(),
    };
    for (i, c) in columns.iter().enumerate() {
        let chars = c.name.chars().count();
        if !(1..=MAX_NAME_CHARS).contains(&chars) {
            return Err(DscError::invalid(format!(
                "columns[{i}].name: must be 1 to {MAX_NAME_CHARS} characters, got {chars}"
            )));
        }
        if columns[..i].iter().any(|d| d.name == c.name) {
            return Err(DscError::invalid(format!(
                "columns[{i}].name: `{}` is listed twice",
                c.name
            )));
        }
        let ty = ColumnType::parse(&c.ty).ok_or_else(|| {
            DscError::invalid(format!(
                "columns[{i}].type: unknown type `{}` of column `{}`",
                c.ty, c.name
            ))
        })?;
        if c.primary_key {
            plan.keys.push(&c.name);
        } else {
            plan.marked.push((&c.name, ty));
        }
    }
    if plan.keys.is_empty() {
        return Err(DscError::invalid(
            "columns: a primary key is required (a column with \"primary_key\": true)",
        ));
    }
    if plan.marked.is_empty() {
        return Err(DscError::invalid(
            "columns: at least one column with \"primary_key\": false is required",
        ));
    }
    Ok(plan)
}

fn check_data(
    data: &[Row],
    columns: &[ColumnSpec],
    max_rows: usize,
    what: &str,
) -> Result<(), DscError> {
    if data.len() > max_rows {
        return Err(DscError::invalid(format!(
            "data: {} records, at most {max_rows} allowed per {what} request",
            data.len()
        )));
    }
    // A key given twice is read differently by different consumers (a
    // classic parser differential): refuse it rather than echo both.
    let twice = data.par_iter().enumerate().find_map_first(|(i, row)| {
        let mut seen = std::collections::HashSet::with_capacity(row.fields.len());
        row.fields
            .iter()
            .find(|(k, _)| !seen.insert(k.as_str()))
            .map(|(k, _)| format!("data[{i}]: key `{k}` appears more than once"))
    });
    if let Some(reason) = twice {
        return Err(DscError::invalid(reason));
    }
    let too_long = data.par_iter().enumerate().find_map_first(|(i, row)| {
        columns.iter().find_map(|c| {
            let raw = row.get(&c.name)?;
            let chars = match serde_json::from_str::<String>(raw) {
                Ok(s) if raw.starts_with('"') => s.chars().count(),
                _ => raw.chars().count(),
            };
            (chars > MAX_FIELD_CHARS).then(|| {
                format!(
                    "data[{i}].{}: value has {chars} characters, at most {MAX_FIELD_CHARS} allowed",
                    c.name
                )
            })
        })
    });
    too_long.map_or(Ok(()), |reason| Err(DscError::invalid(reason)))
}

/// Why a row's primary key cannot be used, or `Ok` after pushing its parts.
fn push_key(row: &Row, keys: &[&str], enc: &mut KeyEncoder) -> Result<(), String> {
    for name in keys {
        let raw = row
            .get(name)
            .ok_or_else(|| format!("primary key column `{name}` is missing"))?;
        if raw.starts_with('"') {
            match serde_json::from_str::<&str>(raw) {
                Ok(s) => enc.push(KeyPart::Str(s)),
                Err(_) => {
                    let s: String = serde_json::from_str(raw)
                        .map_err(|_| format!("primary key column `{name}` is not valid text"))?;
                    enc.push(KeyPart::Str(&s));
                }
            }
        } else if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            enc.push(KeyPart::Str(raw));
        } else if raw == "null" {
            return Err(format!("primary key column `{name}` is null"));
        } else {
            return Err(format!(
                "primary key column `{name}` must be a number or a string"
            ));
        }
    }
    Ok(())
}

fn watermarker(key: &SecretKey) -> Result<Watermarker, DscError> {
    Ok(Watermarker::new(
        WatermarkKey::new(&key.0)?,
        Config::default(),
    ))
}

/// The cells of column `name` of every row, with their forms and validity
/// (missing or `null` is invalid).
fn column_cells(data: &[Row], name: &str, ty: ColumnType) -> (Vec<Cell>, Vec<Form>, Vec<bool>) {
    let parsed: Vec<Option<(Cell, Form)>> = data
        .par_iter()
        .map(|row| {
            let raw = row.get(name)?;
            (raw != "null").then(|| cell::interpret(raw, ty))
        })
        .collect();
    let validity = parsed.iter().map(Option::is_some).collect();
    let (cells, forms) = parsed
        .into_iter()
        .map(|p| p.unwrap_or((Cell::Unmarkable, Form::Raw)))
        .unzip();
    (cells, forms, validity)
}

/// The profile of a column's cells, as the core sees them.
fn profile(cells: &[Cell], validity: &[bool], ty: ColumnType) -> ColumnProfile {
    let logical = match ty {
        ColumnType::Integer { .. } => Logical::Integer,
        ColumnType::Decimal | ColumnType::Float => Logical::Float,
        ColumnType::Text => Logical::Text,
        ColumnType::Date => Logical::Date,
        ColumnType::Time | ColumnType::DateTime => Logical::Timestamp,
    };
    let mut p = ColumnProfile::new(logical);
    for (cell, &valid) in cells.iter().zip(validity) {
        match cell {
            _ if !valid => p.null(),
            Cell::Integer { value, .. } if logical == Logical::Timestamp => {
                p.instant_in(*value as i64, 1)
            }
            Cell::Integer { value, .. } => p.number(*value as f64, 0),
            Cell::Decimal { count, scale, .. } => p.written_decimal(*count, *scale),
            Cell::Text(t) => p.text(t),
            Cell::Unmarkable => p.null(),
        }
    }
    p
}

/// The plan of each `primary_key: false` column, from the profile of the
/// request's rows (the caller named every such column, which overrides
/// guesses from names, not the rules that keep meaning), with its type; an
/// error naming every column when none can carry a mark. Each column's
/// cells are dropped once profiled: one column is in memory at a time.
fn planned(
    data: &[Row],
    plan: &Plan<'_>,
    cancel: &Cancel,
) -> Result<Vec<(ColumnType, ColumnPlan)>, DscError> {
    let plans: Vec<(ColumnType, ColumnPlan)> = plan
        .marked
        .iter()
        .map(|&(name, ty)| {
            cancel.check()?;
            let (cells, _, validity) = column_cells(data, name, ty);
            Ok((ty, profile(&cells, &validity, ty).plan(name, true)))
        })
        .collect::<Result<_, DscError>>()?;
    if !data.is_empty() && plans.iter().all(|(_, p)| !p.marks()) {
        let why: Vec<String> = plans
            .iter()
            .map(|(_, p)| format!("`{}`: {}", p.name, p.reason))
            .collect();
        return Err(DscError::invalid(format!(
            "columns: none can carry a mark without changing what it means ({})",
            why.join("; ")
        )));
    }
    Ok(plans.into_iter().filter(|(_, p)| p.marks()).collect())
}

/// Embeds the request's watermark.
///
/// # Errors
///
/// [`DscError::InvalidParameter`] for a request that breaks a rule above;
/// [`DscError::Internal`] if the engine fails.
pub fn embed(request: EmbedRequest) -> Result<EmbedResponse, DscError> {
    embed_until(request, &Cancel::new())
}

/// [`embed`] that stops at its next step once `cancel` is set.
///
/// # Errors
///
/// As [`embed`], and [`DscError::Internal`] once cancelled.
pub fn embed_until(request: EmbedRequest, cancel: &Cancel) -> Result<EmbedResponse, DscError> {
    let EmbedRequest {
        watermark_content,
        watermark_key,
        columns,
        mut data,
    } = request;
    let wm = watermarker(&watermark_key)?;
    let payload = wm.payload(&watermark_content)?;
    let plan = check_columns(&columns)?;
    check_data(&data, &columns, MAX_EMBED_ROWS, "embed")?;
    let bad_key = data.par_iter().enumerate().find_map_first(|(i, row)| {
        push_key(row, &plan.keys, &mut KeyEncoder::new())
            .err()
            .map(|reason| format!("data[{i}]: {reason}"))
    });
    if let Some(reason) = bad_key {
        return Err(DscError::invalid(reason));
    }
    let selection = wm.select(data.len(), |i, enc| {
        push_key(&data[i], &plan.keys, enc).is_ok()
    });
    let wm = wm.for_columns(plan.marked.len());
    let density = wm.density_for(Some(data.len()), &payload);
    cancel.check()?;
    for (ty, plan) in planned(&data, &plan, cancel)? {
        cancel.check()?;
        let name = plan.name.as_str();
        let (mut cells, forms, validity) = column_cells(&data, name, ty);
        let original = cells.clone();
        wm.embed_column_within(
            &selection,
            &payload,
            density,
            ColumnMut::Cells(&mut cells),
            Some((&validity).into()),
            &plan.limits,
        )?;
        for (i, row) in data.iter_mut().enumerate() {
            if cells[i] == original[i] {
                continue;
            }
            let text = cell::render(&cells[i], &forms[i]).ok_or_else(|| {
                DscError::Internal(format!("data[{i}].{name}: cannot write the marked value"))
            })?;
            let raw = RawValue::from_string(text)
                .map_err(|e| DscError::Internal(format!("data[{i}].{name}: {e}")))?;
            if let Some(field) = row.fields.iter_mut().find(|(k, _)| k == name) {
                field.1 = raw;
            }
        }
    }
    cancel.check()?;
    Ok(EmbedResponse { marked_data: data })
}

/// Extracts the watermarks of the request's rows.
///
/// # Errors
///
/// [`DscError::InvalidParameter`] for a request that breaks a rule above.
pub fn extract(request: &ExtractRequest) -> Result<ExtractResponse, DscError> {
    extract_until(request, &Cancel::new())
}

/// [`extract`] that stops at its next step once `cancel` is set.
///
/// # Errors
///
/// As [`extract`], and [`DscError::Internal`] once cancelled.
pub fn extract_until(
    request: &ExtractRequest,
    cancel: &Cancel,
) -> Result<ExtractResponse, DscError> {
    let wm = watermarker(&request.watermark_key)?;
    let plan = check_columns(&request.columns)?;
    let data = &request.data;
    check_data(data, &request.columns, MAX_EXTRACT_ROWS, "extract")?;
    let selection = wm.select(data.len(), |i, enc| {
        push_key(&data[i], &plan.keys, enc).is_ok()
    });
    cancel.check()?;
    let tallies = planned(data, &plan, cancel)?
        .into_iter()
        .map(|(ty, plan)| {
            cancel.check()?;
            let (cells, _, validity) = column_cells(data, &plan.name, ty);
            let mut tally = Tally::new();
            wm.tally_column_within(
                &selection,
                ColumnRef::Cells(&cells),
                Some((&validity).into()),
                &mut tally,
                &plan.limits,
            )?;
            Ok(tally)
        })
        .collect::<Result<Vec<_>, DscError>>()?;
    cancel.check()?;
    let watermarks = wm
        .decode(&tallies)
        .into_iter()
        .take(MAX_WATERMARKS)
        .map(|f| f.content)
        .collect();
    Ok(ExtractResponse { watermarks })
}

/// A flag that asks a running request to stop: set it (from any thread)
/// and the request ends at its next step (after parsing, after hashing the
/// keys, before and after each column) with
/// [`DscError::Internal`] saying it was stopped. Clones share the flag.
///
/// ```
/// use dbwatermark::dsc::{self, Cancel};
///
/// let cancel = Cancel::new();
/// cancel.cancel();
/// let body = br#"{"watermark_key":"k","columns":[{"name":"id","type":"BIGINT","primary_key":true}],"data":[{"id":1}]}"#;
/// let err = dsc::extract_json_until(body, &cancel).unwrap_err();
/// assert!(err.to_string().contains("stopped"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    /// A flag not yet set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the request to stop.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether it was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), DscError> {
        if self.is_cancelled() {
            Err(DscError::Internal(
                "the request was stopped: it took longer than its time limit".into(),
            ))
        } else {
            Ok(())
        }
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, DscError> {
    serde_json::from_slice(body).map_err(|e| DscError::invalid(format!("request body: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, DscError> {
    serde_json::to_vec(value).map_err(|e| DscError::Internal(format!("writing the response: {e}")))
}

/// [`embed`] on a JSON request body, returning the JSON response body.
///
/// # Errors
///
/// As [`embed`]; malformed JSON is [`DscError::InvalidParameter`].
pub fn embed_json(body: &[u8]) -> Result<Vec<u8>, DscError> {
    embed_json_until(body, &Cancel::new())
}

/// [`embed_json`] that stops when `cancel` is set.
///
/// # Errors
///
/// As [`embed_json`], and [`DscError::Internal`] once cancelled.
pub fn embed_json_until(body: &[u8], cancel: &Cancel) -> Result<Vec<u8>, DscError> {
    let request = parse(body)?;
    cancel.check()?;
    to_json(&embed_until(request, cancel)?)
}

/// [`extract`] on a JSON request body, returning the JSON response body.
///
/// # Errors
///
/// As [`extract`]; malformed JSON is [`DscError::InvalidParameter`].
pub fn extract_json(body: &[u8]) -> Result<Vec<u8>, DscError> {
    extract_json_until(body, &Cancel::new())
}

/// [`extract_json`] that stops when `cancel` is set.
///
/// # Errors
///
/// As [`extract_json`], and [`DscError::Internal`] once cancelled.
pub fn extract_json_until(body: &[u8], cancel: &Cancel) -> Result<Vec<u8>, DscError> {
    let request = parse(body)?;
    cancel.check()?;
    to_json(&extract_until(&request, cancel)?)
}
