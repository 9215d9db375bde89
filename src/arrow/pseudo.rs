//! Pseudo-columns on Arrow batches: the added column's values at embed
//! time, and its votes when a leak is read.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};

use super::plan::row_keys;
use super::{BatchPlan, Result};
use crate::engine::pseudo::{code_of, token_of};
use crate::{Payload, PseudoFormat, Slot, Tally, Watermarker};

/// Rows of a batch that a pseudo-column carries, and of those how many
/// held one of their two keyed values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PseudoMatch {
    /// Rows with a key and a value.
    pub rows: usize,
    /// Rows whose value is one of the two the key gives (a vote each).
    pub matched: usize,
}

impl PseudoMatch {
    /// Whether the column looks like a pseudo-column of this key: at least
    /// half of 100 or more rows matched (a column that is not one matches
    /// about 2 rows in 90 million).
    pub fn is_pseudo_column(&self) -> bool {
        self.rows >= 100 && self.matched * 2 >= self.rows
    }
}

/// The schema of a copy with the pseudo-column `name` added last: nullable
/// `Int64` codes or `Utf8` tokens, as `format` says; `schema`'s metadata is
/// kept.
///
/// # Errors
///
/// [`super::Error::Core`] (an invalid `pseudo-column` setting) for an
/// empty name or one of `schema`'s columns.
pub fn pseudo_column_schema(
    schema: &Schema,
    name: &str,
    format: PseudoFormat,
) -> Result<SchemaRef> {
    if name.is_empty() || schema.column_with_name(name).is_some() {
        return Err(crate::Error::InvalidConfig {
            setting: "pseudo-column",
            reason: format!(
                "the pseudo-column needs a new name, and `{name}` {}",
                if name.is_empty() {
                    "is empty"
                } else {
                    "is already a column"
                }
            ),
        }
        .into());
    }
    let data_type = match format {
        PseudoFormat::Code => DataType::Int64,
        PseudoFormat::Token => DataType::Utf8,
    };
    let mut fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(name, data_type, true)));
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

impl Watermarker {
    /// The pseudo-column of `batch`: for each row, the keyed value
    /// ([`PseudoFormat`]) that carries its payload bit, null for a row
    /// without a key. Every keyed row carries (no real cell changes).
    ///
    /// # Errors
    ///
    /// [`super::Error::SchemaMismatch`] if `batch` does not fit the plan.
    pub fn pseudo_column(
        &self,
        batch: &RecordBatch,
        plan: &BatchPlan,
        payload: &Payload,
        format: PseudoFormat,
    ) -> Result<ArrayRef> {
        plan.check(batch)?;
        let (sel, pairs) = self.select_with_pseudo(batch.num_rows(), row_keys(batch, plan));
        let values = sel.slots().iter().zip(&pairs.pairs).map(|(slot, pair)| {
            let pair = pair.filter(|_| slot.has_key())?;
            Some(pair[usize::from(payload.bit(slot.bin()) ^ slot.mask())])
        });
        Ok(match format {
            PseudoFormat::Code => Arc::new(values.map(|v| v.map(code_of)).collect::<Int64Array>()),
            PseudoFormat::Token => {
                Arc::new(values.map(|v| v.map(token_of)).collect::<StringArray>())
            }
        })
    }

    /// `batch` with its pseudo-column ([`Watermarker::pseudo_column`])
    /// added last, under `schema` (from [`pseudo_column_schema`]); the
    /// rows it carries are counted in `report`.
    ///
    /// # Errors
    ///
    /// [`super::Error::SchemaMismatch`] if `batch` does not fit the plan,
    /// [`super::Error::Arrow`] if `schema` is not `batch`'s with one column
    /// added.
    pub fn with_pseudo_column(
        &self,
        batch: &RecordBatch,
        plan: &BatchPlan,
        payload: &Payload,
        format: PseudoFormat,
        schema: &SchemaRef,
        report: &mut crate::ColumnReport,
    ) -> Result<RecordBatch> {
        let column = self.pseudo_column(batch, plan, payload, format)?;
        report.rows += batch.num_rows();
        report.marked += column.len() - column.null_count();
        report.nulls += column.null_count();
        let mut arrays = batch.columns().to_vec();
        arrays.push(column);
        Ok(RecordBatch::try_new(schema.clone(), arrays)?)
    }

