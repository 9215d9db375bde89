//! Extraction: mergeable vote tallies, majority decoding, evidence.

use rayon::prelude::*;

use crate::engine::Watermarker;
use crate::engine::codec;
use crate::engine::column::{self, Cell, ColumnRef, Limits, MS_PER_DAY, Validity, group};
use crate::engine::error::Result;
use crate::engine::payload::{self, ATTEMPTS_PER_LEVEL, BINS, Payload};
use crate::engine::position::{Positions, number_group};
use crate::engine::select::{Density, MAX_LEVEL, Selection, Slot};

/// Number of selection levels.
pub(crate) const LEVELS: usize = MAX_LEVEL as usize + 1;

/// Number of tally layers: a level under a position scheme.
pub(crate) const LAYERS: usize = LEVELS * Positions::ALL.len();

/// One tally layer: the votes of rows at one selection level, placed by one
/// position scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layer {
    pub(crate) positions: Positions,
    pub(crate) level: usize,
}

impl Layer {
    /// Every layer, scheme by scheme, each from level 0 up.
    pub(crate) fn all() -> impl Iterator<Item = Self> {
        Positions::ALL
            .into_iter()
            .flat_map(|positions| (0..LEVELS).map(move |level| Self { positions, level }))
    }

    /// Its index among [`Layer::all`].
    fn index(self) -> usize {
        self.positions.layer() * LEVELS + self.level
    }

    /// The density whose marked rows it holds.
    pub(crate) fn density(self) -> Density {
        Density::from_level(self.level as u8).expect("level ≤ MAX_LEVEL")
    }
}

/// Rows per rayon task when tallying (each task fills its own tally).
const TALLY_CHUNK_ROWS: usize = 1 << 16;

/// Majority-vote counts for one column (or a pool of columns): for every
/// position scheme ([`Positions`]), selection level and payload bin, how
/// many cells read 0 and how many read 1 once the cell's mask is removed.
/// Every cell votes under both schemes, so a copy made under either is read.
///
/// Tallies are a sum: [`Tally::merge`] of the tallies of two parts of a table
/// equals the tally of the whole, whatever the split (rows, batches, files,
/// threads, machines).
///
/// ```
/// use dbwatermark::Tally;
/// let mut a = Tally::new();
/// let b = Tally::new();
/// a.merge(&b);
/// assert_eq!(a.votes(), 0);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Tally {
    /// `counts[layer * BINS + bin] = [zeros, ones]`, layers as [`Layer::all`].
    counts: Vec<[u32; 2]>,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally")
            .field("votes", &self.votes())
            .finish()
    }
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Self {
            counts: vec![[0; 2]; LAYERS * BINS],
        }
    }

    /// A tally of these counts (`[zeros, ones]` per cell, layer-major).
    pub(crate) fn from_cells(counts: Vec<[u32; 2]>) -> Self {
        debug_assert_eq!(counts.len(), LAYERS * BINS);
        Self { counts }
    }

    /// The counts, `[zeros, ones]` per cell, layer-major.
    pub(crate) fn cells(&self) -> &[[u32; 2]] {
        &self.counts
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Tally) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            a[0] = a[0].saturating_add(b[0]);
            a[1] = a[1].saturating_add(b[1]);
        }
    }

    /// Total number of votes.
    pub fn votes(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| u64::from(c[0]) + u64::from(c[1]))
            .sum()
    }

    /// A vote read as `read` at the row's own position ([`Positions::Row`]).
    #[inline]
    pub(crate) fn vote(&mut self, slot: Slot, read: bool) {
        self.add(Positions::Row, slot.level(), slot.bin(), read ^ slot.mask());
    }

    /// A cell's votes under both schemes: at its row's position and, when
    /// it has a group, at its own.
    #[inline]
    fn vote_both(&mut self, slot: Slot, read: bool, group: Option<u64>) {
        self.vote(slot, read);
        if let Some(g) = group {
            let (bin, mask) = slot.at_cell(g);
            self.add(Positions::Cell, slot.level(), bin, read ^ mask);
        }
    }

    #[inline]
    fn add(&mut self, positions: Positions, level: u8, bin: usize, bit: bool) {
        let layer = Layer {
            positions,
            level: usize::from(level),
        };
        let c = &mut self.counts[layer.index() * BINS + bin][usize::from(bit)];
        *c = c.saturating_add(1);
    }

    /// The counts of one layer's bins.
    fn layer(&self, layer: Layer) -> &[[u32; 2]] {
        let i = layer.index();
        &self.counts[i * BINS..(i + 1) * BINS]
    }

    /// The layers of the rows at `layer`'s level or above, under its scheme.
    fn at_or_above(&self, layer: Layer) -> impl Iterator<Item = &[[u32; 2]]> {
        (layer.level..LEVELS).map(move |level| {
            self.layer(Layer {
                positions: layer.positions,
                level,
            })
        })
    }

    /// Per-bin vote margins (ones minus zeros) of the rows at `layer`'s
    /// level or above, under its scheme.
    pub(crate) fn margins(&self, layer: Layer) -> Vec<i64> {
        let mut m = vec![0i64; BINS];
        for cells in self.at_or_above(layer) {
            for (acc, c) in m.iter_mut().zip(cells) {
                *acc += i64::from(c[1]) - i64::from(c[0]);
            }
        }
        m
    }

    /// Votes agreeing and disagreeing with `payload` from rows at `layer`'s
    /// level or above, under its scheme.
    pub(crate) fn agreement(&self, payload: &Payload, layer: Layer) -> (u64, u64) {
        let (mut agree, mut disagree) = (0u64, 0u64);
        for cells in self.at_or_above(layer) {
            for (bin, c) in cells.iter().enumerate() {
                let bit = usize::from(payload.bit(bin));
                agree += u64::from(c[bit]);
                disagree += u64::from(c[1 - bit]);
            }
        }
        (agree, disagree)
    }
}

