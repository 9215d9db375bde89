//! Apache Arrow adapter (feature `arrow`): embed into and extract from
//! [`RecordBatch`](arrow_array::RecordBatch)es and [`RecordBatchReader`](arrow_array::RecordBatchReader) streams.
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

mod convert;
mod embed;
mod leak;
mod plan;
mod profile;
mod pseudo;
mod pseudo_rows;
mod structure;
mod tally;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_buffer::NullBuffer;
use arrow_schema::{ArrowError, DataType, TimeUnit};

pub use convert::{batch_to_table, table_to_batch};
pub use embed::EmbedStream;
pub use leak::{BatchJoiner, LeakTally};
pub use plan::{BatchPlan, PROFILE_ROWS, VirtualKeySuggestion};
pub use pseudo::{PseudoMatch, pseudo_column_schema};
pub use pseudo_rows::{PSEUDO_ROW_BATCH, PseudoRowMatch, PseudoRows};

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
    /// An owner's rule names no column of the schema, a key column, or a
    /// kind the column cannot be.
    #[error(transparent)]
    Rule(#[from] crate::RuleError),
    /// No column of the table can carry a mark without changing what it
    /// means (so there is nothing to mark, or to read); the text names each
    /// column and why.
    #[error("no column can carry a mark without changing what the data means: {0}")]
    NothingToMark(String),
    /// A batch's schema differs from the plan's.
    #[error("batch schema differs from the first batch's: {0}")]
    SchemaMismatch(String),
    /// An error of the engine.
    #[error(transparent)]
    Core(#[from] crate::Error),
    /// An error building Arrow data.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// An error of the stream being read (see [`EmbedStream`]).
    #[error(transparent)]
    Input(ArrowError),
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

pub(crate) use match_primitive;

/// The engine's view of an array's null buffer (from
/// `Array::logical_nulls`, shared, not copied): its bitmap.
pub(crate) fn validity(nulls: &NullBuffer) -> crate::Validity<'_> {
    let bits = nulls.inner();
    crate::Validity::Bits {
        bytes: bits.values(),
        offset: bits.offset(),
        len: bits.len(),
    }
}

/// The `i64` values of a timestamp array of `unit`.
pub(crate) fn timestamp_values<'a>(array: &'a dyn Array, unit: &TimeUnit) -> &'a [i64] {
    use arrow_array::types::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
        TimestampSecondType,
    };
    match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().values(),
        TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().values(),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().values(),
        TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().values(),
    }
}

pub(crate) fn units_per_second(unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// The strings of a string array, borrowed (null slots hold whatever
/// string the array has there; they are never read).
pub(crate) fn str_refs(array: &dyn Array) -> Vec<&str> {
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

/// The strings of a string array as owned values (nulls as empty strings).
pub(crate) fn strings(array: &dyn Array) -> Vec<String> {
    str_refs(array).into_iter().map(str::to_owned).collect()
}
