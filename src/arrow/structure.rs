//! How a batch's columns depend on one another, so that a fabricated row
//! can keep the associations of real rows: a Chow–Liu tree (the maximum
//! spanning tree of the columns' mutual information, estimated on a sample
//! with the Miller–Madow correction), and for each column that is some
//! column's parent, the rows holding each of its values.
//!
//! A fabricated row's columns are then drawn in the tree's order, each
//! from a real row that holds the value its parent was given: every pair
//! of a column and its parent keeps its joint distribution, where drawing
//! each column alone keeps only the margins (and an adversary who scores
//! rows by the mutual information of their pairs of values finds them).
//!
//! Exact relations between columns (the engine's `relations`: a clock
//! time and its hour, a departure, its schedule and its delay, a ship date
//! before its receipt date) are kept too: a value taken from a real row
//! brings along the columns of every relation it would break, from the
//! same row, and a change that would need a key column is not made.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Float32Type, Float64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

use crate::KeyEncoder;
use crate::engine::relations::{self, Relation};

/// Rows of a batch the mutual information is estimated on, at most.
const SAMPLE_ROWS: usize = 4096;
/// Quantile bins of a number column with many distinct values.
const BINS: usize = 16;
/// Rows of a batch its exact relations are found on, at most (the first
/// pass of pseudo-rows samples twice as many at most).
pub(super) const RELATION_ROWS: usize = 16_384;
/// The share of rows an exact relation may fail in and still be kept.
const RELATION_TOLERANCE: f64 = 0.001;
/// Columns paired when looking for relations, at most (the first ones).
const RELATION_COLUMNS: usize = 48;
/// Times a change may bring along the columns of a relation it breaks.
const MAX_BROUGHT: usize = 6;

/// The dependency tree of a batch's columns.
#[derive(Debug, Default)]
pub(super) struct Structure {
    /// The columns in the order a fabricated row draws them (every
    /// non-key column once; a column's parent comes before it).
    pub(super) order: Vec<usize>,
    /// Per column: the column it is drawn conditioned on.
    parent: Vec<Option<usize>>,
    /// Per column: the bin edges of a binned number column.
    edges: Vec<Option<Vec<f64>>>,
    /// Per column of repeated values: the rows of the batch holding each
    /// token.
    index: HashMap<usize, HashMap<u64, Vec<u32>>>,
    /// Per column of repeated values: every row's token (in column order,
    /// so that every choice made from them is the same from run to run).
    tokens: BTreeMap<usize, Vec<Option<u64>>>,
    /// The exact relations among the batch's columns (key columns too).
    relations: Vec<Relation>,
    /// Per relation that determines a column: the value of that column
    /// most rows of the batch hold for each group of determining values.
    majority: Vec<relations::TokenMap<u64>>,
    /// Per column: the relations it is part of.
    relations_of: Vec<Vec<usize>>,
    /// Per column of a relation: every row's token and place on the
    /// number line (empty for other columns).
    tied: Vec<relations::Column>,
}

/// A fabricated row as its relations see it: each column's token and
/// place on the number line (for the columns of a relation).
#[derive(Debug, Clone, Default)]
pub(super) struct RowValues {
    tokens: Vec<u64>,
    order: Vec<Option<f64>>,
}

impl RowValues {
    /// Becomes a copy of `other`, in the buffers it has (a draw tries
    /// hundreds of changes per column).
    pub(super) fn copy_from(&mut self, other: &Self) {
        self.tokens.clone_from(&other.tokens);
        self.order.clone_from(&other.order);
    }
}