/// The evidence behind a watermark found by extraction.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Evidence {
    /// Votes that agree with the watermark's code bits.
    pub agree: u64,
    /// Votes that disagree (edited cells, rows that were not marked).
    pub disagree: u64,
    /// The marking density at which the evidence is strongest.
    pub density: Density,
    /// The position scheme under which it is strongest.
    pub positions: Positions,
    /// Upper bound on the probability that an extraction reports a watermark
    /// on data that does not carry it: decoding attempts × 2⁻⁶⁴ (see
    /// [`Payload`](crate::Payload)).
    pub false_positive_probability: f64,
}

impl Evidence {
    /// Whether the votes agree with the watermark beyond what chance gives
    /// (one-sided binomial tail below 1e-6).
    pub fn is_significant(&self) -> bool {
        self.agree > self.disagree
            && binomial_upper_tail(self.agree, self.agree + self.disagree) < SUPPORT_P_VALUE
    }

    /// Strength of the evidence: the vote margin in standard deviations of a
    /// fair coin, `(agree − disagree) / √(agree + disagree)`.
    pub fn z_score(&self) -> f64 {
        let n = (self.agree + self.disagree) as f64;
        if n == 0.0 {
            0.0
        } else {
            (self.agree as f64 - self.disagree as f64) / n.sqrt()
        }
    }
}

/// A watermark found by extraction.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Found {
    /// The watermark content.
    pub content: String,
    /// Indices (into the tallies given to [`Watermarker::decode`]) of the
    /// columns that carry it; their votes are pooled in the evidence.
    pub columns: Vec<usize>,
    /// How strongly the data supports it.
    pub evidence: Evidence,
}

/// A column agreeing with a watermark more often than this chance level is
/// counted as carrying it.
const SUPPORT_P_VALUE: f64 = 1e-6;

