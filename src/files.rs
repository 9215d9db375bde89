//! Streaming file input and output (feature `files`; Parquet with feature
//! `parquet`): CSV, newline-delimited JSON, Arrow IPC file and stream,
//! Parquet.
//!
//! Readers yield [`RecordBatch`]es of a bounded size and writers take them one
//! at a time, so watermarking a file holds a bounded number of batches in
//! memory, never the whole file. An output file is written to a temporary
//! file in the same folder and only renamed over the target once complete.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, Schema, SchemaRef};

/// Rows per batch unless set otherwise.
pub const DEFAULT_BATCH_ROWS: usize = 8192;

/// Errors of file input and output; each names its file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file's contents could not be read or written as its format.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: ArrowError,
    },
    /// The format is not known from the extension; name it.
    #[error(
        "{0}: unknown format; use an extension (.csv, .tsv, .json, .ndjson, .jsonl, .arrow, .arrows, .parquet) or name the format"
    )]
    UnknownFormat(PathBuf),
    /// The format is known but this build cannot read or write it.
    #[error("{0}: Parquet needs the `parquet` feature")]
    Unsupported(PathBuf),
}

/// Shorthand for results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma- (or otherwise) separated values with a header line.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// Arrow IPC file (Feather v2).
    IpcFile,
    /// Arrow IPC stream.
    IpcStream,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// The format named by `path`'s extension.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Self::parse(&ext)
    }

    /// A format by name or extension: `csv`, `tsv`, `json`, `ndjson`,
    /// `jsonl`, `arrow`, `ipc`, `feather`, `arrows`, `parquet`, `pq`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "csv" | "tsv" | "txt" => Self::Csv,
            "json" | "ndjson" | "jsonl" => Self::Ndjson,
            "arrow" | "ipc" | "feather" => Self::IpcFile,
            "arrows" | "stream" => Self::IpcStream,
            "parquet" | "pq" => Self::Parquet,
            _ => return None,
        })
    }

    /// The format `named`, else the one `path`'s extension names.
    pub(crate) fn of(path: &Path, named: Option<Format>) -> Result<Self> {
        named
            .or_else(|| Self::from_path(path))
            .ok_or_else(|| Error::UnknownFormat(path.to_owned()))
    }
}

/// How to read a file.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The format; by default from the extension.
    pub format: Option<Format>,
    /// Rows per batch. Default: [`DEFAULT_BATCH_ROWS`].
    pub batch_rows: usize,
    /// CSV field delimiter. Default: `,` (`\t` for `.tsv`).
    pub delimiter: Option<u8>,
    /// Whether a CSV file starts with a header line. Default: yes.
    pub header: bool,
    /// The schema of a CSV or NDJSON file; inferred from its first rows if absent.
    pub schema: Option<SchemaRef>,
    /// Rows read to infer a schema. Default: 10,000.
    pub infer_rows: usize,
    /// Read every CSV column as text, so that each cell keeps its exact
    /// text (`12.30`, `N/A`, `2013-01-01T10:00:00Z`); numbers among it are
    /// still planned and marked as numbers. Default: no (columns are typed).
    pub exact_text: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            format: None,
            batch_rows: DEFAULT_BATCH_ROWS,
            delimiter: None,
            header: true,
            schema: None,
            infer_rows: 10_000,
            exact_text: false,
        }
    }
}

/// An open input: a stream of batches and what is known about the file.
pub struct Input {
    /// The batches.
    pub reader: Box<dyn RecordBatchReader + Send>,
    /// The format.
    pub format: Format,
    /// Number of rows, when the format records it (Parquet) or a quick count
    /// found it (CSV, NDJSON); used to choose the marking density.
    pub rows: Option<usize>,
    /// Parquet compression of the input, kept on output.
    #[cfg(feature = "parquet")]
    pub parquet_compression: Option<parquet::basic::Compression>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn fmt(path: &Path) -> impl FnOnce(ArrowError) -> Error + '_ {
    move |source| Error::Format {
        path: path.to_owned(),
        source,
    }
}

