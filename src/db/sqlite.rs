//! SQLite: a table or query read from a read-only connection in one read
//! transaction; a new table written inside one transaction.
//!
//! Columns are carried by their declared type's affinity: INTEGER as
//! 64-bit integers, REAL as floats, TEXT (and NUMERIC, DATE and other
//! declared types, which SQLite stores as typed by value) as their exact
//! text, BLOB as bytes (never marked).

use std::sync::Arc;
use std::sync::mpsc::SyncSender;

use arrow_array::builder::{BinaryBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};

use super::{
    DbColumn, DbUrl, Error, Relation, Result, Source, TargetOptions, TargetWriter, quote_table,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Real,
    Text,
    Blob,
}

impl Kind {
    /// SQLite's affinity rules, in its order.
    fn of(declared: &str) -> Self {
        let t = declared.to_ascii_uppercase();
        if t.contains("INT") {
            Self::Integer
        } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
            Self::Text
        } else if t.contains("BLOB") {
            Self::Blob
        } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
            Self::Real
        } else {
            Self::Text
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Self::Integer => DataType::Int64,
            Self::Real => DataType::Float64,
            Self::Text => DataType::Utf8,
            Self::Blob => DataType::Binary,
        }
    }
}

fn open_connection(url: &DbUrl, flags: OpenFlags) -> Result<Connection> {
    Connection::open_with_flags(url.sqlite_path(), flags).map_err(|e| Error::Connect {
        url: url.redacted(),
        reason: e.to_string(),
    })
}

fn table_error(label: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::Table {
        table: label.to_owned(),
        reason: e.to_string(),
    }
}

/// `schema.table` split for PRAGMA (`PRAGMA "schema".table_info("t")`).
fn pragma_target(table: &str) -> (Option<String>, String) {
    let quoted = quote_table(table);
    match quoted.split_once("\".\"") {
        Some((schema, name)) => (Some(format!("{schema}\"")), format!("\"{name}")),
        None => (None, quoted),
    }
}

/// A relation's columns with their kinds, and its primary key.
type Described = (Vec<(DbColumn, Kind)>, Vec<String>);

fn describe(conn: &Connection, relation: &Relation) -> Result<Described> {
    let label = relation.label();
    let fail = table_error(&label);
    match relation {
        Relation::Table(table) => {
            let (schema, name) = pragma_target(table);
            let sql = match schema {
                Some(s) => format!("PRAGMA {s}.table_info({name})"),
                None => format!("PRAGMA table_info({name})"),
            };
            let mut stmt = conn.prepare(&sql).map_err(&fail)?;
            let mut rows = stmt.query([]).map_err(&fail)?;
            let mut columns = Vec::new();
            let mut key: Vec<(i64, String)> = Vec::new();
            while let Some(row) = rows.next().map_err(&fail)? {
                let name: String = row.get(1).map_err(&fail)?;
                let declared: String = row.get(2).map_err(&fail)?;
                let not_null: bool = row.get(3).map_err(&fail)?;
                let pk: i64 = row.get(5).map_err(&fail)?;
                if pk > 0 {
                    key.push((pk, name.clone()));
                }
                let kind = Kind::of(&declared);
                columns.push((
                    DbColumn {
                        name,
                        sql_type: declared,
                        not_null,
                        passed_through: kind == Kind::Blob,
                    },
                    kind,
                ));
            }
            if columns.is_empty() {
                return Err(Error::Table {
                    table: label.clone(),
                    reason: "no such table".into(),
                });
            }
            key.sort();
            Ok((columns, key.into_iter().map(|(_, n)| n).collect()))
        }
        Relation::Query(query) => {
            let stmt = conn.prepare(query).map_err(&fail)?;
            let columns = stmt
                .columns()
                .iter()
                .map(|c| {
                    let declared = c.decl_type().unwrap_or("").to_owned();
                    let kind = Kind::of(&declared);
                    (
                        DbColumn {
                            name: c.name().to_owned(),
                            sql_type: declared,
                            not_null: false,
                            passed_through: kind == Kind::Blob,
                        },
                        kind,
                    )
                })
                .collect();
            Ok((columns, Vec::new()))
        }
    }
}

