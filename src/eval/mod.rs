//! The robustness and distortion evaluation behind `dbwm eval`: every
//! attack of [`crate::eval::attack`] at several strengths, over random keys and
//! contents, with the targets a release must meet.

pub mod attack;
pub mod fidelity;
#[cfg(feature = "arrow")]
pub mod pseudo;
pub mod sample;

use std::time::Instant;

use crate::Table;
use crate::{Config, WatermarkKey, Watermarker};
use sample::Rng;

/// Recovery a targeted scenario must reach (share of trials).
pub const TARGET_RECOVERY: f64 = 0.99;

/// Largest share of non-key cells embedding may change: 10%, or 25% for
/// tables under 5,000 rows.
pub fn max_cells_changed(rows: usize) -> f64 {
    if rows < 5000 { 0.25 } else { 0.10 }
}

/// Largest mean change of a changed numeric cell, in steps.
pub const MAX_MEAN_CHANGE: f64 = 1.0;

/// Whether an outcome on a table of `rows` rows meets the target: recovery,
/// no wrong report, and distortion within bounds.
fn meets_target(o: &Outcome, rows: usize) -> bool {
    o.recovery() >= TARGET_RECOVERY
        && o.wrong == 0
        && o.cells_changed <= max_cells_changed(rows)
        // The mean is averaged over keys in floating point; 1.0 can come out
        // as 1.0000000000000007.
        && o.mean_abs_change <= MAX_MEAN_CHANGE + 1e-9
}

/// What an attack does to a marked table; `other` is a copy of the same
/// table carrying another watermark (for merges).
type AttackFn = fn(&Table, &Table, f64, u64) -> Table;

/// One attack at one strength.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The attack's name.
    pub name: &'static str,
    /// Its strength (a fraction, a factor or a count; see the name).
    pub strength: f64,
    /// Whether the scenario has a target (≥ 99% recovery, no wrong report).
    pub targeted: bool,
    attack: AttackFn,
}

impl Scenario {
    fn new(name: &'static str, strength: f64, targeted: bool, attack: AttackFn) -> Self {
        Self {
            name,
            strength,
            targeted,
            attack,
        }
    }
}

/// The scenarios of the evaluation, targeted ones as the evaluation issue
/// sets them, the rest reported.
pub fn scenarios() -> Vec<Scenario> {
    let mut s = Vec::new();
    for (f, t) in [(0.5, false), (0.8, false), (0.9, true), (0.95, false)] {
        s.push(Scenario::new("delete rows", f, t, |m, _, f, seed| {
            attack::delete_rows(m, f, seed)
        }));
    }
    for (f, t) in [(1.0, false), (4.0, true)] {
        s.push(Scenario::new("insert rows", f, t, |m, _, f, seed| {
            attack::insert_rows(m, f, seed)
        }));
    }
    for (f, t) in [(0.3, false), (0.5, true), (0.8, false)] {
        s.push(Scenario::new("replace cells", f, t, |m, _, f, seed| {
            attack::replace_cells(m, f, seed)
        }));
    }
    for f in [0.1, 0.3] {
        s.push(Scenario::new(
            "noise ±1-3 steps",
            f,
            false,
            |m, _, f, seed| attack::add_noise(m, f, 3, seed),
        ));
    }
    s.push(Scenario::new("shuffle rows", 1.0, true, |m, _, _, seed| {
        attack::shuffle_rows(m, seed)
    }));
    s.push(Scenario::new(
        "rename and reorder",
        1.0,
        true,
        |m, _, _, seed| attack::rename_and_reorder(m, seed),
    ));
    s.push(Scenario::new(
        "one column alone",
        1.0,
        true,
        // The first column that carries marks: where the two copies of
        // the table differ (on a real table the first may be a code).
        |m, other, _, _| {
            let marked = (0..m.columns.len())
                .find(|&i| m.columns[i] != other.columns[i])
                .unwrap_or(0);
            attack::keep_columns(m, &[marked])
        },
    ));
    s.push(Scenario::new("retype keys", 1.0, true, |m, _, _, _| {
        attack::retype_keys(m)
    }));
    s.push(Scenario::new("csv round trip", 1.0, true, |m, _, _, _| {
        attack::csv_round_trip(m)
    }));
    s.push(Scenario::new(
        "duplicate rows",
        1.0,
        true,
        |m, _, f, seed| attack::duplicate_rows(m, f, seed),
    ));
    s.push(Scenario::new(
        "randomize low bits",
        1.0,
        true,
        |m, _, b, seed| attack::randomize_low_bits(m, b as u32, seed),
    ));
    s.push(Scenario::new(
        "randomize low bits",
        2.0,
        false,
        |m, _, b, seed| attack::randomize_low_bits(m, b as u32, seed),
    ));
    for d in [1.0, 2.0] {
        s.push(Scenario::new("round values", d, false, |m, _, d, _| {
            attack::round_values(m, d as u32)
        }));
    }
    for d in [1.0, 2.0] {
        // Without the text column, whose marks rounding does not touch: the
        // known limit of any low-digit scheme.
        s.push(Scenario::new(
            "round numbers only (known limit)",
            d,
            false,
            |m, _, d, _| attack::round_values(&attack::keep_columns(m, &[0, 1, 2]), d as u32),
        ));
    }
    for (f, t) in [
        (0.5, false),
        (0.6, false),
        (0.7, true),
        (0.8, true),
        (0.9, true),
    ] {
        s.push(Scenario::new("merge two copies", f, t, |m, o, f, seed| {
            attack::merge(m, o, f, seed)
        }));
    }
    s
}

