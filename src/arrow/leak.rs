//! Reading a leak batch by batch as `dbwm extract` reads a source: the
//! votes of its marked cells, of a pseudo-column and of pseudo-rows, with
//! no flag needed to find the last two; and joining batches for
//! [`Watermarker::add_pseudo_rows`].

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, DataType};

use super::{BatchPlan, PROFILE_ROWS, PseudoMatch, PseudoRowMatch, Result};
use crate::{TableTally, Tally, Watermarker};

/// The votes of one table (or one part of a table) read batch by batch,
/// as `dbwm extract` reads a source: the plan's marked columns, any column
/// that turns out to be a pseudo-column of this key (found in the first
/// 100 rows or more, whatever its name), and the rows recognised as
/// pseudo-rows.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch};
/// use arrow_schema::{DataType, Field, Schema};
/// use dbwatermark::arrow::{BatchPlan, LeakTally};
/// use dbwatermark::{Config, PseudoFormat, TableTally, WatermarkKey, Watermarker};
///
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("id", DataType::Int64, false),
///     Field::new("qty", DataType::Int64, false),
/// ]));
/// let batch = RecordBatch::try_new(schema.clone(), vec![
///     Arc::new(Int64Array::from_iter_values(0..3000)),
///     Arc::new(Int64Array::from_iter_values((0..3000).map(|i| i * 7 % 90))),
/// ])?;
/// let wm = Watermarker::new(WatermarkKey::new("secret")?, Config::default());
/// let plan = BatchPlan::new(&schema, &["id"], None)?;
/// // A copy with a pseudo-column `ref` (no real cell changed).
/// let column = wm.pseudo_column(&batch, &plan, &wm.payload("partner-3")?, PseudoFormat::Code)?;
/// let mut fields = schema.fields().to_vec();
/// fields.push(Arc::new(Field::new("ref", DataType::Int64, true)));
/// let mut columns = batch.columns().to_vec();
/// columns.push(column);
/// let copy = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
///
/// // The leak is read without being told which column is the mark.
/// let leak_plan = BatchPlan::new(&copy.schema(), &["id"], None)?;
/// let mut read = LeakTally::new(&wm, &leak_plan);
/// read.add(&copy)?;
/// assert_eq!(read.pseudo_columns(), ["ref"]);
/// let mut all = TableTally::new(&wm);
/// let pseudo_rows = read.finish(&mut all);
/// assert!(!pseudo_rows.0.is_present());
/// assert_eq!(all.decode(&wm)?[0].content, "partner-3");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LeakTally<'a> {
    wm: &'a Watermarker,
    plan: &'a BatchPlan,
    /// Per marked column of the plan.
    tallies: Vec<Tally>,
    rows: usize,
    /// What was recognised as pseudo-rows, and their votes.
    pseudo_rows: (PseudoRowMatch, Tally),
    /// The columns that may be, or were found to be, pseudo-columns.
    pseudo: PseudoColumns,
}

/// The columns a leak's pseudo-column may be, while they are looked at,
/// then the ones it is.
#[derive(Debug)]
struct PseudoColumns {
    /// Column indices: every candidate, then (once `found`) those that are
    /// pseudo-columns.
    columns: Vec<usize>,
    /// Their votes.
    tallies: Vec<Tally>,
    /// What matched in each, while they are looked at.
    matched: Vec<PseudoMatch>,
    /// Whether enough rows were read to tell.
    found: bool,
}

/// Rows with a key and a value a candidate column is looked at in before
/// it is taken for a pseudo-column or not ([`PseudoMatch::is_pseudo_column`]
/// needs 100): the first batches until then, however small (a Spark
/// partition's batches may hold a few dozen rows each).
const PSEUDO_DECIDE_ROWS: usize = 100;

impl<'a> LeakTally<'a> {
    /// Nothing read yet, of a table planned as `plan`.
    pub fn new(wm: &'a Watermarker, plan: &'a BatchPlan) -> Self {
        Self {
            wm,
            plan,
            tallies: plan.new_tallies(),
            rows: 0,
            pseudo_rows: (PseudoRowMatch::default(), Tally::new()),
            pseudo: {
                let columns = pseudo_candidates(plan);
                PseudoColumns {
                    tallies: vec![Tally::new(); columns.len()],
                    matched: vec![PseudoMatch::default(); columns.len()],
                    columns,
                    found: false,
                }
            },
        }
    }

