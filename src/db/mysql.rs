//! MySQL and MariaDB: the text protocol both ways (every value as the
//! server prints and parses it, so DECIMAL stays exact), a read-only
//! repeatable-read transaction for the source, and for the target (whose
//! DDL cannot be rolled back) a partial table filled in one transaction and
//! renamed onto the target name only when complete.

use std::sync::mpsc::SyncSender;

use super::text::TextColumn;
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, SchemaRef, TimeUnit};
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder, TxOpts, Value};

use super::{
    BatchResult, DbColumn, DbUrl, Error, Relation, Result, Source, TargetOptions, TargetWriter,
};

/// How a MySQL type is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int16,
    Int32,
    Int64,
    UInt64,
    Float32,
    Float64,
    Decimal(u8, i8),
    Text,
    Date,
    DateTime,
    Binary,
    /// Carried as its text, never marked (json, enum, set, time, bit, ...).
    Other,
}

impl Kind {
    /// From a column type as `information_schema.COLUMNS.COLUMN_TYPE`
    /// writes it (`int(11)`, `bigint(20) unsigned`, `decimal(12,2)`).
    fn of(column_type: &str) -> Self {
        let t = column_type.to_ascii_lowercase();
        let unsigned = t.contains("unsigned");
        let base = t.split(['(', ' ']).next().unwrap_or("");
        let args: Vec<i64> = t
            .split_once('(')
            .and_then(|(_, r)| r.split_once(')'))
            .map(|(a, _)| a.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_default();
        match base {
            "tinyint" | "smallint" if !unsigned => Self::Int16,
            "tinyint" => Self::Int16,
            "smallint" | "mediumint" => Self::Int32,
            "int" | "integer" if !unsigned => Self::Int32,
            "int" | "integer" => Self::Int64,
            "bigint" if unsigned => Self::UInt64,
            "bigint" => Self::Int64,
            "year" => Self::Int16,
            "float" => Self::Float32,
            "double" | "real" => Self::Float64,
            "decimal" | "numeric" => match args.as_slice() {
                [p] if (1..=38).contains(p) => Self::Decimal(*p as u8, 0),
                [p, s] if (1..=38).contains(p) && (0..=*p).contains(s) => {
                    Self::Decimal(*p as u8, *s as i8)
                }
                _ => Self::Text,
            },
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => Self::Text,
            "date" => Self::Date,
            "datetime" | "timestamp" => Self::DateTime,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                Self::Binary
            }
            _ => Self::Other,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Self::Int16 => DataType::Int16,
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::UInt64 => DataType::UInt64,
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
            Self::Decimal(p, s) => DataType::Decimal128(p, s),
            Self::Text | Self::Other => DataType::Utf8,
            Self::Date => DataType::Date32,
            Self::DateTime => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::Binary => DataType::Binary,
        }
    }
}

fn connect(url: &DbUrl) -> Result<Conn> {
    let fail = |reason: String| Error::Connect {
        url: url.redacted(),
        reason,
    };
    let (text, tls) = super::tls::take_params(url, url.secret_text())?;
    let text = match text.get(..10) {
        Some(p) if p.eq_ignore_ascii_case("mariadb://") => format!("mysql://{}", &text[10..]),
        _ => text,
    };
    let opts = mysql::Opts::from_url(&text).map_err(|e| fail(format!("not a MySQL URL: {e}")))?;
    let mut builder = OptsBuilder::from_opts(opts);
    #[cfg(feature = "tls")]
    if let Some(mode) = tls.mode.filter(|m| m.required()) {
        use super::tls::SslMode;
        let checked = mode != SslMode::Require || tls.root_cert.is_some();
        // A required TLS session stays on TCP (the driver would otherwise
        // move a loopback connection to the server's Unix socket).
        builder = builder.prefer_socket(false).ssl_opts(Some(
            mysql::SslOpts::default()
                .with_root_cert_path(tls.root_cert.clone())
                .with_danger_accept_invalid_certs(!checked)
                .with_danger_skip_domain_validation(mode != SslMode::VerifyFull),
        ));
    }
    #[cfg(not(feature = "tls"))]
    let _ = tls;
    if url
        .secret_text()
        .split_once('@')
        .is_none_or(|(auth, _)| !auth.contains(':'))
        && let Ok(p) = std::env::var("MYSQL_PWD")
    {
        builder = builder.pass(Some(p));
    }
    builder = builder
        .tcp_connect_timeout(Some(std::time::Duration::from_secs(10)))
        .init(vec!["SET time_zone = '+00:00'"]);
    Conn::new(builder).map_err(|e| fail(message(&e)))
}

