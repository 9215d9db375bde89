//! An owned, column-oriented table: the simplest way to use the core.

use crate::engine::Watermarker;
use crate::engine::codec;
use crate::engine::column::{ColumnMut, ColumnRef, Validity, plain_types};
use crate::engine::column::{Limits, MS_PER_DAY};
use crate::engine::embed::ColumnReport;
use crate::engine::error::{Error, Result};
use crate::engine::extract::{Found, Tally};
use crate::engine::key::KeyPart;
use crate::engine::profile::{ColumnPlan, ColumnProfile, Logical};
use crate::engine::rules::{ColumnRules, RuleError};

macro_rules! values {
    ($($variant:ident: $t:ty, $doc:literal;)*) => {
        /// The values of one column.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum Values {
            $(#[doc = $doc] $variant(Vec<$t>),)*
            /// Decimals `count × 10^-scale` with at most `precision` digits.
            Decimal {
                /// Unscaled values.
                counts: Vec<i128>,
                /// Digits after the decimal point.
                scale: i8,
                /// Maximum number of digits, 1 to 38.
                precision: u8,
            },
            /// Timestamps in `1 / units_per_second` seconds since the epoch.
            Timestamp {
                /// The timestamps.
                values: Vec<i64>,
                /// 1 for seconds, 1,000 for milliseconds and so on.
                units_per_second: i64,
            },
        }

        impl Values {
            /// Number of rows.
            pub fn len(&self) -> usize {
                match self {
                    $(Values::$variant(v) => v.len(),)*
                    Values::Decimal { counts, .. } => counts.len(),
                    Values::Timestamp { values, .. } => values.len(),
                }
            }

            /// Whether there are no rows.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// A mutable view for [`Watermarker::embed_column`].
            pub fn as_column_mut(&mut self) -> ColumnMut<'_> {
                match self {
                    $(Values::$variant(v) => ColumnMut::$variant(v),)*
                    Values::Decimal {
                        counts,
                        scale,
                        precision,
                    } => ColumnMut::Decimal {
                        counts,
                        scale: *scale,
                        precision: *precision,
                    },
                    Values::Timestamp {
                        values,
                        units_per_second,
                    } => ColumnMut::Timestamp {
                        values,
                        units_per_second: *units_per_second,
                    },
                }
            }

            /// A read-only view for [`Watermarker::tally_column`].
            pub fn as_column_ref(&self) -> ColumnRef<'_> {
                match self {
                    $(Values::$variant(v) => ColumnRef::$variant(v),)*
                    Values::Decimal { counts, scale, .. } => ColumnRef::Decimal {
                        counts,
                        scale: *scale,
                    },
                    Values::Timestamp {
                        values,
                        units_per_second,
                    } => ColumnRef::Timestamp {
                        values,
                        units_per_second: *units_per_second,
                    },
                }
            }
        }
    };
}
plain_types!(values);

