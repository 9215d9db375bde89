//! PostgreSQL: text COPY out of a read-only transaction, text COPY into a
//! new table inside one transaction. Text COPY carries every value exactly
//! as the server prints and parses it (NUMERIC digits, float shortest
//! round-trip forms, timestamps to the microsecond), so nothing is rounded
//! on the way through; the session is set to ISO dates and UTC.

use std::io::{BufRead, Write};
use std::str::FromStr;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, SchemaRef, TimeUnit};
use postgres::{Client, IsolationLevel, NoTls};

use super::tls::SslMode;

use super::text::{self, Cell, TextColumn};
use super::{
    AHEAD, BatchResult, DbColumn, DbUrl, Error, Relation, Result, Source, TargetOptions,
    TargetWriter, quote_table,
};

/// Settings every session gets: ISO dates, UTC times, shortest exact floats.
const SESSION: &str = "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; \
                       SET extra_float_digits = 1; SET IntervalStyle = 'postgres'";

fn connect(url: &DbUrl) -> Result<Client> {
    let fail = |reason: String| Error::Connect {
        url: url.redacted(),
        reason,
    };
    let (text, tls) = super::tls::take_params(url, url.secret_text())?;
    let mut config = postgres::Config::from_str(&text)
        .map_err(|e| fail(format!("not a PostgreSQL URL: {e}")))?;
    config.ssl_mode(match tls.mode {
        Some(SslMode::Disable) => postgres::config::SslMode::Disable,
        Some(m) if m.required() => postgres::config::SslMode::Require,
        _ => postgres::config::SslMode::Prefer,
    });
    if config.get_hosts().is_empty() {
        config.host(&std::env::var("PGHOST").unwrap_or_else(|_| "localhost".into()));
    }
    if config.get_ports().is_empty()
        && let Some(port) = std::env::var("PGPORT").ok().and_then(|p| p.parse().ok())
    {
        config.port(port);
    }
    if config.get_user().is_none() {
        let user = std::env::var("PGUSER")
            .or_else(|_| std::env::var("USER"))
            .map_err(|_| fail("no user: give one in the URL or set PGUSER".into()))?;
        config.user(&user);
    }
    if config.get_dbname().is_none()
        && let Ok(db) = std::env::var("PGDATABASE")
    {
        config.dbname(&db);
    }
    if config.get_password().is_none()
        && let Some(password) = password_from_env(&config)
    {
        config.password(password);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.application_name("dbwm");
    #[cfg(feature = "tls")]
    let connected = if tls.mode == Some(SslMode::Disable) {
        config.connect(NoTls)
    } else {
        let rustls = super::tls::client_config(url, &tls)?;
        config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(rustls))
    };
    #[cfg(not(feature = "tls"))]
    let connected = config.connect(NoTls);
    let mut client = connected.map_err(|e| fail(message(&e)))?;
    client
        .batch_execute(SESSION)
        .map_err(|e| fail(message(&e)))?;
    Ok(client)
}

/// `PGPASSWORD`, else the matching line of `PGPASSFILE` or `~/.pgpass`
/// (`host:port:database:user:password`, `*` matching anything).
fn password_from_env(config: &postgres::Config) -> Option<String> {
    if let Ok(p) = std::env::var("PGPASSWORD") {
        return Some(p);
    }
    let path = std::env::var("PGPASSFILE")
        .ok()
        .or_else(|| std::env::var("HOME").ok().map(|h| format!("{h}/.pgpass")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    let want = [host.as_str(), port.as_str(), db, user];
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let fields = split_pgpass(line);
            (fields.len() == 5
                && fields[..4]
                    .iter()
                    .zip(want)
                    .all(|(f, w)| f == "*" || f == w))
            .then(|| fields[4].clone())
        })
}

/// The fields of a `.pgpass` line (`:` separates, `\` escapes).
fn split_pgpass(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut().expect("one field").extend(chars.next()),
            ':' => out.push(String::new()),
            c => out.last_mut().expect("one field").push(c),
        }
    }
    out
}

/// A driver error as a sentence (the server's message when there is one).
/// The server's message, or the client's with its causes (a TLS
/// handshake's "invalid peer certificate: UnknownIssuer", say).
fn message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_owned();
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// How a PostgreSQL type is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    /// numeric(p, s) with p ≤ 38: exact in Decimal128.
    Decimal(u8, i8),
    /// Text and unconstrained numeric (numbers written as text, marked at
    /// each value's own scale).
    Text,
    Bool,
    Date,
    Timestamp,
    TimestampTz,
    /// Another type, carried as its text and never marked.
    Other,
}

