//! The payload codec: content → keyed frame → codeword → one bit per bin.

use crate::engine::ecc;
use crate::engine::error::{Error, Result};
use crate::engine::key::WatermarkKey;

use super::MAX_CONTENT_BYTES;

/// Possible codeword lengths, smallest first.
pub const CLASS_LENGTHS: [usize; 7] = [288, 384, 576, 768, 1152, 1536, 2304];

/// Number of payload bins a row hash chooses from; a multiple of every class
/// length so that votes fold exactly.
pub const BINS: usize = 4608;

const HEADER_BITS: usize = 8;
const TAG_BITS: usize = 64;

/// Paths tried by list decoding when the most likely one fails its tag.
/// Measured (`cargo run --release --example deletion 100 0.9`): 90% of the
/// default evaluation table deleted, 97/100 keys recovered with 16 paths,
/// 100/100 with 64.
const LIST_SIZE: usize = 64;

/// Most tag checks per tally and level (a list of paths per content
/// length), for the false-positive bound.
pub(crate) const ATTEMPTS_PER_LEVEL: u64 = (MAX_CONTENT_BYTES * LIST_SIZE) as u64;

/// Information bits of the frame for `len` content bytes.
const fn frame_bits(len: usize) -> usize {
    HEADER_BITS + TAG_BITS + 8 * len
}

/// The class length for `len` content bytes.
fn class_of(len: usize) -> usize {
    let c = ecc::code_len(frame_bits(len));
    CLASS_LENGTHS
        .into_iter()
        .find(|&n| n >= c)
        .expect("the largest class holds 64 bytes")
}

/// Content lengths whose codeword falls in class `n` (lengths grow with
/// class, so they form a range).
fn lengths_of_class(n: usize) -> Option<std::ops::RangeInclusive<usize>> {
    let mut lens = (1..=MAX_CONTENT_BYTES).filter(|&l| class_of(l) == n);
    let first = lens.next()?;
    Some(first..=lens.next_back().unwrap_or(first))
}

fn push_bits(bits: &mut Vec<bool>, bytes: &[u8]) {
    for &byte in bytes {
        bits.extend((0..8).rev().map(|i| byte >> i & 1 == 1));
    }
}

/// `content` XOR the keystream of `tag` (its own inverse).
fn whiten(key: &WatermarkKey, tag: u64, content: &[u8]) -> Vec<u8> {
    content
        .iter()
        .zip(key.content_keystream(tag))
        .map(|(c, k)| c ^ k)
        .collect()
}

fn bytes_of(bits: &[bool]) -> Vec<u8> {
    bits.chunks(8)
        .map(|c| c.iter().fold(0u8, |acc, &b| acc << 1 | u8::from(b)))
        .collect()
}

