//! The server's configuration: the TOML file of `--config`, the credentials
//! file of `--credentials`, the keyring, and the environment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::WatermarkKey;

/// Errors of the configuration; each names its file and line or setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The TOML file is not valid.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message (line and column).
        message: String,
    },
    /// A line of a credentials or keyring file is not valid.
    #[error("{path}: line {line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A setting is out of range.
    #[error("setting `{setting}`: {reason}")]
    Setting {
        /// The setting.
        setting: &'static str,
        /// Why.
        reason: String,
    },
}

/// Where callbacks may go.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackConfig {
    /// Hosts (names or IP addresses, compared exactly) callbacks may be sent
    /// to; `"*"` allows any. Default: none, so a task with a callback is
    /// rejected until the operator allows its host.
    pub allowed_hosts: Vec<String>,
    /// Attempts after the first. Default 3.
    pub retries: u32,
    /// Delay before the first retry, doubled each time. Default 500 ms.
    pub backoff_ms: u64,
    /// Timeout of one attempt. Default 10 s.
    pub timeout_secs: u64,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            retries: 3,
            backoff_ms: 500,
            timeout_secs: 10,
        }
    }
}

/// A database the server's tasks may read (and, with `write`, create
/// tables in), named in the config as `[connections.NAME]`. Tasks name
/// the connection, never a URL, so a caller cannot point the server at
/// another host. `Debug` never shows a password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// `postgresql://USER@HOST:PORT/DB`, `mysql://USER@HOST:PORT/DB` or
    /// `sqlite://PATH`. A password may be in the URL, in `password_file`,
    /// or where the client library looks (`PGPASSWORD`, `~/.pgpass`,
    /// `MYSQL_PWD`).
    pub url: String,
    /// A file whose first line is the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Whether embedding tasks may create target tables here. Default
    /// false: a connection is a source only.
    #[serde(default)]
    pub write: bool,
    /// Whether tasks may read it through a query of their own (read-only,
    /// as every task's source) rather than only by table name. Default
    /// false.
    #[serde(default)]
    pub queries: bool,
}

impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("url", &crate::db::redact(&self.url))
            .field("password_file", &self.password_file)
            .field("write", &self.write)
            .field("queries", &self.queries)
            .finish()
    }
}

/// The settings of `dbwm serve`, as in the `--config` TOML file (every key
/// optional; command-line flags override the file). `Debug` shows how many
/// tokens there are, never the tokens.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Folder of the task database. Default `dbwm-data`.
    pub data_dir: PathBuf,
    /// The credentials file: one `AK SK` pair per line, `#` comments.
    pub credentials: Option<PathBuf>,
    /// Tokens accepted in `X-Auth-Token` (any project).
    pub tokens: Vec<String>,
    /// The keyring file: one `NAME KEY` per line (the key is the rest of
    /// the line), `#` comments. Tasks name a key from it.
    pub keyring: Option<PathBuf>,
    /// Whether a task may carry a raw `watermark_key` (kept in memory only;
    /// such a task fails if the server restarts before it ends). Default
    /// false.
    pub allow_raw_task_keys: bool,
    /// Folder that task file addresses are relative to. Default `.`.
    pub files_root: PathBuf,
    /// Largest request body. Default 64 MiB.
    pub body_limit_bytes: usize,
    /// Time limit of an embed or extract request. Default 120 s.
    pub request_timeout_secs: u64,
    /// Unfinished tasks (all projects) beyond which submissions get 429.
    /// Default 1000.
    pub queue_capacity: usize,
    /// Tasks run at once. Default 2.
    pub workers: usize,
    /// Files of one task extracted at once. Default 2.
    pub files_in_parallel: usize,
    /// Largest accepted difference between `X-Sdk-Date` and the server's
    /// clock. Default 900 s.
    pub max_clock_skew_secs: u64,
    /// Time a client has to send a request's headers, and the longest an
    /// idle keep-alive connection stays open. Default 10 s.
    pub header_read_timeout_secs: u64,
    /// Connections served at once; beyond it, new connections wait in the
    /// listen backlog until one closes. Default 512 (below the usual
    /// 1,024-descriptor limit).
    pub max_connections: usize,
    /// Finished tasks (Success, Failed, Cancel) older than this, counted
    /// from when they ended, are deleted with their file results. Default
    /// 30 days; 0 keeps them forever.
    pub finished_task_retention_secs: u64,
    /// Callbacks.
    pub callbacks: CallbackConfig,
    /// The databases tasks may use, by name.
    pub connections: std::collections::BTreeMap<String, ConnectionConfig>,
    /// The registry of issued copies (JSON lines, as `dbwm embed
    /// --register` writes): every embedding task appends its copy's
    /// record, and extraction tasks test what they read against it.
    pub registry: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("dbwm-data"),
            credentials: None,
            tokens: Vec::new(),
            keyring: None,
            allow_raw_task_keys: false,
            files_root: PathBuf::from("."),
            body_limit_bytes: 64 << 20,
            request_timeout_secs: 120,
            queue_capacity: 1000,
            workers: 2,
            files_in_parallel: 2,
            max_clock_skew_secs: 900,
            header_read_timeout_secs: 10,
            max_connections: 512,
            finished_task_retention_secs: 30 * 24 * 3600,
            callbacks: CallbackConfig::default(),
            connections: Default::default(),
            registry: None,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("credentials", &self.credentials)
            .field("tokens", &self.tokens.len())
            .field("keyring", &self.keyring)
            .field("allow_raw_task_keys", &self.allow_raw_task_keys)
            .field("files_root", &self.files_root)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("queue_capacity", &self.queue_capacity)
            .field("workers", &self.workers)
            .field("files_in_parallel", &self.files_in_parallel)
            .field("max_clock_skew_secs", &self.max_clock_skew_secs)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .field("max_connections", &self.max_connections)
            .field("callbacks", &self.callbacks)
            .field("connections", &self.connections)
            .field("registry", &self.registry)
            .finish()
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })
}

