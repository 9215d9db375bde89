//! Durable tasks, extraction (of files and database tables) and embedding
//! (a database table into a new one): SQLite (through `rusqlite` with its bundled
//! library) in the data folder.
//!
//! Why SQLite: the task list is queried by project, state, priority and age
//! with offsets and counts, which is one SQL statement each; a single file
//! with a write-ahead log survives a crash with every committed result; and
//! the bundled build needs nothing from the machine.
//!
//! Raw watermark keys are never stored: a task records the name of a
//! keyring key, or nothing when its key was given raw (held in memory).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::timefmt::rfc3339_utc_millis;

/// Errors of the task store.
#[derive(Debug, thiserror::Error)]
#[error("task database: {0}")]
pub struct StoreError(String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Task states (the COS job states; `Pause` is never entered).
pub mod state {
    /// Waiting for a worker.
    pub const SUBMITTED: &str = "Submitted";
    /// A worker is extracting its files.
    pub const RUNNING: &str = "Running";
    /// Every file was processed.
    pub const SUCCESS: &str = "Success";
    /// The task could not run (its key is gone, the server restarted while
    /// it held a raw key).
    pub const FAILED: &str = "Failed";
    /// Cancelled by the caller.
    pub const CANCEL: &str = "Cancel";
    /// Every state a task can be listed by.
    pub const ALL: [&str; 6] = [SUBMITTED, RUNNING, SUCCESS, FAILED, "Pause", CANCEL];
}

/// File states.
pub mod file_status {
    /// Not yet extracted.
    pub const PENDING: &str = "pending";
    /// Extracted (with or without a watermark found).
    pub const DONE: &str = "done";
    /// Could not be read or extracted; the remark says why.
    pub const FAILED: &str = "failed";
}

/// The seed's numeric status of a state: 0 in progress, 1 completed, 2 failed.
pub fn status_of(state: &str) -> u8 {
    match state {
        state::SUCCESS => 1,
        state::FAILED | state::CANCEL => 2,
        _ => 0,
    }
}

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Extracts the watermarks of files and tables, one result each.
    Extract,
    /// Marks a database table into a new table.
    Embed,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Extract => "extract",
            Self::Embed => "embed",
        }
    }
}

/// A table (or query) of a configured connection, read by a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSource {
    /// The connection's name in the server's config.
    pub connection: String,
    /// The table, schema-qualified allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    /// A query, instead of a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

impl TableSource {
    /// How results name it: `CONNECTION:TABLE`, or `CONNECTION:(query)`.
    pub fn label(&self) -> String {
        match &self.table_name {
            Some(t) => format!("{}:{t}", self.connection),
            None => format!("{}:(query)", self.connection),
        }
    }
}

/// The table an embedding task creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableTarget {
    /// The connection's name in the server's config (one with `write`).
    pub connection: String,
    /// The table to create, schema-qualified allowed.
    pub table_name: String,
    /// Replace a table of that name (atomically); default false, so an
    /// existing table fails the task.
    #[serde(default)]
    pub replace: bool,
}

/// One selected column, as DSC's `ColumnInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnInfo {
    /// The column.
    pub column_name: String,
}

/// What an embedding task was asked to do (its `input` in the details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedInput {
    /// The table read.
    pub source_db_info: TableSource,
    /// The table created.
    pub target_db_info: TableTarget,
    /// The watermark content.
    pub water_mark: String,
    /// The key columns; empty: the source table's primary key.
    pub primary_key: Vec<String>,
    /// The columns to mark; `None`: the plan chooses.
    pub selected_fields: Option<Vec<ColumnInfo>>,
    /// Who receives the copy (recorded in the registry).
    pub recipient: Option<String>,
    /// `cells` (marks in real cells, as planned), `pseudo-rows`
    /// (fabricated rows added) or `pseudo-column` (one added column); in
    /// the last two no real cell changes.
    pub embed_mode: String,
    /// The added column's name, in `pseudo-column` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudo_column: Option<String>,
    /// How its values look (`code` or `token`), in `pseudo-column` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudo_column_format: Option<String>,
    /// About one fabricated row per this many real rows, in `pseudo-rows`
    /// mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_spacing: Option<u32>,
    /// The keyring key used, or `null` for a raw key.
    pub watermark_key_name: Option<String>,
}

