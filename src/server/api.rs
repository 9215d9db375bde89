//! The routes: DSC's embed and extract, and the extraction tasks.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::store::{
    self, Cancelled, ColumnInfo, EmbedInput, Kind, NewTask, Submitted, TableSource, TableTarget,
    TaskList, state,
};
use super::{AppState, error_response, json_response};
use crate::WatermarkKey;
use crate::dsc::{self, DscError, INTERNAL_ERROR, INVALID_PARAMETER};

/// Error code of a full task queue.
pub const QUEUE_FULL_CODE: &str = "APIGW.0308";

/// The authenticated routes (the caller adds authentication).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/v1/{project_id}/sdg/database/watermark/embed",
            post(|s, b| dsc_call(s, b, dsc::embed_json_until)),
        )
        .route(
            "/v1/{project_id}/sdg/database/watermark/extract",
            post(|s, b| dsc_call(s, b, dsc::extract_json_until)),
        )
        .merge(task_routes(
            "/v1/{project_id}/watermark/extract/tasks",
            Kind::Extract,
            validate,
        ))
        .merge(task_routes(
            "/v1/{project_id}/data-watermark-embed-tasks",
            Kind::Embed,
            validate_embed,
        ))
}

/// The four routes of one kind of task under `base`: submit (checked by
/// `check`), list, details and cancel.
fn task_routes<S: serde::de::DeserializeOwned + Send + 'static>(
    base: &str,
    kind: Kind,
    check: Check<S>,
) -> Router<Arc<AppState>> {
    Router::new()
        .route(
            base,
            post(move |s: State<Arc<AppState>>, p: Path<String>, b: Bytes| submit(s, p, b, check))
                .get(
                    move |s: State<Arc<AppState>>, p: Path<String>, q: RawQuery| {
                        list_tasks(s, p, q, kind)
                    },
                ),
        )
        .route(
            &format!("{base}/{{task_id}}"),
            get(move |s: State<Arc<AppState>>, p: Path<(String, String)>| task_details(s, p, kind)),
        )
        .route(
            &format!("{base}/{{task_id}}/cancel"),
            post(move |s: State<Arc<AppState>>, p: Path<(String, String)>| cancel_task(s, p, kind)),
        )
}

fn invalid(message: &str) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        INVALID_PARAMETER,
        &format!("Invalid parameter: {message}"),
    )
}

fn internal(message: &str) -> Response {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        INTERNAL_ERROR,
        &format!("Internal error: {message}"),
    )
}

/// Runs a DSC request in the blocking pool, within the time limit; the
/// same functions as `dbwm dsc`.
///
/// A request past its limit gets 503 at once; its work is asked to stop
/// ([`dsc::Cancel`], checked between its steps) and keeps its turn on the
/// cores until it has, so timed-out requests cannot pile up work beyond the
/// cores.
async fn dsc_call(
    State(app): State<Arc<AppState>>,
    body: Bytes,
    handler: fn(&[u8], &dsc::Cancel) -> Result<Vec<u8>, DscError>,
) -> Response {
    let limit = app.config.request_timeout();
    let cancel = dsc::Cancel::new();
    let work_cancel = cancel.clone();
    let work = async {
        // The semaphore is never closed, so acquiring only waits. The turn
        // moves into the work and ends with it, not with this request.
        let turn = app.compute.clone().acquire_owned().await;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            handler(&body, &work_cancel)
        })
        .await
    };
    let outcome = tokio::time::timeout(limit, work).await;
    if outcome.is_err() {
        cancel.cancel();
    }
    match outcome {
        Ok(Ok(Ok(bytes))) => json_response(StatusCode::OK, bytes),
        Ok(Ok(Err(e))) => {
            let status = match e {
                DscError::InvalidParameter(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            json_response(status, e.body_json())
        }
        Ok(Err(_)) => internal("the request failed"),
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            INTERNAL_ERROR,
            &format!(
                "Internal error: the request took longer than the {} s limit",
                limit.as_secs()
            ),
        ),
    }
}

