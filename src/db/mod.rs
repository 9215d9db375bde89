//! Database tables as sources and targets (features `postgres`, `sqlite`):
//! a table or query read as a stream of Arrow batches for the engine, and a
//! new table written from marked batches, complete or not at all.
//!
//! * [`DbUrl`]: `postgresql://` (or `postgres://`), `mysql://` (or
//!   `mariadb://`) and `sqlite://PATH` URLs, shown with the password redacted everywhere
//!   (`Display`, `Debug`, errors).
//! * [`open`]: a [`Relation`] (a table, schema-qualified allowed, or a
//!   query) read in a read-only transaction, with the table's primary key
//!   and column types.
//! * [`Target`]: a new table with the source's column types, NULL
//!   constraints and primary key, written inside one transaction that
//!   commits only in [`Target::finish`]; dropped before that, nothing is
//!   left behind.

use std::fmt;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::SchemaRef;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod tls;
// The text forms of values; PostgreSQL's COPY parsing is its alone.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
mod text;

/// Batches read ahead of the engine: two, so memory stays bounded by the
/// batch size.
const AHEAD: usize = 2;

type BatchResult = std::result::Result<RecordBatch, arrow_schema::ArrowError>;

/// The batches a reading thread sends; the thread is joined at the end.
struct Batches {
    schema: SchemaRef,
    rx: std::sync::mpsc::Receiver<BatchResult>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Batches {
    fn new(
        schema: SchemaRef,
        rx: std::sync::mpsc::Receiver<BatchResult>,
        thread: std::thread::JoinHandle<()>,
    ) -> Self {
        Self {
            schema,
            rx,
            thread: Some(thread),
        }
    }
}

impl Iterator for Batches {
    type Item = BatchResult;

    fn next(&mut self) -> Option<BatchResult> {
        match self.rx.recv() {
            Ok(b) => Some(b),
            Err(_) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
                None
            }
        }
    }
}

impl RecordBatchReader for Batches {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// What went wrong with a database source or target. Messages name the
/// table, column and row, and show URLs with their password redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL cannot be used.
    #[error("{url}: {reason}")]
    Url {
        /// The URL, redacted.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server could not be reached or refused the credentials.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL, redacted.
        url: String,
        /// Why.
        reason: String,
    },
    /// A statement on a table failed (missing table, no permission, ...).
    #[error("{table}: {reason}")]
    Table {
        /// The table (or `query`).
        table: String,
        /// Why.
        reason: String,
    },
    /// A value cannot be read or written.
    #[error("{table}: row {row}, column `{column}`: {reason}")]
    Value {
        /// The table (or `query`).
        table: String,
        /// The column.
        column: String,
        /// The row, from 1.
        row: u64,
        /// Why.
        reason: String,
    },
    /// The target table exists and `replace` was not asked for.
    #[error("{table} already exists; nothing was written (replacing it must be asked for)")]
    Exists {
        /// The table.
        table: String,
    },
    /// Writing the target failed; nothing was committed.
    #[error("writing {table} failed, nothing was written: {reason}")]
    Write {
        /// The table.
        table: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Whether the caller can fix it (a bad URL, table, query or value)
    /// rather than it being a failure to write the target.
    pub fn is_caller_error(&self) -> bool {
        !matches!(self, Self::Write { .. })
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// `postgresql://` or `postgres://`.
    Postgres,
    /// `mysql://` (MySQL and MariaDB).
    MySql,
    /// `sqlite://PATH` (`sqlite:///abs/path` or `sqlite://relative/path`).
    Sqlite,
}

/// A database URL. Its `Display` and `Debug` never show the password.
///
/// ```
/// use dbwatermark::db::{DbUrl, Scheme};
///
/// let url = DbUrl::parse("postgresql://app:s3cret@127.0.0.1:5432/shop").unwrap()?;
/// assert_eq!(url.scheme(), Scheme::Postgres);
/// assert_eq!(url.to_string(), "postgresql://app:***@127.0.0.1:5432/shop");
/// assert!(!format!("{url:?}").contains("s3cret"));
/// assert!(DbUrl::parse("orders.parquet").is_none());
/// # Ok::<(), dbwatermark::db::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    scheme: Scheme,
    raw: String,
}

impl DbUrl {
    /// `None` when `text` is not a database URL (a file path); else the URL
    /// or why it cannot be used.
    pub fn parse(text: &str) -> Option<Result<Self>> {
        let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
        let scheme = if lower.starts_with("postgresql://") || lower.starts_with("postgres://") {
            Scheme::Postgres
        } else if lower.starts_with("mysql://") || lower.starts_with("mariadb://") {
            Scheme::MySql
        } else if lower.starts_with("sqlite://") {
            Scheme::Sqlite
        } else {
            return None;
        };
        let url = Self {
            scheme,
            raw: text.to_owned(),
        };
        if scheme == Scheme::Sqlite && url.sqlite_path().is_empty() {
            return Some(Err(url.error("give the database file: sqlite://PATH")));
        }
        Some(Ok(url))
    }

