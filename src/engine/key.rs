//! Key schedule and canonical primary-key encoding.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::engine::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// Version of the embedding scheme; part of every key derivation.
pub const SCHEME_VERSION: u32 = 1;

/// A prepared watermark key.
///
/// Any non-empty UTF-8 string is accepted. The key is the only secret of the
/// scheme: anyone holding it can find, read and strip the marks, so treat it
/// like a password. Short or guessable keys are weak — an attacker who can try
/// keys offline against a leaked table will find a dictionary word; use 16 or
/// more random characters.
///
/// `Debug` never prints key material.
///
/// ```
/// use dbwatermark::WatermarkKey;
/// let key = WatermarkKey::new("a long random secret")?;
/// assert_eq!(format!("{key:?}"), "WatermarkKey { .. }");
/// assert!(WatermarkKey::new("").is_err());
/// # Ok::<(), dbwatermark::Error>(())
/// ```
///
/// # How it works
///
/// A [`WatermarkKey`] is derived once from the caller's secret:
///
/// ```text
/// k_row = HMAC-SHA256(secret, "dbwatermark/v1/row")
/// k_tag = HMAC-SHA256(secret, "dbwatermark/v1/tag")
/// ```
///
/// and each HMAC state keyed with them is prepared once and cloned per row.
/// The scheme version (`v1`) is part of the derivation, so a later scheme gets
/// independent positions and tags and an old table can still be read by the
/// old scheme.
///
/// The row hash is `HMAC-SHA256(k_row, canonical(primary key))`, where the
/// canonical encoding of a key with parts `p1 … pn` is
/// `len(c1) ‖ c1 ‖ … ‖ len(cn) ‖ cn` with `ci` the canonical text of part `i`
/// and `len` its byte length as a little-endian `u32`. Canonical text makes the
/// same logical value hash the same whatever format it arrived in:
///
/// * integers are written in decimal without leading zeros (`-0` is `0`);
/// * decimals and floats are written in plain decimal notation without
///   exponent, leading zeros or trailing fractional zeros (`1.50` → `1.5`,
///   `2.0` → `2`, `1e3` → `1000`);
/// * strings have surrounding ASCII whitespace removed; a string that then
///   reads as a number (`"42"`, `"+0042"`, `"1.50"`) is written as that
///   number, anything else is kept byte for byte;
/// * raw bytes are kept byte for byte.
#[derive(Clone)]
pub struct WatermarkKey {
    row: HmacSha256,
    tag: HmacSha256,
    #[cfg_attr(not(feature = "arrow"), allow(dead_code))]
    pseudo: HmacSha256,
    #[cfg_attr(not(feature = "arrow"), allow(dead_code))]
    pseudo_rows: HmacSha256,
    fingerprint: [u8; 8],
}

impl std::fmt::Debug for WatermarkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatermarkKey { .. }")
    }
}

impl WatermarkKey {
    /// Derives the per-purpose keys from `secret`.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyKey`] when `secret` is empty.
    pub fn new(secret: &str) -> Result<Self> {
        if secret.is_empty() {
            return Err(Error::EmptyKey);
        }
        let derive = |purpose: &str| -> [u8; 32] {
            let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
                .expect("HMAC accepts keys of any length");
            mac.update(format!("dbwatermark/v{SCHEME_VERSION}/{purpose}").as_bytes());
            mac.finalize().into_bytes().into()
        };
        let prepared =
            |k: [u8; 32]| HmacSha256::new_from_slice(&k).expect("HMAC accepts keys of any length");
        let fp = derive("fingerprint");
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&fp[..8]);
        Ok(Self {
            row: prepared(derive("row")),
            tag: prepared(derive("tag")),
            pseudo: prepared(derive("pseudo-column")),
            pseudo_rows: prepared(derive("pseudo-rows")),
            fingerprint,
        })
    }

    /// A public, non-secret identifier of the key: 16 hex digits of a keyed
    /// hash that cannot be turned back into the key. Use it to record which
    /// key a copy was issued with.
    pub fn fingerprint(&self) -> String {
        hex(&self.fingerprint)
    }

    /// The fingerprint's bytes.
    pub(crate) fn fingerprint_bytes(&self) -> [u8; 8] {
        self.fingerprint
    }

    /// The keyed row hash of an already encoded primary key.
    pub(crate) fn row_hash(&self, encoded_key: &[u8]) -> [u8; 32] {
        let mut mac = self.row.clone();
        mac.update(encoded_key);
        mac.finalize().into_bytes().into()
    }

    /// The keyed hash of an already encoded primary key that a
    /// pseudo-column's values come from (a key of its own, so it says
    /// nothing of the row hash).
    #[cfg_attr(not(feature = "arrow"), allow(dead_code))]
    pub(crate) fn pseudo_hash(&self, encoded_key: &[u8]) -> [u8; 32] {
        let mut mac = self.pseudo.clone();
        mac.update(encoded_key);
        mac.finalize().into_bytes().into()
    }

    /// The keyed hash of an already encoded primary key that a
    /// pseudo-row's cells are checked against, and that places
    /// fabricated rows (a key of its own).
    #[cfg_attr(not(feature = "arrow"), allow(dead_code))]
    pub(crate) fn pseudo_row_hash(&self, encoded_key: &[u8]) -> [u8; 32] {
        let mut mac = self.pseudo_rows.clone();
        mac.update(encoded_key);
        mac.finalize().into_bytes().into()
    }

    /// The 64-bit check tag of a payload frame header and content.
    pub(crate) fn tag(&self, header: u8, content: &[u8]) -> u64 {
        let mut mac = self.tag.clone();
        mac.update(&[header]);
        mac.update(content);
        let out = mac.finalize().into_bytes();
        u64::from_be_bytes(out[..8].try_into().expect("SHA-256 output is 32 bytes"))
    }

    /// The keystream that whitens the content bits of a frame with check tag
    /// `tag`: `HMAC-SHA256(k_tag, 0xFF ‖ tag ‖ i)` for blocks `i = 0, 1`.
    /// (A tag's input starts with a header byte below 64, so the two uses of
    /// `k_tag` never see the same input.)
    pub(crate) fn content_keystream(&self, tag: u64) -> [u8; 64] {
        let mut out = [0u8; 64];
        for (i, block) in out.chunks_mut(32).enumerate() {
            let mut mac = self.tag.clone();
            mac.update(&[0xFF]);
            mac.update(&tag.to_be_bytes());
            mac.update(&[i as u8]);
            block.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }
}

