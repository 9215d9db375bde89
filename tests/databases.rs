//! Database tables as sources and targets, against a real PostgreSQL server
//! and SQLite files.
//!
//! The PostgreSQL tests use `DBWM_TEST_PG_URL` when it is set; otherwise
//! they start a private server from the PostgreSQL binaries on this machine
//! (`initdb`, `postgres`; as the `postgres` user when run as root) on a free
//! loopback port, which stops when the test process ends. Without the
//! binaries they say so and pass, unless `DBWM_REQUIRE_DATABASES=1` (as in
//! CI), where that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dbwatermark::db::{self, DbUrl, Relation};
use dbwatermark::files;

use crate::support::TempDir;

const KEY: &str = "database tests: a long random secret";

fn dbwm(args: &[&str]) -> Output {
    crate::support::dbwm_keyed(KEY, args)
}

/// `dbwm embed` from `table` at `from` into a new table `output` at `to`.
fn embed_table(
    content: &str,
    from: &str,
    table: &str,
    to: &str,
    output: &str,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "embed",
        "--content",
        content,
        from,
        "--table",
        table,
        "-o",
        to,
        "--output-table",
        output,
    ];
    args.extend_from_slice(extra);
    dbwm(&args)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ---------------------------------------------------------------------
// A private PostgreSQL server.

struct Pg {
    url: String,
    password: String,
    /// The CA that signed the server's certificate, when it has TLS.
    ca: Option<PathBuf>,
    /// A CA that signed nothing of it.
    other_ca: Option<PathBuf>,
}

static PG: OnceLock<Option<Pg>> = OnceLock::new();

/// The test server, or `None` (with a message) when there is none.
fn postgres() -> Option<&'static Pg> {
    let pg = PG.get_or_init(start_postgres).as_ref();
    if pg.is_none() {
        let why = "no PostgreSQL server binaries (initdb, postgres) found in \
                   /usr/lib/postgresql/*/bin or on PATH, and DBWM_TEST_PG_URL is not set";
        if std::env::var("DBWM_REQUIRE_DATABASES").as_deref() == Ok("1") {
            panic!("{why}");
        }
        eprintln!("skipping a PostgreSQL test: {why}");
    }
    pg
}

fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists() && p.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop().or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .filter_map(|d| std::fs::canonicalize(d.join("initdb")).ok())
                .filter_map(|p| p.parent().map(Path::to_path_buf))
                .find(|d| d.join("postgres").exists())
        })
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// `program args` run as the `postgres` user when we are root (PostgreSQL
/// refuses to run as root).
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start_postgres() -> Option<Pg> {
    if let Ok(url) = std::env::var("DBWM_TEST_PG_URL") {
        let password = DbUrl::parse(&url)
            .and_then(Result::ok)
            .map(|_| {
                url.split(':')
                    .nth(2)
                    .and_then(|p| p.split('@').next())
                    .unwrap_or("")
                    .to_owned()
            })
            .unwrap_or_default();
        return Some(Pg {
            url,
            password,
            ca: None,
            other_ca: None,
        });
    }
    let bin = pg_bin()?;
    let dir = std::env::temp_dir().join(format!("dbwm-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok()?;
    let password = format!("pw-{}-secret", std::process::id());
    std::fs::write(dir.join("pw"), &password).ok()?;
    let tls = make_certificates(&dir);
    if is_root() {
        Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .status()
            .ok()?;
    }
    let init = as_server_user(&bin.join("initdb"))
        .arg("-D")
        .arg(dir.join("data"))
        .args([
            "-U",
            "dbwm",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
        ])
        .arg(format!("--pwfile={}", dir.join("pw").display()))
        .output()
        .ok()?;
    assert!(init.status.success(), "initdb failed: {}", text(&init));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    // The server stops (and its folder goes) when this test process ends.
    let script = format!(
        "'{postgres}' -D '{data}' -c listen_addresses=127.0.0.1 -p {port} -k '{dir}' \
         -c fsync=off -c full_page_writes=off -c synchronous_commit=off {ssl} > '{dir}/log' 2>&1 & \
         pid=$!; while [ -d /proc/{me} ]; do sleep 0.5; done; kill -INT $pid; wait $pid; rm -rf '{dir}'",
        postgres = bin.join("postgres").display(),
        data = dir.join("data").display(),
        dir = dir.display(),
        me = std::process::id(),
        ssl = if tls {
            format!(
                "-c ssl=on -c ssl_cert_file='{0}/server.crt' -c ssl_key_file='{0}/server.key'",
                dir.display()
            )
        } else {
            String::new()
        },
    );
    as_server_user(Path::new("/bin/sh"))
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let admin = format!("host=127.0.0.1 port={port} user=dbwm password={password} dbname=postgres");
    let start = Instant::now();
    let mut client = loop {
        match postgres::Client::connect(&admin, postgres::NoTls) {
            Ok(c) => break c,
            Err(e) if start.elapsed() > Duration::from_secs(60) => {
                panic!("the test PostgreSQL server did not start: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    client.batch_execute("CREATE DATABASE dbwm").ok()?;
    Some(Pg {
        url: format!("postgresql://dbwm:{password}@127.0.0.1:{port}/dbwm"),
        password,
        ca: tls.then(|| dir.join("ca.pem")),
        other_ca: tls.then(|| dir.join("other-ca.pem")),
    })
}

/// A test CA and a server certificate it signed for 127.0.0.1 and
/// localhost (`server.crt`, `server.key`), plus another CA, in `dir`, made
/// with the `openssl` program; false when there is none.
fn make_certificates(dir: &Path) -> bool {
    let Some(openssl) = find_program("openssl") else {
        eprintln!("no openssl program: the test PostgreSQL server runs without TLS");
        return false;
    };
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let steps: [&[&str]; 4] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3",
            "-subj",
            "/CN=dbwm test CA",
        ],
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "other-ca.key",
            "-out",
            "other-ca.pem",
            "-days",
            "3",
            "-subj",
            "/CN=dbwm other CA",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "3",
            "-extfile",
            "ext",
        ],
    ];
    for args in steps {
        let out = Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    true
}

/// The first value of the first column of `query` at `url`, as text, or
/// the error of connecting.
fn first_text(url: &str, query: &str) -> Result<String, String> {
    let url = DbUrl::parse(url).unwrap().unwrap();
    let source = db::open(&url, &Relation::Query(query.into()), 10).map_err(|e| e.to_string())?;
    let mut reader = source.reader;
    let batch = reader.next().unwrap().unwrap();
    let text = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>();
    Ok(text.expect("a text column").value(0).to_owned())
}

#[test]
fn postgres_tls_is_used_as_sslmode_asks_and_a_wrong_ca_is_refused() {
    let Some(pg) = postgres() else { return };
    let (Some(ca), Some(other)) = (&pg.ca, &pg.other_ca) else {
        eprintln!("skipping: the test PostgreSQL server has no TLS (no openssl program)");
        return;
    };
    let encrypted = |params: &str| {
        first_text(
            &format!("{}?{params}", pg.url),
            "SELECT ssl::text AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        )
    };
    let ca = ca.display();
    assert_eq!(
        encrypted(&format!("sslmode=verify-full&sslrootcert={ca}")).unwrap(),
        "true"
    );
    assert_eq!(
        encrypted(&format!("sslmode=verify-ca&sslrootcert={ca}")).unwrap(),
        "true"
    );
    assert_eq!(encrypted("sslmode=require").unwrap(), "true");
    assert_eq!(encrypted("sslmode=prefer").unwrap(), "true");
    assert_eq!(encrypted("sslmode=disable").unwrap(), "false");
    for bad in [
        format!("sslmode=verify-full&sslrootcert={}", other.display()),
        format!("sslmode=require&sslrootcert={}", other.display()),
        "sslmode=verify-full".to_owned(),
    ] {
        let e = encrypted(&bad).unwrap_err();
        assert!(
            e.starts_with("cannot connect to") && e.contains("certificate"),
            "{bad}: {e}"
        );
        assert!(!e.contains(&pg.password), "{e}");
    }
    let e = encrypted("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem").unwrap_err();
    assert!(e.contains("sslrootcert /nonexistent/ca.pem"), "{e}");
}

fn client(pg: &Pg) -> postgres::Client {
    postgres::Client::connect(&pg.url, postgres::NoTls).expect("connects")
}

/// Every row of `table`, each column as PostgreSQL's text, ordered by `id`.
fn rows_as_text(
    c: &mut postgres::Client,
    table: &str,
    columns: &[&str],
) -> Vec<Vec<Option<String>>> {
    let select: Vec<String> = columns.iter().map(|c| format!("{c}::text")).collect();
    c.query(
        &format!("SELECT {} FROM {table} ORDER BY id", select.join(", ")),
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (0..columns.len()).map(|i| r.get(i)).collect())
    .collect()
}

fn column_types(c: &mut postgres::Client, table: &str) -> Vec<(String, String, bool)> {
    c.query(
        "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute \
         WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        &[&table],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// A table of every mapped type, with NULLs and awkward values.
fn create_all_types(c: &mut postgres::Client, table: &str, rows: i32) {
    c.batch_execute(&format!(
        "CREATE TABLE {table} (
            id bigint PRIMARY KEY, small int2, qty int4 NOT NULL, big int8,
            ratio float4, price float8, amount numeric(12,2), exact numeric, wide numeric(50,10),
            label char(3), name varchar(40), note text, flag boolean, day date,
            at timestamp, at_tz timestamptz, u uuid, doc jsonb, tags int4[], raw bytea);
         INSERT INTO {table}
         SELECT i, (i % 300)::int2, 1 + i * 37 % 900, i::int8 * 1000003,
                (i % 1000) / 8.0, CASE WHEN i % 97 = 0 THEN 'NaN'::float8 WHEN i % 89 = 0 THEN 'Infinity' ELSE 10 + (i * 7919 % 100000) / 100.0 END,
                round((5 + i * 7919 % 100000 / 100.0)::numeric, 2),
                CASE WHEN i % 50 = 0 THEN NULL ELSE (i * 1.5)::numeric(20,2)::numeric END,
                (i::numeric * 12345.6789012345)::numeric(50,10),
                (ARRAY['AA ', 'UA ', 'DL '])[1 + i % 3], 'name ' || i,
                CASE WHEN i % 40 = 0 THEN NULL WHEN i % 41 = 0 THEN '' ELSE E'note\\twith tab, back\\\\slash and\\nnewline ' || i END,
                i % 2 = 0, date '2020-01-01' + i % 1500, timestamp '2020-01-01 00:00:00' + i * interval '61 seconds',
                timestamptz '2020-01-01 00:00:00+00' + i * interval '1 minute',
                md5(i::text)::uuid, jsonb_build_object('i', i, 's', 'x y'), ARRAY[i, i + 1], decode(md5(i::text), 'hex')
         FROM generate_series(1, {rows}) AS i;"
    ))
    .unwrap();
}

#[test]
fn postgres_every_mapped_type_round_trips_and_only_measures_change() {
    let Some(pg) = postgres() else { return };
    let mut c = client(pg);
    create_all_types(&mut c, "types_src", 20_000);
    let out = embed_table(
        "acme->pg-1",
        &pg.url,
        "types_src",
        &pg.url,
        "types_copy",
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        column_types(&mut c, "types_src"),
        column_types(&mut c, "types_copy")
    );
    let key: Vec<String> = c
        .query(
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
             AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'types_copy'::regclass AND i.indisprimary",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(key, ["id"]);
    // Codes, labels, flags, calendar fields and passed-through types are
    // byte for byte the source's.
    let same = [
        "id", "label", "flag", "day", "at_tz", "u", "doc", "tags", "raw",
    ];
    let (a, b) = (
        rows_as_text(&mut c, "types_src", &same),
        rows_as_text(&mut c, "types_copy", &same),
    );
    assert_eq!(a.len(), b.len());
    let differ: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).take(3).collect();
    assert!(differ.is_empty(), "rows differ: {differ:?}");
    // NULLs stay NULL and empty text stays empty.
    let nulls = |c: &mut postgres::Client, t: &str| -> (i64, i64) {
        let r = c
            .query_one(&format!("SELECT count(*) FILTER (WHERE note IS NULL), count(*) FILTER (WHERE note = '') FROM {t}"), &[])
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(nulls(&mut c, "types_src"), nulls(&mut c, "types_copy"));
    // Marked numbers move by one step of their scale, inside their range,
    // and NUMERIC keeps every value's scale exactly.
    let r = c
        .query_one(
            "SELECT count(*) FILTER (WHERE a.amount <> b.amount),
                    max(abs(a.amount - b.amount))::text,
                    count(*) FILTER (WHERE scale(a.exact) <> scale(b.exact)),
                    count(*) FILTER (WHERE a.exact <> b.exact),
                    count(*) FILTER (WHERE a.qty <> b.qty),
                    count(*) FILTER (WHERE a.price::text IN ('NaN', 'Infinity') AND a.price::text <> b.price::text),
                    max(abs(extract(epoch FROM a.at - b.at)))::text,
                    (SELECT min(amount) FROM types_src) <= min(b.amount) AND max(b.amount) <= (SELECT max(amount) FROM types_src)
             FROM types_src a JOIN types_copy b USING (id)",
            &[],
        )
        .unwrap();
    let amount_changed: i64 = r.get(0);
    assert!(
        amount_changed > 100,
        "amount changed in {amount_changed} rows"
    );
    assert_eq!(r.get::<_, String>(1), "0.01", "one step of numeric(12,2)");
    assert_eq!(r.get::<_, i64>(2), 0, "NUMERIC scales kept");
    assert!(r.get::<_, i64>(3) > 100, "unconstrained numeric marked");
    assert!(r.get::<_, i64>(4) > 100, "qty marked");
    assert_eq!(r.get::<_, i64>(5), 0, "NaN and Infinity kept");
    assert_eq!(
        r.get::<_, String>(6),
        "1.000000",
        "timestamps off whole minutes move by a second"
    );
    assert!(r.get::<_, bool>(7), "amount stays in its range");
}

#[test]
fn postgres_defaults_the_key_to_the_primary_key_and_a_query_needs_pk() {
    let Some(pg) = postgres() else { return };
    let mut c = client(pg);
    create_all_types(&mut c, "pk_src", 5_000);
    let query = dbwm(&[
        "embed",
        "--content",
        "c",
        &pg.url,
        "--query",
        "SELECT id, qty, amount FROM pk_src",
        "-o",
        &pg.url,
        "--output-table",
        "pk_query_copy",
    ]);
    assert_eq!(query.status.code(), Some(2), "{}", text(&query));
    assert!(text(&query).contains("no primary key"), "{}", text(&query));
    let with_pk = dbwm(&[
        "embed",
        "--content",
        "c",
        &pg.url,
        "--query",
        "SELECT id, qty, amount FROM pk_src WHERE id <= 4000",
        "--pk",
        "id",
        "-o",
        &pg.url,
        "--output-table",
        "pk_query_copy",
    ]);
    assert!(with_pk.status.success(), "{}", text(&with_pk));
    let n: i64 = c
        .query_one("SELECT count(*) FROM pk_query_copy", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 4000);
    // A query's columns keep their types (without a type modifier).
    let types = column_types(&mut c, "pk_query_copy");
    assert_eq!(types[1].1, "integer");
    assert_eq!(types[2].1, "numeric");
}

#[test]
fn postgres_an_existing_target_is_refused_unless_replace_is_asked() {
    let Some(pg) = postgres() else { return };
    let mut c = client(pg);
    create_all_types(&mut c, "exists_src", 2_000);
    c.batch_execute("CREATE TABLE exists_copy (keep int); INSERT INTO exists_copy VALUES (7)")
        .unwrap();
    let args = |replace: bool| {
        let mut a = vec![
            "embed",
            "--content",
            "c",
            pg.url.as_str(),
            "--table",
            "exists_src",
            "-o",
            pg.url.as_str(),
            "--output-table",
            "exists_copy",
        ];
        if replace {
            a.push("--replace");
        }
        dbwm(&a)
    };
    let refused = args(false);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("already exists"),
        "{}",
        text(&refused)
    );
    let kept: i32 = c
        .query_one("SELECT keep FROM exists_copy", &[])
        .unwrap()
        .get(0);
    assert_eq!(kept, 7, "the existing table is untouched");
    let replaced = args(true);
    assert!(replaced.status.success(), "{}", text(&replaced));
    let n: i64 = c
        .query_one("SELECT count(*) FROM exists_copy", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 2_000);
}

/// Whether `seen` holds before `child` exits (polled for up to 60 s).
fn seen_before_exit(child: &mut std::process::Child, mut seen: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if seen() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn postgres_a_killed_embed_leaves_no_table() {
    let Some(pg) = postgres() else { return };
    let mut c = client(pg);
    c.batch_execute(
        "CREATE TABLE killed_src (id bigint PRIMARY KEY, qty int, amount numeric(12,2), note text);
         INSERT INTO killed_src SELECT i, i * 37 % 900, (i * 7919 % 100000) / 100.0, 'note number ' || i
         FROM generate_series(1::bigint, 1500000) i;",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbwm"))
        .args([
            "embed",
            "--content",
            "c",
            &pg.url,
            "--table",
            "killed_src",
            "-o",
            &pg.url,
            "--output-table",
            "killed_copy",
        ])
        .env("DBWM_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the copy into the new table is under way, then kill.
    let seen = seen_before_exit(&mut child, || {
        let copying: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbwm' \
                 AND query LIKE 'COPY \"killed_copy\" FROM STDIN%'",
                &[],
            )
            .unwrap()
            .get(0);
        copying > 0
    });
    assert!(seen, "the embed was seen copying before it ended");
    child.kill().unwrap();
    child.wait().unwrap();
    // The server ends the killed session's transaction: no table, ever.
    let start = Instant::now();
    loop {
        let open: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbwm'",
                &[],
            )
            .unwrap()
            .get(0);
        if open == 0 || start.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exists: bool = c
        .query_one("SELECT to_regclass('killed_copy') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    assert!(!exists, "a killed embed left a table");
}

#[test]
fn postgres_a_password_never_appears_in_output_or_the_registry() {
    let Some(pg) = postgres() else { return };
    let mut c = client(pg);
    create_all_types(&mut c, "secret_src", 3_000);
    let dir = TempDir::new("db-secret");
    let registry = dir.path("issued.jsonl");
    let ok = embed_table(
        "acme->p",
        &pg.url,
        "secret_src",
        &pg.url,
        "secret_copy",
        &["--register", registry.to_str().unwrap(), "--recipient", "P"],
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let missing = dbwm(&["extract", &pg.url, "--table", "no_such_table"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).contains("no_such_table"),
        "{}",
        text(&missing)
    );
    let wrong = pg.url.replace(&pg.password, "wrong-password");
    let refused = dbwm(&["extract", &wrong, "--table", "secret_copy"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let extracted = dbwm(&["extract", &pg.url, "--table", "secret_copy"]);
    assert!(extracted.status.success(), "{}", text(&extracted));
    let record = std::fs::read_to_string(&registry).unwrap();
    let all = [
        text(&ok),
        text(&missing),
        text(&refused),
        text(&extracted),
        record,
    ];
    for output in &all {
        assert!(!output.contains(&pg.password), "{output}");
        assert!(!output.contains("wrong-password"), "{output}");
    }
    // Those that name the database show it redacted.
    for output in [&all[0], &all[2], &all[3], &all[4]] {
        assert!(output.contains("dbwm:***@127.0.0.1"), "{output}");
    }
}

#[test]
fn postgres_a_leak_in_a_table_is_traced_to_its_copy() {
    let Some(pg) = postgres() else { return };
    let mut c = client(pg);
    create_all_types(&mut c, "leak_src", 30_000);
    let dir = TempDir::new("db-leak");
    let registry = dir.path("issued.jsonl");
    for (content, table) in [("acme->a", "leak_copy_a"), ("acme->b", "leak_copy_b")] {
        let out = embed_table(
            content,
            &pg.url,
            "leak_src",
            &pg.url,
            table,
            &["--register", registry.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    c.batch_execute(
        "CREATE TABLE leaked AS SELECT * FROM leak_copy_b WHERE id % 20 = 3 ORDER BY random()",
    )
    .unwrap();
    let out = dbwm(&[
        "extract",
        &pg.url,
        "--table",
        "leaked",
        "--pk",
        "id",
        "--candidates",
        registry.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["identified"][0]["content"], "acme->b", "{report}");
    assert_eq!(report["rows"], 1_500);
}

/// The batches of a whole relation, through the library's own reader.
fn read_all(url: &DbUrl, relation: Relation) -> Vec<arrow_array::RecordBatch> {
    db::open(url, &relation, 8192)
        .unwrap()
        .reader
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn read_file(path: &Path) -> Vec<arrow_array::RecordBatch> {
    files::open(path, &Default::default())
        .unwrap()
        .reader
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn concat(batches: &[arrow_array::RecordBatch]) -> arrow_array::RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), batches).unwrap()
}

#[test]
fn postgres_marks_are_those_of_dbwm_embed_on_a_parquet_export() {
    let Some(pg) = postgres() else { return };
    let mut c = client(pg);
    create_all_types(&mut c, "same_src", 25_000);
    c.batch_execute(
        "ALTER TABLE same_src DROP COLUMN tags, DROP COLUMN raw, DROP COLUMN doc, DROP COLUMN u",
    )
    .unwrap();
    let url = DbUrl::parse(&pg.url).unwrap().unwrap();
    let dir = TempDir::new("db-same");
    // The same rows exported to Parquet (by the library's reader, unmarked).
    let export = dir.path("export.parquet");
    let batches = read_all(&url, Relation::Table("same_src".into()));
    let mut out =
        files::Output::create(&export, &batches[0].schema(), &Default::default()).unwrap();
    for b in &batches {
        out.write(b).unwrap();
    }
    out.finish().unwrap();
    let from_file = dir.path("from-file.parquet");
    let e1 = dbwm(&[
        "embed",
        "--content",
        "acme->same",
        "--pk",
        "id",
        export.to_str().unwrap(),
        "-o",
        from_file.to_str().unwrap(),
    ]);
    assert!(e1.status.success(), "{}", text(&e1));
    let e2 = embed_table("acme->same", &pg.url, "same_src", &pg.url, "same_copy", &[]);
    assert!(e2.status.success(), "{}", text(&e2));
    let file_copy = concat(&read_file(&from_file));
    let table_copy = concat(&read_all(&url, Relation::Table("same_copy".into())));
    assert_eq!(file_copy.schema(), table_copy.schema());
    for (i, f) in file_copy.schema().fields().iter().enumerate() {
        assert_eq!(
            file_copy.column(i),
            table_copy.column(i),
            "column `{}`",
            f.name()
        );
    }
    // And they differ from the export: marks were made.
    assert_ne!(concat(&batches).column(2), table_copy.column(2));
}

#[test]
fn a_database_url_needs_a_table_or_a_query_and_a_file_takes_neither() {
    let out = dbwm(&["extract", "sqlite:///tmp/none.db", "--pk", "id"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("--table NAME or --query SQL"),
        "{}",
        text(&out)
    );
    let out = dbwm(&["extract", "leak.csv", "--table", "t", "--pk", "id"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("not from a file"), "{}", text(&out));
}

// ---------------------------------------------------------------------
// A private MariaDB (or MySQL) server.

static MY: OnceLock<Option<String>> = OnceLock::new();

/// The test server's URL, or `None` (with a message) when there is none.
fn mariadb() -> Option<&'static str> {
    let url = MY.get_or_init(start_mariadb).as_deref();
    if url.is_none() {
        let why = "no MariaDB server binaries (mariadbd, mariadb-install-db) found on PATH or in \
                   /usr/sbin, and DBWM_TEST_MYSQL_URL is not set";
        if std::env::var("DBWM_REQUIRE_DATABASES").as_deref() == Ok("1") {
            panic!("{why}");
        }
        eprintln!("skipping a MariaDB test: {why}");
    }
    url
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.exists())
}

/// Where the test MariaDB server keeps its data (and its test CA).
fn mariadb_dir() -> PathBuf {
    std::env::temp_dir().join(format!("dbwm-my-{}", std::process::id()))
}

fn start_mariadb() -> Option<String> {
    if let Ok(url) = std::env::var("DBWM_TEST_MYSQL_URL") {
        return Some(url);
    }
    let server = find_program("mariadbd")?;
    let install = find_program("mariadb-install-db")?;
    let client = find_program("mariadb")?;
    let dir = mariadb_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok()?;
    let tls = if make_certificates(&dir) {
        format!(
            "--ssl-cert='{0}/server.crt' --ssl-key='{0}/server.key'",
            dir.display()
        )
    } else {
        String::new()
    };
    let root = is_root();
    if root {
        Command::new("chown")
            .args(["-R", "mysql"])
            .arg(&dir)
            .status()
            .ok()?;
    }
    let user = if root { "--user=mysql" } else { "--user=" };
    let mut init = Command::new(&install);
    init.arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg("--auth-root-authentication-method=normal");
    if root {
        init.arg(user);
    }
    let out = init.output().ok()?;
    assert!(
        out.status.success(),
        "mariadb-install-db failed: {}",
        text(&out)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let script = format!(
        "'{server}' --no-defaults --datadir='{data}' {user} --bind-address=127.0.0.1 --port={port} \
         --socket='{dir}/sock' --innodb-flush-log-at-trx-commit=0 {tls} > '{dir}/log' 2>&1 & \
         pid=$!; while [ -d /proc/{me} ]; do sleep 0.5; done; kill $pid; wait $pid; rm -rf '{dir}'",
        server = server.display(),
        data = dir.join("data").display(),
        dir = dir.display(),
        user = if root { user } else { "" },
        me = std::process::id(),
    );
    Command::new("/bin/sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let password = format!("my-{}-secret", std::process::id());
    let setup = format!(
        "DROP USER IF EXISTS ''@'localhost'; CREATE USER 'dbwm'@'%' IDENTIFIED BY '{password}';
         CREATE USER 'dbwm'@'localhost' IDENTIFIED BY '{password}'; GRANT ALL ON *.* TO 'dbwm'@'%';
         GRANT ALL ON *.* TO 'dbwm'@'localhost'; CREATE DATABASE shop CHARACTER SET utf8mb4;"
    );
    let start = Instant::now();
    loop {
        let out = Command::new(&client)
            .args([
                "--no-defaults",
                "-h",
                "127.0.0.1",
                "-P",
                &port.to_string(),
                "-u",
                "root",
                "-e",
                &setup,
            ])
            .output()
            .ok()?;
        if out.status.success() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "MariaDB did not start: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(format!("mysql://dbwm:{password}@127.0.0.1:{port}/shop"))
}

fn my_sql(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    use mysql::prelude::Queryable;
    let mut conn = mysql::Conn::new(mysql::Opts::from_url(url).unwrap()).unwrap();
    conn.query_drop("SET time_zone = '+00:00'").unwrap();
    let mut out = Vec::new();
    let mut result = conn.query_iter(sql).unwrap();
    while let Some(set) = result.iter() {
        for row in set {
            let row = row.unwrap();
            out.push(
                (0..row.len())
                    .map(|i| match row.as_ref(i) {
                        Some(mysql::Value::Bytes(b)) => {
                            Some(String::from_utf8_lossy(b).into_owned())
                        }
                        Some(mysql::Value::NULL) | None => None,
                        Some(other) => Some(format!("{other:?}")),
                    })
                    .collect(),
            );
        }
    }
    out
}

fn create_my_orders(url: &str, table: &str, rows: u32) {
    my_sql(
        url,
        &format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, carrier CHAR(2) NOT NULL, qty INT,
                amount DECIMAL(12,2), wide DECIMAL(30,10), price DOUBLE, day DATE, at DATETIME(6),
                note VARCHAR(200) CHARACTER SET utf8mb4, legacy VARCHAR(40) CHARACTER SET latin1,
                doc JSON, flag TINYINT(1), big BIGINT UNSIGNED, raw VARBINARY(16));
             INSERT INTO {table} SELECT seq, ELT(1 + seq % 3, 'AA', 'UA', 'DL'), 1 + seq * 37 % 900,
                ROUND(5 + (seq * 7919 % 100000) / 100, 2), seq * 12345.6789012345, (seq * 31 % 100000) / 100.0,
                DATE_ADD('2020-01-01', INTERVAL seq % 1500 DAY), TIMESTAMPADD(SECOND, seq * 61, '2020-01-01 00:00:00'),
                IF(seq % 40 = 0, NULL, CONCAT('a note for row ', seq)), CONCAT('caf\u{e9} ', seq),
                JSON_OBJECT('i', seq), seq % 2, seq * 1000003, UNHEX(MD5(seq))
             FROM seq_1_to_{rows};"
        ),
    );
}

#[test]
fn mariadb_types_round_trip_exactly_and_only_measures_change() {
    let Some(url) = mariadb() else { return };
    create_my_orders(url, "orders", 20_000);
    let out = embed_table("acme->my", url, "orders", url, "orders_copy", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let create = |t: &str| {
        my_sql(url, &format!("SHOW CREATE TABLE {t}"))[0][1]
            .clone()
            .unwrap()
            .replacen(t, "T", 1)
    };
    assert_eq!(create("orders"), create("orders_copy"));
    let r = &my_sql(
        url,
        "SELECT SUM(NOT (a.carrier <=> b.carrier AND a.day <=> b.day AND a.doc <=> b.doc
                    AND a.legacy <=> b.legacy AND a.raw <=> b.raw AND a.flag <=> b.flag)),
                SUM(a.amount <> b.amount), MAX(ABS(a.amount - b.amount)), SUM(a.qty <> b.qty),
                SUM(a.note <> b.note), SUM(a.wide <> b.wide),
                (SELECT MIN(amount) FROM orders) <= MIN(b.amount) AND MAX(b.amount) <= (SELECT MAX(amount) FROM orders),
                (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'orders_copy__dbwm_partial')
         FROM orders a JOIN orders_copy b USING (id)",
    )[0];
    let n = |i: usize| r[i].as_deref().unwrap_or("0").parse::<f64>().unwrap();
    assert_eq!(
        n(0),
        0.0,
        "codes, dates, JSON, latin1 text, bytes and flags kept: {r:?}"
    );
    assert!(n(1) > 100.0 && n(3) > 100.0 && n(4) > 100.0, "{r:?}");
    assert_eq!(r[2].as_deref(), Some("0.01"), "one step of DECIMAL(12,2)");
    assert!(n(5) > 100.0, "DECIMAL(30,10) marked exactly: {r:?}");
    assert_eq!(n(6), 1.0, "amount stays in its range");
    assert_eq!(n(7), 0.0, "no partial table left");
}

#[test]
fn mariadb_refuses_an_existing_target_replaces_when_asked_and_traces_a_leak() {
    let Some(url) = mariadb() else { return };
    create_my_orders(url, "leak_src", 30_000);
    let dir = TempDir::new("db-my-leak");
    let registry = dir.path("issued.jsonl");
    let reg = ["--register", registry.to_str().unwrap()];
    for content in ["acme->my-a", "acme->my-b"] {
        let table = format!("copy_{}", &content[6..].replace('-', "_"));
        let out = embed_table(content, url, "leak_src", url, &table, &reg);
        assert!(out.status.success(), "{}", text(&out));
    }
    let again = embed_table("acme->my-a", url, "leak_src", url, "copy_my_a", &[]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    let replaced = embed_table(
        "acme->my-c",
        url,
        "leak_src",
        url,
        "copy_my_a",
        &["--replace"],
    );
    assert!(replaced.status.success(), "{}", text(&replaced));
    my_sql(
        url,
        "CREATE TABLE leaked AS SELECT * FROM copy_my_b WHERE id % 20 = 3 ORDER BY RAND()",
    );
    let out = dbwm(&[
        "extract",
        url,
        "--table",
        "leaked",
        "--pk",
        "id",
        "--candidates",
        registry.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["identified"][0]["content"], "acme->my-b", "{report}");
    let password = url.split(':').nth(2).unwrap().split('@').next().unwrap();
    assert!(!text(&out).contains(password));
    let found = dbwm(&["extract", url, "--table", "copy_my_a"]);
    let report: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!(
        report["watermarks"][0]["content"], "acme->my-c",
        "replaced: {report}"
    );
}

#[test]
fn mariadb_a_killed_embed_leaves_no_target_and_the_next_run_clears_its_partial_table() {
    let Some(url) = mariadb() else { return };
    create_my_orders(url, "killed_my_src", 400_000);
    let tables = |name: &str| {
        my_sql(
            url,
            &format!(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = '{name}'"
            ),
        )[0][0]
            .clone()
            .unwrap()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbwm"))
        .args([
            "embed",
            "--content",
            "c",
            url,
            "--table",
            "killed_my_src",
            "-o",
            url,
            "--output-table",
            "killed_my",
        ])
        .env("DBWM_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until rows are going into the partial table, then kill.
    let seen = seen_before_exit(&mut child, || tables("killed_my__dbwm_partial") == "1");
    assert!(seen, "the embed was seen writing before it ended");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(tables("killed_my"), "0", "a killed embed left the target");
    // The next run to the same target drops what the killed one left.
    let out = embed_table("acme->again", url, "killed_my_src", url, "killed_my", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(tables("killed_my"), "1");
    assert_eq!(tables("killed_my__dbwm_partial"), "0");
    let rows = my_sql(url, "SELECT COUNT(*) FROM killed_my");
    assert_eq!(rows[0][0].as_deref(), Some("400000"));
}

#[test]
fn mariadb_tls_is_used_as_sslmode_asks_and_a_wrong_ca_is_refused() {
    let Some(url) = mariadb() else { return };
    let (ca, other) = (
        mariadb_dir().join("ca.pem"),
        mariadb_dir().join("other-ca.pem"),
    );
    if !ca.exists() {
        eprintln!("skipping: the test MariaDB server has no TLS (no openssl program)");
        return;
    }
    let cipher = |params: &str| {
        first_text(
            &format!("{url}?{params}"),
            "SELECT variable_value AS cipher FROM information_schema.session_status \
             WHERE variable_name = 'Ssl_cipher'",
        )
    };
    let verified = cipher(&format!("sslmode=verify-full&sslrootcert={}", ca.display())).unwrap();
    assert!(!verified.is_empty(), "no TLS cipher in use");
    assert!(!cipher("sslmode=require").unwrap().is_empty());
    assert_eq!(cipher("sslmode=disable").unwrap(), "");
    let e = cipher(&format!(
        "sslmode=verify-ca&sslrootcert={}",
        other.display()
    ))
    .unwrap_err();
    assert!(e.starts_with("cannot connect to"), "{e}");
    let password = url.split(':').nth(2).unwrap().split('@').next().unwrap();
    assert!(!e.contains(password), "{e}");
}

// ---------------------------------------------------------------------
// SQLite: nothing to install.

#[test]
fn sqlite_round_trip_keeps_declared_types_key_and_unmarked_values() {
    let dir = TempDir::new("db-sqlite-rt");
    let path = dir.path("shop.db");
    crate::support::sqlite_orders(&path, 20_000);
    let url = format!("sqlite://{}", path.display());
    let plan = dbwm(&["plan", &url, "--table", "orders", "--json"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let out = embed_table("acme->lite", &url, "orders", &url, "orders_copy", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let fingerprint = plan["fingerprint"].as_str().unwrap();
    assert!(
        text(&out).contains(&format!("plan {fingerprint}")),
        "the plan dbwm plan showed: {}",
        text(&out)
    );
    assert_eq!(plan["rows"], 20_000);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let schema = |t: &str| -> Vec<(String, String, bool, i64)> {
        let mut s = conn.prepare(&format!("PRAGMA table_info({t})")).unwrap();
        s.query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(5)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(schema("orders"), schema("orders_copy"));
    let same: i64 = conn
        .query_row(
            "SELECT count(*) FROM orders a JOIN orders_copy b USING (id)
             WHERE a.carrier IS b.carrier AND a.day IS b.day AND a.blob IS b.blob",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(same, 20_000);
    let changed: i64 = conn
        .query_row(
            "SELECT count(*) FROM orders a JOIN orders_copy b USING (id) WHERE a.qty <> b.qty",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(changed > 100, "{changed}");
    let out = dbwm(&[
        "extract",
        &url,
        "--query",
        "SELECT * FROM orders_copy WHERE id % 4 = 1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a query needs --pk: {}",
        text(&out)
    );
    let out = dbwm(&[
        "extract",
        &url,
        "--query",
        "SELECT * FROM orders_copy WHERE id % 4 = 1",
        "--pk",
        "id",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["watermarks"][0]["content"], "acme->lite", "{report}");
}

#[test]
fn sqlite_refuses_an_existing_table_and_a_csv_loads_into_a_new_one() {
    let dir = TempDir::new("db-sqlite-csv");
    let path = dir.path("shop.db");
    crate::support::sqlite_orders(&path, 3_000);
    let url = format!("sqlite://{}", path.display());
    let out = embed_table("c", &url, "orders", &url, "orders", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    // Table to CSV, then CSV to a new table.
    let csv = dir.path("orders.csv");
    let out = dbwm(&[
        "embed",
        "--content",
        "c",
        &url,
        "--table",
        "orders",
        "-o",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = dbwm(&[
        "embed",
        "--content",
        "d",
        "--pk",
        "id",
        csv.to_str().unwrap(),
        "-o",
        &url,
        "--output-table",
        "from_csv",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM from_csv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3_000);
    let missing = dbwm(&[
        "extract",
        &format!("sqlite://{}", dir.path("nope.db").display()),
        "--table",
        "t",
        "--pk",
        "id",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).contains("no such database file"),
        "{}",
        text(&missing)
    );
}

// ---------------------------------------------------------------------
// `dbwm serve`'s tasks on PostgreSQL.

#[test]
fn postgres_server_tasks_mark_a_table_into_a_new_one_and_trace_a_leak_of_it() {
    let Some(pg) = postgres() else { return };
    let mut c = client(pg);
    create_all_types(&mut c, "task_src", 12_000);
    let dir = TempDir::new("db-server-task");
    // The password in a file of its own, not in the configured URL.
    let password_file = dir.path("pw");
    std::fs::write(&password_file, format!("{}\n", pg.password)).unwrap();
    let url = pg.url.replacen(&format!(":{}@", pg.password), "@", 1);
    assert!(!url.contains(&pg.password) || pg.password.is_empty());
    let registry = dir.path("issued.jsonl");
    let s = crate::server::start("pg-server-task", |config| {
        config.connections.insert(
            "shop".into(),
            dbwatermark::server::ConnectionConfig {
                url: url.clone(),
                password_file: Some(password_file.clone()),
                write: true,
                queries: false,
            },
        );
        config.registry = Some(registry.clone());
    });
    let tasks = format!("/v1/{}/data-watermark-embed-tasks", crate::server::PROJECT);
    let body = serde_json::json!({
        "source_db_info": {"connection": "shop", "table_name": "task_src"},
        "target_db_info": {"connection": "shop", "table_name": "task_copy"},
        "water_mark": "acme->pg-task",
        "watermark_key_name": "tasks",
    });
    let r = crate::server_db::post(&s, &tasks, &body);
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.body["task_id"].as_str().unwrap();
    let d = s.wait_at(&format!("{tasks}/{id}"));
    assert_eq!(d["state"], "Success", "{d}");
    assert_eq!(d["result"]["rows"], 12_000);
    assert_eq!(d["result"]["target"], "shop:task_copy");
    // Same types, constraints and keys; only planned columns changed.
    assert_eq!(
        column_types(&mut c, "task_copy"),
        column_types(&mut c, "task_src")
    );
    let unmarked = ["id", "label", "flag", "day", "u", "doc", "tags", "raw"];
    assert_eq!(
        rows_as_text(&mut c, "task_copy", &unmarked),
        rows_as_text(&mut c, "task_src", &unmarked)
    );
    // A leak of a tenth of the copy, as a table, named from the registry.
    c.batch_execute("CREATE TABLE task_leak AS SELECT * FROM task_copy WHERE id % 10 = 7")
        .unwrap();
    let extract = format!("/v1/{}/watermark/extract/tasks", crate::server::PROJECT);
    let body = serde_json::json!({
        "tables": [{"connection": "shop", "table_name": "task_leak"}],
        "primary_key": ["id"],
        "watermark_key_name": "tasks",
    });
    let r = crate::server_db::post(&s, &extract, &body);
    assert_eq!(r.status, 200, "{r:?}");
    let d = s.wait_task(crate::server::PROJECT, r.body["task_id"].as_str().unwrap());
    let leak = &d["remarks"][0];
    assert_eq!(leak["status"], "done", "{d}");
    assert_eq!(leak["evidence"]["rows"], 1_200);
    assert_eq!(
        leak["evidence"]["identified"][0]["content"], "acme->pg-task",
        "{leak}"
    );
    // The password is in no answer and no file the server wrote.
    let everything = format!("{d}{}", std::fs::read_to_string(&registry).unwrap());
    assert!(!everything.contains(&pg.password), "{everything}");
}
