//! Pseudo-rows: fabricated records that carry the mark, so that no real
//! cell changes; found by extraction without a flag.

use std::collections::{HashMap, HashSet};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use dbwatermark::arrow::table_to_batch;
use dbwatermark::eval::sample::{self, Rng};
use serde_json::Value;

use crate::support::{TempDir, extract_report, read_batch, shuffled_sample, write_batch};

const KEY: &str = "pseudo rows test secret";

fn dbwm(args: &[&str]) -> std::process::Output {
    crate::support::dbwm_keyed(KEY, args)
}

fn ok(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

/// The generated customers with about one id in twenty missing, as a
/// table that has seen deletions (`keep` of every row).
fn customers_with_gaps(rows: usize, seed: u64) -> RecordBatch {
    let all = table_to_batch(&sample::customers(rows, 1, seed)).unwrap();
    let mut rng = Rng::new(seed ^ 0x5eed);
    let keep: Vec<u32> = (0..rows as u32).filter(|_| rng.unit() >= 0.05).collect();
    let take = arrow_array::UInt32Array::from(keep);
    let columns = all
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c, &take, None).unwrap())
        .collect();
    RecordBatch::try_new(all.schema(), columns).unwrap()
}

/// A CSV file's lines split at commas, the header first (for tables whose
/// values hold no comma or quote).
fn csv_cells(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

fn ids(batch: &RecordBatch) -> Vec<i64> {
    let ids = batch
        .column_by_name("customer_id")
        .unwrap()
        .as_primitive::<Int64Type>();
    ids.values().to_vec()
}

fn embed_pseudo_rows(source: &std::path::Path, copy: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec![
        "embed",
        "--content",
        "acme->pseudo-rows",
        "--pk",
        "customer_id",
        "--mode",
        "pseudo-rows",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[source.to_str().unwrap(), "-o", copy.to_str().unwrap()]);
    ok(&dbwm(&args))
}

#[test]
fn pseudo_rows_take_no_existing_key_and_change_no_real_cell() {
    let dir = TempDir::new("pseudo-rows-keys");
    let original = customers_with_gaps(40_000, 3);
    let source = dir.path("customers.parquet");
    write_batch(&original, &source);
    let copy = dir.path("copy.parquet");
    let said = embed_pseudo_rows(&source, &copy, &["--row-spacing", "50"]);
    assert!(said.contains("no real cell changed"), "{said}");
    let marked = read_batch(&copy);

    let real: HashSet<i64> = ids(&original).into_iter().collect();
    let mut fabricated = Vec::new();
    let mut real_rows = Vec::new();
    for (row, id) in ids(&marked).into_iter().enumerate() {
        if real.contains(&id) {
            real_rows.push(row as u32);
        } else {
            fabricated.push((row, id));
        }
    }
    // Every real row is there, in order, and cell for cell as it was.
    let take = arrow_array::UInt32Array::from(real_rows);
    for (i, field) in original.schema().fields().iter().enumerate() {
        let kept = arrow_select::take::take(marked.column(i), &take, None).unwrap();
        assert_eq!(
            kept.to_data(),
            original.column(i).to_data(),
            "{}",
            field.name()
        );
    }
    // About one fabricated row per 50, each with a key of its own, inside
    // the table's range.
    let n = fabricated.len();
    let expected = original.num_rows() / 50;
    assert!(n > expected * 8 / 10 && n < expected * 12 / 10, "{n} added");
    assert!(said.contains(&format!("{n} fabricated rows")), "{said}");
    let distinct: HashSet<i64> = fabricated.iter().map(|&(_, id)| id).collect();
    assert_eq!(distinct.len(), n, "a fabricated key repeats");
    let max = *real.iter().max().unwrap();
    assert!(fabricated.iter().all(|&(_, id)| id >= 1 && id <= max));
    // Spread through the copy, not gathered at its end.
    let last_quarter = fabricated
        .iter()
        .filter(|&&(row, _)| row > marked.num_rows() * 3 / 4)
        .count();
    assert!(last_quarter < n / 2, "{last_quarter} of {n} at the end");
}

#[test]
fn the_same_key_content_and_table_give_the_same_copy() {
    let dir = TempDir::new("pseudo-rows-same");
    let source = dir.path("customers.csv");
    write_batch(&customers_with_gaps(30_000, 10), &source);
    let (a, b) = (dir.path("a.csv"), dir.path("b.csv"));
    embed_pseudo_rows(&source, &a, &[]);
    embed_pseudo_rows(&source, &b, &[]);
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
}

#[test]
fn the_copy_is_the_same_however_the_source_is_read_in_batches() {
    // Fabricated rows are drawn among 65,536 rows at a time, however many
    // a read batch holds (a row drawn among few holds pairs of values
    // unlike the whole table's): 133,000 rows are drawn among in the same
    // three parts whether read 700 (which does not divide 65,536) or 8,192
    // at a time.
    let dir = TempDir::new("pseudo-rows-batches");
    let source = dir.path("customers.csv");
    write_batch(&customers_with_gaps(140_000, 12), &source);
    let (a, b) = (dir.path("a.csv"), dir.path("b.csv"));
    embed_pseudo_rows(&source, &a, &["--batch-rows", "700"]);
    embed_pseudo_rows(&source, &b, &["--batch-rows", "8192"]);
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
}

#[test]
fn fabricated_values_are_the_columns_own_inside_their_ranges() {
    let dir = TempDir::new("pseudo-rows-values");
    let original = customers_with_gaps(20_000, 4);
    let source = dir.path("customers.csv");
    write_batch(&original, &source);
    let copy = dir.path("copy.csv");
    embed_pseudo_rows(&source, &copy, &[]);
    // The CSVs as text (no value holds a comma or a quote).
    let (original, marked) = (csv_cells(&source), csv_cells(&copy));
    let at = |name: &str| original[0].iter().position(|h| h == name).unwrap();
    assert_eq!(original[0], marked[0]);
    let real: HashSet<&str> = original[1..]
        .iter()
        .map(|r| r[at("customer_id")].as_str())
        .collect();
    let added: Vec<&Vec<String>> = marked[1..]
        .iter()
        .filter(|r| !real.contains(r[at("customer_id")].as_str()))
        .collect();
    assert!(added.len() > 100, "{}", added.len());
    // Names and ages (few distinct values) are ones the table has.
    for name in ["name", "age"] {
        let values: HashSet<&str> = original[1..].iter().map(|r| r[at(name)].as_str()).collect();
        for row in &added {
            assert!(
                values.contains(row[at(name)].as_str()),
                "{name} {} is new",
                row[at(name)]
            );
        }
    }
    // Balances and scores (nearly all distinct) are near copies, inside
    // the column's range, at its decimals.
    for (name, most) in [("balance", 2), ("score", 3)] {
        let (lo, hi) = original[1..]
            .iter()
            .map(|r| r[at(name)].parse::<f64>().unwrap())
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        for row in &added {
            let text = &row[at(name)];
            let v: f64 = text.parse().unwrap();
            assert!((lo..=hi).contains(&v), "{name} {v} outside {lo}..{hi}");
            let decimals = text.split_once('.').map_or(0, |(_, f)| f.len());
            assert!(decimals <= most, "{name} {text}");
        }
    }
}

fn found(report: &Value) -> (String, Vec<String>, f64) {
    let w = &report["watermarks"][0];
    (
        w["content"].as_str().unwrap_or_default().to_owned(),
        w["columns"]
            .as_array()
            .map(|c| c.iter().map(|c| c.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default(),
        w["false_positive_probability"].as_f64().unwrap_or(1.0),
    )
}

#[test]
fn extraction_finds_pseudo_rows_after_shuffle_and_column_reorder_without_a_flag() {
    let dir = TempDir::new("pseudo-rows-leak");
    let original = customers_with_gaps(40_000, 5);
    let source = dir.path("customers.parquet");
    write_batch(&original, &source);
    let copy = dir.path("copy.parquet");
    // About 700 fabricated rows: a 30% leak holds some 700 votes, well
    // above the 350 or so the decoder needs (at the default spacing,
    // whether it decoded turned on which rows the sample held).
    embed_pseudo_rows(&source, &copy, &["--row-spacing", "50"]);
    let marked = read_batch(&copy);

    // 30% of the rows, shuffled, columns reversed, through a CSV.
    let leak = dir.path("leak.csv");
    write_batch(&shuffled_sample(&marked, 0.3, 21, &[]), &leak);
    let report = extract_report(&dbwm(&[
        "extract",
        "--pk",
        "customer_id",
        leak.to_str().unwrap(),
    ]));
    let (content, columns, p) = found(&report);
    assert_eq!(content, "acme->pseudo-rows", "{report}");
    assert_eq!(columns, ["(pseudo-rows)"], "{report}");
    assert!(p < 1e-9, "{report}");

    // Without the name column, the other cells still carry.
    let narrow = dir.path("narrow.csv");
    write_batch(&shuffled_sample(&marked, 1.0, 22, &["name"]), &narrow);
    let report = extract_report(&dbwm(&[
        "extract",
        "--pk",
        "customer_id",
        narrow.to_str().unwrap(),
    ]));
    assert_eq!(found(&report).0, "acme->pseudo-rows", "{report}");
}

#[test]
fn a_table_without_pseudo_rows_shows_none() {
    let dir = TempDir::new("pseudo-rows-none");
    let original = customers_with_gaps(30_000, 6);
    let source = dir.path("customers.csv");
    write_batch(&original, &source);
    let report = extract_report(&dbwm(&[
        "extract",
        "--pk",
        "customer_id",
        source.to_str().unwrap(),
    ]));
    let columns: Vec<&str> = report["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(!columns.contains(&"(pseudo-rows)"), "{report}");
    assert_eq!(report["watermarks"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_copy_is_named_from_its_registry_record_by_its_pseudo_rows() {
    let dir = TempDir::new("pseudo-rows-registry");
    let original = customers_with_gaps(60_000, 7);
    let source = dir.path("customers.parquet");
    write_batch(&original, &source);
    let registry = dir.path("issued.jsonl");
    let mut copies = HashMap::new();
    for partner in ["north", "south", "east"] {
        let copy = dir.path(&format!("{partner}.parquet"));
        let content = format!("acme->{partner}");
        ok(&dbwm(&[
            "embed",
            "--content",
            &content,
            "--pk",
            "customer_id",
            "--mode",
            "pseudo-rows",
            "--register",
            registry.to_str().unwrap(),
            "--recipient",
            partner,
            source.to_str().unwrap(),
            "-o",
            copy.to_str().unwrap(),
        ]));
        copies.insert(partner, copy);
    }
    let lines = std::fs::read_to_string(&registry).unwrap();
    let record: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(record["mode"], "pseudo-rows", "{record}");
    assert_eq!(record["row_spacing"], 100, "{record}");
    assert!(record["pseudo_rows"].as_u64().unwrap() > 200, "{record}");

    // 10% of south's copy, shuffled.
    let leak = dir.path("leak.csv");
    write_batch(
        &shuffled_sample(&read_batch(&copies["south"]), 0.1, 31, &[]),
        &leak,
    );
    let report = extract_report(&dbwm(&[
        "extract",
        "--pk",
        "customer_id",
        "--candidates",
        registry.to_str().unwrap(),
        leak.to_str().unwrap(),
    ]));
    let named: Vec<&str> = report["identified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["content"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["acme->south"], "{report}");
}

#[test]
fn a_copy_keyed_by_a_virtual_key_gets_pseudo_rows_read_from_a_leak_without_the_key() {
    // Marked from the virtual key (name, age): a fabricated row varies the
    // age (an integer, inside its range); the leak drops customer_id.
    let dir = TempDir::new("pseudo-rows-vk");
    let source = dir.path("customers.csv");
    write_batch(&customers_with_gaps(40_000, 8), &source);
    let copy = dir.path("copy.csv");
    let said = ok(&dbwm(&[
        "embed",
        "--content",
        "acme->vk-rows",
        "--virtual-key",
        "name,age",
        "--mode",
        "pseudo-rows",
        // Twice the default's rows: votes well above what the decoder
        // needs in a half-size leak without one of three carrying columns.
        "--row-spacing",
        "50",
        source.to_str().unwrap(),
        "-o",
        copy.to_str().unwrap(),
    ]));
    assert!(said.contains("no real cell changed"), "{said}");
    let leak = dir.path("leak.csv");
    write_batch(
        &shuffled_sample(&read_batch(&copy), 0.5, 42, &["customer_id"]),
        &leak,
    );
    let report = extract_report(&dbwm(&[
        "extract",
        "--virtual-key",
        "name,age",
        leak.to_str().unwrap(),
    ]));
    assert_eq!(found(&report).0, "acme->vk-rows", "{report}");
    // A name is no identifier: changing a letter would make a new one.
    let out = dbwm(&[
        "embed",
        "--content",
        "x",
        "--virtual-key",
        "name",
        "--mode",
        "pseudo-rows",
        source.to_str().unwrap(),
        "-o",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mostly distinct text"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn row_spacing_is_refused_with_another_mode_or_zero() {
    let dir = TempDir::new("pseudo-rows-flags");
    let source = dir.path("customers.csv");
    write_batch(&customers_with_gaps(500, 9), &source);
    let copy = dir.path("copy.csv");
    let s = source.to_str().unwrap();
    let c = copy.to_str().unwrap();
    for args in [
        vec!["--pseudo-column", "ref", "--row-spacing", "10"],
        vec!["--mode", "pseudo-column", "--row-spacing", "10"],
        vec!["--mode", "pseudo-rows", "--row-spacing", "0"],
    ] {
        let mut all = vec!["embed", "--content", "x", "--pk", "customer_id"];
        all.extend(args.iter());
        all.extend(["-o", c, s]);
        let out = dbwm(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!copy.exists());
    }
}

/// Flights of a small airline: each aircraft flies two of forty routes,
/// on any day, at any delay and fare (`id` the key), as CSV text.
fn flights_of_aircraft(rows: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let routes: Vec<[u64; 2]> = (0..300)
        .map(|_| {
            let a = rng.below(40);
            [a, (a + 1 + rng.below(39)) % 40]
        })
        .collect();
    let mut csv = String::from("id,aircraft,dest,day,delay,fare\n");
    for id in 1..=rows {
        let aircraft = rng.below(300) as usize;
        let dest = routes[aircraft][rng.below(2) as usize];
        csv += &format!(
            "{id},N{aircraft:03},D{dest:02},{},{},{}.{:02}\n",
            1 + rng.below(30),
            rng.below(131) as i64 - 10,
            50 + rng.below(850),
            rng.below(100)
        );
    }
    csv
}

#[test]
fn fabricated_rows_pair_an_aircraft_with_a_route_it_flies() {
    // A value drawn only for its hash gave an aircraft a route it never
    // flies in about five rows of six: a detector of rare pairs found them.
    let dir = TempDir::new("pseudo-rows-pairs");
    let source = dir.path("flights.csv");
    std::fs::write(&source, flights_of_aircraft(20_000, 11)).unwrap();
    let copy = dir.path("copy.csv");
    ok(&dbwm(&[
        "embed",
        "--content",
        "acme->pseudo-rows",
        "--pk",
        "id",
        "--mode",
        "pseudo-rows",
        "--row-spacing",
        "50",
        source.to_str().unwrap(),
        "-o",
        copy.to_str().unwrap(),
    ]));
    let (original, marked) = (csv_cells(&source), csv_cells(&copy));
    let (original, marked) = (&original[1..], &marked[1..]);
    let ids: HashSet<&str> = original.iter().map(|r| r[0].as_str()).collect();
    let flown: HashSet<(&str, &str)> = original
        .iter()
        .map(|r| (r[1].as_str(), r[2].as_str()))
        .collect();
    let added: Vec<&Vec<String>> = marked
        .iter()
        .filter(|r| !ids.contains(r[0].as_str()))
        .collect();
    assert!(added.len() > 200, "{}", added.len());
    let kept = added
        .iter()
        .filter(|r| flown.contains(&(r[1].as_str(), r[2].as_str())))
        .count();
    let share = kept as f64 / added.len() as f64;
    assert!(
        share >= 0.8,
        "{kept} of {} added rows fly a route of their aircraft",
        added.len()
    );
}

/// Reference data: a key (3 apart) and codes and labels only, which no
/// cell mark may change.
fn codes_csv(path: &std::path::Path, rows: usize) {
    let mut rng = Rng::new(12);
    let mut text = String::from("id,region,status,grade\n");
    for i in 0..rows {
        let region = ["N", "S", "E", "W"][rng.below(4) as usize];
        let status = ["open", "closed", "held"][rng.below(3) as usize];
        text.push_str(&format!(
            "{},{region},{status},{}\n",
            3 * i,
            1 + rng.below(9)
        ));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_table_of_codes_takes_a_pseudo_column_that_extraction_reads_though_no_cell_can_be_marked() {
    let dir = TempDir::new("pseudo-codes");
    let (source, copy) = (dir.path("codes.csv"), dir.path("copy.csv"));
    codes_csv(&source, 5_000);
    let source_arg = source.to_str().unwrap();
    let copy_arg = copy.to_str().unwrap();
    let cells = dbwm(&[
        "embed",
        "--content",
        "acme",
        "--pk",
        "id",
        source_arg,
        "-o",
        copy_arg,
    ]);
    assert_eq!(cells.status.code(), Some(2));
    let err = String::from_utf8_lossy(&cells.stderr);
    assert!(err.contains("`region`: a code or label"), "{err}");
    assert!(!copy.exists());
    ok(&dbwm(&[
        "embed",
        "--content",
        "acme->codes",
        "--pk",
        "id",
        "--pseudo-column",
        "ref_no",
        source_arg,
        "-o",
        copy.to_str().unwrap(),
    ]));
    let (original, marked) = (csv_cells(&source), csv_cells(&copy));
    assert_eq!(marked[0].last().map(String::as_str), Some("ref_no"));
    for (a, b) in original.iter().zip(&marked) {
        assert_eq!(a[..], b[..a.len()]);
    }
    let report = extract_report(&dbwm(&["extract", "--pk", "id", copy.to_str().unwrap()]));
    let (content, columns, _) = found(&report);
    assert_eq!(
        (content.as_str(), columns),
        ("acme->codes", vec!["ref_no".to_owned()])
    );
    // The unmarked table still has nothing to read, and says why.
    let nothing = dbwm(&["extract", "--pk", "id", source_arg]);
    assert_eq!(nothing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("`grade`"));
}

#[test]
fn pseudo_rows_in_a_table_of_codes_warn_that_few_places_got_a_row() {
    let dir = TempDir::new("pseudo-codes-rows");
    let (source, copy) = (dir.path("codes.csv"), dir.path("copy.csv"));
    codes_csv(&source, 20_000);
    let err = ok(&dbwm(&[
        "embed",
        "--content",
        "acme",
        "--pk",
        "id",
        "--mode",
        "pseudo-rows",
        source.to_str().unwrap(),
        "-o",
        copy.to_str().unwrap(),
    ]));
    assert!(err.contains("warning: only "), "{err}");
    assert!(
        err.contains("a pseudo-column carries a mark in any table"),
        "{err}"
    );
}

#[test]
fn a_pseudo_column_named_like_a_column_of_the_table_is_refused_naming_it() {
    let dir = TempDir::new("pseudo-clash");
    let (source, copy) = (dir.path("codes.csv"), dir.path("copy.csv"));
    codes_csv(&source, 500);
    let out = dbwm(&[
        "embed",
        "--content",
        "acme",
        "--pk",
        "id",
        "--pseudo-column",
        "status",
        source.to_str().unwrap(),
        "-o",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`status` is already a column"), "{err}");
    assert!(!copy.exists());
}