impl ServerConfig {
    /// Reads a TOML configuration file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`] or [`ConfigError::Toml`] (unknown keys included).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(&read(path)?).map_err(|e| ConfigError::Toml {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Checks the settings that must be positive.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Setting`] naming the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (setting, value) in [
            ("workers", self.workers),
            ("files_in_parallel", self.files_in_parallel),
            ("queue_capacity", self.queue_capacity),
            ("body_limit_bytes", self.body_limit_bytes),
            ("request_timeout_secs", self.request_timeout_secs as usize),
            (
                "header_read_timeout_secs",
                self.header_read_timeout_secs as usize,
            ),
            ("max_connections", self.max_connections),
        ] {
            if value == 0 {
                return Err(ConfigError::Setting {
                    setting,
                    reason: "must be at least 1".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The request time limit.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// Secrets that must never be printed: `Debug` shows only names.
#[derive(Clone, Default)]
pub struct Secrets {
    /// AK → SK.
    pub credentials: HashMap<String, String>,
    /// Accepted `X-Auth-Token` values.
    pub tokens: Vec<String>,
    /// Key name → prepared key.
    pub keyring: HashMap<String, WatermarkKey>,
    /// Connection name → its database (password included).
    pub connections: HashMap<String, Connection>,
}

/// A configured database, ready to open.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The URL, password included (its `Debug` and `Display` redact it).
    pub url: crate::db::DbUrl,
    /// Whether tasks may create tables in it.
    pub write: bool,
    /// Whether tasks may read it through queries.
    pub queries: bool,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut aks: Vec<&String> = self.credentials.keys().collect();
        aks.sort();
        let mut keys: Vec<&String> = self.keyring.keys().collect();
        keys.sort();
        let mut connections: Vec<&String> = self.connections.keys().collect();
        connections.sort();
        f.debug_struct("Secrets")
            .field("access_keys", &aks)
            .field("tokens", &self.tokens.len())
            .field("keyring", &keys)
            .field("connections", &connections)
            .finish()
    }
}

/// `(first word, rest of the line)` of each non-blank, non-comment line.
fn pairs(path: &Path, text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |reason| ConfigError::Line {
            path: path.to_owned(),
            line: i + 1,
            reason,
        };
        let (a, b) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| fail("expected two fields"))?;
        let b = b.trim();
        if b.is_empty() {
            return Err(fail("expected two fields"));
        }
        out.push((a.to_owned(), b.to_owned()));
    }
    Ok(out)
}

impl Secrets {
    /// Loads the credentials file, the keyring file and the environment:
    /// `DBWM_AK` with `DBWM_SK` adds a credential, `DBWM_AUTH_TOKEN` a
    /// token, `DBWM_KEY` the keyring entry `default`.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of the first bad file or line.
    pub fn load(config: &ServerConfig) -> Result<Self, ConfigError> {
        Self::load_with(config, |name| std::env::var(name).ok())
    }