/// An extraction task submission.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    tables: Vec<TableSource>,
    #[serde(default)]
    primary_key: Vec<String>,
    #[serde(default)]
    columns: Option<Vec<String>>,
    #[serde(flatten)]
    common: Common,
}

/// What an embedding task's `db_water_param` may hold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DbWaterParam {
    #[serde(default)]
    embed_mode: Option<String>,
    #[serde(default)]
    params: Vec<EmbedParam>,
    #[serde(default)]
    row_spacing: Option<u32>,
}

/// DSC's `EmbedParam`: the added column of a pseudo-column embed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedParam {
    #[serde(default)]
    new_column_name: Option<String>,
    #[serde(default)]
    new_column_type: Option<String>,
    /// DSC's `FakeParam` ("simulation parameter configuration"), whose
    /// fields DSC does not document: refused by name rather than guessed.
    #[serde(default)]
    fake_param: Option<serde_json::Value>,
}

/// An embedding task submission, in the shape of DSC's
/// `CreateDbEmbedTask`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedSubmission {
    source_db_info: TableSource,
    target_db_info: TableTarget,
    water_mark: String,
    #[serde(default)]
    selected_fields: Option<Vec<ColumnInfo>>,
    #[serde(default)]
    primary_key: Vec<String>,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    db_water_param: Option<DbWaterParam>,
    #[serde(default)]
    task_name: Option<String>,
    #[serde(default)]
    schedule_type: Option<String>,
    #[serde(default)]
    start_now: Option<bool>,
    #[serde(flatten)]
    common: Common,
}

/// The fields every task submission has.
#[derive(Debug, Default, Deserialize)]
struct Common {
    #[serde(default)]
    watermark_key_name: Option<String>,
    #[serde(default)]
    watermark_key: Option<String>,
    #[serde(default)]
    job_level: Option<i64>,
    #[serde(default)]
    user_data: Option<String>,
    #[serde(default)]
    callback: Option<String>,
    #[serde(default)]
    callback_format: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// Most files per task.
pub const MAX_FILES: usize = 10_000;

/// Longest `user_data`, as COS.
pub const MAX_USER_DATA: usize = 1024;

/// Longest task `name`, file address or column name, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// Longest task `description`, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

/// Most `primary_key` plus `columns` names.
pub const MAX_COLUMNS: usize = 1000;

/// Longest `query` of a table source, in characters.
pub const MAX_QUERY_CHARS: usize = 65_536;

/// Checks that `text` (the field `field`) has at most `max` characters and
/// no control characters (which would also break XML callbacks).
fn bounded_text(field: &str, text: &str, max: usize) -> Result<(), String> {
    let chars = text.chars().count();
    if chars > max {
        return Err(format!("{field}: at most {max} characters, got {chars}"));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{field}: control character U+{:04X} is not allowed",
            u32::from(c)
        ));
    }
    Ok(())
}

/// Checks column names: at most [`MAX_COLUMNS`], none empty or unbounded.
fn column_names<'a>(
    field: &str,
    names: impl Iterator<Item = &'a String> + Clone,
) -> Result<(), String> {
    if names.clone().count() > MAX_COLUMNS {
        return Err(format!(
            "{field}: at most {MAX_COLUMNS} column names in all"
        ));
    }
    for n in names {
        if n.is_empty() {
            return Err(format!("{field}: column names must not be empty"));
        }
        bounded_text(field, n, MAX_NAME_CHARS)?;
    }
    Ok(())
}

/// The connection `name`, checked: configured, and writable when `write`.
fn connection<'a>(
    app: &'a AppState,
    field: &str,
    name: &str,
    write: bool,
) -> Result<&'a super::Connection, String> {
    bounded_text(&format!("{field}.connection"), name, MAX_NAME_CHARS)?;
    let c = app.secrets.connections.get(name).ok_or_else(|| {
        format!("{field}.connection: no connection `{name}` in the server's configuration")
    })?;
    if write && !c.write {
        return Err(format!(
            "{field}.connection: `{name}` is not writable (its configuration does not set write = true)"
        ));
    }
    Ok(c)
}