impl Watermarker {
    /// Adds the votes of `column` to `tally`.
    ///
    /// Every row with a key votes (the density is found when decoding); null
    /// and unreadable cells are skipped.
    ///
    /// # Errors
    ///
    /// [`Error::RowCountMismatch`](crate::Error::RowCountMismatch) when the
    /// lengths disagree.
    pub fn tally_column(
        &self,
        selection: &Selection,
        column: ColumnRef<'_>,
        validity: Option<Validity<'_>>,
        tally: &mut Tally,
    ) -> Result<()> {
        self.tally_column_within(selection, column, validity, tally, &Limits::default())
    }

    /// [`Watermarker::tally_column`] for a column embedded within `limits`
    /// (the leak's own plan's): floats are read at
    /// [`Limits::float_decimals`] as they were marked, and numbers equal to
    /// `min` or `max` give no vote, since that is where cells that could not
    /// take their bit inside the range were left.
    ///
    /// # Errors
    ///
    /// As [`Watermarker::tally_column`].
    pub fn tally_column_within(
        &self,
        selection: &Selection,
        column: ColumnRef<'_>,
        validity: Option<Validity<'_>>,
        tally: &mut Tally,
        limits: &Limits,
    ) -> Result<()> {
        let at = limits.float_decimals;
        // Values at the range's edges are where cells that could not take
        // their bit within the range stayed: they carry no vote.
        let edge = |v: f64| v == limits.min || v == limits.max;
        Self::check_rows(selection, column.len(), validity)?;
        let slots = selection.slots();
        // A cell's bit, when it reads one, and its group, when it has one.
        let with = |bit: Option<bool>, g: Option<u64>| bit.map(|b| (b, g));
        // A float's printed digits are found once for its bit and its group.
        fn float_vote<F: codec::PrintedFloat>(
            x: F,
            step: u32,
            at: Option<i32>,
        ) -> Option<(bool, Option<u64>)> {
            let (count, scale) = codec::float_count(x, at)?;
            let bit = codec::read_decimal(count, scale, step)?;
            Some((bit, number_group(count, scale, step)))
        }
        macro_rules! ints {
            ($v:expr) => {
                count(slots, validity, $v, |x, s| {
                    (!edge(i128::from(*x) as f64))
                        .then(|| with(column::read_int(*x, s), group::int(x, s)))
                        .flatten()
                })
            };
        }
        let part = match column {
            ColumnRef::Int8(v) => ints!(v),
            ColumnRef::Int16(v) => ints!(v),
            ColumnRef::Int32(v) => ints!(v),
            ColumnRef::Int64(v) => ints!(v),
            ColumnRef::UInt8(v) => ints!(v),
            ColumnRef::UInt16(v) => ints!(v),
            ColumnRef::UInt32(v) => ints!(v),
            ColumnRef::UInt64(v) => ints!(v),
            ColumnRef::Decimal { counts, scale } => count(slots, validity, counts, |x, s| {
                let v = crate::engine::codec::decimal_value(*x, scale.into());
                (!edge(v))
                    .then(|| {
                        with(
                            column::read_decimal(*x, scale, s),
                            group::decimal(x, scale, s),
                        )
                    })
                    .flatten()
            }),
            ColumnRef::Float32(v) => count(slots, validity, v, |x, s| {
                (!edge((*x).into()))
                    .then(|| float_vote(*x, s, at))
                    .flatten()
            }),
            ColumnRef::Float64(v) => count(slots, validity, v, |x, s| {
                (!edge(*x)).then(|| float_vote(*x, s, at)).flatten()
            }),
            ColumnRef::Text(v) => count(slots, validity, v, |x, s| {
                with(codec::read_text(x), group::text(x, s))
            }),
            ColumnRef::Timestamp {
                values,
                units_per_second,
            } => count(slots, validity, values, |x, s| {
                with(
                    column::read_unit(*x, units_per_second, s),
                    group::unit(x, units_per_second, s),
                )
            }),
            ColumnRef::Date32(v) => count(slots, validity, v, |x, s| {
                with(column::read_day(*x, s), group::day(x, s))
            }),
            ColumnRef::Date64(v) => count(slots, validity, v, |x, s| {
                with(column::read_unit(*x, MS_PER_DAY, s), group::date64(x, s))
            }),
            ColumnRef::Cells(v) => count(slots, validity, v, |x, s| {
                let value = match x {
                    Cell::Integer { value, .. } => Some(*value as f64),
                    Cell::Decimal { count, scale, .. } => {
                        Some(codec::decimal_value(*count, (*scale).into()))
                    }
                    _ => None,
                };
                (!value.is_some_and(edge))
                    .then(|| with(column::read_cell(x, s), group::cell(x, s)))
                    .flatten()
            }),
            ColumnRef::Strs(v) => count(slots, validity, v, |x, s| {
                with(codec::read_text(x), group::text(x, s))
            }),
        };
        tally.merge(&part);
        Ok(())
    }

