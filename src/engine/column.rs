//! Typed column slices the engine reads and writes, and the per-cell rules
//! that map each type onto the codecs of `codec`.

use crate::engine::codec::{self, MarkBit};

/// One cell of a text-based table (JSON, CSV), already interpreted by the
/// adapter that read it. The adapter keeps what it needs to write the cell
/// back in its original form (quotes, layout of a date) and renders the new
/// value after embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// A value that cannot carry a mark; skipped and counted.
    Unmarkable,
    /// An integer count of steps (an integer, seconds of a timestamp, days
    /// of a date) that must stay within `min..=max`.
    Integer {
        /// The count.
        value: i128,
        /// Smallest allowed count.
        min: i128,
        /// Largest allowed count.
        max: i128,
    },
    /// A decimal `count × 10^-scale` whose absolute count must stay at most
    /// `max` (`2^53` for values that must survive a round trip through a float).
    Decimal {
        /// The unscaled value.
        count: i128,
        /// Digits after the decimal point.
        scale: i8,
        /// Largest allowed absolute count.
        max: i128,
    },
    /// A string.
    Text(String),
}

/// Calls `$m!` with the engine's one list of plain column types: the
/// variant name, the element type and its doc line. [`ColumnMut`],
/// [`ColumnRef`] and [`Values`](crate::Values) each add the variants that
/// carry more than a slice (decimals, timestamps, borrowed strings, cells)
/// and their conversions and lengths are generated from this list, so a
/// type is added in one place.
macro_rules! plain_types {
    ($m:ident) => {
        $m! {
            Int8: i8, "Signed 8-bit integers.";
            Int16: i16, "Signed 16-bit integers.";
            Int32: i32, "Signed 32-bit integers.";
            Int64: i64, "Signed 64-bit integers.";
            UInt8: u8, "Unsigned 8-bit integers.";
            UInt16: u16, "Unsigned 16-bit integers.";
            UInt32: u32, "Unsigned 32-bit integers.";
            UInt64: u64, "Unsigned 64-bit integers.";
            Float32: f32, "32-bit floats, marked in their printed digits.";
            Float64: f64, "64-bit floats, marked in their printed digits.";
            Text: String, "Strings; free text is marked with an invisible end character.";
            Date32: i32, "Days since the epoch.";
            Date64: i64, "Milliseconds since the epoch, marked in whole days.";
        }
    };
}
pub(crate) use plain_types;

macro_rules! column_views {
    ($($variant:ident: $t:ty, $doc:literal;)*) => {
        /// A column to embed into, as a mutable slice of its values.
        ///
        /// Nulls are given separately as a validity mask; the values at null
        /// positions are never touched.
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum ColumnMut<'a> {
            $(#[doc = $doc] $variant(&'a mut [$t]),)*
            /// Decimals `count × 10^-scale` with at most `precision` digits.
            Decimal {
                /// Unscaled values.
                counts: &'a mut [i128],
                /// Digits after the decimal point (may be negative).
                scale: i8,
                /// Maximum number of digits, 1 to 38.
                precision: u8,
            },
            /// Borrowed strings, marked without copying: embedding sets `marks[row]`
            /// to `Some(bit)` where the string must be rewritten as its body
            /// followed by that bit's end mark (see [`marked_text`](crate::marked_text)).
            TextEdits {
                /// The strings.
                values: &'a [&'a str],
                /// One entry per string, `None` on input.
                marks: &'a mut [Option<bool>],
            },
            /// Timestamps counted in `1 / units_per_second` seconds since the epoch,
            /// marked in the seconds.
            Timestamp {
                /// The timestamps.
                values: &'a mut [i64],
                /// 1 for seconds, 1,000 for milliseconds and so on.
                units_per_second: i64,
            },
            /// Cells interpreted one by one (text formats).
            Cells(&'a mut [Cell]),
        }

        /// A column to read marks from.
        #[derive(Debug, Clone, Copy)]
        #[non_exhaustive]
        pub enum ColumnRef<'a> {
            $(#[doc = $doc] $variant(&'a [$t]),)*
            /// Decimals `count × 10^-scale`.
            Decimal {
                /// Unscaled values.
                counts: &'a [i128],
                /// Digits after the decimal point.
                scale: i8,
            },
            /// Borrowed strings.
            Strs(&'a [&'a str]),
            /// Timestamps in `1 / units_per_second` seconds.
            Timestamp {
                /// The timestamps.
                values: &'a [i64],
                /// 1 for seconds, 1,000 for milliseconds and so on.
                units_per_second: i64,
            },
            /// Cells interpreted one by one (text formats).
            Cells(&'a [Cell]),
        }

        impl ColumnMut<'_> {
            /// Number of rows.
            pub fn len(&self) -> usize {
                match self {
                    $(Self::$variant(v) => v.len(),)*
                    Self::Decimal { counts, .. } => counts.len(),
                    Self::TextEdits { marks, .. } => marks.len(),
                    Self::Timestamp { values, .. } => values.len(),
                    Self::Cells(v) => v.len(),
                }
            }

            /// Whether the column has no rows.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }

        impl ColumnRef<'_> {
            /// Number of rows.
            pub fn len(&self) -> usize {
                match self {
                    $(Self::$variant(v) => v.len(),)*
                    Self::Decimal { counts, .. } => counts.len(),
                    Self::Strs(v) => v.len(),
                    Self::Timestamp { values, .. } => values.len(),
                    Self::Cells(v) => v.len(),
                }
            }

            /// Whether the column has no rows.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }
    };
}
plain_types!(column_views);

