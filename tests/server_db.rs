//! `dbwm serve`'s database tasks, against SQLite databases the tests make:
//! embedding tasks table to table, extraction tasks over tables, the
//! registry, cancels and refusals.

use std::path::Path;

use dbwatermark::server::ConnectionConfig;
use serde_json::{Value, json};

use crate::server::{PROJECT, Reply, TestServer, signed, start};
use crate::support::sqlite_orders;

const EMBED_TASKS: &str = "/v1/0123456789abcdef0123456789abcdef/data-watermark-embed-tasks";
const EXTRACT_TASKS: &str = "/v1/0123456789abcdef0123456789abcdef/watermark/extract/tasks";

fn connection(path: &Path, write: bool, queries: bool) -> ConnectionConfig {
    toml::from_str::<ConnectionConfig>(&format!(
        "url = \"sqlite://{}\"\nwrite = {write}\nqueries = {queries}",
        path.display()
    ))
    .unwrap()
}

/// A server with connections `warehouse` (read only, `orders` of `rows`
/// rows), `outbox` (writable, empty) and a registry.
fn server_with_tables(name: &str, rows: i64) -> TestServer {
    let s = start(name, |c| {
        let dir = c.data_dir.parent().unwrap().to_path_buf();
        sqlite_orders(&dir.join("warehouse.db"), rows);
        c.connections.insert(
            "warehouse".into(),
            connection(&dir.join("warehouse.db"), false, true),
        );
        c.connections.insert(
            "outbox".into(),
            connection(&dir.join("outbox.db"), true, false),
        );
        c.registry = Some(dir.join("issued.jsonl"));
    });
    assert_eq!(PROJECT, &EMBED_TASKS[4..36]);
    s
}

/// POSTs `body` as JSON, signed.
pub fn post(s: &TestServer, path: &str, body: &Value) -> Reply {
    s.call("POST", path, &serde_json::to_vec(body).unwrap(), signed())
}

fn embed_body(target: &str, content: &str) -> Value {
    json!({
        "task_name": "partnerA",
        "source_db_info": {"connection": "warehouse", "table_name": "orders"},
        "target_db_info": {"connection": "outbox", "table_name": target},
        "water_mark": content,
        "watermark_key_name": "tasks",
        "recipient": "Partner A",
        "db_water_param": {"embed_mode": "cells"},
    })
}

fn submitted(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{r:?}");
    r.body["task_id"].as_str().unwrap().to_owned()
}

fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn an_embedding_task_marks_a_table_into_a_new_one_registers_it_and_a_table_task_traces_it() {
    let s = server_with_tables("dbtask-embed", 6000);
    let id = submitted(&post(
        &s,
        EMBED_TASKS,
        &embed_body("orders_a", "acme->partner-a"),
    ));
    let d = s.wait_at(&format!("{EMBED_TASKS}/{id}"));
    assert_eq!(
        (d["state"].clone(), d["status"].clone()),
        (json!("Success"), json!(1)),
        "{d}"
    );
    assert_eq!(
        (d["total"].clone(), d["completed"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(d["name"], "partnerA");
    assert_eq!(d["input"]["target_db_info"]["table_name"], "orders_a");
    assert_eq!(d["input"]["watermark_key_name"], "tasks");
    let result = &d["result"];
    assert_eq!(result["rows"], 6000, "{d}");
    assert_eq!(result["target"], "outbox:orders_a");
    assert_eq!(result["registered"], true);
    let fingerprint = result["plan_fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 16);
    let marked: Vec<&str> = result["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        !marked.is_empty() && !marked.contains(&"carrier"),
        "{result}"
    );
    assert!(result["columns"][0]["cells_changed"].as_u64().unwrap() > 0);

    let dir = s.dir.clone();
    // The copy has every row and key; the source is untouched.
    assert_eq!(
        count(&dir.join("outbox.db"), "SELECT COUNT(*) FROM orders_a"),
        6000
    );
    assert_eq!(
        count(
            &dir.join("outbox.db"),
            "SELECT COUNT(*) FROM orders_a WHERE id BETWEEN 1 AND 6000"
        ),
        6000
    );
    let fresh = dir.join("fresh.db");
    sqlite_orders(&fresh, 6000);
    let attach = "SELECT COUNT(*) FROM orders o JOIN f.orders x USING (id)
         WHERE o.qty IS x.qty AND o.price IS x.price AND o.amount IS x.amount AND o.note IS x.note";
    {
        let c = rusqlite::Connection::open(dir.join("warehouse.db")).unwrap();
        c.execute("ATTACH ?1 AS f", [fresh.to_str().unwrap()])
            .unwrap();
        let same: i64 = c.query_row(attach, [], |r| r.get(0)).unwrap();
        assert_eq!(same, 6000, "the source table was changed");
    }
    // The registry holds the copy, its recipient, plan and task.
    let registry = std::fs::read_to_string(dir.join("issued.jsonl")).unwrap();
    let record: Value = serde_json::from_str(registry.lines().next().unwrap()).unwrap();
    assert_eq!(record["content"], "acme->partner-a");
    assert_eq!(record["recipient"], "Partner A");
    assert_eq!(record["file"], "outbox:orders_a");
    assert_eq!(record["plan_fingerprint"], fingerprint);
    assert_eq!(record["task_id"], id.as_str());
    assert_eq!(record["rows"], 6000);

    // A second copy, then a leak of half the first as a table.
    let second = submitted(&post(
        &s,
        EMBED_TASKS,
        &embed_body("orders_b", "acme->partner-b"),
    ));
    assert_eq!(
        s.wait_at(&format!("{EMBED_TASKS}/{second}"))["state"],
        "Success"
    );
    {
        let c = rusqlite::Connection::open(dir.join("outbox.db")).unwrap();
        c.execute_batch(
            "CREATE TABLE leak (id INTEGER PRIMARY KEY, carrier TEXT, qty INTEGER, price REAL,
                                amount DECIMAL(10,2), day DATE, note TEXT, blob BLOB);
             INSERT INTO leak SELECT * FROM orders_a WHERE id % 2 = 1;",
        )
        .unwrap();
    }
    let r = post(
        &s,
        EXTRACT_TASKS,
        &json!({
            "tables": [{"connection": "outbox", "table_name": "leak"}],
            "watermark_key_name": "tasks",
        }),
    );
    let extract = submitted(&r);
    let d = s.wait_task(PROJECT, &extract);
    assert_eq!(d["state"], "Success", "{d}");
    assert_eq!(d["input"]["tables"][0]["table_name"], "leak");
    let leak = &d["remarks"][0];
    assert_eq!(leak["file_address"], "outbox:leak");
    assert_eq!(leak["status"], "done", "{leak}");
    assert_eq!(leak["watermark"], "acme->partner-a");
    assert_eq!(leak["evidence"]["rows"], 3000);
    let named = &leak["evidence"]["identified"];
    assert_eq!(named.as_array().map(Vec::len), Some(1), "{leak}");
    assert_eq!(named[0]["content"], "acme->partner-a");
    assert_eq!(named[0]["recipient"], "Partner A");
    assert_eq!(leak["evidence"]["candidates"]["tested"], 2);
    // Embedding and extraction tasks are listed apart.
    let list = s.call("GET", EMBED_TASKS, b"", signed());
    assert_eq!(list.body["count"], 2, "{list:?}");
    assert_eq!(
        list.body["tasks"][0]["input"]["water_mark"],
        "acme->partner-b"
    );
    let list = s.call("GET", EXTRACT_TASKS, b"", signed());
    assert_eq!(list.body["count"], 1);
    assert_eq!(
        s.call("GET", &format!("{EXTRACT_TASKS}/{id}"), b"", signed())
            .status,
        404,
        "an embedding task is not an extraction task"
    );
}

#[test]
fn an_existing_target_fails_the_task_naming_the_connection_and_nothing_is_registered() {
    let s = server_with_tables("dbtask-exists", 500);
    let dir = s.dir.clone();
    rusqlite::Connection::open(dir.join("outbox.db"))
        .unwrap()
        .execute_batch("CREATE TABLE taken (x INTEGER)")
        .unwrap();
    let id = submitted(&post(&s, EMBED_TASKS, &embed_body("taken", "acme->x")));
    let d = s.wait_at(&format!("{EMBED_TASKS}/{id}"));
    assert_eq!(d["state"], "Failed", "{d}");
    let remark = d["remark"].as_str().unwrap();
    assert!(
        remark.contains("taken") && remark.contains("connection `outbox`"),
        "{remark}"
    );
    assert!(!remark.contains(&*dir.to_string_lossy()), "{remark}");
    assert!(d.get("result").is_none());
    assert_eq!(
        count(&dir.join("outbox.db"), "SELECT COUNT(*) FROM taken"),
        0
    );
    let registry = std::fs::read_to_string(dir.join("issued.jsonl")).unwrap_or_default();
    assert_eq!(registry, "", "a failed task registers nothing");
    // With replace, the same target is replaced by the marked copy.
    let mut body = embed_body("taken", "acme->x");
    body["target_db_info"]["replace"] = json!(true);
    let id = submitted(&post(&s, EMBED_TASKS, &body));
    assert_eq!(
        s.wait_at(&format!("{EMBED_TASKS}/{id}"))["state"],
        "Success"
    );
    assert_eq!(
        count(&dir.join("outbox.db"), "SELECT COUNT(*) FROM taken"),
        500
    );
}

/// Rows of `table` in the outbox whose cells all equal those of the
/// warehouse's order with the same id (and that meet `also`, SQL).
fn unchanged_rows(dir: &Path, table: &str, also: &str) -> i64 {
    let c = rusqlite::Connection::open(dir.join("outbox.db")).unwrap();
    c.execute(
        "ATTACH ?1 AS w",
        [dir.join("warehouse.db").to_str().unwrap()],
    )
    .unwrap();
    c.query_row(
        &format!(
            "SELECT COUNT(*) FROM {table} p JOIN w.orders o USING (id)
             WHERE p.carrier IS o.carrier AND p.qty IS o.qty AND p.price IS o.price
               AND p.amount IS o.amount AND p.day IS o.day AND p.note IS o.note {also}"
        ),
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// The server registry's only record.
fn only_record(dir: &Path) -> Value {
    serde_json::from_str(
        std::fs::read_to_string(dir.join("issued.jsonl"))
            .unwrap()
            .trim(),
    )
    .unwrap()
}

#[test]
fn a_pseudo_column_task_changes_no_cell_of_the_source_and_an_extraction_task_finds_it() {
    let s = server_with_tables("dbtask-pseudo", 3000);
    let mut body = embed_body("orders_pc", "acme->lossless");
    body["db_water_param"] = json!({
        "embed_mode": "pseudo-column",
        "params": [{"new_column_name": "ref_no", "new_column_type": "token"}],
    });
    let id = submitted(&post(&s, EMBED_TASKS, &body));
    let d = s.wait_at(&format!("{EMBED_TASKS}/{id}"));
    assert_eq!(d["state"], "Success", "{d}");
    assert_eq!(d["input"]["pseudo_column"], "ref_no");
    assert_eq!(d["result"]["columns"][0]["name"], "ref_no");
    assert_eq!(d["result"]["columns"][0]["cells_changed"], 0);
    let dir = s.dir.clone();
    let same = unchanged_rows(&dir, "orders_pc", "AND length(p.ref_no) = 8");
    assert_eq!(same, 3000, "a real cell changed or a token is missing");
    let record = only_record(&dir);
    assert_eq!(record["pseudo_column"], "ref_no");
    let r = post(
        &s,
        EXTRACT_TASKS,
        &json!({
            "tables": [{"connection": "outbox", "table_name": "orders_pc"}],
            "watermark_key_name": "tasks",
        }),
    );
    let d = s.wait_task(PROJECT, &submitted(&r));
    assert_eq!(d["remarks"][0]["watermark"], "acme->lossless", "{d}");
    let bad = post(
        &s,
        EMBED_TASKS,
        &json!({
            "source_db_info": {"connection": "warehouse", "table_name": "orders"},
            "target_db_info": {"connection": "outbox", "table_name": "x"},
            "water_mark": "acme->x", "watermark_key_name": "tasks",
            "db_water_param": {"embed_mode": "pseudo-column", "params": []},
        }),
    );
    assert!(
        bad.body["error_msg"]
            .as_str()
            .unwrap_or_default()
            .contains("takes one param naming the added column"),
        "{bad:?}"
    );
}

#[test]
fn a_pseudo_rows_task_adds_rows_changes_no_real_cell_and_an_extraction_task_finds_them() {
    let s = server_with_tables("dbtask-pseudo-rows", 20_000);
    let mut body = embed_body("orders_pr", "acme->rows");
    body["db_water_param"] = json!({"embed_mode": "pseudo-rows", "row_spacing": 50});
    let id = submitted(&post(&s, EMBED_TASKS, &body));
    let d = s.wait_at(&format!("{EMBED_TASKS}/{id}"));
    assert_eq!(d["state"], "Success", "{d}");
    assert_eq!(d["input"]["row_spacing"], 50);
    let added = d["result"]["pseudo_rows"]["added"].as_u64().unwrap();
    assert!((300..500).contains(&added), "{d}");
    assert_eq!(d["result"]["pseudo_rows"]["real_rows"], 20_000);
    let dir = s.dir.clone();
    assert_eq!(
        count(&dir.join("outbox.db"), "SELECT COUNT(*) FROM orders_pr"),
        20_000 + added as i64
    );
    assert_eq!(
        unchanged_rows(&dir, "orders_pr", ""),
        20_000,
        "a real row changed"
    );
    let record = only_record(&dir);
    assert_eq!(record["mode"], "pseudo-rows");
    assert_eq!(record["pseudo_rows"], added);
    let r = post(
        &s,
        EXTRACT_TASKS,
        &json!({
            "tables": [{"connection": "outbox", "table_name": "orders_pr"}],
            "watermark_key_name": "tasks",
        }),
    );
    let d = s.wait_task(PROJECT, &submitted(&r));
    assert_eq!(d["remarks"][0]["watermark"], "acme->rows", "{d}");
    let mut bad = embed_body("x", "acme->x");
    bad["db_water_param"] = json!({"embed_mode": "cells", "row_spacing": 10});
    let bad = post(&s, EMBED_TASKS, &bad);
    assert!(
        bad.body["error_msg"]
            .as_str()
            .unwrap_or_default()
            .contains("only embed_mode `pseudo-rows` takes it"),
        "{bad:?}"
    );
    // DSC's FakeParam is undocumented: refused by its name, not guessed.
    let mut bad = embed_body("x", "acme->x");
    bad["db_water_param"] = json!({"embed_mode": "pseudo-rows", "params": [{"fake_param": {}}]});
    let bad = post(&s, EMBED_TASKS, &bad);
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(
        bad.body["error_msg"]
            .as_str()
            .unwrap_or_default()
            .contains("db_water_param.params[0].fake_param: not supported"),
        "{bad:?}"
    );
}

#[test]
fn a_running_embedding_task_that_is_cancelled_creates_no_table() {
    let s = server_with_tables("dbtask-cancel", 600_000);
    let id = submitted(&post(
        &s,
        EMBED_TASKS,
        &embed_body("big", "acme->cancelled"),
    ));
    let at = format!("{EMBED_TASKS}/{id}");
    let start = std::time::Instant::now();
    while s.call("GET", &at, b"", signed()).body["state"] != "Running" {
        assert!(start.elapsed().as_secs() < 60, "never ran");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let r = post(&s, &format!("{at}/cancel"), &json!({}));
    assert_eq!(r.status, 200, "the task ended before the cancel: {r:?}");
    assert_eq!(r.body["state"], "Cancel");
    // The worker notices within its poll and rolls the table back.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let d = s.call("GET", &at, b"", signed()).body;
    assert_eq!(d["state"], "Cancel", "{d}");
    assert!(d.get("result").is_none());
    let tables = count(
        &s.dir.join("outbox.db"),
        "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'big%'",
    );
    assert_eq!(tables, 0, "a cancelled task left a table");
}

#[test]
fn database_task_submissions_name_the_bad_field_and_never_take_a_url() {
    let s = server_with_tables("dbtask-refuse", 10);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"source_db_info": {"connection": "elsewhere", "table_name": "orders"}}),
            "source_db_info.connection: no connection `elsewhere`",
        ),
        (
            json!({"target_db_info": {"connection": "warehouse", "table_name": "t"}}),
            "target_db_info.connection: `warehouse` is not writable",
        ),
        (
            json!({"source_db_info": {"connection": "outbox", "query": "SELECT 1"}}),
            "source_db_info.query: connection `outbox` does not take queries",
        ),
        (
            json!({"source_db_info": {"connection": "warehouse", "table_name": "orders", "query": "SELECT 1"}}),
            "source_db_info: give a non-empty table_name or query, not both",
        ),
        (
            json!({"source_db_info": {"connection": "warehouse", "query": "SELECT * FROM orders"}}),
            "primary_key: a query brings no primary key",
        ),
        (
            json!({"source_db_info": {"connection": "warehouse", "url": "postgresql://evil/db"}}),
            "unknown field `url`",
        ),
        (
            json!({"target_db_info": {"connection": "outbox", "table_name": ""}}),
            "target_db_info.table_name: must not be empty",
        ),
        (json!({"water_mark": ""}), "water_mark: 1 to 64 bytes"),
        (
            json!({"water_mark": "x".repeat(65)}),
            "water_mark: 1 to 64 bytes of UTF-8, got 65",
        ),
        (
            json!({"db_water_param": {"embed_mode": "watermark-everything"}}),
            "db_water_param.embed_mode",
        ),
        (json!({"schedule_type": "DAY"}), "schedule_type: `ONCE`"),
        (
            json!({"selected_fields": []}),
            "selected_fields: name at least one column",
        ),
        (json!({"watermark_key_name": "nope"}), "no key `nope`"),
        (json!({"host": "10.0.0.1"}), "unknown field `host`"),
    ];
    for (change, expected) in cases {
        let mut body = embed_body("t", "acme->x");
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = post(&s, EMBED_TASKS, &body);
        let message = r.body["error_msg"].as_str().unwrap_or_default();
        assert!(
            r.status == 400 && message.contains(expected),
            "{change}: {r:?}"
        );
    }
    // Extraction tasks: an unknown connection, and a query needs a key.
    for (body, expected) in [
        (
            json!({"tables": [{"connection": "nowhere", "table_name": "x"}], "watermark_key_name": "tasks"}),
            "tables[0].connection: no connection `nowhere`",
        ),
        (
            json!({"tables": [{"connection": "warehouse", "query": "SELECT * FROM orders"}], "watermark_key_name": "tasks"}),
            "primary_key: at least one column name",
        ),
        (
            json!({"watermark_key_name": "tasks"}),
            "files and tables: 1 to 10000",
        ),
    ] {
        let r = post(&s, EXTRACT_TASKS, &body);
        let message = r.body["error_msg"].as_str().unwrap_or_default();
        assert!(
            r.status == 400 && message.contains(expected),
            "{body}: {r:?}"
        );
    }
}