/// An encoded watermark, ready to embed: the code bit carried by each bin.
///
/// ```
/// use dbwatermark::{Payload, WatermarkKey};
/// let key = WatermarkKey::new("secret")?;
/// let payload = Payload::new(&key, "acme->partner-42")?;
/// assert_eq!(payload.content(), "acme->partner-42");
/// assert!(Payload::new(&key, "").is_err());
/// # Ok::<(), dbwatermark::Error>(())
/// ```
///
/// # How it works
///
/// ## Frame
///
/// ```text
/// header (8 bits) ‖ tag (64 bits) ‖ content ⊕ keystream(tag) (8 × L bits)
/// header    = L − 1 in the low 6 bits, 0 in the top 2
/// tag       = first 64 bits of HMAC-SHA256(k_tag, header ‖ content)
/// keystream = HMAC-SHA256(k_tag, 0xFF ‖ tag ‖ 0) ‖ HMAC-SHA256(k_tag, 0xFF ‖ tag ‖ 1)
/// ```
///
/// Whitening the content with a keystream drawn from the tag makes every
/// frame bit after the header a pseudo-random function of the key and the
/// whole content: two contents, however alike (`partner-001`,
/// `partner-002`), have unrelated codewords. Candidate scoring
/// ([`Candidates`](crate::Candidates)) rests on this; free decoding reads the tag first
/// and removes the keystream before checking it.
///
/// The frame is encoded with a rate-1/3 convolutional code of constraint
/// length 9 (module `ecc`) into `c = 3 × (72 + 8L + 8)` code bits, and the
/// codeword is repeated cyclically over the smallest *class length* `n` in
/// [`CLASS_LENGTHS`] that holds it. A row whose hash chose bin `b` (of
/// [`BINS`], a multiple of every class length) carries code bit
/// `(b mod n) mod c`. Short contents thus get short codewords with more votes
/// per position.
///
/// ## Decoding without knowing the length
///
/// For each class, the votes are folded onto its `n` positions, and for each
/// content length `L` of the class onto that length's `c` positions. A short
/// unterminated Viterbi pass over the head of the trellis reads the header;
/// only if it names `L` is the whole frame decoded. The frame is reported
/// only if its header is consistent, its tag verifies and its content is
/// UTF-8.
///
/// ## False positives
///
/// On data that does not carry a watermark under this key (unmarked data,
/// another key), the decoded frame is a function of the data and of `k_row`
/// only, independent of `k_tag`; its 64-bit tag matches with probability
/// `2^-64` per tag check. An extraction checks at most 64 tags (the list
/// decoder's paths) per content length, selection level and position
/// scheme ([`Positions`](crate::Positions)), that is
/// `64 × 64 × 11 × 2 = 90,112` per tally it decodes, so with `t` tallies the
/// probability of reporting any watermark is at most
/// `90112 · t · 2^-64 ≈ 4.89e-15 · t`: below `1e-12` for up to 200 tallies
/// (the DSC layer allows 100 columns, i.e. at most 101 tallies: `4.9e-13`).
/// The same holds for a *garbled* watermark read from a mix of two marked
/// copies: a frame that is neither copy's verifies with probability `2^-64`.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload {
    content: String,
    class_len: usize,
    /// The codeword.
    code: Vec<bool>,
    /// Code bit of every bin (length [`BINS`]).
    bits: Vec<bool>,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload")
            .field("content", &self.content)
            .field("class_len", &self.class_len)
            .finish_non_exhaustive()
    }
}

impl Payload {
    /// Frames, tags and encodes `content` under `key`.
    ///
    /// # Errors
    ///
    /// [`Error::ContentLength`] unless `content` is 1 to 64 bytes.
    pub fn new(key: &WatermarkKey, content: &str) -> Result<Self> {
        let len = content.len();
        if !(1..=MAX_CONTENT_BYTES).contains(&len) {
            return Err(Error::ContentLength { len });
        }
        let header = (len - 1) as u8;
        let tag = key.tag(header, content.as_bytes());
        let mut frame = Vec::with_capacity(frame_bits(len));
        push_bits(&mut frame, &[header]);
        push_bits(&mut frame, &tag.to_be_bytes());
        push_bits(&mut frame, &whiten(key, tag, content.as_bytes()));
        let code = ecc::encode(&frame);
        let n = class_of(len);
        let bits = (0..BINS).map(|b| code[(b % n) % code.len()]).collect();
        Ok(Self {
            content: content.to_owned(),
            class_len: n,
            code,
            bits,
        })
    }

    /// The code bits (before cyclic repetition).
    pub(crate) fn code(&self) -> &[bool] {
        &self.code
    }

    /// The class length the codeword is repeated over.
    pub(crate) fn class_len(&self) -> usize {
        self.class_len
    }

    /// The frame's bits as the candidate test sees them: the header is
    /// fixed by the content's length, every later frame bit is pseudo-random
    /// (`None`).
    pub(crate) fn frame_model(&self) -> Vec<Option<bool>> {
        let mut header = Vec::with_capacity(HEADER_BITS);
        push_bits(&mut header, &[(self.content.len() - 1) as u8]);
        let mut model: Vec<Option<bool>> = header.into_iter().map(Some).collect();
        model.resize(frame_bits(self.content.len()), None);
        model
    }

    /// The watermark content.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// Number of distinct code bits (before cyclic repetition).
    pub fn code_len(&self) -> usize {
        self.code.len()
    }

