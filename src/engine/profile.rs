//! Column profiles and the plan that decides, per column, whether and how
//! it may carry marks without changing what the data means.

use std::collections::HashMap;

use crate::engine::column::Limits;

/// Distinct values tracked exactly; beyond this a column counts as "many".
pub const DISTINCT_CAP: usize = 4096;

/// Whole-number columns with at most this many distinct values are
/// categories or codes: a mark would add labels.
pub const CATEGORY_MAX_DISTINCT: usize = 24;

/// Text a numeric column of a text file may hold for a missing value; a
/// column of numbers and these is numbers, and these cells pass through.
pub const NULL_TOKENS: [&str; 9] = ["", "N/A", "n/a", "NA", "-", "null", "NULL", "None", "nan"];

/// The logical type of a profiled column, as the adapter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Logical {
    /// Integers of any width.
    Integer,
    /// Decimals at a fixed scale.
    Decimal {
        /// Digits after the decimal point.
        scale: i8,
    },
    /// Floats.
    Float,
    /// Strings.
    Text,
    /// Timestamps.
    Timestamp,
    /// Dates.
    Date,
}

/// Statistics of one column, gathered value by value; profiles of batches
/// or partitions [`merge`](ColumnProfile::merge).
#[derive(Debug, Clone)]
pub struct ColumnProfile {
    logical: Logical,
    rows: u64,
    nulls: u64,
    /// Counts per distinct value (by a hash of its text), until there are
    /// more than [`DISTINCT_CAP`].
    counts: Option<HashMap<u64, u64>>,
    min: f64,
    max: f64,
    zeros: u64,
    whole: u64,
    negative: u64,
    /// Non-zero whole values that are multiples of 10.
    tens: u64,
    /// Whole values in HHMM clock form (0..=2400, minutes below 60).
    clock: u64,
    /// Non-zero numbers by the decimals they print with (0..=24).
    decimals: [u64; 25],
    /// Strings: shortest and longest (in characters), how many hold a space.
    min_len: usize,
    max_len: usize,
    spaced: u64,
    /// Timestamps: how many fall on a whole minute.
    round_minutes: u64,
    /// Strings: how many are plain numbers, and how many are null tokens.
    numeric_text: u64,
    null_tokens: u64,
}

impl ColumnProfile {
    /// An empty profile of a column of type `logical`.
    pub fn new(logical: Logical) -> Self {
        Self {
            logical,
            rows: 0,
            nulls: 0,
            counts: Some(HashMap::new()),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            zeros: 0,
            whole: 0,
            negative: 0,
            tens: 0,
            clock: 0,
            decimals: [0; 25],
            min_len: usize::MAX,
            max_len: 0,
            spaced: 0,
            round_minutes: 0,
            numeric_text: 0,
            null_tokens: 0,
        }
    }

    fn count(&mut self, hash: u64) {
        if let Some(c) = &mut self.counts {
            *c.entry(hash).or_insert(0) += 1;
            if c.len() > DISTINCT_CAP {
                self.counts = None;
            }
        }
    }

    /// Counts a null.
    pub fn null(&mut self) {
        self.rows += 1;
        self.nulls += 1;
    }

    /// Counts the number `value`, printed with `decimals` digits after the
    /// point (0 for integers; negative when its digits are not known, a
    /// float with more than 17 significant digits, say).
    pub fn number(&mut self, value: f64, decimals: i32) {
        self.rows += 1;
        if !value.is_finite() {
            return;
        }
        self.count(value.to_bits());
        self.numeric(value, decimals);
    }

    /// The statistics of a number, however it arrived.
    fn numeric(&mut self, value: f64, decimals: i32) {
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if value == 0.0 {
            self.zeros += 1;
        } else if decimals >= 0 {
            self.decimals[decimals.min(24) as usize] += 1;
        }
        if value < 0.0 {
            self.negative += 1;
        }
        if value.fract() == 0.0 {
            self.whole += 1;
            if value != 0.0 && value % 10.0 == 0.0 {
                self.tens += 1;
            }
            if (0.0..=2400.0).contains(&value) && value % 100.0 < 60.0 {
                self.clock += 1;
            }
        }
    }

