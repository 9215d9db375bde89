//! Exact relations between a table's columns, found from its rows: one
//! column's values determining another's (`sched_dep_time` gives `hour`
//! and `minute`), two columns' determining a third (`dep_time` and
//! `sched_dep_time` give `dep_delay`), the difference of two columns
//! staying within bounds (`l_receiptdate` 1 to 30 days after
//! `l_shipdate`), and the ratio of two quantities staying within bounds
//! (a flight's `distance` per `air_time`, a line's `l_extendedprice` per
//! `l_quantity`).
//!
//! A fabricated row that changes one column of such a relation and not the
//! others breaks it, where no real row does: that is what an adversary
//! checks first. The pseudo-row maker therefore changes the columns of a
//! broken relation together, from one real row, until the row breaks none,
//! and the evaluation's adversary scores rows by the relations they break
//! ([`broken`]).
//!
//! Only relations that hold row by row *and* fail when the rows of one
//! column are paired with other rows of the other count: a column that is
//! nearly constant, or two ranges that never overlap, tell an adversary
//! nothing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The token of a null (nulls are a value here: a flight that never left
/// has no departure time *and* no delay).
pub(crate) const NULL: u64 = u64::MAX;

/// Rows of repeated values a determination needs to be seen at all.
const MIN_REPEATED: usize = 64;
/// The share of rows breaking a determination by one column under which
/// that column is taken to nearly determine the other.
const NEARLY: f64 = 0.05;

/// One column as relations see it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Column {
    /// Every row's token: equal values, equal tokens ([`NULL`] for a
    /// null).
    pub(crate) tokens: Vec<u64>,
    /// Every row's value on a number line (numbers, dates and times), for
    /// columns that have one; `None` for a null.
    pub(crate) order: Option<Vec<Option<f64>>>,
    /// Whether `order` holds quantities (numbers, not instants), whose
    /// ratios mean something.
    pub(crate) quantity: bool,
}

/// An exact relation between columns (indexes into the columns given).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Relation {
    /// The values of the columns `by` determine the value of `of`.
    Determines { by: Vec<usize>, of: usize },
    /// `lo ≤ a − b ≤ hi` in every row where both are present (numbers,
    /// dates and times on their number line).
    Within {
        a: usize,
        b: usize,
        lo: f64,
        hi: f64,
    },
    /// `lo ≤ a / b ≤ hi` in every row where both are present, of two
    /// quantities that are positive wherever present (a speed, a unit
    /// price).
    Ratio {
        a: usize,
        b: usize,
        lo: f64,
        hi: f64,
    },
}

impl Relation {
    /// The columns the relation ties together.
    pub(crate) fn columns(&self) -> Vec<usize> {
        match self {
            Self::Determines { by, of } => by.iter().copied().chain([*of]).collect(),
            Self::Within { a, b, .. } | Self::Ratio { a, b, .. } => vec![*a, *b],
        }
    }

    /// Whether the values `x` of `a` and `y` of `b` (both present) break
    /// a [`Relation::Within`] or [`Relation::Ratio`]; `false` for a
    /// [`Relation::Determines`], which is checked on tokens.
    pub(crate) fn breaks_bounds(&self, x: f64, y: f64) -> bool {
        match *self {
            Self::Determines { .. } => false,
            Self::Within { lo, hi, .. } => !(lo..=hi).contains(&(x - y)),
            Self::Ratio { lo, hi, .. } => y <= 0.0 || !(lo..=hi).contains(&(x / y)),
        }
    }
}