    /// Reads the columns `indices` of `batch` as pseudo-columns (integer
    /// columns as codes, text columns as tokens or codes) and adds a vote
    /// to the matching tally of `tallies` for each row holding one of its
    /// two keyed values; returns what matched in each. A column of another
    /// type matches nothing.
    ///
    /// # Errors
    ///
    /// [`super::Error::SchemaMismatch`] if `batch` does not fit the plan.
    pub fn tally_pseudo_columns(
        &self,
        batch: &RecordBatch,
        plan: &BatchPlan,
        indices: &[usize],
        tallies: &mut [Tally],
    ) -> Result<Vec<PseudoMatch>> {
        plan.check(batch)?;
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let (sel, pairs) = self.select_with_pseudo(batch.num_rows(), row_keys(batch, plan));
        let keyed: Vec<(usize, Slot, [u64; 2])> = sel
            .slots()
            .iter()
            .zip(&pairs.pairs)
            .enumerate()
            .filter_map(|(row, (slot, pair))| {
                Some((row, *slot, (*pair)?)).filter(|_| slot.has_key())
            })
            .collect();
        let mut out = Vec::with_capacity(indices.len());
        for (&index, tally) in indices.iter().zip(tallies.iter_mut()) {
            out.push(tally_one(batch.column(index).as_ref(), &keyed, tally));
        }
        Ok(out)
    }
}

/// The votes of one column over the keyed rows `(row, slot, pair)`.
fn tally_one(
    array: &dyn Array,
    keyed: &[(usize, Slot, [u64; 2])],
    tally: &mut Tally,
) -> PseudoMatch {
    let mut out = PseudoMatch::default();
    let mut vote = |slot: Slot, read: Option<bool>| {
        out.rows += 1;
        if let Some(bit) = read {
            out.matched += 1;
            tally.vote(slot, bit);
        }
    };
    macro_rules! ints {
        ($t:ty) => {{
            let values = array.as_primitive::<$t>();
            for &(row, slot, pair) in keyed {
                if !values.is_null(row) {
                    let v = i64::try_from(values.value(row)).ok();
                    vote(slot, which(v, pair.map(code_of)));
                }
            }
        }};
    }
    macro_rules! texts {
        ($values:expr) => {{
            let values = $values;
            for &(row, slot, pair) in keyed {
                if values.is_null(row) {
                    continue;
                }
                let t = values.value(row).trim();
                let read = match t.parse::<i64>() {
                    Ok(code) => which(Some(code), pair.map(code_of)),
                    Err(_) => {
                        let t = t.to_ascii_uppercase();
                        which(Some(t), pair.map(token_of))
                    }
                };
                vote(slot, read);
            }
        }};
    }
    match array.data_type() {
        DataType::Int64 => ints!(Int64Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Utf8 => texts!(array.as_string::<i32>()),
        DataType::LargeUtf8 => texts!(array.as_string::<i64>()),
        DataType::Utf8View => texts!(array.as_string_view()),
        _ => {}
    }
    out
}

/// Which of the two values `value` is: `Some(false)` for the first,
/// `Some(true)` for the second, `None` for neither or both.
fn which<T: PartialEq>(value: Option<T>, pair: [T; 2]) -> Option<bool> {
    let value = value?;
    match (value == pair[0], value == pair[1]) {
        (true, false) => Some(false),
        (false, true) => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, WatermarkKey};
    use arrow_array::Int64Array;
    use arrow_schema::{Field, Schema};

    fn batch(rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("x", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(1..=rows)),
                Arc::new(Int64Array::from_iter_values(
                    (1..=rows).map(|i| i * 7 % 1000),
                )),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_pseudo_column_reads_back_every_bit_and_other_columns_match_nothing() {
        let wm = Watermarker::new(WatermarkKey::new("k").unwrap(), Config::default());
        let payload = wm.payload("pseudo").unwrap();
        let b = batch(3000);
        let plan = BatchPlan::new(&b.schema(), &["id"], Some(&["x"])).unwrap();
        for format in [PseudoFormat::Code, PseudoFormat::Token] {
            let column = wm.pseudo_column(&b, &plan, &payload, format).unwrap();
            let mut fields: Vec<Field> = b
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.push(Field::new("ref", column.data_type().clone(), true));
            let mut arrays = b.columns().to_vec();
            arrays.push(column);
            let with = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
            let plan = BatchPlan::new(&with.schema(), &["id"], Some(&["x"])).unwrap();
            let mut tallies = vec![Tally::new(), Tally::new()];
            let m = wm
                .tally_pseudo_columns(&with, &plan, &[1, 2], &mut tallies)
                .unwrap();
            assert_eq!(m[0].matched, 0, "{format:?}");
            assert_eq!((m[1].rows, m[1].matched), (3000, 3000), "{format:?}");
            assert!(m[1].is_pseudo_column() && !m[0].is_pseudo_column());
            let found = wm.decode(&tallies[1..]);
            assert_eq!(
                found.first().map(|f| f.content.as_str()),
                Some("pseudo"),
                "{format:?}"
            );
        }
    }
}
