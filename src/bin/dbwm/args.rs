//! Flags shared by several commands: where the key comes from and how
//! files are read.

use std::path::PathBuf;

use dbwatermark::files::{self, Format};
use dbwatermark::pipeline;
use dbwatermark::{ColumnRules, Config, WatermarkKey, Watermarker};

/// Where the watermark key comes from. Prefer a file or the environment:
/// a key on the command line is visible to other users in the process list
/// and kept in shell history.
#[derive(clap::Args, Clone)]
pub struct KeyArgs {
    /// File whose first line is the watermark key (preferred).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// The watermark key itself (visible in the process list; prefer
    /// --key-file or the DBWM_KEY environment variable).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
}

impl KeyArgs {
    pub fn watermarker(&self, config: Config) -> Result<Watermarker, String> {
        let secret = match (&self.key_file, &self.key) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read key file `{}`: {e}", path.display()))?;
                text.lines().next().unwrap_or_default().to_owned()
            }
            (None, Some(k)) => k.clone(),
            (None, None) => std::env::var("DBWM_KEY").map_err(|_| {
                "no watermark key: use --key-file FILE, set DBWM_KEY, or --key KEY".to_owned()
            })?,
        };
        let key = WatermarkKey::new(&secret).map_err(|e| e.to_string())?;
        Ok(Watermarker::new(key, config))
    }
}

/// How dense the marks are, shared by `embed` and `plan`.
#[derive(clap::Args, Clone)]
pub struct DensityArgs {
    /// The smallest leak that must still be traced to this copy: marks are
    /// made dense enough that this many random rows name it from the
    /// registry (at least as dense as the table's size alone would make
    /// them).
    #[arg(long, value_name = "ROWS", default_value_t = 1000)]
    pub trace_rows: usize,
}

impl DensityArgs {
    /// The engine configuration these flags ask for.
    pub fn config(&self) -> Result<Config, String> {
        Config::builder()
            .trace_rows(self.trace_rows)
            .build()
            .map_err(|e| e.to_string())
    }
}

/// Reading options shared by `embed` and `extract`.
#[derive(clap::Args, Clone)]
pub struct ReadArgs {
    /// Primary-key column(s), comma-separated, in key order (default for a
    /// database table: its primary-key constraint).
    #[arg(long, value_delimiter = ',')]
    pub pk: Vec<String>,
    /// Columns whose values form a virtual key, comma-separated:
    /// attributes a leak without the key column still has (a name, an
    /// e-mail, a date). Marks are placed from their normalised values
    /// (text trimmed, spaces collapsed, lower case); with it, --pk is
    /// optional, and at embed time the --pk columns are left unmarked.
    #[arg(long, value_delimiter = ',', value_name = "COL,COL...")]
    pub virtual_key: Vec<String>,
    /// The table to read when the input is a database URL
    /// (`postgresql://...`, `sqlite://PATH`); schema-qualified allowed.
    #[arg(long, value_name = "NAME", conflicts_with = "query")]
    pub table: Option<String>,
    /// The query whose rows are read when the input is a database URL.
    #[arg(long, value_name = "SQL")]
    pub query: Option<String>,
    /// Columns to mark or read, comma-separated (default: every non-key
    /// column of a markable type; dates only when named).
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Input format, if the extension does not say: csv, tsv, ndjson, arrow, arrows, parquet.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// CSV field delimiter (default `,`, tab for .tsv).
    #[arg(long)]
    pub delimiter: Option<char>,
    /// CSV input has no header line.
    #[arg(long)]
    pub no_header: bool,
    /// Rows per batch.
    #[arg(long, default_value_t = files::DEFAULT_BATCH_ROWS)]
    pub batch_rows: usize,
    /// The owner's rules for columns, a TOML file of `[columns.NAME]`
    /// tables with `mark`, `kind`, `min`, `max`, `max_change`. Extraction
    /// must be given the same rules as the embed.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// One column's rule, `COLUMN:SETTING=VALUE[,SETTING=VALUE...]` (e.g.
    /// `humid:min=0,max=100`, `tailnum:mark=false`, `rating:kind=measure`,
    /// `dep_delay:max_change=1`); repeatable, applied after --rules.
    #[arg(long, value_name = "RULE")]
    pub rule: Vec<String>,
}

/// A file path or a database URL given where a file goes.
pub enum Place {
    File(PathBuf),
    Database(dbwatermark::db::DbUrl),
}

impl Place {
    pub fn parse(path: &std::path::Path) -> Result<Self, String> {
        match path.to_str().and_then(dbwatermark::db::DbUrl::parse) {
            Some(url) => url.map(Place::Database).map_err(|e| e.to_string()),
            None => Ok(Place::File(path.to_owned())),
        }
    }
}

