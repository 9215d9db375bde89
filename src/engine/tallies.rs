//! [`TableTally`]: the named column tallies of one table (or of any part of
//! it) under one key, and their compact binary form, so that tallies made on
//! different machines (Spark executors, database shards) can be shipped,
//! merged and decoded in one place.

use crate::engine::Watermarker;
use crate::engine::extract::{LAYERS, LEVELS, Tally};
use crate::engine::key::SCHEME_VERSION;
use crate::engine::payload::BINS;
use crate::engine::position::Positions;
use crate::engine::pseudo_rows::PSEUDO_ROWS;
use crate::{Candidates, Found, Identification};

const MAGIC: &[u8; 4] = b"DBWT";
/// Version of the binary form written by [`TableTally::to_bytes`].
/// Version 1 (one position scheme, [`Positions::Row`]) is still read.
pub const TALLY_FORMAT_VERSION: u8 = 2;
/// Most columns a tally may hold.
pub const MAX_TALLY_COLUMNS: usize = 4096;
/// Longest column name in a tally, in bytes.
pub const MAX_TALLY_NAME_BYTES: usize = 1024;

const EMPTY: u8 = 0;
const RICE: u8 = 1;
const DENSE: u8 = 2;
/// Largest Rice parameter written (positions are below 2 × BINS < 2^14).
const MAX_RICE_K: u8 = 20;

/// What is wrong with a tally's bytes or with merging two tallies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TallyError {
    /// The bytes are not a tally of a form this build reads.
    #[error("not a watermark tally: {reason} (at byte {at})")]
    Format {
        /// Byte offset where reading stopped.
        at: usize,
        /// What was wrong there.
        reason: String,
    },
    /// The tallies were made under different keys.
    #[error(
        "the tallies were made with different keys (fingerprints {ours} and {theirs}); \
         only tallies of the same key can be merged or decoded together"
    )]
    KeyMismatch {
        /// This tally's key fingerprint.
        ours: String,
        /// The other's.
        theirs: String,
    },
    /// The tallies were made under different embedding schemes.
    #[error(
        "the tally was made by embedding scheme v{theirs}, this build reads v{ours}; \
         tally with a build of the same scheme"
    )]
    SchemeMismatch {
        /// This build's scheme version.
        ours: u32,
        /// The tally's.
        theirs: u32,
    },
    /// Too many columns to merge into one tally.
    #[error("a tally holds at most {max} columns")]
    TooManyColumns {
        /// The limit, [`MAX_TALLY_COLUMNS`].
        max: usize,
    },
}

impl TallyError {
    fn in_place(self, place: &str) -> Self {
        match self {
            Self::Format { at, reason } => Self::Format {
                at,
                reason: format!("{place}: {reason}"),
            },
            other => other,
        }
    }
}

/// The vote tallies of a table's marked columns, by column name, under one
/// key: what extraction reads from a table before decoding, in a form that
/// merges across any partitioning of the rows and travels as bytes.
///
/// Merging the tallies of the parts of a table (read with the same plan)
/// gives exactly the tally of the whole, so the decoded watermarks and
/// candidate scores are the same.
///
/// ```
/// use dbwatermark::{Config, TableTally, Tally, WatermarkKey, Watermarker};
///
/// let wm = Watermarker::new(WatermarkKey::new("secret")?, Config::default());
/// let mut a = TableTally::new(&wm);
/// a.add("price", Tally::new());
/// let bytes = a.to_bytes();
/// let mut b = TableTally::from_bytes(&bytes)?;
/// assert_eq!(a, b);
/// b.merge(&a)?;
/// assert_eq!(b.columns()[0].0, "price");
///
/// let other = Watermarker::new(WatermarkKey::new("another")?, Config::default());
/// assert!(b.merge(&TableTally::new(&other)).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # The binary form, version 2
///
/// Every integer is an unsigned LEB128 varint unless given a width.
///
/// ```text
/// "DBWT"              magic, 4 bytes
/// 2                   format version, 1 byte
/// scheme              the key schedule's version (SCHEME_VERSION)
/// fingerprint         the key's public fingerprint, 8 bytes
/// rows                rows read
/// levels, bins        the tally's shape (must be this build's)
/// positions           number of position schemes tallied: 2
/// columns             number of columns, then per column:
///   name              length, then UTF-8 bytes
///   per position scheme (Row, then Cell: see Positions), per level
///   (LEVELS of them), a mode byte and its cells:
///     0               no votes at this level
///     1               votes, Rice-coded: the number of votes n, the Rice
///                     parameter k (1 byte, 0..=20), then the votes' positions
///                     (bin × 2 + bit read, sorted, a position once per vote)
///                     as gaps from the previous position (the first from 0):
///                     gap >> k in unary (that many 1 bits, then a 0), then
///                     the k low bits, most significant first; bits fill each
///                     byte from its high bit, the last byte padded with 0
///     2               dense: per bin, the counts of 0 and 1 votes
/// ```
///
/// Version 1, written by releases before [`Positions::Cell`], is the same
/// without the `positions` field and with the levels of [`Positions::Row`]
/// only; it is read as a tally whose cell positions hold no votes.
///
/// A partition's votes take about a byte per row and marked column
/// (a 10,000-row partition, about 5 KB a column); a merged tally of a large
/// table at most two varints per cell. It never holds a value of the table.
#[derive(Clone, PartialEq, Eq)]
pub struct TableTally {
    fingerprint: [u8; 8],
    rows: u64,
    columns: Vec<(String, Tally)>,
}

