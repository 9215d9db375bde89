//! Keyed row selection: which rows carry marks, in which low step, for

use rayon::prelude::*;

use crate::engine::error::{Error, Result};
use crate::engine::key::{KeyEncoder, WatermarkKey};
use crate::engine::payload::BINS;
use crate::engine::position::{self, Positions};

/// Highest selection level: densities go down to 1 row in `2^(MAX_LEVEL/2)` = 32.
pub const MAX_LEVEL: u8 = 10;

/// Number of rows hashed per rayon task.
pub(crate) const CHUNK_ROWS: usize = 4096;

/// The fraction of rows that carry marks: `2^(-k/2)` for a level `k` in
/// `0..=10`, from every row down to one row in 32 in steps of √2 (1, 1/1.41,
/// 1/2, 1/2.83, 1/4, …, 1/32).
///
/// Denser marking survives heavier deletion and lets longer contents be read
/// from smaller tables; sparser marking changes fewer cells. Extraction finds
/// the density by itself, so it need not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Density {
    level: u8,
}

impl std::fmt::Display for Density {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.rows_per_mark();
        if n.fract() == 0.0 {
            write!(f, "1/{n}")
        } else {
            write!(f, "1/{n:.2}")
        }
    }
}

impl Density {
    /// Every row carries marks.
    pub const ALL: Self = Self { level: 0 };

    /// One row in `n`, for `n` a power of two from 1 to 32.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for any other `n`.
    pub fn one_in(n: u32) -> Result<Self> {
        if n.is_power_of_two() && 2 * n.trailing_zeros() <= u32::from(MAX_LEVEL) {
            Ok(Self {
                level: 2 * n.trailing_zeros() as u8,
            })
        } else {
            Err(Error::InvalidConfig {
                setting: "density",
                reason: format!("one row in {n}: must be 1, 2, 4, 8, 16 or 32"),
            })
        }
    }

    /// The density of level `k`, `2^(-k/2)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for `k > 10`.
    pub fn from_level(k: u8) -> Result<Self> {
        if k <= MAX_LEVEL {
            Ok(Self { level: k })
        } else {
            Err(Error::InvalidConfig {
                setting: "density",
                reason: format!("level {k}: must be 0 to {MAX_LEVEL}"),
            })
        }
    }

    /// The level `k` of `2^(-k/2)`.
    pub fn level(self) -> u8 {
        self.level
    }

    /// The `n` of "one row in `n`" (`2^(k/2)`, not always a whole number).
    pub fn rows_per_mark(self) -> f64 {
        (f64::from(self.level) / 2.0).exp2()
    }

    /// The fraction of rows that carry marks.
    pub fn fraction(self) -> f64 {
        1.0 / self.rows_per_mark()
    }
}

impl Density {
    /// Marked rows per code bit that the automatic density aims for, each
    /// counted as the code positions it gives ([`Density::auto_with`]).
    ///
    /// Measured (`cargo run --release --example sweep`, row positions): a
    /// watermark decodes down to about 0.6 surviving marked rows per code bit
    /// (90% of a table at six per code bit deleted: 20 of 20 keys; 95%: 0 of
    /// 20), so six per code bit survive the loss of 90% of the rows.
    pub const AUTO_ROWS_PER_CODE_BIT: f64 = 6.0;

    /// Marked rows per code bit below which a watermark may not decode even
    /// from the whole table: the automatic density never goes below it
    /// (1,500 rows with a 64-byte content decode at 0.84: 200 of 200 keys).
    pub const MIN_ROWS_PER_CODE_BIT: f64 = 0.8;

    /// Densest automatic choice for tables of 5,000 rows or more (at most
    /// about 10% of cells changed, since a mark changes about half the
    /// cells it lands on), and for smaller ones (at most about 25%).
    const AUTO_CAP_LEVEL: (u8, u8) = (5, 3);