/// One part of a (possibly composite) primary key, borrowed from the caller.
///
/// Parts that denote the same logical value encode identically:
/// `KeyPart::Int(42)`, `KeyPart::Str("42")`, `KeyPart::Float(42.0)` and
/// `KeyPart::Decimal { mantissa: 4200, scale: 2 }` all hash the same; so do
/// `KeyPart::Instant` of an instant and the text of that instant in its
/// usual spellings, so a key holding a date or a time reads back whether
/// the copy at hand types it (Parquet, a database) or writes it (CSV).
///
/// ```
/// use dbwatermark::{KeyEncoder, KeyPart};
/// let encode = |part| {
///     let mut e = KeyEncoder::new();
///     e.push(part);
///     e.as_bytes().to_vec()
/// };
/// let five_am = 1_357_016_400_000_000; // 2013-01-01 05:00:00 UTC, in µs
/// assert_eq!(encode(KeyPart::Instant(five_am)), encode(KeyPart::Str("2013-01-01 05:00:00")));
/// assert_eq!(encode(KeyPart::Instant(five_am)), encode(KeyPart::Str("2013-01-01T05:00:00Z")));
/// assert_eq!(encode(KeyPart::Str("42")), encode(KeyPart::Decimal { mantissa: 4200, scale: 2 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyPart<'a> {
    /// A signed integer of any width.
    Int(i128),
    /// An unsigned integer of any width.
    UInt(u128),
    /// A decimal `mantissa × 10^-scale`.
    Decimal {
        /// The unscaled value.
        mantissa: i128,
        /// Number of fractional digits (negative scales multiply).
        scale: i8,
    },
    /// A 64-bit float, encoded by its shortest round-trip decimal text.
    Float(f64),
    /// A 32-bit float, encoded by its shortest round-trip decimal text.
    Float32(f32),
    /// A date or a time: microseconds since 1970-01-01 00:00 UTC (a date
    /// is its midnight). Encodes as the `Int` of that count.
    Instant(i64),
    /// Text; numeric text is canonicalised as a number, and a date or a
    /// time (`YYYY-MM-DD`, with ` ` or `T` and `HH:MM[:SS[.f]]`, optionally
    /// `Z` or `+00:00`) as its [`KeyPart::Instant`].
    Str(&'a str),
    /// Raw bytes, kept as they are.
    Bytes(&'a [u8]),
}

/// Reusable buffer that builds the canonical encoding of one primary key.
///
/// Adapters receive one per worker and call [`KeyEncoder::push`] once per key
/// column; the buffer is reused from row to row, so encoding does not
/// allocate on the hot path.
#[derive(Debug, Default)]
pub struct KeyEncoder {
    buf: Vec<u8>,
    legacy_time_keys: bool,
}

impl KeyEncoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a new key, forgetting the parts of the previous one.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The encoding built so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Whether dates and times are encoded as builds before December 2026
    /// encoded them: text as its text, not as the instant it spells (and,
    /// in the adapters, a typed date or time as the count of its own unit:
    /// days, seconds, …, nanoseconds). Only for reading copies made then.
    pub fn set_legacy_time_keys(&mut self, legacy: bool) {
        self.legacy_time_keys = legacy;
    }

    /// See [`KeyEncoder::set_legacy_time_keys`].
    pub fn legacy_time_keys(&self) -> bool {
        self.legacy_time_keys
    }

    /// Appends one key part, length-prefixed.
    pub fn push(&mut self, part: KeyPart<'_>) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        match part {
            KeyPart::Int(v) => write_int(&mut self.buf, v < 0, v.unsigned_abs()),
            KeyPart::UInt(v) => write_int(&mut self.buf, false, v),
            KeyPart::Decimal { mantissa, scale } => {
                let mut digits = Digits::new();
                digits.push_u128(mantissa.unsigned_abs());
                digits.write_canonical(&mut self.buf, mantissa < 0, -i32::from(scale));
            }
            KeyPart::Float(v) => write_float(&mut self.buf, v),
            KeyPart::Float32(v) => write_float(&mut self.buf, v),
            KeyPart::Instant(micros) => {
                write_int(&mut self.buf, micros < 0, u128::from(micros.unsigned_abs()));
            }
            KeyPart::Str(s) => {
                let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
                if !write_numeric_literal(&mut self.buf, t.as_bytes()) {
                    match crate::timefmt::text_micros(t).filter(|_| !self.legacy_time_keys) {
                        Some(micros) => {
                            write_int(&mut self.buf, micros < 0, u128::from(micros.unsigned_abs()));
                        }
                        None => self.buf.extend_from_slice(t.as_bytes()),
                    }
                }
            }
            KeyPart::Bytes(b) => self.buf.extend_from_slice(b),
        }
        let len = u32::try_from(self.buf.len() - start - 4).unwrap_or(u32::MAX);
        self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    }
}

