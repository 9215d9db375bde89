//! What a leaker does to a table, as deterministic functions of a seed:
//! the attacks the evaluation and the tests run against watermarks.
//!
//! Every attack takes a table and returns a new one; none needs the key.
//!
//! ```
//! use dbwatermark::eval::{attack, sample};
//! let t = sample::customers(1000, 1, 1);
//! let leak = attack::shuffle_rows(&attack::delete_rows(&t, 0.5, 7), 8);
//! assert_eq!(leak.rows(), 500);
//! assert_eq!(attack::delete_rows(&t, 0.5, 7), attack::delete_rows(&t, 0.5, 7));
//! ```

use crate::engine::codec;
use crate::eval::sample::Rng;
use crate::{Column, Table, Values};

/// The rows that survive deleting a `fraction` of them at random, in
/// random order.
pub fn delete_rows(table: &Table, fraction: f64, seed: u64) -> Table {
    let mut rng = Rng::new(seed);
    let mut rows: Vec<usize> = (0..table.rows()).collect();
    rng.shuffle(&mut rows);
    let keep = ((1.0 - fraction.clamp(0.0, 1.0)) * rows.len() as f64).round() as usize;
    rows.truncate(keep);
    table.take_rows(&rows)
}

/// The rows in random order.
pub fn shuffle_rows(table: &Table, seed: u64) -> Table {
    delete_rows(table, 0.0, seed)
}

/// The table with `fraction × rows` rows repeated (at random places).
pub fn duplicate_rows(table: &Table, fraction: f64, seed: u64) -> Table {
    let mut rng = Rng::new(seed);
    let n = table.rows();
    let extra = (fraction * n as f64).round() as usize;
    let mut rows: Vec<usize> = (0..n).collect();
    rows.extend((0..extra).map(|_| rng.below(n.max(1) as u64) as usize));
    rng.shuffle(&mut rows);
    if n == 0 {
        return table.clone();
    }
    table.take_rows(&rows)
}

/// The table plus `fraction × rows` synthetic rows: each non-key value drawn
/// from its own column (so every column keeps its distribution), with fresh
/// keys. Integer keys continue above the largest key; text keys are
/// `synthetic-N`; other key types reuse drawn values.
pub fn insert_rows(table: &Table, fraction: f64, seed: u64) -> Table {
    let mut rng = Rng::new(seed);
    let n = table.rows();
    let extra = (fraction * n as f64).round() as usize;
    if n == 0 || extra == 0 {
        return table.clone();
    }
    let mut synthetic = Table {
        key: Vec::new(),
        columns: Vec::new(),
    };
    for (i, c) in table.key.iter().enumerate() {
        let values = match &c.values {
            Values::Int64(v) => {
                let top = v.iter().copied().max().unwrap_or(0);
                Values::Int64(
                    (1..=extra as i64)
                        .map(|k| top.saturating_add(k + i as i64))
                        .collect(),
                )
            }
            Values::Int32(v) => {
                let top = v.iter().copied().max().unwrap_or(0);
                Values::Int32((1..=extra as i32).map(|k| top.saturating_add(k)).collect())
            }
            Values::Text(_) => Values::Text((0..extra).map(|k| format!("synthetic-{k}")).collect()),
            other => other.take(
                &(0..extra)
                    .map(|_| rng.below(n as u64) as usize)
                    .collect::<Vec<_>>(),
            ),
        };
        synthetic.key.push(Column::new(c.name.clone(), values));
    }
    for c in &table.columns {
        let rows: Vec<usize> = (0..extra).map(|_| rng.below(n as u64) as usize).collect();
        let mut column = c.take(&rows);
        if column.validity.is_none() && c.validity.is_some() {
            column.validity = Some(vec![true; extra]);
        }
        synthetic.columns.push(column);
    }
    let mut out = table.clone();
    // Same columns and types by construction.
    if out.append(&synthetic).is_err() {
        return table.clone();
    }
    shuffle_rows(&out, seed ^ 0x5EED)
}

/// Each non-key cell replaced, with probability `fraction`, by the value of
/// the same column in a random row.
pub fn replace_cells(table: &Table, fraction: f64, seed: u64) -> Table {
    let mut rng = Rng::new(seed);
    let rows = table.rows();
    let mut out = table.clone();
    if rows == 0 {
        return out;
    }
    for column in &mut out.columns {
        let map: Vec<usize> = (0..rows)
            .map(|i| {
                if rng.unit() < fraction {
                    rng.below(rows as u64) as usize
                } else {
                    i
                }
            })
            .collect();
        *column = column.take(&map);
    }
    out
}