/// Checks a table source: a configured connection and exactly one of a
/// table name or (where the connection allows them) a query.
fn table_source(app: &AppState, field: &str, t: &TableSource) -> Result<(), String> {
    let c = connection(app, field, &t.connection, false)?;
    match (&t.table_name, &t.query) {
        (Some(name), None) if !name.is_empty() => {
            bounded_text(&format!("{field}.table_name"), name, MAX_NAME_CHARS)
        }
        (None, Some(query)) if !query.trim().is_empty() => {
            if !c.queries {
                return Err(format!(
                    "{field}.query: connection `{}` does not take queries (its configuration does not set queries = true); name a table",
                    t.connection
                ));
            }
            let chars = query.chars().count();
            if chars > MAX_QUERY_CHARS {
                return Err(format!(
                    "{field}.query: at most {MAX_QUERY_CHARS} characters, got {chars}"
                ));
            }
            Ok(())
        }
        _ => Err(format!(
            "{field}: give a non-empty table_name or query, not both"
        )),
    }
}

/// The checked common fields of a submission.
struct Checked {
    name: String,
    description: String,
    key_name: Option<String>,
    raw: Option<WatermarkKey>,
    job_level: u8,
    user_data: String,
    callback: Option<(String, String)>,
}

fn check_common(app: &AppState, c: Common) -> Result<Checked, String> {
    let name = c.name.unwrap_or_default();
    bounded_text("name", &name, MAX_NAME_CHARS)?;
    let description = c.description.unwrap_or_default();
    bounded_text("description", &description, MAX_DESCRIPTION_CHARS)?;
    let job_level = c.job_level.unwrap_or(0);
    if !(0..=2).contains(&job_level) {
        return Err(format!("job_level: 0, 1 or 2, got {job_level}"));
    }
    let user_data = c.user_data.unwrap_or_default();
    if user_data.len() > MAX_USER_DATA || !user_data.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(format!(
            "user_data: at most {MAX_USER_DATA} printable ASCII characters"
        ));
    }
    let (key_name, raw) = match (c.watermark_key_name, c.watermark_key) {
        (Some(_), Some(_)) => {
            return Err("give watermark_key_name or watermark_key, not both".to_owned());
        }
        (Some(name), None) if app.secrets.keyring.contains_key(&name) => (Some(name), None),
        (Some(name), None) => {
            return Err(format!(
                "watermark_key_name: no key `{name}` in the server's keyring"
            ));
        }
        (None, Some(_)) if !app.config.allow_raw_task_keys => {
            return Err(
                "watermark_key: this server does not accept raw keys for tasks; name a keyring key in watermark_key_name"
                    .to_owned(),
            );
        }
        (None, Some(raw)) => (
            None,
            Some(WatermarkKey::new(&raw).map_err(|_| "watermark_key: must not be empty")?),
        ),
        (None, None) => return Err("watermark_key_name: required".to_owned()),
    };
    let callback = match c.callback {
        None => {
            if c.callback_format.is_some() {
                return Err("callback_format: given without a callback".to_owned());
            }
            None
        }
        Some(url) => {
            let format = c.callback_format.unwrap_or_else(|| "JSON".to_owned());
            if !matches!(format.as_str(), "JSON" | "XML") {
                return Err(format!("callback_format: JSON or XML, got `{format}`"));
            }
            let parsed = reqwest::Url::parse(&url)
                .map_err(|e| format!("callback: `{url}` is not a URL ({e})"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!("callback: `{url}` must be http or https"));
            }
            let host = parsed.host_str().unwrap_or_default();
            let allowed = &app.config.callbacks.allowed_hosts;
            if !allowed
                .iter()
                .any(|h| h == "*" || h.eq_ignore_ascii_case(host))
            {
                return Err(format!(
                    "callback: host `{host}` is not allowed by the server's configuration"
                ));
            }
            Some((url, format))
        }
    };
    Ok(Checked {
        name,
        description,
        key_name,
        raw,
        job_level: job_level as u8,
        user_data,
        callback,
    })
}