/// The result of one scenario over all trials. A targeted scenario meets its
/// target with at least 99% recovery, no wrong report, at most
/// [`max_cells_changed`] of the cells changed and a mean change of at most
/// one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The attack.
    pub scenario: String,
    /// Its strength.
    pub strength: f64,
    /// Trials run.
    pub trials: usize,
    /// Trials where the right watermark was reported first.
    pub recovered: usize,
    /// Reports of a watermark that was not embedded.
    pub wrong: usize,
    /// Mean share of non-key cells changed by embedding.
    pub cells_changed: f64,
    /// Mean absolute change of a changed numeric cell, in steps.
    pub mean_abs_change: f64,
    /// Seconds spent (embedding, attacking and extracting).
    pub seconds: f64,
    /// `Some(met)` for a targeted scenario.
    pub target_met: Option<bool>,
    /// For the leak-tracing scenarios: the median over trials of `log10` of
    /// the right copy's corrected p-value (0 where it was not named).
    pub median_log10_p: Option<f64>,
}

impl Outcome {
    /// An outcome with no trials yet.
    pub fn new(scenario: impl Into<String>, strength: f64) -> Self {
        Self {
            scenario: scenario.into(),
            strength,
            trials: 0,
            recovered: 0,
            wrong: 0,
            cells_changed: 0.0,
            mean_abs_change: 0.0,
            seconds: 0.0,
            target_met: None,
            median_log10_p: None,
        }
    }

    /// Share of trials recovered.
    pub fn recovery(&self) -> f64 {
        if self.trials == 0 {
            0.0
        } else {
            self.recovered as f64 / self.trials as f64
        }
    }
}

/// How to run the evaluation.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// Random keys and contents per scenario.
    pub keys: usize,
    /// Extractions on unmarked data and with wrong keys (each).
    pub false_positive_trials: usize,
    /// Seed of everything random.
    pub seed: u64,
    /// Bytes of each random content.
    pub content_bytes: usize,
    /// How copies are marked and leaks read.
    pub marking: Marking,
}

/// How the evaluation marks a table and reads a leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Marking {
    /// As `dbwm embed` and `dbwm extract` do: each column profiled and
    /// planned ([`Table::plan`]), the leak planned from its own rows.
    #[default]
    Planned,
    /// Every column marked by its type, with only the zero and sign rule
    /// ([`Watermarker::embed_table`]).
    Typed,
}

impl Marking {
    /// Embeds `content` into `table`.
    pub fn embed(self, wm: &Watermarker, table: &mut Table, content: &str) -> crate::EmbedReport {
        match self {
            Self::Planned => {
                let plans = table.plan(&crate::ColumnRules::new()).expect("no rules");
                wm.embed_table_planned(table, content, &plans)
            }
            Self::Typed => wm.embed_table(table, content),
        }
        .expect("valid table and content")
    }