fn write_int(buf: &mut Vec<u8>, negative: bool, magnitude: u128) {
    use std::io::Write as _;
    if negative && magnitude != 0 {
        buf.push(b'-');
    }
    if let Ok(mut v) = u64::try_from(magnitude) {
        // The common case, without the formatting machinery (every key,
        // and every cell read for pseudo-rows, comes through here).
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        buf.extend_from_slice(&digits[at..]);
        return;
    }
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "{magnitude}");
}

fn write_float<F: std::fmt::Display + Copy>(buf: &mut Vec<u8>, v: F) {
    use std::io::Write as _;
    // Rust's `Display` for floats prints the shortest text that reads back
    // to the same value, without exponent; canonicalise `-0` and `1.0`-style
    // spellings through the numeric-literal path. Non-finite values keep
    // their text (`NaN`, `inf`).
    let start = buf.len();
    let _ = write!(buf, "{v}");
    let mut text = [0u8; 64];
    let n = buf.len() - start;
    if n <= text.len() {
        text[..n].copy_from_slice(&buf[start..]);
        buf.truncate(start);
        if !write_numeric_literal(buf, &text[..n]) {
            buf.extend_from_slice(&text[..n]);
        }
    }
}

/// A small stack buffer of decimal digits (most significant first).
struct Digits {
    d: [u8; Self::CAP],
    len: usize,
}

impl Digits {
    const CAP: usize = 128;

    fn new() -> Self {
        Self {
            d: [0; Self::CAP],
            len: 0,
        }
    }

    fn push(&mut self, digit: u8) -> bool {
        if self.len == Self::CAP {
            return false;
        }
        self.d[self.len] = digit;
        self.len += 1;
        true
    }