impl Checked {
    /// The task to insert, with its raw key if any.
    fn task(self, project_id: &str, fill: impl FnOnce(&mut NewTask)) -> Accepted {
        let mut task = NewTask {
            id: super::new_id(),
            project_id: project_id.to_owned(),
            name: self.name,
            description: self.description,
            files: Vec::new(),
            tables: Vec::new(),
            primary_key: Vec::new(),
            columns: None,
            key_name: self.key_name,
            job_level: self.job_level,
            user_data: self.user_data,
            callback: self.callback,
            embed: None,
        };
        fill(&mut task);
        (task, self.raw)
    }
}

/// A checked submission: the task to insert and its raw key, if any.
type Accepted = (NewTask, Option<WatermarkKey>);

/// What checks a submission of one kind of task.
type Check<S> = fn(&AppState, &str, S) -> Result<Accepted, String>;

/// Checks an extraction task submission; returns the task to insert and
/// its raw key, if any.
fn validate(app: &AppState, project_id: &str, s: Submission) -> Result<Accepted, String> {
    let sources = s.files.len() + s.tables.len();
    if sources == 0 || sources > MAX_FILES {
        return Err(format!(
            "files and tables: 1 to {MAX_FILES} file addresses and tables in all, got {sources}"
        ));
    }
    for (i, f) in s.files.iter().enumerate() {
        bounded_text(&format!("files[{i}]"), f, MAX_NAME_CHARS)?;
        super::worker::resolve(&app.files_root, f)?;
    }
    for (i, t) in s.tables.iter().enumerate() {
        table_source(app, &format!("tables[{i}]"), t)?;
    }
    // A table brings its own primary key; files and queries do not.
    let needs_key = !s.files.is_empty() || s.tables.iter().any(|t| t.query.is_some());
    if needs_key && s.primary_key.is_empty() {
        return Err(
            "primary_key: at least one column name (only tables given by name bring their own)"
                .to_owned(),
        );
    }
    column_names(
        "primary_key and columns",
        s.primary_key.iter().chain(s.columns.iter().flatten()),
    )?;
    let checked = check_common(app, s.common)?;
    Ok(checked.task(project_id, |t| {
        t.files = s.files;
        t.tables = s.tables;
        t.primary_key = s.primary_key;
        t.columns = s.columns;
    }))
}