impl Structure {
    /// The tree of `batch`'s columns but `key`, with the exact `relations`
    /// among its columns (from [`find_relations`] on this batch or an
    /// earlier one of the table).
    pub(super) fn of(batch: &RecordBatch, key: &[usize], relations: Vec<Relation>) -> Self {
        let n = batch.num_columns();
        let rows = batch.num_rows();
        let columns: Vec<usize> = (0..n).filter(|i| !key.contains(i)).collect();
        let step = rows.div_ceil(SAMPLE_ROWS).max(1);
        let sample: Vec<usize> = (0..rows).step_by(step).collect();
        let mut edges: Vec<Option<Vec<f64>>> = vec![None; n];
        let mut tokens: Vec<Vec<Option<u64>>> = vec![Vec::new(); n];
        for &c in &columns {
            let array = batch.column(c).as_ref();
            edges[c] = bin_edges(array, &sample);
            tokens[c] = sample
                .iter()
                .map(|&r| token(array, r, edges[c].as_deref()))
                .collect();
        }
        // Prim's algorithm on the corrected mutual information.
        let mi = |a: usize, b: usize| mutual_information(&tokens[a], &tokens[b]);
        let mut parent = vec![None; n];
        let mut order = Vec::with_capacity(columns.len());
        let mut best: BTreeMap<usize, (f64, Option<usize>)> = columns
            .iter()
            .map(|&c| (c, (f64::NEG_INFINITY, None)))
            .collect();
        while let Some((&c, &(_, p))) = best
            .iter()
            .max_by(|a, b| a.1.0.total_cmp(&b.1.0).then(b.0.cmp(a.0)))
        {
            best.remove(&c);
            order.push(c);
            parent[c] = p;
            for (&other, slot) in best.iter_mut() {
                let m = mi(c, other);
                // Only an association beyond noise makes a parent.
                if m > 0.01 && m > slot.0 {
                    *slot = (m, Some(c));
                }
            }
        }
        // Every column of repeated values is indexed (one of nearly unique
        // values says nothing of a row's neighbours).
        let mut index: HashMap<usize, HashMap<u64, Vec<u32>>> = HashMap::new();
        let mut all_tokens: BTreeMap<usize, Vec<Option<u64>>> = BTreeMap::new();
        for &c in &columns {
            let array = batch.column(c).as_ref();
            let t: Vec<Option<u64>> = (0..rows)
                .map(|r| token(array, r, edges[c].as_deref()))
                .collect();
            let mut rows_of: HashMap<u64, Vec<u32>> = HashMap::new();
            for (r, t) in t.iter().enumerate() {
                if let Some(t) = t {
                    rows_of.entry(*t).or_default().push(r as u32);
                }
            }
            if rows_of.len() * 2 <= rows.max(1) {
                index.insert(c, rows_of);
                all_tokens.insert(c, t);
            }
        }
        let mut relations_of = vec![Vec::new(); n];
        for (r, relation) in relations.iter().enumerate() {
            for c in relation.columns() {
                relations_of[c].push(r);
            }
        }
        let tied: Vec<relations::Column> = (0..n)
            .map(|c| {
                if relations_of[c].is_empty() {
                    return relations::Column::default();
                }
                let array = batch.column(c).as_ref();
                relations::Column {
                    tokens: (0..rows)
                        .map(|r| token(array, r, None).unwrap_or(relations::NULL))
                        .collect(),
                    order: Some((0..rows).map(|r| order_at(array, r)).collect()),
                }
            })
            .collect();
        let majority = relations
            .iter()
            .map(|r| match r {
                Relation::Determines { by, of } => relations::majority(&tied, by, *of),
                Relation::Within { .. } => relations::TokenMap::default(),
            })
            .collect();
        Self {
            order,
            parent,
            edges,
            index,
            tokens: all_tokens,
            relations,
            majority,
            relations_of,
            tied,
        }
    }

    /// The values of a fabricated row given as one-value arrays, one per
    /// column.
    pub(super) fn values_of(&self, cells: &[ArrayRef]) -> RowValues {
        let mut values = RowValues {
            tokens: vec![relations::NULL; cells.len()],
            order: vec![None; cells.len()],
        };
        for (c, cell) in cells.iter().enumerate() {
            self.set_cell(&mut values, c, cell.as_ref());
        }
        values
    }

    /// Sets column `c` of `values` to the one-value array `cell`.
    pub(super) fn set_cell(&self, values: &mut RowValues, c: usize, cell: &dyn Array) {
        if !self.relations_of[c].is_empty() {
            values.tokens[c] = token(cell, 0, None).unwrap_or(relations::NULL);
            values.order[c] = order_at(cell, 0);
        }
    }

    /// Sets column `c` of `values` to its value in row `from` of the
    /// batch.
    pub(super) fn set_from(&self, values: &mut RowValues, c: usize, from: usize) {
        let tied = &self.tied[c];
        if let (Some(&t), Some(order)) = (tied.tokens.get(from), &tied.order) {
            values.tokens[c] = t;
            values.order[c] = order[from];
        }
    }