    /// Reads `batch`'s votes. Pseudo-rows are looked for in every row of
    /// the first [`PROFILE_ROWS`], and beyond only if those hold more than
    /// chance gives (at 1 in 100 they hold hundreds), which spares the cost
    /// of the cell hashes for every other table.
    ///
    /// # Errors
    ///
    /// [`super::Error::SchemaMismatch`] if `batch` does not fit the plan.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let (wm, plan) = (self.wm, self.plan);
        wm.tally_batch(batch, plan, &mut self.tallies)?;
        if self.rows < PROFILE_ROWS || self.pseudo_rows.0.chance() < 0.01 {
            let found = wm.tally_pseudo_rows(batch, plan, &mut self.pseudo_rows.1)?;
            self.pseudo_rows.0.merge(&found);
        }
        let pseudo = &mut self.pseudo;
        let matched = wm.tally_pseudo_columns(batch, plan, &pseudo.columns, &mut pseudo.tallies)?;
        if !pseudo.found {
            for (all, one) in pseudo.matched.iter_mut().zip(matched) {
                all.rows += one.rows;
                all.matched += one.matched;
            }
            // The columns of which at least half the rows hold one of their
            // two keyed values; the others are no longer read.
            if pseudo.matched.iter().any(|m| m.rows >= PSEUDO_DECIDE_ROWS) {
                let columns = std::mem::take(&mut pseudo.columns);
                let tallies = std::mem::take(&mut pseudo.tallies);
                (pseudo.columns, pseudo.tallies) = (columns.into_iter().zip(tallies))
                    .zip(std::mem::take(&mut pseudo.matched))
                    .filter(|(_, m)| m.is_pseudo_column())
                    .map(|(found, _)| found)
                    .unzip();
                pseudo.found = true;
            }
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Rows read.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The columns found to be pseudo-columns of this key.
    pub fn pseudo_columns(&self) -> Vec<&str> {
        let indices = if self.pseudo.found {
            self.pseudo.columns.as_slice()
        } else {
            &[]
        };
        let schema = self.plan.schema();
        indices
            .iter()
            .map(|&i| schema.field(i).name().as_str())
            .collect()
    }

    /// Nothing, when there was something to read: a marked column, a
    /// pseudo-column or more pseudo-rows than chance gives.
    ///
    /// # Errors
    ///
    /// [`super::Error::NothingToMark`], naming each column and why it is
    /// not marked, when there was nothing.
    pub fn require_found(&self) -> Result<()> {
        if !self.pseudo_columns().is_empty() || self.pseudo_rows.0.is_present() {
            return Ok(());
        }
        self.plan.require_marked()
    }

    /// Adds the rows and the votes of the marked columns and pseudo-columns
    /// to `all` (a pseudo-column's digits are not read as marks: its keyed
    /// values are), and returns the pseudo-rows' match and votes, for the
    /// caller to pool over a table's parts and add as
    /// [`crate::PSEUDO_ROWS`] only when they are present
    /// ([`PseudoRowMatch::is_present`]): else the votes are those of real
    /// rows recognised by chance, fair coins.
    pub fn finish(self, all: &mut TableTally) -> (PseudoRowMatch, Tally) {
        let PseudoColumns {
            mut columns,
            mut tallies,
            found,
            ..
        } = self.pseudo;
        if !found {
            (columns, tallies) = (Vec::new(), Vec::new());
        }
        let indices = columns;
        let schema = self.plan.schema();
        let pseudo_names: Vec<&String> = indices.iter().map(|&i| schema.field(i).name()).collect();
        all.add_rows(self.rows as u64);
        for (name, t) in self.plan.marked_names().into_iter().zip(self.tallies) {
            if !pseudo_names.contains(&&name) {
                all.add(&name, t);
            }
        }
        for (name, t) in pseudo_names.into_iter().zip(tallies) {
            all.add(name, t);
        }
        self.pseudo_rows
    }
}

/// The columns of `plan`'s schema that may be a pseudo-column: not key,
/// of an integer or text type (a pseudo-column of codes may well look like
/// a measure to the profile, and is then read both ways).
fn pseudo_candidates(plan: &BatchPlan) -> Vec<usize> {
    use DataType as T;
    (plan.schema().fields().iter().enumerate())
        .filter(|(i, _)| !plan.key.contains(i))
        .filter(|(_, f)| {
            matches!(
                f.data_type(),
                T::Int32 | T::Int64 | T::UInt32 | T::UInt64 | T::Utf8 | T::LargeUtf8 | T::Utf8View
            )
        })
        .map(|(i, _)| i)
        .collect()
}

/// Cuts a stream of batches into batches of exactly `rows` rows (the last
/// one may hold fewer), however the stream was batched: what
/// [`Watermarker::add_pseudo_rows`] is given, since a fabricated row is
/// only as like real rows as the rows it is drawn among
/// ([`super::PSEUDO_ROW_BATCH`]), and so that a table read in batches of
/// any size (a CSV file, Parquet row groups, a pyarrow Table's chunks) gets
/// the same copy.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch};
/// use arrow_schema::{DataType, Field, Schema};
/// use dbwatermark::arrow::BatchJoiner;
///
/// let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
/// let part = |n: i64| RecordBatch::try_new(schema.clone(),
///     vec![Arc::new(Int64Array::from_iter_values(0..n))]).unwrap();
/// let rows = |batches: Vec<RecordBatch>| batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>();
/// let mut joiner = BatchJoiner::new(100);
/// assert!(joiner.push(part(60))?.is_empty());
/// assert_eq!(rows(joiner.push(part(60))?), [100]);
/// assert_eq!(rows(joiner.push(part(250))?), [100, 100]);
/// assert_eq!(joiner.flush()?.map(|b| b.num_rows()), Some(70));
/// # Ok::<(), arrow_schema::ArrowError>(())
/// ```
#[derive(Debug)]
pub struct BatchJoiner {
    rows: usize,
    pending: Vec<RecordBatch>,
    held: usize,
}

impl BatchJoiner {
    /// Cuts into batches of `rows` rows (at least 1).
    pub fn new(rows: usize) -> Self {
        Self {
            rows: rows.max(1),
            pending: Vec::new(),
            held: 0,
        }
    }

