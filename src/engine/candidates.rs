//! Who leaked it: testing a leak against the watermarks that were issued.

use rayon::prelude::*;

use crate::engine::Watermarker;
use crate::engine::ecc;
use crate::engine::error::{Error, Result};
use crate::engine::extract::{LAYERS, Layer, Tally};
use crate::engine::payload::{BINS, Payload};
use crate::engine::position::Positions;
use crate::engine::select::Density;

/// Default largest corrected p-value at which a candidate is named.
pub const DEFAULT_THRESHOLD: f64 = 1e-9;

/// Most rounds of the merged-leak search (copies named per leak, at most
/// one round per copy beyond the first).
const MAX_ROUNDS: u32 = 16;

/// Corrected p-values above this are not worth the exact computation: the
/// binomial approximation is reported for them.
const EXACT_BELOW: f64 = 0.01;

/// The issued watermarks to test a leak against, prepared under one key.
///
/// # How it works
///
/// A data owner knows the contents it handed out (one per recipient copy).
/// Testing a short list of them needs far fewer rows than decoding a free
/// payload: every code position the leak's marks fall on either agrees with
/// a candidate's code bit or not, and the true copy stands out long before
/// there are enough votes to correct every bit of an unknown frame.
///
/// ## The test
///
/// For each candidate and each selection level, the votes of the rows at
/// that level or above are folded onto the candidate's code positions; each
/// position with votes reads its majority bit (a tie abstains). `agree` of
/// the `total` positions read agree with the candidate's code bits.
///
/// The p-value is the probability of at least that much agreement if the
/// candidate's frame were random, which is what it is — whatever the table
/// carries — unless the table is a copy of that candidate: after the length
/// header every frame bit is a keyed pseudo-random function of the content
/// (the content is whitened by a keystream drawn from its tag, see
/// [`Payload`](crate::Payload)). That covers unmarked data, other keys, other issued
/// copies and copies that were never registered. The probability is computed
/// exactly over the code's trellis (a sum over its 256 states): neighbouring code bits
/// of a random codeword are not independent, so a binomial count of agreeing
/// bits would understate it when many positions are read. When the positions
/// read are independent code bits, it *is* the binomial tail (see the tests).
///
/// The reported `p_value` is corrected for every test made: the number of
/// candidates × the 11 selection levels tried × `2^round` (round 1 tests the
/// whole leak; see merged leaks below), so the chance that any candidate
/// not in the leak is named is at most the threshold.
///
/// ## Merged leaks
///
/// A leak may mix rows of several issued copies. After a round names some
/// candidates, the bins whose majority agrees with a named candidate are
/// set aside (the rows it explains) and the remaining candidates are tested
/// again on the rest; a candidate is named only on its own evidence. Each
/// further round halves the threshold, so the rounds together stay within it.
///
/// ```
/// use dbwatermark::{Config, Table, WatermarkKey, Watermarker};
/// use dbwatermark::eval::sample;
///
/// let wm = Watermarker::new(WatermarkKey::new("a long random secret")?, Config::default());
/// let issued: Vec<String> = (1..=20).map(|i| format!("acme->partner-{i:02}")).collect();
/// let mut copy = sample::customers(20_000, 1, 7);
/// wm.embed_table(&mut copy, &issued[6])?;
/// // The leak: 400 rows of partner 7's copy.
/// let leak = copy.take_rows(&(0..400).collect::<Vec<_>>());
///
/// let tallies: Vec<_> = wm.tally_table(&leak)?.into_iter().map(|(_, t)| t).collect();
/// let candidates = wm.candidates(&issued)?;
/// let result = wm.identify(&tallies, &candidates);
/// assert_eq!(result.identified.len(), 1);
/// assert_eq!(result.identified[0].content, "acme->partner-07");
/// assert!(result.identified[0].p_value < 1e-9);
/// # Ok::<(), dbwatermark::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Candidates {
    payloads: Vec<Payload>,
    threshold: f64,
}

