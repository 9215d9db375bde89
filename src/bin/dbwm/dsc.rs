//! `dbwm dsc embed|extract`: one Huawei DSC request body in, its response
//! body out.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use dbwatermark::dsc::{self, DscError};

use crate::output::named;

#[derive(Subcommand)]
pub enum DscOp {
    /// Embed: `{watermark_content, watermark_key, columns, data}` → `{marked_data}`.
    Embed(DscArgs),
    /// Extract: `{watermark_key, columns, data}` → `{watermarks}`.
    Extract(DscArgs),
}

#[derive(clap::Args)]
pub struct DscArgs {
    /// Request body file; standard input if absent or `-`.
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// Response body file, replaced only once complete; standard output if
    /// absent or `-`.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// A DSC request handler: request body in, response body out.
type Handler = fn(&[u8]) -> Result<Vec<u8>, DscError>;

pub fn run(op: DscOp) -> ExitCode {
    let (args, handler): (DscArgs, Handler) = match op {
        DscOp::Embed(a) => (a, dsc::embed_json),
        DscOp::Extract(a) => (a, dsc::extract_json),
    };
    let mut body = Vec::new();
    let read = match named(&args.input) {
        Some(p) => std::fs::read(p)
            .map(|b| body = b)
            .map_err(|e| format!("cannot read `{}`: {e}", p.display())),
        None => std::io::stdin()
            .read_to_end(&mut body)
            .map(drop)
            .map_err(|e| format!("cannot read standard input: {e}")),
    };
    let response = read
        .map_err(DscError::InvalidParameter)
        .and_then(|()| handler(&body));
    let written = match &response {
        Ok(bytes) => match named(&args.output) {
            Some(p) => dbwatermark::files::write_atomically(p, bytes)
                .map_err(|e| format!("cannot write {e}")),
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)
                    .and_then(|()| out.write_all(b"\n"))
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("cannot write standard output: {e}"))
            }
        },
        Err(_) => Ok(()),
    };
    let error = match (response, written) {
        (Ok(_), Ok(())) => return ExitCode::SUCCESS,
        (Err(e), _) => e,
        (Ok(_), Err(msg)) => DscError::Internal(msg),
    };
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(&error.body_json())
        .and_then(|()| out.write_all(b"\n"));
    say!("dbwm dsc: {error}");
    match error {
        DscError::InvalidParameter(_) => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}
