//! The worker pool: runs tasks in priority order, the files and tables of
//! an extraction task in parallel, records each one's result as it
//! finishes, runs embedding tasks table to table, and sends callbacks.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::AppState;
use super::store::{
    Claimed, EmbedInput, FileResult, Pending, TableSource, TaskDetails, file_status, state,
};
use crate::db::Relation;
use crate::pipeline::{self, Columns, SinkRef, SourceRef};
use crate::registry::{Appender, Issued, Record};
use crate::report::{EmbedJobReport, FileEvidence};
use crate::{Config, WatermarkKey, Watermarker};

/// Resolves a task's file address under the files root (already
/// canonical): relative, no `..`, and — when it exists — no symlink out of
/// the root.
///
/// # Errors
///
/// A message naming the address and what is wrong with it.
pub fn resolve(root: &Path, address: &str) -> Result<PathBuf, String> {
    let path = Path::new(address);
    let bad = |why: &str| Err(format!("file_address `{address}`: {why}"));
    if address.is_empty() {
        return bad("must not be empty");
    }
    if path.is_absolute() || address.starts_with(['/', '\\']) || path.has_root() {
        return bad("must be relative to the server's files root, not absolute");
    }
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return bad("must not contain `..`"),
            Component::RootDir | Component::Prefix(_) => {
                return bad("must be relative to the server's files root, not absolute");
            }
        }
    }
    let full = root.join(path);
    match full.canonicalize() {
        Ok(real) if !real.starts_with(root) => {
            bad("leads outside the server's files root (through a symbolic link)")
        }
        Ok(real) => Ok(real),
        // Missing files are reported when the task runs.
        Err(_) => Ok(full),
    }
}

/// One worker: claims tasks until the server stops.
pub async fn run(app: Arc<AppState>) {
    loop {
        if app.is_stopping() {
            return;
        }
        let store = app.store.clone();
        let claimed = tokio::task::spawn_blocking(move || store.claim_next()).await;
        match claimed {
            Ok(Ok(Some(task))) => run_task(&app, task).await,
            Ok(Ok(None)) => {
                // Woken by a submission, or polls now and then.
                let _ = tokio::time::timeout(Duration::from_millis(500), app.wake.notified()).await;
            }
            Ok(Err(e)) => {
                eprintln!("dbwm serve: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) => return,
        }
    }
}

/// Deletes finished tasks past the retention time, now and then (a tenth
/// of the retention, between 1 s and 1 h), until the server stops.
pub async fn purge(app: Arc<AppState>) {
    let retention = app.config.finished_task_retention_secs;
    if retention == 0 {
        return;
    }
    let every = Duration::from_secs((retention / 10).clamp(1, 3600));
    while !app.is_stopping() {
        let cutoff = std::time::SystemTime::now()
            .checked_sub(Duration::from_secs(retention))
            .unwrap_or(std::time::UNIX_EPOCH);
        let before = crate::timefmt::rfc3339_utc_millis(cutoff);
        let store = app.store.clone();
        match tokio::task::spawn_blocking(move || store.purge_finished(&before)).await {
            Ok(Err(e)) => eprintln!("dbwm serve: purging finished tasks: {e}"),
            Err(_) => return,
            Ok(Ok(_)) => {}
        }
        tokio::time::sleep(every).await;
    }
}

fn file_result(
    address: &str,
    outcome: Result<pipeline::ExtractSummary, String>,
    issued: Option<&Issued>,
) -> FileResult {
    match outcome {
        Ok(summary) => {
            let best = summary.found.first();
            FileResult {
                file_address: address.to_owned(),
                watermark_exist: best.is_some(),
                watermark: best.map(|f| f.content.clone()).unwrap_or_default(),
                status: file_status::DONE.to_owned(),
                remark: String::new(),
                evidence: serde_json::to_value(FileEvidence::tested(&summary, issued))
                    .unwrap_or_default(),
            }
        }
        Err(remark) => FileResult {
            file_address: address.to_owned(),
            watermark_exist: false,
            watermark: String::new(),
            status: file_status::FAILED.to_owned(),
            remark,
            evidence: serde_json::Value::Null,
        },
    }
}

/// The configured connection `name` and what a task reads from it. A
/// connection removed from the configuration since the task was submitted
/// fails the task's entry.
fn source_of<'a>(
    app: &'a AppState,
    table: &TableSource,
) -> Result<(&'a super::Connection, Relation), String> {
    let c = app
        .secrets
        .connections
        .get(&table.connection)
        .ok_or_else(|| {
            format!(
                "connection `{}` is no longer in the server's configuration",
                table.connection
            )
        })?;
    let relation = match (&table.table_name, &table.query) {
        (Some(t), _) => Relation::Table(t.clone()),
        (None, Some(q)) => Relation::Query(q.clone()),
        (None, None) => return Err("neither a table nor a query".to_owned()),
    };
    Ok((c, relation))
}

/// A message about a connection's database, naming the connection rather
/// than its URL (callers never see hosts or users).
fn named(message: impl ToString, name: &str, c: &super::Connection) -> String {
    message
        .to_string()
        .replace(&c.url.redacted(), &format!("connection `{name}`"))
}

/// Extracts one file or table (blocking).
fn extract_one(
    app: &AppState,
    wm: &Watermarker,
    columns: &Columns,
    issued: Option<&Issued>,
    pending: &Pending,
) -> FileResult {
    let address = &pending.address;
    let run = |source: SourceRef<'_>| {
        pipeline::extract_against(
            wm,
            &[source],
            columns,
            &Default::default(),
            issued.map(|i| &i.candidates),
            &mut |_, _| {},
        )
    };
    let outcome = match &pending.table {
        None => resolve(&app.files_root, address).and_then(|path| {
            run(SourceRef::File(&path))
                // Name the file as the caller did, not by the server's path.
                .map_err(|e| e.to_string().replace(&path.display().to_string(), address))
        }),
        Some(table) => source_of(app, table).and_then(|(c, relation)| {
            run(SourceRef::Database {
                url: &c.url,
                relation: &relation,
            })
            .map_err(|e| named(e, &table.connection, c))
        }),
    };
    file_result(address, outcome, issued)
}

