//! `dbwm serve` (feature `server`): Huawei DSC's database-watermark API on
//! its own paths, with Huawei AK/SK request signing, plus durable tasks:
//! batch extraction over files and database tables, and embedding from a
//! database table into a new table.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/{project_id}/sdg/database/watermark/embed` | DSC embed, bodies and errors as `dbwm dsc embed` |
//! | `POST /v1/{project_id}/sdg/database/watermark/extract` | DSC extract, as `dbwm dsc extract` |
//! | `POST /v1/{project_id}/watermark/extract/tasks` | submit an extraction task over files and tables |
//! | `GET /v1/{project_id}/watermark/extract/tasks` | list extraction tasks (`offset`, `limit`, `state`) |
//! | `GET /v1/{project_id}/watermark/extract/tasks/{task_id}` | task details |
//! | `POST /v1/{project_id}/watermark/extract/tasks/{task_id}/cancel` | cancel a task |
//! | `POST /v1/{project_id}/data-watermark-embed-tasks` | submit an embedding task, table to new table (DSC's `CreateDbEmbedTask`) |
//! | `GET /v1/{project_id}/data-watermark-embed-tasks` | list embedding tasks |
//! | `GET /v1/{project_id}/data-watermark-embed-tasks/{task_id}` | its details and result |
//! | `POST /v1/{project_id}/data-watermark-embed-tasks/{task_id}/cancel` | cancel it; a running one writes no table |
//! | `GET /openapi.json` | the OpenAPI document (no authentication) |
//!
//! Databases are the `[connections.NAME]` of the configuration
//! ([`ConnectionConfig`]): a request names a connection, never a URL, so
//! a caller cannot point the server at another host; only connections
//! with `write = true` take new tables, and only those with `queries =
//! true` run a caller's query (read-only).
//!
//! Every response carries `X-Request-Id`. Errors are `{"error_code",
//! "error_msg"}`: `DSC.00000004` (400) for a bad request, `DSC.00000002`
//! (500) for an internal error, `APIGW.0301` (401) for missing or wrong
//! credentials, `APIGW.0308` (429) when the task queue is full.

pub(crate) mod api;
mod auth;
mod config;
pub mod signing;
mod store;
mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

pub use config::{
    CallbackConfig, ConfigError, Connection, ConnectionConfig, Secrets, ServerConfig,
};
use store::Store;

use crate::WatermarkKey;

/// The OpenAPI document of every route (also in `docs/openapi.json`).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The task database could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The files root does not exist.
    #[error("files_root `{path}`: {source}")]
    FilesRoot {
        /// The configured root.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The address could not be bound or served.
    #[error("{address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
}

/// Everything the handlers and workers share.
#[derive(Debug)]
pub struct AppState {
    config: ServerConfig,
    secrets: Secrets,
    store: Arc<Store>,
    /// The canonical files root.
    files_root: PathBuf,
    /// Raw task keys, in memory only.
    raw_keys: Mutex<HashMap<String, WatermarkKey>>,
    wake: tokio::sync::Notify,
    /// DSC requests computing at once (one per core): the rest wait their
    /// turn in order, so latency under load stays even.
    compute: Arc<tokio::sync::Semaphore>,
    stopping: AtomicBool,
    http: reqwest::Client,
    /// Held while a registry record is appended.
    registry_lock: Mutex<()>,
}

