//! Fidelity: does a marked copy still mean what the original means?
//!
//! What a data owner checks before shipping a copy, measured by comparing
//! the original and the marked table row by row: per column the cells
//! changed, distinct values, labels the original never had, values outside
//! its range, sign flips, zeros that moved, calendar fields that changed,
//! and the shift of its mean and standard deviation; per category column
//! the group counts, the largest shift of a group mean (groups of at least
//! [`MIN_GROUP`] rows, as a share of the measure's standard deviation) and
//! the rows a filter on its two most common labels selects before and after.
//!
//! The kinds come from the original's profile ([`Table::plan`]), whatever
//! the marking did, so a copy marked by type alone is judged by the same
//! yardstick as a planned one.

use std::collections::{HashMap, HashSet};

use crate::{ColumnRules, Kind, Table, Values};

/// Smallest group whose mean is compared.
pub const MIN_GROUP: usize = 100;

/// Largest shift of a group mean that is not a violation, as a share of
/// the measure's standard deviation.
pub const MAX_GROUP_MEAN_SHIFT: f64 = 0.01;

/// Category columns with more distinct values than this are not grouped by.
const MAX_GROUPS: usize = 1000;

/// What marking did to one column.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ColumnFidelity {
    /// The column.
    pub name: String,
    /// Its kind in the original's plan.
    pub kind: Kind,
    /// Cells whose value changed.
    pub cells_changed: usize,
    /// Distinct values in the original.
    pub distinct_before: usize,
    /// Distinct values in the copy.
    pub distinct_after: usize,
    /// Cells of a category, code, calendar or identifier column holding a
    /// value the original column never had.
    pub new_label_cells: usize,
    /// Numbers outside the original's min..max.
    pub out_of_range: usize,
    /// Numbers whose sign changed.
    pub sign_flips: usize,
    /// Exact zeros that moved, or values that became zero.
    pub zeros_moved: usize,
    /// Numbers: |change of the mean| / original standard deviation.
    pub mean_shift: f64,
    /// Numbers: |change of the standard deviation| / original one.
    pub std_change: f64,
}

impl ColumnFidelity {
    /// Cells that break what the column means.
    pub fn violations(&self) -> usize {
        let calendar = if self.kind == Kind::Calendar {
            self.cells_changed
        } else {
            0
        };
        self.new_label_cells + self.out_of_range + self.sign_flips + self.zeros_moved + calendar
    }
}

/// What marking did to the groups of one category column.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GroupFidelity {
    /// The category column.
    pub column: String,
    /// Groups in the original.
    pub groups: usize,
    /// Groups whose row count changed.
    pub counts_changed: usize,
    /// The largest shift of a group mean (groups of at least [`MIN_GROUP`]
    /// rows), as a share of the measure's standard deviation.
    pub worst_mean_shift: f64,
    /// The measure it was found in.
    pub worst_measure: Option<String>,
    /// Rows a filter on the two most common labels selected in the original
    /// and no longer selects.
    pub filter_rows_lost: usize,
}

/// The fidelity of a marked copy.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Fidelity {
    /// Every non-key column.
    pub columns: Vec<ColumnFidelity>,
    /// Every category, code or calendar column with at most 1,000 groups.
    pub groups: Vec<GroupFidelity>,
}

impl Fidelity {
    /// Semantic violations: cells that break a column's meaning, groups
    /// whose count changed or whose mean moved by [`MAX_GROUP_MEAN_SHIFT`]
    /// of a standard deviation or more, rows a filter lost.
    pub fn violations(&self) -> usize {
        self.columns
            .iter()
            .map(ColumnFidelity::violations)
            .sum::<usize>()
            + self
                .groups
                .iter()
                .map(|g| {
                    g.counts_changed
                        + usize::from(g.worst_mean_shift >= MAX_GROUP_MEAN_SHIFT)
                        + g.filter_rows_lost
                })
                .sum::<usize>()
    }

