use dbwatermark::{Column, Table, Values};

use crate::support::{self, watermarker};

/// Absolute change of row `i` between two columns, in steps; `None` for
/// strings, which are compared separately.
fn change_in_steps(a: &Values, b: &Values, i: usize) -> Option<i128> {
    let d = match (a, b) {
        (Values::Int8(x), Values::Int8(y)) => i128::from(y[i]) - i128::from(x[i]),
        (Values::Int16(x), Values::Int16(y)) => i128::from(y[i]) - i128::from(x[i]),
        (Values::Int32(x), Values::Int32(y)) => i128::from(y[i]) - i128::from(x[i]),
        (Values::Int64(x), Values::Int64(y)) => i128::from(y[i]) - i128::from(x[i]),
        (Values::UInt8(x), Values::UInt8(y)) => i128::from(y[i]) - i128::from(x[i]),
        (Values::UInt64(x), Values::UInt64(y)) => i128::from(y[i]) - i128::from(x[i]),
        (Values::Decimal { counts: x, .. }, Values::Decimal { counts: y, .. }) => y[i] - x[i],
        (Values::Date32(x), Values::Date32(y)) => i128::from(y[i]) - i128::from(x[i]),
        (Values::Timestamp { values: x, .. }, Values::Timestamp { values: y, .. }) => {
            let d = y[i] - x[i];
            assert_eq!(d % 1000, 0, "timestamps change in whole seconds");
            i128::from(d / 1000)
        }
        // Floats change in the last digit they are printed with.
        (Values::Float64(x), Values::Float64(y)) => in_last_digit(x[i], y[i], &x[i].to_string()),
        (Values::Float32(x), Values::Float32(y)) => {
            in_last_digit(f64::from(x[i]), f64::from(y[i]), &x[i].to_string())
        }
        (Values::Text(x), Values::Text(y)) => {
            if x[i] != y[i] {
                let body = y[i].trim_end_matches(['\u{200B}', '\u{200C}']);
                assert_eq!(body, x[i], "only an invisible end mark is added");
            }
            return None;
        }
        _ => unreachable!("same kinds"),
    };
    Some(d.abs())
}

/// `|b - a|` in units of the last digit of `printed` (the text of `a`).
fn in_last_digit(a: f64, b: f64, printed: &str) -> i128 {
    let decimals = printed.split_once('.').map_or(0, |(_, f)| f.len());
    ((b - a).abs() * 10f64.powi(decimals as i32)).round() as i128
}

#[test]
fn only_selected_cells_change_by_at_most_two_steps_and_keys_and_nulls_stay() {
    for seed in 0..6 {
        let original = support::table(seed, 3000, 5, seed % 2 == 0);
        let wm = watermarker("distortion");
        let mut marked = original.clone();
        let report = wm.embed_table(&mut marked, "distortion check").unwrap();
        let selection = wm.select_table(&original);
        assert_eq!(marked.key, original.key, "primary keys are never touched");
        for (k, (a, b)) in original.columns.iter().zip(&marked.columns).enumerate() {
            let mut changed = 0;
            for i in 0..original.rows() {
                let null = !a.validity.as_ref().unwrap()[i];
                let slot = selection.slots()[i];
                let delta = change_in_steps(&a.values, &b.values, i);
                let differs = a.values.take(&[i]) != b.values.take(&[i]);
                if differs {
                    changed += 1;
                    assert!(!null, "column {k} row {i}: a null cell changed");
                    assert!(
                        slot.is_marked(report.density),
                        "column {k} row {i}: unselected row changed"
                    );
                }
                if let Some(d) = delta {
                    assert!(d <= 2, "column {k} row {i}: changed by {d} steps");
                }
            }
            assert_eq!(report.columns[k].1.changed, changed, "column {k}");
            assert!(report.columns[k].1.max_abs_steps <= 2);
        }
    }
}

#[test]
fn integers_at_the_edges_of_their_type_never_wrap() {
    // At the edge, the nearest value with the right bit may be two steps
    // inward; it is never across the edge.
    let rows = 4000;
    let edge = |i: usize| {
        if i.is_multiple_of(2) {
            i8::MIN
        } else {
            i8::MAX
        }
    };
    let original = Table {
        key: vec![Column::new("id", Values::Int64((0..rows as i64).collect()))],
        columns: vec![
            Column::new("small", Values::Int8((0..rows).map(edge).collect())),
            Column::new(
                "unsigned",
                Values::UInt8(
                    (0..rows)
                        .map(|i| if i % 2 == 0 { 0 } else { 255 })
                        .collect(),
                ),
            ),
        ],
    };
    let mut marked = original.clone();
    let report = watermarker("edges")
        .embed_table(&mut marked, "edge")
        .unwrap();
    for (a, b) in original.columns.iter().zip(&marked.columns) {
        for i in 0..rows {
            assert!(
                change_in_steps(&a.values, &b.values, i).unwrap() <= 2,
                "{} row {i}",
                a.name
            );
        }
    }
    assert!(report.columns.iter().all(|(_, r)| r.changed > 0));
}

