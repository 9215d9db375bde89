//! Pseudo-rows: fabricated records added to the copy that carry the mark,
//! so that no real cell changes.
//!
//! # How it works
//!
//! Every row, real or fabricated, has a *row secret*:
//! `r = HMAC(k_pseudo_rows, canonical(key))` (its own derived key, so it
//! says nothing of the row hash that places cell marks). A cell's *cell
//! hash* is SipHash-2-4 under the first 16 bytes of `r` over the cell's
//! normalised value (the normalisation of virtual keys: text trimmed,
//! white space collapsed, lower case; dates and times as one instant;
//! numbers as numbers, so `12.30` and `12.3` agree). Its low
//! [`TAG_BITS`] bits are the cell's *tag*; further bits give a payload bin,
//! a mask and a bit.
//!
//! A fabricated row is a real row near the place it is put (its *donor*)
//! with a few cells changed: as few as recognition needs, plus one for a
//! leak that drops a column. A changed cell takes the value of one of the
//! real rows most like the donor (the same flight on another day, say),
//! else of a row that holds the value of the column it depends on most
//! (a Chow–Liu tree of the columns), else of a row near; a column whose
//! values are nearly all distinct takes a near copy of the donor's (a
//! number within 2% at its decimals and inside its range, free text spliced
//! from two rows). Each changed cell is drawn until its hash has a zero tag
//! and carries its bin's payload bit; a cell that would vote wrong is
//! changed in any case. A real row's tags are uniform, so a row is
//! *recognised* only when so many of its distinct cell values have a zero
//! tag that a real row would do so with a chance of at most [`ROW_CHANCE`]
//! (1 in 512; with 5-bit tags, two values of two, three of up to six, five
//! of eighteen). The tagged cells of a recognised row then vote, each for
//! its own bin, into one tally that the decoder and the candidate test read
//! like any column's: the votes of the few real rows recognised by chance
//! are fair coins and only dilute the evidence.
//!
//! The column a value is in plays no part, so renamed, reordered or
//! dropped columns cost only the cells they take with them; shuffled or
//! deleted rows cost only the rows. Whether a fabricated row follows a
//! real row comes from the real row's secret too.

use siphasher::sip128::{Hasher128, SipHasher24};
use std::hash::Hasher as _;

use crate::engine::payload::{BINS, Payload};
use crate::engine::select::Slot;

/// The name under which the votes of pseudo-rows are reported, as a
/// column's are.
pub const PSEUDO_ROWS: &str = "(pseudo-rows)";

/// The default spacing of fabricated rows: about one per 100 real rows.
pub const DEFAULT_ROW_SPACING: u32 = 100;

/// Bits of a cell hash that a fabricated row's cells hold at zero.
pub const TAG_BITS: u32 = 5;

/// The greatest chance that a real row is recognised as fabricated.
pub const ROW_CHANCE: f64 = 1.0 / 512.0;

/// The most distinct values of a row that recognition looks at.
const MAX_CELLS: usize = 1024;

/// What a row's secret decides.
#[derive(Clone, Copy)]
pub(crate) struct RowSecret {
    cells: [u8; 16],
    anchor: u64,
    seed: u64,
}

impl RowSecret {
    /// The secret of a row whose pseudo-row hash is `h`.
    pub(crate) fn new(h: &[u8; 32]) -> Self {
        let word = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"));
        let mut cells = [0u8; 16];
        cells.copy_from_slice(&h[..16]);
        Self {
            cells,
            anchor: word(16),
            seed: word(24),
        }
    }

    /// The cell hash of a cell whose normalised encoding is `encoded`.
    pub(crate) fn cell(&self, encoded: &[u8]) -> CellHash {
        let mut s = SipHasher24::new_with_key(&self.cells);
        s.write(encoded);
        CellHash(s.finish128().h1)
    }