    /// Counts the string `value`.
    pub fn text(&mut self, value: &str) {
        use std::hash::{Hash, Hasher};
        self.rows += 1;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        value.hash(&mut h);
        self.count(h.finish());
        let len = value.chars().count();
        self.min_len = self.min_len.min(len);
        self.max_len = self.max_len.max(len);
        if value.trim().contains(char::is_whitespace) {
            self.spaced += 1;
        }
        if let Some((count, scale)) = crate::engine::codec::parse_plain_number(value) {
            let (count, scale) = crate::engine::column::significant(count, scale);
            self.numeric_text += 1;
            self.numeric(
                count as f64 * 10f64.powi(-i32::from(scale)),
                i32::from(scale),
            );
        } else if NULL_TOKENS.contains(&value) {
            self.null_tokens += 1;
        }
    }

    /// Whether the strings are numbers, with at most null tokens between
    /// them (`N/A`, `-`, empty, ...), and mostly numbers.
    pub fn is_numeric_text(&self) -> bool {
        self.logical == Logical::Text
            && self.numeric_text > 0
            && self.numeric_text + self.null_tokens == self.values()
            && self.numeric_text * 2 >= self.values()
    }

    /// Counts an instant `seconds` after the epoch (`whole_minute` when it
    /// falls on one).
    pub fn instant(&mut self, seconds: i64, whole_minute: bool) {
        self.number(seconds as f64, 0);
        if whole_minute {
            self.round_minutes += 1;
        }
    }

    /// Adds the counts of `other`, a profile of other rows of the same
    /// column.
    pub fn merge(&mut self, other: &Self) {
        self.rows += other.rows;
        self.nulls += other.nulls;
        match (&mut self.counts, &other.counts) {
            (Some(a), Some(b)) => {
                for (k, v) in b {
                    *a.entry(*k).or_insert(0) += v;
                }
                if a.len() > DISTINCT_CAP {
                    self.counts = None;
                }
            }
            _ => self.counts = None,
        }
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.zeros += other.zeros;
        self.whole += other.whole;
        self.negative += other.negative;
        self.tens += other.tens;
        self.clock += other.clock;
        for (a, b) in self.decimals.iter_mut().zip(other.decimals) {
            *a += b;
        }
        self.min_len = self.min_len.min(other.min_len);
        self.max_len = self.max_len.max(other.max_len);
        self.spaced += other.spaced;
        self.round_minutes += other.round_minutes;
        self.numeric_text += other.numeric_text;
        self.null_tokens += other.null_tokens;
    }

    /// Rows seen.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Non-null values seen.
    pub fn values(&self) -> u64 {
        self.rows - self.nulls
    }

    /// Distinct values, or `None` when there are more than
    /// [`DISTINCT_CAP`].
    pub fn distinct(&self) -> Option<usize> {
        self.counts.as_ref().map(HashMap::len)
    }

    /// Share of the values taken by the most common one.
    pub fn top_share(&self) -> f64 {
        let top = self
            .counts
            .as_ref()
            .and_then(|c| c.values().max().copied())
            .unwrap_or(0);
        top as f64 / self.values().max(1) as f64
    }

    /// The smallest and largest number seen.
    pub fn range(&self) -> Option<(f64, f64)> {
        (self.min <= self.max).then_some((self.min, self.max))
    }

    /// The finest decimal place that at least 1 in 1,000 non-zero numbers
    /// print with: the column's working precision.
    pub fn working_decimals(&self) -> i32 {
        let nonzero: u64 = self.decimals.iter().sum();
        let floor = nonzero.div_ceil(1000).max(1);
        self.decimals.iter().rposition(|&n| n >= floor).unwrap_or(0) as i32
    }

    fn all(&self, n: u64) -> bool {
        n == self.values() && n > 0
    }

