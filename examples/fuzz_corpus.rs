//! Every untrusted-input entry point (request bodies, task submissions,
//! file formats, the registry, the signing header, tallies) on its seed
//! corpus plus mutations, on the stable toolchain, bounded in time: what CI
//! runs on every change (the cargo-fuzz targets in `fuzz/` are for longer
//! runs on nightly).
//!
//! ```sh
//! cargo run --release --example fuzz_corpus -- [SECONDS_PER_TARGET] [TARGET...]
//! ```
//!
//! Seeds: the committed corpus `fuzz/corpus/<target>/` when there is one,
//! and, for each file format, a small table written in that format. Each
//! input is a seed with one to eight mutations (bit flips, random bytes,
//! inserted, deleted or repeated runs, boundary numbers, splices with
//! another seed, truncation), from a fixed seed. An input that panics is
//! written to `fuzz/artifacts/<target>/` and the run exits 1 after
//! reporting every target.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dbwatermark::eval::sample::{self, Rng};
use dbwatermark::files::{self, Format};
use dbwatermark::fuzzing;

type Entry = Box<dyn Fn(&[u8])>;

fn file_seeds(format: Format, extension: &str) -> Vec<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("dbwm-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let mut seeds = Vec::new();
    for (rows, seed) in [(3usize, 1u64), (40, 2), (400, 3)] {
        let mut table = sample::customers(rows, 1, seed);
        table.key[0].name = "id".into();
        let batch = dbwatermark::arrow::table_to_batch(&table).expect("a sample table converts");
        let path = dir.join(format!("seed-{rows}.{extension}"));
        let options = files::WriteOptions {
            format: Some(format),
            ..Default::default()
        };
        let mut out = files::Output::create(&path, &batch.schema(), &options).expect("writable");
        out.write(&batch).expect("writes");
        out.finish().expect("finishes");
        seeds.push(std::fs::read(&path).expect("readable"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    seeds
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn targets() -> Vec<(&'static str, Vec<Vec<u8>>, Entry)> {
    let text_seeds =
        |extra: &[&str]| -> Vec<Vec<u8>> { extra.iter().map(|s| s.as_bytes().to_vec()).collect() };
    let file = |format: Format| -> Entry { Box::new(move |d| fuzzing::file(format, d)) };
    vec![
        (
            "dsc_embed",
            corpus("dsc_embed"),
            Box::new(fuzzing::dsc_embed),
        ),
        (
            "dsc_extract",
            corpus("dsc_extract"),
            Box::new(fuzzing::dsc_extract),
        ),
        (
            "extract_table",
            corpus("extract_table"),
            Box::new(fuzzing::extract_table),
        ),
        ("tally_bytes", tally_seeds(), Box::new(fuzzing::tally_bytes)),
        (
            "file_csv",
            file_seeds(Format::Csv, "csv"),
            file(Format::Csv),
        ),
        (
            "file_ndjson",
            file_seeds(Format::Ndjson, "ndjson"),
            file(Format::Ndjson),
        ),
        (
            "file_ipc",
            file_seeds(Format::IpcFile, "arrow"),
            file(Format::IpcFile),
        ),
        (
            "file_ipc_stream",
            file_seeds(Format::IpcStream, "arrows"),
            file(Format::IpcStream),
        ),
        (
            "file_parquet",
            file_seeds(Format::Parquet, "parquet"),
            file(Format::Parquet),
        ),
        (
            "registry",
            text_seeds(&[
                "{\"content\":\"acme->a\",\"recipient\":\"A\",\"key_fingerprint\":\"0123456789abcdef\",\"rows\":5}\nacme->b\n",
                "# comment\nplain content\n",
            ]),
            Box::new(fuzzing::registry),
        ),
        (
            "task_submission",
            text_seeds(&[
                r#"{"files":["a.csv"],"primary_key":["id"],"watermark_key_name":"k","job_level":1,"name":"n","description":"d","user_data":"u","callback":"http://127.0.0.1:9/cb","callback_format":"XML"}"#,
                r#"{"files":["../x","/etc/passwd","a.csv"],"primary_key":[""],"columns":["x"],"watermark_key":"raw"}"#,
            ]),
            Box::new(fuzzing::task_submission),
        ),
        (
            "authorization",
            text_seeds(&[
                "SDK-HMAC-SHA256 Access=AK1, SignedHeaders=content-type;host;x-sdk-date, Signature=0123abcd",
                "SDK-HMAC-SHA256 Access=a,SignedHeaders=host,Signature=ff",
            ]),
            Box::new(fuzzing::authorization),
        ),
    ]
}

fn tally_seeds() -> Vec<Vec<u8>> {
    let wm = dbwatermark::Watermarker::new(
        dbwatermark::WatermarkKey::new("fuzz").expect("non-empty"),
        dbwatermark::Config::default(),
    );
    [50usize, 2000]
        .iter()
        .map(|&rows| {
            let table = sample::customers(rows, 1, 9);
            let mut t = dbwatermark::TableTally::new(&wm);
            for (name, tally) in wm.tally_table(&table).expect("tallies") {
                t.add(&name, tally);
            }
            t.to_bytes()
        })
        .collect()
}

const INTERESTING: [&[u8]; 10] = [
    b"0",
    b"-1",
    b"4294967296",
    b"9223372036854775808",
    b"1e309",
    b"NaN",
    b"\xff\xff\xff\xff",
    b"\0\0\0\0",
    b"\"",
    b"\n",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], data: &mut Vec<u8>) {
    for _ in 0..=rng.below(8) {
        let len = data.len() as u64;
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len) as usize;
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len) as usize;
                data[i] = rng.below(256) as u8;
            }
            2 => {
                let i = rng.below(len + 1) as usize;
                let n = 1 + rng.below(16) as usize;
                let bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                data.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.below(len) as usize;
                let n = (1 + rng.below(64) as usize).min(data.len() - i);
                data.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len) as usize;
                let n = (1 + rng.below(64) as usize).min(data.len() - i);
                let run = data[i..i + n].to_vec();
                data.splice(i..i, run);
            }
            5 => {
                let i = rng.below(len + 1) as usize;
                let v = INTERESTING[rng.below(INTERESTING.len() as u64) as usize];
                data.splice(i..i, v.iter().copied());
            }
            6 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len() as u64) as usize];
                let cut = rng.below(len + 1) as usize;
                let from = rng.below(other.len() as u64 + 1) as usize;
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            7 => data.truncate(rng.below(len + 1) as usize),
            _ if len >= 4 => {
                // A little-endian length or offset field set to an edge value.
                let i = rng.below(len - 3) as usize;
                let v: u32 = [0, 1, 0x7fff_ffff, 0xffff_ffff, 0x8000_0000][rng.below(5) as usize];
                data[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let only: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    // Panics are caught and reported per input, not printed per panic.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = false;
    let started = Instant::now();
    let mut total = 0u64;
    for (name, seeds, entry) in targets() {
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let mut rng = Rng::new(0xf022 ^ name.len() as u64);
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let (mut runs, mut crashes) = (0u64, 0u64);
        let mut queue: Vec<Vec<u8>> = seeds.clone();
        while Instant::now() < deadline {
            let input = match queue.pop() {
                Some(seed) => seed,
                None => {
                    let mut d = if seeds.is_empty() {
                        Vec::new()
                    } else {
                        seeds[rng.below(seeds.len() as u64) as usize].clone()
                    };
                    mutate(&mut rng, &seeds, &mut d);
                    d
                }
            };
            runs += 1;
            if catch_unwind(AssertUnwindSafe(|| entry(&input))).is_err() {
                crashes += 1;
                let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("fuzz/artifacts")
                    .join(name);
                let _ = std::fs::create_dir_all(&dir);
                let path = dir.join(format!("crash-{runs}"));
                let _ = std::fs::write(&path, &input);
                eprintln!(
                    "fuzz_corpus: {name}: input {runs} panicked; written to {}",
                    path.display()
                );
                if crashes >= 5 {
                    break;
                }
            }
        }
        total += runs;
        println!(
            "{name}: {runs} inputs ({} seeds), {crashes} panics",
            seeds.len()
        );
        failed |= crashes > 0;
    }
    println!(
        "fuzz_corpus: {total} inputs in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if failed {
        std::process::exit(1);
    }
}