/// Checks an embedding task submission.
fn validate_embed(
    app: &AppState,
    project_id: &str,
    s: EmbedSubmission,
) -> Result<Accepted, String> {
    table_source(app, "source_db_info", &s.source_db_info)?;
    let target = &s.target_db_info;
    connection(app, "target_db_info", &target.connection, true)?;
    if target.table_name.is_empty() {
        return Err("target_db_info.table_name: must not be empty".to_owned());
    }
    bounded_text(
        "target_db_info.table_name",
        &target.table_name,
        MAX_NAME_CHARS,
    )?;
    if s.source_db_info.connection == target.connection
        && s.source_db_info.table_name.as_deref() == Some(target.table_name.as_str())
    {
        return Err(
            "target_db_info.table_name: must differ from the source table (the source is only read)"
                .to_owned(),
        );
    }
    let bytes = s.water_mark.len();
    if bytes == 0 || bytes > crate::MAX_CONTENT_BYTES {
        return Err(format!(
            "water_mark: 1 to {} bytes of UTF-8, got {bytes}",
            crate::MAX_CONTENT_BYTES
        ));
    }
    if s.source_db_info.query.is_some() && s.primary_key.is_empty() {
        return Err("primary_key: a query brings no primary key; name its key columns".to_owned());
    }
    let selected: Vec<String> = s
        .selected_fields
        .iter()
        .flatten()
        .map(|c| c.column_name.clone())
        .collect();
    if s.selected_fields.as_ref().is_some_and(Vec::is_empty) {
        return Err(
            "selected_fields: name at least one column, or leave it out to let the plan choose"
                .to_owned(),
        );
    }
    column_names(
        "primary_key and selected_fields",
        s.primary_key.iter().chain(&selected),
    )?;
    if let Some(r) = &s.recipient {
        bounded_text("recipient", r, MAX_NAME_CHARS)?;
    }
    let (embed_mode, params, row_spacing) = match s.db_water_param {
        Some(p) => (
            p.embed_mode.unwrap_or_else(|| "cells".to_owned()),
            p.params,
            p.row_spacing,
        ),
        None => ("cells".to_owned(), Vec::new(), None),
    };
    if let Some(i) = params.iter().position(|p| p.fake_param.is_some()) {
        return Err(format!(
            "db_water_param.params[{i}].fake_param: not supported (DSC does not document FakeParam's fields); fabricated rows take each column's values from the table's own rows, as planned"
        ));
    }
    match (embed_mode.as_str(), row_spacing) {
        ("pseudo-rows", Some(0)) => {
            return Err("db_water_param.row_spacing: at least 1 (one fabricated row per N real rows), got 0".to_owned());
        }
        ("pseudo-rows", _) | (_, None) => {}
        (other, Some(_)) => {
            return Err(format!(
                "db_water_param.row_spacing: only embed_mode `pseudo-rows` takes it, not `{other}`"
            ));
        }
    }
    let (pseudo_column, pseudo_column_format) = match embed_mode.as_str() {
        "cells" | "pseudo-rows" if params.is_empty() => (None, None),
        "cells" | "pseudo-rows" => {
            return Err(
                "db_water_param.params: only embed_mode `pseudo-column` takes params".to_owned(),
            );
        }
        "pseudo-column" => {
            let [param] = params.as_slice() else {
                return Err(format!(
                    "db_water_param.params: embed_mode `pseudo-column` takes one param naming the added column, got {}",
                    params.len()
                ));
            };
            let name = param.new_column_name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err("db_water_param.params[0].new_column_name: required".to_owned());
            }
            bounded_text(
                "db_water_param.params[0].new_column_name",
                &name,
                MAX_NAME_CHARS,
            )?;
            let format = param
                .new_column_type
                .clone()
                .unwrap_or_else(|| "code".to_owned());
            if crate::PseudoFormat::parse(&format).is_none() {
                return Err(format!(
                    "db_water_param.params[0].new_column_type: `code` or `token`, got `{format}`"
                ));
            }
            (Some(name), Some(format))
        }
        other => {
            return Err(format!(
                "db_water_param.embed_mode: `cells` (marks in real cells, as planned), `pseudo-rows` (fabricated rows added, no real cell changed) or `pseudo-column` (one added column, no real cell changed), got `{other}`"
            ));
        }
    };
    if let Some(t) = s.schedule_type.as_deref().filter(|t| *t != "ONCE") {
        return Err(format!(
            "schedule_type: `ONCE` (a task runs when a worker takes it), got `{t}`; schedule repeated runs from outside"
        ));
    }
    if s.start_now == Some(false) {
        return Err(
            "start_now: tasks start when a worker takes them; leave it out or set true".to_owned(),
        );
    }
    let mut common = s.common;
    if common.name.is_none() {
        common.name = s.task_name;
    } else if s.task_name.is_some() {
        return Err("give task_name or name, not both".to_owned());
    }
    let checked = check_common(app, common)?;
    let row_spacing =
        (embed_mode == "pseudo-rows").then(|| row_spacing.unwrap_or(crate::DEFAULT_ROW_SPACING));
    let input = EmbedInput {
        row_spacing,
        source_db_info: s.source_db_info,
        target_db_info: s.target_db_info,
        water_mark: s.water_mark,
        primary_key: s.primary_key.clone(),
        selected_fields: s.selected_fields,
        recipient: s.recipient,
        embed_mode,
        pseudo_column,
        pseudo_column_format,
        watermark_key_name: checked.key_name.clone(),
    };
    Ok(checked.task(project_id, |t| {
        t.primary_key = s.primary_key;
        t.columns = (!selected.is_empty()).then_some(selected);
        t.embed = Some(input);
    }))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(internal(&e.to_string())),
        Err(_) => Err(internal("the task store failed")),
    }
}