    /// The plan for this column under `name`: what it is, whether and how
    /// it carries marks, and why. `named`: the caller asked for this column
    /// by name, which overrides the guesses from names and shapes, but
    /// not the rules that keep meaning (categories, calendar fields,
    /// constants, ranges).
    pub fn plan(&self, name: &str, named: bool) -> ColumnPlan {
        let (kind, carrier, reason) = self.classify(name, named);
        let limits = match (carrier, self.range()) {
            (Carrier::Digits, Some((min, max))) => Limits {
                min,
                max,
                float_decimals: (self.logical == Logical::Float || self.is_numeric_text())
                    .then(|| self.working_decimals()),
            },
            _ => Limits::default(),
        };
        ColumnPlan {
            name: name.to_owned(),
            kind,
            carrier,
            limits,
            reason,
        }
    }

    fn classify(&self, name: &str, named: bool) -> (Kind, Carrier, String) {
        use Carrier::{Digits, Nothing, TextMark};
        let distinct = self.distinct();
        let few = |n: usize| distinct.is_some_and(|d| d <= n);
        if self.values() == 0 {
            return (Kind::Empty, Nothing, "no values".into());
        }
        if few(1) {
            return (Kind::Constant, Nothing, "one value in every row".into());
        }
        let lower = name.to_ascii_lowercase();
        let hint = NameHint::of(&lower);
        match self.logical {
            Logical::Date => {
                if named {
                    (
                        Kind::Calendar,
                        Digits,
                        "dates, named: marked in days".into(),
                    )
                } else {
                    (
                        Kind::Calendar,
                        Nothing,
                        "dates are calendar fields (name the column to mark it in days)".into(),
                    )
                }
            }
            Logical::Timestamp => {
                if self.all(self.round_minutes) {
                    (
                        Kind::Calendar,
                        Nothing,
                        "timestamps on whole minutes: a mark would add seconds".into(),
                    )
                } else {
                    (
                        Kind::Measure,
                        Digits,
                        "timestamps with seconds: marked in the seconds".into(),
                    )
                }
            }
            Logical::Text if self.is_numeric_text() => {
                let (kind, carrier, reason) = self.classify_number(name, named, hint);
                let reason = if carrier == Digits {
                    format!(
                        "{reason} (numbers as text, each at its own decimals; {} null tokens kept)",
                        self.null_tokens
                    )
                } else {
                    reason
                };
                (kind, carrier, reason)
            }
            Logical::Text => {
                let free = self.spaced * 2 >= self.values()
                    && distinct.is_none_or(|d| d as u64 * 5 >= self.values());
                if free || named && distinct.is_none_or(|d| d > CATEGORY_MAX_DISTINCT) {
                    let why = if free { "free text" } else { "text, named" };
                    (
                        Kind::FreeText,
                        TextMark,
                        format!("{why}: an invisible end mark"),
                    )
                } else {
                    let what = match distinct {
                        Some(d) => format!("{d} distinct values"),
                        None => "short tokens".to_owned(),
                    };
                    (
                        Kind::Code,
                        Nothing,
                        format!(
                            "a code or label ({what}, {}–{} characters): an added character would make new labels",
                            self.min_len, self.max_len
                        ),
                    )
                }
            }
            Logical::Integer | Logical::Decimal { .. } | Logical::Float => {
                self.classify_number(name, named, hint)
            }
        }
    }

