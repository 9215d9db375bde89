//! Conversions between core [`Table`](crate::Table)s and [`RecordBatch`]es.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    ArrayRef, LargeStringArray, PrimitiveArray, RecordBatch, StringArray, StringViewArray,
};
use arrow_schema::{DataType, Schema};

use super::{Error, Result, match_primitive, strings, timestamp_values, units_per_second};

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
                values: timestamp_values(a, unit).to_vec(),
                units_per_second: units_per_second(unit),
            },
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Values::Text(strings(a)),
            _ => continue,
        });
        let mut column = Column::new(field.name().clone(), values);
        column.validity = a.logical_nulls().map(|n| n.iter().collect());
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