    /// The largest shift of a group mean over every category column, with
    /// the category and the measure.
    pub fn worst_group_shift(&self) -> Option<(&GroupFidelity, f64)> {
        self.groups
            .iter()
            .map(|g| (g, g.worst_mean_shift))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// A cell as a label (its exact value), `None` for a null.
fn label(values: &Values, valid: bool, row: usize) -> Option<String> {
    valid.then(|| match values {
        Values::Text(v) => v[row].clone(),
        Values::Float32(v) => v[row].to_string(),
        Values::Float64(v) => v[row].to_string(),
        Values::Decimal { counts, .. } => counts[row].to_string(),
        other => other.number(row).map(|n| n.to_string()).unwrap_or_default(),
    })
}

/// A cell as a number, `None` for a null or a string.
fn number(c: &crate::Column, row: usize) -> Option<f64> {
    c.is_valid(row).then(|| c.values.number(row)).flatten()
}

fn mean_std(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (n, sum) = v.clone().fold((0usize, 0.0), |(n, s), x| (n + 1, s + x));
    if n < 2 {
        return (sum, 0.0);
    }
    let mean = sum / n as f64;
    let var = v.map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
    (mean, var.sqrt())
}

/// Compares `original` with `marked`, a copy of the same rows in the same
/// order (as embedding leaves them).
///
/// # Panics
///
/// If the tables do not have the same columns and rows.
pub fn compare(original: &Table, marked: &Table) -> Fidelity {
    assert_eq!(original.rows(), marked.rows(), "same rows");
    let rows = original.rows();
    let plans = original
        .plan(&ColumnRules::new())
        .expect("no rules to break");
    let kind_of = |name: &str| {
        plans
            .iter()
            .find(|p| p.name == name)
            .map_or(Kind::Unsupported, |p| p.kind)
    };
    let mut columns = Vec::new();
    let mut categories = Vec::new();
    let mut measures = Vec::new();
    for (a, b) in original.columns.iter().zip(&marked.columns) {
        assert_eq!(a.name, b.name, "same columns");
        let kind = kind_of(&a.name);
        let labels_a: Vec<Option<String>> = (0..rows)
            .map(|r| label(&a.values, a.is_valid(r), r))
            .collect();
        let labels_b: Vec<Option<String>> = (0..rows)
            .map(|r| label(&b.values, b.is_valid(r), r))
            .collect();
        let before: HashSet<&String> = labels_a.iter().flatten().collect();
        let after: HashSet<&String> = labels_b.iter().flatten().collect();
        let label_like = matches!(
            kind,
            Kind::Category | Kind::Code | Kind::Calendar | Kind::Identifier | Kind::Constant
        );
        let mut f = ColumnFidelity {
            name: a.name.clone(),
            kind,
            cells_changed: labels_a
                .iter()
                .zip(&labels_b)
                .filter(|(x, y)| x != y)
                .count(),
            distinct_before: before.len(),
            distinct_after: after.len(),
            new_label_cells: if label_like {
                labels_b
                    .iter()
                    .flatten()
                    .filter(|l| !before.contains(l))
                    .count()
            } else {
                0
            },
            out_of_range: 0,
            sign_flips: 0,
            zeros_moved: 0,
            mean_shift: 0.0,
            std_change: 0.0,
        };
        if !matches!(a.values, Values::Text(_)) {
            let pairs: Vec<(f64, f64)> = (0..rows)
                .filter_map(|r| Some((number(a, r)?, number(b, r)?)))
                .collect();
            let (lo, hi) = pairs
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &(x, _)| {
                    (l.min(x), h.max(x))
                });
            for &(x, y) in &pairs {
                f.out_of_range += usize::from(y < lo || y > hi);
                f.sign_flips += usize::from(x * y < 0.0);
                f.zeros_moved += usize::from((x == 0.0) != (y == 0.0));
            }
            let (ma, sa) = mean_std(pairs.iter().map(|p| p.0));
            let (mb, sb) = mean_std(pairs.iter().map(|p| p.1));
            if sa > 0.0 {
                f.mean_shift = (mb - ma).abs() / sa;
                f.std_change = (sb - sa).abs() / sa;
            }
            if kind == Kind::Measure {
                measures.push((a, b, sa));
            }
        }
        if matches!(kind, Kind::Category | Kind::Code | Kind::Calendar)
            && before.len() <= MAX_GROUPS
        {
            categories.push((a.name.clone(), labels_a, labels_b));
        }
        columns.push(f);
    }
    let groups = categories
        .into_iter()
        .map(|(column, la, lb)| {
            let count = |labels: &[Option<String>]| {
                let mut m: HashMap<String, usize> = HashMap::new();
                for l in labels.iter().flatten() {
                    *m.entry(l.clone()).or_default() += 1;
                }
                m
            };
            let (ca, cb) = (count(&la), count(&lb));
            let counts_changed = ca.iter().filter(|(k, v)| cb.get(*k) != Some(v)).count()
                + cb.keys().filter(|k| !ca.contains_key(*k)).count();
            let mut top: Vec<(&String, &usize)> = ca.iter().collect();
            top.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
            let filter: HashSet<&String> = top.iter().take(2).map(|(k, _)| *k).collect();
            let filter_rows_lost = la
                .iter()
                .zip(&lb)
                .filter(|(x, y)| {
                    x.as_ref().is_some_and(|x| filter.contains(x))
                        && !y.as_ref().is_some_and(|y| filter.contains(y))
                })
                .count();
            // Group means of every measure, over the original's groups.
            let mut worst = (0.0, None);
            for (ma, mb, sd) in &measures {
                if *sd <= 0.0 {
                    continue;
                }
                let mut sums: HashMap<&String, (usize, f64, f64)> = HashMap::new();
                for (r, g) in la.iter().enumerate() {
                    let (Some(g), Some(x), Some(y)) = (g.as_ref(), number(ma, r), number(mb, r))
                    else {
                        continue;
                    };
                    let e = sums.entry(g).or_default();
                    *e = (e.0 + 1, e.1 + x, e.2 + y);
                }
                for (n, x, y) in sums.values() {
                    if *n >= MIN_GROUP {
                        let shift = (y - x).abs() / *n as f64 / sd;
                        if shift > worst.0 {
                            worst = (shift, Some(ma.name.clone()));
                        }
                    }
                }
            }
            GroupFidelity {
                column,
                groups: ca.len(),
                counts_changed,
                worst_mean_shift: worst.0,
                worst_measure: worst.1,
                filter_rows_lost,
            }
        })
        .collect();
    Fidelity { columns, groups }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Column, Config, WatermarkKey, Watermarker};

