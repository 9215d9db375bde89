//! The DSC model: golden seed examples, one test per validation rule,
//! faithful output, multiple watermarks, and agreement with the core.

use dbwatermark::dsc::{self, DscError, INVALID_PARAMETER};
use dbwatermark::{Column, Config, Table, Values, WatermarkKey, Watermarker};
use serde_json::{Value, json};

use crate::support;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/dsc/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn invalid(result: Result<Vec<u8>, DscError>) -> String {
    match result {
        Err(DscError::InvalidParameter(reason)) => reason,
        other => panic!("expected an invalid-parameter error, got {other:?}"),
    }
}

/// A valid embed request over `rows` rows: key `id`, integer `qty`,
/// decimal `price`, text `note`.
fn request(rows: usize) -> Value {
    let data: Vec<Value> = (0..rows)
        .map(|i| json!({"id": i, "qty": (i * 37) % 1000, "price": format!("{}.{:02}", i % 500, i % 97), "note": format!("n{i}")}))
        .collect();
    json!({
        "watermark_content": "partner-7",
        "watermark_key": "dsc test key",
        "columns": [
            {"name": "id", "type": "BIGINT", "primary_key": true},
            {"name": "qty", "type": "INT", "primary_key": false},
            {"name": "price", "type": "DECIMAL(10,2)", "primary_key": false},
            {"name": "note", "type": "VARCHAR(64)", "primary_key": false}
        ],
        "data": data,
    })
}

fn embed(req: &Value) -> Result<Vec<u8>, DscError> {
    dsc::embed_json(&serde_json::to_vec(req).unwrap())
}

fn extract_request(marked: &[u8], key: &str) -> Value {
    let body: Value = serde_json::from_slice(marked).unwrap();
    let mut req = request(0);
    req["watermark_key"] = json!(key);
    req["data"] = body["marked_data"].clone();
    req.as_object_mut().unwrap().remove("watermark_content");
    req
}

fn extract(req: &Value) -> Result<Vec<String>, DscError> {
    let out = dsc::extract_json(&serde_json::to_vec(req).unwrap())?;
    let body: dsc::ExtractResponse = serde_json::from_slice(&out).unwrap();
    Ok(body.watermarks)
}

#[test]
fn seed_embed_example_returns_two_rows_with_the_same_keys_and_integers() {
    let out = dsc::embed_json(&fixture("embed_example.request.json")).unwrap();
    let body: Value = serde_json::from_slice(&out).unwrap();
    let rows = body["marked_data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (i, row) in rows.iter().enumerate() {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["item1", "item2"]);
        assert_eq!(row["item1"], json!(i), "the primary key is untouched");
        assert!(row["item2"].is_i64());
    }
    assert_eq!(
        out,
        fixture("embed_example.response.json"),
        "golden response"
    );
}

#[test]
fn seed_extract_example_without_primary_key_is_an_invalid_parameter() {
    let err = dsc::extract_json(&fixture("extract_example.request.json")).unwrap_err();
    assert_eq!(err.code(), INVALID_PARAMETER);
    assert!(err.to_string().starts_with("Invalid parameter: "));
    assert!(err.to_string().contains("primary key is required"), "{err}");
    let body: Value = serde_json::from_slice(&err.body_json()).unwrap();
    assert_eq!(body["error_code"], "DSC.00000004");
}

#[test]
fn more_than_100_columns_are_rejected() {
    let mut req = request(3);
    let cols = req["columns"].as_array_mut().unwrap();
    for i in 0..97 {
        cols.push(json!({"name": format!("x{i}"), "type": "INT", "primary_key": false}));
    }
    assert!(invalid(embed(&req)).contains("101 entries, at most 100"));
}

#[test]
fn a_table_without_non_key_columns_is_rejected() {
    let mut req = request(3);
    req["columns"] = json!([{"name": "id", "type": "INT", "primary_key": true}]);
    assert!(invalid(embed(&req)).contains("primary_key\": false is required"));
}

#[test]
fn column_names_must_be_1_to_256_characters_and_unique() {
    for (name, want) in [
        (
            String::new(),
            "columns[1].name: must be 1 to 256 characters, got 0",
        ),
        (
            "n".repeat(257),
            "columns[1].name: must be 1 to 256 characters, got 257",
        ),
        ("id".to_owned(), "columns[1].name: `id` is listed twice"),
    ] {
        let mut req = request(3);
        req["columns"][1]["name"] = json!(name);
        assert_eq!(invalid(embed(&req)), want);
    }
}

