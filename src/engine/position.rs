//! Where a marked cell's vote goes: the code position of every marked cell
//! of a row, under the two position schemes.
//!
//! Under [`Positions::Row`] (scheme 1, every copy made before cell
//! positions existed) the row hash gives a marked row one code position
//! and every marked cell of the row repeats its bit, so ten marked columns
//! carry the evidence of one. Under [`Positions::Cell`] each marked cell
//! takes its own position from the row's secret and the cell's *group*: its
//! value with the low [`GROUP_BITS`] binary digits of its step count dropped
//! (the marking steps live below them, and a mark never moves a value out of
//! its group), or, for text, the text without its invisible mark. A cell's
//! group reads the same in the copy as it did before marking, so the
//! extractor finds every cell's position from the leak alone; column names
//! and order still play no part, and cells of one row with different groups
//! carry independent positions.

/// Which code positions the marked cells of a row carry.
///
/// Extraction reads both, so copies made under either are traced; new
/// copies use [`Positions::Cell`], which gives a row as many positions as it
/// has marked cells of different groups.
///
/// ```
/// use dbwatermark::{Config, Positions};
/// assert_eq!(Config::default().positions(), Positions::Cell);
/// let old = Config::builder().positions(Positions::Row).build()?;
/// assert_eq!(old.positions().scheme(), 1);
/// # Ok::<(), dbwatermark::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Positions {
    /// Scheme 1: one code position per marked row, repeated in each of its
    /// marked cells (copies made by releases before cell positions).
    Row,
    /// Scheme 2: a code position per marked cell, from the row's secret and
    /// the cell's group.
    #[default]
    Cell,
}

impl Positions {
    /// Both schemes, in the order of their tally layers.
    pub const ALL: [Self; 2] = [Self::Row, Self::Cell];

    /// The scheme's number: 1 for [`Positions::Row`], 2 for [`Positions::Cell`].
    pub fn scheme(self) -> u32 {
        self as u32 + 1
    }

    /// The code positions a marked row with `marked_columns` marked columns
    /// is counted as giving when a density is chosen
    /// ([`Density::auto_with`](crate::Density::auto_with),
    /// [`Density::to_trace_with`](crate::Density::to_trace_with)): one under
    /// [`Positions::Row`]; under [`Positions::Cell`], half the marked
    /// columns (at least one). Cells of a row share a position when they
    /// share a group (small counts, equal values) and nulls carry none: on
    /// real tables a 300-row leak at one row in eight gave 2.9 positions per
    /// marked row with 4 marked columns (flights) and 4.9 with 7 (diamonds).
    ///
    /// ```
    /// use dbwatermark::Positions;
    /// assert_eq!(Positions::Cell.per_row(4), 2.0);
    /// assert_eq!(Positions::Cell.per_row(1), 1.0);
    /// assert_eq!(Positions::Row.per_row(7), 1.0);
    /// ```
    pub fn per_row(self, marked_columns: usize) -> f64 {
        match self {
            Self::Row => 1.0,
            Self::Cell => (marked_columns as f64 / 2.0).max(1.0),
        }
    }

    /// The index of the scheme's layer in a tally.
    pub(crate) fn layer(self) -> usize {
        self as usize
    }
}

/// Low binary digits of a cell's step count below its group: a mark moves a
/// count by at most two steps and never across a multiple of `2^GROUP_BITS`.
///
/// A count next to its group's edge may have no neighbour inside the group
/// with the other bit at the row's marking step (15 and 16 at the second
/// step, say). Such a count is *stuck*: it carries the right bit only by
/// chance, so embedding leaves it alone and extraction gives it no vote
/// under [`Positions::Cell`] (with the default two steps, one marked cell
/// in 32).
pub(crate) const GROUP_BITS: u32 = 4;

