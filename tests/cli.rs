//! The fixed contract of `dbwm dsc`: inputs, outputs and exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn dbwm(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbwm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn seed(name: &str) -> String {
    format!("{}/tests/data/dsc/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn dsc_embed_reads_a_file_and_writes_standard_output_with_exit_0() {
    let out = dbwm(
        &[
            "dsc",
            "embed",
            "--input",
            &seed("embed_example.request.json"),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["marked_data"].as_array().unwrap().len(), 2);
}

#[test]
fn dsc_reads_standard_input_with_or_without_a_dash_and_writes_a_file() {
    let request = std::fs::read(seed("embed_example.request.json")).unwrap();
    let dir = std::env::temp_dir().join(format!("dbwm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("out.json");
    let a = dbwm(
        &["dsc", "embed", "-i", "-", "-o", target.to_str().unwrap()],
        &request,
    );
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert!(a.stdout.is_empty());
    let b = dbwm(&["dsc", "embed"], &request);
    assert_eq!(std::fs::read(&target).unwrap(), b.stdout.trim_ascii_end());
    // Only the output file is left in the folder: no temporary files.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dsc_caller_errors_print_the_dsc_body_and_one_line_and_exit_2() {
    for (args, stdin) in [
        (
            vec![
                "dsc",
                "extract",
                "-i",
                &*seed("extract_example.request.json"),
            ],
            &b""[..],
        ),
        (vec!["dsc", "embed"], &b"{not json"[..]),
        (
            vec!["dsc", "extract", "--input", "/nonexistent/request.json"],
            &b""[..],
        ),
    ] {
        let out = dbwm(&args, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(body["error_code"], "DSC.00000004");
        assert!(
            body["error_msg"]
                .as_str()
                .unwrap()
                .starts_with("Invalid parameter: ")
        );
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn dsc_output_that_cannot_be_written_is_an_internal_error_with_exit_1() {
    let out = dbwm(
        &[
            "dsc",
            "embed",
            "-i",
            &seed("embed_example.request.json"),
            "-o",
            "/nonexistent/dir/out.json",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error_code"], "DSC.00000002");
}

/// A CSV of `rows` customers: id, two numbers and a name.
fn customers_csv(rows: usize) -> String {
    let mut rng = dbwatermark::eval::sample::Rng::new(11);
    let mut csv = String::from("id,qty,amount,name\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "{},{},{}.{:02},name-{}\n",
            1000 + i,
            rng.below(500),
            rng.below(90_000) + 100,
            rng.below(99) + 1,
            rng.below(10_000)
        ));
    }
    csv
}

#[test]
fn embed_registers_copies_and_extract_names_the_leaker_with_exit_0_else_3() {
    let dir = std::env::temp_dir().join(format!("dbwm-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    std::fs::write(path("orig.csv"), customers_csv(12_000)).unwrap();
    let key = "a-registry-test-key";
    std::fs::write(path("key"), key).unwrap();
    for i in 1..=3 {
        let out = dbwm(
            &[
                "embed",
                "--key-file",
                &path("key"),
                "--pk",
                "id",
                "--content",
                &format!("acme/partner-{i}"),
                "--register",
                &path("issued.jsonl"),
                "--recipient",
                &format!("Partner {i}"),
                "-o",
                &path(&format!("p{i}.csv")),
                &path("orig.csv"),
            ],
            b"",
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let registry = std::fs::read_to_string(path("issued.jsonl")).unwrap();
    assert!(!registry.contains(key), "the key is never written");
    let lines: Vec<serde_json::Value> = registry
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["content"], "acme/partner-2");
    assert_eq!(lines[1]["recipient"], "Partner 2");
    assert_eq!(lines[1]["rows"], 12_000);
    assert_eq!(lines[1]["key_fingerprint"].as_str().unwrap().len(), 16);
    assert!(lines[1]["issued_at"].as_str().unwrap().ends_with('Z'));
    // A leak: every 20th row of partner 2's copy (600 rows).
    let copy = std::fs::read_to_string(path("p2.csv")).unwrap();
    let leak: String = copy
        .lines()
        .enumerate()
        .filter(|(i, _)| i % 20 == 0)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(path("leak.csv"), leak).unwrap();
    let extract = |file: &str, candidates: &str| {
        dbwm(
            &[
                "extract",
                "--key-file",
                &path("key"),
                "--pk",
                "id",
                "--candidates",
                candidates,
                &path(file),
            ],
            b"",
        )
    };
    let out = extract("leak.csv", &path("issued.jsonl"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let identified = report["identified"].as_array().unwrap();
    assert_eq!(identified.len(), 1, "{report}");
    assert_eq!(identified[0]["content"], "acme/partner-2");
    assert_eq!(identified[0]["recipient"], "Partner 2");
    assert!(identified[0]["p_value"].as_f64().unwrap() < 1e-9);
    assert!(identified[0]["agree"].as_u64().unwrap() <= identified[0]["total"].as_u64().unwrap());
    // The unmarked original: nothing identified or decoded, exit 3.
    let out = extract("orig.csv", &path("issued.jsonl"));
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["identified"], serde_json::json!([]));
    assert!(
        report["candidates"]["best_other"]["p_value"]
            .as_f64()
            .unwrap()
            > 1e-9
    );
    // No number of rows would name a copy in unmarked data: no estimate.
    assert_eq!(
        report["candidates"]["more_rows_needed"],
        serde_json::Value::Null
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no candidate shows any agreement beyond chance"),
        "{stderr}"
    );
    // A hand-written list works too; a bad line is bad input, exit 2.
    std::fs::write(
        path("list.txt"),
        "# issued\nacme/partner-1\nacme/partner-2\n",
    )
    .unwrap();
    assert_eq!(
        extract("leak.csv", &path("list.txt")).status.code(),
        Some(0)
    );
    std::fs::write(path("bad.jsonl"), "acme/partner-1\n{\"recipient\":\"x\"}\n").unwrap();
    let out = extract("leak.csv", &path("bad.jsonl"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.jsonl: line 2: missing field `content`")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_demo_traces_both_leaks_to_partner_b_and_exits_0() {
    let dir = std::env::temp_dir().join(format!("dbwm-demo-{}", std::process::id()));
    let out = dbwm(
        &["demo", "--rows", "20000", "--out", dir.to_str().unwrap()],
        b"",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("the leak carries \"acme->partner-B\""),
        "{text}"
    );
    assert!(
        text.contains("names \"acme->partner-B\" (Partner B)"),
        "{text}"
    );
    assert!(
        text.contains("unmarked original finds 0 watermark(s)"),
        "{text}"
    );
    let registry = std::fs::read_to_string(dir.join("issued.jsonl")).unwrap();
    assert_eq!(
        registry.lines().count(),
        2,
        "the demo starts its registry afresh"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[cfg(target_os = "linux")]
fn a_full_standard_output_or_error_never_panics_and_a_written_copy_is_registered() {
    let dir = crate::support::TempDir::new("cli-full");
    let path = |n: &str| dir.path(n).to_str().unwrap().to_owned();
    let mut csv = String::from("id,amount\n");
    for i in 0..3000 {
        csv.push_str(&format!("{i},{}\n", 100 + i * 37 % 9000));
    }
    std::fs::write(path("in.csv"), csv).unwrap();
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let run = |args: &[&str], stdout: Stdio, stderr: Stdio| {
        Command::new(env!("CARGO_BIN_EXE_dbwm"))
            .args(args)
            .env("DBWM_KEY", "full streams")
            .stdout(stdout)
            .stderr(stderr)
            .output()
            .unwrap()
    };
    // Standard error full: the copy is written and registered, no panic.
    let embed = run(
        &[
            "embed",
            "--pk",
            "id",
            "--content",
            "full-1",
            &path("in.csv"),
            "-o",
            &path("out.csv"),
            "--register",
            &path("issued.jsonl"),
        ],
        Stdio::null(),
        full().into(),
    );
    assert_eq!(embed.status.code(), Some(0));
    assert!(
        std::fs::read_to_string(path("issued.jsonl"))
            .unwrap()
            .contains("full-1")
    );
    // Standard output full: exit 1 with a message, no panic (101).
    let extract = run(
        &["extract", "--pk", "id", &path("out.csv")],
        full().into(),
        Stdio::piped(),
    );
    let stderr = String::from_utf8_lossy(&extract.stderr);
    assert_eq!(extract.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write to standard output"),
        "{stderr}"
    );
}

#[test]
#[cfg(unix)]
fn an_embed_stopped_by_sigterm_or_ctrl_c_leaves_no_temporary_file() {
    use dbwatermark::arrow::table_to_batch;
    use dbwatermark::files::Output;
    let dir = crate::support::TempDir::new("cli-signal");
    let path = |n: &str| dir.path(n).to_str().unwrap().to_owned();
    // An Arrow IPC stream of 200,000 rows, in batches of 10,000.
    let table = dbwatermark::eval::sample::customers(200_000, 1, 9);
    let batch = table_to_batch(&table).unwrap();
    let mut stream = Output::create(
        std::path::Path::new(&path("data.arrows")),
        &batch.schema(),
        &Default::default(),
    )
    .unwrap();
    for start in (0..200_000).step_by(10_000) {
        stream.write(&batch.slice(start, 10_000)).unwrap();
    }
    stream.finish().unwrap();
    let bytes = std::fs::read(path("data.arrows")).unwrap();
    for signal in ["TERM", "INT"] {
        // The input is a FIFO fed three quarters of the stream and held
        // open: the embed profiles, starts its output, then waits for more.
        let fifo = path("in.arrows");
        let _ = std::fs::remove_file(&fifo);
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let child = Command::new(env!("CARGO_BIN_EXE_dbwm"))
            .args([
                "embed",
                "--pk",
                "customer_id",
                "--content",
                "stopped",
                &fifo,
                "-o",
                &path("out.arrows"),
            ])
            .env("DBWM_KEY", "signals")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        writer.write_all(&bytes[..bytes.len() * 3 / 4]).unwrap();
        let temporary = || {
            std::fs::read_dir(&dir.0)
                .unwrap()
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        };
        let start = std::time::Instant::now();
        while !temporary() {
            assert!(
                start.elapsed().as_secs() < 60,
                "no temporary output appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = child.wait_with_output().unwrap();
        drop(writer);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "SIG{signal}: {stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert!(!temporary(), "SIG{signal} left a temporary file");
        assert!(!std::path::Path::new(&path("out.arrows")).exists());
    }
}
