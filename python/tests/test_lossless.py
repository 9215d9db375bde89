"""The lossless modes from Python: pseudo-rows and a pseudo-column, the
copies `dbwm embed --mode` makes, read back without being told which mode
made them."""

import random
import subprocess

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import dbwatermark
from conftest import flights


@pytest.fixture(scope="module")
def gapped() -> pa.Table:
    """The flights-like table with ids 3 apart, so that new keys fit
    between real ones."""
    t = flights(30_000, seed=11)
    return t.set_column(0, "id", pc.multiply(t.column("id"), 3))


def real_rows_of(copy: pa.Table, original: pa.Table) -> pa.Table:
    """The rows of `copy` whose key the original has, in order."""
    return copy.filter(pc.is_in(copy.column("id"), value_set=original.column("id")))


def shuffled_sample(t: pa.Table, share: float, seed: int) -> pa.Table:
    rows = random.Random(seed).sample(range(t.num_rows), int(t.num_rows * share))
    return t.take(pa.array(rows))


def cli_copy(dbwm, key, tmp_path, table, *flags) -> pa.Table:
    source, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(table, source)
    keyfile = tmp_path / "key"
    keyfile.write_text(key + "\n")
    subprocess.run(
        [dbwm, "embed", "--key-file", str(keyfile), "--pk", "id", "--content", "acme->lossless",
         *flags, "-o", str(out), str(source)],
        check=True, capture_output=True,
    )
    return pq.read_table(out)


def test_pseudo_rows_add_new_keys_and_change_no_real_row(gapped, key):
    w = dbwatermark.Watermarker(key=key)
    copy, report = w.embed(gapped, "acme->rows", pk="id", mode="pseudo-rows", row_spacing=50, report=True)
    added = report["pseudo_rows"]["added"]
    assert copy.schema == gapped.schema
    assert 30_000 / 50 * 0.5 < added < 30_000 / 50 * 1.5, report
    assert copy.num_rows == gapped.num_rows + added == report["rows"]
    assert report["real_cells_changed"] == 0 and report["columns"] == []
    # Every real row is there, unchanged and in its order; every new key is
    # new and unique, in the key's range.
    assert real_rows_of(copy, gapped).equals(gapped)
    ids = copy.column("id")
    assert pc.count_distinct(ids).as_py() == copy.num_rows
    lo, hi = pc.min_max(gapped.column("id")).values()
    new = copy.filter(pc.invert(pc.is_in(ids, value_set=gapped.column("id"))))
    assert new.num_rows == added
    inside = pc.sum(pc.and_(pc.greater_equal(new.column("id"), lo), pc.less_equal(new.column("id"), hi)))
    assert inside.as_py() == added - report["pseudo_rows"]["outside_range"]
    # Fabricated values are the columns' own: no new carrier, no month or
    # distance outside the real range.
    assert set(new.column("carrier").to_pylist()) <= set(gapped.column("carrier").to_pylist())
    for name in ("month", "distance", "fare"):
        rlo, rhi = pc.min_max(gapped.column(name)).values()
        nlo, nhi = pc.min_max(new.column(name)).values()
        assert rlo.as_py() <= nlo.as_py() and nhi.as_py() <= rhi.as_py(), name


def test_pseudo_rows_are_read_from_a_shuffled_sample_with_columns_reordered(gapped, key):
    w = dbwatermark.Watermarker(key=key)
    copy = w.embed(gapped, "acme->rows", pk="id", row_spacing=50)
    leak = shuffled_sample(copy, 0.3, seed=5)
    leak = leak.select(list(reversed(leak.column_names)))
    found = w.extract(leak, pk="id", candidates=["acme->rows", "acme->other"])
    assert found.watermarks[0].content == "acme->rows"
    assert found.watermarks[0].columns == ["(pseudo-rows)"]
    assert [i.content for i in found.identified] == ["acme->rows"]
    # The unmarked table shows none.
    assert not w.extract(gapped, pk="id").watermarks


def test_python_pseudo_rows_are_the_cli_copy_row_for_row(gapped, key, dbwm, tmp_path):
    cli = cli_copy(dbwm, key, tmp_path, gapped, "--mode", "pseudo-rows", "--row-spacing", "40")
    w = dbwatermark.Watermarker(key=key)
    ours = w.embed(gapped, "acme->lossless", pk="id", mode="pseudo-rows", row_spacing=40)
    assert ours.equals(cli)
    assert w.extract(cli, pk="id").watermarks[0].content == "acme->lossless"


def test_a_pseudo_column_is_added_and_read_after_a_column_reorder(table, key):
    w = dbwatermark.Watermarker(key=key)
    copy, report = w.embed(table, "acme->column", pk="id", pseudo_column="ref_no", report=True)
    assert copy.column_names == table.column_names + ["ref_no"]
    assert copy.select(table.column_names).equals(table)
    assert report["pseudo_column"] == "ref_no" and report["real_cells_changed"] == 0
    assert pa.types.is_int64(copy.schema.field("ref_no").type)
    codes = copy.column("ref_no")
    assert pc.min(codes).as_py() >= 10_000_000 and pc.max(codes).as_py() <= 99_999_999
    leak = shuffled_sample(copy, 0.1, seed=3)
    leak = leak.select(["ref_no"] + list(reversed(table.column_names)))
    found = w.extract(leak, pk="id")
    assert found.watermarks[0].content == "acme->column"
    assert found.watermarks[0].columns == ["ref_no"]
    # The honest limit: deleting the column deletes the mark.
    assert not w.extract(leak.drop_columns(["ref_no"]), pk="id").watermarks