/// The splitmix64 finalizer: a bijection that spreads every input bit over
/// the whole word.
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The group key of a number counted as `count × 10^-scale`, marked at
/// binary digit `step`: its group (the count without its low
/// [`GROUP_BITS`] digits) and its scale; `None` when the count is stuck
/// (see [`GROUP_BITS`]).
#[inline]
pub(crate) fn number_group(count: i128, scale: i32, step: u32) -> Option<u64> {
    if stuck(count, step) {
        return None;
    }
    let group = (count >> GROUP_BITS) as u64; // the low 64 bits suffice
    Some(mix(
        mix(group) ^ (scale as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    ))
}

/// Whether no count within a mark's reach of `count` (see
/// [`nearest`](crate::engine::codec::nearest)) and inside its group has the
/// other bit at `step`.
#[inline]
fn stuck(count: i128, step: u32) -> bool {
    let reach = 1i128 << step.saturating_sub(1);
    let low = count & ((1 << GROUP_BITS) - 1);
    if low >= reach && low < (1 << GROUP_BITS) - reach {
        return false; // every neighbour within reach is in the group
    }
    let bit = (count >> step) & 1;
    !(1..=reach).any(|d| {
        [count - d, count + d]
            .into_iter()
            .any(|w| w >> GROUP_BITS == count >> GROUP_BITS && (w >> step) & 1 != bit)
    })
}

/// The group key of a text: a hash of its body without the invisible mark.
#[inline]
pub(crate) fn text_group(s: &str) -> u64 {
    // FNV-1a, stable across builds and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in crate::engine::codec::text_body(s).as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h ^ 0x7465_7874) // "text": text and numbers never share a key by design
}

/// The payload bin and mask of a cell in group `group` of a row whose cell
/// secret is `secret`.
#[inline]
pub(crate) fn cell_position(secret: u64, group: u64, bins: usize) -> (usize, bool) {
    let h = mix(secret ^ group);
    ((((h >> 32) * bins as u64) >> 32) as usize, h & 1 == 1)
}

/// Whether a mark may move count `from` to count `to` under `keep`: always
/// when `keep` is `None`, else only within one group.
#[inline]
pub(crate) fn same_group(from: i128, to: i128, keep: Option<u32>) -> bool {
    keep.is_none_or(|g| from >> g == to >> g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_keeps_its_group_across_every_mark_within_it() {
        for count in -100i128..100 {
            let g = number_group(count, 2, 0);
            let base = count >> GROUP_BITS << GROUP_BITS;
            assert_eq!(g, number_group(base, 2, 0));
            assert_eq!(g, number_group(base + (1 << GROUP_BITS) - 1, 2, 0));
            assert_ne!(g, number_group(base + (1 << GROUP_BITS), 2, 0));
        }
        assert_ne!(
            number_group(5, 1, 0),
            number_group(5, 2, 0),
            "the scale counts"
        );
    }

    #[test]
    fn only_counts_whose_other_bit_lies_outside_the_group_are_stuck() {
        // At the lowest step a neighbour inside the group always differs.
        assert!((-40..40).all(|c| !stuck(c, 0)));
        // At the second: the group's first and last counts, whose only
        // neighbour with the other bit is across the edge.
        let at_1: Vec<i128> = (-20..40).filter(|&c| stuck(c, 1)).collect();
        assert_eq!(at_1, [-17, -16, -1, 0, 15, 16, 31, 32]);
        assert_eq!(number_group(15, 0, 1), None);
        assert!(number_group(14, 0, 1).is_some());
        // At the third step a mark reaches two counts.
        let at_2: Vec<i128> = (0..16).filter(|&c| stuck(c, 2)).collect();
        assert_eq!(at_2, [0, 1, 14, 15]);
    }

    proptest::proptest! {
        /// A mark inside its group always exists unless the count is
        /// stuck, and it keeps the group and carries the bit.
        #[test]
        fn a_count_is_unmarkable_in_its_group_exactly_when_it_is_stuck(
            count in -1_000_000i128..1_000_000,
            step in 0u32..3,
            bit: bool,
            up: bool,
        ) {
            let m = crate::engine::codec::MarkBit { bit, step, up, keep: Some(GROUP_BITS) };
            let got = crate::engine::codec::nearest(count, m, i128::MIN / 2, i128::MAX / 2, |_| true);
            let has_bit = (count >> step) & 1 == i128::from(bit);
            match got {
                Some(w) => {
                    proptest::prop_assert_eq!((w >> step) & 1, i128::from(bit));
                    proptest::prop_assert_eq!(w >> GROUP_BITS, count >> GROUP_BITS);
                    proptest::prop_assert!((w - count).abs() <= 1 << step.saturating_sub(1));
                    proptest::prop_assert!(!stuck(count, step) || has_bit);
                }
                None => proptest::prop_assert!(stuck(count, step) && !has_bit),
            }
        }
    }

    #[test]
    fn text_groups_ignore_the_mark() {
        assert_eq!(text_group("ab\u{200b}"), text_group("ab\u{200c}"));
        assert_eq!(text_group("ab\u{200b}"), text_group("ab"));
        assert_ne!(text_group("ab"), text_group("ac"));
    }

    #[test]
    fn cell_positions_spread_over_the_bins_and_masks() {
        let bins = 4608;
        let mut hits = vec![0u32; bins];
        let mut ones = 0;
        for g in 0..460_800u64 {
            let (bin, mask) = cell_position(0x1234_5678_9abc_def0, mix(g), bins);
            hits[bin] += 1;
            ones += u32::from(mask);
        }
        // 100 per bin on average; a Poisson(100) stays within 40..170.
        assert!(
            hits.iter().all(|&h| (40..170).contains(&h)),
            "{:?}",
            hits.iter().min()
        );
        assert!((225_000..236_000).contains(&ones), "{ones}");
    }
}