impl Candidates {
    /// Names a candidate only if its corrected p-value is at most
    /// `threshold` (default [`DEFAULT_THRESHOLD`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] unless `0 < threshold < 1`.
    pub fn with_threshold(mut self, threshold: f64) -> Result<Self> {
        if !(threshold > 0.0 && threshold < 1.0) {
            return Err(Error::InvalidConfig {
                setting: "threshold",
                reason: format!("{threshold}: must be above 0 and below 1"),
            });
        }
        self.threshold = threshold;
        Ok(self)
    }

    /// The threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// The candidate contents, in the order given.
    pub fn contents(&self) -> impl Iterator<Item = &str> {
        self.payloads.iter().map(Payload::content)
    }
}

/// How one candidate scored.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Score {
    /// Index of the candidate in the list given to [`Watermarker::candidates`].
    pub candidate: usize,
    /// Its content.
    pub content: String,
    /// Code positions whose majority agrees with the candidate.
    pub agree: u64,
    /// Code positions read (with votes and no tie).
    pub total: u64,
    /// Probability of this much agreement by chance, corrected for every
    /// test made (capped at 1). It may underflow to 0; see `log10_p_value`.
    pub p_value: f64,
    /// `log10` of `p_value`, which does not underflow.
    pub log10_p_value: f64,
    /// The selection level of the test: rows at this density or sparser.
    pub density: Density,
    /// The position scheme of the test.
    pub positions: Positions,
    /// Votes (marks read) agreeing with the candidate at that level.
    pub marks_agree: u64,
    /// Votes read at that level.
    pub marks_total: u64,
    /// The round that named it (1: the whole leak; later: what earlier
    /// named copies leave unexplained).
    pub round: u32,
}

/// The corrected p-value below which an unnamed best candidate counts as
/// evidence worth more rows: above it, the agreement is what chance gives
/// (on unmarked data the best of many candidates lands there).
pub const SOME_EVIDENCE: f64 = 0.01;

/// The result of [`Watermarker::identify`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Identification {
    /// The candidates named, smallest p-value first.
    pub identified: Vec<Score>,
    /// The strongest candidate not named, if any remain.
    pub best_other: Option<Score>,
    /// The threshold used.
    pub threshold: f64,
    /// When nothing was named but the best candidate shows real evidence
    /// (corrected p ≤ [`SOME_EVIDENCE`]): roughly how many times as many
    /// rows would name it at the same agreement rate. `None` when no
    /// candidate agrees beyond chance, where no number of rows would.
    pub rows_factor_needed: Option<f64>,
}

impl Watermarker {
    /// Prepares candidate contents for [`Watermarker::identify`]. Repeated
    /// contents are tested once (the first index is reported).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCandidate`] naming the first content that is not 1
    /// to 64 bytes.
    pub fn candidates<S: AsRef<str>>(
        &self,
        contents: impl IntoIterator<Item = S>,
    ) -> Result<Candidates> {
        let mut payloads: Vec<Payload> = Vec::new();
        for (index, content) in contents.into_iter().enumerate() {
            let content = content.as_ref();
            let payload = self.payload(content).map_err(|_| Error::InvalidCandidate {
                index,
                len: content.len(),
            })?;
            payloads.push(payload);
        }
        Ok(Candidates {
            payloads,
            threshold: DEFAULT_THRESHOLD,
        })
    }

    /// Tests the leak whose column tallies are `tallies` (pooled) against
    /// every candidate; see [`Candidates`].
    pub fn identify(&self, tallies: &[Tally], candidates: &Candidates) -> Identification {
        let mut pooled = Tally::new();
        for t in tallies {
            pooled.merge(t);
        }
        Scorer::new(&pooled, candidates).run()
    }
}