    fn push_u128(&mut self, mut v: u128) {
        let start = self.len;
        loop {
            self.push((v % 10) as u8);
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.d[start..self.len].reverse();
    }

    /// Writes `±digits × 10^exp` in canonical plain decimal notation.
    fn write_canonical(&self, buf: &mut Vec<u8>, negative: bool, exp: i32) {
        let digits = &self.d[..self.len];
        let first = digits.iter().position(|&d| d != 0);
        let Some(first) = first else {
            buf.push(b'0');
            return;
        };
        let last = digits.iter().rposition(|&d| d != 0).unwrap_or(first);
        // Position of the decimal point, counted in digits from `first`.
        let sig = &digits[first..=last];
        let trailing = (digits.len() - 1 - last) as i32;
        let exp = exp + trailing;
        let int_len = sig.len() as i32 + exp;
        if negative {
            buf.push(b'-');
        }
        if int_len <= 0 {
            buf.extend_from_slice(b"0.");
            buf.extend(std::iter::repeat_n(b'0', (-int_len) as usize));
            buf.extend(sig.iter().map(|d| b'0' + d));
        } else if exp >= 0 {
            buf.extend(sig.iter().map(|d| b'0' + d));
            buf.extend(std::iter::repeat_n(b'0', exp as usize));
        } else {
            let (i, f) = sig.split_at(int_len as usize);
            buf.extend(i.iter().map(|d| b'0' + d));
            buf.push(b'.');
            buf.extend(f.iter().map(|d| b'0' + d));
        }
    }
}

/// Largest decimal exponent accepted in numeric key text; beyond it the text
/// is kept as a string rather than expanded.
const MAX_KEY_EXPONENT: i32 = 64;

/// Writes the canonical form of `text` if it is a decimal number literal
/// (`[+-]digits[.digits][e[+-]digits]`); returns `false`, writing nothing,
/// if it is not.
fn write_numeric_literal(buf: &mut Vec<u8>, text: &[u8]) -> bool {
    let mut i = 0;
    let negative = match text.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut digits = Digits::new();
    let mut seen_digit = false;
    let mut frac_len = 0i32;
    let mut in_frac = false;
    while i < text.len() {
        match text[i] {
            c @ b'0'..=b'9' => {
                if !digits.push(c - b'0') {
                    return false;
                }
                seen_digit = true;
                if in_frac {
                    frac_len += 1;
                }
            }
            b'.' if !in_frac => in_frac = true,
            b'e' | b'E' => break,
            _ => return false,
        }
        i += 1;
    }
    if !seen_digit {
        return false;
    }
    let mut exp = 0i32;
    if i < text.len() {
        // Exponent part.
        i += 1;
        let mut exp_negative = false;
        match text.get(i) {
            Some(b'-') => {
                exp_negative = true;
                i += 1;
            }
            Some(b'+') => i += 1,
            _ => {}
        }
        if i == text.len() {
            return false;
        }
        for &c in &text[i..] {
            if !c.is_ascii_digit() {
                return false;
            }
            exp = exp * 10 + i32::from(c - b'0');
            if exp > MAX_KEY_EXPONENT {
                return false;
            }
        }
        if exp_negative {
            exp = -exp;
        }
    }
    digits.write_canonical(buf, negative, exp - frac_len);
    true
}

/// Bytes as lowercase hex digits.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(part: KeyPart<'_>) -> String {
        let mut e = KeyEncoder::new();
        e.push(part);
        String::from_utf8(e.as_bytes()[4..].to_vec()).unwrap()
    }

    #[test]
    fn numbers_in_any_spelling_encode_the_same() {
        for (part, want) in [
            (KeyPart::Int(42), "42"),
            (KeyPart::Str("42"), "42"),
            (KeyPart::Str(" +0042 "), "42"),
            (KeyPart::Float(42.0), "42"),
            (KeyPart::Float32(42.0), "42"),
            (
                KeyPart::Decimal {
                    mantissa: 4200,
                    scale: 2,
                },
                "42",
            ),
            (KeyPart::Str("4.2e1"), "42"),
            (KeyPart::Str("1.50"), "1.5"),
            (KeyPart::Float(1.5), "1.5"),
            (KeyPart::Str("-0"), "0"),
            (KeyPart::Int(-7), "-7"),
            (KeyPart::Str("0.0012"), "0.0012"),
            (KeyPart::Str("12e-4"), "0.0012"),
            (
                KeyPart::Decimal {
                    mantissa: 12,
                    scale: -2,
                },
                "1200",
            ),
            (KeyPart::UInt(u128::MAX), &u128::MAX.to_string()),
        ] {
            assert_eq!(enc(part), want, "{part:?}");
        }
    }

    #[test]
    fn non_numeric_strings_are_kept() {
        for s in ["abc", "1.2.3", "12a", "e5", "-", "+", "1e", "NaN", "1e999"] {
            assert_eq!(enc(KeyPart::Str(s)), s);
        }
        assert_eq!(enc(KeyPart::Float(f64::NAN)), "NaN");
    }

    #[test]
    fn composite_keys_are_unambiguous() {
        let mut a = KeyEncoder::new();
        a.push(KeyPart::Str("ab"));
        a.push(KeyPart::Str("c"));
        let mut b = KeyEncoder::new();
        b.push(KeyPart::Str("a"));
        b.push(KeyPart::Str("bc"));
        let mut c = KeyEncoder::new();
        c.push(KeyPart::Str("abc"));
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_ne!(a.as_bytes(), c.as_bytes());
    }

    #[test]
    fn keys_differ_by_secret_and_debug_hides_them() {
        let a = WatermarkKey::new("secret-a").unwrap();
        let b = WatermarkKey::new("secret-b").unwrap();
        assert_ne!(a.row_hash(b"1"), b.row_hash(b"1"));
        assert_ne!(a.row_hash(b"1"), a.row_hash(b"2"));
        assert_ne!(a.tag(0, b"x"), b.tag(0, b"x"));
        assert!(!format!("{a:?}").contains("secret"));
        assert_eq!(a.fingerprint().len(), 16);
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