    /// The code bit that a row whose hash chose `bin` carries.
    #[inline]
    pub(crate) fn bit(&self, bin: usize) -> bool {
        self.bits[bin]
    }
}

/// Steps of the trellis read to check a length guess against the header:
/// the header and enough of the tag for the Viterbi decisions on the header
/// to have settled.
const HEAD_STEPS: usize = 32;

/// Smallest fit of the Viterbi path for list decoding to be tried.
/// Measured on 40 keys of the evaluation table with 80% of cells replaced
/// (the noisiest case that decodes): the paths list decoding corrected fit
/// 0.786 or more, paths on data without the watermark up to 0.94 when few
/// positions have votes and up to 0.88 when most do. 0.78 skips about three
/// quarters of the list decodes that cannot succeed and none that did;
/// 0.9 skipped 98% but lost 3 in 100 keys at 80% replacement.
const LIST_MIN_FIT: f64 = 0.78;

/// How well a codeword fits the margins: the margin-weighted share of
/// positions with votes whose sign it matches, from −1 to 1.
fn path_fit(llr: &[i64], code: &[bool]) -> f64 {
    let (mut agree, mut total) = (0i64, 0i64);
    for (&l, &bit) in llr.iter().zip(code) {
        agree += if bit { l } else { -l };
        total += l.abs();
    }
    agree as f64 / total.max(1) as f64
}

/// Folds class positions onto the first `out.len()` code bits of a codeword
/// of length `c`.
fn fold_onto(folded: &[i64], c: usize, out: &mut [i64]) {
    out.fill(0);
    for (p, &m) in folded.iter().enumerate() {
        if let Some(o) = out.get_mut(p % c) {
            *o += m;
        }
    }
}

/// Decodes the frame of a `len`-byte content from class-folded margins, if
/// the head of the trellis agrees that the frame has that length and the
/// whole frame's tag verifies.
/// What one length's decode came to.
enum Attempt {
    /// A frame whose header, tag and UTF-8 check out.
    Found(String),
    /// Nothing yet, but list decoding could find it (second pass).
    ListWorthy,
    /// Nothing.
    Nothing,
}

fn decode_length(key: &WatermarkKey, folded: &[i64], len: usize, pass: Pass) -> Attempt {
    let c = ecc::code_len(frame_bits(len));
    // Cheap check first: the header read under this length's folding must
    // name this length. Only then is the whole frame decoded.
    let mut head = [0i64; ecc::RATE * HEAD_STEPS];
    fold_onto(folded, c, &mut head);
    let head_bits = ecc::decode(&head, HEAD_STEPS, false);
    let header = bytes_of(&head_bits[..HEADER_BITS])[0];
    if usize::from(header) + 1 != len {
        return Attempt::Nothing;
    }
    let mut llr = vec![0i64; c];
    fold_onto(folded, c, &mut llr);
    let check = |frame: &[bool]| -> Option<String> {
        let bytes = bytes_of(frame);
        if bytes[0] != header {
            return None;
        }
        let tag = u64::from_be_bytes(bytes[1..9].try_into().expect("8 tag bytes"));
        let content = whiten(key, tag, &bytes[9..]);
        if key.tag(header, &content) != tag {
            return None;
        }
        String::from_utf8(content).ok()
    };
    let best = ecc::decode(&llr, frame_bits(len), true);
    if pass == Pass::List {
        // The first pass found this length worth it; its best path failed.
        return ecc::decode_list(&llr, frame_bits(len), LIST_SIZE)
            .iter()
            .skip(1)
            .find_map(|frame| check(frame))
            .map_or(Attempt::Nothing, Attempt::Found);
    }
    if let Some(content) = check(&best) {
        return Attempt::Found(content);
    }
    // List decoding finds the right frame when erasures or noise leave
    // several paths that fit the votes about equally. It is the costly part
    // of a decode that finds nothing, so it is worth trying only when
    // enough positions have votes to pin a frame down and the best path
    // fits them at least `LIST_MIN_FIT`.
    let observed = llr.iter().filter(|&&l| l != 0).count();
    if observed < frame_bits(len) || path_fit(&llr, &ecc::encode(&best)) < LIST_MIN_FIT {
        Attempt::Nothing
    } else {
        Attempt::ListWorthy
    }
}

