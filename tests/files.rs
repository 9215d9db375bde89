//! Arrow batches, files and the `dbwm embed` / `dbwm extract` commands.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use dbwatermark::arrow::{BatchPlan, batch_to_table, table_to_batch};
use dbwatermark::eval::sample;
use dbwatermark::files::{self, Output, ReadOptions};
use dbwatermark::pipeline;
use dbwatermark::{Config, WatermarkKey, Watermarker};

use crate::support::TempDir;

const SECRET: &str = "files test key";

fn wm() -> Watermarker {
    Watermarker::new(WatermarkKey::new(SECRET).unwrap(), Config::default())
}

fn write(table: &dbwatermark::Table, path: &Path) {
    let batch = table_to_batch(table).unwrap();
    let mut out = Output::create(path, &batch.schema(), &Default::default()).unwrap();
    out.write(&batch).unwrap();
    out.finish().unwrap();
}

fn key() -> pipeline::Columns {
    pipeline::Columns::with_key(["customer_id"])
}

#[test]
fn arrow_batches_are_marked_exactly_like_the_core_table() {
    let table = sample::customers(6000, 1, 3);
    let batch = table_to_batch(&table).unwrap();
    let wm = wm();
    let mut core = table.clone();
    let report = wm.embed_table(&mut core, "same marks").unwrap();
    let plan = BatchPlan::new(&batch.schema(), &["customer_id"], None).unwrap();
    let payload = wm.payload("same marks").unwrap();
    let (marked, reports) = wm
        .embed_batch(&batch, &plan, &payload, report.density)
        .unwrap();
    assert_eq!(batch_to_table(&marked, &["customer_id"]).unwrap(), core);
    for ((_, a), b) in report.columns.iter().zip(&reports) {
        assert_eq!(a, b);
    }
    let mut tallies = plan.new_tallies();
    wm.tally_batch(&marked, &plan, &mut tallies).unwrap();
    assert_eq!(wm.decode(&tallies), wm.extract_table(&core).unwrap());
}

#[test]
fn embedded_through_dsc_json_and_extracted_from_arrow() {
    // The DSC request's rows as NDJSON are also an Arrow file.
    let table = sample::customers(5000, 1, 4);
    let dir = TempDir::new("dsc-arrow");
    let ndjson = dir.path("customers.ndjson");
    write(&table, &ndjson);
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&ndjson)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let request = serde_json::json!({
        "watermark_content": "via DSC",
        "watermark_key": SECRET,
        "columns": [
            {"name": "customer_id", "type": "BIGINT", "primary_key": true},
            {"name": "age", "type": "INT", "primary_key": false},
            {"name": "score", "type": "DOUBLE", "primary_key": false},
            {"name": "name", "type": "VARCHAR", "primary_key": false}
        ],
        "data": rows,
    });
    let out = dbwatermark::dsc::embed_json(&serde_json::to_vec(&request).unwrap()).unwrap();
    let marked: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let lines: Vec<String> = marked["marked_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    let marked_path = dir.path("marked.ndjson");
    std::fs::write(&marked_path, lines.join("\n")).unwrap();
    let summary = pipeline::extract_files(
        &wm(),
        &[marked_path],
        &key(),
        &ReadOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(summary.found.len(), 1);
    assert_eq!(summary.found[0].content, "via DSC");
}

#[test]
fn embedded_to_parquet_and_extracted_from_csv_identically() {
    let dir = TempDir::new("parquet-csv");
    let input = dir.path("in.csv");
    write(&sample::customers(20_000, 1, 5), &input);
    let parquet = dir.path("out.parquet");
    let job = pipeline::EmbedJob {
        input: &input,
        output: &parquet,
        content: "parquet copy",
        columns: &key(),
        read: &ReadOptions {
            batch_rows: 3000,
            ..Default::default()
        },
        write: &Default::default(),
    };
    let summary = pipeline::embed_file(&wm(), &job, &mut |_, _| {}).unwrap();
    assert_eq!(summary.rows, 20_000);
    // Export the Parquet copy to CSV, as a leaker would.
    let csv = dir.path("leak.csv");
    let source = files::open(&parquet, &ReadOptions::default()).unwrap();
    let mut out = Output::create(&csv, &source.reader.schema(), &Default::default()).unwrap();
    for batch in source.reader {
        out.write(&batch.unwrap()).unwrap();
    }
    out.finish().unwrap();
    let read = |p: &Path| {
        pipeline::extract_files(
            &wm(),
            &[p.to_owned()],
            &key(),
            &ReadOptions::default(),
            &mut |_, _| {},
        )
        .unwrap()
        .found
    };
    let from_parquet = read(&parquet);
    assert_eq!(from_parquet[0].content, "parquet copy");
    assert_eq!(read(&csv), from_parquet);
}

/// A reader that makes batches on demand and counts them.
struct Counting {
    schema: arrow_schema::SchemaRef,
    batches: usize,
    rows: usize,
    produced: Arc<AtomicUsize>,
}

impl Iterator for Counting {
    type Item = Result<RecordBatch, arrow_schema::ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        let n = self.produced.load(Ordering::SeqCst);
        if n == self.batches {
            return None;
        }
        self.produced.fetch_add(1, Ordering::SeqCst);
        let t = sample::customers(self.rows, 1 + (n * self.rows) as i64, n as u64);
        Some(Ok(table_to_batch(&t).unwrap()))
    }
}

