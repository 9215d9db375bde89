//! Embedding into batches and streams.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, PrimitiveArray, RecordBatch, RecordBatchReader,
};
use arrow_buffer::i256;
use arrow_schema::{ArrowError, DataType, SchemaRef, TimeUnit};

use super::{BatchPlan, Error, Result, match_primitive, str_refs, units_per_second, validity};
use crate::{
    Cell, ColumnMut, ColumnReport, Density, Limits, Payload, Selection, Validity, Watermarker,
};

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
                let (body, end) = crate::marked_text(value, *bit);
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

/// A copy of a primitive array's values, marked in place by `mark`.
fn mark_primitive<T: ArrowPrimitiveType>(
    array: &dyn Array,
    mark: impl FnOnce(&mut [T::Native], Option<Validity<'_>>) -> crate::Result<ColumnReport>,
) -> Result<(ArrayRef, ColumnReport)> {
    let a = array.as_primitive::<T>();
    let mut values = a.values().to_vec();
    let nulls = array.logical_nulls();
    let report = mark(&mut values, nulls.as_ref().map(validity))?;
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
        for (j, &i) in plan.marked.iter().enumerate() {
            let array = batch.column(i).as_ref();
            let limits = &plan.limits[j];
            let (array, report) = if plan.text_numbers[j] {
                self.embed_text_numbers(&selection, payload, density, array, limits)?
            } else {
                self.embed_array(&selection, payload, density, array, limits)?
            };
            columns[i] = array;
            reports.push(report);
        }
        let out = RecordBatch::try_new(batch.schema(), columns)?;
        Ok((out, reports))
    }

    /// Marks a string column of numbers as numbers, each at the scale its
    /// text has; only the changed cells are rewritten, so every other cell
    /// (and every `N/A`) keeps its exact text.
    fn embed_text_numbers(
        &self,
        sel: &Selection,
        payload: &Payload,
        density: Density,
        array: &dyn Array,
        limits: &Limits,
    ) -> Result<(ArrayRef, ColumnReport)> {
        let values = str_refs(array);
        let at = limits.float_decimals;
        let (mut cells, written): (Vec<Cell>, Vec<i8>) =
            values.iter().map(|v| Cell::from_number_text(v, at)).unzip();
        let original = cells.clone();
        let nulls = array.logical_nulls();
        let valid = nulls.as_ref().map(validity);
        let column = ColumnMut::Cells(&mut cells);
        let report = self.embed_column_within(sel, payload, density, column, valid, limits)?;
        if report.changed == 0 {
            return Ok((array.slice(0, array.len()), report));
        }
        let texts: Vec<Option<String>> = (0..values.len())
            .map(|i| {
                if array.is_null(i) {
                    return None;
                }
                Some(match cells[i].number_text(written[i]) {
                    Some(t) if cells[i] != original[i] => t,
                    _ => values[i].to_owned(),
                })
            })
            .collect();
        let out: ArrayRef = match array.data_type() {
            DataType::LargeUtf8 => {
                Arc::new(texts.into_iter().collect::<arrow_array::LargeStringArray>())
            }
            DataType::Utf8View => {
                Arc::new(texts.into_iter().collect::<arrow_array::StringViewArray>())
            }
            _ => Arc::new(texts.into_iter().collect::<arrow_array::StringArray>()),
        };
        Ok((out, report))
    }

    fn embed_array(
        &self,
        sel: &Selection,
        payload: &Payload,
        density: Density,
        array: &dyn Array,
        limits: &Limits,
    ) -> Result<(ArrayRef, ColumnReport)> {
        macro_rules! prim {
            ($t:ty, $variant:ident) => {
                mark_primitive::<$t>(array, |v, valid| {
                    self.embed_column_within(
                        sel,
                        payload,
                        density,
                        ColumnMut::$variant(v),
                        valid,
                        limits,
                    )
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
                    self.embed_column_within(sel, payload, density, column, valid, limits)
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
                            self.embed_column_within(sel, payload, density, column, valid, limits)
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
                    let report = self.embed_column_within(
                        sel,
                        payload,
                        density,
                        ColumnMut::Cells(&mut cells),
                        valid,
                        limits,
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
                let nulls = array.logical_nulls();
                let column = ColumnMut::TextEdits {
                    values: &values,
                    marks: &mut marks,
                };
                let valid = nulls.as_ref().map(validity);
                let report = self.embed_column_within(sel, payload, density, column, valid, limits)?;
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

/// An iterator that marks each batch of a [`RecordBatchReader`] as it is
/// read. Errors of the reader come as [`Error::Input`], errors of embedding
/// as the other variants; [`EmbedStream::into_reader`] makes it a
/// `RecordBatchReader` itself, for consumers that need Arrow's interface.
pub struct EmbedStream<'a, R> {
    wm: &'a Watermarker,
    reader: R,
    plan: &'a BatchPlan,
    payload: &'a Payload,
    density: Density,
    reports: Vec<ColumnReport>,
}

impl<'a, R: RecordBatchReader> EmbedStream<'a, R> {
    /// The reports of the batches read so far, one per marked column.
    pub fn reports(&self) -> &[ColumnReport] {
        &self.reports
    }

    /// This stream as a [`RecordBatchReader`]: errors become
    /// [`ArrowError`]s (embedding errors as `ArrowError::ExternalError`
    /// holding an [`Error`]).
    pub fn into_reader(self) -> impl RecordBatchReader + 'a
    where
        R: 'a,
    {
        struct Reader<'a, R>(EmbedStream<'a, R>);
        impl<R: RecordBatchReader> Iterator for Reader<'_, R> {
            type Item = Result<RecordBatch, ArrowError>;
            fn next(&mut self) -> Option<Self::Item> {
                Some(self.0.next()?.map_err(|e| match e {
                    Error::Input(e) | Error::Arrow(e) => e,
                    e => ArrowError::ExternalError(Box::new(e)),
                }))
            }
        }
        impl<R: RecordBatchReader> RecordBatchReader for Reader<'_, R> {
            fn schema(&self) -> SchemaRef {
                self.0.reader.schema()
            }
        }
        Reader(self)
    }
}

impl<R: RecordBatchReader> Iterator for EmbedStream<'_, R> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = match self.reader.next()? {
            Ok(b) => b,
            Err(e) => return Some(Err(Error::Input(e))),
        };
        let marked = self
            .wm
            .embed_batch(&batch, self.plan, self.payload, self.density);
        Some(marked.map(|(out, reports)| {
            for (total, r) in self.reports.iter_mut().zip(&reports) {
                total.merge(r);
            }
            out
        }))
    }
}
