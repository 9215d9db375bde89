//! [`BatchPlan`]: which columns of a schema are the key and which carry
//! marks, and the selection of a batch's rows from its key columns.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef, TimeUnit};

use super::{Error, Result};
use crate::{
    Carrier, ColumnPlan, ColumnProfile, ColumnRules, KeyEncoder, KeyPart, Limits, Logical,
    RuleError, Selection, Tally, Watermarker,
};

fn can_be_key(dt: &DataType) -> bool {
    dt.is_integer()
        || matches!(
            dt,
            DataType::Float32
                | DataType::Float64
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Decimal128(..)
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(..)
        )
}

fn can_be_marked(dt: &DataType) -> bool {
    can_be_key(dt) || matches!(dt, DataType::Decimal256(..))
}

fn is_date(dt: &DataType) -> bool {
    matches!(dt, DataType::Date32 | DataType::Date64)
}

/// Which columns of a schema form the key and which carry marks; resolved
/// once and reused for every batch of a stream.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    schema: SchemaRef,
    pub(super) key: Vec<usize>,
    pub(super) marked: Vec<usize>,
    /// The limits of each marked column's changes.
    pub(super) limits: Vec<Limits>,
    /// Per marked column: a string column of numbers, marked as numbers.
    pub(super) text_numbers: Vec<bool>,
    skipped: Vec<String>,
    /// Every non-key column's plan, when the plan was made from a profile.
    plans: Vec<ColumnPlan>,
    /// Whether the key is a virtual key ([`BatchPlan::use_virtual_key`]).
    virtual_key: bool,
    /// Whether dates and times in the key are hashed as they were before
    /// December 2026 ([`BatchPlan::use_legacy_time_keys`]).
    legacy_time_keys: bool,
}

/// Rows a profiled plan reads before it decides: the first batches up to
/// this many rows.
pub const PROFILE_ROWS: usize = 65_536;

