//! [`TableTally`]: the named column tallies of one table (or of any part of
//! it) under one key, and their compact binary form, so that tallies made on
//! different machines (Spark executors, database shards) can be shipped,
//! merged and decoded in one place.
//!
//! # The binary form, version 1
//!
//! Every integer is an unsigned LEB128 varint unless given a width.
//!
//! ```text
//! "DBWT"              magic, 4 bytes
//! 1                   format version, 1 byte
//! scheme              the embedding scheme's version (SCHEME_VERSION)
//! fingerprint         the key's public fingerprint, 8 bytes
//! rows                rows read
//! levels, bins        the tally's shape (must be this build's)
//! columns             number of columns, then per column:
//!   name              length, then UTF-8 bytes
//!   entries           number of non-empty cells, then per cell, in
//!                     increasing cell order (cell = level × bins + bin):
//!     (gap << 3) | k  gap = cell − previous cell − 1 (the first: cell);
//!                     k = 0..=4: the counts (zeros, ones) are (1,0), (0,1),
//!                     (2,0), (1,1), (0,2); k = 7: two varints follow,
//!                     zeros then ones; 5 and 6 are invalid
//! ```
//!
//! Only cells with votes are written, so a partition's tally is about one
//! byte per row and marked column; it never holds a value of the table.

use crate::engine::Watermarker;
use crate::engine::extract::{LEVELS, Tally};
use crate::engine::key::SCHEME_VERSION;
use crate::engine::payload::BINS;
use crate::{Candidates, Found, Identification};

const MAGIC: &[u8; 4] = b"DBWT";
/// Version of the binary form written by [`TableTally::to_bytes`].
pub const TALLY_FORMAT_VERSION: u8 = 1;
/// Most columns a tally may hold.
pub const MAX_TALLY_COLUMNS: usize = 4096;
/// Longest column name in a tally, in bytes.
pub const MAX_TALLY_NAME_BYTES: usize = 1024;

/// Small vote counts `(zeros, ones)` written in the entry's low bits.
const SMALL: [[u32; 2]; 5] = [[1, 0], [0, 1], [2, 0], [1, 1], [0, 2]];
const GENERAL: u64 = 7;

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
    /// ([`Watermarker::identify`]).
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
        Ok(wm.identify(&self.tallies(), candidates))
    }

    fn tallies(&self) -> Vec<Tally> {
        self.columns.iter().map(|(_, t)| t.clone()).collect()
    }

    /// The binary form (see the [module documentation](self)); sparse:
    /// about one byte per vote.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.votes() as usize);
        out.extend_from_slice(MAGIC);
        out.push(TALLY_FORMAT_VERSION);
        put(&mut out, u64::from(SCHEME_VERSION));
        out.extend_from_slice(&self.fingerprint);
        put(&mut out, self.rows);
        put(&mut out, LEVELS as u64);
        put(&mut out, BINS as u64);
        put(&mut out, self.columns.len() as u64);
        for (name, tally) in &self.columns {
            put(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            let cells = tally.cells();
            let entries = cells.iter().filter(|c| c[0] != 0 || c[1] != 0).count();
            put(&mut out, entries as u64);
            let mut next = 0u64;
            for (cell, c) in cells.iter().enumerate() {
                if c[0] == 0 && c[1] == 0 {
                    continue;
                }
                let gap = cell as u64 - next;
                next = cell as u64 + 1;
                match SMALL.iter().position(|s| s == c) {
                    Some(k) => put(&mut out, (gap << 3) | k as u64),
                    None => {
                        put(&mut out, (gap << 3) | GENERAL);
                        put(&mut out, u64::from(c[0]));
                        put(&mut out, u64::from(c[1]));
                    }
                }
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
        if version != TALLY_FORMAT_VERSION {
            return Err(r.fail(
                4,
                format!(
                    "format version {version}; this build reads version {TALLY_FORMAT_VERSION}"
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
        let count = r.varint()?;
        if count > MAX_TALLY_COLUMNS as u64 {
            return Err(r.fail(
                r.at,
                format!("{count} columns, more than the {MAX_TALLY_COLUMNS} a tally may hold"),
            ));
        }
        let mut columns: Vec<(String, Tally)> = Vec::with_capacity(count as usize);
        let size = (LEVELS * BINS) as u64;
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
            let entries = r.varint()?;
            if entries > size {
                return Err(r.fail(
                    r.at,
                    format!("{entries} cells in column `{name}`, more than the {size} it has"),
                ));
            }
            let mut cells = vec![[0u32; 2]; LEVELS * BINS];
            let mut next = 0u64;
            for _ in 0..entries {
                let at = r.at;
                let entry = r.varint()?;
                let cell = next
                    .checked_add(entry >> 3)
                    .filter(|&c| c < size)
                    .ok_or_else(|| r.fail(at, format!("a cell past the end in column `{name}`")))?;
                let counts = match entry & 7 {
                    k @ 0..=4 => SMALL[k as usize],
                    GENERAL => {
                        let mut count = || -> Result<u32, TallyError> {
                            let at = r.at;
                            let v = r.varint()?;
                            u32::try_from(v).map_err(|_| r.fail(at, format!("a vote count of {v}")))
                        };
                        [count()?, count()?]
                    }
                    k => return Err(r.fail(at, format!("an entry of unknown kind {k}"))),
                };
                cells[cell as usize] = counts;
                next = cell + 1;
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

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
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

    fn tally(seed: u64, votes: usize) -> Tally {
        let mut cells = vec![[0u32; 2]; LEVELS * BINS];
        let mut x = seed | 1;
        for _ in 0..votes {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let cell = (x % cells.len() as u64) as usize;
            cells[cell][(x >> 40) as usize & 1] += 1 + (x >> 50) as u32 % 2;
        }
        Tally::from_cells(cells)
    }

    #[test]
    fn bytes_round_trip_exactly_with_large_counts() {
        let w = wm("k");
        let mut t = TableTally::new(&w);
        t.add("a", tally(1, 20_000));
        t.add("é", tally(2, 10));
        let mut big = vec![[0u32; 2]; LEVELS * BINS];
        big[LEVELS * BINS - 1] = [u32::MAX, 3];
        big[0] = [5, 0];
        t.add("big", Tally::from_cells(big));
        t.add_rows(u64::MAX);
        let back = TableTally::from_bytes(&t.to_bytes()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.key_fingerprint(), w.key_fingerprint());
    }

    #[test]
    fn a_ten_thousand_vote_column_takes_about_a_byte_per_vote() {
        let w = wm("k");
        let mut t = TableTally::new(&w);
        t.add("a", tally(7, 10_000));
        let n = t.to_bytes().len();
        assert!(n < 16_000, "{n} bytes");
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
        let mut v2 = good.clone();
        v2[4] = 2;
        assert!(err(&v2).contains("format version 2"));
        let mut scheme = good.clone();
        scheme[5] = 9;
        assert!(matches!(
            TableTally::from_bytes(&scheme),
            Err(TallyError::SchemeMismatch { theirs: 9, .. })
        ));
    }
}
