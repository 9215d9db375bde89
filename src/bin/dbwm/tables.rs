//! Whole (small) tables read from and written to files, for the demo and
//! the evaluation.

use std::path::Path;

use dbwatermark::{Table, arrow, files};

/// Reads a whole (small) file into a core table.
pub fn read_table(path: &Path, key: &[String]) -> Result<Table, String> {
    let key: Vec<&str> = key.iter().map(String::as_str).collect();
    let input = files::open(path, &Default::default()).map_err(|e| e.to_string())?;
    let mut table: Option<Table> = None;
    for batch in input.reader {
        let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
        let part = arrow::batch_to_table(&batch, &key).map_err(|e| e.to_string())?;
        match &mut table {
            Some(t) => t.append(&part).map_err(|e| e.to_string())?,
            None => table = Some(part),
        }
    }
    table.ok_or_else(|| format!("{}: no rows", path.display()))
}

/// Writes a core table to a file of the format its extension names.
pub fn write_table(table: &Table, path: &Path) -> Result<(), String> {
    let batch = arrow::table_to_batch(table).map_err(|e| e.to_string())?;
    let mut out = files::Output::create(path, &batch.schema(), &Default::default())
        .map_err(|e| e.to_string())?;
    out.write(&batch).map_err(|e| e.to_string())?;
    out.finish().map_err(|e| e.to_string())
}
