//! Cell codecs: how one bit is written into, and read from, one value.
//!
//! # Numbers
//!
//! Every numeric type is seen as an integer count of its *step*: 1 for
//! integers, `10^-scale` for decimals, the last printed decimal digit for
//! floats, one second for timestamps, one day for dates. A mark is bit `j` of
//! that count in two's complement, where `j < steps` comes from the row hash.
//! To write bit `b`, the value moves to the nearest count whose bit `j` is `b`
//! (ties broken by a keyed direction). For `j ≤ 1` that is always a change of
//! exactly one step; for `j = 2` at most two. A cell whose only candidates
//! are farther (at the edge of its type's range, or excluded by the rules
//! below) is left alone and counted as unmarkable, so a change is never
//! larger than that.
//!
//! Decimals with a positive scale are never given a last digit of 0: a value
//! such as `12.30` is printed `12.3` by many tools, which would shift its
//! digits. A marked decimal therefore reads the same whether it comes back
//! at its own scale, as a float or as shortest text, and when reading, a
//! decimal whose last digit is 0 is known not to carry a mark and is skipped.
//!
//! # Floats
//!
//! A float is marked in the decimal digits it is printed with: its shortest
//! round-trip text (`0.1`, `19.99`, `1500`) is read as `count × 10^-scale`, the
//! count is marked as a decimal at that scale, and the result is the float
//! nearest the new text. A result is only accepted if printing it gives
//! exactly the marked text, so a mark survives any CSV or JSON export of the
//! printed value. Floats whose count exceeds `2^53` (and non-finite values) are
//! unmarkable.
//!
//! # Strings
//!
//! A marked string ends with one invisible *format character*: U+200B ZERO
//! WIDTH SPACE for bit 0, U+200C ZERO WIDTH NON-JOINER for bit 1 (any such
//! trailing character already there is replaced). Both are plain UTF-8 text,
//! kept by JSON and CSV round trips and not removed by common whitespace
//! trimming. A string without one carries no mark and gives no vote, so
//! unmarked strings add no noise. Empty strings are left alone. The scheme is
//! documented, so anyone who reads this can strip it; it adds evidence, the
//! numeric columns carry the weight. Turn it off per column where an added
//! character matters.

/// The bit to write into one cell and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarkBit {
    /// The value of the bit.
    pub bit: bool,
    /// Which low binary digit of the count carries it.
    pub step: u32,
    /// Direction preferred when two candidates are equally near.
    pub up: bool,
    /// `Some(g)`: the count must keep its bits above the low `g`, its
    /// group (see [`Positions::Cell`](crate::Positions::Cell)).
    pub keep: Option<u32>,
}

/// Bit `step` of `count` in two's complement.
#[inline]
pub(crate) fn bit_of(count: i128, step: u32) -> bool {
    (count >> step) & 1 == 1
}

/// The nearest count to `v` within `lo..=hi` whose bit `m.step` is `m.bit`
/// and which `ok` accepts; `None` if there is none within `max(1,
/// 2^(step-1))`, the largest distance an unconstrained value ever needs.
#[inline]
pub(crate) fn nearest(
    v: i128,
    m: MarkBit,
    lo: i128,
    hi: i128,
    mut ok: impl FnMut(i128) -> bool,
) -> Option<i128> {
    let mut fits = |w: i128| {
        (lo..=hi).contains(&w)
            && bit_of(w, m.step) == m.bit
            && crate::engine::position::same_group(v, w, m.keep)
            && ok(w)
    };
    if fits(v) {
        return Some(v);
    }
    // The farthest the nearest value with the right bit can be when nothing
    // else constrains it: one step for the two lowest bits, 2^(j-1) above.
    // Anything farther (a range edge, a decimal that would end in 0, a float
    // that would not print back) leaves the cell unmarked rather than
    // changing it more.
    let limit = 1i128 << m.step.saturating_sub(1);
    for d in 1..=limit {
        let (first, second) = if m.up {
            (v.checked_add(d), v.checked_sub(d))
        } else {
            (v.checked_sub(d), v.checked_add(d))
        };
        for w in [first, second].into_iter().flatten() {
            if fits(w) {
                return Some(w);
            }
        }
    }
    None
}

/// Accepts a decimal count at `scale` as a marked value.
#[inline]
pub(crate) fn decimal_ok(count: i128, scale: i32) -> bool {
    scale <= 0 || count % 10 != 0
}