impl Kind {
    fn of(type_name: &str, typmod: i32) -> Self {
        match type_name {
            "int2" => Self::Int16,
            "int4" => Self::Int32,
            "int8" => Self::Int64,
            "float4" => Self::Float32,
            "float8" => Self::Float64,
            "numeric" if typmod >= 4 => {
                let precision = ((typmod - 4) >> 16) & 0xffff;
                let scale = (typmod - 4) & 0xffff;
                if (1..=38).contains(&precision) && scale <= precision {
                    Self::Decimal(precision as u8, scale as i8)
                } else {
                    Self::Text
                }
            }
            "numeric" | "text" | "varchar" | "bpchar" | "name" | "citext" => Self::Text,
            "bool" => Self::Bool,
            "date" => Self::Date,
            "timestamp" => Self::Timestamp,
            "timestamptz" => Self::TimestampTz,
            _ => Self::Other,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Self::Int16 => DataType::Int16,
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
            Self::Decimal(p, s) => DataType::Decimal128(p, s),
            Self::Text | Self::Other => DataType::Utf8,
            Self::Bool => DataType::Boolean,
            Self::Date => DataType::Date32,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

/// The columns of `relation`, with their kinds.
fn describe(client: &mut Client, relation: &Relation) -> Result<Vec<(DbColumn, Kind)>> {
    let label = relation.label();
    let fail = |e: postgres::Error| Error::Table {
        table: label.clone(),
        reason: message(&e),
    };
    match relation {
        Relation::Table(table) => {
            let rows = client
                .query(
                    "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typname::text, \
                     a.attnotnull, a.atttypmod \
                     FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                     WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped \
                     ORDER BY a.attnum",
                    &[table],
                )
                .map_err(fail)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let kind = Kind::of(r.get::<_, String>(2).as_str(), r.get(4));
                    let column = DbColumn {
                        name: r.get(0),
                        sql_type: r.get(1),
                        not_null: r.get(3),
                        passed_through: kind == Kind::Other,
                    };
                    (column, kind)
                })
                .collect())
        }
        Relation::Query(query) => {
            let statement = client.prepare(query).map_err(fail)?;
            Ok(statement
                .columns()
                .iter()
                .map(|c| {
                    let kind = Kind::of(c.type_().name(), -1);
                    let column = DbColumn {
                        name: c.name().to_owned(),
                        sql_type: c.type_().name().to_owned(),
                        not_null: false,
                        passed_through: kind == Kind::Other,
                    };
                    (column, kind)
                })
                .collect())
        }
    }
}

fn primary_key(client: &mut Client, table: &str) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1::text::regclass AND i.indisprimary \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
            &[&table],
        )
        .map_err(|e| Error::Table {
            table: format!("table {table}"),
            reason: message(&e),
        })?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub(super) fn open(url: &DbUrl, relation: &Relation, batch_rows: usize) -> Result<Source> {
    let mut client = connect(url)?;
    let described = describe(&mut client, relation)?;
    let primary_key = match relation {
        Relation::Table(t) => primary_key(&mut client, t)?,
        Relation::Query(_) => Vec::new(),
    };
    let (columns, kinds): (Vec<DbColumn>, Vec<Kind>) = described.into_iter().unzip();
    let types: Vec<DataType> = kinds.iter().map(|k| k.data_type()).collect();
    let schema = super::schema_of(&columns, &types);
    let label = relation.label();
    let reader = Reading {
        client,
        from: super::select_of(relation),
        label: label.clone(),
        names: columns.iter().map(|c| c.name.clone()).collect(),
        kinds,
        schema: schema.clone(),
        batch_rows,
    };
    let (rows, batches) =
        super::read_in_thread(&label, schema, move |rows, out| reader.run(rows, out))?;
    Ok(Source {
        reader: Box::new(batches),
        rows: Some(rows),
        primary_key,
        columns,
        scheme: super::Scheme::Postgres,
    })
}

/// The reading thread: counts and copies out in one read-only snapshot.
struct Reading {
    client: Client,
    from: String,
    label: String,
    names: Vec<String>,
    kinds: Vec<Kind>,
    schema: SchemaRef,
    batch_rows: usize,
}

