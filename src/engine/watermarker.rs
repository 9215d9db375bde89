//! [`Watermarker`]: a prepared key and configuration, the entry point of the
//! core.

use crate::engine::column::Validity;
use crate::engine::error::{Error, Result};
use crate::engine::key::{KeyEncoder, WatermarkKey};
use crate::engine::payload::Payload;
use crate::engine::position::Positions;
use crate::engine::select::{Config, Density, Selection};

/// A watermark key and configuration, prepared once and shared by every
/// batch, column and thread.
///
/// The core works column by column: compute the [`Selection`] of a batch once
/// from its primary keys, then embed into or tally each non-key column with it.
///
/// ```
/// use dbwatermark::{ColumnMut, ColumnRef, Config, KeyPart, Tally, WatermarkKey, Watermarker};
///
/// let wm = Watermarker::new(WatermarkKey::new("secret")?, Config::default());
/// let ids: Vec<i64> = (0..4000).collect();
/// let mut amounts: Vec<i64> = ids.iter().map(|i| 1000 + i * 7 % 501).collect();
///
/// let selection = wm.select(ids.len(), |row, key| {
///     key.push(KeyPart::Int(ids[row].into()));
///     true
/// });
/// let payload = wm.payload("partner-42")?;
/// let density = wm.density_for(Some(ids.len()), &payload);
/// let report = wm.embed_column(&selection, &payload, density, ColumnMut::Int64(&mut amounts), None)?;
/// assert!(report.changed > 0);
///
/// let mut tally = Tally::new();
/// wm.tally_column(&selection, ColumnRef::Int64(&amounts), None, &mut tally)?;
/// let found = wm.decode(&[tally]);
/// assert_eq!(found[0].content, "partner-42");
/// # Ok::<(), dbwatermark::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Watermarker {
    pub(crate) key: WatermarkKey,
    pub(crate) config: Config,
}

impl Watermarker {
    /// Prepares `key` with `config`.
    pub fn new(key: WatermarkKey, config: Config) -> Self {
        Self { key, config }
    }

    /// The same key with another configuration.
    pub fn with_config(&self, config: Config) -> Self {
        Self {
            key: self.key.clone(),
            config,
        }
    }

    /// The watermarker to embed a table of `marked_columns` marked columns
    /// with: this one, except that under [`Positions::Cell`] a table with
    /// at most one marked column is marked under [`Positions::Row`]. One
    /// cell per row gains nothing from cell positions, and row positions
    /// need not leave the cells at their group's edge unmarked.
    ///
    /// ```
    /// use dbwatermark::{Config, Positions, WatermarkKey, Watermarker};
    /// let wm = Watermarker::new(WatermarkKey::new("secret")?, Config::default());
    /// assert_eq!(wm.for_columns(1).config().positions(), Positions::Row);
    /// assert_eq!(wm.for_columns(3).config().positions(), Positions::Cell);
    /// # Ok::<(), dbwatermark::Error>(())
    /// ```
    pub fn for_columns(&self, marked_columns: usize) -> Self {
        match self.config.positions() {
            Positions::Cell if marked_columns <= 1 => {
                self.with_config(self.config.with_positions(Positions::Row))
            }
            _ => self.clone(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The key's public fingerprint; see [`WatermarkKey::fingerprint`].
    pub fn key_fingerprint(&self) -> String {
        self.key.fingerprint()
    }

    /// Hashes each row's primary key once, in parallel chunks of rows.
    ///
    /// `key_of(row, encoder)` pushes the parts of row `row`'s primary key
    /// (one [`KeyPart`](crate::KeyPart) per key column, in a fixed order) and
    /// returns `false` if the row has no usable key (a null key part, say);
    /// such rows are neither marked nor read.
    pub fn select<F>(&self, rows: usize, key_of: F) -> Selection
    where
        F: Fn(usize, &mut KeyEncoder) -> bool + Sync,
    {
        Selection::compute(&self.key, self.config.steps(), rows, key_of)
    }

    /// [`Watermarker::select`] and the two values each row's pseudo-column
    /// cell may hold ([`PseudoFormat`](crate::PseudoFormat)), from one
    /// encoding of each row's key.
    #[cfg_attr(not(feature = "arrow"), allow(dead_code))]
    pub(crate) fn select_with_pseudo<F>(
        &self,
        rows: usize,
        key_of: F,
    ) -> (Selection, crate::engine::pseudo::PseudoPairs)
    where
        F: Fn(usize, &mut KeyEncoder) -> bool + Sync,
    {
        crate::engine::pseudo::PseudoPairs::compute(&self.key, self.config.steps(), rows, key_of)
    }

    /// Frames and encodes `content` for embedding.
    ///
    /// # Errors
    ///
    /// [`Error::ContentLength`] unless `content` is 1 to 64 bytes.
    pub fn payload(&self, content: &str) -> Result<Payload> {
        Payload::new(&self.key, content)
    }

    /// The density to embed `payload` with into a table of `rows` rows
    /// (`None`: not known in advance): the configured one, else
    /// [`Density::auto`] (else [`Config::UNKNOWN_ROWS_DENSITY`]), made at
    /// least as dense as [`Density::to_trace`] of [`Config::trace_rows`]
    /// when that is set.
    ///
    /// It counts one code position per marked row, as for a table with one
    /// marked column; [`Watermarker::density_for_columns`] counts the
    /// positions the marked columns give.
    pub fn density_for(&self, rows: Option<usize>, payload: &Payload) -> Density {
        self.density_for_columns(rows, payload, 1)
    }

    /// [`Watermarker::density_for`] for a table with `marked_columns`
    /// marked columns, whose marked rows give
    /// [`Positions::per_row`](crate::Positions::per_row) code positions
    /// under the configured scheme: the automatic density is
    /// [`Density::auto_with`] and the trace floor
    /// [`Density::to_trace_with`], so several marked columns give the same
    /// evidence with fewer changed cells.
    pub fn density_for_columns(
        &self,
        rows: Option<usize>,
        payload: &Payload,
        marked_columns: usize,
    ) -> Density {
        let per_row = self.config.positions().per_row(marked_columns);
        let auto = match (self.config.density(), rows) {
            (Some(d), _) => return d,
            (None, Some(rows)) => Density::auto_with(rows, payload, per_row),
            (None, None) => Config::UNKNOWN_ROWS_DENSITY,
        };
        match self.config.trace_rows() {
            Some(leak) => auto.denser(Density::to_trace_with(leak, per_row)),
            None => auto,
        }
    }

    /// Checks that `len` and the validity mask's length match the selection.
    pub(crate) fn check_rows(
        selection: &Selection,
        len: usize,
        validity: Option<Validity<'_>>,
    ) -> Result<()> {
        let mismatch = |column: &str, got| Error::RowCountMismatch {
            column: column.to_owned(),
            expected: selection.len(),
            got,
        };
        if len != selection.len() {
            return Err(mismatch("values", len));
        }
        match validity {
            Some(v) if v.len() != selection.len() => Err(mismatch("validity", v.len())),
            Some(v) => match v.available() {
                Some(bits) if bits < v.len() => Err(mismatch("validity bitmap", bits)),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}
