//! The routes: DSC's embed and extract, and the extraction tasks.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::store::{self, Cancelled, NewTask, Submitted, TaskList, state};
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
        .route(
            "/v1/{project_id}/watermark/extract/tasks",
            post(submit_task).get(list_tasks),
        )
        .route(
            "/v1/{project_id}/watermark/extract/tasks/{task_id}",
            get(task_details),
        )
        .route(
            "/v1/{project_id}/watermark/extract/tasks/{task_id}/cancel",
            post(cancel_task),
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

/// A task submission.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    files: Vec<String>,
    primary_key: Vec<String>,
    #[serde(default)]
    columns: Option<Vec<String>>,
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

/// Checks a submission; returns the task to insert and its raw key, if any.
fn validate(
    app: &AppState,
    project_id: &str,
    s: Submission,
) -> Result<(NewTask, Option<WatermarkKey>), String> {
    if s.files.is_empty() || s.files.len() > MAX_FILES {
        return Err(format!(
            "files: 1 to {MAX_FILES} file addresses, got {}",
            s.files.len()
        ));
    }
    for (i, f) in s.files.iter().enumerate() {
        bounded_text(&format!("files[{i}]"), f, MAX_NAME_CHARS)?;
        super::worker::resolve(&app.files_root, f)?;
    }
    if s.primary_key.is_empty() || s.primary_key.iter().any(String::is_empty) {
        return Err("primary_key: at least one column name, none empty".to_owned());
    }
    let names = s.primary_key.iter().chain(s.columns.iter().flatten());
    if names.clone().count() > MAX_COLUMNS {
        return Err(format!(
            "primary_key and columns: at most {MAX_COLUMNS} column names in all"
        ));
    }
    for n in names {
        bounded_text("primary_key and columns", n, MAX_NAME_CHARS)?;
    }
    bounded_text("name", s.name.as_deref().unwrap_or(""), MAX_NAME_CHARS)?;
    bounded_text(
        "description",
        s.description.as_deref().unwrap_or(""),
        MAX_DESCRIPTION_CHARS,
    )?;
    let job_level = s.job_level.unwrap_or(0);
    if !(0..=2).contains(&job_level) {
        return Err(format!("job_level: 0, 1 or 2, got {job_level}"));
    }
    let user_data = s.user_data.unwrap_or_default();
    if user_data.len() > MAX_USER_DATA || !user_data.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(format!(
            "user_data: at most {MAX_USER_DATA} printable ASCII characters"
        ));
    }
    let (key_name, raw) = match (s.watermark_key_name, s.watermark_key) {
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
    let callback = match s.callback {
        None => {
            if s.callback_format.is_some() {
                return Err("callback_format: given without a callback".to_owned());
            }
            None
        }
        Some(url) => {
            let format = s.callback_format.unwrap_or_else(|| "JSON".to_owned());
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
    let task = NewTask {
        id: super::new_id(),
        project_id: project_id.to_owned(),
        name: s.name.unwrap_or_default(),
        description: s.description.unwrap_or_default(),
        files: s.files,
        primary_key: s.primary_key,
        columns: s.columns,
        key_name,
        job_level: job_level as u8,
        user_data,
        callback,
    };
    Ok((task, raw))
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

async fn submit_task(
    State(app): State<Arc<AppState>>,
    Path(project_id): Path<String>,
    body: Bytes,
) -> Response {
    let submission: Submission = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return invalid(&format!("request body: {e}")),
    };
    let (task, raw_key) = match validate(&app, &project_id, submission) {
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
) -> Response {
    let (store, p, t) = (app.store.clone(), project_id.clone(), task_id.clone());
    match blocking(move || store.details(Some(&p), &t)).await {
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
) -> Response {
    let (offset, limit, state) = match list_query(query.as_deref()) {
        Ok(q) => q,
        Err(message) => return invalid(&message),
    };
    let store = app.store.clone();
    match blocking(move || store.list(&project_id, state.as_deref(), offset, limit)).await {
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
) -> Response {
    let (store, p, t) = (app.store.clone(), project_id.clone(), task_id.clone());
    match blocking(move || store.cancel(&p, &t)).await {
        Ok(Cancelled::Yes) => {
            app.forget_raw_key(&task_id);
            super::worker::notify(&app, &task_id).await;
            task_details(State(app), Path((project_id, task_id)))
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