    /// Numbers: what the values and the name say.
    fn classify_number(
        &self,
        name: &str,
        named: bool,
        hint: Option<NameHint>,
    ) -> (Kind, Carrier, String) {
        use Carrier::{Digits, Nothing};
        let distinct = self.distinct();
        let few = |n: usize| distinct.is_some_and(|d| d <= n);
        let numbers = match self.logical {
            Logical::Text => self.numeric_text,
            _ => self.values(),
        };
        let all = |n: u64| n == numbers && n > 0;
        let whole = all(self.whole);
        if hint == Some(NameHint::Calendar) {
            return (
                Kind::Calendar,
                Nothing,
                format!("`{name}` is a calendar or clock field"),
            );
        }
        if whole && all(self.clock) && distinct.is_none_or(|d| d > 60) && self.max > 100.0 {
            return (
                Kind::Calendar,
                Nothing,
                "every value is an HHMM clock time".into(),
            );
        }
        if whole && few(CATEGORY_MAX_DISTINCT) {
            return (
                Kind::Category,
                Nothing,
                format!(
                    "{} distinct whole values: a category or code",
                    distinct.unwrap_or(0)
                ),
            );
        }
        if !named && hint == Some(NameHint::Identifier) {
            return (
                Kind::Identifier,
                Nothing,
                format!("`{name}` names an identifier or code (name it to mark it)"),
            );
        }
        if !named && whole && self.tens + self.zeros == numbers && self.tens > 0 {
            return (
                Kind::Category,
                Nothing,
                "every value is a multiple of 10: a coded scale (name it to mark it)".into(),
            );
        }
        let (min, max) = self.range().unwrap_or_default();
        let unit = match self.logical {
            Logical::Float => match self.working_decimals() {
                0 => "units".to_owned(),
                d => format!("steps of 1e-{d}"),
            },
            Logical::Decimal { scale } if scale > 0 => format!("steps of 1e-{scale}"),
            _ => "units".to_owned(),
        };
        (
            Kind::Measure,
            Digits,
            format!("a measure: low digit in {unit}, within {min}..={max}, zeros and signs kept"),
        )
    }
}

/// What a column's name says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameHint {
    Calendar,
    Identifier,
}

impl NameHint {
    fn of(lower: &str) -> Option<Self> {
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let last = words.last().copied().unwrap_or("");
        const CALENDAR: [&str; 11] = [
            "year", "yr", "month", "day", "dow", "weekday", "week", "quarter", "hour", "minute",
            "second",
        ];
        if words.iter().any(|w| CALENDAR.contains(w)) || last == "hhmm" {
            return Some(Self::Calendar);
        }
        const IDS: [&str; 10] = [
            "id", "code", "no", "nr", "num", "number", "zip", "postcode", "phone", "flight",
        ];
        if IDS.contains(&last) {
            return Some(Self::Identifier);
        }
        None
    }
}

/// What a column is, as far as its profile and name tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A free number: marks go in its low digit.
    Measure,
    /// Few distinct values: a category, flag or code.
    Category,
    /// A calendar or clock field (year, month, HHMM, dates, round times).
    Calendar,
    /// Text with words: carries an invisible end mark.
    FreeText,
    /// Short tokens: codes, labels, identifiers as text.
    Code,
    /// A number that names something (by its column name).
    Identifier,
    /// The same value in every row.
    Constant,
    /// Only nulls.
    Empty,
    /// A type that cannot carry marks (booleans, binary, lists...).
    Unsupported,
}

impl Kind {
    /// The kind as one lowercase word (`measure`, `category`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Measure => "measure",
            Self::Category => "category",
            Self::Calendar => "calendar",
            Self::FreeText => "free-text",
            Self::Code => "code",
            Self::Identifier => "identifier",
            Self::Constant => "constant",
            Self::Empty => "empty",
            Self::Unsupported => "unsupported",
        }
    }
}

/// How a column carries marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Carrier {
    /// The low digit of a number, within the plan's [`Limits`].
    Digits,
    /// An invisible end character on text.
    TextMark,
    /// None: the column is left as it is.
    Nothing,
}

impl Carrier {
    /// The carrier as a short phrase (`low digit`, `text mark`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Digits => "low digit",
            Self::TextMark => "text mark",
            Self::Nothing => "none",
        }
    }
}

/// The plan for one column: what it is, how it carries marks and why.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ColumnPlan {
    /// The column.
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// How it carries marks.
    pub carrier: Carrier,
    /// The bounds of its changes.
    pub limits: Limits,
    /// Why, in a sentence.
    pub reason: String,
}

