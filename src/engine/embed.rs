//! Embedding: write each selected row's payload bit into a column.

use rayon::prelude::*;

use crate::engine::Watermarker;
use crate::engine::codec::MarkBit;
use crate::engine::column::{self, ColumnMut, Limits, MS_PER_DAY, Outcome, Validity, group};
use crate::engine::error::Result;
use crate::engine::payload::Payload;
use crate::engine::position::{GROUP_BITS, Positions};
use crate::engine::select::{CHUNK_ROWS, Density, Selection, Slot};

/// What embedding did to one column.
///
/// Counts refer to the rows the selection marks; unselected rows are never
/// looked at. Changes are measured in steps (1 for integers, the last digit
/// for decimals and floats, seconds for timestamps, days for dates) and in the
/// column's own unit (value units; seconds; days); strings count one step per
/// changed cell and no amount.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ColumnReport {
    /// Rows in the column.
    pub rows: usize,
    /// Selected cells that now carry a mark.
    pub marked: usize,
    /// Selected cells whose value changed (a subset of `marked`).
    pub changed: usize,
    /// Selected cells skipped because they were null.
    pub nulls: usize,
    /// Selected cells skipped because they cannot carry a mark (a value at
    /// the edge of its range, a float that does not print back, an empty string).
    pub unmarkable: usize,
    /// Sum of the absolute changes, in steps.
    pub sum_abs_steps: u64,
    /// Largest absolute change, in steps.
    pub max_abs_steps: u64,
    /// Sum of the absolute changes, in the column's unit.
    pub sum_abs_change: f64,
    /// Largest absolute change, in the column's unit.
    pub max_abs_change: f64,
}

impl ColumnReport {
    /// Mean absolute change over the changed cells, in the column's unit.
    pub fn mean_abs_change(&self) -> f64 {
        if self.changed == 0 {
            0.0
        } else {
            self.sum_abs_change / self.changed as f64
        }
    }

    /// Share of all rows whose value changed.
    pub fn changed_fraction(&self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            self.changed as f64 / self.rows as f64
        }
    }

    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Unmarkable => self.unmarkable += 1,
            Outcome::Unchanged => self.marked += 1,
            Outcome::Changed { steps, amount } => {
                self.marked += 1;
                self.changed += 1;
                self.sum_abs_steps += steps;
                self.max_abs_steps = self.max_abs_steps.max(steps);
                self.sum_abs_change += amount;
                self.max_abs_change = self.max_abs_change.max(amount);
            }
        }
    }

    /// Adds the counts of `other`, a report on more rows of the same column.
    pub fn merge(&mut self, other: &Self) {
        self.rows += other.rows;
        self.marked += other.marked;
        self.changed += other.changed;
        self.nulls += other.nulls;
        self.unmarkable += other.unmarkable;
        self.sum_abs_steps += other.sum_abs_steps;
        self.max_abs_steps = self.max_abs_steps.max(other.max_abs_steps);
        self.sum_abs_change += other.sum_abs_change;
        self.max_abs_change = self.max_abs_change.max(other.max_abs_change);
    }
}

impl Watermarker {
    /// Embeds `payload` into `column`, in place, in the rows that carry marks
    /// at `density` (see [`Watermarker::density_for`]; use the same density
    /// for every column and batch of a table).
    ///
    /// `selection` must come from [`Watermarker::select`] on the same rows,
    /// and `validity` (if given, `true` = present) must have one entry per
    /// row. Null cells and unselected rows are never touched.
    ///
    /// # Errors
    ///
    /// [`Error::RowCountMismatch`](crate::Error::RowCountMismatch) when the
    /// lengths disagree.
    pub fn embed_column(
        &self,
        selection: &Selection,
        payload: &Payload,
        density: Density,
        column: ColumnMut<'_>,
        validity: Option<Validity<'_>>,
    ) -> Result<ColumnReport> {
        let limits = Limits::default();
        self.embed_column_within(selection, payload, density, column, validity, &limits)
    }