    /// The automatic density for a table of `rows` rows carrying `payload`:
    /// the sparsest that gives [`Density::AUTO_ROWS_PER_CODE_BIT`] marked rows
    /// per code bit (at least one row in 32), but no denser than one row in
    /// 5.66 for tables of 5,000 rows or more and one in 2.83 below, so that
    /// about 10% and 25% of the cells change at most — unless decoding needs
    /// it: the density never gives fewer than
    /// [`Density::MIN_ROWS_PER_CODE_BIT`] when a denser one would.
    ///
    /// ```
    /// use dbwatermark::{Density, Payload, WatermarkKey};
    /// let key = WatermarkKey::new("secret")?;
    /// let p = Payload::new(&key, "sixteen-byte-id!")?;
    /// assert_eq!(Density::auto(30_000, &p), Density::one_in(8)?);
    /// assert_eq!(Density::auto(10_000, &p), Density::from_level(5)?);
    /// assert_eq!(Density::auto(1_500, &p), Density::from_level(3)?);
    /// let long = Payload::new(&key, &"x".repeat(64))?;
    /// assert_eq!(Density::auto(1_500, &long), Density::ALL);
    /// assert_eq!(Density::auto(10_000_000, &p), Density::one_in(32)?);
    /// # Ok::<(), dbwatermark::Error>(())
    /// ```
    pub fn auto(rows: usize, payload: &crate::Payload) -> Self {
        Self::auto_with(rows, payload, 1.0)
    }

    /// [`Density::auto`] for marked rows that each give `per_row` code
    /// positions ([`Positions::per_row`]): the rows-per-code-bit targets
    /// count positions, so a table whose rows carry several sets sparser
    /// marks.
    ///
    /// ```
    /// use dbwatermark::{Density, Payload, WatermarkKey};
    /// let key = WatermarkKey::new("secret")?;
    /// let p = Payload::new(&key, "sixteen-byte-id!")?;
    /// assert_eq!(Density::auto_with(30_000, &p, 1.0), Density::auto(30_000, &p));
    /// assert_eq!(Density::auto_with(30_000, &p, 2.0), Density::one_in(16)?);
    /// # Ok::<(), dbwatermark::Error>(())
    /// ```
    pub fn auto_with(rows: usize, payload: &crate::Payload, per_row: f64) -> Self {
        let per_row = per_row.max(1.0);
        let per_bit = |level: u8| {
            rows as f64 * Self { level }.fraction() * per_row / payload.code_len().max(1) as f64
        };
        let robust = (0..=MAX_LEVEL)
            .rev()
            .find(|&l| per_bit(l) >= Self::AUTO_ROWS_PER_CODE_BIT)
            .unwrap_or(0);
        let cap = if rows >= 5000 {
            Self::AUTO_CAP_LEVEL.0
        } else {
            Self::AUTO_CAP_LEVEL.1
        };
        let mut level = robust.max(cap);
        while level > 0 && per_bit(level) < Self::MIN_ROWS_PER_CODE_BIT {
            level -= 1;
        }
        Self { level }
    }

    /// Code positions (marked rows under [`Positions::Row`]) a leak needs
    /// for its copy to be named among a registry of issued copies at the
    /// default threshold: about 60 code positions that all agree reach
    /// p < 1e-9 after correcting for 100 candidates, 11 levels and 2
    /// position schemes, and the rest is margin for edited cells and
    /// positions hit twice.
    pub const TRACE_MARKED_ROWS: f64 = 100.0;

    /// The sparsest density at which a leak of `leak_rows` random rows holds
    /// [`Density::TRACE_MARKED_ROWS`] marked rows, so that it is named from
    /// the registry (every row for leaks under 100 rows).
    ///
    /// ```
    /// use dbwatermark::Density;
    /// assert_eq!(Density::to_trace(1000), Density::one_in(8)?);
    /// assert_eq!(Density::to_trace(300), Density::from_level(3)?);
    /// assert_eq!(Density::to_trace(100_000), Density::one_in(32)?);
    /// assert_eq!(Density::to_trace(50), Density::ALL);
    /// # Ok::<(), dbwatermark::Error>(())
    /// ```
    pub fn to_trace(leak_rows: usize) -> Self {
        Self::to_trace_with(leak_rows, 1.0)
    }