/// Submits a task: `check` turns the body into the task to insert.
async fn submit<S: serde::de::DeserializeOwned>(
    State(app): State<Arc<AppState>>,
    Path(project_id): Path<String>,
    body: Bytes,
    check: Check<S>,
) -> Response {
    let submission: S = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return invalid(&format!("request body: {e}")),
    };
    let (task, raw_key) = match check(&app, &project_id, submission) {
        Ok(v) => v,
        Err(message) => return invalid(&message),
    };
    let store = app.store.clone();
    let capacity = app.config.queue_capacity;
    let id = task.id.clone();
    if let Some(key) = raw_key {
        app.hold_raw_key(&id, key);
    }
    let inserted = blocking(move || {
        if store.unfinished()? >= capacity {
            return Ok(false);
        }
        store.insert(&task).map(|()| true)
    })
    .await;
    match inserted {
        Ok(true) => {
            app.wake.notify_waiters();
            let body = Submitted {
                state: state::SUBMITTED,
                status: 0,
                task_id: &id,
            };
            json_response(
                StatusCode::OK,
                serde_json::to_vec(&body).unwrap_or_default(),
            )
        }
        Ok(false) => {
            app.forget_raw_key(&id);
            error_response(
                StatusCode::TOO_MANY_REQUESTS,
                QUEUE_FULL_CODE,
                &format!("the task queue is full ({capacity} unfinished tasks); retry later"),
            )
        }
        Err(r) => {
            app.forget_raw_key(&id);
            r
        }
    }
}

fn not_found(project_id: &str, task_id: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        INVALID_PARAMETER,
        &format!("Invalid parameter: no task `{task_id}` in project `{project_id}`"),
    )
}

async fn task_details(
    State(app): State<Arc<AppState>>,
    Path((project_id, task_id)): Path<(String, String)>,
    kind: Kind,
) -> Response {
    let (store, p, t) = (app.store.clone(), project_id.clone(), task_id.clone());
    match blocking(move || store.details(Some(&p), Some(kind), &t)).await {
        Ok(Some(d)) => json_response(StatusCode::OK, serde_json::to_vec(&d).unwrap_or_default()),
        Ok(None) => not_found(&project_id, &task_id),
        Err(r) => r,
    }
}

/// `offset`, `limit` and `state` of a list request.
fn list_query(raw: Option<&str>) -> Result<(u64, u64, Option<String>), String> {
    let (mut offset, mut limit, mut state) = (0u64, 10u64, None);
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "offset" => {
                // SQLite counts in i64: a larger offset would wrap to -1.
                offset = v
                    .parse()
                    .ok()
                    .filter(|&o: &u64| i64::try_from(o).is_ok())
                    .ok_or_else(|| format!("offset: 0 to {}, got `{v}`", i64::MAX))?
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=1000).contains(l))
                    .ok_or_else(|| format!("limit: 1 to 1000, got `{v}`"))?;
            }
            "state" => {
                if !state::ALL.contains(&v) {
                    return Err(format!(
                        "state: one of {}, got `{v}`",
                        state::ALL.join(", ")
                    ));
                }
                state = Some(v.to_owned());
            }
            other => return Err(format!("unknown query parameter `{other}`")),
        }
    }
    Ok((offset, limit, state))
}

