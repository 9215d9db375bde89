//! Reading a JSON cell's exact text into a core [`Cell`] and writing a
//! marked cell back in the same form.
//!
//! Forms, by column type:
//!
//! | type | JSON value | marked as | written back as |
//! |---|---|---|---|
//! | integer | number or numeric string without fraction | integer within the type's range | the same form |
//! | decimal | number or numeric string, no exponent | last digit at its own scale | the same form, same number of decimals |
//! | float | number or numeric string, no exponent | last written digit, count ≤ 2^53 | the same form, same number of decimals |
//! | text | string | invisible end character | a JSON string |
//! | time | `HH:MM:SS[...]` | seconds, within the day | same layout and suffix |
//! | date-time | `YYYY-MM-DD HH:MM:SS[...]` (`T` or space, `-` or `/`) | seconds | same layout and suffix (fraction, zone kept) |
//! | date-time | number | epoch seconds (below 10^11) or milliseconds (marked in whole seconds) | a number |
//! | date | anything | not marked | unchanged |
//!
//! Anything else (booleans, objects, arrays, numbers with an exponent,
//! unparsable text) is left exactly as it came and counted as unmarkable.

use crate::Cell;
use crate::engine::codec::{DECIMAL_MAX, decimal_text, parse_plain_number};
use crate::timefmt::{civil_from_days, days_from_civil};

use super::types::ColumnType;

/// Longest field value, in characters.
pub const MAX_FIELD_CHARS: usize = 2000;

