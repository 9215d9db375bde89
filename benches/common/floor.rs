//! The floor both core benches compare against: one HMAC-SHA256 per row.

use hmac::{Hmac, Mac};
use rayon::prelude::*;
use sha2::Sha256;

/// One HMAC-SHA256 per row over the same key bytes the engine hashes (the
/// length-prefixed decimal text of the id), with the keyed state prepared
/// once and cloned per row, in parallel chunks of rows.
pub fn hash_floor(ids: &[i64]) -> u8 {
    let mac = Hmac::<Sha256>::new_from_slice(&[7u8; 32]).expect("any key length");
    ids.par_chunks(4096)
        .map(|chunk| {
            let mut buf = Vec::with_capacity(32);
            let mut acc = 0u8;
            for id in chunk {
                use std::io::Write as _;
                buf.clear();
                buf.extend_from_slice(&[0; 4]);
                let _ = write!(buf, "{id}");
                let len = (buf.len() - 4) as u32;
                buf[..4].copy_from_slice(&len.to_le_bytes());
                let mut m = mac.clone();
                m.update(&buf);
                acc ^= m.finalize().into_bytes()[0];
            }
            acc
        })
        .reduce(|| 0, |a, b| a ^ b)
}