/// Which cells of a column hold a value (`true` or a set bit: present,
/// else null): one `bool` per row, or a packed bitmap read least
/// significant bit first from bit `offset`, as Arrow's validity buffers
/// are, so an adapter can lend its bitmap without unpacking it.
///
/// ```
/// use dbwatermark::Validity;
/// let bools = [true, false, true];
/// let v = Validity::from(&bools[..]);
/// assert_eq!((v.len(), v.is_valid(1)), (3, false));
/// // 0b0000_0101 from bit 0: rows 0 and 2 present.
/// let bits = Validity::Bits { bytes: &[0b101], offset: 0, len: 3 };
/// assert_eq!((bits.is_valid(0), bits.is_valid(1), bits.is_valid(2)), (true, false, true));
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Validity<'a> {
    /// One entry per row.
    Bools(&'a [bool]),
    /// A bitmap: row `i` is bit `offset + i`.
    Bits {
        /// The bitmap's bytes.
        bytes: &'a [u8],
        /// The bit of row 0.
        offset: usize,
        /// Number of rows.
        len: usize,
    },
}

impl<'a> From<&'a [bool]> for Validity<'a> {
    fn from(v: &'a [bool]) -> Self {
        Self::Bools(v)
    }
}

impl<'a> From<&'a Vec<bool>> for Validity<'a> {
    fn from(v: &'a Vec<bool>) -> Self {
        Self::Bools(v)
    }
}

impl Validity<'_> {
    /// Number of rows it describes.
    pub fn len(&self) -> usize {
        match self {
            Self::Bools(v) => v.len(),
            Self::Bits { len, .. } => *len,
        }
    }

    /// Whether it describes no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// For a bitmap, how many rows its bytes hold from `offset` on (checked
    /// against `len` before any row is read); `None` for `Bools`.
    pub(crate) fn available(&self) -> Option<usize> {
        match self {
            Self::Bools(_) => None,
            Self::Bits { bytes, offset, .. } => Some((bytes.len() * 8).saturating_sub(*offset)),
        }
    }

    /// Whether row `row` holds a value.
    #[inline]
    pub fn is_valid(&self, row: usize) -> bool {
        match self {
            Self::Bools(v) => v[row],
            Self::Bits { bytes, offset, .. } => {
                let bit = offset + row;
                bytes[bit / 8] >> (bit % 8) & 1 == 1
            }
        }
    }
}

/// What the marks of one numeric column must respect, besides the fixed
/// rule every number obeys (an exact zero neither carries a mark nor
/// results from one, and no mark changes a sign).
///
/// A column's [`ColumnPlan`](crate::ColumnPlan) sets these from the
/// column's profile: `min..=max` from the values seen, `float_decimals` from
/// its working precision. [`Limits::default`] constrains nothing else.
///
/// ```
/// use dbwatermark::Limits;
/// let l = Limits { min: 0.0, max: 10.0, float_decimals: Some(2), ..Limits::default() };
/// assert!(l.allows(10.0, 9.99) && !l.allows(10.0, 10.01));
/// let small = Limits { max_change: 0.5, ..Limits::default() };
/// assert!(small.allows(3.0, 3.5) && !small.allows(3.0, 4.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Smallest value a changed cell may take.
    pub min: f64,
    /// Largest value a changed cell may take.
    pub max: f64,
    /// Floats: mark in this decimal place (the column's working precision)
    /// even where a value prints with fewer decimals, so `10` in a column
    /// of hundredths moves to `9.99` or `10.01`, never to `9` or `11`.
    /// `None`: each float in its own last printed digit.
    pub float_decimals: Option<i32>,
    /// Largest change of one value, in the column's unit (seconds for
    /// timestamps, days for dates); infinite by default.
    pub max_change: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min: f64::NEG_INFINITY,
            max: f64::INFINITY,
            float_decimals: None,
            max_change: f64::INFINITY,
        }
    }
}