fn message(e: &mysql::Error) -> String {
    match e {
        mysql::Error::MySqlError(m) => m.message.clone(),
        other => other.to_string(),
    }
}

/// A table name quoted for MySQL, part by part (`a.b` is database `a`).
fn quote_table(name: &str) -> String {
    name.split('.')
        .map(|p| format!("`{}`", p.trim_matches('`').replace('`', "``")))
        .collect::<Vec<_>>()
        .join(".")
}

/// The `SELECT` that reads `relation`, with MySQL's quoting.
fn select_of(relation: &Relation) -> String {
    match relation {
        Relation::Table(t) => format!("SELECT * FROM {}", quote_table(t)),
        Relation::Query(_) => super::select_of(relation),
    }
}

/// `(schema condition, table name)` for information_schema lookups.
fn schema_and_table(name: &str) -> (Option<String>, String) {
    match name.split_once('.') {
        Some((s, t)) => (
            Some(s.trim_matches('`').to_owned()),
            t.trim_matches('`').to_owned(),
        ),
        None => (None, name.trim_matches('`').to_owned()),
    }
}

/// A relation's columns with their kinds, and its primary key.
type Described = (Vec<(DbColumn, Kind)>, Vec<String>);

fn describe(conn: &mut Conn, relation: &Relation) -> Result<Described> {
    let label = relation.label();
    let fail = |e: mysql::Error| Error::Table {
        table: label.clone(),
        reason: message(&e),
    };
    match relation {
        Relation::Table(table) => {
            let (schema, name) = schema_and_table(table);
            type ColumnRow = (String, String, String, Option<String>, Option<String>);
            let rows: Vec<ColumnRow> = conn
                .exec(
                    "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, COLLATION_NAME \
                     FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                    (schema.clone(), name.clone()),
                )
                .map_err(fail)?;
            // MariaDB's JSON is LONGTEXT with a json_valid() check.
            let checks: Vec<String> = conn
                .exec(
                    "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                     WHERE CONSTRAINT_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?",
                    (schema.clone(), name.clone()),
                )
                .unwrap_or_default();
            if rows.is_empty() {
                return Err(Error::Table {
                    table: label.clone(),
                    reason: "no such table".into(),
                });
            }
            let key: Vec<String> = conn
                .exec(
                    "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                     WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? \
                     AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
                    (schema, name),
                )
                .map_err(fail)?;
            let columns = rows
                .into_iter()
                .map(|(name, ty, nullable, charset, collation)| {
                    let json = checks.iter().any(|c| {
                        c.to_ascii_lowercase()
                            .contains(&format!("json_valid(`{}`)", name.to_ascii_lowercase()))
                    });
                    let kind = if json { Kind::Other } else { Kind::of(&ty) };
                    let ty = match (json, &charset, &collation) {
                        (true, _, _) => "json".to_owned(),
                        (false, Some(cs), Some(co)) => {
                            format!("{ty} CHARACTER SET {cs} COLLATE {co}")
                        }
                        _ => ty,
                    };
                    // An invisible mark needs a Unicode column: text in
                    // latin1 and the like is passed through unmarked.
                    let unicode = charset
                        .as_deref()
                        .is_none_or(|c| c.starts_with("utf") || c == "ucs2");
                    let column = DbColumn {
                        name,
                        sql_type: ty,
                        not_null: nullable == "NO",
                        passed_through: matches!(kind, Kind::Other | Kind::Binary)
                            || (kind == Kind::Text && !unicode),
                    };
                    (column, kind)
                })
                .collect();
            Ok((columns, key))
        }
        Relation::Query(_) => {
            // The columns of the query, from a result with no rows.
            let sql = format!("SELECT * FROM ({}) AS source LIMIT 0", select_of(relation));
            let result = conn.query_iter(&sql).map_err(fail)?;
            let columns = result
                .columns()
                .as_ref()
                .iter()
                .map(|c| {
                    let ty = query_type(c);
                    let kind = Kind::of(&ty);
                    (
                        DbColumn {
                            name: c.name_str().into_owned(),
                            sql_type: ty,
                            not_null: false,
                            passed_through: matches!(kind, Kind::Other | Kind::Binary),
                        },
                        kind,
                    )
                })
                .collect();
            Ok((columns, Vec::new()))
        }
    }
}

