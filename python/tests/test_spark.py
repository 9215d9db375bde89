"""Spark: embedding by mapInArrow under one plan gives the CLI's copy;
extraction merges partition tallies. A bounded local[2] session."""

import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dbwatermark
from conftest import flights

if os.environ.get("DBWM_REQUIRE_SPARK") != "1":
    pytest.importorskip("pyspark")
from pyspark.sql import SparkSession  # noqa: E402

import dbwatermark.spark  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    # The workers run this interpreter, where the package is installed.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("dbwatermark-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "5000")
        .getOrCreate()
    )
    yield session
    session.stop()


def sorted_table(t: pa.Table) -> pa.Table:
    return t.sort_by("id")


def test_spark_embed_is_the_cli_copy_and_spark_extract_names_it(spark, key, dbwm, tmp_path):
    table = flights(120_000, seed=21)
    source = tmp_path / "flights.parquet"
    pq.write_table(table, source, row_group_size=20_000)
    cli_out = tmp_path / "cli.parquet"
    subprocess.run(
        [dbwm, "embed", "--key", key, "--pk", "id", "--content", "acme->spark-1", "-o", str(cli_out), str(source)],
        check=True, capture_output=True,
    )
    df = spark.read.parquet(str(source)).repartition(6)
    marked = dbwatermark.spark.embed(df, key, "acme->spark-1", pk="id", plan=dbwatermark.Watermarker(key=key).plan(
        table, "id", content="acme->spark-1"))
    assert marked.schema == df.schema
    got = sorted_table(marked.toArrow())
    want = sorted_table(pq.read_table(cli_out))
    for name in table.column_names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name

    # A 5% sample of the Spark copy is traced, from partition tallies.
    leak = marked.sample(fraction=0.05, seed=3)
    found = dbwatermark.spark.extract(leak, key, "id", candidates=[f"acme->spark-{i}" for i in range(10)])
    assert [i.content for i in found.identified] == ["acme->spark-1"]
    assert found.watermarks[0].content == "acme->spark-1"

    # The whole copy's extraction is the Python library's on the same rows.
    whole = dbwatermark.spark.extract(marked, key, "id", plan=dbwatermark.Watermarker(key=key).plan(got, "id"))
    local = dbwatermark.Watermarker(key=key).extract(got, "id")
    assert whole.to_dict() == local.to_dict()


def test_spark_embed_plans_on_the_driver_when_not_given_a_plan(spark, key):
    table = flights(20_000, seed=22)
    df = spark.createDataFrame(table.to_pandas()).repartition(3)
    marked = dbwatermark.spark.embed(df, key, "acme->spark-2", pk="id", rule="fare:max_change=0.01")
    got = marked.toArrow()
    assert got.num_rows == table.num_rows
    found = dbwatermark.Watermarker(key=key).extract(got, "id", rule="fare:max_change=0.01")
    assert found.watermarks[0].content == "acme->spark-2"
    fares = dict(zip(table.column("id").to_pylist(), table.column("fare").to_pylist()))
    moved = [abs(f - fares[i]) for i, f in zip(got.column("id").to_pylist(), got.column("fare").to_pylist())]
    assert max(moved) <= 0.01 + 1e-9


def test_spark_embed_without_a_key_anywhere_is_refused_on_the_driver(spark, monkeypatch):
    df = spark.createDataFrame(flights(2_000).to_pandas())
    monkeypatch.delenv("DBWM_KEY", raising=False)
    with pytest.raises(dbwatermark.KeyNotFoundError, match="DBWM_KEY"):
        dbwatermark.spark.embed(df, None, "c", pk="id")


def test_spark_adds_the_pseudo_column_the_library_adds_and_extract_finds_it(spark, key):
    table = flights(20_000, seed=23)
    df = spark.createDataFrame(table.to_pandas()).repartition(3)
    marked = dbwatermark.spark.embed(df, key, "acme->spark-pc", pk="id", pseudo_column="ref_no")
    assert marked.columns == table.column_names + ["ref_no"]
    got = sorted_table(marked.toArrow())
    want = dbwatermark.Watermarker(key=key).embed(table, "acme->spark-pc", pk="id", pseudo_column="ref_no")
    assert got.column("ref_no").to_pylist() == sorted_table(want).column("ref_no").to_pylist()
    found = dbwatermark.spark.extract(marked.sample(fraction=0.2, seed=4), key, "id")
    assert found.watermarks[0].content == "acme->spark-pc"
    assert "ref_no" in found.watermarks[0].columns


def test_spark_extract_reads_the_pseudo_column_of_a_table_no_cell_mark_can_touch(spark, key):
    from test_lossless import codes

    w = dbwatermark.Watermarker(key=key)
    copy = w.embed(codes(5000), "acme->spark-codes", pk="id", pseudo_column="ref_no", pseudo_column_format="token")
    df = spark.createDataFrame(copy.to_pandas()).repartition(3)
    found = dbwatermark.spark.extract(df, key, "id")
    assert found.watermarks[0].content == "acme->spark-codes"
    assert found.watermarks[0].columns == ["ref_no"]
    # The plan is still refused for an embed, naming why.
    with pytest.raises(dbwatermark.NothingToMarkError, match="`region`"):
        w.plan(copy, pk="id")


def test_spark_refuses_pseudo_rows_naming_why(spark, key):
    df = spark.createDataFrame(flights(100).to_pandas())
    with pytest.raises(dbwatermark.InvalidInputError, match="other partitions' keys"):
        dbwatermark.spark.embed(df, key, "acme", pk="id", mode="pseudo-rows")