    fn table() -> Table {
        let n = 8000;
        Table {
            key: vec![Column::new("id", Values::Int64((0..n).collect()))],
            columns: vec![
                Column::new(
                    "carrier",
                    Values::Text(
                        (0..n)
                            .map(|i| ["AA", "UA", "DL"][i as usize % 3].into())
                            .collect(),
                    ),
                ),
                Column::new(
                    "month",
                    Values::Int32((0..n).map(|i| 1 + (i % 12) as i32).collect()),
                ),
                Column::new(
                    "distance",
                    Values::Int64((0..n).map(|i| 80 + i * 37 % 4900).collect()),
                ),
            ],
        }
    }

    #[test]
    fn a_planned_copy_has_no_violations_and_a_typed_one_breaks_codes_and_months() {
        let original = table();
        let wm = Watermarker::new(WatermarkKey::new("fidelity").unwrap(), Config::default());
        let mut planned = original.clone();
        let plans = planned.plan(&ColumnRules::new()).unwrap();
        wm.embed_table_planned(&mut planned, "copy", &plans)
            .unwrap();
        let f = compare(&original, &planned);
        assert_eq!(f.violations(), 0, "{f:?}");
        assert!(f.columns[2].cells_changed > 100);
        assert_eq!(f.groups.len(), 2, "carrier and month are grouped by");

        let mut typed = original.clone();
        wm.embed_table(&mut typed, "copy").unwrap();
        let f = compare(&original, &typed);
        let by_name = |n: &str| f.columns.iter().find(|c| c.name == n).unwrap();
        assert!(by_name("carrier").new_label_cells > 100, "{f:?}");
        assert!(by_name("month").violations() > 100, "{f:?}");
        assert!(f.groups.iter().all(|g| g.counts_changed > 0));
        assert!(f.groups.iter().all(|g| g.filter_rows_lost > 0));
    }
}