#[test]
fn integer_changes_are_exactly_one_step_with_two_steps_configured() {
    let original = support::table(42, 5000, 0, false);
    let mut t = original.clone();
    t.columns.push(Column::new(
        "n",
        Values::Int64((0..5000).map(|i| i * 1_000_003 % 7919).collect()),
    ));
    let report = watermarker("one step").embed_table(&mut t, "x").unwrap();
    let r = &report.columns[0].1;
    assert!(r.changed > 0);
    assert_eq!(r.sum_abs_steps, r.changed as u64);
    assert_eq!(r.max_abs_steps, 1);
    assert_eq!(r.mean_abs_change(), 1.0);
}

/// Marks `values` (a column of 20,000 rows keyed 0..) within `limits`.
fn marked_within(
    values: Values,
    limits: &dbwatermark::Limits,
) -> (Values, dbwatermark::ColumnReport) {
    use dbwatermark::KeyPart;
    let wm = watermarker("limits test");
    let rows = values.len();
    let selection = wm.select(rows, |row, key| {
        key.push(KeyPart::Int(row as i64 as i128));
        true
    });
    let payload = wm.payload("limits").unwrap();
    let density = wm.density_for(Some(rows), &payload);
    let mut values = values;
    let report = wm
        .embed_column_within(
            &selection,
            &payload,
            density,
            values.as_column_mut(),
            None,
            limits,
        )
        .unwrap();
    (values, report)
}

#[test]
fn zeros_stay_zero_nothing_becomes_zero_and_no_sign_flips() {
    // Mostly zero, with small values of both signs: rainfall, delays, counts.
    let ints: Vec<i64> = (0..20_000)
        .map(|i| [0, 0, 0, 1, -1, 2, -2][i % 7])
        .collect();
    let (marked, report) = marked_within(Values::Int64(ints.clone()), &Default::default());
    let Values::Int64(m) = marked else {
        unreachable!()
    };
    assert!(report.changed > 100, "still marked: {report:?}");
    for (a, b) in ints.iter().zip(&m) {
        assert_eq!(a.signum(), b.signum(), "{a} became {b}");
    }
    let floats: Vec<f64> = (0..20_000)
        .map(|i| [0.0, 0.0, 0.01, -0.01, 0.5][i % 5])
        .collect();
    let (marked, report) = marked_within(Values::Float64(floats.clone()), &Default::default());
    let Values::Float64(m) = marked else {
        unreachable!()
    };
    assert!(report.changed > 100);
    for (a, b) in floats.iter().zip(&m) {
        assert!(
            a.signum() == b.signum() && (*a == 0.0) == (*b == 0.0),
            "{a} became {b}"
        );
    }
    let counts: Vec<i128> = (0..20_000).map(|i| [0, 0, 15, -15][i % 4]).collect();
    let (marked, _) = marked_within(
        Values::Decimal {
            counts: counts.clone(),
            scale: 2,
            precision: 9,
        },
        &Default::default(),
    );
    let Values::Decimal { counts: m, .. } = marked else {
        unreachable!()
    };
    for (a, b) in counts.iter().zip(&m) {
        assert_eq!(a.signum(), b.signum(), "{a} became {b}");
    }
}

#[test]
fn limits_keep_values_in_range_and_floats_move_at_the_working_precision() {
    use dbwatermark::Limits;
    // Visibility in miles: hundredths, capped at 10 and printed `10`.
    let visib: Vec<f64> = (0..20_000)
        .map(|i| [10.0, 10.0, 9.5, 0.25, 2.0][i % 5])
        .collect();
    let limits = Limits {
        min: 0.0,
        max: 10.0,
        float_decimals: Some(2),
        ..Limits::default()
    };
    let (marked, report) = marked_within(Values::Float64(visib.clone()), &limits);
    let Values::Float64(m) = marked else {
        unreachable!()
    };
    assert!(report.changed > 100);
    for (a, b) in visib.iter().zip(&m) {
        assert!((0.0..=10.0).contains(b), "{a} became {b}: out of 0..=10");
        assert!(
            (a - b).abs() < 0.0101,
            "{a} became {b}: more than one hundredth"
        );
    }
    assert!(
        m.contains(&9.99),
        "10 moves down to 9.99 when it must change"
    );
    // An integer column's observed range: 1..=12 never becomes 0 or 13.
    let months: Vec<i32> = (0..20_000).map(|i: i32| 1 + i % 12).collect();
    let limits = Limits {
        min: 1.0,
        max: 12.0,
        float_decimals: None,
        ..Limits::default()
    };
    let (marked, _) = marked_within(Values::Int32(months), &limits);
    let Values::Int32(m) = marked else {
        unreachable!()
    };
    assert!(m.iter().all(|v| (1..=12).contains(v)));
}