/// The error a reader's panic becomes.
fn corrupt() -> ArrowError {
    ArrowError::ParseError(
        "corrupt data (offsets or lengths out of bounds): the format's reader gave up".to_owned(),
    )
}

/// Runs `f`, turning a panic into an error. `arrow-ipc` 60 panics instead of
/// failing on some corrupt files (buffer offsets past the end); such a
/// panic, in any format's reader, is contained here, at the file boundary, so a bad input is an
/// error naming the file and never ends the process or a server task. The
/// default panic hook still prints its message to standard error.
fn contained<T>(f: impl FnOnce() -> Result<T, ArrowError>) -> Result<T, ArrowError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| Err(corrupt()))
}

/// A batch reader whose panics become one error, after which it ends.
/// (`R` may be a boxed reader of any format.)
struct Contained<R> {
    inner: Option<R>,
    schema: arrow_schema::SchemaRef,
}

impl<R: RecordBatchReader> Contained<R> {
    fn new(inner: R) -> Self {
        Self {
            schema: inner.schema(),
            inner: Some(inner),
        }
    }
}

impl<R: RecordBatchReader> Iterator for Contained<R> {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let inner = self.inner.as_mut()?;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.next())) {
            Ok(item) => item,
            Err(_) => {
                self.inner = None;
                Some(Err(corrupt()))
            }
        }
    }
}

impl<R: RecordBatchReader> RecordBatchReader for Contained<R> {
    fn schema(&self) -> arrow_schema::SchemaRef {
        self.schema.clone()
    }
}

/// Counts lines that are not blank, reading the file in blocks.
fn count_lines(path: &Path) -> Result<usize> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path).map_err(io(path))?);
    let mut count = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io(path))?;
        if n == 0 {
            return Ok(count);
        }
        count += usize::from(line.iter().any(|c| !c.is_ascii_whitespace()));
    }
}