    /// Decodes the watermarks carried by a set of column tallies.
    ///
    /// Each tally is decoded alone and all of them pooled; every distinct
    /// watermark found is reported once, with the columns that carry it
    /// (whether or not they decoded alone) and the pooled evidence of those
    /// columns, strongest evidence first. Different columns may carry
    /// different watermarks; all are reported. An empty result means no
    /// watermark under this key.
    pub fn decode(&self, tallies: &[Tally]) -> Vec<Found> {
        let mut attempts = 0u64;
        let mut decode_one = |t: &Tally| {
            attempts += ATTEMPTS_PER_LEVEL * LAYERS as u64;
            self.decode_tally(t)
        };
        let pooled = (tallies.len() > 1).then(|| {
            let mut pooled = Tally::new();
            for t in tallies {
                pooled.merge(t);
            }
            decode_one(&pooled)
        });
        attempts += ATTEMPTS_PER_LEVEL * LAYERS as u64 * tallies.len() as u64;
        let alone: Vec<Option<String>> = tallies.par_iter().map(|t| self.decode_tally(t)).collect();
        let mut contents: Vec<String> = Vec::new();
        for c in pooled.into_iter().chain(alone.iter().cloned()).flatten() {
            if !contents.contains(&c) {
                contents.push(c);
            }
        }
        let fp = attempts as f64 * (-64f64).exp2();
        let payloads: Vec<Payload> = contents
            .iter()
            .filter_map(|c| Payload::new(&self.key, c).ok())
            .collect();
        // Each column carries at most one watermark: the one it decodes to
        // alone, else the one its votes agree with most, if beyond chance.
        // (Agreement alone is not enough: two contents that share a prefix
        // share part of their codewords.)
        let evidence: Vec<Vec<Evidence>> = tallies
            .iter()
            .map(|t| payloads.iter().map(|p| best_evidence(t, p, fp)).collect())
            .collect();
        let carrier: Vec<Option<usize>> = (0..tallies.len())
            .map(|i| match &alone[i] {
                Some(c) => payloads.iter().position(|p| p.content() == c),
                None => (0..payloads.len())
                    .filter(|&j| evidence[i][j].is_significant())
                    .max_by(|&a, &b| {
                        evidence[i][a]
                            .z_score()
                            .total_cmp(&evidence[i][b].z_score())
                    }),
            })
            .collect();
        let mut found: Vec<Found> = payloads
            .iter()
            .enumerate()
            .map(|(j, payload)| {
                let mut columns: Vec<usize> = (0..tallies.len())
                    .filter(|&i| carrier[i] == Some(j))
                    .collect();
                if columns.is_empty() {
                    // Found only in the pool of all columns, or in columns
                    // that also carry another watermark (a merged leak).
                    columns = (0..tallies.len())
                        .filter(|&i| evidence[i][j].is_significant())
                        .collect();
                }
                let mut pooled = Tally::new();
                for &i in &columns {
                    pooled.merge(&tallies[i]);
                }
                Found {
                    content: payload.content().to_owned(),
                    columns,
                    evidence: best_evidence(&pooled, payload, fp),
                }
            })
            .collect();
        found.sort_by(|a, b| b.evidence.z_score().total_cmp(&a.evidence.z_score()));
        found
    }

