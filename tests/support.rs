//! Random tables of mixed types for the integration tests.

use dbwatermark::eval::sample::Rng;
use dbwatermark::{Column, Config, Table, Values, WatermarkKey, Watermarker};

/// A fresh folder under the system temporary folder, removed when dropped;
/// `name` must be unique among the tests (they share a process).
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dbwm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A watermarker with the default configuration.
pub fn watermarker(secret: &str) -> Watermarker {
    Watermarker::new(WatermarkKey::new(secret).unwrap(), Config::default())
}

/// Random UTF-8 content of exactly `len` bytes, mixing one- to four-byte
/// characters.
pub fn content(rng: &mut Rng, len: usize) -> String {
    const CHARS: [char; 8] = ['a', 'Z', '7', '-', 'é', 'ж', '水', '🦀'];
    let mut s = String::new();
    loop {
        let c = CHARS[rng.below(CHARS.len() as u64) as usize];
        if s.len() + c.len_utf8() > len {
            break;
        }
        s.push(c);
    }
    while s.len() < len {
        s.push('x');
    }
    s
}

/// The number of column kinds [`column`] can make.
pub const KINDS: u64 = 12;

/// A random non-key column of kind `kind` (see the match), about 5% nulls.
pub fn column(rng: &mut Rng, kind: u64, rows: usize, name: &str) -> Column {
    let mut r = || rng.next_u64();
    let values = match kind {
        0 => Values::Int8((0..rows).map(|_| r() as i8).collect()),
        1 => Values::Int16((0..rows).map(|_| r() as i16).collect()),
        2 => Values::Int32((0..rows).map(|_| (r() % 100_000) as i32 - 50_000).collect()),
        3 => Values::Int64((0..rows).map(|_| r() as i64).collect()),
        4 => Values::UInt8((0..rows).map(|_| r() as u8).collect()),
        5 => Values::UInt64((0..rows).map(|_| r()).collect()),
        6 => Values::Decimal {
            counts: (0..rows)
                .map(|_| (r() % 10_000_000) as i128 - 5_000_000)
                .collect(),
            scale: 2,
            precision: 12,
        },
        7 => Values::Float64(
            (0..rows)
                .map(|_| (r() % 1_000_000) as f64 / 100.0)
                .collect(),
        ),
        8 => Values::Float32((0..rows).map(|_| (r() % 100_000) as f32 / 10.0).collect()),
        9 => Values::Text(
            (0..rows)
                .map(|i| format!("name-{i}-{}", r() % 1000))
                .collect(),
        ),
        10 => Values::Timestamp {
            values: (0..rows)
                .map(|_| 1_700_000_000_000 + (r() % 10_000_000_000) as i64)
                .collect(),
            units_per_second: 1000,
        },
        _ => Values::Date32((0..rows).map(|_| 19_000 + (r() % 2000) as i32).collect()),
    };
    let validity: Vec<bool> = (0..rows).map(|_| rng.below(20) != 0).collect();
    // Dates are opt-in; this table opts in.
    Column::new(name, values)
        .with_validity(validity)
        .with_mark(true)
}

/// A random table: `rows` rows, `columns` non-key columns of random kinds,
/// and a single integer key or a composite (integer, text) key.
pub fn table(seed: u64, rows: usize, columns: usize, composite: bool) -> Table {
    let mut rng = Rng::new(seed);
    let ids: Vec<i64> = (0..rows as i64).map(|i| i * 7 + 3).collect();
    let mut key = vec![Column::new("id", Values::Int64(ids))];
    if composite {
        key.push(Column::new(
            "region",
            Values::Text((0..rows).map(|i| format!("r{}", i % 13)).collect()),
        ));
    }
    let columns = (0..columns)
        .map(|c| {
            let kind = rng.below(KINDS);
            column(&mut rng, kind, rows, &format!("c{c}"))
        })
        .collect();
    Table { key, columns }
}