    /// The columns a fabricated row changes to change column `c` to its
    /// value in row `from`: `c`, and every column of a relation the change
    /// would break, taken from that row too; `None` when that would change
    /// a column of `fixed` (the key) or still break a relation after
    /// [`MAX_BROUGHT`] rounds. `trial` is scratch space.
    pub(super) fn change(
        &self,
        values: &RowValues,
        trial: &mut RowValues,
        c: usize,
        from: usize,
        fixed: &[usize],
    ) -> Option<Vec<usize>> {
        trial.copy_from(values);
        let mut changed = vec![c];
        self.set_from(trial, c, from);
        for _ in 0..MAX_BROUGHT {
            let Some(r) = self.broken(trial, &changed, fixed) else {
                return Some(changed);
            };
            let bring: Vec<usize> = self.relations[r]
                .columns()
                .into_iter()
                .filter(|c| !changed.contains(c))
                .collect();
            if bring.is_empty() || bring.iter().any(|c| fixed.contains(c)) {
                return None;
            }
            for c in bring {
                self.set_from(trial, c, from);
                changed.push(c);
            }
        }
        None
    }

    /// The first relation of a column of `changed` that a fabricated row
    /// of `values` breaks: a determined value other than the one most rows
    /// with its determining values hold (or determining values that no row
    /// holds together, unless a column of `fixed`, the key, is among them),
    /// a difference out of its bounds.
    pub(super) fn broken(
        &self,
        values: &RowValues,
        changed: &[usize],
        fixed: &[usize],
    ) -> Option<usize> {
        // A relation of two changed columns is checked twice: cheaper
        // than remembering which were.
        for &c in changed {
            for &r in &self.relations_of[c] {
                let broken = match &self.relations[r] {
                    // Values never seen together are taken as breaking
                    // it too (a delay is its departure less its schedule
                    // whether or not another row holds the same pair;
                    // brought from one row, they hold), but where a key
                    // column is among them: a new key is new.
                    Relation::Determines { by, of } => {
                        let key = relations::group_key(by.iter().map(|&b| values.tokens[b]));
                        let unseen_breaks = !by.iter().chain([of]).any(|c| fixed.contains(c));
                        key != relations::NULL
                            && self.majority[r]
                                .get(&key)
                                .map_or(unseen_breaks, |&v| v != values.tokens[*of])
                    }
                    Relation::Within { a, b, lo, hi } => matches!(
                        (values.order[*a], values.order[*b]),
                        (Some(x), Some(y)) if !(lo..=hi).contains(&&(x - y))
                    ),
                };
                if broken {
                    return Some(r);
                }
            }
        }
        None
    }

    /// Up to `k` rows of the batch most like row `d` (holding the same
    /// values in the most columns), found through the rows that share its
    /// rarest values; `pick` chooses among long lists.
    pub(super) fn neighbours(
        &self,
        d: usize,
        k: usize,
        pick: &mut dyn FnMut(usize) -> usize,
    ) -> Vec<u32> {
        let mut lists: Vec<&Vec<u32>> = self
            .tokens
            .iter()
            .filter_map(|(c, t)| self.index[c].get(&t[d]?))
            .collect();
        lists.sort_by_key(|l| l.len());
        let mut seen: HashMap<u32, usize> = HashMap::new();
        for list in lists.iter().take(6) {
            for j in 0..list.len().min(256) {
                let r = if list.len() <= 256 {
                    list[j]
                } else {
                    list[pick(list.len())]
                };
                if r as usize != d {
                    seen.entry(r).or_insert(0);
                }
            }
        }
        let mut scored: Vec<(usize, u32)> = seen
            .into_keys()
            .map(|r| {
                let same = self
                    .tokens
                    .values()
                    .filter(|t| t[d].is_some() && t[d] == t[r as usize])
                    .count();
                (same, r)
            })
            .collect();
        scored.sort_unstable_by(|a, b| b.cmp(a));
        scored.into_iter().take(k).map(|(_, r)| r).collect()
    }

    /// The column `c` is drawn conditioned on.
    pub(super) fn parent(&self, c: usize) -> Option<usize> {
        self.parent.get(c).copied().flatten()
    }

    /// The rows of the batch whose column `p` holds the token of `cell`
    /// (a one-value array of that column).
    pub(super) fn rows_like(&self, p: usize, cell: &dyn Array) -> &[u32] {
        let Some(t) = token(cell, 0, self.edges[p].as_deref()) else {
            return &[];
        };
        self.index
            .get(&p)
            .and_then(|rows| rows.get(&t))
            .map_or(&[], Vec::as_slice)
    }
}

