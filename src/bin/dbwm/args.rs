//! Flags shared by several commands: where the key comes from and how
//! files are read.

use std::path::PathBuf;

use dbwatermark::files::{self, Format};
use dbwatermark::pipeline;
use dbwatermark::{Config, WatermarkKey, Watermarker};

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
    /// Primary-key column(s), comma-separated, in key order.
    #[arg(long, value_delimiter = ',', required = true)]
    pub pk: Vec<String>,
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
}

impl ReadArgs {
    pub fn columns(&self) -> pipeline::Columns {
        pipeline::Columns {
            key: self.pk.clone(),
            marked: self.columns.clone(),
        }
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