async fn run_task(app: &Arc<AppState>, task: Claimed) {
    let key = match &task.key_name {
        Some(name) => app.secrets.keyring.get(name).cloned(),
        None => app.raw_key(&task.id),
    };
    let Some(key) = key else {
        let remark = match &task.key_name {
            Some(name) => format!("watermark key `{name}` is not in the server's keyring"),
            None => super::store::RESTART_REMARK.to_owned(),
        };
        end(app, &task.id, state::FAILED, &remark).await;
        return;
    };
    match task.embed.clone() {
        Some(input) => run_embed(app, &task, key, input).await,
        None => run_extract(app, &task, key).await,
    }
}

/// The registry of issued copies, when the server keeps one: read for an
/// extraction task's test (a registry that cannot be read fails the task).
async fn registry(
    app: &Arc<AppState>,
    wm: &Arc<Watermarker>,
) -> Result<Option<Arc<Issued>>, String> {
    let Some(path) = app.config.registry.clone() else {
        return Ok(None);
    };
    let wm = wm.clone();
    match tokio::task::spawn_blocking(move || Issued::read(&wm, &path, crate::DEFAULT_THRESHOLD))
        .await
    {
        Ok(Ok(issued)) => Ok(Some(Arc::new(issued))),
        Ok(Err(e)) => Err(format!("the server's registry: {e}")),
        Err(_) => Err("the server's registry could not be read".to_owned()),
    }
}

