//! Apache Arrow adapter (feature `arrow`): embed into and extract from
//! [`RecordBatch`]es and [`RecordBatchReader`] streams.
//!
//! Types: `Int8`–`Int64`, `UInt8`–`UInt64`, `Float32`/`Float64` (marked in
//! their printed digits), `Decimal128`/`Decimal256` (at the column's scale),
//! `Utf8`/`LargeUtf8`/`Utf8View`, `Timestamp` of every unit (in seconds) and,
//! when named explicitly, `Date32`/`Date64` (in days). Type dispatch happens
//! once per column per batch; values are marked in place in a copy of the
//! value buffer; nulls come from the validity bitmap and are kept.
//!
//! A batch gives the same marks as the same rows through any other adapter:
//! keys and values are interpreted by the same core.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{Int64Array, RecordBatch};
//! use arrow_schema::{DataType, Field, Schema};
//! use dbwatermark::arrow::BatchPlan;
//! use dbwatermark::{Config, Tally, WatermarkKey, Watermarker};
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("id", DataType::Int64, false),
//!     Field::new("amount", DataType::Int64, true),
//! ]));
//! let batch = RecordBatch::try_new(schema.clone(), vec![
//!     Arc::new(Int64Array::from_iter_values(0..5000)),
//!     Arc::new(Int64Array::from_iter_values((0..5000).map(|i| i * 31 % 1000))),
//! ])?;
//! let wm = Watermarker::new(WatermarkKey::new("secret")?, Config::default());
//! let plan = BatchPlan::new(&schema, &["id"], None)?;
//! let payload = wm.payload("partner-9")?;
//! let density = wm.density_for(Some(batch.num_rows()), &payload);
//! let (marked, _reports) = wm.embed_batch(&batch, &plan, &payload, density)?;
//!
//! let mut tallies = plan.new_tallies();
//! wm.tally_batch(&marked, &plan, &mut tallies)?;
//! assert_eq!(wm.decode(&tallies)[0].content, "partner-9");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, LargeStringArray, PrimitiveArray, RecordBatch,
    RecordBatchReader, StringArray, StringViewArray,
};
use arrow_buffer::i256;
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef, TimeUnit};

use crate::{
    Cell, ColumnMut, ColumnRef, ColumnReport, Density, Found, KeyEncoder, KeyPart, Payload,
    Selection, Tally, Watermarker,
};

/// Errors of the Arrow adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A named column is not in the schema.
    #[error("column `{0}` not found")]
    MissingColumn(String),
    /// A column's type cannot be a key or carry marks.
    #[error("column `{column}` has type {data_type}, which {role}")]
    UnsupportedType {
        /// The column.
        column: String,
        /// Its Arrow type.
        data_type: DataType,
        /// "cannot be a primary key" or "cannot carry marks".
        role: &'static str,
    },
    /// A column was named both as key and as a column to mark.
    #[error("column `{0}` is a primary-key column and is never marked")]
    KeyColumnMarked(String),
    /// No primary-key column was named.
    #[error("a primary key is required: name at least one key column")]
    NoKey,
    /// A batch's schema differs from the plan's.
    #[error("batch schema differs from the first batch's: {0}")]
    SchemaMismatch(String),
    /// An error of the engine.
    #[error(transparent)]
    Core(#[from] crate::Error),
    /// An error reading or building Arrow data.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
}