impl RecordBatchReader for Counting {
    fn schema(&self) -> arrow_schema::SchemaRef {
        self.schema.clone()
    }
}

#[test]
fn streaming_embed_holds_one_batch_at_a_time() {
    let schema = table_to_batch(&sample::customers(1, 1, 0))
        .unwrap()
        .schema();
    let produced = Arc::new(AtomicUsize::new(0));
    let reader = Counting {
        schema: schema.clone(),
        batches: 40,
        rows: 1000,
        produced: produced.clone(),
    };
    let wm = wm();
    let plan = BatchPlan::new(&schema, &["customer_id"], None).unwrap();
    let payload = wm.payload("streamed").unwrap();
    let density = wm.density_for(None, &payload);
    let mut consumed = 0;
    let mut peak = 0;
    let mut tallies = plan.new_tallies();
    for batch in wm.embed_stream(reader, &plan, &payload, density) {
        let batch = batch.unwrap();
        // Batches made by the source but not yet handed on and dropped here.
        peak = peak.max(produced.load(Ordering::SeqCst) - consumed);
        wm.tally_batch(&batch, &plan, &mut tallies).unwrap();
        consumed += 1;
    }
    assert_eq!(consumed, 40, "40,000 rows in batches of 1,000");
    assert_eq!(peak, 1, "the stream never reads ahead");
    assert_eq!(wm.decode(&tallies)[0].content, "streamed");
    // The same stream through extract_stream.
    let batches: Vec<_> = (0..3)
        .map(|i| Ok(table_to_batch(&sample::customers(10, i * 10, i as u64)).unwrap()))
        .collect();
    let reader = RecordBatchIterator::new(batches, schema);
    let (found, _) = wm.extract_stream(reader, &plan).unwrap();
    assert!(found.is_empty());
}

fn dbwm(args: &[&str], env_key: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbwm"));
    cmd.args(args).env_remove("DBWM_KEY");
    if let Some(k) = env_key {
        cmd.env("DBWM_KEY", k);
    }
    cmd.output().unwrap()
}

