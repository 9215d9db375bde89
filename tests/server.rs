//! `dbwm serve` against a real HTTP client on an ephemeral 127.0.0.1 port.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dbwatermark::WatermarkKey;
use dbwatermark::eval::sample;
use dbwatermark::server::signing::{self, Request};
use dbwatermark::server::{self, Secrets, ServerConfig};
use serde_json::{Value, json};

pub const AK: &str = "HWTESTAK0000000000001";
pub const SK: &str = "HwTestSecretKey0000000000000000000000001";
pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";
const TASK_KEY: &str = "the keyring's secret key for tasks";

/// A server running on its own runtime thread, stopped on drop.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub dir: PathBuf,
    pub runtime: Arc<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dbwm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("files")).unwrap();
    dir
}

pub fn start(name: &str, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let dir = temp_dir(name);
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        files_root: dir.join("files"),
        ..ServerConfig::default()
    };
    tweak(&mut config);
    // The connections (and any keyring) of the config, as `dbwm serve`
    // loads them.
    let mut secrets = Secrets::load_with(&config, |_| None).unwrap();
    secrets.credentials.insert(AK.into(), SK.into());
    secrets.tokens.push("test-token".into());
    secrets
        .keyring
        .insert("tasks".into(), WatermarkKey::new(TASK_KEY).unwrap());
    let runtime = Arc::new(tokio::runtime::Runtime::new().unwrap());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let rt = runtime.clone();
    let thread = std::thread::spawn(move || {
        rt.block_on(async move {
            server::serve(
                config,
                secrets,
                move |addr| ready_tx.send(addr).unwrap(),
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await
            .unwrap();
        })
    });
    let addr = ready_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    TestServer {
        addr,
        dir,
        runtime,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// A response: status, headers we look at, JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub request_id: Option<String>,
    pub body: Value,
}

/// How to authenticate a request.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Signed {
        ak: &'a str,
        sk: &'a str,
        at: SystemTime,
    },
    Token(&'a str),
}

pub fn signed() -> Auth<'static> {
    Auth::Signed {
        ak: AK,
        sk: SK,
        at: SystemTime::now(),
    }
}