    /// [`Density::to_trace`] for marked rows that each give `per_row` code
    /// positions ([`Positions::per_row`]): such a leak needs
    /// [`Density::TRACE_MARKED_ROWS`]` / per_row` marked rows.
    ///
    /// ```
    /// use dbwatermark::Density;
    /// assert_eq!(Density::to_trace_with(1000, 1.0), Density::one_in(8)?);
    /// assert_eq!(Density::to_trace_with(1000, 2.0), Density::one_in(16)?);
    /// assert_eq!(Density::to_trace_with(1000, 3.5), Density::one_in(32)?);
    /// # Ok::<(), dbwatermark::Error>(())
    /// ```
    pub fn to_trace_with(leak_rows: usize, per_row: f64) -> Self {
        let needed = Self::TRACE_MARKED_ROWS / per_row.max(1.0);
        let level = (0..=MAX_LEVEL)
            .rev()
            .find(|&l| leak_rows as f64 * Self { level: l }.fraction() >= needed)
            .unwrap_or(0);
        Self { level }
    }

    /// The denser of two densities.
    pub fn denser(self, other: Self) -> Self {
        Self {
            level: self.level.min(other.level),
        }
    }
}

/// Embedding settings. Extraction must use the same [`Config::steps`]; the
/// density is found automatically.
///
/// ```
/// use dbwatermark::{Config, Density};
/// let config = Config::builder().density(Density::one_in(4)?).steps(2).build()?;
/// assert_eq!(config.density(), Some(Density::one_in(4)?));
/// assert_eq!(Config::default().density(), None); // automatic
/// # Ok::<(), dbwatermark::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    density: Option<Density>,
    trace_rows: Option<usize>,
    steps: u8,
    positions: Positions,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            density: None,
            trace_rows: None,
            steps: Self::DEFAULT_STEPS,
            positions: Positions::Cell,
        }
    }
}

impl Config {
    /// Density used when it is automatic and the number of rows is not known
    /// in advance (streams): one row in eight, the automatic choice for a
    /// 16-byte content in about 30,000 to 60,000 rows.
    pub const UNKNOWN_ROWS_DENSITY: Density = Density { level: 6 };
    /// Default number of low steps a mark may sit in: two.
    pub const DEFAULT_STEPS: u8 = 2;
    /// Largest accepted number of low steps.
    pub const MAX_STEPS: u8 = 8;

    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder(Self::default())
    }

    /// The fraction of rows that carry marks, or `None` when it is chosen
    /// per table by [`Density::auto`].
    pub fn density(&self) -> Option<Density> {
        self.density
    }

    /// The smallest leak an automatic density must still trace, if set.
    pub fn trace_rows(&self) -> Option<usize> {
        self.trace_rows
    }

    /// ξ: a numeric mark sits in one of the `steps` lowest binary digits of
    /// the value counted in its step (1 for integers, the last decimal digit
    /// for decimals and floats, one second for timestamps, one day for dates).
    pub fn steps(&self) -> u8 {
        self.steps
    }

    /// Which code positions a marked row's cells carry (extraction reads
    /// both schemes, whatever this says).
    pub fn positions(&self) -> Positions {
        self.positions
    }

    /// The same settings with `positions`.
    pub fn with_positions(self, positions: Positions) -> Self {
        Self { positions, ..self }
    }
}

/// Builds a [`Config`]; [`ConfigBuilder::build`] checks the settings.
#[derive(Debug, Clone)]
pub struct ConfigBuilder(Config);

impl ConfigBuilder {
    /// Fixes the fraction of rows that carry marks. Default: automatic, see
    /// [`Density::auto`]; denser survives more deletion and reads longer
    /// contents from fewer rows, sparser changes fewer cells.
    pub fn density(mut self, density: Density) -> Self {
        self.0.density = Some(density);
        self
    }

    /// Makes an automatic density at least [`Density::to_trace`]`(rows)`,
    /// so that a leak of `rows` random rows is still named from the
    /// registry of issued copies. Default: unset (the density follows the
    /// table's size only, see [`Density::auto`]).
    pub fn trace_rows(mut self, rows: usize) -> Self {
        self.0.trace_rows = Some(rows);
        self
    }

    /// Lets the density be chosen per table (the default).
    pub fn auto_density(mut self) -> Self {
        self.0.density = None;
        self
    }

