use crate::support::{self, watermarker};

#[test]
fn one_thread_and_many_give_identical_results() {
    let original = support::table(77, 20_000, 5, true);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let wm = watermarker("threads");
            let mut t = original.clone();
            let report = wm.embed_table(&mut t, "same everywhere").unwrap();
            let found = wm.extract_table(&t).unwrap();
            (t, report, found)
        })
    };
    let one = run(1);
    let many = run(4);
    assert_eq!(one.0, many.0, "marked tables");
    assert_eq!(one.1, many.1, "reports");
    assert_eq!(one.2, many.2, "extractions");
    assert_eq!(one.2[0].content, "same everywhere");
}