#[test]
fn unknown_column_types_are_rejected_and_aliases_accepted() {
    let mut req = request(3);
    req["columns"][1]["type"] = json!("BLOB");
    assert_eq!(
        invalid(embed(&req)),
        "columns[1].type: unknown type `BLOB` of column `qty`"
    );
    req["columns"][1]["type"] = json!("int unsigned");
    assert!(embed(&req).is_ok());
}

#[test]
fn field_values_over_2000_characters_are_rejected() {
    let mut req = request(3);
    req["data"][2]["note"] = json!("é".repeat(2001));
    assert_eq!(
        invalid(embed(&req)),
        "data[2].note: value has 2001 characters, at most 2000 allowed"
    );
    req["data"][2]["note"] = json!("é".repeat(2000));
    assert!(embed(&req).is_ok());
}

#[test]
fn row_limits_are_50000_per_embed_and_30000_per_extract() {
    let req = request(50_001);
    assert!(invalid(embed(&req)).contains("50001 records, at most 50000 allowed per embed"));
    let mut ex = request(30_001);
    ex.as_object_mut().unwrap().remove("watermark_content");
    let err = extract(&ex).unwrap_err();
    assert!(
        err.to_string()
            .contains("30001 records, at most 30000 allowed per extract"),
        "{err}"
    );
}

#[test]
fn the_key_must_be_a_non_empty_string_and_is_never_echoed() {
    let mut req = request(3);
    req["watermark_key"] = json!("");
    assert_eq!(invalid(embed(&req)), "watermark_key: must not be empty");
    req["watermark_key"] = json!(987_654_321);
    let reason = invalid(embed(&req));
    assert!(
        reason.contains("watermark_key must be a JSON string"),
        "{reason}"
    );
    assert!(!reason.contains("987654321"));
}

#[test]
fn content_must_be_1_to_64_bytes() {
    let mut req = request(3);
    for (content, ok) in [
        ("", false),
        ("x", true),
        (&*"é".repeat(32), true),
        (&*"a".repeat(65), false),
    ] {
        req["watermark_content"] = json!(content);
        assert_eq!(embed(&req).is_ok(), ok, "{} bytes", content.len());
    }
    assert_eq!(
        invalid(embed(&req)),
        "watermark_content: must be 1 to 64 bytes of UTF-8, got 65 bytes"
    );
}

#[test]
fn missing_fields_and_malformed_json_are_invalid_parameters() {
    assert!(invalid(dsc::embed_json(b"{\"watermark_key\": \"k\"")).starts_with("request body: "));
    assert!(invalid(dsc::embed_json(b"not json")).starts_with("request body: "));
    let mut req = request(3);
    req.as_object_mut().unwrap().remove("columns");
    assert!(invalid(embed(&req)).contains("missing field `columns`"));
}

#[test]
fn unknown_top_level_fields_are_ignored() {
    let mut req = request(3);
    req["project"] = json!({"anything": [1, 2]});
    assert!(embed(&req).is_ok());
}

#[test]
fn an_embed_row_without_its_primary_key_is_named() {
    for (value, want) in [
        (None, "data[1]: primary key column `id` is missing"),
        (
            Some(json!(null)),
            "data[1]: primary key column `id` is null",
        ),
        (
            Some(json!(true)),
            "data[1]: primary key column `id` must be a number or a string",
        ),
    ] {
        let mut req = request(3);
        match value {
            None => drop(req["data"][1].as_object_mut().unwrap().remove("id")),
            Some(v) => req["data"][1]["id"] = v,
        }
        assert_eq!(invalid(embed(&req)), want);
    }
}

#[test]
fn extract_skips_rows_without_a_primary_key() {
    let marked = embed(&request(4000)).unwrap();
    let mut req = extract_request(&marked, "dsc test key");
    for i in (0..4000).step_by(10) {
        req["data"][i].as_object_mut().unwrap().remove("id");
    }
    req["data"][1]["id"] = json!(null);
    assert_eq!(extract(&req).unwrap(), ["partner-7"]);
}

