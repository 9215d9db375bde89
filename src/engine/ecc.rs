//! The error-correcting code: a rate-1/3 convolutional code of constraint
//! length 9 (generators 557, 663, 711 octal), zero-terminated, decoded by a
//! soft-decision Viterbi decoder and, when that path fails its check, a list
//! Viterbi decoder. The same trellis gives the exact chance agreement of a
//! candidate watermark with a leak ([`log2_chance_agreement`]).
//!
//! Why this code: the channel is a vote tally in which most damage is
//! *erasure* (a code position no surviving row voted for, or a tie) and the
//! rest is noise whose strength the vote margin tells. A soft Viterbi
//! decoder is maximum-likelihood for the whole frame, uses the margins
//! directly as log-likelihood ratios, treats an erasure as a zero, and works
//! at any frame length, which a content of 1 to 64 bytes needs. It is short,
//! exact and has no tuning knobs to get wrong. No maintained Rust crate offers
//! a soft-input decoder for such a code at arbitrary lengths.

/// Constraint length.
const K: usize = 9;
/// Number of encoder states.
const STATES: usize = 1 << (K - 1);
/// Zero bits appended to terminate the trellis in state 0.
pub(crate) const TAIL: usize = K - 1;
/// Output bits per input bit.
pub(crate) const RATE: usize = 3;
const POLYS: [u32; RATE] = [0o557, 0o663, 0o711];

/// The three output bits for shift-register contents `reg` (newest bit in
/// bit 0), packed in the low three bits.
const fn outputs(reg: u32) -> u8 {
    let mut out = 0u8;
    let mut k = 0;
    while k < RATE {
        out |= (((reg & POLYS[k]).count_ones() & 1) as u8) << k;
        k += 1;
    }
    out
}

const OUTPUTS: [u8; 1 << K] = {
    let mut t = [0u8; 1 << K];
    let mut r = 0;
    while r < (1 << K) {
        t[r] = outputs(r as u32);
        r += 1;
    }
    t
};

/// The metric of each of the `2^RATE` output patterns against one step's
/// log-likelihood ratios.
fn pattern_metrics(l: &[i64]) -> [i64; 1 << RATE] {
    let mut pm = [0i64; 1 << RATE];
    for (o, m) in pm.iter_mut().enumerate() {
        *m = (0..RATE)
            .map(|k| if o >> k & 1 == 1 { l[k] } else { -l[k] })
            .sum();
    }
    pm
}

/// Length of the codeword of `info_len` information bits.
pub(crate) const fn code_len(info_len: usize) -> usize {
    RATE * (info_len + TAIL)
}

/// Encodes `info` and the terminating tail into `RATE * (len + TAIL)` bits.
pub(crate) fn encode(info: &[bool]) -> Vec<bool> {
    let mut out = Vec::with_capacity(code_len(info.len()));
    let mut reg = 0u32;
    for &b in info.iter().chain(std::iter::repeat_n(&false, TAIL)) {
        reg = ((reg << 1) | u32::from(b)) & ((1 << K) - 1);
        let o = OUTPUTS[reg as usize];
        out.extend((0..RATE).map(|k| o >> k & 1 == 1));
    }
    out
}