#[test]
fn dbwm_embed_and_extract_exit_codes_and_json() {
    let dir = TempDir::new("cli-files");
    let input = dir.path("in.parquet");
    write(&sample::customers(12_000, 1, 6), &input);
    let out = dir.path("copy.arrow");
    let key_file = dir.path("key.txt");
    std::fs::write(&key_file, format!("{SECRET}\n")).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let r = dbwm(
        &[
            "embed",
            "--key-file",
            &s(&key_file),
            "--content",
            "cli copy",
            "--pk",
            "customer_id",
            &s(&input),
            "-o",
            &s(&out),
        ],
        None,
    );
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    // Extract with the key from the environment: found, exit 0.
    let r = dbwm(&["extract", "--pk", "customer_id", &s(&out)], Some(SECRET));
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(json["watermarks"][0]["content"], "cli copy");
    assert!(
        json["watermarks"][0]["false_positive_probability"]
            .as_f64()
            .unwrap()
            < 1e-12
    );
    assert!(json["watermarks"][0]["votes_agree"].as_u64().unwrap() > 1000);
    // The unmarked input: none found, exit 3.
    let r = dbwm(
        &[
            "extract",
            "--key",
            SECRET,
            "--pk",
            "customer_id",
            &s(&input),
        ],
        None,
    );
    assert_eq!(r.status.code(), Some(3));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.stdout).unwrap()["watermarks"],
        serde_json::json!([])
    );
    // Bad input: exit 2 with a message naming the problem.
    for (args, needle) in [
        (
            vec!["extract", "--key", "k", "--pk", "nope", &*s(&out)],
            "column `nope` not found",
        ),
        (
            vec![
                "extract",
                "--key",
                "k",
                "--pk",
                "customer_id",
                "--columns",
                "ghost",
                &*s(&out),
            ],
            "column `ghost` not found",
        ),
        (
            vec![
                "extract",
                "--key",
                "k",
                "--pk",
                "customer_id",
                "/nonexistent/x.csv",
            ],
            "/nonexistent/x.csv",
        ),
        (
            vec!["extract", "--pk", "customer_id", &*s(&out)],
            "no watermark key",
        ),
        (
            vec![
                "extract",
                "--key",
                "k",
                "--pk",
                "customer_id",
                &*s(&dir.path("x.unknown")),
            ],
            "unknown format",
        ),
    ] {
        let r = dbwm(&args, None);
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn a_failed_embed_leaves_the_previous_output_untouched() {
    let dir = TempDir::new("atomic");
    let input = dir.path("in.csv");
    // A valid header and first rows, then a row whose `age` is not a number.
    let mut text = String::from("customer_id,age\n");
    for i in 0..20_000 {
        text.push_str(&format!("{i},{}\n", i % 90));
    }
    text.push_str("20000,not-a-number\n");
    std::fs::write(&input, text).unwrap();
    let out = dir.path("out.csv");
    std::fs::write(&out, "previous contents").unwrap();
    let job = pipeline::EmbedJob {
        input: &input,
        output: &out,
        content: "x",
        columns: &key(),
        read: &ReadOptions {
            batch_rows: 1000,
            infer_rows: 100,
            ..Default::default()
        },
        write: &Default::default(),
    };
    let err = pipeline::embed_file(&wm(), &job, &mut |_, _| {}).unwrap_err();
    assert!(err.is_caller_error());
    assert!(err.to_string().contains("in.csv"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous contents");
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        2,
        "no temporary file left"
    );
}

#[test]
fn unsupported_types_named_columns_and_key_columns_are_checked() {
    use arrow_schema::{DataType, Field, Schema};
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("flag", DataType::Boolean, true),
        Field::new("day", DataType::Date32, true),
        Field::new("n", DataType::Int32, true),
    ]);
    let plan = BatchPlan::new(&schema, &["id"], None).unwrap();
    assert_eq!(plan.marked_names(), ["n"]);
    assert_eq!(plan.skipped_names(), ["flag", "day"]);
    let err = BatchPlan::new(&schema, &["id"], Some(&["flag"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "column `flag` has type Boolean, which cannot carry marks"
    );
    assert_eq!(
        BatchPlan::new(&schema, &["id"], Some(&["day"]))
            .unwrap()
            .marked_names(),
        ["day"]
    );
    let err = BatchPlan::new(&schema, &["flag"], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "column `flag` has type Boolean, which cannot be a primary key"
    );
    let err = BatchPlan::new(&schema, &["id"], Some(&["id"])).unwrap_err();
    assert!(err.to_string().contains("primary-key column"));
}

#[test]
fn lz4_and_zstd_compressed_ipc_files_and_streams_are_written_and_read() {
    let dir = TempDir::new("ipc-compression");
    let mut table = sample::customers(6000, 1, 5);
    wm().embed_table(&mut table, "ipc-copy").unwrap();
    let batch = table_to_batch(&table).unwrap();
    let write = |name: &str, compression| {
        let path = dir.path(name);
        let options = files::WriteOptions {
            ipc_compression: compression,
            ..Default::default()
        };
        let mut out = Output::create(&path, &batch.schema(), &options).unwrap();
        out.write(&batch).unwrap();
        out.finish().unwrap();
        path
    };
    for ext in ["arrow", "arrows"] {
        let plain = std::fs::metadata(write(&format!("plain.{ext}"), None))
            .unwrap()
            .len();
        for (name, compression) in [
            ("lz4", files::IpcCompression::LZ4_FRAME),
            ("zstd", files::IpcCompression::ZSTD),
        ] {
            let path = write(&format!("{name}.{ext}"), Some(compression));
            let size = std::fs::metadata(&path).unwrap().len();
            assert!(
                size < plain,
                "{name}.{ext}: {size} bytes, not below plain {plain}"
            );
            let summary = pipeline::extract_files(
                &wm(),
                std::slice::from_ref(&path),
                &key(),
                &ReadOptions::default(),
                &mut |_, _| {},
            )
            .unwrap_or_else(|e| panic!("{name}.{ext}: {e}"));
            assert_eq!(summary.rows, 6000, "{name}.{ext}");
            assert_eq!(summary.found[0].content, "ipc-copy", "{name}.{ext}");
        }
    }
}

#[test]
fn dbwm_embed_writes_the_ipc_compression_it_is_asked_for() {
    let dir = TempDir::new("cli-ipc-compression");
    let input = dir.path("in.parquet");
    write(&sample::customers(8000, 1, 6), &input);
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let mut sizes = Vec::new();
    for codec in [None, Some("lz4"), Some("zstd")] {
        let out = dir.path(&format!("copy-{}.arrow", codec.unwrap_or("none")));
        let (i, o) = (s(&input), s(&out));
        let mut args = vec![
            "embed",
            "--content",
            "cli ipc",
            "--pk",
            "customer_id",
            &i,
            "-o",
            &o,
        ];
        if let Some(c) = codec {
            args.extend(["--ipc-compression", c]);
        }
        let r = dbwm(&args, Some(SECRET));
        assert_eq!(
            r.status.code(),
            Some(0),
            "{codec:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let r = dbwm(&["extract", "--pk", "customer_id", &o], Some(SECRET));
        assert_eq!(
            r.status.code(),
            Some(0),
            "{codec:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(String::from_utf8_lossy(&r.stdout).contains("\"cli ipc\""));
        sizes.push(std::fs::metadata(&out).unwrap().len());
    }
    assert!(
        sizes[1] < sizes[0] && sizes[2] < sizes[0],
        "sizes {sizes:?}"
    );
    let r = dbwm(
        &[
            "embed",
            "--content",
            "x",
            "--pk",
            "customer_id",
            &s(&input),
            "-o",
            &s(&dir.path("bad.arrow")),
            "--ipc-compression",
            "gzip",
        ],
        Some(SECRET),
    );
    assert_eq!(r.status.code(), Some(2));
}

#[test]
fn an_embed_stream_as_a_record_batch_reader_marks_every_batch_and_keeps_errors() {
    let batches: Vec<_> = (0..4)
        .map(|i| Ok(table_to_batch(&sample::customers(2000, 1 + i * 2000, i as u64)).unwrap()))
        .collect();
    let schema = batches[0].as_ref().unwrap().schema();
    let wm = wm();
    let plan = BatchPlan::new(&schema, &["customer_id"], None).unwrap();
    let payload = wm.payload("as a reader").unwrap();
    let density = wm.density_for(Some(8000), &payload);
    let source = RecordBatchIterator::new(batches, schema.clone());
    let reader = wm
        .embed_stream(source, &plan, &payload, density)
        .into_reader();
    assert_eq!(reader.schema(), schema);
    let (found, _) = wm.extract_stream(reader, &plan).unwrap();
    assert_eq!(found[0].content, "as a reader");

    // A reader error comes through as the reader's own error.
    let failing = vec![Err(arrow_schema::ArrowError::ParseError(
        "row 7: bad".into(),
    ))];
    let source = RecordBatchIterator::new(failing, schema);
    let mut reader = wm
        .embed_stream(source, &plan, &payload, density)
        .into_reader();
    let err = reader.next().unwrap().unwrap_err();
    assert!(err.to_string().contains("row 7: bad"), "{err}");
}

#[test]
#[cfg(unix)]
fn the_temporary_output_ignores_a_symlink_planted_at_the_old_predictable_name() {
    let dir = TempDir::new("symlink");
    let victim = dir.path("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let target = dir.path("out.csv");
    // The name the temporary file used to have: `.{name}.{pid}.tmp`.
    let planted = dir.path(&format!(".out.csv.{}.tmp", std::process::id()));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    write(&sample::customers(50, 1, 3), &target);
    files::write_atomically(&dir.path("report.json"), b"{}").unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .starts_with("customer_id,")
    );
    // Only the planted link is left beside the outputs: no temporary file.
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let planted_name = planted.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        names,
        [
            planted_name.as_str(),
            "out.csv",
            "report.json",
            "victim.txt"
        ]
    );
}

/// Bytes of `bytes` changed at a few positions chosen by `seed`.
fn mutated(bytes: &[u8], seed: u64) -> Vec<u8> {
    let mut rng = sample::Rng::new(seed);
    let mut out = bytes.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() as u64) as usize;
        out[at] = match rng.below(3) {
            0 => out[at] ^ (1 << rng.below(8)),
            1 => 0xFF,
            _ => rng.below(256) as u8,
        };
    }
    out
}

