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
