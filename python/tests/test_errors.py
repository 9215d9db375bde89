"""Bad input raises a specific error naming what is wrong; the key never
shows."""

import pickle

import pyarrow as pa
import pytest

import dbwatermark


def test_the_key_comes_from_the_argument_the_file_or_the_environment(tmp_path, monkeypatch, table):
    f = tmp_path / "key"
    f.write_text("from the file\nsecond line ignored\n")
    monkeypatch.setenv("DBWM_KEY", "from the environment")
    by_file = dbwatermark.Watermarker(key_file=f)
    assert by_file.key_fingerprint == dbwatermark.Watermarker(key="from the file").key_fingerprint
    by_env = dbwatermark.Watermarker()
    assert by_env.key_fingerprint == dbwatermark.Watermarker(key="from the environment").key_fingerprint
    assert dbwatermark.Watermarker(key="arg", key_file=f).key_fingerprint == dbwatermark.Watermarker(key="arg").key_fingerprint
    monkeypatch.delenv("DBWM_KEY")
    with pytest.raises(dbwatermark.KeyNotFoundError, match="DBWM_KEY"):
        dbwatermark.Watermarker()
    with pytest.raises(dbwatermark.InvalidInputError, match="must not be empty"):
        dbwatermark.Watermarker(key="")
    with pytest.raises(dbwatermark.InvalidInputError, match="cannot read key file"):
        dbwatermark.Watermarker(key_file=tmp_path / "missing")


def test_the_key_is_never_in_a_repr_an_error_or_a_pickle(table):
    secret = "correct horse battery staple"
    w = dbwatermark.Watermarker(key=secret)
    assert secret not in repr(w) and w.key_fingerprint in repr(w)
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(w)
    for bad in (lambda: w.embed(table, "x", pk="nope"), lambda: w.embed(table, "", pk="id")):
        with pytest.raises(dbwatermark.DbwatermarkError) as e:
            bad()
        assert secret not in str(e.value)
    t = w.tally(table.slice(0, 100), "id")
    assert secret.encode() not in t.to_bytes() and secret not in repr(t)


def test_bad_columns_name_the_column(table, key):
    w = dbwatermark.Watermarker(key=key)
    with pytest.raises(dbwatermark.InvalidInputError, match="`nope`"):
        w.embed(table, "c", pk="nope")
    with pytest.raises(ValueError, match="`id` is a primary-key column"):
        w.embed(table, "c", pk="id", columns=["id"])
    with pytest.raises(dbwatermark.InvalidInputError, match="`fare`.*max_change"):
        w.embed(table, "c", pk="id", rules={"fare": {"max_change": "lots"}})
    with pytest.raises(dbwatermark.InvalidInputError, match="no such column"):
        w.embed(table, "c", pk="id", rule="missing:mark=false")
    with pytest.raises(dbwatermark.InvalidInputError, match="COLUMN:SETTING=VALUE"):
        w.embed(table, "c", pk="id", rule="fare")
    with pytest.raises(dbwatermark.InvalidInputError, match="primary key"):
        w.embed(table, "c", pk=[])


def test_bad_content_options_and_inputs_are_refused(table, key):
    w = dbwatermark.Watermarker(key=key)
    with pytest.raises(dbwatermark.InvalidInputError, match="1 to 64 bytes"):
        w.embed(table, "x" * 65, pk="id")
    with pytest.raises(TypeError, match="unknown option"):
        w.embed(table, "c", pk="id", density=3)
    with pytest.raises(TypeError, match="expected Arrow data"):
        w.embed([1, 2, 3], "c", pk="id")
    with pytest.raises(dbwatermark.InvalidInputError, match="trace_rows"):
        w.embed(table, "c", pk="id", trace_rows=0)
    with pytest.raises(dbwatermark.InvalidInputError, match="threshold"):
        w.extract(table, "id", candidates=["a"], threshold=2)
    with pytest.raises(dbwatermark.InvalidInputError, match="empty"):
        w.extract(table, "id", candidates=[])


def test_a_table_with_nothing_markable_raises_nothing_to_mark_naming_each_column(key):
    t = pa.table({"id": range(3000), "month": [1 + i % 12 for i in range(3000)], "code": ["AA", "UA", "DL"] * 1000})
    with pytest.raises(dbwatermark.NothingToMarkError, match="`month`.*`code`"):
        dbwatermark.Watermarker(key=key).embed(t, "c", pk="id")


def test_an_edited_plan_is_refused(table, key):
    w = dbwatermark.Watermarker(key=key)
    text = w.plan(table, "id").to_json().replace('"max":4983', '"max":9999')
    assert '"max":9999' in text
    with pytest.raises(dbwatermark.PlanError, match="fingerprint"):
        w.embed(table, "c", pk="id", plan=dbwatermark.Plan.from_json(text))
    with pytest.raises(dbwatermark.PlanError, match="not a dbwatermark plan"):
        dbwatermark.Plan.from_json("{}")
    with pytest.raises(dbwatermark.InvalidInputError, match="`fare`"):
        w.embed(table.drop_columns(["fare"]), "c", pk="id", plan=w.plan(table, "id"))