/// Sends one request to the server at `addr`.
pub async fn send(
    addr: std::net::SocketAddr,
    client: &reqwest::Client,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    auth: Auth<'_>,
    tamper: bool,
) -> Reply {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let host = addr.to_string();
    let mut headers: Vec<(String, String)> = vec![
        ("Host".into(), host.clone()),
        ("Content-Type".into(), "application/json".into()),
        ("X-Project-Id".into(), PROJECT.into()),
    ];
    match auth {
        Auth::None => {}
        Auth::Token(t) => headers.push(("X-Auth-Token".into(), t.into())),
        Auth::Signed { ak, sk, at } => {
            headers.push((
                "X-Sdk-Date".into(),
                dbwatermark::server::signing::sdk_date(at),
            ));
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let authorization = signing::sign(
                &Request {
                    method,
                    path,
                    query,
                    headers: &pairs,
                    body,
                },
                ak,
                sk,
            );
            headers.push(("Authorization".into(), authorization));
        }
    }
    let mut sent = body.to_vec();
    if tamper && !sent.is_empty() {
        let last = sent.len() / 2;
        sent[last] = b' ';
    }
    let url = format!("http://{host}{path_and_query}");
    let mut req = client.request(method.parse().unwrap(), url).body(sent);
    for (n, v) in &headers {
        req = req.header(n, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        request_id,
        body,
    }
}

impl TestServer {
    pub async fn call_async(
        &self,
        client: &reqwest::Client,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        auth: Auth<'_>,
        tamper: bool,
    ) -> Reply {
        send(
            self.addr,
            client,
            method,
            path_and_query,
            body,
            auth,
            tamper,
        )
        .await
    }

    pub fn call(&self, method: &str, path: &str, body: &[u8], auth: Auth<'_>) -> Reply {
        let client = reqwest::Client::new();
        self.runtime
            .block_on(self.call_async(&client, method, path, body, auth, false))
    }

    pub fn files(&self) -> PathBuf {
        self.dir.join("files")
    }

    /// Polls a task until it ends (or 60 s pass).
    pub fn wait_task(&self, project: &str, id: &str) -> Value {
        self.wait_at(&format!("/v1/{project}/watermark/extract/tasks/{id}"))
    }

    /// Polls the task at `path` until it ends (or 60 s pass).
    pub fn wait_at(&self, path: &str) -> Value {
        let start = Instant::now();
        loop {
            let r = self.call("GET", path, b"", signed());
            assert_eq!(r.status, 200, "{r:?}");
            if r.body["status"] != 0 || start.elapsed() > Duration::from_secs(60) {
                return r.body;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Writes a CSV of `rows` customers, marked with `content` under the
/// keyring's task key (or unmarked).
pub fn customers_csv(path: &Path, rows: usize, seed: u64, content: Option<&str>) {
    let mut table = sample::customers(rows, 1, seed);
    if let Some(c) = content {
        let wm = dbwatermark::Watermarker::new(
            WatermarkKey::new(TASK_KEY).unwrap(),
            dbwatermark::Config::default(),
        );
        wm.embed_table(&mut table, c).unwrap();
    }
    let batch = dbwatermark::arrow::table_to_batch(&table).unwrap();
    let mut out =
        dbwatermark::files::Output::create(path, &batch.schema(), &Default::default()).unwrap();
    out.write(&batch).unwrap();
    out.finish().unwrap();
}

fn dsc_path(op: &str) -> String {
    format!("/v1/{PROJECT}/sdg/database/watermark/{op}")
}

/// A DSC embed request of `rows` rows.
pub fn embed_request(rows: usize, content: &str) -> Vec<u8> {
    let data: Vec<Value> = (0..rows)
        .map(|i| json!({"id": i, "salary": format!("{}.{:02}", 3000 + (i * 37) % 5000, i % 97 + 1), "age": 20 + i % 50}))
        .collect();
    serde_json::to_vec(&json!({
        "watermark_content": content,
        "watermark_key": "a dsc request key",
        "columns": [
            {"name": "id", "type": "INTEGER", "primary_key": true},
            {"name": "salary", "type": "DECIMAL", "primary_key": false},
            {"name": "age", "type": "INTEGER", "primary_key": false}
        ],
        "data": data,
    }))
    .unwrap()
}

/// The extract request for the rows of an embed response.
pub fn extract_request(marked: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "watermark_key": "a dsc request key",
        "columns": [
            {"name": "id", "type": "INTEGER", "primary_key": true},
            {"name": "salary", "type": "DECIMAL", "primary_key": false},
            {"name": "age", "type": "INTEGER", "primary_key": false}
        ],
        "data": marked["marked_data"],
    }))
    .unwrap()
}

#[test]
fn signed_embed_and_extract_round_trip_with_request_ids() {
    let s = start("roundtrip", |_| {});
    let embedded = s.call(
        "POST",
        &dsc_path("embed"),
        &embed_request(3000, "acme->p7"),
        signed(),
    );
    assert_eq!(embedded.status, 200, "{embedded:?}");
    assert_eq!(embedded.request_id.as_deref().map(str::len), Some(32));
    assert_eq!(embedded.body["marked_data"].as_array().unwrap().len(), 3000);
    let extracted = s.call(
        "POST",
        &dsc_path("extract"),
        &extract_request(&embedded.body),
        signed(),
    );
    assert_eq!(extracted.status, 200, "{extracted:?}");
    assert_eq!(extracted.body["watermarks"][0], "acme->p7");
    // The same call with a token from the configuration.
    let by_token = s.call(
        "POST",
        &dsc_path("extract"),
        &extract_request(&embedded.body),
        Auth::Token("test-token"),
    );
    assert_eq!(by_token.body, extracted.body);
}

#[test]
fn requests_of_several_megabytes_are_served_within_the_configured_limit() {
    // Regression: axum's default body limit (2 MB) rejected them with 413.
    let s = start("big", |_| {});
    let data: Vec<Value> = (0..30_000)
        .map(|i| json!({"id": i, "age": 20 + i % 50, "note": format!("{i:0>60}")}))
        .collect();
    let body = serde_json::to_vec(&json!({
        "watermark_content": "acme->big",
        "watermark_key": "k",
        "columns": [
            {"name": "id", "type": "INTEGER", "primary_key": true},
            {"name": "age", "type": "INTEGER"},
            {"name": "note", "type": "VARCHAR"}
        ],
        "data": data,
    }))
    .unwrap();
    assert!(body.len() > 2 << 20, "{} bytes", body.len());
    let r = s.call("POST", &dsc_path("embed"), &body, signed());
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["marked_data"].as_array().unwrap().len(), 30_000);
}

#[test]
fn dsc_errors_are_the_cli_bodies_with_400() {
    let s = start("dsc-errors", |_| {});
    let r = s.call("POST", &dsc_path("embed"), b"{not json", signed());
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error_code"], "DSC.00000004");
    let cli = dbwatermark::dsc::embed_json(b"{not json").unwrap_err();
    assert_eq!(r.body["error_msg"], cli.to_string());
    assert!(r.request_id.is_some());
}

#[test]
fn missing_unknown_wrong_stale_or_tampered_credentials_get_401_with_both_fields() {
    let s = start("auth", |c| c.max_clock_skew_secs = 900);
    let body = embed_request(10, "x");
    let client = reqwest::Client::new();
    let old = SystemTime::now() - Duration::from_secs(16 * 60);
    let future = SystemTime::now() + Duration::from_secs(16 * 60);
    let cases: [(&str, Auth<'_>, bool, &str); 7] = [
        ("missing", Auth::None, false, "missing Authorization"),
        (
            "unknown AK",
            Auth::Signed {
                ak: "NOPE",
                sk: SK,
                at: SystemTime::now(),
            },
            false,
            "unknown access key",
        ),
        (
            "wrong SK",
            Auth::Signed {
                ak: AK,
                sk: "wrong",
                at: SystemTime::now(),
            },
            false,
            "signature does not match",
        ),
        (
            "16 min old",
            Auth::Signed {
                ak: AK,
                sk: SK,
                at: old,
            },
            false,
            "away from the server's clock",
        ),
        (
            "16 min ahead",
            Auth::Signed {
                ak: AK,
                sk: SK,
                at: future,
            },
            false,
            "away from the server's clock",
        ),
        ("tampered body", signed(), true, "signature does not match"),
        (
            "unknown token",
            Auth::Token("nope"),
            false,
            "unknown X-Auth-Token",
        ),
    ];
    for (name, auth, tamper, why) in cases {
        let r = s.runtime.block_on(s.call_async(
            &client,
            "POST",
            &dsc_path("embed"),
            &body,
            auth,
            tamper,
        ));
        assert_eq!(r.status, 401, "{name}: {r:?}");
        assert_eq!(r.body["error_code"], "APIGW.0301", "{name}");
        let msg = r.body["error_msg"].as_str().unwrap();
        assert!(msg.contains(why), "{name}: {msg}");
        assert!(!msg.contains(SK), "{name}: the SK never appears");
        assert!(r.request_id.is_some(), "{name}");
    }
    // 14 minutes off is within the skew.
    let near = Auth::Signed {
        ak: AK,
        sk: SK,
        at: SystemTime::now() - Duration::from_secs(14 * 60),
    };
    assert_eq!(s.call("POST", &dsc_path("embed"), &body, near).status, 200);
}

#[test]
fn a_body_over_the_limit_is_rejected_with_413() {
    let s = start("limit", |c| c.body_limit_bytes = 1000);
    let r = s.call(
        "POST",
        &dsc_path("embed"),
        &embed_request(200, "x"),
        signed(),
    );
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.body["error_code"], "DSC.00000004");
    assert!(r.body["error_msg"].as_str().unwrap().contains("1000 bytes"));
}

fn tasks_path(project: &str) -> String {
    format!("/v1/{project}/watermark/extract/tasks")
}

fn submit(s: &TestServer, project: &str, body: Value) -> Reply {
    s.call(
        "POST",
        &tasks_path(project),
        &serde_json::to_vec(&body).unwrap(),
        signed(),
    )
}

#[test]
fn a_task_over_four_files_reports_every_file_and_completes() {
    let s = start("task", |_| {});
    let files = s.files();
    customers_csv(&files.join("a.csv"), 3000, 1, Some("acme->partner-a"));
    customers_csv(&files.join("b.csv"), 3000, 2, Some("acme->partner-b"));
    customers_csv(&files.join("clean.csv"), 3000, 3, None);
    std::fs::write(files.join("broken.parquet"), b"this is not parquet").unwrap();
    let r = submit(
        &s,
        PROJECT,
        json!({
            "name": "leak hunt", "description": "four files",
            "files": ["a.csv", "broken.parquet", "clean.csv", "b.csv"],
            "primary_key": ["customer_id"], "watermark_key_name": "tasks",
            "job_level": 1, "user_data": "case 17",
        }),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["state"], "Submitted");
    let id = r.body["task_id"].as_str().unwrap().to_owned();
    let d = s.wait_task(PROJECT, &id);
    assert_eq!(d["status"], 1, "{d}");
    assert_eq!(d["state"], "Success");
    assert_eq!(d["total"], 4);
    assert_eq!(d["completed"], 4);
    assert_eq!(d["user_data"], "case 17");
    assert_eq!(d["job_level"], 1);
    assert_ne!(d["start_time"], "-");
    let remarks = d["remarks"].as_array().unwrap();
    let by_file = |f: &str| {
        remarks
            .iter()
            .find(|r| r["file_address"] == f)
            .unwrap()
            .clone()
    };
    let a = by_file("a.csv");
    assert_eq!(
        (
            a["watermark_exist"].clone(),
            a["watermark"].clone(),
            a["status"].clone()
        ),
        (json!(true), json!("acme->partner-a"), json!("done"))
    );
    assert_eq!(a["evidence"]["rows"], 3000);
    assert_eq!(by_file("b.csv")["watermark"], "acme->partner-b");
    let clean = by_file("clean.csv");
    assert_eq!(
        (
            clean["watermark_exist"].clone(),
            clean["status"].clone(),
            clean["remark"].clone()
        ),
        (json!(false), json!("done"), json!(""))
    );
    let broken = by_file("broken.parquet");
    assert_eq!(broken["status"], "failed");
    let remark = broken["remark"].as_str().unwrap();
    assert!(
        remark.contains("broken.parquet") && !remark.contains(&*files.to_string_lossy()),
        "{remark}"
    );
    // Another project sees nothing of it.
    let other = s.call(
        "GET",
        &format!("{}/{id}", tasks_path("another-project")),
        b"",
        signed(),
    );
    assert_eq!(other.status, 404);
    assert_eq!(other.body["error_code"], "DSC.00000004");
    let list = s.call("GET", &tasks_path("another-project"), b"", signed());
    assert_eq!(list.body["count"], 0);
    let list = s.call(
        "GET",
        &format!("{}?state=Success&limit=5", tasks_path(PROJECT)),
        b"",
        signed(),
    );
    assert_eq!(list.body["count"], 1);
    assert_eq!(list.body["tasks"][0]["id"], id.as_str());
    assert_eq!(list.body["tasks"][0]["name"], "leak hunt");
}

#[test]
fn finished_tasks_are_deleted_after_the_retention_time() {
    let s = start("retention", |c| c.finished_task_retention_secs = 4);
    customers_csv(&s.files().join("a.csv"), 2000, 1, Some("acme->r"));
    let body =
        json!({"files": ["a.csv"], "primary_key": ["customer_id"], "watermark_key_name": "tasks"});
    let id = submit(&s, PROJECT, body).body["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.wait_task(PROJECT, &id)["state"], "Success");
    let path = format!("{}/{id}", tasks_path(PROJECT));
    assert_eq!(
        s.call("GET", &path, b"", signed()).status,
        200,
        "kept at first"
    );
    let start = std::time::Instant::now();
    while s.call("GET", &path, b"", signed()).status == 200 {
        assert!(start.elapsed() < Duration::from_secs(30), "never purged");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "purged too early"
    );
    assert_eq!(s.call("GET", &path, b"", signed()).status, 404);
    let list = s.call("GET", &tasks_path(PROJECT), b"", signed());
    assert_eq!(list.body["count"], 0);
}

#[test]
fn file_addresses_outside_the_root_are_rejected_before_anything_runs() {
    let s = start("traversal", |_| {});
    for bad in ["../secret.csv", "/etc/passwd", "a/../../x.csv"] {
        let r = submit(
            &s,
            PROJECT,
            json!({
                "files": ["ok.csv", bad], "primary_key": ["id"], "watermark_key_name": "tasks",
            }),
        );
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        assert!(r.body["error_msg"].as_str().unwrap().contains(bad), "{r:?}");
    }
    let list = s.call("GET", &tasks_path(PROJECT), b"", signed());
    assert_eq!(list.body["count"], 0, "nothing was stored");
}

#[test]
fn bad_submissions_name_the_field() {
    let s = start("submissions", |_| {});
    for (body, field) in [
        (
            json!({"files": [], "primary_key": ["id"], "watermark_key_name": "tasks"}),
            "files",
        ),
        (
            json!({"files": ["a"], "primary_key": [], "watermark_key_name": "tasks"}),
            "primary_key",
        ),
        (
            json!({"files": ["a"], "primary_key": ["id"], "watermark_key_name": "nope"}),
            "watermark_key_name",
        ),
        (
            json!({"files": ["a"], "primary_key": ["id"], "watermark_key": "raw"}),
            "watermark_key",
        ),
        (
            json!({"files": ["a"], "primary_key": ["id"], "watermark_key_name": "tasks", "job_level": 3}),
            "job_level",
        ),
        (
            json!({"files": ["a"], "primary_key": ["id"], "watermark_key_name": "tasks", "user_data": "é"}),
            "user_data",
        ),
        (
            json!({"files": ["a"], "primary_key": ["id"], "watermark_key_name": "tasks", "callback": "http://example.com/x"}),
            "callback",
        ),
        (
            json!({"files": ["a"], "primary_key": ["id"], "watermark_key_name": "tasks", "surprise": 1}),
            "surprise",
        ),
    ] {
        let r = submit(&s, PROJECT, body);
        assert_eq!(r.status, 400, "{field}: {r:?}");
        assert!(
            r.body["error_msg"].as_str().unwrap().contains(field),
            "{field}: {r:?}"
        );
    }
}

#[test]
fn unbounded_task_fields_and_control_characters_are_refused_naming_the_field() {
    let s = start("bounds", |_| {});
    let base = || json!({"files": ["a"], "primary_key": ["id"], "watermark_key_name": "tasks"});
    let long = "d".repeat(4 << 20);
    for (field, value, says) in [
        (
            "description",
            json!(long),
            "description: at most 1024 characters",
        ),
        (
            "name",
            json!("x".repeat(257)),
            "name: at most 256 characters",
        ),
        (
            "name",
            json!("task\u{1b}[2J"),
            "name: control character U+001B",
        ),
        (
            "files",
            json!(["a\u{0}b"]),
            "files[0]: control character U+0000",
        ),
        (
            "columns",
            json!((0..1001).map(|i| format!("c{i}")).collect::<Vec<_>>()),
            "at most 1000 column names",
        ),
    ] {
        let mut body = base();
        body[field] = value;
        let r = submit(&s, PROJECT, body);
        assert_eq!(r.status, 400, "{field}: {r:?}");
        let msg = r.body["error_msg"].as_str().unwrap();
        assert!(msg.contains(says), "{field}: {msg}");
        assert!(msg.len() < 1000, "the error does not echo the value");
    }
}

#[test]
fn higher_job_levels_run_first_and_a_queued_task_can_be_cancelled() {
    let s = start("priority", |c| {
        c.workers = 1;
        c.files_in_parallel = 1;
    });
    let files = s.files();
    customers_csv(&files.join("big.csv"), 30_000, 4, Some("acme->big"));
    customers_csv(&files.join("small.csv"), 2000, 5, Some("acme->small"));
    // A long task holds the only worker while the others queue.
    let hold = json!({"files": vec!["big.csv"; 12], "primary_key": ["customer_id"], "watermark_key_name": "tasks"});
    let first = submit(&s, PROJECT, hold);
    // The worker must hold it before the others arrive: queued together,
    // the level-2 task would (rightly) run first.
    let first_path = format!(
        "{}/{}",
        tasks_path(PROJECT),
        first.body["task_id"].as_str().unwrap()
    );
    let start = Instant::now();
    while s.call("GET", &first_path, b"", signed()).body["state"] != "Running" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the long task never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let task = |level: u8| {
        submit(
            &s,
            PROJECT,
            json!({
                "files": ["small.csv"], "primary_key": ["customer_id"],
                "watermark_key_name": "tasks", "job_level": level,
            }),
        )
        .body["task_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let low = task(0);
    let cancelled = task(1);
    let high = task(2);
    let r = s.call(
        "POST",
        &format!("{}/{cancelled}/cancel", tasks_path(PROJECT)),
        b"",
        signed(),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.body["state"].clone(), r.body["status"].clone()),
        (json!("Cancel"), json!(2))
    );
    let again = s.call(
        "POST",
        &format!("{}/{cancelled}/cancel", tasks_path(PROJECT)),
        b"",
        signed(),
    );
    assert_eq!(again.status, 409);
    let first = s.wait_task(PROJECT, first.body["task_id"].as_str().unwrap());
    let (low, high) = (s.wait_task(PROJECT, &low), s.wait_task(PROJECT, &high));
    assert_eq!(
        (low["state"].clone(), high["state"].clone()),
        (json!("Success"), json!("Success"))
    );
    assert!(
        first["end_time"].as_str() <= high["start_time"].as_str(),
        "{first} {high}"
    );
    assert!(
        high["start_time"].as_str().unwrap() < low["start_time"].as_str().unwrap(),
        "level 2 started at {}, level 0 at {}",
        high["start_time"],
        low["start_time"]
    );
    let c = s.wait_task(PROJECT, &cancelled);
    assert_eq!(
        (
            c["state"].clone(),
            c["start_time"].clone(),
            c["completed"].clone()
        ),
        (json!("Cancel"), json!("-"), json!(0))
    );
}

#[test]
fn a_full_queue_answers_429() {
    let s = start("queue", |c| {
        c.queue_capacity = 2;
        c.workers = 1;
    });
    customers_csv(&s.files().join("big.csv"), 30_000, 6, None);
    let body = json!({"files": vec!["big.csv"; 20], "primary_key": ["customer_id"], "watermark_key_name": "tasks"});
    assert_eq!(submit(&s, PROJECT, body.clone()).status, 200);
    assert_eq!(submit(&s, PROJECT, body.clone()).status, 200);
    let r = submit(&s, PROJECT, body);
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.body["error_code"], "APIGW.0308");
}

#[test]
fn a_callback_is_posted_to_an_allowed_listener_as_json_and_xml() {
    let s = start("callback", |c| {
        c.callbacks.allowed_hosts = vec!["127.0.0.1".into()];
        c.callbacks.backoff_ms = 50;
    });
    customers_csv(&s.files().join("a.csv"), 2000, 7, Some("acme->cb"));
    // The listener: a bare HTTP/1.1 server that records each request body;
    // it fails the first attempt to show the retry.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Read, Write};
        for (n, stream) in listener.incoming().enumerate() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut len, mut ctype, mut line) = (0usize, String::new(), String::new());
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let l = line.trim_end().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if let Some(v) = l.strip_prefix("content-type:") {
                    ctype = v.trim().to_owned();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let status = if n == 0 {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .unwrap();
            if n > 0 {
                tx.send((ctype, String::from_utf8(body).unwrap())).unwrap();
            }
        }
    });
    for format in ["JSON", "XML"] {
        let r = submit(
            &s,
            PROJECT,
            json!({
                "files": ["a.csv"], "primary_key": ["customer_id"], "watermark_key_name": "tasks",
                "callback": format!("http://127.0.0.1:{port}/done"), "callback_format": format,
            }),
        );
        assert_eq!(r.status, 200, "{r:?}");
        let id = r.body["task_id"].as_str().unwrap().to_owned();
        let (ctype, body) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        if format == "JSON" {
            assert_eq!(ctype, "application/json");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                (v["task_id"].clone(), v["status"].clone()),
                (json!(id), json!(1))
            );
            assert_eq!(v["remarks"][0]["watermark"], "acme->cb");
        } else {
            assert_eq!(ctype, "application/xml");
            assert!(body.contains(&format!("<task_id>{id}</task_id>")), "{body}");
            assert!(
                body.contains("<watermark>acme-&gt;cb</watermark>"),
                "{body}"
            );
        }
        let start = Instant::now();
        loop {
            let d = s.wait_task(PROJECT, &id);
            if d["callback"]["state"] == "delivered" {
                let attempts = d["callback"]["attempts"].as_u64().unwrap();
                assert_eq!(attempts, if format == "JSON" { 2 } else { 1 });
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{d}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_openapi_document_is_served_and_lists_every_route() {
    let s = start("openapi", |_| {});
    let r = s.call("GET", "/openapi.json", b"", Auth::None);
    assert_eq!(r.status, 200);
    let committed: Value = serde_json::from_str(server::OPENAPI).unwrap();
    assert_eq!(r.body, committed);
    let paths = committed["paths"].as_object().unwrap();
    for (path, methods) in [
        (
            "/v1/{project_id}/sdg/database/watermark/embed",
            &["post"][..],
        ),
        ("/v1/{project_id}/sdg/database/watermark/extract", &["post"]),
        ("/v1/{project_id}/watermark/extract/tasks", &["post", "get"]),
        (
            "/v1/{project_id}/watermark/extract/tasks/{task_id}",
            &["get"],
        ),
        (
            "/v1/{project_id}/watermark/extract/tasks/{task_id}/cancel",
            &["post"],
        ),
        (
            "/v1/{project_id}/data-watermark-embed-tasks",
            &["post", "get"],
        ),
        (
            "/v1/{project_id}/data-watermark-embed-tasks/{task_id}",
            &["get"],
        ),
        (
            "/v1/{project_id}/data-watermark-embed-tasks/{task_id}/cancel",
            &["post"],
        ),
    ] {
        for m in methods {
            assert!(paths[path][m].is_object(), "{m} {path}");
        }
    }
    // An unknown route is a 404 with an error body.
    let r = s.call("GET", "/v1/x/nothing", b"", signed());
    assert_eq!(
        (r.status, r.body["error_code"].clone()),
        (404, json!("DSC.00000004"))
    );
}

#[test]
fn two_hundred_concurrent_signed_extracts_are_all_answered_correctly() {
    let s = start("load", |_| {});
    let embedded = s.call(
        "POST",
        &dsc_path("embed"),
        &embed_request(1000, "acme->load"),
        signed(),
    );
    assert_eq!(embedded.status, 200);
    let body = extract_request(&embedded.body);
    let replies = s.runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let (client, body, addr) = (client.clone(), body.clone(), s.addr);
            let path = dsc_path("extract");
            set.spawn(
                async move { send(addr, &client, "POST", &path, &body, signed(), false).await },
            );
        }
        let mut replies = Vec::new();
        while let Some(r) = set.join_next().await {
            replies.push(r.unwrap());
        }
        replies
    });
    assert_eq!(replies.len(), 200);
    let mut ids = std::collections::HashSet::new();
    for r in &replies {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["watermarks"], json!(["acme->load"]));
        ids.insert(r.request_id.clone().unwrap());
    }
    assert_eq!(ids.len(), 200, "every response has its own request id");
}