/// Microseconds since the epoch of a timestamp counted in
/// `1 / units_per_second` seconds, rounded down, saturating at `i64`'s ends.
pub(crate) fn instant_micros(value: i64, units_per_second: i64) -> i64 {
    let micros = (i128::from(value) * 1_000_000).div_euclid(i128::from(units_per_second.max(1)));
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

impl Values {
    /// The value of `row` as a primary-key part. Timestamps and dates are
    /// keyed by their instant ([`KeyPart::Instant`]), whatever their unit.
    pub fn key_part(&self, row: usize) -> KeyPart<'_> {
        match self {
            Values::Int8(v) => KeyPart::Int(v[row].into()),
            Values::Int16(v) => KeyPart::Int(v[row].into()),
            Values::Int32(v) => KeyPart::Int(v[row].into()),
            Values::Int64(v) => KeyPart::Int(v[row].into()),
            Values::UInt8(v) => KeyPart::UInt(v[row].into()),
            Values::UInt16(v) => KeyPart::UInt(v[row].into()),
            Values::UInt32(v) => KeyPart::UInt(v[row].into()),
            Values::UInt64(v) => KeyPart::UInt(v[row].into()),
            Values::Decimal { counts, scale, .. } => KeyPart::Decimal {
                mantissa: counts[row],
                scale: *scale,
            },
            Values::Float32(v) => KeyPart::Float32(v[row]),
            Values::Float64(v) => KeyPart::Float(v[row]),
            Values::Text(v) => KeyPart::Str(&v[row]),
            Values::Timestamp {
                values,
                units_per_second,
            } => KeyPart::Instant(instant_micros(values[row], *units_per_second)),
            Values::Date32(v) => KeyPart::Instant(i64::from(v[row]).saturating_mul(86_400_000_000)),
            Values::Date64(v) => KeyPart::Instant(instant_micros(v[row], 1_000)),
        }
    }

    /// The values at `rows`, in that order (rows may repeat).
    ///
    /// # Panics
    ///
    /// If a row index is out of bounds.
    pub fn take(&self, rows: &[usize]) -> Values {
        fn pick<T: Clone>(v: &[T], rows: &[usize]) -> Vec<T> {
            rows.iter().map(|&r| v[r].clone()).collect()
        }
        match self {
            Values::Int8(v) => Values::Int8(pick(v, rows)),
            Values::Int16(v) => Values::Int16(pick(v, rows)),
            Values::Int32(v) => Values::Int32(pick(v, rows)),
            Values::Int64(v) => Values::Int64(pick(v, rows)),
            Values::UInt8(v) => Values::UInt8(pick(v, rows)),
            Values::UInt16(v) => Values::UInt16(pick(v, rows)),
            Values::UInt32(v) => Values::UInt32(pick(v, rows)),
            Values::UInt64(v) => Values::UInt64(pick(v, rows)),
            Values::Decimal {
                counts,
                scale,
                precision,
            } => Values::Decimal {
                counts: pick(counts, rows),
                scale: *scale,
                precision: *precision,
            },
            Values::Float32(v) => Values::Float32(pick(v, rows)),
            Values::Float64(v) => Values::Float64(pick(v, rows)),
            Values::Text(v) => Values::Text(pick(v, rows)),
            Values::Timestamp {
                values,
                units_per_second,
            } => Values::Timestamp {
                values: pick(values, rows),
                units_per_second: *units_per_second,
            },
            Values::Date32(v) => Values::Date32(pick(v, rows)),
            Values::Date64(v) => Values::Date64(pick(v, rows)),
        }
    }

    /// Appends the values of `other`, which must be of the same type.
    ///
    /// # Errors
    ///
    /// [`Error::TypeMismatch`] (naming `column`) when the types differ.
    pub fn append(&mut self, other: &Values, column: &str) -> Result<()> {
        let mismatch = || Error::TypeMismatch {
            column: column.to_owned(),
        };
        match (self, other) {
            (Values::Int8(a), Values::Int8(b)) => a.extend_from_slice(b),
            (Values::Int16(a), Values::Int16(b)) => a.extend_from_slice(b),
            (Values::Int32(a), Values::Int32(b)) => a.extend_from_slice(b),
            (Values::Int64(a), Values::Int64(b)) => a.extend_from_slice(b),
            (Values::UInt8(a), Values::UInt8(b)) => a.extend_from_slice(b),
            (Values::UInt16(a), Values::UInt16(b)) => a.extend_from_slice(b),
            (Values::UInt32(a), Values::UInt32(b)) => a.extend_from_slice(b),
            (Values::UInt64(a), Values::UInt64(b)) => a.extend_from_slice(b),
            (
                Values::Decimal {
                    counts: a,
                    scale: sa,
                    ..
                },
                Values::Decimal {
                    counts: b,
                    scale: sb,
                    ..
                },
            ) if sa == sb => a.extend_from_slice(b),
            (Values::Float32(a), Values::Float32(b)) => a.extend_from_slice(b),
            (Values::Float64(a), Values::Float64(b)) => a.extend_from_slice(b),
            (Values::Text(a), Values::Text(b)) => a.extend_from_slice(b),
            (
                Values::Timestamp {
                    values: a,
                    units_per_second: ua,
                },
                Values::Timestamp {
                    values: b,
                    units_per_second: ub,
                },
            ) if ua == ub => a.extend_from_slice(b),
            (Values::Date32(a), Values::Date32(b)) => a.extend_from_slice(b),
            (Values::Date64(a), Values::Date64(b)) => a.extend_from_slice(b),
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    /// Whether `other` has the same type (and scale or unit).
    pub fn same_type(&self, other: &Values) -> bool {
        match (self, other) {
            (Values::Decimal { scale: a, .. }, Values::Decimal { scale: b, .. }) => a == b,
            (
                Values::Timestamp {
                    units_per_second: a,
                    ..
                },
                Values::Timestamp {
                    units_per_second: b,
                    ..
                },
            ) => a == b,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }

    fn is_date(&self) -> bool {
        matches!(self, Values::Date32(_) | Values::Date64(_))
    }

    /// The value of `row` as a number: integers, decimals and floats as
    /// they are, timestamps in seconds and dates in days since the epoch;
    /// `None` for strings.
    pub fn number(&self, row: usize) -> Option<f64> {
        Some(match self {
            Values::Int8(v) => v[row].into(),
            Values::Int16(v) => v[row].into(),
            Values::Int32(v) => v[row].into(),
            Values::Int64(v) => v[row] as f64,
            Values::UInt8(v) => v[row].into(),
            Values::UInt16(v) => v[row].into(),
            Values::UInt32(v) => v[row].into(),
            Values::UInt64(v) => v[row] as f64,
            Values::Decimal { counts, scale, .. } => {
                codec::decimal_value(counts[row], (*scale).into())
            }
            Values::Float32(v) => v[row].into(),
            Values::Float64(v) => v[row],
            Values::Text(_) => return None,
            Values::Timestamp {
                values,
                units_per_second,
            } => values[row].div_euclid((*units_per_second).max(1)) as f64,
            Values::Date32(v) => v[row].into(),
            Values::Date64(v) => v[row].div_euclid(MS_PER_DAY) as f64,
        })
    }

    /// The logical type the profile sees.
    pub(crate) fn logical(&self) -> Logical {
        match self {
            Values::Decimal { scale, .. } => Logical::Decimal { scale: *scale },
            Values::Float32(_) | Values::Float64(_) => Logical::Float,
            Values::Text(_) => Logical::Text,
            Values::Timestamp { .. } => Logical::Timestamp,
            Values::Date32(_) | Values::Date64(_) => Logical::Date,
            _ => Logical::Integer,
        }
    }

    /// The profile of these values (`valid[row]` false for a null).
    pub fn profile(&self, valid: impl Fn(usize) -> bool) -> ColumnProfile {
        let mut p = ColumnProfile::new(self.logical());
        for row in 0..self.len() {
            if !valid(row) {
                p.null();
                continue;
            }
            match self {
                Values::Text(v) => p.text(&v[row]),
                Values::Float32(v) => p.float(v[row]),
                Values::Float64(v) => p.float(v[row]),
                Values::Decimal { scale, .. } => {
                    p.number(self.number(row).unwrap_or(f64::NAN), i32::from(*scale))
                }
                Values::Timestamp {
                    values,
                    units_per_second,
                } => p.instant_in(values[row], *units_per_second),
                _ => p.number(self.number(row).unwrap_or(f64::NAN), 0),
            }
        }
        p
    }
}

/// A named column with optional nulls.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The column's name; used in reports only, never in the marking.
    pub name: String,
    /// The values.
    pub values: Values,
    /// `Some(mask)` where `mask[row]` is `false` for a null, `None` if no nulls.
    pub validity: Option<Vec<bool>>,
    /// Whether the column carries marks (default: yes, except dates, whose
    /// step of one day is large; strings can be turned off here).
    pub mark: bool,
}

impl Column {
    /// A column without nulls.
    pub fn new(name: impl Into<String>, values: Values) -> Self {
        let mark = !values.is_date();
        Self {
            name: name.into(),
            values,
            validity: None,
            mark,
        }
    }

    /// Sets the validity mask (`false` = null).
    pub fn with_validity(mut self, validity: Vec<bool>) -> Self {
        self.validity = Some(validity);
        self
    }

    /// Sets whether the column carries marks.
    pub fn with_mark(mut self, mark: bool) -> Self {
        self.mark = mark;
        self
    }

    /// The column restricted to `rows`, in that order.
    ///
    /// # Panics
    ///
    /// If a row index is out of bounds.
    pub fn take(&self, rows: &[usize]) -> Column {
        Column {
            name: self.name.clone(),
            values: self.values.take(rows),
            validity: self
                .validity
                .as_ref()
                .map(|v| rows.iter().map(|&r| v[r]).collect()),
            mark: self.mark,
        }
    }

    /// Whether `row` holds a value (not a null).
    pub fn is_valid(&self, row: usize) -> bool {
        self.validity.as_ref().is_none_or(|v| v[row])
    }
}

/// A table: primary-key columns and the other columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// The primary-key columns, in key order; never changed by embedding.
    pub key: Vec<Column>,
    /// The other columns.
    pub columns: Vec<Column>,
}

/// What embedding did to a table.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EmbedReport {
    /// Rows in the table.
    pub rows: usize,
    /// The density marks were embedded at.
    pub density: crate::Density,
    /// Rows selected to carry marks.
    pub marked_rows: usize,
    /// One report per marked column, by name.
    pub columns: Vec<(String, ColumnReport)>,
}