/// The relations among `columns` that hold in all but a share `tolerance`
/// of the rows (and fail in ten times that share when rows are paired
/// with others): one column determining another, a pair determining a
/// third that neither determines alone, the difference of two within
/// bounds and the ratio of two positive quantities. Only the
/// first `max_columns` columns are paired.
pub(crate) fn find(columns: &[Column], tolerance: f64, max_columns: usize) -> Vec<Relation> {
    let rows = columns.first().map_or(0, |c| c.tokens.len());
    if rows < 2 * MIN_REPEATED {
        return Vec::new();
    }
    let varied: Vec<usize> = (0..columns.len().min(max_columns))
        .filter(|&c| {
            let t = &columns[c].tokens;
            t.iter().any(|&v| v != t[0])
        })
        .collect();
    let mut out = Vec::new();
    let groups: HashMap<usize, Groups> = varied
        .iter()
        .map(|&c| (c, Groups::of(columns[c].tokens.iter().copied())))
        .collect();
    // The share of rows breaking `a → b`, where it is seen at all.
    let mut share: HashMap<(usize, usize), f64> = HashMap::new();
    for &a in &varied {
        for &b in &varied {
            if a == b {
                continue;
            }
            if let Some(s) = groups[&a].breaking(&columns[b].tokens) {
                share.insert((a, b), s);
                if s <= tolerance {
                    out.push(Relation::Determines { by: vec![a], of: b });
                }
            }
        }
    }
    // A pair determining a column that either of them nearly determines
    // alone (a distance nearly gives the route; with the plane, exactly)
    // is the near one refined by a few rows, not a rule of its own.
    let nearly = |by: usize, of: usize| share.get(&(by, of)).is_some_and(|&s| s <= NEARLY);
    let mut pairs = Vec::new();
    for (i, &a) in varied.iter().enumerate() {
        for &b in &varied[i + 1..] {
            if nearly(a, b) || nearly(b, a) {
                continue;
            }
            let (ta, tb) = (&columns[a].tokens, &columns[b].tokens);
            let both = Groups::of(ta.iter().zip(tb).map(|(&x, &y)| group_key([x, y])));
            if both.repeated < MIN_REPEATED.max(rows / 8) {
                continue;
            }
            for &c in &varied {
                if c != a
                    && c != b
                    && !nearly(a, c)
                    && !nearly(b, c)
                    && both
                        .breaking(&columns[c].tokens)
                        .is_some_and(|s| s <= tolerance)
                {
                    pairs.push(Relation::Determines {
                        by: vec![a, b],
                        of: c,
                    });
                }
            }
        }
    }
    out.extend(pairs);
    let positive: Vec<bool> = (0..columns.len())
        .map(|c| is_positive(&columns[c]))
        .collect();
    for (i, &a) in varied.iter().enumerate() {
        for &b in &varied[i + 1..] {
            if let Some((lo, hi)) = within(&columns[a], &columns[b], tolerance, |x, y| x - y) {
                out.push(Relation::Within { a, b, lo, hi });
            }
            // Both may hold: a speed bounds a flight's air time far
            // tighter than the loose bounds of distance less air time.
            if positive[a]
                && positive[b]
                && let Some((lo, hi)) = within(&columns[a], &columns[b], tolerance, |x, y| x / y)
            {
                out.push(Relation::Ratio { a, b, lo, hi });
            }
        }
    }
    out
}

/// Whether `column` holds quantities, each present one positive: what a
/// ratio needs.
fn is_positive(column: &Column) -> bool {
    column.quantity
        && column
            .order
            .as_ref()
            .is_some_and(|o| o.iter().flatten().all(|&v| v > 0.0 && v.is_finite()))
}

/// How many of `relations` each row of `columns` breaks: a determined
/// value other than the one most rows with its determining values hold, a
/// difference out of its bounds (a row with a null among its determining
/// values breaks nothing).
#[cfg(any(test, feature = "eval"))]
pub(crate) fn broken(columns: &[Column], relations: &[Relation]) -> Vec<u32> {
    let rows = columns.first().map_or(0, |c| c.tokens.len());
    let mut out = vec![0u32; rows];
    for r in relations {
        match r {
            Relation::Determines { by, of } => {
                let majority = majority(columns, by, *of);
                for (row, o) in out.iter_mut().enumerate() {
                    let key = group_key(by.iter().map(|&c| columns[c].tokens[row]));
                    *o += u32::from(
                        majority
                            .get(&key)
                            .is_some_and(|&v| columns[*of].tokens[row] != v),
                    );
                }
            }
            Relation::Within { a, b, .. } | Relation::Ratio { a, b, .. } => {
                let (Some(x), Some(y)) = (&columns[*a].order, &columns[*b].order) else {
                    continue;
                };
                for (o, (x, y)) in out.iter_mut().zip(x.iter().zip(y)) {
                    *o +=
                        u32::from(matches!((x, y), (Some(x), Some(y)) if r.breaks_bounds(*x, *y)));
                }
            }
        }
    }
    out
}