impl std::fmt::Debug for TableTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableTally")
            .field("key_fingerprint", &self.key_fingerprint())
            .field("rows", &self.rows)
            .field(
                "columns",
                &self
                    .columns
                    .iter()
                    .map(|(n, t)| (n.as_str(), t.votes()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TableTally {
    /// An empty tally for `wm`'s key.
    pub fn new(wm: &Watermarker) -> Self {
        Self {
            fingerprint: wm.key.fingerprint_bytes(),
            rows: 0,
            columns: Vec::new(),
        }
    }

    /// Rows read into the tally.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Counts `rows` more rows read.
    pub fn add_rows(&mut self, rows: u64) {
        self.rows = self.rows.saturating_add(rows);
    }

    /// The public fingerprint of the key the tally was made with
    /// ([`WatermarkKey::fingerprint`](crate::WatermarkKey::fingerprint)).
    pub fn key_fingerprint(&self) -> String {
        crate::engine::key::hex(&self.fingerprint)
    }

    /// The columns, in the order they were first added.
    pub fn columns(&self) -> &[(String, Tally)] {
        &self.columns
    }

    /// Total votes over all columns.
    pub fn votes(&self) -> u64 {
        self.columns.iter().map(|(_, t)| t.votes()).sum()
    }

    /// Adds the votes of column `name` (merged into the column of that name
    /// if there is one).
    pub fn add(&mut self, name: &str, tally: Tally) {
        match self.columns.iter_mut().find(|(n, _)| n == name) {
            Some((_, t)) => t.merge(&tally),
            None => self.columns.push((name.to_owned(), tally)),
        }
    }

    /// Adds `other`'s votes, column by column by name (columns it alone has
    /// are appended in its order).
    ///
    /// # Errors
    ///
    /// [`TallyError::KeyMismatch`] when `other` was made with another key
    /// (nothing is merged), [`TallyError::TooManyColumns`] past
    /// [`MAX_TALLY_COLUMNS`].
    pub fn merge(&mut self, other: &TableTally) -> Result<&mut Self, TallyError> {
        if self.fingerprint != other.fingerprint {
            return Err(TallyError::KeyMismatch {
                ours: self.key_fingerprint(),
                theirs: other.key_fingerprint(),
            });
        }
        let new = other
            .columns
            .iter()
            .filter(|(n, _)| !self.columns.iter().any(|(m, _)| m == n))
            .count();
        if self.columns.len() + new > MAX_TALLY_COLUMNS {
            return Err(TallyError::TooManyColumns {
                max: MAX_TALLY_COLUMNS,
            });
        }
        for (name, t) in &other.columns {
            self.add(name, t.clone());
        }
        self.add_rows(other.rows);
        Ok(self)
    }

    /// Checks that this tally was made with `wm`'s key.
    ///
    /// # Errors
    ///
    /// [`TallyError::KeyMismatch`].
    pub fn check_key(&self, wm: &Watermarker) -> Result<(), TallyError> {
        let ours = wm.key.fingerprint_bytes();
        if self.fingerprint == ours {
            Ok(())
        } else {
            Err(TallyError::KeyMismatch {
                ours: crate::engine::key::hex(&ours),
                theirs: self.key_fingerprint(),
            })
        }
    }

    /// The watermarks the tally carries ([`Watermarker::decode`] of its
    /// columns; [`Found::columns`] index [`TableTally::columns`]).
    ///
    /// # Errors
    ///
    /// [`TallyError::KeyMismatch`] when `wm` has another key.
    pub fn decode(&self, wm: &Watermarker) -> Result<Vec<Found>, TallyError> {
        self.check_key(wm)?;
        Ok(wm.decode(&self.tallies()))
    }

    /// The test of the tally against the issued copies
    /// ([`Watermarker::identify`]). When the table holds pseudo-rows (a
    /// column named [`PSEUDO_ROWS`], which extraction adds only when more
    /// rows were recognised than chance gives), their votes are tested
    /// alone: in a pseudo-row copy no real cell carries a mark, and the
    /// cells' votes would only dilute theirs. Whether they are present
    /// comes from the rows' tags, never from the votes, so the choice does
    /// not bias the test.
    ///
    /// # Errors
    ///
    /// [`TallyError::KeyMismatch`] when `wm` has another key.
    pub fn identify(
        &self,
        wm: &Watermarker,
        candidates: &Candidates,
    ) -> Result<Identification, TallyError> {
        self.check_key(wm)?;
        let tallies = match self.columns.iter().find(|(name, _)| name == PSEUDO_ROWS) {
            Some((_, rows)) => vec![rows.clone()],
            None => self.tallies(),
        };
        Ok(wm.identify(&tallies, candidates))
    }

    fn tallies(&self) -> Vec<Tally> {
        self.columns.iter().map(|(_, t)| t.clone()).collect()
    }

    /// The binary form (see [`TableTally`], *The binary form*): about half
    /// a byte per vote for a partition, at most two varints per cell.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.votes() as usize);
        out.extend_from_slice(MAGIC);
        out.push(TALLY_FORMAT_VERSION);
        put(&mut out, u64::from(SCHEME_VERSION));
        out.extend_from_slice(&self.fingerprint);
        put(&mut out, self.rows);
        put(&mut out, LEVELS as u64);
        put(&mut out, BINS as u64);
        put(&mut out, Positions::ALL.len() as u64);
        put(&mut out, self.columns.len() as u64);
        for (name, tally) in &self.columns {
            put(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            for level in tally.cells().chunks(BINS) {
                put_level(&mut out, level);
            }
        }
        out
    }

    /// Reads the binary form written by [`TableTally::to_bytes`].
    ///
    /// # Errors
    ///
    /// [`TallyError::Format`] naming the byte where the input stops being a
    /// tally (wrong magic, unknown version, another tally shape, a count
    /// out of range, truncation, trailing bytes, a repeated column);
    /// [`TallyError::SchemeMismatch`] for a tally of another scheme. Never
    /// panics, whatever the bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TallyError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(4)? != MAGIC {
            return Err(r.fail(0, "it does not start with `DBWT`"));
        }
        let version = r.take(1)?[0];
        if !(1..=TALLY_FORMAT_VERSION).contains(&version) {
            return Err(r.fail(
                4,
                format!(
                    "format version {version}; this build reads versions 1 to {TALLY_FORMAT_VERSION}"
                ),
            ));
        }
        let scheme = r.varint()?;
        if scheme != u64::from(SCHEME_VERSION) {
            return Err(TallyError::SchemeMismatch {
                ours: SCHEME_VERSION,
                theirs: u32::try_from(scheme).unwrap_or(u32::MAX),
            });
        }
        let fingerprint: [u8; 8] = r.take(8)?.try_into().expect("took 8 bytes");
        let rows = r.varint()?;
        let (levels, bins) = (r.varint()?, r.varint()?);
        if (levels, bins) != (LEVELS as u64, BINS as u64) {
            return Err(r.fail(
                r.at,
                format!(
                    "{levels} levels of {bins} bins; this build tallies {LEVELS} levels of {BINS}"
                ),
            ));
        }
        // Version 1 tallied the row positions only.
        let layers = if version == 1 {
            LEVELS
        } else {
            let at = r.at;
            let schemes = r.varint()?;
            if schemes != Positions::ALL.len() as u64 {
                return Err(r.fail(
                    at,
                    format!(
                        "{schemes} position schemes; this build tallies {}",
                        Positions::ALL.len()
                    ),
                ));
            }
            LAYERS
        };
        let count = r.varint()?;
        if count > MAX_TALLY_COLUMNS as u64 {
            return Err(r.fail(
                r.at,
                format!("{count} columns, more than the {MAX_TALLY_COLUMNS} a tally may hold"),
            ));
        }
        let mut columns: Vec<(String, Tally)> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let start = r.at;
            let len = r.varint()?;
            if len > MAX_TALLY_NAME_BYTES as u64 {
                return Err(r.fail(
                    start,
                    format!("a column name of {len} bytes (at most {MAX_TALLY_NAME_BYTES})"),
                ));
            }
            let name = std::str::from_utf8(r.take(len as usize)?)
                .map_err(|_| r.fail(start, "a column name that is not UTF-8"))?
                .to_owned();
            if columns.iter().any(|(n, _)| *n == name) {
                return Err(r.fail(start, format!("column `{name}` appears twice")));
            }
            let mut cells = vec![[0u32; 2]; LAYERS * BINS];
            for (layer, bins) in cells.chunks_mut(BINS).take(layers).enumerate() {
                let (scheme, level) = (layer / LEVELS + 1, layer % LEVELS);
                r.level(bins).map_err(|e| {
                    e.in_place(&format!("column `{name}`, scheme {scheme}, level {level}"))
                })?;
            }
            columns.push((name, Tally::from_cells(cells)));
        }
        if r.at != bytes.len() {
            return Err(r.fail(
                r.at,
                format!("{} bytes after the tally's end", bytes.len() - r.at),
            ));
        }
        Ok(Self {
            fingerprint,
            rows,
            columns,
        })
    }
}