impl EmbedReport {
    /// Share of the cells of the marked columns that changed.
    pub fn changed_fraction(&self) -> f64 {
        let cells = self.rows * self.columns.len();
        let changed: usize = self.columns.iter().map(|(_, r)| r.changed).sum();
        if cells == 0 {
            0.0
        } else {
            changed as f64 / cells as f64
        }
    }
}

impl Table {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.key.first().map_or(0, |c| c.values.len())
    }

    /// The table restricted to `rows`, in that order (rows may repeat).
    ///
    /// # Panics
    ///
    /// If a row index is out of bounds.
    pub fn take_rows(&self, rows: &[usize]) -> Table {
        Table {
            key: self.key.iter().map(|c| c.take(rows)).collect(),
            columns: self.columns.iter().map(|c| c.take(rows)).collect(),
        }
    }

    /// Appends the rows of `other`, a table with the same columns in the
    /// same order and of the same types.
    ///
    /// # Errors
    ///
    /// [`Error::TypeMismatch`] naming the first column that differs.
    pub fn append(&mut self, other: &Table) -> Result<()> {
        other.check()?;
        self.check()?;
        let rows = (self.rows(), other.rows());
        let pairs = || {
            self.key
                .iter()
                .zip(&other.key)
                .chain(self.columns.iter().zip(&other.columns))
        };
        if self.key.len() != other.key.len() || self.columns.len() != other.columns.len() {
            return Err(Error::TypeMismatch {
                column: "(column count)".to_owned(),
            });
        }
        if let Some((a, _)) = pairs().find(|(a, b)| !a.values.same_type(&b.values)) {
            return Err(Error::TypeMismatch {
                column: a.name.clone(),
            });
        }
        for (a, b) in self
            .key
            .iter_mut()
            .zip(&other.key)
            .chain(self.columns.iter_mut().zip(&other.columns))
        {
            a.values.append(&b.values, &a.name)?;
            if a.validity.is_some() || b.validity.is_some() {
                let mut v = a.validity.take().unwrap_or_else(|| vec![true; rows.0]);
                v.extend(b.validity.clone().unwrap_or_else(|| vec![true; rows.1]));
                a.validity = Some(v);
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<()> {
        if self.key.is_empty() {
            return Err(Error::NoPrimaryKey);
        }
        let rows = self.rows();
        for c in self.key.iter().chain(&self.columns) {
            let got = c.values.len();
            let validity = c.validity.as_ref().map_or(got, Vec::len);
            if got != rows || validity != rows {
                return Err(Error::RowCountMismatch {
                    column: c.name.clone(),
                    expected: rows,
                    got: if got != rows { got } else { validity },
                });
            }
        }
        Ok(())
    }
}

impl Table {
    /// The plan of each marked column, from the profile of its values under
    /// the owner's `rules`: the same plan `dbwm embed` makes for a file's
    /// columns (see [`ColumnProfile::plan_with`]).
    ///
    /// ```
    /// use dbwatermark::{Column, ColumnRules, Config, Kind, Table, Values, WatermarkKey, Watermarker};
    ///
    /// let mut table = Table {
    ///     key: vec![Column::new("id", Values::Int64((0..6000).collect()))],
    ///     columns: vec![
    ///         Column::new("month", Values::Int32((0..6000).map(|i| 1 + i % 12).collect())),
    ///         Column::new("price", Values::Int64((0..6000).map(|i| 100 + i * 37 % 9000).collect())),
    ///     ],
    /// };
    /// let plans = table.plan(&ColumnRules::new())?;
    /// assert_eq!(plans[0].kind, Kind::Calendar);
    /// let wm = Watermarker::new(WatermarkKey::new("secret")?, Config::default());
    /// let before = table.clone();
    /// wm.embed_table_planned(&mut table, "copy-7", &plans)?;
    /// assert_eq!(table.columns[0], before.columns[0], "months untouched");
    /// let leak_plans = table.plan(&ColumnRules::new())?;
    /// assert_eq!(wm.extract_table_planned(&table, &leak_plans)?[0].content, "copy-7");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RuleError`] when a rule names no marked column of the table or
    /// states a kind its column cannot be.
    pub fn plan(&self, rules: &ColumnRules) -> std::result::Result<Vec<ColumnPlan>, RuleError> {
        for (name, _) in rules.columns() {
            if !self.columns.iter().any(|c| c.name == name) {
                return Err(RuleError::new("the table has no such column").in_column(name));
            }
        }
        self.columns
            .iter()
            .filter(|c| c.mark)
            .map(|c| {
                let rule = rules.get(&c.name).copied().unwrap_or_default();
                c.values
                    .profile(|row| c.is_valid(row))
                    .plan_with(&c.name, false, &rule)
            })
            .collect()
    }
}

/// The plan for `name` among `plans`, when it marks.
fn marking<'a>(plans: &'a [ColumnPlan], name: &str) -> Option<&'a ColumnPlan> {
    plans.iter().find(|p| p.name == name && p.marks())
}

