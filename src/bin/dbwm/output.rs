//! What every command shares on its way out: the progress bar, failures
//! and their exit codes, and file-or-standard-stream paths.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Why a command failed: the caller's mistake (exit 2) or not (exit 1).
#[derive(Debug)]
pub enum Failure {
    /// Bad flags or input: exit status 2.
    Caller(String),
    /// Anything else: exit status 1.
    Internal(String),
}

impl Failure {
    /// Prints the one-line message and returns the exit status.
    pub fn report(self) -> ExitCode {
        let (message, code) = match self {
            Self::Caller(m) => (m, 2),
            Self::Internal(m) => (m, 1),
        };
        say!("dbwm: {message}");
        ExitCode::from(code)
    }
}

impl From<dbwatermark::pipeline::Error> for Failure {
    /// Bad input or settings are the caller's; failing to write is not.
    fn from(e: dbwatermark::pipeline::Error) -> Self {
        use dbwatermark::{db, pipeline};
        if let pipeline::Error::Database(db::Error::Exists { .. }) = e {
            return Self::Caller(format!(
                "{e}; choose another --output-table or pass --replace"
            ));
        }
        if e.is_caller_error() {
            Self::Caller(e.to_string())
        } else {
            Self::Internal(e.to_string())
        }
    }
}

impl From<Failure> for String {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Caller(m) | Failure::Internal(m) => m,
        }
    }
}

/// A command's outcome: the exit status it chose, or why it failed.
pub type Outcome = Result<ExitCode, Failure>;

/// Writes one line of results to standard output.
///
/// # Errors
///
/// [`Failure::Internal`] when standard output is closed or full.
pub fn out(line: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Internal(format!("cannot write to standard output: {e}")))
}

/// `Failure::Caller` from any error, for `map_err`.
pub fn caller(e: impl ToString) -> Failure {
    Failure::Caller(e.to_string())
}

/// `Failure::Internal` from any error, for `map_err`.
pub fn internal(e: impl ToString) -> Failure {
    Failure::Internal(e.to_string())
}

/// `path` unless it is absent or `-` (standard input or output).
pub fn named(path: &Option<PathBuf>) -> Option<&Path> {
    path.as_deref().filter(|p| *p != Path::new("-"))
}

/// A progress bar on standard error when it is a terminal, otherwise nothing.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    pub fn new(what: &str) -> Self {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {human_pos}/{human_len} rows, {per_sec}, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        Self(Some(bar))
    }

    pub fn update(&self, done: usize, total: Option<usize>) {
        if let Some(bar) = &self.0 {
            if let Some(t) = total {
                bar.set_length(t as u64);
            }
            bar.set_position(done as u64);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