/// Opens `path` for reading batch by batch.
///
/// # Errors
///
/// [`Error::Io`] if it cannot be opened, [`Error::Format`] if its header or
/// schema cannot be read, [`Error::UnknownFormat`].
pub fn open(path: &Path, options: &ReadOptions) -> Result<Input> {
    let format = Format::of(path, options.format)?;
    let mut file = File::open(path).map_err(io(path))?;
    let batch = options.batch_rows.max(1);
    #[cfg(feature = "parquet")]
    let mut parquet_compression = None;
    let (reader, rows): (Box<dyn RecordBatchReader + Send>, Option<usize>) = match format {
        Format::Csv => {
            let tsv = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
            let delimiter = options.delimiter.unwrap_or(if tsv { b'\t' } else { b',' });
            let schema = match &options.schema {
                Some(s) => s.clone(),
                None => {
                    let (schema, _) = arrow_csv::reader::Format::default()
                        .with_header(options.header)
                        .with_delimiter(delimiter)
                        .infer_schema(BufReader::new(&mut file), Some(options.infer_rows))
                        .map_err(fmt(path))?;
                    file.rewind().map_err(io(path))?;
                    Arc::new(schema)
                }
            };
            let schema = if options.exact_text {
                let text = |f: &arrow_schema::FieldRef| {
                    arrow_schema::Field::new(f.name(), arrow_schema::DataType::Utf8, true)
                };
                Arc::new(Schema::new(
                    schema.fields().iter().map(text).collect::<Vec<_>>(),
                ))
            } else {
                schema
            };
            let reader = arrow_csv::ReaderBuilder::new(schema)
                .with_header(options.header)
                .with_delimiter(delimiter)
                .with_batch_size(batch)
                .build(BufReader::new(file))
                .map_err(fmt(path))?;
            let lines = count_lines(path)?;
            (
                Box::new(reader),
                Some(lines.saturating_sub(usize::from(options.header))),
            )
        }
        Format::Ndjson => {
            let schema = match &options.schema {
                Some(s) => s.clone(),
                None => {
                    let (schema, _) = arrow_json::reader::infer_json_schema(
                        BufReader::new(&mut file),
                        Some(options.infer_rows),
                    )
                    .map_err(fmt(path))?;
                    file.rewind().map_err(io(path))?;
                    Arc::new(schema)
                }
            };
            let reader = arrow_json::ReaderBuilder::new(schema)
                .with_batch_size(batch)
                .build(BufReader::new(file))
                .map_err(fmt(path))?;
            (Box::new(reader), Some(count_lines(path)?))
        }
        Format::IpcFile => {
            let reader = contained(|| arrow_ipc::reader::FileReader::try_new(file, None))
                .map_err(fmt(path))?;
            (Box::new(reader), None)
        }
        Format::IpcStream => {
            let reader =
                contained(|| arrow_ipc::reader::StreamReader::try_new(BufReader::new(file), None))
                    .map_err(fmt(path))?;
            (Box::new(reader), None)
        }
        #[cfg(feature = "parquet")]
        Format::Parquet => {
            use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| external(path, e))?;
            let meta = builder.metadata();
            let rows = usize::try_from(meta.file_metadata().num_rows()).ok();
            parquet_compression = meta
                .row_groups()
                .first()
                .and_then(|g| g.columns().first())
                .map(|c| c.compression());
            let reader = builder
                .with_batch_size(batch)
                .build()
                .map_err(|e| external(path, e))?;
            (Box::new(reader), rows)
        }
        #[cfg(not(feature = "parquet"))]
        Format::Parquet => return Err(Error::Unsupported(path.to_owned())),
    };
    Ok(Input {
        // Every format's reader: a dependency's panic on corrupt data is an
        // error here, not the end of the process.
        reader: Box::new(Contained::new(reader)),
        format,
        rows,
        #[cfg(feature = "parquet")]
        parquet_compression,
    })
}

/// Arrow IPC body compression: `LZ4_FRAME` or `ZSTD`. Compressed IPC files
/// and streams are read without being told.
pub use arrow_ipc::CompressionType as IpcCompression;

/// How to write a file.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// The format; by default from the extension.
    pub format: Option<Format>,
    /// CSV field delimiter. Default: `,` (`\t` for `.tsv`).
    pub delimiter: Option<u8>,
    /// Arrow IPC body compression (LZ4 frame or ZSTD). Default: none.
    pub ipc_compression: Option<IpcCompression>,
    /// Parquet compression. Default: the input's, else snappy.
    #[cfg(feature = "parquet")]
    pub parquet_compression: Option<parquet::basic::Compression>,
}

enum Sink {
    Csv(arrow_csv::Writer<File>),
    Ndjson(arrow_json::LineDelimitedWriter<File>),
    IpcFile(arrow_ipc::writer::FileWriter<File>),
    IpcStream(arrow_ipc::writer::StreamWriter<File>),
    #[cfg(feature = "parquet")]
    /// The writer and the schema it writes ([`parquet_schema`]).
    Parquet(parquet::arrow::ArrowWriter<File>, SchemaRef),
}

