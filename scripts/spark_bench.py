"""Spark local[2] on a 1,000,000-row table: `dbwatermark.spark.embed` (to
Parquet), the copy compared cell for cell with `dbwm embed` on the same
file, and `dbwatermark.spark.extract` of the whole copy and of a 5% sample.
Run from the repository root with the package and pyspark installed and
`cargo build --release` done:

    python scripts/spark_bench.py [ROWS]
"""

import os
import shutil
import subprocess
import sys
import time

import pyarrow.parquet as pq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python", "tests"))
from conftest import flights  # noqa: E402

import dbwatermark  # noqa: E402
import dbwatermark.spark  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    key = "spark bench: a long random secret"
    work = "target/spark-bench"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    source = f"{work}/flights.parquet"
    pq.write_table(flights(rows, seed=5), source, row_group_size=100_000)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", "4g").getOrCreate()
    )
    df = spark.read.parquet(source)
    start = time.perf_counter()
    marked = dbwatermark.spark.embed(df, key, "acme->spark", pk="id")
    marked.write.parquet(f"{work}/copy")
    embed_s = time.perf_counter() - start

    subprocess.run(
        ["target/release/dbwm", "embed", "--key", key, "--pk", "id", "--content", "acme->spark",
         "-o", f"{work}/cli.parquet", source],
        check=True, capture_output=True,
    )
    ours = pq.read_table(f"{work}/copy").sort_by("id")
    cli = pq.read_table(f"{work}/cli.parquet").sort_by("id")
    same = all(ours.column(n).to_pylist() == cli.column(n).to_pylist() for n in cli.column_names)

    copy = spark.read.parquet(f"{work}/copy")
    start = time.perf_counter()
    whole = dbwatermark.spark.extract(copy, key, "id")
    extract_s = time.perf_counter() - start
    start = time.perf_counter()
    sample = dbwatermark.spark.extract(copy.sample(fraction=0.05, seed=1), key, "id",
                                       candidates=[f"acme->{c}" for c in ("spark", "other", "third")])
    sample_s = time.perf_counter() - start
    print(f"{rows} rows, local[2], {df.rdd.getNumPartitions()} partitions")
    print(f"embed + write Parquet: {embed_s:.1f} s; identical to dbwm embed: {same}")
    print(f"extract whole copy: {extract_s:.1f} s -> {[w.content for w in whole.watermarks]}")
    print(f"extract 5% sample ({sample.rows} rows): {sample_s:.1f} s -> {[w.content for w in sample.watermarks]}, "
          f"identified {[i.content for i in sample.identified]}")
    spark.stop()


if __name__ == "__main__":
    main()