pub(super) fn open(url: &DbUrl, relation: &Relation, batch_rows: usize) -> Result<Source> {
    if !std::path::Path::new(url.sqlite_path()).exists() {
        return Err(url.error("no such database file"));
    }
    let conn = open_connection(
        url,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let (described, primary_key) = describe(&conn, relation)?;
    let (columns, kinds): (Vec<DbColumn>, Vec<Kind>) = described.into_iter().unzip();
    let types: Vec<DataType> = kinds.iter().map(|k| k.data_type()).collect();
    let schema = super::schema_of(&columns, &types);
    let spec = super::ReadSpec::new(
        super::select_of(relation),
        relation,
        &columns,
        &schema,
        batch_rows,
    );
    let label = spec.label.clone();
    let (rows, batches) = super::read_in_thread(&label, schema, move |rows, out| {
        read_thread(&conn, &spec, &kinds, rows, out);
    })?;
    Ok(Source {
        reader: Box::new(batches),
        rows: Some(rows),
        primary_key,
        columns,
        scheme: super::Scheme::Sqlite,
    })
}

fn read_thread(
    conn: &Connection,
    spec: &super::ReadSpec,
    kinds: &[Kind],
    rows_tx: &SyncSender<Result<usize>>,
    out: &SyncSender<super::BatchResult>,
) {
    let (from, label, schema, batch_rows) = spec.parts();
    let fail = table_error(label);
    let external = |e: Error| ArrowError::ExternalError(Box::new(e));
    // One read transaction: the count and the rows see the same snapshot.
    let count = conn
        .execute_batch("BEGIN")
        .and_then(|()| {
            conn.query_row(&format!("SELECT count(*) FROM ({from})"), [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n as usize)
        .map_err(&fail);
    let failed = count.is_err();
    let _ = rows_tx.send(count);
    if failed {
        return;
    }
    let mut stmt = match conn.prepare(from) {
        Ok(s) => s,
        Err(e) => {
            let _ = out.send(Err(external(fail(e))));
            return;
        }
    };
    let mut rows = match stmt.query([]) {
        Ok(r) => r,
        Err(e) => {
            let _ = out.send(Err(external(fail(e))));
            return;
        }
    };
    let mut builders: Vec<Builder> = kinds.iter().map(|&k| Builder::new(k, batch_rows)).collect();
    let mut len = 0;
    let mut row_number = 0u64;
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => {
                let _ = out.send(Err(external(fail(e))));
                return;
            }
        };
        row_number += 1;
        for (i, b) in builders.iter_mut().enumerate() {
            let pushed = row
                .get_ref(i)
                .map_err(|e| e.to_string())
                .and_then(|v| b.push(v));
            if let Err(reason) = pushed {
                let _ = out.send(Err(spec.value_error(i, row_number, reason)));
                return;
            }
        }
        len += 1;
        if len == batch_rows {
            len = 0;
            if out.send(finish(&mut builders, schema)).is_err() {
                return;
            }
        }
    }
    if len > 0 {
        let _ = out.send(finish(&mut builders, schema));
    }
}

fn finish(builders: &mut [Builder], schema: &SchemaRef) -> super::BatchResult {
    let arrays: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
    RecordBatch::try_new(schema.clone(), arrays)
}

enum Builder {
    Int(Int64Builder),
    Real(Float64Builder),
    Text(StringBuilder),
    Blob(BinaryBuilder),
}

impl Builder {
    fn new(kind: Kind, n: usize) -> Self {
        match kind {
            Kind::Integer => Self::Int(Int64Builder::with_capacity(n)),
            Kind::Real => Self::Real(Float64Builder::with_capacity(n)),
            Kind::Text => Self::Text(StringBuilder::with_capacity(n, n * 8)),
            Kind::Blob => Self::Blob(BinaryBuilder::with_capacity(n, n * 8)),
        }
    }

    fn push(&mut self, v: ValueRef<'_>) -> std::result::Result<(), String> {
        let text = |b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| "text that is not UTF-8".to_owned())
        };
        match (self, v) {
            (Self::Int(b), ValueRef::Null) => b.append_null(),
            (Self::Real(b), ValueRef::Null) => b.append_null(),
            (Self::Text(b), ValueRef::Null) => b.append_null(),
            (Self::Blob(b), ValueRef::Null) => b.append_null(),
            (Self::Int(b), ValueRef::Integer(i)) => b.append_value(i),
            (Self::Int(_), other) => {
                return Err(format!(
                    "holds {}, not an integer (declared INTEGER)",
                    describe_value(other)
                ));
            }
            (Self::Real(b), ValueRef::Real(f)) => b.append_value(f),
            (Self::Real(b), ValueRef::Integer(i)) => b.append_value(i as f64),
            (Self::Real(_), other) => {
                return Err(format!(
                    "holds {}, not a number (declared REAL)",
                    describe_value(other)
                ));
            }
            (Self::Text(b), ValueRef::Text(t)) => b.append_value(text(t)?),
            (Self::Text(b), ValueRef::Integer(i)) => b.append_value(i.to_string()),
            (Self::Text(b), ValueRef::Real(f)) => b.append_value(real_text(f)),
            (Self::Text(_), ValueRef::Blob(_)) => {
                return Err("holds a blob in a column declared as text".into());
            }
            (Self::Blob(b), ValueRef::Blob(x) | ValueRef::Text(x)) => b.append_value(x),
            (Self::Blob(b), ValueRef::Integer(i)) => b.append_value(i.to_string()),
            (Self::Blob(b), ValueRef::Real(f)) => b.append_value(real_text(f)),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Int(b) => Arc::new(b.finish()),
            Self::Real(b) => Arc::new(b.finish()),
            Self::Text(b) => Arc::new(b.finish()),
            Self::Blob(b) => Arc::new(b.finish()),
        }
    }
}