/// Reads the mark bit of a decimal count, or `None` if it cannot carry one.
#[inline]
pub(crate) fn read_decimal(count: i128, scale: i32, step: u32) -> Option<bool> {
    (count != 0 && decimal_ok(count, scale)).then(|| bit_of(count, step))
}

/// Largest float count that is exactly representable.
const MAX_FLOAT_COUNT: i128 = 1 << 53;
/// Largest float scale we mark at.
const MAX_FLOAT_SCALE: i32 = 24;

/// A float type whose printed digits can be marked.
pub(crate) trait PrintedFloat: Copy + PartialEq + std::str::FromStr + ryu::Float {
    fn is_finite_value(self) -> bool;
    fn to_f64_value(self) -> f64;
}

impl PrintedFloat for f64 {
    fn is_finite_value(self) -> bool {
        self.is_finite()
    }
    fn to_f64_value(self) -> f64 {
        self
    }
}

impl PrintedFloat for f32 {
    fn is_finite_value(self) -> bool {
        self.is_finite()
    }
    fn to_f64_value(self) -> f64 {
        f64::from(self)
    }
}

/// The printed digits of a float as `(count, scale)` with no trailing zero
/// when `scale > 0`, or `None` when it is not markable.
pub(crate) fn float_digits<F: PrintedFloat>(v: F) -> Option<(i128, i32)> {
    if !v.is_finite_value() {
        return None;
    }
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(v).as_bytes();
    let (mantissa, exp) = match text.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (
            &text[..i],
            std::str::from_utf8(&text[i + 1..])
                .ok()?
                .parse::<i32>()
                .ok()?,
        ),
        None => (text, 0),
    };
    let (negative, mantissa) = match mantissa.first() {
        Some(b'-') => (true, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let mut count: i128 = 0;
    let mut frac = 0i32;
    let mut in_frac = false;
    for &c in mantissa {
        match c {
            b'.' => in_frac = true,
            b'0'..=b'9' => {
                count = count.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
                if count > MAX_FLOAT_COUNT * 10 {
                    return None;
                }
                frac += i32::from(in_frac);
            }
            _ => return None,
        }
    }
    let mut scale = frac - exp;
    while scale > 0 && count % 10 == 0 && count != 0 {
        count /= 10;
        scale -= 1;
    }
    if count == 0 {
        scale = 0;
    }
    while scale < 0 {
        count = count.checked_mul(10)?;
        scale += 1;
    }
    if count > MAX_FLOAT_COUNT || scale > MAX_FLOAT_SCALE {
        return None;
    }
    Some((if negative { -count } else { count }, scale))
}

/// The float whose shortest text is `count × 10^-scale`, if there is one.
fn float_from_digits<F: PrintedFloat>(count: i128, scale: i32) -> Option<F> {
    use std::io::Write as _;
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "{count}e-{scale}").ok()?;
    let n = cursor.position() as usize;
    let v: F = std::str::from_utf8(&buf[..n]).ok()?.parse().ok()?;
    (float_digits(v) == Some((count, scale))).then_some(v)
}

/// Marks a float in its printed digits; returns the new value and the change
/// in steps, or `None` if the value cannot carry a mark.
pub(crate) fn mark_float<F: PrintedFloat>(
    v: F,
    m: MarkBit,
    limits: &crate::engine::column::Limits,
) -> Option<(F, i128, i32)> {
    let (count, scale) = float_count(v, limits.float_decimals)?;
    let old = count;
    let mut result = None;
    nearest(count, m, -MAX_FLOAT_COUNT, MAX_FLOAT_COUNT, |w| {
        if !decimal_ok(w, scale) || !crate::engine::column::keeps_sign(old, w) {
            return false;
        }
        if w == count {
            result = Some(v);
            return true;
        }
        result = float_from_digits(w, scale);
        result.is_some_and(|r: F| limits.allows(v.to_f64_value(), r.to_f64_value()))
    })
    .and_then(|w| result.map(|r| (r, (w - count).abs(), scale)))
}

/// Reads the mark bit of a float's printed digits, in decimal place `at`
/// where that is finer (the column's working precision: a value printed
/// with fewer decimals there ends in 0 and carries no mark, as embedding
/// at that precision leaves it); zero carries none.
#[cfg(test)]
pub(crate) fn read_float<F: PrintedFloat>(v: F, step: u32, at: Option<i32>) -> Option<bool> {
    let (count, scale) = float_count(v, at)?;
    read_decimal(count, scale, step)
}