    /// Whether a fabricated row follows this (real) row, for about one in
    /// `spacing`.
    pub(crate) fn is_anchor(&self, spacing: u32) -> bool {
        self.anchor < u64::MAX / u64::from(spacing.max(1))
    }

    /// A seed for the choices made in building a row from this one.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }
}

/// What a cell's hash says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CellHash(pub(crate) u64);

impl CellHash {
    /// Whether the tag is zero.
    pub(crate) fn tagged(self) -> bool {
        self.0 & ((1 << TAG_BITS) - 1) == 0
    }

    /// The bin and mask of its vote.
    pub(crate) fn slot(self) -> Slot {
        Slot::carried(
            ((self.0 >> 8) % BINS as u64) as u16,
            (self.0 >> 40) & 1 != 0,
        )
    }

    /// The bit it reads.
    pub(crate) fn read(self) -> bool {
        (self.0 >> 41) & 1 != 0
    }

    /// Whether a fabricated row may hold this cell: a zero tag, and the
    /// payload's bit of its bin.
    pub(crate) fn carries(self, payload: &Payload) -> bool {
        let slot = self.slot();
        self.tagged() && (self.read() ^ slot.mask()) == payload.bit(slot.bin())
    }
}

/// The fewest zero tags among `cells` distinct values that recognise a
/// row: the smallest `m` with `P(Binomial(cells, 2^-TAG_BITS) ≥ m) ≤`
/// [`ROW_CHANCE`]; `None` when even every value would not (too few).
pub(crate) fn min_tagged(cells: usize) -> Option<usize> {
    thresholds(cells).0.map(usize::from)
}

/// The chance that a real row with `cells` distinct values is recognised
/// (at most [`ROW_CHANCE`]; 0 when none can be).
pub(crate) fn chance_for(cells: usize) -> f64 {
    thresholds(cells).1
}

fn thresholds(cells: usize) -> (Option<u16>, f64) {
    static TABLE: std::sync::OnceLock<Vec<(Option<u16>, f64)>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| (0..=MAX_CELLS).map(threshold).collect());
    table[cells.min(MAX_CELLS)]
}

/// Whether a row with `tagged` zero tags among `cells` distinct values is
/// recognised as fabricated.
pub(crate) fn recognised(cells: usize, tagged: usize) -> bool {
    let cells = cells.min(MAX_CELLS);
    min_tagged(cells).is_some_and(|m| tagged.min(cells) >= m)
}

fn threshold(n: usize) -> (Option<u16>, f64) {
    let p = (-f64::from(TAG_BITS)).exp2();
    // pmf(k) for k = 0..=n, iteratively; the upper tails from the top.
    let mut pmf = Vec::with_capacity(n + 1);
    let mut v = (1.0 - p).powi(n as i32);
    for k in 0..=n {
        pmf.push(v);
        v *= (n - k) as f64 / (k + 1) as f64 * p / (1.0 - p);
    }
    let (mut tail, mut best, mut chance) = (0.0, None, 0.0);
    for m in (1..=n).rev() {
        tail += pmf[m];
        if tail > ROW_CHANCE {
            break;
        }
        (best, chance) = (Some(m as u16), tail);
    }
    (best, chance)
}

/// An upper bound on the chance that real rows, of which `expected` are
/// recognised on average (the sum of [`chance_for`] over them), give
/// `recognised` or more: the Chernoff bound of a sum of independent
/// Bernoulli trials, `exp(−μ) (eμ/k)^k` for `k > μ`.
pub(crate) fn chance_of_recognising(recognised: u64, expected: f64) -> f64 {
    let k = recognised as f64;
    if k <= expected {
        return 1.0;
    }
    if expected <= 0.0 {
        return 0.0;
    }
    (k - expected + k * (expected / k).ln()).exp().min(1.0)
}