impl Limits {
    /// Whether a cell holding `old` may be changed to `new`: `new` is within
    /// `min..=max` and no farther from `old` than `max_change` (up to float
    /// rounding of the difference).
    #[inline]
    pub fn allows(&self, old: f64, new: f64) -> bool {
        (self.min..=self.max).contains(&new) && (new - old).abs() <= self.max_change * (1.0 + 1e-9)
    }
}

/// The fixed rule of every number: a mark never moves a value to or from
/// zero and never changes its sign (`old` and `new` are counts of the same
/// step).
#[inline]
pub(crate) fn keeps_sign(old: i128, new: i128) -> bool {
    old.signum() == new.signum()
}

/// Milliseconds per day, the step of `Date64`.
pub(crate) const MS_PER_DAY: i64 = 86_400_000;

/// What marking one cell did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Outcome {
    /// The cell cannot carry a mark (out of range, unprintable, empty).
    Unmarkable,
    /// The cell already carried the right bit.
    Unchanged,
    /// The cell changed by `steps` steps, `amount` in the column's unit.
    Changed { steps: u64, amount: f64 },
}

/// A primitive integer type the integer codec works on.
pub(crate) trait Int: Copy + Send + Sync + Into<i128> + TryFrom<i128> {
    const MIN: i128;
    const MAX: i128;
}

macro_rules! int_bounds {
    ($($t:ty),*) => {$(
        impl Int for $t {
            const MIN: i128 = <$t>::MIN as i128;
            const MAX: i128 = <$t>::MAX as i128;
        }
    )*};
}
int_bounds!(i8, i16, i32, i64, u8, u16, u32, u64);

fn changed(steps: i128, amount: f64) -> Outcome {
    if steps == 0 {
        Outcome::Unchanged
    } else {
        Outcome::Changed {
            steps: steps.unsigned_abs() as u64,
            amount: amount.abs(),
        }
    }
}

/// Marks an integer within its type's range and `limits`.
#[inline]
pub(crate) fn mark_int<T: Int>(v: &mut T, m: MarkBit, limits: &Limits) -> Outcome {
    let old: i128 = (*v).into();
    let ok = |w: i128| keeps_sign(old, w) && limits.allows(old as f64, w as f64);
    match codec::nearest(old, m, T::MIN, T::MAX, ok).and_then(|w| T::try_from(w).ok()) {
        Some(new) => {
            *v = new;
            let d = new.into() - old;
            changed(d, d as f64)
        }
        None => Outcome::Unmarkable,
    }
}

/// Marks a day count (`Date32`): a date, so day 0 is a day like any other.
#[inline]
pub(crate) fn mark_day(v: &mut i32, m: MarkBit, limits: &Limits) -> Outcome {
    let old = i128::from(*v);
    let ok = |w: i128| limits.allows(old as f64, w as f64);
    match codec::nearest(old, m, i32::MIN.into(), i32::MAX.into(), ok) {
        Some(new) => {
            *v = new as i32;
            changed(new - old, (new - old) as f64)
        }
        None => Outcome::Unmarkable,
    }
}

/// Reads a day count's mark.
#[inline]
pub(crate) fn read_day(v: i32, step: u32) -> Option<bool> {
    Some(codec::bit_of(v.into(), step))
}

/// A plain number's digits as a float prints them: `(count, scale)` with no
/// trailing fractional zero (`2.0` is `(2, 0)`, `22.720` is `(2272, 2)`),
/// so text and floats of the same value read alike.
pub(crate) fn significant(mut count: i128, mut scale: i8) -> (i128, i8) {
    while scale > 0 && count % 10 == 0 {
        count /= 10;
        scale -= 1;
    }
    if count == 0 { (0, 0) } else { (count, scale) }
}