    /// The same URL with `password` as its password (replacing any), for a
    /// password kept in a file of its own rather than in the URL. The
    /// password is percent-encoded into the URL's authority.
    ///
    /// ```
    /// use dbwatermark::db::DbUrl;
    ///
    /// let url = DbUrl::parse("postgresql://app@db.example:5432/shop").unwrap()?;
    /// let with = url.with_password("p@ss:w/rd")?;
    /// assert_eq!(with.to_string(), "postgresql://app:***@db.example:5432/shop");
    /// assert!(DbUrl::parse("postgresql://db.example/shop").unwrap()?.with_password("x").is_err());
    /// # Ok::<(), dbwatermark::db::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Url`] for a `sqlite://` URL (SQLite has no passwords) or a
    /// URL without a user name to go with the password.
    pub fn with_password(&self, password: &str) -> Result<Self> {
        if self.scheme == Scheme::Sqlite {
            return Err(self.error("SQLite databases have no password"));
        }
        let start = self.raw.find("://").map_or(0, |i| i + 3);
        let end = self.raw[start..]
            .find(['/', '?', '#'])
            .map_or(self.raw.len(), |i| start + i);
        let Some(at) = self.raw[start..end].rfind('@').map(|i| start + i) else {
            return Err(self.error(
                "give the user name in the URL (scheme://USER@host/...) to go with the password",
            ));
        };
        let user_end = self.raw[start..at].find(':').map_or(at, |i| start + i);
        let mut encoded = String::with_capacity(password.len());
        for b in password.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                encoded.push(char::from(b));
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        let raw = format!("{}:{encoded}{}", &self.raw[..user_end], &self.raw[at..]);
        Ok(Self {
            scheme: self.scheme,
            raw,
        })
    }

    /// Which database it names.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.raw)
    }

    /// The URL as given, password included: for the driver only.
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    pub(crate) fn secret_text(&self) -> &str {
        &self.raw
    }