async fn run_extract(app: &Arc<AppState>, task: &Claimed, key: WatermarkKey) {
    let wm = Arc::new(Watermarker::new(key, Config::default()));
    let columns = Arc::new(Columns {
        marked: task.columns.clone(),
        ..Columns::with_key(task.primary_key.clone())
    });
    let issued = match registry(app, &wm).await {
        Ok(i) => i,
        Err(remark) => {
            end(app, &task.id, state::FAILED, &remark).await;
            return;
        }
    };
    let store = app.store.clone();
    let id = task.id.clone();
    let files = match tokio::task::spawn_blocking(move || store.pending_files(&id)).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            end(app, &task.id, state::FAILED, &e.to_string()).await;
            return;
        }
        Err(_) => return,
    };
    let mut running = tokio::task::JoinSet::new();
    let mut files = files.into_iter();
    loop {
        while running.len() < app.config.files_in_parallel && !app.is_stopping() {
            if !still_running(app, &task.id).await {
                break;
            }
            let Some(pending) = files.next() else {
                break;
            };
            let (app, wm, columns, issued, id) = (
                app.clone(),
                wm.clone(),
                columns.clone(),
                issued.clone(),
                task.id.clone(),
            );
            running.spawn_blocking(move || {
                let result = extract_one(&app, &wm, &columns, issued.as_deref(), &pending);
                // A cancelled task keeps what finished before the cancel.
                if let Err(e) = app.store.save_file(&id, pending.idx, &result) {
                    eprintln!("dbwm serve: {e}");
                }
            });
        }
        if running.join_next().await.is_none() {
            break;
        }
    }
    if app.is_stopping() && !all_done(app, &task.id).await {
        // Left Running: the next start puts it back in the queue and the
        // unfinished files run then.
        return;
    }
    end(app, &task.id, state::SUCCESS, "").await;
}

/// How often a running embedding task checks whether it was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(250);

async fn run_embed(app: &Arc<AppState>, task: &Claimed, key: WatermarkKey, input: EmbedInput) {
    let (worker_app, id) = (app.clone(), task.id.clone());
    let columns = Columns {
        marked: task.columns.clone(),
        ..Columns::with_key(task.primary_key.clone())
    };
    let outcome =
        tokio::task::spawn_blocking(move || embed_table(&worker_app, &id, key, &input, &columns))
            .await;
    match outcome {
        Ok(Ok(result)) => {
            let (store, id) = (app.store.clone(), task.id.clone());
            match tokio::task::spawn_blocking(move || store.save_result(&id, &result)).await {
                Ok(Ok(())) => end(app, &task.id, state::SUCCESS, "").await,
                Ok(Err(e)) => end(app, &task.id, state::FAILED, &e.to_string()).await,
                Err(_) => end(app, &task.id, state::FAILED, "the task store failed").await,
            }
        }
        // Stopped by a shutdown: left Running, so the next start runs it
        // again (nothing was written). Stopped by a cancel: already ended.
        Ok(Err(None)) => {}
        Ok(Err(Some(remark))) => end(app, &task.id, state::FAILED, &remark).await,
        Err(_) => end(app, &task.id, state::FAILED, "the embedding failed").await,
    }
}