    /// The column tallies of a leak.
    pub fn tallies(self, wm: &Watermarker, leak: &Table) -> Vec<crate::Tally> {
        match self {
            Self::Planned => {
                let plans = leak.plan(&crate::ColumnRules::new()).expect("no rules");
                wm.tally_table_planned(leak, &plans)
            }
            Self::Typed => wm.tally_table(leak),
        }
        .expect("valid table")
        .into_iter()
        .map(|(_, t)| t)
        .collect()
    }

    /// The watermarks decoded from a leak.
    pub fn extract(self, wm: &Watermarker, leak: &Table) -> Vec<crate::Found> {
        wm.decode(&self.tallies(wm, leak))
    }
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            keys: 100,
            false_positive_trials: 10_000,
            seed: 2026,
            content_bytes: 16,
            marking: Marking::default(),
        }
    }
}

/// The default evaluation table: 30,000 customers (integer key; `age`,
/// `balance`, `score` numeric, `name` text).
pub fn default_table() -> Table {
    sample::customers(30_000, 1, 2026)
}

pub(crate) const ALPHABET: [char; 36] = [
    'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's',
    't', 'u', 'v', 'w', 'x', 'y', 'z', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
];

/// Marks `table` with a random key and content: the watermarker, the content
/// and the marked table, plus the distortion (share changed, mean steps).
fn mark(
    table: &Table,
    rng: &mut Rng,
    bytes: usize,
    marking: Marking,
) -> (Watermarker, String, Table, f64, f64) {
    let key = WatermarkKey::new(&rng.string(&ALPHABET, 24)).expect("non-empty");
    let wm = Watermarker::new(key, Config::default());
    let content = rng.string(&ALPHABET, bytes);
    let mut marked = table.clone();
    let report = marking.embed(&wm, &mut marked, &content);
    let (changed, mean) = distortion(&report);
    (wm, content, marked, changed, mean)
}

/// The share of non-key cells an embedding changed, and the mean change of
/// a changed numeric cell in steps.
fn distortion(report: &crate::EmbedReport) -> (f64, f64) {
    let (steps, changed) = report
        .columns
        .iter()
        .filter(|(_, r)| r.sum_abs_steps > 0 || r.max_abs_change > 0.0)
        .fold((0u64, 0usize), |(s, n), (_, r)| {
            (s + r.sum_abs_steps, n + r.changed)
        });
    let mean = if changed == 0 {
        0.0
    } else {
        steps as f64 / changed as f64
    };
    (report.changed_fraction(), mean)
}

