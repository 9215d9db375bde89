"""Embedding from Python: any Arrow input, the CLI's marks cell for cell,
meaning kept, nothing copied that is not marked."""

import json
import subprocess

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import dbwatermark
from conftest import flights


def changed_cells(a: pa.Table, b: pa.Table) -> dict:
    out = {}
    for name in a.column_names:
        x, y = a.column(name), b.column(name)
        out[name] = sum(1 for u, v in zip(x.to_pylist(), y.to_pylist()) if u != v)
    return out


def test_embed_keeps_schema_rows_and_order_and_only_marks_measures(table, key):
    w = dbwatermark.Watermarker(key=key)
    copy = w.embed(table, "acme->partner-1", pk="id")
    assert copy.schema == table.schema
    assert copy.num_rows == table.num_rows
    assert copy.column("id").equals(table.column("id"))
    changes = changed_cells(table, copy)
    # Codes, calendar and clock fields are left alone; measures carry marks.
    assert changes["carrier"] == changes["month"] == changes["dep_time"] == 0
    assert changes["distance"] > 0 and changes["fare"] > 0
    # Marked values stay inside the observed range, nulls stay null.
    for name in ("distance", "fare", "dep_delay"):
        lo, hi = pc.min_max(table.column(name)).values()
        clo, chi = pc.min_max(copy.column(name)).values()
        assert lo.as_py() <= clo.as_py() and chi.as_py() <= hi.as_py(), name
    assert copy.column("dep_delay").null_count == table.column("dep_delay").null_count


def test_python_and_cli_mark_the_same_cells_the_same_way(table, key, dbwm, tmp_path):
    source, out = tmp_path / "flights.parquet", tmp_path / "copy.parquet"
    pq.write_table(table, source, row_group_size=7_000)
    keyfile = tmp_path / "key"
    keyfile.write_text(key + "\n")
    subprocess.run(
        [dbwm, "embed", "--key-file", str(keyfile), "--pk", "id", "--content", "acme->partner-2",
         "--rule", "fare:max=900", "-o", str(out), str(source)],
        check=True, capture_output=True,
    )
    cli = pq.read_table(out)
    w = dbwatermark.Watermarker(key_file=keyfile)
    ours = w.embed(table, "acme->partner-2", pk=["id"], rule="fare:max=900")
    assert ours.equals(cli)
    # And the plan is the one `dbwm plan` prints.
    plan = subprocess.run(
        [dbwm, "plan", "--key-file", str(keyfile), "--pk", "id", "--content", "acme->partner-2",
         "--rule", "fare:max=900", "--json", str(source)],
        check=True, capture_output=True, text=True,
    )
    p = w.plan(table, "id", content="acme->partner-2", rule="fare:max=900")
    assert p.fingerprint == json.loads(plan.stdout)["fingerprint"]


def test_polars_and_pandas_frames_embed_like_the_pyarrow_table(table, key):
    polars = pytest.importorskip("polars")
    pandas = pytest.importorskip("pandas")
    w = dbwatermark.Watermarker(key=key)
    want = w.embed(table, "acme->partner-3", pk="id")
    from_polars = w.embed(polars.from_arrow(table), "acme->partner-3", pk="id")
    assert from_polars.num_rows == table.num_rows
    for name in table.column_names:
        assert from_polars.column(name).to_pylist() == want.column(name).to_pylist(), name
    frame = table.to_pandas()
    from_pandas = w.embed(frame, "acme->partner-3", pk="id")
    for name in ("distance", "fare", "month"):
        assert from_pandas.column(name).to_pylist() == want.column(name).to_pylist(), name


def test_a_record_batch_and_a_chunked_table_embed_like_one_table(table, key):
    w = dbwatermark.Watermarker(key=key)
    want = w.embed(table, "acme->partner-4", pk="id")
    batch = table.combine_chunks().to_batches()[0]
    assert w.embed(batch, "acme->partner-4", pk="id").equals(want)
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=999))
    assert w.embed(chunked, "acme->partner-4", pk="id").combine_chunks().equals(want.combine_chunks())


def test_embed_batches_marks_lazily_and_like_embed(key):
    table = flights(100_000, seed=3)
    w = dbwatermark.Watermarker(key=key)
    read = []

    def batches():
        for b in table.to_batches(max_chunksize=10_000):
            read.append(b.num_rows)
            yield b

    reader = pa.RecordBatchReader.from_batches(table.schema, batches())
    marked = w.embed_batches(reader, "acme->partner-5", pk="id", rows=table.num_rows)
    assert isinstance(marked, pa.RecordBatchReader)
    # The plan read the first PROFILE_ROWS rows, and nothing more yet.
    assert sum(read) < dbwatermark.PROFILE_ROWS + 10_000 < table.num_rows
    out = marked.read_all()
    assert sum(read) == table.num_rows
    assert out.combine_chunks().equals(w.embed(table, "acme->partner-5", pk="id").combine_chunks())


def test_a_plan_given_to_partitions_marks_them_as_the_whole(table, key):
    w = dbwatermark.Watermarker(key=key)
    plan = w.plan(table, "id", content="acme->partner-6")
    plan = dbwatermark.Plan.from_json(plan.to_json())
    whole = w.embed(table, "acme->partner-6", pk="id")
    parts = [w.embed(table.slice(i, 4_000), "acme->partner-6", pk="id", plan=plan) for i in range(0, table.num_rows, 4_000)]
    assert pa.concat_tables(parts).combine_chunks().equals(whole.combine_chunks())
    import pickle

    assert pickle.loads(pickle.dumps(plan)) == plan
    assert plan.marked == ["distance", "dep_delay", "fare"]
    assert plan.key == ["id"]