/// Applies `f(count, scale, rng) -> new count` to the numeric cells of
/// every non-key column: integers (scale 0), decimals at their scale,
/// floats in their printed digits, timestamps and dates in their unit.
/// Each cell is attacked with probability `fraction`.
fn map_counts(
    table: &Table,
    fraction: f64,
    seed: u64,
    f: impl Fn(i128, i32, &mut Rng) -> i128,
) -> Table {
    let mut rng = Rng::new(seed);
    let mut out = table.clone();
    macro_rules! ints {
        ($v:expr, $t:ty) => {
            for x in $v.iter_mut() {
                if rng.unit() < fraction {
                    let new = f(i128::from(*x), 0, &mut rng);
                    *x = <$t>::try_from(new).unwrap_or(*x);
                }
            }
        };
    }
    for column in &mut out.columns {
        match &mut column.values {
            Values::Int8(v) => ints!(v, i8),
            Values::Int16(v) => ints!(v, i16),
            Values::Int32(v) => ints!(v, i32),
            Values::Int64(v) => ints!(v, i64),
            Values::UInt8(v) => ints!(v, u8),
            Values::UInt16(v) => ints!(v, u16),
            Values::UInt32(v) => ints!(v, u32),
            Values::UInt64(v) => ints!(v, u64),
            Values::Date32(v) => ints!(v, i32),
            Values::Date64(v) | Values::Timestamp { values: v, .. } => ints!(v, i64),
            Values::Decimal { counts, scale, .. } => {
                for x in counts.iter_mut() {
                    if rng.unit() < fraction {
                        *x = f(*x, i32::from(*scale), &mut rng);
                    }
                }
            }
            Values::Float64(v) => {
                for x in v.iter_mut() {
                    if rng.unit() < fraction
                        && let Some((count, scale)) = codec::float_digits(*x)
                    {
                        *x = f(count, scale, &mut rng) as f64 / 10f64.powi(scale);
                    }
                }
            }
            Values::Float32(v) => {
                for x in v.iter_mut() {
                    if rng.unit() < fraction
                        && let Some((count, scale)) = codec::float_digits(*x)
                    {
                        *x = (f(count, scale, &mut rng) as f64 / 10f64.powi(scale)) as f32;
                    }
                }
            }
            Values::Text(_) => {}
        }
    }
    out
}

/// A `fraction` of numeric cells moved by a random amount of up to
/// `max_steps` steps of their last digit, either way.
pub fn add_noise(table: &Table, fraction: f64, max_steps: u32, seed: u64) -> Table {
    let max = i128::from(max_steps.max(1));
    map_counts(table, fraction, seed, |c, _, rng| {
        let d = 1 + rng.below(max as u64) as i128;
        if rng.next_u64() & 1 == 0 {
            c + d
        } else {
            c - d
        }
    })
}

/// The `bits` lowest binary digits of every numeric count set at random.
pub fn randomize_low_bits(table: &Table, bits: u32, seed: u64) -> Table {
    let mask = (1i128 << bits.min(64)) - 1;
    map_counts(table, 1.0, seed, |c, _, rng| {
        (c & !mask) | (i128::from(rng.next_u64()) & mask)
    })
}

/// Every numeric count rounded to a multiple of `10^digits` of its last
/// digit (integers to tens for 1, decimals to one fewer place, ...).
pub fn round_values(table: &Table, digits: u32) -> Table {
    let unit = 10i128.pow(digits.min(30));
    map_counts(table, 1.0, 0, |c, _, _| {
        let r = c.rem_euclid(unit);
        if 2 * r >= unit { c - r + unit } else { c - r }
    })
}

/// Columns renamed (`c0`, `c1`, …) and put in random order; key columns
/// renamed too.
pub fn rename_and_reorder(table: &Table, seed: u64) -> Table {
    let mut rng = Rng::new(seed);
    let mut out = table.clone();
    rng.shuffle(&mut out.columns);
    for (i, c) in out.columns.iter_mut().enumerate() {
        c.name = format!("c{i}");
    }
    for (i, c) in out.key.iter_mut().enumerate() {
        c.name = format!("k{i}");
    }
    out
}

/// Only the non-key columns at `keep` (indices), in that order.
pub fn keep_columns(table: &Table, keep: &[usize]) -> Table {
    Table {
        key: table.key.clone(),
        columns: keep
            .iter()
            .filter_map(|&i| table.columns.get(i).cloned())
            .collect(),
    }
}

/// Integer key columns as text, and text key columns that all read as
/// integers as Int64: the retyping an export and re-import does.
pub fn retype_keys(table: &Table) -> Table {
    let mut out = table.clone();
    for c in &mut out.key {
        let text = |v: &[i128]| Values::Text(v.iter().map(i128::to_string).collect());
        c.values = match &c.values {
            Values::Int8(v) => text(&v.iter().map(|&x| x.into()).collect::<Vec<_>>()),
            Values::Int16(v) => text(&v.iter().map(|&x| x.into()).collect::<Vec<_>>()),
            Values::Int32(v) => text(&v.iter().map(|&x| x.into()).collect::<Vec<_>>()),
            Values::Int64(v) => text(&v.iter().map(|&x| x.into()).collect::<Vec<_>>()),
            Values::UInt32(v) => text(&v.iter().map(|&x| x.into()).collect::<Vec<_>>()),
            Values::UInt64(v) => text(&v.iter().map(|&x| x.into()).collect::<Vec<_>>()),
            Values::Text(v) => match v
                .iter()
                .map(|s| s.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(ints) => Values::Int64(ints),
                Err(_) => Values::Text(v.clone()),
            },
            other => other.clone(),
        };
    }
    out
}