impl Watermarker {
    /// Hashes the primary keys of `table`. A row with a null key part is skipped.
    pub fn select_table(&self, table: &Table) -> crate::Selection {
        self.select(table.rows(), |row, enc| {
            for k in &table.key {
                if !k.is_valid(row) {
                    return false;
                }
                enc.push(k.values.key_part(row));
            }
            true
        })
    }

    /// Embeds `content` into every marked column of `table`, at the
    /// configured density or, by default, at [`Density::auto`](crate::Density::auto)
    /// for the table's size.
    ///
    /// # Errors
    ///
    /// [`Error::NoPrimaryKey`], [`Error::RowCountMismatch`] for a column of
    /// the wrong length, [`Error::ContentLength`] for a bad content.
    pub fn embed_table(&self, table: &mut Table, content: &str) -> Result<EmbedReport> {
        self.embed_table_by(table, content, |_| Some(Limits::default()))
    }

    /// Embeds into the marked columns `limits_of` gives limits for.
    fn embed_table_by(
        &self,
        table: &mut Table,
        content: &str,
        limits_of: impl Fn(&str) -> Option<Limits>,
    ) -> Result<EmbedReport> {
        table.check()?;
        let payload = self.payload(content)?;
        let marked = table
            .columns
            .iter()
            .filter(|c| c.mark && limits_of(&c.name).is_some())
            .count();
        let wm = self.for_columns(marked);
        let density = wm.density_for_columns(Some(table.rows()), &payload, marked);
        let selection = wm.select_table(table);
        let mut columns = Vec::new();
        for c in table.columns.iter_mut().filter(|c| c.mark) {
            let Some(limits) = limits_of(&c.name) else {
                continue;
            };
            let report = wm.embed_column_within(
                &selection,
                &payload,
                density,
                c.values.as_column_mut(),
                c.validity.as_ref().map(Validity::from),
                &limits,
            )?;
            columns.push((c.name.clone(), report));
        }
        Ok(EmbedReport {
            rows: table.rows(),
            density,
            marked_rows: selection.marked_rows(density),
            columns,
        })
    }