/// The exact relations among all of `batch`'s columns, found on up to
/// [`RELATION_ROWS`] rows spread through it.
pub(super) fn find_relations(batch: &RecordBatch) -> Vec<Relation> {
    let rows = batch.num_rows();
    let step = rows.div_ceil(RELATION_ROWS).max(1);
    let sample: Vec<usize> = (0..rows).step_by(step).collect();
    let columns: Vec<relations::Column> = batch
        .columns()
        .iter()
        .map(|array| {
            let array = array.as_ref();
            let order: Vec<Option<f64>> = sample.iter().map(|&r| order_at(array, r)).collect();
            relations::Column {
                tokens: sample
                    .iter()
                    .map(|&r| token(array, r, None).unwrap_or(relations::NULL))
                    .collect(),
                order: order.iter().any(Option::is_some).then_some(order),
            }
        })
        .collect();
    relations::find(&columns, RELATION_TOLERANCE, RELATION_COLUMNS)
}

/// A cell's place on a number line: a number's value, a date's or time's
/// microseconds since the epoch (of a date or time type, or of text that
/// reads as one); `None` for a null or anything else.
fn order_at(array: &dyn Array, row: usize) -> Option<f64> {
    // Text that reads as an instant never reads as a number.
    match super::plan::cell_instant(array, row) {
        Some(micros) => Some(micros as f64),
        None => number_at(array, row),
    }
}

/// A cell's token: its bin in a binned number column, else the hash of its
/// normalised value; `None` for a null.
fn token(array: &dyn Array, row: usize, edges: Option<&[f64]>) -> Option<u64> {
    if array.is_null(row) {
        return None;
    }
    if let Some(edges) = edges {
        let v = number_at(array, row)?;
        return Some(edges.partition_point(|&e| e <= v) as u64);
    }
    // One encoder per thread, not two allocations per cell: every cell of
    // a batch is tokenised.
    thread_local!(static BUFFERS: std::cell::RefCell<(KeyEncoder, String)> =
        std::cell::RefCell::new((KeyEncoder::new(), String::new())));
    BUFFERS.with_borrow_mut(|(enc, text)| {
        if !super::pseudo_rows::encode_cell(array, row, enc, text) {
            return None;
        }
        let mut h = DefaultHasher::new();
        enc.as_bytes().hash(&mut h);
        Some(h.finish())
    })
}

/// The quantile edges of a number column whose sample has more distinct
/// values than four per bin; `None` for any other column.
fn bin_edges(array: &dyn Array, sample: &[usize]) -> Option<Vec<f64>> {
    let mut values: Vec<f64> = sample
        .iter()
        .filter(|&&r| !array.is_null(r))
        .map(|&r| number_at(array, r))
        .collect::<Option<Vec<f64>>>()?;
    values.sort_by(f64::total_cmp);
    let mut distinct = values.clone();
    distinct.dedup();
    (distinct.len() > 4 * BINS)
        .then(|| (1..BINS).map(|b| values[b * values.len() / BINS]).collect())
}

/// The number of a number cell (an integer, float or decimal, or text
/// that is a plain decimal number).
pub(super) fn number_at(array: &dyn Array, row: usize) -> Option<f64> {
    if array.is_null(row) {
        return None;
    }
    if let Some(v) = super::pseudo_rows::int_at(array, row) {
        return Some(v as f64);
    }
    match array.data_type() {
        DataType::Float64 => Some(array.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => Some(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Decimal128(_, s) => Some(
            array.as_primitive::<Decimal128Type>().value(row) as f64 / 10f64.powi(i32::from(*s)),
        ),
        _ => super::plan::text_at(array, row)
            .and_then(super::pseudo_rows::number_text)
            .map(|(v, _)| v),
    }
}

/// The mutual information of two token columns over their rows with both
/// present, less the Miller–Madow bias `(|X|·|Y| − |X| − |Y| + 1) / 2N`
/// (which is large for columns of nearly unique values, so that they never
/// seem associated by chance).
fn mutual_information(a: &[Option<u64>], b: &[Option<u64>]) -> f64 {
    let mut joint: HashMap<(u64, u64), f64> = HashMap::new();
    let mut pa: HashMap<u64, f64> = HashMap::new();
    let mut pb: HashMap<u64, f64> = HashMap::new();
    let mut n = 0.0;
    for (x, y) in a.iter().zip(b) {
        if let (Some(x), Some(y)) = (x, y) {
            *joint.entry((*x, *y)).or_default() += 1.0;
            *pa.entry(*x).or_default() += 1.0;
            *pb.entry(*y).or_default() += 1.0;
            n += 1.0;
        }
    }
    if n < 2.0 {
        return 0.0;
    }
    let mi: f64 = joint
        .iter()
        .map(|(&(x, y), &c)| c / n * (c * n / (pa[&x] * pb[&y])).ln())
        .sum();
    let (kx, ky) = (pa.len() as f64, pb.len() as f64);
    mi - (kx * ky - kx - ky + 1.0) / (2.0 * n)
}