/// Shorthand for results of this adapter.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A `match` on a `DataType` whose first arms map the twelve primitive
/// types that have a core column variant of the same name, calling the
/// caller's `$prim!(ArrowType, Variant)` for each; the caller's own arms
/// follow in braces.
macro_rules! match_primitive {
    ($dt:expr, $prim:ident, { $($rest:tt)* }) => {
        match $dt {
            DataType::Int8 => $prim!(Int8Type, Int8),
            DataType::Int16 => $prim!(Int16Type, Int16),
            DataType::Int32 => $prim!(Int32Type, Int32),
            DataType::Int64 => $prim!(Int64Type, Int64),
            DataType::UInt8 => $prim!(UInt8Type, UInt8),
            DataType::UInt16 => $prim!(UInt16Type, UInt16),
            DataType::UInt32 => $prim!(UInt32Type, UInt32),
            DataType::UInt64 => $prim!(UInt64Type, UInt64),
            DataType::Float32 => $prim!(Float32Type, Float32),
            DataType::Float64 => $prim!(Float64Type, Float64),
            DataType::Date32 => $prim!(Date32Type, Date32),
            DataType::Date64 => $prim!(Date64Type, Date64),
            $($rest)*
        }
    };
}

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
    key: Vec<usize>,
    marked: Vec<usize>,
    skipped: Vec<String>,
}

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
            marked,
            skipped,
        })
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

    /// Names of the non-key columns left out by default because their type
    /// cannot carry marks (or they are dates).
    pub fn skipped_names(&self) -> &[String] {
        &self.skipped
    }

    /// One empty tally per marked column.
    pub fn new_tallies(&self) -> Vec<Tally> {
        self.marked.iter().map(|_| Tally::new()).collect()
    }

    fn check(&self, batch: &RecordBatch) -> Result<()> {
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
fn push_key_part(array: &dyn Array, row: usize, enc: &mut KeyEncoder) -> bool {
    if array.is_null(row) {
        return false;
    }
    macro_rules! int {
        ($t:ty, $variant:ident) => {
            KeyPart::$variant(array.as_primitive::<$t>().value(row).into())
        };
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

fn validity(array: &dyn Array) -> Option<Vec<bool>> {
    array.logical_nulls().map(|n| n.iter().collect())
}

fn units_per_second(unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// The strings of a string array, borrowed (null slots hold whatever
/// string the array has there; they are never read).
fn str_refs(array: &dyn Array) -> Vec<&str> {
    match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            (0..a.len()).map(|i| a.value(i)).collect()
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            (0..a.len()).map(|i| a.value(i)).collect()
        }
        _ => {
            let a = array.as_string_view();
            (0..a.len()).map(|i| a.value(i)).collect()
        }
    }
}

/// A string array of type `dt` from owned strings.
fn string_array(dt: &DataType, values: Vec<String>, valid: Option<&[bool]>) -> ArrayRef {
    let items = values
        .into_iter()
        .enumerate()
        .map(|(i, s)| valid.is_none_or(|v| v[i]).then_some(s));
    match dt {
        DataType::Utf8 => Arc::new(items.collect::<StringArray>()),
        DataType::LargeUtf8 => Arc::new(items.collect::<LargeStringArray>()),
        _ => Arc::new(items.collect::<StringViewArray>()),
    }
}

/// The marked version of string array `array`: each value copied once, with
/// its new end mark where embedding recorded one.
fn edited_string_array(array: &dyn Array, values: &[&str], marks: &[Option<bool>]) -> ArrayRef {
    use arrow_array::builder::{GenericStringBuilder, StringViewBuilder};
    let bytes: usize = values.iter().map(|v| v.len()).sum::<usize>() + 3 * marks.len();
    let mut scratch = String::new();
    let mut each = |append: &mut dyn FnMut(Option<&str>)| {
        for (i, (value, mark)) in values.iter().zip(marks).enumerate() {
            if array.is_null(i) {
                append(None);
            } else if let Some(bit) = mark {
                let (body, end) = crate::codec::marked_text(value, *bit);
                scratch.clear();
                scratch.push_str(body);
                scratch.push(end);
                append(Some(&scratch));
            } else {
                append(Some(value));
            }
        }
    };
    match array.data_type() {
        DataType::Utf8 => {
            let mut b = GenericStringBuilder::<i32>::with_capacity(values.len(), bytes);
            each(&mut |v| b.append_option(v));
            Arc::new(b.finish())
        }
        DataType::LargeUtf8 => {
            let mut b = GenericStringBuilder::<i64>::with_capacity(values.len(), bytes);
            each(&mut |v| b.append_option(v));
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringViewBuilder::with_capacity(values.len());
            each(&mut |v| b.append_option(v));
            Arc::new(b.finish())
        }
    }
}

/// The strings of a string array as owned values (nulls as empty strings).
fn strings(array: &dyn Array) -> Vec<String> {
    str_refs(array).into_iter().map(str::to_owned).collect()
}

/// A copy of a primitive array's values, marked in place by `mark`.
fn mark_primitive<T: ArrowPrimitiveType>(
    array: &dyn Array,
    mark: impl FnOnce(&mut [T::Native], Option<&[bool]>) -> crate::Result<ColumnReport>,
) -> Result<(ArrayRef, ColumnReport)> {
    let a = array.as_primitive::<T>();
    let mut values = a.values().to_vec();
    let report = mark(&mut values, validity(array).as_deref())?;
    let out = PrimitiveArray::<T>::new(values.into(), a.nulls().cloned())
        .with_data_type(a.data_type().clone());
    Ok((Arc::new(out), report))
}

/// Largest count of a decimal of `precision` digits that fits in `i128`.
fn decimal_cap(precision: u8) -> i128 {
    10i128
        .checked_pow(u32::from(precision))
        .map_or(i128::MAX, |p| p - 1)
}

impl Watermarker {
    /// The selection of a batch's rows (rows with a null key part are skipped).
    pub fn select_batch(&self, batch: &RecordBatch, plan: &BatchPlan) -> Selection {
        let keys: Vec<&ArrayRef> = plan.key.iter().map(|&i| batch.column(i)).collect();
        self.select(batch.num_rows(), |row, enc| {
            keys.iter().all(|k| push_key_part(k.as_ref(), row, enc))
        })
    }

    /// Embeds `payload` into the marked columns of `batch` at `density`,
    /// returning a new batch with the same schema and nulls and one report
    /// per marked column.
    ///
    /// # Errors
    ///
    /// [`Error::SchemaMismatch`] if `batch` does not fit the plan.
    pub fn embed_batch(
        &self,
        batch: &RecordBatch,
        plan: &BatchPlan,
        payload: &Payload,
        density: Density,
    ) -> Result<(RecordBatch, Vec<ColumnReport>)> {
        plan.check(batch)?;
        let selection = self.select_batch(batch, plan);
        let mut columns = batch.columns().to_vec();
        let mut reports = Vec::with_capacity(plan.marked.len());
        for &i in &plan.marked {
            let (array, report) =
                self.embed_array(&selection, payload, density, batch.column(i).as_ref())?;
            columns[i] = array;
            reports.push(report);
        }
        let out = RecordBatch::try_new(batch.schema(), columns)?;
        Ok((out, reports))
    }

    fn embed_array(
        &self,
        sel: &Selection,
        payload: &Payload,
        density: Density,
        array: &dyn Array,
    ) -> Result<(ArrayRef, ColumnReport)> {
        macro_rules! prim {
            ($t:ty, $variant:ident) => {
                mark_primitive::<$t>(array, |v, valid| {
                    self.embed_column(sel, payload, density, ColumnMut::$variant(v), valid)
                })
            };
        }
        match_primitive!(array.data_type(), prim, {
            &DataType::Decimal128(precision, scale) => {
                mark_primitive::<Decimal128Type>(array, |counts, valid| {
                    let column = ColumnMut::Decimal {
                        counts,
                        scale,
                        precision,
                    };
                    self.embed_column(sel, payload, density, column, valid)
                })
            }
            DataType::Timestamp(unit, _) => {
                let units_per_second = units_per_second(unit);
                macro_rules! ts {
                    ($t:ty) => {
                        mark_primitive::<$t>(array, |values, valid| {
                            let column = ColumnMut::Timestamp {
                                values,
                                units_per_second,
                            };
                            self.embed_column(sel, payload, density, column, valid)
                        })
                    };
                }
                match unit {
                    TimeUnit::Second => ts!(TimestampSecondType),
                    TimeUnit::Millisecond => ts!(TimestampMillisecondType),
                    TimeUnit::Microsecond => ts!(TimestampMicrosecondType),
                    TimeUnit::Nanosecond => ts!(TimestampNanosecondType),
                }
            }
            &DataType::Decimal256(precision, scale) => {
                mark_primitive::<Decimal256Type>(array, |values, valid| {
                    // Values within i128 are marked; wider ones are unmarkable.
                    let max = decimal_cap(precision);
                    let mut cells: Vec<Cell> = values
                        .iter()
                        .map(|v| match v.to_i128() {
                            Some(count) => Cell::Decimal { count, scale, max },
                            None => Cell::Unmarkable,
                        })
                        .collect();
                    let report = self.embed_column(
                        sel,
                        payload,
                        density,
                        ColumnMut::Cells(&mut cells),
                        valid,
                    )?;
                    for (v, c) in values.iter_mut().zip(&cells) {
                        if let Cell::Decimal { count, .. } = c {
                            *v = i256::from_i128(*count);
                        }
                    }
                    Ok(report)
                })
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let values = str_refs(array);
                let mut marks = vec![None; values.len()];
                let valid = validity(array);
                let column = ColumnMut::TextEdits {
                    values: &values,
                    marks: &mut marks,
                };
                let report = self.embed_column(sel, payload, density, column, valid.as_deref())?;
                let out = if report.changed == 0 {
                    array.slice(0, array.len())
                } else {
                    edited_string_array(array, &values, &marks)
                };
                Ok((out, report))
            }
            dt => Err(Error::SchemaMismatch(format!(
                "type {dt} cannot carry marks"
            ))),
        })
    }

    /// Adds the votes of `batch`'s marked columns to `tallies` (one per
    /// marked column, see [`BatchPlan::new_tallies`]).
    ///
    /// # Errors
    ///
    /// [`Error::SchemaMismatch`] if `batch` does not fit the plan.
    pub fn tally_batch(
        &self,
        batch: &RecordBatch,
        plan: &BatchPlan,
        tallies: &mut [Tally],
    ) -> Result<()> {
        plan.check(batch)?;
        let sel = self.select_batch(batch, plan);
        for (&i, tally) in plan.marked.iter().zip(tallies.iter_mut()) {
            let array = batch.column(i).as_ref();
            let valid = validity(array);
            let valid = valid.as_deref();
            macro_rules! prim {
                ($t:ty, $variant:ident) => {
                    self.tally_column(
                        &sel,
                        ColumnRef::$variant(array.as_primitive::<$t>().values()),
                        valid,
                        tally,
                    )?
                };
            }
            match_primitive!(array.data_type(), prim, {
                &DataType::Decimal128(_, scale) => {
                    let counts = array.as_primitive::<Decimal128Type>().values();
                    self.tally_column(&sel, ColumnRef::Decimal { counts, scale }, valid, tally)?;
                }
                &DataType::Decimal256(_, scale) => {
                    let cells: Vec<Cell> = array
                        .as_primitive::<Decimal256Type>()
                        .values()
                        .iter()
                        .map(|v| match v.to_i128() {
                            Some(count) => Cell::Decimal {
                                count,
                                scale,
                                max: i128::MAX,
                            },
                            None => Cell::Unmarkable,
                        })
                        .collect();
                    self.tally_column(&sel, ColumnRef::Cells(&cells), valid, tally)?;
                }
                DataType::Timestamp(unit, _) => {
                    let units_per_second = units_per_second(unit);
                    let values: &[i64] = match unit {
                        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().values(),
                        TimeUnit::Millisecond => {
                            array.as_primitive::<TimestampMillisecondType>().values()
                        }
                        TimeUnit::Microsecond => {
                            array.as_primitive::<TimestampMicrosecondType>().values()
                        }
                        TimeUnit::Nanosecond => {
                            array.as_primitive::<TimestampNanosecondType>().values()
                        }
                    };
                    self.tally_column(
                        &sel,
                        ColumnRef::Timestamp {
                            values,
                            units_per_second,
                        },
                        valid,
                        tally,
                    )?;
                }
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    let values = str_refs(array);
                    self.tally_column(&sel, ColumnRef::Strs(&values), valid, tally)?;
                }
                dt => {
                    return Err(Error::SchemaMismatch(format!(
                        "type {dt} cannot carry marks"
                    )));
                }
            })
        }
        Ok(())
    }

    /// Extracts the watermarks of a stream, batch by batch: memory holds one
    /// batch and one tally per marked column. `Found::columns` index
    /// [`BatchPlan::marked_names`].
    ///
    /// # Errors
    ///
    /// Errors of the reader, or [`Error::SchemaMismatch`].
    pub fn extract_stream(
        &self,
        reader: impl Iterator<Item = Result<RecordBatch, ArrowError>>,
        plan: &BatchPlan,
    ) -> Result<(Vec<Found>, Vec<Tally>)> {
        let mut tallies = plan.new_tallies();
        for batch in reader {
            self.tally_batch(&batch?, plan, &mut tallies)?;
        }
        Ok((self.decode(&tallies), tallies))
    }

    /// Embeds into a stream lazily: each batch is marked when the returned
    /// reader yields it, so memory holds one batch at a time.
    pub fn embed_stream<'a, R: RecordBatchReader + 'a>(
        &'a self,
        reader: R,
        plan: &'a BatchPlan,
        payload: &'a Payload,
        density: Density,
    ) -> EmbedStream<'a, R> {
        EmbedStream {
            wm: self,
            reader,
            plan,
            payload,
            density,
            reports: plan
                .marked
                .iter()
                .map(|_| ColumnReport::default())
                .collect(),
        }
    }
}