/// `schema` as a Parquet file keeps it: timestamps in seconds become
/// timestamps in milliseconds (the same instants; Parquet's smallest unit).
#[cfg(feature = "parquet")]
fn parquet_schema(schema: &Schema) -> SchemaRef {
    use arrow_schema::{DataType, Field, TimeUnit};
    let field = |f: &arrow_schema::FieldRef| match f.data_type() {
        DataType::Timestamp(TimeUnit::Second, tz) => Arc::new(
            Field::new(
                f.name(),
                DataType::Timestamp(TimeUnit::Millisecond, tz.clone()),
                f.is_nullable(),
            )
            .with_metadata(f.metadata().clone()),
        ),
        _ => f.clone(),
    };
    Arc::new(Schema::new_with_metadata(
        schema.fields().iter().map(field).collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

/// `batch` with its timestamps in seconds in milliseconds, as `schema`
/// (from [`parquet_schema`]) has them; an error names a column whose
/// instant has no millisecond count in 64 bits.
#[cfg(feature = "parquet")]
fn seconds_to_millis(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{TimestampMillisecondType, TimestampSecondType};
    use arrow_schema::{DataType, TimeUnit};
    if batch.schema_ref() == schema {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(batch.schema_ref().fields())
        .map(|(column, field)| match field.data_type() {
            DataType::Timestamp(TimeUnit::Second, tz) => column
                .as_primitive::<TimestampSecondType>()
                .try_unary::<_, TimestampMillisecondType, _>(|s| {
                    s.checked_mul(1_000).ok_or_else(|| {
                        ArrowError::ComputeError(format!(
                            "column `{}`: timestamp {s} s is beyond what Parquet can hold in milliseconds",
                            field.name()
                        ))
                    })
                })
                .map(|a| Arc::new(a.with_timezone_opt(tz.clone())) as arrow_array::ArrayRef),
            _ => Ok(column.clone()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// A file being written batch by batch; it replaces its target only when
/// [`Output::finish`] succeeds, and is removed if dropped before that.
pub struct Output {
    sink: Option<Sink>,
    /// Removed when dropped unless persisted by [`Output::finish`].
    tmp: Option<tempfile::TempPath>,
    path: PathBuf,
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            untrack(tmp);
        }
    }
}

#[cfg(feature = "parquet")]
fn external(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    fmt(path)(ArrowError::ExternalError(Box::new(e)))
}

/// Temporary outputs being written, for [`remove_temporaries`].
static LIVE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn untrack(path: &Path) {
    live().retain(|p| p != path);
}

/// Removes every temporary output still being written. For a signal
/// handler that is about to end the process (destructors will not run):
/// an interrupted `dbwm embed` leaves neither a partial output nor a
/// temporary file.
pub fn remove_temporaries() {
    for path in live().drain(..) {
        let _ = std::fs::remove_file(path);
    }
}

/// A new temporary file next to `path`, in the same folder so the final
/// rename is atomic: created exclusively (`O_EXCL`) under a random name, so
/// a symlink planted at a guessable name cannot redirect the write; removed
/// when dropped unless persisted.
fn temporary_next_to(path: &Path) -> std::io::Result<(File, tempfile::TempPath)> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // The permissions `File::create` gives (0666 less the umask), not the
    // temporary file's private 0600: the copy is meant to be shared.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let named = builder.tempfile_in(dir)?;
    live().push(named.path().to_owned());
    Ok(named.into_parts())
}

/// Writes `bytes` to `path` through a temporary file in the same folder, so
/// that `path` is only ever replaced by a complete file.
///
/// # Errors
///
/// [`Error::Io`] naming `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let (mut file, tmp) = temporary_next_to(path).map_err(io(path))?;
    let tmp_path = tmp.to_path_buf();
    let result = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io(path))
        .and_then(|()| tmp.persist(path).map_err(|e| io(path)(e.error)));
    untrack(&tmp_path);
    result
}

impl Output {
    /// Starts writing `path` with `schema`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the temporary file cannot be created, [`Error::UnknownFormat`].
    pub fn create(path: &Path, schema: &Schema, options: &WriteOptions) -> Result<Self> {
        let format = Format::of(path, options.format)?;
        let (file, tmp) = temporary_next_to(path).map_err(io(path))?;
        let mut out = Output {
            sink: None,
            tmp: Some(tmp),
            path: path.to_owned(),
        };
        let ipc_options = || {
            arrow_ipc::writer::IpcWriteOptions::default()
                .try_with_compression(options.ipc_compression)
                .map_err(fmt(path))
        };
        let sink = match format {
            Format::Csv => {
                let tsv = path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
                let delimiter = options.delimiter.unwrap_or(if tsv { b'\t' } else { b',' });
                Sink::Csv(
                    arrow_csv::WriterBuilder::new()
                        .with_header(true)
                        .with_delimiter(delimiter)
                        .build(file),
                )
            }
            Format::Ndjson => Sink::Ndjson(arrow_json::LineDelimitedWriter::new(file)),
            Format::IpcFile => Sink::IpcFile(
                arrow_ipc::writer::FileWriter::try_new_with_options(file, schema, ipc_options()?)
                    .map_err(fmt(path))?,
            ),
            Format::IpcStream => Sink::IpcStream(
                arrow_ipc::writer::StreamWriter::try_new_with_options(file, schema, ipc_options()?)
                    .map_err(fmt(path))?,
            ),
            #[cfg(feature = "parquet")]
            Format::Parquet => {
                let compression = options
                    .parquet_compression
                    .unwrap_or(parquet::basic::Compression::SNAPPY);
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(compression)
                    .build();
                // Parquet has no timestamp in seconds: written as they are,
                // they would be bare integers to every reader but arrow-rs.
                let schema = parquet_schema(schema);
                Sink::Parquet(
                    parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(props))
                        .map_err(|e| external(path, e))?,
                    schema,
                )
            }
            #[cfg(not(feature = "parquet"))]
            Format::Parquet => return Err(Error::Unsupported(path.to_owned())),
        };
        out.sink = Some(sink);
        Ok(out)
    }

    /// Appends a batch.
    ///
    /// # Errors
    ///
    /// [`Error::Format`] naming the target file.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self.sink.as_mut() {
            Some(Sink::Csv(w)) => w.write(batch).map_err(fmt(&self.path)),
            Some(Sink::Ndjson(w)) => w.write(batch).map_err(fmt(&self.path)),
            Some(Sink::IpcFile(w)) => w.write(batch).map_err(fmt(&self.path)),
            Some(Sink::IpcStream(w)) => w.write(batch).map_err(fmt(&self.path)),
            #[cfg(feature = "parquet")]
            Some(Sink::Parquet(w, schema)) => {
                let batch = seconds_to_millis(batch, schema).map_err(fmt(&self.path))?;
                w.write(&batch).map_err(|e| external(&self.path, e))
            }
            None => Ok(()),
        }
    }

    /// Completes the file and moves it over the target.
    ///
    /// # Errors
    ///
    /// [`Error::Format`] or [`Error::Io`] naming the target; the target is
    /// then left as it was.
    pub fn finish(mut self) -> Result<()> {
        let path = self.path.clone();
        let file: File = match self.sink.take() {
            Some(Sink::Csv(w)) => w.into_inner(),
            Some(Sink::Ndjson(mut w)) => {
                w.finish().map_err(fmt(&path))?;
                w.into_inner()
            }
            Some(Sink::IpcFile(mut w)) => {
                w.finish().map_err(fmt(&path))?;
                w.into_inner().map_err(fmt(&path))?
            }
            Some(Sink::IpcStream(mut w)) => {
                w.finish().map_err(fmt(&path))?;
                w.into_inner().map_err(fmt(&path))?
            }
            #[cfg(feature = "parquet")]
            Some(Sink::Parquet(w, _)) => w.into_inner().map_err(|e| external(&path, e))?,
            None => return Ok(()),
        };
        file.sync_all().map_err(io(&path))?;
        match self.tmp.take() {
            Some(tmp) => {
                // Renamed first: a signal in between finds nothing to remove.
                let tmp_path = tmp.to_path_buf();
                let result = tmp.persist(&path).map_err(|e| io(&path)(e.error));
                untrack(&tmp_path);
                result
            }
            None => Ok(()),
        }
    }
}
