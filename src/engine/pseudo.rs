//! Pseudo-columns: a column added to the copy whose every value is a keyed
//! function of the row's key and one payload bit, so that no real cell
//! changes.
//!
//! For a row with key encoding `k`, `h = HMAC(k_pseudo, k)` gives two
//! 64-bit numbers `x` and `y`; the cell holds the formatted `x` when the
//! row's bit (the payload bit of its bin, under its mask, as for marked
//! cells) is 0 and the formatted `x ⊕ y` when it is 1. Without the key the
//! values are uniformly distributed codes; with it, the extractor computes
//! both candidates for each row and reads the bit from the one the cell
//! holds. A value that is neither (a column that is not a pseudo-column,
//! an edited cell) gives no vote: the chance that a random value matches
//! is 2 in 9·10⁷ for a code, 2 in 2⁴⁰ for a token.

use crate::engine::key::{KeyEncoder, WatermarkKey};
use crate::engine::select::{Selection, Slot, hash_rows};

/// How a pseudo-column's values look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PseudoFormat {
    /// An 8-digit integer code, 10000000 to 99999999 (a reference number).
    Code,
    /// An 8-character token of Crockford base-32 (`0-9`, `A-Z` without `I`,
    /// `L`, `O`, `U`), such as `K7Q2M9XD`.
    Token,
}

impl PseudoFormat {
    /// Every format, with its name.
    pub const ALL: [(&'static str, PseudoFormat); 2] =
        [("code", PseudoFormat::Code), ("token", PseudoFormat::Token)];

    /// The format named `name` (`code` or `token`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("code", |(n, _)| n)
    }
}

/// The plan fingerprint of a copy whose mark is in pseudo-column `name` of
/// `format` (16 hex digits, as [`ColumnPlan::fingerprint`](crate::ColumnPlan::fingerprint)).
pub fn pseudo_column_fingerprint(name: &str, format: PseudoFormat) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"dbwm-pseudo-column-v1\n");
    h.update(name.as_bytes());
    h.update(b"\x1f");
    h.update(format.name().as_bytes());
    crate::engine::key::hex(&h.finalize()[..8])
}

/// The integer code of `v`.
pub(crate) fn code_of(v: u64) -> i64 {
    10_000_000 + (v % 90_000_000) as i64
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The token of `v` (its low 40 bits).
pub(crate) fn token_of(v: u64) -> String {
    (0..8)
        .rev()
        .map(|i| char::from(CROCKFORD[((v >> (5 * i)) & 31) as usize]))
        .collect()
}

/// The two values each row's pseudo-column cell may hold, for bit 0 and
/// bit 1 (`None` for a row without a key), before formatting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PseudoPairs {
    pub(crate) pairs: Vec<Option<[u64; 2]>>,
}

impl PseudoPairs {
    /// The rows' selection and pseudo-column values, each row's key
    /// encoded once (two keyed hashes of it).
    pub(crate) fn compute<F>(
        key: &WatermarkKey,
        steps: u8,
        rows: usize,
        key_of: F,
    ) -> (Selection, Self)
    where
        F: Fn(usize, &mut KeyEncoder) -> bool + Sync,
    {
        let both = hash_rows(rows, key_of, (Slot::NONE, None), |k| {
            let h = key.pseudo_hash(k);
            let word = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"));
            let (x, y) = (word(0), word(8) | 1);
            (Slot::from_hash(&key.row_hash(k), steps), Some([x, x ^ y]))
        });
        let (slots, pairs) = both.into_iter().unzip();
        (Selection::from_slots(slots), Self { pairs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_tokens_have_their_fixed_shape() {
        for v in [0, 1, u64::MAX, 0x1234_5678_9abc_def0] {
            let c = code_of(v);
            assert!((10_000_000..=99_999_999).contains(&c), "{c}");
            let t = token_of(v);
            assert_eq!(t.len(), 8);
            assert!(t.bytes().all(|b| CROCKFORD.contains(&b)), "{t}");
        }
        assert_eq!(token_of(0), "00000000");
        assert_eq!(PseudoFormat::parse("token"), Some(PseudoFormat::Token));
        assert_eq!(PseudoFormat::Code.name(), "code");
        assert_eq!(PseudoFormat::parse("uuid"), None);
    }
}