    /// The file of a `sqlite://` URL.
    pub(crate) fn sqlite_path(&self) -> &str {
        let rest = &self.raw["sqlite://".len()..];
        rest.split_once('?').map_or(rest, |(p, _)| p)
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> Error {
        Error::Url {
            url: self.redacted(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({})", self.redacted())
    }
}

/// `text` with the password of a `scheme://user:password@host` authority
/// and of any `password=` query parameter replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let end = out[start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..end].rfind('@').map(|i| start + i)
            && let Some(colon) = out[start..at].find(':').map(|i| start + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    let mut from = 0;
    while let Some(i) = out[from..].to_ascii_lowercase().find("password=") {
        let value = from + i + "password=".len();
        let end = out[value..].find('&').map_or(out.len(), |j| value + j);
        out.replace_range(value..end, "***");
        from = value + 3;
    }
    out
}

/// What to read from a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// A table (or view), schema-qualified allowed (`sales.orders`).
    Table(String),
    /// A query; its rows are read as a table.
    Query(String),
}

impl Relation {
    /// How messages name it.
    pub fn label(&self) -> String {
        match self {
            Self::Table(t) => format!("table {t}"),
            Self::Query(_) => "the query".to_owned(),
        }
    }
}

/// One column of a source: its name, the database's type (as the target is
/// created with it) and whether it is declared NOT NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbColumn {
    /// The column.
    pub name: String,
    /// Its type as the database writes it (`numeric(12,2)`, `text`, ...).
    pub sql_type: String,
    /// Declared NOT NULL.
    pub not_null: bool,
    /// Read as text and never marked (a type the engine does not map:
    /// uuid, json, arrays, ...); written back as it was read.
    pub passed_through: bool,
}

/// A database relation opened for reading.
pub struct Source {
    /// The batches, in the relation's order.
    pub reader: Box<dyn RecordBatchReader + Send>,
    /// Rows, counted in the same read-only snapshot.
    pub rows: Option<usize>,
    /// The primary key (from the table's constraint; empty for a query).
    pub primary_key: Vec<String>,
    /// Every column, in order.
    pub columns: Vec<DbColumn>,
    /// The database the rows come from.
    pub scheme: Scheme,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("rows", &self.rows)
            .field("primary_key", &self.primary_key)
            .field("columns", &self.columns)
            .finish()
    }
}

/// Opens `relation` at `url` for reading, `batch_rows` rows per batch,
/// inside a read-only transaction.
///
/// # Errors
///
/// [`Error`] naming the URL (redacted), the table or the row and column.
pub fn open(url: &DbUrl, relation: &Relation, batch_rows: usize) -> Result<Source> {
    match url.scheme {
        #[cfg(feature = "postgres")]
        Scheme::Postgres => pg::open(url, relation, batch_rows.max(1)),
        #[cfg(feature = "sqlite")]
        Scheme::Sqlite => sqlite::open(url, relation, batch_rows.max(1)),
        #[cfg(feature = "mysql")]
        Scheme::MySql => mysql::open(url, relation, batch_rows.max(1)),
        #[allow(unreachable_patterns)] // with every database feature on
        other => Err(unsupported(url, other)),
    }
}

fn unsupported(url: &DbUrl, scheme: Scheme) -> Error {
    let what = match scheme {
        Scheme::MySql => "this build has no MySQL/MariaDB support (feature `mysql`)",
        Scheme::Postgres => "this build has no PostgreSQL support (feature `postgres`)",
        Scheme::Sqlite => "this build has no SQLite support (feature `sqlite`)",
    };
    url.error(what)
}

/// How the target table is made.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    /// Replace a table of that name (dropped and re-created inside the same
    /// transaction, so readers see the old table until the new one
    /// commits).
    pub replace: bool,
    /// The source's columns, when it is a table of the same database kind:
    /// the target gets their types and NOT NULL constraints. Otherwise the
    /// types follow the Arrow schema.
    pub columns: Option<Vec<DbColumn>>,
    /// The primary key to declare.
    pub primary_key: Vec<String>,
}

/// A new table being written; it exists for others only once
/// [`Target::finish`] commits.
pub struct Target {
    inner: Box<dyn TargetWriter>,
    table: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("table", &self.table)
            .finish()
    }
}

pub(crate) trait TargetWriter: Send {
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;
    fn finish(self: Box<Self>) -> Result<u64>;
}

impl Target {
    /// Starts writing table `table` at `url` for batches of `schema`.
    ///
    /// # Errors
    ///
    /// [`Error::Exists`] when the table exists and `options.replace` is
    /// not set; [`Error::Connect`], [`Error::Table`] otherwise.
    pub fn create(
        url: &DbUrl,
        table: &str,
        schema: &SchemaRef,
        options: &TargetOptions,
    ) -> Result<Self> {
        let inner: Box<dyn TargetWriter> = match url.scheme {
            #[cfg(feature = "postgres")]
            Scheme::Postgres => Box::new(pg::Writer::create(url, table, schema, options)?),
            #[cfg(feature = "sqlite")]
            Scheme::Sqlite => Box::new(sqlite::Writer::create(url, table, schema, options)?),
            #[cfg(feature = "mysql")]
            Scheme::MySql => Box::new(mysql::Writer::create(url, table, schema, options)?),
            #[allow(unreachable_patterns)] // with every database feature on
            other => return Err(unsupported(url, other)),
        };
        Ok(Self {
            inner,
            table: table.to_owned(),
        })
    }

