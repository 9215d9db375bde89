//! A key that holds a date or a time reads back however the copy at hand
//! writes or types it: CSV text in either spelling, a Parquet timestamp.

use std::fmt::Write as _;

use arrow_schema::{DataType, TimeUnit};

use crate::support::{self, TempDir};

const KEY: &str = "time-keys-test-key-0123456789abcdef";

/// Hourly readings of three stations, keyed `station,time_hour`, with
/// `time_hour` written `2013-01-01T05:00:00Z` (as R's nycflights13 does).
fn readings_csv(rows: usize) -> String {
    let mut csv = String::from("station,time_hour,temp,wind\n");
    for i in 0..rows {
        let (station, hour) = (["JFK", "LGA", "EWR"][i % 3], i / 3);
        let (day, hour) = (hour / 24, hour % 24);
        let (month, day) = (1 + day / 28, 1 + day % 28);
        let temp = -5.0 + ((i * 7919) % 400) as f64 / 10.0;
        let wind = (i * 31) % 40;
        writeln!(
            csv,
            "{station},2013-{month:02}-{day:02}T{hour:02}:00:00Z,{temp:.1},{wind}"
        )
        .unwrap();
    }
    csv
}

fn found(out: &std::process::Output) -> Vec<String> {
    let report = support::extract_report(out);
    report["watermarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["content"].as_str().unwrap().to_owned())
        .collect()
}

fn embed(dir: &TempDir, input: &str, output: &str) {
    let out = support::dbwm_keyed(
        KEY,
        &[
            "embed",
            dir.path(input).to_str().unwrap(),
            "--pk",
            "station,time_hour",
            "--content",
            "acme-7",
            "-o",
            dir.path(output).to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn extract(dir: &TempDir, file: &str, extra: &[&str]) -> std::process::Output {
    let path = dir.path(file);
    let mut args = vec![
        "extract",
        path.to_str().unwrap(),
        "--pk",
        "station,time_hour",
    ];
    args.extend_from_slice(extra);
    support::dbwm_keyed(KEY, &args)
}

#[test]
fn a_csv_copy_keyed_by_a_timestamp_reads_back_in_any_spelling_of_it() {
    let dir = TempDir::new("time-keys-csv");
    std::fs::write(dir.path("readings.csv"), readings_csv(6_000)).unwrap();
    embed(&dir, "readings.csv", "copy.csv");
    // The embed hashed the key as written; extraction types `time_hour`
    // as a timestamp: both are the same instant.
    assert_eq!(found(&extract(&dir, "copy.csv", &[])), ["acme-7"]);
    // A spreadsheet re-saves the times as `2013-01-01 05:00:00`.
    let respelled = std::fs::read_to_string(dir.path("copy.csv"))
        .unwrap()
        .replace('T', " ")
        .replace("Z,", ",");
    std::fs::write(dir.path("respelled.csv"), respelled).unwrap();
    assert_eq!(found(&extract(&dir, "respelled.csv", &[])), ["acme-7"]);
}

#[cfg(feature = "parquet")]
#[test]
fn a_parquet_copy_keeps_its_timestamps_and_its_csv_export_reads_back() {
    let dir = TempDir::new("time-keys-parquet");
    std::fs::write(dir.path("readings.csv"), readings_csv(6_000)).unwrap();
    embed(&dir, "readings.csv", "copy.parquet");
    // Parquet has no unit of seconds: the copy holds milliseconds, typed
    // as a timestamp for every reader (not bare integers of seconds).
    let file = std::fs::File::open(dir.path("copy.parquet")).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    let column = parquet::file::reader::FileReader::metadata(&reader)
        .file_metadata()
        .schema_descr()
        .column(1);
    assert!(
        matches!(
            column.logical_type_ref(),
            Some(parquet::basic::LogicalType::Timestamp(t)) if t.unit == parquet::basic::TimeUnit::MILLIS
        ),
        "{column:?}"
    );
    let copy = support::read_batch(&dir.path("copy.parquet"));
    assert!(matches!(
        copy.schema().field(1).data_type(),
        DataType::Timestamp(TimeUnit::Millisecond, _)
    ));
    assert_eq!(found(&extract(&dir, "copy.parquet", &[])), ["acme-7"]);
    // Its CSV export writes the instants as text.
    support::write_batch(&copy, &dir.path("export.csv"));
    assert_eq!(found(&extract(&dir, "export.csv", &[])), ["acme-7"]);
}

#[test]
fn a_copy_not_read_names_the_time_key_and_the_legacy_flag() {
    let dir = TempDir::new("time-keys-legacy");
    std::fs::write(dir.path("readings.csv"), readings_csv(3_000)).unwrap();
    // An unmarked table: nothing is found, and the message says what an
    // older copy would need.
    let out = extract(&dir, "readings.csv", &[]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("time_hour") && stderr.contains("--legacy-time-keys"),
        "{stderr}"
    );
    let out = extract(&dir, "readings.csv", &["--legacy-time-keys"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("--legacy-time-keys"));
}

/// A copy made before December 2026 hashed a typed timestamp by the count
/// of its unit, as an integer column of the same counts hashes today.
#[cfg(feature = "arrow")]
#[test]
fn legacy_time_keys_read_a_copy_that_hashed_timestamps_by_their_count() {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array, RecordBatch, TimestampSecondArray};
    use arrow_schema::{Field, Schema};
    use dbwatermark::arrow::BatchPlan;

    let rows = 20_000;
    let seconds: Vec<i64> = (0..rows).map(|i| 1_356_998_400 + 3_600 * i).collect();
    let temp = Float64Array::from_iter_values((0..rows).map(|i| ((i * 7919) % 400) as f64 / 10.0));
    let batch = |key: arrow_array::ArrayRef, key_type| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("time_hour", key_type, false),
                Field::new("temp", DataType::Float64, false),
            ])),
            vec![key, Arc::new(temp.clone())],
        )
        .unwrap()
    };
    // The old hash of a timestamp in seconds: its count, as an integer's.
    let counted = batch(Arc::new(Int64Array::from(seconds.clone())), DataType::Int64);
    let wm = support::watermarker("legacy");
    let plan = BatchPlan::new(&counted.schema(), &["time_hour"], None).unwrap();
    let payload = wm.payload("old-copy").unwrap();
    let density = wm.density_for(Some(rows as usize), &payload);
    let (marked, _) = wm.embed_batch(&counted, &plan, &payload, density).unwrap();
    let typed = batch(
        Arc::new(TimestampSecondArray::from(seconds)),
        DataType::Timestamp(TimeUnit::Second, None),
    );
    let typed = RecordBatch::try_new(
        typed.schema(),
        vec![typed.column(0).clone(), marked.column(1).clone()],
    )
    .unwrap();
    let mut plan = BatchPlan::new(&typed.schema(), &["time_hour"], None).unwrap();
    assert_eq!(plan.time_key_columns(&typed), ["time_hour"]);
    let read = |plan: &BatchPlan| {
        let mut tallies = plan.new_tallies();
        wm.tally_batch(&typed, plan, &mut tallies).unwrap();
        wm.decode(&tallies)
            .into_iter()
            .map(|f| f.content)
            .collect::<Vec<_>>()
    };
    assert!(read(&plan).is_empty(), "today's hash is the instant's");
    plan.use_legacy_time_keys();
    assert_eq!(read(&plan), ["old-copy"]);
}