/// Soft-decision Viterbi decoding.
///
/// `llr[i]` is the evidence for code bit `i` being 1 (positive) or 0
/// (negative); zero is an erasure. Decodes `info_len` information bits. With
/// `terminated`, `llr` must cover the tail too and the path must end in state
/// 0; otherwise `llr` may be shorter and the best end state is taken
/// (used to read the head of a frame before its length is known).
pub(crate) fn decode(llr: &[i64], info_len: usize, terminated: bool) -> Vec<bool> {
    let steps = if terminated {
        info_len + TAIL
    } else {
        info_len
    };
    debug_assert!(llr.len() >= steps * RATE);
    const NEG: i64 = i64::MIN / 4;
    let mut metric = [NEG; STATES];
    metric[0] = 0;
    let mut next = [NEG; STATES];
    // One bit per state per step: which predecessor won.
    const WORDS: usize = STATES.div_ceil(64);
    let mut decisions: Vec<[u64; WORDS]> = Vec::with_capacity(steps);
    for t in 0..steps {
        let l = &llr[t * RATE..t * RATE + RATE];
        let pm = pattern_metrics(l);
        let mut dec = [0u64; WORDS];
        for (ns, slot) in next.iter_mut().enumerate() {
            let p0 = ns >> 1;
            let p1 = p0 | (STATES >> 1);
            let reg0 = (p0 << 1) | (ns & 1);
            let reg1 = (p1 << 1) | (ns & 1);
            let m0 = metric[p0] + pm[OUTPUTS[reg0] as usize];
            let m1 = metric[p1] + pm[OUTPUTS[reg1] as usize];
            if m1 > m0 {
                *slot = m1;
                dec[ns / 64] |= 1 << (ns % 64);
            } else {
                *slot = m0;
            }
        }
        decisions.push(dec);
        std::mem::swap(&mut metric, &mut next);
    }
    let mut state = if terminated {
        0
    } else {
        (0..STATES)
            .max_by_key(|&s| (metric[s], usize::MAX - s))
            .unwrap_or(0)
    };
    let mut bits = vec![false; steps];
    for t in (0..steps).rev() {
        bits[t] = state & 1 == 1;
        let p0 = state >> 1;
        state = if decisions[t][state / 64] >> (state % 64) & 1 == 1 {
            p0 | (STATES >> 1)
        } else {
            p0
        };
    }
    bits.truncate(info_len);
    bits
}

/// List Viterbi decoding of a terminated codeword: up to `list` most likely
/// distinct information sequences, most likely first.
///
/// Each state keeps its `list` best partial paths (the parallel list Viterbi
/// algorithm). Where the votes leave stretches of the trellis erased, many
/// paths score alike and the single best is a guess; the keyed tag then picks
/// the right one from the list.
pub(crate) fn decode_list(llr: &[i64], info_len: usize, list: usize) -> Vec<Vec<bool>> {
    let steps = info_len + TAIL;
    debug_assert!(llr.len() >= steps * RATE);
    let list = list.clamp(1, 255);
    // Current metrics: `list` slots per state, sorted best first; `len` used.
    let mut metric = vec![i64::MIN; STATES * list];
    let mut len = vec![0usize; STATES];
    metric[0] = 0;
    len[0] = 1;
    let mut next_metric = vec![i64::MIN; STATES * list];
    let mut next_len = vec![0usize; STATES];
    // Per step, state and rank: which predecessor (bit) and its rank.
    let mut back: Vec<(u8, u8)> = Vec::with_capacity(steps * STATES * list);
    for t in 0..steps {
        let l = &llr[t * RATE..t * RATE + RATE];
        let pm = pattern_metrics(l);
        let base = back.len();
        back.resize(base + STATES * list, (0, 0));
        for ns in 0..STATES {
            let preds = [ns >> 1, (ns >> 1) | (STATES >> 1)];
            let branch = preds.map(|p| pm[OUTPUTS[(p << 1) | (ns & 1)] as usize]);
            let (mut i0, mut i1, mut n) = (0, 0, 0);
            while n < list {
                let c0 = (i0 < len[preds[0]]).then(|| metric[preds[0] * list + i0] + branch[0]);
                let c1 = (i1 < len[preds[1]]).then(|| metric[preds[1] * list + i1] + branch[1]);
                let take_one = match (c0, c1) {
                    (None, None) => break,
                    (Some(_), None) => false,
                    (None, Some(_)) => true,
                    (Some(a), Some(b)) => b > a,
                };
                let slot = ns * list + n;
                if take_one {
                    next_metric[slot] = c1.unwrap_or(i64::MIN);
                    back[base + slot] = (1, i1 as u8);
                    i1 += 1;
                } else {
                    next_metric[slot] = c0.unwrap_or(i64::MIN);
                    back[base + slot] = (0, i0 as u8);
                    i0 += 1;
                }
                n += 1;
            }
            next_len[ns] = n;
        }
        std::mem::swap(&mut metric, &mut next_metric);
        std::mem::swap(&mut len, &mut next_len);
    }
    (0..len[0])
        .map(|rank| {
            let (mut state, mut rank) = (0usize, rank);
            let mut bits = vec![false; steps];
            for t in (0..steps).rev() {
                bits[t] = state & 1 == 1;
                let (pred, prank) = back[(t * STATES + state) * list + rank];
                state = (state >> 1) | (usize::from(pred) * (STATES >> 1));
                rank = usize::from(prank);
            }
            bits.truncate(info_len);
            bits
        })
        .collect()
}