    /// [`Secrets::load`] with the environment read through `env`. An empty
    /// or whitespace-only secret from any source (token, AK, SK, key) is an
    /// error: it would be a credential anyone can send.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of the first bad file, line or secret.
    pub fn load_with(
        config: &ServerConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let filled = |setting: &'static str, value: String| {
            if value.trim().is_empty() {
                Err(ConfigError::Setting {
                    setting,
                    reason: "is empty or only whitespace; refusing to start with a secret anyone can send".to_owned(),
                })
            } else {
                Ok(value)
            }
        };
        let mut secrets = Self {
            tokens: config
                .tokens
                .iter()
                .map(|t| filled("tokens", t.clone()))
                .collect::<Result<_, _>>()?,
            ..Self::default()
        };
        if let Some(path) = &config.credentials {
            for (ak, sk) in pairs(path, &read(path)?)? {
                if sk.contains(char::is_whitespace) {
                    return Err(ConfigError::Setting {
                        setting: "credentials",
                        reason: format!("{}: the SK of `{ak}` contains spaces", path.display()),
                    });
                }
                secrets.credentials.insert(ak, sk);
            }
        }
        match (env("DBWM_AK"), env("DBWM_SK")) {
            (Some(ak), Some(sk)) => {
                secrets
                    .credentials
                    .insert(filled("DBWM_AK", ak)?, filled("DBWM_SK", sk)?);
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Setting {
                    setting: "DBWM_AK",
                    reason: "DBWM_AK and DBWM_SK must be set together".to_owned(),
                });
            }
            (None, None) => {}
        }
        if let Some(token) = env("DBWM_AUTH_TOKEN") {
            secrets.tokens.push(filled("DBWM_AUTH_TOKEN", token)?);
        }
        if let Some(path) = &config.keyring {
            for (name, key) in pairs(path, &read(path)?)? {
                let key = WatermarkKey::new(&key).map_err(|_| ConfigError::Setting {
                    setting: "keyring",
                    reason: format!("{}: key `{name}` is empty", path.display()),
                })?;
                secrets.keyring.insert(name, key);
            }
        }
        if let Some(key) = env("DBWM_KEY") {
            let key =
                WatermarkKey::new(&filled("DBWM_KEY", key)?).map_err(|_| ConfigError::Setting {
                    setting: "DBWM_KEY",
                    reason: "is empty".to_owned(),
                })?;
            secrets.keyring.entry("default".to_owned()).or_insert(key);
        }
        for (name, c) in &config.connections {
            secrets
                .connections
                .insert(name.clone(), connection(name, c)?);
        }
        Ok(secrets)
    }
}