/// The state of one identification.
struct Scorer<'a> {
    pooled: &'a Tally,
    candidates: &'a Candidates,
    /// Distinct candidates still in play (index into `candidates`).
    remaining: Vec<usize>,
    /// Every layer (a level under a position scheme), as [`Layer::all`].
    layers: Vec<Layer>,
    /// Per layer, per bin: the vote margin not yet explained by a named copy.
    margins: Vec<Vec<i64>>,
    /// Per candidate, its frame model.
    frames: Vec<Vec<Option<bool>>>,
    /// The distinct codeword shapes: the code position of every bin.
    shapes: Vec<Vec<u16>>,
    /// Per candidate, its shape.
    shape_of: Vec<usize>,
    /// Per shape, per layer: the margins folded onto its code positions.
    folded: Vec<Vec<Vec<i64>>>,
}

/// Agreement of one candidate in one layer.
#[derive(Debug, Clone, Copy)]
struct Agreement {
    /// Index into `Scorer::layers`.
    layer: usize,
    agree: u64,
    total: u64,
}

/// One candidate's test in one round.
#[derive(Debug, Clone, Copy)]
struct Trial {
    candidate: usize,
    at: Agreement,
    log10_p: f64,
    round: u32,
}

impl<'a> Scorer<'a> {
    fn new(pooled: &'a Tally, candidates: &'a Candidates) -> Self {
        let payloads = &candidates.payloads;
        let mut remaining = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            if !payloads[..i].iter().any(|q| q.content() == p.content()) {
                remaining.push(i);
            }
        }
        let mut keys: Vec<(usize, usize)> = Vec::new();
        let shape_of = payloads
            .iter()
            .map(|p| {
                let key = (p.class_len(), p.code_len());
                keys.iter().position(|&k| k == key).unwrap_or_else(|| {
                    keys.push(key);
                    keys.len() - 1
                })
            })
            .collect();
        let shapes = keys
            .iter()
            .map(|&(n, c)| (0..BINS).map(|b| ((b % n) % c) as u16).collect())
            .collect();
        Self {
            pooled,
            candidates,
            margins: Layer::all().map(|l| pooled.margins(l)).collect(),
            layers: Layer::all().collect(),
            frames: payloads.iter().map(Payload::frame_model).collect(),
            shapes,
            shape_of,
            folded: Vec::new(),
            remaining,
        }
    }

    /// Folds the current margins onto every shape.
    fn refold(&mut self) {
        let margins = &self.margins;
        self.folded = self
            .shapes
            .par_iter()
            .map(|positions| {
                let len = positions
                    .iter()
                    .map(|&p| usize::from(p) + 1)
                    .max()
                    .unwrap_or(0);
                margins
                    .iter()
                    .map(|level| {
                        let mut out = vec![0i64; len];
                        for (&p, &m) in positions.iter().zip(level) {
                            out[usize::from(p)] += m;
                        }
                        out
                    })
                    .collect()
            })
            .collect();
    }

    fn run(mut self) -> Identification {
        let threshold = self.candidates.threshold;
        // Tests per round-1 candidate and layer (a level under a scheme).
        let family = self.remaining.len().max(1) as f64 * LAYERS as f64;
        let mut identified: Vec<Trial> = Vec::new();
        let mut first_round: Vec<Trial> = Vec::new();
        for round in 1..=MAX_ROUNDS {
            self.refold();
            let multiplier = family * f64::from(round).exp2();
            let trials: Vec<Trial> = self
                .remaining
                .par_iter()
                .map(|&c| self.test(c, multiplier, round))
                .collect();
            let (named, rest): (Vec<_>, Vec<_>) = trials
                .into_iter()
                .partition(|t| t.log10_p <= threshold.log10());
            if round == 1 {
                first_round = rest;
            }
            if named.is_empty() {
                break;
            }
            for t in &named {
                self.remaining.retain(|&c| c != t.candidate);
                self.explain(t.candidate);
            }
            identified.extend(named);
        }
        identified.sort_by(|a, b| a.log10_p.total_cmp(&b.log10_p));
        let best = first_round
            .into_iter()
            .filter(|t| !identified.iter().any(|i| i.candidate == t.candidate))
            .min_by(|a, b| a.log10_p.total_cmp(&b.log10_p));
        let rows_factor_needed = match (&best, identified.is_empty()) {
            (Some(t), true) if t.log10_p <= SOME_EVIDENCE.log10() => {
                rows_factor(&t.at, family * 2.0, threshold)
            }
            _ => None,
        };
        Identification {
            identified: identified.iter().map(|t| self.score(t)).collect(),
            best_other: best.map(|t| self.score(&t)),
            threshold,
            rows_factor_needed,
        }
    }

    /// Tests candidate `c` in its best layer.
    fn test(&self, c: usize, multiplier: f64, round: u32) -> Trial {
        let code = self.candidates.payloads[c].code();
        let at = self.folded[self.shape_of[c]]
            .iter()
            .enumerate()
            .map(|(layer, folded)| {
                let (mut agree, mut total) = (0, 0);
                for (&m, &bit) in folded.iter().zip(code) {
                    if m != 0 {
                        total += 1;
                        agree += u64::from((m > 0) == bit);
                    }
                }
                Agreement {
                    layer,
                    agree,
                    total,
                }
            })
            .min_by(|a, b| {
                log10_binomial_tail(a.agree, a.total)
                    .total_cmp(&log10_binomial_tail(b.agree, b.total))
            })
            .expect("LAYERS > 0");
        let approx = log10_binomial_tail(at.agree, at.total) + multiplier.log10();
        let log10_p = if approx <= EXACT_BELOW.log10() {
            self.log10_exact(c, &at) + multiplier.log10()
        } else {
            approx
        }
        .min(0.0);
        Trial {
            candidate: c,
            at,
            log10_p,
            round,
        }
    }

    /// The exact chance of agreement `a` for candidate `c`'s frame model.
    fn log10_exact(&self, c: usize, a: &Agreement) -> f64 {
        let observed: Vec<Option<bool>> = self.folded[self.shape_of[c]][a.layer]
            .iter()
            .map(|&m| (m != 0).then_some(m > 0))
            .collect();
        let disagree = (a.total - a.agree) as usize;
        ecc::log2_chance_agreement(&self.frames[c], &observed, disagree) * std::f64::consts::LOG10_2
    }

    /// The report of a trial, with its vote counts.
    fn score(&self, t: &Trial) -> Score {
        let payload = &self.candidates.payloads[t.candidate];
        let layer = self.layers[t.at.layer];
        let (marks_agree, marks_disagree) = self.pooled.agreement(payload, layer);
        Score {
            candidate: t.candidate,
            content: payload.content().to_owned(),
            agree: t.at.agree,
            total: t.at.total,
            p_value: 10f64.powf(t.log10_p),
            log10_p_value: t.log10_p,
            density: layer.density(),
            positions: layer.positions,
            marks_agree,
            marks_total: marks_agree + marks_disagree,
            round: t.round,
        }
    }

    /// Sets aside, in every layer, the bins whose majority agrees with
    /// candidate `c`.
    fn explain(&mut self, c: usize) {
        let payload = &self.candidates.payloads[c];
        for level in &mut self.margins {
            for (bin, m) in level.iter_mut().enumerate() {
                if *m != 0 && (*m > 0) == payload.bit(bin) {
                    *m = 0;
                }
            }
        }
    }
}