impl ColumnPlan {
    /// The plan of a column whose type (`data_type`) cannot carry marks.
    pub fn unsupported(name: &str, data_type: &str) -> Self {
        Self {
            name: name.to_owned(),
            kind: Kind::Unsupported,
            carrier: Carrier::Nothing,
            limits: Limits::default(),
            reason: format!("type {data_type} cannot carry marks"),
        }
    }

    /// Whether the column carries marks.
    pub fn marks(&self) -> bool {
        self.carrier != Carrier::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(name: &str, values: impl IntoIterator<Item = i64>) -> ColumnPlan {
        let mut p = ColumnProfile::new(Logical::Integer);
        for v in values {
            p.number(v as f64, 0);
        }
        p.plan(name, false)
    }

    #[test]
    fn an_age_is_a_measure_and_a_month_a_calendar_field() {
        let age = ints("age", (0..5000).map(|i| 18 + i % 70));
        assert_eq!((age.kind, age.carrier), (Kind::Measure, Carrier::Digits));
        assert_eq!((age.limits.min, age.limits.max), (18.0, 87.0));
        assert_eq!(
            ints("month", (0..5000).map(|i| 1 + i % 12)).kind,
            Kind::Calendar
        );
        assert_eq!(
            ints("air_time", (0..5000).map(|i| 20 + i % 680)).kind,
            Kind::Measure
        );
        assert_eq!(
            ints("humid", (0..5000).map(|i| 10 + i % 90)).kind,
            Kind::Measure
        );
        let hhmm = ints("sched", (0..5000).map(|i| (i % 24) * 100 + i % 60));
        assert_eq!(hhmm.kind, Kind::Calendar, "{}", hhmm.reason);
    }

    #[test]
    fn few_whole_values_are_a_category_and_ids_by_name_are_left_alone() {
        assert_eq!(
            ints("rating", (0..5000).map(|i| i % 5)).kind,
            Kind::Category
        );
        assert_eq!(
            ints("flight", (0..5000).map(|i| i * 7 % 4000)).kind,
            Kind::Identifier
        );
        assert_eq!(ints("customer_id", 0..5000).kind, Kind::Identifier);
        assert_eq!(
            ints("wind_dir", (0..5000).map(|i| i % 36 * 10)).kind,
            Kind::Category
        );
        assert_eq!(ints("x", std::iter::repeat_n(3, 100)).kind, Kind::Constant);
    }

    #[test]
    fn codes_are_not_text_marked_and_words_are() {
        let mut codes = ColumnProfile::new(Logical::Text);
        let mut words = ColumnProfile::new(Logical::Text);
        for i in 0..5000 {
            codes.text(["AA", "UA", "DL", "B6"][i % 4]);
            words.text(&format!("item {i} of the order"));
        }
        assert_eq!(codes.plan("carrier", false).kind, Kind::Code);
        assert_eq!(words.plan("comment", false).carrier, Carrier::TextMark);
    }

    #[test]
    fn the_working_precision_is_the_finest_place_in_real_use() {
        let mut p = ColumnProfile::new(Logical::Float);
        for i in 0..5000 {
            match i % 5 {
                0 | 1 => p.number(10.0, 0),
                2 => p.number(2.5, 1),
                3 => p.number(0.25, 2),
                _ => p.number(0.0, 0),
            }
        }
        assert_eq!(p.working_decimals(), 2);
        assert_eq!(p.plan("visib", false).limits.float_decimals, Some(2));
    }

    #[test]
    fn profiles_of_two_halves_merge_into_the_profile_of_the_whole() {
        let mut a = ColumnProfile::new(Logical::Integer);
        let mut b = ColumnProfile::new(Logical::Integer);
        let mut whole = ColumnProfile::new(Logical::Integer);
        for i in 0..2000 {
            let v = (i * 37 % 500) as f64;
            if i < 1000 {
                a.number(v, 0)
            } else {
                b.number(v, 0)
            }
            whole.number(v, 0);
        }
        a.merge(&b);
        assert_eq!(a.distinct(), whole.distinct());
        assert_eq!(a.range(), whole.range());
        assert_eq!(a.plan("v", false), whole.plan("v", false));
    }
}