impl Reading {
    fn run(mut self, rows_tx: &SyncSender<Result<usize>>, out: &SyncSender<BatchResult>) {
        let label = self.label.clone();
        let fail = |e: postgres::Error| Error::Table {
            table: label.clone(),
            reason: message(&e),
        };
        let mut tx = match self
            .client
            .build_transaction()
            .read_only(true)
            .isolation_level(IsolationLevel::RepeatableRead)
            .start()
        {
            Ok(tx) => tx,
            Err(e) => {
                let _ = rows_tx.send(Err(fail(e)));
                return;
            }
        };
        let count = tx
            .query_one(
                &format!("SELECT count(*) FROM ({}) AS source", self.from),
                &[],
            )
            .map(|r| r.get::<_, i64>(0) as usize)
            .map_err(fail);
        let failed = count.is_err();
        let _ = rows_tx.send(count);
        if failed {
            return;
        }
        let copy = format!("COPY ({}) TO STDOUT", self.from);
        let mut reader = match tx.copy_out(&copy) {
            Ok(r) => r,
            Err(e) => {
                let _ = out.send(Err(ArrowError::ExternalError(Box::new(fail(e)))));
                return;
            }
        };
        let mut columns = Columns::new(&self.kinds, self.batch_rows);
        let mut line = Vec::new();
        let mut row = 0u64;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    let _ = out.send(Err(ArrowError::ExternalError(Box::new(Error::Table {
                        table: self.label.clone(),
                        reason: e.to_string(),
                    }))));
                    return;
                }
            }
            row += 1;
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if let Err((column, reason)) = columns.push_line(&line) {
                let e = Error::Value {
                    table: self.label.clone(),
                    column: self.names.get(column).cloned().unwrap_or_default(),
                    row,
                    reason,
                };
                let _ = out.send(Err(ArrowError::ExternalError(Box::new(e))));
                return;
            }
            if columns.len == self.batch_rows && out.send(columns.finish(&self.schema)).is_err() {
                return;
            }
        }
        if columns.len > 0 {
            let _ = out.send(columns.finish(&self.schema));
        }
        drop(reader);
        let _ = tx.commit();
    }
}

/// Column builders for one batch.
struct Columns {
    kinds: Vec<Kind>,
    builders: Vec<TextColumn>,
    len: usize,
    capacity: usize,
}

impl Columns {
    fn new(kinds: &[Kind], capacity: usize) -> Self {
        Self {
            kinds: kinds.to_vec(),
            builders: kinds
                .iter()
                .map(|&k| TextColumn::new(&k.data_type(), capacity))
                .collect(),
            len: 0,
            capacity,
        }
    }

    /// Appends one COPY line; on error, the column index and why.
    fn push_line(&mut self, line: &[u8]) -> std::result::Result<(), (usize, String)> {
        let mut fields = text::fields(line);
        for (i, b) in self.builders.iter_mut().enumerate() {
            let cell = fields
                .next()
                .ok_or_else(|| (i, "the row has fewer columns than the table".to_owned()))?
                .map_err(|e| (i, e))?;
            match cell {
                Cell::Null => b.push_null(),
                Cell::Value(v) => b.push_text(&v).map_err(|e| (i, e))?,
            }
        }
        if fields.next().is_some() {
            return Err((
                self.builders.len(),
                "the row has more columns than the table".into(),
            ));
        }
        self.len += 1;
        Ok(())
    }

    fn finish(&mut self, schema: &SchemaRef) -> BatchResult {
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(TextColumn::finish).collect();
        self.len = 0;
        let _ = (&self.kinds, self.capacity);
        RecordBatch::try_new(schema.clone(), arrays)
    }
}