/// `log10 P(X ≥ k)` for `X ~ Binomial(n, 1/2)`, computed exactly (as a sum of
/// terms relative to the first, in floating point).
pub fn log10_binomial_tail(k: u64, n: u64) -> f64 {
    if k == 0 {
        return 0.0;
    }
    if k > n {
        return f64::NEG_INFINITY;
    }
    // ln C(n, k) − n ln 2, then Σ_{i ≥ k} C(n, i) / C(n, k).
    let ln_first: f64 = (1..=k)
        .map(|i| ((n - k + i) as f64 / i as f64).ln())
        .sum::<f64>()
        - n as f64 * std::f64::consts::LN_2;
    let (mut sum, mut term) = (1.0f64, 1.0f64);
    for i in k..n {
        term *= (n - i) as f64 / (i + 1) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    ((ln_first + sum.ln()) / std::f64::consts::LN_10).min(0.0)
}

/// Roughly how many times as many positions (hence rows, while they are
/// sparse) the agreement rate of `a` would need to pass `threshold` after a
/// correction by `multiplier`.
fn rows_factor(a: &Agreement, multiplier: f64, threshold: f64) -> Option<f64> {
    if a.total == 0 || 2 * a.agree <= a.total {
        return None;
    }
    let q = a.agree as f64 / a.total as f64;
    let kl = q * (2.0 * q).ln()
        + if q < 1.0 {
            (1.0 - q) * (2.0 * (1.0 - q)).ln()
        } else {
            0.0
        };
    let needed = (multiplier / threshold).ln() / kl;
    Some((needed / a.total as f64).max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `P(X ≥ k)` by summing exact binomial coefficients (u128, n ≤ 100).
    fn direct_tail(k: u64, n: u64) -> f64 {
        let mut c = vec![1u128];
        for _ in 0..n {
            let mut next = vec![1u128; c.len() + 1];
            for i in 1..c.len() {
                next[i] = c[i - 1] + c[i];
            }
            c = next;
        }
        let hits: u128 = c[k as usize..].iter().sum();
        hits as f64 / (n as f64).exp2()
    }

    #[test]
    fn binomial_tail_equals_the_direct_sum() {
        for n in [1u64, 2, 7, 20, 64, 100] {
            for k in 0..=n {
                let exact = direct_tail(k, n);
                let ours = 10f64.powf(log10_binomial_tail(k, n));
                assert!(
                    (exact - ours).abs() <= 1e-12 * exact,
                    "P(X ≥ {k}), n = {n}: {exact} vs {ours}"
                );
            }
        }
    }

    #[test]
    fn trellis_probability_is_the_binomial_tail_on_independent_positions() {
        // Observing one code bit per step (the first output, a bijection of
        // the random frame bits) gives independent fair bits: the trellis sum
        // must equal the binomial tail.
        let key = crate::WatermarkKey::new("k").unwrap();
        let payload = Payload::new(&key, "partner-01").unwrap();
        let frame = payload.frame_model();
        let code = payload.code();
        let random_steps: Vec<usize> = (0..frame.len()).filter(|&t| frame[t].is_none()).collect();
        // Observe the first 40 random steps; the majority agrees on 31.
        let mut observed = vec![None; code.len()];
        for (j, &t) in random_steps.iter().take(40).enumerate() {
            let bit = code[3 * t];
            observed[3 * t] = Some(if j < 31 { bit } else { !bit });
        }
        let trellis = ecc::log2_chance_agreement(&frame, &observed, 9).exp2();
        let direct = direct_tail(31, 40);
        assert!(
            (trellis - direct).abs() <= 1e-12 * direct,
            "{trellis} vs {direct}"
        );
    }

    #[test]
    fn rows_factor_grows_as_agreement_weakens() {
        let a = |agree, total| Agreement {
            layer: 0,
            agree,
            total,
        };
        assert_eq!(rows_factor(&a(40, 80), 100.0, 1e-9), None);
        let strong = rows_factor(&a(60, 80), 100.0, 1e-9).unwrap();
        let weak = rows_factor(&a(50, 80), 100.0, 1e-9).unwrap();
        assert!(strong > 1.0 && weak > strong, "{strong} {weak}");
    }
}