/// How a cell was written, to write it back the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Form {
    /// Left as it came.
    Raw,
    /// A JSON number.
    Number,
    /// A number inside a JSON string.
    QuotedNumber,
    /// A JSON string of a text column.
    Text,
    /// Epoch milliseconds as a JSON number, marked in whole seconds.
    EpochMillis { millis: i64 },
    /// `YYYY-MM-DD HH:MM:SS` with its separators and trailing text.
    DateTime {
        date_sep: char,
        time_sep: char,
        suffix: String,
    },
    /// `HH:MM:SS` and its trailing text.
    Time { suffix: String },
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses `n` ASCII digits at the start of `s`.
fn digits(s: &[u8], n: usize) -> Option<i64> {
    let d = s.get(..n)?;
    d.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// Parses `HH:MM:SS` at the start of `s` into seconds of the day.
fn parse_hms(s: &[u8]) -> Option<i64> {
    let (h, m, sec) = (
        digits(s, 2)?,
        digits(s.get(3..)?, 2)?,
        digits(s.get(6..)?, 2)?,
    );
    (s[2] == b':' && s[5] == b':' && h < 24 && m < 60 && sec < 60)
        .then_some(h * 3600 + m * 60 + sec)
}

/// First and last second count of years 0000 to 9999, so that a marked
/// value keeps four year digits.
fn datetime_range() -> (i128, i128) {
    (
        i128::from(days_from_civil(0, 1, 1) * 86_400),
        i128::from(days_from_civil(9999, 12, 31) * 86_400 + 86_399),
    )
}

fn parse_datetime(s: &str) -> Option<(Cell, Form)> {
    let b = s.as_bytes();
    let (y, mo, d) = (
        digits(b, 4)?,
        digits(b.get(5..)?, 2)?,
        digits(b.get(8..)?, 2)?,
    );
    let date_sep = char::from(b[4]);
    let time_sep = char::from(*b.get(10)?);
    if !matches!(date_sep, '-' | '/')
        || b[7] != b[4]
        || !matches!(time_sep, ' ' | 'T')
        || !(1..=12).contains(&mo)
        || d < 1
        || d > days_in_month(y, mo)
    {
        return None;
    }
    let secs = parse_hms(b.get(11..)?)?;
    let value = i128::from(days_from_civil(y, mo, d) * 86_400 + secs);
    let (min, max) = datetime_range();
    Some((
        Cell::Integer { value, min, max },
        Form::DateTime {
            date_sep,
            time_sep,
            suffix: s.get(19..)?.to_owned(),
        },
    ))
}

fn parse_time(s: &str) -> Option<(Cell, Form)> {
    let secs = parse_hms(s.as_bytes())?;
    Some((
        Cell::Integer {
            value: i128::from(secs),
            min: 0,
            max: 86_399,
        },
        Form::Time {
            suffix: s.get(8..)?.to_owned(),
        },
    ))
}

/// Largest count a float keeps exactly.
const FLOAT_MAX: i128 = 1 << 53;
/// Below this, a number in a date-time column is epoch seconds; at or above,
/// milliseconds.
const EPOCH_MILLIS_FROM: i128 = 100_000_000_000;

/// Interprets one non-null cell of a column of type `ty` from its exact
/// JSON text.
pub(crate) fn interpret(raw: &str, ty: ColumnType) -> (Cell, Form) {
    let unmarkable = (Cell::Unmarkable, Form::Raw);
    let text: Option<String> = raw
        .starts_with('"')
        .then(|| serde_json::from_str(raw).ok())
        .flatten();
    let is_number = raw.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    let (number, quoted) = match (&text, is_number) {
        (Some(t), _) => (Some(t.as_str()), true),
        (None, true) => (Some(raw), false),
        (None, false) => (None, false),
    };
    let numeric_form = if quoted {
        Form::QuotedNumber
    } else {
        Form::Number
    };
    match ty {
        ColumnType::Integer { min, max } => match number.and_then(parse_plain_number) {
            Some((value, 0)) if (min..=max).contains(&value) => {
                (Cell::Integer { value, min, max }, numeric_form)
            }
            _ => unmarkable,
        },
        ColumnType::Decimal | ColumnType::Float => {
            let max = if ty == ColumnType::Float {
                FLOAT_MAX
            } else {
                DECIMAL_MAX
            };
            match number.and_then(parse_plain_number) {
                Some((count, scale)) if count.abs() <= max => {
                    (Cell::Decimal { count, scale, max }, numeric_form)
                }
                _ => unmarkable,
            }
        }
        ColumnType::Text => match text {
            Some(t) if t.chars().count() < MAX_FIELD_CHARS => (Cell::Text(t), Form::Text),
            _ => unmarkable,
        },
        ColumnType::Date => unmarkable,
        ColumnType::Time => text.as_deref().and_then(parse_time).unwrap_or(unmarkable),
        ColumnType::DateTime => match (&text, number.and_then(parse_plain_number)) {
            (Some(t), _) => parse_datetime(t).unwrap_or(unmarkable),
            (None, Some((v, 0))) if v.abs() < EPOCH_MILLIS_FROM => (
                Cell::Integer {
                    value: v,
                    min: i64::MIN.into(),
                    max: i64::MAX.into(),
                },
                Form::Number,
            ),
            (None, Some((v, 0))) => match i64::try_from(v) {
                Ok(ms) => (
                    Cell::Integer {
                        value: ms.div_euclid(1000).into(),
                        min: (i64::MIN / 1000 + 1).into(),
                        max: (i64::MAX / 1000 - 1).into(),
                    },
                    Form::EpochMillis {
                        millis: ms.rem_euclid(1000),
                    },
                ),
                Err(_) => unmarkable,
            },
            _ => unmarkable,
        },
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Writes a (marked) cell back as JSON text in its original form.
pub(crate) fn render(cell: &Cell, form: &Form) -> Option<String> {
    let number = match cell {
        Cell::Integer { value, .. } => value.to_string(),
        Cell::Decimal { count, scale, .. } => decimal_text(*count, *scale),
        Cell::Text(s) => return Some(quote(s)),
        Cell::Unmarkable => return None,
    };
    let Cell::Integer { value, .. } = cell else {
        return Some(match form {
            Form::QuotedNumber => format!("\"{number}\""),
            _ => number,
        });
    };
    let value = i64::try_from(*value).ok();
    Some(match form {
        Form::QuotedNumber => format!("\"{number}\""),
        Form::EpochMillis { millis } => {
            (value?.checked_mul(1000)?.checked_add(*millis)?).to_string()
        }
        Form::DateTime {
            date_sep,
            time_sep,
            suffix,
        } => {
            let v = value?;
            let (y, m, d) = civil_from_days(v.div_euclid(86_400));
            let s = v.rem_euclid(86_400);
            quote(&format!(
                "{y:04}{date_sep}{m:02}{date_sep}{d:02}{time_sep}{:02}:{:02}:{:02}{suffix}",
                s / 3600,
                s / 60 % 60,
                s % 60
            ))
        }
        Form::Time { suffix } => {
            let s = value?;
            quote(&format!(
                "{:02}:{:02}:{:02}{suffix}",
                s / 3600,
                s / 60 % 60,
                s % 60
            ))
        }
        Form::Raw | Form::Number | Form::Text => number,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(raw: &str, ty: ColumnType) -> (Cell, Option<String>) {
        let (cell, form) = interpret(raw, ty);
        let back = render(&cell, &form);
        (cell, back)
    }

    #[test]
    fn cells_render_back_to_their_exact_text() {
        let int = ColumnType::parse("INT").unwrap();
        for (raw, ty) in [
            ("42", int),
            ("-7", int),
            ("\"42\"", int),
            ("1234.50", ColumnType::Decimal),
            ("-0.05", ColumnType::Decimal),
            ("\"19.99\"", ColumnType::Float),
            ("\"Zoë \\\"Z\\\"\"", ColumnType::Text),
            ("\"2024-02-29 23:59:59.123+08:00\"", ColumnType::DateTime),
            ("\"1999/12/31T00:00:00Z\"", ColumnType::DateTime),
            ("1700000000", ColumnType::DateTime),
            ("1700000000123", ColumnType::DateTime),
            ("\"08:30:00\"", ColumnType::Time),
        ] {
            let (cell, back) = round_trip(raw, ty);
            assert_ne!(cell, Cell::Unmarkable, "{raw}");
            let expected = if raw.contains("\\\"") {
                "\"Zoë \\\"Z\\\"\""
            } else {
                raw
            };
            assert_eq!(back.as_deref(), Some(expected), "{raw}");
        }
    }

    #[test]
    fn values_that_cannot_be_marked_are_left_raw() {
        let int = ColumnType::parse("INT").unwrap();
        for (raw, ty) in [
            ("true", int),
            ("{\"a\":0.1}", int),
            ("[1]", ColumnType::Decimal),
            ("1.5", int),
            ("1e3", ColumnType::Decimal),
            ("3000000000", int),
            ("\"007\"", int),
            ("12", ColumnType::Text),
            ("\"2024-02-30 00:00:00\"", ColumnType::DateTime),
            ("\"2024-01-01\"", ColumnType::Date),
            ("\"25:00:00\"", ColumnType::Time),
        ] {
            assert_eq!(interpret(raw, ty), (Cell::Unmarkable, Form::Raw), "{raw}");
        }
    }

    #[test]
    fn a_marked_second_carries_into_the_next_year() {
        let (mut cell, form) = interpret("\"2023-12-31 23:59:59\"", ColumnType::DateTime);
        if let Cell::Integer { value, .. } = &mut cell {
            *value += 1;
        }
        assert_eq!(render(&cell, &form).unwrap(), "\"2024-01-01 00:00:00\"");
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(decimal_text(123_449, 2), "1234.49");
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(decimal_text(7, 0), "7");
    }
}
