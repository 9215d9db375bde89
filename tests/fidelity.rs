//! The default plan on a table shaped like a real one (codes, calendar and
//! clock fields, a mostly-zero measure, a bounded measure, free text): what
//! `dbwm embed` leaves alone and what it marks, end to end through CSV.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::TempDir;

const KEY: &str = "fidelity test key";
const ROWS: usize = 20_000;

fn dbwm(args: &[&str]) -> std::process::Output {
    crate::support::dbwm_keyed(KEY, args)
}

/// The standard output of a run that must have succeeded.
fn traced(r: std::process::Output) -> String {
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).into_owned()
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

const HEADER: &str = "id,carrier,month,minute,dep_time,precip,humid,distance,note";

/// A flights-and-weather-like table, deterministic.
fn write_table(path: &Path) {
    let mut text = format!("{HEADER}\n");
    for i in 0..ROWS {
        let carrier = ["AA", "UA", "DL", "B6", "EV"][i % 5];
        let month = 1 + i % 12;
        let minute = i * 7 % 60;
        let dep_time = (5 + i % 19) * 100 + i * 13 % 60;
        let precip = if i % 9 == 0 {
            format!("{}.{:02}", i % 4, 1 + i % 97)
        } else {
            "0".to_owned()
        };
        let humid = format!("{}.{:02}", 20 + i % 80, i * 31 % 100);
        let humid = if i % 50 == 0 { "100".to_owned() } else { humid };
        let distance = 80 + i * 37 % 4900;
        let note = format!("booking {i} asked for seat {} by the window", i % 7);
        text.push_str(&format!(
            "{},{carrier},{month},{minute},{dep_time},{precip},{humid},{distance},{note}\n",
            i + 1
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn read(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(HEADER));
    lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

fn column(rows: &[Vec<String>], i: usize) -> Vec<&str> {
    rows.iter().map(|r| r[i].as_str()).collect()
}

#[test]
fn default_embed_leaves_codes_calendar_and_clock_fields_alone_and_keeps_measures_in_range() {
    let dir = TempDir::new("fidelity-defaults");
    let (input, output) = (dir.path("in.csv"), dir.path("out.csv"));
    write_table(&input);
    let r = dbwm(&[
        "embed",
        "--content",
        "acme->partner-07",
        "--pk",
        "id",
        &s(&input),
        "-o",
        &s(&output),
    ]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("carrier: not marked, a code or label"),
        "{stderr}"
    );
    assert!(
        stderr.contains("dep_time: not marked, every value is an HHMM clock time"),
        "{stderr}"
    );
    let (a, b) = (read(&input), read(&output));
    assert_eq!(a.len(), b.len());

    // Codes gain no labels and no invisible characters; calendar and clock
    // fields are untouched, so filters and group-bys on them are unchanged.
    for (i, name) in [(1, "carrier"), (2, "month"), (3, "minute"), (4, "dep_time")] {
        assert_eq!(column(&a, i), column(&b, i), "{name} changed");
    }
    let labels: BTreeSet<&str> = column(&b, 1).into_iter().collect();
    assert_eq!(labels.len(), 5, "carriers: {labels:?}");

    // Zeros stay zero and nothing becomes zero; precipitation moves by
    // hundredths only and never goes negative.
    let (pa, pb) = (column(&a, 5), column(&b, 5));
    let mut precip_changed = 0;
    for (x, y) in pa.iter().zip(&pb) {
        let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
        assert_eq!(x == 0.0, y == 0.0, "precip {x} became {y}");
        assert!(y >= 0.0 && (x - y).abs() < 0.0101, "precip {x} became {y}");
        precip_changed += usize::from(x != y);
    }
    assert!(precip_changed > 0, "non-zero rainfall carries marks");

    // A bounded measure stays within its observed range (humidity ≤ 100) at
    // its working precision: `100` never becomes 101 or 99.
    for (x, y) in column(&a, 6).iter().zip(column(&b, 6)) {
        let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
        assert!((20.0..=100.0).contains(&y), "humid {x} became {y}");
        assert!(
            (x - y).abs() < 0.0101,
            "humid {x} became {y}: more than a hundredth"
        );
    }
    // The free measure and the free text carry marks.
    assert!(column(&a, 7) != column(&b, 7), "distance is marked");
    assert!(
        column(&b, 8)
            .iter()
            .any(|n| n.ends_with(['\u{200B}', '\u{200C}']))
    );

    // And the copy is traced.
    let r = dbwm(&["extract", "--pk", "id", &s(&output)]);
    assert!(traced(r).contains("\"acme->partner-07\""));
}

#[test]
fn a_table_with_nothing_that_can_carry_a_mark_is_refused_naming_each_column() {
    let dir = TempDir::new("fidelity-nothing");
    let input = dir.path("codes.csv");
    let mut text = String::from("id,carrier,month\n");
    for i in 0..5000 {
        text.push_str(&format!("{i},{},{}\n", ["AA", "UA"][i % 2], 1 + i % 12));
    }
    std::fs::write(&input, text).unwrap();
    let out = dir.path("out.csv");
    let r = dbwm(&[
        "embed",
        "--content",
        "x",
        "--pk",
        "id",
        &s(&input),
        "-o",
        &s(&out),
    ]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no column can carry a mark"), "{stderr}");
    assert!(
        stderr.contains("`carrier`: a code or label") && stderr.contains("`month`"),
        "{stderr}"
    );
    assert!(!out.exists(), "no copy is written");
}

#[test]
fn dbwm_plan_prints_each_columns_kind_carrier_and_reason_without_writing() {
    let dir = TempDir::new("fidelity-plan");
    let input = dir.path("in.csv");
    write_table(&input);
    let before: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
    let r = dbwm(&["plan", "--pk", "id", "--json", &s(&input)]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(plan["rows"], ROWS);
    let kinds: Vec<(&str, &str, &str)> = plan["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["kind"].as_str().unwrap(),
                c["carrier"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("carrier", "code", "none"),
            ("month", "calendar", "none"),
            ("minute", "calendar", "none"),
            ("dep_time", "calendar", "none"),
            ("precip", "measure", "low digit"),
            ("humid", "measure", "low digit"),
            ("distance", "measure", "low digit"),
            ("note", "free-text", "text mark"),
        ]
    );
    let humid = &plan["columns"][5];
    let observed = column(&read(&input), 6)
        .iter()
        .map(|v| v.parse::<f64>().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(
        (humid["min"].as_f64(), humid["max"].as_f64()),
        (Some(observed), Some(100.0))
    );
    assert_eq!(humid["float_decimals"], 2);
    assert!(humid["expected_changes"].as_u64().unwrap() > 0);
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        before.len(),
        "nothing written"
    );
    // The table form names the same.
    let r = dbwm(&["plan", "--pk", "id", &s(&input)]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("every value is an HHMM clock time"), "{text}");
}

#[test]
fn a_column_named_explicitly_is_marked_but_not_past_the_rules_that_keep_meaning() {
    let dir = TempDir::new("fidelity-named");
    let (input, output) = (dir.path("in.csv"), dir.path("out.csv"));
    write_table(&input);
    // `month` is a calendar field even when named; `distance` is marked.
    let r = dbwm(&[
        "embed",
        "--content",
        "named",
        "--pk",
        "id",
        "--columns",
        "month,distance",
        &s(&input),
        "-o",
        &s(&output),
    ]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("month: not marked"), "{stderr}");
    let (a, b) = (read(&input), read(&output));
    assert_eq!(column(&a, 2), column(&b, 2));
    assert_ne!(column(&a, 7), column(&b, 7));
}

#[test]
fn csv_cells_keep_their_exact_text_and_na_keeps_a_column_numeric() {
    let dir = TempDir::new("fidelity-text");
    let (input, output) = (dir.path("in.csv"), dir.path("out.csv"));
    let mut text = String::from("id,amount,reading,at,delay\n");
    for i in 0..20_000 {
        // Decimals at three places, many with trailing zeros; a measure
        // with `N/A` and `-` among its numbers; times written with a `Z`.
        let amount = format!("{}.{:03}", 10 + i % 90, i * 37 % 1000);
        let reading = match i % 10 {
            0 => "N/A".to_owned(),
            1 => "-".to_owned(),
            _ => format!("{}", 100 + i * 7 % 900),
        };
        let at = format!("2013-01-01T{:02}:{:02}:00Z", i % 24, i % 60);
        // Whole minutes as a float exporter writes them.
        let delay = format!("{}.0", (i * 13 % 200) as i64 - 20);
        text.push_str(&format!("{},{amount},{reading},{at},{delay}\n", i + 1));
    }
    std::fs::write(&input, &text).unwrap();
    let r = dbwm(&[
        "embed",
        "--content",
        "exact text",
        "--pk",
        "id",
        &s(&input),
        "-o",
        &s(&output),
    ]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{stderr}");
    let read_all = |p: &Path| -> Vec<Vec<String>> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(str::to_owned).collect())
            .collect()
    };
    let (a, b) = (read_all(&input), read_all(&output));
    let (mut amounts, mut readings, mut delays) = (0, 0, 0);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x[0], y[0]);
        assert_eq!(x[3], y[3], "timestamps keep their text");
        if x[1] != y[1] {
            amounts += 1;
            assert_eq!(
                y[1].split('.').nth(1).map(str::len),
                Some(3),
                "{} became {}",
                x[1],
                y[1]
            );
            let d = (x[1].parse::<f64>().unwrap() - y[1].parse::<f64>().unwrap()).abs();
            assert!(d < 0.00101, "{} became {}", x[1], y[1]);
        }
        if x[4] != y[4] {
            delays += 1;
            assert!(
                y[4].ends_with(".0"),
                "{} became {}: whole minutes stay whole",
                x[4],
                y[4]
            );
            let d = x[4].parse::<f64>().unwrap() - y[4].parse::<f64>().unwrap();
            assert_eq!(d.abs(), 1.0, "{} became {}", x[4], y[4]);
        }
        if x[2] == "N/A" || x[2] == "-" {
            assert_eq!(x[2], y[2], "null tokens pass through");
        } else if x[2] != y[2] {
            readings += 1;
            let d = x[2].parse::<i64>().unwrap() - y[2].parse::<i64>().unwrap();
            assert_eq!(d.abs(), 1, "{} became {}", x[2], y[2]);
        }
    }
    assert!(
        amounts > 100 && readings > 100 && delays > 100,
        "all carry marks: {amounts}, {readings}, {delays}"
    );
    // Trailing zeros survive in the cells that were not changed.
    assert!(b.iter().any(|r| r[1].ends_with('0')));
    let r = dbwm(&["extract", "--pk", "id", &s(&output)]);
    assert!(traced(r).contains("\"exact text\""));
}

#[test]
fn the_owners_rules_from_a_file_and_flags_decide_what_is_marked_and_extraction_follows_them() {
    let dir = TempDir::new("fidelity-rules");
    let (input, output) = (dir.path("in.csv"), dir.path("out.csv"));
    let (rules, registry) = (dir.path("rules.toml"), dir.path("issued.jsonl"));
    write_table(&input);
    // The owner: `distance` is left alone, `month` is a measure after all
    // (within 2..=11), humidity moves by at most a hundredth and never
    // above 99.5.
    std::fs::write(
        &rules,
        "[columns.distance]\nmark = false\n\n[columns.month]\nkind = \"measure\"\nmin = 2\nmax = 11\n",
    )
    .unwrap();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["--pk", "id", "--rules", &s(&rules)]
            .iter()
            .map(|a| a.to_string())
            .collect();
        v.extend(["--rule".into(), "humid:max=99.5,max_change=0.01".into()]);
        v.extend(extra.iter().map(|a| a.to_string()));
        v
    };
    let mut embed = vec!["embed".to_owned(), "--content".into(), "ruled".into()];
    embed.extend(args(&[
        &s(&input),
        "-o",
        &s(&output),
        "--register",
        &s(&registry),
    ]));
    let r = dbwm(&embed.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("distance: not marked, left alone by the owner's rules"),
        "{stderr}"
    );
    let (a, b) = (read(&input), read(&output));
    assert_eq!(column(&a, 7), column(&b, 7), "distance was left alone");
    let (ma, mb) = (column(&a, 2), column(&b, 2));
    assert_ne!(ma, mb, "month is marked as the owner said");
    for (x, y) in ma.iter().zip(&mb) {
        let (x, y): (i64, i64) = (x.parse().unwrap(), y.parse().unwrap());
        assert!(x == y || (2..=11).contains(&y), "month {x} became {y}");
    }
    for (x, y) in column(&a, 6).iter().zip(column(&b, 6)) {
        let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
        assert!(x == y || y <= 99.5, "humid {x} became {y}");
        assert!((x - y).abs() <= 0.0100001, "humid {x} became {y}");
    }

    // The registry records the plan's fingerprint, the same as the summary.
    let fingerprint = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("plan "))
        .expect("the summary prints the plan fingerprint")
        .to_owned();
    let record = std::fs::read_to_string(&registry).unwrap();
    assert!(
        record.contains(&format!("\"plan_fingerprint\":\"{fingerprint}\"")),
        "{record}"
    );

    // Extraction under the same rules names the copy.
    let mut extract = vec!["extract".to_owned()];
    extract.extend(args(&[&s(&output), "--candidates", &s(&registry)]));
    let r = dbwm(&extract.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(traced(r).contains("\"ruled\""));
}

#[test]
fn a_rule_that_does_not_fit_the_table_is_refused_naming_the_column_and_nothing_is_written() {
    let dir = TempDir::new("fidelity-badrules");
    let (input, output) = (dir.path("in.csv"), dir.path("out.csv"));
    write_table(&input);
    for (rule, says) in [
        (
            "height:mark=true",
            "rule for column `height`: the table has no such column",
        ),
        (
            "carrier:kind=measure",
            "rule for column `carrier`: `kind = measure` needs numbers",
        ),
        (
            "humid:min=5,max=1",
            "rule for column `humid`: min 5 is above max 1",
        ),
        ("humid:colour=red", "unknown setting `colour`"),
        ("id:mark=true", "`id` is a primary-key column"),
    ] {
        let r = dbwm(&[
            "embed",
            "--content",
            "x",
            "--pk",
            "id",
            "--rule",
            rule,
            &s(&input),
            "-o",
            &s(&output),
        ]);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{rule}: {stderr}");
        assert!(stderr.contains(says), "{rule}: {stderr}");
        assert!(!output.exists(), "{rule}: an output was written");
    }
}