#[test]
fn unmarked_cells_are_byte_identical_and_types_are_kept() {
    // Hand-written text with spellings serde_json would not produce itself.
    let mut text = String::from(
        r#"{"watermark_key":"k","watermark_content":"faithful","columns":[
        {"name":"id","type":"INT","primary_key":true},{"name":"amount","type":"DECIMAL","primary_key":false},
        {"name":"n","type":"INTEGER","primary_key":false},{"name":"s","type":"TEXT","primary_key":false},
        {"name":"when","type":"TIMESTAMP","primary_key":false}],"data":["#,
    );
    for i in 0..3000 {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            r#"{{"extra":{{"a":[1,2.50]}},"id":{i},"amount":{}.{:02},"n":"{}","s":"caf\u00e9 \"{i}\"","flag":true,"nothing":null,"when":"2024-01-{:02} 10:00:{:02}.5+08:00","big":1e3}}"#,
            i % 700,
            i % 100,
            i * 3,
            1 + i % 28,
            i % 60
        ));
    }
    text.push_str("]}");
    let out = dsc::embed_json(text.as_bytes()).unwrap();
    let input: dsc::EmbedRequest = serde_json::from_str(&text).unwrap();
    let output: dsc::EmbedResponse = serde_json::from_slice(&out).unwrap();
    let mut changed = 0;
    for (a, b) in input.data.iter().zip(&output.marked_data) {
        let names: Vec<&str> = a.fields.iter().map(|(k, _)| k.as_str()).collect();
        let out_names: Vec<&str> = b.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, out_names, "same keys in the same order");
        for ((name, x), (_, y)) in a.fields.iter().zip(&b.fields) {
            let (x, y) = (x.get(), y.get());
            if x == y {
                continue;
            }
            changed += 1;
            assert!(
                ["amount", "n", "s", "when"].contains(&name.as_str()),
                "{name} changed: {x} -> {y}"
            );
            assert_eq!(x.starts_with('"'), y.starts_with('"'), "{name}: {x} -> {y}");
            if name == "amount" {
                assert_eq!(
                    x.split_once('.').unwrap().1.len(),
                    y.split_once('.').unwrap().1.len()
                );
            }
            if name == "when" {
                assert!(y.ends_with(".5+08:00\""), "{y}");
            }
        }
    }
    assert!(changed > 100, "{changed} cells changed");
    let mut ex: Value = serde_json::from_str(&text).unwrap();
    ex["data"] = serde_json::from_slice::<Value>(&out).unwrap()["marked_data"].clone();
    assert_eq!(extract(&ex).unwrap(), ["faithful"]);
}

#[test]
fn different_watermarks_in_different_columns_are_all_returned() {
    let mut first = request(6000);
    first["columns"] = json!([
        {"name": "id", "type": "BIGINT", "primary_key": true},
        {"name": "qty", "type": "INT", "primary_key": false}
    ]);
    first["watermark_content"] = json!("copy-one");
    let once: Value = serde_json::from_slice(&embed(&first).unwrap()).unwrap();
    let mut second = request(0);
    second["columns"] = json!([
        {"name": "id", "type": "BIGINT", "primary_key": true},
        {"name": "price", "type": "DECIMAL", "primary_key": false}
    ]);
    second["watermark_content"] = json!("copy-two");
    second["data"] = once["marked_data"].clone();
    let twice = embed(&second).unwrap();
    let mut found = extract(&extract_request(&twice, "dsc test key")).unwrap();
    found.sort();
    assert_eq!(found, ["copy-one", "copy-two"]);
}

/// The same table as a core [`Table`] and as a DSC request body.
fn both_forms(rows: usize) -> (Table, Value) {
    let ids: Vec<i64> = (0..rows as i64).map(|i| i * 3 + 1).collect();
    let qty: Vec<i32> = (0..rows as i32)
        .map(|i| (i * 7919) % 100_000 - 50_000)
        .collect();
    // No trailing zero: the request is built through f64, which drops it.
    let price: Vec<i128> = (0..rows as i128)
        .map(|i| (i * 104_729) % 10_000_000 / 10 * 10 + 1 + i % 9)
        .collect();
    let note: Vec<String> = (0..rows).map(|i| format!("customer {i}")).collect();
    let data: Vec<Value> = (0..rows)
        .map(|i| {
            let p = price[i];
            json!({"id": ids[i], "qty": qty[i], "price": serde_json::from_str::<Value>(&format!("{}.{:02}", p / 100, p % 100)).unwrap(), "note": note[i]})
        })
        .collect();
    let table = Table {
        key: vec![Column::new("id", Values::Int64(ids))],
        columns: vec![
            Column::new("qty", Values::Int32(qty)),
            Column::new(
                "price",
                Values::Decimal {
                    counts: price,
                    scale: 2,
                    precision: 38,
                },
            ),
            Column::new("note", Values::Text(note)),
        ],
    };
    let mut req = request(0);
    req["columns"] = json!([
        {"name": "id", "type": "BIGINT", "primary_key": true},
        {"name": "qty", "type": "INT", "primary_key": false},
        {"name": "price", "type": "DECIMAL(38,2)", "primary_key": false},
        {"name": "note", "type": "TEXT", "primary_key": false}
    ]);
    req["data"] = json!(data);
    (table, req)
}