/// Writes one level's bins, as votes or dense counts, whichever is smaller.
fn put_level(out: &mut Vec<u8>, bins: &[[u32; 2]]) {
    let votes: u64 = bins.iter().map(|c| u64::from(c[0]) + u64::from(c[1])).sum();
    if votes == 0 {
        out.push(EMPTY);
        return;
    }
    let dense: u64 = bins
        .iter()
        .map(|c| varint_len(c[0]) + varint_len(c[1]))
        .sum();
    // Each Rice-coded vote takes at least k + 1 bits: try every k on the gaps.
    let gaps = || {
        let mut prev = 0u64;
        bins.iter()
            .enumerate()
            .flat_map(move |(bin, c)| {
                (0..2u64).flat_map(move |bit| {
                    std::iter::repeat_n(bin as u64 * 2 + bit, c[bit as usize] as usize)
                })
            })
            .map(move |p| {
                let g = p - prev;
                prev = p;
                g
            })
    };
    let rice_bits = |k: u8| gaps().map(|g| (g >> k) + 1 + u64::from(k)).sum::<u64>();
    let best = if votes > dense {
        None
    } else {
        (0..=MAX_RICE_K)
            .map(|k| (rice_bits(k), k))
            .min()
            .filter(|&(bits, _)| bits.div_ceil(8) + 11 < dense)
    };
    match best {
        Some((_, k)) => {
            out.push(RICE);
            put(out, votes);
            out.push(k);
            let mut w = BitWriter::new(out);
            for g in gaps() {
                for _ in 0..g >> k {
                    w.bit(true);
                }
                w.bit(false);
                for b in (0..k).rev() {
                    w.bit((g >> b) & 1 == 1);
                }
            }
            w.finish();
        }
        None => {
            out.push(DENSE);
            for c in bins {
                put(out, u64::from(c[0]));
                put(out, u64::from(c[1]));
            }
        }
    }
}

