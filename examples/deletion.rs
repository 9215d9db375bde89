//! Recovery after deleting a share of the rows of the default evaluation
//! table, over many keys: `cargo run --release --example deletion [keys] [fraction]`.

use dbwatermark::eval::{self, attack};

fn main() {
    let keys: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let fraction: f64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0.9);
    let table = eval::default_table();
    let alphabet: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    let mut ok = 0;
    for k in 0..keys {
        let mut rng = dbwatermark::eval::sample::Rng::new(2026 + k);
        let wm = dbwatermark::Watermarker::new(
            dbwatermark::WatermarkKey::new(&rng.string(&alphabet, 24)).unwrap(),
            dbwatermark::Config::default(),
        );
        let content = rng.string(&alphabet, 16);
        let mut marked = table.clone();
        wm.embed_table(&mut marked, &content).unwrap();
        let leak = attack::delete_rows(&marked, fraction, rng.next_u64());
        let found = wm.extract_table(&leak).unwrap();
        ok += u64::from(found.first().is_some_and(|f| f.content == content));
    }
    println!("deleted {:.0}%: recovered {ok}/{keys}", fraction * 100.0);
}