    /// Number of low steps a mark may sit in, 1 to 8. Default:
    /// [`Config::DEFAULT_STEPS`]. With 1, every mark is in the lowest step
    /// and randomising it erases the watermark; with 2, marks in the second
    /// step survive that, and every change is still exactly one step.
    pub fn steps(mut self, steps: u8) -> Self {
        self.0.steps = steps;
        self
    }

    /// The position scheme new marks follow. Default: [`Positions::Cell`];
    /// [`Positions::Row`] writes copies as releases before it did.
    pub fn positions(mut self, positions: Positions) -> Self {
        self.0.positions = positions;
        self
    }

    /// The checked configuration.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when `steps` is not in `1..=8`.
    pub fn build(self) -> Result<Config> {
        if !(1..=Config::MAX_STEPS).contains(&self.0.steps) {
            return Err(Error::InvalidConfig {
                setting: "steps",
                reason: format!("{}: must be 1 to {}", self.0.steps, Config::MAX_STEPS),
            });
        }
        Ok(self.0)
    }
}

/// `⌊−2·log2(s / 2^64)⌋` capped at [`MAX_LEVEL`]: twice the number of
/// leading zero bits, plus one when the bits after them fall below `1/√2`.
fn level_of(s: u64) -> u8 {
    // 2^63.5, the normalised value at which −2·log2 crosses an odd level.
    const SQRT_HALF: u64 = 0xB504_F333_F9DE_6484;
    let lz = s.leading_zeros();
    if lz >= 64 {
        return MAX_LEVEL;
    }
    let odd = u32::from((s << lz) < SQRT_HALF);
    (2 * lz + odd).min(u32::from(MAX_LEVEL)) as u8
}

/// What the row hash decided for one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    bin: u16,
    level: u8,
    step: u8,
    flags: u8,
    /// The row's secret for the positions of its cells ([`Positions::Cell`]).
    cell: u64,
}

impl Slot {
    /// The slot of a row without a usable primary key: never marked, never read.
    pub const NONE: Self = Self {
        bin: 0,
        level: u8::MAX,
        step: 0,
        flags: 0,
        cell: 0,
    };

    pub(crate) fn from_hash(h: &[u8; 32], steps: u8) -> Self {
        let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let s = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
        Self {
            level: level_of(s),
            bin: (word(8) % BINS as u32) as u16,
            step: (word(12) % u32::from(steps)) as u8,
            flags: h[16] & 0b11,
            cell: u64::from_le_bytes(h[17..25].try_into().expect("8 bytes")),
        }
    }

    /// The slot of a vote for payload bin `bin` under `mask` at the top
    /// level (a pseudo-row's cell). Every level's test reads it, and at the
    /// top one it is pooled with the fewest cell votes of real rows (one
    /// row in 32), so that a copy's cell columns, which in pseudo-row mode
    /// carry no mark, dilute it least.
    #[cfg_attr(not(feature = "arrow"), allow(dead_code))]
    pub(crate) fn carried(bin: u16, mask: bool) -> Self {
        Self {
            bin,
            level: MAX_LEVEL,
            step: 0,
            flags: u8::from(mask),
            cell: 0,
        }
    }

    /// Whether the row had a primary key at all.
    pub fn has_key(self) -> bool {
        self.level != u8::MAX
    }

    /// Whether the row carries marks at `density`.
    pub fn is_marked(self, density: Density) -> bool {
        self.has_key() && self.level >= density.level
    }

    pub(crate) fn level(self) -> u8 {
        self.level
    }

    pub(crate) fn bin(self) -> usize {
        usize::from(self.bin)
    }

    pub(crate) fn step(self) -> u32 {
        u32::from(self.step)
    }

    pub(crate) fn mask(self) -> bool {
        self.flags & 1 != 0
    }

    pub(crate) fn prefer_up(self) -> bool {
        self.flags & 2 != 0
    }

    /// The payload bin and mask of a cell of this row in group `group`
    /// (see [`Positions::Cell`]).
    #[inline]
    pub(crate) fn at_cell(self, group: u64) -> (usize, bool) {
        position::cell_position(self.cell, group, BINS)
    }
}

