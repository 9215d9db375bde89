"""Python against the Rust library on the same 1,000,000-row table: embed and
extract times, best of 5 each (the target: within 1.1x). Run from the
repository root with the package installed:

    python scripts/python_bench.py [ROWS]

It writes the table as Arrow IPC under target/, runs
`cargo run --release --example arrow_timing` on it, and prints both.
"""

import json
import os
import random
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.feather as feather

import dbwatermark


def table(rows: int) -> pa.Table:
    rng = random.Random(1)
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "carrier": pa.array([rng.choice(["AA", "UA", "DL", "B6", "WN"]) for _ in range(rows)]),
            "month": pa.array([rng.randint(1, 12) for _ in range(rows)], pa.int32()),
            "distance": pa.array([rng.randint(80, 4983) for _ in range(rows)], pa.int64()),
            "fare": pa.array([round(rng.uniform(39, 899), 2) for _ in range(rows)], pa.float64()),
            "delay": pa.array([rng.randint(-20, 400) for _ in range(rows)], pa.float64()),
        }
    )


def best(f, repeats=5):
    out, t = None, float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = f()
        t = min(t, time.perf_counter() - start)
    return out, t


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    key = "bench: a long random secret"
    t = table(rows).combine_chunks()
    os.makedirs("target", exist_ok=True)
    path = "target/bench-table.arrow"
    feather.write_feather(t, path, compression="uncompressed", chunksize=65_536)
    t = feather.read_table(path)  # the same batches the Rust run reads
    w = dbwatermark.Watermarker(key=key)
    copy, embed_s = best(lambda: w.embed(t, "acme->bench", pk="id"))
    found, extract_s = best(lambda: w.extract(copy, pk="id"))
    assert found.watermarks[0].content == "acme->bench"
    rust = subprocess.run(
        ["cargo", "run", "--quiet", "--release", "--example", "arrow_timing", "--", path, "id", "acme->bench"],
        check=True, capture_output=True, text=True, env={**os.environ, "DBWM_KEY": key},
    )
    r = json.loads(rust.stdout)
    print(f"{rows} rows, {t.num_columns} columns, best of 5")
    print(f"embed:   python {embed_s:.3f} s, rust {r['embed_s']:.3f} s, ratio {embed_s / r['embed_s']:.2f}")
    print(f"extract: python {extract_s:.3f} s, rust {r['extract_s']:.3f} s, ratio {extract_s / r['extract_s']:.2f}")


if __name__ == "__main__":
    main()
