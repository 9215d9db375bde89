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
    /// The virtual key the copy was marked from, when it was
    /// (`dbwm embed --virtual-key`); `dbwm extract` reads a leak with it
    /// when no key is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_key: Option<Vec<String>>,
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
            virtual_key: None,
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

    /// Records that the copy carries its mark in the added column `name`
    /// (`mode` and `pseudo_column` in the line).
    pub fn set_pseudo_column(&mut self, name: &str) {
        self.extra.insert("mode".into(), "pseudo-column".into());
        self.extra.insert("pseudo_column".into(), name.into());
    }

    /// Records that the copy carries its mark in `added` fabricated rows,
    /// about one per `spacing` real rows (`mode`, `row_spacing` and
    /// `pseudo_rows` in the line).
    pub fn set_pseudo_rows(&mut self, spacing: u32, added: u64) {
        self.extra.insert("mode".into(), "pseudo-rows".into());
        self.extra.insert("row_spacing".into(), spacing.into());
        self.extra.insert("pseudo_rows".into(), added.into());
    }

    /// Whether the copy may have been marked with `wm`'s key: its
    /// fingerprint matches or was not recorded.
    pub fn matches_key(&self, wm: &Watermarker) -> bool {
        self.key_fingerprint
            .as_deref()
            .is_none_or(|f| f.eq_ignore_ascii_case(&wm.key_fingerprint()))
    }
}

/// The issued copies a leak is tested against: the records of a registry
/// issued under one key, each content once.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Issued {
    /// The prepared candidates, in the order of `records`.
    pub candidates: crate::Candidates,
    /// The records kept: issued under the key (or with no fingerprint),
    /// the first of each content.
    pub records: Vec<Record>,
    /// Records set aside because another key issued them.
    pub other_keys: usize,
    /// One line per content issued to two different recipients (a match
    /// names the first).
    pub warnings: Vec<String>,
}

impl Issued {
    /// The copies of `records` issued under `wm`'s key, tested at
    /// `threshold`; `source` names the registry in messages.
    ///
    /// # Errors
    ///
    /// A message naming `source` when no record was issued under the key,
    /// or a content or threshold is invalid.
    pub fn from_records(
        wm: &Watermarker,
        records: Vec<Record>,
        threshold: f64,
        source: &str,
    ) -> Result<Self, String> {
        let total = records.len();
        let other_keys = records.iter().filter(|r| !r.matches_key(wm)).count();
        let mut kept: Vec<Record> = Vec::new();
        let mut warnings = Vec::new();
        for r in records {
            if !r.matches_key(wm) {
                continue;
            }
            match kept.iter().find(|k| k.content == r.content) {
                // The same content issued twice cannot tell its copies apart.
                Some(k) if k.recipient != r.recipient => warnings.push(format!(
                    "{source}: {:?} was issued to {:?} and to {:?}; a match names the first",
                    r.content,
                    k.recipient.as_deref().unwrap_or("?"),
                    r.recipient.as_deref().unwrap_or("?")
                )),
                Some(_) => {}
                None => kept.push(r),
            }
        }
        if kept.is_empty() {
            return Err(format!(
                "{source}: no candidate issued under this key (fingerprint {}) among {total} records",
                wm.key_fingerprint()
            ));
        }
        let candidates = wm
            .candidates(kept.iter().map(|r| r.content.as_str()))
            .and_then(|c| c.with_threshold(threshold))
            .map_err(|e| format!("{source}: {e}"))?;
        Ok(Self {
            candidates,
            records: kept,
            other_keys,
            warnings,
        })
    }

    /// [`Issued::from_records`] of the registry (or list of contents) at
    /// `path`.
    ///
    /// # Errors
    ///
    /// As [`Issued::from_records`], and when the file cannot be read.
    pub fn read(wm: &Watermarker, path: &Path, threshold: f64) -> Result<Self, String> {
        let records = read(path).map_err(|e| e.to_string())?;
        Self::from_records(wm, records, threshold, &path.display().to_string())
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