/// Checks a configured connection and reads its password file.
fn connection(name: &str, c: &ConnectionConfig) -> Result<Connection, ConfigError> {
    let bad = |reason: String| ConfigError::Setting {
        setting: "connections",
        reason: format!("`{name}`: {reason}"),
    };
    if name.is_empty() || name.chars().any(|c| c.is_control() || c == ':') {
        return Err(bad(
            "a connection name must not be empty or hold `:` or control characters".to_owned(),
        ));
    }
    let url = match crate::db::DbUrl::parse(&c.url) {
        Some(Ok(url)) => url,
        Some(Err(e)) => return Err(bad(e.to_string())),
        None => {
            return Err(bad(format!(
                "`{}` is not a postgresql://, mysql:// or sqlite:// URL",
                crate::db::redact(&c.url)
            )));
        }
    };
    let url = match &c.password_file {
        None => url,
        Some(path) => {
            let text = read(path)?;
            let password = text.lines().next().unwrap_or("");
            if password.is_empty() {
                return Err(bad(format!(
                    "password_file {}: the first line is empty",
                    path.display()
                )));
            }
            url.with_password(password)
                .map_err(|e| bad(e.to_string()))?
        }
    };
    Ok(Connection {
        url,
        write: c.write,
        queries: c.queries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_blank_secrets_from_the_environment_or_config_refuse_to_start() {
        let config = ServerConfig::default();
        for (var, value) in [
            ("DBWM_AUTH_TOKEN", ""),
            ("DBWM_AUTH_TOKEN", "  "),
            ("DBWM_SK", ""),
            ("DBWM_SK", "\t"),
            ("DBWM_AK", " "),
            ("DBWM_KEY", " "),
        ] {
            let env = |name: &str| match name {
                n if n == var => Some(value.to_owned()),
                "DBWM_AK" => Some("ak".to_owned()),
                "DBWM_SK" => Some("sk".to_owned()),
                _ => None,
            };
            let e = Secrets::load_with(&config, env).unwrap_err().to_string();
            assert!(
                e.contains(var) && e.contains("empty"),
                "{var}={value:?}: {e}"
            );
        }
        let blank: ServerConfig = toml::from_str("tokens = [\"\"]").unwrap();
        assert!(Secrets::load_with(&blank, |_| None).is_err());
        let half = |n: &str| (n == "DBWM_SK").then(|| "sk".to_owned());
        assert!(Secrets::load_with(&config, half).is_err());
        let fine = Secrets::load_with(&config, |n| Some(format!("{n}-value"))).unwrap();
        assert_eq!(fine.tokens, ["DBWM_AUTH_TOKEN-value"]);
    }

    #[test]
    fn a_config_file_overrides_defaults_and_rejects_unknown_keys() {
        let c: ServerConfig = toml::from_str(
            "workers = 4\nfiles_root = \"leaks\"\n[callbacks]\nallowed_hosts = [\"127.0.0.1\"]\n",
        )
        .unwrap();
        assert_eq!(c.workers, 4);
        assert_eq!(c.files_root, PathBuf::from("leaks"));
        assert_eq!(c.callbacks.allowed_hosts, ["127.0.0.1"]);
        assert_eq!(c.callbacks.retries, 3);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(toml::from_str::<ServerConfig>("wrokers = 4").is_err());
        let with_token: ServerConfig = toml::from_str("tokens = [\"tok-secret\"]").unwrap();
        assert!(!format!("{with_token:?}").contains("tok-secret"));
    }

    #[test]
    fn credentials_lines_are_parsed_and_debug_hides_secrets() {
        let p = Path::new("creds");
        let got = pairs(p, "# comment\nAK1 SK1\n\n  AK2\tSK2  \n").unwrap();
        assert_eq!(
            got,
            [("AK1".into(), "SK1".into()), ("AK2".into(), "SK2".into())]
        );
        let err = pairs(p, "AK1 SK1\nlonely\n").unwrap_err();
        assert_eq!(err.to_string(), "creds: line 2: expected two fields");
        let url = crate::db::DbUrl::parse("postgresql://app:db-secret@h/d").unwrap();
        let s = Secrets {
            credentials: got.into_iter().collect(),
            tokens: vec!["tok-secret".into()],
            keyring: HashMap::new(),
            connections: HashMap::from([(
                "shop".to_owned(),
                Connection {
                    url: url.unwrap(),
                    write: false,
                    queries: false,
                },
            )]),
        };
        let debug = format!("{s:?}");
        assert!(debug.contains("AK1") && !debug.contains("SK1") && !debug.contains("tok-secret"));
        assert!(
            debug.contains("shop") && !debug.contains("db-secret"),
            "{debug}"
        );
    }

    #[test]
    fn connections_are_checked_at_start_and_take_their_password_from_a_file() {
        let dir = std::env::temp_dir().join(format!("dbwm-conn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("pw");
        std::fs::write(&secret, "s3cr:t/pw\nignored\n").unwrap();
        let text = format!(
            "[connections.shop]\nurl = \"postgresql://app@db.local:5432/shop\"\npassword_file = \"{}\"\nwrite = true\n",
            secret.display()
        );
        let config: ServerConfig = toml::from_str(&text).unwrap();
        assert!(!format!("{config:?}").contains("s3cr"));
        let secrets = Secrets::load_with(&config, |_| None).unwrap();
        let shop = &secrets.connections["shop"];
        assert!(shop.write && !shop.queries);
        assert_eq!(
            shop.url.to_string(),
            "postgresql://app:***@db.local:5432/shop"
        );
        assert!(
            shop.url
                .secret_text()
                .contains("app:s3cr%3At%2Fpw@db.local")
        );
        assert!(!format!("{secrets:?}").contains("s3cr"));
        for (toml_text, expected) in [
            (
                "[connections.x]\nurl = \"orders.csv\"",
                "not a postgresql://",
            ),
            ("[connections.x]\nurl = \"sqlite://\"", "sqlite://PATH"),
            ("[connections.\"a:b\"]\nurl = \"sqlite://a.db\"", "`:`"),
            (
                "[connections.x]\nurl = \"mysql://h/db\"\npassword_file = \"PW\"",
                "user name",
            ),
        ] {
            let toml_text = toml_text.replace("PW", &secret.display().to_string());
            let config: ServerConfig = toml::from_str(&toml_text).unwrap();
            let e = Secrets::load_with(&config, |_| None)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("connections") && e.contains(expected),
                "{toml_text}: {e}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