def test_python_pseudo_column_tokens_are_the_cli_copy(table, key, dbwm, tmp_path):
    cli = cli_copy(
        dbwm, key, tmp_path, table, "--mode", "pseudo-column", "--pseudo-column", "tag",
        "--pseudo-column-format", "token",
    )
    w = dbwatermark.Watermarker(key=key)
    ours = w.embed(table, "acme->lossless", pk="id", mode="pseudo-column", pseudo_column="tag",
                   pseudo_column_format="token")
    assert ours.equals(cli)
    assert all(len(t) == 8 for t in ours.column("tag").to_pylist())


def test_a_cells_embed_reports_what_it_changed(table, key):
    w = dbwatermark.Watermarker(key=key)
    copy, report = w.embed(table, "acme->cells", pk="id", report=True)
    assert copy.equals(w.embed(table, "acme->cells", pk="id"))
    changed = {c["name"]: c["cells_changed"] for c in report["columns"]}
    assert report["real_cells_changed"] == sum(changed.values()) > 0
    assert report["rows"] == table.num_rows and "pseudo_rows" not in report
    assert report["plan_fingerprint"] == w.plan(table, "id", content="acme->cells").fingerprint
    assert "carrier" in report["skipped"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mode": "rows"}, "`mode` must be one of"),
        ({"row_spacing": 0}, "positive integer"),
        ({"row_spacing": True}, "positive integer"),
        ({"row_spacing": 10, "pseudo_column": "x"}, "two modes"),
        ({"mode": "pseudo-column", "row_spacing": 10}, "not 'pseudo-column'"),
        ({"mode": "pseudo-column"}, "name the added column"),
        ({"pseudo_column": "carrier"}, "`carrier` is already a column"),
        ({"pseudo_column": ""}, "is empty"),
        ({"pseudo_column": "x", "pseudo_column_format": "uuid"}, "unknown pseudo-column format `uuid`"),
        ({"mode": "pseudo-rows", "pseudo_column_format": "code"}, "is for mode='pseudo-column'"),
        ({"mode": "pseudo-rows", "columns": ["fare"]}, "does not apply"),
        ({"report": "yes"}, "`report` must be True or False"),
    ],
)
def test_bad_mode_settings_are_refused_naming_the_setting(table, key, options, message):
    w = dbwatermark.Watermarker(key=key)
    columns = options.pop("columns", None)
    with pytest.raises(dbwatermark.InvalidInputError, match=message):
        w.embed(table.slice(0, 500), "acme", pk="id", columns=columns, **options)


def codes(rows: int) -> pa.Table:
    """Reference data: a key and codes only, no column a cell mark may
    change."""
    rng = random.Random(2)
    return pa.table({
        "id": pa.array([3 * i for i in range(rows)], pa.int64()),
        "region": [rng.choice("NSEW") for _ in range(rows)],
        "status": [rng.choice(["open", "closed", "held"]) for _ in range(rows)],
        "grade": pa.array([rng.randint(1, 9) for _ in range(rows)], pa.int32()),
    })


def test_a_table_of_codes_takes_a_pseudo_column_though_no_cell_can_be_marked(key):
    w = dbwatermark.Watermarker(key=key)
    t = codes(5000)
    with pytest.raises(dbwatermark.NothingToMarkError, match="`region`: a code or label"):
        w.embed(t, "acme", pk="id")
    copy = w.embed(t, "acme->ref", pk="id", pseudo_column="ref_no")
    assert copy.select(t.column_names).equals(t)
    assert w.extract(copy, pk="id").watermarks[0].content == "acme->ref"
    # Nothing to read in the table itself is said as for a cell embed.
    with pytest.raises(dbwatermark.NothingToMarkError, match="`grade`"):
        w.extract(t, pk="id")


def test_pseudo_rows_in_a_table_of_codes_warn_that_few_were_placed(key):
    w = dbwatermark.Watermarker(key=key)
    with pytest.warns(UserWarning, match="a pseudo-column carries a mark in any table"):
        copy, report = w.embed(codes(20_000), "acme", pk="id", mode="pseudo-rows", report=True)
    assert report["pseudo_rows"]["skipped_places"] > report["pseudo_rows"]["added"]
    assert "warning" in report


def test_a_table_too_narrow_for_pseudo_rows_is_refused_naming_why(key):
    w = dbwatermark.Watermarker(key=key)
    narrow = pa.table({"id": range(1000), "qty": [i % 7 for i in range(1000)]})
    with pytest.raises(dbwatermark.InvalidInputError, match=r"1 column\(s\) besides the key"):
        w.embed(narrow, "acme", pk="id", mode="pseudo-rows")


def test_embed_batches_refuses_pseudo_rows_naming_why(table, key):
    w = dbwatermark.Watermarker(key=key)
    with pytest.raises(dbwatermark.InvalidInputError, match="need the whole table's keys"):
        w.embed_batches(table.to_reader(), "acme", pk="id", mode="pseudo-rows")
    with pytest.raises(dbwatermark.InvalidInputError, match="takes no `report`"):
        w.embed_batches(table.to_reader(), "acme", pk="id", report=True)


def test_embed_batches_streams_the_pseudo_column_embed_adds(table, key):
    w = dbwatermark.Watermarker(key=key)
    whole = w.embed(table, "acme->stream", pk="id", pseudo_column="ref", pseudo_column_format="token")
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=4_000))
    stream = w.embed_batches(reader, "acme->stream", pk="id", pseudo_column="ref", pseudo_column_format="token")
    assert stream.schema == whole.schema
    batches = list(stream)
    assert len(batches) == 8 and pa.Table.from_batches(batches).equals(whole)