/// The token of a group of values (of the columns `by` of a
/// [`Relation::Determines`], in their order).
/// [`NULL`] when any is a null (a null determines nothing).
pub(crate) fn group_key(tokens: impl IntoIterator<Item = u64>) -> u64 {
    let mut key = 0u64;
    for t in tokens {
        if t == NULL {
            return NULL;
        }
        key = key.rotate_left(17) ^ t;
    }
    if key == NULL { NULL - 1 } else { key }
}

/// A map keyed by tokens, which are hashes already.
pub(crate) type TokenMap<V> = HashMap<u64, V, BuildHasherDefault<TokenHasher>>;

/// The hasher of a [`TokenMap`]: a token is a hash already, so one
/// multiplication spreads it enough (and costs a tenth of SipHash, which a
/// fabricated row's tries look up for every relation they touch).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// For each group of values of the columns `by`, the value of `of` most of
/// its rows hold (the larger token among equally many).
pub(crate) fn majority(columns: &[Column], by: &[usize], of: usize) -> TokenMap<u64> {
    let rows = columns[of].tokens.len();
    let mut counts: HashMap<(u64, u64), u32> = HashMap::new();
    for row in 0..rows {
        let key = group_key(by.iter().map(|&c| columns[c].tokens[row]));
        if key != NULL {
            *counts.entry((key, columns[of].tokens[row])).or_default() += 1;
        }
    }
    let mut best: HashMap<u64, (u32, u64)> = HashMap::new();
    for (&(k, v), &n) in &counts {
        let m = best.entry(k).or_insert((0, v));
        if (n, v) > *m {
            *m = (n, v);
        }
    }
    best.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

/// A column's rows grouped by token: each row's group, and how many rows
/// lie in groups of two or more.
struct Groups {
    /// Per row its group, [`NO_GROUP`] for a row with a null.
    of_row: Vec<u32>,
    /// Per group its rows.
    sizes: Vec<u32>,
    repeated: usize,
}

/// The group of a row whose determining values hold a null (a null
/// determines nothing).
const NO_GROUP: u32 = u32::MAX;

impl Groups {
    fn of(tokens: impl Iterator<Item = u64>) -> Self {
        let mut ids: HashMap<u64, u32> = HashMap::new();
        let mut sizes: Vec<u32> = Vec::new();
        let of_row: Vec<u32> = tokens
            .map(|t| {
                if t == NULL {
                    return NO_GROUP;
                }
                let next = ids.len() as u32;
                let id = *ids.entry(t).or_insert(next);
                if id == next {
                    sizes.push(0);
                }
                sizes[id as usize] += 1;
                id
            })
            .collect();
        let repeated = sizes.iter().filter(|&&n| n >= 2).map(|&n| n as usize).sum();
        Self {
            of_row,
            sizes,
            repeated,
        }
    }

    /// The share of the rows of repeated groups (when there are enough)
    /// that hold another value of `tokens` than their group's first row,
    /// when that share is a tenth or less of the share found by comparing
    /// each row with the group of the row half the table away (so that
    /// the groups tell something of `tokens`); `None` otherwise.
    fn breaking(&self, tokens: &[u64]) -> Option<f64> {
        let rows = tokens.len();
        if self.repeated < MIN_REPEATED {
            return None;
        }
        let mut first: Vec<Option<u64>> = vec![None; self.sizes.len()];
        let (mut wrong, mut shifted) = (0usize, 0usize);
        for (r, &g) in self.of_row.iter().enumerate() {
            if g == NO_GROUP || self.sizes[g as usize] < 2 {
                continue;
            }
            let f = *first[g as usize].get_or_insert(tokens[r]);
            wrong += usize::from(tokens[r] != f);
            shifted += usize::from(tokens[(r + rows / 2) % rows] != f);
        }
        (shifted as f64 > 10.0 * (wrong as f64).max(1.0))
            .then(|| wrong as f64 / self.repeated as f64)
    }
}

/// The bounds of `of(a, b)` (their difference or their ratio) in all but a
/// share `tolerance` of the rows where both are present (at least
/// [`MIN_REPEATED`]), when more than ten times that share fall outside
/// them as each `a` is paired with the `b` half the table away (so that
/// the bounds tell something of the pair); `None` otherwise.
fn within(
    a: &Column,
    b: &Column,
    tolerance: f64,
    of: impl Fn(f64, f64) -> f64,
) -> Option<(f64, f64)> {
    let (Some(x), Some(y)) = (&a.order, &b.order) else {
        return None;
    };
    let rows = x.len();
    let mut diffs: Vec<f64> = (0..rows)
        .filter_map(|r| Some(of(x[r]?, y[r]?)))
        .filter(|d| d.is_finite())
        .collect();
    if diffs.len() < MIN_REPEATED {
        return None;
    }
    diffs.sort_by(f64::total_cmp);
    let cut = (tolerance / 2.0 * diffs.len() as f64).floor() as usize;
    let (lo, hi) = (diffs[cut], diffs[diffs.len() - 1 - cut]);
    let outside = |d: f64| !(lo..=hi).contains(&d);
    let wrong = diffs.iter().filter(|&&d| outside(d)).count();
    let (mut paired, mut shifted) = (0usize, 0usize);
    for r in 0..rows {
        if let (Some(u), Some(v)) = (x[r], y[(r + rows / 2) % rows]) {
            paired += 1;
            shifted += usize::from(outside(of(u, v)));
        }
    }
    let share = |n: usize, all: usize| n as f64 / all.max(1) as f64;
    (share(shifted, paired) > 10.0 * share(wrong.max(1), diffs.len())).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock table: `time` (HHMM) gives `hour` and `minute`; `actual`
    /// and `time` give `delay`; `noise` is unrelated; `late` comes 0 to
    /// 599 minutes after the time.
    fn clock(rows: usize) -> Vec<Column> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let (mut time, mut hour, mut minute, mut actual, mut delay, mut noise, mut late) =
            Default::default();
        for _ in 0..rows {
            let (h, m) = (5 + next(18), next(12) * 5);
            let d = next(30);
            let t = h * 60 + m;
            push(&mut time, (h * 100 + m) as f64);
            push(&mut hour, h as f64);
            push(&mut minute, m as f64);
            push(&mut actual, (t + d) as f64);
            push(&mut delay, d as f64);
            push(&mut noise, next(1000) as f64);
            push(&mut late, (t + next(600)) as f64);
        }
        fn push(c: &mut Column, v: f64) {
            c.tokens.push(v.to_bits());
            c.order.get_or_insert_with(Vec::new).push(Some(v));
        }
        // `late` is compared on minutes of the day: give `time` a column
        // in minutes too.
        let minutes = Column {
            tokens: hour
                .tokens
                .iter()
                .zip(&minute.tokens)
                .map(|(h, m)| (f64::from_bits(*h) * 60.0 + f64::from_bits(*m)).to_bits())
                .collect(),
            order: None,
            quantity: true,
        };
        let minutes = Column {
            order: Some(
                minutes
                    .tokens
                    .iter()
                    .map(|t| Some(f64::from_bits(*t)))
                    .collect(),
            ),
            ..minutes
        };
        let mut columns = vec![time, hour, minute, actual, delay, noise, late, minutes];
        for c in &mut columns {
            c.quantity = true;
        }
        columns
    }

    /// A flights table: `distance` 100 to 2,599 miles flown at 350 to 499
    /// miles an hour in `air_time` minutes; `delay` unrelated.
    fn speeds(rows: usize) -> Vec<Column> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let column = |values: Vec<f64>| Column {
            tokens: values.iter().map(|v| v.to_bits()).collect(),
            order: Some(values.into_iter().map(Some).collect()),
            quantity: true,
        };
        let (mut distance, mut air_time, mut delay) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rows {
            let d = 100 + next(2500);
            distance.push(d as f64);
            air_time.push((d as f64 * 60.0 / (350 + next(150)) as f64).round());
            delay.push(1.0 + next(300) as f64);
        }
        vec![column(distance), column(air_time), column(delay)]
    }

    #[test]
    fn a_speed_is_found_as_a_ratio_and_a_row_with_another_rows_air_time_breaks_it() {
        let mut columns = speeds(4000);
        let found = find(&columns, 0.001, 32);
        assert!(
            found.iter().any(|r| matches!(r,
                Relation::Ratio { a: 0, b: 1, lo, hi } if *lo > 4.0 && *hi < 9.0)),
            "{found:?}"
        );
        // The delay is tied to nothing.
        assert!(found.iter().all(|r| !r.columns().contains(&2)), "{found:?}");
        // Row 10 (a long flight) gets a short flight's air time.
        let (long, short) = (
            (0..4000).find(|&r| columns[0].order.as_ref().unwrap()[r] > Some(2000.0)),
            (0..4000).find(|&r| columns[0].order.as_ref().unwrap()[r] < Some(300.0)),
        );
        let (long, short) = (long.unwrap(), short.unwrap());
        let air = columns[1].order.as_ref().unwrap()[short];
        columns[1].order.as_mut().unwrap()[long] = air;
        let broken = broken(&columns, &found);
        assert!(broken[long] >= 1);
        // The others: the few at the ends of the bounds.
        assert!(broken.iter().filter(|&&b| b > 0).count() <= 12);
    }

    #[test]
    fn instants_and_columns_holding_zero_or_less_have_no_ratio() {
        let no_ratio = |columns: &[Column]| {
            let found = find(columns, 0.001, 32);
            assert!(
                found.iter().all(|r| !matches!(r, Relation::Ratio { .. })),
                "{found:?}"
            );
        };
        let mut columns = speeds(2000);
        columns[1].quantity = false;
        no_ratio(&columns);
        let mut columns = speeds(2000);
        columns[1].order.as_mut().unwrap()[5] = Some(0.0);
        no_ratio(&columns);
    }

    #[test]
    fn determinations_pairs_and_orders_of_a_clock_table_are_found_and_nothing_else() {
        let columns = clock(4000);
        let found = find(&columns, 0.001, 32);
        let has = |r: Relation| found.contains(&r);
        assert!(has(Relation::Determines { by: vec![0], of: 1 }));
        assert!(has(Relation::Determines { by: vec![0], of: 2 }));
        assert!(has(Relation::Determines {
            by: vec![3, 7],
            of: 4
        }));
        assert!(found.iter().any(|r| matches!(r,
            Relation::Within { a: 6, b: 7, lo, hi } if *lo >= 0.0 && *hi < 600.0)));
        // Noise is tied to nothing.
        assert!(found.iter().all(|r| !r.columns().contains(&5)), "{found:?}");
    }

    #[test]
    fn a_row_that_changes_one_column_of_a_relation_breaks_it_and_the_others_do_not() {
        let mut columns = clock(4000);
        let found = find(&columns, 0.001, 32);
        // Row 10 gets another row's hour.
        let other = (0..4000)
            .find(|&r| columns[1].tokens[r] != columns[1].tokens[10])
            .unwrap();
        columns[1].tokens[10] = columns[1].tokens[other];
        let broken = broken(&columns, &found);
        assert!(broken[10] >= 1);
        // The others: only the few at the ends of a difference's or a
        // ratio's bounds (at most the share the tolerance leaves out of
        // each, 4 of 4,000 rows).
        let others = broken.iter().filter(|&&b| b > 0).count() - 1;
        let bounded = found
            .iter()
            .filter(|r| !matches!(r, Relation::Determines { .. }))
            .count();
        assert!(
            others <= 4 * bounded,
            "{others} other rows break one of {bounded} bounds"
        );
    }

    #[test]
    fn a_nearly_constant_column_or_ranges_apart_make_no_relation() {
        let rows = 1000;
        let constant = Column {
            tokens: (0..rows).map(|r| u64::from(r == 7)).collect(),
            order: Some(
                (0..rows)
                    .map(|r| Some(f64::from(u8::from(r == 7))))
                    .collect(),
            ),
            quantity: true,
        };
        let high = Column {
            tokens: (0..rows as u64).map(|r| 1000 + r % 97).collect(),
            order: Some((0..rows).map(|r| Some(1000.0 + (r % 97) as f64)).collect()),
            quantity: true,
        };
        let found = find(&[constant, high], 0.001, 32);
        assert_eq!(found, vec![]);
    }
}
