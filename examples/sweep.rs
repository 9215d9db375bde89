//! Measures recovery and distortion against marking density, to choose the
//! defaults. `cargo run --release --example sweep [keys]`.

use dbwatermark::eval::attack;
use dbwatermark::eval::sample::{self, Rng};
use dbwatermark::{Config, Density, Table, WatermarkKey, Watermarker};

fn recovered(wm: &Watermarker, leak: &Table, content: &str) -> (bool, bool) {
    let found = wm.extract_table(leak).expect("valid table");
    let right = found.first().is_some_and(|f| f.content == content);
    let wrong = found.iter().any(|f| f.content != content);
    (right, wrong)
}

fn main() {
    let keys: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let alphabet: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    let base = sample::customers(30_000, 1, 1);
    let extra = sample::customers(120_000, 10_000_000, 2);
    let small_only = std::env::var_os("SWEEP_SMALL").is_some();
    let steps_only = std::env::var_os("SWEEP_STEPS").is_some();
    println!("density steps scenario recovered wrong changed%");
    for n in [2u32, 4, 8]
        .into_iter()
        .filter(|_| !small_only && !steps_only)
    {
        for steps in [2u8] {
            let config = Config::builder()
                .density(Density::one_in(n).unwrap())
                .steps(steps)
                .build()
                .unwrap();
            let mut stats: Vec<(String, u64, u64)> = Vec::new();
            let mut changed = 0.0;
            for t in 0..keys {
                let mut rng = Rng::new(t);
                let wm = Watermarker::new(
                    WatermarkKey::new(&rng.string(&alphabet, 20)).unwrap(),
                    config,
                );
                let content = rng.string(&alphabet, 16);
                let mut table = base.clone();
                let report = wm.embed_table(&mut table, &content).unwrap();
                changed += report.changed_fraction();
                let mut scenarios: Vec<(String, Table)> = vec![];
                for d in [0.5, 0.8, 0.9, 0.95] {
                    scenarios.push((
                        format!("delete{}", d * 100.0),
                        attack::delete_rows(&table, d, t),
                    ));
                }
                for ins in [1.0, 4.0] {
                    let mut leak = table.clone();
                    let k = (ins * 30_000.0) as usize;
                    leak.append(&extra.take_rows(&(0..k).collect::<Vec<_>>()))
                        .unwrap();
                    scenarios.push((
                        format!("insert{}", ins * 100.0),
                        attack::shuffle_rows(&leak, t),
                    ));
                }
                for c in 0..4 {
                    let mut one = table.clone();
                    one.columns = vec![one.columns[c].clone()];
                    scenarios.push((
                        format!("only-{}", one.columns[0].name),
                        attack::delete_rows(&one, 0.5, t),
                    ));
                }
                for (i, (name, leak)) in scenarios.iter().enumerate() {
                    let (ok, wrong) = recovered(&wm, leak, &content);
                    if stats.len() <= i {
                        stats.push((name.clone(), 0, 0));
                    }
                    stats[i].1 += u64::from(ok);
                    stats[i].2 += u64::from(wrong);
                }
            }
            for (name, ok, wrong) in stats {
                println!(
                    "1/{n} {steps} {name} {ok}/{keys} {wrong} {:.1}",
                    100.0 * changed / keys as f64
                );
            }
        }
    }
    // Low steps: distortion and survival of a randomised lowest bit, on the
    // integer and decimal columns only, at one row in eight.
    for steps in [1u8, 2, 3] {
        let config = Config::builder()
            .density(Density::one_in(8).unwrap())
            .steps(steps)
            .build()
            .unwrap();
        let (mut ok, mut mean) = (0, 0.0);
        for t in 0..keys {
            let mut rng = Rng::new(200 + t);
            let wm = Watermarker::new(
                WatermarkKey::new(&rng.string(&alphabet, 20)).unwrap(),
                config,
            );
            let content = rng.string(&alphabet, 16);
            let mut table = base.clone();
            table.columns.truncate(2);
            let report = wm.embed_table(&mut table, &content).unwrap();
            let (sum, n) = report
                .columns
                .iter()
                .fold((0u64, 0usize), |(s, n), (_, r)| {
                    (s + r.sum_abs_steps, n + r.changed)
                });
            mean += sum as f64 / n as f64;
            ok += u64::from(recovered(&wm, &attack::randomize_low_bits(&table, 1, t), &content).0);
        }
        println!(
            "steps {steps}: mean change {:.2} steps, lowest bit randomised: {ok}/{keys}",
            mean / keys as f64
        );
    }
    // Small tables with long contents: one non-key column.
    for n in [1u32, 2] {
        let config = Config::builder()
            .density(Density::one_in(n).unwrap())
            .build()
            .unwrap();
        let mut ok = 0;
        for t in 0..keys {
            let mut rng = Rng::new(100 + t);
            let wm = Watermarker::new(
                WatermarkKey::new(&rng.string(&alphabet, 20)).unwrap(),
                config,
            );
            let content = rng.string(&alphabet, 64);
            let mut table = sample::customers(1500, 1, t);
            table.columns.truncate(1);
            wm.embed_table(&mut table, &content).unwrap();
            ok += u64::from(recovered(&wm, &table, &content).0);
        }
        println!("small 1500 rows, 1 int column, 64 bytes, 1/{n}: {ok}/{keys}");
    }
}
