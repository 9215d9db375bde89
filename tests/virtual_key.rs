//! Virtual keys: copies marked from attributes that survive a leak without
//! the key column, read back with `--virtual-key` or from the registry.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use dbwatermark::arrow::table_to_batch;
use dbwatermark::eval::sample;
use serde_json::Value;

use crate::support::{TempDir, extract_report, read_batch, shuffled_sample, write_batch};

const KEY: &str = "virtual key test secret";

fn dbwm(args: &[&str]) -> std::process::Output {
    crate::support::dbwm_keyed(KEY, args)
}

/// `share` of `batch`'s rows in random order, without the column
/// `customer_id`, its other columns reversed, and names in upper case
/// with doubled spaces (as a leaker's spreadsheet might).
fn leak_without_key(batch: &RecordBatch, share: f64, seed: u64) -> RecordBatch {
    let leak = shuffled_sample(batch, share, seed, &["customer_id"]);
    let names = leak
        .column_by_name("name")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let shouted: StringArray = names
        .iter()
        .map(|n| n.map(|n| format!(" {}", n.to_uppercase().replace(' ', "  "))))
        .collect();
    let at = leak.schema().index_of("name").unwrap();
    let mut columns: Vec<ArrayRef> = leak.columns().to_vec();
    columns[at] = Arc::new(shouted);
    RecordBatch::try_new(leak.schema(), columns).unwrap()
}

#[test]
fn a_copy_marked_from_a_virtual_key_is_read_from_a_shuffled_leak_without_the_key_column() {
    let dir = TempDir::new("vk-leak");
    let source = dir.path("customers.parquet");
    write_batch(
        &table_to_batch(&sample::customers(20_000, 1, 7)).unwrap(),
        &source,
    );
    let copy = dir.path("copy.parquet");
    let registry = dir.path("issued.jsonl");
    let out = dbwm(&[
        "embed",
        "--content",
        "acme->vk-partner",
        "--pk",
        "customer_id",
        "--virtual-key",
        "name,age",
        "--register",
        registry.to_str().unwrap(),
        source.to_str().unwrap(),
        "-o",
        copy.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let marked = read_batch(&copy);
    let original = read_batch(&source);
    // The key, the virtual key's columns and the row count are untouched.
    for name in ["customer_id", "name", "age"] {
        assert_eq!(
            marked.column_by_name(name).unwrap().to_data(),
            original.column_by_name(name).unwrap().to_data(),
            "{name} changed"
        );
    }
    assert_ne!(
        marked.column_by_name("balance").unwrap().to_data(),
        original.column_by_name("balance").unwrap().to_data()
    );
    let record: Value =
        serde_json::from_str(std::fs::read_to_string(&registry).unwrap().trim()).unwrap();
    assert_eq!(record["virtual_key"], serde_json::json!(["name", "age"]));

    // 30% of the rows, shuffled, without customer_id, columns reversed.
    let leak = dir.path("leak.csv");
    write_batch(&leak_without_key(&marked, 0.3, 11), &leak);
    let leak = leak.to_str().unwrap();
    let found = extract_report(&dbwm(&["extract", "--virtual-key", "name,age", leak]));
    assert_eq!(
        found["watermarks"][0]["content"], "acme->vk-partner",
        "{found}"
    );
    assert!(
        found["watermarks"][0]["false_positive_probability"]
            .as_f64()
            .unwrap()
            < 1e-9
    );
    // Without a key, the registry's virtual key is used and names the copy.
    let named = dbwm(&["extract", "--candidates", registry.to_str().unwrap(), leak]);
    assert!(
        String::from_utf8_lossy(&named.stderr).contains("virtual key name,age"),
        "{}",
        String::from_utf8_lossy(&named.stderr)
    );
    let named = extract_report(&named);
    assert_eq!(
        named["identified"][0]["content"], "acme->vk-partner",
        "{named}"
    );
    // The unmarked original, read the same way, names nothing.
    let clean = dir.path("clean.csv");
    write_batch(&leak_without_key(&original, 0.3, 11), &clean);
    let none = extract_report(&dbwm(&[
        "extract",
        "--candidates",
        registry.to_str().unwrap(),
        clean.to_str().unwrap(),
    ]));
    assert_eq!(
        none["watermarks"].as_array().map(Vec::len),
        Some(0),
        "{none}"
    );
    assert_eq!(
        none["identified"].as_array().map(Vec::len),
        Some(0),
        "{none}"
    );
}

#[test]
fn a_table_without_any_key_column_is_marked_and_read_through_a_virtual_key() {
    let dir = TempDir::new("vk-keyless");
    let batch = table_to_batch(&sample::customers(8_000, 1, 3)).unwrap();
    let keyless = batch.project(&[1, 2, 3, 4]).unwrap();
    assert!(keyless.schema().column_with_name("customer_id").is_none());
    let source = dir.path("keyless.csv");
    write_batch(&keyless, &source);
    let copy = dir.path("copy.csv");
    let plain = dbwm(&[
        "embed",
        "--content",
        "c",
        source.to_str().unwrap(),
        "-o",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(plain.status.code(), Some(2), "no key at all is refused");
    assert!(String::from_utf8_lossy(&plain.stderr).contains("--pk"));
    let out = dbwm(&[
        "embed",
        "--content",
        "keyless->p1",
        "--virtual-key",
        "name,age",
        source.to_str().unwrap(),
        "-o",
        copy.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = extract_report(&dbwm(&[
        "extract",
        "--virtual-key",
        "name,age",
        copy.to_str().unwrap(),
    ]));
    assert_eq!(found["watermarks"][0]["content"], "keyless->p1", "{found}");
    // A virtual key column that is missing is named.
    let e = dbwm(&[
        "extract",
        "--virtual-key",
        "name,email",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(e.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&e.stderr).contains("email"));
}

#[test]
fn the_plan_suggests_a_virtual_key_from_unmarked_columns_that_tell_rows_apart() {
    use arrow_array::{Float64Array, Int64Array};
    use arrow_schema::{DataType, Field, Schema};
    let rows = 6_000i64;
    let stations = ["EWR", "JFK", "LGA"];
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("origin", DataType::Utf8, false),
        Field::new("time_hour", DataType::Utf8, false),
        Field::new("temp", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..rows)),
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| stations[(i % 3) as usize]),
            )),
            Arc::new(StringArray::from_iter_values((0..rows).map(|i| {
                let h = i / 3;
                format!(
                    "2013-{:02}-{:02}T{:02}:00:00Z",
                    1 + h / 672,
                    1 + h / 24 % 28,
                    h % 24
                )
            }))),
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| 20.0 + (i * 7919 % 3000) as f64 / 100.0),
            )),
        ],
    )
    .unwrap();
    let plan = dbwatermark::arrow::BatchPlan::profiled(
        &schema,
        &["id"],
        None,
        std::slice::from_ref(&batch),
    )
    .unwrap();
    assert_eq!(plan.marked_names(), ["temp"]);
    let v = plan.suggest_virtual_key(&[batch]).expect("a virtual key");
    assert_eq!(v.columns, ["time_hour", "origin"]);
    assert_eq!(v.unique_share, 1.0);
    // The key alone, or nothing but measures, suggests nothing.
    let only = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("temp", DataType::Float64, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(0..rows)),
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| i as f64 / 7.0),
            )),
        ],
    )
    .unwrap();
    let plan = dbwatermark::arrow::BatchPlan::profiled(
        &only.schema(),
        &["id"],
        None,
        std::slice::from_ref(&only),
    )
    .unwrap();
    assert_eq!(plan.suggest_virtual_key(&[only]), None);
}