/// A type name for a query's column, from its metadata.
fn query_type(c: &mysql::Column) -> String {
    use mysql::consts::{ColumnFlags, ColumnType as T};
    let unsigned = if c.flags().contains(ColumnFlags::UNSIGNED_FLAG) {
        " unsigned"
    } else {
        ""
    };
    let binary = c.character_set() == 63;
    match c.column_type() {
        T::MYSQL_TYPE_TINY => format!("tinyint{unsigned}"),
        T::MYSQL_TYPE_SHORT => format!("smallint{unsigned}"),
        T::MYSQL_TYPE_INT24 => format!("mediumint{unsigned}"),
        T::MYSQL_TYPE_LONG => format!("int{unsigned}"),
        T::MYSQL_TYPE_LONGLONG => format!("bigint{unsigned}"),
        T::MYSQL_TYPE_YEAR => "year".into(),
        T::MYSQL_TYPE_FLOAT => "float".into(),
        T::MYSQL_TYPE_DOUBLE => "double".into(),
        T::MYSQL_TYPE_NEWDECIMAL | T::MYSQL_TYPE_DECIMAL => {
            let s = u32::from(c.decimals());
            let sign = u32::from(unsigned.is_empty());
            let p = c.column_length().saturating_sub(sign + u32::from(s > 0));
            format!("decimal({p},{s})")
        }
        T::MYSQL_TYPE_DATE => "date".into(),
        T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_TIMESTAMP => "datetime(6)".into(),
        T::MYSQL_TYPE_VARCHAR | T::MYSQL_TYPE_VAR_STRING | T::MYSQL_TYPE_STRING if binary => {
            "varbinary(65535)".into()
        }
        T::MYSQL_TYPE_BLOB
        | T::MYSQL_TYPE_LONG_BLOB
        | T::MYSQL_TYPE_MEDIUM_BLOB
        | T::MYSQL_TYPE_TINY_BLOB
            if binary =>
        {
            "longblob".into()
        }
        T::MYSQL_TYPE_VARCHAR
        | T::MYSQL_TYPE_VAR_STRING
        | T::MYSQL_TYPE_STRING
        | T::MYSQL_TYPE_BLOB
        | T::MYSQL_TYPE_LONG_BLOB
        | T::MYSQL_TYPE_MEDIUM_BLOB
        | T::MYSQL_TYPE_TINY_BLOB => "longtext".into(),
        T::MYSQL_TYPE_JSON => "json".into(),
        _ => "longtext".into(),
    }
}

pub(super) fn open(url: &DbUrl, relation: &Relation, batch_rows: usize) -> Result<Source> {
    let mut conn = connect(url)?;
    let (described, primary_key) = describe(&mut conn, relation)?;
    let (columns, kinds): (Vec<DbColumn>, Vec<Kind>) = described.into_iter().unzip();
    let types: Vec<DataType> = kinds.iter().map(|k| k.data_type()).collect();
    let schema = super::schema_of(&columns, &types);
    let spec = super::ReadSpec::new(select_of(relation), relation, &columns, &schema, batch_rows);
    let label = spec.label.clone();
    let (rows, batches) = super::read_in_thread(&label, schema, move |rows, out| {
        read_thread(conn, &spec, &kinds, rows, out);
    })?;
    Ok(Source {
        reader: Box::new(batches),
        rows: Some(rows),
        primary_key,
        columns,
        scheme: super::Scheme::MySql,
    })
}

