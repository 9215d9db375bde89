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

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Float32Type, Float64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use crate::KeyEncoder;

/// Rows of a batch the mutual information is estimated on, at most.
const SAMPLE_ROWS: usize = 4096;
/// Quantile bins of a number column with many distinct values.
const BINS: usize = 16;

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
}

impl Structure {
    /// The tree of `batch`'s columns but `key`.
    pub(super) fn of(batch: &RecordBatch, key: &[usize]) -> Self {
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
        Self {
            order,
            parent,
            edges,
            index,
            tokens: all_tokens,
        }
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
        _ => super::pseudo_rows::text_at(array, row)
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
