//! The registry of issued copies (feature `registry`): one JSON object per
//! line, appended each time a copy is watermarked for a recipient, read back
//! as the candidates when a leak turns up.
//!
//! ```text
//! {"content":"acme->partner-07","recipient":"Partner 7 Ltd","issued_at":"2026-11-25T06:15:04Z","key_fingerprint":"3f9c2a7d10b4e865","rows":30000,"file":"out/partner-07.parquet"}
//! ```
//!
//! Only `content` is required; `recipient`, `issued_at` (RFC 3339, UTC),
//! `key_fingerprint` (see [`WatermarkKey::fingerprint`](crate::WatermarkKey::fingerprint);
//! never the key), `rows` and `file` are written by `dbwm embed --register`,
//! and any other field is kept and reported back. A hand-written list works
//! too: a line that does not start with `{` is a content by itself (blank
//! lines and lines starting with `#` are skipped).
//!
//! ```
//! use dbwatermark::registry::{self, Record};
//! let text = "# issued in November\n\
//!             acme->partner-01\n\
//!             {\"content\":\"acme->partner-02\",\"recipient\":\"Beta\"}\n";
//! let records = registry::parse(text)?;
//! assert_eq!(records.len(), 2);
//! assert_eq!(records[0], Record::new("acme->partner-01"));
//! assert_eq!(records[1].recipient.as_deref(), Some("Beta"));
//! # Ok::<(), registry::Error>(())
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Watermarker;

/// Errors reading or appending to a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The registry file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A line is not a record.
    #[error("line {line}: {reason}")]
    Line {
        /// Line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A line of a file is not a record.
    #[error("{path}: line {line}: {reason}")]
    FileLine {
        /// The registry file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// One issued copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Record {
    /// The watermark content embedded in the copy.
    pub content: String,
    /// Who received it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// When it was issued (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// The fingerprint of the key it was marked with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    /// Rows in the copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// The file written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The fingerprint of the plan it was marked under (which columns
    /// carry marks, how and within what limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_fingerprint: Option<String>,
    /// Any other field of the line, kept as written.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Record {
    /// A record of `content` alone.
    pub fn new(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            recipient: None,
            issued_at: None,
            key_fingerprint: None,
            rows: None,
            file: None,
            plan_fingerprint: None,
            extra: serde_json::Map::new(),
        }
    }

    /// The record of a copy just issued: `content` marked with `wm` into
    /// `rows` rows of `file`, now.
    pub fn issued(
        wm: &Watermarker,
        content: &str,
        recipient: Option<&str>,
        rows: u64,
        file: &Path,
    ) -> Self {
        Self {
            recipient: recipient.map(str::to_owned),
            issued_at: Some(crate::timefmt::rfc3339_utc(std::time::SystemTime::now())),
            key_fingerprint: Some(wm.key_fingerprint()),
            rows: Some(rows),
            file: Some(file.display().to_string()),
            ..Self::new(content)
        }
    }

    /// Whether the copy may have been marked with `wm`'s key: its
    /// fingerprint matches or was not recorded.
    pub fn matches_key(&self, wm: &Watermarker) -> bool {
        self.key_fingerprint
            .as_deref()
            .is_none_or(|f| f.eq_ignore_ascii_case(&wm.key_fingerprint()))
    }
}

/// Parses a registry: JSON lines and/or plain content lines.
///
/// # Errors
///
/// [`Error::Line`] naming the first line that is neither.
pub fn parse(text: &str) -> Result<Vec<Record>, Error> {
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fail = |reason: String| Error::Line {
            line: i + 1,
            reason,
        };
        let record = if trimmed.starts_with('{') {
            serde_json::from_str::<Record>(trimmed).map_err(|e| fail(e.to_string()))?
        } else {
            Record::new(line)
        };
        if !(1..=crate::MAX_CONTENT_BYTES).contains(&record.content.len()) {
            return Err(fail(format!(
                "content must be 1 to {} bytes, got {}",
                crate::MAX_CONTENT_BYTES,
                record.content.len()
            )));
        }
        records.push(record);
    }
    Ok(records)
}

/// Reads the registry at `path`.
///
/// # Errors
///
/// [`Error::Io`] if it cannot be read, [`Error::FileLine`] for a bad line.
pub fn read(path: &Path) -> Result<Vec<Record>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        Error::Line { line, reason } => Error::FileLine {
            path: path.to_owned(),
            line,
            reason,
        },
        other => other,
    })
}

/// An open registry file, ready to append to (opening it first lets a
/// command fail before doing any work if the registry is not writable).
#[derive(Debug)]
pub struct Appender {
    path: PathBuf,
    file: std::fs::File,
}

impl Appender {
    /// Opens (creating if needed) `path` for appending.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if it cannot be opened.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    /// Appends `record` as one line, in one write, and syncs it to disk.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if writing fails.
    pub fn append(&mut self, record: &Record) -> Result<(), Error> {
        let mut line = serde_json::to_string(record).expect("records serialize");
        line.push('\n');
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_named() {
        let err = parse("a\n{\"recipient\":\"x\"}\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 2: missing field `content`"),
            "{err}"
        );
        let err = parse(&format!("ok\n\n{}\n", "x".repeat(65))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: content must be 1 to 64 bytes, got 65"
        );
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let line = r#"{"content":"c","contract":"K-17","rows":5}"#;
        let r = parse(line).unwrap().remove(0);
        assert_eq!(r.rows, Some(5));
        assert_eq!(r.extra["contract"], "K-17");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"content":"c","rows":5,"contract":"K-17"}"#
        );
    }
}