    /// Holds `batch`, and returns every whole batch of `rows` rows held.
    ///
    /// # Errors
    ///
    /// An [`ArrowError`] if `batch`'s schema differs from the batches
    /// held.
    pub fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, ArrowError> {
        self.held += batch.num_rows();
        self.pending.push(batch);
        let mut out = Vec::new();
        if self.held < self.rows {
            return Ok(out);
        }
        let Some(all) = self.flush()? else {
            return Ok(out);
        };
        let mut start = 0;
        while all.num_rows() - start >= self.rows {
            out.push(all.slice(start, self.rows));
            start += self.rows;
        }
        if start < all.num_rows() {
            self.held = all.num_rows() - start;
            self.pending.push(all.slice(start, self.held));
        }
        Ok(out)
    }

    /// The rows still held, joined (`None` when none are), at the end of
    /// the stream.
    ///
    /// # Errors
    ///
    /// As [`BatchJoiner::push`].
    pub fn flush(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        let pending = std::mem::take(&mut self.pending);
        let held = std::mem::replace(&mut self.held, 0);
        Ok(match pending.as_slice() {
            [] => None,
            _ if held == 0 => None,
            [one] => Some(one.clone()),
            all => Some(arrow_select::concat::concat_batches(&all[0].schema(), all)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::{Config, PseudoFormat, WatermarkKey};

    /// A 3,000-row table with a pseudo-column `ref` carrying "partner-3".
    fn copy(wm: &Watermarker) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("qty", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..3000)),
                Arc::new(Int64Array::from_iter_values((0..3000).map(|i| i * 7 % 90))),
            ],
        )
        .unwrap();
        let plan = BatchPlan::new(&schema, &["id"], None).unwrap();
        let payload = wm.payload("partner-3").unwrap();
        let with = crate::arrow::pseudo_column_schema(&schema, "ref", PseudoFormat::Code).unwrap();
        let mut report = crate::ColumnReport::default();
        wm.with_pseudo_column(
            &batch,
            &plan,
            &payload,
            PseudoFormat::Code,
            &with,
            &mut report,
        )
        .unwrap()
    }

    #[test]
    fn a_pseudo_column_is_found_when_the_first_batches_are_small() {
        let wm = Watermarker::new(WatermarkKey::new("leak tests").unwrap(), Config::default());
        let copy = copy(&wm);
        let plan = BatchPlan::new(&copy.schema(), &["id"], None).unwrap();
        let mut leak = LeakTally::new(&wm, &plan);
        // 30 rows at a time: too few to tell from one batch.
        for start in (0..copy.num_rows()).step_by(30) {
            leak.add(&copy.slice(start, 30)).unwrap();
        }
        assert_eq!(leak.pseudo_columns(), ["ref"]);
        let mut all = TableTally::new(&wm);
        leak.finish(&mut all);
        let votes = all
            .columns()
            .iter()
            .find(|(n, _)| n == "ref")
            .unwrap()
            .1
            .votes();
        // Every keyed row votes, those of the first batches too.
        assert_eq!(votes, 3000);
        assert_eq!(all.decode(&wm).unwrap()[0].content, "partner-3");
    }

    #[test]
    fn a_column_that_is_no_pseudo_column_is_not_taken_for_one() {
        let wm = Watermarker::new(WatermarkKey::new("leak tests").unwrap(), Config::default());
        let other = Watermarker::new(WatermarkKey::new("another key").unwrap(), Config::default());
        let copy = copy(&other);
        let plan = BatchPlan::new(&copy.schema(), &["id"], None).unwrap();
        let mut leak = LeakTally::new(&wm, &plan);
        leak.add(&copy).unwrap();
        assert!(leak.pseudo_columns().is_empty());
        assert!(leak.require_found().is_ok(), "qty is marked in this plan");
    }
}