#[test]
fn dsc_and_core_mark_the_same_table_identically_and_read_each_other() {
    let (mut table, req) = both_forms(5000);
    let wm = Watermarker::new(
        WatermarkKey::new("dsc test key").unwrap(),
        Config::default(),
    );
    wm.embed_table(&mut table, "partner-7").unwrap();
    let out: Value = serde_json::from_slice(&embed(&req).unwrap()).unwrap();
    let rows = out["marked_data"].as_array().unwrap();
    let (Values::Int32(qty), Values::Decimal { counts, .. }, Values::Text(note)) = (
        &table.columns[0].values,
        &table.columns[1].values,
        &table.columns[2].values,
    ) else {
        unreachable!()
    };
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["qty"], json!(qty[i]), "row {i}");
        assert_eq!(
            row["price"].to_string(),
            format!("{}.{:02}", counts[i] / 100, counts[i] % 100),
            "row {i}"
        );
        assert_eq!(row["note"], json!(note[i]), "row {i}");
    }
    // The DSC output equals the core-marked table cell for cell, so the core
    // reading `table` reads the DSC output; and DSC reads the core's output.
    let (_, mut from_core) = both_forms(0);
    from_core
        .as_object_mut()
        .unwrap()
        .remove("watermark_content");
    from_core["data"] = json!(rows);
    assert_eq!(extract(&from_core).unwrap(), ["partner-7"]);
    assert_eq!(support::found(&wm, &table), ["partner-7"]);
}

mod mutated {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config as PropConfig, RngSeed};

    /// Every outcome of a request body is a response of the right shape or
    /// an invalid-parameter error: never a panic, never an internal error.
    fn check(body: &[u8]) {
        match dsc::embed_json(body) {
            Ok(out) => assert!(serde_json::from_slice::<dsc::EmbedResponse>(&out).is_ok()),
            Err(e) => assert!(matches!(e, DscError::InvalidParameter(_)), "{e}"),
        }
        match dsc::extract_json(body) {
            Ok(out) => assert!(serde_json::from_slice::<dsc::ExtractResponse>(&out).is_ok()),
            Err(e) => assert!(matches!(e, DscError::InvalidParameter(_)), "{e}"),
        }
    }

    fn base() -> Vec<u8> {
        let mut req = request(40);
        req["data"][3]["qty"] = json!("17");
        req["data"][4]["price"] = json!({"nested": [1, 2]});
        req["data"][5]["note"] = json!(null);
        serde_json::to_vec(&req).unwrap()
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Flip(usize, u8),
        Delete(usize, usize),
        Insert(usize, Vec<u8>),
        Truncate(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let token = prop_oneof![
            Just(b"null".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"{".to_vec()),
            Just(b"]".to_vec()),
            Just(b"-1e999".to_vec()),
            Just(b"\"\\ud800\"".to_vec()),
            Just(b",\"primary_key\":true".to_vec()),
            proptest::collection::vec(any::<u8>(), 1..8),
        ];
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
            (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
            (any::<usize>(), token).prop_map(|(i, t)| Mutation::Insert(i, t)),
            any::<usize>().prop_map(Mutation::Truncate),
        ]
    }

    fn apply(body: &mut Vec<u8>, m: &Mutation) {
        let len = body.len().max(1);
        match m {
            Mutation::Flip(i, b) => {
                let i = i % len;
                if let Some(x) = body.get_mut(i) {
                    *x = *b;
                }
            }
            Mutation::Delete(i, n) => {
                let i = i % len;
                let end = (i + n).min(body.len());
                body.drain(i.min(end)..end);
            }
            Mutation::Insert(i, t) => {
                let i = i % len;
                body.splice(i..i, t.iter().copied());
            }
            Mutation::Truncate(i) => body.truncate(i % len),
        }
    }

    proptest! {
        #![proptest_config(PropConfig {
            cases: 512,
            rng_seed: RngSeed::Fixed(0xd5c),
            failure_persistence: None,
            ..PropConfig::default()
        })]

        #[test]
        fn mutated_requests_get_a_response_or_a_dsc_error(
            mutations in proptest::collection::vec(mutation(), 1..4)
        ) {
            let mut body = base();
            for m in &mutations {
                apply(&mut body, m);
            }
            check(&body);
        }
    }

    #[test]
    fn the_unmutated_base_request_succeeds() {
        assert!(dsc::embed_json(&base()).is_ok());
    }
}