    /// Writes one batch.
    ///
    /// # Errors
    ///
    /// [`Error::Write`] or [`Error::Value`]; the table is then never
    /// created.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.inner.write(batch)
    }

    /// Commits: the table appears with every row written. Returns the rows.
    ///
    /// # Errors
    ///
    /// [`Error::Write`]; nothing was committed.
    pub fn finish(self) -> Result<u64> {
        self.inner.finish()
    }
}

/// The column definitions (and primary key) of a target table for batches
/// of `schema`: the source's own types and NOT NULL constraints where
/// `options.columns` has them, else `sql_type` of the Arrow type.
pub(crate) fn table_definition(
    schema: &SchemaRef,
    options: &TargetOptions,
    label: &str,
    database: &str,
    sql_type: impl Fn(&arrow_schema::DataType) -> Option<String>,
) -> Result<String> {
    let mut definitions = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        let source = options
            .columns
            .as_ref()
            .and_then(|c| c.get(i))
            .filter(|c| c.name == *field.name());
        let (ty, not_null) = match source {
            Some(c) => (c.sql_type.clone(), c.not_null),
            None => (
                sql_type(field.data_type()).ok_or_else(|| Error::Table {
                    table: label.to_owned(),
                    reason: format!(
                        "column `{}` has type {}, which has no {database} type here",
                        field.name(),
                        field.data_type()
                    ),
                })?,
                !field.is_nullable(),
            ),
        };
        definitions.push(format!(
            "{} {ty}{}",
            quote_ident(field.name()),
            if not_null { " NOT NULL" } else { "" }
        ));
    }
    if !options.primary_key.is_empty() {
        let key: Vec<String> = options.primary_key.iter().map(|k| quote_ident(k)).collect();
        definitions.push(format!("PRIMARY KEY ({})", key.join(", ")));
    }
    Ok(definitions.join(", "))
}

/// The `SELECT` that reads `relation`.
fn select_of(relation: &Relation) -> String {
    match relation {
        Relation::Table(t) => format!("SELECT * FROM {}", quote_table(t)),
        Relation::Query(q) => q.trim().trim_end_matches(';').to_owned(),
    }
}

/// The Arrow schema of described columns.
fn schema_of(columns: &[DbColumn], types: &[arrow_schema::DataType]) -> SchemaRef {
    std::sync::Arc::new(arrow_schema::Schema::new(
        columns
            .iter()
            .zip(types)
            .map(|(c, t)| arrow_schema::Field::new(&c.name, t.clone(), !c.not_null))
            .collect::<Vec<_>>(),
    ))
}

/// What a reading thread knows of its source: the SELECT it runs, how
/// messages name it, its columns' names and Arrow schema, and the rows per
/// batch.
#[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))]
struct ReadSpec {
    from: String,
    label: String,
    names: Vec<String>,
    schema: SchemaRef,
    batch_rows: usize,
}

impl ReadSpec {
    #[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))]
    fn new(
        from: String,
        relation: &Relation,
        columns: &[DbColumn],
        schema: &SchemaRef,
        batch_rows: usize,
    ) -> Self {
        Self {
            from,
            label: relation.label(),
            names: columns.iter().map(|c| c.name.clone()).collect(),
            schema: schema.clone(),
            batch_rows,
        }
    }

    /// The error of row `row` (from 1), column `i`, for the batch stream.
    #[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))]
    fn value_error(&self, i: usize, row: u64, reason: String) -> arrow_schema::ArrowError {
        arrow_schema::ArrowError::ExternalError(Box::new(Error::Value {
            table: self.label.clone(),
            column: self.names[i].clone(),
            row,
            reason,
        }))
    }