/// Runs every scenario over `config.keys` random keys and contents on
/// `table`, then the false-positive trials; `progress(done, total)` after
/// each trial. The last outcome is the false-positive check.
pub fn run(
    table: &Table,
    config: &EvalConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<Outcome> {
    let scenarios = scenarios();
    let total = config.keys * scenarios.len() + config.false_positive_trials;
    let mut done = 0;
    let mut outcomes: Vec<Outcome> = scenarios
        .iter()
        .map(|s| Outcome::new(s.name, s.strength))
        .collect();
    for k in 0..config.keys {
        let mut rng = Rng::new(config.seed.wrapping_add(k as u64));
        let start = Instant::now();
        let (wm, content, marked, changed, mean) =
            mark(table, &mut rng, config.content_bytes, config.marking);
        // The other copy of a merge: same key, another content.
        let other_content = format!("{}~", &content[..content.len() - 1]);
        let mut other = table.clone();
        config.marking.embed(&wm, &mut other, &other_content);
        let embed_secs = start.elapsed().as_secs_f64();
        for (s, o) in scenarios.iter().zip(outcomes.iter_mut()) {
            let start = Instant::now();
            let leak = (s.attack)(&marked, &other, s.strength, rng.next_u64());
            let found = config.marking.extract(&wm, &leak);
            let allowed =
                |c: &str| c == content || (s.name == "merge two copies" && c == other_content);
            o.trials += 1;
            o.recovered += usize::from(found.first().is_some_and(|f| f.content == content));
            o.wrong += found.iter().filter(|f| !allowed(&f.content)).count();
            o.cells_changed += changed;
            o.mean_abs_change += mean;
            o.seconds += start.elapsed().as_secs_f64() + embed_secs / scenarios.len() as f64;
            done += 1;
            progress(done, total);
        }
    }
    for (s, o) in scenarios.iter().zip(outcomes.iter_mut()) {
        if o.trials > 0 {
            o.cells_changed /= o.trials as f64;
            o.mean_abs_change /= o.trials as f64;
        }
        if s.targeted {
            o.target_met = Some(meets_target(o, table.rows()));
        }
    }
    outcomes.extend(false_positives(table, config, &mut |_| {
        done += 1;
        progress(done, total);
    }));
    outcomes
}

/// The false-positive trials: extractions with a fresh key from unmarked
/// data, from a copy marked under another key, and from a copy marked under
/// the trial's key with a content that was never issued (a third each). Each
/// decodes freely (a report of anything but the embedded content is wrong)
/// and tests the trial key's [`ISSUED_COPIES`] issued contents (any copy
/// named is wrong). Two outcomes, both targeted at zero.
fn false_positives(
    table: &Table,
    config: &EvalConfig,
    progress: &mut dyn FnMut(usize),
) -> Vec<Outcome> {
    let trials = config.false_positive_trials;
    let start = Instant::now();
    let mut decoded = Outcome::new(
        "false positives (unmarked, wrong key, unissued copy)",
        trials as f64,
    );
    let mut named = Outcome::new(
        "who leaked: wrong copies named (unmarked, wrong key, unissued copy)",
        trials as f64,
    );
    let mut rng = Rng::new(config.seed ^ 0xF00D);
    let (_, _, marked, _, _) = mark(table, &mut rng, config.content_bytes, config.marking);
    for t in 0..trials {
        let key = WatermarkKey::new(&rng.string(&ALPHABET, 24)).expect("non-empty");
        let wm = Watermarker::new(key, Config::default());
        let issued = issued_contents(&mut rng);
        let candidates = wm.candidates(&issued).expect("valid contents");
        let (data, embedded) = match t % 3 {
            0 => (std::borrow::Cow::Borrowed(table), None),
            1 => (std::borrow::Cow::Borrowed(&marked), None),
            _ => {
                // Same key, a content outside the registry.
                let content = format!("{}->unissued", rng.string(&ALPHABET, 8));
                let mut copy = table.clone();
                config.marking.embed(&wm, &mut copy, &content);
                (std::borrow::Cow::Owned(copy), Some(content))
            }
        };
        let tallies = config.marking.tallies(&wm, &data);
        decoded.wrong += wm
            .decode(&tallies)
            .iter()
            .filter(|f| Some(&f.content) != embedded.as_ref())
            .count();
        named.wrong += wm.identify(&tallies, &candidates).identified.len();
        decoded.trials += 1;
        named.trials += 1;
        progress(t + 1);
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut outcomes = vec![decoded, named];
    for o in &mut outcomes {
        o.seconds = seconds / 2.0;
        o.target_met = Some(o.wrong == 0);
    }
    outcomes
}

/// Copies issued per key in the leak-tracing scenarios.
pub const ISSUED_COPIES: usize = 100;

/// Largest corrected p-value at which the leak-tracing scenarios count a copy
/// as named (the default threshold).
pub const TRACE_THRESHOLD: f64 = crate::DEFAULT_THRESHOLD;

/// The contents of the copies issued under one key: one organisation's
/// partners, alike but for their number (the hardest case for telling
/// copies apart), 16 bytes like the other scenarios' contents, so that the
/// automatic density stays at its default (one row in 8 on the default
/// table).
pub(crate) fn issued_contents(rng: &mut Rng) -> Vec<String> {
    let org = rng.string(&ALPHABET, 4);
    (1..=ISSUED_COPIES)
        .map(|i| format!("{org}/partner-{i:03}"))
        .collect()
}

/// The fidelity of one copy of `table`, marked as `config` says with a key
/// and content drawn from its seed: see [`fidelity::compare`].
pub fn fidelity_of(table: &Table, config: &EvalConfig) -> fidelity::Fidelity {
    let mut rng = Rng::new(config.seed ^ 0xF1DE);
    let (_, _, marked, _, _) = mark(table, &mut rng, config.content_bytes, config.marking);
    fidelity::compare(table, &marked)
}

/// The outcome of a fidelity check: targeted at no semantic violation,
/// which it counts as `wrong`.
pub fn fidelity_outcome(f: &fidelity::Fidelity, cells_changed: f64) -> Outcome {
    let mut o = Outcome::new("fidelity: semantic violations", 0.0);
    o.trials = 1;
    o.wrong = f.violations();
    o.recovered = usize::from(o.wrong == 0);
    o.cells_changed = cells_changed;
    o.target_met = Some(o.wrong == 0);
    o
}

/// The leak-tracing scenarios: (name, strength, targeted, attack). Mixes
/// take `strength` of their rows from the leaker's copy and the rest from
/// another issued copy, and count as recovered only when both are named.
pub fn trace_scenarios() -> Vec<Scenario> {
    let mut s = Vec::new();
    for (f, t) in [(0.95, false), (0.98, true), (0.99, false), (0.995, false)] {
        s.push(Scenario::new(
            "who leaked: delete rows",
            f,
            t,
            |m, _, f, seed| attack::delete_rows(m, f, seed),
        ));
    }
    s.push(Scenario::new(
        "who leaked: insert rows",
        4.0,
        true,
        |m, _, f, seed| attack::insert_rows(m, f, seed),
    ));
    s.push(Scenario::new(
        "who leaked: replace cells",
        0.8,
        true,
        |m, _, f, seed| attack::replace_cells(m, f, seed),
    ));
    for (f, t) in [(0.5, true), (0.9, false)] {
        s.push(Scenario::new(
            "who leaked: mix of two copies",
            f,
            t,
            attack::merge,
        ));
    }
    for rows in [150.0, 200.0, 300.0, 400.0, 500.0, 600.0, 800.0] {
        s.push(Scenario::new(
            "who leaked: rows in the leak",
            rows,
            false,
            |m, _, n, seed| attack::delete_rows(m, 1.0 - n / m.rows() as f64, seed),
        ));
    }
    s
}

/// Runs the leak-tracing scenarios: per key, [`ISSUED_COPIES`] copies are
/// issued (contents `xxxx/partner-001` to `-100`); one is leaked and attacked,
/// and the leak is tested against all issued contents. A trial is recovered
/// when exactly the leaked copies are named (below [`TRACE_THRESHOLD`]);
/// any other copy named is wrong.
pub fn trace(
    table: &Table,
    config: &EvalConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<Outcome> {
    let scenarios = trace_scenarios();
    let total = config.keys * scenarios.len();
    let mut outcomes: Vec<Outcome> = scenarios
        .iter()
        .map(|s| Outcome::new(s.name, s.strength))
        .collect();
    let mut log10_p: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    for k in 0..config.keys {
        let mut rng = Rng::new(config.seed.wrapping_add(20_000 + k as u64));
        let start = Instant::now();
        let key = WatermarkKey::new(&rng.string(&ALPHABET, 24)).expect("non-empty");
        let wm = Watermarker::new(key, Config::default());
        let issued = issued_contents(&mut rng);
        let candidates = wm.candidates(&issued).expect("valid contents");
        let leaker = rng.below(ISSUED_COPIES as u64) as usize;
        let other = (leaker + 1 + rng.below(ISSUED_COPIES as u64 - 1) as usize) % ISSUED_COPIES;
        let mut copy = table.clone();
        let report = config.marking.embed(&wm, &mut copy, &issued[leaker]);
        let mut other_copy = table.clone();
        config.marking.embed(&wm, &mut other_copy, &issued[other]);
        let (changed, mean) = distortion(&report);
        let embed_secs = start.elapsed().as_secs_f64();
        for (i, (s, o)) in scenarios.iter().zip(outcomes.iter_mut()).enumerate() {
            let start = Instant::now();
            let leak = (s.attack)(&copy, &other_copy, s.strength, rng.next_u64());
            let result = wm.identify(&config.marking.tallies(&wm, &leak), &candidates);
            let mixed = s.name == "who leaked: mix of two copies";
            let expected: &[usize] = if mixed { &[leaker, other] } else { &[leaker] };
            let named: Vec<usize> = result.identified.iter().map(|m| m.candidate).collect();
            o.trials += 1;
            o.recovered += usize::from(
                named.len() == expected.len() && expected.iter().all(|e| named.contains(e)),
            );
            o.wrong += named.iter().filter(|n| !expected.contains(n)).count();
            o.cells_changed += changed;
            o.mean_abs_change += mean;
            log10_p[i].push(
                result
                    .identified
                    .iter()
                    .find(|m| m.candidate == leaker)
                    .map_or(0.0, |m| m.log10_p_value),
            );
            o.seconds += start.elapsed().as_secs_f64() + embed_secs / scenarios.len() as f64;
            progress(k * scenarios.len() + i + 1, total);
        }
    }
    for ((s, o), mut ps) in scenarios.iter().zip(outcomes.iter_mut()).zip(log10_p) {
        if o.trials > 0 {
            o.cells_changed /= o.trials as f64;
            o.mean_abs_change /= o.trials as f64;
            ps.sort_by(f64::total_cmp);
            o.median_log10_p = Some(ps[ps.len() / 2]);
        }
        if s.targeted {
            o.target_met = Some(meets_target(o, table.rows()));
        }
    }
    outcomes
}

/// The DSC minimum (1,500 rows, one integer column, 16-byte contents, clean
/// and after deleting 30% of the rows; targeted) and the small-table stretch
/// goal (200 rows, three numeric columns, 8-byte contents; reported).
pub fn dsc_minimum(config: &EvalConfig) -> Vec<Outcome> {
    let mut dsc = sample::customers(1500, 1, config.seed);
    dsc.columns.truncate(1);
    let mut small = sample::customers(200, 1, config.seed);
    small.columns.truncate(3);
    let mut outcomes = Vec::new();
    for (name, fraction, table, bytes, targeted) in [
        ("DSC minimum: 1,500 rows, 1 int column", 0.0, &dsc, 16, true),
        ("DSC minimum, 30% deleted", 0.3, &dsc, 16, true),
        (
            "stretch: 200 rows, 3 numeric columns, 8 bytes",
            0.0,
            &small,
            8,
            false,
        ),
    ] {
        let start = Instant::now();
        let mut o = Outcome::new(name, fraction);
        for k in 0..config.keys {
            let mut rng = Rng::new(config.seed.wrapping_add(10_000 + k as u64));
            let (wm, content, marked, changed, mean) = mark(table, &mut rng, bytes, config.marking);
            let leak = attack::delete_rows(&marked, fraction, k as u64);
            let found = config.marking.extract(&wm, &leak);
            o.trials += 1;
            o.recovered += usize::from(found.first().is_some_and(|f| f.content == content));
            o.wrong += found.iter().filter(|f| f.content != content).count();
            o.cells_changed += changed / config.keys as f64;
            o.mean_abs_change += mean / config.keys as f64;
        }
        o.seconds = start.elapsed().as_secs_f64();
        o.target_met = targeted.then(|| meets_target(&o, table.rows()));
        outcomes.push(o);
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small version of the evaluation: the default table, three keys.
    #[test]
    fn a_small_evaluation_meets_its_targets() {
        let table = default_table();
        let config = EvalConfig {
            keys: 3,
            false_positive_trials: 6,
            ..EvalConfig::default()
        };
        let outcomes = run(&table, &config, &mut |_, _| {});
        for o in &outcomes {
            assert_eq!(o.wrong, 0, "{} {}", o.scenario, o.strength);
        }
        let missed: Vec<String> = outcomes
            .iter()
            .filter(|o| o.target_met == Some(false))
            .map(|o| {
                format!(
                    "{} {}: {}/{}",
                    o.scenario, o.strength, o.recovered, o.trials
                )
            })
            .collect();
        assert!(missed.is_empty(), "{missed:?}");
        for o in trace(&table, &config, &mut |_, _| {}) {
            assert_eq!(o.wrong, 0, "{} {}", o.scenario, o.strength);
            assert_ne!(
                o.target_met,
                Some(false),
                "{} {}: {}/{}",
                o.scenario,
                o.strength,
                o.recovered,
                o.trials
            );
        }
        for o in dsc_minimum(&config) {
            assert_ne!(
                o.target_met,
                Some(false),
                "{}: {}/{}",
                o.scenario,
                o.recovered,
                o.trials
            );
        }
    }
}