#[test]
fn an_idle_connection_flood_does_not_lock_out_a_valid_client_and_slow_headers_are_cut() {
    use std::io::{Read, Write};
    let s = start("flood", |c| {
        c.max_connections = 32;
        c.header_read_timeout_secs = 1;
    });
    // Three times the cap of connections that never send a byte.
    let idle: Vec<std::net::TcpStream> = (0..96)
        .map(|_| std::net::TcpStream::connect(s.addr).unwrap())
        .collect();
    // A slowloris: half a request line, then silence.
    let mut slow = std::net::TcpStream::connect(s.addr).unwrap();
    slow.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = std::time::Instant::now();
    let r = s.call("GET", &tasks_path(PROJECT), b"", signed());
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the valid client waited {:?}",
        started.elapsed()
    );
    // The server closed the idle and the slow connections (read gives EOF
    // or a reset), within a few header timeouts.
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 64];
    // EOF or a reset is closed; a read timeout is not.
    let closed = |c: &mut std::net::TcpStream, buf: &mut [u8]| match c.read(buf) {
        Ok(0) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        Ok(_) => false,
    };
    assert!(closed(&mut slow, &mut buf), "the slow client was not cut");
    for mut c in idle.into_iter().take(5) {
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        assert!(closed(&mut c, &mut buf), "an idle connection stayed open");
    }
}