/// A DSC request shaped like a real table: a status code, a calendar
/// field, times on whole minutes and a bounded measure.
fn real_shaped(rows: usize, with_measure: bool) -> Value {
    let data: Vec<Value> = (0..rows)
        .map(|i| {
            let mut row = json!({
                "id": i,
                "status": 1 + i % 3,
                "year": 2010 + i % 5,
                "departed": format!("2024-03-{:02} {:02}:{:02}:00", 1 + i % 28, i % 24, i * 7 % 60),
            });
            if with_measure {
                row["humidity"] = json!(
                    format!("{}.{}", 20 + i % 80, 1 + i % 9)
                        .parse::<f64>()
                        .unwrap()
                );
            }
            row
        })
        .collect();
    let mut columns = vec![
        json!({"name": "id", "type": "BIGINT", "primary_key": true}),
        json!({"name": "status", "type": "INT", "primary_key": false}),
        json!({"name": "year", "type": "INT", "primary_key": false}),
        json!({"name": "departed", "type": "DATETIME", "primary_key": false}),
    ];
    if with_measure {
        columns.push(json!({"name": "humidity", "type": "DOUBLE", "primary_key": false}));
    }
    json!({
        "watermark_content": "partner-real",
        "watermark_key": "dsc test key",
        "columns": columns,
        "data": data,
    })
}

#[test]
fn dsc_embed_leaves_codes_calendar_fields_and_whole_minutes_alone_and_keeps_measures_in_range() {
    let req = real_shaped(6000, true);
    let out: Value = serde_json::from_slice(&embed(&req).unwrap()).unwrap();
    let (before, after) = (
        req["data"].as_array().unwrap(),
        out["marked_data"].as_array().unwrap(),
    );
    let mut humidity_changed = 0;
    for (a, b) in before.iter().zip(after) {
        for untouched in ["status", "year", "departed"] {
            assert_eq!(a[untouched], b[untouched], "{untouched} changed");
        }
        let (x, y) = (
            a["humidity"].as_f64().unwrap(),
            b["humidity"].as_f64().unwrap(),
        );
        assert!(
            (20.1..=99.9).contains(&y),
            "humidity {x} left its range: {y}"
        );
        humidity_changed += usize::from(x != y);
    }
    assert!(
        humidity_changed > 100,
        "{humidity_changed} humidity cells changed"
    );
    let mut ex = req.clone();
    ex.as_object_mut().unwrap().remove("watermark_content");
    ex["data"] = out["marked_data"].clone();
    assert_eq!(extract(&ex).unwrap(), ["partner-real"]);
}

#[test]
fn a_dsc_request_with_nothing_that_can_carry_a_mark_is_an_invalid_parameter_naming_each_column() {
    let reason = invalid(embed(&real_shaped(6000, false)));
    for says in [
        "none can carry a mark",
        "`status`: 3 distinct whole values",
        "`year`",
        "`departed`: timestamps on whole minutes",
    ] {
        assert!(reason.contains(says), "{says}: {reason}");
    }
}

#[test]
fn a_row_with_a_key_given_twice_is_an_invalid_parameter_naming_the_row_and_key() {
    for path in ["embed", "extract"] {
        let mut body = String::from(
            r#"{"watermark_key":"k","watermark_content":"dup","columns":[{"name":"id","type":"INT","primary_key":true},{"name":"n","type":"INT","primary_key":false}],"data":["#,
        );
        for i in 0..10 {
            body.push_str(&format!(r#"{{"id":{i},"n":{i}}},"#));
        }
        body.push_str(r#"{"id":10,"n":1,"n":2}]}"#);
        let result = match path {
            "embed" => dsc::embed_json(body.as_bytes()),
            _ => dsc::extract_json(body.as_bytes()),
        };
        let reason = invalid(result);
        assert!(
            reason.contains("data[10]: key `n` appears more than once"),
            "{path}: {reason}"
        );
    }
}

#[test]
fn a_cancelled_request_stops_with_an_error_instead_of_finishing() {
    use dbwatermark::dsc::Cancel;
    let body = serde_json::to_vec(&request(50_000)).unwrap();
    // Set before it starts: nothing is computed.
    let cancel = Cancel::new();
    cancel.cancel();
    let err = dsc::embed_json_until(&body, &cancel).unwrap_err();
    assert!(err.to_string().contains("stopped"), "{err}");
    // Set while it runs, from another thread: it ends at its next step.
    let cancel = Cancel::new();
    let setter = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(1));
            cancel.cancel();
        })
    };
    let result = dsc::embed_json_until(&body, &cancel);
    setter.join().unwrap();
    assert!(
        matches!(&result, Err(e) if e.to_string().contains("stopped")),
        "a 50,000-row embed finished within 1 ms of starting, or failed otherwise"
    );
    // Not cancelled, the same body embeds.
    assert!(dsc::embed_json_until(&body, &Cancel::new()).is_ok());
}