#[test]
fn corrupt_arrow_ipc_files_and_streams_are_errors_never_panics() {
    let dir = TempDir::new("ipc-fuzz");
    let table = sample::customers(3000, 1, 12);
    let mut outcomes = (0, 0);
    for name in ["data.arrow", "data.arrows"] {
        let good = dir.path(name);
        write(&table, &good);
        let bytes = std::fs::read(&good).unwrap();
        for seed in 0..300 {
            let bad = dir.path(&format!("bad-{name}"));
            std::fs::write(&bad, mutated(&bytes, seed)).unwrap();
            let read = std::panic::catch_unwind(|| {
                let input = files::open(&bad, &ReadOptions::default())?;
                let mut rows = 0;
                for batch in input.reader {
                    rows += batch
                        .map_err(|source| files::Error::Format {
                            path: bad.clone(),
                            source,
                        })?
                        .num_rows();
                }
                Ok::<usize, files::Error>(rows)
            });
            match read {
                Ok(Ok(_)) => outcomes.0 += 1,
                Ok(Err(e)) => {
                    assert!(e.to_string().contains("bad-"), "{e}");
                    outcomes.1 += 1;
                }
                Err(_) => panic!("{name} mutation {seed} panicked the reader"),
            }
        }
    }
    assert!(outcomes.1 > 50, "most mutations are refused: {outcomes:?}");
}
