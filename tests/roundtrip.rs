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