/// A PostgreSQL type for an Arrow type, when the target is not made from a
/// PostgreSQL source's own types.
fn sql_type(dt: &DataType) -> Option<String> {
    Some(match dt {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 => "numeric(20,0)".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("numeric({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea".into(),
        _ => return None,
    })
}

enum Message {
    Rows(Vec<u8>),
    Finish(SyncSender<Result<u64>>),
}

/// The target: a thread owning the connection runs the transaction and the
/// COPY; batches arrive as COPY text.
pub(super) struct Writer {
    tx: Option<SyncSender<Message>>,
    thread: Option<JoinHandle<Result<u64>>>,
    table: String,
    written: u64,
}

impl Writer {
    pub(super) fn create(
        url: &DbUrl,
        table: &str,
        schema: &SchemaRef,
        options: &TargetOptions,
    ) -> Result<Self> {
        let label = format!("table {table}");
        let definition = super::table_definition(schema, options, &label, "PostgreSQL", sql_type)?;
        let quoted = quote_table(table);
        let create = format!("CREATE TABLE {quoted} ({definition})");
        let copy = format!("COPY {quoted} FROM STDIN");
        let mut client = connect(url)?;
        let fail = |e: postgres::Error| Error::Table {
            table: label.clone(),
            reason: message(&e),
        };
        let exists: bool = client
            .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&table])
            .map_err(fail)?
            .get(0);
        if exists && !options.replace {
            return Err(Error::Exists { table: label });
        }
        let replace = options
            .replace
            .then(|| format!("DROP TABLE IF EXISTS {quoted}"));
        let (tx, rx) = sync_channel::<Message>(AHEAD);
        let (ready_tx, ready_rx) = sync_channel::<Result<()>>(1);
        let thread_label = label.clone();
        let thread = std::thread::spawn(move || {
            write_thread(
                client,
                &thread_label,
                replace,
                &create,
                &copy,
                &rx,
                &ready_tx,
            )
        });
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                return Err(thread.join().err().map_or_else(
                    || Error::Write {
                        table: label.clone(),
                        reason: "the writing thread stopped".into(),
                    },
                    |_| Error::Write {
                        table: label.clone(),
                        reason: "the writing thread panicked".into(),
                    },
                ));
            }
        }
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            table: label,
            written: 0,
        })
    }

    /// The writing thread's error, once it stopped.
    fn stopped(&mut self) -> Error {
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => Error::Write {
                table: self.table.clone(),
                reason: "the writing thread stopped".into(),
            },
        }
    }
}

fn write_thread(
    mut client: Client,
    label: &str,
    replace: Option<String>,
    create: &str,
    copy: &str,
    rx: &Receiver<Message>,
    ready: &SyncSender<Result<()>>,
) -> Result<u64> {
    let write_fail = |e: &dyn std::fmt::Display| Error::Write {
        table: label.to_owned(),
        reason: e.to_string(),
    };
    let mut tx = match client.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let _ = ready.send(Err(write_fail(&message(&e))));
            return Ok(0);
        }
    };
    let prepare = replace
        .iter()
        .map(String::as_str)
        .chain([create])
        .try_for_each(|sql| tx.batch_execute(sql));
    if let Err(e) = prepare {
        let _ = ready.send(Err(Error::Table {
            table: label.to_owned(),
            reason: message(&e),
        }));
        return Ok(0);
    }
    let mut writer = match tx.copy_in(copy) {
        Ok(w) => w,
        Err(e) => {
            let _ = ready.send(Err(write_fail(&message(&e))));
            return Ok(0);
        }
    };
    let _ = ready.send(Ok(()));
    loop {
        match rx.recv() {
            Ok(Message::Rows(bytes)) => {
                writer.write_all(&bytes).map_err(|e| write_fail(&e))?;
            }
            Ok(Message::Finish(done)) => {
                let result = writer
                    .finish()
                    .map_err(|e| write_fail(&message(&e)))
                    .and_then(|rows| {
                        tx.commit()
                            .map(|()| rows)
                            .map_err(|e| write_fail(&message(&e)))
                    });
                let out = result.as_ref().map(|r| *r).map_err(|e| Error::Write {
                    table: label.to_owned(),
                    reason: e.to_string(),
                });
                let _ = done.send(out);
                return result;
            }
            // Dropped without finishing: the COPY and the transaction are
            // abandoned, so the table never appears.
            Err(_) => return Ok(0),
        }
    }
}

impl TargetWriter for Writer {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut bytes = Vec::with_capacity(batch.num_rows() * 64);
        text::encode_batch(batch, &mut bytes).map_err(|(row, column, reason)| Error::Value {
            table: self.table.clone(),
            column,
            row: self.written + row as u64 + 1,
            reason,
        })?;
        self.written += batch.num_rows() as u64;
        let Some(tx) = &self.tx else {
            return Err(self.stopped());
        };
        if tx.send(Message::Rows(bytes)).is_err() {
            return Err(self.stopped());
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<u64> {
        let (done_tx, done_rx) = sync_channel(1);
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Message::Finish(done_tx)).is_ok());
        if !sent {
            return Err(self.stopped());
        }
        let result = done_rx.recv().unwrap_or_else(|_| Err(self.stopped()));
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        result
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