/// A task to insert.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// Its id.
    pub id: String,
    /// The project it belongs to.
    pub project_id: String,
    /// Name and description.
    pub name: String,
    /// Free text.
    pub description: String,
    /// File addresses (relative to the files root).
    pub files: Vec<String>,
    /// Database tables to extract, after the files.
    pub tables: Vec<TableSource>,
    /// Primary-key columns.
    pub primary_key: Vec<String>,
    /// Columns to read, if not all.
    pub columns: Option<Vec<String>>,
    /// Keyring name, or `None` for a raw key held in memory.
    pub key_name: Option<String>,
    /// An embedding task's input; `None` for an extraction task.
    pub embed: Option<EmbedInput>,
    /// Priority 0 to 2.
    pub job_level: u8,
    /// Caller's data, echoed back.
    pub user_data: String,
    /// Callback URL and format (`JSON` or `XML`).
    pub callback: Option<(String, String)>,
}

/// One file's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileResult {
    /// The address as submitted.
    pub file_address: String,
    /// Whether a watermark was found.
    pub watermark_exist: bool,
    /// The watermark found (the strongest), or empty.
    pub watermark: String,
    /// `pending`, `done` or `failed`.
    pub status: String,
    /// Why it failed, or empty.
    pub remark: String,
    /// Rows read, every watermark found and its evidence.
    pub evidence: serde_json::Value,
}

/// A task's callback and its delivery.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Callback {
    /// The URL.
    pub url: String,
    /// `JSON` or `XML`.
    pub format: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
}

/// Everything about a task (the seed's task details, plus the job fields).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskDetails {
    /// The task id.
    pub task_id: String,
    /// 0 in progress, 1 completed, 2 failed or cancelled.
    pub status: u8,
    /// Submitted, Running, Success, Failed or Cancel.
    pub state: String,
    /// Files in the task.
    pub total: u64,
    /// Files processed (found, not found or failed).
    pub completed: u64,
    /// One per file or table, in submission order (none for an
    /// embedding task).
    pub remarks: Vec<FileResult>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Priority, 0 to 2 (higher runs first).
    pub job_level: u8,
    /// The caller's data.
    pub user_data: String,
    /// What was submitted.
    pub input: Input,
    /// An embedding task's outcome, once it succeeded: rows, the target,
    /// the plan fingerprint, cells changed per column, the registry record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why the task failed, or empty.
    pub remark: String,
    /// Times (RFC 3339, UTC, milliseconds; `-` if not yet).
    pub creation_time: String,
    /// When a worker started it.
    pub start_time: String,
    /// When it ended.
    pub end_time: String,
    /// Last change.
    pub updated_at: String,
    /// The callback, if any.
    pub callback: Option<Callback>,
}

/// What a task was asked to do.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Input {
    /// An extraction task's files and tables.
    Extract(TaskInput),
    /// An embedding task's tables and watermark.
    Embed(Box<EmbedInput>),
}

/// An extraction task's input.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskInput {
    /// File addresses.
    pub files: Vec<String>,
    /// Database tables.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableSource>,
    /// Primary-key columns.
    pub primary_key: Vec<String>,
    /// Columns read, or all.
    pub columns: Option<Vec<String>>,
    /// The keyring key used, or `null` for a raw key.
    pub watermark_key_name: Option<String>,
}

/// The body answering a task submission.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Submitted<'a> {
    /// Always [`state::SUBMITTED`].
    pub state: &'a str,
    /// Always 0 (in progress).
    pub status: u8,
    /// The new task's id.
    pub task_id: &'a str,
}

/// The body of the task list: `{count, tasks}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskList {
    /// Tasks that match, over all pages.
    pub count: u64,
    /// This page of them.
    pub tasks: Vec<TaskSummary>,
}

