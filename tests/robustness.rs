use dbwatermark::eval::attack;
use dbwatermark::eval::sample::{self, Rng};
use dbwatermark::{Column, Table, Values};

use crate::support::{found, watermarker};

const CONTENT: &str = "acme->partner-42";

fn marked(rows: usize, seed: u64) -> (dbwatermark::Watermarker, Table) {
    let wm = watermarker("robustness test key");
    let mut table = sample::customers(rows, 1, seed);
    wm.embed_table(&mut table, CONTENT).unwrap();
    (wm, table)
}

#[test]
fn extract_survives_half_the_rows_deleted() {
    let (wm, table) = marked(8000, 1);
    for seed in 0..3 {
        assert_eq!(
            found(&wm, &attack::delete_rows(&table, 0.5, seed)),
            [CONTENT]
        );
    }
}

#[test]
fn extract_survives_shuffled_rows() {
    let (wm, table) = marked(8000, 2);
    assert_eq!(found(&wm, &attack::shuffle_rows(&table, 9)), [CONTENT]);
}

#[test]
fn extract_survives_as_many_unmarked_rows_added() {
    let (wm, mut table) = marked(8000, 3);
    table
        .append(&sample::customers(8000, 1_000_000, 4))
        .unwrap();
    assert_eq!(found(&wm, &attack::shuffle_rows(&table, 5)), [CONTENT]);
}

#[test]
fn extract_works_from_each_marked_column_alone() {
    let (wm, table) = marked(8000, 6);
    for column in &table.columns {
        let alone = Table {
            key: table.key.clone(),
            columns: vec![column.clone()],
        };
        assert_eq!(found(&wm, &alone), [CONTENT], "column {}", column.name);
    }
}

#[test]
fn renamed_and_reordered_columns_change_nothing() {
    let (wm, mut table) = marked(8000, 7);
    table.columns.reverse();
    for (i, c) in table.columns.iter_mut().enumerate() {
        c.name = format!("x{i}");
    }
    table.key[0].name = "renamed_id".into();
    assert_eq!(found(&wm, &table), [CONTENT]);
}

#[test]
fn keys_typed_as_integers_and_as_strings_extract_the_same() {
    let (wm, table) = marked(8000, 8);
    let Values::Int64(ids) = &table.key[0].values else {
        unreachable!("sample keys are Int64")
    };
    // The same keys as text, in the spellings exports produce.
    let mut rng = Rng::new(1);
    let text: Vec<String> = ids
        .iter()
        .map(|id| match rng.below(3) {
            0 => id.to_string(),
            1 => format!(" {id} "),
            _ => format!("{id}.0"),
        })
        .collect();
    let as_text = Table {
        key: vec![Column::new("customer_id", Values::Text(text))],
        columns: table.columns.clone(),
    };
    let from_ints = watermarker("robustness test key")
        .extract_table(&table)
        .unwrap();
    let from_text = wm.extract_table(&as_text).unwrap();
    assert_eq!(from_ints, from_text);
    assert_eq!(from_text[0].content, CONTENT);
}

#[test]
fn floats_read_back_from_their_printed_text_keep_the_mark() {
    let (wm, mut table) = marked(8000, 10);
    for c in &mut table.columns {
        if let Values::Float64(v) = &mut c.values {
            for x in v.iter_mut() {
                *x = x.to_string().parse().unwrap();
            }
        }
        if let Values::Decimal { counts, scale, .. } = &c.values {
            // A decimal exported as text and read back as a float.
            let f: Vec<f64> = counts
                .iter()
                .map(|&n| {
                    format!("{}", n as f64 / 10f64.powi(i32::from(*scale)))
                        .parse()
                        .unwrap()
                })
                .collect();
            c.values = Values::Float64(f);
        }
    }
    table
        .columns
        .retain(|c| matches!(c.values, Values::Float64(_)));
    assert_eq!(table.columns.len(), 2);
    for c in &table.columns {
        let alone = Table {
            key: table.key.clone(),
            columns: vec![c.clone()],
        };
        assert_eq!(found(&wm, &alone), [CONTENT], "column {}", c.name);
    }
}

#[test]
fn columns_carrying_different_watermarks_are_all_reported() {
    let wm = watermarker("two partners");
    let mut table = sample::customers(8000, 1, 11);
    let (left, right) = table.columns.split_at_mut(2);
    let mut a = Table {
        key: table.key.clone(),
        columns: left.to_vec(),
    };
    let mut b = Table {
        key: table.key.clone(),
        columns: right.to_vec(),
    };
    wm.embed_table(&mut a, "copy-A").unwrap();
    wm.embed_table(&mut b, "copy-B").unwrap();
    left.clone_from_slice(&a.columns);
    right.clone_from_slice(&b.columns);
    let found = wm.extract_table(&table).unwrap();
    let mut contents: Vec<&str> = found.iter().map(|f| f.content.as_str()).collect();
    contents.sort_unstable();
    assert_eq!(contents, ["copy-A", "copy-B"]);
    for f in &found {
        let want: Vec<usize> = if f.content == "copy-A" {
            vec![0, 1]
        } else {
            vec![2, 3]
        };
        assert_eq!(f.columns, want, "{}", f.content);
        assert!(f.evidence.agree > f.evidence.disagree);
    }
}

#[test]
fn tallies_of_two_halves_merge_into_the_tally_of_the_whole() {
    let (wm, table) = marked(6000, 12);
    let first: Vec<usize> = (0..3000).collect();
    let second: Vec<usize> = (3000..6000).collect();
    let whole = wm.tally_table(&table).unwrap();
    let a = wm.tally_table(&table.take_rows(&first)).unwrap();
    let b = wm.tally_table(&table.take_rows(&second)).unwrap();
    for ((w, x), (_, y)) in whole.iter().zip(a).zip(b) {
        let mut merged = x.1.clone();
        merged.merge(&y);
        assert_eq!(&merged, &w.1, "column {}", w.0);
    }
}
