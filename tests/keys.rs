use dbwatermark::{Column, Error, Table, Values, WatermarkKey};

use crate::support::{self, watermarker};

#[test]
fn rows_with_a_null_key_are_left_alone() {
    let original = support::table(5, 3000, 3, false);
    let mut t = original.clone();
    let validity: Vec<bool> = (0..3000).map(|i| i % 3 != 0).collect();
    t.key[0].validity = Some(validity.clone());
    let before = t.clone();
    watermarker("nulls").embed_table(&mut t, "k").unwrap();
    for (a, b) in before.columns.iter().zip(&t.columns) {
        for i in (0..3000).filter(|i| !validity[*i]) {
            assert_eq!(
                a.values.take(&[i]),
                b.values.take(&[i]),
                "{} row {i}",
                a.name
            );
        }
    }
}

#[test]
fn an_empty_key_and_a_table_without_primary_key_are_rejected() {
    assert_eq!(WatermarkKey::new("").unwrap_err(), Error::EmptyKey);
    let mut t = Table {
        key: vec![],
        columns: vec![Column::new("a", Values::Int32(vec![1, 2]))],
    };
    assert_eq!(
        watermarker("k").embed_table(&mut t, "x").unwrap_err(),
        Error::NoPrimaryKey
    );
}

#[test]
fn a_column_of_the_wrong_length_is_named() {
    let mut t = support::table(1, 100, 1, false);
    t.columns
        .push(Column::new("short", Values::Int32(vec![1; 99])));
    let err = watermarker("k").embed_table(&mut t, "x").unwrap_err();
    assert_eq!(err.to_string(), "column `short` has 99 rows, expected 100");
}

#[test]
fn content_of_65_bytes_is_rejected_with_its_length() {
    let mut t = support::table(1, 100, 1, false);
    let err = watermarker("k")
        .embed_table(&mut t, &"a".repeat(65))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "watermark content must be 1 to 64 bytes of UTF-8, got 65 bytes"
    );
}

#[test]
fn errors_and_debug_output_never_show_the_key() {
    let secret = "hunter2-very-secret";
    let wm = watermarker(secret);
    assert!(!format!("{wm:?}").contains(secret));
    let mut t = support::table(1, 100, 1, false);
    let err = wm.embed_table(&mut t, "").unwrap_err();
    assert!(!format!("{err:?} {err}").contains(secret));
}