    /// [`embed_table`](Self::embed_table) following `plans` (from
    /// [`Table::plan`]): only the columns whose plan marks them, each
    /// within its plan's [`Limits`](crate::Limits).
    ///
    /// # Errors
    ///
    /// As [`embed_table`](Self::embed_table).
    pub fn embed_table_planned(
        &self,
        table: &mut Table,
        content: &str,
        plans: &[ColumnPlan],
    ) -> Result<EmbedReport> {
        self.embed_table_by(table, content, |name| {
            marking(plans, name).map(|p| p.limits)
        })
    }

    /// [`tally_table`](Self::tally_table) following `plans` (the leak's
    /// own, from [`Table::plan`]): the columns whose plan marks them, read
    /// as they were marked.
    ///
    /// # Errors
    ///
    /// As [`tally_table`](Self::tally_table).
    pub fn tally_table_planned(
        &self,
        table: &Table,
        plans: &[ColumnPlan],
    ) -> Result<Vec<(String, Tally)>> {
        self.tally_table_by(table, |name| marking(plans, name).map(|p| p.limits))
    }

    /// [`extract_table`](Self::extract_table) following `plans`.
    ///
    /// # Errors
    ///
    /// As [`extract_table`](Self::extract_table).
    pub fn extract_table_planned(&self, table: &Table, plans: &[ColumnPlan]) -> Result<Vec<Found>> {
        let tallies: Vec<Tally> = self
            .tally_table_planned(table, plans)?
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        Ok(self.decode(&tallies))
    }

