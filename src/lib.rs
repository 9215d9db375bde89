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
//! * [`key`]: the key schedule and the canonical primary-key encoding.
//! * [`select`]: what the row hash decides (row, digit, payload bin, mask).
//! * [`payload`]: framing with a keyed 64-bit tag, the error-correcting
//!   code, decoding without knowing the content's length, and the
//!   false-positive bound (below `1e-12` per extraction).
//! * [`codec`]: how a bit is written into an integer, decimal, float,
//!   string, timestamp or date.
//! * [`Watermarker`]: embedding and mergeable vote [`Tally`]s.
//! * [`candidates`]: naming which of the issued copies a leak comes from,
//!   with exact p-values, from a few hundred rows.
//!
//! # Crate features
//!
//! * `dsc`: the Huawei DSC-compatible JSON model, [`dsc`] (adds `serde`,
//!   `serde_json`).
//! * `arrow`: the Apache Arrow adapter, [`arrow`] (`RecordBatch` and
//!   `RecordBatchReader` streams).
//! * `files`: streaming CSV, NDJSON and Arrow IPC files, [`files`].
//! * `parquet`: Parquet files too.
//! * `server`: `dbwm serve`, the DSC-compatible HTTP server with AK/SK
//!   signing and durable extraction tasks, [`server`] (adds `tokio`, `axum`,
//!   `rusqlite` with bundled SQLite, `reqwest`, `toml`).
//! * `registry`: the registry of issued copies, [`registry`] (adds `serde`,
//!   `serde_json`).
//! * `cli` (default, implies `dsc` and `parquet`): the `dbwm` command-line tool. Pipelines
//!   that link the core alone use `default-features = false`; the core
//!   depends only on `hmac`, `sha2`, `rayon`, `ryu` and `thiserror`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "arrow")]
pub mod arrow;
pub mod attack;
pub mod candidates;
pub mod codec;
mod column;
#[cfg(feature = "dsc")]
pub mod dsc;
mod ecc;
mod embed;
mod engine;
mod error;
pub mod eval;
mod extract;
#[cfg(feature = "files")]
pub mod files;
pub mod key;
pub mod payload;
#[cfg(feature = "files")]
pub mod pipeline;
#[cfg(feature = "registry")]
pub mod registry;
pub mod sample;
pub mod select;
#[cfg(feature = "server")]
pub mod server;
pub mod signing;
mod table;
pub mod timefmt;

pub use candidates::{Candidates, Identification, Score};
pub use column::{Cell, ColumnMut, ColumnRef};
pub use embed::ColumnReport;
pub use engine::Watermarker;
pub use error::{Error, Result};
pub use extract::{Evidence, Found, Tally};
pub use key::{KeyEncoder, KeyPart, WatermarkKey};
pub use payload::Payload;
pub use select::{Config, ConfigBuilder, Density, Selection, Slot};
pub use table::{Column, EmbedReport, Table, Values};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