    fn decode_tally(&self, tally: &Tally) -> Option<String> {
        // Layers are independent attempts; the first success in layer order
        // wins, whatever the number of threads. A cheap pass over every
        // layer first (clear votes decode without list decoding anywhere),
        // then list decoding of the lengths that pass found worth it.
        let margins: Vec<Vec<i64>> = Layer::all().map(|layer| tally.margins(layer)).collect();
        let worthy: Vec<std::sync::Mutex<Vec<usize>>> =
            (0..LAYERS).map(|_| Default::default()).collect();
        let found = (0..LAYERS).into_par_iter().find_map_first(|layer| {
            let mut w = Vec::new();
            let found = payload::decode(&self.key, &margins[layer], payload::Pass::Viterbi, &mut w);
            *worthy[layer].lock().unwrap_or_else(|p| p.into_inner()) = w;
            found
        });
        if found.is_some() {
            return found;
        }
        // Nothing read cleanly, so every level ran and left its list.
        worthy
            .into_par_iter()
            .map(|w| w.into_inner().unwrap_or_else(|p| p.into_inner()))
            .enumerate()
            .filter(|(_, w)| !w.is_empty())
            .find_map_first(|(layer, mut w)| {
                payload::decode(&self.key, &margins[layer], payload::Pass::List, &mut w)
            })
    }
}

/// The evidence for `payload` in `tally` at the layer where it is strongest.
fn best_evidence(tally: &Tally, payload: &Payload, fp: f64) -> Evidence {
    Layer::all()
        .map(|layer| {
            let (agree, disagree) = tally.agreement(payload, layer);
            Evidence {
                agree,
                disagree,
                density: layer.density(),
                positions: layer.positions,
                false_positive_probability: fp,
            }
        })
        .max_by(|a, b| a.z_score().total_cmp(&b.z_score()))
        .expect("LAYERS > 0")
}

/// `P(X ≥ k)` for `X ~ Binomial(n, 1/2)`, bounded above by the Chernoff
/// bound `exp(−n · KL(k/n ‖ 1/2))`; exact enough to compare with small
/// thresholds, never below the true value.
pub(crate) fn binomial_upper_tail(k: u64, n: u64) -> f64 {
    if n == 0 || 2 * k <= n {
        return 1.0;
    }
    let q = k as f64 / n as f64;
    let kl = |a: f64, b: f64| if a == 0.0 { 0.0 } else { a * (a / b).ln() };
    let d = kl(q, 0.5) + kl(1.0 - q, 0.5);
    (-(n as f64) * d).exp()
}

/// Tallies the cells of one column in parallel chunks of rows.
///
/// `read(value, step)` gives the cell's bit and its group (see
/// [`Positions::Cell`]; `None`: it votes at its row's position only), or
/// `None` when it carries no mark.
fn count<V: Sync>(
    slots: &[Slot],
    validity: Option<Validity<'_>>,
    values: &[V],
    read: impl Fn(&V, u32) -> Option<(bool, Option<u64>)> + Sync,
) -> Tally {
    values
        .par_chunks(TALLY_CHUNK_ROWS)
        .enumerate()
        .map(|(c, chunk)| {
            let start = c * TALLY_CHUNK_ROWS;
            let mut tally = Tally::new();
            for (i, (v, &slot)) in chunk
                .iter()
                .zip(&slots[start..start + chunk.len()])
                .enumerate()
            {
                if !slot.has_key() || validity.is_some_and(|valid| !valid.is_valid(start + i)) {
                    continue;
                }
                if let Some((bit, group)) = read(v, slot.step()) {
                    tally.vote_both(slot, bit, group);
                }
            }
            tally
        })
        .reduce(Tally::new, |mut a, b| {
            a.merge(&b);
            a
        })
}