    /// [`Watermarker::embed_column`] keeping every changed number within
    /// `limits` (a cell whose mark would leave them is left alone and
    /// counted as unmarkable).
    ///
    /// # Errors
    ///
    /// As [`Watermarker::embed_column`].
    pub fn embed_column_within(
        &self,
        selection: &Selection,
        payload: &Payload,
        density: Density,
        column: ColumnMut<'_>,
        validity: Option<Validity<'_>>,
        limits: &Limits,
    ) -> Result<ColumnReport> {
        Self::check_rows(selection, column.len(), validity)?;
        let ctx = Ctx {
            slots: selection.slots(),
            validity,
            payload,
            density,
            positions: self.config.positions(),
        };
        let at = limits.float_decimals;
        let report = match column {
            ColumnMut::Int8(v) => ctx.run(v, group::int, |v, m| column::mark_int(v, m, limits)),
            ColumnMut::Int16(v) => ctx.run(v, group::int, |v, m| column::mark_int(v, m, limits)),
            ColumnMut::Int32(v) => ctx.run(v, group::int, |v, m| column::mark_int(v, m, limits)),
            ColumnMut::Int64(v) => ctx.run(v, group::int, |v, m| column::mark_int(v, m, limits)),
            ColumnMut::UInt8(v) => ctx.run(v, group::int, |v, m| column::mark_int(v, m, limits)),
            ColumnMut::UInt16(v) => ctx.run(v, group::int, |v, m| column::mark_int(v, m, limits)),
            ColumnMut::UInt32(v) => ctx.run(v, group::int, |v, m| column::mark_int(v, m, limits)),
            ColumnMut::UInt64(v) => ctx.run(v, group::int, |v, m| column::mark_int(v, m, limits)),
            ColumnMut::Decimal {
                counts,
                scale,
                precision,
            } => {
                let max = column::decimal_max(precision);
                ctx.run(
                    counts,
                    |v, s| group::decimal(v, scale, s),
                    |v, m| column::mark_decimal(v, scale, max, m, limits),
                )
            }
            ColumnMut::Float32(v) => ctx.run(
                v,
                |v, s| group::float(v, at, s),
                |v, m| column::mark_float(v, m, limits),
            ),
            ColumnMut::Float64(v) => ctx.run(
                v,
                |v, s| group::float(v, at, s),
                |v, m| column::mark_float(v, m, limits),
            ),
            ColumnMut::Text(v) => ctx.run(v, |v, s| group::text(v, s), column::mark_text),
            ColumnMut::Timestamp {
                values,
                units_per_second,
            } => ctx.run(
                values,
                |v, s| group::unit(v, units_per_second, s),
                |v, m| column::mark_unit(v, units_per_second, m, limits),
            ),
            ColumnMut::Date32(v) => ctx.run(v, group::day, |v, m| column::mark_day(v, m, limits)),
            ColumnMut::Date64(v) => ctx.run(v, group::date64, |v, m| {
                column::mark_unit(v, MS_PER_DAY, m, limits)
            }),
            ColumnMut::Cells(v) => ctx.run(v, group::cell, |v, m| column::mark_cell(v, m, limits)),
            ColumnMut::TextEdits { values, marks } => {
                if values.len() != marks.len() {
                    return Err(crate::Error::RowCountMismatch {
                        column: "marks".to_owned(),
                        expected: values.len(),
                        got: marks.len(),
                    });
                }
                ctx.run_indexed(
                    marks,
                    |row, _, s| group::text(values[row], s),
                    |row, slot, m| column::mark_text_edit(values[row], slot, m),
                )
            }
        };
        Ok(report)
    }
}

/// Everything a chunk of rows needs besides its values.
struct Ctx<'a> {
    slots: &'a [Slot],
    validity: Option<Validity<'a>>,
    payload: &'a Payload,
    density: Density,
    positions: Positions,
}

impl Ctx<'_> {
    /// Runs `mark` over the selected, non-null cells of `values` in parallel
    /// chunks. Chunk reports are combined in row order, so the result does
    /// not depend on the number of threads.
    ///
    /// `group(value, step)` gives a cell's group, which places its mark
    /// under [`Positions::Cell`] (`None`: the cell cannot carry one there).
    fn run<T: Send>(
        &self,
        values: &mut [T],
        group: impl Fn(&T, u32) -> Option<u64> + Sync,
        mark: impl Fn(&mut T, MarkBit) -> Outcome + Sync,
    ) -> ColumnReport {
        self.run_indexed(values, |_, v, s| group(v, s), |_, v, m| mark(v, m))
    }

    /// As [`Ctx::run`], with the row number passed to `group` and `mark`.
    fn run_indexed<T: Send>(
        &self,
        values: &mut [T],
        group: impl Fn(usize, &T, u32) -> Option<u64> + Sync,
        mark: impl Fn(usize, &mut T, MarkBit) -> Outcome + Sync,
    ) -> ColumnReport {
        let reports: Vec<ColumnReport> = values
            .par_chunks_mut(CHUNK_ROWS)
            .enumerate()
            .map(|(c, chunk)| {
                let start = c * CHUNK_ROWS;
                let slots = &self.slots[start..start + chunk.len()];
                let mut report = ColumnReport {
                    rows: chunk.len(),
                    ..ColumnReport::default()
                };
                for (i, (v, slot)) in chunk.iter_mut().zip(slots).enumerate() {
                    if !slot.is_marked(self.density) {
                        continue;
                    }
                    if self
                        .validity
                        .is_some_and(|valid| !valid.is_valid(start + i))
                    {
                        report.nulls += 1;
                        continue;
                    }
                    let row = start + i;
                    let (bin, mask, keep) = match self.positions {
                        Positions::Row => (slot.bin(), slot.mask(), None),
                        Positions::Cell => match group(row, v, slot.step()) {
                            Some(g) => {
                                let (bin, mask) = slot.at_cell(g);
                                (bin, mask, Some(GROUP_BITS))
                            }
                            None => {
                                report.add(Outcome::Unmarkable);
                                continue;
                            }
                        },
                    };
                    let m = MarkBit {
                        bit: self.payload.bit(bin) ^ mask,
                        step: slot.step(),
                        up: slot.prefer_up(),
                        keep,
                    };
                    report.add(mark(row, v, m));
                }
                report
            })
            .collect();
        let mut total = ColumnReport::default();
        for r in &reports {
            total.merge(r);
        }
        total
    }
}
