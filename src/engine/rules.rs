//! The owner's rules: what a data owner says about a column, which the plan
//! follows over what the column's profile suggests.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::engine::profile::Kind;

/// What the owner says about one column. Every field is optional; an empty
/// rule changes nothing.
///
/// * `mark = false` leaves the column alone; `mark = true` asks for marks
///   where the profile would guess otherwise from the column's name (an
///   identifier by name, a date), but not where a mark would break its
///   meaning (a category's labels, a calendar field, a constant).
/// * `kind` states what the column is. `measure` marks the low digit of a
///   number (or the day of a date, the second of a timestamp) even where it
///   looks like a category; `free-text` marks text with an invisible end
///   character; `category`, `calendar`, `code` and `identifier` leave it
///   alone.
/// * `min` and `max` are the column's valid range: no marked value leaves
///   it (they replace the range observed in the data).
/// * `max_change` is the largest change of one value, in the column's unit
///   (seconds for timestamps, days for dates). A float column is marked in
///   a decimal place fine enough for it; a column whose smallest step is
///   larger is left alone.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct ColumnRule {
    /// Mark the column (`true`) or leave it alone (`false`).
    pub mark: Option<bool>,
    /// What the column is.
    pub kind: Option<Kind>,
    /// Smallest valid value.
    pub min: Option<f64>,
    /// Largest valid value.
    pub max: Option<f64>,
    /// Largest change of one value.
    pub max_change: Option<f64>,
}

impl ColumnRule {
    /// Sets one setting from its name and text value, as in a TOML file or
    /// the `--rule` flag: `mark` (`true`/`false`), `kind`, `min`, `max`,
    /// `max_change`.
    ///
    /// # Errors
    ///
    /// [`RuleError`] naming the setting and the value it could not use.
    pub fn set(&mut self, setting: &str, value: &str) -> Result<(), RuleError> {
        let bad = |why: &str| RuleError::new(format!("`{setting} = {value}`: {why}"));
        let number = || -> Result<f64, RuleError> {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad("not a finite number"))
        };
        match setting {
            "mark" => {
                self.mark = Some(match value.trim() {
                    "true" | "yes" => true,
                    "false" | "no" => false,
                    _ => return Err(bad("must be true or false")),
                });
            }
            "kind" => {
                self.kind = Some(value.trim().parse().map_err(|e: RuleError| bad(&e.0))?);
            }
            "min" => self.min = Some(number()?),
            "max" => self.max = Some(number()?),
            "max_change" => {
                let v = number()?;
                if v <= 0.0 {
                    return Err(bad("must be greater than 0"));
                }
                self.max_change = Some(v);
            }
            _ => {
                return Err(RuleError::new(format!(
                    "unknown setting `{setting}` (known: mark, kind, min, max, max_change)"
                )));
            }
        }
        self.check()
    }

    /// Checks that the settings agree with each other.
    ///
    /// # Errors
    ///
    /// [`RuleError`] when `min` is above `max`, or `max_change` is not
    /// positive.
    pub fn check(&self) -> Result<(), RuleError> {
        if let (Some(min), Some(max)) = (self.min, self.max)
            && min > max
        {
            return Err(RuleError::new(format!("min {min} is above max {max}")));
        }
        if self.max_change.is_some_and(|c| c.is_nan() || c <= 0.0) {
            return Err(RuleError::new("max_change must be greater than 0"));
        }
        Ok(())
    }

    /// Whether the rule says anything.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The owner's rules for a table's columns, by column name.
///
/// ```
/// use dbwatermark::{ColumnRules, Kind};
///
/// let mut rules = ColumnRules::new();
/// rules.add_flag("humid:min=0,max=100")?;
/// rules.add_flag("tailnum:mark=false")?;
/// rules.add_flag("rating:kind=measure")?;
/// assert_eq!(rules.get("humid").and_then(|r| r.max), Some(100.0));
/// assert_eq!(rules.get("rating").and_then(|r| r.kind), Some(Kind::Measure));
/// assert!(rules.add_flag("x:colour=red").is_err());
/// # Ok::<(), dbwatermark::RuleError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnRules {
    columns: BTreeMap<String, ColumnRule>,
}

