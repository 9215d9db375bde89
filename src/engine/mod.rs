//! The engine: everything that decides where a mark goes and reads it back,
//! with no serde, Arrow, files or I/O.
//!
//! * `key`: the key schedule and the canonical primary-key encoding.
//! * `select`: what the row hash decides (row, digit, payload bin, mask).
//! * `payload` and `ecc`: framing with a keyed 64-bit tag, the
//!   error-correcting code, decoding without knowing the content's length,
//!   and the false-positive bound.
//! * `position`: which code position each marked cell carries.
//! * `codec` and `column`: how a bit is written into an integer, decimal,
//!   float, string, timestamp or date, and the typed column views.
//! * `embed`, `extract`, `candidates`: embedding, mergeable vote tallies and
//!   free decoding, and naming which issued copy a leak comes from.
//! * `profile`: column profiles and the per-column plan (carrier, limits,
//!   reason) that keeps a marked copy meaning what the original means;
//!   `rules`: what the owner says about a column, which the plan follows.
//! * `pseudo`: the keyed values of a pseudo-column, an added column that
//!   carries the mark so that no real cell changes.
//! * `pseudo_rows`: the keyed cell hashes of pseudo-rows, fabricated
//!   records that carry the mark so that no real cell changes.
//! * `table`: an owned in-memory table over all of them.
//! * `tallies`: a table's named column tallies under one key, and their
//!   compact, versioned binary form for shipping between machines.
//! * `watermarker`: [`Watermarker`], the prepared key and configuration every
//!   front end goes through.
//!
//! The modules are private; their public names are re-exported at the crate
//! root, which is the one path to each of them.

mod candidates;
pub(crate) mod codec;
pub(crate) mod column;
mod ecc;
mod embed;
mod error;
mod extract;
pub(crate) mod key;
pub(crate) mod payload;
pub(crate) mod position;
mod profile;
// Used by the Arrow adapter, which adds and reads pseudo-columns.
#[cfg_attr(not(feature = "arrow"), allow(dead_code))]
pub(crate) mod pseudo;
// Used by the Arrow adapter, which adds and reads pseudo-rows.
#[cfg_attr(not(feature = "arrow"), allow(dead_code))]
pub(crate) mod pseudo_rows;
#[cfg(feature = "arrow")]
pub(crate) mod relations;
mod rules;
pub(crate) mod select;
mod table;
mod tallies;
mod watermarker;

pub use candidates::{
    Candidates, DEFAULT_THRESHOLD, Identification, SOME_EVIDENCE, Score, log10_binomial_tail,
};
pub use codec::{TEXT_MARKS, marked_text};
pub use column::{Cell, ColumnMut, ColumnRef, Limits, Validity};
pub use embed::ColumnReport;
pub use error::{Error, Result};
pub use extract::{Evidence, Found, Tally};
pub use key::{KeyEncoder, KeyPart, SCHEME_VERSION, WatermarkKey};
pub use payload::{BINS, CLASS_LENGTHS, Payload};
pub use position::Positions;
pub use profile::{
    CATEGORY_MAX_DISTINCT, Carrier, ColumnPlan, ColumnProfile, DISTINCT_CAP, Kind, Logical,
    MAX_STEP_OF_SD,
};
pub use pseudo::{PseudoFormat, pseudo_column_fingerprint};
pub use pseudo_rows::{
    DEFAULT_ROW_SPACING, PSEUDO_ROWS, PseudoRowsReport, ROW_CHANCE, TAG_BITS,
    pseudo_rows_fingerprint,
};
pub use rules::{ColumnRule, ColumnRules, RuleError};
pub use select::{Config, ConfigBuilder, Density, MAX_LEVEL, Selection, Slot};
#[cfg(feature = "arrow")]
pub(crate) use table::instant_micros;
pub use table::{Column, EmbedReport, Table, Values};
pub use tallies::{
    MAX_TALLY_COLUMNS, MAX_TALLY_NAME_BYTES, TALLY_FORMAT_VERSION, TableTally, TallyError,
};
pub use watermarker::Watermarker;

/// Largest watermark content in bytes (the frame's 6-bit length header).
pub const MAX_CONTENT_BYTES: usize = 64;