fn read_thread(
    mut conn: Conn,
    spec: &super::ReadSpec,
    kinds: &[Kind],
    rows_tx: &SyncSender<Result<usize>>,
    out: &SyncSender<BatchResult>,
) {
    let (from, label, schema, batch_rows) = spec.parts();
    let fail = |e: mysql::Error| Error::Table {
        table: label.to_owned(),
        reason: message(&e),
    };
    let external = |e: Error| ArrowError::ExternalError(Box::new(e));
    let options = TxOpts::default()
        .set_isolation_level(Some(mysql::IsolationLevel::RepeatableRead))
        .set_access_mode(Some(mysql::AccessMode::ReadOnly))
        .set_with_consistent_snapshot(true);
    let mut tx = match conn.start_transaction(options) {
        Ok(tx) => tx,
        Err(e) => {
            let _ = rows_tx.send(Err(fail(e)));
            return;
        }
    };
    let count = tx
        .query_first::<u64, _>(format!("SELECT COUNT(*) FROM ({from}) AS source"))
        .map(|n| n.unwrap_or(0) as usize)
        .map_err(&fail);
    let failed = count.is_err();
    let _ = rows_tx.send(count);
    if failed {
        return;
    }
    let result = match tx.query_iter(from) {
        Ok(r) => r,
        Err(e) => {
            let _ = out.send(Err(external(fail(e))));
            return;
        }
    };
    let mut builders: Vec<TextColumn> = kinds
        .iter()
        .map(|&k| TextColumn::new(&k.data_type(), batch_rows))
        .collect();
    let (mut len, mut row_number) = (0usize, 0u64);
    for row in result {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let _ = out.send(Err(external(fail(e))));
                return;
            }
        };
        row_number += 1;
        for (i, b) in builders.iter_mut().enumerate() {
            let pushed = match row.as_ref(i) {
                None | Some(Value::NULL) => {
                    b.push_null();
                    Ok(())
                }
                Some(Value::Bytes(v)) => b.push_bytes(v),
                Some(other) => Err(format!("an unexpected binary-protocol value {other:?}")),
            };
            if let Err(reason) = pushed {
                let _ = out.send(Err(spec.value_error(i, row_number, reason)));
                return;
            }
        }
        len += 1;
        if len == batch_rows {
            len = 0;
            let arrays: Vec<ArrayRef> = builders.iter_mut().map(TextColumn::finish).collect();
            if out
                .send(RecordBatch::try_new(schema.clone(), arrays))
                .is_err()
            {
                return;
            }
        }
    }
    if len > 0 {
        let arrays: Vec<ArrayRef> = builders.iter_mut().map(TextColumn::finish).collect();
        let _ = out.send(RecordBatch::try_new(schema.clone(), arrays));
    }
}

/// A MySQL type for an Arrow type (exact: decimals as DECIMAL, times to
/// the microsecond).
fn sql_type(dt: &DataType) -> Option<String> {
    Some(match dt {
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::UInt8 => "tinyint unsigned".into(),
        DataType::UInt16 => "smallint unsigned".into(),
        DataType::UInt32 => "int unsigned".into(),
        DataType::UInt64 => "bigint unsigned".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) if *p <= 65 => {
            format!("decimal({p},{s})")
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "longtext".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(..) => "datetime(6)".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "longblob".into(),
        _ => return None,
    })
}

/// The MySQL value of `array[row]`: its text, which the server converts to
/// the column's type exactly.
fn value(array: &dyn Array, row: usize) -> std::result::Result<Value, String> {
    if array.is_null(row) {
        return Ok(Value::NULL);
    }
    Ok(match array.data_type() {
        DataType::Boolean => Value::Bytes(if array.as_boolean().value(row) {
            b"1".to_vec()
        } else {
            b"0".to_vec()
        }),
        DataType::Binary => Value::Bytes(array.as_binary::<i32>().value(row).to_vec()),
        DataType::LargeBinary => Value::Bytes(array.as_binary::<i64>().value(row).to_vec()),
        DataType::BinaryView => Value::Bytes(array.as_binary_view().value(row).to_vec()),
        DataType::Float32 | DataType::Float64 => {
            let mut s = String::new();
            super::text::value_text(array, row, &mut s)?;
            if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") {
                return Err(format!("{s} cannot be stored in MySQL"));
            }
            Value::Bytes(s.into_bytes())
        }
        _ => {
            let mut s = String::new();
            super::text::value_text(array, row, &mut s)?;
            // The session is UTC: a time zone suffix is dropped.
            if let Some(t) = s.strip_suffix("+00") {
                s.truncate(t.len());
            }
            Value::Bytes(s.into_bytes())
        }
    })
}

/// Most placeholders one INSERT carries.
const PLACEHOLDERS: usize = 60_000;