impl Cell {
    /// A cell of text that may be a plain number (`-?digits[.digits]`): its
    /// significant digits (no trailing fractional zero: `2.0` is 2, `22.720`
    /// is 22.72), in decimal place `decimals`
    /// where that is finer (the column's working precision, so `100` in a
    /// column of hundredths moves by 0.01 and `2.0` in a column of whole
    /// minutes by one); else unmarkable (null tokens such as `N/A`). Returns
    /// the cell and the decimals the text was written with.
    ///
    /// ```
    /// use dbwatermark::Cell;
    /// let (cell, written) = Cell::from_number_text("2.0", Some(0));
    /// assert_eq!(written, 1);
    /// assert!(matches!(cell, Cell::Integer { value: 2, .. }));
    /// assert_eq!(cell.number_text(written).as_deref(), Some("2.0"));
    /// let (cell, _) = Cell::from_number_text("100", Some(2));
    /// assert!(matches!(cell, Cell::Decimal { count: 10_000, scale: 2, .. }));
    /// assert_eq!(Cell::from_number_text("N/A", None).0, Cell::Unmarkable);
    /// ```
    pub fn from_number_text(text: &str, decimals: Option<i32>) -> (Cell, i8) {
        let Some((raw, written)) = codec::parse_plain_number(text) else {
            return (Cell::Unmarkable, 0);
        };
        let (count, scale) = significant(raw, written);
        let at = decimals
            .and_then(|d| i8::try_from(d).ok())
            .filter(|&d| d > scale);
        let parsed = match at {
            Some(d) => 10i128
                .checked_pow(u32::from(d.abs_diff(scale)))
                .and_then(|p| count.checked_mul(p))
                .filter(|c| c.abs() <= codec::DECIMAL_MAX)
                .map(|c| (c, d)),
            None => Some((count, scale)),
        };
        let cell = match parsed {
            Some((value, 0)) => Cell::Integer {
                value,
                min: -codec::DECIMAL_MAX,
                max: codec::DECIMAL_MAX,
            },
            Some((count, scale)) => Cell::Decimal {
                count,
                scale,
                max: codec::DECIMAL_MAX,
            },
            None => Cell::Unmarkable,
        };
        (cell, written)
    }

    /// The text of a number cell made by [`Cell::from_number_text`], with at least
    /// `written` decimals (trailing zeros added), as the original was written.
    pub fn number_text(&self, written: i8) -> Option<String> {
        let (mut text, scale) = match self {
            Cell::Integer { value, .. } => (value.to_string(), 0),
            Cell::Decimal { count, scale, .. } => (codec::decimal_text(*count, *scale), *scale),
            _ => return None,
        };
        if written > scale {
            if scale <= 0 {
                text.push('.');
            }
            text.extend(std::iter::repeat_n(
                '0',
                written.abs_diff(scale.max(0)) as usize,
            ));
        }
        Some(text)
    }
}

/// Reads an integer's mark; zero carries none.
#[inline]
pub(crate) fn read_int<T: Int>(v: T, step: u32) -> Option<bool> {
    let v: i128 = v.into();
    (v != 0).then(|| codec::bit_of(v, step))
}

/// Largest count of a decimal with `precision` digits.
pub(crate) fn decimal_max(precision: u8) -> i128 {
    10i128.saturating_pow(u32::from(precision.clamp(1, 38))) - 1
}

/// Marks a decimal count at its scale, keeping within `±max` and `limits`.
#[inline]
pub(crate) fn mark_decimal(
    v: &mut i128,
    scale: i8,
    max: i128,
    m: MarkBit,
    limits: &Limits,
) -> Outcome {
    let old = *v;
    let scale = i32::from(scale);
    let value = |c: i128| codec::decimal_value(c, scale);
    let ok = |w: i128| {
        codec::decimal_ok(w, scale) && keeps_sign(old, w) && limits.allows(value(old), value(w))
    };
    match codec::nearest(old, m, -max, max, ok) {
        Some(new) => {
            *v = new;
            let d = new - old;
            changed(d, d as f64 * 10f64.powi(-scale))
        }
        None => Outcome::Unmarkable,
    }
}

#[inline]
pub(crate) fn read_decimal(v: i128, scale: i8, step: u32) -> Option<bool> {
    codec::read_decimal(v, i32::from(scale), step)
}

#[inline]
pub(crate) fn mark_float<F: codec::PrintedFloat>(
    v: &mut F,
    m: MarkBit,
    limits: &Limits,
) -> Outcome {
    match codec::mark_float(*v, m, limits) {
        Some((new, steps, scale)) => {
            *v = new;
            changed(steps, steps as f64 * 10f64.powi(-scale))
        }
        None => Outcome::Unmarkable,
    }
}

/// Marks a value counted in `per` units of its step, keeping the remainder
/// (the sub-second part of a timestamp, say); `limits` are in steps.
#[inline]
pub(crate) fn mark_unit(v: &mut i64, per: i64, m: MarkBit, limits: &Limits) -> Outcome {
    let old = *v;
    let per = per.max(1);
    let count = i128::from(old.div_euclid(per));
    let rem = i128::from(old.rem_euclid(per));
    let fits = |w: i128| {
        i64::try_from(w * i128::from(per) + rem).is_ok() && limits.allows(count as f64, w as f64)
    };
    match codec::nearest(count, m, i128::MIN / 2, i128::MAX / 2, fits) {
        Some(w) => {
            *v = (w * i128::from(per) + rem) as i64;
            changed(w - count, (w - count) as f64)
        }
        None => Outcome::Unmarkable,
    }
}

