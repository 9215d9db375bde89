//! Pseudo-columns: the mark in one added column, no real cell changed.

use dbwatermark::arrow::table_to_batch;
use dbwatermark::eval::sample;
use dbwatermark::pipeline::{self, EmbedMode, Job, SinkRef, SourceRef};
use dbwatermark::{Config, PseudoFormat, WatermarkKey, Watermarker};

use crate::support::{TempDir, read_batch, write_batch};

fn wm() -> Watermarker {
    Watermarker::new(
        WatermarkKey::new("pseudo-column tests").unwrap(),
        Config::default(),
    )
}

#[test]
fn a_pseudo_column_copy_changes_no_cell_and_is_found_without_a_flag() {
    let dir = TempDir::new("pseudo-column");
    let source = dir.path("customers.parquet");
    let original = table_to_batch(&sample::customers(12_000, 1, 5)).unwrap();
    write_batch(&original, &source);
    for (format, ext) in [
        (PseudoFormat::Code, "parquet"),
        (PseudoFormat::Token, "csv"),
    ] {
        let copy = dir.path(&format!("copy.{ext}"));
        let columns = pipeline::Columns::with_key(["customer_id"]);
        let job = Job {
            source: SourceRef::File(&source),
            sink: SinkRef::File(&copy),
            content: "acme->lossless",
            columns: &columns,
            read: &Default::default(),
            write: &Default::default(),
            mode: EmbedMode::PseudoColumn {
                name: "ref",
                format,
            },
        };
        let summary = pipeline::embed(&wm(), &job, &mut |_, _| {}).unwrap();
        assert_eq!(summary.pseudo_column.as_deref(), Some("ref"));
        assert!(summary.columns.iter().all(|(_, r)| r.changed == 0));
        let marked = read_batch(&copy);
        assert_eq!(marked.num_columns(), original.num_columns() + 1);
        for (i, field) in original.schema().fields().iter().enumerate() {
            if ext == "parquet" {
                assert_eq!(
                    marked.column(i).to_data(),
                    original.column(i).to_data(),
                    "{} changed",
                    field.name()
                );
            }
        }
        let found = pipeline::extract_files(
            &wm(),
            std::slice::from_ref(&copy),
            &columns,
            &Default::default(),
            &mut |_, _| {},
        )
        .unwrap();
        let first = found.found.first().expect("a watermark found");
        assert_eq!(first.content, "acme->lossless", "{format:?}");
        assert_eq!(first.columns, ["ref"], "{format:?}");
    }
}
