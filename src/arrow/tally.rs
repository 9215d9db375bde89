//! Tallying the votes of batches and streams.

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_schema::{ArrowError, DataType};

use super::{
    BatchPlan, Error, Result, match_primitive, str_refs, timestamp_values, units_per_second,
    validity,
};
use crate::{Cell, ColumnRef, Found, Tally, Watermarker};

impl Watermarker {
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
        for (j, (&i, tally)) in plan.marked.iter().zip(tallies.iter_mut()).enumerate() {
            let array = batch.column(i).as_ref();
            let nulls = array.logical_nulls();
            let valid = nulls.as_ref().map(validity);
            let limits = &plan.limits[j];
            if plan.text_numbers[j] {
                let at = limits.float_decimals;
                let cells: Vec<Cell> = str_refs(array)
                    .iter()
                    .map(|v| Cell::from_number_text(v, at).0)
                    .collect();
                self.tally_column_within(&sel, ColumnRef::Cells(&cells), valid, tally, limits)?;
                continue;
            }
            macro_rules! prim {
                ($t:ty, $variant:ident) => {
                    self.tally_column_within(
                        &sel,
                        ColumnRef::$variant(array.as_primitive::<$t>().values()),
                        valid,
                        tally,
                        limits,
                    )?
                };
            }
            match_primitive!(array.data_type(), prim, {
                &DataType::Decimal128(_, scale) => {
                    let counts = array.as_primitive::<Decimal128Type>().values();
                    self.tally_column_within(&sel, ColumnRef::Decimal { counts, scale }, valid, tally, limits)?;
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
                    self.tally_column_within(&sel, ColumnRef::Cells(&cells), valid, tally, limits)?;
                }
                DataType::Timestamp(unit, _) => {
                    let units_per_second = units_per_second(unit);
                    let values = timestamp_values(array, unit);
                    self.tally_column_within(
                        &sel,
                        ColumnRef::Timestamp {
                            values,
                            units_per_second,
                        },
                        valid,
                        tally, limits)?;
                }
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    let values = str_refs(array);
                    self.tally_column_within(&sel, ColumnRef::Strs(&values), valid, tally, limits)?;
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
}
