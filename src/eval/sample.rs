//! Deterministic sample data for demos, tests and benchmarks.
//!
//! Everything here is a pure function of its seed, so a failing test or a
//! benchmark figure can be reproduced exactly.

use crate::{Column, Table, Values};

/// A small, fast, seedable generator (SplitMix64). Not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }

    /// A string of `len` characters drawn from `alphabet`.
    pub fn string(&mut self, alphabet: &[char], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize])
            .collect()
    }
}

const FIRST: [&str; 16] = [
    "Alice", "Bruno", "Chen", "Dana", "Emeka", "Fatima", "Goran", "Hana", "Ivan", "Julia", "Kenji",
    "Lena", "Mateo", "Nadia", "Omar", "Priya",
];
const LAST: [&str; 16] = [
    "Smith", "Müller", "Wang", "García", "Okafor", "Rossi", "Novak", "Sato", "Kowalski", "Dubois",
    "Silva", "Jensen", "Haddad", "Ivanova", "Kim", "Larsen",
];

/// A customer-like table: key `customer_id` (Int64, from `first_id`), and
/// `age` (Int32), `balance` (Decimal, 2 places), `score` (Float64, printed
/// with up to 3 decimals) and `name` (Text).
///
/// ```
/// let t = dbwatermark::eval::sample::customers(100, 1, 7);
/// assert_eq!(t.rows(), 100);
/// assert_eq!(t.columns.len(), 4);
/// ```
pub fn customers(rows: usize, first_id: i64, seed: u64) -> Table {
    let mut rng = Rng::new(seed);
    let mut age = Vec::with_capacity(rows);
    let mut balance = Vec::with_capacity(rows);
    let mut score = Vec::with_capacity(rows);
    let mut name = Vec::with_capacity(rows);
    for _ in 0..rows {
        age.push(18 + rng.below(70) as i32);
        // Balances spread over cents, skewed towards small amounts.
        let u = rng.unit();
        balance.push((u * u * 5_000_000.0) as i128 + rng.below(100) as i128);
        score.push((rng.below(1_000_000) as f64) / 1000.0);
        name.push(format!(
            "{} {}",
            FIRST[rng.below(16) as usize],
            LAST[rng.below(16) as usize]
        ));
    }
    Table {
        key: vec![Column::new(
            "customer_id",
            Values::Int64((first_id..first_id + rows as i64).collect()),
        )],
        columns: vec![
            Column::new("age", Values::Int32(age)),
            Column::new(
                "balance",
                Values::Decimal {
                    counts: balance,
                    scale: 2,
                    precision: 18,
                },
            ),
            Column::new("score", Values::Float64(score)),
            Column::new("name", Values::Text(name)),
        ],
    }
}