impl AppState {
    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn raw_keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, WatermarkKey>> {
        self.raw_keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hold_raw_key(&self, task: &str, key: WatermarkKey) {
        self.raw_keys().insert(task.to_owned(), key);
    }

    fn raw_key(&self, task: &str) -> Option<WatermarkKey> {
        self.raw_keys().get(task).cloned()
    }

    fn forget_raw_key(&self, task: &str) {
        self.raw_keys().remove(task);
    }
}

/// A new random id: 32 hex digits.
pub fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(32);
    for _ in 0..2 {
        // RandomState is seeded from the OS once per process and perturbed
        // per instance; the counter and clock make every id distinct.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// A JSON response.
fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(axum::body::Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A `{"error_code", "error_msg"}` response.
fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = crate::dsc::ErrorBody {
        error_code: code.to_owned(),
        error_msg: message.to_owned(),
    };
    json_response(status, serde_json::to_vec(&body).unwrap_or_default())
}

async fn request_id(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let id = new_id();
    let mut response = next.run(request).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// The whole router for `app`.
pub fn router(app: Arc<AppState>) -> Router {
    // The body limit is enforced (and named in the error) by the
    // authentication layer; axum's own default of 2 MB would cut DSC
    // requests short.
    let authenticated = api::routes()
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            app.config.body_limit_bytes,
        ));
    Router::new()
        .route(
            "/openapi.json",
            axum::routing::get(|| async {
                json_response(StatusCode::OK, OPENAPI.as_bytes().to_vec())
            }),
        )
        .merge(authenticated)
        .fallback(|| async {
            error_response(
                StatusCode::NOT_FOUND,
                crate::dsc::INVALID_PARAMETER,
                "Invalid parameter: no such API",
            )
        })
        .with_state(app)
        .layer(axum::middleware::from_fn(request_id))
}

/// Prepares the shared state: opens the task store and puts unfinished
/// tasks back in the queue (failing those that held a raw key).
///
/// # Errors
///
/// [`ServeError`] for a bad configuration, files root or database.
pub fn prepare(config: ServerConfig, secrets: Secrets) -> Result<Arc<AppState>, ServeError> {
    config.validate()?;
    let files_root = config
        .files_root
        .canonicalize()
        .map_err(|source| ServeError::FilesRoot {
            path: config.files_root.clone(),
            source,
        })?;
    let store = Arc::new(Store::open(&config.data_dir)?);
    store.recover()?;
    Ok(Arc::new(AppState {
        config,
        secrets,
        store,
        files_root,
        raw_keys: Mutex::new(HashMap::new()),
        wake: tokio::sync::Notify::new(),
        compute: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        )),
        stopping: AtomicBool::new(false),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default(),
        registry_lock: Mutex::new(()),
    }))
}

/// Serves until `shutdown` resolves: binds the configured address, calls
/// `ready` with the bound address (`127.0.0.1:0` picks a free port), runs
/// the workers, and on shutdown stops taking requests and tasks, lets
/// requests in flight and the files being extracted finish (their results
/// are saved), and returns. Tasks left unfinished resume at the next start.
///
/// # Errors
///
/// [`ServeError`] if the state cannot be prepared or the address bound.
pub async fn serve(
    config: ServerConfig,
    secrets: Secrets,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let address = config.listen;
    let app = prepare(config, secrets)?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Listen { address, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Listen { address, source })?;
    let workers: Vec<_> = (0..app.config.workers)
        .map(|_| tokio::spawn(worker::run(app.clone())))
        .collect();
    let purger = tokio::spawn(worker::purge(app.clone()));
    ready(bound);
    let stopping = app.clone();
    let served = connections(listener, router(app.clone()), &app.config, async move {
        shutdown.await;
        stopping.stopping.store(true, Ordering::SeqCst);
        stopping.wake.notify_waiters();
    })
    .await;
    app.stopping.store(true, Ordering::SeqCst);
    app.wake.notify_waiters();
    purger.abort();
    for w in workers {
        // Files being extracted finish and are saved; a stuck one does not
        // hold the shutdown forever.
        let _ = tokio::time::timeout(Duration::from_secs(60), w).await;
    }
    served.map_err(|source| ServeError::Listen {
        address: bound,
        source,
    })
}

/// The connection loop: at most `max_connections` at once (the rest wait
/// in the listen backlog, so descriptors never run out), each HTTP/1 with a
/// header-read timeout that also closes idle keep-alive connections. On
/// `shutdown` it stops accepting, lets every connection finish its request
/// in flight, and waits for them (at most 30 s).
async fn connections(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let permits = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let header_timeout = Duration::from_secs(config.header_read_timeout_secs);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors or a connection reset before accept:
                // keep serving the others.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connections as we go.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