    /// The tallies of the marked columns of `table`, in column order.
    ///
    /// # Errors
    ///
    /// [`Error::NoPrimaryKey`] or [`Error::RowCountMismatch`].
    pub fn tally_table(&self, table: &Table) -> Result<Vec<(String, Tally)>> {
        self.tally_table_by(table, |_| Some(Limits::default()))
    }

    /// The tallies of the marked columns `limits_of` gives limits for.
    fn tally_table_by(
        &self,
        table: &Table,
        limits_of: impl Fn(&str) -> Option<Limits>,
    ) -> Result<Vec<(String, Tally)>> {
        table.check()?;
        let selection = self.select_table(table);
        table
            .columns
            .iter()
            .filter(|c| c.mark)
            .filter_map(|c| limits_of(&c.name).map(|l| (c, l)))
            .map(|(c, limits)| {
                let mut t = Tally::new();
                self.tally_column_within(
                    &selection,
                    c.values.as_column_ref(),
                    c.validity.as_ref().map(Validity::from),
                    &mut t,
                    &limits,
                )?;
                Ok((c.name.clone(), t))
            })
            .collect()
    }

    /// Extracts the watermarks of `table`; `Found::columns` index the
    /// table's marked columns in order.
    ///
    /// ```
    /// use dbwatermark::{Column, Config, Table, Values, WatermarkKey, Watermarker};
    /// let mut table = Table {
    ///     key: vec![Column::new("id", Values::Int64((0..3000).collect()))],
    ///     columns: vec![Column::new("qty", Values::Int32((0..3000).map(|i| i % 97).collect()))],
    /// };
    /// let wm = Watermarker::new(WatermarkKey::new("secret")?, Config::default());
    /// wm.embed_table(&mut table, "copy-B")?;
    /// assert_eq!(wm.extract_table(&table)?[0].content, "copy-B");
    /// # Ok::<(), dbwatermark::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NoPrimaryKey`] or [`Error::RowCountMismatch`].
    pub fn extract_table(&self, table: &Table) -> Result<Vec<Found>> {
        let tallies: Vec<Tally> = self
            .tally_table(table)?
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        Ok(self.decode(&tallies))
    }
}