/// A float's count and scale as marks see it: its printed digits, in
/// decimal place `at` where that is finer (the column's working precision)
/// and the count stays exact; `None` when it cannot carry a mark.
#[inline]
pub(crate) fn float_count<F: PrintedFloat>(v: F, at: Option<i32>) -> Option<(i128, i32)> {
    let (mut count, mut scale) = float_digits(v)?;
    if let Some(d) = at.filter(|&d| d > scale && d <= MAX_FLOAT_SCALE) {
        count = count.checked_mul(10i128.checked_pow((d - scale) as u32)?)?;
        if count.abs() > MAX_FLOAT_COUNT {
            return None;
        }
        scale = d;
    }
    Some((count, scale))
}

/// The value `count × 10^-scale` as the float nearest to it (dividing by an
/// exact power of ten, so `9838` at scale 1 is `983.8`, not
/// `983.8000000000001`).
#[inline]
pub(crate) fn decimal_value(count: i128, scale: i32) -> f64 {
    if scale >= 0 {
        count as f64 / 10f64.powi(scale)
    } else {
        count as f64 * 10f64.powi(-scale)
    }
}

/// Largest count of a 38-digit decimal.
pub(crate) const DECIMAL_MAX: i128 = 10i128.pow(38) - 1;

/// A plain decimal literal `-?digits[.digits]` without redundant leading
/// zeros, as `(count, scale)`.
pub(crate) fn parse_plain_number(s: &str) -> Option<(i128, i8)> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let ok_digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    if !ok_digits(int)
        || (int.len() > 1 && int.starts_with('0'))
        || frac.is_some_and(|f| !ok_digits(f))
    {
        return None;
    }
    let frac = frac.unwrap_or("");
    if int.len() + frac.len() > 38 {
        return None;
    }
    let count = int
        .bytes()
        .chain(frac.bytes())
        .fold(0i128, |acc, c| acc * 10 + i128::from(c - b'0'));
    Some((
        if negative { -count } else { count },
        i8::try_from(frac.len()).ok()?,
    ))
}

