//! PostgreSQL's text COPY format, both ways: fields separated by tabs,
//! `\N` for NULL, backslash escapes; and the text forms of numbers, dates
//! and timestamps as a session with ISO dates and UTC prints them.

use std::borrow::Cow;
use std::fmt::Write as _;

use arrow_array::cast::AsArray;
use arrow_array::types::DecimalType;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

use crate::timefmt::{civil_from_days, days_from_civil};

/// One field of a COPY line.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Cell<'a> {
    Null,
    Value(Cow<'a, str>),
}

/// The fields of one COPY line (without its newline).
pub(super) fn fields(line: &[u8]) -> impl Iterator<Item = Result<Cell<'_>, String>> + '_ {
    line.split(|&b| b == b'\t').map(field)
}

fn field(raw: &[u8]) -> Result<Cell<'_>, String> {
    if raw == b"\\N" {
        return Ok(Cell::Null);
    }
    let utf8 = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| "the value is not UTF-8".to_owned())
    };
    if !raw.contains(&b'\\') {
        return std::str::from_utf8(raw)
            .map(|s| Cell::Value(Cow::Borrowed(s)))
            .map_err(|_| "the value is not UTF-8".to_owned());
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = raw.get(i) else {
            return Err("the value ends with a lone backslash".into());
        };
        i += 1;
        match e {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' => {
                let hex = |b: u8| (b as char).to_digit(16);
                let Some(h) = raw.get(i).and_then(|&b| hex(b)) else {
                    out.extend_from_slice(b"x");
                    continue;
                };
                i += 1;
                let mut v = h;
                if let Some(l) = raw.get(i).and_then(|&b| hex(b)) {
                    v = v * 16 + l;
                    i += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    utf8(&out).map(|s| Cell::Value(Cow::Owned(s)))
}

/// Appends `value` escaped for a COPY field.
fn escape(value: &str, out: &mut Vec<u8>) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// A float as PostgreSQL prints it (`NaN`, `Infinity`, `-Infinity`).
pub(super) fn parse_float(v: &str) -> Option<f64> {
    match v {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => v.parse().ok(),
    }
}

/// The count of `10^-scale` steps a NUMERIC text holds, exactly.
pub(super) fn parse_decimal(v: &str, scale: i8) -> Result<i128, String> {
    let (negative, digits) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(if v == "NaN" {
            "NaN cannot be carried in a numeric(p,s) column".into()
        } else {
            "not a number".into()
        });
    }
    let scale = usize::try_from(scale).map_err(|_| "a negative scale".to_owned())?;
    let (kept, dropped) = fraction.split_at(fraction.len().min(scale));
    if dropped.bytes().any(|b| b != b'0') {
        return Err(format!("more than {scale} decimals"));
    }
    let mut count: i128 = 0;
    for b in whole
        .bytes()
        .chain(kept.bytes())
        .chain(std::iter::repeat_n(b'0', scale - kept.len()))
    {
        count = count
            .checked_mul(10)
            .and_then(|c| c.checked_add(i128::from(b - b'0')))
            .ok_or_else(|| "too many digits".to_owned())?;
    }
    Ok(if negative { -count } else { count })
}

/// Days since 1970-01-01 of an ISO date (`YYYY-MM-DD`, years 1 to 9999).
pub(super) fn parse_date(v: &str) -> Option<i32> {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let (y, m, d) = (num(&v[..4])?, num(&v[5..7])?, num(&v[8..10])?);
    if y < 1 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Microseconds since the epoch of `YYYY-MM-DD HH:MM:SS[.ffffff][+00[:00]]`
/// (a UTC offset, when present, must be zero: the session is UTC).
pub(super) fn parse_timestamp(v: &str) -> Option<i64> {
    let (date, time) = v.split_once(' ')?;
    let days = i64::from(parse_date(date)?);
    let time = time
        .strip_suffix("+00")
        .or_else(|| time.strip_suffix("+00:00"))
        .unwrap_or(time);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut parts = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() || h > 23 || m > 59 || s > 60 || fraction.len() > 6 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros = format!("{fraction:0<6}").parse::<i64>().ok()?;
    Some(((days * 24 + h) * 60 + m) * 60_000_000 + s * 1_000_000 + micros)
}

fn write_date(days: i64, out: &mut String) {
    let (y, m, d) = civil_from_days(days);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

fn write_timestamp(micros: i64, tz: bool, out: &mut String) {
    let days = micros.div_euclid(86_400_000_000);
    let rest = micros.rem_euclid(86_400_000_000);
    write_date(days, out);
    let (s, us) = (rest / 1_000_000, rest % 1_000_000);
    let _ = write!(out, " {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    if us != 0 {
        let _ = write!(out, ".{us:06}");
    }
    if tz {
        out.push_str("+00");
    }
}

/// Appends `batch` as COPY text lines; on a value PostgreSQL cannot take,
/// `(row in the batch, column, why)`.
pub(super) fn encode_batch(
    batch: &RecordBatch,
    out: &mut Vec<u8>,
) -> Result<(), (usize, String, String)> {
    let schema = batch.schema();
    let mut text = String::new();
    for row in 0..batch.num_rows() {
        for (i, array) in batch.columns().iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            if array.is_null(row) {
                out.extend_from_slice(b"\\N");
                continue;
            }
            text.clear();
            value_text(array.as_ref(), row, &mut text)
                .map_err(|reason| (row, schema.field(i).name().clone(), reason))?;
            escape(&text, out);
        }
        out.push(b'\n');
    }
    Ok(())
}

/// The text of `array[row]` (not null) as PostgreSQL reads it.
pub(super) fn value_text(array: &dyn Array, row: usize, out: &mut String) -> Result<(), String> {
    macro_rules! int {
        ($t:ty) => {{
            let _ = write!(out, "{}", array.as_primitive::<$t>().value(row));
        }};
    }
    let float = |v: f64, out: &mut String| {
        if v.is_nan() {
            out.push_str("NaN");
        } else if v.is_infinite() {
            out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
        } else {
            out.push_str(ryu::Buffer::new().format_finite(v));
        }
    };
    let micros = |v: i64, per_second: i64| -> Result<i64, String> {
        match per_second {
            1 => v.checked_mul(1_000_000),
            1_000 => v.checked_mul(1_000),
            1_000_000 => Some(v),
            _ if v % 1_000 == 0 => Some(v / 1_000),
            _ => None,
        }
        .ok_or_else(|| "a time PostgreSQL cannot hold to the microsecond".to_owned())
    };
    match array.data_type() {
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        DataType::Float32 => {
            let v = array.as_primitive::<Float32Type>().value(row);
            if v.is_finite() {
                out.push_str(ryu::Buffer::new().format_finite(v));
            } else {
                float(f64::from(v), out);
            }
        }
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row), out),
        DataType::Decimal128(_, s) => {
            let v = array.as_primitive::<Decimal128Type>().value(row);
            out.push_str(&Decimal128Type::format_decimal(v, 38, *s));
        }
        DataType::Decimal256(_, s) => {
            let v = array.as_primitive::<Decimal256Type>().value(row);
            out.push_str(&Decimal256Type::format_decimal(v, 76, *s));
        }
        DataType::Utf8 => out.push_str(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => out.push_str(array.as_string::<i64>().value(row)),
        DataType::Utf8View => out.push_str(array.as_string_view().value(row)),
        DataType::Boolean => out.push(if array.as_boolean().value(row) {
            't'
        } else {
            'f'
        }),
        DataType::Date32 => write_date(
            i64::from(array.as_primitive::<Date32Type>().value(row)),
            out,
        ),
        DataType::Date64 => write_date(
            array
                .as_primitive::<Date64Type>()
                .value(row)
                .div_euclid(86_400_000),
            out,
        ),
        DataType::Timestamp(unit, tz) => {
            let (v, per_second) = match unit {
                TimeUnit::Second => (array.as_primitive::<TimestampSecondType>().value(row), 1),
                TimeUnit::Millisecond => (
                    array.as_primitive::<TimestampMillisecondType>().value(row),
                    1_000,
                ),
                TimeUnit::Microsecond => (
                    array.as_primitive::<TimestampMicrosecondType>().value(row),
                    1_000_000,
                ),
                TimeUnit::Nanosecond => (
                    array.as_primitive::<TimestampNanosecondType>().value(row),
                    1_000_000_000,
                ),
            };
            write_timestamp(micros(v, per_second)?, tz.is_some(), out);
        }
        DataType::Binary => hex(array.as_binary::<i32>().value(row), out),
        DataType::LargeBinary => hex(array.as_binary::<i64>().value(row), out),
        DataType::BinaryView => hex(array.as_binary_view().value(row), out),
        other => return Err(format!("type {other} has no PostgreSQL form here")),
    }
    Ok(())
}

fn hex(bytes: &[u8], out: &mut String) {
    out.push_str("\\x");
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// A column of one batch being built from values in their text form (as
/// PostgreSQL's COPY and MySQL's text protocol send them), by Arrow type.
pub(super) enum TextColumn {
    I16(arrow_array::builder::Int16Builder),
    I32(arrow_array::builder::Int32Builder),
    I64(arrow_array::builder::Int64Builder),
    U64(arrow_array::builder::UInt64Builder),
    F32(arrow_array::builder::Float32Builder),
    F64(arrow_array::builder::Float64Builder),
    Dec(arrow_array::builder::Decimal128Builder, i8),
    Str(arrow_array::builder::StringBuilder),
    Bool(arrow_array::builder::BooleanBuilder),
    Date(arrow_array::builder::Date32Builder),
    Ts(
        arrow_array::builder::TimestampMicrosecondBuilder,
        Option<std::sync::Arc<str>>,
    ),
    Bin(arrow_array::builder::BinaryBuilder),
}

impl TextColumn {
    /// A builder for `n` values of `dt`: one of the types the database
    /// adapters map to (integers, floats, Decimal128, Utf8, Boolean,
    /// Date32, microsecond timestamps, Binary).
    pub(super) fn new(dt: &DataType, n: usize) -> Self {
        use arrow_array::builder::*;
        match dt {
            DataType::Int16 => Self::I16(Int16Builder::with_capacity(n)),
            DataType::Int32 => Self::I32(Int32Builder::with_capacity(n)),
            DataType::Int64 => Self::I64(Int64Builder::with_capacity(n)),
            DataType::UInt64 => Self::U64(UInt64Builder::with_capacity(n)),
            DataType::Float32 => Self::F32(Float32Builder::with_capacity(n)),
            DataType::Float64 => Self::F64(Float64Builder::with_capacity(n)),
            DataType::Decimal128(p, s) => Self::Dec(
                Decimal128Builder::with_capacity(n)
                    .with_precision_and_scale(*p, *s)
                    .expect("the adapters map only valid precisions"),
                *s,
            ),
            DataType::Boolean => Self::Bool(BooleanBuilder::with_capacity(n)),
            DataType::Date32 => Self::Date(Date32Builder::with_capacity(n)),
            DataType::Timestamp(_, tz) => {
                Self::Ts(TimestampMicrosecondBuilder::with_capacity(n), tz.clone())
            }
            DataType::Binary => Self::Bin(BinaryBuilder::with_capacity(n, n * 8)),
            _ => Self::Str(StringBuilder::with_capacity(n, n * 8)),
        }
    }

    /// Appends a NULL.
    pub(super) fn push_null(&mut self) {
        match self {
            Self::I16(b) => b.append_null(),
            Self::I32(b) => b.append_null(),
            Self::I64(b) => b.append_null(),
            Self::U64(b) => b.append_null(),
            Self::F32(b) => b.append_null(),
            Self::F64(b) => b.append_null(),
            Self::Dec(b, _) => b.append_null(),
            Self::Str(b) => b.append_null(),
            Self::Bool(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Ts(b, _) => b.append_null(),
            Self::Bin(b) => b.append_null(),
        }
    }

    /// Appends raw bytes: kept as they are in a binary column, read as
    /// UTF-8 text otherwise.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(super) fn push_bytes(&mut self, v: &[u8]) -> Result<(), String> {
        match self {
            Self::Bin(b) => {
                b.append_value(v);
                Ok(())
            }
            _ => self.push_text(
                std::str::from_utf8(v).map_err(|_| "a value that is not UTF-8".to_owned())?,
            ),
        }
    }

    /// Appends a value from its text; why it is not a value of the type.
    pub(super) fn push_text(&mut self, v: &str) -> Result<(), String> {
        let bad = |what: &str| format!("`{v}` is not {what}");
        match self {
            Self::I16(b) => b.append_value(v.parse().map_err(|_| bad("a small integer"))?),
            Self::I32(b) => b.append_value(v.parse().map_err(|_| bad("an integer"))?),
            Self::I64(b) => b.append_value(v.parse().map_err(|_| bad("an integer"))?),
            Self::U64(b) => b.append_value(v.parse().map_err(|_| bad("an unsigned integer"))?),
            Self::F32(b) => b.append_value(parse_float(v).ok_or_else(|| bad("a float"))? as f32),
            Self::F64(b) => b.append_value(parse_float(v).ok_or_else(|| bad("a double"))?),
            Self::Dec(b, s) => {
                b.append_value(parse_decimal(v, *s).map_err(|e| format!("`{v}`: {e}"))?)
            }
            Self::Str(b) => b.append_value(v),
            Self::Bool(b) => b.append_value(match v {
                "t" | "1" => true,
                "f" | "0" => false,
                _ => return Err(bad("a boolean")),
            }),
            Self::Date(b) => b.append_value(
                parse_date(v).ok_or_else(|| bad("a date this tool carries (years 1 to 9999)"))?,
            ),
            Self::Ts(b, _) => b.append_value(
                parse_timestamp(v)
                    .ok_or_else(|| bad("a date and time this tool carries (years 1 to 9999)"))?,
            ),
            Self::Bin(b) => b.append_value(v.as_bytes()),
        }
        Ok(())
    }

    /// The column built so far (the builder starts again empty).
    pub(super) fn finish(&mut self) -> arrow_array::ArrayRef {
        use std::sync::Arc;
        match self {
            Self::I16(b) => Arc::new(b.finish()),
            Self::I32(b) => Arc::new(b.finish()),
            Self::I64(b) => Arc::new(b.finish()),
            Self::U64(b) => Arc::new(b.finish()),
            Self::F32(b) => Arc::new(b.finish()),
            Self::F64(b) => Arc::new(b.finish()),
            Self::Dec(b, _) => Arc::new(b.finish()),
            Self::Str(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Ts(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
            Self::Bin(b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_unescape_and_tell_null_from_text() {
        let got: Vec<_> = fields(b"1\t\\N\ta\\tb\\\\c\t\t\\x41\\101")
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            got,
            [
                Cell::Value("1".into()),
                Cell::Null,
                Cell::Value("a\tb\\c".into()),
                Cell::Value("".into()),
                Cell::Value("AA".into()),
            ]
        );
        let mut out = Vec::new();
        escape("a\tb\\c\nd", &mut out);
        assert_eq!(out, b"a\\tb\\\\c\\nd");
        assert!(field(b"ab\\").is_err());
    }

    #[test]
    fn numerics_parse_exactly_at_their_scale() {
        assert_eq!(parse_decimal("12.30", 2), Ok(1230));
        assert_eq!(parse_decimal("-0.05", 2), Ok(-5));
        assert_eq!(parse_decimal("7", 2), Ok(700));
        assert_eq!(
            parse_decimal("99999999999999999999999999999999999.999", 3),
            Ok(99999999999999999999999999999999999999)
        );
        assert!(
            parse_decimal("1.234", 2)
                .unwrap_err()
                .contains("more than 2")
        );
        assert!(parse_decimal("NaN", 2).unwrap_err().contains("NaN"));
        assert!(parse_decimal("1e5", 0).is_err());
    }

    #[test]
    fn dates_and_timestamps_round_trip_through_their_text() {
        for text in ["1970-01-01", "2024-02-29", "0001-01-01", "9999-12-31"] {
            let days = parse_date(text).unwrap();
            let mut out = String::new();
            write_date(i64::from(days), &mut out);
            assert_eq!(out, text);
        }
        assert_eq!(parse_date("2023-02-29"), None);
        for text in [
            "2013-01-01 05:00:00",
            "1969-12-31 23:59:59.999999",
            "2024-06-30 12:00:00.5",
        ] {
            let us = parse_timestamp(text).unwrap();
            let mut out = String::new();
            write_timestamp(us, false, &mut out);
            assert_eq!(out, text.replace(".5", ".500000"));
        }
        assert_eq!(
            parse_timestamp("2013-01-01 05:00:00+00"),
            parse_timestamp("2013-01-01 05:00:00")
        );
        assert_eq!(parse_timestamp("2013-01-01 05:00:00+02"), None);
    }
}