/// The target: rows go into a partial table inside one transaction; the
/// partial table is renamed onto the target only when complete, and
/// dropped when the write fails or is abandoned.
pub(super) struct Writer {
    conn: Option<Conn>,
    partial: String,
    target: String,
    replace: bool,
    table: String,
    columns: usize,
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
        let mut conn = connect(url)?;
        let fail = |e: mysql::Error| Error::Table {
            table: label.clone(),
            reason: message(&e),
        };
        let (schema_name, name) = schema_and_table(table);
        let exists: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?",
                (schema_name, name),
            )
            .map_err(fail)?;
        if exists.unwrap_or(0) > 0 && !options.replace {
            return Err(Error::Exists { table: label });
        }
        let definition = super::table_definition(schema, options, &label, "MySQL", sql_type)?;
        // `quote_ident` of the column names is MySQL's backquote; the shared
        // definition uses double quotes, which ANSI_QUOTES reads the same.
        let target = quote_table(table);
        let partial = quote_table(&format!("{table}__dbwm_partial"));
        conn.query_drop(format!("DROP TABLE IF EXISTS {partial}"))
            .map_err(fail)?;
        conn.query_drop("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")
            .map_err(fail)?;
        conn.query_drop(format!("CREATE TABLE {partial} ({definition})"))
            .map_err(fail)?;
        conn.query_drop("START TRANSACTION").map_err(fail)?;
        Ok(Self {
            conn: Some(conn),
            partial,
            target,
            replace: options.replace,
            table: label,
            columns: schema.fields().len().max(1),
            written: 0,
        })
    }

    fn write_fail(&self, e: &mysql::Error) -> Error {
        Error::Write {
            table: self.table.clone(),
            reason: message(e),
        }
    }
}

impl TargetWriter for Writer {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let schema = batch.schema();
        let per_insert = (PLACEHOLDERS / self.columns).max(1);
        let row_marks = format!("({})", vec!["?"; self.columns].join(", "));
        let mut start = 0;
        while start < batch.num_rows() {
            let end = (start + per_insert).min(batch.num_rows());
            let mut params = Vec::with_capacity((end - start) * self.columns);
            for row in start..end {
                for (i, array) in batch.columns().iter().enumerate() {
                    params.push(value(array.as_ref(), row).map_err(|reason| Error::Value {
                        table: self.table.clone(),
                        column: schema.field(i).name().clone(),
                        row: self.written + row as u64 + 1,
                        reason,
                    })?);
                }
            }
            let sql = format!(
                "INSERT INTO {} VALUES {}",
                self.partial,
                vec![row_marks.as_str(); end - start].join(", ")
            );
            let conn = self.conn.as_mut().expect("written before finish");
            if let Err(e) = conn.exec_drop(sql, params) {
                return Err(self.write_fail(&e));
            }
            start = end;
        }
        self.written += batch.num_rows() as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<u64> {
        let mut conn = self.conn.take().expect("finished once");
        let old = quote_table(&format!("{}__dbwm_old", self.target.trim_matches('`')));
        let steps = [
            "COMMIT".to_owned(),
            format!("DROP TABLE IF EXISTS {old}"),
            if self.replace {
                // Atomic: readers see the old table, then the new one.
                format!(
                    "RENAME TABLE {target} TO {old}, {partial} TO {target}",
                    target = self.target,
                    partial = self.partial
                )
            } else {
                format!("RENAME TABLE {} TO {}", self.partial, self.target)
            },
        ];
        for (i, sql) in steps.iter().enumerate() {
            let mut result = conn.query_drop(sql);
            if i == 2 && self.replace && result.is_err() {
                // Nothing to replace after all.
                result =
                    conn.query_drop(format!("RENAME TABLE {} TO {}", self.partial, self.target));
            }
            if let Err(e) = result {
                let err = self.write_fail(&e);
                let _ = conn.query_drop(format!("DROP TABLE IF EXISTS {}", self.partial));
                return Err(err);
            }
        }
        let _ = conn.query_drop(format!("DROP TABLE IF EXISTS {old}"));
        Ok(self.written)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Not finished: the rows are rolled back and the partial table goes.
        if let Some(mut conn) = self.conn.take() {
            let _ = conn.query_drop("ROLLBACK");
            let _ = conn.query_drop(format!("DROP TABLE IF EXISTS {}", self.partial));
        }
    }
}
