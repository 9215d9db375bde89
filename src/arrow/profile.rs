//! Column profiles of Arrow arrays, for [`BatchPlan::profiled`](super::BatchPlan::profiled).

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_schema::DataType;

use super::{str_refs, timestamp_values, units_per_second};
use crate::engine::codec::decimal_value;
use crate::engine::column::MS_PER_DAY;
use crate::{ColumnProfile, Logical};

/// The logical type the profile sees for `dt`, if it can carry marks.
pub(crate) fn logical(dt: &DataType) -> Option<Logical> {
    Some(match dt {
        dt if dt.is_integer() => Logical::Integer,
        DataType::Float32 | DataType::Float64 => Logical::Float,
        DataType::Decimal128(_, s) | DataType::Decimal256(_, s) => Logical::Decimal { scale: *s },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Logical::Text,
        DataType::Timestamp(..) => Logical::Timestamp,
        DataType::Date32 | DataType::Date64 => Logical::Date,
        _ => return None,
    })
}

/// Adds the values of `array` to `profile`.
pub(crate) fn observe(profile: &mut ColumnProfile, array: &dyn Array) {
    let valid = |i: usize| array.is_valid(i);
    let mut each = |f: &mut dyn FnMut(usize, &mut ColumnProfile)| {
        for i in 0..array.len() {
            if valid(i) {
                f(i, profile);
            } else {
                profile.null();
            }
        }
    };
    macro_rules! ints {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            each(&mut |i, p| p.number(a.value(i) as f64, 0))
        }};
    }
    match array.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Date32 => ints!(Date32Type),
        DataType::Date64 => {
            // In days, the step a date is marked in.
            let a = array.as_primitive::<Date64Type>();
            each(&mut |i, p| p.number(a.value(i).div_euclid(MS_PER_DAY) as f64, 0))
        }
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            each(&mut |i, p| p.float(a.value(i)))
        }
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            each(&mut |i, p| p.float(a.value(i)))
        }
        &DataType::Decimal128(_, scale) => {
            let a = array.as_primitive::<Decimal128Type>();
            let s = i32::from(scale);
            each(&mut |i, p| p.number(decimal_value(a.value(i), s), s))
        }
        &DataType::Decimal256(_, scale) => {
            let a = array.as_primitive::<Decimal256Type>();
            let s = i32::from(scale);
            each(&mut |i, p| match a.value(i).to_i128() {
                Some(c) => p.number(decimal_value(c, s), s),
                None => p.number(f64::INFINITY, 0),
            })
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let values = str_refs(array);
            each(&mut |i, p| p.text(values[i]))
        }
        DataType::Timestamp(unit, _) => {
            let per = units_per_second(unit);
            let values = timestamp_values(array, unit);
            each(&mut |i, p| p.instant_in(values[i], per))
        }
        _ => {}
    }
}
