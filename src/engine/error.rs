//! The error type of the watermark engine.

/// Everything the engine can reject.
///
/// Messages are lowercase and name the offending value or limit; they never
/// contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The watermark key was the empty string.
    #[error("watermark key must not be empty")]
    EmptyKey,

    /// The watermark content is not 1 to 64 bytes of UTF-8.
    #[error(
        "watermark content must be 1 to {max} bytes of UTF-8, got {len} bytes",
        max = super::MAX_CONTENT_BYTES
    )]
    ContentLength {
        /// Length of the rejected content in bytes.
        len: usize,
    },

    /// A candidate watermark content is not 1 to 64 bytes.
    #[error(
        "candidate {index}: watermark content must be 1 to {max} bytes of UTF-8, got {len} bytes",
        max = super::MAX_CONTENT_BYTES
    )]
    InvalidCandidate {
        /// Position of the candidate in the list (from 0).
        index: usize,
        /// Its length in bytes.
        len: usize,
    },

    /// A [`Config`](crate::Config) setting is out of range.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidConfig {
        /// The setting's name.
        setting: &'static str,
        /// Why it was rejected.
        reason: String,
    },

    /// A column, its validity mask or a selection disagree on the number of rows.
    #[error("column `{column}` has {got} rows, expected {expected}")]
    RowCountMismatch {
        /// The column (or `validity` / `selection`) whose length is wrong.
        column: String,
        /// The expected number of rows.
        expected: usize,
        /// The number of rows found.
        got: usize,
    },

    /// Two tables or columns that must have the same types do not.
    #[error("column `{column}` has a different type in the other table")]
    TypeMismatch {
        /// The first column that differs.
        column: String,
    },

    /// A table was given without any primary-key column.
    #[error("a table needs at least one primary-key column")]
    NoPrimaryKey,
}

/// Shorthand for results of this crate's core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