/// Which decoder a pass over the levels uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// The most likely frame of every length: cheap, and enough whenever
    /// the votes are clear.
    Viterbi,
    /// The other frames of the list, for the lengths the first pass found
    /// worth it (its most likely frame was already checked).
    List,
}

/// Tries to decode a frame from per-bin vote margins (positive: bit 1).
///
/// Returns the content if some class yields a frame whose header, tag and
/// UTF-8 check out. The [`Pass::Viterbi`] pass records in `list_worthy` the
/// content lengths worth a [`Pass::List`] pass, which tries only the lengths
/// it is given.
pub(crate) fn decode(
    key: &WatermarkKey,
    margins: &[i64],
    pass: Pass,
    list_worthy: &mut Vec<usize>,
) -> Option<String> {
    debug_assert_eq!(margins.len(), BINS);
    let wanted: Vec<usize> = std::mem::take(list_worthy);
    let mut folded = Vec::with_capacity(CLASS_LENGTHS[CLASS_LENGTHS.len() - 1]);
    for n in CLASS_LENGTHS {
        let Some(lens) = lengths_of_class(n) else {
            continue;
        };
        if pass == Pass::List && !wanted.iter().any(|l| lens.contains(l)) {
            continue;
        }
        let min_len = *lens.start();
        folded.clear();
        folded.resize(n, 0i64);
        for (b, &m) in margins.iter().enumerate() {
            folded[b % n] += m;
        }
        // Nothing to decode if fewer positions have votes than the shortest
        // frame of the class has bits.
        if folded.iter().filter(|&&m| m != 0).count() < frame_bits(min_len) {
            continue;
        }
        for len in lens.clone() {
            if pass == Pass::List && !wanted.contains(&len) {
                continue;
            }
            match decode_length(key, &folded, len, pass) {
                Attempt::Found(content) => return Some(content),
                Attempt::ListWorthy => list_worthy.push(len),
                Attempt::Nothing => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_has_a_class_and_bins_fold_exactly() {
        for n in CLASS_LENGTHS {
            assert_eq!(BINS % n, 0, "{n}");
        }
        let mut covered = 0;
        for n in CLASS_LENGTHS {
            let r = lengths_of_class(n).unwrap();
            covered += r.clone().count();
            for l in r {
                assert!(ecc::code_len(frame_bits(l)) <= n);
            }
        }
        assert_eq!(covered, MAX_CONTENT_BYTES);
    }

    fn margins_of(p: &Payload) -> Vec<i64> {
        p.bits.iter().map(|&b| if b { 3 } else { -3 }).collect()
    }

    #[test]
    fn every_length_round_trips_through_clean_votes() {
        let key = WatermarkKey::new("k").unwrap();
        for len in 1..=MAX_CONTENT_BYTES {
            let content: String = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let p = Payload::new(&key, &content).unwrap();
            assert_eq!(
                decode(&key, &margins_of(&p), Pass::Viterbi, &mut Vec::new()),
                Some(content)
            );
        }
    }

    #[test]
    fn another_key_decodes_nothing() {
        let key = WatermarkKey::new("k").unwrap();
        let other = WatermarkKey::new("k2").unwrap();
        let p = Payload::new(&key, "hello").unwrap();
        assert_eq!(
            decode(&other, &margins_of(&p), Pass::Viterbi, &mut Vec::new()),
            None
        );
    }

    #[test]
    fn content_must_be_one_to_64_bytes() {
        let key = WatermarkKey::new("k").unwrap();
        assert_eq!(
            Payload::new(&key, "").unwrap_err(),
            Error::ContentLength { len: 0 }
        );
        assert!(Payload::new(&key, &"a".repeat(65)).is_err());
        assert!(Payload::new(&key, &"a".repeat(64)).is_ok());
    }
}