/// Runs an embedding task (blocking): the source table into a new target
/// table in one transaction, then its registry record. `Err(None)` when it
/// was stopped (cancelled, or the server is stopping) before the target
/// was committed.
fn embed_table(
    app: &AppState,
    id: &str,
    key: WatermarkKey,
    input: &EmbedInput,
    columns: &Columns,
) -> Result<serde_json::Value, Option<String>> {
    let source = &input.source_db_info;
    let target = &input.target_db_info;
    let (from, relation) = source_of(app, source)?;
    let to = app
        .secrets
        .connections
        .get(&target.connection)
        .filter(|c| c.write)
        .ok_or_else(|| {
            format!(
                "connection `{}` is no longer a writable connection in the server's configuration",
                target.connection
            )
        })?;
    let wm = Watermarker::new(key, Config::default());
    // Opened first, so an unwritable registry fails before any work.
    let mut registry = app
        .config
        .registry
        .as_deref()
        .map(Appender::open)
        .transpose()
        .map_err(|e| format!("the server's registry: {e}"))?;
    let label = format!("{}:{}", target.connection, target.table_name);
    let mode = match (&input.pseudo_column, input.row_spacing) {
        (_, Some(spacing)) => pipeline::EmbedMode::PseudoRows { spacing },
        (Some(name), None) => pipeline::EmbedMode::PseudoColumn {
            name,
            format: input
                .pseudo_column_format
                .as_deref()
                .and_then(crate::PseudoFormat::parse)
                .unwrap_or(crate::PseudoFormat::Code),
        },
        (None, None) => pipeline::EmbedMode::Cells,
    };
    let job = pipeline::Job {
        mode,
        source: SourceRef::Database {
            url: &from.url,
            relation: &relation,
        },
        sink: SinkRef::Database {
            url: &to.url,
            table: &target.table_name,
            replace: target.replace,
        },
        content: &input.water_mark,
        columns,
        read: &Default::default(),
        write: &Default::default(),
    };
    let last_check = std::cell::Cell::new(Instant::now());
    let stop = || {
        if app.is_stopping() {
            return true;
        }
        if last_check.get().elapsed() < CANCEL_POLL {
            return false;
        }
        last_check.set(Instant::now());
        !matches!(app.store.state(id), Ok(Some(s)) if s == state::RUNNING)
    };
    let summary = match pipeline::embed_until(&wm, &job, &mut |_, _| {}, &stop) {
        Ok(s) => s,
        Err(pipeline::Error::Stopped) => return Err(None),
        Err(pipeline::Error::Database(crate::db::Error::Exists { .. })) => {
            return Err(Some(format!(
                "target table {} already exists in connection `{}`; nothing was written (set target_db_info.replace to true to replace it)",
                target.table_name, target.connection
            )));
        }
        Err(e) => {
            let message = named(e, &source.connection, from);
            return Err(Some(named(message, &target.connection, to)));
        }
    };
    if let Some(registry) = &mut registry {
        let mut record = Record::issued(
            &wm,
            &input.water_mark,
            input.recipient.as_deref(),
            summary.rows as u64,
            Path::new(&label),
        );
        record.plan_fingerprint = Some(summary.plan_fingerprint.clone());
        record
            .extra
            .insert("task_id".to_owned(), serde_json::Value::from(id));
        if let Some(name) = &input.pseudo_column {
            record.set_pseudo_column(name);
        }
        if let Some(report) = &summary.pseudo_rows {
            record.set_pseudo_rows(report.spacing, report.added as u64);
        }
        let _one_at_a_time = app.registry_lock.lock().unwrap_or_else(|p| p.into_inner());
        registry
            .append(&record)
            .map_err(|e| format!("the copy was written to {label}, but not registered: {e}"))?;
    }
    let report = EmbedJobReport::new(&summary, &label, registry.is_some());
    Ok(serde_json::to_value(report).unwrap_or_default())
}

async fn still_running(app: &Arc<AppState>, id: &str) -> bool {
    let (store, id) = (app.store.clone(), id.to_owned());
    matches!(
        tokio::task::spawn_blocking(move || store.state(&id)).await,
        Ok(Ok(Some(s))) if s == state::RUNNING
    )
}

async fn all_done(app: &Arc<AppState>, id: &str) -> bool {
    let (store, id) = (app.store.clone(), id.to_owned());
    matches!(
        tokio::task::spawn_blocking(move || store.pending_files(&id)).await,
        Ok(Ok(f)) if f.is_empty()
    )
}

/// Ends a task (unless it was cancelled meanwhile), forgets its raw key,
/// and sends its callback.
async fn end(app: &Arc<AppState>, id: &str, new_state: &'static str, remark: &str) {
    let (store, task, remark) = (app.store.clone(), id.to_owned(), remark.to_owned());
    let changed =
        tokio::task::spawn_blocking(move || store.finish(&task, new_state, &remark)).await;
    app.forget_raw_key(id);
    // A task cancelled meanwhile had its callback sent by the cancel.
    if matches!(changed, Ok(Ok(true))) {
        notify(app, id).await;
    }
}

/// Sends the callback of a task that ended (any way), if it has one.
pub async fn notify(app: &Arc<AppState>, id: &str) {
    let (store, task) = (app.store.clone(), id.to_owned());
    let Ok(Ok(Some(details))) =
        tokio::task::spawn_blocking(move || store.details(None, None, &task)).await
    else {
        return;
    };
    let Some(callback) = details.callback.clone() else {
        return;
    };
    let app = app.clone();
    tokio::spawn(async move { deliver(&app, &details, &callback.url, &callback.format).await });
}

