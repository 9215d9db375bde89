//! Invisible, keyed, robust watermarks for database tables.
//!
//! `dbwatermark` hides a short string (the *content*, e.g. `"acme->partner-42"`)
//! in the low digits of a table's non-key cells. Which rows carry marks, in
//! which digit, and which bit of the encoded content each carries all come
//! from a keyed HMAC-SHA256 of the row's primary key, so a leaked copy can be
//! traced from its rows alone — after rows were deleted, added, shuffled,
//! re-typed or lightly edited, and columns renamed or reordered — while
//! without the key the marks cannot be found.
//!
//! ```
//! use dbwatermark::{Column, Config, Table, Values, WatermarkKey, Watermarker};
//!
//! // A table of 20,000 orders: a key and two numeric columns.
//! let ids: Vec<i64> = (1..=20_000).collect();
//! let mut table = Table {
//!     key: vec![Column::new("order_id", Values::Int64(ids.clone()))],
//!     columns: vec![
//!         Column::new("quantity", Values::Int32(ids.iter().map(|i| (i * 37 % 90) as i32).collect())),
//!         Column::new("price", Values::Float64(ids.iter().map(|i| (i * 7919 % 100_000) as f64 / 100.0).collect())),
//!     ],
//! };
//! let wm = Watermarker::new(WatermarkKey::new("a long random secret")?, Config::default());
//! let report = wm.embed_table(&mut table, "acme->partner-42")?;
//! assert!(report.changed_fraction() < 0.2);
//!
//! // The leak: every other row, in reverse order.
//! let keep: Vec<usize> = (0..20_000).rev().step_by(2).collect();
//! let pick = |v: &Values| match v {
//!     Values::Int64(x) => Values::Int64(keep.iter().map(|&i| x[i]).collect()),
//!     Values::Int32(x) => Values::Int32(keep.iter().map(|&i| x[i]).collect()),
//!     Values::Float64(x) => Values::Float64(keep.iter().map(|&i| x[i]).collect()),
//!     _ => unreachable!(),
//! };
//! let leak = Table {
//!     key: vec![Column::new("id", pick(&table.key[0].values))],
//!     columns: table.columns.iter().map(|c| Column::new(c.name.clone(), pick(&c.values))).collect(),
//! };
//! let found = wm.extract_table(&leak)?;
//! assert_eq!(found[0].content, "acme->partner-42");
//! assert!(found[0].evidence.false_positive_probability < 1e-12);
//! # Ok::<(), dbwatermark::Error>(())
//! ```
//!
//! # How it works
//!
//! The folders of `src/` are the layers, in the direction of dependency:
//!
//! * `engine/` — the core, with no serde, Arrow or I/O: the key schedule and
//!   canonical primary-key encoding ([`WatermarkKey`], [`KeyPart`]), what the
//!   row hash decides ([`Selection`], [`Density`]), the framed and
//!   error-corrected [`Payload`] with its keyed 64-bit tag (false positives
//!   below `1e-12` per extraction), the cell codecs, embedding, mergeable
//!   vote [`Tally`]s and decoding, and [`Candidates`]: naming which of the
//!   issued copies a leak comes from, with exact p-values.
//! * `arrow/`, `files.rs`, `pipeline.rs` — the adapters: Arrow batches and
//!   streams, CSV/NDJSON/IPC/Parquet files, and whole-file jobs.
//! * `dsc/`, `report.rs`, `registry.rs` — the wire models: Huawei DSC's JSON,
//!   our own JSON results, the registry of issued copies.
//! * `server/` and the `dbwm` binary (`src/bin/dbwm/`) — the front ends.
//! * `eval/` — attacks, generated sample data and the evaluation harness.
//!
//! # Crate features
//!
//! * `dsc`: the Huawei DSC-compatible JSON model, [`dsc`] (adds `serde`,
//!   `serde_json`).
//! * `arrow`: the Apache Arrow adapter, [`arrow`] (`RecordBatch` and
//!   `RecordBatchReader` streams).
//! * `files`: streaming CSV, NDJSON and Arrow IPC files, [`files`], and
//!   whole-file jobs, [`pipeline`].
//! * `parquet`: Parquet files too.
//! * `postgres`, `mysql`, `sqlite`: database tables as sources and targets,
//!   [`db`] (adds `postgres`; `mysql`; `rusqlite` with its bundled SQLite).
//! * `registry`: the registry of issued copies, [`registry`] (adds `serde`,
//!   `serde_json`).
//! * `report`: the JSON of extraction results and embed summaries, [`report`]
//!   (adds `serde`, `serde_json`).
//! * `server`: `dbwm serve`, the DSC-compatible HTTP server with AK/SK
//!   signing and durable extraction tasks, [`server`] (adds `tokio`, `axum`,
//!   `rusqlite` with bundled SQLite, `reqwest`, `toml`).
//! * `eval`: the attack suite, generated sample tables and the evaluation
//!   behind `dbwm eval`, [`eval`].
//! * `cli` (default, implies all of the above): the `dbwm` command-line
//!   tool. Pipelines that link the core alone use `default-features =
//!   false`; the core depends only on `hmac`, `sha2`, `rayon`, `ryu` and
//!   `thiserror`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod engine;

#[cfg(feature = "arrow")]
pub mod arrow;
#[cfg(feature = "db")]
// `db` alone (no database feature) keeps the URLs and jobs, which then
// refuse every scheme; the readers and writers go unused.
#[cfg_attr(
    not(any(feature = "postgres", feature = "sqlite", feature = "mysql")),
    allow(dead_code, unused_variables, unreachable_code)
)]
pub mod db;
#[cfg(feature = "dsc")]
pub mod dsc;
#[cfg(feature = "eval")]
pub mod eval;
#[cfg(feature = "files")]
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "files")]
pub mod pipeline;
#[cfg(feature = "registry")]
pub mod registry;
#[cfg(feature = "report")]
pub mod report;
#[cfg(feature = "server")]
pub mod server;
// Civil dates and RFC 3339 / X-Sdk-Date times, shared by the key encoding
// (dates and times written as text), the DSC model, the registry, the
// server and the Arrow adapter; each uses a part of it.
#[cfg_attr(
    not(all(
        feature = "arrow",
        feature = "dsc",
        feature = "registry",
        feature = "server"
    )),
    allow(dead_code)
)]
mod timefmt;

pub use engine::*;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