/// The contents found in `table`.
pub fn found(wm: &Watermarker, table: &Table) -> Vec<String> {
    wm.extract_table(table)
        .unwrap()
        .into_iter()
        .map(|f| f.content)
        .collect()
}

/// A SQLite table `orders` of `rows` rows at `path`: a key, a code, an
/// integer and a float measure, a decimal, a date, text with NULLs and a
/// blob.
#[cfg(feature = "sqlite")]
pub fn sqlite_orders(path: &std::path::Path, rows: i64) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let conn = conn.transaction().unwrap();
    conn.execute_batch(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, carrier TEXT NOT NULL, qty INTEGER,
                              price REAL, amount DECIMAL(10,2), day DATE, note TEXT, blob BLOB);",
    )
    .unwrap();
    {
        let mut insert = conn
            .prepare("INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            .unwrap();
        for i in 1..=rows {
            insert
                .execute(rusqlite::params![
                    i,
                    ["AA", "UA", "DL"][(i % 3) as usize],
                    1 + i * 37 % 900,
                    10.0 + (i * 7919 % 100_000) as f64 / 100.0,
                    format!("{}.{:02}", 5 + i % 1000, i % 100),
                    format!("2024-{:02}-{:02}", 1 + i % 12, 1 + i % 28),
                    if i % 30 == 0 {
                        None
                    } else {
                        Some(format!("note {i}"))
                    },
                    vec![i as u8, 7],
                ])
                .unwrap();
        }
    }
    conn.commit().unwrap();
}

/// Runs the `dbwm` binary with `args` and the watermark key `key` in
/// `DBWM_KEY`, with no standard input.
#[cfg(feature = "cli")]
pub fn dbwm_keyed(key: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dbwm"))
        .args(args)
        .env("DBWM_KEY", key)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("dbwm runs")
}

/// Writes `batch` to `path` in the format its extension names.
#[cfg(feature = "files")]
pub fn write_batch(batch: &arrow_array::RecordBatch, path: &std::path::Path) {
    let mut out =
        dbwatermark::files::Output::create(path, &batch.schema(), &Default::default()).unwrap();
    out.write(batch).unwrap();
    out.finish().unwrap();
}

/// The whole of the file at `path`, as one batch.
#[cfg(feature = "files")]
pub fn read_batch(path: &std::path::Path) -> arrow_array::RecordBatch {
    let input = dbwatermark::files::open(path, &Default::default()).unwrap();
    let schema = input.reader.schema();
    let batches: Vec<arrow_array::RecordBatch> = input.reader.map(Result::unwrap).collect();
    arrow_select::concat::concat_batches(&schema, &batches).unwrap()
}

/// The JSON a `dbwm extract` printed, which exited 0 (found) or 3 (none).
#[cfg(feature = "cli")]
pub fn extract_report(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `share` of `batch`'s rows, drawn with `seed`, in random order, without
/// the columns `drop`, the others in reverse order: a leak as a leaker's
/// spreadsheet might hand it on.
#[cfg(feature = "arrow")]
pub fn shuffled_sample(
    batch: &arrow_array::RecordBatch,
    share: f64,
    seed: u64,
    drop: &[&str],
) -> arrow_array::RecordBatch {
    let mut rng = Rng::new(seed);
    let mut rows: Vec<u32> = (0..batch.num_rows() as u32)
        .filter(|_| rng.unit() < share)
        .collect();
    for i in (1..rows.len()).rev() {
        rows.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let take = arrow_array::UInt32Array::from(rows);
    let schema = batch.schema();
    let (fields, columns): (Vec<arrow_schema::Field>, Vec<arrow_array::ArrayRef>) = schema
        .fields()
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, f)| !drop.contains(&f.name().as_str()))
        .map(|(i, f)| {
            let column = arrow_select::take::take(batch.column(i), &take, None).unwrap();
            (f.as_ref().clone(), column)
        })
        .unzip();
    arrow_array::RecordBatch::try_new(
        std::sync::Arc::new(arrow_schema::Schema::new(fields)),
        columns,
    )
    .unwrap()
}