async fn list_tasks(
    State(app): State<Arc<AppState>>,
    Path(project_id): Path<String>,
    RawQuery(query): RawQuery,
    kind: Kind,
) -> Response {
    let (offset, limit, state) = match list_query(query.as_deref()) {
        Ok(q) => q,
        Err(message) => return invalid(&message),
    };
    let store = app.store.clone();
    match blocking(move || store.list(&project_id, kind, state.as_deref(), offset, limit)).await {
        Ok((count, tasks)) => json_response(
            StatusCode::OK,
            serde_json::to_vec(&TaskList { count, tasks }).unwrap_or_default(),
        ),
        Err(r) => r,
    }
}

async fn cancel_task(
    State(app): State<Arc<AppState>>,
    Path((project_id, task_id)): Path<(String, String)>,
    kind: Kind,
) -> Response {
    let (store, p, t) = (app.store.clone(), project_id.clone(), task_id.clone());
    match blocking(move || store.cancel(&p, kind, &t)).await {
        Ok(Cancelled::Yes) => {
            app.forget_raw_key(&task_id);
            super::worker::notify(&app, &task_id).await;
            task_details(State(app), Path((project_id, task_id)), kind)
                .await
                .into_response()
        }
        Ok(Cancelled::NotFound) => not_found(&project_id, &task_id),
        Ok(Cancelled::AlreadyEnded(s)) => error_response(
            StatusCode::CONFLICT,
            INVALID_PARAMETER,
            &format!("Invalid parameter: task `{task_id}` already ended ({s})"),
        ),
        Err(r) => r,
    }
}

/// Fuzzing entry point (see [`crate::fuzzing`]): a task submission body,
/// parsed and checked as `POST .../tasks` does, against a server state
/// made once in a temporary folder; nothing is stored. Must never panic.
#[doc(hidden)]
pub fn fuzz_submission(body: &[u8]) {
    static APP: std::sync::OnceLock<Option<Arc<AppState>>> = std::sync::OnceLock::new();
    let app = APP.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dbwm-fuzz-server-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("files")).ok()?;
        std::fs::write(dir.join("files/a.csv"), "id,x\n1,2\n").ok()?;
        let config = super::ServerConfig {
            data_dir: dir.join("data"),
            files_root: dir.join("files"),
            allow_raw_task_keys: true,
            ..Default::default()
        };
        let mut secrets = super::Secrets::default();
        secrets.tokens.push("fuzz".into());
        super::prepare(config, secrets).ok()
    });
    let Some(app) = app else { return };
    if let Ok(submission) = serde_json::from_slice::<Submission>(body) {
        let _ = validate(app, "project", submission);
    }
    if let Ok(submission) = serde_json::from_slice::<EmbedSubmission>(body) {
        let _ = validate_embed(app, "project", submission);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_queries_are_checked() {
        assert_eq!(list_query(None).unwrap(), (0, 10, None));
        assert_eq!(
            list_query(Some("offset=5&limit=2&state=Running")).unwrap(),
            (5, 2, Some("Running".to_owned()))
        );
        assert!(
            list_query(Some("limit=0"))
                .unwrap_err()
                .starts_with("limit")
        );
        assert!(
            list_query(Some("state=Done"))
                .unwrap_err()
                .starts_with("state")
        );
        assert!(list_query(Some("page=2")).unwrap_err().contains("page"));
    }

    #[test]
    fn a_list_offset_past_i64_is_refused_rather_than_wrapped_to_the_first_page() {
        for bad in ["18446744073709551615", "9223372036854775808", "-1", "x"] {
            let e = list_query(Some(&format!("offset={bad}"))).unwrap_err();
            assert!(
                e.starts_with("offset: 0 to 9223372036854775807"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            list_query(Some("offset=9223372036854775807")).unwrap().0,
            i64::MAX as u64
        );
    }
}