async fn deliver(app: &Arc<AppState>, details: &TaskDetails, url: &str, format: &str) {
    let (body, content_type) = if format.eq_ignore_ascii_case("XML") {
        (to_xml(details), "application/xml")
    } else {
        (
            serde_json::to_string(details).unwrap_or_default(),
            "application/json",
        )
    };
    let cb = &app.config.callbacks;
    let mut delay = Duration::from_millis(cb.backoff_ms);
    let mut attempts = 0;
    let delivered = loop {
        attempts += 1;
        let sent = app
            .http
            .post(url)
            .header("content-type", content_type)
            .timeout(Duration::from_secs(cb.timeout_secs))
            .body(body.clone())
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            break true;
        }
        if attempts > cb.retries {
            break false;
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    };
    let (store, id) = (app.store.clone(), details.task_id.clone());
    let outcome = if delivered { "delivered" } else { "failed" };
    let _ = tokio::task::spawn_blocking(move || store.set_callback(&id, outcome, attempts)).await;
}

fn escape_xml(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot hold, even as references.
            c if (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                || matches!(c, '\u{FFFE}' | '\u{FFFF}') =>
            {
                out.push('\u{FFFD}')
            }
            c => out.push(c),
        }
    }
}

fn xml_value(name: &str, v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Array(items) => {
            for item in items {
                xml_value(name, item, out);
            }
        }
        serde_json::Value::Null => out.push_str(&format!("<{name}/>")),
        serde_json::Value::Object(map) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in map {
                xml_value(k, v, out);
            }
            out.push_str(&format!("</{name}>"));
        }
        serde_json::Value::String(s) => {
            out.push_str(&format!("<{name}>"));
            escape_xml(s, out);
            out.push_str(&format!("</{name}>"));
        }
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

/// The task details as XML: the JSON fields as elements (arrays as
/// repeated elements), under `<TaskDetails>`.
pub fn to_xml(details: &TaskDetails) -> String {
    let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    xml_value(
        "TaskDetails",
        &serde_json::to_value(details).unwrap_or_default(),
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_outside_the_root_are_rejected_and_named() {
        let dir = std::env::temp_dir().join(format!("dbwm-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.canonicalize().unwrap();
        std::fs::write(root.join("a.csv"), "id\n1\n").unwrap();
        assert_eq!(resolve(&root, "a.csv").unwrap(), root.join("a.csv"));
        assert_eq!(resolve(&root, "./a.csv").unwrap(), root.join("a.csv"));
        assert!(resolve(&root, "missing/b.csv").is_ok(), "reported when run");
        for (bad, why) in [
            ("/etc/passwd", "not absolute"),
            ("../a.csv", "`..`"),
            ("x/../../a.csv", "`..`"),
            ("", "empty"),
        ] {
            let e = resolve(&root, bad).unwrap_err();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
        #[cfg(unix)]
        {
            let link = root.join("escape");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink("/etc", &link).unwrap();
            let e = resolve(&root, "escape/passwd").unwrap_err();
            assert!(e.contains("symbolic link"), "{e}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn xml_callbacks_escape_text_and_repeat_arrays() {
        let v = serde_json::json!({"a": "x<y", "list": [{"b": 1}, {"b": 2}], "n": null});
        let mut out = String::new();
        xml_value("R", &v, &mut out);
        assert_eq!(
            out,
            "<R><a>x&lt;y</a><list><b>1</b></list><list><b>2</b></list><n/></R>"
        );
    }

    #[test]
    fn xml_callbacks_replace_control_characters_xml_cannot_hold() {
        let v = serde_json::json!({"name": "a\u{1}b\u{1b}[31m\tc\u{ffff}"});
        let mut out = String::new();
        xml_value("R", &v, &mut out);
        assert_eq!(out, "<R><name>a\u{FFFD}b\u{FFFD}[31m\tc\u{FFFD}</name></R>");
    }
}