/// The table written as CSV text and read back as a CSV reader with type
/// inference would: decimals come back as floats of their printed text,
/// floats as the floats of their printed text, strings and integers as they
/// were.
pub fn csv_round_trip(table: &Table) -> Table {
    let mut out = table.clone();
    for c in &mut out.columns {
        match &c.values {
            Values::Decimal { counts, scale, .. } => {
                let printed: Vec<f64> = counts
                    .iter()
                    .map(|&n| decimal_text(n, *scale).parse().unwrap_or(0.0))
                    .collect();
                c.values = Values::Float64(printed);
            }
            Values::Float64(v) => {
                c.values = Values::Float64(
                    v.iter()
                        .map(|x| x.to_string().parse().unwrap_or(*x))
                        .collect(),
                );
            }
            Values::Float32(v) => {
                c.values = Values::Float64(
                    v.iter()
                        .map(|x| x.to_string().parse().unwrap_or(0.0))
                        .collect(),
                );
            }
            _ => {}
        }
    }
    out
}

fn decimal_text(count: i128, scale: i8) -> String {
    let scale = usize::try_from(scale).unwrap_or(0);
    let digits = count.unsigned_abs().to_string();
    let sign = if count < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (i, f) = padded.split_at(padded.len() - scale);
    format!("{sign}{i}.{f}")
}

/// Two copies of the same table (same keys, same row order) merged row by
/// row: each row comes from `a` with probability `share_a`, else from `b`.
/// The result is shuffled.
pub fn merge(a: &Table, b: &Table, share_a: f64, seed: u64) -> Table {
    let mut rng = Rng::new(seed);
    let n = a.rows().min(b.rows());
    let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
    for i in 0..n {
        if rng.unit() < share_a {
            from_a.push(i);
        } else {
            from_b.push(i);
        }
    }
    let mut out = a.take_rows(&from_a);
    if out.append(&b.take_rows(&from_b)).is_err() {
        return a.clone();
    }
    shuffle_rows(&out, seed ^ 0xA11CE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::sample;

    fn t() -> Table {
        sample::customers(2000, 1, 3)
    }

    #[test]
    fn attacks_are_deterministic_given_a_seed() {
        let t = t();
        assert_eq!(insert_rows(&t, 1.0, 4), insert_rows(&t, 1.0, 4));
        assert_eq!(add_noise(&t, 0.5, 3, 4), add_noise(&t, 0.5, 3, 4));
        assert_ne!(add_noise(&t, 0.5, 3, 4), add_noise(&t, 0.5, 3, 5));
        assert_eq!(merge(&t, &t, 0.7, 1), merge(&t, &t, 0.7, 1));
    }

    #[test]
    fn row_counts_follow_the_strength() {
        let t = t();
        assert_eq!(delete_rows(&t, 0.9, 1).rows(), 200);
        assert_eq!(insert_rows(&t, 4.0, 1).rows(), 10_000);
        assert_eq!(duplicate_rows(&t, 0.5, 1).rows(), 3000);
        assert_eq!(merge(&t, &t, 0.3, 1).rows(), 2000);
    }

    #[test]
    fn inserted_rows_have_fresh_keys() {
        let t = t();
        let Values::Int64(keys) = &insert_rows(&t, 1.0, 2).key[0].values else {
            unreachable!()
        };
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 4000);
    }

    #[test]
    fn retyped_keys_round_trip() {
        let t = t();
        let text = retype_keys(&t);
        assert!(matches!(text.key[0].values, Values::Text(_)));
        assert_eq!(retype_keys(&text).key, t.key);
    }

    #[test]
    fn low_bits_rounding_and_noise_touch_only_numbers() {
        let t = t();
        for attacked in [
            randomize_low_bits(&t, 1, 1),
            round_values(&t, 1),
            add_noise(&t, 1.0, 2, 1),
        ] {
            assert_eq!(attacked.columns[3], t.columns[3], "names untouched");
            assert_ne!(attacked.columns[0], t.columns[0]);
        }
        let Values::Int32(ages) = &round_values(&t, 1).columns[0].values else {
            unreachable!()
        };
        assert!(ages.iter().all(|a| a % 10 == 0));
    }

    #[test]
    fn csv_round_trip_turns_decimals_into_floats() {
        let t = t();
        let back = csv_round_trip(&t);
        assert!(matches!(back.columns[1].values, Values::Float64(_)));
        assert_eq!(back.columns[0], t.columns[0]);
    }
}