/// The slots of a batch of rows, computed once and shared by every column.
///
/// # How it works
///
/// which payload position, under which mask.
///
/// Every decision comes from the row hash (see [`WatermarkKey`](crate::WatermarkKey)) and nothing
/// else — not column names, not column order, not other rows — so a leaked
/// table can be renamed, reordered, filtered and shuffled and each surviving
/// row still tells the extractor where its marks are.
///
/// Layout of the 32-byte row hash:
///
/// | bytes  | use |
/// |--------|-----|
/// | 0..8   | selection value `s`; the row's *level* is `⌊−2·log2(s / 2^64)⌋`, capped at [`MAX_LEVEL`] |
/// | 8..12  | payload bin, `u32 mod` [`BINS`] |
/// | 12..16 | low step, `u32 mod steps` |
/// | 16     | bit 0: mask bit; bit 1: preferred direction of a change on ties |
/// | 17..25 | the row's cell secret: with a cell's group, its bin and mask under [`Positions::Cell`] |
///
/// A row carries marks when its level is at least the density's level, so a
/// density of `2^(-k/2)` marks the rows with `s < 2^(64 - k/2)`.
/// Because the levels nest, the extractor does not need to know the density:
/// it tallies votes per level and tries each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    slots: Vec<Slot>,
}

impl Selection {
    /// Hashes the primary key of every row, in parallel chunks.
    ///
    /// `key_of(row, encoder)` pushes the key parts of `row` into the (cleared)
    /// encoder and returns `false` when the row has no usable key; such rows
    /// are skipped by embedding and extraction.
    pub(crate) fn compute<F>(key: &WatermarkKey, steps: u8, rows: usize, key_of: F) -> Self
    where
        F: Fn(usize, &mut KeyEncoder) -> bool + Sync,
    {
        Self {
            slots: hash_rows(rows, key_of, Slot::NONE, |k| {
                Slot::from_hash(&key.row_hash(k), steps)
            }),
        }
    }

    /// The selection of these slots.
    pub(crate) fn from_slots(slots: Vec<Slot>) -> Self {
        Self { slots }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slot of each row.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Number of rows that carry marks at `density`.
    pub fn marked_rows(&self, density: Density) -> usize {
        self.slots.iter().filter(|s| s.is_marked(density)).count()
    }
}

/// `hash(encoded key)` of every row, `none` for a row without a key, in
/// parallel chunks: each row's key is encoded once, by `key_of` (see
/// [`Selection::compute`]).
pub(crate) fn hash_rows<T, F>(
    rows: usize,
    key_of: F,
    none: T,
    hash: impl Fn(&[u8]) -> T + Sync,
) -> Vec<T>
where
    T: Clone + Send,
    F: Fn(usize, &mut KeyEncoder) -> bool + Sync,
{
    let mut out = vec![none; rows];
    out.par_chunks_mut(CHUNK_ROWS)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut enc = KeyEncoder::new();
            for (i, v) in chunk.iter_mut().enumerate() {
                enc.clear();
                if key_of(c * CHUNK_ROWS + i, &mut enc) {
                    *v = hash(enc.as_bytes());
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_accepts_powers_of_two_up_to_32() {
        for n in [1, 2, 4, 8, 16, 32] {
            assert_eq!(Density::one_in(n).unwrap().rows_per_mark(), f64::from(n));
        }
        for n in [0, 3, 6, 64, 1000] {
            assert!(Density::one_in(n).is_err(), "{n}");
        }
    }

    #[test]
    fn config_rejects_zero_or_too_many_steps() {
        assert!(Config::builder().steps(0).build().is_err());
        assert!(Config::builder().steps(9).build().is_err());
        assert!(Config::builder().steps(8).build().is_ok());
    }

    #[test]
    fn levels_nest_and_match_the_density_fraction() {
        let key = WatermarkKey::new("k").unwrap();
        let sel = Selection::compute(&key, 2, 64_000, |i, e| {
            e.push(crate::KeyPart::Int(i as i128));
            true
        });
        for level in 0..=MAX_LEVEL {
            let d = Density::from_level(level).unwrap();
            let share = sel.marked_rows(d) as f64 / sel.len() as f64;
            assert!(
                (share - d.fraction()).abs() < 0.01,
                "level {level}: {share}"
            );
        }
    }
}