impl ReadArgs {
    /// What to read from a database input; refused for a file.
    pub fn relation(&self, place: &Place) -> Result<Option<dbwatermark::db::Relation>, String> {
        use dbwatermark::db::Relation;
        match (place, &self.table, &self.query) {
            (Place::File(p), Some(_), _) | (Place::File(p), _, Some(_)) => Err(format!(
                "{}: --table and --query name what is read from a database URL, not from a file",
                p.display()
            )),
            (Place::File(_), None, None) => Ok(None),
            (Place::Database(_), Some(t), _) => Ok(Some(Relation::Table(t.clone()))),
            (Place::Database(_), None, Some(q)) => Ok(Some(Relation::Query(q.clone()))),
            (Place::Database(url), None, None) => Err(format!(
                "{url}: name what to read with --table NAME or --query SQL"
            )),
        }
    }

    pub fn columns(&self) -> Result<pipeline::Columns, String> {
        let mut rules = match &self.rules {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read rules file `{}`: {e}", path.display()))?;
                rules_from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => ColumnRules::new(),
        };
        for flag in &self.rule {
            rules.add_flag(flag).map_err(|e| format!("--rule {e}"))?;
        }
        let virtual_key = !self.virtual_key.is_empty();
        Ok(pipeline::Columns {
            marked: self.columns.clone(),
            rules,
            virtual_key,
            ..pipeline::Columns::with_key(if virtual_key {
                &self.virtual_key
            } else {
                &self.pk
            })
        })
    }

    pub fn options(&self) -> Result<files::ReadOptions, String> {
        Ok(files::ReadOptions {
            format: parse_format(self.format.as_deref())?,
            batch_rows: self.batch_rows,
            delimiter: delimiter(self.delimiter)?,
            header: !self.no_header,
            ..Default::default()
        })
    }
}

pub fn parse_format(name: Option<&str>) -> Result<Option<Format>, String> {
    name.map(|n| Format::parse(n).ok_or_else(|| format!("unknown format `{n}`")))
        .transpose()
}

pub fn delimiter(c: Option<char>) -> Result<Option<u8>, String> {
    c.map(|c| u8::try_from(c).map_err(|_| format!("delimiter `{c}` is not a single byte")))
        .transpose()
}

/// The owner's rules from a TOML file:
///
/// ```toml
/// [columns.humid]
/// min = 0
/// max = 100
///
/// [columns.rating]
/// kind = "measure"
/// max_change = 1
/// ```
pub fn rules_from_toml(text: &str) -> Result<ColumnRules, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut rules = ColumnRules::new();
    for (key, value) in &table {
        if key != "columns" {
            return Err(format!(
                "unknown top-level key `{key}` (expected [columns.NAME])"
            ));
        }
        let toml::Value::Table(columns) = value else {
            return Err("`columns` must be a table of [columns.NAME] tables".into());
        };
        for (column, settings) in columns {
            let toml::Value::Table(settings) = settings else {
                return Err(format!("`columns.{column}` must be a table"));
            };
            let mut rule = dbwatermark::ColumnRule::default();
            for (setting, value) in settings {
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    _ => {
                        return Err(format!(
                            "`columns.{column}.{setting}` must be a string, number or boolean"
                        ));
                    }
                };
                rule.set(setting, &text)
                    .map_err(|e| e.in_column(column).to_string())?;
            }
            rules.insert(column, rule).map_err(|e| e.to_string())?;
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::rules_from_toml;

    #[test]
    fn a_rules_file_sets_each_columns_rule_and_names_what_is_wrong() {
        let rules = rules_from_toml(
            "[columns.humid]\nmin = 0\nmax = 100.5\n[columns.tailnum]\nmark = false\n",
        )
        .unwrap();
        let humid = rules.get("humid").unwrap();
        assert_eq!((humid.min, humid.max), (Some(0.0), Some(100.5)));
        assert_eq!(rules.get("tailnum").unwrap().mark, Some(false));
        for (bad, says) in [
            ("[columns.x]\ncolour = 1\n", "unknown setting `colour`"),
            ("[columns.x]\nmark = [1]\n", "`columns.x.mark`"),
            (
                "[column.x]\nmark = true\n",
                "unknown top-level key `column`",
            ),
            ("[columns.x]\nkind = \"date\"\n", "unknown kind `date`"),
            ("[columns.x]\nmin = 3\nmax = 1\n", "above max"),
            ("[columns\n", ""),
        ] {
            let e = rules_from_toml(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