/// `log2 P(D ≤ max_disagree)`, where `D` counts the observed positions on
/// which the codeword of a random frame disagrees with `observed`.
///
/// `frame[i]` is `Some(bit)` for a frame bit known in advance and `None` for
/// a uniformly random one; the tail is zeros. `observed[p]` is `Some(bit)`
/// for a code position whose majority read `bit`, `None` for one without
/// votes (or a tie). The sum runs over the trellis, so it is exact whatever
/// the dependence between the code bits of nearby positions (which makes the
/// agreement of two codewords far likelier than a binomial count of
/// independent bits would say when many positions are observed).
///
/// Only paths with at most `max_disagree` disagreements are followed, so the
/// cost is `steps × 2^(K−1) × 2 × (max_disagree + 1)`.
pub(crate) fn log2_chance_agreement(
    frame: &[Option<bool>],
    observed: &[Option<bool>],
    max_disagree: usize,
) -> f64 {
    let steps = frame.len() + TAIL;
    debug_assert!(observed.len() >= steps * RATE);
    let width = max_disagree + 1;
    // `mass[state * width + d]`: number of frame prefixes (counted, then
    // scaled by 2^-scale) reaching `state` with `d` disagreements.
    let mut mass = vec![0f64; STATES * width];
    let mut next = vec![0f64; STATES * width];
    mass[0] = 1.0;
    let mut log2_scale = 0f64;
    let mut random_bits = 0usize;
    for t in 0..steps {
        let inputs: &[u32] = match frame.get(t) {
            Some(None) => {
                random_bits += 1;
                &[0, 1]
            }
            Some(Some(true)) => &[1],
            Some(Some(false)) | None => &[0],
        };
        let obs = &observed[t * RATE..t * RATE + RATE];
        next.fill(0.0);
        for state in 0..STATES {
            let row = &mass[state * width..(state + 1) * width];
            if row.iter().all(|&m| m == 0.0) {
                continue;
            }
            for &u in inputs {
                let reg = ((state as u32) << 1 | u) as usize & ((1 << K) - 1);
                let out = OUTPUTS[reg];
                let d = (0..RATE)
                    .filter(|&k| obs[k].is_some_and(|b| b != (out >> k & 1 == 1)))
                    .count();
                if d >= width {
                    continue;
                }
                let ns = reg & (STATES - 1);
                let target = &mut next[ns * width + d..(ns + 1) * width];
                for (acc, &m) in target.iter_mut().zip(row) {
                    *acc += m;
                }
            }
        }
        std::mem::swap(&mut mass, &mut next);
        let max = mass.iter().copied().fold(0.0, f64::max);
        if max > 1e250 {
            mass.iter_mut().for_each(|m| *m *= 1e-250);
            log2_scale += 250.0 * std::f64::consts::LOG2_10;
        }
    }
    let total: f64 = mass[..width].iter().sum();
    if total == 0.0 {
        return f64::NEG_INFINITY;
    }
    total.log2() + log2_scale - random_bits as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llr_of(code: &[bool]) -> Vec<i64> {
        code.iter().map(|&b| if b { 1 } else { -1 }).collect()
    }

    fn pseudo_random_bits(n: usize, seed: u64) -> Vec<bool> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x & 1 == 1
            })
            .collect()
    }

    #[test]
    fn clean_codewords_decode() {
        for n in [1, 8, 72, 600] {
            let info = pseudo_random_bits(n, n as u64 + 1);
            let code = encode(&info);
            assert_eq!(code.len(), code_len(n));
            assert_eq!(decode(&llr_of(&code), n, true), info);
        }
    }

    /// A deterministic channel: erases `erase_pct`% and flips `flip_pct`% of
    /// the code bits.
    fn damage(code: &[bool], erase_pct: u64, flip_pct: u64, seed: u64) -> Vec<i64> {
        let mut x = seed;
        code.iter()
            .map(|&b| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = (x >> 33) % 100;
                let l = if b { 1 } else { -1 };
                if r < erase_pct {
                    0
                } else if r < erase_pct + flip_pct {
                    -l
                } else {
                    l
                }
            })
            .collect()
    }

    #[test]
    fn decodes_through_heavy_erasure_or_some_flips() {
        // Hard ±1 inputs; real tallies give margins, which do better.
        for (erase, flip) in [(45, 0), (20, 4), (0, 6)] {
            let mut ok = 0;
            for seed in 0..20 {
                let info = pseudo_random_bits(200, seed + 1);
                let llr = damage(&encode(&info), erase, flip, seed);
                ok += usize::from(decode(&llr, 200, true) == info);
            }
            assert!(ok >= 19, "erase {erase}% flip {flip}%: {ok}/20 decoded");
        }
    }

    #[test]
    fn list_decoding_starts_with_the_viterbi_path_and_finds_more() {
        for seed in 0..10 {
            let info = pseudo_random_bits(150, seed + 1);
            let llr = damage(&encode(&info), 50, 3, seed);
            let best = decode(&llr, 150, true);
            let list = decode_list(&llr, 150, 8);
            assert!(!list.is_empty() && list.len() <= 8);
            let mut distinct = list.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), list.len(), "paths are distinct");
            // The list's first path scores as well as the Viterbi path.
            let score = |bits: &[bool]| -> i64 {
                encode(bits)
                    .iter()
                    .zip(&llr)
                    .map(|(&b, &l)| if b { l } else { -l })
                    .sum()
            };
            assert_eq!(score(&list[0]), score(&best));
        }
    }

    #[test]
    fn unterminated_decode_reads_the_head() {
        let info = pseudo_random_bits(300, 3);
        let code = encode(&info);
        let head = decode(&llr_of(&code[..RATE * 100]), 100, false);
        assert_eq!(head[..60], info[..60]);
    }

    /// Brute force: enumerate every frame.
    fn chance_by_enumeration(
        frame: &[Option<bool>],
        observed: &[Option<bool>],
        max_disagree: usize,
    ) -> f64 {
        let free: Vec<usize> = (0..frame.len()).filter(|&i| frame[i].is_none()).collect();
        let mut hits = 0u64;
        for m in 0u64..1 << free.len() {
            let mut bits: Vec<bool> = frame.iter().map(|b| b.unwrap_or(false)).collect();
            for (j, &i) in free.iter().enumerate() {
                bits[i] = m >> j & 1 == 1;
            }
            let d = encode(&bits)
                .iter()
                .zip(observed)
                .filter(|(c, o)| o.is_some_and(|o| o != **c))
                .count();
            hits += u64::from(d <= max_disagree);
        }
        hits as f64 / (1u64 << free.len()) as f64
    }

    #[test]
    fn chance_agreement_matches_enumerating_every_frame() {
        let fixed = pseudo_random_bits(4, 9);
        let mut frame: Vec<Option<bool>> = fixed.into_iter().map(Some).collect();
        frame.extend(std::iter::repeat_n(None, 12));
        let code_len = code_len(frame.len());
        for seed in 0..6 {
            let signs = pseudo_random_bits(code_len, 100 + seed);
            let seen = pseudo_random_bits(code_len, 200 + seed);
            let observed: Vec<Option<bool>> = signs
                .iter()
                .zip(&seen)
                .map(|(&b, &s)| (s || seed == 0).then_some(b))
                .collect();
            for max_disagree in [0, 3, 10, 25] {
                let exact = chance_by_enumeration(&frame, &observed, max_disagree);
                let dp = log2_chance_agreement(&frame, &observed, max_disagree).exp2();
                assert!(
                    (exact - dp).abs() <= 1e-12 * exact.max(1e-300),
                    "seed {seed}, ≤ {max_disagree}: {exact} vs {dp}"
                );
            }
        }
    }
}