#[inline]
pub(crate) fn read_unit(v: i64, per: i64, step: u32) -> Option<bool> {
    Some(codec::bit_of(i128::from(v.div_euclid(per.max(1))), step))
}

#[inline]
pub(crate) fn mark_text(v: &mut String, m: MarkBit) -> Outcome {
    match codec::mark_text(v, m.bit) {
        Some(true) => Outcome::Changed {
            steps: 1,
            amount: 0.0,
        },
        Some(false) => Outcome::Unchanged,
        None => Outcome::Unmarkable,
    }
}

/// Marks a borrowed string by recording its new end mark in `slot`.
#[inline]
pub(crate) fn mark_text_edit(value: &str, slot: &mut Option<bool>, m: MarkBit) -> Outcome {
    match codec::text_change(value, m.bit) {
        Some(true) => {
            *slot = Some(m.bit);
            Outcome::Changed {
                steps: 1,
                amount: 0.0,
            }
        }
        Some(false) => Outcome::Unchanged,
        None => Outcome::Unmarkable,
    }
}

/// Marks one interpreted cell.
pub(crate) fn mark_cell(cell: &mut Cell, m: MarkBit, limits: &Limits) -> Outcome {
    match cell {
        Cell::Unmarkable => Outcome::Unmarkable,
        Cell::Integer { value, min, max } => {
            let old = *value;
            let ok = |w: i128| keeps_sign(old, w) && limits.allows(old as f64, w as f64);
            match codec::nearest(old, m, *min, *max, ok) {
                Some(new) => {
                    *value = new;
                    changed(new - old, (new - old) as f64)
                }
                None => Outcome::Unmarkable,
            }
        }
        Cell::Decimal { count, scale, max } => mark_decimal(count, *scale, *max, m, limits),
        Cell::Text(s) => mark_text(s, m),
    }
}

/// Reads the mark bit of one interpreted cell.
pub(crate) fn read_cell(cell: &Cell, step: u32) -> Option<bool> {
    match cell {
        Cell::Unmarkable => None,
        Cell::Integer { value, .. } => (*value != 0).then(|| codec::bit_of(*value, step)),
        Cell::Decimal { count, scale, .. } => read_decimal(*count, *scale, step),
        Cell::Text(s) => codec::read_text(s),
    }
}

/// The groups of cells (see [`Positions::Cell`](crate::Positions::Cell)):
/// what decides a marked cell's code position besides its row, read alike
/// from the value before marking and from the marked copy, for a row marked
/// at binary digit `step`; `None` for a cell that carries no mark under cell
/// positions (unmarkable, or stuck at its group's edge).
pub(crate) mod group {
    use super::{Cell, Int, MS_PER_DAY};
    use crate::engine::codec::{self, PrintedFloat};
    use crate::engine::position::{number_group, text_group};

    #[inline]
    pub(crate) fn int<T: Int>(v: &T, step: u32) -> Option<u64> {
        number_group((*v).into(), 0, step)
    }

    #[inline]
    pub(crate) fn day(v: &i32, step: u32) -> Option<u64> {
        number_group((*v).into(), 0, step)
    }

    #[inline]
    pub(crate) fn decimal(v: &i128, scale: i8, step: u32) -> Option<u64> {
        number_group(*v, scale.into(), step)
    }

    #[inline]
    pub(crate) fn float<F: PrintedFloat>(v: &F, at: Option<i32>, step: u32) -> Option<u64> {
        codec::float_count(*v, at).and_then(|(c, s)| number_group(c, s, step))
    }

    #[inline]
    pub(crate) fn unit(v: &i64, per: i64, step: u32) -> Option<u64> {
        number_group(v.div_euclid(per.max(1)).into(), 0, step)
    }

    #[inline]
    pub(crate) fn date64(v: &i64, step: u32) -> Option<u64> {
        unit(v, MS_PER_DAY, step)
    }

    #[inline]
    pub(crate) fn text(v: &str, _step: u32) -> Option<u64> {
        Some(text_group(v))
    }

    #[inline]
    pub(crate) fn cell(c: &Cell, step: u32) -> Option<u64> {
        match c {
            Cell::Unmarkable => None,
            Cell::Integer { value, .. } => number_group(*value, 0, step),
            Cell::Decimal { count, scale, .. } => decimal(count, *scale, step),
            Cell::Text(s) => text(s, step),
        }
    }
}