fn varint_len(v: u32) -> u64 {
    u64::from((32 - v.leading_zeros()).max(1).div_ceil(7))
}

/// Bits into bytes, high bit first.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    byte: u8,
    used: u8,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            byte: 0,
            used: 0,
        }
    }

    fn bit(&mut self, one: bool) {
        self.byte = (self.byte << 1) | u8::from(one);
        self.used += 1;
        if self.used == 8 {
            self.out.push(self.byte);
            (self.byte, self.used) = (0, 0);
        }
    }

    fn finish(self) {
        if self.used > 0 {
            self.out.push(self.byte << (8 - self.used));
        }
    }
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bits of bytes, high bit first.
struct BitReader<'a> {
    bytes: &'a [u8],
    /// Bits read.
    at: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.at / 8)?;
        let bit = byte >> (7 - self.at % 8) & 1 == 1;
        self.at += 1;
        Some(bit)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn fail(&self, at: usize, reason: impl Into<String>) -> TallyError {
        TallyError::Format {
            at,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TallyError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| self.fail(self.bytes.len(), "it ends early"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    /// Reads one level's bins (see [`put_level`]).
    fn level(&mut self, bins: &mut [[u32; 2]]) -> Result<(), TallyError> {
        let at = self.at;
        match self.take(1)?[0] {
            EMPTY => Ok(()),
            DENSE => {
                for c in bins.iter_mut() {
                    for count in c.iter_mut() {
                        let at = self.at;
                        let v = self.varint()?;
                        *count = u32::try_from(v)
                            .map_err(|_| self.fail(at, format!("a vote count of {v}")))?;
                    }
                }
                Ok(())
            }
            RICE => {
                let votes = self.varint()?;
                let k = self.take(1)?[0];
                if k > MAX_RICE_K {
                    return Err(self.fail(self.at - 1, format!("Rice parameter {k}")));
                }
                // Every vote takes at least k + 1 bits of what is left.
                let left = (self.bytes.len() - self.at) as u64 * 8;
                if votes > left / (u64::from(k) + 1) {
                    return Err(self.fail(self.bytes.len(), "it ends early"));
                }
                let size = bins.len() as u64 * 2;
                let mut bits = BitReader {
                    bytes: &self.bytes[self.at..],
                    at: 0,
                };
                let mut p = 0u64;
                for _ in 0..votes {
                    let mut q = 0u64;
                    while bits
                        .bit()
                        .ok_or_else(|| self.fail(self.bytes.len(), "it ends early"))?
                    {
                        q += 1;
                        if q >= size {
                            return Err(
                                self.fail(self.at + bits.at / 8, "a vote past the last bin")
                            );
                        }
                    }
                    let mut low = 0u64;
                    for _ in 0..k {
                        let b = bits
                            .bit()
                            .ok_or_else(|| self.fail(self.bytes.len(), "it ends early"))?;
                        low = (low << 1) | u64::from(b);
                    }
                    p += (q << k) | low;
                    if p >= size {
                        return Err(self.fail(self.at + bits.at / 8, "a vote past the last bin"));
                    }
                    let c = &mut bins[(p / 2) as usize][(p % 2) as usize];
                    *c = c.saturating_add(1);
                }
                self.at += bits.at.div_ceil(8);
                Ok(())
            }
            mode => Err(self.fail(at, format!("an unknown level mode {mode}"))),
        }
    }

    fn varint(&mut self) -> Result<u64, TallyError> {
        let start = self.at;
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            let low = u64::from(b & 0x7f);
            if shift == 63 && low > 1 {
                break;
            }
            v |= low << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.fail(start, "a number longer than 64 bits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, WatermarkKey};

    fn wm(secret: &str) -> Watermarker {
        Watermarker::new(WatermarkKey::new(secret).unwrap(), Config::default())
    }

    /// `votes` random cells, each one or two votes under each position
    /// scheme, as a column's cells vote: at the row's position and at the
    /// cell's own, in the same level.
    fn tally(seed: u64, votes: usize) -> Tally {
        let mut cells = vec![[0u32; 2]; LAYERS * BINS];
        let mut x = seed | 1;
        let half = (LEVELS * BINS) as u64;
        for _ in 0..votes {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (bit, n) = ((x >> 40) as usize & 1, 1 + (x >> 50) as u32 % 2);
            // At the row's position, and at the cell's own in the same level.
            let row = x % half;
            let cell = half + row / BINS as u64 * BINS as u64 + (x >> 20) % BINS as u64;
            cells[row as usize][bit] += n;
            cells[cell as usize][bit ^ (x >> 60) as usize & 1] += n;
        }
        Tally::from_cells(cells)
    }

    #[test]
    fn bytes_round_trip_exactly_with_large_counts() {
        let w = wm("k");
        let mut t = TableTally::new(&w);
        t.add("a", tally(1, 20_000));
        t.add("é", tally(2, 10));
        let mut big = vec![[0u32; 2]; LAYERS * BINS];
        big[LAYERS * BINS - 1] = [u32::MAX, 3];
        big[0] = [5, 0];
        t.add("big", Tally::from_cells(big));
        t.add_rows(u64::MAX);
        let back = TableTally::from_bytes(&t.to_bytes()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.key_fingerprint(), w.key_fingerprint());
    }

    #[test]
    fn a_ten_thousand_vote_column_takes_about_half_a_byte_per_vote() {
        let w = wm("k");
        let mut t = TableTally::new(&w);
        t.add("a", tally(7, 10_000));
        // 10,000 cells of one or two votes under each scheme: about 30,000.
        let votes = t.votes();
        let n = t.to_bytes().len() as u64;
        assert!(n * 5 < votes * 3, "{n} bytes for {votes} votes");
    }

    #[test]
    fn version_1_bytes_read_as_row_position_votes() {
        let w = wm("k");
        let mut cells = vec![[0u32; 2]; LAYERS * BINS];
        cells[3] = [2, 1];
        cells[(LEVELS - 1) * BINS + 7] = [0, 4];
        let mut t = TableTally::new(&w);
        t.add("a", Tally::from_cells(cells));
        t.add_rows(9);
        // Version 1 is version 2 without the positions count and without
        // the cell-position levels (all empty here, one byte each).
        let v2 = t.to_bytes();
        let header = 4 + 1 + 1 + 8 + 1 + 1 + 2;
        assert_eq!(v2[header], 2, "the positions count");
        let mut v1 = v2[..header].to_vec();
        v1[4] = 1;
        v1.extend_from_slice(&v2[header + 1..v2.len() - LEVELS]);
        assert!(v2[v2.len() - LEVELS..].iter().all(|&b| b == EMPTY));
        assert_eq!(TableTally::from_bytes(&v1).unwrap(), t);
        v1[4] = 3;
        let err = TableTally::from_bytes(&v1).unwrap_err().to_string();
        assert!(
            err.contains("format version 3; this build reads versions 1 to 2"),
            "{err}"
        );
    }

    #[test]
    fn tallies_of_different_keys_do_not_merge() {
        let mut a = TableTally::new(&wm("one"));
        a.add("x", tally(3, 100));
        let before = a.clone();
        let err = a.merge(&TableTally::new(&wm("two"))).unwrap_err();
        assert!(matches!(err, TallyError::KeyMismatch { .. }), "{err}");
        assert!(err.to_string().contains("different keys"));
        assert_eq!(a, before);
        assert!(a.decode(&wm("two")).is_err());
    }

    #[test]
    fn merging_is_by_column_name() {
        let w = wm("k");
        let (x, y) = (tally(4, 50), tally(5, 60));
        let mut a = TableTally::new(&w);
        a.add("x", x.clone());
        let mut b = TableTally::new(&w);
        b.add("y", y.clone());
        b.add("x", x.clone());
        a.merge(&b).unwrap();
        let mut xx = x.clone();
        xx.merge(&x);
        assert_eq!(a.columns(), [("x".to_owned(), xx), ("y".to_owned(), y)]);
    }

    #[test]
    fn bad_bytes_are_refused_with_the_place() {
        let w = wm("k");
        let mut t = TableTally::new(&w);
        t.add("a", tally(9, 100));
        let good = t.to_bytes();
        let err = |b: &[u8]| TableTally::from_bytes(b).unwrap_err().to_string();
        assert!(err(b"DB").contains("ends early"));
        assert!(err(b"PAR1").contains("`DBWT`"));
        assert!(err(b"PAR1xxxxxxxxxxxxxxxxxx").contains("`DBWT`"));
        assert!(err(&good[..good.len() - 1]).contains("ends early"));
        let mut longer = good.clone();
        longer.push(0);
        assert!(err(&longer).contains("1 bytes after"));
        let mut v3 = good.clone();
        v3[4] = 3;
        assert!(err(&v3).contains("format version 3"));
        let mut scheme = good.clone();
        scheme[5] = 9;
        assert!(matches!(
            TableTally::from_bytes(&scheme),
            Err(TallyError::SchemeMismatch { theirs: 9, .. })
        ));
    }
}
