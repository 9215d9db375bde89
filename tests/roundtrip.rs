use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, RngSeed};

use crate::support;
use dbwatermark::eval::sample::Rng;

proptest! {
    #![proptest_config(PropConfig {
        cases: 24,
        rng_seed: RngSeed::Fixed(0x5eed),
        failure_persistence: None,
        ..PropConfig::default()
    })]

    /// Random tables of 1,500+ rows, 1–5 columns of mixed types, single or
    /// composite keys, random keys and 1–64-byte contents.
    #[test]
    fn embed_then_extract_returns_exactly_the_content(
        seed in any::<u64>(),
        rows in 1500usize..4000,
        columns in 1usize..=5,
        composite in any::<bool>(),
        len in 1usize..=64,
    ) {
        let mut rng = Rng::new(seed);
        let original = support::table(seed, rows, columns, composite);
        let secret = rng.string(&['k', 'e', 'y', '0', '1'], 12);
        let content = support::content(&mut rng, len);
        let wm = support::watermarker(&secret);
        let mut marked = original.clone();
        wm.embed_table(&mut marked, &content).unwrap();

        prop_assert_eq!(support::found(&wm, &marked), vec![content]);
        let wrong_key = support::watermarker(&(secret + "!"));
        prop_assert!(support::found(&wrong_key, &marked).is_empty());
        prop_assert!(support::found(&wm, &original).is_empty());
    }
}

proptest! {
    #![proptest_config(PropConfig {
        cases: 256,
        rng_seed: RngSeed::Fixed(0xf022),
        failure_persistence: None,
        ..PropConfig::default()
    })]

    /// The fuzz target's body on arbitrary bytes: any table built from them
    /// embeds and extracts without panicking.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        dbwatermark::fuzzing::extract_table(&data);
    }
}

#[test]
fn a_validity_bitmap_shorter_than_its_rows_is_refused_not_read() {
    use dbwatermark::{
        ColumnMut, ColumnRef, Config, Error, KeyPart, Tally, Validity, WatermarkKey, Watermarker,
    };
    let wm = Watermarker::new(WatermarkKey::new("bitmap").unwrap(), Config::default());
    let ids: Vec<i64> = (0..100).collect();
    let selection = wm.select(ids.len(), |row, key| {
        key.push(KeyPart::Int(ids[row].into()));
        true
    });
    let payload = wm.payload("x").unwrap();
    let density = wm.density_for(Some(ids.len()), &payload);
    // 100 rows need 13 bytes from bit 0 (104 bits) and 14 from bit 5; give one byte less.
    for (bytes, offset) in [(12, 0), (13, 5)] {
        let bits = vec![0xFF; bytes];
        let validity = Validity::Bits {
            bytes: &bits,
            offset,
            len: 100,
        };
        let mut values = ids.clone();
        let err = wm
            .embed_column(
                &selection,
                &payload,
                density,
                ColumnMut::Int64(&mut values),
                Some(validity),
            )
            .unwrap_err();
        assert!(
            matches!(&err, Error::RowCountMismatch { column, expected: 100, got } if column == "validity bitmap" && *got == bytes * 8 - offset),
            "{err}"
        );
        assert_eq!(values, ids, "nothing written");
        let mut tally = Tally::new();
        assert!(
            wm.tally_column(
                &selection,
                ColumnRef::Int64(&ids),
                Some(validity),
                &mut tally
            )
            .is_err()
        );
    }
    // Exactly enough bits is fine.
    let bits = vec![0xFF; 13];
    let validity = Validity::Bits {
        bytes: &bits,
        offset: 4,
        len: 100,
    };
    let mut tally = Tally::new();
    wm.tally_column(
        &selection,
        ColumnRef::Int64(&ids),
        Some(validity),
        &mut tally,
    )
    .unwrap();
}