/// A task in a list.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskSummary {
    /// The task id (also as `task_id`).
    pub id: String,
    /// The task id.
    pub task_id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// State name.
    pub state: String,
    /// 0 in progress, 1 completed, 2 failed.
    pub status: u8,
    /// Priority.
    pub job_level: u8,
    /// What was submitted.
    pub input: Input,
    /// Files and how many are processed.
    pub total: u64,
    /// Files processed.
    pub completed: u64,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// A task claimed by a worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Its id.
    pub id: String,
    /// Primary-key columns.
    pub primary_key: Vec<String>,
    /// Columns to read.
    pub columns: Option<Vec<String>>,
    /// Keyring name, or `None` for a raw key.
    pub key_name: Option<String>,
    /// An embedding task's input; `None` for an extraction task.
    pub embed: Option<EmbedInput>,
}

/// A file or table of an extraction task still to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its position in the task.
    pub idx: usize,
    /// The file address, or the table's label.
    pub address: String,
    /// The table, when it is one.
    pub table: Option<TableSource>,
}

/// The outcome of a cancel request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// Cancelled now.
    Yes,
    /// No such task in this project.
    NotFound,
    /// Already ended in this state.
    AlreadyEnded(String),
}

/// The task database.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

fn now() -> String {
    rfc3339_utc_millis(std::time::SystemTime::now())
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).expect("strings serialize")
}

fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("task inputs serialize")
}

/// An embedding task's input from its `kind` and `spec` columns.
fn embed_input(kind: &str, spec: Option<String>) -> Option<EmbedInput> {
    (kind == Kind::Embed.as_str())
        .then(|| spec.and_then(|s| serde_json::from_str(&s).ok()))
        .flatten()
}