/// A [`RecordBatchReader`] that marks each batch of another as it is read.
pub struct EmbedStream<'a, R> {
    wm: &'a Watermarker,
    reader: R,
    plan: &'a BatchPlan,
    payload: &'a Payload,
    density: Density,
    reports: Vec<ColumnReport>,
}

impl<R> EmbedStream<'_, R> {
    /// The reports of the batches read so far, one per marked column.
    pub fn reports(&self) -> &[ColumnReport] {
        &self.reports
    }
}

impl<R: RecordBatchReader> Iterator for EmbedStream<'_, R> {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = match self.reader.next()? {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        Some(
            match self
                .wm
                .embed_batch(&batch, self.plan, self.payload, self.density)
            {
                Ok((out, reports)) => {
                    for (total, r) in self.reports.iter_mut().zip(&reports) {
                        total.merge(r);
                    }
                    Ok(out)
                }
                Err(Error::Arrow(e)) => Err(e),
                Err(e) => Err(ArrowError::ExternalError(Box::new(e))),
            },
        )
    }
}

impl<R: RecordBatchReader> RecordBatchReader for EmbedStream<'_, R> {
    fn schema(&self) -> SchemaRef {
        self.reader.schema()
    }
}

/// The columns of a core [`Table`](crate::Table) as a [`RecordBatch`]
/// (key columns first), for writing generated or edited tables to files.
///
/// # Errors
///
/// [`Error::Arrow`] if the columns cannot form a batch.
pub fn table_to_batch(table: &crate::Table) -> Result<RecordBatch> {
    use crate::Values;
    use arrow_array::builder::BooleanBufferBuilder;
    use arrow_buffer::NullBuffer;
    use arrow_schema::Field;

    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for c in table.key.iter().chain(&table.columns) {
        let nulls = c.validity.as_ref().map(|v| {
            let mut b = BooleanBufferBuilder::new(v.len());
            b.append_slice(v);
            NullBuffer::new(b.finish())
        });
        macro_rules! prim {
            ($t:ty, $v:expr) => {
                Arc::new(PrimitiveArray::<$t>::new($v.clone().into(), nulls.clone())) as ArrayRef
            };
        }
        let array: ArrayRef = match &c.values {
            Values::Int8(v) => prim!(Int8Type, v),
            Values::Int16(v) => prim!(Int16Type, v),
            Values::Int32(v) => prim!(Int32Type, v),
            Values::Int64(v) => prim!(Int64Type, v),
            Values::UInt8(v) => prim!(UInt8Type, v),
            Values::UInt16(v) => prim!(UInt16Type, v),
            Values::UInt32(v) => prim!(UInt32Type, v),
            Values::UInt64(v) => prim!(UInt64Type, v),
            Values::Float32(v) => prim!(Float32Type, v),
            Values::Float64(v) => prim!(Float64Type, v),
            Values::Date32(v) => prim!(Date32Type, v),
            Values::Date64(v) => prim!(Date64Type, v),
            Values::Decimal {
                counts,
                scale,
                precision,
            } => Arc::new(
                PrimitiveArray::<Decimal128Type>::new(counts.clone().into(), nulls.clone())
                    .with_precision_and_scale(*precision, *scale)?,
            ),
            Values::Timestamp {
                values,
                units_per_second,
            } => match units_per_second {
                1 => prim!(TimestampSecondType, values),
                1_000 => prim!(TimestampMillisecondType, values),
                1_000_000 => prim!(TimestampMicrosecondType, values),
                _ => prim!(TimestampNanosecondType, values),
            },
            Values::Text(v) => string_array(&DataType::Utf8, v.clone(), c.validity.as_deref()),
        };
        fields.push(Field::new(
            &c.name,
            array.data_type().clone(),
            nulls.is_some(),
        ));
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// A [`RecordBatch`] as a core [`Table`](crate::Table) with `key` as its key
/// columns; columns of types the core has no values for are left out.
///
/// # Errors
///
/// [`Error::MissingColumn`] for a key column that is not in the batch.
pub fn batch_to_table(batch: &RecordBatch, key: &[&str]) -> Result<crate::Table> {
    use crate::{Column, Values};
    let schema = batch.schema();
    let mut table = crate::Table::default();
    for k in key {
        schema
            .index_of(k)
            .map_err(|_| Error::MissingColumn((*k).to_owned()))?;
    }
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let a = array.as_ref();
        macro_rules! prim {
            ($t:ty, $variant:ident) => {
                Values::$variant(a.as_primitive::<$t>().values().to_vec())
            };
        }
        let values = match_primitive!(field.data_type(), prim, {
            &DataType::Decimal128(precision, scale) => Values::Decimal {
                counts: a.as_primitive::<Decimal128Type>().values().to_vec(),
                scale,
                precision,
            },
            DataType::Timestamp(unit, _) => Values::Timestamp {
                values: match unit {
                    TimeUnit::Second => a.as_primitive::<TimestampSecondType>().values().to_vec(),
                    TimeUnit::Millisecond => a
                        .as_primitive::<TimestampMillisecondType>()
                        .values()
                        .to_vec(),
                    TimeUnit::Microsecond => a
                        .as_primitive::<TimestampMicrosecondType>()
                        .values()
                        .to_vec(),
                    TimeUnit::Nanosecond => a
                        .as_primitive::<TimestampNanosecondType>()
                        .values()
                        .to_vec(),
                },
                units_per_second: units_per_second(unit),
            },
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Values::Text(strings(a)),
            _ => continue,
        });
        let mut column = Column::new(field.name().clone(), values);
        column.validity = validity(a);
        if key.contains(&field.name().as_str()) {
            table.key.push(column);
        } else {
            table.columns.push(column);
        }
    }
    // Key columns in the order given.
    table
        .key
        .sort_by_key(|c| key.iter().position(|k| *k == c.name));
    Ok(table)
}