/// `count × 10^-scale` as plain decimal text (`decimal_text(-5, 2)` is
/// `-0.05`).
pub(crate) fn decimal_text(count: i128, scale: i8) -> String {
    let digits = count.unsigned_abs().to_string();
    let sign = if count < 0 { "-" } else { "" };
    let scale = usize::try_from(scale).unwrap_or(0);
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// Invisible end characters for bit 0 and bit 1.
pub const TEXT_MARKS: [char; 2] = ['\u{200B}', '\u{200C}'];

/// Reads the mark bit of a string.
pub(crate) fn read_text(s: &str) -> Option<bool> {
    match s.chars().next_back() {
        Some(c) if c == TEXT_MARKS[0] => Some(false),
        Some(c) if c == TEXT_MARKS[1] => Some(true),
        _ => None,
    }
}

/// The part of `s` before any end mark.
pub(crate) fn text_body(s: &str) -> &str {
    match read_text(s) {
        // Both marks are 3 bytes of UTF-8.
        Some(_) => &s[..s.len() - TEXT_MARKS[0].len_utf8()],
        None => s,
    }
}

/// The text of `value` marked with `bit`: its body (without any old end
/// mark) and the end mark to append.
///
/// ```
/// let (body, mark) = dbwatermark::marked_text("Alice\u{200B}", true);
/// assert_eq!((body, mark), ("Alice", '\u{200C}'));
/// ```
pub fn marked_text(value: &str, bit: bool) -> (&str, char) {
    (text_body(value), TEXT_MARKS[usize::from(bit)])
}

/// Decides how to mark a string: `Some(true)` if it must be rewritten as
/// its body followed by the mark for `bit`, `Some(false)` if it already
/// carries it, `None` if it cannot carry a mark (empty, or only a mark).
pub(crate) fn text_change(s: &str, bit: bool) -> Option<bool> {
    if text_body(s).is_empty() {
        return None;
    }
    Some(read_text(s) != Some(bit))
}

/// Marks a string in place; returns whether it changed, or `None` if it
/// cannot carry a mark (it is empty, or only a mark).
pub(crate) fn mark_text(s: &mut String, bit: bool) -> Option<bool> {
    let change = text_change(s, bit)?;
    if change {
        s.truncate(text_body(s).len());
        s.push(TEXT_MARKS[usize::from(bit)]);
    }
    Some(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(bit: bool, step: u32, up: bool) -> MarkBit {
        MarkBit {
            bit,
            step,
            up,
            keep: None,
        }
    }

    #[test]
    fn steps_zero_and_one_always_change_by_exactly_one() {
        for v in -50i128..50 {
            for step in 0..2 {
                for bit in [false, true] {
                    let w = nearest(v, mb(bit, step, v % 3 == 0), i128::MIN, i128::MAX, |_| true)
                        .unwrap();
                    assert_eq!(bit_of(w, step), bit);
                    assert!((w - v).abs() <= 1, "{v} step {step} bit {bit} -> {w}");
                }
            }
        }
    }

    #[test]
    fn range_limits_are_respected() {
        let m = mb(false, 0, true);
        // 127 is odd; 128 is out of i8 range so 126 is taken.
        assert_eq!(nearest(127, m, -128, 127, |_| true), Some(126));
        assert_eq!(
            nearest(-127, mb(false, 0, false), -128, 127, |_| true),
            Some(-128)
        );
        assert_eq!(
            nearest(-128, mb(true, 0, false), -128, 127, |_| true),
            Some(-127)
        );
        // Nothing fits in a range of one value with the wrong bit.
        assert_eq!(nearest(1, m, 1, 1, |_| true), None);
    }

    #[test]
    fn float_digits_follow_the_printed_text() {
        assert_eq!(float_digits(19.99f64), Some((1999, 2)));
        assert_eq!(float_digits(1500.0f64), Some((1500, 0)));
        assert_eq!(float_digits(0.1f32), Some((1, 1)));
        assert_eq!(float_digits(-2.5e-7f64), Some((-25, 8)));
        assert_eq!(float_digits(0.0f64), Some((0, 0)));
        assert_eq!(float_digits(1e300f64), None);
        assert_eq!(float_digits(f64::NAN), None);
    }

    #[test]
    fn marked_floats_print_their_marked_digits() {
        let (mut marked, mut tried) = (0, 0);
        for &v in &[
            19.99f64, 0.1, 1500.0, 2.65432, -42.5, 100.25, 7.0, 0.33, 12.345,
        ] {
            for step in 0..2 {
                for bit in [false, true] {
                    tried += 1;
                    // A value one step away from a trailing 0 may be left alone.
                    let Some((w, delta, _)) =
                        mark_float(v, mb(bit, step, true), &Default::default())
                    else {
                        continue;
                    };
                    marked += 1;
                    assert_eq!(read_float(w, step, None), Some(bit), "{v} -> {w}");
                    let reparsed: f64 = w.to_string().parse().unwrap();
                    assert_eq!(read_float(reparsed, step, None), Some(bit));
                    assert!(delta <= 1, "{v} -> {w}");
                }
            }
        }
        assert!(marked * 4 >= tried * 3, "{marked} of {tried} marked");
    }

    #[test]
    fn decimals_change_by_one_step_or_not_at_all() {
        let (mut skipped, mut total) = (0, 0);
        for count in -2000i128..2000 {
            for step in 0..2 {
                for bit in [false, true] {
                    total += 1;
                    match nearest(count, mb(bit, step, count % 2 == 0), -10_000, 10_000, |w| {
                        decimal_ok(w, 2)
                    }) {
                        Some(w) => {
                            assert!((w - count).abs() <= 1, "{count} -> {w}");
                            assert_eq!(read_decimal(w, 2, step), Some(bit));
                        }
                        None => skipped += 1,
                    }
                }
            }
        }
        // Only values next to a trailing 0 are ever skipped.
        assert!(skipped * 10 < total, "{skipped} of {total} skipped");
    }

    #[test]
    fn text_marks_replace_each_other_and_skip_empty_strings() {
        let mut s = String::from("Alice");
        assert_eq!(read_text(&s), None);
        assert_eq!(mark_text(&mut s, true), Some(true));
        assert_eq!(read_text(&s), Some(true));
        assert_eq!(mark_text(&mut s, true), Some(false));
        assert_eq!(mark_text(&mut s, false), Some(true));
        assert_eq!(s, "Alice\u{200B}");
        assert_eq!(mark_text(&mut String::new(), true), None);
        assert_eq!(mark_text(&mut String::from("\u{200B}"), true), None);
    }
}
