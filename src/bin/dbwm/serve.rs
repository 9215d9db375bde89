//! `dbwm serve`: the DSC-compatible HTTP server.

use std::path::PathBuf;
use std::process::ExitCode;

use dbwatermark::server;

use crate::output::{Outcome, internal};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free one).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Folder of the task database (default dbwm-data).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Credentials file: one `AK SK` pair per line, `#` starts a comment.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Configuration file (TOML; see the README).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Runs the server until Ctrl-C or SIGTERM. Bad configuration exits 1, as
/// does any other failure to start.
pub fn run(args: ServeArgs) -> Outcome {
    let mut settings = match &args.config {
        Some(path) => server::ServerConfig::from_file(path).map_err(internal)?,
        None => server::ServerConfig::default(),
    };
    if let Some(l) = args.listen {
        settings.listen = l;
    }
    if let Some(d) = args.data_dir {
        settings.data_dir = d;
    }
    if let Some(c) = args.credentials {
        settings.credentials = Some(c);
    }
    let secrets = server::Secrets::load(&settings).map_err(internal)?;
    if secrets.credentials.is_empty() && secrets.tokens.is_empty() {
        say!(
            "dbwm: warning: no credentials (--credentials FILE, DBWM_AK/DBWM_SK or tokens): every API call will get 401"
        );
    }
    let runtime = tokio::runtime::Runtime::new().map_err(internal)?;
    runtime
        .block_on(server::serve(
            settings,
            secrets,
            |addr| say!("listening on {addr}"),
            server::shutdown_signal(),
        ))
        .map_err(internal)?;
    say!("dbwm: stopped");
    Ok(ExitCode::SUCCESS)
}