impl ColumnRules {
    /// No rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// The rule for `column`, if there is one.
    pub fn get(&self, column: &str) -> Option<&ColumnRule> {
        self.columns.get(column)
    }

    /// The rule for `column`, created empty if there is none.
    pub fn entry(&mut self, column: &str) -> &mut ColumnRule {
        self.columns.entry(column.to_owned()).or_default()
    }

    /// Sets `column`'s rule, replacing any earlier one.
    ///
    /// # Errors
    ///
    /// [`RuleError`] when the rule's settings disagree
    /// ([`ColumnRule::check`]).
    pub fn insert(&mut self, column: &str, rule: ColumnRule) -> Result<(), RuleError> {
        rule.check().map_err(|e| e.in_column(column))?;
        self.columns.insert(column.to_owned(), rule);
        Ok(())
    }

    /// Adds the settings of one `--rule` flag, `COLUMN:SETTING=VALUE[,...]`,
    /// to that column's rule (later settings win).
    ///
    /// # Errors
    ///
    /// [`RuleError`] naming the column and the setting it could not use.
    pub fn add_flag(&mut self, flag: &str) -> Result<(), RuleError> {
        let (column, settings) = flag.rsplit_once(':').ok_or_else(|| {
            RuleError::new(format!(
                "`{flag}`: expected COLUMN:SETTING=VALUE[,SETTING=VALUE...]"
            ))
        })?;
        if column.is_empty() {
            return Err(RuleError::new(format!("`{flag}`: no column name")));
        }
        let mut rule = self.get(column).copied().unwrap_or_default();
        for setting in settings.split(',') {
            let (name, value) = setting.split_once('=').ok_or_else(|| {
                RuleError::new(format!("`{setting}`: expected SETTING=VALUE")).in_column(column)
            })?;
            rule.set(name.trim(), value)
                .map_err(|e| e.in_column(column))?;
        }
        self.columns.insert(column.to_owned(), rule);
        Ok(())
    }

    /// The columns that have rules, in name order.
    pub fn columns(&self) -> impl Iterator<Item = (&str, &ColumnRule)> {
        self.columns.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.columns.values().all(ColumnRule::is_empty)
    }
}

/// A rule the plan cannot use, with what is wrong in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(String);

impl RuleError {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The same error, prefixed with the column it is about.
    pub fn in_column(self, column: &str) -> Self {
        Self(format!("rule for column `{column}`: {}", self.0))
    }
}

impl Kind {
    /// The kinds an owner's rule may state.
    pub const STATED: [Kind; 6] = [
        Kind::Measure,
        Kind::Category,
        Kind::Calendar,
        Kind::FreeText,
        Kind::Code,
        Kind::Identifier,
    ];
}

impl FromStr for Kind {
    type Err = RuleError;

    /// A kind from its word ([`Kind::as_str`]): `measure`, `category`,
    /// `calendar`, `free-text`, `code`, `identifier`.
    fn from_str(s: &str) -> Result<Self, RuleError> {
        Kind::STATED
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                RuleError::new(format!(
                    "unknown kind `{s}` (known: {})",
                    Kind::STATED.map(Kind::as_str).join(", ")
                ))
            })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_build_rules_and_bad_settings_name_the_column() {
        let mut rules = ColumnRules::new();
        rules.add_flag("a:b:max_change=0.5,mark=true").unwrap();
        let r = rules.get("a:b").unwrap();
        assert_eq!((r.mark, r.max_change), (Some(true), Some(0.5)));
        let e = rules.add_flag("humid:min=5,max=1").unwrap_err();
        assert!(e.to_string().contains("`humid`"), "{e}");
        assert!(e.to_string().contains("above max"), "{e}");
        for bad in [
            "nocolon",
            ":mark=true",
            "c:mark",
            "c:mark=maybe",
            "c:kind=date",
            "c:min=nan",
            "c:max_change=0",
            "c:max_change=-1",
        ] {
            assert!(rules.add_flag(bad).is_err(), "{bad} was accepted");
        }
        // Nothing half-applied from a refused flag.
        assert!(rules.get("c").is_none());
    }

    #[test]
    fn every_stated_kind_reads_back_from_its_word() {
        for k in Kind::STATED {
            assert_eq!(k.as_str().parse::<Kind>(), Ok(k));
        }
        assert!("constant".parse::<Kind>().is_err());
    }
}