impl BatchPlan {
    /// Resolves `key` columns (in key order) and the columns to mark: those
    /// named in `columns`, or by default every other column of a markable
    /// type except dates (a day is a large step; name a date column to mark
    /// it).
    ///
    /// # Errors
    ///
    /// [`Error::NoKey`], [`Error::MissingColumn`], [`Error::UnsupportedType`]
    /// or [`Error::KeyColumnMarked`], naming the column.
    pub fn new(schema: &Schema, key: &[&str], columns: Option<&[&str]>) -> Result<Self> {
        if key.is_empty() {
            return Err(Error::NoKey);
        }
        let index = |name: &str| {
            schema
                .index_of(name)
                .map_err(|_| Error::MissingColumn(name.to_owned()))
        };
        let unsupported = |i: usize, role| Error::UnsupportedType {
            column: schema.field(i).name().clone(),
            data_type: schema.field(i).data_type().clone(),
            role,
        };
        let key = key
            .iter()
            .map(|k| {
                let i = index(k)?;
                if can_be_key(schema.field(i).data_type()) {
                    Ok(i)
                } else {
                    Err(unsupported(i, "cannot be a primary key"))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let mut skipped = Vec::new();
        let marked = match columns {
            Some(names) => names
                .iter()
                .map(|n| {
                    let i = index(n)?;
                    if key.contains(&i) {
                        Err(Error::KeyColumnMarked((*n).to_owned()))
                    } else if can_be_marked(schema.field(i).data_type()) {
                        Ok(i)
                    } else {
                        Err(unsupported(i, "cannot carry marks"))
                    }
                })
                .collect::<Result<Vec<_>>>()?,
            None => (0..schema.fields().len())
                .filter(|i| !key.contains(i))
                .filter(|&i| {
                    let dt = schema.field(i).data_type();
                    let ok = can_be_marked(dt) && !is_date(dt);
                    if !ok {
                        skipped.push(schema.field(i).name().clone());
                    }
                    ok
                })
                .collect(),
        };
        Ok(Self {
            schema: Arc::new(schema.clone()),
            key,
            limits: vec![Limits::default(); marked.len()],
            text_numbers: vec![false; marked.len()],
            marked,
            skipped,
            plans: Vec::new(),
            virtual_key: false,
            legacy_time_keys: false,
        })
    }

    /// A plan made from the column profiles of `sample` (the first batches
    /// of the stream; only their first [`PROFILE_ROWS`] rows are read, so
    /// the plan does not depend on how the rows are cut into batches): each
    /// candidate column — those named in `columns`, else every non-key
    /// column — gets a [`ColumnPlan`] saying whether and how it carries
    /// marks without changing what it means (no new labels in categories and
    /// codes, calendar and clock fields untouched, changes within the
    /// observed range at the column's working precision), and why.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use arrow_array::{Int64Array, RecordBatch, StringArray};
    /// use arrow_schema::{DataType, Field, Schema};
    /// use dbwatermark::Kind;
    /// use dbwatermark::arrow::BatchPlan;
    ///
    /// let schema = Arc::new(Schema::new(vec![
    ///     Field::new("id", DataType::Int64, false),
    ///     Field::new("month", DataType::Int64, false),
    ///     Field::new("carrier", DataType::Utf8, false),
    ///     Field::new("distance", DataType::Int64, false),
    /// ]));
    /// let batch = RecordBatch::try_new(schema.clone(), vec![
    ///     Arc::new(Int64Array::from_iter_values(0..5000)),
    ///     Arc::new(Int64Array::from_iter_values((0..5000).map(|i| 1 + i % 12))),
    ///     Arc::new(StringArray::from_iter_values((0..5000).map(|i| ["AA", "UA", "DL"][i % 3]))),
    ///     Arc::new(Int64Array::from_iter_values((0..5000).map(|i| 80 + i * 7 % 4900))),
    /// ])?;
    /// let plan = BatchPlan::profiled(&schema, &["id"], None, &[batch])?;
    /// assert_eq!(plan.marked_names(), ["distance"]);
    /// let kinds: Vec<Kind> = plan.column_plans().iter().map(|p| p.kind).collect();
    /// assert_eq!(kinds, [Kind::Calendar, Kind::Code, Kind::Measure]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`BatchPlan::new`], and [`Error::NothingToMark`] when no column
    /// can carry a mark without changing its meaning.
    pub fn profiled(
        schema: &Schema,
        key: &[&str],
        columns: Option<&[&str]>,
        sample: &[RecordBatch],
    ) -> Result<Self> {
        Self::profiled_with(schema, key, columns, &ColumnRules::new(), sample)
    }

    /// [`BatchPlan::profiled`] under the owner's `rules`, which win over
    /// the profile's guesses (see [`ColumnRule`](crate::ColumnRule)).
    /// Extraction must use the same rules as the embed.
    ///
    /// # Errors
    ///
    /// As [`BatchPlan::profiled`], and [`Error::Rule`] when a rule names a
    /// column the schema does not have or a key column, or states a kind
    /// its column cannot be.
    pub fn profiled_with(
        schema: &Schema,
        key: &[&str],
        columns: Option<&[&str]>,
        rules: &ColumnRules,
        sample: &[RecordBatch],
    ) -> Result<Self> {
        let plan = Self::profiled_or_unmarked(schema, key, columns, rules, sample)?;
        plan.require_marked()?;
        Ok(plan)
    }

    /// Nothing, when the plan marks a column.
    ///
    /// # Errors
    ///
    /// [`Error::NothingToMark`] naming each column and why it is not
    /// marked, when none is.
    pub fn require_marked(&self) -> Result<()> {
        if !self.marked.is_empty() {
            return Ok(());
        }
        Err(Error::NothingToMark(
            (self.plans.iter())
                .map(|p| format!("`{}`: {}", p.name, p.reason))
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }

    /// [`BatchPlan::profiled_with`], but a plan that marks no column is
    /// returned rather than refused: for what needs a table's key and
    /// column plans without marking cells (pseudo-rows and a pseudo-column
    /// are for exactly the tables where no value may change, reference
    /// data of codes and labels) and for reading a leak, whose mark may be
    /// in those alone.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use arrow_array::{RecordBatch, StringArray, UInt32Array};
    /// use arrow_schema::{DataType, Field, Schema};
    /// use dbwatermark::ColumnRules;
    /// use dbwatermark::arrow::BatchPlan;
    ///
    /// let schema = Arc::new(Schema::new(vec![
    ///     Field::new("id", DataType::UInt32, false),
    ///     Field::new("region", DataType::Utf8, false),
    /// ]));
    /// let batch = RecordBatch::try_new(schema.clone(), vec![
    ///     Arc::new(UInt32Array::from_iter_values(0..1000)),
    ///     Arc::new(StringArray::from_iter_values((0..1000).map(|i| ["N", "S"][i % 2]))),
    /// ])?;
    /// let rules = ColumnRules::new();
    /// assert!(BatchPlan::profiled_with(&schema, &["id"], None, &rules, &[batch.clone()]).is_err());
    /// let plan = BatchPlan::profiled_or_unmarked(&schema, &["id"], None, &rules, &[batch])?;
    /// assert!(plan.marked_names().is_empty());
    /// assert_eq!(plan.skipped_names(), ["region"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`BatchPlan::profiled_with`], but never [`Error::NothingToMark`].
    pub fn profiled_or_unmarked(
        schema: &Schema,
        key: &[&str],
        columns: Option<&[&str]>,
        rules: &ColumnRules,
        sample: &[RecordBatch],
    ) -> Result<Self> {
        // Names, key and types are checked exactly as for an unprofiled plan.
        let base = Self::new(schema, key, columns)?;
        for (name, rule) in rules.columns() {
            let known = schema
                .index_of(name)
                .map_err(|_| RuleError::new("the table has no such column").in_column(name))?;
            if base.key.contains(&known) && rule.mark == Some(true) {
                return Err(Error::KeyColumnMarked(name.to_owned()));
            }
        }
        let candidates: Vec<usize> = match columns {
            Some(_) => base.marked.clone(),
            None => (0..schema.fields().len())
                .filter(|i| !base.key.contains(i))
                .collect(),
        };
        let mut plans = Vec::with_capacity(candidates.len());
        let mut marked = Vec::new();
        let mut text_numbers = Vec::new();
        for i in candidates {
            let field = schema.field(i);
            let Some(logical) = super::profile::logical(field.data_type())
                .filter(|_| can_be_marked(field.data_type()))
            else {
                plans.push(ColumnPlan::unsupported(
                    field.name(),
                    &field.data_type().to_string(),
                ));
                continue;
            };
            let mut profile = ColumnProfile::new(logical);
            let mut left = PROFILE_ROWS;
            for batch in sample {
                if let Some(array) = batch.columns().get(i) {
                    let take = left.min(array.len());
                    super::profile::observe(&mut profile, array.slice(0, take).as_ref());
                    left -= take;
                }
            }
            let rule = rules.get(field.name()).copied().unwrap_or_default();
            let plan = profile.plan_with(field.name(), columns.is_some(), &rule)?;
            if plan.marks() {
                marked.push(i);
                text_numbers.push(logical == Logical::Text && plan.carrier == Carrier::Digits);
            }
            plans.push(plan);
        }
        Ok(Self {
            limits: plans
                .iter()
                .filter(|p| p.marks())
                .map(|p| p.limits)
                .collect(),
            text_numbers,
            marked,
            skipped: plans
                .iter()
                .filter(|p| !p.marks())
                .map(|p| p.name.clone())
                .collect(),
            plans,
            ..base
        })
    }

    /// The plan that follows `plans` (every non-key column's plan, as
    /// [`BatchPlan::column_plans`] gives them; a plan made once for a whole
    /// table and sent to each of its partitions) on `schema` with `key`:
    /// the columns whose plan marks them carry marks within its limits.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use arrow_array::{Float64Array, Int64Array, RecordBatch};
    /// use arrow_schema::{DataType, Field, Schema};
    /// use dbwatermark::arrow::BatchPlan;
    ///
    /// let schema = Arc::new(Schema::new(vec![
    ///     Field::new("id", DataType::Int64, false),
    ///     Field::new("price", DataType::Float64, false),
    /// ]));
    /// let batch = RecordBatch::try_new(schema.clone(), vec![
    ///     Arc::new(Int64Array::from_iter_values(0..2000)),
    ///     Arc::new(Float64Array::from_iter_values((0..2000).map(|i| 10.0 + (i * 37 % 500) as f64 / 100.0))),
    /// ])?;
    /// let whole = BatchPlan::profiled(&schema, &["id"], None, &[batch])?;
    /// let again = BatchPlan::from_column_plans(&schema, &["id"], whole.column_plans())?;
    /// assert_eq!(again.fingerprint(), whole.fingerprint());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`BatchPlan::new`] for the key; [`Error::MissingColumn`] for a
    /// planned column the schema lacks, [`Error::KeyColumnMarked`] for a
    /// key column, [`Error::UnsupportedType`] where the column's type cannot
    /// carry the plan's marks, [`Error::NothingToMark`] when no plan marks.
    pub fn from_column_plans(schema: &Schema, key: &[&str], plans: &[ColumnPlan]) -> Result<Self> {
        let plan = Self::from_column_plans_for_reading(schema, key, plans)?;
        plan.require_marked()?;
        Ok(plan)
    }

    /// As [`BatchPlan::from_column_plans`], but a plan that marks no
    /// column is no error: to read a leak whose mark is in a pseudo-column
    /// or in pseudo-rows only (a table of codes), never to embed.
    ///
    /// # Errors
    ///
    /// As [`BatchPlan::from_column_plans`], but [`Error::NothingToMark`].
    pub fn from_column_plans_for_reading(
        schema: &Schema,
        key: &[&str],
        plans: &[ColumnPlan],
    ) -> Result<Self> {
        let base = Self::new(schema, key, Some(&[]))?;
        let (mut marked, mut limits, mut text_numbers) = (Vec::new(), Vec::new(), Vec::new());
        for p in plans {
            let i = schema
                .index_of(&p.name)
                .map_err(|_| Error::MissingColumn(p.name.clone()))?;
            if base.key.contains(&i) {
                return Err(Error::KeyColumnMarked(p.name.clone()));
            }
            if !p.marks() {
                continue;
            }
            let dt = schema.field(i).data_type();
            let text = super::profile::logical(dt) == Some(Logical::Text);
            let fits = can_be_marked(dt) && (p.carrier == Carrier::Digits || text);
            if !fits {
                return Err(Error::UnsupportedType {
                    column: p.name.clone(),
                    data_type: dt.clone(),
                    role: "cannot carry the marks of the plan it was given",
                });
            }
            marked.push(i);
            limits.push(p.limits);
            text_numbers.push(text && p.carrier == Carrier::Digits);
        }
        Ok(Self {
            marked,
            limits,
            text_numbers,
            skipped: plans
                .iter()
                .filter(|p| !p.marks())
                .map(|p| p.name.clone())
                .collect(),
            plans: plans.to_vec(),
            ..base
        })
    }

    /// Makes the key a *virtual key*: attributes that survive in a leak
    /// that lost the real key column (a name, an e-mail, a date), hashed
    /// after normalising them: text loses surrounding spaces, inner runs of
    /// white space become one space and letters lower case, so `" Ada
    /// Lovelace"` and `"ada lovelace"` select the same marks; dates and
    /// times are one instant however they are typed or spelled (a CSV's
    /// `2013-01-01T06:00:00Z`, `2013-01-01 06:00:00`, a Parquet timestamp
    /// in any unit); numbers are hashed as numbers. The key's columns are
    /// never marked. Rows whose virtual key repeats carry the same marks,
    /// which just repeat their votes.
    ///
    /// ```
    /// use arrow_schema::{DataType, Field, Schema};
    /// use dbwatermark::arrow::BatchPlan;
    ///
    /// let schema = Schema::new(vec![
    ///     Field::new("name", DataType::Utf8, false),
    ///     Field::new("balance", DataType::Float64, false),
    /// ]);
    /// let mut plan = BatchPlan::new(&schema, &["name"], None)?;
    /// plan.use_virtual_key();
    /// assert!(plan.has_virtual_key());
    /// assert_eq!(plan.marked_names(), ["balance"]);
    /// # Ok::<(), dbwatermark::arrow::Error>(())
    /// ```
    pub fn use_virtual_key(&mut self) {
        self.virtual_key = true;
    }

    /// Whether the key is a virtual key.
    pub fn has_virtual_key(&self) -> bool {
        self.virtual_key
    }

    /// Hashes dates and times in the key as builds before December 2026
    /// did, to read a copy made then: a typed date or time by the count of
    /// its own unit (days, seconds, milliseconds, microseconds or
    /// nanoseconds), text by its text. Today every spelling and type of an
    /// instant hashes alike ([`KeyPart::Instant`]), so a copy keyed by a
    /// timestamp reads back from CSV as from Parquet; before, a CSV copy
    /// hashed the text and a reader that typed the column found nothing.
    /// Keys without a date or time hash alike either way. A virtual key
    /// always hashed instants (this changes nothing for it).
    pub fn use_legacy_time_keys(&mut self) {
        self.legacy_time_keys = true;
    }

    /// The key columns whose values are dates or times, typed (a date or
    /// timestamp column) or written (text whose first non-null value in
    /// `batch` spells one): the columns [`BatchPlan::use_legacy_time_keys`]
    /// hashes otherwise.
    pub fn time_key_columns(&self, batch: &RecordBatch) -> Vec<String> {
        self.key
            .iter()
            .filter(|&&i| {
                let array = batch.column(i).as_ref();
                (0..array.len())
                    .find(|&r| array.is_valid(r))
                    .is_some_and(|r| cell_instant(array, r).is_some())
            })
            .map(|&i| self.schema.field(i).name().clone())
            .collect()
    }

    /// Leaves column `name` unmarked, with `reason` as its plan's reason
    /// (an adapter that knows more than the profile: a database type that
    /// cannot carry marks); nothing happens for a column the plan does not
    /// mark.
    pub fn leave_alone(&mut self, name: &str, reason: &str) {
        let Some(j) = self
            .marked
            .iter()
            .position(|&i| self.schema.field(i).name() == name)
        else {
            return;
        };
        self.marked.remove(j);
        self.limits.remove(j);
        self.text_numbers.remove(j);
        self.skipped.push(name.to_owned());
        if let Some(p) = self.plans.iter_mut().find(|p| p.name == name) {
            p.carrier = Carrier::Nothing;
            p.reason = reason.to_owned();
        }
    }

    /// Every non-key column's plan, in schema order, when the plan was
    /// made by [`BatchPlan::profiled`] (empty otherwise).
    pub fn column_plans(&self) -> &[ColumnPlan] {
        &self.plans
    }

    /// A short fingerprint of how this plan marks a table
    /// ([`ColumnPlan::fingerprint`]); a plan made by [`BatchPlan::new`]
    /// counts each marked column as marked by its type.
    pub fn fingerprint(&self) -> String {
        if !self.plans.is_empty() {
            return ColumnPlan::fingerprint(&self.plans);
        }
        let typed: Vec<ColumnPlan> = self
            .marked
            .iter()
            .map(|&i| {
                let f = self.schema.field(i);
                let text = super::profile::logical(f.data_type()) == Some(Logical::Text);
                ColumnPlan::by_type(f.name(), text)
            })
            .collect();
        ColumnPlan::fingerprint(&typed)
    }

    /// The schema the plan was made for.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Names of the columns that carry marks, in order.
    pub fn marked_names(&self) -> Vec<String> {
        self.marked
            .iter()
            .map(|&i| self.schema.field(i).name().clone())
            .collect()
    }

    /// Names of the non-key columns left unmarked: by default because their
    /// type cannot carry marks (or they are dates), in a profiled plan for
    /// the reason its [`ColumnPlan`] gives.
    pub fn skipped_names(&self) -> &[String] {
        &self.skipped
    }

    /// One empty tally per marked column.
    pub fn new_tallies(&self) -> Vec<Tally> {
        self.marked.iter().map(|_| Tally::new()).collect()
    }

    pub(super) fn check(&self, batch: &RecordBatch) -> Result<()> {
        let got = batch.schema();
        for &i in self.key.iter().chain(&self.marked) {
            let want = self.schema.field(i);
            match got.fields().get(i) {
                Some(f) if f.name() == want.name() && f.data_type() == want.data_type() => {}
                _ => {
                    return Err(Error::SchemaMismatch(format!(
                        "column {i} should be `{}` of type {}",
                        want.name(),
                        want.data_type()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Pushes the key part of `array[row]`; `false` for a null.
pub(super) fn push_key_part(array: &dyn Array, row: usize, enc: &mut KeyEncoder) -> bool {
    if array.is_null(row) {
        return false;
    }
    macro_rules! int {
        ($t:ty, $variant:ident) => {
            KeyPart::$variant(array.as_primitive::<$t>().value(row).into())
        };
    }
    if !enc.legacy_time_keys() {
        // Dates and times are keyed by their instant, however the copy at
        // hand types or writes them (text is read as one by `KeyPart::Str`).
        if let Some(micros) = instant_micros(array, row) {
            enc.push(KeyPart::Instant(micros));
            return true;
        }
    }
    let part = match array.data_type() {
        DataType::Int8 => int!(Int8Type, Int),
        DataType::Int16 => int!(Int16Type, Int),
        DataType::Int32 => int!(Int32Type, Int),
        DataType::Int64 => int!(Int64Type, Int),
        DataType::UInt8 => int!(UInt8Type, UInt),
        DataType::UInt16 => int!(UInt16Type, UInt),
        DataType::UInt32 => int!(UInt32Type, UInt),
        DataType::UInt64 => int!(UInt64Type, UInt),
        DataType::Date32 => int!(Date32Type, Int),
        DataType::Date64 => int!(Date64Type, Int),
        DataType::Timestamp(TimeUnit::Second, _) => int!(TimestampSecondType, Int),
        DataType::Timestamp(TimeUnit::Millisecond, _) => int!(TimestampMillisecondType, Int),
        DataType::Timestamp(TimeUnit::Microsecond, _) => int!(TimestampMicrosecondType, Int),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => int!(TimestampNanosecondType, Int),
        DataType::Float32 => KeyPart::Float32(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => KeyPart::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, scale) => KeyPart::Decimal {
            mantissa: array.as_primitive::<Decimal128Type>().value(row),
            scale: *scale,
        },
        DataType::Utf8 => KeyPart::Str(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => KeyPart::Str(array.as_string::<i64>().value(row)),
        DataType::Utf8View => KeyPart::Str(array.as_string_view().value(row)),
        _ => return false,
    };
    enc.push(part);
    true
}

/// A virtual key the profile suggests ([`BatchPlan::suggest_virtual_key`]).
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualKeySuggestion {
    /// The columns, in the order they were chosen.
    pub columns: Vec<String>,
    /// The share of the sampled rows whose (normalised) virtual key no
    /// other sampled row has.
    pub unique_share: f64,
}

impl BatchPlan {
    /// The smallest set of at most three columns that the plan leaves
    /// unmarked (codes, categories, calendar fields, identifiers other than
    /// the key) whose normalised values tell the rows of `batches` apart:
    /// chosen greedily, each step adding the column that gives the most
    /// distinct values together with those chosen, until 99% of the rows
    /// are unique or no column helps. `None` when no set makes at least
    /// half of the rows unique.
    pub fn suggest_virtual_key(&self, batches: &[RecordBatch]) -> Option<VirtualKeySuggestion> {
        use std::collections::HashMap;
        use std::hash::{DefaultHasher, Hash, Hasher};
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            return None;
        }
        let candidates: Vec<usize> = (0..self.schema.fields().len())
            .filter(|i| !self.key.contains(i) && !self.marked.contains(i))
            .filter(|&i| {
                let dt = self.schema.field(i).data_type();
                !matches!(
                    dt,
                    DataType::Boolean | DataType::Binary | DataType::LargeBinary
                )
            })
            .collect();
        // Per candidate, each row's normalised value hashed (None: null).
        let mut values: Vec<Vec<Option<u64>>> = vec![Vec::with_capacity(rows); candidates.len()];
        for batch in batches {
            for (j, &i) in candidates.iter().enumerate() {
                let array = batch.column(i);
                let (mut enc, mut text) = (KeyEncoder::new(), String::new());
                for row in 0..batch.num_rows() {
                    enc.clear();
                    values[j].push(
                        push_virtual_key_part(array.as_ref(), row, &mut enc, &mut text).then(
                            || {
                                let mut h = DefaultHasher::new();
                                enc.as_bytes().hash(&mut h);
                                h.finish()
                            },
                        ),
                    );
                }
            }
        }
        // (distinct values, rows whose value no other row has).
        let unique = |chosen: &[usize]| -> (usize, usize) {
            let mut seen: HashMap<u64, u32> = HashMap::with_capacity(rows);
            let mut keys = Vec::with_capacity(rows);
            for row in 0..rows {
                let mut h = DefaultHasher::new();
                let mut whole = true;
                for column in chosen.iter().map(|&j| &values[j]) {
                    match column[row] {
                        Some(v) => v.hash(&mut h),
                        None => whole = false,
                    }
                }
                let key = whole.then(|| h.finish());
                if let Some(k) = key {
                    *seen.entry(k).or_default() += 1;
                }
                keys.push(key);
            }
            let alone = keys.iter().flatten().filter(|k| seen[k] == 1).count();
            (seen.len(), alone)
        };
        let (mut chosen, mut distinct, mut best) = (Vec::new(), 0, 0);
        while chosen.len() < 3 && (best as f64) < 0.99 * rows as f64 {
            let next = (0..candidates.len())
                .filter(|j| !chosen.contains(j))
                .map(|j| {
                    let mut with = chosen.clone();
                    with.push(j);
                    (unique(&with), j)
                })
                .max_by_key(|&((d, u), j)| (d, u, std::cmp::Reverse(j)));
            match next {
                Some(((d, u), j)) if d > distinct => {
                    chosen.push(j);
                    (distinct, best) = (d, u);
                }
                _ => break,
            }
        }
        let share = best as f64 / rows as f64;
        (share >= 0.5).then(|| VirtualKeySuggestion {
            columns: chosen
                .iter()
                .map(|&j| self.schema.field(candidates[j]).name().clone())
                .collect(),
            unique_share: share,
        })
    }
}

/// The value of a 64-bit timestamp array at `row`.
fn array_i64(array: &dyn Array, row: usize) -> i64 {
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            array.as_primitive::<TimestampSecondType>().value(row)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            array.as_primitive::<TimestampMillisecondType>().value(row)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            array.as_primitive::<TimestampMicrosecondType>().value(row)
        }
        _ => array.as_primitive::<TimestampNanosecondType>().value(row),
    }
}

/// The text of a text array at `row` (`None` for another type, a null or a
/// row past the end).
pub(super) fn text_at(array: &dyn Array, row: usize) -> Option<&str> {
    if row >= array.len() || array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Some(array.as_string::<i64>().value(row)),
        DataType::Utf8View => Some(array.as_string_view().value(row)),
        _ => None,
    }
}

/// The instant of a date or time cell, in microseconds since the epoch,
/// whatever its type's unit (a timestamp, a date); `None` for a null or
/// another type.
pub(super) fn instant_micros(array: &dyn Array, row: usize) -> Option<i64> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Timestamp(unit, _) => Some(crate::engine::instant_micros(
            array_i64(array, row),
            super::units_per_second(unit),
        )),
        DataType::Date32 => Some(
            i64::from(array.as_primitive::<Date32Type>().value(row)).saturating_mul(86_400_000_000),
        ),
        DataType::Date64 => Some(crate::engine::instant_micros(
            array.as_primitive::<Date64Type>().value(row),
            1_000,
        )),
        _ => None,
    }
}

/// [`instant_micros`] of a date or time cell, or of text that reads as one
/// (`2013-01-01 05:00:00`, see [`KeyPart::Str`]); `None` for anything else.
pub(super) fn cell_instant(array: &dyn Array, row: usize) -> Option<i64> {
    instant_micros(array, row)
        .or_else(|| text_at(array, row).and_then(|t| crate::timefmt::text_micros(t.trim())))
}

/// [`push_key_part`] for a virtual key: text normalised (see
/// [`BatchPlan::use_virtual_key`]) in `buffer` first.
pub(super) fn push_virtual_key_part(
    array: &dyn Array,
    row: usize,
    enc: &mut KeyEncoder,
    buffer: &mut String,
) -> bool {
    if array.is_null(row) {
        return false;
    }
    // Dates and times are one instant however a file spells or types them
    // (a CSV's text, a Parquet timestamp in any unit, a date).
    if let Some(micros) = cell_instant(array, row) {
        enc.push(KeyPart::Instant(micros));
        return true;
    }
    let Some(text) = text_at(array, row) else {
        return push_key_part(array, row, enc);
    };
    buffer.clear();
    for word in text.split_whitespace() {
        if !buffer.is_empty() {
            buffer.push(' ');
        }
        buffer.extend(word.chars().flat_map(char::to_lowercase));
    }
    if buffer.is_empty() {
        return false;
    }
    enc.push(KeyPart::Str(buffer));
    true
}

impl Watermarker {
    /// The selection of a batch's rows (rows with a null key part are skipped).
    pub fn select_batch(&self, batch: &RecordBatch, plan: &BatchPlan) -> Selection {
        self.select(batch.num_rows(), row_keys(batch, plan))
    }
}

/// What encodes the key of each row of `batch` under `plan` (its key
/// columns, or its virtual key); `false` for a row without one.
pub(super) fn row_keys<'a>(
    batch: &'a RecordBatch,
    plan: &BatchPlan,
) -> impl Fn(usize, &mut KeyEncoder) -> bool + Sync + 'a {
    let keys: Vec<&ArrayRef> = plan.key.iter().map(|&i| batch.column(i)).collect();
    let (virtual_key, legacy) = (plan.virtual_key, plan.legacy_time_keys);
    move |row, enc| {
        enc.set_legacy_time_keys(legacy);
        if virtual_key {
            // One normalising buffer per worker thread, not one per row.
            thread_local!(static TEXT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) });
            TEXT.with_borrow_mut(|text| {
                keys.iter()
                    .all(|k| push_virtual_key_part(k.as_ref(), row, enc, text))
            })
        } else {
            keys.iter().all(|k| push_key_part(k.as_ref(), row, enc))
        }
    }
}