/// A task's input from the columns `kind, spec, files, primary_key,
/// columns, key_name`, at `first` in the row.
fn input_of(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Input> {
    let kind: String = r.get(first)?;
    let spec: Option<String> = r.get(first + 1)?;
    if let Some(e) = embed_input(&kind, spec.clone()) {
        return Ok(Input::Embed(Box::new(e)));
    }
    Ok(Input::Extract(TaskInput {
        files: parse_list(&r.get::<_, String>(first + 2)?),
        tables: spec
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        primary_key: parse_list(&r.get::<_, String>(first + 3)?),
        columns: r
            .get::<_, Option<String>>(first + 4)?
            .map(|s| parse_list(&s)),
        watermark_key_name: r.get(first + 5)?,
    }))
}

/// Remark of a task that held a raw key when the server stopped.
pub const RESTART_REMARK: &str = "the server restarted while this task held a raw watermark key in memory only; resubmit the task";

impl Store {
    /// Opens (creating) `dir/tasks.sqlite3`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the folder or database cannot be created.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        let conn = Connection::open(dir.join("tasks.sqlite3"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS tasks (
               seq INTEGER PRIMARY KEY AUTOINCREMENT,
               id TEXT NOT NULL UNIQUE,
               project_id TEXT NOT NULL,
               name TEXT NOT NULL,
               description TEXT NOT NULL,
               state TEXT NOT NULL,
               job_level INTEGER NOT NULL,
               user_data TEXT NOT NULL,
               files TEXT NOT NULL,
               primary_key TEXT NOT NULL,
               columns TEXT,
               key_name TEXT,
               callback_url TEXT,
               callback_format TEXT,
               callback_state TEXT,
               callback_attempts INTEGER NOT NULL DEFAULT 0,
               remark TEXT NOT NULL DEFAULT '',
               created_at TEXT NOT NULL,
               started_at TEXT,
               ended_at TEXT,
               updated_at TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (state, job_level DESC, seq);
             CREATE INDEX IF NOT EXISTS tasks_project ON tasks (project_id, seq);
             CREATE TABLE IF NOT EXISTS task_files (
               task_id TEXT NOT NULL,
               idx INTEGER NOT NULL,
               file_address TEXT NOT NULL,
               status TEXT NOT NULL,
               watermark_exist INTEGER NOT NULL DEFAULT 0,
               watermark TEXT NOT NULL DEFAULT '',
               remark TEXT NOT NULL DEFAULT '',
               evidence TEXT NOT NULL DEFAULT 'null',
               PRIMARY KEY (task_id, idx)
             );",
        )?;
        // Columns added since the first release; a task database made by
        // an older server gains them, its tasks being extraction tasks.
        for (table, column, definition) in [
            ("tasks", "kind", "TEXT NOT NULL DEFAULT 'extract'"),
            ("tasks", "spec", "TEXT"),
            ("tasks", "result", "TEXT"),
            ("task_files", "source", "TEXT"),
        ] {
            let exists: bool = conn.query_row(
                &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
                params![column],
                |r| r.get(0),
            )?;
            if !exists {
                conn.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {column} {definition}"
                ))?;
            }
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        // A panic while holding the lock leaves the connection usable: every
        // change is one transaction.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(StoreError::from)
    }

    /// Deletes the tasks that finished (Success, Failed or Cancel) before
    /// `ended_before` (an RFC 3339 UTC time as the store writes them), with
    /// their file results, in one transaction; returns how many.
    pub fn purge_finished(&self, ended_before: &str) -> Result<usize> {
        self.with(|c| {
            let tx = c.transaction()?;
            let finished = "state IN (?1, ?2, ?3) AND ended_at IS NOT NULL AND ended_at < ?4";
            let args = params![state::SUCCESS, state::FAILED, state::CANCEL, ended_before];
            tx.execute(
                &format!("DELETE FROM task_files WHERE task_id IN (SELECT id FROM tasks WHERE {finished})"),
                args,
            )?;
            let n = tx.execute(&format!("DELETE FROM tasks WHERE {finished}"), args)?;
            tx.commit()?;
            Ok(n)
        })
    }

    /// After a restart: running tasks go back to the queue (their finished
    /// files stay done); unfinished tasks whose key was raw fail with
    /// [`RESTART_REMARK`]. Returns the ids of the tasks failed.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn recover(&self) -> Result<Vec<String>> {
        let t = now();
        self.with(|c| {
            let tx = c.transaction()?;
            let failed: Vec<String> = tx
                .prepare("SELECT id FROM tasks WHERE state IN (?1, ?2) AND key_name IS NULL")?
                .query_map(params![state::SUBMITTED, state::RUNNING], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            tx.execute(
                "UPDATE tasks SET state = ?1, remark = ?2, ended_at = ?3, updated_at = ?3
                 WHERE state IN (?4, ?5) AND key_name IS NULL",
                params![
                    state::FAILED,
                    RESTART_REMARK,
                    t,
                    state::SUBMITTED,
                    state::RUNNING
                ],
            )?;
            tx.execute(
                "UPDATE tasks SET state = ?1, updated_at = ?2 WHERE state = ?3",
                params![state::SUBMITTED, t, state::RUNNING],
            )?;
            tx.commit()?;
            Ok(failed)
        })
    }

    /// Tasks not yet ended (all projects).
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn unfinished(&self) -> Result<usize> {
        self.with(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM tasks WHERE state IN (?1, ?2)",
                params![state::SUBMITTED, state::RUNNING],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as usize)
    }

    /// Inserts a task and its files, in one transaction.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn insert(&self, task: &NewTask) -> Result<()> {
        let t = now();
        self.with(|c| {
            let tx = c.transaction()?;
            let (url, format) = task.callback.clone().unzip();
            let (kind, spec) = match &task.embed {
                Some(e) => (Kind::Embed, Some(to_json(e))),
                None if task.tables.is_empty() => (Kind::Extract, None),
                None => (Kind::Extract, Some(to_json(&task.tables))),
            };
            tx.execute(
                "INSERT INTO tasks (id, project_id, name, description, state, job_level, user_data,
                   files, primary_key, columns, key_name, callback_url, callback_format,
                   callback_state, created_at, updated_at, kind, spec)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16, ?17)",
                params![
                    task.id,
                    task.project_id,
                    task.name,
                    task.description,
                    state::SUBMITTED,
                    task.job_level,
                    task.user_data,
                    json_list(&task.files),
                    json_list(&task.primary_key),
                    task.columns.as_deref().map(json_list),
                    task.key_name,
                    url,
                    format,
                    url.as_ref().map(|_| "pending"),
                    t,
                    kind.as_str(),
                    spec
                ],
            )?;
            let files = task.files.iter().map(|f| (f.clone(), None));
            let tables = task.tables.iter().map(|t| (t.label(), Some(to_json(t))));
            for (i, (address, source)) in files.chain(tables).enumerate() {
                tx.execute(
                    "INSERT INTO task_files (task_id, idx, file_address, status, source)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![task.id, i as i64, address, file_status::PENDING, source],
                )?;
            }
            tx.commit()
        })
    }

    /// Moves the next task (highest `job_level`, then oldest) from
    /// Submitted to Running.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn claim_next(&self) -> Result<Option<Claimed>> {
        let t = now();
        self.with(|c| {
            c.query_row(
                "UPDATE tasks SET state = ?1, started_at = COALESCE(started_at, ?2), updated_at = ?2
                 WHERE id = (SELECT id FROM tasks WHERE state = ?3 ORDER BY job_level DESC, seq LIMIT 1)
                 RETURNING id, primary_key, columns, key_name, kind, spec",
                params![state::RUNNING, t, state::SUBMITTED],
                |r| {
                    Ok(Claimed {
                        id: r.get(0)?,
                        primary_key: parse_list(&r.get::<_, String>(1)?),
                        columns: r.get::<_, Option<String>>(2)?.map(|s| parse_list(&s)),
                        key_name: r.get(3)?,
                        embed: embed_input(&r.get::<_, String>(4)?, r.get(5)?),
                    })
                },
            )
            .optional()
        })
    }

    /// The files and tables of an extraction task still to read.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn pending_files(&self, task_id: &str) -> Result<Vec<Pending>> {
        self.with(|c| {
            c.prepare(
                "SELECT idx, file_address, source FROM task_files
                 WHERE task_id = ?1 AND status = ?2 ORDER BY idx",
            )?
            .query_map(params![task_id, file_status::PENDING], |r| {
                Ok(Pending {
                    idx: r.get::<_, i64>(0)? as usize,
                    address: r.get(1)?,
                    table: r
                        .get::<_, Option<String>>(2)?
                        .and_then(|s| serde_json::from_str(&s).ok()),
                })
            })?
            .collect()
        })
    }

    /// Records an embedding task's outcome (before it is ended).
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn save_result(&self, task_id: &str, result: &serde_json::Value) -> Result<()> {
        let t = now();
        self.with(|c| {
            c.execute(
                "UPDATE tasks SET result = ?2, updated_at = ?3 WHERE id = ?1",
                params![task_id, result.to_string(), t],
            )
            .map(drop)
        })
    }

    /// Records one file's result (committed at once).
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn save_file(&self, task_id: &str, idx: usize, r: &FileResult) -> Result<()> {
        let t = now();
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE task_files SET status = ?3, watermark_exist = ?4, watermark = ?5, remark = ?6, evidence = ?7
                 WHERE task_id = ?1 AND idx = ?2",
                params![
                    task_id,
                    idx as i64,
                    r.status,
                    r.watermark_exist,
                    r.watermark,
                    r.remark,
                    r.evidence.to_string()
                ],
            )?;
            tx.execute("UPDATE tasks SET updated_at = ?2 WHERE id = ?1", params![task_id, t])?;
            tx.commit()
        })
    }

    /// Ends a running task in `state` with `remark`, unless it was
    /// cancelled meanwhile. Returns whether it changed.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn finish(&self, task_id: &str, state: &str, remark: &str) -> Result<bool> {
        let t = now();
        self.with(|c| {
            c.execute(
                "UPDATE tasks SET state = ?2, remark = ?3, ended_at = ?4, updated_at = ?4
                 WHERE id = ?1 AND state IN (?5, ?6)",
                params![task_id, state, remark, t, state::RUNNING, state::SUBMITTED],
            )
        })
        .map(|n| n > 0)
    }

    /// The state of a task.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn state(&self, task_id: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT state FROM tasks WHERE id = ?1",
                params![task_id],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Cancels a task of `project_id` that has not ended.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn cancel(&self, project_id: &str, kind: Kind, task_id: &str) -> Result<Cancelled> {
        let t = now();
        self.with(|c| {
            let tx = c.transaction()?;
            let current: Option<String> = tx
                .query_row(
                    "SELECT state FROM tasks WHERE id = ?1 AND project_id = ?2 AND kind = ?3",
                    params![task_id, project_id, kind.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            let outcome = match current {
                None => Cancelled::NotFound,
                Some(s) if s == state::SUBMITTED || s == state::RUNNING => {
                    tx.execute(
                        "UPDATE tasks SET state = ?2, remark = 'cancelled by the caller', ended_at = ?3, updated_at = ?3 WHERE id = ?1",
                        params![task_id, state::CANCEL, t],
                    )?;
                    Cancelled::Yes
                }
                Some(s) => Cancelled::AlreadyEnded(s),
            };
            tx.commit()?;
            Ok(outcome)
        })
    }

    /// Records a callback attempt's outcome.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn set_callback(&self, task_id: &str, delivery: &str, attempts: u32) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE tasks SET callback_state = ?2, callback_attempts = ?3 WHERE id = ?1",
                params![task_id, delivery, attempts],
            )
            .map(drop)
        })
    }

    /// A task's details, if it belongs to `project_id` (`None` for any
    /// project, for the worker).
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn details(
        &self,
        project_id: Option<&str>,
        kind: Option<Kind>,
        task_id: &str,
    ) -> Result<Option<TaskDetails>> {
        self.with(|c| {
            let row = c
                .query_row(
                    "SELECT id, state, name, description, job_level, user_data, kind, spec, files,
                       primary_key, columns, key_name, remark, created_at, started_at, ended_at,
                       updated_at, callback_url, callback_format, callback_state, callback_attempts,
                       project_id, result
                     FROM tasks WHERE id = ?1 AND (?2 IS NULL OR kind = ?2)",
                    params![task_id, kind.map(Kind::as_str)],
                    |r| {
                        let state: String = r.get(1)?;
                        let url: Option<String> = r.get(17)?;
                        Ok((
                            r.get::<_, String>(21)?,
                            TaskDetails {
                                task_id: r.get(0)?,
                                status: status_of(&state),
                                state,
                                total: 0,
                                completed: 0,
                                remarks: Vec::new(),
                                name: r.get(2)?,
                                description: r.get(3)?,
                                job_level: r.get(4)?,
                                user_data: r.get(5)?,
                                input: input_of(r, 6)?,
                                result: r
                                    .get::<_, Option<String>>(22)?
                                    .and_then(|s| serde_json::from_str(&s).ok()),
                                remark: r.get(12)?,
                                creation_time: r.get(13)?,
                                start_time: r
                                    .get::<_, Option<String>>(14)?
                                    .unwrap_or_else(|| "-".into()),
                                end_time: r
                                    .get::<_, Option<String>>(15)?
                                    .unwrap_or_else(|| "-".into()),
                                updated_at: r.get(16)?,
                                callback: url
                                    .map(|url| -> rusqlite::Result<Callback> {
                                        Ok(Callback {
                                            url,
                                            format: r
                                                .get::<_, Option<String>>(18)?
                                                .unwrap_or_default(),
                                            state: r
                                                .get::<_, Option<String>>(19)?
                                                .unwrap_or_default(),
                                            attempts: r.get(20)?,
                                        })
                                    })
                                    .transpose()?,
                            },
                        ))
                    },
                )
                .optional()?;
            let Some((project, mut d)) = row else {
                return Ok(None);
            };
            if project_id.is_some_and(|p| p != project) {
                return Ok(None);
            }
            d.remarks = c
                .prepare(
                    "SELECT file_address, watermark_exist, watermark, status, remark, evidence
                     FROM task_files WHERE task_id = ?1 ORDER BY idx",
                )?
                .query_map(params![task_id], |r| {
                    Ok(FileResult {
                        file_address: r.get(0)?,
                        watermark_exist: r.get(1)?,
                        watermark: r.get(2)?,
                        status: r.get(3)?,
                        remark: r.get(4)?,
                        evidence: serde_json::from_str(&r.get::<_, String>(5)?)
                            .unwrap_or(serde_json::Value::Null),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            if matches!(d.input, Input::Embed(_)) {
                // One table to write: processed once the task ended.
                d.total = 1;
                d.completed = u64::from(d.status != 0);
            } else {
                d.total = d.remarks.len() as u64;
                d.completed = d
                    .remarks
                    .iter()
                    .filter(|f| f.status != file_status::PENDING)
                    .count() as u64;
            }
            Ok(Some(d))
        })
    }

    /// A page of a project's tasks, newest first, optionally in one state;
    /// with the count of all that match.
    ///
    /// # Errors
    ///
    /// [`StoreError`] on a database error.
    pub fn list(
        &self,
        project_id: &str,
        kind: Kind,
        state: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<(u64, Vec<TaskSummary>)> {
        self.with(|c| {
            let count: i64 = c.query_row(
                "SELECT COUNT(*) FROM tasks
                 WHERE project_id = ?1 AND kind = ?2 AND (?3 IS NULL OR state = ?3)",
                params![project_id, kind.as_str(), state],
                |r| r.get(0),
            )?;
            let tasks = c
                .prepare(
                    "SELECT t.id, t.name, t.description, t.state, t.job_level, t.kind, t.spec,
                       t.files, t.primary_key, t.columns, t.key_name, t.created_at, t.updated_at,
                       (SELECT COUNT(*) FROM task_files f WHERE f.task_id = t.id),
                       (SELECT COUNT(*) FROM task_files f WHERE f.task_id = t.id AND f.status != 'pending')
                     FROM tasks t
                     WHERE t.project_id = ?1 AND t.kind = ?2 AND (?3 IS NULL OR t.state = ?3)
                     ORDER BY t.seq DESC LIMIT ?4 OFFSET ?5",
                )?
                .query_map(
                    params![project_id, kind.as_str(), state, limit as i64, offset as i64],
                    |r| {
                    let id: String = r.get(0)?;
                    let state: String = r.get(3)?;
                    let (mut total, mut completed) =
                        (r.get::<_, i64>(13)? as u64, r.get::<_, i64>(14)? as u64);
                    if kind == Kind::Embed {
                        (total, completed) = (1, u64::from(status_of(&state) != 0));
                    }
                    Ok(TaskSummary {
                        task_id: id.clone(),
                        id,
                        name: r.get(1)?,
                        description: r.get(2)?,
                        status: status_of(&state),
                        state,
                        job_level: r.get(4)?,
                        input: input_of(r, 5)?,
                        created_at: r.get(11)?,
                        updated_at: r.get(12)?,
                        total,
                        completed,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok((count as u64, tasks))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str) -> NewTask {
        NewTask {
            id: id.into(),
            project_id: "p".into(),
            name: String::new(),
            description: String::new(),
            files: vec!["a.csv".into()],
            tables: Vec::new(),
            primary_key: vec!["id".into()],
            columns: None,
            key_name: Some("k".into()),
            embed: None,
            job_level: 0,
            user_data: String::new(),
            callback: None,
        }
    }

    #[test]
    fn purging_deletes_only_tasks_that_finished_before_the_cutoff() {
        let dir = std::env::temp_dir().join(format!("dbwm-store-purge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        for id in ["done", "failed", "queued", "recent"] {
            store.insert(&task(id)).unwrap();
        }
        store.finish("done", state::SUCCESS, "").unwrap();
        store.finish("failed", state::FAILED, "no").unwrap();
        // Times are in milliseconds: the cutoff comes strictly after.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let cutoff = now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        store.finish("recent", state::SUCCESS, "").unwrap();
        assert_eq!(store.purge_finished(&cutoff).unwrap(), 2);
        assert_eq!(store.state("done").unwrap(), None);
        assert_eq!(store.state("failed").unwrap(), None);
        assert_eq!(
            store.state("queued").unwrap().as_deref(),
            Some(state::SUBMITTED)
        );
        assert_eq!(
            store.state("recent").unwrap().as_deref(),
            Some(state::SUCCESS)
        );
        assert_eq!(store.purge_finished(&cutoff).unwrap(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