    /// `(from, label, schema, batch_rows)`.
    #[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))]
    fn parts(&self) -> (&str, &str, &SchemaRef, usize) {
        (&self.from, &self.label, &self.schema, self.batch_rows)
    }
}

/// Runs `read` in its own thread: it first sends the row count (or why it
/// cannot read), then the batches, at most [`AHEAD`] ahead of the reader.
fn read_in_thread(
    label: &str,
    schema: SchemaRef,
    read: impl FnOnce(
        &std::sync::mpsc::SyncSender<Result<usize>>,
        &std::sync::mpsc::SyncSender<BatchResult>,
    ) + Send
    + 'static,
) -> Result<(usize, Batches)> {
    let (rows_tx, rows_rx) = std::sync::mpsc::sync_channel(1);
    let (batches_tx, batches_rx) = std::sync::mpsc::sync_channel(AHEAD);
    let thread = std::thread::spawn(move || read(&rows_tx, &batches_tx));
    match rows_rx.recv() {
        Ok(Ok(rows)) => Ok((rows, Batches::new(schema, batches_rx, thread))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::Table {
            table: label.to_owned(),
            reason: "the reading thread stopped".into(),
        }),
    }
}

/// Quotes an identifier for SQL (`"name"`, doubled quotes inside).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A possibly schema-qualified table name, quoted part by part: `a.b` is
/// schema `a`, table `b`; a part already in double quotes is kept.
pub(crate) fn quote_table(name: &str) -> String {
    let mut parts = Vec::new();
    let mut rest = name.trim();
    while !rest.is_empty() {
        if let Some(q) = rest.strip_prefix('"') {
            // A quoted part runs to the next lone quote.
            let mut end = 0;
            let bytes = q.as_bytes();
            while end < bytes.len() {
                if bytes[end] == b'"' {
                    if bytes.get(end + 1) == Some(&b'"') {
                        end += 2;
                        continue;
                    }
                    break;
                }
                end += 1;
            }
            parts.push(format!("\"{}\"", &q[..end.min(q.len())]));
            rest = q.get(end + 1..).unwrap_or("").trim_start_matches('.');
        } else {
            let (part, tail) = rest.split_once('.').unwrap_or((rest, ""));
            parts.push(quote_ident(part));
            rest = tail;
        }
    }
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_in_the_authority_and_in_parameters() {
        assert_eq!(
            redact("postgresql://u:p%40ss@h:1/db"),
            "postgresql://u:***@h:1/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgresql://h/db?user=u&password=pw&sslmode=disable"),
            "postgresql://h/db?user=u&password=***&sslmode=disable"
        );
        assert_eq!(
            redact("mysql://root:x@127.0.0.1/d"),
            "mysql://root:***@127.0.0.1/d"
        );
        assert_eq!(redact("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
    }

    #[test]
    fn urls_are_told_from_paths() {
        assert!(DbUrl::parse("data/orders.csv").is_none());
        assert!(DbUrl::parse("C:/x.parquet").is_none());
        assert_eq!(
            DbUrl::parse("SQLITE://a.db").unwrap().unwrap().scheme(),
            Scheme::Sqlite
        );
        assert!(DbUrl::parse("sqlite://").unwrap().is_err());
        assert_eq!(
            DbUrl::parse("sqlite:///tmp/x.db?mode=ro")
                .unwrap()
                .unwrap()
                .sqlite_path(),
            "/tmp/x.db"
        );
    }

    #[test]
    fn table_names_are_quoted_part_by_part() {
        assert_eq!(quote_table("orders"), "\"orders\"");
        assert_eq!(quote_table("sales.orders"), "\"sales\".\"orders\"");
        assert_eq!(quote_table("\"My Schema\".t"), "\"My Schema\".\"t\"");
        assert_eq!(quote_table("a\"b"), "\"a\"\"b\"");
    }
}