/// What adding pseudo-rows did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PseudoRowsReport {
    /// The spacing asked for (about one fabricated row per this many).
    pub spacing: u32,
    /// Real rows, written unchanged.
    pub real_rows: usize,
    /// Fabricated rows added.
    pub added: usize,
    /// Distinct non-null values of the fabricated rows.
    pub cells: usize,
    /// Of those, how many carry a payload bit.
    pub carrying: usize,
    /// Places where no row was added: no new key could be found near the
    /// real row, or no row drawn from the table's values was recognised
    /// under any of the keys tried.
    pub skipped: usize,
    /// Fabricated rows whose integer key lies outside the table's range
    /// (above its largest key: the keys around it were all taken), which a
    /// leaker who sorts by key can find.
    pub outside_range: usize,
}

impl PseudoRowsReport {
    /// A warning for the owner when most places got no fabricated row:
    /// the table's values rarely let a row be recognised (it needs three or
    /// more columns of many values: numbers, identifiers, text), so a leak
    /// of the copy may hold too few to be traced.
    ///
    /// ```
    /// let mut report = dbwatermark::PseudoRowsReport::default();
    /// assert!(report.warning().is_none());
    /// report.skipped = 201;
    /// report.added = 2;
    /// assert!(report.warning().unwrap().contains("pseudo-column"));
    /// ```
    pub fn warning(&self) -> Option<String> {
        (self.skipped > self.added).then(|| {
            format!(
                "only {} of {} places got a fabricated row: this table's values rarely let one be recognised (that needs three or more columns of many distinct values: numbers, identifiers, text), so a leak of this copy may not be traced; a pseudo-column carries a mark in any table",
                self.added,
                self.added + self.skipped
            )
        })
    }
}

/// The plan fingerprint of a copy whose mark is in pseudo-rows at
/// `spacing` (16 hex digits, as [`ColumnPlan::fingerprint`](crate::ColumnPlan::fingerprint)).
pub fn pseudo_rows_fingerprint(spacing: u32) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"dbwm-pseudo-rows-v1\n");
    h.update(spacing.to_le_bytes());
    crate::engine::key::hex(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognition_needs_enough_zero_tags_for_at_most_a_one_in_512_chance() {
        // With 5-bit tags: one value is never enough, two are (2^-10).
        assert_eq!(min_tagged(1), None);
        assert_eq!(min_tagged(2), Some(2));
        assert_eq!(min_tagged(4), Some(3));
        let m = min_tagged(18).unwrap();
        assert!((4..=6).contains(&m), "{m}");
        for n in 2..200 {
            let m = min_tagged(n).unwrap();
            assert!(m <= n && recognised(n, m) && !recognised(n, m - 1));
        }
    }

    #[test]
    fn real_rows_are_recognised_at_most_once_in_512() {
        // Fair tags over 200,000 rows of 3 to 20 distinct values.
        let secret = RowSecret::new(&[7; 32]);
        let mut hits = 0;
        let mut expected = 0.0;
        let rows = 200_000u64;
        for row in 0..rows {
            let n = 3 + (row % 18) as usize;
            let tagged = (0..n)
                .filter(|&c| {
                    secret
                        .cell(&[row.to_le_bytes(), (c as u64).to_le_bytes()].concat())
                        .tagged()
                })
                .count();
            hits += u64::from(recognised(n, tagged));
            expected += chance_for(n);
        }
        assert!(hits <= rows / 400, "{hits}");
        assert!(expected <= rows as f64 * ROW_CHANCE);
        assert!(
            (hits as f64 - expected).abs() < 5.0 * expected.sqrt(),
            "{hits} {expected}"
        );
        assert!(chance_of_recognising(hits, expected) > 1e-3);
        assert!(chance_of_recognising(rows / 100, expected) < 1e-9);
    }

    #[test]
    fn anchors_come_about_once_per_spacing() {
        let n = (0..100_000u64)
            .filter(|i| {
                let mut h = [0u8; 32];
                h[16..24].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
                RowSecret::new(&h).is_anchor(100)
            })
            .count();
        assert!((800..1200).contains(&n), "{n}");
    }
}