#[test]
fn a_leak_that_dropped_its_key_column_is_read_with_the_registrys_virtual_key_when_pk_is_given() {
    let dir = TempDir::new("vk-fallback");
    let source = dir.path("customers.parquet");
    write_batch(
        &table_to_batch(&sample::customers(20_000, 1, 5)).unwrap(),
        &source,
    );
    let registry = dir.path("issued.jsonl");
    let embed = |content: &str, virtual_key: bool, copy: &std::path::Path| {
        let mut args = vec!["embed", "--content", content, "--pk", "customer_id"];
        if virtual_key {
            args.extend(["--virtual-key", "name,age"]);
        }
        args.extend([
            "--register",
            registry.to_str().unwrap(),
            source.to_str().unwrap(),
            "-o",
            copy.to_str().unwrap(),
        ]);
        let out = dbwm(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (by_virtual, by_key) = (dir.path("vk.parquet"), dir.path("pk.parquet"));
    embed("acme->by-virtual-key", true, &by_virtual);
    let registry_arg = registry.to_str().unwrap();
    let extract = |leak: &std::path::Path| {
        dbwm(&[
            "extract",
            "--pk",
            "customer_id",
            "--candidates",
            registry_arg,
            leak.to_str().unwrap(),
        ])
    };

    // Every registered copy was marked from the virtual key: even a leak
    // that kept customer_id is read with the virtual key, not --pk.
    let kept = dir.path("kept.csv");
    write_batch(
        &shuffled_sample(&read_batch(&by_virtual), 0.3, 3, &[]),
        &kept,
    );
    let out = extract(&kept);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rather than --pk customer_id"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        extract_report(&out)["identified"][0]["content"],
        "acme->by-virtual-key"
    );

    // With copies of both kinds registered, a leak without customer_id is
    // read with the virtual key, one with it by the key.
    embed("acme->by-key", false, &by_key);
    let dropped = dir.path("dropped.csv");
    write_batch(
        &leak_without_key(&read_batch(&by_virtual), 0.3, 5),
        &dropped,
    );
    let out = extract(&dropped);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("has no key column customer_id: read with the virtual key name,age"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = extract_report(&out);
    assert_eq!(
        report["identified"][0]["content"], "acme->by-virtual-key",
        "{report}"
    );
    assert_eq!(report["identified"].as_array().map(Vec::len), Some(1));
    let with_key = dir.path("with-key.csv");
    write_batch(
        &shuffled_sample(&read_batch(&by_key), 0.3, 7, &[]),
        &with_key,
    );
    let report = extract_report(&extract(&with_key));
    assert_eq!(
        report["identified"][0]["content"], "acme->by-key",
        "{report}"
    );
    assert_eq!(report["identified"].as_array().map(Vec::len), Some(1));

    // Without a registry, the missing key column is named with the way out.
    let out = dbwm(&["extract", "--pk", "customer_id", dropped.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("column `customer_id` not found") && stderr.contains("--virtual-key"),
        "{stderr}"
    );
}