fn real_text(f: f64) -> String {
    if f.is_finite() {
        ryu::Buffer::new().format_finite(f).to_owned()
    } else {
        f.to_string()
    }
}

fn describe_value(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => format!("the integer {i}"),
        ValueRef::Real(f) => format!("the real {f}"),
        ValueRef::Text(t) => format!("the text {:?}", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

/// A declared SQLite type for an Arrow type (exact: decimals, dates and
/// times as their text).
fn sql_type(dt: &DataType) -> Option<&'static str> {
    Some(match dt {
        dt if dt.is_integer() => "INTEGER",
        DataType::Boolean => "INTEGER",
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "REAL",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BLOB",
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Decimal128(..)
        | DataType::Decimal256(..)
        | DataType::Date32
        | DataType::Date64
        | DataType::Timestamp(..) => "TEXT",
        _ => return None,
    })
}

/// The target: one connection inside one immediate transaction.
pub(super) struct Writer {
    conn: Option<Connection>,
    insert: String,
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
        let conn = open_connection(
            url,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let fail = table_error(&label);
        let definition = super::table_definition(schema, options, &label, "SQLite", |dt| {
            sql_type(dt).map(str::to_owned)
        })?;
        let quoted = quote_table(table);
        conn.execute_batch("BEGIN IMMEDIATE").map_err(&fail)?;
        let (schema_name, name) = pragma_target(table);
        let master = match schema_name {
            Some(s) => format!("{s}.sqlite_master"),
            None => "sqlite_master".to_owned(),
        };
        let bare = name.trim_matches('"').replace("\"\"", "\"");
        let exists: bool = conn
            .query_row(
                &format!("SELECT count(*) > 0 FROM {master} WHERE type = 'table' AND name = ?1"),
                [&bare],
                |r| r.get(0),
            )
            .map_err(&fail)?;
        if exists && !options.replace {
            return Err(Error::Exists {
                table: label.clone(),
            });
        }
        if exists {
            conn.execute_batch(&format!("DROP TABLE {quoted}"))
                .map_err(&fail)?;
        }
        conn.execute_batch(&format!("CREATE TABLE {quoted} ({definition})"))
            .map_err(&fail)?;
        let marks: Vec<String> = (1..=schema.fields().len())
            .map(|i| format!("?{i}"))
            .collect();
        Ok(Self {
            conn: Some(conn),
            insert: format!("INSERT INTO {quoted} VALUES ({})", marks.join(", ")),
            table: label.clone(),
            written: 0,
        })
    }
}

/// The SQLite value of `array[row]`.
fn value(array: &dyn Array, row: usize) -> std::result::Result<Value, String> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    let dt = array.data_type();
    Ok(match dt {
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(row);
            Value::Integer(
                i64::try_from(v).map_err(|_| format!("{v} is larger than SQLite's integers"))?,
            )
        }
        DataType::Int8 => Value::Integer(array.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => Value::Integer(array.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => Value::Integer(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => Value::Integer(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => Value::Integer(array.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt16 => Value::Integer(array.as_primitive::<UInt16Type>().value(row).into()),
        DataType::UInt32 => Value::Integer(array.as_primitive::<UInt32Type>().value(row).into()),
        DataType::Boolean => Value::Integer(i64::from(array.as_boolean().value(row))),
        DataType::Float32 => Value::Real(f64::from(
            array
                .as_primitive::<arrow_array::types::Float32Type>()
                .value(row),
        )),
        DataType::Float64 => Value::Real(
            array
                .as_primitive::<arrow_array::types::Float64Type>()
                .value(row),
        ),
        DataType::Binary => Value::Blob(array.as_binary::<i32>().value(row).to_vec()),
        DataType::LargeBinary => Value::Blob(array.as_binary::<i64>().value(row).to_vec()),
        DataType::BinaryView => Value::Blob(array.as_binary_view().value(row).to_vec()),
        _ => {
            let mut s = String::new();
            super::text::value_text(array, row, &mut s)?;
            Value::Text(s)
        }
    })
}

impl TargetWriter for Writer {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(conn) = &self.conn else {
            return Err(Error::Write {
                table: self.table.clone(),
                reason: "the table was already finished".into(),
            });
        };
        let write_fail = |e: rusqlite::Error| Error::Write {
            table: self.table.clone(),
            reason: e.to_string(),
        };
        let mut stmt = conn.prepare_cached(&self.insert).map_err(write_fail)?;
        let schema = batch.schema();
        let mut values = Vec::with_capacity(batch.num_columns());
        for row in 0..batch.num_rows() {
            values.clear();
            for (i, array) in batch.columns().iter().enumerate() {
                values.push(value(array.as_ref(), row).map_err(|reason| Error::Value {
                    table: self.table.clone(),
                    column: schema.field(i).name().clone(),
                    row: self.written + row as u64 + 1,
                    reason,
                })?);
            }
            stmt.execute(rusqlite::params_from_iter(values.iter()))
                .map_err(|e| Error::Value {
                    table: self.table.clone(),
                    column: String::new(),
                    row: self.written + row as u64 + 1,
                    reason: e.to_string(),
                })?;
        }
        self.written += batch.num_rows() as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<u64> {
        let conn = self.conn.take().expect("finished once");
        conn.execute_batch("COMMIT").map_err(|e| Error::Write {
            table: self.table.clone(),
            reason: e.to_string(),
        })?;
        Ok(self.written)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Not finished: nothing was committed.
        if let Some(conn) = self.conn.take() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}
