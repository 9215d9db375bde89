//! Column profiles and the plan that decides, per column, whether and how
//! it may carry marks without changing what the data means.

use std::collections::HashMap;

use crate::engine::column::Limits;
use crate::engine::rules::{ColumnRule, RuleError};

/// Distinct values tracked exactly; beyond this a column counts as "many".
pub const DISTINCT_CAP: usize = 4096;

/// Numeric columns with at most this many distinct values (each repeated)
/// are categories, codes or fixed scales: a mark would add labels.
pub const CATEGORY_MAX_DISTINCT: usize = 24;

/// Largest step of a marked measure, as a share of its standard deviation.
/// A group of `n ≥ 100` rows whose `k ≤ n` cells move by one step each, in
/// keyed random directions, sees its mean move by about
/// `step·√k / (n·sd) ≤ 0.1/√n`: at most 1% of a standard deviation.
pub const MAX_STEP_OF_SD: f64 = 0.1;

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
    /// Strings: how many are dates or times (`2013-01-01`, `05:40`,
    /// `2013-01-01 05:00:00`).
    datelike: u64,
    /// Numbers: count, mean and sum of squared deviations (Welford; merged
    /// with Chan's formula).
    moments: (u64, f64, f64),
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
            datelike: 0,
            moments: (0, 0.0, 0.0),
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
        let (n, mean, m2) = &mut self.moments;
        *n += 1;
        let delta = value - *mean;
        *mean += delta / *n as f64;
        *m2 += delta * (value - *mean);
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
            self.numeric_text += 1;
            let (value, decimals) = written(count, scale);
            self.numeric(value, decimals);
        } else if NULL_TOKENS.contains(&value) {
            self.null_tokens += 1;
        } else if is_datelike(value) {
            self.datelike += 1;
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

    /// Counts a float, with the decimals its shortest text prints.
    pub(crate) fn float<F: crate::engine::codec::PrintedFloat + Into<f64>>(&mut self, v: F) {
        let decimals = crate::engine::codec::float_digits(v).map_or(-1, |(_, s)| s);
        self.number(v.into(), decimals);
    }

    /// Counts a decimal written as `count × 10^-scale`, at the decimals its
    /// text needs (`12.30` counts as `12.3`, one decimal).
    pub fn written_decimal(&mut self, count: i128, scale: i8) {
        let (value, decimals) = written(count, scale);
        self.number(value, decimals);
    }

    /// Counts an instant of `units` in `1 / per` seconds since the epoch.
    pub(crate) fn instant_in(&mut self, units: i64, per: i64) {
        let per = per.max(1);
        self.instant(units.div_euclid(per), units.rem_euclid(per * 60) == 0);
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
        self.datelike += other.datelike;
        let ((na, ma, qa), (nb, mb, qb)) = (self.moments, other.moments);
        if nb > 0 {
            let n = na + nb;
            let delta = mb - ma;
            self.moments = (
                n,
                ma + delta * nb as f64 / n as f64,
                qa + qb + delta * delta * na as f64 * nb as f64 / n as f64,
            );
        }
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

    /// The standard deviation of the numbers seen (0 for fewer than two).
    pub fn std_dev(&self) -> f64 {
        let (n, _, m2) = self.moments;
        if n < 2 {
            0.0
        } else {
            (m2 / (n - 1) as f64).max(0.0).sqrt()
        }
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

    /// One value, seen at least twice.
    fn is_constant(&self) -> bool {
        self.distinct() == Some(1) && self.values() >= 2
    }

    /// Whether values repeat as a category's labels do: on average each
    /// distinct value at least four times. A handful of rows (a small DSC
    /// request, a tiny leak) has few distinct values without being a
    /// category.
    fn repeats(&self) -> bool {
        self.distinct()
            .is_none_or(|d| self.values() >= 4 * d as u64)
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
        self.plan_with(name, named, &ColumnRule::default())
            .expect("an empty rule always fits")
    }

    /// [`plan`](Self::plan) under the owner's `rule` for the column, which
    /// wins over the profile's guesses (see [`ColumnRule`]).
    ///
    /// ```
    /// use dbwatermark::{Carrier, ColumnProfile, ColumnRule, Kind, Logical};
    ///
    /// let mut rating = ColumnProfile::new(Logical::Integer);
    /// for i in 0..1000 {
    ///     rating.number((1 + i % 5) as f64, 0);
    /// }
    /// assert_eq!(rating.plan("rating", false).kind, Kind::Category);
    /// let mut rule = ColumnRule::default();
    /// rule.set("kind", "measure")?;
    /// let plan = rating.plan_with("rating", false, &rule)?;
    /// assert_eq!((plan.kind, plan.carrier), (Kind::Measure, Carrier::Digits));
    /// assert_eq!((plan.limits.min, plan.limits.max), (1.0, 5.0));
    /// # Ok::<(), dbwatermark::RuleError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RuleError`] when the rule's kind cannot describe this column
    /// (`measure` for text that is not numbers, `free-text` for numbers).
    pub fn plan_with(
        &self,
        name: &str,
        named: bool,
        rule: &ColumnRule,
    ) -> Result<ColumnPlan, RuleError> {
        rule.check().map_err(|e| e.in_column(name))?;
        let asked = named || rule.mark == Some(true);
        let (kind, mut carrier, mut reason) = match rule.kind {
            Some(stated) => self.stated(name, stated)?,
            None => self.classify(name, asked),
        };
        if rule.mark == Some(false) {
            carrier = Carrier::Nothing;
            reason = format!("left alone by the owner's rules (`mark = false`); {reason}");
        } else if rule.mark == Some(true) && carrier == Carrier::Nothing && rule.kind.is_none() {
            let hint = match kind {
                Kind::Code => " (set `kind = free-text` to mark it anyway)",
                Kind::Category | Kind::Calendar | Kind::Identifier => {
                    " (set `kind = measure` to mark it anyway)"
                }
                _ => "",
            };
            reason = format!("asked to mark, but {reason}{hint}");
        }
        let mut limits = Limits::default();
        if carrier == Carrier::Digits {
            let (min, max) = self.range().unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
            limits.min = rule.min.unwrap_or(min);
            limits.max = rule.max.unwrap_or(max);
            if self.logical == Logical::Float || self.is_numeric_text() {
                limits.float_decimals = Some(self.working_decimals());
            }
            if let Some(change) = rule.max_change {
                limits.max_change = change;
                match self.finest_step_within(change) {
                    Some(decimals) => {
                        let working = self.working_decimals();
                        if self.logical == Logical::Float && decimals != working {
                            limits.float_decimals = Some(decimals);
                            reason = reason.replace(
                                &format!("low digit in {}", decimal_unit(working)),
                                &format!("low digit in {}", decimal_unit(decimals)),
                            );
                        }
                    }
                    None => {
                        carrier = Carrier::Nothing;
                        reason = format!(
                            "its smallest step ({}) is larger than the owner's `max_change = {change}`",
                            self.step_text()
                        );
                    }
                }
            }
            if carrier == Carrier::Digits {
                let whose = if rule.min.is_some() || rule.max.is_some() {
                    " (the owner's range)"
                } else {
                    ""
                };
                reason = format!("{reason}, within {}..={}{whose}", limits.min, limits.max);
                if limits.max_change.is_finite() {
                    reason = format!("{reason}, each change at most {}", limits.max_change);
                }
            }
        }
        Ok(ColumnPlan {
            name: name.to_owned(),
            kind,
            carrier,
            limits,
            reason,
        })
    }

    /// The column's step as text: `1`, `0.01`, `1 s`, `1 day`.
    fn step_text(&self) -> String {
        match self.logical {
            Logical::Integer => "1".into(),
            Logical::Decimal { scale } => format!("1e-{scale}"),
            Logical::Float | Logical::Text => format!("1e-{}", self.working_decimals()),
            Logical::Timestamp => "1 s".into(),
            Logical::Date => "1 day".into(),
        }
    }

    /// The decimal place a float may be marked in so that one step is at
    /// most `change` (for other types: their own, if its step fits); `None`
    /// when no place fits.
    fn finest_step_within(&self, change: f64) -> Option<i32> {
        let fits = |decimals: i32| 10f64.powi(-decimals) <= change * (1.0 + 1e-9);
        match self.logical {
            Logical::Float => (self.working_decimals()..=24).find(|&d| fits(d)),
            Logical::Decimal { scale } => fits(i32::from(scale)).then_some(i32::from(scale)),
            Logical::Text => {
                let d = self.working_decimals();
                fits(d).then_some(d)
            }
            Logical::Integer | Logical::Timestamp | Logical::Date => fits(0).then_some(0),
        }
    }

    /// What a column is when the owner states its kind; empty and constant
    /// columns stay unmarked whatever is stated.
    fn stated(&self, name: &str, kind: Kind) -> Result<(Kind, Carrier, String), RuleError> {
        if self.values() == 0 {
            return Ok((Kind::Empty, Carrier::Nothing, "no values".into()));
        }
        if self.is_constant() {
            return Ok((
                Kind::Constant,
                Carrier::Nothing,
                "one value in every row".into(),
            ));
        }
        let numbers = self.logical != Logical::Text || self.is_numeric_text();
        let mismatch =
            |what: &str| RuleError::new(format!("`kind = {kind}` needs {what}")).in_column(name);
        Ok(match kind {
            Kind::Measure if !numbers => return Err(mismatch("numbers, dates or timestamps")),
            Kind::Measure => {
                let (_, carrier, reason) = self.measure();
                (
                    Kind::Measure,
                    carrier,
                    format!("stated by the owner: {reason}"),
                )
            }
            Kind::FreeText if self.logical != Logical::Text => return Err(mismatch("text")),
            Kind::FreeText => (
                Kind::FreeText,
                Carrier::TextMark,
                "free text, stated by the owner: an invisible end mark".into(),
            ),
            other => (
                other,
                Carrier::Nothing,
                format!("stated by the owner to be a {other}: left alone"),
            ),
        })
    }

    fn classify(&self, name: &str, named: bool) -> (Kind, Carrier, String) {
        use Carrier::{Digits, Nothing, TextMark};
        let distinct = self.distinct();
        if self.values() == 0 {
            return (Kind::Empty, Nothing, "no values".into());
        }
        if self.is_constant() {
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
                let reason = match (carrier, self.null_tokens) {
                    (Digits, 0) => format!("{reason} (numbers as text)"),
                    (Digits, n) => format!("{reason} (numbers as text; {n} N/A-like cells kept)"),
                    _ => reason,
                };
                (kind, carrier, reason)
            }
            Logical::Text
                if self.datelike > 0 && self.datelike + self.null_tokens == self.values() =>
            {
                (
                    Kind::Calendar,
                    Nothing,
                    "dates or times written as text: calendar fields".into(),
                )
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
        use Carrier::Nothing;
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
        if few(CATEGORY_MAX_DISTINCT) && self.repeats() {
            // Whole or not: a rating, a discount level, a visibility scale.
            let what = if whole { "whole values" } else { "values" };
            return (
                Kind::Category,
                Nothing,
                format!(
                    "{} distinct {what}: a category, code or fixed scale",
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
        let step = self.step();
        let sd = self.std_dev();
        // Only where groups of 100 rows can exist: a handful of rows (a
        // small DSC request) has no small groups to move.
        if self.values() >= 200 && step > MAX_STEP_OF_SD * sd {
            return (
                Kind::Measure,
                Nothing,
                format!(
                    "its step ({step}) is {:.0}% of its standard deviation ({sd:.3}): a mark would move the means of small groups (set `kind = measure` to mark it anyway)",
                    100.0 * step / sd.max(f64::MIN_POSITIVE)
                ),
            );
        }
        self.measure()
    }

    /// The smallest change a mark makes to one value: one unit of the last
    /// digit in use.
    fn step(&self) -> f64 {
        match self.logical {
            Logical::Decimal { scale } => 10f64.powi(-i32::from(scale)),
            Logical::Float | Logical::Text => 10f64.powi(-self.working_decimals()),
            Logical::Integer | Logical::Timestamp | Logical::Date => 1.0,
        }
    }

    /// A column marked in its low digit, and the reason saying so.
    fn measure(&self) -> (Kind, Carrier, String) {
        let unit = match self.logical {
            Logical::Float | Logical::Text => decimal_unit(self.working_decimals()),
            Logical::Decimal { scale } => decimal_unit(scale.into()),
            Logical::Timestamp => "seconds".to_owned(),
            Logical::Date => "days".to_owned(),
            _ => "units".to_owned(),
        };
        (
            Kind::Measure,
            Carrier::Digits,
            format!("a measure: low digit in {unit}, zeros and signs kept"),
        )
    }
}

/// The value and the decimals in use of `count × 10^-scale` as written,
/// without trailing zeros.
fn written(count: i128, scale: i8) -> (f64, i32) {
    let (count, scale) = crate::engine::column::significant(count, scale);
    (
        crate::engine::codec::decimal_value(count, scale.into()),
        scale.into(),
    )
}

/// Whether `s` starts like a date (`2013-01-01`, `2013/01/01`) or is a
/// time of day (`05:40`, `05:40:00`).
fn is_datelike(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    let date = digits(0..4) && at(4, b"-/") && digits(5..7) && at(7, b"-/") && digits(8..10);
    let time = (b.len() == 5 || b.len() == 8)
        && digits(0..2)
        && at(2, b":")
        && digits(3..5)
        && (b.len() == 5 || at(5, b":") && digits(6..8));
    date || time
}

/// The step of a number marked at `decimals` places, in words.
fn decimal_unit(decimals: i32) -> String {
    if decimals <= 0 {
        "units".to_owned()
    } else {
        format!("steps of 1e-{decimals}")
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
        // `partkey`, `custkey`, `order_key`: join keys.
        if IDS.contains(&last) || last.ends_with("key") || last == "fk" || last == "uuid" {
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
    /// Every kind.
    pub const ALL: [Kind; 9] = [
        Kind::Measure,
        Kind::Category,
        Kind::Calendar,
        Kind::FreeText,
        Kind::Code,
        Kind::Identifier,
        Kind::Constant,
        Kind::Empty,
        Kind::Unsupported,
    ];

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
    /// Every carrier.
    pub const ALL: [Carrier; 3] = [Carrier::Digits, Carrier::TextMark, Carrier::Nothing];

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

    /// The plan of a column marked by its type alone, without a profile:
    /// text with an end mark, anything else in its low digit.
    pub fn by_type(name: &str, text: bool) -> Self {
        let (kind, carrier) = if text {
            (Kind::FreeText, Carrier::TextMark)
        } else {
            (Kind::Measure, Carrier::Digits)
        };
        Self {
            name: name.to_owned(),
            kind,
            carrier,
            limits: Limits::default(),
            reason: "marked by its type (no profile)".into(),
        }
    }

    /// Whether the column carries marks.
    pub fn marks(&self) -> bool {
        self.carrier != Carrier::Nothing
    }

    /// A short fingerprint (16 hex digits) of how a table is marked under
    /// `plans`: the marked columns in order, with their kind, carrier and
    /// limits. Two copies with the same fingerprint were marked in the same
    /// columns the same way; it holds nothing secret.
    ///
    /// ```
    /// use dbwatermark::{ColumnPlan, ColumnProfile, Logical};
    ///
    /// let mut p = ColumnProfile::new(Logical::Integer);
    /// (0..500).for_each(|i| p.number((100 + i * 7 % 900) as f64, 0));
    /// let plans = [p.plan("distance", false)];
    /// let f = ColumnPlan::fingerprint(&plans);
    /// assert_eq!(f.len(), 16);
    /// assert_eq!(f, ColumnPlan::fingerprint(&plans.clone()));
    /// assert_ne!(f, ColumnPlan::fingerprint(&[p.plan("dist", false)]));
    /// ```
    pub fn fingerprint(plans: &[ColumnPlan]) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"dbwm-plan-v1\n");
        for p in plans.iter().filter(|p| p.marks()) {
            let l = &p.limits;
            let line = format!(
                "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{:?}\u{1f}{}\n",
                p.name,
                p.kind.as_str(),
                p.carrier.as_str(),
                l.min,
                l.max,
                l.float_decimals,
                l.max_change
            );
            h.update(line.as_bytes());
        }
        crate::engine::key::hex(&h.finalize()[..8])
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
        // Join keys by name (TPC-H's `l_partkey`, `o_custkey`).
        assert_eq!(
            ints("l_partkey", (0..5000).map(|i| 1 + i * 7 % 9000)).kind,
            Kind::Identifier
        );
    }

    #[test]
    fn a_handful_of_fractional_levels_is_a_fixed_scale_but_a_handful_of_rows_is_not_a_category() {
        // TPC-H's discounts: 0.00 to 0.10 in hundredths.
        let mut discount = ColumnProfile::new(Logical::Float);
        for i in 0..5000 {
            let v = (i % 11) as f64 / 100.0;
            discount.number(v, if i % 11 == 0 { 0 } else { 2 });
        }
        assert_eq!(discount.plan("l_discount", false).kind, Kind::Category);
        // Three rows of a measure have three distinct values.
        assert_eq!(ints("qty", [3, 4, 9]).kind, Kind::Measure);
        assert_eq!(ints("qty", [3]).kind, Kind::Measure);
    }

    #[test]
    fn a_measure_whose_step_is_coarse_for_its_spread_is_left_alone() {
        // Hourly rain: mostly 0, hundredths up to 0.3 (sd ≈ 0.03).
        let mut rain = ColumnProfile::new(Logical::Float);
        for i in 0..5000 {
            let v = if i % 10 == 0 {
                (i % 31) as f64 / 100.0
            } else {
                0.0
            };
            rain.number(v, 2);
        }
        let plan = rain.plan("precip", false);
        assert_eq!(
            (plan.kind, plan.carrier),
            (Kind::Measure, Carrier::Nothing),
            "{}",
            plan.reason
        );
        assert!(
            plan.reason.contains("standard deviation"),
            "{}",
            plan.reason
        );
        let mut rule = ColumnRule::default();
        rule.set("kind", "measure").unwrap();
        assert_eq!(
            rain.plan_with("precip", false, &rule).unwrap().carrier,
            Carrier::Digits
        );
    }

    #[test]
    fn dates_and_times_written_as_text_are_calendar_fields() {
        for sample in [
            "2013-01-01 05:00:00",
            "2013-01-01",
            "2013/01/01T05:00Z",
            "05:40",
        ] {
            let mut p = ColumnProfile::new(Logical::Text);
            for _ in 0..500 {
                p.text(sample);
                p.text("NA");
            }
            assert_eq!(p.plan("when", false).kind, Kind::Calendar, "{sample}");
        }
        assert!(!is_datelike("12345-01-01") && !is_datelike("5:40") && !is_datelike("ab"));
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
            // Wholes, tenths and hundredths of many distinct values.
            let k = (i % 97 + 1) as f64;
            match i % 5 {
                0 | 1 => p.number(k, 0),
                2 => p.number(k + 0.5, 1),
                3 => p.number(k + 0.25, 2),
                _ => p.number(0.0, 0),
            }
        }
        assert_eq!(p.working_decimals(), 2);
        assert_eq!(p.plan("rain", false).limits.float_decimals, Some(2));
    }

    #[test]
    fn profiles_of_two_halves_merge_into_the_profile_of_the_whole() {
        let mut a = ColumnProfile::new(Logical::Integer);
        let mut b = ColumnProfile::new(Logical::Integer);
        let mut whole = ColumnProfile::new(Logical::Integer);
        for i in 0..2000 {
            // Far from zero, where naive sums of squares lose the spread.
            let v = (i * 37 % 500) as f64 + 1e9;
            if i < 700 {
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
        assert!((a.std_dev() - whole.std_dev()).abs() < 1e-6 * whole.std_dev());
        assert!(
            (144.0..145.0).contains(&whole.std_dev()),
            "{}",
            whole.std_dev()
        );
    }
}
